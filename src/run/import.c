/* import.c - durations from JUnit XML and prove's state into the history
 * (see import.h for the formats and the name-mapping rules). */
#include "config.h"

#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/fs.h"
#include "base/yaml_load.h"
#include "run/import.h"
#include "run/junit.h"
#include "run/split.h"
#include "run/state.h"
#include "run/testlist.h"

/* One duration as a file gives it. */
struct rec {
	char *classname, *name, *file;  /* classname, file may be NULL */
	double seconds;
	enum kpar_status status;
	size_t seq;
	long id;                         /* index in the test list, or a MAP_ code */
};

struct recs {
	struct rec *v;
	size_t n, cap, untimed;
};

static void recs_free(struct recs *r)
{
	size_t i;

	for (i = 0; i < r->n; i++) {
		free(r->v[i].classname);
		free(r->v[i].name);
		free(r->v[i].file);
	}
	free(r->v);
	memset(r, 0, sizeof *r);
}

static void recs_push(struct recs *r, const char *classname, const char *name, const char *file,
		      double seconds, enum kpar_status status)
{
	struct rec *x;

	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 64;
		r->v = kpar_xrealloc(r->v, r->cap * sizeof *r->v);
	}
	x = &r->v[r->n];
	x->classname = classname ? kpar_xstrdup(classname) : NULL;
	x->name = kpar_xstrdup(name);
	x->file = file ? kpar_xstrdup(file) : NULL;
	x->seconds = seconds;
	x->status = status;
	x->seq = r->n++;
	x->id = -1;
}

/* ---- reading ---------------------------------------------------------- */

static int on_case(void *ud, const struct kpar_junit_case *c)
{
	struct recs *r = ud;

	if (!c->has_time) {
		r->untimed++;
		return 0;
	}
	recs_push(r, c->classname, c->name, c->file, c->seconds, c->status);
	return 0;
}

static const char *scalar(yaml_document_t *d, yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static yaml_node_t *map_get(yaml_document_t *d, yaml_node_t *map, const char *key)
{
	yaml_node_pair_t *p;

	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		const char *k = scalar(d, yaml_document_get_node(d, p->key));
		if (k && strcmp(k, key) == 0)
			return yaml_document_get_node(d, p->value);
	}
	return NULL;
}

/* prove --state=save: tests: {NAME: {elapsed: S, last_result: N, ...}}. */
static int read_prove(const char *path, struct recs *out)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	yaml_node_t *root, *tests;
	yaml_node_pair_t *p;
	FILE *f;
	int rc = 0;

	/* JUnit XML needs no libyaml: only a prove state file loads it */
	if ((rc = kpar_yaml_load()) < 0)
		return kpar_error_prefix(rc, "prove state file '%s'", path);
	if (!(f = fopen(path, "rb")))
		return kpar_error_errno(KPAR_EIO, "cannot open '%s'", path);
	if (!yaml_parser_initialize(&parser))
		abort();
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &doc)) {
		rc = kpar_error_set(KPAR_EINVAL, "'%s' is neither JUnit XML nor a prove state file: "
				    "line %lu: %s", path, (unsigned long)parser.problem_mark.line + 1,
				    parser.problem ? parser.problem : "YAML error");
		yaml_parser_delete(&parser);
		fclose(f);
		return rc;
	}
	root = yaml_document_get_root_node(&doc);
	tests = map_get(&doc, root, "tests");
	if (!tests || tests->type != YAML_MAPPING_NODE) {
		rc = kpar_error_set(KPAR_EINVAL, "'%s' is neither JUnit XML nor a prove state file "
				    "(no 'tests' mapping)", path);
		goto done;
	}
	for (p = tests->data.mapping.pairs.start; p < tests->data.mapping.pairs.top; p++) {
		const char *name = scalar(&doc, yaml_document_get_node(&doc, p->key));
		yaml_node_t *t = yaml_document_get_node(&doc, p->value);
		const char *el = scalar(&doc, map_get(&doc, t, "elapsed"));
		const char *res = scalar(&doc, map_get(&doc, t, "last_result"));
		char *end;
		double s;

		if (!name || !*name)
			continue;
		s = el ? strtod(el, &end) : -1;
		if (!el || end == el || *end || !(s >= 0) || s > 1e9) {
			out->untimed++;
			continue;
		}
		recs_push(out, NULL, name, NULL, s,
			  res && strcmp(res, "0") != 0 ? KPAR_FAIL : KPAR_PASS);
	}
