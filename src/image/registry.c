/* registry.c - distribution-spec client: pull, push, auth, retries, on one curl multi handle.
 *
 * Design notes.
 *
 * Every HTTP exchange is a `struct req` carried by a `struct job`.  One
 * engine, drive(), runs any number of jobs on the registry's multi handle
 * (one job for the synchronous calls, up to max_parallel for blob uploads)
 * and decides what a finished transfer means before the job sees it:
 *
 *   transport error / 429 / 5xx  -> retry after backoff (Retry-After wins),
 *                                   from the job's restart point for uploads
 *   401 with a challenge          -> authenticate() (token or Basic), retry
 *   3xx with Location             -> follow; Authorization only to our origin
 *   anything else                 -> the job's step() function
 *
 * step() advances the job's state machine (push: HEAD -> [mount] -> POST ->
 * PUT | PATCH...PUT) by preparing the next req, or finishes the job.
 * Redirects are not left to curl because curl decides "same host" on the
 * host name alone in some versions, and because a redirected upload must
 * keep its method and body.
 *
 * Auth state lives in the registry: the mode learnt from GET /v2/ or from a
 * 401 (none, Basic, Bearer), the credentials (loaded once, lazily), and for
 * Bearer one token covering a growing set of scopes; a token is refreshed
 * before it expires and whenever the registry answers 401 to it.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/curl_load.h"
#include "base/digest.h"
#include "image/dockercfg.h"
#include "base/error.h"
#include "image/registry.h"

#define MANIFEST_LIMIT (4u << 20)    /* the spec's recommended manifest limit */
#define ERRBODY_LIMIT (64u << 10)    /* error bodies and small answers */
#define TOKEN_LIMIT (1u << 20)
#define MAX_REDIRECTS 10
#define MAX_AUTH_ROUNDS 2
#define BACKOFF_CAP_MS 30000
#define RETRY_AFTER_CAP_S 300

#define ACCEPT_MANIFESTS "Accept: " KPAR_MT_OCI_INDEX ", " KPAR_MT_DOCKER_LIST ", " \
	KPAR_MT_OCI_MANIFEST ", " KPAR_MT_DOCKER_MANIFEST

enum auth_mode { AUTH_UNKNOWN, AUTH_NONE, AUTH_BASIC, AUTH_BEARER };

struct kpar_registry {
	char *host;          /* as the user named it: used for credentials and messages */
	char *api_host;      /* where requests go (docker.io -> registry-1.docker.io) */
	char *repo;
	char *base;          /* scheme://api_host, once known */
	int http_ok;
	char *insecure_list; /* opts->insecure_registries, or NULL */
	char *ca_file;
	char *user_agent;
	char *docker_config_dir;
	int max_parallel;
	int max_retries;
	unsigned retry_base_ms;
	uint64_t chunk_size;
	int debug;

	CURLM *multi;
	CURL *aux;           /* token requests, outside the multi loop */

	enum auth_mode auth;
	int creds_loaded;
	int have_cred;
	struct kpar_cred cred;
	char *basic_header;  /* "Authorization: Basic ..." */
	char *realm, *service;
	struct kpar_strv scopes;     /* wanted, sorted, unique */
	struct kpar_strv granted;    /* what the current token was asked for */
	char *bearer_header;         /* "Authorization: Bearer ..." */
	uint64_t token_expiry_ms;    /* monotonic clock */
	unsigned token_fetches;      /* also the token's generation */

	/* Blobs known to be in the repository: pushed, mounted or found by HEAD
	 * during this session, so later pushes (per-bucket images sharing
	 * layers) neither re-check nor re-send them. */
	struct kpar_strv confirmed;
};

struct job;

struct req {
	const char *method;
	char *url;
	struct curl_slist *headers;  /* without Authorization */
	size_t body_limit;
	int no_auth;                 /* a 401 is final (the ping) */
	int restart_on_retry;        /* retry the job from its restart point */
	int probe;                   /* the scheme probe: a protocol mismatch is final */

	/* request body: fd or memory */
	int has_body;
	int body_fd;
	const unsigned char *body_mem;
	uint64_t body_off, body_len, body_pos;

	/* response */
	struct kpar_buf resp;
	int too_large;
	int file_fd;                 /* >= 0: 2xx body goes here (blob download) */
	struct kpar_sha256 *file_hash;
	uint64_t file_len;
	int file_err;
	long status;
	CURLcode cres;
	char errbuf[CURL_ERROR_SIZE];
	char *h_location, *h_www_auth, *h_ctype, *h_digest, *h_range;
	curl_off_t retry_after;
	curl_off_t uploaded;

	/* bookkeeping */
	int attempts, auth_rounds, redirects;
	uint64_t not_before;
	int in_flight;
	int sent_auth;
	unsigned token_gen;          /* r->token_fetches when the request went out */
	struct curl_slist *live;
};

enum push_state { P_HEAD, P_MOUNT, P_POST, P_PATCH, P_PUT, P_PUT_FINAL };

struct job {
	struct kpar_registry *r;
	struct req req;
	CURL *easy;
	int (*step)(struct job *j);
	void (*restart)(struct job *j);  /* back to the first state, for retries */
	int finished;
	int rc;
	char *err;

	/* blob push */
	const struct kpar_registry_blob *blob;
	char *what;
	int fd;
	uint64_t size, off;
	enum push_state state;
	int mount_tried;
	int check_only;              /* a blob the manifest names but the caller did not give */
	int restarts;
	struct kpar_push_stats *stats;
};

static int retryable_curl(CURLcode c);

/* ---- small string helpers ---- */

static char *base64(const void *data, size_t len)
{
	char *out = kpar_xmalloc(4 * ((len + 2) / 3) + 1);

	EVP_EncodeBlock((unsigned char *)out, data, (int)len);
	return out;
}

/* Appends key=value with value percent-encoded (RFC 3986 unreserved kept). */
static void put_param(struct kpar_buf *b, const char *key, const char *value)
{
	kpar_buf_puts(b, key);
	kpar_buf_putc(b, '=');
	kpar_buf_url_escape(b, value);
}

/* An application/x-www-form-urlencoded body, one field at a time. */
static void form_add(struct kpar_buf *b, const char *key, const char *value)
{
	if (b->len)
		kpar_buf_putc(b, '&');
	put_param(b, key, value);
}

char *kpar_registry_url_add_query(const char *url, const char *key, const char *value)
{
	struct kpar_buf b = KPAR_BUF_INIT;
	const char *q = strchr(url, '?');

	kpar_buf_puts(&b, url);
	/* Keep the query the registry gave (e.g. ?_state=...): append to it. */
	if (!q)
		kpar_buf_putc(&b, '?');
	else if (q[1] != '\0' && url[strlen(url) - 1] != '&')
		kpar_buf_putc(&b, '&');
	put_param(&b, key, value);
	return kpar_buf_detach(&b, NULL);
}

/* Splits host[:port] (with [v6] literals) into a malloc'd host; port may be NULL. */
static char *split_host(const char *hostport, const char **port)
{
	const char *colon;

	if (hostport[0] == '[') {
		const char *close = strchr(hostport, ']');
		if (close) {
			if (port)
				*port = close[1] == ':' ? close + 2 : NULL;
			return kpar_xstrndup(hostport, (size_t)(close - hostport) + 1);
		}
	}
	colon = strrchr(hostport, ':');
	if (colon && strchr(hostport, ':') == colon) {
		if (port)
			*port = colon + 1;
		return kpar_xstrndup(hostport, (size_t)(colon - hostport));
	}
	if (port)
		*port = NULL;
	return kpar_xstrdup(hostport);
}

static int is_loopback(const char *host)
{
	if (strcasecmp(host, "localhost") == 0 || strcmp(host, "[::1]") == 0 ||
	    strcmp(host, "::1") == 0)
		return 1;
	if (strncmp(host, "127.", 4) == 0) {
		const char *p;
		int dots = 0;
		for (p = host; *p; p++) {
			if (*p == '.')
				dots++;
			else if (*p < '0' || *p > '9')
				return 0;
		}
		return dots == 3;
	}
	return 0;
}

int kpar_registry_host_insecure_ok(const char *hostport, const char *insecure_list)
{
	char *host = split_host(hostport, NULL);
	int ok = is_loopback(host);
	const char *p = insecure_list;

	while (!ok && p && *p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		char *entry;

		while (len && (*p == ' ' || *p == '\t')) {
			p++;
			len--;
		}
		while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		entry = kpar_xstrndup(p, len);
		if (strncmp(entry, "http://", 7) == 0)
			memmove(entry, entry + 7, strlen(entry + 7) + 1);
		if (*entry) {
			const char *eport;
			char *ehost = split_host(entry, &eport);
			if (strcasecmp(entry, hostport) == 0 || (!eport && strcasecmp(ehost, host) == 0))
				ok = 1;
			free(ehost);
		}
		free(entry);
		p = end ? end + 1 : NULL;
	}
	free(host);
	return ok;
}

/* Appends s with control characters replaced and at most max bytes, for messages. */
static void put_sanitized(struct kpar_buf *b, const char *s, size_t max)
{
	size_t i;

	for (i = 0; s[i] && i < max; i++)
		kpar_buf_putc(b, (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? ' ' : s[i]);
	if (s[i])
		kpar_buf_puts(b, "...");
}

static int repo_name_ok(const char *s)
{
	size_t i;

	if (!s[0] || s[0] == '/' || strlen(s) > 255 || strstr(s, ".."))
		return 0;
	for (i = 0; s[i]; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
		      s[i] == '.' || s[i] == '_' || s[i] == '-' || s[i] == '/'))
			return 0;
	return 1;
}

/* ---- WWW-Authenticate ---- */

static int is_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~/:=", c) != NULL);
}

void kpar_auth_challenge_free(struct kpar_auth_challenge *c)
{
	free(c->scheme);
	free(c->realm);
	free(c->service);
	free(c->scope);
	free(c->error);
	memset(c, 0, sizeof *c);
}

