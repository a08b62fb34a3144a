/* split.c - splitting tests into buckets of similar estimated duration.
 *
 * 1. Sort by (estimate desc, id asc).  Everything after works on ranks in
 *    that order, never on input positions, which is what makes the result
 *    independent of the input order.
 * 2. LPT: each test, longest first, goes to the lightest bucket, found with
 *    a binary min-heap keyed by (load, number of tests, bucket index).  The
 *    test count in the key matters only for zero-second tests: it sends them
 *    to empty buckets first, so no bucket is empty when n >= nbuckets.
 * 3. Refinement: while the heaviest bucket can be lowered by moving one of
 *    its tests to, or swapping one with, one of the lightest buckets, do the
 *    exchange that leaves the pair most even.  LPT leaves a gap of up to one
 *    test's length between heaviest and lightest; when buckets hold few
 *    tests that gap is most of the imbalance, and a swap closes it.
 * 4. Renumber by decreasing total, so dispatching in number order is
 *    longest first.
 * With a worker count (kpar_split_ex), steps 2-3 balance the tests over the
 * workers instead, and each worker's share is cut into buckets of halving
 * size (cut_for_workers), which is what dynamic dispatch needs.
 * Cost: O(n log n) for the sort, O(n log b) for LPT, and a bounded number
 * of refinement rounds of O(b + tests in two buckets) each: 30 ms for
 * 100,000 tests into 1,000 buckets (bench/split).
 */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "run/split.h"

/* Refinement tries the heaviest bucket against this many lightest ones
 * before giving up, and stops after 2 * buckets + ROUNDS_EXTRA rounds. */
#define PARTNERS 8
#define ROUNDS_EXTRA 64

struct sort_ctx {
	char *const *ids;
	const double *seconds;
};

static double clean(double s)
{
	return isfinite(s) && s > 0 ? s : 0.0;
}

static int cmp_rank(const void *a, const void *b, void *arg)
{
	const struct sort_ctx *c = arg;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	double x = clean(c->seconds[i]), y = clean(c->seconds[j]);
	int r;

	if (x != y)
		return x > y ? -1 : 1;
	r = strcmp(c->ids[i], c->ids[j]);
	if (r)
		return r;
	return i < j ? -1 : i > j; /* equal ids: interchangeable anyway */
}

struct heap {
	size_t *b;          /* bucket indices */
	const double *load;
	const size_t *count;
	size_t n;
};

static int heap_less(const struct heap *h, size_t x, size_t y)
{
	if (h->load[x] != h->load[y])
		return h->load[x] < h->load[y];
	if (h->count[x] != h->count[y])
		return h->count[x] < h->count[y];
	return x < y;
}

static void heap_down(struct heap *h, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i, t;

		if (l < h->n && heap_less(h, h->b[l], h->b[m]))
			m = l;
		if (r < h->n && heap_less(h, h->b[r], h->b[m]))
			m = r;
		if (m == i)
			return;
		t = h->b[i];
		h->b[i] = h->b[m];
		h->b[m] = t;
		i = m;
	}
}

/* Members of each bucket as ranks, for the refinement. */
struct members {
	size_t **v;
	size_t *cap;
};

static void members_push(struct members *mb, const size_t *count, size_t b, size_t rank)
{
	if (count[b] == mb->cap[b]) {
		mb->cap[b] = mb->cap[b] ? 2 * mb->cap[b] : 8;
		mb->v[b] = kpar_xrealloc(mb->v[b], mb->cap[b] * sizeof *mb->v[b]);
	}
	mb->v[b][count[b]] = rank;
}

static void members_remove(struct members *mb, size_t *count, size_t b, size_t rank)
{
	size_t i;

	for (i = 0; i < count[b]; i++) {
		if (mb->v[b][i] == rank) {
			mb->v[b][i] = mb->v[b][--count[b]];
			return;
		}
	}
}

static int cmp_size_t(const void *a, const void *b)
{
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	return x < y ? -1 : x > y;
}

/* Finds the best move (lo == SIZE_MAX) or swap between heavy bucket h and
 * light bucket l; returns the amount d moved from h to l, 0 when nothing
 * lowers h.  Members are sorted by rank, i.e. by decreasing value. */
