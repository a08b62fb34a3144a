/* cmd_image.c - `kpar image build|push|digest`: the OCI image of the test payload.
 *
 * The settings (KPAR_PAYLOAD, KPAR_BASE_IMAGE, KPAR_REGISTRY, ...) come from
 * conf.c's table like every other: option > environment > default.  Options
 * here are the ones that are not settings (--layout, --tag, --prep, --env,
 * ...).
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/conf.h"
#include "base/curl_load.h"
#include "base/error.h"
#include "base/fs.h"
#include "image/image.h"
#include "image/imageref.h"
#include "image/layer.h"
#include "image/registry.h"
#include "run/plan.h"
#include "tool/cmds.h"

static const char usage[] =
	"usage: kpar image build [options] [PATH...]\n"
	"       kpar image push [--layout DIR] [--registry HOST] [--image REPO[:TAG]]\n"
	"       kpar image digest [--layout DIR] [--ref]\n"
	"\n"
	"build: writes the OCI image layout (default <state-dir>/image) of the payload:\n"
	"  --base-image REF      base image (KPAR_BASE_IMAGE; default scratch; also --base)\n"
	"  --pull                resolve the base image's tag again (default: once;\n"
	"                        KPAR_IMAGE_PULL=1; also --image-pull)\n"
	"  --cache-layer DIR     artifact cache directory, put at /kpar/cache\n"
	"                        (KPAR_CACHE_LAYER_DIR; also --cache-layer-dir)\n"
	"  --payload 'P... + P...'  paths under the root, put under /kpar/project; a lone\n"
	"                        '+' starts another layer (KPAR_PAYLOAD); PATH arguments\n"
	"                        are added to the last group as they are\n"
	"  --worker FILE         worker executable (KPAR_WORKER_BIN, --worker-bin; default\n"
	"                        kpar-worker beside this program, else this program)\n"
	"  --buckets DIR         bucket files (default <state-dir>/buckets if present)\n"
	"  --prep FILE           a prep artifact for /kpar/prep (repeatable; replaces\n"
	"                        KPAR_IMAGE_PREP, a list; default <state-dir>/tests.list\n"
	"                        and plan.json if present)\n"
	"  --per-bucket          also one image per bucket (KPAR_IMAGE_PER_BUCKET=1)\n"
	"  --compression SPEC    gzip, gzip:N, zstd, zstd:N (KPAR_IMAGE_COMPRESSION; gzip:1)\n"
	"  --threads N           compression threads (default: online CPUs)\n"
	"  --env NAME=VALUE      add to the image's environment (repeatable; after\n"
	"                        KPAR_IMAGE_ENV's words)\n"
	"  --tag NAME            name of the image in index.json (default latest)\n"
	"  --epoch SECONDS       mtime of every entry (SOURCE_DATE_EPOCH; default 0)\n"
	"  --push                then push as below, unless KPAR_IMAGE is empty or this\n"
	"                        image was pushed there already\n"
	"  --check               change and push nothing; print \"stale\" when the image would\n"
	"                        change or, with --push, is not pushed yet (the answer to\n"
	"                        make -q and make -n; new layers are tarred to know)\n"
	"  -v, --verbose         a line per layer\n"
	"push: pushes every image of the layout to KPAR_REGISTRY/KPAR_IMAGE (or --image\n"
	"  HOST/REPO[:TAG]) and writes <layout>/ref = HOST/REPO@sha256:...\n"
	"  --parallel N          concurrent blob uploads (default 4)\n"
	"digest: prints the built image's digest (--ref: the pushed reference).\n"
	"Common: --state-dir DIR, --root DIR, --layout DIR, and every setting's\n"
	"option (kpar state --settings lists them; KPAR_REGISTRY_CA, ...).\n";

/* What is not a setting; the settings are in struct kpar_conf. */
struct opts {
	char *layout, *buckets, *tag;
	struct kpar_strv paths, prep, env;   /* PATH arguments, --prep, --env */
	int threads, verbose, ref, parallel, epoch_set, push, check;
	long long epoch;
};

static void set(char **dst, const char *v)
{
	free(*dst);
	*dst = kpar_xstrdup(v);
}

