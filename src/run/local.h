/* local.h - the local backend: buckets run as parallel worker processes on
 * this machine, the default when no cluster is configured.
 *
 * Each worker is `kpar worker` (the same program, re-executed) running one
 * bucket in its own working directory ($(KPAR_STATE_DIR)/work/wN) and
 * writing its result record to results/test-group-N.rec; the scheduler
 * hands pending buckets out in plan order (longest first) to whichever
 * worker slot frees up, hands each record to the shared collect step
 * (backend.h) as soon as it lands, retries a bucket whose worker died, and on SIGINT or
 * SIGTERM stops its workers and returns KPAR_EINTR with the run resumable.
 */
#ifndef KPAR_LOCAL_H
#define KPAR_LOCAL_H

#include "run/backend.h"

extern const struct kpar_backend kpar_local_backend;

#endif
