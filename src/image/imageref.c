/* imageref.c - parsing image references the way the docker CLI does (distribution/reference). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/error.h"
#include "image/imageref.h"

static int is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int is_alnum(char c)
{
	return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

/* One path component: [a-z0-9]+ ((\.|_|__|-+)[a-z0-9]+)* */
static int component_ok(const char *s, size_t len)
{
	size_t i = 0;

	if (len == 0 || !is_lower_alnum(s[0]) || !is_lower_alnum(s[len - 1]))
		return 0;
	while (i < len) {
		if (is_lower_alnum(s[i])) {
			i++;
			continue;
		}
		if (s[i] == '.') {
			i++;
		} else if (s[i] == '_') {
			i += (i + 1 < len && s[i + 1] == '_') ? 2 : 1;
		} else if (s[i] == '-') {
			while (i < len && s[i] == '-')
				i++;
		} else {
			return 0;
		}
		if (i >= len || !is_lower_alnum(s[i]))
			return 0;
	}
	return 1;
}

/* host: DNS-ish labels or an IPv6 literal in brackets, then an optional :port. */
static int host_ok(const char *s, size_t len)
{
	size_t i = 0, port_at = len;

	if (len == 0)
		return 0;
	if (s[0] == '[') {
		const char *close = memchr(s, ']', len);
		if (!close)
			return 0;
		for (i = 1; s + i < close; i++)
			if (!(is_alnum(s[i]) || s[i] == ':' || s[i] == '.' || s[i] == '%'))
				return 0;
		i = (size_t)(close - s) + 1;
		if (i == len)
			return 1;
		if (s[i] != ':')
			return 0;
		port_at = i;
	} else {
		for (i = 0; i < len; i++) {
			if (s[i] == ':') {
				port_at = i;
				break;
			}
			if (!(is_alnum(s[i]) || s[i] == '.' || s[i] == '-'))
				return 0;
			if ((s[i] == '.' || s[i] == '-') && (i == 0 || s[i - 1] == '.'))
				return 0;
		}
		if (port_at == 0 || s[port_at - 1] == '.' || s[port_at - 1] == '-')
			return 0;
	}
	if (port_at < len) {
		size_t digits = len - port_at - 1;
		if (digits == 0 || digits > 5)
			return 0;
		for (i = port_at + 1; i < len; i++)
			if (s[i] < '0' || s[i] > '9')
				return 0;
	}
	return 1;
}

static int tag_ok(const char *s)
{
	size_t i, len = strlen(s);

	if (len == 0 || len > 128 || !(is_alnum(s[0]) || s[0] == '_'))
		return 0;
	for (i = 1; i < len; i++)
		if (!(is_alnum(s[i]) || s[i] == '_' || s[i] == '.' || s[i] == '-'))
			return 0;
	return 1;
}

static int digest_ok(const char *s)
{
	size_t i;

	if (strncmp(s, "sha256:", 7) != 0 || strlen(s) != 7 + 64)
		return 0;
	for (i = 7; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

void kpar_imageref_free(struct kpar_imageref *ref)
{
	free(ref->host);
	free(ref->repo);
	free(ref->tag);
	free(ref->digest);
	memset(ref, 0, sizeof *ref);
}

int kpar_imageref_parse(const char *s, struct kpar_imageref *out)
{
	char *work = NULL, *at, *name, *slash, *colon, *p;
	int rc = 0;

	memset(out, 0, sizeof *out);
	if (!s || !*s)
		return kpar_error_set(KPAR_EINVAL, "empty image reference");
	if (strlen(s) > 4096)
		return kpar_error_set(KPAR_EINVAL, "image reference too long (%zu bytes)", strlen(s));
	work = kpar_xstrdup(s);

	at = strchr(work, '@');
	if (at) {
		*at = '\0';
		if (!digest_ok(at + 1)) {
			rc = kpar_error_set(KPAR_EINVAL, "image reference '%s': bad digest '%s' "
					    "(want sha256: and 64 lowercase hex digits)", s, at + 1);
			goto done;
		}
		out->digest = kpar_xstrdup(at + 1);
	}

	/* The tag is after a ':' in the last path component only, so that
	 * "host:5000/repo" keeps its port. */
	name = work;
	slash = strrchr(name, '/');
	colon = strrchr(slash ? slash : name, ':');
	if (colon) {
		*colon = '\0';
		if (!tag_ok(colon + 1)) {
			rc = kpar_error_set(KPAR_EINVAL, "image reference '%s': bad tag '%s'", s, colon + 1);
			goto done;
		}
		out->tag = kpar_xstrdup(colon + 1);
	}

	slash = strchr(name, '/');
	if (slash && (memchr(name, '.', (size_t)(slash - name)) ||
		      memchr(name, ':', (size_t)(slash - name)) ||
		      (slash - name == 9 && strncmp(name, "localhost", 9) == 0) ||
		      name[0] == '[')) {
		if (!host_ok(name, (size_t)(slash - name))) {
			rc = kpar_error_set(KPAR_EINVAL, "image reference '%s': bad registry host '%.*s'",
					    s, (int)(slash - name), name);
			goto done;
		}
		out->host = kpar_xstrndup(name, (size_t)(slash - name));
		name = slash + 1;
	} else {
		out->host = kpar_xstrdup("docker.io");
	}

	/* Validate each repository component. */
	if (!*name) {
		rc = kpar_error_set(KPAR_EINVAL, "image reference '%s': no repository name", s);
		goto done;
	}
	for (p = name;;) {
		char *end = strchr(p, '/');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (!component_ok(p, len)) {
			rc = kpar_error_set(KPAR_EINVAL, "image reference '%s': bad repository component "
					    "'%.*s' (lowercase letters, digits and . _ __ - separators)",
					    s, (int)len, p);
			goto done;
		}
		if (!end)
			break;
		p = end + 1;
	}
	if (strlen(name) > 255) {
		rc = kpar_error_set(KPAR_EINVAL, "image reference '%s': repository name over 255 bytes", s);
		goto done;
	}
	if (strcmp(out->host, "docker.io") == 0 && !strchr(name, '/'))
		out->repo = kpar_xasprintf("library/%s", name);
	else
		out->repo = kpar_xstrdup(name);
	if (!out->tag && !out->digest)
		out->tag = kpar_xstrdup("latest");

done:
	free(work);
	if (rc < 0)
		kpar_imageref_free(out);
	return rc;
}

const char *kpar_imageref_target(const struct kpar_imageref *ref)
{
	return ref->digest ? ref->digest : ref->tag;
}

char *kpar_imageref_format(const struct kpar_imageref *ref)
{
	struct kpar_buf b = KPAR_BUF_INIT;

	kpar_buf_printf(&b, "%s/%s", ref->host, ref->repo);
	if (ref->tag)
		kpar_buf_printf(&b, ":%s", ref->tag);
	if (ref->digest)
		kpar_buf_printf(&b, "@%s", ref->digest);
	return kpar_buf_detach(&b, NULL);
}
