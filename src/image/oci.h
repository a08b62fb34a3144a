/* oci.h - OCI image layouts and the JSON of image configs, manifests and indexes.
 *
 * A layout directory holds `oci-layout`, `index.json` and `blobs/sha256/<hex>`
 * (image-spec image-layout.md); skopeo (`oci:DIR:TAG`), umoci and podman
 * read it.  The JSON written here is deterministic: cJSON prints members in
 * insertion order, and the order is fixed in this file, so the same inputs
 * give the same bytes and digests anywhere.
 *
 * Descriptors are plain values (no allocation); parsed documents own their
 * arrays and are freed with their _free function.
 */
#ifndef KPAR_OCI_H
#define KPAR_OCI_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/digest.h"

#define KPAR_MT_OCI_CONFIG "application/vnd.oci.image.config.v1+json"
#define KPAR_MT_DOCKER_CONFIG "application/vnd.docker.container.image.v1+json"
#define KPAR_MT_DOCKER_LAYER_GZIP "application/vnd.docker.image.rootfs.diff.tar.gzip"
#define KPAR_OCI_REF_NAME "org.opencontainers.image.ref.name"
#define KPAR_OCI_MT_MAX 256

struct kpar_oci_desc {
	char media_type[KPAR_OCI_MT_MAX];
	char digest[KPAR_DIGEST_STR];
	uint64_t size;
};

/* Creates dir, dir/blobs/sha256 and dir/oci-layout (unchanged if present). */
int kpar_oci_layout_init(const char *dir);
/* dir/blobs/sha256; malloc'd. */
char *kpar_oci_blob_dir(const char *dir);
/* dir/blobs/sha256/<hex>, or NULL (KPAR_EINVAL set) if digest is malformed; malloc'd. */
char *kpar_oci_blob_path(const char *dir, const char *digest);
/* 1 if the blob is present with this size (size 0: any size), else 0. */
int kpar_oci_has_blob(const char *dir, const char *digest, uint64_t size);
/* Stores bytes as a blob (atomic write, skipped when already present) and
 * fills d (media_type is copied, may be NULL). */
int kpar_oci_put_blob(const char *dir, const void *data, size_t len, const char *media_type,
		      struct kpar_oci_desc *d);
/* Checks a digest's spelling: "sha256:" and 64 lowercase hex digits. */
int kpar_oci_digest_valid(const char *digest);

/* ---- image config ---- */

struct kpar_oci_config {
	const char *architecture;            /* NULL: "amd64" */
	const char *os;                      /* NULL: "linux" */
	int64_t created;                     /* unix seconds; < 0: no "created" */
	const char *const *env;              /* "NAME=value"; replaces the base's NAME */
	size_t nenv;
	const char *const *default_env;      /* "NAME=value" used only if the base and env lack NAME */
	size_t ndefault_env;
	const char *const *entrypoint;       /* NULL: keep the base's */
	size_t nentrypoint;
	const char *const *cmd;              /* with an entrypoint: NULL = no Cmd */
	size_t ncmd;
	const char *workdir;                 /* NULL: keep the base's */
	const char *const *diff_ids;         /* this image's own layers, after the base's */
	const char *const *created_by;       /* one history line per own layer */
	size_t nlayers;
};

/* Writes the config JSON.  base (may be NULL) is the base image's config:
 * its config members, diff_ids and history are kept, ours appended. */
int kpar_oci_config_json(const struct kpar_oci_config *c, const char *base, size_t base_len,
			 struct kpar_buf *out);
/* The diff_ids of a config, appended to ids; errors name what is missing. */
int kpar_oci_config_diff_ids(const char *json, size_t len, struct kpar_strv *ids);

/* ---- manifests and indexes ---- */

/* An OCI image manifest for config and layers (base first). */
int kpar_oci_manifest_json(const struct kpar_oci_desc *config, const struct kpar_oci_desc *layers,
			   size_t nlayers, struct kpar_buf *out);

struct kpar_oci_manifest {
	char media_type[KPAR_OCI_MT_MAX];  /* the document's mediaType ("" if absent) */
	struct kpar_oci_desc config;
	struct kpar_oci_desc *layers;      /* owned */
	size_t nlayers;
};

/* Parses an OCI or Docker schema 2 image manifest.  KPAR_EINVAL for
 * anything else (an index, schema 1, malformed descriptors). */
int kpar_oci_manifest_parse(const char *json, size_t len, struct kpar_oci_manifest *out);
void kpar_oci_manifest_free(struct kpar_oci_manifest *m);
/* The OCI media type for a layer type from any manifest (Docker's gzip
 * layer type becomes OCI's tar+gzip; others are kept). Static or mt. */
const char *kpar_oci_layer_type(const char *mt);

/* One entry of index.json. */
struct kpar_oci_ref {
	struct kpar_oci_desc desc;
	const char *name;    /* org.opencontainers.image.ref.name; borrowed */
};

/* index.json of a layout listing refs in the given order. */
int kpar_oci_index_json(const struct kpar_oci_ref *refs, size_t n, struct kpar_buf *out);
/* Finds name in dir/index.json (NULL name: the only entry). */
int kpar_oci_layout_find(const char *dir, const char *name, struct kpar_oci_desc *out);

/* Deletes the blobs of dir that are not in keep (sorted with
 * kpar_strv_sort, "sha256:..." strings) and stale temporary files. */
int kpar_oci_gc(const char *dir, const struct kpar_strv *keep, unsigned *removed);

#endif
