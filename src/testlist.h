#ifndef KPAR_TESTLIST_H
#define KPAR_TESTLIST_H
#endif
