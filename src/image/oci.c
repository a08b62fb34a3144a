/* oci.c - OCI layout directories; config, manifest and index JSON via cJSON.
 *
 * Sizes are emitted as raw integer text rather than cJSON numbers: cJSON
 * stores doubles and picks a printf format by magnitude, and a digest over
 * JSON must not depend on that.  Member order is the order of the Add calls
 * below; it is part of the output format (changing it changes every digest).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "base/buf.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/fs.h"
#include "image/oci.h"

int kpar_oci_digest_valid(const char *digest)
{
	size_t i;

	if (!digest || strncmp(digest, "sha256:", 7) != 0 || strlen(digest) != 71)
		return 0;
	for (i = 7; i < 71; i++)
		if (!((digest[i] >= '0' && digest[i] <= '9') || (digest[i] >= 'a' && digest[i] <= 'f')))
			return 0;
	return 1;
}

char *kpar_oci_blob_dir(const char *dir)
{
	return kpar_xasprintf("%s/blobs/sha256", dir);
}

char *kpar_oci_blob_path(const char *dir, const char *digest)
{
	if (!kpar_oci_digest_valid(digest)) {
		kpar_error_set(KPAR_EINVAL, "malformed digest '%s'", digest ? digest : "");
		return NULL;
	}
	return kpar_xasprintf("%s/blobs/sha256/%s", dir, digest + 7);
}

int kpar_oci_layout_init(const char *dir)
{
	static const char layout[] = "{\"imageLayoutVersion\":\"1.0.0\"}";
	char *blobs = kpar_oci_blob_dir(dir), *path = kpar_fs_join(dir, "oci-layout");
	int rc;

	rc = kpar_fs_mkdir_p(blobs, 0755);
	if (rc == 0)
		rc = kpar_fs_write_if_changed(path, layout, sizeof layout - 1);
	free(blobs);
	free(path);
	return rc < 0 ? rc : 0;
}

int kpar_oci_has_blob(const char *dir, const char *digest, uint64_t size)
{
	char *path = kpar_oci_blob_path(dir, digest);
	struct stat st;
	int ok;

	if (!path) {
		kpar_error_clear();
		return 0;
	}
	ok = stat(path, &st) == 0 && S_ISREG(st.st_mode) && (size == 0 || (uint64_t)st.st_size == size);
	free(path);
	return ok;
}

static void set_desc(struct kpar_oci_desc *d, const char *media_type, const char *digest,
		     uint64_t size)
{
	memset(d, 0, sizeof *d);
	if (media_type)
		snprintf(d->media_type, sizeof d->media_type, "%s", media_type);
	memcpy(d->digest, digest, KPAR_DIGEST_STR);
	d->size = size;
}

int kpar_oci_put_blob(const char *dir, const void *data, size_t len, const char *media_type,
		      struct kpar_oci_desc *d)
{
	char digest[KPAR_DIGEST_STR], *path;
	int rc = 0;

	kpar_digest_str(data, len, digest);
	set_desc(d, media_type, digest, len);
	if (kpar_oci_has_blob(dir, digest, len))
		return 0;
	path = kpar_oci_blob_path(dir, digest);
	rc = kpar_fs_write_atomic(path, data, len);
	free(path);
	return rc;
}

/* ---------------------------------------------------------------- helpers */

static cJSON *size_json(uint64_t n)
{
	char num[32];

	snprintf(num, sizeof num, "%llu", (unsigned long long)n);
	return cJSON_CreateRaw(num);
}

static cJSON *desc_json(const struct kpar_oci_desc *d)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "mediaType", d->media_type);
	cJSON_AddStringToObject(o, "digest", d->digest);
	cJSON_AddItemToObject(o, "size", size_json(d->size));
	return o;
}

static int print_json(cJSON *root, struct kpar_buf *out)
{
	char *s = cJSON_PrintUnformatted(root);

	cJSON_Delete(root);
	if (!s)
		abort(); /* cJSON fails only when out of memory */
	kpar_buf_puts(out, s);
	cJSON_free(s);
	return 0;
}

static cJSON *string_array(const char *const *v, size_t n)
{
	cJSON *a = cJSON_CreateArray();
	size_t i;

	for (i = 0; i < n; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(v[i]));
	return a;
}

/* Sets key in obj, keeping its place if present. */
static void put(cJSON *obj, const char *key, cJSON *val)
{
	if (cJSON_GetObjectItemCaseSensitive(obj, key))
		cJSON_ReplaceItemInObjectCaseSensitive(obj, key, val);
	else
		cJSON_AddItemToObject(obj, key, val);
}

