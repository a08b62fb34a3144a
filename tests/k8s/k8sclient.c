/* k8sclient.c - a small driver over k8s/client.h for tests/k8s/client.py.
 *
 *   k8sclient [opts] get PATH                 body to stdout
 *   k8sclient [opts] get-json PATH            the JSON answer's kind and item count
 *   k8sclient [opts] post PATH FILE           POSTs FILE (JSON), body to stdout
 *   k8sclient [opts] request METHOD PATH [FILE [CONTENT-TYPE]]
 *   k8sclient [opts] watch PATH               one line per event: "TYPE name rv", or
 *                                             "ERROR code reason" for an ERROR event;
 *                                             then "end 0" or "stopped N"
 *   k8sclient escape STRING                   kpar_k8s_query_escape's output
 * opts: --budget S --timeout S --debug --repeat N (run the call N times)
 *       --abort-after-ticks N (the tick asks to stop at its Nth call)
 *       --stop-after N (the event callback ends the watch, returning 5, at event N)
 *       --nested PATH (each event callback GETs PATH and prints "nested STATUS KIND")
 *
 * The configuration comes from the environment, not from a kubeconfig, so
 * these tests do not depend on the loader: K8SCLIENT_SERVER, K8SCLIENT_CA
 * (a PEM file), K8SCLIENT_CERT and K8SCLIENT_KEY (PEM files), K8SCLIENT_TOKEN,
 * K8SCLIENT_TOKEN_FILE, K8SCLIENT_TLS_SERVER_NAME, K8SCLIENT_PROXY,
 * K8SCLIENT_INSECURE=1.
 *
 * Errors go to stderr as "k8sclient: error <code> status <status>: <message>"
 * and exit 1 (2 for usage); the client's counters always end stderr as
 * "k8sclient: stats requests=N retries=N watch_events=N watches=N".
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/fs.h"
#include "k8s/client.h"
#include "k8s/kubeconfig.h"

static int usage(void)
{
	fprintf(stderr, "usage: k8sclient [opts] get|get-json|post|request|watch|escape ...\n");
	return 2;
}

static int fail(long status)
{
	fprintf(stderr, "k8sclient: error %d status %ld: %s\n", kpar_error_code(), status,
		kpar_error_last());
	return 1;
}

static char *env_dup(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? kpar_xstrdup(v) : NULL;
}

static int read_pem(const char *var, struct kpar_buf *out)
{
	const char *path = getenv(var);
	char *data;
	size_t len;
	int rc;

	if (!path || !*path)
		return 0;
	rc = kpar_fs_read_all(path, &data, &len);
	if (rc < 0)
		return kpar_error_prefix(rc, "%s", var);
	kpar_buf_add(out, data, len);
	free(data);
	return 0;
}

static int config_from_env(struct kpar_k8s_config *cfg)
{
	int rc;

	memset(cfg, 0, sizeof *cfg);
	cfg->source = kpar_xstrdup("k8sclient environment");
	cfg->context = kpar_xstrdup("");
	cfg->namespace = kpar_xstrdup("");
	cfg->server = env_dup("K8SCLIENT_SERVER");
	cfg->tls_server_name = env_dup("K8SCLIENT_TLS_SERVER_NAME");
	cfg->proxy_url = env_dup("K8SCLIENT_PROXY");
	cfg->insecure = getenv("K8SCLIENT_INSECURE") && strcmp(getenv("K8SCLIENT_INSECURE"), "1") == 0;
	cfg->token = env_dup("K8SCLIENT_TOKEN");
	cfg->token_file = env_dup("K8SCLIENT_TOKEN_FILE");
	cfg->exec_timeout = 60;
	/* what the loader would name the user by in kpar_k8s_config_auth's messages */
	cfg->auth_where = kpar_xstrdup("k8sclient environment: user");
	if (!cfg->server)
		return kpar_error_set(KPAR_EINVAL, "K8SCLIENT_SERVER is not set");
	if ((rc = read_pem("K8SCLIENT_CA", &cfg->ca_pem)) < 0 ||
	    (rc = read_pem("K8SCLIENT_CERT", &cfg->cert_pem)) < 0 ||
	    (rc = read_pem("K8SCLIENT_KEY", &cfg->key_pem)) < 0)
		return rc;
	return 0;
}

struct state {
	int ticks, abort_after;
	unsigned long events, stop_after;
	struct kpar_k8s_client *c;
	const char *nested;   /* GET this from inside the event callback */
};

static int on_tick(void *ud)
{
	struct state *s = ud;

	s->ticks++;
	fprintf(stderr, "k8sclient: tick %d\n", s->ticks);
	return s->abort_after && s->ticks >= s->abort_after;
}

static const char *str_at(const cJSON *o, const char *a, const char *b)
{
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, a);

	if (b)
		x = cJSON_GetObjectItemCaseSensitive(x, b);
	return cJSON_IsString(x) ? x->valuestring : "-";
}

