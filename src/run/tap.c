/* tap.c - a TAP reader that judges a script as prove does (see tap.h).
 *
 * The grammar and the state machine follow Test::Harness 3.44's
 * TAP::Parser::Grammar and TAP::Parser (_make_state_table, _finish): each
 * line is matched against the same patterns, written out here as scanners
 * over (pointer, length) so output holding NUL bytes or invalid UTF-8 is
 * read like any other.  The messages are prove's own words, so a user can
 * compare the two.
 */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "run/tap.h"

#define MAX_ERRORS_SHOWN 5
#define MAX_FAILED_SHOWN 10

/* Where the plan stands, as TAP::Parser's states name it. */
enum state {
	ST_INIT,            /* nothing but comments yet */
	ST_PLAN,            /* after the version line */
	ST_PLANNED,         /* plan first; no test yet */
	ST_PLANNED_AFTER,   /* plan first; tests after it */
	ST_UNPLANNED,       /* tests, no plan yet */
	ST_GOT_PLAN         /* tests, then the plan: it must be the last */
};

struct kpar_tap {
	struct kpar_buf line;
	int line_full;            /* the line reached KPAR_TAP_LINE_MAX: drop the rest */
	struct kpar_buf not_line; /* a line that is only "not", joined to the next */
	int has_not;
	enum state state;
	int version;
	long planned;             /* -1: none */
	int skip_all;
	char *skip_reason;
	long *todo;               /* version 12 "1..N todo 3 4" */
	size_t ntodo;
	long run;
	long failed;
	struct kpar_buf failed_nums;
	size_t nfailed_shown;
	struct kpar_buf errors;
	size_t nerrors;
	int strict;
	int bailed;
	char *bail_reason;
	int stopped;              /* a broken YAML block ended the reading */
	int in_yaml;
	size_t yaml_pad;
	long attach;              /* subtest index diagnostics go to; -1 none */
	size_t diag_total;
	struct kpar_subtest *subs;
	size_t nsubs, cap;
};

