/* conf.h - kpar's one way to read configuration.
 *
 * Every setting has one name, KPAR_<NAME>, used alike as a Make variable
 * (kpar.mk declares it with ?= and exports it to kpar's recipes), as an
 * environment variable, and as the tool's long option --<name> (lower case,
 * '_' -> '-').  Precedence: option > environment > default.  The table in
 * conf.c is the single list of settings; `kpar state --settings` prints it.
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
	char *backend;       /* KPAR_BACKEND: local */
	char *inputs;        /* KPAR_TEST_INPUTS: files whose contents key the run */
	char *test_env;      /* KPAR_TEST_ENV: names of environment variables whose values key the run */
	char *hints;         /* KPAR_HINTS: "<glob> <seconds>" lines for unknown tests */
	char *progress;      /* KPAR_PROGRESS: auto | always | never */
	long workers;        /* KPAR_WORKERS: parallel workers; default: online CPUs */
	long buckets;        /* KPAR_BUCKETS: 0 = auto (4 per worker, at most one per test) */
	long retries;        /* KPAR_RETRIES: extra attempts for a failed test */
	long worker_retries; /* KPAR_WORKER_RETRIES: extra attempts for a bucket whose worker died */
	double test_timeout; /* KPAR_TEST_TIMEOUT: seconds per test, 0 = none */
	double default_seconds; /* KPAR_DEFAULT_SECONDS: estimate when nothing is known */
	int resume;          /* KPAR_RESUME (or RESUME=1 from make): continue the last run */
};

/* Fills c from defaults and the environment.  Errors name the variable. */
int kpar_conf_load(struct kpar_conf *c);
/* Applies one option, name without dashes ("state-dir"); KPAR_EINVAL if
 * unknown or malformed. */
int kpar_conf_set(struct kpar_conf *c, const char *name, const char *value);
/* If argv[*i] is a setting's option (--name=value, --name value, or a bare
 * --name for a yes/no setting, which never takes the next argument), applies it, advances *i past its value and
 * returns 1; returns 0 for any other argument, negative on a bad value. */
int kpar_conf_option(struct kpar_conf *c, int argc, char **argv, int *i);
void kpar_conf_free(struct kpar_conf *c);
/* Path under the state dir; malloc'd. */
char *kpar_conf_path(const struct kpar_conf *c, const char *rel);
/* Prints every setting with its value and where it came from's name. */
void kpar_conf_print(const struct kpar_conf *c, void *file);

#endif
