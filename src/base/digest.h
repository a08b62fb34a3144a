/* digest.h - SHA-256 through OpenSSL's libcrypto (SHA-NI where the CPU has it).
 *
 * Digests are written as "sha256:<64 hex>" wherever they leave memory
 * (OCI descriptors, plan keys, record checksums): one spelling everywhere.
 */
#ifndef KPAR_DIGEST_H
#define KPAR_DIGEST_H

#include <stddef.h>
#include <stdint.h>

#define KPAR_SHA256_LEN 32
#define KPAR_SHA256_HEX 65        /* 64 hex digits + NUL */
#define KPAR_DIGEST_STR 72        /* "sha256:" + 64 + NUL */

struct kpar_sha256;               /* opaque streaming context */

struct kpar_sha256 *kpar_sha256_new(void);
void kpar_sha256_update(struct kpar_sha256 *c, const void *data, size_t len);
/* Writes the raw digest and frees the context. */
void kpar_sha256_final(struct kpar_sha256 *c, unsigned char out[KPAR_SHA256_LEN]);
void kpar_sha256(const void *data, size_t len, unsigned char out[KPAR_SHA256_LEN]);
void kpar_hex(const unsigned char *raw, size_t len, char *out /* 2*len+1 */);
/* "sha256:<hex>" of a buffer. */
void kpar_digest_str(const void *data, size_t len, char out[KPAR_DIGEST_STR]);
/* Streams a file's bytes; on error the message names the path. */
int kpar_digest_file(const char *path, char out[KPAR_DIGEST_STR], uint64_t *size_out);

#endif
