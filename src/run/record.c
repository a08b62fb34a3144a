/* record.c - the result record: a bucket attempt's results as compressed,
 * checksummed text that survives being printed into a pod log.
 *
 * Layers, outermost first (see record.h for the wire format):
 *   header line  "KPAR-RECORD 1 zstd <raw-len> <sha256 of compressed>"
 *   base64 lines (EVP_EncodeBlock, 57 bytes in -> 76 columns out)
 *   zstd frame   (one frame, content size stored)
 *   JSON         (cJSON, unformatted)
 * The checksum covers the compressed bytes so a damaged record is refused
 * before anything is decompressed; raw-len bounds the allocation and is
 * checked against both the frame header and the decompressed size.
 */
#include "config.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <zstd.h>

#include "base/buf.h"
#include "base/digest.h"
#include "base/error.h"
#include "run/record.h"

#define HEADER_TAG "KPAR-RECORD "
#define END_TAG "KPAR-RECORD-END"
#define LOG_TAG "KPAR-LOG "
#define LOG_END_TAG "KPAR-LOG-END"

/* The two frame kinds share their layers; only the tags differ. */
struct frame_kind {
	const char *head;   /* header tag, with its space */
	const char *end;
	const char *what;   /* in messages */
};
static const struct frame_kind record_kind = { HEADER_TAG, END_TAG, "result record" };
static const struct frame_kind log_kind = { LOG_TAG, LOG_END_TAG, "log frame" };
#define FORMAT_VERSION 1
#define ZSTD_LEVEL 3
#define B64_IN_LINE 57   /* 57 bytes encode to exactly 76 columns */

static const char *const status_names[] = { "pass", "fail", "skip", "error", "flaky", "xfail", "xpass" };
static const char *const sub_status_names[] = { "pass", "fail", "skip", "todo-pass", "todo-fail" };

const char *kpar_sub_status_name(enum kpar_sub_status s)
{
	if ((unsigned)s < sizeof sub_status_names / sizeof sub_status_names[0])
		return sub_status_names[s];
	return "unknown";
}

int kpar_sub_status_parse(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof sub_status_names / sizeof sub_status_names[0]; i++)
		if (strcmp(name, sub_status_names[i]) == 0)
			return (int)i;
	return -1;
}

void kpar_subtests_free(struct kpar_subtest *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		free(s[i].name);
		free(s[i].reason);
		free(s[i].diag);
	}
	free(s);
}

void kpar_test_result_take_subtests(struct kpar_test_result *t, struct kpar_subtest **s, size_t *n)
{
	kpar_subtests_free(t->subtests, t->nsubtests);
	t->subtests = *s;
	t->nsubtests = *n;
	*s = NULL;
	*n = 0;
}

const char *kpar_status_name(enum kpar_status s)
{
	if ((unsigned)s < sizeof status_names / sizeof status_names[0])
		return status_names[s];
	return "unknown";
}

int kpar_status_parse(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof status_names / sizeof status_names[0]; i++)
		if (strcmp(name, status_names[i]) == 0)
			return (int)i;
	return -1;
}

void kpar_bucket_result_free(struct kpar_bucket_result *r)
{
	size_t i;

	if (!r)
		return;
	for (i = 0; i < r->ntests; i++) {
		free(r->tests[i].id);
		free(r->tests[i].output);
		free(r->tests[i].note);
		free(r->tests[i].full_log);
		kpar_subtests_free(r->tests[i].subtests, r->tests[i].nsubtests);
	}
	free(r->tests);
	free(r->plan);
	free(r->worker);
	memset(r, 0, sizeof *r);
}

static int default_exit_code(enum kpar_status s)
{
	switch (s) {
	case KPAR_PASS:
	case KPAR_FLAKY:
	case KPAR_XPASS:
		return 0;
	case KPAR_SKIP:
		return 77;
	case KPAR_ERROR:
		return 99;
	case KPAR_FAIL:
	case KPAR_XFAIL:
		break;
	}
	return 1;
}

struct kpar_test_result *kpar_bucket_result_add(struct kpar_bucket_result *r,
	const char *id, enum kpar_status status, double seconds,
	const char *output, size_t output_len)
{
	struct kpar_test_result *t;

	/* Grow by powers of two: the array's capacity is implied by ntests. */
	if ((r->ntests & (r->ntests - 1)) == 0) {
		size_t cap = r->ntests ? r->ntests * 2 : 1;
		r->tests = kpar_xrealloc(r->tests, cap * sizeof *r->tests);
	}
	t = &r->tests[r->ntests++];
	memset(t, 0, sizeof *t);
	t->id = kpar_xstrdup(id);
	t->status = status;
	t->seconds = seconds;
	t->attempts = 1;
	t->exit_code = default_exit_code(status);
	if (output) {
		t->output = kpar_xstrndup(output, output_len);
		t->output_len = output_len;
	}
	return t;
}

