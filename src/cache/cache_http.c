/* cache_http.c - one artifact transfer with libcurl: into a .part file,
 * hashed while it streams, resumable with Range, conditional for snapshots.
 *
 * libcurl settings and why:
 *  - TLS peer and host verification stay on (curl's default, set explicitly);
 *  - CURLOPT_NOSIGNAL: this code also runs inside make's process (the plugin
 *    links libkpar) where a SIGALRM-based DNS timeout would hit make;
 *  - only http, https and file; redirects (at most 5) only to http/https, so
 *    a server cannot point us at file:///etc/...;
 *  - CURLOPT_FAILONERROR: an HTTP error is an error, with its status, and no
 *    error page ever reaches the .part file;
 *  - a stall (under 1 byte/s for stall_timeout seconds) aborts, so a hung
 *    server does not hang the build;
 *  - no Accept-Encoding: the bytes hashed are the bytes the URL names;
 *  - the range is asked with CURLOPT_RANGE rather than RESUME_FROM, because
 *    curl then lets us see a 200 (server ignored the range) and restart
 *    cleanly instead of failing the transfer.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "base/buf.h"
#include "cache/cache_int.h"
#include "base/curl_load.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/fs.h"

#define MAX_REDIRECTS 5L

struct xfer {
	struct kpar_cache__http *h;
	CURL *curl;
	int started;
	int write_errno;
	int bad_range;
};

/* The value of a response header of the last request, or NULL.  curl's
 * header API does the parsing. */
static char *header(CURL *curl, const char *name)
{
	struct curl_header *hd = NULL;

	if (curl_easy_header(curl, name, 0, CURLH_HEADER, -1, &hd) != CURLHE_OK || !hd ||
	    !hd->value || !*hd->value)
		return NULL;
	return kpar_xstrdup(hd->value);
}

static void write_meta(struct xfer *x)
{
	struct kpar_cache__http *h = x->h;
	char *etag = header(x->curl, "ETag");
	char *lm = header(x->curl, "Last-Modified");
	cJSON *o = cJSON_CreateObject();
	char *text;

	cJSON_AddStringToObject(o, "url", h->url);
	if (etag)
		cJSON_AddStringToObject(o, "etag", etag);
	if (lm)
		cJSON_AddStringToObject(o, "last_modified", lm);
	text = cJSON_PrintUnformatted(o);
	/* Best effort: without it a later resume just starts over. */
	if (text && h->meta_path && kpar_fs_write_atomic(h->meta_path, text, strlen(text)) < 0)
		kpar_error_clear();
	cJSON_free(text);
	cJSON_Delete(o);
	free(etag);
	free(lm);
}

/* Decides, at the first byte of the body, whether it continues the file or
 * replaces it. */
static int start_body(struct xfer *x)
{
	struct kpar_cache__http *h = x->h;
	long code = 0;

	x->started = 1;
	curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &code);
	if (h->resume_from && code == 206) {
		char *range = header(x->curl, "Content-Range");
		char *want = kpar_xasprintf("bytes %llu-", (unsigned long long)h->resume_from);
		int ok = range && strncmp(range, want, strlen(want)) == 0;
		free(range);
		free(want);
		if (!ok) {
			x->bad_range = 1;
			return -1;
		}
		if (lseek(h->fd, (off_t)h->resume_from, SEEK_SET) < 0 ||
		    ftruncate(h->fd, (off_t)h->resume_from) < 0) {
			x->write_errno = errno;
			return -1;
		}
		h->total = h->resume_from;
	} else {
		if (h->resume_from) {
			/* A full response to a range request: the server cannot
			 * resume (or If-Range found the content changed). */
			unsigned char raw[KPAR_SHA256_LEN];
			kpar_sha256_final(h->hash, raw);
			h->hash = kpar_sha256_new();
			h->restarted = 1;
		}
		if (lseek(h->fd, 0, SEEK_SET) < 0 || ftruncate(h->fd, 0) < 0) {
			x->write_errno = errno;
			return -1;
		}
		h->total = 0;
	}
	write_meta(x);
	return 0;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *payload)
{
	struct xfer *x = payload;
	struct kpar_cache__http *h = x->h;
	size_t n = size * nmemb;

	if (!x->started && start_body(x) < 0)
		return 0;
	if (kpar_fs_write_fully(h->fd, ptr, n) < 0) {
		x->write_errno = errno;
		return 0;       /* curl stops with CURLE_WRITE_ERROR */
	}
	kpar_sha256_update(h->hash, ptr, n);
	h->received += n;
	h->total += n;
	return n;
}

static int transient_status(long status)
{
	return status == 408 || status == 425 || status == 429 || status == 500 ||
	       status == 502 || status == 503 || status == 504;
}

