/* trs.c - an automake driver's .trs file: the verdict and the subtests
 * (see trs.h). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/fs.h"
#include "run/tap.h"
#include "run/trs.h"

#define MAX_SHOWN 5

enum word { W_PASS, W_FAIL, W_SKIP, W_XFAIL, W_XPASS, W_ERROR, W_UNKNOWN };

static const char *const words[] = { "PASS", "FAIL", "SKIP", "XFAIL", "XPASS", "ERROR" };

static int blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* s[0..len) without surrounding blanks, cut to KPAR_TAP_TEXT_MAX bytes on
 * a UTF-8 boundary. */
static char *trimmed(const char *s, size_t len)
{
	while (len && blank(*s))
		s++, len--;
	while (len && blank(s[len - 1]))
		len--;
	if (len > KPAR_TAP_TEXT_MAX) {
		len = KPAR_TAP_TEXT_MAX;
		while (len && ((unsigned char)s[len] & 0xc0) == 0x80)
			len--;
	}
	return kpar_xstrndup(s, len);
}

/* tap-driver's " # SKIP why" / " # TODO why" at the end of a text: where
 * it starts (its last one), or NULL. */
static const char *directive(const char *s, const char **why)
{
	const char *p, *found = NULL;

	for (p = strstr(s, " # "); p; p = strstr(p + 1, " # "))
		if ((!strncmp(p + 3, "SKIP", 4) || !strncmp(p + 3, "TODO", 4)) &&
		    (p[7] == '\0' || p[7] == ' '))
			found = p;
	if (found)
		*why = found[7] ? found + 8 : found + 7;
	return found;
}

/* One result's subtest; pos its 1-based position. */
static void subtest_of(struct kpar_subtest *s, enum word w, const char *text, size_t pos)
{
	const char *p = text, *why = NULL, *dir;
	char *end;
	long n = -1;

	if (*p >= '0' && *p <= '9') {
		n = strtol(p, &end, 10);
		if (*end == '\0' || *end == ' ')
			p = end;
		else
			n = -1;
	}
	s->number = n >= 0 ? n : (long)pos;
	/* the directive first: after a bare number it is " # SKIP why" */
	dir = w == W_SKIP || w == W_XFAIL || w == W_XPASS ? directive(p, &why) : NULL;
	if (!dir)
		dir = p + strlen(p);
	while (p < dir && *p == ' ')
		p++;
	if (p < dir && *p == '-' && (p + 1 == dir || p[1] == ' '))
		p++;
	s->name = trimmed(p, (size_t)(dir - p));
	if (why) {
		char *r = trimmed(why, strlen(why));

		if (*r)
			s->reason = r;
		else
			free(r);
	}
	switch (w) {
	case W_PASS:
		s->status = KPAR_SUB_PASS;
		break;
	case W_SKIP:
		s->status = KPAR_SUB_SKIP;
		break;
	case W_XFAIL:
		s->status = KPAR_SUB_TODO_FAIL;
		break;
	default: {
		/* automake's word for a failure that is not a plain FAIL */
		char *r = NULL;

		s->status = KPAR_SUB_FAIL;
		if (w != W_FAIL)
			r = kpar_xasprintf("%s%s%s", w == W_UNKNOWN ? "unknown result" : words[w],
					   s->reason ? ": " : "", s->reason ? s->reason : "");
		free(s->reason);
		s->reason = r;
		break;
	}
	}
}

