#ifndef KPAR_CONF_H
#define KPAR_CONF_H
#endif
