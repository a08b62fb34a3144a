/* test_kubeconfig.c - kubeconfig loading (kubeconfig.h): merging, paths,
 * tokens, in-cluster, exec plugins, and broken files whose errors must name
 * the file and the field without ever quoting a secret.
 *
 * Fixtures are written to a fresh temporary directory; the CA, client
 * certificate and key are generated with the openssl command.
 */
#include "config.h"

#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/fs.h"
#include "k8s/kubeconfig.h"
#include "test.h"

/* Every user in every fixture carries this token, so each error message
 * can be checked for it. */
#define SECRET "s3cr3t-t0ken-kpar-1234567890"

static char *tmpdir;
static struct kpar_strv garbage;  /* strings handed out by P(), freed at exit */
static char *ca_pem, *cert_pem, *key_pem;
static char *ca_b64, *cert_b64, *key_b64;

static void cleanup(void)
{
	if (tmpdir)
		kpar_fs_remove_tree(tmpdir);
	free(tmpdir);
	kpar_strv_free(&garbage);
	free(ca_pem);
	free(cert_pem);
	free(key_pem);
	free(ca_b64);
	free(cert_b64);
	free(key_b64);
}

/* A path under the temporary directory, valid until exit. */
static const char *P(const char *name)
{
	char *p = kpar_fs_join(tmpdir, name);

	kpar_strv_push(&garbage, p);
	free(p);
	return garbage.v[garbage.n - 1];
}

static const char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static const char *fmt(const char *f, ...)
{
	struct kpar_buf b = KPAR_BUF_INIT;
	va_list ap;

	va_start(ap, f);
	kpar_buf_vprintf(&b, f, ap);
	va_end(ap);
	kpar_strv_push(&garbage, b.data ? b.data : "");
	kpar_buf_free(&b);
	return garbage.v[garbage.n - 1];
}

static void wfile(const char *name, const char *text)
{
	const char *p = P(name);
	char *dir = kpar_xstrdup(p);

	*strrchr(dir, '/') = '\0';
	CHECK_OK(kpar_fs_mkdir_p(dir, 0755));
	free(dir);
	CHECK_OK(kpar_fs_write_atomic(p, text, strlen(text)));
}

static void wscript(const char *name, const char *text)
{
	wfile(name, text);
	CHECK(chmod(P(name), 0755) == 0);
}

static char *slurp(const char *path)
{
	char *s = NULL;

	CHECK_OK(kpar_fs_read_all(path, &s, NULL));
	return s ? s : kpar_xstrdup("");
}

static char *b64(const char *s)
{
	size_t len = strlen(s);
	char *out = kpar_xmalloc((len + 2) / 3 * 4 + 1);

	EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)len);
	return out;
}

static void setup(void)
{
	char *cmd;

	if (tmpdir)
		return;
	tmpdir = kpar_xstrdup("/tmp/kpar-kubeconfig-XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		exit(1);
	}
	atexit(cleanup);
	cmd = kpar_xasprintf(
		"(cd '%s' && "
		"openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key "
		"-out ca.pem -days 2 -subj /CN=kpar-test-ca && "
		"openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout client.key "
		"-out client.csr -subj /CN=kpar-client && "
		"openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
		"-out client.pem -days 2) >/dev/null 2>&1", tmpdir);
	CHECK_INT(system(cmd), 0);
	free(cmd);
	ca_pem = slurp(P("ca.pem"));
	cert_pem = slurp(P("client.pem"));
	key_pem = slurp(P("client.key"));
	CHECK(strstr(ca_pem, "-----BEGIN CERTIFICATE-----") != NULL);
	CHECK(strstr(key_pem, "PRIVATE KEY-----") != NULL);
	ca_b64 = b64(ca_pem);
	cert_b64 = b64(cert_pem);
	key_b64 = b64(key_pem);
	unsetenv("KUBECONFIG");
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
}

static int buf_is(const struct kpar_buf *b, const char *s)
{
	return b->len == strlen(s) && memcmp(b->data, s, b->len) == 0;
}

/* A one-cluster, one-user, one-context kubeconfig; the extras are lines
 * already indented under cluster: and user:. */
static const char *kc(const char *cluster_extra, const char *user_extra)
{
	return fmt("apiVersion: v1\n"
		   "kind: Config\n"
		   "current-context: ctx\n"
		   "clusters:\n"
		   "- name: c\n"
		   "  cluster:\n"
		   "%s"
		   "users:\n"
		   "- name: u\n"
		   "  user:\n"
		   "%s"
		   "contexts:\n"
		   "- name: ctx\n"
		   "  context:\n"
		   "    cluster: c\n"
		   "    user: u\n"
		   "    namespace: ns1\n",
		   cluster_extra, user_extra);
}

#define SERVER "    server: https://k.example:6443\n"
#define TOKEN "    token: " SECRET "\n"

static void msg_has(const char *frag, int line)
{
	kpar_test_checks++;
	if (!strstr(kpar_error_last(), frag)) {
		fprintf(stderr, "%s:%d: message '%s' lacks '%s'\n", __FILE__, line, kpar_error_last(),
			frag);
		kpar_test_failures++;
	}
}

static void msg_clean(int line)
{
	/* KC_SHOW=1 prints every message checked, for reviewing their wording. */
	if (getenv("KC_SHOW"))
		fprintf(stderr, "[%d] %s\n", line, kpar_error_last());
	kpar_test_checks++;
	if (strstr(kpar_error_last(), SECRET) || strstr(kpar_error_last(), "BEGIN")) {
		fprintf(stderr, "%s:%d: message '%s' holds a secret\n", __FILE__, line,
			kpar_error_last());
		kpar_test_failures++;
	}
}

/* Loads kubeconfig (context ctx) expecting failure; the message must hold
 * every fragment given and no secret. */
