/* layer.c - reproducible tar layers: describe (stat only), key, then write
 * through libarchive into a gzip (parallel, pigz-style) or zstd stream.
 *
 * Design notes.
 *  - Describing never opens a file: kpar_layer_add walks with lstat and
 *    records what it saw; the key digests exactly that.  kpar_layer_write
 *    re-checks size and mtime when it opens each file, so a file that moved
 *    under us is an error rather than a layer that does not match its key.
 *  - libarchive is opened on the first kpar_layer_write (base/archive_load.h),
 *    so a kpar that builds no layer does not map it.
 *  - The tar stream goes straight from libarchive's write callback (block
 *    size 0: no copy, no padding) into the compressor.  The uncompressed
 *    bytes are hashed there (diff_id), the compressed bytes as they are
 *    written to the blob file (digest): one pass over the data.
 *  - gzip: the stream is cut into KPAR_GZIP_BLOCK blocks; each is deflated
 *    by a pool thread with its own z_stream, primed with the previous
 *    block's last 32 KiB, and ended with Z_SYNC_FLUSH (the last with
 *    Z_FINISH), so the raw deflate pieces concatenate into one valid stream.
 *    The block boundaries depend only on the data, hence the bytes do not
 *    depend on the thread count.  Blocks are retired (written, hashed, CRC
 *    combined) strictly in order by the calling thread.
 *  - libarchive converts names through the current locale and crashes on
 *    UTF-8 names in the C locale (3.6.2); the writer runs under a
 *    thread-local C.UTF-8 locale, so names pass through unchanged.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>
#include <zstd.h>

#include "base/archive_load.h"
#include "base/buf.h"
#include "base/digest.h"
#include "base/error.h"
#include "image/layer.h"

#define READ_CHUNK (1u << 20)
#define DICT_SIZE 32768u

/* ---------------------------------------------------------------- compressor */

int kpar_compressor_parse(struct kpar_compressor *out, const char *spec)
{
	const char *colon;
	size_t n;
	long level = -1;

	memset(out, 0, sizeof *out);
	out->kind = KPAR_COMPRESS_GZIP;
	out->level = 1;
	if (!spec || !*spec)
		return 0;
	colon = strchr(spec, ':');
	n = colon ? (size_t)(colon - spec) : strlen(spec);
	if (n == 4 && memcmp(spec, "gzip", 4) == 0) {
		out->kind = KPAR_COMPRESS_GZIP;
		out->level = 1;
	} else if (n == 4 && memcmp(spec, "zstd", 4) == 0) {
		out->kind = KPAR_COMPRESS_ZSTD;
		out->level = 3;
	} else {
		return kpar_error_set(KPAR_EINVAL,
				      "unknown compression '%s' (expected gzip, gzip:N, zstd or zstd:N)",
				      spec);
	}
	if (colon) {
		char *end;
		errno = 0;
		level = strtol(colon + 1, &end, 10);
		if (errno || end == colon + 1 || *end || level < 1 ||
		    level > (out->kind == KPAR_COMPRESS_GZIP ? 9 : 19))
			return kpar_error_set(KPAR_EINVAL, "bad compression level in '%s' (gzip 1-9, zstd 1-19)",
					      spec);
		out->level = (int)level;
	}
	return 0;
}

const char *kpar_compressor_media_type(const struct kpar_compressor *c)
{
	return c->kind == KPAR_COMPRESS_ZSTD ? KPAR_MT_LAYER_ZSTD : KPAR_MT_LAYER_GZIP;
}

void kpar_compressor_id(const struct kpar_compressor *c, struct kpar_buf *out)
{
	if (c->kind == KPAR_COMPRESS_ZSTD)
		kpar_buf_printf(out, "zstd-%d libzstd-%s mt checksum", c->level, ZSTD_versionString());
	else
		kpar_buf_printf(out, "gzip-%d zlib-%s blocks-%u dict-%u", c->level, zlibVersion(),
				KPAR_GZIP_BLOCK, DICT_SIZE);
}

static int thread_count(const struct kpar_compressor *c)
{
	long n = c->threads;

	if (n <= 0) {
		n = sysconf(_SC_NPROCESSORS_ONLN);
		if (n < 1)
			n = 1;
		if (n > 8)
			n = 8;
	}
	return (int)n;
}

/* -------------------------------------------------------------------- utf-8 */