done:
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	fclose(f);
	return rc;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* automake's test-driver writes a .trs (results) and a .log (the output)
 * per test and test-suite.log: no durations anywhere. */
static int is_automake(const char *path)
{
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;

	if (ends_with(path, ".trs") || strcmp(base, "test-suite.log") == 0)
		return 1;
	if (ends_with(path, ".log")) {
		char *trs = kpar_xstrdup(path);
		int yes;
		strcpy(trs + strlen(trs) - 4, ".trs");
		yes = kpar_fs_exists(trs);
		free(trs);
		return yes;
	}
	return 0;
}

/* Reads one file, telling the format by its content (and automake's by
 * its names). */
static int read_file(const char *path, struct recs *out, const char **format)
{
	unsigned char head[4] = { 0 };
	size_t n, i = 0;
	FILE *f;
	int rc;

	if (!(f = fopen(path, "rb")))
		return kpar_error_errno(errno == ENOENT ? KPAR_ENOTFOUND : KPAR_EIO,
					"cannot open '%s'", path);
	n = fread(head, 1, sizeof head, f);
	/* a UTF-8 byte order mark, then XML starts with '<' */
	if (n >= 3 && head[0] == 0xef && head[1] == 0xbb && head[2] == 0xbf)
		i = 3;
	if (i == 0 && n > 0 && (head[0] == ' ' || head[0] == '\t' || head[0] == '\r' || head[0] == '\n')) {
		int c;
		while ((c = getc(f)) == ' ' || c == '\t' || c == '\r' || c == '\n')
			;
		head[0] = (unsigned char)c;
		n = c == EOF ? 0 : 1;
	}
	fclose(f);
	if (is_automake(path)) {
		*format = "automake";
		return 0;
	}
	if (n > i && head[i] == '<') {
		*format = "junit";
		rc = kpar_junit_each(path, on_case, out);
		return rc;
	}
	if (n == 0)
		return kpar_error_set(KPAR_EINVAL, "'%s' is empty: neither JUnit XML nor a prove state "
				      "file", path);
	*format = "prove";
	return read_prove(path, out);
}

/* ---- mapping ---------------------------------------------------------- */

#define MAP_NONE (-1L)
#define MAP_AMBIGUOUS (-2L)

struct key {
	char *key;
	long id;
};

struct index {
	struct key *v;
	size_t n;
};

static int cmp_key(const void *a, const void *b)
{
	const struct key *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	return c ? c : (x->id > y->id) - (x->id < y->id);
}

/* s without the extension of its last component ("a/b.py" -> "a/b"). */
static char *stem(const char *s)
{
	const char *slash = strrchr(s, '/'), *base = slash ? slash + 1 : s;
	const char *dot = strrchr(base, '.');

	return dot && dot > base && dot[1] ? kpar_xstrndup(s, (size_t)(dot - s)) : kpar_xstrdup(s);
}

static const char *basename_of(const char *s)
{
	const char *slash = strrchr(s, '/');
	return slash ? slash + 1 : s;
}

static void index_build(struct index *ix, const struct kpar_strv *ids, int base)
{
	size_t i, o = 0;

	ix->v = kpar_xcalloc(ids->n ? ids->n : 1, sizeof *ix->v);
	for (i = 0; i < ids->n; i++) {
		char *st = stem(ids->v[i]);
		ix->v[i].key = base ? kpar_xstrdup(basename_of(st)) : st;
		ix->v[i].id = (long)i;
		if (base)
			free(st);
	}
	qsort(ix->v, ids->n, sizeof *ix->v, cmp_key);
	/* one entry per key; a key several ids share is ambiguous */
	for (i = 0; i < ids->n; i++) {
		if (o > 0 && strcmp(ix->v[o - 1].key, ix->v[i].key) == 0) {
			ix->v[o - 1].id = MAP_AMBIGUOUS;
			free(ix->v[i].key);
			continue;
		}
		ix->v[o++] = ix->v[i];
	}
	ix->n = o;
}

static void index_free(struct index *ix)
{
	size_t i;

	for (i = 0; i < ix->n; i++)
		free(ix->v[i].key);
	free(ix->v);
}