static void rfc3339(int64_t t, char out[32])
{
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ----------------------------------------------------------------- config */

static int has_name(const char *const *env, size_t n, const char *s, size_t klen)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strncmp(env[i], s, klen) == 0 && env[i][klen] == '=')
			return 1;
	return 0;
}

static size_t name_len(const char *s)
{
	const char *eq = strchr(s, '=');

	return eq ? (size_t)(eq - s) : strlen(s);
}

static cJSON *merge_env(const cJSON *base_env, const struct kpar_oci_config *c)
{
	cJSON *a = cJSON_CreateArray();
	const cJSON *it;
	size_t i;

	cJSON_ArrayForEach(it, base_env) {
		const char *s = cJSON_GetStringValue(it);
		if (s && !has_name(c->env, c->nenv, s, name_len(s)))
			cJSON_AddItemToArray(a, cJSON_CreateString(s));
	}
	for (i = 0; i < c->ndefault_env; i++) {
		const char *s = c->default_env[i];
		size_t k = name_len(s);
		int in_base = 0;
		cJSON_ArrayForEach(it, base_env) {
			const char *b = cJSON_GetStringValue(it);
			if (b && strncmp(b, s, k) == 0 && b[k] == '=')
				in_base = 1;
		}
		if (!in_base && !has_name(c->env, c->nenv, s, k))
			cJSON_AddItemToArray(a, cJSON_CreateString(s));
	}
	for (i = 0; i < c->nenv; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(c->env[i]));
	return a;
}

int kpar_oci_config_json(const struct kpar_oci_config *c, const char *base, size_t base_len,
			 struct kpar_buf *out)
{
	cJSON *b = NULL, *root = cJSON_CreateObject(), *cfg, *rootfs, *ids, *hist;
	const cJSON *bcfg = NULL, *bids = NULL, *bhist = NULL, *it;
	char when[32];
	size_t i;

	if (base) {
		b = cJSON_ParseWithLength(base, base_len);
		if (!cJSON_IsObject(b)) {
			cJSON_Delete(b);
			cJSON_Delete(root);
			return kpar_error_set(KPAR_EINVAL, "the base image's config is not a JSON object");
		}
		bcfg = cJSON_GetObjectItemCaseSensitive(b, "config");
		bids = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(b, "rootfs"),
							"diff_ids");
		bhist = cJSON_GetObjectItemCaseSensitive(b, "history");
		if (!cJSON_IsArray(bids)) {
			cJSON_Delete(b);
			cJSON_Delete(root);
			return kpar_error_set(KPAR_EINVAL, "the base image's config has no rootfs.diff_ids");
		}
	}
	if (c->created >= 0) {
		rfc3339(c->created, when);
		cJSON_AddStringToObject(root, "created", when);
	}
	cJSON_AddStringToObject(root, "architecture", c->architecture ? c->architecture : "amd64");
	cJSON_AddStringToObject(root, "os", c->os ? c->os : "linux");

	cfg = cJSON_IsObject(bcfg) ? cJSON_Duplicate(bcfg, 1) : cJSON_CreateObject();
	put(cfg, "Env", merge_env(cJSON_GetObjectItemCaseSensitive(cfg, "Env"), c));
	if (c->entrypoint) {
		put(cfg, "Entrypoint", string_array(c->entrypoint, c->nentrypoint));
		/* as docker does: a new entrypoint drops the base's Cmd */
		cJSON_DeleteItemFromObjectCaseSensitive(cfg, "Cmd");
		if (c->cmd)
			put(cfg, "Cmd", string_array(c->cmd, c->ncmd));
	} else if (c->cmd) {
		put(cfg, "Cmd", string_array(c->cmd, c->ncmd));
	}
	if (c->workdir)
		put(cfg, "WorkingDir", cJSON_CreateString(c->workdir));
	cJSON_AddItemToObject(root, "config", cfg);

	rootfs = cJSON_AddObjectToObject(root, "rootfs");
	cJSON_AddStringToObject(rootfs, "type", "layers");
	ids = cJSON_AddArrayToObject(rootfs, "diff_ids");
	cJSON_ArrayForEach(it, bids)
		cJSON_AddItemToArray(ids, cJSON_Duplicate(it, 1));
	for (i = 0; i < c->nlayers; i++)
		cJSON_AddItemToArray(ids, cJSON_CreateString(c->diff_ids[i]));

	hist = cJSON_AddArrayToObject(root, "history");
	cJSON_ArrayForEach(it, bhist)
		cJSON_AddItemToArray(hist, cJSON_Duplicate(it, 1));
	for (i = 0; i < c->nlayers; i++) {
		cJSON *h = cJSON_CreateObject();
		if (c->created >= 0)
			cJSON_AddStringToObject(h, "created", when);
		cJSON_AddStringToObject(h, "created_by", c->created_by ? c->created_by[i] : "kpar");
		cJSON_AddItemToArray(hist, h);
	}
	cJSON_Delete(b);
	return print_json(root, out);
}