static void load_fails_(int line, const char *kubeconfig, const char *ctx, ...)
{
	struct kpar_k8s_config c;
	const char *frag;
	va_list ap;
	int rc;

	rc = kpar_k8s_config_load(&c, kubeconfig, ctx);
	kpar_test_checks++;
	if (rc >= 0) {
		fprintf(stderr, "%s:%d: load of '%s' succeeded\n", __FILE__, line, kubeconfig);
		kpar_test_failures++;
	}
	va_start(ap, ctx);
	while ((frag = va_arg(ap, const char *)) != NULL)
		msg_has(frag, line);
	va_end(ap);
	msg_clean(line);
	kpar_k8s_config_free(&c);
	/* A failed load leaves nothing behind; freeing twice is harmless. */
	CHECK(c.server == NULL && c.exec == NULL && c.token == NULL);
	kpar_k8s_config_free(&c);
}
#define load_fails(kubeconfig, ctx, ...) load_fails_(__LINE__, kubeconfig, ctx, __VA_ARGS__, NULL)

/* Writes text as a kubeconfig named name and expects loading it to fail
 * with a message naming the file and holding the fragments. */
#define bad(name, text, ...) do { wfile(name, text); \
	load_fails(P(name), NULL, fmt("kubeconfig '%s'", P(name)), __VA_ARGS__); } while (0)

static int runs(const char *countfile)
{
	char *s = NULL;
	int n = 0;
	const char *p;

	if (kpar_fs_read_all(countfile, &s, NULL) < 0) {
		kpar_error_clear();
		return 0;
	}
	for (p = s; *p; p++)
		n += *p == '\n';
	free(s);
	return n;
}

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *rfc3339(time_t t)
{
	struct tm tm;
	char s[32];

	gmtime_r(&t, &tm);
	strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return fmt("%s", s);
}

/* ---- happy paths -------------------------------------------------------- */

KPAR_TEST(basic)
{
	struct kpar_k8s_config c;
	const struct kpar_buf *cert, *key;
	const char *tok;

	setup();
	wfile("basic/config", kc(fmt("    server: https://k.example:6443/\n"
				     "    certificate-authority-data: %s\n", ca_b64), TOKEN));
	CHECK_OK(kpar_k8s_config_load(&c, P("basic/config"), NULL));
	CHECK_STR(c.source, P("basic/config"));
	CHECK_STR(c.context, "ctx");
	CHECK_STR(c.namespace, "ns1");
	CHECK_STR(c.server, "https://k.example:6443");
	CHECK(buf_is(&c.ca_pem, ca_pem));
	CHECK(c.tls_server_name == NULL && c.proxy_url == NULL && c.exec == NULL);
	CHECK_INT(c.insecure, 0);
	CHECK(c.exec_timeout == 60.0);
	CHECK_OK(kpar_k8s_config_auth(&c, 0, &tok, &cert, &key));
	CHECK_STR(tok, SECRET);
	CHECK(cert->len == 0 && key->len == 0);
	kpar_k8s_config_free(&c);
	CHECK(c.server == NULL);
	kpar_k8s_config_free(&c);
}

KPAR_TEST(json_and_loopback_http)
{
	struct kpar_k8s_config c;
	static const char *const servers[] = { "http://127.0.0.1:8080", "http://localhost",
					       "http://[::1]:8001/prefix", "https://[fd00::1]:6443" };
	size_t i;

	setup();
	for (i = 0; i < sizeof servers / sizeof servers[0]; i++) {
		/* JSON is YAML: kubeconfig files written by tools often are. */
		wfile("json/config", fmt("{\"current-context\":\"j\",\"clusters\":[{\"name\":\"c\","
					 "\"cluster\":{\"server\":\"%s\"}}],\"users\":[{\"name\":\"u\","
					 "\"user\":{}}],\"contexts\":[{\"name\":\"j\",\"context\":"
					 "{\"cluster\":\"c\",\"user\":\"u\"}}]}", servers[i]));
		CHECK_OK(kpar_k8s_config_load(&c, P("json/config"), NULL));
		CHECK_STR(c.server, servers[i]);
		CHECK_STR(c.namespace, "");
		kpar_k8s_config_free(&c);
	}
}

KPAR_TEST(merge_first_wins)
{
	struct kpar_k8s_config c;
	const struct kpar_buf *cert, *key;
	const char *tok, *list;

	setup();
	/* a: no current-context, but the first cluster "c" and user "u". */
	wfile("merge/a", "current-context: \"\"\n"
		"clusters:\n- name: c\n  cluster:\n    server: https://a.example\n"
		"users:\n- name: u\n  user:\n    token: token-a\n");
	/* b: the first current-context, and the first context ctx-b. */
	wfile("merge/b", "current-context: ctx-b\n"
		"clusters:\n- name: c\n  cluster:\n    server: https://b.example\n"
		"    tls-server-name: from-b\n"
		"- name: only-b\n  cluster:\n    server: https://only-b.example\n"
		"contexts:\n- name: ctx-b\n  context:\n    cluster: c\n    user: u\n    namespace: nb\n"
		"- name: other\n  context:\n    cluster: only-b\n    user: u2\n");
	/* c: a later current-context and a shadowed ctx-b, both ignored. */
	wfile("merge/c", "current-context: ctx-c\n"
		"users:\n- name: u\n  user:\n    token: token-c\n"
		"- name: u2\n  user:\n    token: token-u2\n"
		"contexts:\n- name: ctx-b\n  context:\n    cluster: c\n    user: u2\n    namespace: nc\n");
	list = fmt("%s:%s:%s::%s", P("merge/a"), P("merge/missing"), P("merge/b"), P("merge/c"));
	CHECK_OK(kpar_k8s_config_load(&c, list, NULL));
	CHECK_STR(c.context, "ctx-b");
	CHECK_STR(c.source, P("merge/b"));
	CHECK_STR(c.namespace, "nb");
	CHECK_STR(c.server, "https://a.example");
	CHECK(c.tls_server_name == NULL);  /* the entry is taken whole, never field by field */
	CHECK_OK(kpar_k8s_config_auth(&c, 0, &tok, &cert, &key));
	CHECK_STR(tok, "token-a");
	kpar_k8s_config_free(&c);

	/* The context argument (KPAR_CONTEXT) beats current-context. */
	CHECK_OK(kpar_k8s_config_load(&c, list, "other"));
	CHECK_STR(c.context, "other");
	CHECK_STR(c.server, "https://only-b.example");
	CHECK_OK(kpar_k8s_config_auth(&c, 0, &tok, &cert, &key));
	CHECK_STR(tok, "token-u2");
	kpar_k8s_config_free(&c);

	/* KUBECONFIG from the environment when the argument is NULL. */
	setenv("KUBECONFIG", list, 1);
	CHECK_OK(kpar_k8s_config_load(&c, NULL, NULL));
	CHECK_STR(c.context, "ctx-b");
	kpar_k8s_config_free(&c);
	unsetenv("KUBECONFIG");
}

