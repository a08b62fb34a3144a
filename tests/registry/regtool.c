/* regtool.c - a small driver over registry.h, dockercfg.h and imageref.h for the registry tests.
 *
 *   regtool [opts] push HOST REPO LAYOUT_DIR [TAG...]   push the image an OCI layout's
 *                                                       index.json names first
 *   regtool [opts] get-manifest HOST REPO REF OUT       resolve REF (index -> linux/amd64)
 *   regtool [opts] get-blob HOST REPO DIGEST OUT
 *   regtool [opts] creds HOST                           "found user=<name> token=<0|1>" or
 *                                                       "none" (never the secret)
 *   regtool parse-ref REF                               host, repo, tag, digest, one a line
 * opts: --ca FILE --config-dir DIR --insecure --parallel N --chunk BYTES --retries N
 *       --retry-ms MS --mount-from REPO --repeat N --pause SECONDS --os OS --arch ARCH
 *       --manifest DIGEST (push that manifest of the layout instead of index.json's first)
 *       --skip-blob DIGEST (leave that blob out of the push: the manifest still names it)
 * Results go to stdout as key=value; errors to stderr as "regtool: error <code>: <message>"
 * and exit 1 (2 for usage).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "base/buf.h"
#include "base/conf.h"
#include "base/curl_load.h"
#include "base/digest.h"
#include "image/dockercfg.h"
#include "base/error.h"
#include "base/fs.h"
#include "image/imageref.h"
#include "image/registry.h"

static int fail(void)
{
	fprintf(stderr, "regtool: error %d: %s\n", kpar_error_code(), kpar_error_last());
	return 1;
}

static int usage(void)
{
	fprintf(stderr, "usage: regtool [opts] push|get-manifest|get-blob|creds|parse-ref ...\n");
	return 2;
}

static char *blob_path(const char *dir, const char *digest)
{
	return kpar_xasprintf("%s/blobs/sha256/%s", dir, digest + 7);
}

struct layout {
	char *manifest;
	size_t manifest_len;
	char *media_type;
	struct kpar_strv digests;
};

/* Reads the manifest `want` (NULL: the first of DIR/index.json) and the blobs it names. */
static int read_layout(const char *dir, const char *want, struct layout *l)
{
	char *path = kpar_xasprintf("%s/index.json", dir), *text = NULL, *mpath = NULL;
	cJSON *idx = NULL, *man = NULL, *d, *e;
	int rc;

	memset(l, 0, sizeof *l);
	rc = kpar_fs_read_all(path, &text, NULL);
	if (rc < 0)
		goto done;
	idx = cJSON_Parse(text);
	d = cJSON_GetArrayItem(cJSON_GetObjectItem(idx, "manifests"), 0);
	e = cJSON_GetObjectItem(d, "digest");
	if (!want && !cJSON_IsString(e)) {
		rc = kpar_error_set(KPAR_EINVAL, "'%s' names no manifest", path);
		goto done;
	}
	mpath = blob_path(dir, want ? want : e->valuestring);
	rc = kpar_fs_read_all(mpath, &l->manifest, &l->manifest_len);
	if (rc < 0)
		goto done;
	man = cJSON_ParseWithLength(l->manifest, l->manifest_len);
	e = cJSON_GetObjectItem(man, "mediaType");
	l->media_type = kpar_xstrdup(cJSON_IsString(e) ? e->valuestring : KPAR_MT_OCI_MANIFEST);
	e = cJSON_GetObjectItem(cJSON_GetObjectItem(man, "config"), "digest");
	if (cJSON_IsString(e))
		kpar_strv_push(&l->digests, e->valuestring);
	cJSON_ArrayForEach(d, cJSON_GetObjectItem(man, "layers")) {
		e = cJSON_GetObjectItem(d, "digest");
		if (cJSON_IsString(e))
			kpar_strv_push(&l->digests, e->valuestring);
	}
done:
	cJSON_Delete(idx);
	cJSON_Delete(man);
	free(text);
	free(path);
	free(mpath);
	return rc;
}

