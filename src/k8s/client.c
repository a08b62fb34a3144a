/* client.c - the Kubernetes API client: requests, retries and watch streams over libcurl.
 *
 * Design notes.
 *
 * Every call (kpar_k8s_request, kpar_k8s_watch) is a `struct call` run by
 * run_call() on one of the client's two easy handles: `easy` for requests
 * (kept across calls so the connection is reused), `weasy` for the watch
 * stream (a watch holds its connection for minutes; a request made from an
 * event callback must not wait for it).  run_call() decides what a finished
 * attempt means:
 *
 *   transport failure            -> back off and retry, if the request cannot
 *                                   have been acted on (nothing sent, or an
 *                                   idempotent method); else final
 *   401                          -> kpar_k8s_config_auth(refresh=1), retry once
 *   429                          -> wait Retry-After (at least 1 s), retry
 *   500/502/503/504              -> back off (0.5 s doubling, capped at 8 s,
 *                                   jittered; Retry-After wins), retry
 *   anything else, or a watch    -> final: the caller reads the answer
 *   whose 2xx stream has begun
 *
 * A retry is made only while it would start within retry_budget seconds of
 * the first attempt; otherwise the last answer stands and its error says how
 * many attempts were made.
 *
 * The watch stream goes through on_write() into watch_feed(), a line buffer:
 * bytes are appended, only the new bytes are searched for '\n', each complete
 * line is one event (parsed with cJSON and handed to the caller's function),
 * and the partial tail is kept for the next chunk.  A tail longer than
 * EVENT_LIMIT is an error, so a server that never sends a newline cannot
 * grow the buffer without bound.  Stopping the stream from inside the write
 * callback (the caller's non-zero value, a malformed event) returns 0 to
 * curl, which ends the transfer with CURLE_WRITE_ERROR; the call's flags say
 * which it was.
 *
 * The tick: the progress callback (which curl calls about once a second even
 * while nothing arrives) and the backoff sleeps call opts->tick when a
 * second has passed since the last call; non-zero aborts with KPAR_EINTR.
 *
 * Secrets: the bearer token lives in c->auth_header and in the header list of
 * the attempt in flight; both are wiped when dropped.  The debug trace is our
 * own (method, path, status, time), never curl's verbose output.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/curl_load.h"
#include "base/error.h"
#include "k8s/client.h"

#define BODY_LIMIT ((size_t)256 << 20)   /* a plain answer (a big list) */
#define ERRBODY_LIMIT ((size_t)64 << 10) /* what is kept of a watch's error answer */
#define EVENT_LIMIT ((size_t)16 << 20)   /* one watch event */
#define BACKOFF_BASE_MS 500u
#define BACKOFF_CAP_MS 8000u
#define WATCH_GRACE_S 60                 /* hard limit = timeoutSeconds + this */
#define CONNECT_TIMEOUT_MS 30000L

struct kpar_k8s_client {
	struct kpar_k8s_config *cfg;  /* borrowed */
	double retry_budget, timeout;
	int debug;
	int (*tick)(void *ud);
	void *tick_ud;
	CURL *easy;                   /* requests */
	CURL *weasy;                  /* the watch stream */
	char *base;                   /* scheme://host:port[/prefix] each URL starts with */
	struct curl_slist *connect_to; /* tls-server-name:port:host:port, or NULL */
	char *auth_header;            /* "Authorization: Bearer ...", or NULL */
	const struct kpar_buf *cert, *key; /* from kpar_k8s_config_auth, owned by cfg */
	uint64_t last_tick;           /* monotonic ms of the last tick (or of the call's start) */
	uint64_t rng;
	struct kpar_k8s_client_stats stats;
};

/* One call: the request, its transfer state and the last attempt's outcome. */
struct call {
	struct kpar_k8s_client *c;
	CURL *h;
	const char *method, *path, *ctype, *body;
	size_t body_len;
	int watch;
	long hard_timeout_s;          /* watch: from timeoutSeconds; 0 = none */