KPAR_TEST(data_wins_and_relative_paths)
{
	struct kpar_k8s_config c;
	const struct kpar_buf *cert, *key;
	const char *tok;

	setup();
	wfile("rel/sub/keys/client.key", key_pem);
	wfile("rel/sub/client.pem", cert_pem);
	wfile("rel/other/ca.pem", ca_pem);
	/* The cluster is named in one file, the user in another: each path
	 * resolves against the directory of the file that holds it. */
	wfile("rel/other/clusters", "clusters:\n- name: c\n  cluster:\n    server: https://k.example\n"
		"    certificate-authority: ca.pem\n");
	wfile("rel/sub/config", fmt("current-context: ctx\n"
				    "users:\n- name: u\n  user:\n"
				    "    client-certificate: client.pem\n"
				    "    client-key: keys/client.key\n"
				    "- name: u-data\n  user:\n"
				    "    client-certificate-data: %s\n"
				    "    client-certificate: does-not-exist.pem\n"
				    "    client-key-data: %s\n"
				    "    client-key: does-not-exist.key\n"
				    "contexts:\n- name: ctx\n  context: {cluster: c, user: u}\n"
				    "- name: data\n  context: {cluster: c, user: u-data}\n",
				    cert_b64, key_b64));
	CHECK_OK(kpar_k8s_config_load(&c, fmt("%s:%s", P("rel/sub/config"), P("rel/other/clusters")),
				      NULL));
	CHECK(buf_is(&c.ca_pem, ca_pem));
	CHECK(buf_is(&c.cert_pem, cert_pem));
	CHECK(buf_is(&c.key_pem, key_pem));
	CHECK_OK(kpar_k8s_config_auth(&c, 0, &tok, &cert, &key));
	CHECK(tok == NULL);
	CHECK(cert == &c.cert_pem && key == &c.key_pem);
	kpar_k8s_config_free(&c);

	/* -data wins: the missing files beside it are never read. */
	CHECK_OK(kpar_k8s_config_load(&c, fmt("%s:%s", P("rel/sub/config"), P("rel/other/clusters")),
				      "data"));
	CHECK(buf_is(&c.cert_pem, cert_pem));
	CHECK(buf_is(&c.key_pem, key_pem));
	kpar_k8s_config_free(&c);
}

KPAR_TEST(token_file_rotation)
{
	struct kpar_k8s_config c;
	const struct kpar_buf *cert, *key;
	const char *tok;

	setup();
	wfile("tf/token", "first-token\n");
	wfile("tf/config", kc(SERVER, "    tokenFile: token\n"));
	CHECK_OK(kpar_k8s_config_load(&c, P("tf/config"), NULL));
	CHECK_STR(c.token_file, P("tf/token"));
	CHECK_OK(kpar_k8s_config_auth(&c, 0, &tok, &cert, &key));
	CHECK_STR(tok, "first-token");
	wfile("tf/token", "  second-token \n");
	CHECK_OK(kpar_k8s_config_auth(&c, 0, &tok, &cert, &key));
	CHECK_STR(tok, "second-token");
	/* A token that vanished is an error naming the file and the field. */
	CHECK(unlink(P("tf/token")) == 0);
	CHECK(kpar_k8s_config_auth(&c, 1, &tok, &cert, &key) < 0);
	msg_has(fmt("kubeconfig '%s'", P("tf/config")), __LINE__);
	msg_has("users[0] \"u\" user.tokenFile: cannot read", __LINE__);
	msg_has(P("tf/token"), __LINE__);
	kpar_k8s_config_free(&c);
}

KPAR_TEST(tls_name_proxy_basic_auth)
{
	struct kpar_k8s_config c;

	setup();
	wfile("tls/config", kc(SERVER "    tls-server-name: api.internal\n"
			       "    proxy-url: http://proxy.example:3128\n"
			       "    insecure-skip-tls-verify: true\n",
			       "    username: admin\n    password: pw\n"));
	CHECK_OK(kpar_k8s_config_load(&c, P("tls/config"), NULL));
	CHECK_STR(c.tls_server_name, "api.internal");
	CHECK_STR(c.proxy_url, "http://proxy.example:3128");
	CHECK_INT(c.insecure, 1);
	CHECK(c.ca_pem.len == 0);
	CHECK_STR(c.username, "admin");
	CHECK_STR(c.password, "pw");
	kpar_k8s_config_free(&c);
}

KPAR_TEST(home_default)
{
	struct kpar_k8s_config c;
	char *old = getenv("HOME") ? kpar_xstrdup(getenv("HOME")) : NULL;

	setup();
	wfile("home/.kube/config", kc(SERVER, TOKEN));
	setenv("HOME", P("home"), 1);
	CHECK_OK(kpar_k8s_config_load(&c, "", NULL));
	CHECK_STR(c.source, P("home/.kube/config"));
	kpar_k8s_config_free(&c);
	/* No file and not in a cluster: an error saying both. */
	setenv("HOME", P("nohome"), 1);
	load_fails("", NULL, P("nohome/.kube/config"), "KUBERNETES_SERVICE_HOST");
	/* No file but in a cluster: the in-cluster config (whose token is
	 * missing here). */
	setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	if (!kpar_fs_exists("/var/run/secrets/kubernetes.io/serviceaccount/token"))
		load_fails("", NULL, "in-cluster",
			   "/var/run/secrets/kubernetes.io/serviceaccount/token");
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	if (old)
		setenv("HOME", old, 1);
	free(old);
}

