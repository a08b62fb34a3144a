/* image.h - kpar's daemonless image build: the layer stack, incremental
 * rebuilds, the base image cache, and the push.
 *
 * The image, base first (least-changing first, so a rebuild touches the top):
 *   base       KPAR_BASE_IMAGE pulled by reference (an index resolved to
 *              linux/amd64), its blobs cached in the layout and reused as
 *              they are (never recompressed); "scratch" = none
 *   cache      the artifact-cache directory at /kpar/cache (if any)
 *   payload-N  the user's build outputs and tests under /kpar/project, one
 *              layer per group ("+" separates groups)
 *   worker     the worker executable at /kpar/bin/kpar-worker; a dynamic
 *              one comes with its shared libraries and loader in /kpar/lib
 *   prep       prep artifacts (test list, plan with timings) in /kpar/prep
 *   buckets    the bucket files at /kpar/buckets/test-group-N
 * The entrypoint runs `kpar-worker worker --buckets-dir /kpar/buckets --root
 * /kpar/project`, which takes its bucket from JOB_COMPLETION_INDEX or from
 * arguments appended by the pod spec.  With per_bucket, every bucket file
 * also gets an image of its own (tag bucket-N): the same stack with a
 * one-file top layer in place of `buckets` and `--bucket N` in the
 * entrypoint.
 *
 * Files under the layout directory (an OCI image layout):
 *   oci-layout, index.json, blobs/sha256/  the image(s), for skopeo, umoci, podman
 *   digest          the main manifest's digest (written only when it changes)
 *   bucket-digests  "N sha256:..." per bucket image (per_bucket only)
 *   ref             after a push: host/repo@sha256:... (what the dispatcher uses)
 *   bucket-refs     after a push: "N host/repo@sha256:..."
 *   kpar/           bookkeeping: lock, base.json (the resolved base),
 *                   layers/<name>.json (key and result of each layer),
 *                   worker-deps.json, pushed (what went where)
 *
 * Incremental: each layer's record holds its input key (kpar_layer_key) and
 * its result; a layer whose key and blob are unchanged is neither tarred nor
 * compressed, and the registry already has it, so it is not uploaded.  A
 * failed build removes `digest` (and bucket-digests), so nothing downstream
 * takes an image for done that is not.
 */
#ifndef KPAR_IMAGE_H
#define KPAR_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "base/digest.h"
#include "image/layer.h"
#include "image/registry.h"

struct kpar_image_opts {
	const char *layout;            /* the OCI layout directory (required) */
	const char *root;              /* payload paths are relative to it; NULL = "." */
	const char *base;              /* image reference; NULL, "" or "scratch" = none */
	int pull;                      /* resolve the base's tag again, even if cached */
	const char *cache_dir;         /* artifact-cache layer directory; NULL/"" = none */
	const char *const *payload;    /* paths under root; "+" starts the next layer */
	size_t npayload;
	const char *worker;            /* worker executable (required) */
	const char *buckets_dir;       /* directory of test-group-N files; NULL = none */
	const char *const *prep;       /* prep files, to /kpar/prep/<basename> */
	size_t nprep;
	const char *const *env;        /* extra "NAME=value" for the image config */
	size_t nenv;
	struct kpar_compressor comp;
	int64_t epoch;                 /* mtime in layers, "created" in the config */
	const char *tag;               /* name of the main image in index.json; NULL = "latest" */
	int per_bucket;                /* also one image per bucket file */
	const struct kpar_registry_opts *registry; /* for pulling the base; may be NULL */
	int verbose;                   /* a line per layer on stderr */
	int dry_run;                   /* compute the digest (and changed) only:
					  digest, ref, index.json stay as they are */
};

struct kpar_image_result {
	char digest[KPAR_DIGEST_STR];  /* the main image's manifest */
	unsigned layers;               /* own layers (the base's not counted) */
	unsigned built;                /* of which tarred and compressed this time */
	unsigned reused;
	uint64_t bytes_built;          /* uncompressed bytes of the built layers */
	unsigned images;               /* manifests in the layout (1 + buckets) */
	int changed;                   /* the main digest differs from the last build */
};

/* Builds or updates the layout per o.  On failure nothing is recorded as
 * done (see above) and the message names the offending input. */
int kpar_image_build(const struct kpar_image_opts *o, struct kpar_image_result *out);

struct kpar_image_push_result {
	char *ref;                     /* host/repo@sha256:... of the main image; free() */
	struct kpar_push_stats stats;  /* summed over every manifest pushed */
	unsigned images;
};

#define KPAR_IMAGE_VERBOSE 1      /* a line per pushed manifest on stderr */
#define KPAR_IMAGE_IF_NEW 2       /* no-op when kpar/pushed says these digests
				     went to this target already */

/* Pushes every image of the layout to target ("host[:port]/repo[:tag]", tag
 * default "latest"; bucket images get tag "<tag>-bucket-N"), blobs first,
 * and writes `ref` (and `bucket-refs`) and kpar/pushed.  Base layers are
 * mounted from the base's repository when it is on the same registry.
 * With KPAR_IMAGE_IF_NEW and nothing new, out->images is 0 and out->ref set. */
/* 1 when the layout's image (and bucket images) went to target already,
 * as kpar/pushed records it: what KPAR_IMAGE_IF_NEW skips on. */
int kpar_image_pushed(const char *layout, const char *target);
int kpar_image_push(const char *layout, const char *target, const struct kpar_registry_opts *ro,
		    int flags, struct kpar_image_push_result *out);
void kpar_image_push_result_free(struct kpar_image_push_result *r);

/* Reads a one-line file of the layout ("digest", "ref"); malloc'd, no newline. */
int kpar_image_read_line(const char *layout, const char *name, char **out);

/* The worker's dynamic dependencies: for an ELF x86-64 executable, *interp
 * is its program interpreter (NULL if static) and libs gets "soname\tpath"
 * for every shared library the loader resolves (sorted).  KPAR_EINVAL for
 * a file that is no x86-64 executable or a library that is not found. */
int kpar_image_worker_deps(const char *bin, char **interp, struct kpar_strv *libs);

#endif