int main(int argc, char **argv)
{
	static struct kpar_conf conf;   /* static: o borrows its strings until exit */
	struct kpar_registry_opts o;
	struct kpar_registry *r = NULL;
	const char *mount_from = NULL, *os = NULL, *arch = NULL, *want = NULL, *skip = NULL;
	int i = 1, repeat = 1, pause_s = 0, rc = 0, k;

	/* KPAR_REGISTRY_CA, KPAR_INSECURE_REGISTRIES, KPAR_REGISTRY_DEBUG and
	 * KPAR_LIBCURL, as the kpar tool reads them */
	if (kpar_conf_load(&conf) < 0)
		return fail();
	memset(&o, 0, sizeof o);
	o.ca_file = conf.registry_ca;
	o.insecure_registries = conf.insecure_registries;
	o.debug = conf.registry_debug;
	kpar_curl_set_library(conf.libcurl);
	for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		const char *opt = argv[i];
		if (strcmp(opt, "--insecure") == 0) {
			o.insecure = 1;
			continue;
		}
		if (i + 1 >= argc)
			return usage();
		if (strcmp(opt, "--ca") == 0)
			o.ca_file = argv[++i];
		else if (strcmp(opt, "--config-dir") == 0)
			o.docker_config_dir = argv[++i];
		else if (strcmp(opt, "--parallel") == 0)
			o.max_parallel = atoi(argv[++i]);
		else if (strcmp(opt, "--chunk") == 0)
			o.chunk_size = strtoull(argv[++i], NULL, 10);
		else if (strcmp(opt, "--retries") == 0)
			o.max_retries = atoi(argv[++i]);
		else if (strcmp(opt, "--retry-ms") == 0)
			o.retry_base_ms = (unsigned)atoi(argv[++i]);
		else if (strcmp(opt, "--mount-from") == 0)
			mount_from = argv[++i];
		else if (strcmp(opt, "--repeat") == 0)
			repeat = atoi(argv[++i]);
		else if (strcmp(opt, "--pause") == 0)
			pause_s = atoi(argv[++i]);
		else if (strcmp(opt, "--os") == 0)
			os = argv[++i];
		else if (strcmp(opt, "--arch") == 0)
			arch = argv[++i];
		else if (strcmp(opt, "--manifest") == 0)
			want = argv[++i];
		else if (strcmp(opt, "--skip-blob") == 0)
			skip = argv[++i];
		else
			return usage();
	}
	if (i >= argc)
		return usage();

	if (strcmp(argv[i], "parse-ref") == 0 && i + 1 < argc) {
		struct kpar_imageref ref;
		if (kpar_imageref_parse(argv[i + 1], &ref) < 0)
			return fail();
		printf("host=%s\nrepo=%s\ntag=%s\ndigest=%s\n", ref.host, ref.repo,
		       ref.tag ? ref.tag : "", ref.digest ? ref.digest : "");
		kpar_imageref_free(&ref);
		return 0;
	}
	if (strcmp(argv[i], "creds") == 0 && i + 1 < argc) {
		struct kpar_cred c;
		rc = kpar_dockercfg_get(o.docker_config_dir, argv[i + 1], &c);
		if (rc < 0)
			return fail();
		if (rc == 0)
			printf("none\n");
		else
			printf("found user=%s token=%d\n", c.username ? c.username : "",
			       c.identity_token);
		kpar_cred_clear(&c);
		return 0;
	}
	if (i + 3 >= argc)
		return usage();
	if (kpar_registry_open(&r, argv[i + 1], argv[i + 2], &o) < 0)
		return fail();

	if (strcmp(argv[i], "push") == 0) {
		struct layout l;
		struct kpar_registry_blob *blobs;
		struct kpar_push_stats st;
		const char *dir = argv[i + 3];
		size_t b, nb = 0;

		if (read_layout(dir, want, &l) < 0) {
			kpar_registry_free(r);
			return fail();
		}
		blobs = kpar_xcalloc(l.digests.n + 1, sizeof *blobs);
		for (b = 0; b < l.digests.n; b++) {
			if (skip && strcmp(skip, l.digests.v[b]) == 0)
				continue;
			blobs[nb].digest = l.digests.v[b];
			blobs[nb].path = blob_path(dir, l.digests.v[b]);
			blobs[nb].mount_from = mount_from;
			nb++;
		}
		for (k = 0; k < repeat; k++) {
			if (k && pause_s)
				sleep((unsigned)pause_s);
			rc = kpar_registry_push(r, blobs, nb, l.manifest, l.manifest_len,
						l.media_type, (const char *const *)(argv + i + 4),
						(size_t)(argc - i - 4), &st);
			if (rc < 0)
				break;
			printf("skipped=%u uploaded=%u mounted=%u bytes=%llu digest=%s\n", st.skipped,
			       st.uploaded, st.mounted, (unsigned long long)st.bytes_sent,
			       st.manifest_digest);
		}
		for (b = 0; b < nb; b++)
			free((char *)blobs[b].path);
		free(blobs);
		free(l.manifest);
		free(l.media_type);
		kpar_strv_free(&l.digests);
	} else if (strcmp(argv[i], "get-manifest") == 0 && i + 4 < argc) {
		struct kpar_buf m = KPAR_BUF_INIT;
		char digest[KPAR_DIGEST_STR], *mt = NULL;
		rc = kpar_registry_get_manifest(r, argv[i + 3], os, arch, &m, &mt, digest);
		if (rc == 0)
			rc = kpar_fs_write_atomic(argv[i + 4], m.data ? m.data : "", m.len);
		if (rc == 0)
			printf("digest=%s\nmedia_type=%s\n", digest, mt);
		free(mt);
		kpar_buf_free(&m);
	} else if (strcmp(argv[i], "get-blob") == 0 && i + 4 < argc) {
		rc = kpar_registry_get_blob(r, argv[i + 3], argv[i + 4]);
		if (rc == 0)
			printf("ok\n");
	} else {
		kpar_registry_free(r);
		return usage();
	}
	if (rc == 0)
		printf("tokens=%u\n", kpar_registry_token_fetches(r));
	kpar_registry_free(r);
	return rc < 0 ? fail() : 0;
}
