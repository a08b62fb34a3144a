/* cache_name.c - the artifact cache's names and settings: checksums, keys,
 * link names, where an artifact lives, sizes and durations, options.
 *
 * Everything here is pure (no I/O but getenv) and free of libcurl, because
 * the Make plugin (which links only libkpar_core) computes an artifact's
 * path at parse time with exactly these functions, and `kpar fetch` must
 * arrive at the same path.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "cache/cache_int.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/fs.h"

/* --- options --- */

void kpar_cache_opts_init(struct kpar_cache_opts *o)
{
	memset(o, 0, sizeof *o);
	o->revalidate = KPAR_CACHE_REVALIDATE_ALWAYS;
	o->retries = 2;
	o->connect_timeout = 30;
	o->stall_timeout = 60;
}

void kpar_cache_opts_free(struct kpar_cache_opts *o)
{
	free(o->dir);
	free(o->used_list);
	free(o->ca_bundle);
	kpar_strv_free(&o->mirrors);
	o->dir = o->used_list = o->ca_bundle = NULL;
}

void kpar_cache_opts_set_mirrors(struct kpar_cache_opts *o, const char *list)
{
	const char *p = list;

	kpar_strv_free(&o->mirrors);
	while (p && *p) {
		size_t n;
		while (*p == ' ' || *p == '\t' || *p == '\n')
			p++;
		n = strcspn(p, " \t\n");
		if (n)
			kpar_strv_pushn(&o->mirrors, p, n);
		p += n;
	}
}

int kpar_cache_default_dir(char **out)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");

	*out = NULL;
	/* The XDG spec says a relative XDG_CACHE_HOME is invalid and ignored. */
	if (xdg && xdg[0] == '/') {
		*out = kpar_fs_join(xdg, "kpar");
		return 0;
	}
	if (home && *home) {
		*out = kpar_xasprintf("%s%s.cache/kpar", home,
				      home[strlen(home) - 1] == '/' ? "" : "/");
		return 0;
	}
	return kpar_error_set(KPAR_EINVAL, "no cache directory: set KPAR_CACHE_DIR, "
			      "XDG_CACHE_HOME or HOME");
}

/* --- parsing --- */