int kpar_registry_parse_challenge(const char *value, struct kpar_auth_challenge *out)
{
	const char *p = value, *start;

	memset(out, 0, sizeof *out);
	while (*p == ' ' || *p == '\t')
		p++;
	start = p;
	while (*p && *p != ' ' && *p != '\t' && *p != ',')
		p++;
	if (p == start)
		return kpar_error_set(KPAR_EINVAL, "WWW-Authenticate '%s': no scheme", value);
	out->scheme = kpar_xstrndup(start, (size_t)(p - start));
	for (;;) {
		struct kpar_buf val = KPAR_BUF_INIT;
		const char *name;
		size_t name_len;
		char **slot = NULL;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (!*p)
			break;
		name = p;
		while (*p && *p != '=' && *p != ' ' && *p != '\t' && *p != ',')
			p++;
		name_len = (size_t)(p - name);
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p != '=') {
			/* The next challenge of a list ("Basic realm=x, Bearer ...") or a
			 * token68: either way this challenge's parameters end here. */
			break;
		}
		p++;
		while (*p == ' ' || *p == '\t')
			p++;
		kpar_buf_puts(&val, "");
		if (*p == '"') {
			p++;
			while (*p && *p != '"') {
				if (*p == '\\' && p[1])
					p++;
				kpar_buf_putc(&val, *p++);
			}
			if (*p != '"') {
				kpar_buf_free(&val);
				kpar_auth_challenge_free(out);
				return kpar_error_set(KPAR_EINVAL, "WWW-Authenticate '%s': unterminated "
						      "quoted string", value);
			}
			p++;
		} else {
			while (*p && is_tchar(*p) && *p != ',')
				kpar_buf_putc(&val, *p++);
		}
		if (name_len == 5 && strncasecmp(name, "realm", 5) == 0)
			slot = &out->realm;
		else if (name_len == 7 && strncasecmp(name, "service", 7) == 0)
			slot = &out->service;
		else if (name_len == 5 && strncasecmp(name, "scope", 5) == 0)
			slot = &out->scope;
		else if (name_len == 5 && strncasecmp(name, "error", 5) == 0)
			slot = &out->error;
		if (slot) {
			free(*slot);
			*slot = kpar_buf_detach(&val, NULL);
		}
		kpar_buf_free(&val);
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p && *p != ',') {
			kpar_auth_challenge_free(out);
			return kpar_error_set(KPAR_EINVAL, "WWW-Authenticate '%s': junk after a parameter "
					      "value", value);
		}
	}
	return 0;
}

/* ---- the registry object ---- */

int kpar_registry_open(struct kpar_registry **out, const char *host, const char *repo,
		       const struct kpar_registry_opts *opts)
{
	static const struct kpar_registry_opts defaults;
	struct kpar_registry *r;
	const char *ca;

	*out = NULL;
	if (!opts)
		opts = &defaults;
	if (!host || !*host || strchr(host, '/') || strchr(host, '@') || strchr(host, ' '))
		return kpar_error_set(KPAR_EINVAL, "bad registry host '%s'", host ? host : "");
	if (!repo || !repo_name_ok(repo))
		return kpar_error_set(KPAR_EINVAL, "bad repository name '%s'", repo ? repo : "");
	ca = opts->ca_file;
	if (ca && *ca && access(ca, R_OK) != 0)
		return kpar_error_errno(KPAR_EINVAL, "registry CA file '%s' cannot be read", ca);
	if (kpar_curl_load() < 0)
		return kpar_error_prefix(KPAR_ENET, "registry %s", host);

	r = kpar_xcalloc(1, sizeof *r);
	r->host = kpar_xstrdup(host);
	if (strcmp(host, "docker.io") == 0 || strcmp(host, "index.docker.io") == 0)
		r->api_host = kpar_xstrdup("registry-1.docker.io");
	else
		r->api_host = kpar_xstrdup(host);
	r->repo = kpar_xstrdup(repo);
	r->insecure_list = opts->insecure_registries && *opts->insecure_registries
				   ? kpar_xstrdup(opts->insecure_registries) : NULL;
	r->http_ok = opts->insecure ||
		     kpar_registry_host_insecure_ok(r->api_host, r->insecure_list) ||
		     kpar_registry_host_insecure_ok(r->host, r->insecure_list);
	r->ca_file = ca && *ca ? kpar_xstrdup(ca) : NULL;
	r->user_agent = kpar_xstrdup(opts->user_agent ? opts->user_agent : "kpar/" PACKAGE_VERSION);
	r->docker_config_dir = opts->docker_config_dir ? kpar_xstrdup(opts->docker_config_dir) : NULL;
	r->max_parallel = opts->max_parallel > 0 ? opts->max_parallel : 4;
	r->max_retries = opts->max_retries == 0 ? 5 : opts->max_retries < 0 ? 0 : opts->max_retries;
	r->retry_base_ms = opts->retry_base_ms ? opts->retry_base_ms : 500;
	r->chunk_size = opts->chunk_size;
	r->debug = opts->debug;
	r->multi = curl_multi_init();
	r->aux = curl_easy_init();
	if (!r->multi || !r->aux)
		abort();
	curl_multi_setopt(r->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)r->max_parallel);
	r->auth = AUTH_UNKNOWN;
	*out = r;
	return 0;
}

void kpar_registry_free(struct kpar_registry *r)
{
	if (!r)
		return;
	free(r->host);
	free(r->api_host);
	free(r->repo);
	free(r->base);
	free(r->ca_file);
	free(r->insecure_list);
	free(r->user_agent);
	free(r->docker_config_dir);
	if (r->multi)
		curl_multi_cleanup(r->multi);
	if (r->aux)
		curl_easy_cleanup(r->aux);
	kpar_cred_clear(&r->cred);
	kpar_wipe_free(r->basic_header);
	kpar_wipe_free(r->bearer_header);
	free(r->realm);
	free(r->service);
	kpar_strv_free(&r->scopes);
	kpar_strv_free(&r->granted);
	kpar_strv_free(&r->confirmed);
	free(r);
}

/* ---- messages ---- */

/* "registry 'h' repository 'r': <what>: " as the start of every message. */
static void msg_head(struct kpar_buf *b, const struct kpar_registry *r, const char *what)
{
	kpar_buf_printf(b, "registry '%s' repository '%s': %s: ", r->host, r->repo, what);
}

/* Appends the codes and messages of a {"errors":[...]} body, or says it is not one. */
static void describe_body(struct kpar_buf *b, const struct req *q)
{
	cJSON *j, *errs, *e;
	int n = 0;

	if (!q->resp.len)
		return;
	j = cJSON_ParseWithLength(q->resp.data, q->resp.len);
	errs = j ? cJSON_GetObjectItemCaseSensitive(j, "errors") : NULL;
	if (cJSON_IsArray(errs)) {
		cJSON_ArrayForEach(e, errs) {
			cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "code");
			cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message");
			kpar_buf_puts(b, n++ ? "; " : " (");
			put_sanitized(b, cJSON_IsString(code) ? code->valuestring : "?", 64);
			if (cJSON_IsString(msg) && msg->valuestring[0]) {
				kpar_buf_puts(b, ": ");
				put_sanitized(b, msg->valuestring, 200);
			}
			if (n >= 5)
				break;
		}
		if (n)
			kpar_buf_putc(b, ')');
	}
	if (!n) {
		kpar_buf_puts(b, " with a body that is not the registry's error JSON: \"");
		put_sanitized(b, q->resp.data, 80);
		kpar_buf_putc(b, '"');
	}
	cJSON_Delete(j);
}

static int status_code_for(long status)
{
	if (status == 401 || status == 403)
		return KPAR_EAUTH;
	if (status == 404)
		return KPAR_ENOTFOUND;
	return KPAR_ENET;
}

/* The error for a request that ended badly: transport failure or an unexpected status. */
static int req_error(struct kpar_registry *r, const struct req *q, const char *what)
{
	struct kpar_buf b = KPAR_BUF_INIT;
	int code;

	msg_head(&b, r, what);
	if (q->cres != CURLE_OK && !(q->cres == CURLE_WRITE_ERROR && q->too_large)) {
		kpar_buf_printf(&b, "%s failed: %s", q->method,
				q->errbuf[0] ? q->errbuf : curl_easy_strerror(q->cres));
		if (q->attempts > 1)
			kpar_buf_printf(&b, " (after %d attempts)", q->attempts);
		code = q->file_err ? KPAR_EIO : KPAR_ENET;
		if (q->cres == CURLE_PEER_FAILED_VERIFICATION || q->cres == CURLE_SSL_CACERT_BADFILE)
			kpar_buf_puts(&b, "; set KPAR_REGISTRY_CA to the CA bundle that signed it");
	} else if (q->too_large) {
		kpar_buf_printf(&b, "answered more than %zu bytes", q->body_limit);
		code = KPAR_ENET;
	} else {
		kpar_buf_printf(&b, "answered %ld to %s", q->status, q->method);
		describe_body(&b, q);
		if (q->attempts > 1)
			kpar_buf_printf(&b, " after %d attempts", q->attempts);
		code = status_code_for(q->status);
		if (q->status == 401 && !r->have_cred)
			kpar_buf_printf(&b, "; no credentials for '%s' in the docker config", r->host);
	}
	kpar_error_set(code, "%s", b.data);
	kpar_buf_free(&b);
	return code;
}

/* ---- curl callbacks ---- */

static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
	struct req *q = ud;
	size_t len = size * n, name_len;
	const char *colon, *v, *end;
	char **slot = NULL;

	if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
		/* A new response (after 100 Continue or similar): forget the last one's. */
		free(q->h_location);
		free(q->h_www_auth);
		free(q->h_ctype);
		free(q->h_digest);
		free(q->h_range);
		q->h_location = q->h_www_auth = q->h_ctype = q->h_digest = q->h_range = NULL;
		return len;
	}
	colon = memchr(data, ':', len);
	if (!colon)
		return len;
	name_len = (size_t)(colon - data);
	v = colon + 1;
	end = data + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
		end--;
	if (name_len == 8 && strncasecmp(data, "Location", 8) == 0)
		slot = &q->h_location;
	else if (name_len == 16 && strncasecmp(data, "WWW-Authenticate", 16) == 0) {
		/* Keep a Bearer challenge over any other the server also offers. */
		if (q->h_www_auth && strncasecmp(q->h_www_auth, "Bearer", 6) == 0)
			return len;
		slot = &q->h_www_auth;
	} else if (name_len == 12 && strncasecmp(data, "Content-Type", 12) == 0)
		slot = &q->h_ctype;
	else if (name_len == 21 && strncasecmp(data, "Docker-Content-Digest", 21) == 0)
		slot = &q->h_digest;
	else if (name_len == 5 && strncasecmp(data, "Range", 5) == 0)
		slot = &q->h_range;
	if (slot) {
		free(*slot);
		*slot = kpar_xstrndup(v, (size_t)(end - v));
	}
	return len;
}