int kpar_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;

	while (p < end) {
		unsigned c = *p;
		size_t n, i;
		unsigned cp;

		if (c < 0x80) {
			p++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 1;
			cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 2;
			cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return 0;
		}
		if ((size_t)(end - p) <= n)
			return 0;
		for (i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (p[i] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		p += n + 1;
	}
	return 1;
}

/* A name for an error message: bytes that are not UTF-8 (or are control
 * characters) as \xNN, so the message itself is clean text.  malloc'd. */
static char *printable(const char *s)
{
	struct kpar_buf b = KPAR_BUF_INIT;
	const unsigned char *p = (const unsigned char *)s;

	kpar_buf_puts(&b, "");
	while (*p) {
		size_t n = 1;
		if (*p >= 0x80) {
			n = (*p >= 0xf0) ? 4 : (*p >= 0xe0) ? 3 : 2;
			if (strnlen((const char *)p, n) < n || !kpar_utf8_valid((const char *)p, n))
				n = 0;
		} else if (*p < 0x20 || *p == 0x7f) {
			n = 0;
		}
		if (n == 0) {
			kpar_buf_printf(&b, "\\x%02x", *p);
			p++;
		} else {
			kpar_buf_add(&b, p, n);
			p += n;
		}
	}
	return kpar_buf_detach(&b, NULL);
}

/* ------------------------------------------------------------ description */

enum etype { E_DIR = 'd', E_FILE = 'f', E_LINK = 'l' };

struct entry {
	char *dest;        /* image path without the leading '/' */
	char *src;         /* host path; NULL for an implicit directory */
	char *link;        /* symbolic link target */
	char type;
	unsigned mode;     /* normalised permission bits */
	int follow;        /* open src following symbolic links */
	uint64_t size;
	int64_t mtime_s, ctime_s;
	long mtime_ns, ctime_ns;
	uint64_t ino;
};

struct kpar_layer {
	char *jail;        /* image path without leading '/'; "" = whole image */
	struct entry *e;
	size_t n, cap;
	int sorted;        /* sorted and free of duplicates */
	uint64_t bytes;
};

struct kpar_layer *kpar_layer_new(const char *jail)
{
	struct kpar_layer *l = kpar_xcalloc(1, sizeof *l);

	while (jail && *jail == '/')
		jail++;
	l->jail = kpar_xstrdup(jail ? jail : "");
	if (*l->jail && l->jail[strlen(l->jail) - 1] == '/')
		l->jail[strlen(l->jail) - 1] = '\0';
	return l;
}

static void entry_free(struct entry *e)
{
	free(e->dest);
	free(e->src);
	free(e->link);
}

void kpar_layer_free(struct kpar_layer *l)
{
	size_t i;

	if (!l)
		return;
	for (i = 0; i < l->n; i++)
		entry_free(&l->e[i]);
	free(l->e);
	free(l->jail);
	free(l);
}

size_t kpar_layer_entries(const struct kpar_layer *l)
{
	return l->n;
}

uint64_t kpar_layer_bytes(const struct kpar_layer *l)
{
	return l->bytes;
}

static struct entry *push(struct kpar_layer *l, const char *dest, char type)
{
	struct entry *e;

	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->e = kpar_xrealloc(l->e, l->cap * sizeof *l->e);
	}
	e = &l->e[l->n++];
	memset(e, 0, sizeof *e);
	e->dest = kpar_xstrdup(dest);
	e->type = type;
	e->mode = 0755;
	l->sorted = 0;
	return e;
}

static void fill_stat(struct entry *e, const struct stat *st)
{
	e->size = e->type == E_FILE ? (uint64_t)st->st_size : 0;
	e->mtime_s = st->st_mtim.tv_sec;
	e->mtime_ns = st->st_mtim.tv_nsec;
	e->ctime_s = st->st_ctim.tv_sec;
	e->ctime_ns = st->st_ctim.tv_nsec;
	e->ino = st->st_ino;
	if (e->type == E_FILE)
		e->mode = (st->st_mode & 0111) ? 0755 : 0644;
	else if (e->type == E_LINK)
		e->mode = 0777;
	else
		e->mode = 0755;
}

/* Normalises an absolute image path into "a/b/c" (no leading or trailing
 * '/', no empty, "." or ".." components).  "" is the root. */
static int clean_dest(const char *dest, struct kpar_buf *out)
{
	const char *p = dest;

	kpar_buf_clear(out);
	kpar_buf_puts(out, "");
	if (!dest || dest[0] != '/')
		return kpar_error_set(KPAR_EINVAL, "image path '%s' is not absolute", dest ? dest : "");
	while (*p) {
		const char *s;
		size_t n;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		s = strchr(p, '/');
		n = s ? (size_t)(s - p) : strlen(p);
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return kpar_error_set(KPAR_EINVAL, "image path '%s' has a '.' or '..' component",
					      dest);
		if (out->len)
			kpar_buf_putc(out, '/');
		kpar_buf_add(out, p, n);
		p += n;
	}
	if (!kpar_utf8_valid(out->data, out->len))
		return kpar_error_set(KPAR_EINVAL, "image path '%s' is not valid UTF-8", dest);
	return 0;
}

/* Adds the implicit directories above dest ("a/b/c" -> "a", "a/b"). */
static void add_parents(struct kpar_layer *l, const char *dest)
{
	const char *p;

	for (p = dest; (p = strchr(p, '/')) != NULL; p++) {
		char *d = kpar_xstrndup(dest, (size_t)(p - dest));
		push(l, d, E_DIR);
		free(d);
	}
}

/* A link target must be relative, and resolving it from the link's
 * directory must stay inside the jail.  ".." is only accepted before the
 * first normal component: after one, the kernel would resolve it from
 * wherever that component (possibly itself a link) leads, which a lexical
 * check cannot see. */
static int check_link(const struct kpar_layer *l, const char *src, const char *dest,
		      const char *target)
{
	struct kpar_buf dir = KPAR_BUF_INIT;
	const char *p = target, *slash;
	int seen_name = 0, rc = 0;
	size_t jl = strlen(l->jail);

	if (!kpar_utf8_valid(target, strlen(target))) {
		char *q = printable(src);
		rc = kpar_error_set(KPAR_EINVAL, "symbolic link '%s' has a target that is not valid UTF-8", q);
		free(q);
		return rc;
	}
	if (target[0] == '/' || target[0] == '\0')
		return kpar_error_set(KPAR_EINVAL,
				      "symbolic link '%s' points outside the payload ('%s' is absolute)",
				      src, target);
	slash = strrchr(dest, '/');
	kpar_buf_add(&dir, dest, slash ? (size_t)(slash - dest) : 0);
	kpar_buf_puts(&dir, "");
	while (*p) {
		const char *s = strchr(p, '/');
		size_t n = s ? (size_t)(s - p) : strlen(p);

		if (n == 0 || (n == 1 && p[0] == '.')) {
			/* nothing */
		} else if (n == 2 && p[0] == '.' && p[1] == '.') {
			char *up;
			if (seen_name) {
				rc = kpar_error_set(KPAR_EINVAL,
						    "symbolic link '%s' has a '..' after a name in its target '%s'",
						    src, target);
				goto done;
			}
			if (dir.len == 0) {
				rc = kpar_error_set(KPAR_EINVAL,
						    "symbolic link '%s' points outside the payload ('%s')",
						    src, target);
				goto done;
			}
			up = strrchr(dir.data, '/');
			dir.len = up ? (size_t)(up - dir.data) : 0;
			dir.data[dir.len] = '\0';
		} else {
			seen_name = 1;
			if (dir.len)
				kpar_buf_putc(&dir, '/');
			kpar_buf_add(&dir, p, n);
		}
		p += n;
		if (*p == '/')
			p++;
	}
	if (jl && !(dir.len >= jl && memcmp(dir.data, l->jail, jl) == 0 &&
		    (dir.len == jl || dir.data[jl] == '/')))
		rc = kpar_error_set(KPAR_EINVAL, "symbolic link '%s' points outside the payload ('%s')",
				    src, target);
done:
	kpar_buf_free(&dir);
	return rc;
}

