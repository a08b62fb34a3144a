/* layer.h - reproducible OCI layers: a sorted tar stream, compressed, hashed.
 *
 * A layer is described first (kpar_layer_add* only stat the inputs), then
 * keyed (kpar_layer_key: a digest of what was stat'ed and of the
 * compressor), and only written (kpar_layer_write) when that key is new.
 * That split is what makes a no-op image rebuild cost a directory walk.
 *
 * The bytes depend on nothing but the file contents, the image paths and
 * the compressor's identity:
 *  - entries sorted bytewise by image path, every parent directory present
 *    as its own entry (mode 0755);
 *  - uid/gid 0, empty user/group names, mtime = the epoch given
 *    (SOURCE_DATE_EPOCH or 0) in whole seconds, no atime/ctime records
 *    (libarchive "pax restricted": plain ustar headers, a PAX header only
 *    for what ustar cannot hold, e.g. names over 100 bytes);
 *  - modes normalised: 0755 for directories (01777 for one added as sticky)
 *    and for files with any execute bit, 0644 for other files, 0777 for
 *    symbolic links;
 *  - hard links are stored as separate regular files;
 *  - gzip: a fixed 10-byte header (no name, mtime 0), then the data cut in
 *    KPAR_GZIP_BLOCK blocks, each deflated on its own with the previous
 *    32 KiB as dictionary and ended by a sync flush (pigz's format), so the
 *    bytes are the same whatever number of threads compressed them;
 *  - zstd: libzstd's multi-threaded mode with at least one worker, whose
 *    output does not depend on the number of workers.
 *
 * Refused inputs (KPAR_EINVAL unless said otherwise, the message names the
 * path): a missing path (KPAR_ENOTFOUND), sockets, FIFOs and devices, a
 * symbolic link whose target is absolute or leaves the layer's jail
 * directory, a name that is not valid UTF-8, two inputs claiming the same
 * image path, a file that cannot be read or changes while it is written
 * (KPAR_EIO).
 */
#ifndef KPAR_LAYER_H
#define KPAR_LAYER_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/digest.h"

#define KPAR_MT_LAYER_GZIP "application/vnd.oci.image.layer.v1.tar+gzip"
#define KPAR_MT_LAYER_ZSTD "application/vnd.oci.image.layer.v1.tar+zstd"
#define KPAR_MT_LAYER_TAR "application/vnd.oci.image.layer.v1.tar"

/* Uncompressed bytes per independently deflated gzip block. */
#define KPAR_GZIP_BLOCK (1u << 20)

enum kpar_compress {
	KPAR_COMPRESS_GZIP = 0,
	KPAR_COMPRESS_ZSTD = 1
};

struct kpar_compressor {
	enum kpar_compress kind;
	int level;    /* gzip 1-9 (default 1), zstd 1-19 (default 3) */
	int threads;  /* compression threads; 0 = online CPUs (at most 8).
			 Never changes the bytes, so not part of any key. */
};

/* Parses "gzip", "gzip:N", "zstd", "zstd:N" ("" or NULL = gzip).  KPAR_EINVAL
 * naming spec when malformed. */
int kpar_compressor_parse(struct kpar_compressor *out, const char *spec);
/* The layer media type for c. Static string. */
const char *kpar_compressor_media_type(const struct kpar_compressor *c);
/* Appends what determines the compressed bytes: method, level, library and
 * version, block format ("gzip-1 zlib-1.2.13 blocks-1048576"). */
void kpar_compressor_id(const struct kpar_compressor *c, struct kpar_buf *out);

struct kpar_layer; /* opaque: the described entries */

/* An empty layer whose symbolic links must stay inside jail (an absolute
 * image path such as "/kpar/project"; NULL or "/" = the whole image). */
struct kpar_layer *kpar_layer_new(const char *jail);
void kpar_layer_free(struct kpar_layer *l);

/* Adds src at the absolute image path dest: a file, a symbolic link, or a
 * directory with everything below it (symbolic links are not followed).
 * Only stats.  Errors name src. */
int kpar_layer_add(struct kpar_layer *l, const char *src, const char *dest);
/* Adds the file src refers to (following symbolic links) as a regular file
 * at dest (mode 0755 if the file has an execute bit, else 0644). */
int kpar_layer_add_file(struct kpar_layer *l, const char *src, const char *dest);
/* Adds an empty directory at dest (and its parents) with mode 0755, or
 * 01777 when sticky is set (a /tmp for images built on scratch). */
int kpar_layer_add_dir(struct kpar_layer *l, const char *dest, int sticky);

size_t kpar_layer_entries(const struct kpar_layer *l);
/* Sum of the regular files' sizes. */
uint64_t kpar_layer_bytes(const struct kpar_layer *l);

/* The layer's input key: "sha256:..." over the sorted entries (image path,
 * source path, type, size, mtime and ctime to the nanosecond, inode,
 * normalised mode, link target), the epoch and kpar_compressor_id(c). */
void kpar_layer_key(struct kpar_layer *l, const struct kpar_compressor *c, int64_t epoch,
		    char key[KPAR_DIGEST_STR]);

struct kpar_layer_result {
	char digest[KPAR_DIGEST_STR];   /* of the compressed blob */
	char diff_id[KPAR_DIGEST_STR];  /* of the uncompressed tar */
	uint64_t size;                  /* compressed bytes */
	uint64_t tar_size;              /* uncompressed bytes */
	const char *media_type;         /* static */
};

/* Writes the layer into blob_dir/<hex of its digest> (a temporary file in
 * blob_dir, fsync, rename; nothing is left behind on failure) and fills out.
 * epoch: the mtime of every entry (seconds, >= 0). */
int kpar_layer_write(struct kpar_layer *l, const struct kpar_compressor *c, int64_t epoch,
		     const char *blob_dir, struct kpar_layer_result *out);

/* 1 if s is valid UTF-8 (no overlongs, no surrogates), else 0. */
int kpar_utf8_valid(const char *s, size_t len);

#endif