int kpar_oci_config_diff_ids(const char *json, size_t len, struct kpar_strv *out)
{
	cJSON *root = cJSON_ParseWithLength(json, len);
	const cJSON *ids, *it;
	int rc = 0;

	ids = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "rootfs"),
					       "diff_ids");
	if (!cJSON_IsArray(ids)) {
		cJSON_Delete(root);
		return kpar_error_set(KPAR_EINVAL, "image config has no rootfs.diff_ids");
	}
	cJSON_ArrayForEach(it, ids) {
		const char *s = cJSON_GetStringValue(it);
		if (!kpar_oci_digest_valid(s)) {
			rc = kpar_error_set(KPAR_EINVAL, "image config has a malformed diff_id '%s'",
					    s ? s : "(not a string)");
			break;
		}
		kpar_strv_push(out, s);
	}
	cJSON_Delete(root);
	return rc;
}

/* --------------------------------------------------------------- manifest */

int kpar_oci_manifest_json(const struct kpar_oci_desc *config, const struct kpar_oci_desc *layers,
			   size_t nlayers, struct kpar_buf *out)
{
	cJSON *root = cJSON_CreateObject(), *a;
	size_t i;

	cJSON_AddItemToObject(root, "schemaVersion", cJSON_CreateRaw("2"));
	cJSON_AddStringToObject(root, "mediaType", "application/vnd.oci.image.manifest.v1+json");
	cJSON_AddItemToObject(root, "config", desc_json(config));
	a = cJSON_AddArrayToObject(root, "layers");
	for (i = 0; i < nlayers; i++)
		cJSON_AddItemToArray(a, desc_json(&layers[i]));
	return print_json(root, out);
}

static int parse_desc(const cJSON *o, struct kpar_oci_desc *d, const char *what)
{
	const char *mt = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "mediaType"));
	const char *dg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "digest"));
	const cJSON *sz = cJSON_GetObjectItemCaseSensitive(o, "size");

	if (!cJSON_IsObject(o) || !mt || !kpar_oci_digest_valid(dg) || !cJSON_IsNumber(sz) ||
	    sz->valuedouble < 0 || strlen(mt) >= KPAR_OCI_MT_MAX)
		return kpar_error_set(KPAR_EINVAL, "manifest has a malformed %s descriptor%s%s%s", what,
				      dg ? " ('" : "", dg ? dg : "", dg ? "')" : "");
	set_desc(d, mt, dg, (uint64_t)sz->valuedouble);
	return 0;
}

int kpar_oci_manifest_parse(const char *json, size_t len, struct kpar_oci_manifest *out)
{
	cJSON *root = cJSON_ParseWithLength(json, len);
	const cJSON *layers, *it;
	const char *mt;
	int rc = 0;
	size_t i = 0;

	memset(out, 0, sizeof *out);
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return kpar_error_set(KPAR_EINVAL, "manifest is not a JSON object");
	}
	mt = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "mediaType"));
	if (mt)
		snprintf(out->media_type, sizeof out->media_type, "%s", mt);
	if (cJSON_GetObjectItemCaseSensitive(root, "manifests")) {
		rc = kpar_error_set(KPAR_EINVAL, "expected an image manifest, got an index (%s)",
				    mt ? mt : "no mediaType");
		goto done;
	}
	it = cJSON_GetObjectItemCaseSensitive(root, "schemaVersion");
	if (!cJSON_IsNumber(it) || it->valuedouble != 2) {
		rc = kpar_error_set(KPAR_EINVAL, "unsupported manifest schemaVersion (only 2 is supported)");
		goto done;
	}
	if ((rc = parse_desc(cJSON_GetObjectItemCaseSensitive(root, "config"), &out->config,
			     "config")) < 0)
		goto done;
	layers = cJSON_GetObjectItemCaseSensitive(root, "layers");
	if (!cJSON_IsArray(layers)) {
		rc = kpar_error_set(KPAR_EINVAL, "manifest has no layers array");
		goto done;
	}
	out->nlayers = (size_t)cJSON_GetArraySize(layers);
	out->layers = kpar_xcalloc(out->nlayers ? out->nlayers : 1, sizeof *out->layers);
	cJSON_ArrayForEach(it, layers)
		if ((rc = parse_desc(it, &out->layers[i++], "layer")) < 0)
			goto done;
