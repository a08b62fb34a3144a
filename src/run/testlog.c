/* testlog.c - per-test log files (see testlog.h). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/digest.h"
#include "base/error.h"
#include "base/fs.h"
#include "run/testlog.h"

/* Past this a component is cut and made unique by a digest: file names
 * stop at 255 bytes, and ".log" and the encoding need room. */
#define COMPONENT_MAX 200

static void put_encoded(struct kpar_buf *out, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if (ch < 0x20 || ch == 0x7f || ch == '%' || ch == '\\')
			kpar_buf_printf(out, "%%%02X", ch);
		else
			kpar_buf_putc(out, (char)ch);
	}
}

static void put_component(struct kpar_buf *out, const char *s, size_t n)
{
	struct kpar_buf enc = KPAR_BUF_INIT;

	if (n == 0) {
		kpar_buf_putc(out, '%');   /* "%" alone: '%' is never left bare otherwise */
		return;
	}
	if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')) {
		kpar_buf_puts(out, n == 1 ? "%2E" : "%2E%2E");
		return;
	}
	put_encoded(&enc, s, n);
	if (enc.len > COMPONENT_MAX) {
		char d[KPAR_DIGEST_STR];
		size_t cut = COMPONENT_MAX - 24;
		kpar_digest_str(s, n, d);
		/* never cut inside a %XX escape */
		while (cut > 0 && (enc.data[cut - 1] == '%' || (cut > 1 && enc.data[cut - 2] == '%')))
			cut--;
		kpar_buf_add(out, enc.data, cut);
		kpar_buf_printf(out, "%%~%.16s", d + 7);   /* after "sha256:" */
	} else {
		kpar_buf_add(out, enc.data, enc.len);
	}
	kpar_buf_free(&enc);
}

void kpar_testlog_name(const char *id, struct kpar_buf *out)
{
	const char *p = id;

	for (;;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		put_component(out, p, n);
		if (!slash)
			break;
		kpar_buf_putc(out, '/');
		p = slash + 1;
	}
	kpar_buf_puts(out, ".log");
}

static const char *label(enum kpar_status s)
{
	switch (s) {
	case KPAR_PASS: return "PASS";
	case KPAR_FAIL: return "FAIL";
	case KPAR_SKIP: return "SKIP";
	case KPAR_ERROR: return "ERROR";
	case KPAR_FLAKY: return "FLAKY";
	case KPAR_XFAIL: return "XFAIL";
	case KPAR_XPASS: return "XPASS";
	}
	return "?";
}

void kpar_testlog_closing(const struct kpar_test_result *t, int bucket, const char *worker, struct kpar_buf *out)
{
	kpar_buf_printf(out, "%s: %s (exit status: %d, %.2fs, attempt%s %d, bucket %d, worker %s)\n",
			label(t->status), t->id, t->exit_code, t->seconds, t->attempts == 1 ? "" : "s",
			t->attempts, bucket, worker ? worker : "?");
}

int kpar_testlog_create(const char *dir, const char *id, char **path_out)
{
	struct kpar_buf path = KPAR_BUF_INIT;
	char *slash;
	int fd, rc;

	*path_out = NULL;
	kpar_buf_printf(&path, "%s/", dir);
	kpar_testlog_name(id, &path);
	slash = strrchr(path.data, '/');
	*slash = '\0';
	rc = kpar_fs_mkdir_p(path.data, 0755);
	*slash = '/';
	if (rc < 0) {
		kpar_buf_free(&path);
		return rc;
	}
	/* a new file, not the old one truncated: the last report's log is a
	 * link to the old one and stays as it was */
	if (unlink(path.data) < 0 && errno != ENOENT) {
		rc = kpar_error_errno(KPAR_EIO, "cannot replace '%s'", path.data);
		kpar_buf_free(&path);
		return rc;
	}
	fd = open(path.data, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = kpar_error_errno(KPAR_EIO, "cannot create '%s'", path.data);
		kpar_buf_free(&path);
		return rc;
	}
	*path_out = kpar_buf_detach(&path, NULL);
	return fd;
}

