/* conf.c - placeholder */
#include "config.h"
