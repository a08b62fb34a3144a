/* imageref.h - image references: [host[:port]/]repo[:tag][@digest], Docker's defaults.
 *
 * "debian" is docker.io/library/debian:latest; the first component is a
 * host when it contains '.' or ':' or is "localhost" (Docker's rule), so
 * "127.0.0.1:5000/kpar/base:1" is host 127.0.0.1:5000, repo kpar/base.
 * Repository components are lowercase [a-z0-9] with '.', '_', '__' or '-'
 * separators; a tag is [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}; a digest is
 * "sha256:" + 64 lowercase hex digits.
 */
#ifndef KPAR_IMAGEREF_H
#define KPAR_IMAGEREF_H

struct kpar_imageref {
	char *host;    /* "docker.io" when the reference names none */
	char *repo;    /* "library/debian" for a one-component docker.io name */
	char *tag;     /* "latest" when neither tag nor digest is given; else NULL if absent */
	char *digest;  /* "sha256:<hex>" or NULL */
};

/* Parses s; all fields of *out are malloc'd (free with kpar_imageref_free).
 * KPAR_EINVAL, naming s and the offending part, when malformed. */
int kpar_imageref_parse(const char *s, struct kpar_imageref *out);
void kpar_imageref_free(struct kpar_imageref *ref);
/* What to fetch: the digest when there is one, else the tag.  Borrowed. */
const char *kpar_imageref_target(const struct kpar_imageref *ref);
/* Canonical spelling host/repo[:tag][@digest]; malloc'd. */
char *kpar_imageref_format(const struct kpar_imageref *ref);

#endif
