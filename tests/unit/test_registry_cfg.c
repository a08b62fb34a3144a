/* test_registry_cfg.c - Docker config credentials (dockercfg.h): auths, helpers, bad files. */
#include "config.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "image/dockercfg.h"
#include "base/error.h"
#include "base/fs.h"
#include "test.h"

static char *tmpdir;

/* base64("kpar:pa:ss") - a password with a colon stays whole. */
#define AUTH_KPAR "a3BhcjpwYTpzcw=="

static void write_cfg(const char *json)
{
	char *p = kpar_fs_join(tmpdir, "config.json");
	CHECK_OK(kpar_fs_write_atomic(p, json, strlen(json)));
	free(p);
}

static void write_helper(const char *name, const char *body)
{
	char *bin = kpar_fs_join(tmpdir, "bin"), *p;
	CHECK_OK(kpar_fs_mkdir_p(bin, 0755));
	p = kpar_xasprintf("%s/docker-credential-%s", bin, name);
	CHECK_OK(kpar_fs_write_atomic(p, body, strlen(body)));
	CHECK(chmod(p, 0755) == 0);
	free(p);
	free(bin);
}

static int get(const char *host, struct kpar_cred *c)
{
	return kpar_dockercfg_get(tmpdir, host, c);
}

KPAR_TEST(auths_basic)
{
	struct kpar_cred c;

	write_cfg("{\"auths\":{\"reg.example:5000\":{\"auth\":\"" AUTH_KPAR "\"},"
		  "\"https://other.example/v1/\":{\"auth\":\"dTpw\"}}}");
	CHECK_INT(get("reg.example:5000", &c), 1);
	CHECK_STR(c.username, "kpar");
	CHECK_STR(c.secret, "pa:ss");
	CHECK_INT(c.identity_token, 0);
	kpar_cred_clear(&c);
	CHECK(c.secret == NULL && c.username == NULL);
	/* Keys with a scheme and a path match the bare host. */
	CHECK_INT(get("other.example", &c), 1);
	CHECK_STR(c.username, "u");
	CHECK_STR(c.secret, "p");
	kpar_cred_clear(&c);
	CHECK_INT(get("reg.example", &c), 0);
	CHECK_INT(get("nowhere.example", &c), 0);
	CHECK(c.secret == NULL);
}

KPAR_TEST(auths_docker_hub_aliases)
{
	struct kpar_cred c;

	write_cfg("{\"auths\":{\"https://index.docker.io/v1/\":{\"auth\":\"" AUTH_KPAR "\"}}}");
	CHECK_INT(get("docker.io", &c), 1);
	kpar_cred_clear(&c);
	CHECK_INT(get("registry-1.docker.io", &c), 1);
	kpar_cred_clear(&c);
}

KPAR_TEST(identity_token)
{
	struct kpar_cred c;

	write_cfg("{\"auths\":{\"r.io\":{\"auth\":\"" AUTH_KPAR "\",\"identitytoken\":\"tok-123\"},"
		  "\"t.io\":{\"identitytoken\":\"tok-456\"},\"e.io\":{}}}");
	CHECK_INT(get("r.io", &c), 1);
	CHECK_STR(c.secret, "tok-123");
	CHECK_INT(c.identity_token, 1);
	kpar_cred_clear(&c);
	CHECK_INT(get("t.io", &c), 1);
	CHECK_STR(c.secret, "tok-456");
	CHECK(c.username == NULL);
	CHECK_INT(c.identity_token, 1);
	kpar_cred_clear(&c);
	/* An empty entry is what `docker login` leaves beside a credsStore: nothing here. */
	CHECK_INT(get("e.io", &c), 0);
}

