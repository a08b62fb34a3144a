#ifndef KPAR_LOCAL_H
#define KPAR_LOCAL_H
#endif
