/* report.c - placeholder */
#include "config.h"