KPAR_TEST(in_cluster)
{
	struct kpar_k8s_config c;
	const struct kpar_buf *cert, *key;
	const char *tok;

	setup();
	wfile("sa/token", "sa-token-1");
	wfile("sa/ca.crt", ca_pem);
	wfile("sa/namespace", "ci\n");
	setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	CHECK_OK(kpar_k8s_config_in_cluster(&c, P("sa")));
	CHECK_STR(c.server, "https://10.96.0.1:443");
	CHECK_STR(c.source, "in-cluster");
	CHECK_STR(c.context, "");
	CHECK_STR(c.namespace, "ci");
	CHECK(buf_is(&c.ca_pem, ca_pem));
	CHECK_OK(kpar_k8s_config_auth(&c, 0, &tok, &cert, &key));
	CHECK_STR(tok, "sa-token-1");
	/* The kubelet rotates the projected token: the next call sees it. */
	wfile("sa/token", "sa-token-2\n");
	CHECK_OK(kpar_k8s_config_auth(&c, 0, &tok, &cert, &key));
	CHECK_STR(tok, "sa-token-2");
	kpar_k8s_config_free(&c);

	setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
	CHECK_OK(kpar_k8s_config_in_cluster(&c, P("sa")));
	CHECK_STR(c.server, "https://[fd00::1]:443");
	kpar_k8s_config_free(&c);

	/* Broken: no token; no env; a bad port. */
	wfile("sa-empty/ca.crt", ca_pem);
	CHECK(kpar_k8s_config_in_cluster(&c, P("sa-empty")) < 0);
	msg_has("in-cluster", __LINE__);
	msg_has(fmt("cannot read '%s'", P("sa-empty/token")), __LINE__);
	kpar_k8s_config_free(&c);
	setenv("KUBERNETES_SERVICE_PORT", "https", 1);
	CHECK(kpar_k8s_config_in_cluster(&c, P("sa")) < 0);
	msg_has("KUBERNETES_SERVICE_PORT 'https'", __LINE__);
	kpar_k8s_config_free(&c);
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	CHECK(kpar_k8s_config_in_cluster(&c, P("sa")) < 0);
	msg_has("KUBERNETES_SERVICE_HOST", __LINE__);
	kpar_k8s_config_free(&c);
}

/* ---- exec plugins ------------------------------------------------------- */

/* The plugin checks what kubectl promises it, counts its runs and prints
 * the credential the test left in cred.json. */
static const char plugin_sh[] =
	"#!/bin/sh\n"
	"echo run >> \"$COUNT\"\n"
	"case \"$KUBERNETES_EXEC_INFO\" in\n"
	"*'\"kind\":\"ExecCredential\"'*'\"interactive\":false'*) ;;\n"
	"*) echo \"bad KUBERNETES_EXEC_INFO: $KUBERNETES_EXEC_INFO\" >&2; exit 3;;\n"
	"esac\n"
	"[ \"$FOO\" = 'bar baz' ] || { echo 'FOO not passed' >&2; exit 4; }\n"
	"[ \"$1\" = --flag ] && [ \"$2\" = 'two words' ] || { echo 'bad args' >&2; exit 5; }\n"
	"echo 'diagnostics go to stderr' >&2\n"
	"cat \"$CRED\"\n";

static const char *exec_user(const char *command, const char *api)
{
	return fmt("    exec:\n"
		   "      apiVersion: %s\n"
		   "      command: %s\n"
		   "      args: [--flag, two words]\n"
		   "      env:\n"
		   "      - {name: FOO, value: bar baz}\n"
		   "      - {name: COUNT, value: '%s'}\n"
		   "      - {name: CRED, value: '%s'}\n"
		   "      interactiveMode: IfAvailable\n",
		   api, command, P("exec/count"), P("exec/cred.json"));
}

static void write_cred(const char *api, const char *token, const char *cert, const char *key,
		       const char *expiry)
{
	cJSON *j = cJSON_CreateObject(), *st = cJSON_AddObjectToObject(j, "status");
	char *s;

	cJSON_AddStringToObject(j, "apiVersion", api);
	cJSON_AddStringToObject(j, "kind", "ExecCredential");
	if (token)
		cJSON_AddStringToObject(st, "token", token);
	if (cert)
		cJSON_AddStringToObject(st, "clientCertificateData", cert);
	if (key)
		cJSON_AddStringToObject(st, "clientKeyData", key);
	if (expiry)
		cJSON_AddStringToObject(st, "expirationTimestamp", expiry);
	s = cJSON_Print(j);
	wfile("exec/cred.json", s);
	free(s);
	cJSON_Delete(j);
}

#define V1 "client.authentication.k8s.io/v1"
#define V1BETA1 "client.authentication.k8s.io/v1beta1"