/* Splits s on whitespace into sv. */
static void words(struct kpar_strv *sv, const char *s)
{
	while (s && *s) {
		size_t n;
		while (*s == ' ' || *s == '\t' || *s == '\n')
			s++;
		n = strcspn(s, " \t\n");
		if (n)
			kpar_strv_pushn(sv, s, n);
		s += n;
	}
}

static int parse_long(const char *what, const char *s, long long min, long long max,
		      long long *out)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (!*s || *end || errno || v < min || v > max)
		return kpar_error_set(KPAR_EINVAL, "%s '%s' is not an integer from %lld to %lld", what,
				      s, min, max);
	*out = v;
	return 0;
}

/* --name VALUE or --name=VALUE: 1 and *val set when argv[*i] is --name. */
static int opt_value(int argc, char **argv, int *i, const char *name, const char **val)
{
	size_t n = strlen(name);

	if (strncmp(argv[*i], name, n) != 0)
		return 0;
	if (argv[*i][n] == '=') {
		*val = argv[*i] + n + 1;
		return 1;
	}
	if (argv[*i][n] != '\0')
		return 0;
	if (*i + 1 >= argc) {
		kpar_error_set(KPAR_EINVAL, "option '%s' needs a value", name);
		return -1;
	}
	*val = argv[++*i];
	return 1;
}

/* The worker to ship: kpar-worker beside this program if there is one. */
static char *default_worker(void)
{
	char self[PATH_MAX], *slash, *w;
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);

	if (n <= 0)
		return NULL;
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (slash) {
		*slash = '\0';
		w = kpar_xasprintf("%s/kpar-worker", self);
		if (access(w, X_OK) == 0)
			return w;
		free(w);
		*slash = '/';
	}
	return kpar_xstrdup(self);
}

static int parse(struct opts *o, struct kpar_conf *c, int argc, char **argv)
{
	int i, rc;

	for (i = 2; i < argc; i++) {
		const char *v = NULL, *a = argv[i];
		long long n;

#define OPT(name) ((rc = opt_value(argc, argv, &i, name, &v)) != 0)
		/* a directory here, not the KPAR_BUCKETS setting */
		if (OPT("--buckets")) {
			if (rc > 0)
				set(&o->buckets, v);
			else
				return rc;
			continue;
		}
		if ((rc = kpar_conf_option(c, argc, argv, &i)) < 0)
			return rc;
		if (rc == 1)
			continue;
		if (OPT("--layout")) set(&o->layout, v);
		else if (OPT("--tag")) set(&o->tag, v);
		else if (OPT("--prep")) kpar_strv_push(&o->prep, v);
		else if (OPT("--env")) kpar_strv_push(&o->env, v);
		else if (OPT("--threads")) {
			if (rc > 0 && (rc = parse_long("--threads", v, 0, 64, &n)) == 0)
				o->threads = (int)n;
		} else if (OPT("--parallel")) {
			if (rc > 0 && (rc = parse_long("--parallel", v, 1, 64, &n)) == 0)
				o->parallel = (int)n;
		} else if (OPT("--epoch")) {
			if (rc > 0 && (rc = parse_long("--epoch", v, 0, 253402300799LL, &o->epoch)) == 0)
				o->epoch_set = 1;
		} else if (strcmp(a, "--push") == 0) o->push = 1;
		else if (strcmp(a, "--check") == 0) o->check = 1;
		else if (strcmp(a, "--ref") == 0) o->ref = 1;
		else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) o->verbose = 1;
		else if (a[0] == '-' && a[1] != '\0') {
			return kpar_error_set(KPAR_EINVAL, "unknown option '%s' (see kpar image --help)", a);
		} else {
			kpar_strv_push(&o->paths, a);
		}
#undef OPT
		if (rc < 0)
			return rc;
	}
	return 0;
}

static void opts_free(struct opts *o)
{
	free(o->layout);
	free(o->buckets);
	free(o->tag);
	kpar_strv_free(&o->paths);
	kpar_strv_free(&o->prep);
	kpar_strv_free(&o->env);
}

/* The registry client's settings; ro borrows c's strings. */
static void registry_opts(const struct kpar_conf *c, struct kpar_registry_opts *ro)
{
	memset(ro, 0, sizeof *ro);
	ro->ca_file = c->registry_ca;
	ro->insecure_registries = c->insecure_registries;
	ro->debug = c->registry_debug;
}

