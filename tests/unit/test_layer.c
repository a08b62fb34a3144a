/* test_layer.c - reproducible layers: contents, determinism, keys, bad inputs.
 *
 * Layers are read back with libarchive's reader (which decodes gzip and
 * zstd itself) and the digests recomputed from the files, so a layer that
 * only agrees with the writer's own idea of it fails here.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <archive.h>
#include <archive_entry.h>
#include <zlib.h>

#include "base/buf.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/fs.h"
#include "image/layer.h"
#include "test.h"

static char *tmpdir(void)
{
	char tmpl[] = "/tmp/kpar-test-layer-XXXXXX";
	char *d = mkdtemp(tmpl);

	if (!d)
		abort();
	return kpar_xstrdup(d);
}

static void put(const char *dir, const char *rel, const char *data, size_t len, unsigned mode)
{
	char *p = kpar_fs_join(dir, rel), *slash = strrchr(p, '/');
	int fd;

	*slash = '\0';
	kpar_fs_mkdir_p(p, 0700);
	*slash = '/';
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len)
		abort();
	fchmod(fd, mode);
	close(fd);
	free(p);
}

static void put_s(const char *dir, const char *rel, const char *s, unsigned mode)
{
	put(dir, rel, s, strlen(s), mode);
}

/* Pseudo-random but compressible bytes: words from a small alphabet. */
static char *gen(size_t n, unsigned seed)
{
	char *b = kpar_xmalloc(n);
	size_t i;
	uint32_t x = seed * 2654435761u + 1;

	for (i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		b[i] = (char)("abcdefgh ijkl\nmnop"[x % 18]);
	}
	return b;
}

static void mklink(const char *dir, const char *rel, const char *target)
{
	char *p = kpar_fs_join(dir, rel);

	if (symlink(target, p) < 0)
		abort();
	free(p);
}

static void set_mtime(const char *dir, const char *rel, time_t t)
{
	char *p = kpar_fs_join(dir, rel);
	struct timespec ts[2] = { { t, 0 }, { t, 0 } };

	utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW);
	free(p);
}

/* A small tree with the awkward cases that must work. */
static char long_name[200];

static void make_tree(const char *dir, time_t mtime, unsigned fmode)
{
	char *big = gen(3u << 20, 7);

	memset(long_name, 'n', 150);
	memcpy(long_name + 150, ".txt", 5);
	put_s(dir, "tests/t1.sh", "#!/bin/sh\nexit 0\n", 0700);
	put_s(dir, "tests/data/a.txt", "alpha\n", fmode);
	put_s(dir, "tests/data/caf\xc3\xa9.txt", "utf-8 name\n", fmode);
	put(dir, "build/big.bin", big, 3u << 20, fmode);
	put_s(dir, "build/empty", "", fmode);
	{
		char *rel = kpar_xasprintf("build/deep/%s", long_name);
		put_s(dir, rel, "long\n", fmode);
		free(rel);
	}
	mklink(dir, "tests/link", "../build/big.bin");
	set_mtime(dir, "tests/t1.sh", mtime);
	set_mtime(dir, "build/big.bin", mtime);
	free(big);
}

static struct kpar_layer *describe(const char *dir)
{
	struct kpar_layer *l = kpar_layer_new("/kpar/project");
	char *t = kpar_fs_join(dir, "tests"), *b = kpar_fs_join(dir, "build");

	CHECK_OK(kpar_layer_add(l, t, "/kpar/project/tests"));
	CHECK_OK(kpar_layer_add(l, b, "/kpar/project/build"));
	free(t);
	free(b);
	return l;
}

static int count_files(const char *dir)
{
	char *cmd = kpar_xasprintf("ls -A '%s' | wc -l", dir);
	FILE *f = popen(cmd, "r");
	int n = -1;

	if (f && fscanf(f, "%d", &n) != 1)
		n = -1;
	if (f)
		pclose(f);
	free(cmd);
	return n;
}

/* A UTF-8 name read in the C locale is a warning, not an error. */
static int ok(int rc)
{
	return rc == ARCHIVE_OK || rc == ARCHIVE_WARN;
}

/* The reader, unlike the writer, uses the process locale for names. */
static struct archive *reader(void)
{
	setlocale(LC_CTYPE, "C.UTF-8");
	return archive_read_new();
}

