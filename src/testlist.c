/* testlist.c - placeholder */
#include "config.h"