/* Where KPAR_IMAGE goes: it may name the host itself; else it goes under
 * KPAR_REGISTRY.  NULL when KPAR_IMAGE is empty. */
static char *push_target(const struct kpar_conf *c)
{
	const char *reg = c->registry, *img = c->image;

	if (!*img)
		return NULL;
	if (*reg) {
		size_t n = strlen(reg);
		return strncmp(img, reg, n) == 0 && img[n] == '/' ? kpar_xstrdup(img)
								  : kpar_xasprintf("%s/%s", reg, img);
	}
	return kpar_xstrdup(img);
}

static int build(struct opts *o, struct kpar_conf *c)
{
	struct kpar_registry_opts ro;
	struct kpar_image_opts io;
	struct kpar_image_result res;
	struct kpar_strv payload = KPAR_STRV_INIT, prep = KPAR_STRV_INIT, env = KPAR_STRV_INIT;
	char *buckets = NULL, *worker = NULL, *p;
	const char *sde = getenv("SOURCE_DATE_EPOCH");
	size_t i;
	int rc;

	memset(&io, 0, sizeof io);
	/* KPAR_PAYLOAD (--payload options added their words to it), then the
	 * PATH arguments as they are */
	words(&payload, c->payload);
	for (i = 0; i < o->paths.n; i++)
		kpar_strv_push(&payload, o->paths.v[i]);
	if (o->prep.n) {
		for (i = 0; i < o->prep.n; i++)
			kpar_strv_push(&prep, o->prep.v[i]);
	} else if (*c->image_prep) {
		words(&prep, c->image_prep);
	} else {
		static const char *const defaults[] = { "tests.list", "plan.json" };
		for (i = 0; i < 2; i++) {
			p = kpar_conf_path(c, defaults[i]);
			if (kpar_fs_exists(p))
				kpar_strv_push(&prep, p);
			free(p);
		}
	}
	words(&env, c->image_env);
	for (i = 0; i < o->env.n; i++)
		kpar_strv_push(&env, o->env.v[i]);
	for (i = 0; i < env.n; i++)
		if (!strchr(env.v[i], '=') || env.v[i][0] == '=') {
			rc = kpar_error_set(KPAR_EINVAL, "image environment entry '%s' is not NAME=VALUE", env.v[i]);
			goto done;
		}
	if (o->buckets) {
		buckets = kpar_xstrdup(o->buckets);
	} else {
		/* the plan writes no bucket files (plan.h): the image's are
		 * written here from the plan it carries */
		struct kpar_plan plan;
		char *path = kpar_conf_path(c, "plan.json");

		memset(&plan, 0, sizeof plan);
		if (kpar_fs_exists(path)) {
			rc = kpar_plan_load(path, &plan);
			if (rc == 0)
				rc = kpar_plan_write_buckets(c, &plan);
			kpar_plan_free(&plan);
			if (rc < 0) {
				free(path);
				goto done;
			}
		}
		free(path);
		p = kpar_conf_path(c, "buckets");
		if (kpar_fs_exists(p))
			buckets = p;
		else
			free(p);
	}
	worker = *c->worker_bin ? kpar_xstrdup(c->worker_bin) : default_worker();
	if ((rc = kpar_compressor_parse(&io.comp, c->image_compression)) < 0)
		goto done;
	io.comp.threads = o->threads;
	if (o->epoch_set) {
		io.epoch = o->epoch;
	} else if (sde && *sde) {
		long long e;
		if ((rc = parse_long("SOURCE_DATE_EPOCH", sde, 0, 253402300799LL, &e)) < 0)
			goto done;
		io.epoch = e;
	}
	io.layout = o->layout;
	io.root = c->root;
	io.base = *c->base_image ? c->base_image : "scratch";
	io.pull = c->image_pull;
	io.cache_dir = *c->cache_layer_dir ? c->cache_layer_dir : NULL;
	registry_opts(c, &ro);
	io.registry = &ro;
	io.payload = (const char *const *)payload.v;
	io.npayload = payload.n;
	io.worker = worker;
	io.buckets_dir = buckets;
	io.prep = (const char *const *)prep.v;
	io.nprep = prep.n;
	io.env = (const char *const *)env.v;
	io.nenv = env.n;
	io.tag = o->tag;
	io.per_bucket = c->image_per_bucket;
	io.verbose = o->verbose;
	io.dry_run = o->check;
	rc = kpar_image_build(&io, &res);
	if (rc == 0 && o->check) {
		/* make asks (-q, -n): would `build --push` change the image or push? */
		char *target = push_target(c);
		if (res.changed || (target && o->push && !kpar_image_pushed(o->layout, target)))
			puts("stale");
		free(target);
	} else if (rc == 0) {
		fprintf(stderr, "kpar image: %s%s: %u layers, %u built (%.1f MiB), %u unchanged%s\n",
			res.digest, res.changed ? "" : " (unchanged)", res.layers, res.built,
			(double)res.bytes_built / 1048576.0, res.reused,
			res.images > 1 ? " + bucket images" : "");
	}
done:
	kpar_strv_free(&payload);
	kpar_strv_free(&prep);
	kpar_strv_free(&env);
	free(buckets);
	free(worker);
	return rc;
}