KPAR_TEST(missing_file_and_env)
{
	struct kpar_cred c;
	char *empty = kpar_fs_join(tmpdir, "empty");

	CHECK_OK(kpar_fs_mkdir_p(empty, 0755));
	CHECK_INT(kpar_dockercfg_get(empty, "r.io", &c), 0);
	/* DOCKER_CONFIG is used when no directory is passed. */
	setenv("DOCKER_CONFIG", tmpdir, 1);
	write_cfg("{\"auths\":{\"env.io\":{\"auth\":\"" AUTH_KPAR "\"}}}");
	CHECK_INT(kpar_dockercfg_get(NULL, "env.io", &c), 1);
	kpar_cred_clear(&c);
	unsetenv("DOCKER_CONFIG");
	free(empty);
}

static void check_bad(const char *json, const char *fragment)
{
	struct kpar_cred c;

	write_cfg(json);
	CHECK_INT(get("r.io", &c), KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), "config.json") != NULL);
	if (!strstr(kpar_error_last(), fragment)) {
		fprintf(stderr, "message '%s' lacks '%s'\n", kpar_error_last(), fragment);
		CHECK(0);
	}
	CHECK(c.secret == NULL);
}

KPAR_TEST(malformed)
{
	check_bad("{\"auths\":{\"r.io\":{\"auth\":\"" AUTH_KPAR "\"}", "not a JSON object");
	check_bad("[]", "not a JSON object");
	check_bad("", "not a JSON object");
	check_bad("{\"auths\":[]}", "\"auths\" is not an object");
	check_bad("{\"auths\":{\"r.io\":\"x\"}}", "auths entry 'r.io' is not an object");
	check_bad("{\"auths\":{\"r.io\":{\"auth\":5}}}", "\"auth\" is not a string");
	check_bad("{\"auths\":{\"r.io\":{\"auth\":\"!!notbase64\"}}}", "not base64");
	/* Valid base64, but no "user:" in it. */
	check_bad("{\"auths\":{\"r.io\":{\"auth\":\"bm9jb2xvbg==\"}}}", "not base64 of user:password");
	check_bad("{\"credHelpers\":[]}", "\"credHelpers\" is not an object");
	check_bad("{\"credHelpers\":{\"r.io\":1}}", "credHelpers entry 'r.io'");
	check_bad("{\"credsStore\":true}", "\"credsStore\" is not a string");
}

KPAR_TEST(malformed_message_hides_secret)
{
	struct kpar_cred c;

	/* "c2VjcmV0LXZhbHVl" is base64 of "secret-value" (no colon: invalid). */
	write_cfg("{\"auths\":{\"r.io\":{\"auth\":\"c2VjcmV0LXZhbHVl\"}}}");
	CHECK_INT(get("r.io", &c), KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), "c2VjcmV0LXZhbHVl") == NULL);
	CHECK(strstr(kpar_error_last(), "secret-value") == NULL);
}