/* The directory walk: a queue of directories shared by up to WALK_THREADS
 * threads, each adding entries to its own list (finish() sorts them all
 * anyway, so the order they are found in does not matter).  A no-op image
 * rebuild is mostly this walk, i.e. one stat per file, and on two cores two
 * threads halve it.  Children are stat'ed relative to their directory's
 * descriptor, which saves resolving every full path from the root. */
#define WALK_THREADS 2

struct wdir {
	char *src, *dest;
};

struct walker {
	struct kpar_layer *l;          /* for the jail; entries go to out[] */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct wdir *q;
	size_t nq, capq;
	int busy, rc;
	char *msg;                     /* the first error's message */
	struct kpar_layer *out[WALK_THREADS];
};

static void walk_fail(struct walker *w, int rc)
{
	pthread_mutex_lock(&w->mu);
	if (w->rc == 0) {
		w->rc = rc;
		w->msg = kpar_xstrdup(kpar_error_last());
	}
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

static void walk_enqueue(struct walker *w, const char *src, const char *dest)
{
	pthread_mutex_lock(&w->mu);
	if (w->nq == w->capq) {
		w->capq = w->capq ? 2 * w->capq : 64;
		w->q = kpar_xrealloc(w->q, w->capq * sizeof *w->q);
	}
	w->q[w->nq].src = kpar_xstrdup(src);
	w->q[w->nq].dest = kpar_xstrdup(dest);
	w->nq++;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* One thing found at src (name in dir_fd): an entry of out, or for a
 * directory an entry plus a job for the queue. */
static int visit(struct walker *w, struct kpar_layer *out, int dir_fd, const char *name,
		 const char *src, const char *dest, const struct stat *st)
{
	struct entry *e;

	if (S_ISREG(st->st_mode)) {
		e = push(out, dest, E_FILE);
		e->src = kpar_xstrdup(src);
		fill_stat(e, st);
		out->bytes += e->size;
		return 0;
	}
	if (S_ISLNK(st->st_mode)) {
		char target[4096];
		ssize_t n = readlinkat(dir_fd, name, target, sizeof target - 1);
		int rc;

		if (n < 0)
			return kpar_error_errno(KPAR_EIO, "cannot read symbolic link '%s'", src);
		target[n] = '\0';
		if ((rc = check_link(w->l, src, dest, target)) < 0)
			return rc;
		e = push(out, dest, E_LINK);
		e->src = kpar_xstrdup(src);
		e->link = kpar_xstrdup(target);
		fill_stat(e, st);
		return 0;
	}
	if (S_ISDIR(st->st_mode)) {
		if (*dest) {
			e = push(out, dest, E_DIR);
			e->src = kpar_xstrdup(src);
			fill_stat(e, st);
		}
		walk_enqueue(w, src, dest);
		return 0;
	}
	return kpar_error_set(KPAR_EINVAL, "'%s' is a %s: only files, directories and symbolic links "
			      "can go into a layer", src,
			      S_ISSOCK(st->st_mode) ? "socket" : S_ISFIFO(st->st_mode) ? "FIFO" :
			      S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode) ? "device" : "special file");
}

static int read_dir(struct walker *w, struct kpar_layer *out, const struct wdir *job)
{
	struct kpar_buf src = KPAR_BUF_INIT, dest = KPAR_BUF_INIT;
	int fd = open(job->src, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), rc = 0;
	DIR *d = fd < 0 ? NULL : fdopendir(fd);
	struct dirent *de;

	if (!d) {
		rc = kpar_error_errno(errno == ENOENT ? KPAR_ENOTFOUND : KPAR_EIO,
				      "cannot read directory '%s'", job->src);
		if (fd >= 0)
			close(fd);
		return rc;
	}
	for (;;) {
		struct stat st;

		errno = 0;
		de = readdir(d);
		if (!de) {
			if (errno)
				rc = kpar_error_errno(KPAR_EIO, "cannot read directory '%s'", job->src);
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		kpar_buf_clear(&src);
		kpar_buf_puts(&src, job->src);
		if (src.len && src.data[src.len - 1] != '/')
			kpar_buf_putc(&src, '/');
		kpar_buf_puts(&src, de->d_name);
		kpar_buf_clear(&dest);
		kpar_buf_puts(&dest, job->dest);
		if (dest.len)
			kpar_buf_putc(&dest, '/');
		kpar_buf_puts(&dest, de->d_name);
		if (!kpar_utf8_valid(de->d_name, strlen(de->d_name))) {
			char *q = printable(src.data);
			rc = kpar_error_set(KPAR_EINVAL, "file name '%s' is not valid UTF-8", q);
			free(q);
			break;
		}
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			rc = kpar_error_errno(KPAR_EIO, "cannot stat '%s'", src.data);
			break;
		}
		if ((rc = visit(w, out, dirfd(d), de->d_name, src.data, dest.data, &st)) < 0)
			break;
	}
	closedir(d);
	kpar_buf_free(&src);
	kpar_buf_free(&dest);
	return rc;
}

static void *walk_thread(void *arg)
{
	struct walker *w = ((void **)arg)[0];
	struct kpar_layer *out = ((void **)arg)[1];

	for (;;) {
		struct wdir job;
		int rc;

		pthread_mutex_lock(&w->mu);
		while (w->rc == 0 && w->nq == 0 && w->busy > 0)
			pthread_cond_wait(&w->cv, &w->mu);
		if (w->rc != 0 || w->nq == 0) {
			pthread_cond_broadcast(&w->cv);
			pthread_mutex_unlock(&w->mu);
			return NULL;
		}
		job = w->q[--w->nq];
		w->busy++;
		pthread_mutex_unlock(&w->mu);
		rc = read_dir(w, out, &job);
		free(job.src);
		free(job.dest);
		if (rc < 0)
			walk_fail(w, rc);
		pthread_mutex_lock(&w->mu);
		w->busy--;
		if (w->busy == 0 && w->nq == 0)
			pthread_cond_broadcast(&w->cv);
		pthread_mutex_unlock(&w->mu);
	}
}

/* Adds src (lstat'ed as st) and, for a directory, everything below it. */
static int walk(struct kpar_layer *l, const char *src, const char *dest, const struct stat *st)
{
	struct walker w;
	pthread_t th[WALK_THREADS];
	void *args[WALK_THREADS][2];
	int i, started = 0, rc;
	size_t k;

	memset(&w, 0, sizeof w);
	w.l = l;
	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cv, NULL);
	for (i = 0; i < WALK_THREADS; i++) {
		w.out[i] = kpar_layer_new(NULL);
		args[i][0] = &w;
		args[i][1] = w.out[i];
	}
	rc = visit(&w, w.out[0], AT_FDCWD, src, src, dest, st);
	if (rc < 0) {
		walk_fail(&w, rc);
	} else if (w.nq) {
		/* a small tree is not worth a thread */
		long cpus = sysconf(_SC_NPROCESSORS_ONLN);
		for (i = 1; i < WALK_THREADS && i < cpus; i++)
			if (pthread_create(&th[i], NULL, walk_thread, args[i]) == 0)
				started = i;
		walk_thread(args[0]);
		for (i = 1; i <= started; i++)
			pthread_join(th[i], NULL);
	}
	rc = w.rc;
	if (rc < 0)
		kpar_error_set(rc, "%s", w.msg);
	for (i = 0; i < WALK_THREADS; i++) {
		struct kpar_layer *o = w.out[i];
		if (rc == 0 && o->n && l->n == 0) {
			/* the usual case, one directory per layer: take the
			 * list over rather than copy it */
			struct entry *e = l->e;
			size_t cap = l->cap;
			l->e = o->e;
			l->cap = o->cap;
			l->n = o->n;
			l->bytes += o->bytes;
			l->sorted = 0;
			o->e = e;
			o->cap = cap;
			o->n = 0;
		} else if (rc == 0 && o->n) {
			if (l->n + o->n > l->cap) {
				l->cap = l->n + o->n + l->cap;
				l->e = kpar_xrealloc(l->e, l->cap * sizeof *l->e);
			}
			memcpy(l->e + l->n, o->e, o->n * sizeof *o->e);
			l->n += o->n;
			l->bytes += o->bytes;
			l->sorted = 0;
			o->n = 0;   /* the strings moved to l */
		}
		kpar_layer_free(o);
	}
	for (k = 0; k < w.nq; k++) {
		free(w.q[k].src);
		free(w.q[k].dest);
	}
	free(w.q);
	free(w.msg);
	pthread_mutex_destroy(&w.mu);
	pthread_cond_destroy(&w.cv);
	return rc;
}

