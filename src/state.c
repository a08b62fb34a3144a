/* state.c - placeholder */
#include "config.h"
