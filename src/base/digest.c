/* digest.c - SHA-256 helpers over libcrypto's EVP interface. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "base/buf.h"
#include "base/digest.h"
#include "base/error.h"

struct kpar_sha256 {
	EVP_MD_CTX *ctx;
};

struct kpar_sha256 *kpar_sha256_new(void)
{
	struct kpar_sha256 *c = kpar_xmalloc(sizeof *c);

	c->ctx = EVP_MD_CTX_new();
	if (!c->ctx || EVP_DigestInit_ex(c->ctx, EVP_sha256(), NULL) != 1)
		abort();
	return c;
}

void kpar_sha256_update(struct kpar_sha256 *c, const void *data, size_t len)
{
	if (len)
		EVP_DigestUpdate(c->ctx, data, len);
}

void kpar_sha256_final(struct kpar_sha256 *c, unsigned char out[KPAR_SHA256_LEN])
{
	unsigned int n = 0;

	EVP_DigestFinal_ex(c->ctx, out, &n);
	EVP_MD_CTX_free(c->ctx);
	free(c);
}

void kpar_sha256(const void *data, size_t len, unsigned char out[KPAR_SHA256_LEN])
{
	struct kpar_sha256 *c = kpar_sha256_new();
	kpar_sha256_update(c, data, len);
	kpar_sha256_final(c, out);
}

void kpar_hex(const unsigned char *raw, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++) {
		out[2 * i] = digits[raw[i] >> 4];
		out[2 * i + 1] = digits[raw[i] & 15];
	}
	out[2 * len] = '\0';
}

void kpar_digest_str(const void *data, size_t len, char out[KPAR_DIGEST_STR])
{
	unsigned char raw[KPAR_SHA256_LEN];

	kpar_sha256(data, len, raw);
	memcpy(out, "sha256:", 7);
	kpar_hex(raw, sizeof raw, out + 7);
}

int kpar_digest_file(const char *path, char out[KPAR_DIGEST_STR], uint64_t *size_out)
{
	unsigned char raw[KPAR_SHA256_LEN];
	struct kpar_sha256 *c;
	char *chunk;
	uint64_t total = 0;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return kpar_error_errno(errno == ENOENT ? KPAR_ENOTFOUND : KPAR_EIO,
					"cannot open '%s'", path);
	c = kpar_sha256_new();
	chunk = kpar_xmalloc(1 << 20);
	while ((n = read(fd, chunk, 1 << 20)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			kpar_error_errno(KPAR_EIO, "cannot read '%s'", path);
			kpar_sha256_final(c, raw);
			free(chunk);
			close(fd);
			return KPAR_EIO;
		}
		kpar_sha256_update(c, chunk, (size_t)n);
		total += (uint64_t)n;
	}
	free(chunk);
	close(fd);
	kpar_sha256_final(c, raw);
	memcpy(out, "sha256:", 7);
	kpar_hex(raw, sizeof raw, out + 7);
	if (size_out)
		*size_out = total;
	return 0;
}