/* ---- UTF-8 and trimming ---------------------------------------------- */

size_t kpar_utf8_next(const char *str, size_t len, unsigned *cp)
{
	const unsigned char *s = (const unsigned char *)str;
	unsigned c, min;
	size_t n, i;

	if (len == 0)
		return 0;
	c = s[0];
	if (c < 0x80) {
		n = 1, min = 0;
	} else if (c >= 0xc2 && c <= 0xdf) {
		n = 2, min = 0x80, c &= 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3, min = 0x800, c &= 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4, min = 0x10000, c &= 0x07;
	} else {
		return 0;
	}
	if (len < n)
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	if (cp)
		*cp = c;
	return n;
}

/* Text that JSON can carry as a string unchanged: valid UTF-8, no NUL. */
static int is_plain_text(const char *s, size_t len)
{
	size_t i = 0, n;

	while (i < len) {
		if ((unsigned char)s[i] < 0x80) {
			if (s[i] == '\0')
				return 0;
			i++;
			continue;
		}
		n = kpar_utf8_next(s + i, len - i, NULL);
		if (n == 0)
			return 0;
		i += n;
	}
	return 1;
}

static int is_continuation(const char *data, size_t pos, size_t len)
{
	return pos < len && ((unsigned char)data[pos] & 0xc0) == 0x80;
}

void kpar_record_trim(struct kpar_buf *out, const char *data, size_t len,
		      size_t max, int head_and_tail)
{
	size_t head = head_and_tail ? max / 2 : 0, tail_start = len - (max - head), k;

	if (len <= max) {
		kpar_buf_add(out, data, len);
		return;
	}
	/* Move both cuts off the middle of a character (at most 3 bytes). */
	for (k = 0; k < 3 && head > 0 && is_continuation(data, head, len); k++)
		head--;
	for (k = 0; k < 3 && is_continuation(data, tail_start, len); k++)
		tail_start++;
	kpar_buf_add(out, data, head);
	if (head > 0)
		kpar_buf_putc(out, '\n');
	kpar_buf_printf(out, "[... %zu bytes trimmed ...]", tail_start - head);
	if (tail_start < len)
		kpar_buf_putc(out, '\n');
	kpar_buf_add(out, data + tail_start, len - tail_start);
}

/* ---- base64 ----------------------------------------------------------- */

static void b64_append(struct kpar_buf *out, const unsigned char *data, size_t len,
		       int wrap)
{
	size_t off = 0;

	while (off < len) {
		size_t n = len - off;
		int w;

		if (wrap && n > B64_IN_LINE)
			n = B64_IN_LINE;
		else if (!wrap && n > (1u << 20) * 3)
			n = (1u << 20) * 3;   /* multiple of 3: no padding mid-stream */
		kpar_buf_grow(out, (n + 2) / 3 * 4 + 1);
		w = EVP_EncodeBlock((unsigned char *)out->data + out->len, data + off, (int)n);
		out->len += (size_t)w;
		if (wrap)
			out->data[out->len++] = '\n';
		out->data[out->len] = '\0';
		off += n;
	}
}