/* Reads a layer back: checks headers, the gzip/zstd framing and that the
 * digests are what they claim. */
static void read_back(const char *blob_dir, const struct kpar_layer_result *r, int64_t epoch,
		      struct kpar_strv *names)
{
	char *path = kpar_xasprintf("%s/%s", blob_dir, r->digest + 7);
	char dg[KPAR_DIGEST_STR];
	uint64_t size = 0;
	struct archive *a = reader();
	struct archive_entry *e;
	struct kpar_sha256 *raw = kpar_sha256_new();
	unsigned char h[KPAR_SHA256_LEN];
	char hex[KPAR_DIGEST_STR] = "sha256:";
	const void *buf;
	size_t len;
	la_int64_t off;
	uint64_t total = 0;

	CHECK_OK(kpar_digest_file(path, dg, &size));
	CHECK_STR(dg, r->digest);
	CHECK_INT(size, r->size);

	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	CHECK_INT(archive_read_open_filename(a, path, 65536), ARCHIVE_OK);
	while (ok(archive_read_next_header(a, &e))) {
		const char *name = archive_entry_pathname(e);
		kpar_strv_push(names, name);
		CHECK_INT(archive_entry_uid(e), 0);
		CHECK_INT(archive_entry_gid(e), 0);
		CHECK_INT(archive_entry_mtime(e), epoch);
		CHECK(!archive_entry_atime_is_set(e));
		CHECK(!archive_entry_ctime_is_set(e));
		CHECK(archive_entry_uname(e) == NULL || !*archive_entry_uname(e));
		if (archive_entry_filetype(e) == AE_IFDIR)
			CHECK_INT(archive_entry_perm(e), 0755);
		while (archive_read_data_block(a, &buf, &len, &off) == ARCHIVE_OK)
			(void)buf;
	}
	archive_read_free(a);

	/* diff_id = sha256 of the decompressed stream, taken by a separate reader */
	a = archive_read_new();
	archive_read_support_filter_all(a);
	archive_read_support_format_raw(a);
	CHECK_INT(archive_read_open_filename(a, path, 65536), ARCHIVE_OK);
	if (archive_read_next_header(a, &e) == ARCHIVE_OK) {
		char chunk[65536];
		la_ssize_t n;
		while ((n = archive_read_data(a, chunk, sizeof chunk)) > 0) {
			kpar_sha256_update(raw, chunk, (size_t)n);
			total += (uint64_t)n;
		}
	}
	archive_read_free(a);
	kpar_sha256_final(raw, h);
	kpar_hex(h, sizeof h, hex + 7);
	CHECK_STR(hex, r->diff_id);
	CHECK_INT(total, r->tar_size);
	free(path);
}

KPAR_TEST(compressor_parse)
{
	struct kpar_compressor c;
	struct kpar_buf id = KPAR_BUF_INIT;

	CHECK_OK(kpar_compressor_parse(&c, NULL));
	CHECK_INT(c.kind, KPAR_COMPRESS_GZIP);
	CHECK_INT(c.level, 1);
	CHECK_OK(kpar_compressor_parse(&c, "gzip:6"));
	CHECK_INT(c.level, 6);
	CHECK_OK(kpar_compressor_parse(&c, "zstd"));
	CHECK_INT(c.kind, KPAR_COMPRESS_ZSTD);
	CHECK_INT(c.level, 3);
	CHECK_STR(kpar_compressor_media_type(&c), KPAR_MT_LAYER_ZSTD);
	kpar_compressor_id(&c, &id);
	CHECK(strstr(id.data, "zstd-3") != NULL);
	CHECK_INT(kpar_compressor_parse(&c, "gzip:0"), KPAR_EINVAL);
	CHECK_INT(kpar_compressor_parse(&c, "zstd:20"), KPAR_EINVAL);
	CHECK_INT(kpar_compressor_parse(&c, "xz"), KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), "'xz'") != NULL);
	CHECK_INT(kpar_compressor_parse(&c, "gzip:1x"), KPAR_EINVAL);
	kpar_buf_free(&id);
}

