/* test_oci.c - layout files, config/manifest/index JSON (exact bytes), parsing, gc. */
#include "config.h"

#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/fs.h"
#include "image/oci.h"
#include "test.h"

#define D(c) "sha256:" c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c \
	c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c

static char *tmpdir(void)
{
	char tmpl[] = "/tmp/kpar-test-oci-XXXXXX";
	char *d = mkdtemp(tmpl);

	if (!d)
		abort();
	return kpar_xstrdup(d);
}

static void desc(struct kpar_oci_desc *d, const char *mt, const char *digest, uint64_t size)
{
	memset(d, 0, sizeof *d);
	snprintf(d->media_type, sizeof d->media_type, "%s", mt);
	snprintf(d->digest, sizeof d->digest, "%s", digest);
	d->size = size;
}

KPAR_TEST(digest_valid)
{
	CHECK(kpar_oci_digest_valid(D("a")));
	CHECK(!kpar_oci_digest_valid("sha256:abc"));
	CHECK(!kpar_oci_digest_valid(NULL));
	CHECK(!kpar_oci_digest_valid("sha512:" "aaaa"));
	CHECK(!kpar_oci_digest_valid("sha256:" "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
	CHECK(kpar_oci_blob_path("/x", "sha256:../../etc/passwd") == NULL);
	CHECK_INT(kpar_error_code(), KPAR_EINVAL);
}

KPAR_TEST(manifest_bytes)
{
	struct kpar_oci_desc cfg, layers[2];
	struct kpar_buf b = KPAR_BUF_INIT;

	desc(&cfg, KPAR_MT_OCI_CONFIG, D("c"), 123);
	desc(&layers[0], "application/vnd.oci.image.layer.v1.tar+gzip", D("1"), 5000000000ull);
	desc(&layers[1], "application/vnd.oci.image.layer.v1.tar+zstd", D("2"), 7);
	CHECK_OK(kpar_oci_manifest_json(&cfg, layers, 2, &b));
	CHECK_STR(b.data,
		  "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
		  "\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" D("c")
		  "\",\"size\":123},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\","
		  "\"digest\":\"" D("1") "\",\"size\":5000000000},{\"mediaType\":"
		  "\"application/vnd.oci.image.layer.v1.tar+zstd\",\"digest\":\"" D("2") "\",\"size\":7}]}");
	kpar_buf_free(&b);
}

KPAR_TEST(config_scratch)
{
	static const char *const env[] = { "PATH=/usr/bin:/bin", "KPAR_CACHE_DIR=/kpar/cache" };
	static const char *const ep[] = { "/kpar/bin/kpar-worker", "worker" };
	static const char *const ids[] = { D("a") };
	static const char *const by[] = { "kpar payload" };
	struct kpar_oci_config c = { 0 };
	struct kpar_buf b = KPAR_BUF_INIT;
	struct kpar_strv got = KPAR_STRV_INIT;

	c.created = 0;
	c.env = env;
	c.nenv = 2;
	c.entrypoint = ep;
	c.nentrypoint = 2;
	c.workdir = "/kpar/project";
	c.diff_ids = ids;
	c.created_by = by;
	c.nlayers = 1;
	CHECK_OK(kpar_oci_config_json(&c, NULL, 0, &b));
	CHECK_STR(b.data,
		  "{\"created\":\"1970-01-01T00:00:00Z\",\"architecture\":\"amd64\",\"os\":\"linux\","
		  "\"config\":{\"Env\":[\"PATH=/usr/bin:/bin\",\"KPAR_CACHE_DIR=/kpar/cache\"],"
		  "\"Entrypoint\":[\"/kpar/bin/kpar-worker\",\"worker\"],\"WorkingDir\":\"/kpar/project\"},"
		  "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" D("a") "\"]},"
		  "\"history\":[{\"created\":\"1970-01-01T00:00:00Z\",\"created_by\":\"kpar payload\"}]}");
	CHECK_OK(kpar_oci_config_diff_ids(b.data, b.len, &got));
	CHECK_INT(got.n, 1);
	CHECK_STR(got.v[0], D("a"));
	kpar_strv_free(&got);
	kpar_buf_free(&b);
}

KPAR_TEST(config_on_base)
{
	static const char base[] =
		"{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"User\":\"1000\","
		"\"Env\":[\"PATH=/base/bin\",\"LANG=C.UTF-8\"],\"Cmd\":[\"/bin/sh\"]},"
		"\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" D("1") "\",\"" D("2") "\"]},"
		"\"history\":[{\"created_by\":\"base one\"},{\"created_by\":\"base two\"}]}";
	static const char *const env[] = { "PATH=/kpar/bin:/base/bin" };
	static const char *const defenv[] = { "LANG=C", "TZ=UTC" };
	static const char *const ep[] = { "/kpar/bin/kpar-worker" };
	static const char *const ids[] = { D("3") };
	struct kpar_oci_config c = { 0 };
	struct kpar_buf b = KPAR_BUF_INIT;
	struct kpar_strv got = KPAR_STRV_INIT;

	c.created = -1;
	c.env = env;
	c.nenv = 1;
	c.default_env = defenv;
	c.ndefault_env = 2;
	c.entrypoint = ep;
	c.nentrypoint = 1;
	c.diff_ids = ids;
	c.nlayers = 1;
	CHECK_OK(kpar_oci_config_json(&c, base, sizeof base - 1, &b));
	/* base members kept in place, PATH overridden, Cmd dropped, history appended */
	CHECK_STR(b.data,
		  "{\"architecture\":\"amd64\",\"os\":\"linux\",\"config\":{\"User\":\"1000\","
		  "\"Env\":[\"LANG=C.UTF-8\",\"TZ=UTC\",\"PATH=/kpar/bin:/base/bin\"],"
		  "\"Entrypoint\":[\"/kpar/bin/kpar-worker\"]},"
		  "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[\"" D("1") "\",\"" D("2") "\",\"" D("3") "\"]},"
		  "\"history\":[{\"created_by\":\"base one\"},{\"created_by\":\"base two\"},"
		  "{\"created_by\":\"kpar\"}]}");
	CHECK_OK(kpar_oci_config_diff_ids(b.data, b.len, &got));
	CHECK_INT(got.n, 3);
	kpar_buf_clear(&b);
	CHECK_INT(kpar_oci_config_json(&c, "[1,2]", 5, &b), KPAR_EINVAL);
	CHECK_INT(kpar_oci_config_json(&c, "{\"config\":{}}", 13, &b), KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), "diff_ids") != NULL);
	kpar_strv_free(&got);
	kpar_buf_free(&b);
}

