/* estimate.c - how long will each test take?
 *
 * A test with history gets its own robust estimate (history.c), imported
 * or measured.  A hinted test gets its hint, in seconds, as it is: a user
 * who writes "t/t9001-send-email.sh 60" means sixty seconds, and the other
 * estimates are put in seconds too so that it ranks where it belongs.  Any
 * other test gets, in this order:
 *   1. its name family: the median of known tests sharing the longest
 *      prefix with it, cut back to a separator ("tests/net/", "test_io_"),
 *      provided that prefix is narrower than what all known tests share
 *      (otherwise the "family" is the whole suite, i.e. the default);
 *   2. the size of its file (or of all files in its directory) under root,
 *      in seconds per byte learnt from the tests of the list with a known
 *      duration (history, else hints) and a file;
 *   3. the default: the 90th percentile of the known durations (so that
 *      the tests nobody can judge start early), else default_seconds.
 * A signal is used only once it has shown that it predicts this suite, on
 * the tests with a known duration (judge): the rank correlation of its
 * guesses with those durations (for the name, each known test's family
 * without itself; for the size, the known tests' sizes) must reach
 * KPAR_RHO_MIN over at least KPAR_JUDGE_MIN tests, and those tests
 * dispatched in its order on the run's workers must finish no later than
 * in name order, which is what kpar falls back to.  Why so strict: a
 * signal that misorders is worse than none.  On git's suite sizes rank
 * durations with a correlation of 0.56, yet its slowest scripts are tiny
 * files that source a shared library, so size order starts them last
 * (bench/split: 1.21x / 1.42x the bound at 8 / 16 workers, name order one
 * test at a time 1.05x / 1.23x); on CPython's (0.30) size order loses to
 * name order too.  With no signal every unknown test gets the same
 * estimate and the plan is name order in shrinking runs (plan.c,
 * kpar_split_auto), as make -j W would run them.  A first run with no
 * history and fewer than KPAR_JUDGE_MIN hinted files judges nothing, so it
 * runs in name order, hinted tests first.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/fs.h"
#include "run/history.h"
#include "run/split.h"

/* A directory test is sized by its files; these bounds keep a test id
 * that happens to name a huge tree from stalling the plan. */
#define DIR_MAX_DEPTH 8
#define DIR_MAX_ENTRIES 20000

struct hint {
	char *glob;
	double seconds;
};

struct hints {
	struct hint *v;
	size_t n;
};