done:
	cJSON_Delete(root);
	if (rc < 0)
		kpar_oci_manifest_free(out);
	return rc;
}

void kpar_oci_manifest_free(struct kpar_oci_manifest *m)
{
	free(m->layers);
	m->layers = NULL;
	m->nlayers = 0;
}

const char *kpar_oci_layer_type(const char *mt)
{
	if (strcmp(mt, KPAR_MT_DOCKER_LAYER_GZIP) == 0)
		return "application/vnd.oci.image.layer.v1.tar+gzip";
	return mt;
}

/* ------------------------------------------------------------------ index */

int kpar_oci_index_json(const struct kpar_oci_ref *refs, size_t n, struct kpar_buf *out)
{
	cJSON *root = cJSON_CreateObject(), *a;
	size_t i;

	cJSON_AddItemToObject(root, "schemaVersion", cJSON_CreateRaw("2"));
	cJSON_AddStringToObject(root, "mediaType", "application/vnd.oci.image.index.v1+json");
	a = cJSON_AddArrayToObject(root, "manifests");
	for (i = 0; i < n; i++) {
		cJSON *d = desc_json(&refs[i].desc);
		if (refs[i].name) {
			cJSON *ann = cJSON_AddObjectToObject(d, "annotations");
			cJSON_AddStringToObject(ann, KPAR_OCI_REF_NAME, refs[i].name);
		}
		cJSON_AddItemToArray(a, d);
	}
	return print_json(root, out);
}

int kpar_oci_layout_find(const char *dir, const char *name, struct kpar_oci_desc *out)
{
	char *path = kpar_fs_join(dir, "index.json"), *text = NULL;
	size_t len = 0;
	cJSON *root = NULL;
	const cJSON *it, *found = NULL;
	int rc, count = 0;

	if ((rc = kpar_fs_read_all(path, &text, &len)) < 0)
		goto done;
	root = cJSON_ParseWithLength(text, len);
	if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(root, "manifests"))) {
		rc = kpar_error_set(KPAR_EINVAL, "'%s' is not an OCI index", path);
		goto done;
	}
	cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(root, "manifests")) {
		const char *n = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
			cJSON_GetObjectItemCaseSensitive(it, "annotations"), KPAR_OCI_REF_NAME));
		count++;
		if (name ? (n && strcmp(n, name) == 0) : 1)
			found = it;
	}
	if (!found || (!name && count != 1)) {
		rc = kpar_error_set(KPAR_ENOTFOUND, "'%s' has no image named '%s'", path,
				    name ? name : "(the only one)");
		goto done;
	}
	rc = parse_desc(found, out, "index");
	if (rc < 0)
		kpar_error_prefix(rc, "'%s'", path);
done:
	cJSON_Delete(root);
	free(text);
	free(path);
	return rc;
}

/* --------------------------------------------------------------------- gc */

static int in_keep(const struct kpar_strv *keep, const char *digest)
{
	size_t lo = 0, hi = keep->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(keep->v[mid], digest);
		if (c == 0)
			return 1;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

int kpar_oci_gc(const char *dir, const struct kpar_strv *keep, unsigned *removed)
{
	char *blobs = kpar_oci_blob_dir(dir);
	DIR *d = opendir(blobs);
	struct dirent *de;
	struct kpar_buf b = KPAR_BUF_INIT;
	int rc = 0;

	if (removed)
		*removed = 0;
	if (!d) {
		rc = errno == ENOENT ? 0 : kpar_error_errno(KPAR_EIO, "cannot read '%s'", blobs);
		free(blobs);
		return rc;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.' && strncmp(de->d_name, ".tmp-", 5) != 0)
			continue;
		kpar_buf_clear(&b);
		kpar_buf_printf(&b, "sha256:%s", de->d_name);
		if (de->d_name[0] != '.' && in_keep(keep, b.data))
			continue;
		kpar_buf_clear(&b);
		kpar_buf_printf(&b, "%s/%s", blobs, de->d_name);
		if (unlink(b.data) < 0 && errno != ENOENT) {
			rc = kpar_error_errno(KPAR_EIO, "cannot remove '%s'", b.data);
			break;
		}
		if (removed)
			(*removed)++;
	}
	closedir(d);
	kpar_buf_free(&b);
	free(blobs);
	return rc;
}