static void describe_failure(struct xfer *x, CURLcode res, const char *errbuf)
{
	struct kpar_cache__http *h = x->h;
	char *after = NULL;

	if (h->effective_url && strcmp(h->effective_url, h->url) != 0) {
		char *shown = kpar_cache_redact_url(h->effective_url);
		after = kpar_xasprintf(" (redirected to '%s')", shown);
		free(shown);
	}
	switch (res) {
	case CURLE_HTTP_RETURNED_ERROR:
		h->error = kpar_xasprintf("HTTP %ld%s", h->status, after ? after : "");
		h->transient = transient_status(h->status);
		break;
	case CURLE_TOO_MANY_REDIRECTS:
		h->error = kpar_xasprintf("more than %ld redirects%s", MAX_REDIRECTS,
					  after ? after : "");
		break;
	case CURLE_UNSUPPORTED_PROTOCOL:
		h->error = kpar_xasprintf("protocol not allowed (http, https and file; "
					  "redirects to http and https only)%s", after ? after : "");
		break;
	case CURLE_WRITE_ERROR:
		if (x->bad_range)
			h->error = kpar_xstrdup("the server answered a range request with "
						"another range");
		else
			h->error = kpar_xasprintf("cannot write the download: %s",
						  strerror(x->write_errno ? x->write_errno : EIO));
		h->transient = x->bad_range;
		break;
	case CURLE_OPERATION_TIMEDOUT:
		h->error = kpar_xasprintf("timed out: %s", *errbuf ? errbuf
					  : curl_easy_strerror(res));
		h->transient = 1;
		break;
	case CURLE_PARTIAL_FILE:
		h->error = kpar_xasprintf("truncated after %llu bytes: %s",
					  (unsigned long long)h->total,
					  *errbuf ? errbuf : curl_easy_strerror(res));
		h->transient = 1;
		break;
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		h->error = kpar_xasprintf("%s", *errbuf ? errbuf : curl_easy_strerror(res));
		h->transient = 1;
		break;
	default:
		h->error = kpar_xasprintf("%s", *errbuf ? errbuf : curl_easy_strerror(res));
		break;
	}
	free(after);
}

int kpar_cache__http_get(struct kpar_cache *c, struct kpar_cache__http *h)
{
	struct curl_slist *hdrs = NULL;
	char errbuf[CURL_ERROR_SIZE] = "";
	struct xfer x;
	char *range = NULL, *ua, *line;
	CURLcode res;
	char *eff = NULL;

	if (kpar_curl_load() < 0)
		return KPAR_ENET;
	memset(&x, 0, sizeof x);
	x.h = h;
	h->total = h->resume_from;
	x.curl = curl_easy_init();
	if (!x.curl)
		return kpar_error_set(KPAR_ENET, "cannot initialise libcurl");
	ua = kpar_xasprintf("kpar/%s", PACKAGE_VERSION);
	curl_easy_setopt(x.curl, CURLOPT_URL, h->url);
	curl_easy_setopt(x.curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(x.curl, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(x.curl, CURLOPT_MAXREDIRS, MAX_REDIRECTS);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(x.curl, CURLOPT_PROTOCOLS_STR, "http,https,file");
	curl_easy_setopt(x.curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(x.curl, CURLOPT_PROTOCOLS,
			 (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS | CURLPROTO_FILE));
	curl_easy_setopt(x.curl, CURLOPT_REDIR_PROTOCOLS,
			 (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(x.curl, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(x.curl, CURLOPT_SSL_VERIFYHOST, 2L);
	if (c->opts.ca_bundle)
		curl_easy_setopt(x.curl, CURLOPT_CAINFO, c->opts.ca_bundle);
	curl_easy_setopt(x.curl, CURLOPT_FAILONERROR, 1L);
	curl_easy_setopt(x.curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(x.curl, CURLOPT_USERAGENT, ua);
	curl_easy_setopt(x.curl, CURLOPT_CONNECTTIMEOUT, c->opts.connect_timeout);
	if (c->opts.stall_timeout > 0) {
		curl_easy_setopt(x.curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(x.curl, CURLOPT_LOW_SPEED_TIME, c->opts.stall_timeout);
	}
	curl_easy_setopt(x.curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(x.curl, CURLOPT_WRITEDATA, &x);
	if (h->resume_from) {
		range = kpar_xasprintf("%llu-", (unsigned long long)h->resume_from);
		curl_easy_setopt(x.curl, CURLOPT_RANGE, range);
		if (h->if_range) {
			line = kpar_xasprintf("If-Range: %s", h->if_range);
			hdrs = curl_slist_append(hdrs, line);
			free(line);
		}
	}
	if (h->if_none_match) {
		line = kpar_xasprintf("If-None-Match: %s", h->if_none_match);
		hdrs = curl_slist_append(hdrs, line);
		free(line);
	}
	if (h->if_modified_since) {
		line = kpar_xasprintf("If-Modified-Since: %s", h->if_modified_since);
		hdrs = curl_slist_append(hdrs, line);
		free(line);
	}
	if (hdrs)
		curl_easy_setopt(x.curl, CURLOPT_HTTPHEADER, hdrs);

	res = curl_easy_perform(x.curl);

	curl_easy_getinfo(x.curl, CURLINFO_RESPONSE_CODE, &h->status);
	if (curl_easy_getinfo(x.curl, CURLINFO_EFFECTIVE_URL, &eff) == CURLE_OK && eff)
		h->effective_url = kpar_xstrdup(eff);
	if (res == CURLE_OK) {
		if (h->status == 304) {
			h->not_modified = 1;
		} else if (!x.started && (h->status != 206 || !h->resume_from)) {
			/* An empty body never reached on_body: settle the file. */
			if (start_body(&x) < 0)
				res = CURLE_WRITE_ERROR;
		}
	}
	if (res == CURLE_OK) {
		h->etag = header(x.curl, "ETag");
		h->last_modified = header(x.curl, "Last-Modified");
	} else {
		describe_failure(&x, res, errbuf);
	}
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(x.curl);
	free(range);
	free(ua);
	if (res != CURLE_OK)
		return kpar_error_set(KPAR_ENET, "%s", h->error);
	return 0;
}

void kpar_cache__http_free(struct kpar_cache__http *h)
{
	free(h->etag);
	free(h->last_modified);
	free(h->effective_url);
	free(h->error);
	h->etag = h->last_modified = h->effective_url = h->error = NULL;
	if (h->hash) {
		unsigned char raw[KPAR_SHA256_LEN];
		kpar_sha256_final(h->hash, raw);
		h->hash = NULL;
	}
}