	/* the answer (a watch: the error answer, or the stream's unparsed tail) */
	struct kpar_buf resp;
	size_t limit;
	int too_large;
	size_t scan;                  /* watch: bytes of resp already searched for '\n' */
	kpar_k8s_event_fn fn;
	void *ud;
	int stop;                     /* fn's non-zero value */
	char *bad;                    /* why the stream is malformed */
	unsigned long events;
	int interrupted;

	CURLcode cres;
	long status;
	long sent;                    /* bytes of request the last attempt sent */
	int attempts;
	uint64_t started;             /* the first attempt */
	char errbuf[CURL_ERROR_SIZE];
};

/* curl copies header strings into its list; wipe those copies too. */
static void free_headers(struct curl_slist *l)
{
	struct curl_slist *p;

	for (p = l; p; p = p->next)
		explicit_bzero(p->data, strlen(p->data));
	curl_slist_free_all(l);
}

/* Appends s with control characters replaced and at most max bytes, for messages. */
static void put_sanitized(struct kpar_buf *b, const char *s, size_t len, size_t max)
{
	size_t i;

	for (i = 0; i < len && i < max; i++)
		kpar_buf_putc(b, (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? ' ' : s[i]);
	if (i < len)
		kpar_buf_puts(b, "...");
}

/* xorshift64*: jitter only, and not the process's rand() state. */
static uint64_t next_rand(struct kpar_k8s_client *c)
{
	c->rng ^= c->rng >> 12;
	c->rng ^= c->rng << 25;
	c->rng ^= c->rng >> 27;
	return c->rng * 2685821657736338717ull;
}

void kpar_k8s_query_escape(struct kpar_buf *b, const char *s)
{
	kpar_buf_url_escape(b, s);
}

/* ---- the client object ---- */

/* Splits cfg->server into the URL base and, with a tls-server-name, the
 * CONNECT_TO entry that sends a URL naming that host to the real address. */
static int parse_server(struct kpar_k8s_client *c)
{
	const struct kpar_k8s_config *cfg = c->cfg;
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL;
	int rc = 0;
	size_t n;

	if (!u)
		abort();
	if (curl_url_set(u, CURLUPART_URL, cfg->server, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK ||
	    (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0)) {
		rc = kpar_error_set(KPAR_EINVAL, "Kubernetes API server '%s' (from %s): not an http(s) URL",
				    cfg->server, cfg->source ? cfg->source : "the configuration");
		goto done;
	}
	n = strlen(path);
	while (n && path[n - 1] == '/')
		path[--n] = '\0';
	if (cfg->tls_server_name && *cfg->tls_server_name && strcmp(scheme, "https") == 0 &&
	    strcmp(cfg->tls_server_name, host) != 0) {
		char *entry;
		if (strpbrk(cfg->tls_server_name, ":/[]@ \t\r\n")) {
			rc = kpar_error_set(KPAR_EINVAL, "Kubernetes API server '%s': bad tls-server-name '%s'",
					    cfg->server, cfg->tls_server_name);
			goto done;
		}
		c->base = kpar_xasprintf("https://%s:%s%s", cfg->tls_server_name, port, path);
		entry = kpar_xasprintf("%s:%s:%s:%s", cfg->tls_server_name, port, host, port);
		c->connect_to = curl_slist_append(NULL, entry);
		free(entry);
		if (!c->connect_to)
			abort();
	} else {
		c->base = kpar_xasprintf("%s://%s:%s%s", scheme, host, port, path);
	}
done:
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(path);
	curl_url_cleanup(u);
	return rc;
}

int kpar_k8s_client_new(struct kpar_k8s_client **out, struct kpar_k8s_config *cfg,
			const struct kpar_k8s_client_opts *o)
{
	static const struct kpar_k8s_client_opts defaults;
	struct kpar_k8s_client *c;
	int rc;

	*out = NULL;
	if (!o)
		o = &defaults;
	if (!cfg || !cfg->server || !*cfg->server)
		return kpar_error_set(KPAR_EINVAL, "no Kubernetes API server configured");
	rc = kpar_curl_load();
	if (rc < 0)
		return kpar_error_prefix(rc, "Kubernetes API server '%s'", cfg->server);
	c = kpar_xcalloc(1, sizeof *c);
	c->cfg = cfg;
	c->retry_budget = o->retry_budget > 0 ? o->retry_budget : 60.0;
	c->timeout = o->timeout > 0 ? o->timeout : 30.0;
	c->debug = o->debug;
	c->tick = o->tick;
	c->tick_ud = o->tick_ud;
	c->rng = kpar_clock_ms() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)c;
	if (!c->rng)
		c->rng = 0x9e3779b97f4a7c15ull;
	rc = parse_server(c);
	if (rc < 0) {
		kpar_k8s_client_free(c);
		return rc;
	}
	c->easy = curl_easy_init();
	c->weasy = curl_easy_init();
	if (!c->easy || !c->weasy)
		abort();
	*out = c;
	return 0;
}

void kpar_k8s_client_free(struct kpar_k8s_client *c)
{
	if (!c)
		return;
	if (c->easy)
		curl_easy_cleanup(c->easy);
	if (c->weasy)
		curl_easy_cleanup(c->weasy);
	if (c->connect_to)
		curl_slist_free_all(c->connect_to);
	free(c->base);
	kpar_wipe_free(c->auth_header);
	free(c);
}

double kpar_k8s_client_retry_budget(struct kpar_k8s_client *c, double seconds)
{
	double old = c->retry_budget;

	if (seconds > 0)
		c->retry_budget = seconds;
	return old;
}

void kpar_k8s_client_stats(const struct kpar_k8s_client *c, struct kpar_k8s_client_stats *out)
{
	*out = c->stats;
}

void kpar_k8s_response_free(struct kpar_k8s_response *r)
{
	if (!r)
		return;
	kpar_buf_free(&r->body);
	r->status = 0;
}

/* ---- credentials ---- */

static int get_auth(struct kpar_k8s_client *c, const struct call *k, int refresh)
{
	const char *token = NULL;
	const struct kpar_buf *cert = NULL, *key = NULL;
	int rc;

	rc = kpar_k8s_config_auth(c->cfg, refresh, &token, &cert, &key);
	if (rc < 0)
		return kpar_error_prefix(rc, "%s %s", k->method, k->path);
	if (token && strpbrk(token, "\r\n"))
		return kpar_error_set(KPAR_EAUTH, "%s %s: the bearer token holds a line break",
				      k->method, k->path);
	kpar_wipe_free(c->auth_header);
	c->auth_header = token && *token ? kpar_xasprintf("Authorization: Bearer %s", token) : NULL;
	c->cert = cert;
	c->key = key;
	return 0;
}

/* ---- curl callbacks ---- */

static int tick_due(struct kpar_k8s_client *c)
{
	uint64_t now;

	if (!c->tick)
		return 0;
	now = kpar_clock_ms();
	if (now - c->last_tick < 1000)
		return 0;
	c->last_tick = now;
	return c->tick(c->tick_ud) != 0;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	struct call *k = ud;

	if (tick_due(k->c)) {
		k->interrupted = 1;
		return 1;
	}
	return 0;
}

/* One line of the stream: 0 go on, -1 stop (k->stop or k->bad says why). */
static int watch_line(struct call *k, const char *p, size_t len)
{
	const cJSON *type, *obj;
	cJSON *j;
	int rc;

	while (len && (*p == ' ' || *p == '\t' || *p == '\r')) {
		p++;
		len--;
	}
	while (len && (p[len - 1] == ' ' || p[len - 1] == '\t' || p[len - 1] == '\r'))
		len--;
	if (!len)
		return 0;
	j = cJSON_ParseWithLength(p, len);
	type = cJSON_GetObjectItemCaseSensitive(j, "type");
	obj = cJSON_GetObjectItemCaseSensitive(j, "object");
	if (!cJSON_IsObject(j) || !cJSON_IsString(type) || !type->valuestring[0] ||
	    !cJSON_IsObject(obj)) {
		struct kpar_buf b = KPAR_BUF_INIT;
		kpar_buf_printf(&b, "event %lu is not {\"type\":...,\"object\":{...}}: '", k->events + 1);
		put_sanitized(&b, p, len, 80);
		kpar_buf_putc(&b, '\'');
		k->bad = kpar_buf_detach(&b, NULL);
		cJSON_Delete(j);
		return -1;
	}
	k->events++;
	k->c->stats.watch_events++;
	rc = k->fn(k->ud, type->valuestring, obj);
	cJSON_Delete(j);
	if (rc) {
		k->stop = rc;
		return -1;
	}
	return 0;
}

/* Appends a chunk of the stream and dispatches the complete lines in it. */
static int watch_feed(struct call *k, const char *data, size_t len)
{
	struct kpar_buf *b = &k->resp;
	size_t start = 0;
	char *nl;

	if (!len)
		return 0;
	kpar_buf_add(b, data, len);
	while ((nl = memchr(b->data + k->scan, '\n', b->len - k->scan)) != NULL) {
		size_t end = (size_t)(nl - b->data);
		int rc = watch_line(k, b->data + start, end - start);
		start = end + 1;
		k->scan = start;
		if (rc < 0)
			return -1;
	}
	if (start) {
		memmove(b->data, b->data + start, b->len - start);
		b->len -= start;
		b->data[b->len] = '\0';
	}
	k->scan = b->len;
	if (b->len > EVENT_LIMIT) {
		k->bad = kpar_xasprintf("an event longer than %zu MiB", EVENT_LIMIT >> 20);
		return -1;
	}
	return 0;
}

static size_t on_write(char *data, size_t size, size_t n, void *ud)
{
	struct call *k = ud;
	size_t len = size * n;
	long status = 0;

	if (k->watch) {
		curl_easy_getinfo(k->h, CURLINFO_RESPONSE_CODE, &status);
		if (status >= 200 && status < 300)
			return watch_feed(k, data, len) < 0 ? 0 : len;
		/* an error answer: keep its start for the message */
		if (k->resp.len < k->limit)
			kpar_buf_add(&k->resp, data, len < k->limit - k->resp.len ? len
						      : k->limit - k->resp.len);
		return len;
	}
	if (k->resp.len + len > k->limit) {
		k->too_large = 1;
		return 0;
	}
	kpar_buf_add(&k->resp, data, len);
	return len;
}

/* ---- one attempt ---- */

static struct curl_slist *setup(struct call *k)
{
	struct kpar_k8s_client *c = k->c;
	const struct kpar_k8s_config *cfg = c->cfg;
	CURL *h = k->h;
	struct curl_slist *hdrs = NULL;
	char *url = kpar_xasprintf("%s%s", c->base, k->path);

	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, url);   /* curl copies it */
	free(url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "kpar/" PACKAGE_VERSION);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, k->errbuf);

	/* TLS: verified unless the kubeconfig said insecure-skip-tls-verify */
	if (cfg->insecure) {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
	} else {
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
		curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
		if (cfg->ca_pem.len) {
			struct curl_blob blob = { cfg->ca_pem.data, cfg->ca_pem.len, CURL_BLOB_COPY };
			curl_easy_setopt(h, CURLOPT_CAINFO_BLOB, &blob);
		}
	}
	if (c->cert && c->cert->len) {
		struct curl_blob blob = { c->cert->data, c->cert->len, CURL_BLOB_COPY };
		curl_easy_setopt(h, CURLOPT_SSLCERT_BLOB, &blob);
		curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
	}
	if (c->key && c->key->len) {
		struct curl_blob blob = { c->key->data, c->key->len, CURL_BLOB_COPY };
		curl_easy_setopt(h, CURLOPT_SSLKEY_BLOB, &blob);
		curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
	}
	if (c->connect_to)
		curl_easy_setopt(h, CURLOPT_CONNECT_TO, c->connect_to);
	if (cfg->proxy_url && *cfg->proxy_url)
		curl_easy_setopt(h, CURLOPT_PROXY, cfg->proxy_url);

	/* A peer that vanished without a FIN is found by keepalive probes; an
	 * idle watch legitimately sends nothing for minutes, so no low-speed
	 * limit: watches end by timeoutSeconds (plus a hard limit). */
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 30L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 10L);
	if (k->watch) {
		curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
		if (k->hard_timeout_s)
			curl_easy_setopt(h, CURLOPT_TIMEOUT, k->hard_timeout_s);
	} else {
		long ms = (long)(c->timeout * 1000.0);
		curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, ms);
		curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
				 ms < CONNECT_TIMEOUT_MS ? ms : CONNECT_TIMEOUT_MS);
	}
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, k);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, k);

	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	if (c->auth_header) {
		hdrs = curl_slist_append(hdrs, c->auth_header);
	} else if (cfg->username && *cfg->username) {
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(h, CURLOPT_USERNAME, cfg->username);
		curl_easy_setopt(h, CURLOPT_PASSWORD, cfg->password ? cfg->password : "");
	}
	if (strcmp(k->method, "GET") == 0) {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	} else if (strcmp(k->method, "HEAD") == 0) {
		curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
	} else {
		if (strcmp(k->method, "POST") != 0)
			curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, k->method);
		/* a POST always has a body (never curl's default: stdin) */
		if (k->body || strcmp(k->method, "POST") == 0) {
			char *ct = kpar_xasprintf("Content-Type: %s",
						  k->ctype ? k->ctype : "application/json");
			curl_easy_setopt(h, CURLOPT_POSTFIELDS, k->body ? k->body : "");
			curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
					 (curl_off_t)(k->body ? k->body_len : 0));
			hdrs = curl_slist_append(hdrs, ct);
			hdrs = curl_slist_append(hdrs, "Expect:");
			free(ct);
		}
	}
	if (!hdrs)
		abort();
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	return hdrs;
}