static size_t on_write(char *data, size_t size, size_t n, void *ud)
{
	struct job *j = ud;
	struct req *q = &j->req;
	size_t len = size * n;
	long status = 0;

	curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &status);
	if (q->file_fd >= 0 && status >= 200 && status < 300) {
		const char *p = data;
		size_t left = len;
		while (left) {
			ssize_t w = write(q->file_fd, p, left);
			if (w < 0) {
				if (errno == EINTR)
					continue;
				q->file_err = errno;
				return 0;
			}
			p += w;
			left -= (size_t)w;
		}
		kpar_sha256_update(q->file_hash, data, len);
		q->file_len += len;
		return len;
	}
	if (q->resp.len + len > q->body_limit) {
		q->too_large = 1;
		return 0;
	}
	kpar_buf_add(&q->resp, data, len);
	return len;
}

static size_t on_read(char *buf, size_t size, size_t n, void *ud)
{
	struct req *q = ud;
	size_t want = size * n;
	uint64_t left = q->body_len - q->body_pos;

	if (want > left)
		want = (size_t)left;
	if (!want)
		return 0;
	if (q->body_mem) {
		memcpy(buf, q->body_mem + q->body_off + q->body_pos, want);
	} else {
		ssize_t got;
		do
			got = pread(q->body_fd, buf, want, (off_t)(q->body_off + q->body_pos));
		while (got < 0 && errno == EINTR);
		if (got <= 0)
			return CURL_READFUNC_ABORT;
		want = (size_t)got;
	}
	q->body_pos += want;
	return want;
}

static int on_seek(void *ud, curl_off_t offset, int origin)
{
	struct req *q = ud;

	if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > q->body_len)
		return CURL_SEEKFUNC_CANTSEEK;
	q->body_pos = (uint64_t)offset;
	return CURL_SEEKFUNC_OK;
}

/* The trace for $KPAR_REGISTRY_DEBUG: headers only, credentials redacted. */
static int on_debug(CURL *h, curl_infotype type, char *data, size_t size, void *ud)
{
	const char *prefix;
	size_t i = 0;

	switch (type) {
	case CURLINFO_TEXT: prefix = "* "; break;
	case CURLINFO_HEADER_IN: prefix = "< "; break;
	case CURLINFO_HEADER_OUT: prefix = "> "; break;
	default: return 0;
	}
	while (i < size) {
		size_t start = i, len;
		while (i < size && data[i] != '\n')
			i++;
		len = i - start;
		if (i < size)
			i++;
		while (len && data[start + len - 1] == '\r')
			len--;
		if (!len)
			continue;
		if (len >= 14 && strncasecmp(data + start, "Authorization:", 14) == 0)
			fprintf(stderr, "kpar registry: %sAuthorization: <redacted>\n", prefix);
		else
			fprintf(stderr, "kpar registry: %s%.*s\n", prefix, (int)len, data + start);
	}
	return 0;
}

/* ---- origins and redirects ---- */

/* scheme://host:port of an absolute URL, lowercased, default port explicit; malloc'd. */
static char *origin_of(const char *url)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL, *out = NULL;

	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
		char *p;
		out = kpar_xasprintf("%s://%s:%s", scheme, host, port);
		for (p = out; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return out;
}

static int same_origin(const char *a, const char *b)
{
	char *oa = origin_of(a), *ob = origin_of(b);
	int eq = oa && ob && strcmp(oa, ob) == 0;

	free(oa);
	free(ob);
	return eq;
}

/* Resolves ref (absolute, or relative to base) into a malloc'd absolute URL. */
static char *resolve_url(const char *base, const char *ref)
{
	CURLU *u = curl_url();
	char *s = NULL, *out = NULL;

	if (curl_url_set(u, CURLUPART_URL, base, 0) == CURLUE_OK &&
	    curl_url_set(u, CURLUPART_URL, ref, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_URL, &s, 0) == CURLUE_OK)
		out = kpar_xstrdup(s);
	curl_free(s);
	curl_url_cleanup(u);
	return out;
}

/* ---- credentials and tokens ---- */

static int load_creds(struct kpar_registry *r)
{
	int rc;

	if (r->creds_loaded)
		return 0;
	rc = kpar_dockercfg_get(r->docker_config_dir, r->host, &r->cred);
	if (rc < 0)
		return kpar_error_prefix(rc, "registry '%s'", r->host);
	r->creds_loaded = 1;
	r->have_cred = rc == 1;
	return 0;
}

static void scope_add(struct kpar_strv *sv, const char *scopes)
{
	const char *p = scopes;

	/* A challenge may carry several scopes separated by spaces. */
	while (p && *p) {
		const char *end = strchr(p, ' ');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		if (len)
			kpar_strv_pushn(sv, p, len);
		p = end ? end + 1 : NULL;
	}
	kpar_strv_sort(sv);
	kpar_strv_uniq(sv);
}

static int scopes_covered(const struct kpar_strv *want, const struct kpar_strv *have)
{
	size_t i, k;

	for (i = 0; i < want->n; i++) {
		for (k = 0; k < have->n; k++)
			if (strcmp(want->v[i], have->v[k]) == 0)
				break;
		if (k == have->n)
			return 0;
	}
	return 1;
}

static void setup_common(struct kpar_registry *r, CURL *h)
{
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, r->user_agent);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (r->ca_file)
		curl_easy_setopt(h, CURLOPT_CAINFO, r->ca_file);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 30L);
	/* A stalled transfer counts as a dropped connection and is retried. */
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
	curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	if (r->debug) {
		curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);
		curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, on_debug);
	}
}

struct token_sink {
	struct kpar_buf b;
	int too_large;
};

static size_t on_token_write(char *data, size_t size, size_t n, void *ud)
{
	struct token_sink *s = ud;

	if (s->b.len + size * n > TOKEN_LIMIT) {
		s->too_large = 1;
		return 0;
	}
	kpar_buf_add(&s->b, data, size * n);
	return size * n;
}