static int is_b64_char(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* Decodes unwrapped base64 (padding only at the end).  Returns 0 or -1. */
static int b64_decode(const char *in, size_t len, unsigned char **out, size_t *outlen)
{
	size_t pad = 0, i, n;
	unsigned char *buf;
	int w;

	*out = NULL;
	*outlen = 0;
	if (len % 4 != 0 || len > INT32_MAX)
		return -1;
	if (len > 0 && in[len - 1] == '=')
		pad++;
	if (len > 1 && in[len - 2] == '=')
		pad++;
	for (i = 0; i < len - pad; i++)
		if (!is_b64_char((unsigned char)in[i]))
			return -1;
	n = len / 4 * 3;
	buf = kpar_xmalloc(n + 1);
	if (len > 0) {
		w = EVP_DecodeBlock(buf, (const unsigned char *)in, (int)len);
		if (w < 0 || (size_t)w != n) {
			free(buf);
			return -1;
		}
	}
	buf[n - pad] = '\0';
	*out = buf;
	*outlen = n - pad;
	return 0;
}

/* ---- encode ----------------------------------------------------------- */

static void add_bytes(cJSON *obj, const char *key, const char *s, size_t len)
{
	if (is_plain_text(s, len)) {
		/* cJSON copies up to the NUL; s has none inside len. */
		char *tmp = kpar_xstrndup(s, len);
		cJSON_AddStringToObject(obj, key, tmp);
		free(tmp);
	} else {
		struct kpar_buf b = KPAR_BUF_INIT;
		char *k = kpar_xasprintf("%s_b64", key);

		b64_append(&b, (const unsigned char *)s, len, 0);
		cJSON_AddStringToObject(obj, k, b.data ? b.data : "");
		kpar_buf_free(&b);
		free(k);
	}
}

static int is_passing(enum kpar_status s)
{
	return s == KPAR_PASS || s == KPAR_SKIP;
}

static cJSON *subtests_to_json(const struct kpar_test_result *tr)
{
	cJSON *arr = cJSON_CreateArray(), *o;
	size_t i;

	if (!arr)
		abort();
	for (i = 0; i < tr->nsubtests; i++) {
		const struct kpar_subtest *st = &tr->subtests[i];

		o = cJSON_CreateObject();
		if (!o)
			abort();
		cJSON_AddItemToArray(arr, o);
		cJSON_AddNumberToObject(o, "n", (double)st->number);
		add_bytes(o, "name", st->name ? st->name : "", st->name ? strlen(st->name) : 0);
		cJSON_AddStringToObject(o, "status", kpar_sub_status_name(st->status));
		if (st->reason)
			add_bytes(o, "reason", st->reason, strlen(st->reason));
		if (st->diag)
			add_bytes(o, "diag", st->diag, strlen(st->diag));
	}
	return arr;
}

char *kpar_subtests_json(const struct kpar_test_result *t)
{
	cJSON *arr = subtests_to_json(t);
	char *json = cJSON_PrintUnformatted(arr);

	cJSON_Delete(arr);
	if (!json)
		abort();
	return json;
}

/* outputs[i]/lens[i] replace the tests' outputs (trimmed copies). */
static char *build_json(const struct kpar_bucket_result *r, const char *const *outputs,
			const size_t *lens)
{
	cJSON *root = cJSON_CreateObject(), *tests, *t;
	char *json;
	size_t i;

	if (!root)
		abort();
	cJSON_AddNumberToObject(root, "kpar_record", FORMAT_VERSION);
	if (r->plan)
		cJSON_AddStringToObject(root, "plan", r->plan);
	cJSON_AddNumberToObject(root, "bucket", r->bucket);
	cJSON_AddNumberToObject(root, "attempt", r->attempt);
	if (r->worker)
		add_bytes(root, "worker", r->worker, strlen(r->worker));
	cJSON_AddNumberToObject(root, "started", r->started);
	cJSON_AddNumberToObject(root, "finished", r->finished);
	tests = cJSON_AddArrayToObject(root, "tests");
	for (i = 0; i < r->ntests; i++) {
		const struct kpar_test_result *tr = &r->tests[i];

		t = cJSON_CreateObject();
		if (!t || !tests)
			abort();
		cJSON_AddItemToArray(tests, t);
		add_bytes(t, "id", tr->id, strlen(tr->id));
		cJSON_AddStringToObject(t, "status", kpar_status_name(tr->status));
		cJSON_AddNumberToObject(t, "seconds", tr->seconds);
		cJSON_AddNumberToObject(t, "attempts", tr->attempts);
		cJSON_AddNumberToObject(t, "exit_code", tr->exit_code);
		if (outputs[i])
			add_bytes(t, "output", outputs[i], lens[i]);
		if (tr->note)
			add_bytes(t, "note", tr->note, strlen(tr->note));
		if (tr->full_log)
			cJSON_AddStringToObject(t, "full_log", tr->full_log);
		if (tr->nsubtests)
			cJSON_AddItemToObject(t, "subtests", subtests_to_json(tr));
	}
	json = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	if (!json)
		abort();   /* cJSON fails only on allocation */
	return json;
}

/* Encodes data into a frame of kind k, appended to out. */
static int frame(const struct frame_kind *k, const char *data, size_t dlen, struct kpar_buf *out)
{
	size_t bound = ZSTD_compressBound(dlen), clen;
	unsigned char *z = kpar_xmalloc(bound);
	char hex[KPAR_SHA256_HEX];
	unsigned char sum[KPAR_SHA256_LEN];

	clen = ZSTD_compress(z, bound, data, dlen, ZSTD_LEVEL);
	if (ZSTD_isError(clen)) {
		free(z);
		return kpar_error_set(KPAR_EGENERIC, "%s: zstd: %s", k->what,
				      ZSTD_getErrorName(clen));
	}
	kpar_sha256(z, clen, sum);
	kpar_hex(sum, sizeof sum, hex);
	kpar_buf_printf(out, "%s%d zstd %zu %s\n", k->head, FORMAT_VERSION, dlen, hex);
	b64_append(out, z, clen, 1);
	kpar_buf_printf(out, "%s\n", k->end);
	free(z);
	return 0;
}

char *kpar_record_json(const struct kpar_bucket_result *r)
{
	const char **outputs = kpar_xcalloc(r->ntests + 1, sizeof *outputs);
	size_t *lens = kpar_xcalloc(r->ntests + 1, sizeof *lens);
	char *json;
	size_t i;

	for (i = 0; i < r->ntests; i++) {
		outputs[i] = r->tests[i].output;
		lens[i] = r->tests[i].output ? r->tests[i].output_len : 0;
	}
	json = build_json(r, outputs, lens);
	free(outputs);
	free(lens);
	return json;
}

/* Applies trimming step `step`; returns how many outputs it changed. */
static size_t trim_step(const struct kpar_bucket_result *r, size_t step, size_t ncaps,
			const size_t *caps, struct kpar_buf *trimmed, const char **outputs,
			size_t *lens)
{
	size_t i, changed = 0;

	for (i = 0; i < r->ntests; i++) {
		const struct kpar_test_result *t = &r->tests[i];
		int pass = is_passing(t->status);
		size_t cap = caps[step % ncaps];

		if (!t->output || pass != (step < ncaps) || lens[i] <= cap)
			continue;
		kpar_buf_clear(&trimmed[i]);
		kpar_record_trim(&trimmed[i], t->output, t->output_len, cap, !pass);
		outputs[i] = trimmed[i].data;
		lens[i] = trimmed[i].len;
		changed++;
	}
	return changed;
}

int kpar_record_encode(const struct kpar_bucket_result *r, struct kpar_buf *out)
{
	/* Output caps tried in turn once the record is too large. */
	static const size_t caps[] = { 1u << 20, 256u << 10, 64u << 10, 16u << 10,
				       4u << 10, 1u << 10, 256, 0 };
	const size_t ncaps = sizeof caps / sizeof caps[0];
	const char **outputs = kpar_xcalloc(r->ntests + 1, sizeof *outputs);
	size_t *lens = kpar_xcalloc(r->ntests + 1, sizeof *lens);
	struct kpar_buf *trimmed = kpar_xcalloc(r->ntests + 1, sizeof *trimmed);
	struct kpar_buf enc = KPAR_BUF_INIT;
	size_t i, step = 0;
	int rc = 0;

	for (i = 0; i < r->ntests; i++) {
		outputs[i] = r->tests[i].output;
		lens[i] = r->tests[i].output ? r->tests[i].output_len : 0;
	}
	/* Steps 0..ncaps-1 trim passing outputs, then ncaps..2*ncaps-1 the
	 * others with passing ones at the smallest cap. */
	for (;;) {
		char *json = build_json(r, outputs, lens);
		size_t jlen = strlen(json);

		kpar_buf_clear(&enc);
		if (jlen <= KPAR_RECORD_RAW_MAX)
			rc = frame(&record_kind, json, jlen, &enc);
		free(json);
		if (rc < 0)
			goto done;
		if (jlen <= KPAR_RECORD_RAW_MAX && enc.len <= KPAR_RECORD_MAX)
			break;
		/* A passing output costs at most about 16/9 of its size on the
		 * wire (base64 in JSON, zstd, base64 again): when even dropping
		 * all of them cannot fit, go straight to the last passing step. */
		if (step < ncaps && jlen <= KPAR_RECORD_RAW_MAX) {
			size_t pass_bytes = 0;
			for (i = 0; i < r->ntests; i++)
				if (is_passing(r->tests[i].status))
					pass_bytes += lens[i];
			if (enc.len > KPAR_RECORD_MAX + 2 * pass_bytes + 4096)
				step = ncaps - 1;
		}
		/* Advance to the next step that changes an output. */
		while (step < 2 * ncaps && !trim_step(r, step, ncaps, caps, trimmed, outputs, lens))
			step++;
		if (step >= 2 * ncaps) {
			rc = kpar_error_set(KPAR_EINVAL, "result record of bucket %d: "
					    "%zu tests do not fit in %u bytes even without output",
					    r->bucket, r->ntests, KPAR_RECORD_MAX);
			goto done;
		}
		step++;
	}
	kpar_buf_add(out, enc.data, enc.len);
done:
	for (i = 0; i < r->ntests; i++)
		kpar_buf_free(&trimmed[i]);
	free(trimmed);
	free(outputs);
	free(lens);
	kpar_buf_free(&enc);
	return rc;
}

/* ---- decode ----------------------------------------------------------- */

struct line {
	const char *p;
	size_t len;     /* without the newline and a trailing CR */
	const char *next;
};

static int next_line(const char *p, const char *end, struct line *l)
{
	const char *nl;

	if (p >= end)
		return 0;
	nl = memchr(p, '\n', (size_t)(end - p));
	l->p = p;
	l->len = (size_t)((nl ? nl : end) - p);
	l->next = nl ? nl + 1 : end;
	while (l->len > 0 && (l->p[l->len - 1] == '\r' || l->p[l->len - 1] == ' ' ||
			      l->p[l->len - 1] == '\t'))
		l->len--;
	return 1;
}

static int parse_size(const char **p, const char *end, unsigned long long *out)
{
	unsigned long long v = 0;
	const char *s = *p;

	if (s >= end || *s < '0' || *s > '9')
		return -1;
	while (s < end && *s >= '0' && *s <= '9') {
		if (v > (ULLONG_MAX - 9) / 10)
			return -1;
		v = v * 10 + (unsigned long long)(*s - '0');
		s++;
	}
	*p = s;
	*out = v;
	return 0;
}

/* Parses "<TAG> <ver> zstd <raw-len> <hex64>" for frames of kind k.
 * Returns 1 when the line is a header, 0 when it is not (log noise), -1
 * for a header of an unsupported version (error set). */
static int parse_header(const struct frame_kind *k, const struct line *l, size_t lineno,
			unsigned long long *rawlen, char hex[KPAR_SHA256_HEX])
{
	const char *s, *end = l->p + l->len;
	unsigned long long ver;
	size_t i, taglen = strlen(k->head);

	if (l->len < taglen || memcmp(l->p, k->head, taglen) != 0)
		return 0;
	s = l->p + taglen;
	if (parse_size(&s, end, &ver) < 0 || s >= end || *s++ != ' ')
		return 0;
	if (ver != FORMAT_VERSION) {
		kpar_error_set(KPAR_EINVAL, "%s at line %zu: unsupported "
			       "format version %llu (this kpar reads version %d)",
			       k->what, lineno, ver, FORMAT_VERSION);
		return -1;
	}
	if ((size_t)(end - s) < 5 || memcmp(s, "zstd ", 5) != 0)
		return 0;
	s += 5;
	if (parse_size(&s, end, rawlen) < 0 || s >= end || *s++ != ' ')
		return 0;
	if (end - s != 64)
		return 0;
	for (i = 0; i < 64; i++) {
		char c = s[i];
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return 0;
		hex[i] = c;
	}
	hex[64] = '\0';
	return 1;
}

static const cJSON *get(const cJSON *obj, const char *key)
{
	return cJSON_GetObjectItemCaseSensitive(obj, key);
}

/* Reads key (a string) or key_b64 (base64 bytes) into a malloc'd buffer. */
static int get_bytes(const cJSON *obj, const char *key, char **out, size_t *len,
		     int required)
{
	const cJSON *v = get(obj, key);
	char k[64];

	*out = NULL;
	*len = 0;
	if (cJSON_IsString(v)) {
		*len = strlen(v->valuestring);
		*out = kpar_xstrndup(v->valuestring, *len);
		return 0;
	}
	if (v && !cJSON_IsNull(v))
		return kpar_error_set(KPAR_EINVAL, "\"%s\" is not a string", key);
	snprintf(k, sizeof k, "%s_b64", key);
	v = get(obj, k);
	if (cJSON_IsString(v)) {
		unsigned char *b;
		const char *s = v->valuestring;

		if (b64_decode(s, strlen(s), &b, len) < 0)
			return kpar_error_set(KPAR_EINVAL, "\"%s\" is not valid base64", k);
		*out = (char *)b;
		return 0;
	}
	if (v)
		return kpar_error_set(KPAR_EINVAL, "\"%s\" is not a string", k);
	if (required)
		return kpar_error_set(KPAR_EINVAL, "missing \"%s\"", key);
	return 0;
}

static int get_int(const cJSON *obj, const char *key, int *out, int dflt)
{
	const cJSON *v = get(obj, key);

	if (!v) {
		*out = dflt;
		return 0;
	}
	if (!cJSON_IsNumber(v) || v->valuedouble != (double)(int)v->valuedouble)
		return kpar_error_set(KPAR_EINVAL, "\"%s\" is not an integer", key);
	*out = (int)v->valuedouble;
	return 0;
}

static int get_double(const cJSON *obj, const char *key, double *out)
{
	const cJSON *v = get(obj, key);

	*out = 0;
	if (!v)
		return 0;
	if (!cJSON_IsNumber(v))
		return kpar_error_set(KPAR_EINVAL, "\"%s\" is not a number", key);
	*out = v->valuedouble;
	return 0;
}

/* An optional text (no NUL inside) into *out; NULL when absent. */
static int get_text(const cJSON *obj, const char *key, char **out)
{
	size_t len;
	int rc = get_bytes(obj, key, out, &len, 0);

	if (rc < 0)
		return rc;
	if (*out && memchr(*out, '\0', len)) {
		free(*out);
		*out = NULL;
		return kpar_error_set(KPAR_EINVAL, "NUL in \"%s\"", key);
	}
	return 0;
}

/* A "sha256:<64 lowercase hex>" or NULL. */
static int check_digest(const char *d, const char *key)
{
	size_t i;

	if (!d)
		return 0;
	if (strncmp(d, "sha256:", 7) != 0 || strlen(d) != 7 + 64)
		return kpar_error_set(KPAR_EINVAL, "\"%s\" is not a sha256 digest", key);
	for (i = 7; d[i]; i++)
		if (!((d[i] >= '0' && d[i] <= '9') || (d[i] >= 'a' && d[i] <= 'f')))
			return kpar_error_set(KPAR_EINVAL, "\"%s\" is not a sha256 digest", key);
	return 0;
}

/* arr: the "subtests" array, or NULL when absent (none). */
static int subtests_from_json(const cJSON *arr, struct kpar_test_result *tr)
{
	struct kpar_subtest *subs = NULL;
	const cJSON *o, *v;
	size_t n = 0;
	int rc = 0;

	if (!arr || cJSON_IsNull(arr))
		return 0;
	if (!cJSON_IsArray(arr))
		return kpar_error_set(KPAR_EINVAL, "\"subtests\" is not an array");
	subs = kpar_xcalloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof *subs);
	cJSON_ArrayForEach(o, arr) {
		struct kpar_subtest *st = &subs[n];
		int status;

		if (!cJSON_IsObject(o)) {
			rc = kpar_error_set(KPAR_EINVAL, "subtests[%zu] is not an object", n);
			break;
		}
		n++;
		v = get(o, "n");
		if (!cJSON_IsNumber(v) || !(v->valuedouble >= -9007199254740991.0 &&
					      v->valuedouble <= 9007199254740991.0) ||
		    v->valuedouble != (double)(long)v->valuedouble) {
			rc = kpar_error_set(KPAR_EINVAL, "subtests[%zu]: \"n\" is not an integer", n - 1);
			break;
		}
		st->number = (long)v->valuedouble;
		v = get(o, "status");
		status = cJSON_IsString(v) ? kpar_sub_status_parse(v->valuestring) : -1;
		if (status < 0) {
			rc = kpar_error_set(KPAR_EINVAL, "subtests[%zu]: missing or unknown \"status\"",
					    n - 1);
			break;
		}
		st->status = (enum kpar_sub_status)status;
		if ((rc = get_text(o, "name", &st->name)) < 0 ||
		    (rc = get_text(o, "reason", &st->reason)) < 0 ||
		    (rc = get_text(o, "diag", &st->diag)) < 0) {
			kpar_error_prefix(rc, "subtests[%zu]", n - 1);
			break;
		}
		if (!st->name)
			st->name = kpar_xstrdup("");
	}
	if (rc < 0 || n == 0) {
		kpar_subtests_free(subs, n);
		return rc;
	}
	kpar_test_result_take_subtests(tr, &subs, &n);
	return 0;
}

