/* fs.h - file helpers whose guarantees the rest of kpar relies on.
 *
 * Every file kpar publishes (test list, bucket files, result records,
 * reports) is written with kpar_fs_write_atomic: a temporary file in the
 * same directory, fsync, rename.  A kill -9 at any moment leaves either the
 * old file or the new one, never a torn one, which is what makes a run
 * resumable.  kpar_fs_write_if_changed keeps the old mtime when the bytes
 * are equal, so Make does not remake what depends on the file.
 */
#ifndef KPAR_FS_H
#define KPAR_FS_H

#include <stddef.h>

/* Reads the whole file into *out (NUL-terminated, free()); len may be NULL. */
int kpar_fs_read_all(const char *path, char **out, size_t *len);
/* write() until every byte is out, retrying on EINTR; -1 with errno set. */
int kpar_fs_write_fully(int fd, const void *data, size_t len);
int kpar_fs_write_atomic(const char *path, const void *data, size_t len);
/* Returns 1 when the file was written, 0 when it already held these bytes. */
int kpar_fs_write_if_changed(const char *path, const void *data, size_t len);
/* The same, but written in place: neither atomic nor synced.  Only for
 * files compared with their intended content before every use, such as
 * bucket files (plan.c): replacing a file creates an inode, and on a busy
 * file system a thousand of them cost a second. */
int kpar_fs_rewrite_if_changed(const char *path, const void *data, size_t len);
/* mkdir -p; mode applies to directories it creates. */
int kpar_fs_mkdir_p(const char *path, unsigned mode);
/* rm -rf without following symlinks; a missing path is not an error. */
int kpar_fs_remove_tree(const char *path);
int kpar_fs_exists(const char *path);
/* Joins a and b with one '/'; returns a malloc'd string. */
char *kpar_fs_join(const char *a, const char *b);

#endif