/* GET (or POST, for an identity token) the realm for a token covering r->scopes. */
static int fetch_token(struct kpar_registry *r)
{
	struct token_sink sink = { KPAR_BUF_INIT, 0 };
	struct curl_slist *hdrs = NULL;
	char *url = NULL, *form = NULL, *tmp, *realm_origin = NULL;
	const char *realm_host_start;
	cJSON *j = NULL, *tok, *exp;
	long status = 0;
	curl_off_t retry_after = 0;
	CURLcode cres;
	char errbuf[CURL_ERROR_SIZE] = "";
	int rc = 0, attempt;
	size_t i;
	uint64_t started;
	double lifetime;

	if (!r->realm)
		return kpar_error_set(KPAR_EAUTH, "registry '%s' asked for a token without naming a realm",
				      r->host);
	rc = load_creds(r);
	if (rc < 0)
		return rc;
	realm_origin = origin_of(r->realm);
	if (!realm_origin || (strncmp(realm_origin, "https://", 8) != 0 &&
			      strncmp(realm_origin, "http://", 7) != 0)) {
		rc = kpar_error_set(KPAR_EAUTH, "registry '%s': token realm '%s' is not an http(s) URL",
				    r->host, r->realm);
		goto done;
	}
	if (strncmp(realm_origin, "http://", 7) == 0) {
		/* A token over plain http is as good as a password in clear: only
		 * where plain http is allowed at all. */
		char *hp;
		realm_host_start = realm_origin + 7;
		hp = kpar_xstrdup(realm_host_start);
		if (!kpar_registry_host_insecure_ok(hp, r->insecure_list)) {
			rc = kpar_error_set(KPAR_EAUTH, "registry '%s': token realm '%s' is plain http "
					    "and its host is not loopback nor in KPAR_INSECURE_REGISTRIES",
					    r->host, r->realm);
			free(hp);
			goto done;
		}
		free(hp);
	}

	if (r->have_cred && r->cred.identity_token) {
		struct kpar_buf f = KPAR_BUF_INIT;
		char *scope_joined;
		struct kpar_buf sj = KPAR_BUF_INIT;
		for (i = 0; i < r->scopes.n; i++) {
			if (i)
				kpar_buf_putc(&sj, ' ');
			kpar_buf_puts(&sj, r->scopes.v[i]);
		}
		scope_joined = kpar_buf_detach(&sj, NULL);
		/* The OAuth2 refresh grant docker uses for identity tokens. */
		form_add(&f, "grant_type", "refresh_token");
		form_add(&f, "client_id", "kpar");
		if (r->service)
			form_add(&f, "service", r->service);
		if (scope_joined && *scope_joined)
			form_add(&f, "scope", scope_joined);
		free(scope_joined);
		form_add(&f, "refresh_token", r->cred.secret);
		form = kpar_buf_detach(&f, NULL);
		url = kpar_xstrdup(r->realm);
	} else {
		url = kpar_xstrdup(r->realm);
		if (r->service) {
			tmp = kpar_registry_url_add_query(url, "service", r->service);
			free(url);
			url = tmp;
		}
		for (i = 0; i < r->scopes.n; i++) {
			tmp = kpar_registry_url_add_query(url, "scope", r->scopes.v[i]);
			free(url);
			url = tmp;
		}
	}

	for (attempt = 0;; attempt++) {
		kpar_buf_clear(&sink.b);
		sink.too_large = 0;
		errbuf[0] = '\0';
		curl_easy_reset(r->aux);
		setup_common(r, r->aux);
		curl_easy_setopt(r->aux, CURLOPT_URL, url);
		curl_easy_setopt(r->aux, CURLOPT_ERRORBUFFER, errbuf);
		curl_easy_setopt(r->aux, CURLOPT_WRITEFUNCTION, on_token_write);
		curl_easy_setopt(r->aux, CURLOPT_WRITEDATA, &sink);
		if (form) {
			curl_easy_setopt(r->aux, CURLOPT_POSTFIELDS, form);
			curl_easy_setopt(r->aux, CURLOPT_POSTFIELDSIZE, (long)strlen(form));
		} else if (r->have_cred && r->cred.username) {
			curl_easy_setopt(r->aux, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
			curl_easy_setopt(r->aux, CURLOPT_USERNAME, r->cred.username);
			curl_easy_setopt(r->aux, CURLOPT_PASSWORD, r->cred.secret);
		}
		hdrs = curl_slist_append(NULL, "Accept: application/json");
		curl_easy_setopt(r->aux, CURLOPT_HTTPHEADER, hdrs);
		started = kpar_clock_ms();
		cres = curl_easy_perform(r->aux);
		curl_easy_getinfo(r->aux, CURLINFO_RESPONSE_CODE, &status);
		curl_easy_getinfo(r->aux, CURLINFO_RETRY_AFTER, &retry_after);
		curl_slist_free_all(hdrs);
		hdrs = NULL;
		if (attempt < r->max_retries &&
		    ((retryable_curl(cres) && cres != CURLE_SSL_CONNECT_ERROR) ||
		     (cres == CURLE_OK && (status == 429 || (status >= 500 && status != 501))))) {
			uint64_t delay = (uint64_t)r->retry_base_ms << (attempt < 6 ? attempt : 6);
			if (delay > BACKOFF_CAP_MS)
				delay = BACKOFF_CAP_MS;
			if (retry_after > 0 && (uint64_t)retry_after * 1000u > delay)
				delay = (uint64_t)(retry_after > RETRY_AFTER_CAP_S ? RETRY_AFTER_CAP_S
										   : retry_after) * 1000u;
			kpar_clock_sleep_ms(delay);
			continue;
		}
		break;
	}
	if (cres != CURLE_OK) {
		rc = kpar_error_set(KPAR_ENET, "registry '%s': token server '%s': %s", r->host, r->realm,
				    sink.too_large ? "answer too large" :
				    errbuf[0] ? errbuf : curl_easy_strerror(cres));
		goto done;
	}
	if (status == 401 || status == 403) {
		if (r->have_cred)
			rc = kpar_error_set(KPAR_EAUTH, "registry '%s': token server '%s' refused the "
					    "credentials%s%s%s (%ld)", r->host, r->realm,
					    r->cred.username ? " of user '" : "",
					    r->cred.username ? r->cred.username : "",
					    r->cred.username ? "'" : "", status);
		else
			rc = kpar_error_set(KPAR_EAUTH, "registry '%s': token server '%s' refused an "
					    "anonymous token (%ld); no credentials for '%s' in the docker "
					    "config", r->host, r->realm, status, r->host);
		goto done;
	}
	if (status != 200) {
		rc = kpar_error_set(KPAR_ENET, "registry '%s': token server '%s' answered %ld", r->host,
				    r->realm, status);
		goto done;
	}
	j = cJSON_ParseWithLength(sink.b.data ? sink.b.data : "", sink.b.len);
	tok = j ? cJSON_GetObjectItemCaseSensitive(j, "token") : NULL;
	if (!cJSON_IsString(tok) || !tok->valuestring[0])
		tok = j ? cJSON_GetObjectItemCaseSensitive(j, "access_token") : NULL;
	if (!cJSON_IsString(tok) || !tok->valuestring[0]) {
		/* Never quote the body: it may hold a token under another name. */
		rc = kpar_error_set(KPAR_ENET, "registry '%s': token server '%s' answered 200 without a "
				    "token (not JSON with \"token\" or \"access_token\")", r->host, r->realm);
		goto done;
	}
	for (i = 0; tok->valuestring[i]; i++) {
		if ((unsigned char)tok->valuestring[i] <= 0x20 || tok->valuestring[i] == 0x7f) {
			rc = kpar_error_set(KPAR_ENET, "registry '%s': token server '%s' answered a token "
					    "with control characters", r->host, r->realm);
			goto done;
		}
	}
	exp = cJSON_GetObjectItemCaseSensitive(j, "expires_in");
	lifetime = cJSON_IsNumber(exp) && exp->valuedouble > 0 ? exp->valuedouble : 60.0;
	if (lifetime > 86400.0)
		lifetime = 86400.0;
	kpar_wipe_free(r->bearer_header);
	r->bearer_header = kpar_xasprintf("Authorization: Bearer %s", tok->valuestring);
	/* Refresh a little before the server would refuse it. */
	r->token_expiry_ms = started + (uint64_t)(lifetime * 1000.0 * 0.9);
	kpar_strv_free(&r->granted);
	for (i = 0; i < r->scopes.n; i++)
		kpar_strv_push(&r->granted, r->scopes.v[i]);
	r->token_fetches++;
	r->auth = AUTH_BEARER;
done:
	if (j) {
		cJSON *it = j->child;
		for (; it; it = it->next)
			if (it->valuestring)
				explicit_bzero(it->valuestring, strlen(it->valuestring));
		cJSON_Delete(j);
	}
	if (sink.b.data)
		explicit_bzero(sink.b.data, sink.b.len);
	kpar_buf_free(&sink.b);
	if (form)
		kpar_wipe_free(form);
	free(url);
	free(realm_origin);
	return rc;
}

/* Reacts to a 401's challenge.  0: retry the request; < 0: give up (message set). */
static int authenticate(struct kpar_registry *r, const struct req *q)
{
	struct kpar_auth_challenge c;
	int rc;

	if (!q->h_www_auth)
		return kpar_error_set(KPAR_EAUTH, "registry '%s' repository '%s': %s answered 401 "
				      "without a WWW-Authenticate challenge", r->host, r->repo, q->method);
	rc = kpar_registry_parse_challenge(q->h_www_auth, &c);
	if (rc < 0)
		return kpar_error_prefix(rc, "registry '%s'", r->host);
	if (strcasecmp(c.scheme, "Basic") == 0) {
		rc = load_creds(r);
		if (rc < 0)
			goto done;
		if (!r->have_cred || !r->cred.username) {
			rc = kpar_error_set(KPAR_EAUTH, "registry '%s' repository '%s' requires a user name "
					    "and password (Basic auth) and there are none for '%s' in "
					    "the docker config", r->host, r->repo, r->host);
			goto done;
		}
		if (q->sent_auth && r->auth == AUTH_BASIC) {
			rc = kpar_error_set(KPAR_EAUTH, "registry '%s' repository '%s': credentials of "
					    "user '%s' refused (401 to %s)", r->host, r->repo,
					    r->cred.username, q->method);
			goto done;
		}
		if (!r->basic_header) {
			char *pair = kpar_xasprintf("%s:%s", r->cred.username, r->cred.secret);
			char *enc = base64(pair, strlen(pair));
			r->basic_header = kpar_xasprintf("Authorization: Basic %s", enc);
			kpar_wipe_free(pair);
			kpar_wipe_free(enc);
		}
		r->auth = AUTH_BASIC;
		rc = 0;
	} else if (strcasecmp(c.scheme, "Bearer") == 0) {
		if (c.realm) {
			free(r->realm);
			r->realm = kpar_xstrdup(c.realm);
		}
		if (c.service) {
			free(r->service);
			r->service = kpar_xstrdup(c.service);
		}
		if (c.scope)
			scope_add(&r->scopes, c.scope);
		r->auth = AUTH_BEARER;
		rc = fetch_token(r);
	} else {
		rc = kpar_error_set(KPAR_EAUTH, "registry '%s' asks for auth scheme '%s', which kpar "
				    "does not speak (Basic and Bearer only)", r->host, c.scheme);
	}
done:
	kpar_auth_challenge_free(&c);
	return rc;
}

/* ---- the engine ---- */

static void req_reset_response(struct req *q)
{
	kpar_buf_clear(&q->resp);
	q->too_large = 0;
	q->status = 0;
	q->cres = CURLE_OK;
	q->errbuf[0] = '\0';
	q->retry_after = 0;
	q->uploaded = 0;
	free(q->h_location);
	free(q->h_www_auth);
	free(q->h_ctype);
	free(q->h_digest);
	free(q->h_range);
	q->h_location = q->h_www_auth = q->h_ctype = q->h_digest = q->h_range = NULL;
	q->body_pos = 0;
	if (q->file_fd >= 0) {
		/* A retried download starts over: the file and its hash. */
		if (ftruncate(q->file_fd, 0) < 0 || lseek(q->file_fd, 0, SEEK_SET) < 0)
			q->file_err = errno;
		if (q->file_hash) {
			unsigned char junk[KPAR_SHA256_LEN];
			kpar_sha256_final(q->file_hash, junk);
		}
		q->file_hash = kpar_sha256_new();
		q->file_len = 0;
	}
}

static void req_free(struct req *q)
{
	free(q->url);
	curl_slist_free_all(q->headers);
	curl_slist_free_all(q->live);
	kpar_buf_free(&q->resp);
	free(q->h_location);
	free(q->h_www_auth);
	free(q->h_ctype);
	free(q->h_digest);
	free(q->h_range);
	if (q->file_hash) {
		unsigned char junk[KPAR_SHA256_LEN];
		kpar_sha256_final(q->file_hash, junk);
	}
	memset(q, 0, sizeof *q);
	q->file_fd = -1;
	q->body_fd = -1;
}

/* Starts a fresh request in j (the previous one is freed). url is taken over. */
static void req_new(struct job *j, const char *method, char *url)
{
	int file_fd = j->req.file_fd;

	req_free(&j->req);
	j->req.method = method;
	j->req.url = url;
	j->req.body_limit = ERRBODY_LIMIT;
	j->req.file_fd = file_fd;
}

static void job_init(struct job *j, struct kpar_registry *r)
{
	memset(j, 0, sizeof *j);
	j->r = r;
	j->fd = -1;
	j->req.file_fd = -1;
	j->req.body_fd = -1;
	j->easy = curl_easy_init();
	if (!j->easy)
		abort();
}

static void job_free(struct job *j)
{
	req_free(&j->req);
	if (j->easy)
		curl_easy_cleanup(j->easy);
	if (j->fd >= 0)
		close(j->fd);
	free(j->err);
	free(j->what);
	j->easy = NULL;
	j->fd = -1;
	j->err = NULL;
	j->what = NULL;
}

static void job_fail(struct job *j, int rc)
{
	j->finished = 1;
	j->rc = rc;
	free(j->err);
	j->err = kpar_xstrdup(kpar_error_last());
}

/* Attaches handles and headers; 0, or < 0 when auth could not be readied. */
static int launch(struct job *j)
{
	struct kpar_registry *r = j->r;
	struct req *q = &j->req;
	struct curl_slist *h;
	CURL *e = j->easy;
	int rc;

	q->sent_auth = 0;
	curl_slist_free_all(q->live);
	q->live = NULL;
	for (h = q->headers; h; h = h->next)
		q->live = curl_slist_append(q->live, h->data);
	/* Without this curl waits up to a second for "100 Continue" before each body. */
	q->live = curl_slist_append(q->live, "Expect:");
	if (!q->no_auth && r->base && same_origin(q->url, r->base)) {
		if (r->auth == AUTH_BEARER &&
		    (!r->bearer_header || kpar_clock_ms() >= r->token_expiry_ms ||
		     !scopes_covered(&r->scopes, &r->granted))) {
			rc = fetch_token(r);
			if (rc < 0)
				return rc;
		}
		if (r->auth == AUTH_BEARER && r->bearer_header) {
			q->live = curl_slist_append(q->live, r->bearer_header);
			q->sent_auth = 1;
			q->token_gen = r->token_fetches;
		} else if (r->auth == AUTH_BASIC && r->basic_header) {
			q->live = curl_slist_append(q->live, r->basic_header);
			q->sent_auth = 1;
		}
	}
	req_reset_response(q);
	q->attempts++;

	curl_easy_reset(e);
	setup_common(r, e);
	curl_easy_setopt(e, CURLOPT_URL, q->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, j);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, q->errbuf);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, q);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, j);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, q->live);
	if (strcmp(q->method, "HEAD") == 0) {
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	} else if (strcmp(q->method, "POST") == 0 && !q->has_body) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
	} else if (strcmp(q->method, "PUT") == 0 || strcmp(q->method, "PATCH") == 0) {
		curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)q->body_len);
		curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(e, CURLOPT_READDATA, q);
		curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(e, CURLOPT_SEEKDATA, q);
		curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024L);
		if (strcmp(q->method, "PATCH") == 0)
			curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "PATCH");
	} else if (strcmp(q->method, "GET") != 0) {
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, q->method);
	}
	curl_multi_add_handle(r->multi, e);
	q->in_flight = 1;
	return 0;
}

