/* progress.c - placeholder */
#include "config.h"