KPAR_TEST(manifest_parse)
{
	static const char oci[] =
		"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
		"\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\"digest\":\"" D("c")
		"\",\"size\":10},\"layers\":[{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\","
		"\"digest\":\"" D("1") "\",\"size\":3000000000}]}";
	static const char docker[] =
		"{\"schemaVersion\":2,\"mediaType\":\"application/vnd.docker.distribution.manifest.v2+json\","
		"\"config\":{\"mediaType\":\"application/vnd.docker.container.image.v1+json\",\"digest\":\"" D("c")
		"\",\"size\":10},\"layers\":[{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\","
		"\"digest\":\"" D("1") "\",\"size\":5},{\"mediaType\":\"application/vnd.docker.image.rootfs.diff.tar.gzip\","
		"\"digest\":\"" D("2") "\",\"size\":6}]}";
	static const char index[] = "{\"schemaVersion\":2,\"manifests\":[]}";
	static const char v1[] = "{\"schemaVersion\":1,\"fsLayers\":[]}";
	static const char bad[] =
		"{\"schemaVersion\":2,\"config\":{\"mediaType\":\"x\",\"digest\":\"sha256:zz\",\"size\":1},\"layers\":[]}";
	struct kpar_oci_manifest m;

	CHECK_OK(kpar_oci_manifest_parse(oci, sizeof oci - 1, &m));
	CHECK_INT(m.nlayers, 1);
	CHECK_INT(m.layers[0].size, 3000000000ull);
	CHECK_STR(m.config.digest, D("c"));
	kpar_oci_manifest_free(&m);
	CHECK_OK(kpar_oci_manifest_parse(docker, sizeof docker - 1, &m));
	CHECK_INT(m.nlayers, 2);
	CHECK_STR(m.media_type, "application/vnd.docker.distribution.manifest.v2+json");
	CHECK_STR(kpar_oci_layer_type(m.layers[1].media_type), "application/vnd.oci.image.layer.v1.tar+gzip");
	kpar_oci_manifest_free(&m);
	CHECK_INT(kpar_oci_manifest_parse(index, sizeof index - 1, &m), KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), "index") != NULL);
	CHECK_INT(kpar_oci_manifest_parse(v1, sizeof v1 - 1, &m), KPAR_EINVAL);
	CHECK_INT(kpar_oci_manifest_parse(bad, sizeof bad - 1, &m), KPAR_EINVAL);
	CHECK(strstr(kpar_error_last(), "sha256:zz") != NULL);
	CHECK_INT(kpar_oci_manifest_parse("<html>", 6, &m), KPAR_EINVAL);
}