int kpar_testlog_keep(const char *dir, const char *id, const char *data, size_t len)
{
	char *path;
	int fd = kpar_testlog_create(dir, id, &path), rc;

	if (fd < 0)
		return fd;
	rc = kpar_fs_write_fully(fd, data, len);
	if (close(fd) < 0 && rc == 0)
		rc = kpar_error_errno(KPAR_EIO, "cannot write '%s'", path);
	if (rc < 0)
		unlink(path);   /* a torn copy would only fail its digest later */
	free(path);
	return rc;
}

/* Whether the file at path is still the one digest ("sha256:<hex>") names. */
static int full_matches(const char *path, const char *digest)
{
	unsigned char raw[KPAR_SHA256_LEN];
	char hex[2 * KPAR_SHA256_LEN + 1], buf[65536];
	struct kpar_sha256 *h;
	ssize_t n;
	int in = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), ok = 1;

	if (in < 0)
		return 0;
	h = kpar_sha256_new();
	while ((n = read(in, buf, sizeof buf)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ok = 0;
			break;
		}
		kpar_sha256_update(h, buf, (size_t)n);
	}
	close(in);
	kpar_sha256_final(h, raw);
	kpar_hex(raw, sizeof raw, hex);
	return ok && strcmp(digest + 7, hex) == 0;
}

/* The worker's file, closing line and all, as the log: a hard link (no
 * copy, and no new inode for a suite of small files), or a copy where the
 * file system has none.  Returns 0, or < 0 with the error set. */
static int link_full(const char *src, const char *path)
{
	char buf[65536];
	ssize_t n;
	int in, out, rc = 0;

	if (link(src, path) == 0)
		return 0;
	if (errno != EXDEV && errno != EPERM && errno != EMLINK && errno != EOPNOTSUPP)
		return kpar_error_errno(KPAR_EIO, "cannot link '%s' to the log '%s'", src, path);
	if ((in = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)) < 0)
		return kpar_error_errno(KPAR_EIO, "cannot read '%s'", src);
	out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (out < 0) {
		close(in);
		return kpar_error_errno(KPAR_EIO, "cannot create the log '%s'", path);
	}
	while (rc == 0 && (n = read(in, buf, sizeof buf)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		rc = n < 0 ? kpar_error_errno(KPAR_EIO, "cannot read '%s'", src)
			   : kpar_fs_write_fully(out, buf, (size_t)n);
	}
	close(in);
	if (close(out) < 0 && rc == 0)
		rc = kpar_error_errno(KPAR_EIO, "cannot write the log '%s'", path);
	return rc;
}

/* made: the directory the last log went into, whose mkdir_p (a syscall a
 * path component) need not be repeated for the tests beside it. */
static int write_one(const char *root, const char *full_dir, const struct kpar_bucket_result *r,
		     const struct kpar_test_result *t, struct kpar_buf *name, struct kpar_buf *text,
		     struct kpar_buf *made)
{
	char *path, *slash;
	int fd, rc = 0;

	kpar_buf_clear(name);
	kpar_buf_printf(name, "%s/", root);
	kpar_testlog_name(t->id, name);
	path = name->data;
	slash = strrchr(path, '/');
	*slash = '\0';
	if (slash != path + strlen(root) && !(made->len && strcmp(made->data, path) == 0)) {
		rc = kpar_fs_mkdir_p(path, 0755);
		kpar_buf_clear(made);
		if (rc == 0)
			kpar_buf_puts(made, path);
	}
	*slash = '/';
	if (rc < 0)
		return rc;
	if (full_dir && t->full_log && strncmp(t->full_log, "sha256:", 7) == 0) {
		char *src = kpar_xasprintf("%s/%s", full_dir, path + strlen(root) + 1);
		int ok = full_matches(src, t->full_log);

		rc = ok ? link_full(src, path) : 0;
		free(src);
		if (ok)
			return rc < 0 ? kpar_error_prefix(rc, "log '%s'", path) : 0;
		/* changed since, or another run's: the record's output instead */
	}
	/* O_EXCL: two ids never map to one file; a test listed twice is a bug */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return kpar_error_errno(KPAR_EIO, "cannot create the log '%s'", path);
	kpar_buf_clear(text);
	if (t->output && t->output_len) {
		kpar_buf_add(text, t->output, t->output_len);
		if (t->output[t->output_len - 1] != '\n')
			kpar_buf_putc(text, '\n');
	}
	kpar_testlog_closing(t, r->bucket, r->worker, text);
	rc = kpar_fs_write_fully(fd, text->data, text->len);
	if (close(fd) < 0 && rc == 0)
		rc = kpar_error_errno(KPAR_EIO, "cannot write the log '%s'", path);
	if (rc < 0)
		kpar_error_prefix(rc, "log '%s'", path);
	return rc;
}