void kpar_trs_parse(const char *text, size_t len, struct kpar_trs_result *out)
{
	const char *p = text, *end = text + len;
	struct kpar_buf bad = KPAR_BUF_INIT;
	size_t c[W_UNKNOWN + 1] = { 0 }, cap = 0, nbad = 0, i;
	enum word *ws = NULL, global = W_UNKNOWN;
	char **texts = NULL;

	memset(out, 0, sizeof *out);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		const char *le = nl ? nl : end, *q;
		size_t wl;
		enum word w = W_UNKNOWN;

		if ((size_t)(le - p) >= 20 && !memcmp(p, ":global-test-result:", 20)) {
			for (q = p + 20; q < le && blank(*q); q++)
				;
			for (wl = 0; q + wl < le && !blank(q[wl]); wl++)
				;
			for (i = 0; i < W_UNKNOWN; i++)
				if (wl == strlen(words[i]) && !memcmp(q, words[i], wl))
					global = (enum word)i;
		} else if ((size_t)(le - p) >= 13 && !memcmp(p, ":test-result:", 13)) {
			for (q = p + 13; q < le && blank(*q); q++)
				;
			for (wl = 0; q + wl < le && !blank(q[wl]); wl++)
				;
			for (i = 0; i < W_UNKNOWN; i++)
				if (wl == strlen(words[i]) && !memcmp(q, words[i], wl))
					w = (enum word)i;
			if (out->nresults == cap) {
				cap = cap ? 2 * cap : 8;
				ws = kpar_xrealloc(ws, cap * sizeof *ws);
				texts = kpar_xrealloc(texts, cap * sizeof *texts);
			}
			ws[out->nresults] = w;
			texts[out->nresults] = trimmed(q + wl, (size_t)(le - q) - wl);
			out->nresults++;
			c[w]++;
			if (w == W_FAIL || w == W_XPASS || w == W_ERROR || w == W_UNKNOWN) {
				if (nbad++ < MAX_SHOWN) {
					if (bad.len)
						kpar_buf_puts(&bad, "; ");
					kpar_buf_add(&bad, q, (size_t)(le - q) > KPAR_TAP_TEXT_MAX ?
						     KPAR_TAP_TEXT_MAX : (size_t)(le - q));
				}
			}
		}
		p = nl ? nl + 1 : end;
	}
	if (nbad > MAX_SHOWN)
		kpar_buf_printf(&bad, "; and %zu more", nbad - MAX_SHOWN);

	if (!out->nresults) {
		out->verdict = KPAR_ERROR;
		out->explanation = kpar_xstrdup("no :test-result: line in the .trs file");
	} else if (c[W_ERROR] || c[W_UNKNOWN]) {
		out->verdict = KPAR_ERROR;
	} else if (c[W_FAIL] || c[W_XPASS]) {
		out->verdict = KPAR_FAIL;
	} else if (c[W_SKIP] == out->nresults) {
		out->verdict = KPAR_SKIP;
	} else {
		out->verdict = KPAR_PASS;
	}
	/* test-driver told --expect-failure yes: its script's own XFAIL or
	 * XPASS, which the results' sum calls a pass or a failure */
	if (out->verdict == KPAR_PASS && global == W_XFAIL)
		out->verdict = KPAR_XFAIL;
	else if (out->verdict == KPAR_FAIL && global == W_XPASS)
		out->verdict = KPAR_XPASS;
	if (out->verdict == KPAR_FAIL || out->verdict == KPAR_XPASS ||
	    (out->verdict == KPAR_ERROR && out->nresults))
		out->explanation = kpar_buf_detach(&bad, NULL);
	kpar_buf_free(&bad);

	if (out->nresults == 1 && (!*texts[0] || !strncmp(texts[0], "- ", 2) ||
				   !strcmp(texts[0], "-"))) {
		/* the script's own result: its text is the reason */
		if (out->verdict == KPAR_SKIP && *texts[0]) {
			const char *r = texts[0] + 1;

			out->explanation = trimmed(r, strlen(r));
		}
	} else if (out->nresults) {
		out->subtests = kpar_xcalloc(out->nresults, sizeof *out->subtests);
		for (i = 0; i < out->nresults; i++)
			subtest_of(&out->subtests[i], ws[i], texts[i], i + 1);
		out->nsubtests = out->nresults;
	}
	for (i = 0; i < out->nresults; i++)
		free(texts[i]);
	free(texts);
	free(ws);
}

int kpar_trs_read(const char *path, struct kpar_trs_result *out)
{
	char *text;
	size_t len;
	int rc;

	memset(out, 0, sizeof *out);
	if ((rc = kpar_fs_read_all(path, &text, &len)) < 0)
		return rc;
	kpar_trs_parse(text, len, out);
	free(text);
	return 0;
}

void kpar_trs_result_free(struct kpar_trs_result *r)
{
	free(r->explanation);
	kpar_subtests_free(r->subtests, r->nsubtests);
	memset(r, 0, sizeof *r);
}