int kpar_subtests_from_json(struct kpar_test_result *t, const char *json, size_t len)
{
	cJSON *root = cJSON_ParseWithLength(json, len);
	int rc;

	if (!root)
		return kpar_error_set(KPAR_EINVAL, "subtests: JSON does not parse");
	rc = subtests_from_json(root, t);
	cJSON_Delete(root);
	return rc;
}

static int from_json(const char *json, size_t len, struct kpar_bucket_result *out)
{
	cJSON *root = cJSON_ParseWithLength(json, len);
	const cJSON *tests, *t, *v;
	size_t n, wlen;
	int rc = 0, ver;

	if (!root)
		return kpar_error_set(KPAR_EINVAL, "JSON does not parse");
	if (!cJSON_IsObject(root)) {
		rc = kpar_error_set(KPAR_EINVAL, "JSON is not an object");
		goto done;
	}
	if ((rc = get_int(root, "kpar_record", &ver, -1)) < 0)
		goto done;
	if (ver != FORMAT_VERSION) {
		rc = kpar_error_set(KPAR_EINVAL, "\"kpar_record\" is %d, expected %d",
				    ver, FORMAT_VERSION);
		goto done;
	}
	v = get(root, "plan");
	if (cJSON_IsString(v))
		out->plan = kpar_xstrdup(v->valuestring);
	else if (v && !cJSON_IsNull(v)) {
		rc = kpar_error_set(KPAR_EINVAL, "\"plan\" is not a string");
		goto done;
	}
	if ((rc = get_bytes(root, "worker", &out->worker, &wlen, 0)) < 0 ||
	    (rc = get_int(root, "bucket", &out->bucket, 0)) < 0 ||
	    (rc = get_int(root, "attempt", &out->attempt, 0)) < 0 ||
	    (rc = get_double(root, "started", &out->started)) < 0 ||
	    (rc = get_double(root, "finished", &out->finished)) < 0)
		goto done;
	tests = get(root, "tests");
	if (!cJSON_IsArray(tests)) {
		rc = kpar_error_set(KPAR_EINVAL, "\"tests\" is missing or not an array");
		goto done;
	}
	n = 0;
	cJSON_ArrayForEach(t, tests) {
		struct kpar_test_result *tr;
		char *id = NULL, *output = NULL;
		size_t idlen, outlen;
		int status;
		double secs;

		if (!cJSON_IsObject(t)) {
			rc = kpar_error_set(KPAR_EINVAL, "tests[%zu] is not an object", n);
			goto done;
		}
		if ((rc = get_bytes(t, "id", &id, &idlen, 1)) < 0)
			goto test_error;
		if (idlen == 0 || memchr(id, '\0', idlen)) {
			rc = kpar_error_set(KPAR_EINVAL, "empty id or NUL in id");
			goto test_error;
		}
		v = get(t, "status");
		status = cJSON_IsString(v) ? kpar_status_parse(v->valuestring) : -1;
		if (status < 0) {
			rc = kpar_error_set(KPAR_EINVAL, "missing or unknown \"status\"");
			goto test_error;
		}
		if ((rc = get_double(t, "seconds", &secs)) < 0 ||
		    (rc = get_bytes(t, "output", &output, &outlen, 0)) < 0)
			goto test_error;
		tr = kpar_bucket_result_add(out, id, (enum kpar_status)status, secs, NULL, 0);
		tr->output = output;
		tr->output_len = outlen;
		output = NULL;
		if ((rc = get_int(t, "attempts", &tr->attempts, 1)) < 0 ||
		    (rc = get_int(t, "exit_code", &tr->exit_code, tr->exit_code)) < 0 ||
		    (rc = get_text(t, "note", &tr->note)) < 0 ||
		    (rc = get_text(t, "full_log", &tr->full_log)) < 0 ||
		    (rc = check_digest(tr->full_log, "full_log")) < 0 ||
		    (rc = subtests_from_json(get(t, "subtests"), tr)) < 0)
			goto test_error;
		free(id);
		n++;
		continue;
test_error:
		free(id);
		free(output);
		kpar_error_prefix(rc, "tests[%zu]", n);
		goto done;
	}
done:
	cJSON_Delete(root);
	return rc;
}