static void reset_answer(struct call *k)
{
	kpar_buf_clear(&k->resp);
	k->too_large = 0;
	k->scan = 0;
	k->errbuf[0] = '\0';
}

/* A transport failure worth another attempt: the request was not sent (or
 * is idempotent) and the failure may pass. */
static int retryable_transport(const struct call *k)
{
	int idempotent = strcmp(k->method, "GET") == 0 || strcmp(k->method, "HEAD") == 0 ||
			 strcmp(k->method, "PUT") == 0 || strcmp(k->method, "DELETE") == 0;

	switch (k->cres) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_SSL_CONNECT_ERROR:
		return 1;
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return idempotent || k->sent == 0;
	default:
		return 0;
	}
}

static uint64_t backoff_ms(struct kpar_k8s_client *c, int n)
{
	uint64_t d = (uint64_t)BACKOFF_BASE_MS << (n < 6 ? n : 6);

	if (d > BACKOFF_CAP_MS)
		d = BACKOFF_CAP_MS;
	/* +-25%: many kpar runs against one apiserver should not retry in step */
	return d * 3 / 4 + next_rand(c) % (d / 2 + 1);
}

/* Sleeps ms, ticking; 1 when the tick asked to stop. */
static int wait_ticking(struct kpar_k8s_client *c, uint64_t ms)
{
	uint64_t end = kpar_clock_ms() + ms, now;

	while ((now = kpar_clock_ms()) < end) {
		if (tick_due(c))
			return 1;
		kpar_clock_sleep_ms(end - now < 200 ? end - now : 200);
	}
	return 0;
}