static int on_event(void *ud, const char *type, const cJSON *object)
{
	struct state *s = ud;

	s->events++;
	if (strcmp(type, "ERROR") == 0) {
		const cJSON *code = cJSON_GetObjectItemCaseSensitive(object, "code");
		printf("ERROR %d %s\n", cJSON_IsNumber(code) ? code->valueint : 0,
		       str_at(object, "reason", NULL));
	} else {
		printf("%s %s %s\n", type, str_at(object, "metadata", "name"),
		       str_at(object, "metadata", "resourceVersion"));
	}
	if (s->nested) {
		cJSON *j = NULL;
		long status = 0;
		int rc = kpar_k8s_request_json(s->c, "GET", s->nested, NULL, &j, &status);
		if (rc < 0) {
			fail(status);
			return rc;
		}
		printf("nested %ld %s\n", status, str_at(j, "kind", NULL));
		cJSON_Delete(j);
	}
	fflush(stdout);
	if (s->stop_after && s->events >= s->stop_after)
		return 5;
	return 0;
}

static int do_call(struct kpar_k8s_client *c, struct state *st, int argc, char **argv)
{
	const char *cmd = argv[0];
	long status = 0;
	int rc;

	if (strcmp(cmd, "watch") == 0 && argc == 2) {
		rc = kpar_k8s_watch(c, argv[1], on_event, st, &status);
		if (rc < 0)
			return fail(status);
		if (rc > 0)
			printf("stopped %d\n", rc);
		else
			printf("end 0\n");
		return 0;
	}
	if (strcmp(cmd, "get-json") == 0 && argc == 2) {
		cJSON *j = NULL, *items;
		rc = kpar_k8s_request_json(c, "GET", argv[1], NULL, &j, &status);
		if (rc < 0)
			return fail(status);
		items = cJSON_GetObjectItemCaseSensitive(j, "items");
		printf("status %ld kind %s items %d\n", status, str_at(j, "kind", NULL),
		       cJSON_IsArray(items) ? cJSON_GetArraySize(items) : -1);
		cJSON_Delete(j);
		return 0;
	}
	if ((strcmp(cmd, "get") == 0 && argc == 2) || (strcmp(cmd, "post") == 0 && argc == 3) ||
	    (strcmp(cmd, "request") == 0 && argc >= 3 && argc <= 5)) {
		struct kpar_k8s_response r;
		const char *method = strcmp(cmd, "get") == 0 ? "GET" : strcmp(cmd, "post") == 0 ? "POST"
												: argv[1];
		const char *path = strcmp(cmd, "request") == 0 ? argv[2] : argv[1];
		const char *file = strcmp(cmd, "post") == 0 ? argv[2] : strcmp(cmd, "request") == 0 &&
				   argc >= 4 ? argv[3] : NULL;
		const char *ctype = strcmp(cmd, "request") == 0 && argc == 5 ? argv[4] : NULL;
		char *body = NULL;
		size_t len = 0;
		if (file && (rc = kpar_fs_read_all(file, &body, &len)) < 0)
			return fail(0);
		rc = kpar_k8s_request(c, method, path, ctype, body, len, &r);
		free(body);
		if (rc < 0) {
			if (r.body.len)
				fprintf(stderr, "k8sclient: answer: %s\n", r.body.data);
			fail(r.status);
			kpar_k8s_response_free(&r);
			return 1;
		}
		printf("status %ld\n", r.status);
		if (r.body.len)
			fwrite(r.body.data, 1, r.body.len, stdout);
		printf("\n");
		kpar_k8s_response_free(&r);
		return 0;
	}
	return usage();
}

int main(int argc, char **argv)
{
	struct kpar_k8s_client_opts o;
	struct kpar_k8s_config cfg;
	struct kpar_k8s_client *c = NULL;
	struct kpar_k8s_client_stats s;
	struct state st;
	int i, rc = 0, repeat = 1;

	memset(&o, 0, sizeof o);
	memset(&st, 0, sizeof st);
	for (i = 1; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--debug") == 0)
			o.debug = 1;
		else if (i + 1 >= argc)
			return usage();
		else if (strcmp(a, "--budget") == 0)
			o.retry_budget = atof(argv[++i]);
		else if (strcmp(a, "--timeout") == 0)
			o.timeout = atof(argv[++i]);
		else if (strcmp(a, "--repeat") == 0)
			repeat = atoi(argv[++i]);
		else if (strcmp(a, "--abort-after-ticks") == 0)
			st.abort_after = atoi(argv[++i]);
		else if (strcmp(a, "--stop-after") == 0)
			st.stop_after = strtoul(argv[++i], NULL, 10);
		else if (strcmp(a, "--nested") == 0)
			st.nested = argv[++i];
		else
			return usage();
	}
	if (i >= argc)
		return usage();
	if (strcmp(argv[i], "escape") == 0 && argc - i == 2) {
		struct kpar_buf b = KPAR_BUF_INIT;
		kpar_k8s_query_escape(&b, argv[i + 1]);
		printf("%s\n", b.data);
		kpar_buf_free(&b);
		return 0;
	}
	o.tick = on_tick;
	o.tick_ud = &st;
	if (config_from_env(&cfg) < 0 || kpar_k8s_client_new(&c, &cfg, &o) < 0) {
		fail(0);
		kpar_k8s_config_free(&cfg);
		return 1;
	}
	st.c = c;
	while (rc == 0 && repeat-- > 0)
		rc = do_call(c, &st, argc - i, argv + i);
	kpar_k8s_client_stats(c, &s);
	fprintf(stderr, "k8sclient: stats requests=%lu retries=%lu watch_events=%lu watches=%lu\n",
		s.requests, s.retries, s.watch_events, s.watches);
	kpar_k8s_client_free(c);
	kpar_k8s_config_free(&cfg);
	return rc;
}