static int add(struct kpar_layer *l, const char *src, const char *dest, int follow)
{
	struct kpar_buf d = KPAR_BUF_INIT;
	struct stat st;
	size_t before = l->n;
	uint64_t bytes_before = l->bytes;
	int rc;

	if ((rc = clean_dest(dest, &d)) < 0)
		goto done;
	if ((follow ? stat(src, &st) : lstat(src, &st)) < 0) {
		rc = kpar_error_errno(errno == ENOENT || errno == ENOTDIR ? KPAR_ENOTFOUND : KPAR_EIO,
				      "cannot stat '%s'", src);
		goto done;
	}
	if (!kpar_utf8_valid(src, strlen(src))) {
		char *q = printable(src);
		rc = kpar_error_set(KPAR_EINVAL, "file name '%s' is not valid UTF-8", q);
		free(q);
		goto done;
	}
	if (follow) {
		struct entry *e;
		if (!S_ISREG(st.st_mode)) {
			rc = kpar_error_set(KPAR_EINVAL, "'%s' is not a regular file", src);
			goto done;
		}
		if (d.len == 0) {
			rc = kpar_error_set(KPAR_EINVAL, "cannot put file '%s' at the image root", src);
			goto done;
		}
		e = push(l, d.data, E_FILE);
		e->src = kpar_xstrdup(src);
		e->follow = 1;
		fill_stat(e, &st);
		l->bytes += e->size;
	} else {
		if (d.len == 0 && !S_ISDIR(st.st_mode)) {
			rc = kpar_error_set(KPAR_EINVAL, "cannot put '%s' at the image root", src);
			goto done;
		}
		if ((rc = walk(l, src, d.data, &st)) < 0)
			goto done;
	}
	if (d.len)
		add_parents(l, d.data);
done:
	if (rc < 0) {
		while (l->n > before)
			entry_free(&l->e[--l->n]);
		l->bytes = bytes_before;
	}
	kpar_buf_free(&d);
	return rc;
}

int kpar_layer_add(struct kpar_layer *l, const char *src, const char *dest)
{
	return add(l, src, dest, 0);
}

int kpar_layer_add_file(struct kpar_layer *l, const char *src, const char *dest)
{
	return add(l, src, dest, 1);
}

int kpar_layer_add_dir(struct kpar_layer *l, const char *dest, int sticky)
{
	struct kpar_buf d = KPAR_BUF_INIT;
	int rc = clean_dest(dest, &d);

	if (rc == 0 && d.len) {
		struct entry *e = push(l, d.data, E_DIR);
		/* an explicit entry, so it wins over implicit parents */
		e->src = kpar_xstrdup("");
		e->mode = sticky ? 01777 : 0755;
		add_parents(l, d.data);
	}
	kpar_buf_free(&d);
	return rc;
}