KPAR_TEST(helpers)
{
	struct kpar_cred c;
	char *bin = kpar_fs_join(tmpdir, "bin"), *path, *seen = NULL;
	const char *old = getenv("PATH");
	char *stdin_log = kpar_fs_join(tmpdir, "helper-stdin");

	write_helper("kpartest",
		     "#!/bin/sh\n"
		     "[ \"$1\" = get ] || exit 9\n"
		     "read -r server\n"
		     "printf '%s' \"$server\" > \"$(dirname \"$0\")/../helper-stdin\"\n"
		     "case \"$server\" in\n"
		     "  helped.io) echo '{\"ServerURL\":\"helped.io\",\"Username\":\"hu\","
		     "\"Secret\":\"hs\"}';;\n"
		     "  https://index.docker.io/v1/) echo '{\"Username\":\"hub\",\"Secret\":\"x\"}';;\n"
		     "  tok.io) echo '{\"Username\":\"<token>\",\"Secret\":\"idt\"}';;\n"
		     "  junk.io) echo 'not json';;\n"
		     "  crash.io) echo 'boom' >&2; exit 3;;\n"
		     "  *) echo 'credentials not found in native keychain'; exit 1;;\n"
		     "esac\n");
	path = kpar_xasprintf("%s:%s", bin, old ? old : "/usr/bin:/bin");
	setenv("PATH", path, 1);

	write_cfg("{\"credHelpers\":{\"helped.io\":\"kpartest\",\"tok.io\":\"kpartest\","
		  "\"junk.io\":\"kpartest\",\"crash.io\":\"kpartest\",\"miss.io\":\"kpartest\","
		  "\"docker.io\":\"kpartest\",\"gone.io\":\"kpar-no-such-helper\"},"
		  "\"auths\":{\"miss.io\":{\"auth\":\"" AUTH_KPAR "\"}}}");
	CHECK_INT(get("helped.io", &c), 1);
	CHECK_STR(c.username, "hu");
	CHECK_STR(c.secret, "hs");
	kpar_cred_clear(&c);
	CHECK_OK(kpar_fs_read_all(stdin_log, &seen, NULL));
	CHECK_STR(seen, "helped.io");
	free(seen);

	CHECK_INT(get("docker.io", &c), 1);
	CHECK_STR(c.username, "hub");
	kpar_cred_clear(&c);
	CHECK_OK(kpar_fs_read_all(stdin_log, &seen, NULL));
	CHECK_STR(seen, "https://index.docker.io/v1/");
	free(seen);

	CHECK_INT(get("tok.io", &c), 1);
	CHECK_INT(c.identity_token, 1);
	CHECK(c.username == NULL);
	CHECK_STR(c.secret, "idt");
	kpar_cred_clear(&c);

	/* The helper knows nothing: the auths entry is used. */
	CHECK_INT(get("miss.io", &c), 1);
	CHECK_STR(c.username, "kpar");
	kpar_cred_clear(&c);

	CHECK_INT(get("junk.io", &c), KPAR_EAUTH);
	CHECK(strstr(kpar_error_last(), "docker-credential-kpartest") != NULL);
	CHECK_INT(get("crash.io", &c), KPAR_EAUTH);
	CHECK(strstr(kpar_error_last(), "exit 3") != NULL);
	CHECK_INT(get("gone.io", &c), KPAR_EAUTH);
	CHECK(strstr(kpar_error_last(), "docker-credential-kpar-no-such-helper") != NULL);

	/* credsStore covers every host. */
	write_cfg("{\"credsStore\":\"kpartest\",\"auths\":{\"helped.io\":{}}}");
	CHECK_INT(get("helped.io", &c), 1);
	CHECK_STR(c.secret, "hs");
	kpar_cred_clear(&c);
	CHECK_INT(get("unknown.io", &c), 0);

	/* A helper name is never a path. */
	write_cfg("{\"credsStore\":\"../../bin/sh\"}");
	CHECK_INT(get("helped.io", &c), KPAR_EINVAL);

	setenv("PATH", old ? old : "/usr/bin:/bin", 1);
	free(path);
	free(bin);
	free(stdin_log);
}

int main(int argc, char **argv);
static int run_tests(int argc, char **argv);

KPAR_TEST(setup)
{
	char tmpl[] = "/tmp/kpar-test-cfg-XXXXXX";
	tmpdir = kpar_xstrdup(mkdtemp(tmpl));
}

KPAR_TEST(teardown)
{
	kpar_fs_remove_tree(tmpdir);
	free(tmpdir);
	tmpdir = NULL;
}

#define main run_tests
KPAR_TEST_MAIN(KPAR_CASE(auths_basic), KPAR_CASE(auths_docker_hub_aliases),
	       KPAR_CASE(identity_token), KPAR_CASE(missing_file_and_env), KPAR_CASE(malformed),
	       KPAR_CASE(malformed_message_hides_secret), KPAR_CASE(helpers))
#undef main

int main(int argc, char **argv)
{
	int rc;

	test_setup();
	rc = run_tests(argc, argv);
	test_teardown();
	return rc;
}