/* Decodes the body of the frame whose header is at hdr (already parsed)
 * into *raw (rawlen bytes and a NUL; free it); *after is where the text
 * after its end line starts. */
static int decode_body(const struct frame_kind *k, const char *end, const struct line *hdr,
		       size_t lineno, unsigned long long rawlen, const char *hex, char **raw,
		       const char **after)
{
	struct kpar_buf b64 = KPAR_BUF_INIT;
	unsigned char *z = NULL, sum[KPAR_SHA256_LEN];
	char *data = NULL, got[KPAR_SHA256_HEX];
	unsigned long long fsize;
	size_t zlen, n, ln = lineno, endlen = strlen(k->end);
	struct line l;
	const char *p = hdr->next;
	int rc = 0, ended = 0;

	*raw = NULL;
	while (next_line(p, end, &l)) {
		p = l.next;
		ln++;
		if (l.len == endlen && memcmp(l.p, k->end, l.len) == 0) {
			ended = 1;
			break;
		}
		for (n = 0; n < l.len; n++) {
			unsigned char c = (unsigned char)l.p[n];
			if (!is_b64_char(c) && c != '=') {
				rc = kpar_error_set(KPAR_EINVAL, "line %zu: not base64 "
						    "(torn or interleaved log?)", ln);
				goto done;
			}
		}
		kpar_buf_add(&b64, l.p, l.len);
		if (b64.len > (size_t)KPAR_RECORD_MAX * 2) {
			rc = kpar_error_set(KPAR_EINVAL, "line %zu: %s body too long", ln, k->what);
			goto done;
		}
	}
	*after = p;
	if (!ended) {
		rc = kpar_error_set(KPAR_EINVAL, "truncated: no %s line", k->end);
		goto done;
	}
	if (b64_decode(b64.data ? b64.data : "", b64.len, &z, &zlen) < 0) {
		rc = kpar_error_set(KPAR_EINVAL, "body is not valid base64 "
				    "(%zu characters; truncated or damaged)", b64.len);
		goto done;
	}
	kpar_sha256(z, zlen, sum);
	kpar_hex(sum, sizeof sum, got);
	if (strcmp(got, hex) != 0) {
		rc = kpar_error_set(KPAR_ECHECKSUM, "checksum mismatch: header says sha256:%s, "
				    "body is sha256:%s (damaged in transit)", hex, got);
		goto done;
	}
	if (rawlen > KPAR_RECORD_RAW_MAX) {
		rc = kpar_error_set(KPAR_EINVAL, "raw length %llu exceeds the limit of %u bytes",
				    rawlen, KPAR_RECORD_RAW_MAX);
		goto done;
	}
	fsize = ZSTD_getFrameContentSize(z, zlen);
	if (fsize == ZSTD_CONTENTSIZE_ERROR || fsize == ZSTD_CONTENTSIZE_UNKNOWN) {
		rc = kpar_error_set(KPAR_EINVAL, "body is not a zstd frame with a content size");
		goto done;
	}
	if (fsize != rawlen) {
		rc = kpar_error_set(KPAR_EINVAL, "length mismatch: header says %llu bytes, "
				    "compressed frame holds %llu", rawlen, fsize);
		goto done;
	}
	data = kpar_xmalloc((size_t)rawlen + 1);
	n = ZSTD_decompress(data, (size_t)rawlen, z, zlen);
	if (ZSTD_isError(n)) {
		rc = kpar_error_set(KPAR_EINVAL, "zstd: %s", ZSTD_getErrorName(n));
		goto done;
	}
	if (n != rawlen) {
		rc = kpar_error_set(KPAR_EINVAL, "length mismatch: header says %llu bytes, "
				    "decompressed %zu", rawlen, n);
		goto done;
	}
	data[n] = '\0';
	*raw = data;
	data = NULL;
done:
	if (rc < 0)
		kpar_error_prefix(rc, "%s at line %zu", k->what, lineno);
	kpar_buf_free(&b64);
	free(z);
	free(data);
	return rc;
}