static double best_exchange(const double *val, struct members *mb, const size_t *count,
			    size_t h, size_t l, double gap, double eps, size_t *out_h, size_t *out_l)
{
	size_t *A = mb->v[h], *B = mb->v[l], na = count[h], nb = count[l], i, j;
	double best = eps, half = gap / 2;

	*out_h = *out_l = SIZE_MAX;
	qsort(A, na, sizeof *A, cmp_size_t);
	qsort(B, nb, sizeof *B, cmp_size_t);
	for (i = 0; i < na; i++) {
		double a = val[A[i]], gain;

		if (na > 1 && a < gap) {
			gain = a < gap - a ? a : gap - a;
			if (gain > best) {
				best = gain;
				*out_h = A[i];
				*out_l = SIZE_MAX;
			}
		}
		/* B descends; the b that makes a - b closest to half is where
		 * a - b crosses half: binary search for the first b <= a - half. */
		{
			size_t lo = 0, hi = nb;

			while (lo < hi) {
				size_t mid = lo + (hi - lo) / 2;

				if (val[B[mid]] > a - half)
					lo = mid + 1;
				else
					hi = mid;
			}
			for (j = lo > 0 ? lo - 1 : 0; j < nb && j <= lo; j++) {
				double d = a - val[B[j]];

				if (d <= 0 || d >= gap)
					continue;
				gain = d < gap - d ? d : gap - d;
				if (gain > best) {
					best = gain;
					*out_h = A[i];
					*out_l = B[j];
				}
			}
		}
	}
	if (*out_h == SIZE_MAX)
		return 0;
	return *out_l == SIZE_MAX ? val[*out_h] : val[*out_h] - val[*out_l];
}

static void refine(const double *val, size_t n, size_t m, size_t *bof, double *load, size_t *count)
{
	struct members mb;
	size_t *partners = kpar_xmalloc(PARTNERS * sizeof *partners);
	size_t r, b, round, rounds = 2 * m + ROUNDS_EXTRA;

	mb.v = kpar_xcalloc(m, sizeof *mb.v);
	mb.cap = kpar_xcalloc(m, sizeof *mb.cap);
	memset(count, 0, m * sizeof *count);
	for (r = 0; r < n; r++) {
		members_push(&mb, count, bof[r], r);
		count[bof[r]]++;
	}

	for (round = 0; round < rounds; round++) {
		size_t h = 0, np = 0, p, xh, xl;
		double d = 0;

		for (b = 1; b < m; b++)
			if (load[b] > load[h])
				h = b;
		/* The PARTNERS lightest buckets, lightest first (ties: lowest index). */
		for (b = 0; b < m; b++) {
			size_t k;

			if (b == h)
				continue;
			if (np == PARTNERS && load[b] >= load[partners[np - 1]])
				continue;
			k = np < PARTNERS ? np++ : PARTNERS - 1;
			while (k > 0 && load[partners[k - 1]] > load[b]) {
				partners[k] = partners[k - 1];
				k--;
			}
			partners[k] = b;
		}
		for (p = 0; p < np; p++) {
			size_t l = partners[p];
			double gap = load[h] - load[l];

			if (gap <= 0)
				break;
			d = best_exchange(val, &mb, count, h, l, gap, 1e-9 * load[h] + 1e-12, &xh, &xl);
			if (d > 0) {
				members_remove(&mb, count, h, xh);
				members_push(&mb, count, l, xh);
				count[l]++;
				bof[xh] = l;
				if (xl != SIZE_MAX) {
					members_remove(&mb, count, l, xl);
					members_push(&mb, count, h, xl);
					count[h]++;
					bof[xl] = h;
				}
				load[h] -= d;
				load[l] += d;
				break;
			}
		}
		if (d <= 0)
			break;
	}
	for (b = 0; b < m; b++)
		free(mb.v[b]);
	free(mb.v);
	free(mb.cap);
	free(partners);
}

static int cmp_bucket(const void *a, const void *b, void *arg)
{
	const double *load = arg;
	size_t x = *(const size_t *)a, y = *(const size_t *)b;

	if (load[x] != load[y])
		return load[x] > load[y] ? -1 : 1;
	return x < y ? -1 : x > y;
}

/* LPT of ranks 0..n-1 (values val, longest first) into m groups. */
static void lpt(const double *val, size_t n, size_t m, size_t *group, double *load, size_t *count)
{
	struct heap hp;
	size_t r, b;

	memset(load, 0, m * sizeof *load);
	memset(count, 0, m * sizeof *count);
	hp.b = kpar_xmalloc(m * sizeof *hp.b);
	hp.load = load;
	hp.count = count;
	hp.n = m;
	/* All zero: index order is already a heap. */
	for (b = 0; b < m; b++)
		hp.b[b] = b;
	for (r = 0; r < n; r++) {
		b = hp.b[0];
		group[r] = b;
		load[b] += val[r];
		count[b]++;
		heap_down(&hp, 0);
	}
	free(hp.b);
}

