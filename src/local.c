/* local.c - placeholder */
#include "config.h"