KPAR_TEST(layout_and_gc)
{
	char *dir = tmpdir(), *p, *text = NULL;
	struct kpar_oci_desc a, b, found;
	struct kpar_oci_ref refs[2];
	struct kpar_buf idx = KPAR_BUF_INIT;
	struct kpar_strv keep = KPAR_STRV_INIT;
	unsigned removed = 0;
	FILE *f;

	CHECK_OK(kpar_oci_layout_init(dir));
	p = kpar_fs_join(dir, "oci-layout");
	CHECK_OK(kpar_fs_read_all(p, &text, NULL));
	CHECK_STR(text, "{\"imageLayoutVersion\":\"1.0.0\"}");
	free(text);
	free(p);
	CHECK_OK(kpar_oci_put_blob(dir, "hello", 5, "text/plain", &a));
	CHECK_STR(a.digest, "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
	CHECK(kpar_oci_has_blob(dir, a.digest, 5));
	CHECK(!kpar_oci_has_blob(dir, a.digest, 6));
	CHECK_OK(kpar_oci_put_blob(dir, "world", 5, "text/plain", &b));

	refs[0].desc = a;
	refs[0].name = "latest";
	refs[1].desc = b;
	refs[1].name = "bucket-1";
	CHECK_OK(kpar_oci_index_json(refs, 2, &idx));
	p = kpar_fs_join(dir, "index.json");
	CHECK_OK(kpar_fs_write_atomic(p, idx.data, idx.len));
	free(p);
	CHECK_OK(kpar_oci_layout_find(dir, "bucket-1", &found));
	CHECK_STR(found.digest, b.digest);
	CHECK_INT(kpar_oci_layout_find(dir, "nope", &found), KPAR_ENOTFOUND);
	CHECK(strstr(kpar_error_last(), "'nope'") != NULL);
	CHECK_INT(kpar_oci_layout_find(dir, NULL, &found), KPAR_ENOTFOUND);

	/* a stale temporary file and an unreferenced blob go; referenced stay */
	p = kpar_xasprintf("%s/blobs/sha256/.tmp-layer-abc", dir);
	f = fopen(p, "w");
	if (f)
		fclose(f);
	free(p);
	kpar_strv_push(&keep, b.digest);
	kpar_strv_sort(&keep);
	CHECK_OK(kpar_oci_gc(dir, &keep, &removed));
	CHECK_INT(removed, 2);
	CHECK(!kpar_oci_has_blob(dir, a.digest, 0));
	CHECK(kpar_oci_has_blob(dir, b.digest, 5));
	kpar_strv_free(&keep);
	kpar_buf_free(&idx);
	kpar_fs_remove_tree(dir);
	free(dir);
}

KPAR_TEST_MAIN(KPAR_CASE(digest_valid), KPAR_CASE(manifest_bytes), KPAR_CASE(config_scratch),
	       KPAR_CASE(config_on_base), KPAR_CASE(manifest_parse), KPAR_CASE(layout_and_gc))