static int cmp_entry(const void *a, const void *b)
{
	const struct entry *x = *(const struct entry *const *)a, *y = *(const struct entry *const *)b;
	int c = strcmp(x->dest, y->dest);

	if (c)
		return c;
	/* explicit directories first, so the duplicate pass keeps them */
	return (x->src == NULL) - (y->src == NULL);
}

/* Sorts by image path and folds duplicates: a directory may be named many
 * times (implicitly or by overlapping inputs); anything else twice, or a
 * path that is both a directory and something else, is an error. */
static int finish(struct kpar_layer *l)
{
	size_t i, o;

	if (l->sorted)
		return 0;
	if (l->n > 1) {
		/* sort pointers, then move each entry once along the cycles
		 * of the permutation: qsort on the entries themselves would
		 * copy them around log n times, and a second array of them
		 * costs more in page faults than the sort itself */
		struct entry **p = kpar_xmalloc(l->n * sizeof *p);
		for (i = 0; i < l->n; i++)
			p[i] = &l->e[i];
		qsort(p, l->n, sizeof *p, cmp_entry);
		for (i = 0; i < l->n; i++) {
			struct entry tmp;
			size_t j = i, k;

			if (p[i] == NULL || p[i] == &l->e[i])
				continue;
			tmp = l->e[i];
			for (;;) {
				k = (size_t)(p[j] - l->e);
				p[j] = NULL;
				if (k == i)
					break;
				l->e[j] = l->e[k];
				j = k;
			}
			l->e[j] = tmp;
		}
		free(p);
	}
	for (i = 1; i < l->n; i++) {
		const struct entry *prev = &l->e[i - 1], *cur = &l->e[i];
		if (strcmp(prev->dest, cur->dest) == 0 && !(prev->type == E_DIR && cur->type == E_DIR))
			return kpar_error_set(KPAR_EINVAL, "image path '/%s' is given twice ('%s' and '%s')",
					      cur->dest, prev->src ? prev->src : "(a directory)",
					      cur->src ? cur->src : "(a directory)");
	}
	for (i = 0, o = 0; i < l->n; i++) {
		if (o > 0 && strcmp(l->e[o - 1].dest, l->e[i].dest) == 0) {
			entry_free(&l->e[i]);
			continue;
		}
		if (o != i)
			l->e[o] = l->e[i];
		o++;
	}
	l->n = o;
	l->sorted = 1;
	return 0;
}

void kpar_layer_key(struct kpar_layer *l, const struct kpar_compressor *c, int64_t epoch,
		    char key[KPAR_DIGEST_STR])
{
	struct kpar_sha256 *h = kpar_sha256_new();
	struct kpar_buf b = KPAR_BUF_INIT;
	unsigned char raw[KPAR_SHA256_LEN];
	size_t i;

	/* a duplicate leaves the list unsorted; the key then still differs
	 * from any good one and kpar_layer_write reports the error */
	if (finish(l) < 0)
		kpar_error_clear();
	kpar_buf_grow(&b, 72u << 10);
	kpar_buf_puts(&b, "kpar-layer 1\n");
	kpar_compressor_id(c, &b);
	kpar_buf_printf(&b, "\nepoch %lld\n", (long long)epoch);
	/* the numbers go in as raw machine words: the key is a local cache key,
	 * never compared across machines, and printf for 20,000 entries costs
	 * more than the walk that produced them */
	for (i = 0; i < l->n; i++) {
		const struct entry *e = &l->e[i];
		int64_t num[9] = { e->type, e->mode, (int64_t)e->size, e->mtime_s, e->mtime_ns,
				   e->ctime_s, e->ctime_ns, (int64_t)e->ino, e->follow };
		/* A directory's tar entry is its name and mode; its times move
		 * whenever anything (a lock or journal file) comes and goes in it,
		 * which must not rebuild the layer.  Its children have keys. */
		if (e->type == E_DIR)
			num[2] = num[3] = num[4] = num[5] = num[6] = 0;
		kpar_buf_add(&b, num, sizeof num);
		kpar_buf_add(&b, e->dest, strlen(e->dest) + 1);
		kpar_buf_add(&b, e->src ? e->src : "", e->src ? strlen(e->src) + 1 : 1);
		kpar_buf_add(&b, e->link ? e->link : "", e->link ? strlen(e->link) + 1 : 1);
		/* hashed in cache-sized pieces: one buffer grown to hold
		 * everything costs more in copies and page faults than the
		 * hashing itself */
		if (b.len > (64u << 10)) {
			kpar_sha256_update(h, b.data, b.len);
			kpar_buf_clear(&b);
		}
	}
	kpar_sha256_update(h, b.data, b.len);
	kpar_sha256_final(h, raw);
	memcpy(key, "sha256:", 7);
	kpar_hex(raw, sizeof raw, key + 7);
	kpar_buf_free(&b);
}

/* ------------------------------------------------------------------- sink */

enum { JOB_IDLE = 0, JOB_QUEUED, JOB_DONE };

struct gzjob {
	unsigned char *in;
	size_t len;
	unsigned char dict[DICT_SIZE];
	size_t dict_len;
	unsigned char *out;
	size_t out_len, out_cap;
	uLong crc;
	int final;
	int state;
	int zerr;
};

struct sink {
	int fd;
	const char *path;           /* for messages */
	struct kpar_sha256 *raw_sha, *out_sha;
	uint64_t raw_len, out_len;
	int rc;                     /* first error */
	enum kpar_compress kind;
	int level;

	/* gzip */
	struct gzjob *ring;
	size_t nring;
	uint64_t submit_seq, take_seq, retire_seq;
	int nthreads, started, stop;
	pthread_t *th;
	pthread_mutex_t mu;
	pthread_cond_t work, done;
	z_stream inline_zs;
	int inline_ready;
	uLong crc;

	/* zstd */
	ZSTD_CCtx *zc;
	unsigned char *zout;
	size_t zout_cap;
};