KPAR_TEST(exec_token_cached)
{
	struct kpar_k8s_config c;
	const struct kpar_buf *cert, *key;
	const char *tok, *count;
	struct tm tm = { 0 };

	setup();
	count = P("exec/count");
	unlink(count);
	wscript("exec/bin/plugin.sh", plugin_sh);
	write_cred(V1, "exec-token-1", NULL, NULL, "2099-01-01T00:00:00.123+02:00");
	/* A relative command with a '/' is relative to the kubeconfig. */
	wfile("exec/config", kc(SERVER, exec_user("./bin/plugin.sh", V1)));
	CHECK_OK(kpar_k8s_config_load(&c, P("exec/config"), NULL));
	CHECK(c.exec != NULL);
	CHECK_STR(c.exec->command, P("exec/./bin/plugin.sh"));
	CHECK_INT(runs(count), 0);
	CHECK_OK(kpar_k8s_config_auth(&c, 0, &tok, &cert, &key));
	CHECK_STR(tok, "exec-token-1");
	CHECK(cert->len == 0 && key->len == 0);
	tm.tm_year = 2098 - 1900;
	tm.tm_mon = 11;
	tm.tm_mday = 31;
	tm.tm_hour = 22;
	CHECK_INT(c.exec->expiry, timegm(&tm));
	CHECK_OK(kpar_k8s_config_auth(&c, 0, &tok, &cert, &key));
	CHECK_STR(tok, "exec-token-1");
	CHECK_INT(runs(count), 1);

	/* The server said 401: run the plugin again. */
	write_cred(V1, "exec-token-2", NULL, NULL, rfc3339(time(NULL) - 60));
	CHECK_OK(kpar_k8s_config_auth(&c, 1, &tok, &cert, &key));
	CHECK_STR(tok, "exec-token-2");
	CHECK_INT(runs(count), 2);
	/* That one expired already: every call runs the plugin. */
	write_cred(V1, "exec-token-3", NULL, NULL, rfc3339(time(NULL) + 3));
	CHECK_OK(kpar_k8s_config_auth(&c, 0, &tok, &cert, &key));
	CHECK_STR(tok, "exec-token-3");
	CHECK_INT(runs(count), 3);
	/* Expiring within the safety margin counts as expired too. */
	write_cred(V1, "exec-token-4", NULL, NULL, rfc3339(time(NULL) + 3600));
	CHECK_OK(kpar_k8s_config_auth(&c, 0, &tok, &cert, &key));
	CHECK_STR(tok, "exec-token-4");
	CHECK_INT(runs(count), 4);
	CHECK_OK(kpar_k8s_config_auth(&c, 0, &tok, &cert, &key));
	CHECK_INT(runs(count), 4);
	kpar_k8s_config_free(&c);

	/* No expirationTimestamp: cached until the server refuses it. */
	unlink(count);
	write_cred(V1BETA1, "exec-token-5", NULL, NULL, NULL);
	wfile("exec/config", kc(SERVER, exec_user("./bin/plugin.sh", V1BETA1)));
	CHECK_OK(kpar_k8s_config_load(&c, P("exec/config"), NULL));
	CHECK_OK(kpar_k8s_config_auth(&c, 0, &tok, &cert, &key));
	CHECK_OK(kpar_k8s_config_auth(&c, 0, &tok, &cert, &key));
	CHECK_STR(tok, "exec-token-5");
	CHECK_INT(c.exec->expiry, 0);
	CHECK_INT(runs(count), 1);
	CHECK_OK(kpar_k8s_config_auth(&c, 1, &tok, &cert, &key));
	CHECK_INT(runs(count), 2);
	kpar_k8s_config_free(&c);
}

KPAR_TEST(exec_client_cert_via_path)
{
	struct kpar_k8s_config c;
	const struct kpar_buf *cert, *key;
	const char *tok, *old = getenv("PATH");
	char *saved = kpar_xstrdup(old ? old : "/usr/bin:/bin");

	setup();
	wscript("exec/path/kpar-test-plugin", plugin_sh);
	setenv("PATH", fmt("%s:%s", P("exec/path"), saved), 1);
	write_cred(V1, NULL, cert_pem, key_pem, NULL);
	wfile("exec/config", kc(SERVER, exec_user("kpar-test-plugin", V1)));
	CHECK_OK(kpar_k8s_config_load(&c, P("exec/config"), NULL));
	CHECK_STR(c.exec->command, "kpar-test-plugin");
	CHECK_OK(kpar_k8s_config_auth(&c, 0, &tok, &cert, &key));
	CHECK(tok == NULL);
	CHECK(cert == &c.exec->cert_pem && key == &c.exec->key_pem);
	CHECK(buf_is(cert, cert_pem));
	CHECK(buf_is(key, key_pem));
	kpar_k8s_config_free(&c);
	setenv("PATH", saved, 1);
	free(saved);
}

KPAR_TEST(exec_info)
{
	struct kpar_k8s_config c;
	const struct kpar_buf *cert, *key;
	const char *tok;
	char *info;

	setup();
	wscript("exec/info.sh", "#!/bin/sh\nprintf '%s' \"$KUBERNETES_EXEC_INFO\" > \"$0.out\"\n"
		"cat \"$CRED\"\n");
	write_cred(V1, "tok", NULL, NULL, NULL);
	wfile("exec/config", kc(SERVER, exec_user(P("exec/info.sh"), V1)));
	CHECK_OK(kpar_k8s_config_load(&c, P("exec/config"), NULL));
	CHECK_OK(kpar_k8s_config_auth(&c, 0, &tok, &cert, &key));
	info = slurp(P("exec/info.sh.out"));
	CHECK_STR(info, "{\"apiVersion\":\"" V1 "\",\"kind\":\"ExecCredential\","
		  "\"spec\":{\"interactive\":false}}");
	free(info);
	kpar_k8s_config_free(&c);

	wfile("exec/config", kc(SERVER "    tls-server-name: api.internal\n"
				"    certificate-authority-data: aGVsbG8gLS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t\n",
				fmt("%s      provideClusterInfo: true\n",
				    exec_user(P("exec/info.sh"), V1))));
	CHECK_OK(kpar_k8s_config_load(&c, P("exec/config"), NULL));
	CHECK_OK(kpar_k8s_config_auth(&c, 0, &tok, &cert, &key));
	info = slurp(P("exec/info.sh.out"));
	CHECK_STR(info, "{\"apiVersion\":\"" V1 "\",\"kind\":\"ExecCredential\",\"spec\":{"
		  "\"cluster\":{\"server\":\"https://k.example:6443\",\"tls-server-name\":"
		  "\"api.internal\",\"certificate-authority-data\":"
		  "\"aGVsbG8gLS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t\"},\"interactive\":false}}");
	free(info);
	kpar_k8s_config_free(&c);
}

