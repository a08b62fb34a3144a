/* estimate.c - how long will each test take?
 *
 * A test with history gets its own robust estimate (history.c).  A test
 * without one gets the best of the other signals, in this order:
 *   1. a user hint: the first line of the hints file whose glob matches;
 *   2. its name family: the median of known tests sharing the longest
 *      prefix with it, cut back to a separator ("tests/net/", "test_io_"),
 *      provided that prefix is narrower than what all known tests share
 *      (otherwise the "family" is the whole suite, i.e. signal 4);
 *   3. the size of its file (or of all files in its directory) under root,
 *      through a power law learnt from the tests that have history and a
 *      file (see size_model_fit).  On a first run nothing is known, so
 *      sizes are scaled to make a test of median size take the default:
 *      absolute values are then meaningless but their proportions, which
 *      are all a split needs, are the file sizes';
 *   4. the median of all known tests, else default_seconds.
 * The first run is where splitters lose most (name- or size-blind splits
 * land 1.3-2x above the bound), so every signal counts.
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

/* seconds = scale * size / size0.  scale / size0 is the median seconds per
 * byte of the tests in this list that have history and a file; with none
 * (a first run), size0 is the median size and scale the fallback, so a test
 * of median size gets the default: only proportions matter then.
 * Why linear, when file size predicts duration weakly (on CPython's suite
 * a log-log fit has slope ~0.3): a split loses when it starts a long test
 * late, not when it starts a short one early.  A fitted power law pulls
 * big files toward the median and underestimates exactly the tests to
 * start first; bench/split measured it worse (1.28x against 1.08x the
 * bound with 20% new tests at 8 workers). */
struct size_model {
	double scale, size0;
};

static int size_model_fit(struct size_model *m, const char *root, char *const *ids, size_t n,
			  const double *seconds, const enum kpar_est_source *src, double fallback,
			  double *pending_sizes, size_t np)
{
	double *ratio = kpar_xmalloc(n * sizeof *ratio);
	size_t i, nr = 0;

	for (i = 0; i < n; i++) {
		double sz;

		if (src[i] != KPAR_EST_HISTORY)
			continue;
		sz = test_size(root, ids[i]);
		if (sz > 0)
			ratio[nr++] = seconds[i] / sz;
	}
	if (nr > 0) {
		m->scale = kpar_history_median(ratio, nr);
		m->size0 = 1.0;
	} else {
		m->scale = fallback;
		m->size0 = kpar_history_median(pending_sizes, np);
	}
	free(ratio);
	return m->scale > 0 && isfinite(m->scale) && m->size0 > 0 ? 0 : -1;
}

static int cmp_id(const void *a, const void *b, void *ids)
{
	char *const *v = ids;

	return strcmp(v[*(const size_t *)a], v[*(const size_t *)b]);
}

int kpar_estimate(sqlite3 *db, const struct kpar_estimate_opts *o,
		  char *const *ids, size_t n, double *seconds, enum kpar_est_source *sources)
{
	struct kpar_history_known known = { NULL, NULL, 0 };
	struct hints hints = { NULL, 0 };
	struct family_cache cache = { 0, 0, 0, 0, NULL };
	enum kpar_est_source *src = kpar_xmalloc((n ? n : 1) * sizeof *src);
	size_t *pending = kpar_xmalloc((n ? n : 1) * sizeof *pending);
	double *sizes = NULL, def, fallback, *tmp;
	size_t i, npending = 0, global = 0;
	int rc = 0;

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
		fallback = kpar_history_median(tmp, known.n);
		free(tmp);
		/* Sorted, so what all share is what the first and last share. */
		global = cut_to_sep(known.ids[0],
				    common_prefix(known.ids[0], known.ids[known.n - 1]));
		cache.scratch = kpar_xmalloc(known.n * sizeof *cache.scratch);
	}

	/* Own history, then hints; the rest wait for the family pass. */
	for (i = 0; i < n; i++) {
		size_t pos = lower_bound(known.ids, known.n, ids[i]);
		size_t h;

		if (pos < known.n && strcmp(known.ids[pos], ids[i]) == 0) {
			seconds[i] = known.seconds[pos];
			src[i] = KPAR_EST_HISTORY;
			continue;
		}
		for (h = 0; h < hints.n; h++)
			if (fnmatch(hints.v[h].glob, ids[i], 0) == 0)
				break;
		if (h < hints.n) {
			seconds[i] = hints.v[h].seconds;
			src[i] = KPAR_EST_HINT;
			continue;
		}
		pending[npending++] = i;
	}

	/* Sorted, so neighbours share families and the median cache hits. */
	qsort_r(pending, npending, sizeof *pending, cmp_id, (void *)ids);
	{
		size_t keep = 0;

		for (i = 0; i < npending; i++) {
			size_t t = pending[i];

			if (family_estimate(&known, global, ids[t], &cache, &seconds[t]) == 0)
				src[t] = KPAR_EST_NAME;
			else
				pending[keep++] = t;
		}
		npending = keep;
	}

	if (npending > 0 && o && o->root) {
		struct size_model m;
		double *psz = kpar_xmalloc(npending * sizeof *psz);
		size_t np = 0, keep = 0;

		sizes = kpar_xcalloc(n, sizeof *sizes);
		for (i = 0; i < npending; i++) {
			sizes[pending[i]] = test_size(o->root, ids[pending[i]]);
			if (sizes[pending[i]] > 0)
				psz[np++] = sizes[pending[i]];
		}
		if (np > 0 && size_model_fit(&m, o->root, ids, n, seconds, src, fallback, psz, np) == 0) {
			for (i = 0; i < npending; i++) {
				size_t t = pending[i];

				if (sizes[t] > 0) {
					seconds[t] = m.scale * sizes[t] / m.size0;
					src[t] = KPAR_EST_SIZE;
				} else {
					pending[keep++] = t;
				}
			}
			npending = keep;
		}
		free(psz);
	}
	for (i = 0; i < npending; i++) {
		seconds[pending[i]] = fallback;
		src[pending[i]] = KPAR_EST_DEFAULT;
	}
	if (sources)
		memcpy(sources, src, n * sizeof *src);
done:
	free(src);
	free(pending);
	free(sizes);
	free(cache.scratch);
	hints_free(&hints);
	kpar_history_known_free(&known);
	return rc;
}
