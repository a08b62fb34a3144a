#ifndef KPAR_STATE_H
#define KPAR_STATE_H
#endif
