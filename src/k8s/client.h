/* client.h - the few Kubernetes API calls kpar makes, over libcurl.
 *
 * Requests go to cfg->server with the TLS settings and credentials of a
 * kpar_k8s_config (kubeconfig.h): the CA, the client certificate, a bearer
 * token (re-asked from kpar_k8s_config_auth after a 401, once), the
 * tls-server-name (the certificate is checked against that name while the
 * connection goes to the server's address) and the proxy.  TLS is always
 * verified unless the kubeconfig said insecure-skip-tls-verify.
 *
 * Retries, as client-go does them: 429 waits Retry-After (at least 1 s),
 * 500/502/503/504 and connection failures back off exponentially (0.5 s
 * doubling, capped at 8 s, with jitter) until retry_budget seconds have
 * passed; other 4xx are final.  A connection that failed after the request
 * went out is retried only for GET, HEAD, PUT and DELETE (a POST or PATCH
 * may have been acted on).  The answer's Status object (kind: Status)
 * gives the error message: "POST /apis/batch/v1/namespaces/ci/jobs: 403
 * Forbidden: jobs.batch is forbidden: User ...".  Tokens never reach a log.
 * Error codes: 401/403 KPAR_EAUTH, 404/410 KPAR_ENOTFOUND, 400/422
 * KPAR_EINVAL, other statuses and transport failures KPAR_ENET.
 *
 * libcurl is reached through base/curl_load.h (loaded on first use).  The
 * client keeps one easy handle for requests (connection reuse) and one for
 * the watch stream; it is not thread-safe.
 */
#ifndef KPAR_K8S_CLIENT_H
#define KPAR_K8S_CLIENT_H

#include <cjson/cJSON.h>

#include "base/buf.h"
#include "k8s/kubeconfig.h"

struct kpar_k8s_client;

struct kpar_k8s_client_opts {
	double retry_budget;   /* seconds to keep retrying one request; 0 = 60 */
	double timeout;        /* seconds for one non-watch request; 0 = 30 */
	int debug;             /* trace requests and statuses on stderr (no headers, no bodies) */
	/* Called about once a second while a request or watch waits (and while
	 * backing off); non-zero aborts the call with KPAR_EINTR.  May be NULL. */
	int (*tick)(void *ud);
	void *tick_ud;
};

/* cfg is borrowed and must outlive the client (tokens are refreshed in it). */
int kpar_k8s_client_new(struct kpar_k8s_client **out, struct kpar_k8s_config *cfg,
			const struct kpar_k8s_client_opts *o);
void kpar_k8s_client_free(struct kpar_k8s_client *c);

/* Sets the retry budget of the requests that follow (seconds > 0) and
 * returns the one before: a caller whose request has a cheaper way out
 * than waiting (a pod log: run the bucket again) gives up sooner. */
double kpar_k8s_client_retry_budget(struct kpar_k8s_client *c, double seconds);

/* Counts for the scale benchmark: requests sent (retries included) and
 * watch events received. */
struct kpar_k8s_client_stats {
	unsigned long requests, retries, watch_events, watches;
};
void kpar_k8s_client_stats(const struct kpar_k8s_client *c, struct kpar_k8s_client_stats *out);

struct kpar_k8s_response {
	long status;           /* HTTP status; 0 when no answer came */
	struct kpar_buf body;
};
void kpar_k8s_response_free(struct kpar_k8s_response *r);

/* One request: method "GET"/"POST"/"DELETE"/"PATCH"..., path with its
 * query ("/api/v1/namespaces/ns/pods?labelSelector=a%3Db"), body NULL or
 * JSON (content_type NULL = application/json; PATCH callers pass theirs).
 * Returns 0 when the server answered 2xx; otherwise a negative error whose
 * message holds the method, path, status and the Status message, with
 * resp->status set so callers can treat 404/409/410 themselves (resp may
 * be NULL when the body is not wanted).  resp is filled in whatever it held
 * (free it between calls), with the error answer's body too; status 0 and
 * an empty body when no complete answer came. */
int kpar_k8s_request(struct kpar_k8s_client *c, const char *method, const char *path,
		     const char *content_type, const char *body, size_t body_len,
		     struct kpar_k8s_response *resp);

/* Same, and parses the 2xx body as JSON into *out (cJSON_Delete it). */
int kpar_k8s_request_json(struct kpar_k8s_client *c, const char *method, const char *path,
			  const char *body, cJSON **out, long *status);

/* Called once per watch event: type is ADDED, MODIFIED, DELETED, BOOKMARK
 * or ERROR; object is the event's object (owned by the watch, valid during
 * the call).  Return 0 to go on, non-zero to end the watch (that value is
 * handed back by kpar_k8s_watch). */
typedef int (*kpar_k8s_event_fn)(void *ud, const char *type, const cJSON *object);

/* Streams GET path (which must carry watch=1 and its own resourceVersion,
 * labelSelector, allowWatchBookmarks, timeoutSeconds) and calls fn for each
 * event.  Events are newline-delimited JSON; one may be split over any
 * number of chunks and a chunk may hold many events.  Returns:
 *    the callback's non-zero value when it ended the watch,
 *    0 when the server closed the stream cleanly (timeoutSeconds passed),
 *    KPAR_ENET when the stream broke (connection lost, malformed event);
 *      the caller re-watches from the last resourceVersion it saw,
 *    a negative error with *status = 410 when the resourceVersion is too
 *      old as an HTTP answer (an ERROR event with code 410 reaches fn
 *      instead: the caller relists either way),
 *    KPAR_EINTR when tick asked to stop.
 * A 429/5xx answer before the stream starts is retried as for requests.
 * status may be NULL; it gets the answer's HTTP status (200 once the stream
 * began, 0 when no answer came).  The transfer is cut (KPAR_ENET) at
 * timeoutSeconds + 60 s should the server not close it; without
 * timeoutSeconds only TCP keepalive notices a dead server.  fn may make
 * requests on the same client (the watch has its own connection). */
int kpar_k8s_watch(struct kpar_k8s_client *c, const char *path, kpar_k8s_event_fn fn, void *ud,
		   long *status);

/* Appends s to b percent-encoded for a URL query value. */
void kpar_k8s_query_escape(struct kpar_buf *b, const char *s);

#endif
