#ifndef KPAR_REPORT_H
#define KPAR_REPORT_H
#endif
