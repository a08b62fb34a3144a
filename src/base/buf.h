/* buf.h - growable byte buffers and string vectors.
 *
 * A kpar_buf always keeps a terminating NUL after its `len` bytes (when
 * `data` is non-NULL), so text built in it can be used as a C string.
 * Allocation failure aborts: kpar treats out-of-memory as fatal, as SQLite's
 * and curl's tools do, which keeps every caller free of OOM branches.
 */
#ifndef KPAR_BUF_H
#define KPAR_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct kpar_buf {
	char *data;
	size_t len;
	size_t cap;
};

#define KPAR_BUF_INIT { NULL, 0, 0 }

void kpar_buf_grow(struct kpar_buf *b, size_t extra);
void kpar_buf_add(struct kpar_buf *b, const void *data, size_t len);
void kpar_buf_puts(struct kpar_buf *b, const char *s);
void kpar_buf_putc(struct kpar_buf *b, char c);
void kpar_buf_printf(struct kpar_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void kpar_buf_vprintf(struct kpar_buf *b, const char *fmt, va_list ap);
/* Appends s quoted for a POSIX shell: one word whatever s holds. */
void kpar_buf_shell_quote(struct kpar_buf *b, const char *s);
/* Appends s percent-encoded for a URL query or form value: RFC 3986's
 * unreserved characters as they are, every other byte as %XX. */
void kpar_buf_url_escape(struct kpar_buf *b, const char *s);
void kpar_buf_clear(struct kpar_buf *b);
void kpar_buf_free(struct kpar_buf *b);
/* Hands the bytes to the caller (free with free()); b is emptied. */
char *kpar_buf_detach(struct kpar_buf *b, size_t *len_out);
/* "s" unless n is 1: "%zu test%s", n, kpar_buf_plural(n) reads "1 test",
 * "0 tests". */
static inline const char *kpar_buf_plural(size_t n)
{
	return n == 1 ? "" : "s";
}

/* A NULL-terminated vector of owned strings. */
struct kpar_strv {
	char **v;
	size_t n;
	size_t cap;
};

#define KPAR_STRV_INIT { NULL, 0, 0 }

void kpar_strv_push(struct kpar_strv *sv, const char *s);
void kpar_strv_pushn(struct kpar_strv *sv, const char *s, size_t len);
/* Sorts bytewise (strcmp) so order never depends on the locale. */
void kpar_strv_sort(struct kpar_strv *sv);
/* Removes adjacent duplicates; call after sorting. */
void kpar_strv_uniq(struct kpar_strv *sv);
void kpar_strv_free(struct kpar_strv *sv);

/* Zeroes a secret string (a token, a password) before freeing it; NULL is fine. */
void kpar_wipe_free(char *s);

void *kpar_xmalloc(size_t n);
void *kpar_xcalloc(size_t n, size_t size);
void *kpar_xrealloc(void *p, size_t n);
char *kpar_xstrdup(const char *s);
char *kpar_xstrndup(const char *s, size_t n);
char *kpar_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
