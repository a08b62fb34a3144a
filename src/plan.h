#ifndef KPAR_PLAN_H
#define KPAR_PLAN_H
#endif