int kpar_record_decode(const char *text, size_t len, struct kpar_bucket_result *out)
{
	const char *p = text, *end = text + len, *after;
	char hex[KPAR_SHA256_HEX];
	char first_err[2048] = "";
	int first_rc = 0;
	unsigned long long rawlen;
	size_t lineno = 0;
	struct line l;

	memset(out, 0, sizeof *out);
	while (next_line(p, end, &l)) {
		char *json = NULL;
		int h, rc;

		lineno++;
		p = l.next;
		h = parse_header(&record_kind, &l, lineno, &rawlen, hex);
		if (h == 0)
			continue;
		rc = h < 0 ? KPAR_EINVAL : decode_body(&record_kind, end, &l, lineno, rawlen, hex,
							&json, &after);
		if (rc == 0) {
			rc = from_json(json, (size_t)rawlen, out);
			free(json);
			if (rc == 0)
				return 0;
			kpar_bucket_result_free(out);
			kpar_error_prefix(rc, "result record at line %zu", lineno);
		}
		/* Keep looking: a later copy may be intact; report the first damage. */
		if (first_rc == 0) {
			first_rc = rc;
			snprintf(first_err, sizeof first_err, "%s", kpar_error_last());
		}
	}
	if (first_rc < 0)
		return kpar_error_set(first_rc, "%s", first_err);
	return kpar_error_set(KPAR_ENOTFOUND, "no result record (no '%s...' line) in %zu bytes "
			      "of text", HEADER_TAG, len);
}