static void trace(const struct call *k, uint64_t t0)
{
	fprintf(stderr, "kpar k8s: %s %s%s: ", k->method, k->path, k->watch ? " (watch)" : "");
	if (k->cres != CURLE_OK && !(k->watch && k->status >= 200 && k->status < 300)) {
		if (k->status)
			fprintf(stderr, "%ld, then ", k->status);
		fprintf(stderr, "%s", curl_easy_strerror(k->cres));
	} else
		fprintf(stderr, "%ld", k->status);
	if (k->watch && k->status >= 200 && k->status < 300)
		fprintf(stderr, ", %lu events", k->events);
	fprintf(stderr, " (%.3f s)\n", (double)(kpar_clock_ms() - t0) / 1000.0);
}

/* Runs the call's attempts until one is final.  0: k->cres/k->status say
 * how it ended; < 0: interrupted, or no credentials (message set). */
static int run_call(struct call *k)
{
	struct kpar_k8s_client *c = k->c;
	uint64_t deadline;
	int refreshed = 0, backoffs = 0, rc;

	k->started = kpar_clock_ms();
	c->last_tick = k->started;
	deadline = k->started + (uint64_t)(c->retry_budget * 1000.0);
	rc = get_auth(c, k, 0);
	if (rc < 0)
		return rc;
	for (;;) {
		struct curl_slist *hdrs;
		curl_off_t retry_after = 0;
		uint64_t t0 = kpar_clock_ms(), wait;

		reset_answer(k);
		hdrs = setup(k);
		k->attempts++;
		c->stats.requests++;
		k->status = k->sent = 0;
		k->cres = curl_easy_perform(k->h);
		curl_easy_getinfo(k->h, CURLINFO_RESPONSE_CODE, &k->status);
		curl_easy_getinfo(k->h, CURLINFO_REQUEST_SIZE, &k->sent);
		curl_easy_getinfo(k->h, CURLINFO_RETRY_AFTER, &retry_after);
		/* nothing of this call may outlive it in the handle */
		curl_easy_reset(k->h);
		free_headers(hdrs);
		if (c->debug)
			trace(k, t0);
		if (k->interrupted)
			return kpar_error_set(KPAR_EINTR, "%s %s: interrupted", k->method, k->path);
		if (k->watch && k->status >= 200 && k->status < 300)
			return 0;    /* the stream began: how it ended is the caller's */
		if (k->cres != CURLE_OK) {
			if (k->too_large || !retryable_transport(k))
				return 0;
			wait = backoff_ms(c, backoffs++);
		} else if (k->status == 401 && !refreshed) {
			refreshed = 1;
			rc = get_auth(c, k, 1);
			if (rc < 0)
				return rc;
			c->stats.retries++;
			continue;
		} else if (k->status == 429) {
			wait = retry_after > 1 ? (uint64_t)retry_after * 1000u : 1000u;
		} else if (k->status == 500 || k->status == 502 || k->status == 503 ||
			   k->status == 504) {
			wait = backoff_ms(c, backoffs++);
			if (retry_after > 0 && (uint64_t)retry_after * 1000u > wait)
				wait = (uint64_t)retry_after * 1000u;
		} else {
			return 0;
		}
		if (kpar_clock_ms() + wait > deadline)
			return 0;    /* out of budget: the last answer stands */
		if (c->debug)
			fprintf(stderr, "kpar k8s: %s %s: retrying in %.1f s\n", k->method, k->path,
				(double)wait / 1000.0);
		c->stats.retries++;
		if (wait_ticking(c, wait))
			return kpar_error_set(KPAR_EINTR, "%s %s: interrupted", k->method, k->path);
	}
}

