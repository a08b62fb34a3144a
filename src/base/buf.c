/* buf.c - growable buffers, string vectors and the allocation wrappers. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"

static void oom(size_t n)
{
	fprintf(stderr, "kpar: out of memory allocating %zu bytes\n", n);
	abort();
}

void *kpar_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		oom(n);
	return p;
}

void *kpar_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);
	if (!p)
		oom(n * size);
	return p;
}

void *kpar_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		oom(n);
	return q;
}

char *kpar_xstrdup(const char *s)
{
	return kpar_xstrndup(s, strlen(s));
}

char *kpar_xstrndup(const char *s, size_t n)
{
	char *p = kpar_xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *kpar_xasprintf(const char *fmt, ...)
{
	struct kpar_buf b = KPAR_BUF_INIT;
	va_list ap;

	va_start(ap, fmt);
	kpar_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	return kpar_buf_detach(&b, NULL);
}

void kpar_buf_grow(struct kpar_buf *b, size_t extra)
{
	size_t need = b->len + extra + 1;
	size_t cap;

	if (need < extra)
		oom(SIZE_MAX);
	if (need <= b->cap)
		return;
	cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap = cap * 2 > cap ? cap * 2 : need;
	b->data = kpar_xrealloc(b->data, cap);
	b->cap = cap;
}

void kpar_buf_add(struct kpar_buf *b, const void *data, size_t len)
{
	kpar_buf_grow(b, len);
	if (len)
		memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
}

void kpar_buf_puts(struct kpar_buf *b, const char *s)
{
	kpar_buf_add(b, s, strlen(s));
}

void kpar_buf_putc(struct kpar_buf *b, char c)
{
	kpar_buf_add(b, &c, 1);
}

void kpar_buf_vprintf(struct kpar_buf *b, const char *fmt, va_list ap)
{
	va_list ap2;
	int n;

	va_copy(ap2, ap);
	n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return;
	kpar_buf_grow(b, (size_t)n);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void kpar_buf_printf(struct kpar_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	kpar_buf_vprintf(b, fmt, ap);
	va_end(ap);
}

void kpar_buf_shell_quote(struct kpar_buf *b, const char *s)
{
	/* Single quotes make every byte literal; a quote itself is closed,
	 * escaped and reopened. */
	kpar_buf_putc(b, '\'');
	for (; *s; s++) {
		if (*s == '\'')
			kpar_buf_puts(b, "'\\''");
		else
			kpar_buf_putc(b, *s);
	}
	kpar_buf_putc(b, '\'');
}

void kpar_buf_clear(struct kpar_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = '\0';
}

void kpar_buf_free(struct kpar_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

char *kpar_buf_detach(struct kpar_buf *b, size_t *len_out)
{
	char *p;

	if (!b->data)
		kpar_buf_grow(b, 0), b->data[0] = '\0';
	p = b->data;
	if (len_out)
		*len_out = b->len;
	b->data = NULL;
	b->len = b->cap = 0;
	return p;
}

void kpar_strv_pushn(struct kpar_strv *sv, const char *s, size_t len)
{
	if (sv->n + 2 > sv->cap) {
		sv->cap = sv->cap ? sv->cap * 2 : 16;
		sv->v = kpar_xrealloc(sv->v, sv->cap * sizeof *sv->v);
	}
	sv->v[sv->n++] = kpar_xstrndup(s, len);
	sv->v[sv->n] = NULL;
}

void kpar_strv_push(struct kpar_strv *sv, const char *s)
{
	kpar_strv_pushn(sv, s, strlen(s));
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void kpar_strv_sort(struct kpar_strv *sv)
{
	if (sv->n > 1)
		qsort(sv->v, sv->n, sizeof *sv->v, cmp_str);
}

void kpar_strv_uniq(struct kpar_strv *sv)
{
	size_t i, j = 0;

	for (i = 0; i < sv->n; i++) {
		if (j > 0 && strcmp(sv->v[j - 1], sv->v[i]) == 0) {
			free(sv->v[i]);
			continue;
		}
		sv->v[j++] = sv->v[i];
	}
	sv->n = j;
	if (sv->v)
		sv->v[j] = NULL;
}

void kpar_strv_free(struct kpar_strv *sv)
{
	size_t i;

	for (i = 0; i < sv->n; i++)
		free(sv->v[i]);
	free(sv->v);
	sv->v = NULL;
	sv->n = sv->cap = 0;
}

void kpar_wipe_free(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

void kpar_buf_url_escape(struct kpar_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;

	kpar_buf_puts(b, "");  /* an empty value still leaves a valid string */
	for (p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '.' || *p == '_' || *p == '~') {
			kpar_buf_putc(b, (char)*p);
		} else {
			kpar_buf_putc(b, '%');
			kpar_buf_putc(b, hex[*p >> 4]);
			kpar_buf_putc(b, hex[*p & 15]);
		}
	}
}