/* Dispatch-aware buckets: the tests are balanced over `workers` virtual
 * workers (LPT + refinement: the best static schedule), and each worker's
 * share, longest test first, is cut into chunks of geometrically
 * decreasing size: half of its time, a quarter, an eighth, ..., the rest.
 * Dispatched biggest first to whichever worker is free, the chunks replay
 * that static schedule when the estimates are right, and when they are not
 * the last chunks are small, so the workers finish close together: equal
 * buckets would leave up to a whole bucket (total / nbuckets) of tail.
 * Makes exactly m chunks (n >= m > w), with bof[rank] = chunk. */
static void cut_for_workers(const double *val, size_t n, size_t m, size_t w, unsigned flags,
			    size_t *bof)
{
	size_t *worker = kpar_xmalloc(n * sizeof *worker), *count = kpar_xcalloc(w, sizeof *count);
	size_t *chunks = kpar_xcalloc(w, sizeof *chunks), *seen = kpar_xcalloc(w, sizeof *seen);
	size_t *first = kpar_xcalloc(w, sizeof *first), *cur = kpar_xcalloc(w, sizeof *cur);
	double *load = kpar_xcalloc(w, sizeof *load), *cum = kpar_xcalloc(w, sizeof *cum);
	size_t r, k, given = 0, next = 0;

	lpt(val, n, w, worker, load, count);
	if (!(flags & KPAR_SPLIT_NO_REFINE))
		refine(val, n, w, worker, load, count);
	memset(load, 0, w * sizeof *load);
	memset(count, 0, w * sizeof *count);
	for (r = 0; r < n; r++) {
		load[worker[r]] += val[r];
		count[worker[r]]++;
	}
	/* m / w chunks each (the first m % w workers one more), never more
	 * than a worker has tests; what cannot be placed goes round robin to
	 * workers that have tests to spare (there are some, as n >= m). */
	for (k = 0; k < w; k++) {
		chunks[k] = m / w + (k < m % w);
		if (chunks[k] > count[k])
			chunks[k] = count[k];
		given += chunks[k];
	}
	while (given < m) {
		for (k = 0; k < w && given < m; k++) {
			if (chunks[k] < count[k]) {
				chunks[k]++;
				given++;
			}
		}
	}
	/* Chunk numbers: worker k's chunks are first[k] .. first[k] + chunks[k] - 1. */
	for (k = 0; k < w; k++) {
		first[k] = next;
		next += chunks[k];
	}
	/* Ranks ascend, so each worker sees its tests longest first. */
	for (r = 0; r < n; r++) {
		size_t j;
		double target;

		k = worker[r];
		j = seen[k]++;
		if (j > 0 && cur[k] + 1 < chunks[k]) {
			/* Chunk c ends once the worker's time reaches 1 - 2^-(c+1)
			 * of its load; or when each remaining test must start a chunk. */
			target = load[k] * (1.0 - ldexp(1.0, -(int)(cur[k] + 1 < 1000 ? cur[k] + 1 : 1000)));
			if (cum[k] >= target || count[k] - j == chunks[k] - cur[k] - 1)
				cur[k]++;
		}
		bof[r] = first[k] + cur[k];
		cum[k] += val[r];
	}
	free(worker);
	free(count);
	free(chunks);
	free(seen);
	free(first);
	free(cur);
	free(load);
	free(cum);
}