enum outcome { O_FINAL, O_RETRY, O_AGAIN, O_FAILED };

static int retryable_curl(CURLcode c)
{
	switch (c) {
	case CURLE_COULDNT_CONNECT:
	case CURLE_GOT_NOTHING:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SSL_CONNECT_ERROR:
		return 1;
	default:
		return 0;
	}
}

static uint64_t backoff_ms(const struct kpar_registry *r, const struct req *q)
{
	uint64_t d = (uint64_t)r->retry_base_ms << (q->attempts < 7 ? q->attempts - 1 : 6);

	if (d > BACKOFF_CAP_MS)
		d = BACKOFF_CAP_MS;
	/* Jitter keeps parallel uploads from retrying in lockstep. */
	d = d * 3 / 4 + (uint64_t)(rand() % (int)(d / 2 + 1));
	if (q->retry_after > 0) {
		uint64_t ra = (uint64_t)(q->retry_after > RETRY_AFTER_CAP_S ? RETRY_AFTER_CAP_S
									     : q->retry_after) * 1000u;
		if (ra > d)
			d = ra;
	}
	return d;
}

/* Decides what a finished transfer means (see the design notes). */
static enum outcome classify(struct job *j)
{
	struct kpar_registry *r = j->r;
	struct req *q = &j->req;
	int rc;

	if (q->cres != CURLE_OK) {
		if (q->file_err || q->too_large)
			return O_FINAL;
		if (q->probe && (q->cres == CURLE_SSL_CONNECT_ERROR || q->cres == CURLE_RECV_ERROR ||
				 q->cres == CURLE_GOT_NOTHING || q->cres == CURLE_SEND_ERROR))
			return O_FINAL;
		if (retryable_curl(q->cres) && q->attempts <= r->max_retries) {
			q->not_before = kpar_clock_ms() + backoff_ms(r, q);
			return O_RETRY;
		}
		return O_FINAL;
	}
	if ((q->status == 429 || (q->status >= 500 && q->status != 501 && q->status != 505)) &&
	    q->attempts <= r->max_retries) {
		q->not_before = kpar_clock_ms() + backoff_ms(r, q);
		return O_RETRY;
	}
	if (q->status == 401 && !q->no_auth && q->auth_rounds < MAX_AUTH_ROUNDS &&
	    r->base && same_origin(q->url, r->base)) {
		q->auth_rounds++;
		if (q->sent_auth && r->auth == AUTH_BEARER && q->token_gen != r->token_fetches) {
			/* A parallel request already replaced the token this one was refused
			 * with: one refresh serves them all. */
			q->attempts--;
			q->not_before = 0;
			return O_AGAIN;
		}
		if (q->sent_auth && r->auth == AUTH_BEARER) {
			/* The token expired early or lacks a scope: never reuse it. */
			r->token_expiry_ms = 0;
		}
		rc = authenticate(r, q);
		if (rc < 0) {
			job_fail(j, rc);
			return O_FAILED;
		}
		q->attempts--; /* an auth round is not a failed attempt */
		q->not_before = 0;
		return O_AGAIN;
	}
	if ((q->status == 301 || q->status == 302 || q->status == 303 || q->status == 307 ||
	     q->status == 308) && q->h_location) {
		char *next, *norigin;
		if (++q->redirects > MAX_REDIRECTS) {
			job_fail(j, kpar_error_set(KPAR_ENET, "registry '%s' repository '%s': more than %d "
						   "redirects from %s", r->host, r->repo, MAX_REDIRECTS,
						   q->url));
			return O_FAILED;
		}
		next = resolve_url(q->url, q->h_location);
		norigin = next ? origin_of(next) : NULL;
		if (!next || !norigin || (strncmp(norigin, "https://", 8) != 0 &&
					  strncmp(norigin, "http://", 7) != 0)) {
			job_fail(j, kpar_error_set(KPAR_ENET, "registry '%s' repository '%s': redirect to "
						   "a bad URL '%.200s'", r->host, r->repo, q->h_location));
			free(next);
			free(norigin);
			return O_FAILED;
		}
		if (strncmp(norigin, "http://", 7) == 0 && strncmp(q->url, "http://", 7) != 0) {
			char *hp = kpar_xstrdup(norigin + 7), *colon = strrchr(hp, ':');
			if (colon && !strchr(colon, ']'))
				*colon = '\0';
			if (!kpar_registry_host_insecure_ok(hp, r->insecure_list)) {
				job_fail(j, kpar_error_set(KPAR_ENET, "registry '%s' repository '%s': "
							   "refusing a redirect from https to plain http "
							   "'%.200s'", r->host, r->repo, next));
				free(hp);
				free(next);
				free(norigin);
				return O_FAILED;
			}
			free(hp);
		}
		free(norigin);
		free(q->url);
		q->url = next;
		if (q->status == 303 && strcmp(q->method, "HEAD") != 0) {
			q->method = "GET";
			q->has_body = 0;
			q->body_len = 0;
		}
		q->attempts--;
		q->not_before = 0;
		return O_AGAIN;
	}
	return O_FINAL;
}

/* Runs jobs[0..n) to completion, at most max_parallel transfers at once.
 * Stops everything at the first failure; returns its code (message set). */
static int drive(struct kpar_registry *r, struct job *jobs, size_t n, int max_parallel)
{
	size_t next = 0, active = 0, i;
	int failed = 0;
	struct job *first_fail = NULL;

	for (;;) {
		uint64_t now = kpar_clock_ms(), wait = 1000;
		int running = 0, left;
		CURLMsg *m;

		while (!failed && active < (size_t)max_parallel && next < n) {
			/* A job may be driven again for its next request (run_one). */
			jobs[next].finished = 0;
			jobs[next].rc = 0;
			jobs[next].req.not_before = 0;
			jobs[next].req.in_flight = 0;
			next++;
			active++;
		}
		for (i = 0; i < next && !failed; i++) {
			struct job *j = &jobs[i];
			if (j->finished || j->req.in_flight)
				continue;
			if (j->req.not_before > now) {
				if (j->req.not_before - now < wait)
					wait = j->req.not_before - now;
				continue;
			}
			if (launch(j) < 0) {
				job_fail(j, kpar_error_code());
				active--;
			}
		}
		for (i = 0; i < next && !first_fail; i++)
			if (jobs[i].finished && jobs[i].rc < 0)
				first_fail = &jobs[i];
		if (first_fail) {
			for (i = 0; i < next; i++) {
				if (jobs[i].req.in_flight) {
					curl_multi_remove_handle(r->multi, jobs[i].easy);
					jobs[i].req.in_flight = 0;
				}
			}
			break;
		}
		if (active == 0 && next == n)
			break;

		curl_multi_perform(r->multi, &running);
		while ((m = curl_multi_info_read(r->multi, &left))) {
			struct job *j = NULL;
			struct req *q;
			enum outcome o;

			if (m->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&j);
			q = &j->req;
			q->cres = m->data.result;
			curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &q->status);
			curl_easy_getinfo(j->easy, CURLINFO_RETRY_AFTER, &q->retry_after);
			curl_easy_getinfo(j->easy, CURLINFO_SIZE_UPLOAD_T, &q->uploaded);
			curl_multi_remove_handle(r->multi, j->easy);
			q->in_flight = 0;
			if (j->stats && q->uploaded > 0 && q->has_body)
				j->stats->bytes_sent += (uint64_t)q->uploaded;
			o = classify(j);
			if (o == O_FAILED) {
				active--;
				continue;
			}
			if (o == O_RETRY && q->restart_on_retry && j->restart) {
				if (j->restarts >= r->max_retries) {
					o = O_FINAL;
				} else {
					/* Uploads restart at HEAD: the last try may have landed. */
					int attempts = q->attempts;
					uint64_t nb = q->not_before;
					j->restarts++;
					j->restart(j);
					q->attempts = attempts;
					q->not_before = nb;
					continue;
				}
			}
			if (o != O_FINAL)
				continue;
			if (!j->step) {
				j->finished = 1;
				active--;
				continue;
			}
			{
				int s = j->step(j);
				if (s < 0) {
					job_fail(j, s);
					active--;
				} else if (s == 0) {
					j->finished = 1;
					active--;
				} else {
					q->not_before = 0;
				}
			}
		}
		now = kpar_clock_ms();
		for (i = 0; i < next; i++) {
			if (jobs[i].finished && jobs[i].rc < 0)
				failed = 1;
			/* Something to launch right away: no waiting. */
			if (!jobs[i].finished && !jobs[i].req.in_flight && jobs[i].req.not_before <= now)
				wait = 0;
		}
		if (next < n && active < (size_t)max_parallel)
			wait = 0;
		if (failed || (active == 0 && next == n) || (wait == 0 && running == 0))
			continue;
		curl_multi_poll(r->multi, NULL, 0, (int)wait, NULL);
	}
	if (first_fail) {
		int others = 0;
		for (i = 0; i < next; i++)
			if (&jobs[i] != first_fail && jobs[i].finished && jobs[i].rc < 0)
				others++;
		kpar_error_set(first_fail->rc, "%s%s", first_fail->err ? first_fail->err : "failed",
			       others ? " (and other requests failed too)" : "");
		return first_fail->rc;
	}
	return 0;
}