static long index_find(const struct index *ix, const char *key)
{
	size_t lo = 0, hi = ix->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(key, ix->v[mid].key);
		if (c == 0)
			return ix->v[mid].id;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return MAP_NONE;
}

static long exact_find(const struct kpar_strv *ids, const char *key)
{
	size_t lo = 0, hi = ids->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(key, ids->v[mid]);
		if (c == 0)
			return (long)mid;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return MAP_NONE;
}

struct mapper {
	const struct kpar_strv *ids;   /* sorted bytewise */
	struct index stems, bases;
};

/* Candidates of one rule, strongest first; *n set. Owned strings. */
static void candidates(const struct rec *r, int rule, struct kpar_strv *out)
{
	char *s;

	if (rule == 0) {
		if (r->classname) {
			s = kpar_xasprintf("%s.%s", r->classname, r->name);
			kpar_strv_push(out, s);
			free(s);
		}
		kpar_strv_push(out, r->name);
		if (r->file)
			kpar_strv_push(out, r->file);
		return;
	}
	if (r->file) {
		s = stem(r->file);
		kpar_strv_push(out, rule == 1 ? s : basename_of(s));
		free(s);
	}
	s = stem(r->name);
	kpar_strv_push(out, rule == 1 ? s : basename_of(s));
	free(s);
	if (r->classname) {
		char *c = kpar_xstrdup(r->classname), *p;

		if (rule == 1) {
			/* "a.b.C" as a path: "a/b/C", then "a/b", then "a" */
			for (p = c; *p; p++)
				if (*p == '.')
					*p = '/';
			for (;;) {
				kpar_strv_push(out, c);
				if (!(p = strrchr(c, '/')))
					break;
				*p = '\0';
			}
		} else {
			/* its components, last first */
			while ((p = strrchr(c, '.')) != NULL) {
				if (p[1])
					kpar_strv_push(out, p + 1);
				*p = '\0';
			}
			if (*c)
				kpar_strv_push(out, c);
		}
		free(c);
	}
}