/* ---- errors ---- */

static const char *reason_phrase(long status)
{
	switch (status) {
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 406: return "Not Acceptable";
	case 409: return "Conflict";
	case 410: return "Gone";
	case 413: return "Request Entity Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Entity";
	case 429: return "Too Many Requests";
	case 500: return "Internal Server Error";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return NULL;
	}
}

static int status_code_for(long status)
{
	if (status == 401 || status == 403)
		return KPAR_EAUTH;
	if (status == 404 || status == 410)
		return KPAR_ENOTFOUND;
	if (status == 400 || status == 422)
		return KPAR_EINVAL;
	return KPAR_ENET;
}

/* " Forbidden: <message>" from a Status answer, else the phrase and the body's start. */
static void describe_answer(struct kpar_buf *b, const struct call *k)
{
	cJSON *j = k->resp.len ? cJSON_ParseWithLength(k->resp.data, k->resp.len) : NULL;
	const cJSON *kind = cJSON_GetObjectItemCaseSensitive(j, "kind");
	const cJSON *reason = cJSON_GetObjectItemCaseSensitive(j, "reason");
	const cJSON *msg = cJSON_GetObjectItemCaseSensitive(j, "message");
	const char *phrase = reason_phrase(k->status);

	if (cJSON_IsString(kind) && strcmp(kind->valuestring, "Status") == 0) {
		if (cJSON_IsString(reason) && reason->valuestring[0]) {
			kpar_buf_putc(b, ' ');
			put_sanitized(b, reason->valuestring, strlen(reason->valuestring), 64);
		} else if (phrase) {
			kpar_buf_printf(b, " %s", phrase);
		}
		if (cJSON_IsString(msg) && msg->valuestring[0]) {
			kpar_buf_puts(b, ": ");
			put_sanitized(b, msg->valuestring, strlen(msg->valuestring), 400);
		}
	} else {
		if (phrase)
			kpar_buf_printf(b, " %s", phrase);
		if (k->resp.len) {
			kpar_buf_puts(b, ": answer is not a Status: '");
			put_sanitized(b, k->resp.data, k->resp.len, 120);
			kpar_buf_putc(b, '\'');
		}
	}
	cJSON_Delete(j);
}

