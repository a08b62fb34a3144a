/* plan.c - placeholder */
#include "config.h"