static void hints_free(struct hints *h)
{
	size_t i;

	for (i = 0; i < h->n; i++)
		free(h->v[i].glob);
	free(h->v);
	h->v = NULL;
	h->n = 0;
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

/* Numbers in the hints file are read in the C locale whatever the
 * process's locale is (make calls setlocale). */
static int parse_seconds(const char *s, locale_t c_locale, double *out)
{
	char *end = NULL;
	double v;

	errno = 0;
	v = strtod_l(s, &end, c_locale);
	if (end == s || *end != '\0' || errno == ERANGE || !isfinite(v) || v < 0)
		return -1;
	*out = v;
	return 0;
}

static int hints_load(const char *path, struct hints *out)
{
	char *text = NULL, *line, *next;
	size_t lineno = 0, cap = 0;
	locale_t c_locale;
	int rc;

	out->v = NULL;
	out->n = 0;
	if ((rc = kpar_fs_read_all(path, &text, NULL)) < 0)
		return kpar_error_prefix(rc, "hints file");
	c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
	if (!c_locale) {
		free(text);
		return kpar_error_errno(KPAR_EGENERIC, "hints file '%s': no C locale", path);
	}
	for (line = text; line; line = next) {
		char *end, *p, *num;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		end = line + strlen(line);
		while (end > line && is_space(end[-1]))
			*--end = '\0';
		while (is_space(*line))
			line++;
		if (*line == '\0' || *line == '#')
			continue;
		/* The seconds are the last field, so a glob may contain spaces. */
		for (p = end; p > line && !is_space(p[-1]); p--)
			;
		num = p;
		while (p > line && is_space(p[-1]))
			p--;
		if (p == line) {
			rc = kpar_error_set(KPAR_EINVAL,
					    "hints file '%s': line %zu: expected '<glob> <seconds>'",
					    path, lineno);
			goto fail;
		}
		*p = '\0';
		if (out->n == cap) {
			cap = cap ? 2 * cap : 16;
			out->v = kpar_xrealloc(out->v, cap * sizeof *out->v);
		}
		if (parse_seconds(num, c_locale, &out->v[out->n].seconds) < 0) {
			rc = kpar_error_set(KPAR_EINVAL,
					    "hints file '%s': line %zu: invalid seconds '%s'",
					    path, lineno, num);
			goto fail;
		}
		out->v[out->n].glob = kpar_xstrdup(line);
		out->n++;
	}
	freelocale(c_locale);
	free(text);
	return 0;
fail:
	freelocale(c_locale);
	free(text);
	hints_free(out);
	return rc;
}

/* Sums the sizes of regular files under dirfd; symlinks are not followed. */
static long long dir_size(int dirfd, int depth, size_t *budget)
{
	DIR *d = fdopendir(dirfd);
	struct dirent *e;
	long long sum = 0;

	if (!d) {
		close(dirfd);
		return 0;
	}
	while ((e = readdir(d)) != NULL && *budget > 0) {
		struct stat st;

		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		(*budget)--;
		if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISREG(st.st_mode)) {
			sum += st.st_size;
		} else if (S_ISDIR(st.st_mode) && depth < DIR_MAX_DEPTH) {
			int fd = openat(dirfd, e->d_name,
					O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

			if (fd >= 0)
				sum += dir_size(fd, depth + 1, budget);
		}
	}
	closedir(d);
	return sum;
}

/* The size signal of one test: > 0, or 0 when there is none. */
static double test_size(const char *root, const char *id)
{
	char *path = kpar_fs_join(root, id);
	struct stat st;
	double size = 0;

	if (stat(path, &st) == 0) {
		if (S_ISREG(st.st_mode)) {
			size = (double)st.st_size;
		} else if (S_ISDIR(st.st_mode)) {
			int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			size_t budget = DIR_MAX_ENTRIES;

			if (fd >= 0)
				size = (double)dir_size(fd, 0, &budget);
		}
	}
	free(path);
	return size;
}

static int is_sep(unsigned char c)
{
	return c < 0x80 && !(c >= '0' && c <= '9') && !(c >= 'a' && c <= 'z') &&
	       !(c >= 'A' && c <= 'Z');
}

static size_t common_prefix(const char *a, const char *b)
{
	size_t i = 0;

	while (a[i] && a[i] == b[i])
		i++;
	return i;
}

/* Shortens a prefix of s to end just after a separator (or to nothing). */
static size_t cut_to_sep(const char *s, size_t len)
{
	while (len > 0 && !is_sep((unsigned char)s[len - 1]))
		len--;
	return len;
}

/* First index in sorted ids whose id is >= key. */
static size_t lower_bound(char *const *ids, size_t n, const char *key)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(ids[mid], key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* End of the range [from, n) of sorted ids starting with prefix[0..plen). */
static size_t prefix_end(char *const *ids, size_t n, size_t from, const char *prefix, size_t plen)
{
	size_t lo = from, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strncmp(ids[mid], prefix, plen) == 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

struct family_cache {
	size_t lo, hi;
	double median;
	int valid;
	double *scratch;
};

static double range_median(const struct kpar_history_known *k, size_t lo, size_t hi,
			   struct family_cache *c)
{
	if (c->valid && c->lo == lo && c->hi == hi)
		return c->median;
	memcpy(c->scratch, k->seconds + lo, (hi - lo) * sizeof *c->scratch);
	c->median = kpar_history_median(c->scratch, hi - lo);
	c->lo = lo;
	c->hi = hi;
	c->valid = 1;
	return c->median;
}

/* The name signal of an unknown id; returns 0 and sets *out when there is one. */
static int family_estimate(const struct kpar_history_known *k, size_t global, const char *id,
			   struct family_cache *c, double *out)
{
	size_t pos, len = 0, lo, hi;

	if (k->n == 0)
		return -1;
	pos = lower_bound(k->ids, k->n, id);
	if (pos > 0)
		len = common_prefix(id, k->ids[pos - 1]);
	if (pos < k->n) {
		size_t l2 = common_prefix(id, k->ids[pos]);

		if (l2 > len)
			len = l2;
	}
	len = cut_to_sep(id, len);
	if (len <= global)
		return -1;
	/* Every id with this prefix sorts in one run around pos. */
	lo = 0;
	hi = pos;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strncmp(k->ids[mid], id, len) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	hi = prefix_end(k->ids, k->n, pos, id, len);
	if (lo >= hi)
		return -1;
	*out = range_median(k, lo, hi, c);
	return 0;
}

/* Ranks of v[0..n) into rank[] (0-based, ties get their mean rank). */
struct rank_ctx {
	const double *v;
};

static int cmp_by_value(const void *a, const void *b, void *arg)
{
	const double *v = ((const struct rank_ctx *)arg)->v;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;

	if (v[i] != v[j])
		return v[i] < v[j] ? -1 : 1;
	return i < j ? -1 : i > j;
}

static void ranks(const double *v, size_t n, double *rank, size_t *order)
{
	struct rank_ctx c = { v };
	size_t i, j;

	for (i = 0; i < n; i++)
		order[i] = i;
	qsort_r(order, n, sizeof *order, cmp_by_value, &c);
	for (i = 0; i < n; i = j) {
		for (j = i + 1; j < n && v[order[j]] == v[order[i]]; j++)
			;
		for (size_t k = i; k < j; k++)
			rank[order[k]] = (double)(i + j - 1) / 2;
	}
}

double kpar_rank_correlation(const double *x, const double *y, size_t n)
{
	double *rx, *ry, mx, sxy = 0, sxx = 0, syy = 0;
	size_t *order, i;

	if (n < 2)
		return 0;
	rx = kpar_xmalloc(n * sizeof *rx);
	ry = kpar_xmalloc(n * sizeof *ry);
	order = kpar_xmalloc(n * sizeof *order);
	ranks(x, n, rx, order);
	ranks(y, n, ry, order);
	mx = (double)(n - 1) / 2; /* the mean rank, ties or not */
	for (i = 0; i < n; i++) {
		sxy += (rx[i] - mx) * (ry[i] - mx);
		sxx += (rx[i] - mx) * (rx[i] - mx);
		syy += (ry[i] - mx) * (ry[i] - mx);
	}
	free(rx);
	free(ry);
	free(order);
	/* A constant side ranks nothing: no correlation. */
	return sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : 0;
}

/* Makespan of tests order[0..n) (durations actual) handed one at a time
 * to whichever of w workers is free first: list scheduling, what dynamic
 * dispatch does. */
static double list_makespan(const size_t *order, const double *actual, size_t n, size_t w)
{
	double *heap = kpar_xcalloc(w, sizeof *heap), end = 0;
	size_t r;

	for (r = 0; r < n; r++) {
		double t = heap[0] + actual[order[r]];
		size_t i = 0;

		if (t > end)
			end = t;
		/* the least loaded worker takes it: sift its new load down */
		for (;;) {
			size_t l = 2 * i + 1, m = i;

			if (l < w && heap[l] < (m == i ? t : heap[m]))
				m = l;
			if (l + 1 < w && heap[l + 1] < (m == i ? t : heap[m]))
				m = l + 1;
			if (m == i)
				break;
			heap[i] = heap[m];
			i = m;
		}
		heap[i] = t;
	}
	free(heap);
	return end;
}

struct judge_ctx {
	const double *guess;
	char *const *name;
};

static int cmp_guess(const void *a, const void *b, void *arg)
{
	const struct judge_ctx *c = arg;
	size_t i = *(const size_t *)a, j = *(const size_t *)b;

	if (c->guess && c->guess[i] != c->guess[j])
		return c->guess[i] > c->guess[j] ? -1 : 1;
	return strcmp(c->name[i], c->name[j]);
}

/* A signal's record on the known tests: the rank correlation of its
 * guesses with their durations, and the run they would have made,
 * dispatched in its order against name order (what kpar falls back to)
 * on `workers` workers.  Rank correlation alone is not enough: on git's
 * suite sizes correlate with durations (0.6) but the two slowest scripts
 * are among the smallest, and size order starts them last. */
static void judge(const double *guess, const double *actual, char *const *name, size_t np,
		  size_t workers, int unjudged, struct kpar_signal_score *out)
{
	size_t *ord = kpar_xmalloc((np ? np : 1) * sizeof *ord), i;
	struct judge_ctx c = { guess, name };
	double by_signal, by_name;

	out->tests = np;
	out->rho = kpar_rank_correlation(guess, actual, np);
	for (i = 0; i < np; i++)
		ord[i] = i;
	qsort_r(ord, np, sizeof *ord, cmp_guess, &c);
	by_signal = list_makespan(ord, actual, np, workers);
	c.guess = NULL;
	qsort_r(ord, np, sizeof *ord, cmp_guess, &c);
	by_name = list_makespan(ord, actual, np, workers);
	out->replay = by_name > 0 ? by_signal / by_name : 1;
	out->used = unjudged || (np >= KPAR_JUDGE_MIN && out->rho >= KPAR_RHO_MIN &&
				 by_signal <= by_name);
	free(ord);
}

/* The name signal's record: each known test's family median without
 * itself (what it would have been estimated if it were new) against its
 * own duration.  At most JUDGE_SAMPLE tests, evenly spread, so judging a
 * 100,000-test history stays cheap; a family of more than EXACT_LOO tests
 * uses its median with the test in, which one test barely moves. */
#define JUDGE_SAMPLE 4096
/* the replay's workers when the caller does not say */
#define JUDGE_WORKERS 8
/* where among the known durations an unknown test's default lies */
#define UNKNOWN_QUANTILE 0.9
#define EXACT_LOO 256

static void judge_family(const struct kpar_history_known *k, size_t global,
			 struct family_cache *c, size_t workers, int unjudged,
			 struct kpar_signal_score *out)
{
	size_t step = k->n > JUDGE_SAMPLE ? k->n / JUDGE_SAMPLE : 1, j, np = 0;
	double *guess = kpar_xmalloc((k->n / step + 1) * sizeof *guess);
	double *actual = kpar_xmalloc((k->n / step + 1) * sizeof *actual);
	char **name = kpar_xmalloc((k->n / step + 1) * sizeof *name);

	for (j = 0; j < k->n; j += step) {
		size_t len = 0, lo, hi;

		if (j > 0)
			len = common_prefix(k->ids[j], k->ids[j - 1]);
		if (j + 1 < k->n) {
			size_t l2 = common_prefix(k->ids[j], k->ids[j + 1]);

			if (l2 > len)
				len = l2;
		}
		len = cut_to_sep(k->ids[j], len);
		if (len <= global)
			continue;
		lo = 0;
		hi = j;
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (strncmp(k->ids[mid], k->ids[j], len) < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
		hi = prefix_end(k->ids, k->n, j, k->ids[j], len);
		if (hi - lo < 2)
			continue;
		if (hi - lo <= EXACT_LOO) {
			size_t m = 0, i;

			for (i = lo; i < hi; i++)
				if (i != j)
					c->scratch[m++] = k->seconds[i];
			guess[np] = kpar_history_median(c->scratch, m);
			c->valid = 0; /* scratch reused */
		} else {
			guess[np] = range_median(k, lo, hi, c);
		}
		name[np] = k->ids[j];
		actual[np++] = k->seconds[j];
	}
	judge(guess, actual, name, np, workers, unjudged, out);
	free(guess);
	free(actual);
	free(name);
}

/* The size signal's record and model: seconds = scale * size, scale the
 * median seconds per byte of the tests of this list with a known duration
 * (history; hints when none has history) and a file, used only if their
 * sizes rank like their durations.
 * Why linear, when file size predicts duration weakly (on CPython's suite
 * a log-log fit has slope ~0.3): a split loses when it starts a long test
 * late, not when it starts a short one early.  A fitted power law pulls
 * big files toward the median and underestimates exactly the tests to
 * start first; bench/split measured it worse (1.28x against 1.08x the
 * bound with 20% new tests at 8 workers). */
static double judge_size(const char *root, char *const *ids, size_t n, const double *seconds,
			 const enum kpar_est_source *src, size_t workers, int unjudged,
			 struct kpar_signal_score *out)
{
	char **name = kpar_xmalloc((n ? n : 1) * sizeof *name);
	double *sz = kpar_xmalloc((n ? n : 1) * sizeof *sz);
	double *sec = kpar_xmalloc((n ? n : 1) * sizeof *sec);
	double *ratio = kpar_xmalloc((n ? n : 1) * sizeof *ratio), scale = 0;
	size_t i, nk = 0;
	int pass;

	/* History if any test has some and a file, else the hints. */
	for (pass = 0; pass < 2 && nk == 0; pass++) {
		enum kpar_est_source want = pass == 0 ? KPAR_EST_HISTORY : KPAR_EST_HINT;

		for (i = 0; i < n; i++) {
			double s;

			if (src[i] != want)
				continue;
			s = test_size(root, ids[i]);
			if (s > 0) {
				name[nk] = ids[i];
				sz[nk] = s;
				sec[nk] = seconds[i];
				ratio[nk] = seconds[i] / s;
				nk++;
			}
		}
	}
	judge(sz, sec, name, nk, workers, unjudged && nk > 0, out);
	if (out->used)
		scale = kpar_history_median(ratio, nk);
	if (!(scale > 0 && isfinite(scale)))
		out->used = 0;
	free(name);
	free(sz);
	free(sec);
	free(ratio);
	return scale;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int cmp_id(const void *a, const void *b, void *ids)
{
	char *const *v = ids;

	return strcmp(v[*(const size_t *)a], v[*(const size_t *)b]);
}

int kpar_estimate_ex(sqlite3 *db, const struct kpar_estimate_opts *o, char *const *ids, size_t n,
		     double *seconds, enum kpar_est_source *sources,
		     struct kpar_estimate_report *report)
{
	struct kpar_history_known known = { NULL, NULL, 0 };
	struct hints hints = { NULL, 0 };
	struct family_cache cache = { 0, 0, 0, 0, NULL };
	struct kpar_estimate_report rep;
	enum kpar_est_source *src = kpar_xmalloc((n ? n : 1) * sizeof *src);
	size_t *pending = kpar_xmalloc((n ? n : 1) * sizeof *pending);
	double def, fallback, *tmp;
	size_t i, npending = 0, global = 0;
	int rc = 0, unjudged = o && (o->flags & KPAR_ESTIMATE_UNJUDGED);
	size_t workers = o && o->workers > 0 ? o->workers : JUDGE_WORKERS;

	memset(&rep, 0, sizeof rep);
	def = o && o->default_seconds > 0 && isfinite(o->default_seconds) ? o->default_seconds : 1.0;
	for (i = 0; i < n; i++) {
		src[i] = KPAR_EST_DEFAULT; /* not 0, which is HISTORY */
		if (!ids[i]) {
			rc = kpar_error_set(KPAR_EINVAL, "estimate: test %zu has no id", i);
			goto done;
		}
	}
	if (db && (rc = kpar_history_load(db, &known)) < 0)
		goto done;
	if (o && o->hints && (rc = hints_load(o->hints, &hints)) < 0)
		goto done;

	fallback = def;
	if (known.n > 0) {
		tmp = kpar_xmalloc(known.n * sizeof *tmp);
		memcpy(tmp, known.seconds, known.n * sizeof *tmp);
		/* A test nothing trustworthy speaks for is started early: a
		 * long test started late is what misses the bound, a short
		 * one started early costs nothing.  bench/split, 20% of
		 * CPython's modules new: 1.39x the bound at 8 workers with the
		 * median, 1.03x with the 90th percentile. */
		qsort(tmp, known.n, sizeof *tmp, cmp_double);
		fallback = tmp[(size_t)(UNKNOWN_QUANTILE * (double)(known.n - 1))];
		free(tmp);
		/* Sorted, so what all share is what the first and last share. */
		global = cut_to_sep(known.ids[0],
				    common_prefix(known.ids[0], known.ids[known.n - 1]));
		cache.scratch = kpar_xmalloc(known.n * sizeof *cache.scratch);
	}

	/* Own history, then hints; the rest wait for the other signals. */
	for (i = 0; i < n; i++) {
		size_t pos = lower_bound(known.ids, known.n, ids[i]);
		size_t h;

		if (pos < known.n && strcmp(known.ids[pos], ids[i]) == 0) {
			seconds[i] = known.seconds[pos];
			src[i] = KPAR_EST_HISTORY;
			rep.history++;
			continue;
		}
		for (h = 0; h < hints.n; h++)
			if (fnmatch(hints.v[h].glob, ids[i], 0) == 0)
				break;
		if (h < hints.n) {
			seconds[i] = hints.v[h].seconds;
			src[i] = KPAR_EST_HINT;
			rep.hinted++;
			continue;
		}
		pending[npending++] = i;
	}

	if (npending > 0 && known.n > 0) {
		judge_family(&known, global, &cache, workers, unjudged, &rep.name);
		cache.valid = 0;
	}
	if (rep.name.used) {
		size_t keep = 0;

		/* Sorted, so neighbours share families and the median cache hits. */
		qsort_r(pending, npending, sizeof *pending, cmp_id, (void *)ids);
		for (i = 0; i < npending; i++) {
			size_t t = pending[i];

			if (family_estimate(&known, global, ids[t], &cache, &seconds[t]) == 0) {
				src[t] = KPAR_EST_NAME;
				rep.named++;
			} else {
				pending[keep++] = t;
			}
		}
		npending = keep;
	}

	if (npending > 0 && o && o->root) {
		double scale = judge_size(o->root, ids, n, seconds, src, workers, unjudged, &rep.size);

		if (unjudged && !rep.size.used) {
			/* the old first run: sizes in units of the median one */
			double *psz = kpar_xmalloc(npending * sizeof *psz);
			size_t np = 0;

			for (i = 0; i < npending; i++) {
				double sz = test_size(o->root, ids[pending[i]]);

				if (sz > 0)
					psz[np++] = sz;
			}
			if (np > 0) {
				scale = fallback / kpar_history_median(psz, np);
				rep.size.used = 1;
			}
			free(psz);
		}
		if (rep.size.used) {
			size_t keep = 0;

			for (i = 0; i < npending; i++) {
				size_t t = pending[i];
				double sz = test_size(o->root, ids[t]);

				if (sz > 0) {
					seconds[t] = scale * sz;
					src[t] = KPAR_EST_SIZE;
					rep.sized++;
				} else {
					pending[keep++] = t;
				}
			}
			npending = keep;
		}
	}
	for (i = 0; i < npending; i++) {
		seconds[pending[i]] = fallback;
		src[pending[i]] = KPAR_EST_DEFAULT;
	}
	rep.defaulted = npending;
	if (sources)
		memcpy(sources, src, n * sizeof *src);
	if (report)
		*report = rep;
done:
	free(src);
	free(pending);
	free(cache.scratch);
	hints_free(&hints);
	kpar_history_known_free(&known);
	return rc;
}

int kpar_estimate(sqlite3 *db, const struct kpar_estimate_opts *o,
		  char *const *ids, size_t n, double *seconds, enum kpar_est_source *sources)
{
	return kpar_estimate_ex(db, o, ids, n, seconds, sources, NULL);
}