static int is_space(char c)
{
	/* Perl's \s */
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int is_word(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int starts_ci(const char *s, size_t len, const char *word)
{
	size_t n = strlen(word), i;

	if (len < n)
		return 0;
	for (i = 0; i < n; i++) {
		char c = s[i];
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 32);
		if (c != word[i])
			return 0;
	}
	return 1;
}

static size_t skip_space(const char *s, size_t len, size_t i)
{
	while (i < len && is_space(s[i]))
		i++;
	return i;
}

/* Digits at s[*i..] as a number, saturating at 2^53 - 1 (what a JSON
 * number carries exactly); returns how many digits there were. */
static size_t digits(const char *s, size_t len, size_t *i, long *out)
{
	const long max = 9007199254740991L;
	size_t start = *i;
	long v = 0;

	while (*i < len && is_digit(s[*i])) {
		int d = s[*i] - '0';
		v = v > (max - d) / 10 ? max : v * 10 + d;
		(*i)++;
	}
	*out = v;
	return *i - start;
}

/* s cut of surrounding blanks and to KPAR_TAP_TEXT_MAX bytes (on a UTF-8
 * boundary when the text is UTF-8), with TAP 14's escapes "\#" and "\\"
 * undone when unescape is set. */
static char *text(const char *s, size_t len, int unescape)
{
	struct kpar_buf b = KPAR_BUF_INIT;
	size_t i = 0;

	while (i < len && is_space(s[i]))
		i++;
	while (len > i && is_space(s[len - 1]))
		len--;
	for (; i < len && b.len < KPAR_TAP_TEXT_MAX; i++) {
		if (unescape && s[i] == '\\' && i + 1 < len && (s[i + 1] == '#' || s[i + 1] == '\\'))
			i++;
		kpar_buf_putc(&b, s[i]);
	}
	if (b.len >= KPAR_TAP_TEXT_MAX) {
		while (b.len > 0 && ((unsigned char)b.data[b.len - 1] & 0xc0) == 0x80)
			b.len--;
		if (b.len > 0 && ((unsigned char)b.data[b.len - 1] & 0xc0) == 0xc0)
			b.len--;
		b.data[b.len] = '\0';
	}
	if (!b.data)
		return kpar_xstrdup("");
	return kpar_buf_detach(&b, NULL);
}

static void add_error(struct kpar_tap *p, const char *msg)
{
	if (p->nerrors++ < MAX_ERRORS_SHOWN) {
		if (p->errors.len)
			kpar_buf_puts(&p->errors, "; ");
		kpar_buf_puts(&p->errors, msg);
	}
}

/* Appends a line to the diagnostics of the subtest being followed. */
static void add_diag(struct kpar_tap *p, const char *s, size_t len)
{
	struct kpar_subtest *t;
	size_t have;

	if (p->attach < 0)
		return;
	t = &p->subs[p->attach];
	have = t->diag ? strlen(t->diag) : 0;
	if (have + len + 1 > KPAR_TAP_DIAG_MAX || p->diag_total + len + 1 > KPAR_TAP_DIAG_TOTAL)
		return;
	/* A NUL inside the line would end the string early: keep the text
	 * before it, as the rest of the line cannot be shown anyway. */
	{
		const char *nul = memchr(s, '\0', len);
		if (nul)
			len = (size_t)(nul - s);
	}
	t->diag = kpar_xrealloc(t->diag, have + len + 2);
	memcpy(t->diag + have, s, len);
	t->diag[have + len] = '\n';
	t->diag[have + len + 1] = '\0';
	p->diag_total += len + 1;
}

struct kpar_tap *kpar_tap_new(void)
{
	struct kpar_tap *p = kpar_xcalloc(1, sizeof *p);

	p->state = ST_INIT;
	p->version = 12;
	p->planned = -1;
	p->attach = -1;
	return p;
}

/* ---- tokens ------------------------------------------------------------ */

/* "TAP version N": returns 1 and sets *ver. */
static int match_version(const char *s, size_t len, long *ver)
{
	size_t i;

	if (!starts_ci(s, len, "TAP") || len < 4 || !is_space(s[3]))
		return 0;
	i = skip_space(s, len, 3);
	if (!starts_ci(s + i, len - i, "VERSION"))
		return 0;
	i += 7;
	if (i >= len || !is_space(s[i]))
		return 0;
	i = skip_space(s, len, i);
	if (!digits(s, len, &i, ver))
		return 0;
	return skip_space(s, len, i) == len;
}

static void on_version(struct kpar_tap *p, long ver)
{
	char msg[160];

	if (p->state != ST_INIT) {
		add_error(p, "If TAP version is present it must be the first line of output");
		return;
	}
	p->state = ST_PLAN;
	if (ver <= 12) {
		snprintf(msg, sizeof msg, "Explicit TAP version must be at least 13. "
			 "Got version %ld", ver);
		add_error(p, msg);
		ver = 12;
	} else if (ver > 14) {
		snprintf(msg, sizeof msg, "TAP specified version %ld but we don't know about "
			 "versions later than 14", ver);
		add_error(p, msg);
		ver = 14;
	}
	p->version = (int)ver;
}

/* Returns 1 for a plan line (fields set), 0 for anything else. */
static int match_plan(const struct kpar_tap *p, const char *s, size_t len, long *n,
		      int *skip, char **reason, long **todo, size_t *ntodo)
{
	size_t i = 3, j;

	*skip = 0;
	*reason = NULL;
	*todo = NULL;
	*ntodo = 0;
	if (len < 4 || memcmp(s, "1..", 3) != 0 || !digits(s, len, &i, n))
		return 0;
	i = skip_space(s, len, i);
	if (p->version >= 13) {
		/* 1..N [# SKIP[ why]] */
		if (i == len)
			goto plain;
		if (s[i] != '#')
			return 0;
		i = skip_space(s, len, i + 1);
		if (!starts_ci(s + i, len - i, "SKIP") || (i + 4 < len && is_word(s[i + 4])))
			return 0;
		*skip = 1;
		*reason = text(s + i + 4, len - i - 4, 0);
		return 1;
	}
	/* version 12: 1..N todo 3 4 | 1..0 [# SKIP... why] | 1..N */
	if (len - i >= 4 && memcmp(s + i, "todo", 4) == 0) {
		size_t cap = 0;
		long v;

		j = i + 4;
		for (;;) {
			size_t k = j;
			while (k < len && is_space(s[k]))
				k++;
			if (k == j || !digits(s, len, &k, &v))
				break;
			if (*ntodo == cap) {
				cap = cap ? cap * 2 : 4;
				*todo = kpar_xrealloc(*todo, cap * sizeof **todo);
			}
			(*todo)[(*ntodo)++] = v;
			j = k;
		}
		if (*ntodo)
			return 1;
	}
	if (*n == 0) {
		*skip = 1;
		/* "# SKIP\S*\s+(.*)": the reason needs a blank after the word */
		if (i < len && s[i] == '#') {
			j = skip_space(s, len, i + 1);
			if (starts_ci(s + j, len - j, "SKIP")) {
				j += 4;
				while (j < len && !is_space(s[j]))
					j++;
				if (j < len)
					*reason = text(s + j, len - j, 0);
			}
		}
		return 1;
	}
	if (i != len)
		return 0;
plain:
	*skip = *n == 0;
	return 1;
}

static void on_plan(struct kpar_tap *p, long n, int skip, char *reason, long *todo, size_t ntodo)
{
	switch (p->state) {
	case ST_PLANNED:
	case ST_PLANNED_AFTER:
	case ST_GOT_PLAN:
		add_error(p, "More than one plan found in TAP output");
		p->state = ST_PLANNED;
		free(reason);
		free(todo);
		return;
	case ST_UNPLANNED:
		p->state = ST_GOT_PLAN;
		break;
	case ST_INIT:
	case ST_PLAN:
		p->state = ST_PLANNED;
		break;
	}
	p->planned = n;
	if (skip) {
		p->skip_all = 1;
		free(p->skip_reason);
		p->skip_reason = reason && *reason ? reason : kpar_xstrdup("(no reason given)");
		if (reason && !*reason)
			free(reason);
	} else {
		free(reason);
	}
	free(p->todo);
	p->todo = todo;
	p->ntodo = ntodo;
	p->attach = -1;
}

static void on_test(struct kpar_tap *p, int ok, const char *s, size_t len)
{
	struct kpar_subtest *t;
	size_t i = 0, d, dir_at = len, expl_at = len;
	long num = 0;
	int has_num, todo = 0, skip = 0, unplanned = 0, is_ok;
	char msg[160];

	p->run++;
	i = skip_space(s, len, 0);
	has_num = digits(s, len, &i, &num) > 0;
	i = skip_space(s, len, i);
	/* The directive starts at the first '#' not escaped by a backslash. */
	for (d = i; d < len; d++) {
		if (s[d] == '\\') {
			if (d + 1 >= len)
				break;
			d++;
			continue;
		}
		if (s[d] == '#') {
			size_t k = skip_space(s, len, d + 1);
			int is_todo = starts_ci(s + k, len - k, "TODO");
			if ((is_todo || starts_ci(s + k, len - k, "SKIP")) &&
			    (k + 4 == len || !is_word(s[k + 4]))) {
				dir_at = d;
				expl_at = k + 4;
				todo = is_todo;
				skip = !is_todo;
			}
			break;
		}
	}
	if (has_num && !todo) {
		size_t k;
		for (k = 0; k < p->ntodo; k++)
			if (p->todo[k] == num) {
				/* the plan's TODO list: used once, as prove does */
				p->todo[k] = -1;
				todo = 1;
				skip = 0;
				break;
			}
	}
	if (p->state == ST_GOT_PLAN) {
		snprintf(msg, sizeof msg, "Plan (1..%ld) must be at the beginning or end of "
			 "the TAP output", p->planned);
		add_error(p, msg);
		p->state = ST_PLANNED_AFTER;
	} else if (p->state == ST_PLANNED) {
		p->state = ST_PLANNED_AFTER;
	} else if (p->state == ST_INIT || p->state == ST_PLAN) {
		p->state = ST_UNPLANNED;
	}
	if (p->planned >= 0 && p->state != ST_UNPLANNED && p->run > p->planned)
		unplanned = 1;
	if (has_num && num != p->run) {
		snprintf(msg, sizeof msg, "Tests out of sequence.  Found (%ld) but expected (%ld)",
			 num, p->run);
		add_error(p, msg);
	} else if (!has_num) {
		num = p->run;
	}
	is_ok = !unplanned && (todo || ok);
	if (p->nsubs == p->cap) {
		p->cap = p->cap ? p->cap * 2 : 16;
		p->subs = kpar_xrealloc(p->subs, p->cap * sizeof *p->subs);
	}
	t = &p->subs[p->nsubs];
	memset(t, 0, sizeof *t);
	t->number = num;
	{
		/* "ok 1 - name": the dash is punctuation, not the name */
		size_t a = i, b = dir_at;
		a = skip_space(s, b, a);
		if (a < b && s[a] == '-' && (a + 1 == b || is_space(s[a + 1])))
			a++;
		t->name = text(s + a, b - a, 1);
	}
	if (dir_at < len) {
		char *why = text(s + expl_at, len - expl_at, 0);
		if (*why)
			t->reason = why;
		else
			free(why);
	}
	if (unplanned) {
		t->status = KPAR_SUB_FAIL;
		free(t->reason);
		snprintf(msg, sizeof msg, "test %ld is beyond the plan (1..%ld)", p->run, p->planned);
		t->reason = kpar_xstrdup(msg);
	} else if (todo) {
		t->status = ok ? KPAR_SUB_TODO_PASS : KPAR_SUB_TODO_FAIL;
	} else if (!ok) {
		t->status = KPAR_SUB_FAIL;
	} else {
		t->status = skip ? KPAR_SUB_SKIP : KPAR_SUB_PASS;
	}
	if (!is_ok) {
		p->failed++;
		if (p->nfailed_shown++ < MAX_FAILED_SHOWN)
			kpar_buf_printf(&p->failed_nums, "%s%ld", p->failed_nums.len ? ", " : "", num);
	}
	p->attach = (long)p->nsubs++;
}

/* "pragma +strict, -foo" */
static int match_pragma(struct kpar_tap *p, const char *s, size_t len)
{
	size_t i;
	int strict = p->strict, any = 0;

	if (len < 7 || memcmp(s, "pragma", 6) != 0 || !is_space(s[6]))
		return 0;
	i = skip_space(s, len, 6);
	for (;;) {
		size_t w;
		int on;

		if (i >= len || (s[i] != '+' && s[i] != '-'))
			return 0;
		on = s[i++] == '+';
		w = i;
		while (i < len && is_word(s[i]))
			i++;
		if (i == w)
			return 0;
		if (i - w == 6 && memcmp(s + w, "strict", 6) == 0)
			strict = on;
		any = 1;
		i = skip_space(s, len, i);
		if (i == len)
			break;
		if (s[i] != ',')
			return 0;
		i = skip_space(s, len, i + 1);
	}
	p->strict = strict;
	return any;
}

static void on_line(struct kpar_tap *p, const char *s, size_t len)
{
	long n;
	size_t i;

	if (p->bailed || p->stopped)
		return;
	if (len > 0 && s[len - 1] == '\r')
		len--;
	if (p->in_yaml) {
		for (i = 0; i < p->yaml_pad && i < len && is_space(s[i]); i++)
			;
		if (i < p->yaml_pad) {
			/* prove's YAMLish reader fails here, and TAP::Parser takes
			 * its failure for the end of the input */
			add_error(p, "Missing '...' at end of YAMLish");
			p->in_yaml = 0;
			p->stopped = 1;
			return;
		}
		add_diag(p, s, len);
		i = p->yaml_pad;
		if (len - i >= 3 && memcmp(s + i, "...", 3) == 0 && skip_space(s, len, i + 3) == len)
			p->in_yaml = 0;
		return;
	}
	if (match_version(s, len, &n)) {
		on_version(p, n);
		p->attach = -1;
		return;
	}
	{
		int skip;
		char *reason;
		long *todo;
		size_t ntodo;

		if (match_plan(p, s, len, &n, &skip, &reason, &todo, &ntodo)) {
			on_plan(p, n, skip, reason, todo, ntodo);
			return;
		}
	}
	if (len >= 2 && s[0] == 'o' && s[1] == 'k' && (len == 2 || !is_word(s[2]))) {
		on_test(p, 1, s + 2, len - 2);
		return;
	}
	if (len >= 6 && memcmp(s, "not ok", 6) == 0 && (len == 6 || !is_word(s[6]))) {
		on_test(p, 0, s + 6, len - 6);
		return;
	}
	if (len > 0 && s[0] == '#') {
		add_diag(p, s, len);
		return;
	}
	i = skip_space(s, len, 0);
	if (len - i >= 9 && memcmp(s + i, "Bail out!", 9) == 0) {
		p->bailed = 1;
		p->bail_reason = text(s + i + 9, len - i - 9, 0);
		return;
	}
	if (p->version >= 13) {
		if (i > 0 && len - i >= 3 && memcmp(s + i, "---", 3) == 0) {
			p->in_yaml = 1;
			p->yaml_pad = i;
			add_diag(p, s, len);
			return;
		}
		if (match_pragma(p, s, len))
			return;
	}
	if (p->strict) {
		struct kpar_buf b = KPAR_BUF_INIT;
		char *raw = text(s, len, 0);

		kpar_buf_printf(&b, "Unknown TAP token: \"%s\"", raw);
		add_error(p, b.data);
		kpar_buf_free(&b);
		free(raw);
	}
}

/* TAP::Parser's iterator joins a line that is only "not" (blanks around)
 * to the next one, for VMS, which splits "not ok" so: "not" + " ok 2". */
static void raw_line(struct kpar_tap *p, const char *s, size_t len)
{
	size_t i = skip_space(s, len, 0);

	if (p->has_not) {
		kpar_buf_add(&p->not_line, s, len < KPAR_TAP_LINE_MAX ? len : KPAR_TAP_LINE_MAX);
		p->has_not = 0;
		on_line(p, p->not_line.data, p->not_line.len);
		kpar_buf_clear(&p->not_line);
		return;
	}
	if (len - i >= 3 && memcmp(s + i, "not", 3) == 0 && skip_space(s, len, i + 3) == len) {
		kpar_buf_clear(&p->not_line);
		kpar_buf_add(&p->not_line, s, len);
		p->has_not = 1;
		return;
	}
	on_line(p, s, len);
}

void kpar_tap_feed(struct kpar_tap *p, const char *data, size_t len)
{
	while (len > 0) {
		const char *nl = memchr(data, '\n', len);
		size_t n = nl ? (size_t)(nl - data) : len;

		if (!p->line_full) {
			size_t room = KPAR_TAP_LINE_MAX - p->line.len;
			kpar_buf_add(&p->line, data, n < room ? n : room);
			if (n >= room)
				p->line_full = 1;
		}
		if (!nl)
			return;
		raw_line(p, p->line.data ? p->line.data : "", p->line.len);
		kpar_buf_clear(&p->line);
		p->line_full = 0;
		data += n + 1;
		len -= n + 1;
	}
}

void kpar_tap_finish(struct kpar_tap *p, int exit_code, int signo, struct kpar_tap_result *out)
{
	struct kpar_buf why = KPAR_BUF_INIT;
	char msg[160];
	int problems;

	memset(out, 0, sizeof *out);
	if (p->line.len > 0 || p->line_full) {
		/* the last line had no newline */
		raw_line(p, p->line.data, p->line.len);
		kpar_buf_clear(&p->line);
		p->line_full = 0;
	}
	if (p->has_not) {
		p->has_not = 0;
		on_line(p, p->not_line.data, p->not_line.len);
	}
	if (!p->bailed) {
		if (p->in_yaml)
			add_error(p, "Missing '...' at end of YAMLish");
		if (p->planned < 0) {
			add_error(p, "No plan found in TAP output");
		} else if (p->run != p->planned) {
			snprintf(msg, sizeof msg, "Bad plan.  You planned %ld tests but ran %ld.",
				 p->planned, p->run);
			add_error(p, msg);
		}
	}
	problems = p->bailed || p->failed || p->nerrors || exit_code != 0 || signo;
	if (p->bailed)
		kpar_buf_printf(&why, "Bail out!%s%s", *p->bail_reason ? "  " : "", p->bail_reason);
	if (p->failed)
		kpar_buf_printf(&why, "%sFailed test%s: %s%s", why.len ? "; " : "",
				p->failed > 1 ? "s" : "", p->failed_nums.data,
				p->nfailed_shown > MAX_FAILED_SHOWN ? ", ..." : "");
	if (p->nerrors) {
		kpar_buf_printf(&why, "%sParse errors: %s", why.len ? "; " : "", p->errors.data);
		if (p->nerrors > MAX_ERRORS_SHOWN)
			kpar_buf_printf(&why, " (and %zu more)", p->nerrors - MAX_ERRORS_SHOWN);
	}
	if (signo)
		kpar_buf_printf(&why, "%sKilled by signal %d", why.len ? "; " : "", signo);
	else if (exit_code != 0)
		kpar_buf_printf(&why, "%sNon-zero exit status: %d", why.len ? "; " : "", exit_code);
	if (problems) {
		out->verdict = KPAR_FAIL;
		out->explanation = kpar_buf_detach(&why, NULL);
	} else if (p->skip_all) {
		out->verdict = KPAR_SKIP;
		out->explanation = kpar_xstrdup(p->skip_reason);
	} else {
		out->verdict = KPAR_PASS;
	}
	kpar_buf_free(&why);
	out->subtests = p->subs;
	out->nsubtests = p->nsubs;
	p->subs = NULL;
	p->nsubs = p->cap = 0;
	p->attach = -1;
	out->planned = p->planned;
	out->run = p->run;
	out->failed = p->failed;
	out->version = p->version;
	out->bailed_out = p->bailed;
}

void kpar_tap_free(struct kpar_tap *p)
{
	if (!p)
		return;
	kpar_buf_free(&p->line);
	kpar_buf_free(&p->not_line);
	kpar_buf_free(&p->failed_nums);
	kpar_buf_free(&p->errors);
	free(p->skip_reason);
	free(p->bail_reason);
	free(p->todo);
	kpar_subtests_free(p->subs, p->nsubs);
	free(p);
}

void kpar_tap_parse(const char *text_, size_t len, int exit_code, int signo,
		    struct kpar_tap_result *out)
{
	struct kpar_tap *p = kpar_tap_new();

	kpar_tap_feed(p, text_, len);
	kpar_tap_finish(p, exit_code, signo, out);
	kpar_tap_free(p);
}

void kpar_tap_result_free(struct kpar_tap_result *r)
{
	if (!r)
		return;
	free(r->explanation);
	kpar_subtests_free(r->subtests, r->nsubtests);
	memset(r, 0, sizeof *r);
}