/* One request, synchronously.  0 with j->req.status set, or < 0. */
static int run_one(struct kpar_registry *r, struct job *j)
{
	return drive(r, j, 1, 1);
}

/* Finds the scheme and the auth mode with GET /v2/ (never with credentials).
 * Where plain http is allowed, http is asked first: a TLS server refuses it
 * (400 or a dropped connection) and https follows.  This order saves loading
 * the system CA bundle (~50 ms) for the common loopback registry, and is no
 * weaker than https-first, which an attacker can force to fall back too. */
static int ping(struct kpar_registry *r)
{
	const char *schemes[2] = { "https", NULL };
	struct job j;
	int rc, tries;

	if (r->base)
		return 0;
	if (r->http_ok) {
		schemes[0] = "http";
		schemes[1] = "https";
	}
	for (tries = 0; tries < 2 && schemes[tries]; tries++) {
		int last = tries == 1 || !schemes[tries + 1];
		job_init(&j, r);
		req_new(&j, "GET", kpar_xasprintf("%s://%s/v2/", schemes[tries], r->api_host));
		j.req.no_auth = 1;
		j.req.probe = !last;
		rc = run_one(r, &j);
		if (rc < 0) {
			job_free(&j);
			return rc;
		}
		if (!last && ((j.req.cres == CURLE_OK && j.req.status == 400) ||
			      j.req.cres == CURLE_SSL_CONNECT_ERROR || j.req.cres == CURLE_RECV_ERROR ||
			      j.req.cres == CURLE_GOT_NOTHING || j.req.cres == CURLE_SEND_ERROR)) {
			/* Not plain http here: a TLS server, most likely. */
			job_free(&j);
			continue;
		}
		if (j.req.cres != CURLE_OK) {
			rc = req_error(r, &j.req, "GET /v2/");
			job_free(&j);
			return rc;
		}
		break;
	}
	if (j.req.status == 200) {
		if (r->auth == AUTH_UNKNOWN)
			r->auth = AUTH_NONE;
	} else if (j.req.status == 401 && j.req.h_www_auth) {
		struct kpar_auth_challenge c;
		rc = kpar_registry_parse_challenge(j.req.h_www_auth, &c);
		if (rc < 0) {
			job_free(&j);
			return kpar_error_prefix(rc, "registry '%s'", r->host);
		}
		if (strcasecmp(c.scheme, "Bearer") == 0 && c.realm) {
			r->auth = AUTH_BEARER;
			free(r->realm);
			r->realm = kpar_xstrdup(c.realm);
			free(r->service);
			r->service = c.service ? kpar_xstrdup(c.service) : NULL;
		} else if (strcasecmp(c.scheme, "Basic") == 0) {
			/* Credentials now, so the first real request already carries them. */
			rc = load_creds(r);
			if (rc < 0) {
				kpar_auth_challenge_free(&c);
				job_free(&j);
				return rc;
			}
			if (r->have_cred && r->cred.username) {
				char *pair = kpar_xasprintf("%s:%s", r->cred.username, r->cred.secret);
				char *enc = base64(pair, strlen(pair));
				kpar_wipe_free(r->basic_header);
				r->basic_header = kpar_xasprintf("Authorization: Basic %s", enc);
				kpar_wipe_free(pair);
				kpar_wipe_free(enc);
				r->auth = AUTH_BASIC;
			}
		}
		kpar_auth_challenge_free(&c);
	} else if (j.req.status != 401) {
		rc = req_error(r, &j.req, "GET /v2/ (is this a registry?)");
		job_free(&j);
		return rc;
	}
	r->base = kpar_xasprintf("%s://%s", schemes[tries], r->api_host);
	job_free(&j);
	return 0;
}

static char *repo_url(const struct kpar_registry *r, const char *kind, const char *ref)
{
	return kpar_xasprintf("%s/v2/%s/%s/%s", r->base, r->repo, kind, ref);
}

