/* clock.h - the monotonic clock in milliseconds, and sleeping on it: what
 * the network clients' retries and back-off measure time with. */
#ifndef KPAR_CLOCK_H
#define KPAR_CLOCK_H

#include <stdint.h>

/* Milliseconds of CLOCK_MONOTONIC: for intervals, never for dates. */
uint64_t kpar_clock_ms(void);
/* Sleeps ms milliseconds, resuming after signals. */
void kpar_clock_sleep_ms(uint64_t ms);

#endif