static long map_one(const struct mapper *m, const struct rec *r)
{
	int rule;

	for (rule = 0; rule < 3; rule++) {
		struct kpar_strv c = KPAR_STRV_INIT;
		long id = MAP_NONE;
		size_t i;

		candidates(r, rule, &c);
		for (i = 0; i < c.n && id == MAP_NONE; i++)
			id = rule == 0 ? exact_find(m->ids, c.v[i])
				       : index_find(rule == 1 ? &m->stems : &m->bases, c.v[i]);
		kpar_strv_free(&c);
		if (id != MAP_NONE)
			return id;
	}
	return MAP_NONE;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_opt(const char *a, const char *b)
{
	if (!a || !b)
		return (a != NULL) - (b != NULL);
	return strcmp(a, b);
}

static int cmp_rec(const void *a, const void *b)
{
	const struct rec *x = a, *y = b;
	int c;

	if (x->id != y->id)
		return x->id < y->id ? -1 : 1;
	if ((c = cmp_opt(x->classname, y->classname)) || (c = strcmp(x->name, y->name)) ||
	    (c = cmp_opt(x->file, y->file)))
		return c;
	return (x->seq > y->seq) - (x->seq < y->seq);
}

static int same_name(const struct rec *x, const struct rec *y)
{
	return cmp_opt(x->classname, y->classname) == 0 && strcmp(x->name, y->name) == 0 &&
	       cmp_opt(x->file, y->file) == 0;
}

/* ---- storing ---------------------------------------------------------- */

static int db_error(sqlite3 *db, const char *what)
{
	return kpar_error_set(KPAR_EDB, "durations history: %s: %s", what, sqlite3_errmsg(db));
}

static int import_one(sqlite3 *db, const struct mapper *m, const char *path,
		      struct kpar_import_stats *st)
{
	struct recs r = { NULL, 0, 0, 0 };
	struct kpar_history_sample *samples = NULL;
	char digest[KPAR_DIGEST_STR];
	const char *format = NULL;
	size_t i, ns = 0;
	double now = kpar_state_now();
	sqlite3_stmt *ins = NULL;
	char *real = NULL;
	int rc;

	memset(st, 0, sizeof *st);
	if ((rc = kpar_digest_file(path, digest, NULL)) < 0 || (rc = read_file(path, &r, &format)) < 0)
		goto done;
	st->format = format;
	st->read = r.n;
	st->untimed = r.untimed;
	for (i = 0; i < r.n; i++) {
		r.v[i].id = map_one(m, &r.v[i]);
		if (r.v[i].id >= 0)
			st->matched++;
		else if (r.v[i].id == MAP_AMBIGUOUS)
			st->ambiguous++;
		else
			st->unmatched++;
	}
	if (r.n)
		qsort(r.v, r.n, sizeof *r.v, cmp_rec);
	samples = kpar_xcalloc(r.n ? r.n : 1, sizeof *samples);
	for (i = 0; i < r.n;) {
		size_t j = i;
		double sum = 0;
		int any_fail = 0, all_skip = 1;

		if (r.v[i].id < 0) {
			i++;
			continue;
		}
		for (; j < r.n && r.v[j].id == r.v[i].id; j++) {
			/* a name given again (a retry, a rerun appended) counts once: its last */
			if (j + 1 < r.n && r.v[j + 1].id == r.v[j].id && same_name(&r.v[j], &r.v[j + 1]))
				continue;
			sum += r.v[j].seconds;
			any_fail |= r.v[j].status == KPAR_FAIL || r.v[j].status == KPAR_ERROR;
			all_skip &= r.v[j].status == KPAR_SKIP;
		}
		samples[ns].test = m->ids->v[r.v[i].id];
		samples[ns].seconds = sum;
		samples[ns].status = all_skip ? "skip" : any_fail ? "fail" : "pass";
		samples[ns].at = now;
		if (!all_skip)
			st->tests++;
		ns++;
		i = j;
	}
	/* Samples are tagged with the file's real path: a report a CI
	 * overwrites replaces what it gave before, reports kept side by side
	 * (one per run) are samples of their own. */
	if (!(real = realpath(path, NULL)))
		real = kpar_xstrdup(path);
	if ((rc = kpar_history_import(db, samples, ns, real, &st->stored)) < 0)
		goto done;
	if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO history_imports(digest, path, at, stored)"
			       " VALUES (?1, ?2, ?3, ?4)", -1, &ins, NULL) != SQLITE_OK) {
		rc = db_error(db, "cannot record the import");
		goto done;
	}
	sqlite3_bind_text(ins, 1, digest, -1, SQLITE_STATIC);
	sqlite3_bind_text(ins, 2, real, -1, SQLITE_STATIC);
	sqlite3_bind_double(ins, 3, now);
	sqlite3_bind_int64(ins, 4, (sqlite3_int64)st->stored);
	if (sqlite3_step(ins) != SQLITE_DONE)
		rc = db_error(db, "cannot record the import");
done:
	sqlite3_finalize(ins);
	free(real);
	free(samples);
	recs_free(&r);
	return rc;
}

int kpar_import_files(sqlite3 *db, char *const *paths, size_t npaths, const struct kpar_strv *ids,
		      struct kpar_import_stats *stats)
{
	struct kpar_strv sorted = KPAR_STRV_INIT;
	struct mapper m;
	size_t i;
	int rc = 0;

	/* The list is sorted bytewise already (tests.list); sort a copy
	 * anyway, the lookup depends on it. */
	for (i = 0; i < ids->n; i++)
		kpar_strv_push(&sorted, ids->v[i]);
	if (sorted.n)
		qsort(sorted.v, sorted.n, sizeof *sorted.v, cmp_str);
	m.ids = &sorted;
	index_build(&m.stems, &sorted, 0);
	index_build(&m.bases, &sorted, 1);
	if (sqlite3_exec(db, "SAVEPOINT kpar_import", NULL, NULL, NULL) != SQLITE_OK) {
		rc = db_error(db, "cannot start a transaction");
		goto done;
	}
	for (i = 0; i < npaths && rc == 0; i++) {
		struct kpar_import_stats one;

		rc = import_one(db, &m, paths[i], &one);
		if (stats)
			stats[i] = one;
	}
	if (rc < 0) {
		sqlite3_exec(db, "ROLLBACK TO kpar_import; RELEASE kpar_import", NULL, NULL, NULL);
		kpar_error_prefix(rc, "import");
	} else if (sqlite3_exec(db, "RELEASE kpar_import", NULL, NULL, NULL) != SQLITE_OK) {
		rc = db_error(db, "cannot commit the import");
	}
done:
	index_free(&m.stems);
	index_free(&m.bases);
	kpar_strv_free(&sorted);
	return rc;
}