/* The error of a call that ended without a 2xx answer (or with a broken one). */
static int call_error(const struct call *k)
{
	const struct kpar_k8s_client *c = k->c;
	struct kpar_buf b = KPAR_BUF_INIT;
	int code;

	kpar_buf_printf(&b, "%s %s: ", k->method, k->path);
	if (k->too_large) {
		kpar_buf_printf(&b, "the answer is larger than %zu MiB", k->limit >> 20);
		code = KPAR_ENET;
	} else if (k->cres != CURLE_OK) {
		kpar_buf_printf(&b, "%s: %s", c->cfg->server,
				k->errbuf[0] ? k->errbuf : curl_easy_strerror(k->cres));
		if (k->cres == CURLE_PEER_FAILED_VERIFICATION)
			kpar_buf_printf(&b, " (the certificate was checked against '%s' with %s)",
					c->connect_to ? c->cfg->tls_server_name : "the server's host",
					c->cfg->ca_pem.len ? "the configured CA" : "the system's CAs");
		code = KPAR_ENET;
	} else {
		kpar_buf_printf(&b, "%ld", k->status);
		describe_answer(&b, k);
		code = status_code_for(k->status);
	}
	if (k->attempts > 1)
		kpar_buf_printf(&b, " (after %d attempts in %.1f s)", k->attempts,
				(double)(kpar_clock_ms() - k->started) / 1000.0);
	kpar_error_set(code, "%s", b.data);
	kpar_buf_free(&b);
	return code;
}

