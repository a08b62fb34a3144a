/* test_registry.c - WWW-Authenticate parsing, URL query building, insecure-host rules, open(). */
#include "config.h"

#include <stdlib.h>

#include "base/error.h"
#include "image/registry.h"
#include "test.h"

KPAR_TEST(challenge_bearer)
{
	struct kpar_auth_challenge c;

	CHECK_OK(kpar_registry_parse_challenge("Bearer realm=\"https://auth.example.com/token\","
					       "service=\"registry.example.com\","
					       "scope=\"repository:a/b:pull,push\"", &c));
	CHECK_STR(c.scheme, "Bearer");
	CHECK_STR(c.realm, "https://auth.example.com/token");
	CHECK_STR(c.service, "registry.example.com");
	/* The comma inside the quoted scope must not split it. */
	CHECK_STR(c.scope, "repository:a/b:pull,push");
	CHECK(c.error == NULL);
	kpar_auth_challenge_free(&c);
}

KPAR_TEST(challenge_spacing_case_escapes)
{
	struct kpar_auth_challenge c;

	CHECK_OK(kpar_registry_parse_challenge("  bearer   Realm = \"https://a/t?x=1,y=2\" ,  "
					       "SERVICE=reg , scope=\"repository:x:pull "
					       "repository:y:pull\", error=\"insufficient_scope\", "
					       "other=\"a \\\"quoted\\\" word\"", &c));
	CHECK_STR(c.scheme, "bearer");
	CHECK_STR(c.realm, "https://a/t?x=1,y=2");
	CHECK_STR(c.service, "reg");
	CHECK_STR(c.scope, "repository:x:pull repository:y:pull");
	CHECK_STR(c.error, "insufficient_scope");
	kpar_auth_challenge_free(&c);

	CHECK_OK(kpar_registry_parse_challenge("Bearer realm=\"r\\\\x\\\"y\"", &c));
	CHECK_STR(c.realm, "r\\x\"y");
	kpar_auth_challenge_free(&c);
}

KPAR_TEST(challenge_basic_and_lists)
{
	struct kpar_auth_challenge c;

	CHECK_OK(kpar_registry_parse_challenge("Basic realm=\"kpar-test\"", &c));
	CHECK_STR(c.scheme, "Basic");
	CHECK_STR(c.realm, "kpar-test");
	kpar_auth_challenge_free(&c);

	/* A second challenge in the same header ends the first one's parameters. */
	CHECK_OK(kpar_registry_parse_challenge("Basic realm=\"one\", Bearer realm=\"two\"", &c));
	CHECK_STR(c.scheme, "Basic");
	CHECK_STR(c.realm, "one");
	kpar_auth_challenge_free(&c);

	CHECK_OK(kpar_registry_parse_challenge("Bearer", &c));
	CHECK_STR(c.scheme, "Bearer");
	CHECK(c.realm == NULL);
	kpar_auth_challenge_free(&c);

	CHECK_OK(kpar_registry_parse_challenge("Bearer realm=unquoted-token,service=s", &c));
	CHECK_STR(c.realm, "unquoted-token");
	CHECK_STR(c.service, "s");
	kpar_auth_challenge_free(&c);
}

KPAR_TEST(challenge_malformed)
{
	struct kpar_auth_challenge c;

	CHECK_INT(kpar_registry_parse_challenge("", &c), KPAR_EINVAL);
	CHECK_INT(kpar_registry_parse_challenge("   ", &c), KPAR_EINVAL);
	CHECK_INT(kpar_registry_parse_challenge("Bearer realm=\"never closed", &c), KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), "unterminated") != NULL);
	CHECK_INT(kpar_registry_parse_challenge("Bearer realm=\"a\"junk", &c), KPAR_EINVAL);
	CHECK(c.scheme == NULL);
}

KPAR_TEST(url_add_query)
{
	char *u;

	u = kpar_registry_url_add_query("http://h/v2/r/blobs/uploads/x?_state=abc%3D", "digest",
					"sha256:00ff");
	CHECK_STR(u, "http://h/v2/r/blobs/uploads/x?_state=abc%3D&digest=sha256%3A00ff");
	free(u);
	u = kpar_registry_url_add_query("/v2/r/blobs/uploads/x", "digest", "sha256:1");
	CHECK_STR(u, "/v2/r/blobs/uploads/x?digest=sha256%3A1");
	free(u);
	u = kpar_registry_url_add_query("http://h/x?", "a", "b c/d");
	CHECK_STR(u, "http://h/x?a=b%20c%2Fd");
	free(u);
	u = kpar_registry_url_add_query("http://h/x?a=1&", "b", "2");
	CHECK_STR(u, "http://h/x?a=1&b=2");
	free(u);
}