/* Loads exec/config with the plugin body given and expects auth to fail
 * with the fragments, quickly enough. */
static void exec_fails_(int line, const char *body, const char *api, double timeout,
			const char *frag1, const char *frag2)
{
	struct kpar_k8s_config c;
	const struct kpar_buf *cert, *key;
	const char *tok = NULL;
	double t0;

	wscript("exec/bad.sh", body);
	wfile("exec/config", kc(SERVER, exec_user(P("exec/bad.sh"), api)));
	CHECK_OK(kpar_k8s_config_load(&c, P("exec/config"), NULL));
	if (timeout > 0)
		c.exec_timeout = timeout;
	t0 = mono();
	kpar_test_checks++;
	if (kpar_k8s_config_auth(&c, 0, &tok, &cert, &key) >= 0) {
		fprintf(stderr, "%s:%d: plugin succeeded\n", __FILE__, line);
		kpar_test_failures++;
	}
	kpar_test_checks++;
	if (mono() - t0 > 10) {
		fprintf(stderr, "%s:%d: plugin failure took %.1f s\n", __FILE__, line, mono() - t0);
		kpar_test_failures++;
	}
	msg_has(fmt("kubeconfig '%s': users[0] \"u\" user.exec: command '", P("exec/config")), line);
	msg_has("bad.sh'", line);
	if (frag1)
		msg_has(frag1, line);
	if (frag2)
		msg_has(frag2, line);
	msg_clean(line);
	CHECK(tok == NULL);
	kpar_k8s_config_free(&c);
}
#define exec_fails(body, api, timeout, f1, f2) exec_fails_(__LINE__, body, api, timeout, f1, f2)

KPAR_TEST(exec_failures)
{
	char *long_stderr = NULL;
	struct kpar_buf b = KPAR_BUF_INIT;
	int i;

	setup();
	write_cred(V1, SECRET, NULL, NULL, NULL);
	exec_fails("#!/bin/sh\necho 'boom: no credentials' >&2\nexit 1\n", V1, 0,
		   "exited with status 1", "stderr: boom: no credentials");
	exec_fails("#!/bin/sh\necho not json\n", V1, 0, "printed no JSON", NULL);
	exec_fails("#!/bin/sh\necho '{\"kind\":\"ExecCredential\",\"apiVersion\":\"" V1
		   "\",\"status\":{\"token\":\"a\\nb\"}}'\n", V1, 0, "control character", NULL);
	exec_fails("#!/bin/sh\necho '{\"kind\":\"Pod\",\"apiVersion\":\"" V1 "\"}'\n", V1, 0,
		   "kind is not ExecCredential", NULL);
	exec_fails("#!/bin/sh\necho '{\"kind\":\"ExecCredential\",\"apiVersion\":\"" V1
		   "\",\"status\":{}}'\n", V1, 0, "neither status.token nor", NULL);
	exec_fails("#!/bin/sh\necho '{\"kind\":\"ExecCredential\",\"apiVersion\":\"" V1
		   "\",\"status\":{\"token\":\"x\",\"expirationTimestamp\":\"tomorrow\"}}'\n", V1, 0,
		   "expirationTimestamp", NULL);
	/* A valid credential of the wrong version, its token echoed on stderr
	 * too: the message quotes stderr but never the token. */
	exec_fails("#!/bin/sh\necho 'debug: got " SECRET "' >&2\ncat \"$CRED\"\n", V1BETA1, 0,
		   "apiVersion other than", "debug: got ****");
	/* stdout of a failing plugin never shows up. */
	exec_fails("#!/bin/sh\ncat \"$CRED\"\nexit 2\n", V1, 0, "exited with status 2", NULL);
	/* A plugin that hangs is stopped at the timeout, with its group. */
	exec_fails("#!/bin/sh\necho waiting >&2\nsleep 30\n", V1, 0.5, "did not finish within 0.5 s",
		   "stderr: waiting");
	exec_fails("#!/bin/sh\nkill -9 $$\n", V1, 0, "killed by signal 9", NULL);
	/* Only the tail of a chatty stderr is kept. */
	kpar_buf_puts(&b, "#!/bin/sh\n");
	for (i = 0; i < 200; i++)
		kpar_buf_printf(&b, "echo 'line %d of noise' >&2\n", i);
	kpar_buf_puts(&b, "echo 'the real reason' >&2\nexit 7\n");
	long_stderr = kpar_buf_detach(&b, NULL);
	exec_fails(long_stderr, V1, 0, "stderr: ...", "the real reason");
	CHECK(strlen(kpar_error_last()) < 1500);
	CHECK(strstr(kpar_error_last(), "line 3 of noise") == NULL);
	free(long_stderr);
}

KPAR_TEST(exec_not_found)
{
	struct kpar_k8s_config c;
	const struct kpar_buf *cert, *key;
	const char *tok;

	setup();
	wfile("exec/config", kc(SERVER, exec_user("kpar-no-such-plugin", V1)));
	CHECK_OK(kpar_k8s_config_load(&c, P("exec/config"), NULL));
	CHECK(kpar_k8s_config_auth(&c, 0, &tok, &cert, &key) < 0);
	msg_has(fmt("kubeconfig '%s': users[0] \"u\" user.exec: command 'kpar-no-such-plugin' "
		    "not found in PATH", P("exec/config")), __LINE__);
	kpar_k8s_config_free(&c);
	wfile("exec/config", kc(SERVER, exec_user("./nowhere/plugin", V1)));
	CHECK_OK(kpar_k8s_config_load(&c, P("exec/config"), NULL));
	CHECK(kpar_k8s_config_auth(&c, 0, &tok, &cert, &key) < 0);
	msg_has(P("exec/./nowhere/plugin"), __LINE__);
	kpar_k8s_config_free(&c);
	/* Not executable: the shell that would become the plugin says why. */
	wfile("exec/noexec.sh", "#!/bin/sh\necho hi\n");
	wfile("exec/config", kc(SERVER, exec_user("./noexec.sh", V1)));
	CHECK_OK(kpar_k8s_config_load(&c, P("exec/config"), NULL));
	CHECK(kpar_k8s_config_auth(&c, 0, &tok, &cert, &key) < 0);
	msg_has("exited with status 126", __LINE__);
	msg_has("Permission denied", __LINE__);
	msg_clean(__LINE__);
	kpar_k8s_config_free(&c);
}