/* ---- the calls ---- */

static int call_init(struct call *k, struct kpar_k8s_client *c, CURL *h, const char *method,
		     const char *path)
{
	const char *p;

	memset(k, 0, sizeof *k);
	k->c = c;
	k->h = h;
	k->method = method ? method : "";
	k->path = path ? path : "";
	if (!*k->method || strpbrk(k->method, " \t\r\n"))
		return kpar_error_set(KPAR_EINVAL, "bad HTTP method '%s'", k->method);
	if (k->path[0] != '/')
		return kpar_error_set(KPAR_EINVAL, "%s '%s': the path must start with '/'", k->method,
				      k->path);
	for (p = k->path; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f || *p == '#')
			return kpar_error_set(KPAR_EINVAL, "%s '%s': the path holds a space, a control "
					      "character or '#' (escape query values with "
					      "kpar_k8s_query_escape)", k->method, k->path);
	return 0;
}

int kpar_k8s_request(struct kpar_k8s_client *c, const char *method, const char *path,
		     const char *content_type, const char *body, size_t body_len,
		     struct kpar_k8s_response *resp)
{
	struct call k;
	int rc;

	if (resp) {
		resp->status = 0;
		resp->body.data = NULL;
		resp->body.len = resp->body.cap = 0;
	}
	rc = call_init(&k, c, c->easy, method, path);
	if (rc < 0)
		return rc;
	if (content_type && strpbrk(content_type, "\r\n"))
		return kpar_error_set(KPAR_EINVAL, "%s %s: bad content type", k.method, k.path);
	k.ctype = content_type;
	k.body = body;
	k.body_len = body ? body_len : 0;
	k.limit = BODY_LIMIT;
	rc = run_call(&k);
	if (rc == 0 && (k.cres != CURLE_OK || k.status < 200 || k.status > 299))
		rc = call_error(&k);
	if (resp && rc != KPAR_EINTR && k.cres == CURLE_OK) {
		resp->status = k.status;
		resp->body = k.resp;
		k.resp.data = NULL;
	}
	kpar_buf_free(&k.resp);
	return rc;
}