int kpar_import_state(sqlite3 *db, struct kpar_buf *out)
{
	sqlite3_stmt *st = NULL;
	struct kpar_buf all = KPAR_BUF_INIT;
	int rc;

	/* a database opened read-only, made before imports existed, has no
	 * such table: it has no imports */
	if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type = 'table'"
			       " AND name = 'history_imports'", -1, &st, NULL) != SQLITE_OK)
		return db_error(db, "cannot read the imports");
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	st = NULL;
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW)
		return db_error(db, "cannot read the imports");
	if (sqlite3_prepare_v2(db, "SELECT digest FROM history_imports ORDER BY digest", -1, &st,
			       NULL) != SQLITE_OK)
		return db_error(db, "cannot read the imports");
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		kpar_buf_printf(&all, "%s\n", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		kpar_buf_free(&all);
		return db_error(db, "cannot read the imports");
	}
	if (all.len) {
		char d[KPAR_DIGEST_STR];
		kpar_digest_str(all.data, all.len, d);
		kpar_buf_puts(out, d);
	}
	kpar_buf_free(&all);
	return 0;
}

int kpar_import_expand(const char *words, const char *root, struct kpar_strv *out)
{
	struct kpar_strv w = KPAR_STRV_INIT;
	size_t i;
	int rc;

	if ((rc = kpar_testlist_from_words(words, &w)) < 0)
		goto done;
	for (i = 0; i < w.n; i++) {
		char *p = w.v[i][0] == '/' || !root ? kpar_xstrdup(w.v[i]) : kpar_fs_join(root, w.v[i]);

		if (strpbrk(w.v[i], "*?[")) {
			glob_t g;
			size_t k;
			int e = glob(p, 0, NULL, &g);

			if (e == 0)
				for (k = 0; k < g.gl_pathc; k++)
					kpar_strv_push(out, g.gl_pathv[k]);
			globfree(&g);
			if (e != 0 && e != GLOB_NOMATCH) {
				free(p);
				rc = kpar_error_set(KPAR_EIO, "KPAR_HISTORY_FROM: cannot expand '%s'", w.v[i]);
				goto done;
			}
		} else if (!kpar_fs_exists(p)) {
			free(p);
			rc = kpar_error_set(KPAR_ENOTFOUND, "KPAR_HISTORY_FROM: '%s' does not exist "
					    "(a glob pattern may match nothing)", w.v[i]);
			goto done;
		} else {
			kpar_strv_push(out, p);
		}
		free(p);
	}
	kpar_strv_sort(out);
	kpar_strv_uniq(out);
done:
	kpar_strv_free(&w);
	return rc;
}

int kpar_import_if_new(sqlite3 *db, const struct kpar_strv *paths, const struct kpar_strv *digests,
		       const struct kpar_strv *ids, size_t *imported)
{
	struct kpar_strv fresh = KPAR_STRV_INIT;
	sqlite3_stmt *st = NULL;
	size_t i, measured;
	int rc;

	*imported = 0;
	if (paths->n == 0)
		return 0;
	if ((rc = kpar_history_measured(db, ids->v, ids->n, &measured)) < 0)
		return rc;
	/* every test has durations of its own: nothing an import could add */
	if (measured == ids->n)
		return 0;
	if (sqlite3_prepare_v2(db, "SELECT 1 FROM history_imports WHERE digest = ?1", -1, &st,
			       NULL) != SQLITE_OK)
		return db_error(db, "cannot read the imports");
	for (i = 0; i < paths->n && i < digests->n; i++) {
		sqlite3_bind_text(st, 1, digests->v[i], -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc == SQLITE_DONE)
			kpar_strv_push(&fresh, paths->v[i]);
		else if (rc != SQLITE_ROW) {
			rc = db_error(db, "cannot read the imports");
			goto done;
		}
	}
	rc = 0;
	if (fresh.n && (rc = kpar_import_files(db, fresh.v, fresh.n, ids, NULL)) == 0)
		*imported = fresh.n;
done:
	sqlite3_finalize(st);
	kpar_strv_free(&fresh);
	if (rc < 0)
		kpar_error_prefix(rc, "KPAR_HISTORY_FROM");
	return rc;
}