static int out_write(struct sink *s, const void *data, size_t len)
{
	const char *p = data;

	kpar_sha256_update(s->out_sha, data, len);
	s->out_len += len;
	while (len > 0) {
		ssize_t n = write(s->fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return kpar_error_errno(KPAR_EIO, "cannot write '%s'", s->path);
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int zs_init(z_stream *zs, int level)
{
	memset(zs, 0, sizeof *zs);
	return deflateInit2(zs, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK ? 0 : -1;
}

static void gz_compress(struct gzjob *j, z_stream *zs)
{
	int flush = j->final ? Z_FINISH : Z_SYNC_FLUSH, ret;

	j->zerr = 0;
	j->out_len = 0;
	j->crc = crc32(0L, j->in, (uInt)j->len);
	if (deflateReset(zs) != Z_OK ||
	    (j->dict_len && deflateSetDictionary(zs, j->dict, (uInt)j->dict_len) != Z_OK)) {
		j->zerr = 1;
		return;
	}
	zs->next_in = j->in;
	zs->avail_in = (uInt)j->len;
	for (;;) {
		if (j->out_cap - j->out_len < 4096) {
			j->out_cap = j->out_cap * 2 + 65536;
			j->out = kpar_xrealloc(j->out, j->out_cap);
		}
		zs->next_out = j->out + j->out_len;
		zs->avail_out = (uInt)(j->out_cap - j->out_len);
		ret = deflate(zs, flush);
		j->out_len = j->out_cap - zs->avail_out;
		if (ret == Z_STREAM_ERROR) {
			j->zerr = 1;
			return;
		}
		if (j->final ? ret == Z_STREAM_END : (zs->avail_in == 0 && zs->avail_out > 0))
			return;
	}
}

static void *gz_thread(void *arg)
{
	struct sink *s = arg;
	z_stream zs;
	int ok = zs_init(&zs, s->level) == 0;

	for (;;) {
		struct gzjob *j;

		pthread_mutex_lock(&s->mu);
		while (!s->stop && s->take_seq == s->submit_seq)
			pthread_cond_wait(&s->work, &s->mu);
		if (s->stop) {
			pthread_mutex_unlock(&s->mu);
			break;
		}
		j = &s->ring[s->take_seq++ % s->nring];
		pthread_mutex_unlock(&s->mu);
		if (ok)
			gz_compress(j, &zs);
		else
			j->zerr = 1;
		pthread_mutex_lock(&s->mu);
		j->state = JOB_DONE;
		pthread_cond_broadcast(&s->done);
		pthread_mutex_unlock(&s->mu);
	}
	if (ok)
		deflateEnd(&zs);
	return NULL;
}

static int gz_start_threads(struct sink *s)
{
	int i;

	s->th = kpar_xcalloc((size_t)s->nthreads, sizeof *s->th);
	for (i = 0; i < s->nthreads; i++) {
		if (pthread_create(&s->th[i], NULL, gz_thread, s) != 0) {
			s->nthreads = i;
			break;
		}
	}
	s->started = 1;
	return 0;
}

/* Writes out the oldest submitted block once it is compressed. */
static int gz_retire(struct sink *s)
{
	struct gzjob *j = &s->ring[s->retire_seq % s->nring];
	int rc;

	if (s->started) {
		pthread_mutex_lock(&s->mu);
		while (j->state != JOB_DONE)
			pthread_cond_wait(&s->done, &s->mu);
		pthread_mutex_unlock(&s->mu);
	}
	s->retire_seq++;
	j->state = JOB_IDLE;
	if (j->zerr)
		return kpar_error_set(KPAR_EGENERIC, "zlib failed to compress '%s'", s->path);
	s->crc = crc32_combine(s->crc, j->crc, (z_off_t)j->len);
	rc = out_write(s, j->out, j->out_len);
	return rc;
}

static int gz_submit(struct sink *s, int final)
{
	struct gzjob *j = &s->ring[s->submit_seq % s->nring], *next;
	int rc;

	j->final = final;
	if (!s->started && s->nthreads > 1 && !final)
		gz_start_threads(s);
	if (s->started) {
		pthread_mutex_lock(&s->mu);
		j->state = JOB_QUEUED;
		s->submit_seq++;
		pthread_cond_signal(&s->work);
		pthread_mutex_unlock(&s->mu);
	} else {
		if (!s->inline_ready) {
			if (zs_init(&s->inline_zs, s->level) < 0)
				return kpar_error_set(KPAR_EGENERIC, "zlib failed to initialise");
			s->inline_ready = 1;
		}
		gz_compress(j, &s->inline_zs);
		j->state = JOB_DONE;
		s->submit_seq++;
		if ((rc = gz_retire(s)) < 0)
			return rc;
	}
	if (final)
		return 0;
	/* the next slot to fill was last used nring blocks ago: retire it */
	while (s->submit_seq - s->retire_seq >= s->nring)
		if ((rc = gz_retire(s)) < 0)
			return rc;
	next = &s->ring[s->submit_seq % s->nring];
	memcpy(next->dict, j->in + j->len - DICT_SIZE, DICT_SIZE);
	next->dict_len = DICT_SIZE;
	next->len = 0;
	return 0;
}

static int gz_feed(struct sink *s, const unsigned char *p, size_t len)
{
	while (len > 0) {
		struct gzjob *j = &s->ring[s->submit_seq % s->nring];
		size_t n = KPAR_GZIP_BLOCK - j->len;
		int rc;

		if (n > len)
			n = len;
		memcpy(j->in + j->len, p, n);
		j->len += n;
		p += n;
		len -= n;
		if (j->len == KPAR_GZIP_BLOCK && (rc = gz_submit(s, 0)) < 0)
			return rc;
	}
	return 0;
}

static int gz_open(struct sink *s, int threads)
{
	/* fixed header: no name, mtime 0, xfl by level, OS "unknown" */
	unsigned char hdr[10] = { 0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff };
	size_t i;

	hdr[8] = s->level == 1 ? 4 : s->level == 9 ? 2 : 0;
	s->nthreads = threads;
	s->nring = (size_t)(threads > 1 ? 2 * threads + 2 : 2);
	s->ring = kpar_xcalloc(s->nring, sizeof *s->ring);
	for (i = 0; i < s->nring; i++)
		s->ring[i].in = kpar_xmalloc(KPAR_GZIP_BLOCK);
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->work, NULL);
	pthread_cond_init(&s->done, NULL);
	s->crc = crc32(0L, Z_NULL, 0);
	return out_write(s, hdr, sizeof hdr);
}

static int gz_close(struct sink *s)
{
	unsigned char tr[8];
	int rc = 0, i;

	if (s->rc == 0 && (rc = gz_submit(s, 1)) == 0)
		while (s->retire_seq < s->submit_seq)
			if ((rc = gz_retire(s)) < 0)
				break;
	if (rc == 0 && s->rc == 0) {
		for (i = 0; i < 4; i++) {
			tr[i] = (unsigned char)(s->crc >> (8 * i));
			tr[4 + i] = (unsigned char)(s->raw_len >> (8 * i));
		}
		rc = out_write(s, tr, sizeof tr);
	}
	return rc;
}

static void gz_free(struct sink *s)
{
	size_t i;
	int t;

	if (s->started) {
		pthread_mutex_lock(&s->mu);
		s->stop = 1;
		/* after success nothing is queued; after a failure the queued
		 * blocks are abandoned, the layer is dropped anyway */
		pthread_cond_broadcast(&s->work);
		pthread_mutex_unlock(&s->mu);
		for (t = 0; t < s->nthreads; t++)
			pthread_join(s->th[t], NULL);
	}
	free(s->th);
	if (s->inline_ready)
		deflateEnd(&s->inline_zs);
	for (i = 0; s->ring && i < s->nring; i++) {
		free(s->ring[i].in);
		free(s->ring[i].out);
	}
	free(s->ring);
	if (s->nring) {
		pthread_mutex_destroy(&s->mu);
		pthread_cond_destroy(&s->work);
		pthread_cond_destroy(&s->done);
	}
}

static int zstd_open(struct sink *s, int threads)
{
	s->zc = ZSTD_createCCtx();
	if (!s->zc)
		return kpar_error_set(KPAR_ENOMEM, "cannot create a zstd context");
	if (ZSTD_isError(ZSTD_CCtx_setParameter(s->zc, ZSTD_c_compressionLevel, s->level)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(s->zc, ZSTD_c_checksumFlag, 1)) ||
	    ZSTD_isError(ZSTD_CCtx_setParameter(s->zc, ZSTD_c_nbWorkers, threads < 1 ? 1 : threads)))
		return kpar_error_set(KPAR_EGENERIC,
				      "libzstd %s lacks multi-threading, which reproducible layers need",
				      ZSTD_versionString());
	s->zout_cap = ZSTD_CStreamOutSize();
	s->zout = kpar_xmalloc(s->zout_cap);
	return 0;
}

static int zstd_feed(struct sink *s, const void *p, size_t len, ZSTD_EndDirective mode)
{
	ZSTD_inBuffer in = { p, len, 0 };

	for (;;) {
		ZSTD_outBuffer out = { s->zout, s->zout_cap, 0 };
		size_t left = ZSTD_compressStream2(s->zc, &out, &in, mode);
		int rc;

		if (ZSTD_isError(left))
			return kpar_error_set(KPAR_EGENERIC, "zstd failed on '%s': %s", s->path,
					      ZSTD_getErrorName(left));
		if (out.pos && (rc = out_write(s, s->zout, out.pos)) < 0)
			return rc;
		if (mode == ZSTD_e_end ? left == 0 : in.pos == in.size)
			return 0;
	}
}

static la_ssize_t on_write(struct archive *a, void *ctx, const void *buf, size_t len)
{
	struct sink *s = ctx;
	int rc;

	if (s->rc < 0)
		return -1;
	kpar_sha256_update(s->raw_sha, buf, len);
	s->raw_len += len;
	rc = s->kind == KPAR_COMPRESS_ZSTD ? zstd_feed(s, buf, len, ZSTD_e_continue)
					   : gz_feed(s, buf, len);
	if (rc < 0) {
		s->rc = rc;
		archive_set_error(a, EIO, "%s", kpar_error_last());
		return -1;
	}
	return (la_ssize_t)len;
}

/* ------------------------------------------------------------------ write */

static int write_file(struct archive *a, struct sink *s, const struct entry *e,
		      unsigned char *buf)
{
	int fd = open(e->src, O_RDONLY | O_CLOEXEC | (e->follow ? 0 : O_NOFOLLOW));
	struct stat st;
	uint64_t left = e->size;
	int rc = 0;

	if (fd < 0)
		return kpar_error_errno(KPAR_EIO, "cannot open '%s'", e->src);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != e->size ||
	    st.st_mtim.tv_sec != e->mtime_s || st.st_mtim.tv_nsec != e->mtime_ns) {
		close(fd);
		return kpar_error_set(KPAR_EIO, "'%s' changed while the layer was being built; run again",
				      e->src);
	}
#ifdef POSIX_FADV_SEQUENTIAL
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
#endif
	while (left > 0) {
		size_t want = left < READ_CHUNK ? (size_t)left : READ_CHUNK;
		ssize_t n = read(fd, buf, want);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = kpar_error_errno(KPAR_EIO, "cannot read '%s'", e->src);
			break;
		}
		if (n == 0) {
			rc = kpar_error_set(KPAR_EIO, "'%s' shrank while the layer was being built; run again",
					    e->src);
			break;
		}
		if (archive_write_data(a, buf, (size_t)n) != n) {
			rc = s->rc < 0 ? s->rc : kpar_error_set(KPAR_EIO, "cannot add '%s' to the layer: %s",
							       e->src, archive_error_string(a));
			break;
		}
		left -= (uint64_t)n;
	}
	close(fd);
	return rc;
}

static int write_entries(struct kpar_layer *l, struct archive *a, struct sink *s, int64_t epoch)
{
	struct archive_entry *ae = archive_entry_new();
	unsigned char *buf = kpar_xmalloc(READ_CHUNK);
	size_t i;
	int rc = 0;

	for (i = 0; i < l->n && rc == 0; i++) {
		const struct entry *e = &l->e[i];

		archive_entry_clear(ae);
		archive_entry_set_pathname_utf8(ae, e->dest);
		archive_entry_set_filetype(ae, e->type == E_DIR ? AE_IFDIR :
					   e->type == E_LINK ? AE_IFLNK : AE_IFREG);
		archive_entry_set_perm(ae, e->mode);
		archive_entry_set_uid(ae, 0);
		archive_entry_set_gid(ae, 0);
		archive_entry_set_mtime(ae, (time_t)epoch, 0);
		archive_entry_set_size(ae, e->type == E_FILE ? (la_int64_t)e->size : 0);
		if (e->type == E_LINK)
			archive_entry_set_symlink_utf8(ae, e->link);
		if (archive_write_header(a, ae) != ARCHIVE_OK) {
			rc = s->rc < 0 ? s->rc : kpar_error_set(KPAR_EIO, "cannot add '%s' to the layer: %s",
							       e->src ? e->src : e->dest,
							       archive_error_string(a));
			break;
		}
		if (e->type == E_FILE && e->size > 0)
			rc = write_file(a, s, e, buf);
	}
	free(buf);
	archive_entry_free(ae);
	return rc;
}

int kpar_layer_write(struct kpar_layer *l, const struct kpar_compressor *c, int64_t epoch,
		     const char *blob_dir, struct kpar_layer_result *out)
{
	struct sink s;
	struct archive *a = NULL;
	char *tmp = NULL, *final = NULL;
	unsigned char raw[KPAR_SHA256_LEN];
	locale_t loc = (locale_t)0, old = (locale_t)0;
	int rc = 0, threads = thread_count(c);

	memset(out, 0, sizeof *out);
	memset(&s, 0, sizeof s);
	s.fd = -1;
	if (epoch < 0)
		return kpar_error_set(KPAR_EINVAL, "negative epoch %lld", (long long)epoch);
	if ((rc = kpar_archive_load()) < 0)
		return rc;
	if ((rc = finish(l)) < 0)
		return rc;
	s.kind = c->kind;
	s.level = c->level;
	s.raw_sha = kpar_sha256_new();
	s.out_sha = kpar_sha256_new();
	tmp = kpar_xasprintf("%s/.tmp-layer-XXXXXX", blob_dir);
	s.path = tmp;
	s.fd = mkostemp(tmp, O_CLOEXEC);
	if (s.fd < 0) {
		rc = kpar_error_errno(KPAR_EIO, "cannot create a file in '%s'", blob_dir);
		goto done;
	}
	if (fchmod(s.fd, 0644) < 0) {
		rc = kpar_error_errno(KPAR_EIO, "cannot chmod '%s'", tmp);
		goto done;
	}
	rc = c->kind == KPAR_COMPRESS_ZSTD ? zstd_open(&s, threads) : gz_open(&s, threads);
	if (rc < 0)
		goto done;

	loc = newlocale(LC_CTYPE_MASK, "C.UTF-8", (locale_t)0);
	if (loc)
		old = uselocale(loc);
	a = archive_write_new();
	if (!a || archive_write_set_format_pax_restricted(a) != ARCHIVE_OK ||
	    archive_write_add_filter_none(a) != ARCHIVE_OK ||
	    archive_write_set_bytes_per_block(a, 0) != ARCHIVE_OK ||
	    archive_write_open(a, &s, NULL, on_write, NULL) != ARCHIVE_OK) {
		rc = kpar_error_set(KPAR_EGENERIC, "libarchive: %s", a ? archive_error_string(a) : "no memory");
		goto done;
	}
	rc = write_entries(l, a, &s, epoch);
	if (rc == 0 && archive_write_close(a) != ARCHIVE_OK)
		rc = s.rc < 0 ? s.rc : kpar_error_set(KPAR_EIO, "libarchive: %s", archive_error_string(a));
	if (rc < 0)
		s.rc = rc;
	if (rc == 0)
		rc = c->kind == KPAR_COMPRESS_ZSTD ? zstd_feed(&s, NULL, 0, ZSTD_e_end) : gz_close(&s);
	if (rc == 0 && fsync(s.fd) < 0)
		rc = kpar_error_errno(KPAR_EIO, "cannot write '%s'", tmp);
	if (rc < 0)
		goto done;

	kpar_sha256_final(s.raw_sha, raw);
	s.raw_sha = NULL;
	memcpy(out->diff_id, "sha256:", 7);
	kpar_hex(raw, sizeof raw, out->diff_id + 7);
	kpar_sha256_final(s.out_sha, raw);
	s.out_sha = NULL;
	memcpy(out->digest, "sha256:", 7);
	kpar_hex(raw, sizeof raw, out->digest + 7);
	out->size = s.out_len;
	out->tar_size = s.raw_len;
	out->media_type = kpar_compressor_media_type(c);
	final = kpar_xasprintf("%s/%s", blob_dir, out->digest + 7);
	if (rename(tmp, final) < 0) {
		rc = kpar_error_errno(KPAR_EIO, "cannot rename '%s' to '%s'", tmp, final);
		goto done;
	}
	free(tmp);
	tmp = NULL;
done:
	if (a) {
		/* archive_write_fail() leaks the filter state (libarchive 3.6):
		 * close instead, with the sink refusing further bytes */
		if (rc < 0) {
			s.rc = rc;
			archive_write_close(a);
		}
		archive_write_free(a);
	}
	if (loc) {
		uselocale(old);
		freelocale(loc);
	}
	if (s.kind == KPAR_COMPRESS_GZIP)
		gz_free(&s);
	ZSTD_freeCCtx(s.zc);
	free(s.zout);
	if (s.raw_sha)
		kpar_sha256_final(s.raw_sha, raw);
	if (s.out_sha)
		kpar_sha256_final(s.out_sha, raw);
	if (s.fd >= 0)
		close(s.fd);
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	free(final);
	if (rc < 0)
		memset(out, 0, sizeof *out);
	return rc;
}