int kpar_k8s_request_json(struct kpar_k8s_client *c, const char *method, const char *path,
			  const char *body, cJSON **out, long *status)
{
	struct kpar_k8s_response r;
	int rc;

	*out = NULL;
	rc = kpar_k8s_request(c, method, path, NULL, body, body ? strlen(body) : 0, &r);
	if (status)
		*status = r.status;
	if (rc == 0) {
		*out = r.body.len ? cJSON_ParseWithLength(r.body.data, r.body.len) : NULL;
		if (!*out) {
			struct kpar_buf b = KPAR_BUF_INIT;
			kpar_buf_printf(&b, "%s %s: %ld answer is not JSON: '", method, path, r.status);
			put_sanitized(&b, r.body.data ? r.body.data : "", r.body.len, 80);
			kpar_buf_putc(&b, '\'');
			rc = kpar_error_set(KPAR_ENET, "%s", b.data);
			kpar_buf_free(&b);
		}
	}
	kpar_k8s_response_free(&r);
	return rc;
}

/* timeoutSeconds=N of a watch path, or 0. */
static long path_timeout(const char *path)
{
	const char *q = strchr(path, '?'), *p;

	for (p = q; p && *p; p = strchr(p + 1, '&')) {
		if (strncmp(p + 1, "timeoutSeconds=", 15) == 0) {
			char *end;
			long v = strtol(p + 16, &end, 10);
			return v > 0 && (*end == '\0' || *end == '&') ? v : 0;
		}
	}
	return 0;
}

int kpar_k8s_watch(struct kpar_k8s_client *c, const char *path, kpar_k8s_event_fn fn, void *ud,
		   long *status)
{
	struct call k;
	long t;
	int rc;

	if (status)
		*status = 0;
	rc = call_init(&k, c, c->weasy, "GET", path);
	if (rc < 0)
		return rc;
	if (!fn)
		return kpar_error_set(KPAR_EINVAL, "GET %s: a watch without an event function", path);
	k.watch = 1;
	k.fn = fn;
	k.ud = ud;
	k.limit = ERRBODY_LIMIT;
	t = path_timeout(k.path);
	k.hard_timeout_s = t ? t + WATCH_GRACE_S : 0;
	c->stats.watches++;
	rc = run_call(&k);
	if (status)
		*status = k.status;
	if (rc < 0)
		goto done;
	if (k.stop) {
		rc = k.stop;
	} else if (k.status < 200 || k.status > 299) {
		rc = call_error(&k);
	} else if (k.bad) {
		rc = kpar_error_set(KPAR_ENET, "GET %s: watch stream: %s", k.path, k.bad);
	} else if (k.cres != CURLE_OK) {
		rc = kpar_error_set(KPAR_ENET, "GET %s: watch stream broke after %lu events: %s",
				    k.path, k.events,
				    k.errbuf[0] ? k.errbuf : curl_easy_strerror(k.cres));
	} else {
		size_t i;
		for (i = 0; i < k.resp.len; i++)
			if (!strchr(" \t\r\n", k.resp.data[i]))
				break;
		if (i < k.resp.len)
			rc = kpar_error_set(KPAR_ENET, "GET %s: watch stream ended inside an event "
					    "(%zu bytes after event %lu)", k.path, k.resp.len, k.events);
		else
			rc = 0;
	}
done:
	free(k.bad);
	kpar_buf_free(&k.resp);
	return rc;
}