KPAR_TEST(utf8)
{
	CHECK(kpar_utf8_valid("plain", 5));
	CHECK(kpar_utf8_valid("caf\xc3\xa9", 5));
	CHECK(kpar_utf8_valid("\xf0\x9f\x98\x80", 4));
	CHECK(!kpar_utf8_valid("caf\xe9", 4));          /* latin-1 */
	CHECK(!kpar_utf8_valid("\xc0\xaf", 2));         /* overlong '/' */
	CHECK(!kpar_utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
	CHECK(!kpar_utf8_valid("\xe2\x82", 2));         /* truncated */
	CHECK(!kpar_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
}

KPAR_TEST(contents_and_format)
{
	char *dir = tmpdir(), *blobs = kpar_fs_join(dir, "blobs"), *src = kpar_fs_join(dir, "src");
	struct kpar_layer *l;
	struct kpar_compressor c;
	struct kpar_layer_result r;
	struct kpar_strv names = KPAR_STRV_INIT;
	char *want_long;
	size_t i;

	kpar_fs_mkdir_p(blobs, 0755);
	make_tree(src, 1234567, 0644);
	l = describe(src);
	CHECK_INT(kpar_layer_bytes(l), (3u << 20) + 17 + 6 + 11 + 5);
	kpar_compressor_parse(&c, "gzip");
	CHECK_OK(kpar_layer_write(l, &c, 42, blobs, &r));
	CHECK_STR(r.media_type, KPAR_MT_LAYER_GZIP);
	read_back(blobs, &r, 42, &names);
	/* parents explicit, sorted bytewise, directories with a slash */
	CHECK(names.n >= 12);
	if (names.n < 12)
		for (i = 0; i < names.n; i++)
			fprintf(stderr, "  entry %s\n", names.v[i]);
	if (names.n >= 3) {
		CHECK_STR(names.v[0], "kpar/");
		CHECK_STR(names.v[1], "kpar/project/");
		CHECK_STR(names.v[2], "kpar/project/build/");
	}
	for (i = 1; i < names.n; i++)
		CHECK(strcmp(names.v[i - 1], names.v[i]) < 0);
	want_long = kpar_xasprintf("kpar/project/build/deep/%s", long_name);
	for (i = 0; i < names.n && strcmp(names.v[i], want_long) != 0; i++)
		;
	CHECK(i < names.n); /* a 174-byte name survived (PAX) */
	for (i = 0; i < names.n && strcmp(names.v[i], "kpar/project/tests/data/caf\xc3\xa9.txt") != 0; i++)
		;
	CHECK(i < names.n);
	/* the gzip header carries no name and no time */
	{
		char *p = kpar_xasprintf("%s/%s", blobs, r.digest + 7);
		unsigned char h[10];
		int fd = open(p, O_RDONLY | O_CLOEXEC);
		CHECK(fd >= 0 && read(fd, h, 10) == 10);
		CHECK_INT(h[0], 0x1f);
		CHECK_INT(h[3], 0);  /* no FNAME, no FEXTRA */
		CHECK_INT(h[4] | h[5] | h[6] | h[7], 0);
		close(fd);
		free(p);
	}
	CHECK_INT(count_files(blobs), 1); /* no temporary file left */
	free(want_long);
	kpar_strv_free(&names);
	kpar_layer_free(l);
	kpar_fs_remove_tree(dir);
	free(dir);
	free(blobs);
	free(src);
}

static void modes_of(const char *blob_dir, const struct kpar_layer_result *r, const char *name,
		     int *perm, int *type, char *link, size_t link_len)
{
	char *path = kpar_xasprintf("%s/%s", blob_dir, r->digest + 7);
	struct archive *a = reader();
	struct archive_entry *e;

	*perm = -1;
	archive_read_support_filter_all(a);
	archive_read_support_format_tar(a);
	archive_read_open_filename(a, path, 65536);
	while (ok(archive_read_next_header(a, &e))) {
		if (strcmp(archive_entry_pathname(e), name) == 0) {
			*perm = (int)archive_entry_perm(e);
			*type = (int)archive_entry_filetype(e);
			if (link && archive_entry_symlink(e))
				snprintf(link, link_len, "%s", archive_entry_symlink(e));
		}
	}
	archive_read_free(a);
	free(path);
}

KPAR_TEST(modes)
{
	char *dir = tmpdir(), *blobs = kpar_fs_join(dir, "blobs"), *src = kpar_fs_join(dir, "src");
	struct kpar_layer *l;
	struct kpar_compressor c;
	struct kpar_layer_result r;
	int perm, type;
	char link[256] = "";

	kpar_fs_mkdir_p(blobs, 0755);
	make_tree(src, 1000, 0600);
	l = describe(src);
	kpar_compressor_parse(&c, "gzip");
	CHECK_OK(kpar_layer_write(l, &c, 0, blobs, &r));
	modes_of(blobs, &r, "kpar/project/tests/t1.sh", &perm, &type, NULL, 0);
	CHECK_INT(perm, 0755);  /* 0700 -> 0755 */
	modes_of(blobs, &r, "kpar/project/tests/data/a.txt", &perm, &type, NULL, 0);
	CHECK_INT(perm, 0644);  /* 0600 -> 0644 */
	modes_of(blobs, &r, "kpar/project/tests/link", &perm, &type, link, sizeof link);
	CHECK_INT(type, AE_IFLNK);
	CHECK_STR(link, "../build/big.bin");
	kpar_layer_free(l);
	kpar_fs_remove_tree(dir);
	free(dir);
	free(blobs);
	free(src);
}

/* Same contents in two directories with other mtimes and permissions, and
 * any thread count: same bytes.  Keys differ (paths, mtimes). */
static void reproducible(const char *spec)
{
	char *dir = tmpdir(), *blobs = kpar_fs_join(dir, "blobs");
	char *s1 = kpar_fs_join(dir, "one"), *s2 = kpar_fs_join(dir, "two/nested");
	struct kpar_layer *l1, *l2;
	struct kpar_compressor c1, c2;
	struct kpar_layer_result r1, r2, r3;
	char k1[KPAR_DIGEST_STR], k2[KPAR_DIGEST_STR];

	kpar_fs_mkdir_p(blobs, 0755);
	make_tree(s1, 1000, 0644);
	make_tree(s2, 2000000, 0600);
	l1 = describe(s1);
	l2 = describe(s2);
	kpar_compressor_parse(&c1, spec);
	c2 = c1;
	c1.threads = 1;
	c2.threads = 2;
	CHECK_OK(kpar_layer_write(l1, &c1, 7, blobs, &r1));
	CHECK_OK(kpar_layer_write(l2, &c2, 7, blobs, &r2));
	CHECK_STR(r1.digest, r2.digest);
	CHECK_STR(r1.diff_id, r2.diff_id);
	c2.threads = 3;
	CHECK_OK(kpar_layer_write(l1, &c2, 7, blobs, &r3));
	CHECK_STR(r1.digest, r3.digest);
	kpar_layer_key(l1, &c1, 7, k1);
	kpar_layer_key(l2, &c1, 7, k2);
	CHECK(strcmp(k1, k2) != 0);
	/* the epoch is in the bytes */
	CHECK_OK(kpar_layer_write(l1, &c1, 8, blobs, &r3));
	CHECK(strcmp(r1.diff_id, r3.diff_id) != 0);
	kpar_layer_free(l1);
	kpar_layer_free(l2);
	kpar_fs_remove_tree(dir);
	free(dir);
	free(blobs);
	free(s1);
	free(s2);
}

KPAR_TEST(reproducible_gzip) { reproducible("gzip"); }
KPAR_TEST(reproducible_zstd) { reproducible("zstd"); }

/* zstd cuts its input into jobs of several MiB: only a bigger layer shows
 * that the job split does not depend on the worker count. */
KPAR_TEST(zstd_threads_big)
{
	char *dir = tmpdir(), *blobs = kpar_fs_join(dir, "blobs"), *big = gen(40u << 20, 3);
	char *f = kpar_fs_join(dir, "big");
	struct kpar_layer *l = kpar_layer_new(NULL);
	struct kpar_compressor c;
	struct kpar_layer_result r1, r2;

	kpar_fs_mkdir_p(blobs, 0755);
	put(dir, "big", big, 40u << 20, 0644);
	CHECK_OK(kpar_layer_add(l, f, "/big"));
	kpar_compressor_parse(&c, "zstd");
	c.threads = 1;
	CHECK_OK(kpar_layer_write(l, &c, 0, blobs, &r1));
	c.threads = 2;
	CHECK_OK(kpar_layer_write(l, &c, 0, blobs, &r2));
	CHECK_STR(r1.digest, r2.digest);
	kpar_layer_free(l);
	kpar_fs_remove_tree(dir);
	free(dir);
	free(blobs);
	free(big);
	free(f);
}

KPAR_TEST(gzip_stream_is_standard)
{
	char *dir = tmpdir(), *blobs = kpar_fs_join(dir, "blobs"), *src = kpar_fs_join(dir, "src");
	struct kpar_layer *l;
	struct kpar_compressor c;
	struct kpar_layer_result r;
	char *path, *cmd;

	/* a tar of exactly n blocks, and multi-block data: zlib's own gunzip
	 * must accept the concatenated deflate pieces and the trailer */
	kpar_fs_mkdir_p(blobs, 0755);
	make_tree(src, 1000, 0644);
	l = describe(src);
	kpar_compressor_parse(&c, "gzip:6");
	c.threads = 2;
	CHECK_OK(kpar_layer_write(l, &c, 0, blobs, &r));
	path = kpar_xasprintf("%s/%s", blobs, r.digest + 7);
	{
		gzFile g = gzopen(path, "rb");
		char buf[65536];
		int n;
		uint64_t total = 0;
		struct kpar_sha256 *h = kpar_sha256_new();
		unsigned char raw[KPAR_SHA256_LEN];
		char hex[KPAR_DIGEST_STR] = "sha256:";

		CHECK(g != NULL);
		while (g && (n = gzread(g, buf, sizeof buf)) > 0) {
			kpar_sha256_update(h, buf, (size_t)n);
			total += (uint64_t)n;
		}
		if (g) {
			int err;
			gzerror(g, &err);
			CHECK_INT(err, Z_OK);
			gzclose(g);
		}
		kpar_sha256_final(h, raw);
		kpar_hex(raw, sizeof raw, hex + 7);
		CHECK_STR(hex, r.diff_id);
		CHECK_INT(total, r.tar_size);
	}
	cmd = kpar_xasprintf("gzip -t '%s'", path);
	CHECK_INT(system(cmd), 0);
	free(cmd);
	free(path);
	kpar_layer_free(l);
	kpar_fs_remove_tree(dir);
	free(dir);
	free(blobs);
	free(src);
}

KPAR_TEST(keys)
{
	char *dir = tmpdir(), *src = kpar_fs_join(dir, "src"), *f;
	struct kpar_layer *l;
	struct kpar_compressor g, z;
	char k1[KPAR_DIGEST_STR], k2[KPAR_DIGEST_STR], k3[KPAR_DIGEST_STR];

	make_tree(src, 1000, 0644);
	kpar_compressor_parse(&g, "gzip");
	kpar_compressor_parse(&z, "zstd");
	l = describe(src);
	kpar_layer_key(l, &g, 0, k1);
	kpar_layer_free(l);
	l = describe(src);
	kpar_layer_key(l, &g, 0, k2);
	CHECK_STR(k1, k2);                 /* nothing changed: same key */
	kpar_layer_key(l, &z, 0, k3);
	CHECK(strcmp(k1, k3) != 0);        /* compressor identity is in the key */
	kpar_layer_key(l, &g, 5, k3);
	CHECK(strcmp(k1, k3) != 0);        /* so is the epoch */
	g.threads = 7;
	kpar_layer_key(l, &g, 0, k3);
	CHECK_STR(k1, k3);                 /* threads do not change the bytes */
	kpar_layer_free(l);
	f = kpar_fs_join(src, "tests/data/a.txt");
	CHECK_INT(chmod(f, 0755), 0);
	l = describe(src);
	kpar_layer_key(l, &g, 0, k3);
	CHECK(strcmp(k1, k3) != 0);        /* mode */
	kpar_layer_free(l);
	put_s(src, "tests/data/a.txt", "beta\n", 0755);
	l = describe(src);
	kpar_layer_key(l, &g, 0, k2);
	CHECK(strcmp(k3, k2) != 0);        /* content rewritten */
	kpar_layer_free(l);
	free(f);
	kpar_fs_remove_tree(dir);
	free(dir);
	free(src);
}

static void expect_add_error(const char *src, const char *dest, int code, const char *needle)
{
	struct kpar_layer *l = kpar_layer_new("/kpar/project");
	int rc = kpar_layer_add(l, src, dest);

	CHECK_INT(rc, code);
	if (rc < 0 && !strstr(kpar_error_last(), needle))
		fprintf(stderr, "  message '%s' lacks '%s'\n", kpar_error_last(), needle);
	CHECK(rc >= 0 || strstr(kpar_error_last(), needle) != NULL);
	if (code < 0)
		CHECK_INT(kpar_layer_entries(l), 0);  /* a failed add leaves nothing behind */
	kpar_layer_free(l);
}

KPAR_TEST(bad_inputs)
{
	char *dir = tmpdir(), *p, *q;
	struct sockaddr_un sa;
	int fd;

	p = kpar_fs_join(dir, "missing");
	expect_add_error(p, "/kpar/project/x", KPAR_ENOTFOUND, p);
	free(p);

	/* a socket, deep inside a directory: the message names it */
	p = kpar_fs_join(dir, "s/sub");
	kpar_fs_mkdir_p(p, 0755);
	free(p);
	p = kpar_fs_join(dir, "s/sub/sock");
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", p);
	CHECK_INT(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
	q = kpar_fs_join(dir, "s");
	expect_add_error(q, "/kpar/project/s", KPAR_EINVAL, "sock' is a socket");
	close(fd);
	free(p);
	free(q);

	q = kpar_fs_join(dir, "f");
	kpar_fs_mkdir_p(q, 0755);
	free(q);
	p = kpar_fs_join(dir, "f/fifo");
	CHECK_INT(mkfifo(p, 0644), 0);
	q = kpar_fs_join(dir, "f");
	expect_add_error(q, "/kpar/project/f", KPAR_EINVAL, "FIFO");
	free(p);
	free(q);

	/* symbolic links leaving the payload */
	put_s(dir, "l1/a/file", "x", 0644);
	mklink(dir, "l1/a/esc", "../../../etc/passwd");
	q = kpar_fs_join(dir, "l1");
	expect_add_error(q, "/kpar/project/l1", KPAR_EINVAL, "points outside the payload");
	free(q);
	put_s(dir, "l2/file", "x", 0644);
	mklink(dir, "l2/abs", "/etc/passwd");
	q = kpar_fs_join(dir, "l2");
	expect_add_error(q, "/kpar/project/l2", KPAR_EINVAL, "absolute");
	free(q);
	put_s(dir, "l3/file", "x", 0644);
	mklink(dir, "l3/tricky", "file/../../..");
	q = kpar_fs_join(dir, "l3");
	expect_add_error(q, "/kpar/project/l3", KPAR_EINVAL, "'..' after a name");
	free(q);
	/* a link that climbs but stays inside is fine */
	put_s(dir, "l4/a/b/file", "x", 0644);
	mklink(dir, "l4/a/b/up", "../../c");
	q = kpar_fs_join(dir, "l4");
	expect_add_error(q, "/kpar/project/l4", 0, "");
	free(q);

	/* a name that is not UTF-8 */
	put_s(dir, "n/caf\xe9", "latin-1", 0644);
	q = kpar_fs_join(dir, "n");
	expect_add_error(q, "/kpar/project/n", KPAR_EINVAL, "caf\\xe9' is not valid UTF-8");
	free(q);

	/* image paths */
	q = kpar_fs_join(dir, "n");
	expect_add_error(q, "relative/path", KPAR_EINVAL, "not absolute");
	expect_add_error(q, "/kpar/../etc", KPAR_EINVAL, "'..'");
	free(q);
	kpar_fs_remove_tree(dir);
	free(dir);
}

KPAR_TEST(duplicates_and_changes)
{
	char *dir = tmpdir(), *blobs = kpar_fs_join(dir, "blobs");
	char *a = kpar_fs_join(dir, "a.txt"), *b = kpar_fs_join(dir, "b.txt");
	struct kpar_layer *l;
	struct kpar_compressor c;
	struct kpar_layer_result r;

	kpar_fs_mkdir_p(blobs, 0755);
	put_s(dir, "a.txt", "a", 0644);
	put_s(dir, "b.txt", "b", 0644);
	kpar_compressor_parse(&c, "gzip");

	l = kpar_layer_new("/kpar");
	CHECK_OK(kpar_layer_add(l, a, "/kpar/x"));
	CHECK_OK(kpar_layer_add(l, b, "/kpar/x"));
	CHECK_INT(kpar_layer_write(l, &c, 0, blobs, &r), KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), "'/kpar/x' is given twice") != NULL);
	kpar_layer_free(l);

	/* a file that is also needed as a directory */
	l = kpar_layer_new("/kpar");
	CHECK_OK(kpar_layer_add(l, a, "/kpar/x"));
	CHECK_OK(kpar_layer_add(l, b, "/kpar/x/y"));
	CHECK_INT(kpar_layer_write(l, &c, 0, blobs, &r), KPAR_EINVAL);
	kpar_layer_free(l);

	/* overlapping directories merge */
	l = kpar_layer_new("/kpar");
	CHECK_OK(kpar_layer_add(l, a, "/kpar/d/a"));
	CHECK_OK(kpar_layer_add(l, b, "/kpar/d/b"));
	CHECK_OK(kpar_layer_add_dir(l, "/kpar/d", 0));
	CHECK_OK(kpar_layer_add_dir(l, "/tmp", 1));
	CHECK_OK(kpar_layer_write(l, &c, 0, blobs, &r));
	{
		int perm, type;
		modes_of(blobs, &r, "tmp/", &perm, &type, NULL, 0);
		CHECK_INT(perm, 01777);
		modes_of(blobs, &r, "kpar/d/", &perm, &type, NULL, 0);
		CHECK_INT(perm, 0755);
	}
	kpar_layer_free(l);

	/* changed or removed after the scan: an error, and no blob is left */
	kpar_fs_remove_tree(blobs);
	kpar_fs_mkdir_p(blobs, 0755);
	l = kpar_layer_new("/kpar");
	CHECK_OK(kpar_layer_add(l, a, "/kpar/a"));
	put_s(dir, "a.txt", "longer now", 0644);
	CHECK_INT(kpar_layer_write(l, &c, 0, blobs, &r), KPAR_EIO);
	CHECK(strstr(kpar_error_last(), "changed while") != NULL);
	CHECK_INT(count_files(blobs), 0);
	kpar_layer_free(l);
	l = kpar_layer_new("/kpar");
	CHECK_OK(kpar_layer_add(l, a, "/kpar/a"));
	unlink(a);
	CHECK_INT(kpar_layer_write(l, &c, 0, blobs, &r), KPAR_EIO);
	CHECK(strstr(kpar_error_last(), a) != NULL);
	CHECK_INT(count_files(blobs), 0);
	kpar_layer_free(l);

	/* add_file follows a link and stores a regular file */
	put_s(dir, "real", "real bytes", 0755);
	mklink(dir, "alias", "real");
	l = kpar_layer_new("/kpar");
	{
		char *al = kpar_fs_join(dir, "alias");
		int perm, type;
		CHECK_OK(kpar_layer_add_file(l, al, "/kpar/lib/libx.so.1"));
		CHECK_OK(kpar_layer_write(l, &c, 0, blobs, &r));
		modes_of(blobs, &r, "kpar/lib/libx.so.1", &perm, &type, NULL, 0);
		CHECK_INT(type, AE_IFREG);
		CHECK_INT(perm, 0755);
		free(al);
	}
	kpar_layer_free(l);
	kpar_fs_remove_tree(dir);
	free(dir);
	free(blobs);
	free(a);
	free(b);
}

KPAR_TEST(empty_layer)
{
	char *dir = tmpdir();
	struct kpar_layer *l = kpar_layer_new(NULL);
	struct kpar_compressor c;
	struct kpar_layer_result r;

	kpar_compressor_parse(&c, "gzip");
	CHECK_OK(kpar_layer_write(l, &c, 0, dir, &r));
	CHECK_INT(r.tar_size, 1024); /* just the end-of-archive blocks */
	kpar_layer_free(l);
	kpar_fs_remove_tree(dir);
	free(dir);
}

KPAR_TEST_MAIN(KPAR_CASE(compressor_parse), KPAR_CASE(utf8), KPAR_CASE(contents_and_format),
	       KPAR_CASE(modes), KPAR_CASE(reproducible_gzip), KPAR_CASE(reproducible_zstd), KPAR_CASE(zstd_threads_big),
	       KPAR_CASE(gzip_stream_is_standard), KPAR_CASE(keys), KPAR_CASE(bad_inputs),
	       KPAR_CASE(duplicates_and_changes), KPAR_CASE(empty_layer))
