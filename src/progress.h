#ifndef KPAR_PROGRESS_H
#define KPAR_PROGRESS_H
#endif