int kpar_record_encode_log(const char *data, size_t len, struct kpar_buf *out)
{
	if (len > KPAR_RECORD_RAW_MAX)
		return kpar_error_set(KPAR_EINVAL, "log frame: %zu bytes exceed the limit of %u",
				      len, KPAR_RECORD_RAW_MAX);
	return frame(&log_kind, data ? data : "", len, out);
}

size_t kpar_record_decode_logs(const char *text, size_t len,
			       void (*fn)(void *arg, const char *data, size_t len), void *arg)
{
	const char *p = text, *end = text + len, *after;
	char hex[KPAR_SHA256_HEX];
	unsigned long long rawlen;
	size_t lineno = 0, damaged = 0;
	struct line l;

	/* a record without frames (every local one) costs one search */
	if (!text || !memmem(text, len, LOG_TAG, strlen(LOG_TAG)))
		return 0;
	while (next_line(p, end, &l)) {
		char *data = NULL;
		int h;

		lineno++;
		p = l.next;
		h = parse_header(&log_kind, &l, lineno, &rawlen, hex);
		if (h == 0)
			continue;
		after = l.next;
		if (h < 0 || decode_body(&log_kind, end, &l, lineno, rawlen, hex, &data, &after) < 0) {
			damaged++;
			kpar_error_clear();
			continue;
		}
		fn(arg, data, (size_t)rawlen);
		free(data);
		/* past the frame: its base64 lines are not headers anyway, but
		 * skipping them saves scanning megabytes twice */
		for (; p < after; p++)
			lineno += *p == '\n';
	}
	return damaged;
}

const char *kpar_record_skip_reason(const struct kpar_test_result *t, size_t max, size_t *len)
{
	const char *out = t->output, *start, *end;

	*len = 0;
	if (t->status == KPAR_SKIP && t->note && *t->note) {
		/* the protocol's own reason ("1..0 # SKIP why") */
		start = t->note;
		end = start + strlen(start);
	} else {
		if (!out)
			return NULL;
		/* trailing blank lines and blanks go first, so the line found is not empty */
		end = out + t->output_len;
		while (end > out && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ' ||
				     end[-1] == '\t'))
			end--;
		if (end == out)
			return NULL;
		start = end;
		while (start > out && start[-1] != '\n')
			start--;
		while (*start == ' ' || *start == '\t' || *start == '\r')
			start++;
	}
	if ((size_t)(end - start) > max) {
		end = start + max;
		while (end > start && ((unsigned char)*end & 0xc0) == 0x80)
			end--;
	}
	*len = (size_t)(end - start);
	return start;
}
