/* test_registry_ref.c - image reference parsing (imageref.h). */
#include "config.h"

#include <stdlib.h>

#include "base/error.h"
#include "image/imageref.h"
#include "test.h"

#define D64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void check_ref(const char *s, const char *host, const char *repo, const char *tag,
		      const char *digest)
{
	struct kpar_imageref r;
	int rc = kpar_imageref_parse(s, &r);

	CHECK_OK(rc);
	if (rc < 0)
		return;
	CHECK_STR(r.host, host);
	CHECK_STR(r.repo, repo);
	if (tag)
		CHECK_STR(r.tag, tag);
	else
		CHECK(r.tag == NULL);
	if (digest)
		CHECK_STR(r.digest, digest);
	else
		CHECK(r.digest == NULL);
	kpar_imageref_free(&r);
}

KPAR_TEST(docker_hub_defaults)
{
	check_ref("debian", "docker.io", "library/debian", "latest", NULL);
	check_ref("debian:bookworm-slim", "docker.io", "library/debian", "bookworm-slim", NULL);
	check_ref("bitnami/redis:7", "docker.io", "bitnami/redis", "7", NULL);
	check_ref("docker.io/debian", "docker.io", "library/debian", "latest", NULL);
	check_ref("docker.io/library/debian:12", "docker.io", "library/debian", "12", NULL);
}

KPAR_TEST(hosts_and_ports)
{
	check_ref("127.0.0.1:5000/kpar/base:1", "127.0.0.1:5000", "kpar/base", "1", NULL);
	check_ref("localhost/x", "localhost", "x", "latest", NULL);
	check_ref("localhost:5000/x", "localhost:5000", "x", "latest", NULL);
	check_ref("ghcr.io/o/p/q", "ghcr.io", "o/p/q", "latest", NULL);
	check_ref("[::1]:5000/a", "[::1]:5000", "a", "latest", NULL);
	/* Without '.' or ':' the first component is a namespace, not a host. */
	check_ref("myhost/x", "docker.io", "myhost/x", "latest", NULL);
}

KPAR_TEST(digests)
{
	check_ref("r.io/a@sha256:" D64, "r.io", "a", NULL, "sha256:" D64);
	check_ref("r.io:443/a:t@sha256:" D64, "r.io:443", "a", "t", "sha256:" D64);
	{
		struct kpar_imageref r;
		char *s;
		CHECK_OK(kpar_imageref_parse("r.io/a:t@sha256:" D64, &r));
		CHECK_STR(kpar_imageref_target(&r), "sha256:" D64);
		s = kpar_imageref_format(&r);
		CHECK_STR(s, "r.io/a:t@sha256:" D64);
		free(s);
		kpar_imageref_free(&r);
		CHECK_OK(kpar_imageref_parse("debian", &r));
		CHECK_STR(kpar_imageref_target(&r), "latest");
		s = kpar_imageref_format(&r);
		CHECK_STR(s, "docker.io/library/debian:latest");
		free(s);
		kpar_imageref_free(&r);
	}
}

static void check_bad(const char *s, const char *fragment)
{
	struct kpar_imageref r;

	CHECK_INT(kpar_imageref_parse(s, &r), KPAR_EINVAL);
	CHECK(r.host == NULL && r.repo == NULL);
	if (fragment && !strstr(kpar_error_last(), fragment)) {
		fprintf(stderr, "message '%s' lacks '%s'\n", kpar_error_last(), fragment);
		CHECK(0);
	}
}

KPAR_TEST(malformed)
{
	check_bad("", "empty");
	check_bad("Debian", "'Debian'");
	check_bad("a//b", "bad repository component");
	check_bad("a/", "bad repository component");
	check_bad("a:", "bad tag");
	check_bad("a:-x", "bad tag '-x'");
	check_bad("a:t@sha256:abc", "bad digest");
	check_bad("a@md5:" D64, "bad digest");
	check_bad("a@sha256:" D64 "00", "bad digest");
	check_bad("a@sha256:" "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
		  "bad digest");
	check_bad("r.io:port/a", "bad registry host");
	check_bad("-r.io/a", NULL);
	check_bad("r.io/a__-b", "bad repository component");
	check_bad("r.io/a..b", "bad repository component");
	check_bad("r.io/", "no repository");
	check_bad("a b", NULL);
	check_bad("r.io/a:" "x1234567890123456789012345678901234567890123456789012345678901234567890"
		  "1234567890123456789012345678901234567890123456789012345678901", "bad tag");
}

KPAR_TEST(separators)
{
	check_ref("a_b/c__d/e-f/g---h/i.j", "docker.io", "a_b/c__d/e-f/g---h/i.j", "latest", NULL);
}

KPAR_TEST_MAIN(KPAR_CASE(docker_hub_defaults), KPAR_CASE(hosts_and_ports), KPAR_CASE(digests),
	       KPAR_CASE(malformed), KPAR_CASE(separators))