static int digest_is(const char *data, size_t len, const char *digest)
{
	char got[KPAR_DIGEST_STR];

	kpar_digest_str(data, len, got);
	return strcmp(digest, got) == 0;
}

/* Frames of kpar_testlog_frames: those that matter most first. */
static int frame_rank(const struct kpar_test_result *t)
{
	switch (t->status) {
	case KPAR_FAIL: case KPAR_ERROR: case KPAR_XPASS: return 0;
	case KPAR_FLAKY: return 1;
	default: return 2;
	}
}

size_t kpar_testlog_frames(const char *dir, const struct kpar_bucket_result *r, size_t budget,
			   struct kpar_buf *out)
{
	struct kpar_buf name = KPAR_BUF_INIT, one = KPAR_BUF_INIT;
	size_t i, left = 0, used = 0;
	int rank;

	for (rank = 0; rank <= 2; rank++) {
		for (i = 0; i < r->ntests; i++) {
			const struct kpar_test_result *t = &r->tests[i];
			char *data = NULL;
			size_t len = 0;

			if (!t->full_log || frame_rank(t) != rank)
				continue;
			kpar_buf_clear(&name);
			kpar_buf_printf(&name, "%s/", dir);
			kpar_testlog_name(t->id, &name);
			kpar_buf_clear(&one);
			/* what the record vouches for, or nothing: a frame the
			 * receiver cannot match is only bytes in the pod log */
			if (kpar_fs_read_all(name.data, &data, &len) < 0 ||
			    !digest_is(data, len, t->full_log) ||
			    kpar_record_encode_log(data, len, &one) < 0 || used + one.len > budget) {
				kpar_error_clear();
				left++;
			} else {
				kpar_buf_add(out, one.data, one.len);
				used += one.len;
			}
			free(data);
		}
	}
	kpar_buf_free(&name);
	kpar_buf_free(&one);
	return left;
}

int kpar_testlog_write_all(const char *dir, const char *full_dir, struct kpar_bucket_result *const *res,
			   size_t nres)
{
	struct kpar_buf name = KPAR_BUF_INIT, text = KPAR_BUF_INIT, made = KPAR_BUF_INIT;
	char *tmp = kpar_xasprintf("%s.new", dir), *old = kpar_xasprintf("%s.old", dir);
	size_t i, j;
	int rc;

	kpar_fs_remove_tree(tmp);
	if ((rc = kpar_fs_mkdir_p(tmp, 0755)) < 0)
		goto done;
	for (i = 0; i < nres && rc == 0; i++)
		for (j = 0; j < res[i]->ntests && rc == 0; j++)
			rc = write_one(tmp, full_dir, res[i], &res[i]->tests[j], &name, &text, &made);
	if (rc < 0)
		goto done;
	kpar_fs_remove_tree(old);
	if (rename(dir, old) < 0 && errno != ENOENT) {
		rc = kpar_error_errno(KPAR_EIO, "cannot move '%s' aside", dir);
		goto done;
	}
	if (rename(tmp, dir) < 0) {
		rc = kpar_error_errno(KPAR_EIO, "cannot rename '%s' to '%s'", tmp, dir);
		goto done;
	}
	kpar_fs_remove_tree(old);
done:
	if (rc < 0)
		kpar_fs_remove_tree(tmp);
	kpar_buf_free(&name);
	kpar_buf_free(&made);
	kpar_buf_free(&text);
	free(tmp);
	free(old);
	return rc;
}