static int is_digest(const char *s)
{
	size_t i;

	if (strncmp(s, "sha256:", 7) != 0 || strlen(s) != 71)
		return 0;
	for (i = 7; s[i]; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

static int ref_ok(const char *ref)
{
	size_t i;

	if (is_digest(ref))
		return 1;
	if (!ref[0] || strlen(ref) > 128)
		return 0;
	for (i = 0; ref[i]; i++) {
		char c = ref[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || (i > 0 && (c == '.' || c == '-'))))
			return 0;
	}
	return 1;
}

/* ---- pull ---- */

static void pull_scope(struct kpar_registry *r)
{
	char *s = kpar_xasprintf("repository:%s:pull", r->repo);

	scope_add(&r->scopes, s);
	free(s);
}

static char *media_type_of(const struct req *q, const cJSON *body)
{
	const cJSON *mt = body ? cJSON_GetObjectItemCaseSensitive(body, "mediaType") : NULL;

	if (q->h_ctype) {
		size_t len = strcspn(q->h_ctype, "; ");
		char *t = kpar_xstrndup(q->h_ctype, len);
		if (strncmp(t, "application/vnd.", 16) == 0)
			return t;
		free(t);
	}
	if (cJSON_IsString(mt))
		return kpar_xstrdup(mt->valuestring);
	return NULL;
}

static int is_index_type(const char *mt)
{
	return mt && (strcmp(mt, KPAR_MT_OCI_INDEX) == 0 || strcmp(mt, KPAR_MT_DOCKER_LIST) == 0);
}

static int is_manifest_type(const char *mt)
{
	return mt && (strcmp(mt, KPAR_MT_OCI_MANIFEST) == 0 ||
		      strcmp(mt, KPAR_MT_DOCKER_MANIFEST) == 0);
}

/* From an index's body, the digest of the manifest for os/arch; malloc'd. */
static int pick_platform(struct kpar_registry *r, const char *ref, const cJSON *body,
			 const char *os, const char *arch, char **out)
{
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(body, "manifests"), *m;
	struct kpar_buf seen = KPAR_BUF_INIT;

	*out = NULL;
	if (!cJSON_IsArray(list))
		return kpar_error_set(KPAR_ENET, "registry '%s' repository '%s': index '%s' has no "
				      "\"manifests\" array", r->host, r->repo, ref);
	cJSON_ArrayForEach(m, list) {
		const cJSON *plat = cJSON_GetObjectItemCaseSensitive(m, "platform");
		const cJSON *pos = cJSON_GetObjectItemCaseSensitive(plat, "os");
		const cJSON *parch = cJSON_GetObjectItemCaseSensitive(plat, "architecture");
		const cJSON *dg = cJSON_GetObjectItemCaseSensitive(m, "digest");
		if (!cJSON_IsString(pos) || !cJSON_IsString(parch))
			continue;
		if (seen.len < 300)
			kpar_buf_printf(&seen, "%s%s/%s", seen.len ? ", " : "", pos->valuestring,
					parch->valuestring);
		if (strcmp(pos->valuestring, os) == 0 && strcmp(parch->valuestring, arch) == 0) {
			if (!cJSON_IsString(dg) || !is_digest(dg->valuestring)) {
				kpar_buf_free(&seen);
				return kpar_error_set(KPAR_ENET, "registry '%s' repository '%s': index "
						      "'%s' entry for %s/%s has no valid digest",
						      r->host, r->repo, ref, os, arch);
			}
			*out = kpar_xstrdup(dg->valuestring);
			kpar_buf_free(&seen);
			return 0;
		}
	}
	kpar_error_set(KPAR_ENOTFOUND, "registry '%s' repository '%s': '%s' has no image for %s/%s "
		       "(it has: %s)", r->host, r->repo, ref, os, arch, seen.len ? seen.data : "none");
	kpar_buf_free(&seen);
	return KPAR_ENOTFOUND;
}

int kpar_registry_get_manifest(struct kpar_registry *r, const char *ref, const char *os,
			       const char *arch, struct kpar_buf *manifest, char **media_type,
			       char digest[KPAR_DIGEST_STR])
{
	char *want = kpar_xstrdup(ref ? ref : ""), *mt = NULL, *what = NULL;
	struct job j;
	cJSON *body = NULL;
	int rc, depth;

	if (media_type)
		*media_type = NULL;
	if (!os)
		os = "linux";
	if (!arch)
		arch = "amd64";
	if (!ref_ok(want)) {
		rc = kpar_error_set(KPAR_EINVAL, "bad manifest reference '%s' (a tag or sha256:<hex>)",
				    want);
		free(want);
		return rc;
	}
	rc = ping(r);
	if (rc < 0) {
		free(want);
		return rc;
	}
	pull_scope(r);
	job_init(&j, r);
	for (depth = 0;; depth++) {
		char got[KPAR_DIGEST_STR];

		free(what);
		what = kpar_xasprintf("manifest '%s'", want);
		req_new(&j, "GET", repo_url(r, "manifests", want));
		j.req.headers = curl_slist_append(NULL, ACCEPT_MANIFESTS);
		j.req.body_limit = MANIFEST_LIMIT;
		rc = run_one(r, &j);
		if (rc < 0)
			goto done;
		if (j.req.cres != CURLE_OK || j.req.status != 200) {
			rc = req_error(r, &j.req, what);
			goto done;
		}
		kpar_digest_str(j.req.resp.data ? j.req.resp.data : "", j.req.resp.len, got);
		if ((is_digest(want) && strcmp(got, want) != 0) ||
		    (!is_digest(want) && j.req.h_digest && is_digest(j.req.h_digest) &&
		     strcmp(got, j.req.h_digest) != 0)) {
			rc = kpar_error_set(KPAR_ECHECKSUM, "registry '%s' repository '%s': %s: the bytes "
					    "received hash to %s, not %s", r->host, r->repo, what, got,
					    is_digest(want) ? want : j.req.h_digest);
			goto done;
		}
		cJSON_Delete(body);
		body = cJSON_ParseWithLength(j.req.resp.data ? j.req.resp.data : "", j.req.resp.len);
		if (!cJSON_IsObject(body)) {
			rc = kpar_error_set(KPAR_ENET, "registry '%s' repository '%s': %s is not a JSON "
					    "object", r->host, r->repo, what);
			goto done;
		}
		free(mt);
		mt = media_type_of(&j.req, body);
		if (is_index_type(mt)) {
			char *next = NULL;
			if (depth >= 2) {
				rc = kpar_error_set(KPAR_ENET, "registry '%s' repository '%s': %s: indexes "
						    "nested too deep", r->host, r->repo, what);
				goto done;
			}
			rc = pick_platform(r, want, body, os, arch, &next);
			if (rc < 0)
				goto done;
			free(want);
			want = next;
			continue;
		}
		if (!is_manifest_type(mt)) {
			rc = kpar_error_set(KPAR_EINVAL, "registry '%s' repository '%s': %s has media type "
					    "'%s', not an OCI or Docker v2 image manifest", r->host,
					    r->repo, what, mt ? mt : "(none)");
			goto done;
		}
		kpar_buf_add(manifest, j.req.resp.data ? j.req.resp.data : "", j.req.resp.len);
		memcpy(digest, got, KPAR_DIGEST_STR);
		if (media_type) {
			*media_type = mt;
			mt = NULL;
		}
		rc = 0;
		break;
	}
done:
	cJSON_Delete(body);
	job_free(&j);
	free(mt);
	free(want);
	free(what);
	return rc;
}

int kpar_registry_get_blob(struct kpar_registry *r, const char *digest, const char *path)
{
	char *tmp = NULL, *what = NULL;
	unsigned char raw[KPAR_SHA256_LEN];
	char got[KPAR_DIGEST_STR];
	struct job j;
	int rc, fd;

	if (!digest || !is_digest(digest))
		return kpar_error_set(KPAR_EINVAL, "bad blob digest '%s'", digest ? digest : "");
	rc = ping(r);
	if (rc < 0)
		return rc;
	pull_scope(r);
	tmp = kpar_xasprintf("%s.tmp.%ld", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = kpar_error_errno(KPAR_EIO, "cannot create '%s'", tmp);
		free(tmp);
		return rc;
	}
	what = kpar_xasprintf("blob %s", digest);
	job_init(&j, r);
	j.req.file_fd = fd;
	req_new(&j, "GET", repo_url(r, "blobs", digest));
	rc = run_one(r, &j);
	if (rc < 0)
		goto done;
	if (j.req.file_err) {
		errno = j.req.file_err;
		rc = kpar_error_errno(KPAR_EIO, "cannot write '%s'", tmp);
		goto done;
	}
	if (j.req.cres != CURLE_OK || j.req.status != 200) {
		rc = req_error(r, &j.req, what);
		goto done;
	}
	kpar_sha256_final(j.req.file_hash, raw);
	j.req.file_hash = NULL;
	memcpy(got, "sha256:", 7);
	kpar_hex(raw, sizeof raw, got + 7);
	if (strcmp(got, digest) != 0) {
		rc = kpar_error_set(KPAR_ECHECKSUM, "registry '%s' repository '%s': %s: the %llu bytes "
				    "received hash to %s", r->host, r->repo, what,
				    (unsigned long long)j.req.file_len, got);
		goto done;
	}
	if (fsync(fd) < 0) {
		rc = kpar_error_errno(KPAR_EIO, "cannot write '%s'", tmp);
		goto done;
	}
	if (close(fd) < 0) {
		fd = -1;
		rc = kpar_error_errno(KPAR_EIO, "cannot write '%s'", tmp);
		goto done;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		rc = kpar_error_errno(KPAR_EIO, "cannot rename '%s' to '%s'", tmp, path);
		goto done;
	}
done:
	j.req.file_fd = -1;
	job_free(&j);
	if (fd >= 0)
		close(fd);
	if (rc < 0)
		unlink(tmp);
	free(tmp);
	free(what);
	return rc;
}

/* ---- push ---- */

static void set_body(struct req *q, int fd, const void *mem, uint64_t off, uint64_t len)
{
	q->has_body = 1;
	q->body_fd = fd;
	q->body_mem = mem;
	q->body_off = off;
	q->body_len = len;
	q->body_pos = 0;
}

/* Prepares the request for j->state; uses j->req's Location for later states. */
static void push_prepare(struct job *j, char *loc)
{
	struct kpar_registry *r = j->r;
	const char *digest = j->blob->digest;
	char *url;

	switch (j->state) {
	case P_HEAD:
		req_new(j, "HEAD", repo_url(r, "blobs", digest));
		break;
	case P_MOUNT:
		url = kpar_xasprintf("%s/v2/%s/blobs/uploads/", r->base, r->repo);
		loc = kpar_registry_url_add_query(url, "mount", digest);
		free(url);
		url = kpar_registry_url_add_query(loc, "from", j->blob->mount_from);
		free(loc);
		req_new(j, "POST", url);
		return;
	case P_POST:
		req_new(j, "POST", kpar_xasprintf("%s/v2/%s/blobs/uploads/", r->base, r->repo));
		break;
	case P_PATCH: {
		uint64_t len = j->size - j->off;
		if (len > r->chunk_size)
			len = r->chunk_size;
		req_new(j, "PATCH", loc);
		set_body(&j->req, j->fd, j->blob->path ? NULL : j->blob->data, j->off, len);
		j->req.headers = curl_slist_append(NULL, "Content-Type: application/octet-stream");
		{
			char *cr = kpar_xasprintf("Content-Range: %llu-%llu",
						  (unsigned long long)j->off,
						  (unsigned long long)(j->off + len - 1));
			j->req.headers = curl_slist_append(j->req.headers, cr);
			free(cr);
		}
		j->req.restart_on_retry = 1;
		return;
	}
	case P_PUT:
	case P_PUT_FINAL:
		url = kpar_registry_url_add_query(loc, "digest", digest);
		free(loc);
		req_new(j, "PUT", url);
		if (j->state == P_PUT)
			set_body(&j->req, j->fd, j->blob->path ? NULL : j->blob->data, 0, j->size);
		else
			set_body(&j->req, -1, "", 0, 0);
		j->req.headers = curl_slist_append(NULL, "Content-Type: application/octet-stream");
		j->req.restart_on_retry = 1;
		return;
	}
	free(loc);
}

/* After a 202 that opened (or continued) an upload session: the next step. */
static int push_session(struct job *j)
{
	struct kpar_registry *r = j->r;
	char *loc;

	if (!j->req.h_location || !*j->req.h_location)
		return kpar_error_set(KPAR_ENET, "registry '%s' repository '%s': %s: %s answered %ld "
				      "without a Location", r->host, r->repo, j->what, j->req.method,
				      j->req.status);
	loc = resolve_url(j->req.url, j->req.h_location);
	if (!loc)
		return kpar_error_set(KPAR_ENET, "registry '%s' repository '%s': %s: bad upload "
				      "Location '%.200s'", r->host, r->repo, j->what, j->req.h_location);
	if (r->chunk_size && j->off < j->size)
		j->state = P_PATCH;
	else if (r->chunk_size)
		j->state = P_PUT_FINAL;
	else
		j->state = P_PUT;
	push_prepare(j, loc);
	return 1;
}

static int push_step(struct job *j)
{
	struct kpar_registry *r = j->r;
	struct req *q = &j->req;

	if (q->cres != CURLE_OK)
		return req_error(r, q, j->what);
	switch (j->state) {
	case P_HEAD:
		if (q->status == 200) {
			if (!j->check_only)
				j->stats->skipped++;
			return 0;
		}
		if (q->status != 404)
			return req_error(r, q, j->what);
		if (j->check_only)
			return kpar_error_set(KPAR_ENOTFOUND, "registry '%s' repository '%s': the manifest "
					      "refers to blob %s, which was not given to push and is not "
					      "in the repository", r->host, r->repo, j->blob->digest);
		j->off = 0;
		j->state = j->blob->mount_from && !j->mount_tried && strcmp(j->blob->mount_from, r->repo)
			   ? P_MOUNT : P_POST;
		if (j->state == P_MOUNT)
			j->mount_tried = 1;
		push_prepare(j, NULL);
		return 1;
	case P_MOUNT:
		if (q->status == 201) {
			j->stats->mounted++;
			return 0;
		}
		if (q->status == 202)
			return push_session(j);
		/* The source may be gone or not readable to us: upload instead. */
		j->state = P_POST;
		push_prepare(j, NULL);
		return 1;
	case P_POST:
		if (q->status != 202)
			return req_error(r, q, j->what);
		return push_session(j);
	case P_PATCH:
		if (q->status != 202 && q->status != 204)
			return req_error(r, q, j->what);
		j->off += q->body_len;
		if (q->h_range) {
			/* "0-<last>" (inclusive): the registry's view of what it holds. */
			const char *dash = strchr(q->h_range, '-');
			unsigned long long last = dash ? strtoull(dash + 1, NULL, 10) : 0;
			if (!dash || last + 1 != j->off)
				return kpar_error_set(KPAR_ENET, "registry '%s' repository '%s': %s: after "
						      "%llu bytes the registry reports Range '%s'",
						      r->host, r->repo, j->what,
						      (unsigned long long)j->off, q->h_range);
		}
		return push_session(j);
	case P_PUT:
	case P_PUT_FINAL:
		if (q->status != 201 && q->status != 204)
			return req_error(r, q, j->what);
		if (q->h_digest && strcmp(q->h_digest, j->blob->digest) != 0)
			return kpar_error_set(KPAR_ECHECKSUM, "registry '%s' repository '%s': %s: "
					      "registry stored it as %s", r->host, r->repo, j->what,
					      q->h_digest);
		j->stats->uploaded++;
		return 0;
	}
	return kpar_error_set(KPAR_EGENERIC, "bad upload state");
}

static int is_confirmed(const struct kpar_registry *r, const char *digest)
{
	size_t i;

	for (i = 0; i < r->confirmed.n; i++)
		if (strcmp(r->confirmed.v[i], digest) == 0)
			return 1;
	return 0;
}

static void confirm(struct kpar_registry *r, const char *digest)
{
	if (!is_confirmed(r, digest))
		kpar_strv_push(&r->confirmed, digest);
}

static void push_restart(struct job *j)
{
	j->state = P_HEAD;
	j->off = 0;
	push_prepare(j, NULL);
}

static int blob_open(struct job *j)
{
	const struct kpar_registry_blob *b = j->blob;
	struct stat st;

	if (!b->path) {
		j->size = b->size;
		return 0;
	}
	j->fd = open(b->path, O_RDONLY | O_CLOEXEC);
	if (j->fd < 0)
		return kpar_error_errno(KPAR_EIO, "blob %s: cannot open '%s'", b->digest, b->path);
	if (fstat(j->fd, &st) < 0)
		return kpar_error_errno(KPAR_EIO, "blob %s: cannot stat '%s'", b->digest, b->path);
	if (b->size && (uint64_t)st.st_size != b->size)
		return kpar_error_set(KPAR_EINVAL, "blob %s: '%s' has %llu bytes, the descriptor says "
				      "%llu", b->digest, b->path, (unsigned long long)st.st_size,
				      (unsigned long long)b->size);
	j->size = (uint64_t)st.st_size;
	return 0;
}

/* The digests a manifest or index refers to, which must exist before it is pushed. */
static int manifest_refs(const char *manifest, size_t len, struct kpar_strv *blobs,
			 struct kpar_strv *manifests)
{
	cJSON *j = cJSON_ParseWithLength(manifest, len), *e;
	const cJSON *cfg, *layers, *list;

	if (!cJSON_IsObject(j)) {
		cJSON_Delete(j);
		return kpar_error_set(KPAR_EINVAL, "the manifest to push is not a JSON object");
	}
	cfg = cJSON_GetObjectItemCaseSensitive(j, "config");
	layers = cJSON_GetObjectItemCaseSensitive(j, "layers");
	list = cJSON_GetObjectItemCaseSensitive(j, "manifests");
	if (cJSON_IsObject(cfg)) {
		e = cJSON_GetObjectItemCaseSensitive(cfg, "digest");
		if (cJSON_IsString(e))
			kpar_strv_push(blobs, e->valuestring);
	}
	cJSON_ArrayForEach(e, layers) {
		cJSON *d = cJSON_GetObjectItemCaseSensitive(e, "digest");
		cJSON *urls = cJSON_GetObjectItemCaseSensitive(e, "urls");
		/* Foreign layers (with urls) live elsewhere by design. */
		if (cJSON_IsString(d) && !cJSON_IsArray(urls))
			kpar_strv_push(blobs, d->valuestring);
	}
	cJSON_ArrayForEach(e, list) {
		cJSON *d = cJSON_GetObjectItemCaseSensitive(e, "digest");
		if (cJSON_IsString(d))
			kpar_strv_push(manifests, d->valuestring);
	}
	cJSON_Delete(j);
	return 0;
}

/* HEAD kind/digest: 1 present, 0 absent, < 0 error. */
static int head_exists(struct kpar_registry *r, const char *kind, const char *digest)
{
	struct job j;
	int rc;
	char *what = kpar_xasprintf("HEAD %s %s", kind, digest);

	job_init(&j, r);
	req_new(&j, "HEAD", repo_url(r, kind, digest));
	if (strcmp(kind, "manifests") == 0)
		j.req.headers = curl_slist_append(NULL, ACCEPT_MANIFESTS);
	rc = run_one(r, &j);
	if (rc == 0) {
		if (j.req.cres == CURLE_OK && j.req.status == 200)
			rc = 1;
		else if (j.req.cres == CURLE_OK && j.req.status == 404)
			rc = 0;
		else
			rc = req_error(r, &j.req, what);
	}
	job_free(&j);
	free(what);
	return rc;
}

static int put_manifest(struct kpar_registry *r, const char *ref, const char *manifest,
			size_t len, const char *media_type, const char *digest)
{
	char *what = kpar_xasprintf("PUT manifest '%s'", ref), *ct;
	struct job j;
	int rc;

	job_init(&j, r);
	req_new(&j, "PUT", repo_url(r, "manifests", ref));
	set_body(&j.req, -1, manifest, 0, len);
	ct = kpar_xasprintf("Content-Type: %s", media_type);
	j.req.headers = curl_slist_append(NULL, ct);
	free(ct);
	rc = run_one(r, &j);
	if (rc == 0 && (j.req.cres != CURLE_OK || (j.req.status != 201 && j.req.status != 200)))
		rc = req_error(r, &j.req, what);
	if (rc == 0 && j.req.h_digest && strcmp(j.req.h_digest, digest) != 0)
		rc = kpar_error_set(KPAR_ECHECKSUM, "registry '%s' repository '%s': %s: stored as %s, "
				    "expected %s", r->host, r->repo, what, j.req.h_digest, digest);
	job_free(&j);
	free(what);
	return rc;
}

int kpar_registry_push(struct kpar_registry *r, const struct kpar_registry_blob *blobs,
		       size_t n, const char *manifest, size_t manifest_len,
		       const char *media_type, const char *const *tags, size_t ntags,
		       struct kpar_push_stats *stats)
{
	struct kpar_push_stats local;
	struct kpar_strv ref_blobs = KPAR_STRV_INIT, ref_manifests = KPAR_STRV_INIT;
	struct kpar_registry_blob *extra = NULL;
	struct job *jobs = NULL;
	size_t i, k, njobs = 0, nextra = 0;
	char digest[KPAR_DIGEST_STR];
	int rc;

	if (!stats)
		stats = &local;
	memset(stats, 0, sizeof *stats);
	if (!media_type || !*media_type || strchr(media_type, '\n') || strchr(media_type, '\r'))
		return kpar_error_set(KPAR_EINVAL, "push to '%s/%s': bad manifest media type '%s'",
				      r->host, r->repo, media_type ? media_type : "");
	for (i = 0; i < ntags; i++)
		if (!ref_ok(tags[i]) || is_digest(tags[i]))
			return kpar_error_set(KPAR_EINVAL, "push to '%s/%s': bad tag '%s'", r->host,
					      r->repo, tags[i]);
	for (i = 0; i < n; i++) {
		if (!blobs[i].digest || !is_digest(blobs[i].digest))
			return kpar_error_set(KPAR_EINVAL, "push to '%s/%s': bad blob digest '%s'",
					      r->host, r->repo, blobs[i].digest ? blobs[i].digest : "");
		if (!blobs[i].path && !blobs[i].data && blobs[i].size)
			return kpar_error_set(KPAR_EINVAL, "push to '%s/%s': blob %s has neither a path "
					      "nor data", r->host, r->repo, blobs[i].digest);
		if (blobs[i].mount_from && !repo_name_ok(blobs[i].mount_from))
			return kpar_error_set(KPAR_EINVAL, "push to '%s/%s': bad mount source '%s'",
					      r->host, r->repo, blobs[i].mount_from);
	}
	rc = manifest_refs(manifest, manifest_len, &ref_blobs, &ref_manifests);
	if (rc < 0)
		goto done;
	kpar_digest_str(manifest, manifest_len, digest);
	memcpy(stats->manifest_digest, digest, KPAR_DIGEST_STR);

	rc = ping(r);
	if (rc < 0)
		goto done;
	{
		char *s = kpar_xasprintf("repository:%s:pull,push", r->repo);
		scope_add(&r->scopes, s);
		free(s);
		for (i = 0; i < n; i++) {
			if (blobs[i].mount_from && strcmp(blobs[i].mount_from, r->repo) != 0) {
				s = kpar_xasprintf("repository:%s:pull", blobs[i].mount_from);
				scope_add(&r->scopes, s);
				free(s);
			}
		}
	}

	/* One job per distinct blob not yet confirmed, plus a HEAD-only job for
	 * each blob the manifest names that the caller did not give: all of them
	 * must be confirmed before the manifest goes up. */
	extra = kpar_xcalloc(ref_blobs.n + 1, sizeof *extra);
	for (i = 0; i < ref_blobs.n; i++) {
		for (k = 0; k < n; k++)
			if (strcmp(blobs[k].digest, ref_blobs.v[i]) == 0)
				break;
		if (k == n && !is_confirmed(r, ref_blobs.v[i]))
			extra[nextra++].digest = ref_blobs.v[i];
	}
	jobs = kpar_xcalloc(n + nextra + 1, sizeof *jobs);
	for (i = 0; i < n + nextra; i++) {
		const struct kpar_registry_blob *b = i < n ? &blobs[i] : &extra[i - n];
		struct job *j;
		for (k = 0; k < i && k < n; k++)
			if (strcmp(blobs[k].digest, b->digest) == 0)
				break;
		if (k < i && k < n)
			continue;
		if (i < n && is_confirmed(r, b->digest)) {
			stats->skipped++;
			continue;
		}
		j = &jobs[njobs++];
		job_init(j, r);
		j->blob = b;
		j->check_only = i >= n;
		j->stats = stats;
		j->step = push_step;
		j->restart = push_restart;
		j->what = kpar_xasprintf("blob %s", b->digest);
		rc = blob_open(j);
		if (rc < 0)
			goto done;
		j->state = P_HEAD;
		push_prepare(j, NULL);
	}
	rc = drive(r, jobs, njobs, r->max_parallel);
	if (rc < 0) {
		kpar_error_prefix(rc, "push aborted before the manifest");
		goto done;
	}
	for (i = 0; i < njobs; i++)
		confirm(r, jobs[i].blob->digest);

	for (i = 0; i < ref_manifests.n; i++) {
		rc = head_exists(r, "manifests", ref_manifests.v[i]);
		if (rc == 0)
			rc = kpar_error_set(KPAR_ENOTFOUND, "registry '%s' repository '%s': the index "
					    "refers to manifest %s, which is not in the repository",
					    r->host, r->repo, ref_manifests.v[i]);
		if (rc < 0)
			goto done;
	}

	rc = put_manifest(r, digest, manifest, manifest_len, media_type, digest);
	for (i = 0; rc == 0 && i < ntags; i++)
		rc = put_manifest(r, tags[i], manifest, manifest_len, media_type, digest);
done:
	for (i = 0; i < njobs; i++)
		job_free(&jobs[i]);
	free(jobs);
	free(extra);
	kpar_strv_free(&ref_blobs);
	kpar_strv_free(&ref_manifests);
	return rc < 0 ? rc : 0;
}

unsigned kpar_registry_token_fetches(const struct kpar_registry *r)
{
	return r->token_fetches;
}
