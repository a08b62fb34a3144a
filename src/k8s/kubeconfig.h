/* kubeconfig.h - where the cluster is and who kpar is there: kubeconfig
 * files (read with libyaml), exec credential plugins, and the in-cluster
 * service-account configuration.
 *
 * Loading follows kubectl's rules:
 *   - KUBECONFIG is a ':'-separated list of files, merged first-wins: the
 *     first file to set current-context wins, and a cluster, user or context
 *     is taken whole from the first file that defines its name.  Files in
 *     the list that do not exist are skipped; if none exists it is an error
 *     naming the list.  Without KUBECONFIG: $HOME/.kube/config; without
 *     that, the in-cluster config when KUBERNETES_SERVICE_HOST is set.
 *   - The context is KPAR_CONTEXT (the context argument) when given, else
 *     current-context.
 *   - `*-data` fields (base64) win over the path fields; relative paths
 *     resolve against the directory of the file that named them.
 *   - TLS is verified unless insecure-skip-tls-verify is true in the chosen
 *     cluster; a CA is then not allowed beside it (kubectl's rule).
 * Every error names the file and the field, e.g.
 *   kubeconfig '/home/u/.kube/config': users[1] "ci" user.client-key-data: invalid base64
 *
 * Tokens: a static token, a tokenFile (re-read on every kpar_k8s_config_auth
 * so a rotated token is picked up, which is what the in-cluster token needs),
 * or an exec plugin (client.authentication.k8s.io/v1, v1beta1 accepted): run
 * with KUBERNETES_EXEC_INFO set, its ExecCredential's token or client
 * certificate cached until status.expirationTimestamp and refreshed when
 * the caller says the server answered 401.  The plugin gets a timeout
 * (exec_timeout seconds); a plugin that fails, times out or prints no valid
 * ExecCredential is an error naming the file, the user and the command,
 * with the plugin's stderr tail.  No secret (token, key, password) ever
 * appears in an error message.
 */
#ifndef KPAR_K8S_KUBECONFIG_H
#define KPAR_K8S_KUBECONFIG_H

#include <time.h>

#include "base/buf.h"

struct kpar_k8s_exec {
	char *command;
	struct kpar_strv args;
	struct kpar_strv env;          /* "NAME=value" */
	char *api_version;             /* client.authentication.k8s.io/v1 or v1beta1 */
	/* the credential last printed, cached until expiry (0 = no expiry) */
	char *token;
	struct kpar_buf cert_pem, key_pem;
	time_t expiry;
	int have;                      /* a credential is cached */
	int provide_cluster_info;      /* pass spec.cluster in KUBERNETES_EXEC_INFO */
};

struct kpar_k8s_config {
	char *source;         /* the kubeconfig file the context came from, or "in-cluster" */
	char *context;        /* context name ("" in-cluster) */
	char *namespace;      /* the context's namespace, "" when it names none */
	char *server;         /* https://host:port[/prefix], without a trailing '/' */
	char *tls_server_name; /* name to verify the server's certificate against; NULL = the host */
	char *proxy_url;      /* NULL = none */
	int insecure;         /* insecure-skip-tls-verify: true (never implied) */
	struct kpar_buf ca_pem;        /* empty = the system's CAs */
	struct kpar_buf cert_pem;      /* client certificate (PEM), empty = none */
	struct kpar_buf key_pem;       /* its key (PEM) */
	char *token;          /* static bearer token, or NULL */
	char *token_file;     /* re-read on each kpar_k8s_config_auth, or NULL */
	char *username, *password; /* basic auth, or NULL */
	struct kpar_k8s_exec *exec; /* NULL = no exec plugin */
	double exec_timeout;  /* seconds an exec plugin may take; default 60 */
	/* Private to kubeconfig.c: */
	char *auth_where;     /* names the user in auth-time messages */
	char *file_token;     /* the token last read from token_file */
};

/* Loads the configuration.  kubeconfig: the KUBECONFIG value (NULL = read
 * $KUBECONFIG; "" = the default rules above); context: NULL or "" =
 * current-context.
 * out is zeroed first; free with kpar_k8s_config_free even on failure. */
int kpar_k8s_config_load(struct kpar_k8s_config *out, const char *kubeconfig, const char *context);
/* The in-cluster configuration from the service-account directory dir
 * (NULL = /var/run/secrets/kubernetes.io/serviceaccount) and
 * KUBERNETES_SERVICE_HOST/PORT. */
int kpar_k8s_config_in_cluster(struct kpar_k8s_config *out, const char *dir);
void kpar_k8s_config_free(struct kpar_k8s_config *c);

/* What to authenticate the next request with.  refresh: the server just
 * answered 401, so drop a cached exec credential (and re-read the token
 * file).  *token is NULL or a bearer token owned by c (valid until the next
 * call); *cert_pem and *key_pem point at the client certificate to use (c's own,
 * or the exec plugin's), empty buffers for none. */
int kpar_k8s_config_auth(struct kpar_k8s_config *c, int refresh, const char **token,
			 const struct kpar_buf **cert_pem, const struct kpar_buf **key_pem);

#endif