/* ---- broken kubeconfigs -------------------------------------------------- */

KPAR_TEST(broken_contexts)
{
	setup();
	bad("b/cur", "current-context: prod\n" "clusters: []\nusers: []\ncontexts: []\n",
	    "context \"prod\" (current-context) not found");
	wfile("b/ok", kc(SERVER, TOKEN));
	load_fails(P("b/ok"), "staging", fmt("kubeconfig '%s'", P("b/ok")),
		   "context \"staging\" (KPAR_CONTEXT) not found");
	bad("b/nocur", "clusters: []\n", "current-context is not set");
	bad("b/ctx-cluster", "current-context: ctx\n"
	    "contexts:\n- name: ctx\n  context:\n    cluster: nope\n    user: u\n"
	    "users:\n- name: u\n  user:\n" TOKEN,
	    "contexts[0] \"ctx\" context.cluster: cluster \"nope\" not found");
	bad("b/ctx-user", "current-context: ctx\n"
	    "clusters:\n- name: c\n  cluster:\n" SERVER
	    "contexts:\n- name: other\n  context: {cluster: c}\n"
	    "- name: ctx\n  context:\n    cluster: c\n    user: nope\n",
	    "contexts[1] \"ctx\" context.user: user \"nope\" not found");
	bad("b/ctx-nocluster", "current-context: ctx\ncontexts:\n- name: ctx\n  context: {user: u}\n",
	    "contexts[0] \"ctx\" context.cluster: missing");
}

KPAR_TEST(broken_certificates)
{
	setup();
	bad("b/ca-b64", kc(SERVER "    certificate-authority-data: LS0t$$notbase64\n", TOKEN),
	    "clusters[0] \"c\" cluster.certificate-authority-data: invalid base64");
	bad("b/ca-b64-unpadded", kc(SERVER "    certificate-authority-data: LS0tLS1CRUdJTg\n", TOKEN),
	    "clusters[0] \"c\" cluster.certificate-authority-data: invalid base64");
	bad("b/ca-notpem", kc(SERVER "    certificate-authority-data: aGVsbG8=\n", TOKEN),
	    "cluster.certificate-authority-data: does not hold a PEM certificate");
	bad("b/key-b64", kc(SERVER, fmt("    client-certificate-data: %s\n"
					"    client-key-data: %s=\n", cert_b64, key_b64)),
	    "users[0] \"u\" user.client-key-data: invalid base64");
	bad("b/ca-missing", kc(SERVER "    certificate-authority: ca-nope.pem\n", TOKEN),
	    fmt("clusters[0] \"c\" cluster.certificate-authority: cannot read '%s': "
		"No such file or directory", P("b/ca-nope.pem")));
	bad("b/key-missing", kc(SERVER, fmt("    client-certificate-data: %s\n"
					    "    client-key: %s\n", cert_b64, P("b/nokey.pem"))),
	    fmt("users[0] \"u\" user.client-key: cannot read '%s': No such file or directory",
		P("b/nokey.pem")));
	/* Tests run as root, where mode 000 reads fine: a directory cannot. */
	CHECK_OK(kpar_fs_mkdir_p(P("b/keydir"), 0755));
	bad("b/key-dir", kc(SERVER, fmt("    client-certificate-data: %s\n"
					"    client-key: keydir\n", cert_b64)),
	    fmt("users[0] \"u\" user.client-key: cannot read '%s': Is a directory", P("b/keydir")));
	bad("b/cert-nokey", kc(SERVER, fmt("    client-certificate-data: %s\n", cert_b64)),
	    "users[0] \"u\" user.client-key: missing (client-certificate is set)");
	bad("b/insecure-ca", kc(fmt(SERVER "    insecure-skip-tls-verify: true\n"
				    "    certificate-authority-data: %s\n", ca_b64), TOKEN),
	    "clusters[0] \"c\" cluster.insecure-skip-tls-verify: true beside a certificate-authority");
	bad("b/bad-bool", kc(SERVER "    insecure-skip-tls-verify: \"sure\"\n", TOKEN),
	    "cluster.insecure-skip-tls-verify: expected true or false");
}