size_t kpar_split_ex(char *const *ids, const double *seconds, size_t n, size_t nbuckets,
		     size_t workers, unsigned flags, size_t *bucket_of)
{
	struct sort_ctx sc = { ids, seconds };
	size_t *order, *bof, *count, *perm, *num, m, r, b;
	double *val, *load;

	if (n == 0)
		return 0;
	m = nbuckets == 0 ? 1 : nbuckets < n ? nbuckets : n;
	order = kpar_xmalloc(n * sizeof *order);
	for (r = 0; r < n; r++)
		order[r] = r;
	qsort_r(order, n, sizeof *order, cmp_rank, &sc);
	val = kpar_xmalloc(n * sizeof *val);
	bof = kpar_xmalloc(n * sizeof *bof);
	for (r = 0; r < n; r++)
		val[r] = clean(seconds[order[r]]);
	load = kpar_xcalloc(m, sizeof *load);
	count = kpar_xcalloc(m, sizeof *count);

	if (workers > 0 && workers < m) {
		cut_for_workers(val, n, m, workers, flags, bof);
	} else {
		lpt(val, n, m, bof, load, count);
		if (!(flags & KPAR_SPLIT_NO_REFINE) && m > 1)
			refine(val, n, m, bof, load, count);
	}

	/* Totals summed afresh in rank order, free of the refinement's
	 * running additions and subtractions. */
	memset(load, 0, m * sizeof *load);
	for (r = 0; r < n; r++)
		load[bof[r]] += val[r];
	perm = kpar_xmalloc(m * sizeof *perm);
	num = kpar_xmalloc(m * sizeof *num);
	for (b = 0; b < m; b++)
		perm[b] = b;
	qsort_r(perm, m, sizeof *perm, cmp_bucket, load);
	for (b = 0; b < m; b++)
		num[perm[b]] = b;
	for (r = 0; r < n; r++)
		bucket_of[order[r]] = num[bof[r]];

	free(order);
	free(val);
	free(bof);
	free(load);
	free(count);
	free(perm);
	free(num);
	return m;
}

size_t kpar_split(char *const *ids, const double *seconds, size_t n, size_t nbuckets,
		  size_t *bucket_of)
{
	return kpar_split_ex(ids, seconds, n, nbuckets, 0, 0, bucket_of);
}

/* ---------------------------------------------------------- grouped split */

struct group_ctx {
	char *const *ids;
	const char *const *group;
};

/* By group (an ungrouped test is a group of its own, named by its id), then
 * id: each group's tests end up contiguous and in a fixed order. */
static int cmp_grouped(const void *a, const void *b, void *arg)
{
	const struct group_ctx *g = arg;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;
	const char *gi = g->group[i] ? g->group[i] : g->ids[i];
	const char *gj = g->group[j] ? g->group[j] : g->ids[j];
	int r = strcmp(gi, gj);

	return r ? r : strcmp(g->ids[i], g->ids[j]);
}

size_t kpar_split_grouped(char *const *ids, const double *seconds, const char *const *group,
			  size_t n, size_t nbuckets, size_t workers, unsigned flags,
			  size_t *bucket_of)
{
	struct group_ctx gc = { ids, group };
	size_t *order, *unit_of, *ubof, nu = 0, i, j, m;
	char **uid;
	double *uest, total = 0, share;

	if (n == 0)
		return 0;
	if (!group)
		return kpar_split_ex(ids, seconds, n, nbuckets, workers, flags, bucket_of);
	m = nbuckets == 0 ? 1 : nbuckets < n ? nbuckets : n;
	order = kpar_xmalloc(n * sizeof *order);
	for (i = 0; i < n; i++) {
		order[i] = i;
		total += clean(seconds[i]);
	}
	qsort_r(order, n, sizeof *order, cmp_grouped, &gc);
	/* A unit is a group, or a contiguous piece of one no bigger than an
	 * average bucket: small groups never pay their set-up twice, and a
	 * long one still spreads over workers. */
	share = total / (double)m;
	unit_of = kpar_xmalloc(n * sizeof *unit_of);
	uid = kpar_xmalloc(n * sizeof *uid);
	uest = kpar_xcalloc(n, sizeof *uest);
	for (i = 0; i < n; i = j) {
		const char *g = group[order[i]];
		double sum = 0, per, acc = 0;

		for (j = i + 1; g && j < n && group[order[j]] && strcmp(group[order[j]], g) == 0; j++)
			;
		for (size_t k = i; k < j; k++)
			sum += clean(seconds[order[k]]);
		per = share > 0 && sum > share ? sum / ceil(sum / share) : sum;
		uid[nu] = ids[order[i]];
		for (size_t k = i; k < j; k++) {
			double s = clean(seconds[order[k]]);

			/* cut where the piece is nearer its target with this
			 * test in another one than with it here */
			if (k > i && acc > 0 && acc + s / 2 > per) {
				nu++;
				uid[nu] = ids[order[k]];
				acc = 0;
			}
			unit_of[order[k]] = nu;
			uest[nu] += s;
			acc += s;
		}
		nu++;
	}
	ubof = kpar_xmalloc(nu * sizeof *ubof);
	/* a unit is named by its first test's id: unique, and independent of
	 * the input order */
	m = kpar_split_ex(uid, uest, nu, m, workers, flags, ubof);
	for (i = 0; i < n; i++)
		bucket_of[i] = ubof[unit_of[i]];
	free(ubof);
	free(uest);
	free(uid);
	free(unit_of);
	free(order);
	return m;
}