KPAR_TEST(insecure_hosts)
{
	CHECK_INT(kpar_registry_host_insecure_ok("127.0.0.1:5000", NULL), 1);
	CHECK_INT(kpar_registry_host_insecure_ok("127.3.2.1", NULL), 1);
	CHECK_INT(kpar_registry_host_insecure_ok("localhost:5000", NULL), 1);
	CHECK_INT(kpar_registry_host_insecure_ok("[::1]:5000", NULL), 1);
	CHECK_INT(kpar_registry_host_insecure_ok("127.0.0.1.evil.com:5000", NULL), 0);
	CHECK_INT(kpar_registry_host_insecure_ok("localhost.evil.com", NULL), 0);
	CHECK_INT(kpar_registry_host_insecure_ok("registry.example.com", NULL), 0);
	CHECK_INT(kpar_registry_host_insecure_ok("registry.example.com", ""), 0);
	CHECK_INT(kpar_registry_host_insecure_ok("reg.lan:5000", "a.lan, reg.lan:5000 ,b"), 1);
	CHECK_INT(kpar_registry_host_insecure_ok("reg.lan:5001", "reg.lan:5000"), 0);
	/* An entry without a port covers every port of that host. */
	CHECK_INT(kpar_registry_host_insecure_ok("reg.lan:5001", "x,reg.lan"), 1);
	CHECK_INT(kpar_registry_host_insecure_ok("reg.lan", "http://reg.lan"), 1);
	CHECK_INT(kpar_registry_host_insecure_ok("reg.lan.evil", "reg.lan"), 0);
}

KPAR_TEST(open_validates)
{
	struct kpar_registry *r = NULL;
	struct kpar_registry_opts o = { 0 };

	CHECK_INT(kpar_registry_open(&r, "", "a", NULL), KPAR_EINVAL);
	CHECK_INT(kpar_registry_open(&r, "h/x", "a", NULL), KPAR_EINVAL);
	CHECK_INT(kpar_registry_open(&r, "h", "Upper", NULL), KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), "'Upper'") != NULL);
	CHECK_INT(kpar_registry_open(&r, "h", "a/../b", NULL), KPAR_EINVAL);
	CHECK_INT(kpar_registry_open(&r, "h", "a?x=1", NULL), KPAR_EINVAL);
	o.ca_file = "/nonexistent/ca.pem";
	CHECK_INT(kpar_registry_open(&r, "h", "a", &o), KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), "/nonexistent/ca.pem") != NULL);
	CHECK(r == NULL);
	CHECK_OK(kpar_registry_open(&r, "docker.io", "library/debian", NULL));
	CHECK(r != NULL);
	CHECK_INT(kpar_registry_token_fetches(r), 0);
	kpar_registry_free(r);
}

KPAR_TEST(bad_arguments_fail_before_network)
{
	struct kpar_registry *r = NULL;
	struct kpar_buf m = KPAR_BUF_INIT;
	char d[KPAR_DIGEST_STR];
	struct kpar_registry_blob b = { "sha256:1234", NULL, "", 0, NULL };
	const char *tags[] = { "bad tag" };

	/* Port 9 (discard) on loopback: nothing listens, but none of these get that far. */
	CHECK_OK(kpar_registry_open(&r, "127.0.0.1:9", "a/b", NULL));
	CHECK_INT(kpar_registry_get_manifest(r, "bad ref!", NULL, NULL, &m, NULL, d), KPAR_EINVAL);
	CHECK_INT(kpar_registry_get_blob(r, "md5:abc", "/tmp/x"), KPAR_EINVAL);
	CHECK_INT(kpar_registry_push(r, &b, 1, "{}", 2, KPAR_MT_OCI_MANIFEST, NULL, 0, NULL),
		  KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), "sha256:1234") != NULL);
	CHECK_INT(kpar_registry_push(r, NULL, 0, "{}", 2, KPAR_MT_OCI_MANIFEST, tags, 1, NULL),
		  KPAR_EINVAL);
	CHECK_INT(kpar_registry_push(r, NULL, 0, "not json", 8, KPAR_MT_OCI_MANIFEST, NULL, 0, NULL),
		  KPAR_EINVAL);
	CHECK_INT(kpar_registry_push(r, NULL, 0, "{}", 2, "a\r\nX-Evil: 1", NULL, 0, NULL),
		  KPAR_EINVAL);
	kpar_buf_free(&m);
	kpar_registry_free(r);
}

KPAR_TEST_MAIN(KPAR_CASE(challenge_bearer), KPAR_CASE(challenge_spacing_case_escapes),
	       KPAR_CASE(challenge_basic_and_lists), KPAR_CASE(challenge_malformed),
	       KPAR_CASE(url_add_query), KPAR_CASE(insecure_hosts), KPAR_CASE(open_validates),
	       KPAR_CASE(bad_arguments_fail_before_network))
