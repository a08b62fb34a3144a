/* fs.c - atomic writes, whole-file reads and directory helpers. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/fs.h"

int kpar_fs_read_all(const char *path, char **out, size_t *len)
{
	struct kpar_buf b = KPAR_BUF_INIT;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	*out = NULL;
	if (fd < 0)
		return kpar_error_errno(errno == ENOENT ? KPAR_ENOTFOUND : KPAR_EIO,
					"cannot open '%s'", path);
	for (;;) {
		kpar_buf_grow(&b, 65536);
		n = read(fd, b.data + b.len, b.cap - b.len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			kpar_error_errno(KPAR_EIO, "cannot read '%s'", path);
			close(fd);
			kpar_buf_free(&b);
			return KPAR_EIO;
		}
		if (n == 0)
			break;
		b.len += (size_t)n;
	}
	close(fd);
	b.data[b.len] = '\0';
	*out = kpar_buf_detach(&b, len);
	return 0;
}

int kpar_fs_write_fully(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int kpar_fs_write_atomic(const char *path, const void *data, size_t len)
{
	struct stat st;
	char *tmp;
	int fd, rc = 0;

	/* rename() would replace a device or a symlink's target name without
	 * complaint (as root, /dev/null itself): only regular files are ours. */
	if (lstat(path, &st) == 0 && !S_ISREG(st.st_mode))
		return kpar_error_set(KPAR_EINVAL, "refusing to replace '%s': not a regular file", path);
	tmp = kpar_xasprintf("%s.tmp.%ld", path, (long)getpid());
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	if (fd < 0) {
		rc = kpar_error_errno(KPAR_EIO, "cannot create '%s'", tmp);
		free(tmp);
		return rc;
	}
	if (kpar_fs_write_fully(fd, data, len) < 0 || fsync(fd) < 0) {
		rc = kpar_error_errno(KPAR_EIO, "cannot write '%s'", tmp);
		close(fd);
		unlink(tmp);
		free(tmp);
		return rc;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		rc = kpar_error_errno(KPAR_EIO, "cannot rename '%s' to '%s'", tmp, path);
		unlink(tmp);
	}
	free(tmp);
	return rc;
}

int kpar_fs_write_if_changed(const char *path, const void *data, size_t len)
{
	char *old = NULL;
	size_t old_len = 0;
	int rc;

	if (kpar_fs_read_all(path, &old, &old_len) == 0 && old_len == len &&
	    memcmp(old, data, len) == 0) {
		free(old);
		return 0;
	}
	free(old);
	kpar_error_clear();
	rc = kpar_fs_write_atomic(path, data, len);
	return rc < 0 ? rc : 1;
}

int kpar_fs_rewrite_if_changed(const char *path, const void *data, size_t len)
{
	char *old = NULL;
	size_t old_len = 0;
	int fd, rc = 0;

	if (kpar_fs_read_all(path, &old, &old_len) == 0 && old_len == len &&
	    memcmp(old, data, len) == 0) {
		free(old);
		return 0;
	}
	if (!old)
		old_len = 0;
	free(old);
	kpar_error_clear();
	/* O_NOFOLLOW and the type check: only a regular file of ours is
	 * overwritten, never a symlink's target or a device. */
	fd = open(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return kpar_error_errno(KPAR_EIO, "cannot write '%s'", path);
	{
		struct stat st;
		if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
			close(fd);
			return kpar_error_set(KPAR_EINVAL, "refusing to replace '%s': not a regular file",
					      path);
		}
	}
	/* Overwritten, then cut to length: a truncation to zero first would
	 * make ext4 flush the file on close (auto_da_alloc), which on a busy
	 * disk costs milliseconds per file. */
	if (kpar_fs_write_fully(fd, data, len) < 0 ||
	    (old_len > len && ftruncate(fd, (off_t)len) < 0))
		rc = kpar_error_errno(KPAR_EIO, "cannot write '%s'", path);
	close(fd);
	return rc < 0 ? rc : 1;
}

int kpar_fs_mkdir_p(const char *path, unsigned mode)
{
	char *p, *s;
	int rc = 0;

	/* The whole path first: it is there already, or only its last part
	 * is missing, for nearly every call (a worker makes its directories
	 * again for each bucket, a log's for each test). */
	if (mkdir(path, mode) == 0 || errno == EEXIST)
		return 0;
	if (errno != ENOENT)
		return kpar_error_errno(KPAR_EIO, "cannot create directory '%s'", path);
	p = kpar_xstrdup(path);

	for (s = p + 1; ; s++) {
		if (*s == '/' || *s == '\0') {
			char c = *s;
			*s = '\0';
			if (mkdir(p, mode) < 0 && errno != EEXIST) {
				rc = kpar_error_errno(KPAR_EIO, "cannot create directory '%s'", p);
				break;
			}
			*s = c;
			if (c == '\0')
				break;
		}
	}
	free(p);
	return rc;
}

int kpar_fs_remove_tree(const char *path)
{
	struct stat st;
	DIR *d;
	struct dirent *e;
	int rc = 0;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : kpar_error_errno(KPAR_EIO, "cannot stat '%s'", path);
	if (!S_ISDIR(st.st_mode)) {
		if (unlink(path) < 0 && errno != ENOENT)
			return kpar_error_errno(KPAR_EIO, "cannot remove '%s'", path);
		return 0;
	}
	d = opendir(path);
	if (!d)
		return kpar_error_errno(KPAR_EIO, "cannot open directory '%s'", path);
	while ((e = readdir(d)) != NULL) {
		char *child;
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		child = kpar_fs_join(path, e->d_name);
		rc = kpar_fs_remove_tree(child);
		free(child);
		if (rc < 0)
			break;
	}
	closedir(d);
	if (rc == 0 && rmdir(path) < 0 && errno != ENOENT)
		rc = kpar_error_errno(KPAR_EIO, "cannot remove directory '%s'", path);
	return rc;
}

int kpar_fs_exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0;
}

char *kpar_fs_join(const char *a, const char *b)
{
	size_t la = strlen(a);

	if (la == 0)
		return kpar_xstrdup(b);
	if (a[la - 1] == '/')
		return kpar_xasprintf("%s%s", a, b);
	return kpar_xasprintf("%s/%s", a, b);
}