/* ---------------------------------------------------- ordered split */

/* Cuts ranks 0..n-1 (values val) into contiguous runs: a run ends once it
 * has max(left / (4 * w), floor_share), left being the work from its start
 * on; or when each remaining test must start a run to fill m.  Returns the
 * number of runs; *capped is set when a run had to go on past its share
 * because m runs were used up.  bof may be NULL (counting only). */
static size_t ordered_cut(const double *val, double total, size_t n, size_t m, size_t w,
			  double floor_share, size_t *bof, int *capped)
{
	double left = total, acc = 0;
	size_t r, b = 0;

	*capped = 0;
	for (r = 0; r < n; r++) {
		double target = left / (4.0 * (double)w);
		int full;

		if (target < floor_share)
			target = floor_share;
		full = acc > 0 && acc + val[r] / 2 > target;
		if (r > 0 && (full || n - r <= m - b - 1)) {
			if (b + 1 < m) {
				b++;
				left -= acc;
				acc = 0;
			} else {
				*capped = 1;
			}
		}
		if (bof)
			bof[r] = b;
		acc += val[r];
	}
	return b + 1;
}

/* Contiguous runs of the rank order (estimate desc, id asc), numbered in
 * that order: when the estimates rank nothing (a first run that no signal
 * could be trusted for: all equal but a few hints), this is name order,
 * what make -j W does, and the dispatcher hands the runs out in it.  Why
 * not LPT: on equal estimates LPT deals the tests round robin and the
 * dispatch-aware cut commits half of each worker's share in one bucket,
 * which only pays when the estimates are right; a slow test nobody
 * foresaw then holds its worker with half a share behind it.  The runs
 * shrink as the work left does (guided self-scheduling: each about a
 * quarter of what is left per worker), down to the smallest floor that
 * still fits nbuckets, so the last ones are small and the workers finish
 * close together whichever tests turn out slow.  A quarter, not the
 * classic half: a long test inside an early run has the rest of that run
 * stacked on it (bench/split, git's suite at 16 workers: 1.46x the bound
 * with halves, 1.36x with quarters, 1.23x one test at a time). */
size_t kpar_split_ordered(char *const *ids, const double *seconds, size_t n, size_t nbuckets,
			  size_t workers, size_t *bucket_of)
{
	struct sort_ctx sc = { ids, seconds };
	size_t *order, *bof, m, r, used;
	double total = 0, *val, lo, hi;
	int capped, it;

	if (n == 0)
		return 0;
	m = nbuckets == 0 ? 1 : nbuckets < n ? nbuckets : n;
	if (workers == 0)
		workers = 1;
	order = kpar_xmalloc(n * sizeof *order);
	for (r = 0; r < n; r++)
		order[r] = r;
	qsort_r(order, n, sizeof *order, cmp_rank, &sc);
	val = kpar_xmalloc(n * sizeof *val);
	for (r = 0; r < n; r++)
		total += (val[r] = clean(seconds[order[r]]));
	if (total <= 0) {
		/* nothing estimated: count tests instead */
		for (r = 0; r < n; r++)
			val[r] = 1;
		total = (double)n;
	}
	/* The smallest floor whose runs fit m: bisection, as the number of
	 * runs only grows as the floor drops. */
	lo = 0;
	hi = total / (double)m;
	ordered_cut(val, total, n, m, workers, lo, NULL, &capped);
	if (capped) {
		for (it = 0; it < 40; it++) {
			double mid = (lo + hi) / 2;

			ordered_cut(val, total, n, m, workers, mid, NULL, &capped);
			if (capped)
				lo = mid;
			else
				hi = mid;
		}
		lo = hi;
	}
	bof = kpar_xmalloc(n * sizeof *bof);
	used = ordered_cut(val, total, n, m, workers, lo, bof, &capped);
	for (r = 0; r < n; r++)
		bucket_of[order[r]] = bof[r];
	free(bof);
	free(val);
	free(order);
	return used;
}

size_t kpar_split_auto(char *const *ids, const double *seconds,
		       const enum kpar_est_source *sources, size_t n, size_t nbuckets,
		       size_t workers, size_t *bucket_of)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (sources[i] == KPAR_EST_HISTORY || sources[i] == KPAR_EST_NAME ||
		    sources[i] == KPAR_EST_SIZE)
			return kpar_split_ex(ids, seconds, n, nbuckets, workers, 0, bucket_of);
	return kpar_split_ordered(ids, seconds, n, nbuckets, workers, bucket_of);
}
