/* conf.h - kpar's one way to read configuration.
 *
 * Every setting has one name, KPAR_<NAME>, used alike as a Make variable
 * (kpar.mk declares it with ?= and exports it to kpar's recipes), as an
 * environment variable, and as the tool's long option --<name> (lower case,
 * '_' -> '-').  Precedence: option > environment > default.  The table in
 * conf.c is the single list of settings; `kpar state --settings` prints it.
 * Library modules never read KPAR_* variables themselves: the tool loads a
 * kpar_conf and hands them the values through their option structs.
 */
#ifndef KPAR_CONF_H
#define KPAR_CONF_H

struct kpar_conf {
	char *state_dir;     /* KPAR_STATE_DIR: all of kpar's files for this project */
	char *root;          /* KPAR_ROOT: directory tests run in; default: cwd */
	char *tests;         /* KPAR_TESTS: whitespace-separated test ids */
	char *list_cmd;      /* KPAR_LIST_CMD: prints one test id per line */
	char *run_cmd;       /* KPAR_RUN_CMD: runs a test (or a bucket in batch mode) */
	char *run_mode;      /* KPAR_RUN_MODE: each | batch */
	char *test_protocol; /* KPAR_TEST_PROTOCOL: exit | tap | junit | automake (worker.h) */
	char *backend;       /* KPAR_BACKEND: local | k8s */
	char *inputs;        /* KPAR_TEST_INPUTS: files whose contents key the run */
	char *inputs_of;     /* KPAR_TEST_INPUTS_OF: TEST-PATTERN:INPUT,... words, each test's own inputs */
	char *test_env;      /* KPAR_TEST_ENV: names of environment variables whose values key the run */
	char *hints;         /* KPAR_HINTS: "<glob> <seconds>" lines for unknown tests */
	char *history_from;  /* KPAR_HISTORY_FROM: JUnit XML / .prove files and globs imported
				into the history when tests have none of their own */
	char *group;         /* KPAR_GROUP: ERE whose match (or first subexpression) in a test id
				names its group; a group's tests share buckets (batch mode) */
	char *progress;      /* KPAR_PROGRESS: auto | always | never */
	char *test_lines;    /* KPAR_TEST_LINES: none | failed | all: a PASS:/FAIL: line per test */
	char *only;          /* KPAR_ONLY: globs; run only the tests they match */
	int recheck;         /* KPAR_RECHECK: run only the tests whose latest result failed */
	long workers;        /* KPAR_WORKERS: parallel workers; default: online CPUs */
	long buckets;        /* KPAR_BUCKETS: 0 = auto (8 per worker, at most one per test) */
	long retries;        /* KPAR_RETRIES: extra attempts for a failed test */
	int retry_timeouts;  /* KPAR_RETRY_TIMEOUTS: a timed-out test is retried too */
	char *xfail_tests;   /* KPAR_XFAIL_TESTS: ids expected to fail (XFAIL/XPASS) */
	int hard_errors;     /* KPAR_HARD_ERRORS: 0 = exit 99 is a plain failure */
	long worker_retries; /* KPAR_WORKER_RETRIES: extra attempts for a bucket whose worker died */
	double test_timeout; /* KPAR_TEST_TIMEOUT: seconds per test, 0 = none */
	double default_seconds; /* KPAR_DEFAULT_SECONDS: estimate when nothing is known */
	int resume;          /* KPAR_RESUME (or RESUME=1 from make): continue the last run */
	/* the image (kpar image) */
	char *payload;       /* KPAR_PAYLOAD: paths under the root to ship; a lone '+' starts a layer */
	char *image_prep;    /* KPAR_IMAGE_PREP: prep artifacts for /kpar/prep; "" = tests.list, plan.json */
	char *image_env;     /* KPAR_IMAGE_ENV: NAME=VALUE words added to the image's environment */
	char *worker_bin;    /* KPAR_WORKER_BIN: worker executable; "" = kpar-worker beside kpar */
	char *image_compression; /* KPAR_IMAGE_COMPRESSION: gzip, gzip:N, zstd, zstd:N */
	char *base_image;    /* KPAR_BASE_IMAGE: base image reference, or scratch */
	int image_pull;      /* KPAR_IMAGE_PULL: resolve the base image's tag again */
	char *cache_layer_dir; /* KPAR_CACHE_LAYER_DIR: artifact cache put at /kpar/cache; "" = none */
	int image_per_bucket; /* KPAR_IMAGE_PER_BUCKET: also one image per bucket */
	char *registry;      /* KPAR_REGISTRY: registry host[:port] to push to */
	char *image;         /* KPAR_IMAGE: repository[:tag] to push to; "" = build only */
	/* registries and HTTP */
	char *registry_ca;   /* KPAR_REGISTRY_CA: extra CA bundle for registries; "" = system's */
	char *insecure_registries; /* KPAR_INSECURE_REGISTRIES: hosts allowed over plain http */
	int registry_debug;  /* KPAR_REGISTRY_DEBUG: trace registry requests on stderr */
	char *libcurl;       /* KPAR_LIBCURL: the libcurl to load on the first transfer */
	/* the Kubernetes backend (k8s/job.c) */
	char *kubeconfig;    /* KPAR_KUBECONFIG: kubeconfig file list; "" = $KUBECONFIG, ~/.kube/config */
	char *context;       /* KPAR_CONTEXT: kubeconfig context; "" = current-context */
	char *namespace;     /* KPAR_NAMESPACE: "" = the context's, else default */
	char *k8s_service_account; /* KPAR_K8S_SERVICE_ACCOUNT: the pods' service account */
	char *k8s_pull_secrets; /* KPAR_K8S_PULL_SECRETS: imagePullSecrets names */
	char *k8s_requests;  /* KPAR_K8S_REQUESTS: cpu=500m,memory=1Gi */
	char *k8s_limits;    /* KPAR_K8S_LIMITS: same form */
	char *k8s_node_selector; /* KPAR_K8S_NODE_SELECTOR: key=value,... */
	char *k8s_tolerations; /* KPAR_K8S_TOLERATIONS: key[=value]:Effect,... (kubectl taint form) */
	char *k8s_priority_class; /* KPAR_K8S_PRIORITY_CLASS: priorityClassName */
	char *k8s_labels;    /* KPAR_K8S_LABELS: extra pod labels key=value,... */
	char *k8s_annotations; /* KPAR_K8S_ANNOTATIONS: extra pod annotations key=value,... */
	char *k8s_spot;      /* KPAR_K8S_SPOT: none | gke | eks | karpenter | aks */
	double k8s_stall_timeout; /* KPAR_K8S_STALL_TIMEOUT: seconds without progress before giving up */
	long k8s_ttl;        /* KPAR_K8S_TTL: ttlSecondsAfterFinished of the Job */
	int k8s_debug;       /* KPAR_K8S_DEBUG: trace API requests on stderr */
	/* the artifact cache (kpar fetch, kpar cache); the cache parses the
	 * durations and sizes, see kpar_cache_opts_conf */
	char *cache_dir;     /* KPAR_CACHE_DIR: "" = $XDG_CACHE_HOME/kpar, else ~/.cache/kpar */
	int cache_readonly;  /* KPAR_CACHE_READONLY: look up only (the image's /kpar/cache) */
	char *cache_mirrors; /* KPAR_CACHE_MIRRORS: mirror bases tried first for pinned artifacts */
	char *cache_revalidate; /* KPAR_CACHE_REVALIDATE: snapshots: always | never | SECONDS */
	char *cache_connect_timeout; /* KPAR_CACHE_CONNECT_TIMEOUT: a duration; "" = the cache's */
	char *cache_stall_timeout; /* KPAR_CACHE_STALL_TIMEOUT: a duration; "" = the cache's */
	long cache_retries;  /* KPAR_CACHE_RETRIES: extra attempts per URL on transient errors */
	char *cache_used_list; /* KPAR_CACHE_USED_LIST: this build's used-list, kept by gc */
	char *cache_ca_bundle; /* KPAR_CACHE_CA_BUNDLE: extra CA bundle for downloads */
	char *cache_max_size; /* KPAR_CACHE_MAX_SIZE: gc's size limit; "" = 10G */
	char *cache_max_age; /* KPAR_CACHE_MAX_AGE: gc's age limit; "" = 90d */
	char *cache_gc_grace; /* KPAR_CACHE_GC_GRACE: gc keeps entries used this recently; "" = 1h */
};

/* Fills c from defaults and the environment.  Errors name the variable. */
int kpar_conf_load(struct kpar_conf *c);
/* Applies one option, name without dashes ("state-dir"); KPAR_EINVAL if
 * unknown or malformed. */
int kpar_conf_set(struct kpar_conf *c, const char *name, const char *value);
/* If argv[*i] is a setting's option (--name=value, --name value, or a bare
 * --name for a yes/no setting, which never takes the next argument), applies
 * it, advances *i past its value and returns 1; returns 0 for any other
 * argument, negative on a bad value.  A few settings also answer to an older
 * option name (--base for --base-image, ...), and KPAR_PAYLOAD's option adds
 * to the environment's list rather than replacing it. */
int kpar_conf_option(struct kpar_conf *c, int argc, char **argv, int *i);
void kpar_conf_free(struct kpar_conf *c);
/* Path under the state dir; malloc'd. */
char *kpar_conf_path(const struct kpar_conf *c, const char *rel);
/* Prints every setting with its value and where it came from's name. */
void kpar_conf_print(const struct kpar_conf *c, void *file);
/* Lists every option a command that takes the settings accepts (for --help);
 * each is also the environment variable KPAR_<NAME>. */
void kpar_conf_print_options(void *file);

#endif