KPAR_TEST(broken_syntax_and_types)
{
	setup();
	bad("b/tabs", "current-context: ctx\nclusters:\n\t- name: c\n", "line 3 column 1",
	    "cannot start any token");
	bad("b/quote", "current-context: \"ctx\nclusters: []\n", "line ", "quoted scalar");
	bad("b/json", "{\"clusters\": [}", "line 1");
	bad("b/toplist", "- name: c\n- name: d\n", "the top level is a list, not a mapping");
	bad("b/topstr", "just words\n", "the top level is a string, not a mapping");
	bad("b/clusters-map", "clusters:\n  c: {server: x}\n", "clusters: expected a list, found a mapping");
	bad("b/cluster-list", "clusters:\n- name: c\n  cluster: [https://x]\n",
	    "clusters[0] \"c\" cluster: expected a mapping, found a list");
	bad("b/user-str", "users:\n- name: u\n  user: " SECRET "\n",
	    "users[0] \"u\" user: expected a mapping, found a string");
	bad("b/noname", "users:\n- user: {}\n", "users[0] name: missing");
	bad("b/item-str", "contexts:\n- ctx\n", "contexts[0]: expected a mapping, found a string");
	bad("b/dupname", "clusters:\n- name: c\n  cluster: {}\n- name: c\n  cluster: {}\n",
	    "clusters[1] \"c\" name: already used by clusters[0]");
	bad("b/dupkey", kc(SERVER, TOKEN TOKEN), "users[0] \"u\" user.token: appears twice");
	bad("b/token-list", kc(SERVER, "    token: [a, b]\n"),
	    "users[0] \"u\" user.token: expected a string, found a list");
	bad("b/twodocs", fmt("%s---\n%s", kc(SERVER, TOKEN), kc(SERVER, TOKEN)),
	    "more than one YAML document");
	bad("b/two-methods", kc(SERVER, TOKEN "    username: admin\n    password: " SECRET "x\n"),
	    "users[0] \"u\" user: more than one of token/tokenFile, username/password and exec");
	bad("b/token-crlf", kc(SERVER, "    token: \"abc\\r\\nX-Evil: 1\"\n"),
	    "users[0] \"u\" user.token: contains a control character");
	bad("b/authprov", kc(SERVER, "    auth-provider:\n      name: gcp\n"),
	    "users[0] \"u\" user.auth-provider: not supported");
	bad("b/tokenfile", kc(SERVER, "    tokenFile: no-token\n"),
	    fmt("users[0] \"u\" user.tokenFile: cannot read '%s'", P("b/no-token")));
}

KPAR_TEST(broken_servers_and_exec_config)
{
	setup();
	bad("b/noserver", kc("    certificate-authority-data: \"\"\n", TOKEN),
	    "clusters[0] \"c\" cluster.server: missing");
	bad("b/http", kc("    server: http://k.example:8080\n", TOKEN),
	    "clusters[0] \"c\" cluster.server: 'http://k.example:8080': plain http:// is allowed "
	    "only to a loopback address");
	bad("b/http-lookalike", kc("    server: http://127.0.0.1.evil.example\n", TOKEN),
	    "cluster.server", "loopback");
	bad("b/ftp", kc("    server: ftp://k.example\n", TOKEN), "cluster.server: 'ftp://k.example' is "
	    "not an https:// URL");
	bad("b/userinfo", kc("    server: https://admin:" SECRET "@k.example\n", TOKEN),
	    "cluster.server: user information in the URL is not supported");
	bad("b/port", kc("    server: https://k.example:99999\n", TOKEN), "cluster.server", "bad port");
	bad("b/proxy", kc(SERVER "    proxy-url: ftp://proxy\n", TOKEN), "cluster.proxy-url");
	bad("b/exec-nocmd", kc(SERVER, "    exec:\n      apiVersion: " V1 "\n"),
	    "users[0] \"u\" user.exec.command: missing");
	bad("b/exec-noapi", kc(SERVER, "    exec:\n      command: x\n"),
	    "users[0] \"u\" user.exec.apiVersion: missing");
	bad("b/exec-alpha", kc(SERVER, "    exec:\n      command: x\n"
			       "      apiVersion: client.authentication.k8s.io/v1alpha1\n"),
	    "user.exec.apiVersion: 'client.authentication.k8s.io/v1alpha1' is not supported");
	bad("b/exec-env", kc(SERVER, "    exec:\n      command: x\n      apiVersion: " V1 "\n"
			     "      env:\n      - value: " SECRET "\n"),
	    "users[0] \"u\" user.exec.env[0].name: missing");
	bad("b/exec-args", kc(SERVER, "    exec:\n      command: x\n      apiVersion: " V1 "\n"
			      "      args: [a, {b: c}]\n"),
	    "user.exec.args[1]: expected a string, found a mapping");
	bad("b/exec-always", kc(SERVER, "    exec:\n      command: x\n      apiVersion: " V1 "\n"
				"      interactiveMode: Always\n"),
	    "user.exec.interactiveMode: Always");
	load_fails(fmt("%s:%s", P("b/none1"), P("b/none2")), NULL,
		   fmt("KUBECONFIG '%s:%s': none of the listed files exists", P("b/none1"),
		       P("b/none2")));
	/* An unreadable entry in the list is an error, not a skip. */
	load_fails(fmt("%s:%s", P("b/keydir"), P("b/none2")), NULL,
		   fmt("kubeconfig '%s': cannot read: Is a directory", P("b/keydir")));
}

KPAR_TEST(unused_entries_not_validated)
{
	struct kpar_k8s_config c;

	setup();
	/* Like kubectl, only the chosen cluster and user must be usable. */
	wfile("unused/config", "current-context: ctx\n"
	      "clusters:\n- name: c\n  cluster:\n" SERVER
	      "- name: bad\n  cluster:\n    server: http://not-loopback.example\n"
	      "users:\n- name: broken\n  user:\n    client-key-data: '!!!'\n"
	      "- name: u\n  user:\n" TOKEN
	      "- name: broken2\n  user:\n    tokenFile: /nonexistent\n"
	      "contexts:\n- name: ctx\n  context: {cluster: c, user: u}\n");
	CHECK_OK(kpar_k8s_config_load(&c, P("unused/config"), NULL));
	kpar_k8s_config_free(&c);
}

KPAR_TEST_MAIN(KPAR_CASE(basic), KPAR_CASE(json_and_loopback_http), KPAR_CASE(merge_first_wins),
	       KPAR_CASE(data_wins_and_relative_paths), KPAR_CASE(token_file_rotation),
	       KPAR_CASE(tls_name_proxy_basic_auth), KPAR_CASE(home_default), KPAR_CASE(in_cluster),
	       KPAR_CASE(exec_token_cached), KPAR_CASE(exec_client_cert_via_path), KPAR_CASE(exec_info),
	       KPAR_CASE(exec_failures), KPAR_CASE(exec_not_found), KPAR_CASE(broken_contexts),
	       KPAR_CASE(broken_certificates), KPAR_CASE(broken_syntax_and_types),
	       KPAR_CASE(broken_servers_and_exec_config), KPAR_CASE(unused_entries_not_validated))