static int push(struct opts *o, const struct kpar_conf *c, int if_new)
{
	struct kpar_registry_opts ro;
	struct kpar_image_push_result res;
	char *target = push_target(c);
	int rc;

	if (!target) {
		if (if_new)
			return 0;  /* build only: nowhere to push */
		return kpar_error_set(KPAR_EINVAL, "no image repository: set KPAR_IMAGE (and KPAR_REGISTRY)");
	}
	registry_opts(c, &ro);
	ro.max_parallel = o->parallel;
	rc = kpar_image_push(o->layout, target, &ro, (o->verbose ? KPAR_IMAGE_VERBOSE : 0) |
			     (if_new ? KPAR_IMAGE_IF_NEW : 0), &res);
	if (rc == 0 && res.images == 0) {
		fprintf(stderr, "kpar image: %s was pushed already\n", res.ref);
		kpar_image_push_result_free(&res);
	} else if (rc == 0) {
		fprintf(stderr, "kpar image: pushed %s: %u blobs uploaded (%.1f MiB), %u mounted, %u already there\n",
			res.ref, res.stats.uploaded, (double)res.stats.bytes_sent / 1048576.0,
			res.stats.mounted, res.stats.skipped);
		kpar_image_push_result_free(&res);
	}
	free(target);
	return rc;
}

int kpar_cmd_image(int argc, char **argv)
{
	struct kpar_conf c;
	struct opts o;
	const char *sub = argc > 1 ? argv[1] : "";
	int rc;

	memset(&o, 0, sizeof o);
	if (strcmp(sub, "--help") == 0 || strcmp(sub, "help") == 0) {
		fputs(usage, stdout);
		return 0;
	}
	if ((rc = kpar_conf_load(&c)) < 0)
		return kpar_tool_fail("image", rc);
	if (strcmp(sub, "build") != 0 && strcmp(sub, "push") != 0 && strcmp(sub, "digest") != 0) {
		kpar_error_set(KPAR_EINVAL, "expected build, push or digest, not '%s'\n%s", sub, usage);
		rc = KPAR_EINVAL;
		goto fail;
	}
	if (argc > 2 && strcmp(argv[2], "--help") == 0) {
		fputs(usage, stdout);
		goto out;
	}
	if ((rc = parse(&o, &c, argc, argv)) < 0)
		goto fail;
	if (!o.layout)
		o.layout = kpar_conf_path(&c, "image");
	kpar_curl_set_library(c.libcurl);
	if (strcmp(sub, "build") == 0) {
		rc = build(&o, &c);
		if (rc < 0 && o.check)
			puts("stale");  /* the step must run to tell */
		if (rc == 0 && o.push && !o.check)
			rc = push(&o, &c, 1);
	} else if (strcmp(sub, "push") == 0) {
		rc = push(&o, &c, 0);
	} else {
		char *line = NULL;
		rc = kpar_image_read_line(o.layout, o.ref ? "ref" : "digest", &line);
		if (rc < 0)
			rc = kpar_error_set(rc, "no image %s in '%s' (run kpar image %s)",
					    o.ref ? "pushed" : "built", o.layout, o.ref ? "push" : "build");
		else
			printf("%s\n", line);
		free(line);
	}
	if (rc < 0)
		goto fail;
out:
	rc = 0;
	goto done;
fail:
	rc = kpar_tool_fail("image", rc);
done:
	opts_free(&o);
	kpar_conf_free(&c);
	return rc;
}