static int is_hex(char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

int kpar_cache_parse_sha256(const char *in, char hex[KPAR_SHA256_HEX])
{
	const char *p = in ? in : "";
	size_t i;

	if (strncmp(p, "sha256:", 7) == 0)
		p += 7;
	for (i = 0; i < 64; i++) {
		if (!is_hex(p[i]))
			break;
		hex[i] = (char)(p[i] >= 'A' && p[i] <= 'F' ? p[i] - 'A' + 'a' : p[i]);
	}
	if (i != 64 || p[64] != '\0')
		return kpar_error_set(KPAR_EINVAL, "'%s' is not a SHA-256 checksum "
				      "(64 hex digits, optionally prefixed 'sha256:')", in ? in : "");
	hex[64] = '\0';
	return 0;
}

static int name_char(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '.' || ch == '_' || ch == '-' || ch == '+' || ch == '~';
}

int kpar_cache_check_name(const char *name)
{
	size_t i, n = strlen(name);

	if (n == 0 || n > KPAR_CACHE_NAME_MAX || name[0] == '.')
		goto bad;
	for (i = 0; i < n; i++)
		if (!name_char((unsigned char)name[i]))
			goto bad;
	return 0;
bad:
	/* The name ends up in a Make target and a path: keep it plain. */
	return kpar_error_set(KPAR_EINVAL, "artifact name '%s' must be 1 to %d characters of "
			      "A-Z a-z 0-9 . _ - + ~, not starting with '.'", name,
			      KPAR_CACHE_NAME_MAX);
}

/* Only the last path segment is wanted, and the plugin has no libcurl:
 * drop "?query" and "#fragment", skip "scheme://authority", take what
 * follows the last '/'.  Percent-escapes are not decoded ('%' becomes '_'
 * like any other character outside the name set), so the result is the
 * same in the plugin and in `kpar fetch`. */
char *kpar_cache_url_name(const char *url)
{
	size_t n = strcspn(url, "?#");
	const char *start = url, *scheme = strstr(url, "://"), *base;
	char *seg, *out;
	size_t i;

	if (scheme && (size_t)(scheme - url) < n) {
		start = scheme + 3;
		start += strcspn(start, "/?#");         /* the authority */
	}
	if (start > url + n)
		start = url + n;
	seg = kpar_xstrndup(start, n - (size_t)(start - url));
	n = strlen(seg);
	while (n > 0 && seg[n - 1] == '/')
		seg[--n] = '\0';
	base = strrchr(seg, '/');
	base = base ? base + 1 : seg;
	while (*base == '.')
		base++;
	n = strlen(base);
	if (n > KPAR_CACHE_NAME_MAX)
		base += n - KPAR_CACHE_NAME_MAX;    /* keep the extension */
	out = kpar_xstrdup(base);
	for (i = 0; out[i]; i++)
		if (!name_char((unsigned char)out[i]))
			out[i] = '_';
	free(seg);
	if (!*out || out[0] == '.') {
		free(out);
		out = kpar_xstrdup("artifact");
	}
	return out;
}

void kpar_cache_key(const char *url, const char *sha256_hex, char out[KPAR_CACHE_KEY_MAX])
{
	unsigned char raw[KPAR_SHA256_LEN];

	if (sha256_hex && *sha256_hex) {
		memcpy(out, "sha256:", 7);
		memcpy(out + 7, sha256_hex, 64);
		out[71] = '\0';
		return;
	}
	kpar_sha256(url, strlen(url), raw);
	memcpy(out, "url:", 4);
	kpar_hex(raw, sizeof raw, out + 4);
}

int kpar_cache_check_key(const char *key)
{
	const char *p;
	size_t i;

	if (strncmp(key, "sha256:", 7) == 0)
		p = key + 7;
	else if (strncmp(key, "url:", 4) == 0)
		p = key + 4;
	else
		goto bad;
	for (i = 0; i < 64; i++)
		if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
			goto bad;
	if (p[64] == '\0')
		return 0;
bad:
	return kpar_error_set(KPAR_EINVAL, "'%s' is not a cache key (sha256:<hex> or url:<hex>)",
			      key);
}

const char *kpar_cache__key_id(const char *key)
{
	const char *colon = strchr(key, ':');
	return colon ? colon + 1 : key;
}

int kpar_cache_path(const char *dir, const char *url, const char *sha256, const char *name,
		    char **out)
{
	char hex[KPAR_SHA256_HEX], key[KPAR_CACHE_KEY_MAX];
	char *derived = NULL;
	int rc;

	*out = NULL;
	if (!url || !*url)
		return kpar_error_set(KPAR_EINVAL, "no URL given");
	if (name && *name && (rc = kpar_cache_check_name(name)) < 0)
		return rc;
	if (sha256 && *sha256) {
		if ((rc = kpar_cache_parse_sha256(sha256, hex)) < 0)
			return rc;
		if (name && *name)
			*out = kpar_xasprintf("%s/named/%s/%s", dir, hex, name);
		else
			*out = kpar_xasprintf("%s/blobs/sha256/%s", dir, hex);
		return 0;
	}
	kpar_cache_key(url, NULL, key);
	if (!name || !*name)
		name = derived = kpar_cache_url_name(url);
	*out = kpar_xasprintf("%s/snapshots/%s/%s", dir, kpar_cache__key_id(key), name);
	free(derived);
	return 0;
}

static int parse_scaled(const char *s, double *num, const char **suffix)
{
	char *end;

	if (!s || !*s || !((*s >= '0' && *s <= '9') || *s == '.'))
		return -1;
	errno = 0;
	*num = strtod(s, &end);
	if (errno || end == s || !isfinite(*num) || *num < 0)
		return -1;
	*suffix = end;
	return 0;
}

int kpar_cache_parse_size(const char *s, uint64_t *out)
{
	static const char units[] = "KMGTP";
	const char *suf;
	double n, mult = 1;

	if (parse_scaled(s, &n, &suf) < 0)
		goto bad;
	if (*suf) {
		const char *u = strchr(units, *suf >= 'a' ? *suf - 32 : *suf);
		if (!u)
			goto bad;
		mult = pow(1024.0, (double)(u - units + 1));
		suf++;
		if (*suf == 'i')
			suf++;
		if (*suf == 'B' || *suf == 'b')
			suf++;
	} else if (*suf == 'B') {
		suf++;
	}
	if (*suf || n * mult >= 18446744073709551615.0)
		goto bad;
	*out = (uint64_t)(n * mult);
	return 0;
bad:
	return kpar_error_set(KPAR_EINVAL, "'%s' is not a size (a number with an optional "
			      "K, M, G or T suffix)", s ? s : "");
}

int kpar_cache_parse_age(const char *s, long *out)
{
	const char *suf;
	double n, mult = 1;

	if (parse_scaled(s, &n, &suf) < 0)
		goto bad;
	switch (*suf) {
	case '\0': break;
	case 's': mult = 1; suf++; break;
	case 'm': mult = 60; suf++; break;
	case 'h': mult = 3600; suf++; break;
	case 'd': mult = 86400; suf++; break;
	case 'w': mult = 7 * 86400; suf++; break;
	default: goto bad;
	}
	if (*suf || n * mult > 9.0e15)
		goto bad;
	*out = (long)(n * mult);
	return 0;
bad:
	return kpar_error_set(KPAR_EINVAL, "'%s' is not a duration (seconds, or a number "
			      "with an s, m, h, d or w suffix)", s ? s : "");
}

int kpar_cache_parse_revalidate(const char *s, long *out)
{
	if (s && strcmp(s, "always") == 0) {
		*out = KPAR_CACHE_REVALIDATE_ALWAYS;
		return 0;
	}
	if (s && strcmp(s, "never") == 0) {
		*out = KPAR_CACHE_REVALIDATE_NEVER;
		return 0;
	}
	if (kpar_cache_parse_age(s, out) < 0)
		return kpar_error_set(KPAR_EINVAL, "'%s' is not a revalidation policy "
				      "(always, never, or seconds between checks)", s ? s : "");
	return 0;
}

