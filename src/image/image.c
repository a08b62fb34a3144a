/* image.c - the image build (layer stack, incremental records, base cache)
 * and the push of a layout's images.  See image.h for the stack and files.
 *
 * Order of writes, which is what "nothing half-built recorded as done"
 * rests on: a layer's blob is renamed into place before its record names
 * it; config and manifest blobs before index.json; index.json before
 * `digest`.  Any failure removes `digest`, so a consumer either sees a
 * complete image or none.  Two builds of one layout are serialised by a
 * lock file, which also makes the final blob GC safe.
 */
#include "config.h"

#include <dirent.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "base/buf.h"
#include "base/digest.h"
#include "base/error.h"
#include "base/fs.h"
#include "image/image.h"
#include "image/imageref.h"
#include "image/layer.h"
#include "image/oci.h"
#include "image/registry.h"

extern char **environ;

#define IMG_ROOT "/kpar"
#define IMG_PROJECT "/kpar/project"
#define IMG_CACHE "/kpar/cache"
#define IMG_BUCKETS "/kpar/buckets"
#define IMG_PREP "/kpar/prep"
#define IMG_LIB "/kpar/lib"
#define IMG_WORKER "/kpar/bin/kpar-worker"
#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

struct own_layer {
	char *name;                    /* record name: "payload-1", "bucket-3" */
	char *created_by;
	struct kpar_oci_desc desc;
	char diff_id[KPAR_DIGEST_STR];
};

struct base {
	int none;
	char *canonical, *host, *repo;
	char *config;                  /* the base's config JSON */
	size_t config_len;
	struct kpar_oci_desc config_desc;
	struct kpar_oci_desc *layers;
	size_t nlayers;
};

struct build {
	const struct kpar_image_opts *o;
	char *kdir;                    /* layout/kpar */
	char *blob_dir;
	struct base base;
	struct own_layer *l;
	size_t nl, capl;
	struct kpar_strv entry_prefix; /* loader arguments before the worker path */
	struct kpar_image_result *res;
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *kpath(const struct build *b, const char *rel)
{
	return kpar_fs_join(b->kdir, rel);
}

int kpar_image_read_line(const char *layout, const char *name, char **out)
{
	char *path = kpar_fs_join(layout, name);
	size_t len = 0;
	int rc = kpar_fs_read_all(path, out, &len);

	free(path);
	if (rc < 0)
		return rc;
	while (len > 0 && ((*out)[len - 1] == '\n' || (*out)[len - 1] == '\r'))
		(*out)[--len] = '\0';
	return 0;
}

/* ------------------------------------------------------------ descriptors */

static cJSON *desc_to_json(const struct kpar_oci_desc *d)
{
	cJSON *o = cJSON_CreateObject();

	cJSON_AddStringToObject(o, "mediaType", d->media_type);
	cJSON_AddStringToObject(o, "digest", d->digest);
	cJSON_AddNumberToObject(o, "size", (double)d->size);
	return o;
}

static int desc_from_json(const cJSON *o, struct kpar_oci_desc *d)
{
	const char *mt = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "mediaType"));
	const char *dg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "digest"));
	const cJSON *sz = cJSON_GetObjectItemCaseSensitive(o, "size");

	if (!mt || strlen(mt) >= sizeof d->media_type || !kpar_oci_digest_valid(dg) ||
	    !cJSON_IsNumber(sz) || sz->valuedouble < 0)
		return -1;
	memset(d, 0, sizeof *d);
	memcpy(d->media_type, mt, strlen(mt) + 1);
	memcpy(d->digest, dg, KPAR_DIGEST_STR);
	d->size = (uint64_t)sz->valuedouble;
	return 0;
}

static int write_json(const char *path, cJSON *root)
{
	char *s = cJSON_PrintUnformatted(root);
	int rc;

	cJSON_Delete(root);
	if (!s)
		abort();
	rc = kpar_fs_write_atomic(path, s, strlen(s));
	cJSON_free(s);
	return rc;
}

/* Parses a bookkeeping file; NULL when missing or unreadable (it is then
 * simply rebuilt: these files are caches, never the truth). */
static cJSON *read_json(const char *path)
{
	char *text = NULL;
	size_t len = 0;
	cJSON *j;

	if (kpar_fs_read_all(path, &text, &len) < 0) {
		kpar_error_clear();
		return NULL;
	}
	j = cJSON_ParseWithLength(text, len);
	free(text);
	return j;
}

/* ------------------------------------------------------------------ base */

static void base_free(struct base *b)
{
	free(b->canonical);
	free(b->host);
	free(b->repo);
	free(b->config);
	free(b->layers);
	memset(b, 0, sizeof *b);
}

/* Loads the cached resolution of the base if it is for this reference and
 * every blob is still there.  1 = usable, 0 = not. */
static int base_load(struct build *b, const char *canonical)
{
	char *path = kpath(b, "base.json"), *cfg_path = NULL;
	cJSON *j = read_json(path);
	const cJSON *it, *layers;
	struct base *B = &b->base;
	size_t i = 0;
	int ok = 0;

	free(path);
	if (!j)
		return 0;
	{
		const char *was = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "ref"));
		if (!was || strcmp(was, canonical) != 0)
			goto done;
	}
	layers = cJSON_GetObjectItemCaseSensitive(j, "layers");
	if (!cJSON_IsArray(layers) ||
	    desc_from_json(cJSON_GetObjectItemCaseSensitive(j, "config"), &B->config_desc) < 0)
		goto done;
	B->nlayers = (size_t)cJSON_GetArraySize(layers);
	B->layers = kpar_xcalloc(B->nlayers + 1, sizeof *B->layers);
	cJSON_ArrayForEach(it, layers) {
		if (desc_from_json(it, &B->layers[i]) < 0 ||
		    !kpar_oci_has_blob(b->o->layout, B->layers[i].digest, B->layers[i].size))
			goto done;
		i++;
	}
	cfg_path = kpar_oci_blob_path(b->o->layout, B->config_desc.digest);
	if (!cfg_path || kpar_fs_read_all(cfg_path, &B->config, &B->config_len) < 0 ||
	    B->config_len != B->config_desc.size) {
		kpar_error_clear();
		goto done;
	}
	ok = 1;
done:
	if (!ok) {
		free(B->layers);
		B->layers = NULL;
		B->nlayers = 0;
		free(B->config);
		B->config = NULL;
	}
	free(cfg_path);
	cJSON_Delete(j);
	return ok;
}

static int fetch_blob(struct build *b, struct kpar_registry *r, const struct kpar_oci_desc *d)
{
	char *path;
	int rc = 0;

	if (kpar_oci_has_blob(b->o->layout, d->digest, d->size))
		return 0;
	path = kpar_oci_blob_path(b->o->layout, d->digest);
	if (!path)
		return kpar_error_code();
	if (b->o->verbose)
		fprintf(stderr, "kpar image: pulling %s (%llu bytes)\n", d->digest,
			(unsigned long long)d->size);
	rc = kpar_registry_get_blob(r, d->digest, path);
	free(path);
	return rc;
}

static int base_pull(struct build *b, const struct kpar_imageref *ref)
{
	struct base *B = &b->base;
	struct kpar_registry *r = NULL;
	struct kpar_buf man = KPAR_BUF_INIT;
	struct kpar_oci_manifest m = { 0 };
	char digest[KPAR_DIGEST_STR], *mt = NULL, *path = NULL;
	cJSON *j, *arr;
	size_t i;
	int rc;

	if ((rc = kpar_registry_open(&r, ref->host, ref->repo, b->o->registry)) < 0)
		goto done;
	if ((rc = kpar_registry_get_manifest(r, kpar_imageref_target(ref), "linux", "amd64", &man,
					     &mt, digest)) < 0)
		goto done;
	if ((rc = kpar_oci_manifest_parse(man.data, man.len, &m)) < 0)
		goto done;
	if ((rc = fetch_blob(b, r, &m.config)) < 0)
		goto done;
	for (i = 0; i < m.nlayers; i++)
		if ((rc = fetch_blob(b, r, &m.layers[i])) < 0)
			goto done;
	B->config_desc = m.config;
	B->nlayers = m.nlayers;
	B->layers = kpar_xcalloc(m.nlayers + 1, sizeof *B->layers);
	for (i = 0; i < m.nlayers; i++) {
		const char *t = kpar_oci_layer_type(m.layers[i].media_type);
		B->layers[i] = m.layers[i];
		memmove(B->layers[i].media_type, t, strlen(t) + 1);
	}
	path = kpar_oci_blob_path(b->o->layout, m.config.digest);
	if ((rc = kpar_fs_read_all(path, &B->config, &B->config_len)) < 0)
		goto done;

	j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "ref", B->canonical);
	cJSON_AddStringToObject(j, "host", ref->host);
	cJSON_AddStringToObject(j, "repo", ref->repo);
	cJSON_AddStringToObject(j, "manifest", digest);
	cJSON_AddItemToObject(j, "config", desc_to_json(&B->config_desc));
	arr = cJSON_AddArrayToObject(j, "layers");
	for (i = 0; i < B->nlayers; i++)
		cJSON_AddItemToArray(arr, desc_to_json(&B->layers[i]));
	free(path);
	path = kpath(b, "base.json");
	rc = write_json(path, j);
done:
	kpar_oci_manifest_free(&m);
	kpar_registry_free(r);
	kpar_buf_free(&man);
	free(mt);
	free(path);
	return rc;
}

static int base_resolve(struct build *b)
{
	const char *s = b->o->base;
	struct kpar_imageref ref = { 0 };
	int rc;

	if (!s || !*s || strcmp(s, "scratch") == 0) {
		char *path = kpath(b, "base.json");
		b->base.none = 1;
		unlink(path);
		free(path);
		return 0;
	}
	if ((rc = kpar_imageref_parse(s, &ref)) < 0)
		return kpar_error_prefix(rc, "base image");
	b->base.canonical = kpar_imageref_format(&ref);
	b->base.host = kpar_xstrdup(ref.host);
	b->base.repo = kpar_xstrdup(ref.repo);
	/* a tag is resolved once and then kept until --pull, so a no-op
	 * rebuild needs no network; a digest reference never changes */
	if ((b->o->pull && !ref.digest) || !base_load(b, b->base.canonical)) {
		if (b->o->verbose)
			fprintf(stderr, "kpar image: resolving base image %s\n", b->base.canonical);
		rc = base_pull(b, &ref);
		if (rc < 0)
			kpar_error_prefix(rc, "base image '%s'", s);
	}
	kpar_imageref_free(&ref);
	return rc;
}

/* ----------------------------------------------------------------- layers */

/* 1 when the record at path is for key and its blob is present. */
static int record_hit(const struct build *b, const char *path, const char *key,
		      struct own_layer *ol)
{
	cJSON *j = read_json(path);
	const char *k, *diff;
	int hit = 0;

	if (!j)
		return 0;
	k = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "key"));
	diff = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "diff_id"));
	if (k && strcmp(k, key) == 0 && kpar_oci_digest_valid(diff) &&
	    desc_from_json(cJSON_GetObjectItemCaseSensitive(j, "blob"), &ol->desc) == 0 &&
	    kpar_oci_has_blob(b->o->layout, ol->desc.digest, ol->desc.size)) {
		memcpy(ol->diff_id, diff, KPAR_DIGEST_STR);
		hit = 1;
	}
	cJSON_Delete(j);
	return hit;
}

static int do_layer(struct build *b, const char *name, struct kpar_layer *l,
		    const char *created_by)
{
	const struct kpar_image_opts *o = b->o;
	struct own_layer *ol;
	char key[KPAR_DIGEST_STR], *rec_name = kpar_xasprintf("layers/%s.json", name);
	char *rec = kpath(b, rec_name);
	int rc = 0;

	free(rec_name);
	if (b->nl == b->capl) {
		b->capl = b->capl ? 2 * b->capl : 8;
		b->l = kpar_xrealloc(b->l, b->capl * sizeof *b->l);
	}
	ol = &b->l[b->nl];
	memset(ol, 0, sizeof *ol);
	kpar_layer_key(l, &o->comp, o->epoch, key);
	if (record_hit(b, rec, key, ol)) {
		b->res->reused++;
		if (o->verbose)
			fprintf(stderr, "kpar image: layer %-10s unchanged  %s\n", name, ol->desc.digest);
	} else {
		struct kpar_layer_result r;
		double t0 = now();
		cJSON *j;

		rc = kpar_layer_write(l, &o->comp, o->epoch, b->blob_dir, &r);
		if (rc < 0) {
			kpar_error_prefix(rc, "layer %s", name);
			goto done;
		}
		memset(&ol->desc, 0, sizeof ol->desc);
		snprintf(ol->desc.media_type, sizeof ol->desc.media_type, "%s", r.media_type);
		memcpy(ol->desc.digest, r.digest, KPAR_DIGEST_STR);
		ol->desc.size = r.size;
		memcpy(ol->diff_id, r.diff_id, KPAR_DIGEST_STR);
		j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "key", key);
		cJSON_AddStringToObject(j, "diff_id", r.diff_id);
		cJSON_AddItemToObject(j, "blob", desc_to_json(&ol->desc));
		cJSON_AddNumberToObject(j, "entries", (double)kpar_layer_entries(l));
		cJSON_AddNumberToObject(j, "tar_size", (double)r.tar_size);
		if ((rc = write_json(rec, j)) < 0)
			goto done;
		b->res->built++;
		b->res->bytes_built += r.tar_size;
		if (o->verbose)
			fprintf(stderr, "kpar image: layer %-10s built      %s (%zu entries, %llu -> %llu bytes, %.2f s)\n",
				name, r.digest, kpar_layer_entries(l), (unsigned long long)r.tar_size,
				(unsigned long long)r.size, now() - t0);
	}
	ol->name = kpar_xstrdup(name);
	ol->created_by = kpar_xstrdup(created_by);
	b->nl++;
	b->res->layers++;
done:
	free(rec);
	return rc;
}

/* Cleans a payload path into "a/b" relative to the root ("" = the root
 * itself); refuses absolute paths and paths leaving the root. */
static int clean_rel(const char *p, struct kpar_buf *out)
{
	const char *s = p;

	kpar_buf_clear(out);
	kpar_buf_puts(out, "");
	if (!*p || *p == '/')
		return kpar_error_set(KPAR_EINVAL, "payload path '%s' must be relative to the project root", p);
	while (*s) {
		const char *e = strchr(s, '/');
		size_t n = e ? (size_t)(e - s) : strlen(s);

		if (n == 2 && s[0] == '.' && s[1] == '.')
			return kpar_error_set(KPAR_EINVAL, "payload path '%s' leaves the project root", p);
		if (n > 0 && !(n == 1 && s[0] == '.')) {
			if (out->len)
				kpar_buf_putc(out, '/');
			kpar_buf_add(out, s, n);
		}
		s += n;
		while (*s == '/')
			s++;
	}
	return 0;
}

/* A payload directory must not contain the layout: the image would pack
 * itself (and the state database with it). */
static int check_not_layout(const struct build *b, const char *src, const char *given)
{
	char rs[PATH_MAX], rl[PATH_MAX];
	size_t n;

	if (!realpath(src, rs) || !realpath(b->o->layout, rl))
		return 0; /* a missing path is reported by the layer with its name */
	n = strlen(rs);
	if (strncmp(rl, rs, n) == 0 && (rl[n] == '/' || rl[n] == '\0' || strcmp(rs, "/") == 0))
		return kpar_error_set(KPAR_EINVAL,
				      "payload '%s' contains the image directory '%s': list the build "
				      "outputs and tests to ship instead", given, b->o->layout);
	return 0;
}

static int payload_layers(struct build *b)
{
	const struct kpar_image_opts *o = b->o;
	const char *root = o->root && *o->root ? o->root : ".";
	struct kpar_layer *l = NULL;
	struct kpar_buf rel = KPAR_BUF_INIT, by = KPAR_BUF_INIT;
	int rc = 0, group = 0;
	size_t i = 0;

	while (i <= o->npayload && rc == 0) {
		if (i == o->npayload || strcmp(o->payload[i], "+") == 0) {
			if (l && kpar_layer_entries(l) > 0) {
				char name[32];
				snprintf(name, sizeof name, "payload-%d", ++group);
				rc = do_layer(b, name, l, by.data);
			}
			kpar_layer_free(l);
			l = NULL;
			kpar_buf_clear(&by);
			i++;
			continue;
		}
		if (!l) {
			l = kpar_layer_new(IMG_PROJECT);
			kpar_buf_puts(&by, "kpar payload:");
		}
		if ((rc = clean_rel(o->payload[i], &rel)) == 0) {
			char *src = rel.len ? kpar_fs_join(root, rel.data) : kpar_xstrdup(root);
			char *dest = rel.len ? kpar_xasprintf(IMG_PROJECT "/%s", rel.data)
					     : kpar_xstrdup(IMG_PROJECT);
			rc = check_not_layout(b, src, o->payload[i]);
			if (rc == 0)
				rc = kpar_layer_add(l, src, dest);
			if (rc < 0)
				kpar_error_prefix(rc, "payload");
			kpar_buf_printf(&by, " %s", rel.len ? rel.data : ".");
			free(src);
			free(dest);
		}
		i++;
	}
	kpar_layer_free(l);
	kpar_buf_free(&rel);
	kpar_buf_free(&by);
	return rc;
}

/* ------------------------------------------------------------- the worker */

static int read_at(int fd, void *buf, size_t len, off_t off)
{
	ssize_t n = pread(fd, buf, len, off);

	return n == (ssize_t)len ? 0 : -1;
}

/* Runs bin with LD_TRACE_LOADED_OBJECTS=1: its loader then lists what it
 * would load and exits, without running the program (what ldd does). */
static int trace_libs(const char *bin, struct kpar_buf *out)
{
	char *const argv[] = { (char *)bin, NULL };
	char *const envp[] = { "LD_TRACE_LOADED_OBJECTS=1", NULL };
	posix_spawn_file_actions_t fa;
	int p[2], status = 0, rc = 0;
	pid_t pid;
	ssize_t n;

	if (pipe2(p, O_CLOEXEC) < 0)
		return kpar_error_errno(KPAR_EIO, "pipe");
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	rc = posix_spawn(&pid, bin, &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (rc != 0) {
		close(p[0]);
		errno = rc;
		return kpar_error_errno(KPAR_EIO, "cannot run worker '%s' to list its libraries", bin);
	}
	for (;;) {
		kpar_buf_grow(out, 4096);
		n = read(p[0], out->data + out->len, out->cap - out->len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		out->len += (size_t)n;
		out->data[out->len] = '\0';
	}
	close(p[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return kpar_error_set(KPAR_EINVAL, "the loader could not list the libraries of worker '%s'",
				      bin);
	return 0;
}

int kpar_image_worker_deps(const char *bin, char **interp, struct kpar_strv *libs)
{
	int fd = open(bin, O_RDONLY | O_CLOEXEC);
	Elf64_Ehdr eh;
	struct kpar_buf out = KPAR_BUF_INIT;
	char *line, *next;
	int rc = 0, i;

	*interp = NULL;
	if (fd < 0)
		return kpar_error_errno(errno == ENOENT ? KPAR_ENOTFOUND : KPAR_EIO,
					"cannot open worker '%s'", bin);
	if (read_at(fd, &eh, sizeof eh, 0) < 0 || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
	    eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_machine != EM_X86_64 ||
	    (eh.e_type != ET_EXEC && eh.e_type != ET_DYN) || eh.e_phentsize != sizeof(Elf64_Phdr)) {
		close(fd);
		return kpar_error_set(KPAR_EINVAL, "worker '%s' is not an x86-64 ELF executable "
				      "(the image is linux/amd64)", bin);
	}
	for (i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		if (read_at(fd, &ph, sizeof ph, (off_t)(eh.e_phoff + (uint64_t)i * sizeof ph)) < 0) {
			rc = kpar_error_set(KPAR_EINVAL, "worker '%s': truncated ELF file", bin);
			break;
		}
		if (ph.p_type == PT_INTERP) {
			char *s;
			if (ph.p_filesz == 0 || ph.p_filesz > 4096) {
				rc = kpar_error_set(KPAR_EINVAL, "worker '%s': bad ELF interpreter", bin);
				break;
			}
			s = kpar_xcalloc(1, ph.p_filesz + 1);
			if (read_at(fd, s, ph.p_filesz, (off_t)ph.p_offset) < 0) {
				free(s);
				rc = kpar_error_set(KPAR_EINVAL, "worker '%s': truncated ELF file", bin);
				break;
			}
			*interp = s;
		}
	}
	close(fd);
	if (rc < 0 || !*interp)
		return rc;
	if ((rc = trace_libs(bin, &out)) < 0)
		goto done;
	for (line = out.data; line; line = next) {
		char *arrow, *path, *paren;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		while (*line == ' ' || *line == '\t')
			line++;
		arrow = strstr(line, " => ");
		if (!arrow)
			continue; /* the vdso, or the loader itself */
		*arrow = '\0';
		path = arrow + 4;
		if (strncmp(path, "not found", 9) == 0) {
			rc = kpar_error_set(KPAR_EINVAL, "worker '%s' needs '%s', which the loader does not find",
					    bin, line);
			goto done;
		}
		paren = strstr(path, " (0x");
		if (paren)
			*paren = '\0';
		if (*path != '/')
			continue;
		{
			char *entry = kpar_xasprintf("%s\t%s", line, path);
			kpar_strv_push(libs, entry);
			free(entry);
		}
	}
	kpar_strv_sort(libs);
	kpar_strv_uniq(libs);
done:
	kpar_buf_free(&out);
	if (rc < 0) {
		free(*interp);
		*interp = NULL;
	}
	return rc;
}

/* The worker's dependencies, remembered in kpar/worker-deps.json for as
 * long as the executable (and the library search path) stays the same:
 * asking its loader means starting a process, which a no-op rebuild should
 * not pay.  The libraries themselves are stat'ed with the layer as usual. */
static int worker_deps_cached(const struct build *b, const char *bin, char **interp,
			      struct kpar_strv *libs)
{
	char *path = kpath(b, "worker-deps.json"), *key;
	const char *llp = getenv("LD_LIBRARY_PATH");
	struct stat st;
	cJSON *j;
	int rc;

	if (stat(bin, &st) < 0) {
		rc = kpar_error_errno(errno == ENOENT ? KPAR_ENOTFOUND : KPAR_EIO,
				      "cannot open worker '%s'", bin);
		free(path);
		return rc;
	}
	key = kpar_xasprintf("%llu %lld.%09ld %lld.%09ld %llu %s",
		 (unsigned long long)st.st_size, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec,
		 (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec, (unsigned long long)st.st_ino,
		 llp ? llp : "");
	j = read_json(path);
	if (j) {
		const char *k = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "key"));
		const char *w = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "worker"));
		const cJSON *it, *arr = cJSON_GetObjectItemCaseSensitive(j, "libs");
		if (k && w && strcmp(k, key) == 0 && strcmp(w, bin) == 0 && cJSON_IsArray(arr)) {
			const char *in = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "interp"));
			*interp = in ? kpar_xstrdup(in) : NULL;
			cJSON_ArrayForEach(it, arr)
				if (cJSON_GetStringValue(it))
					kpar_strv_push(libs, cJSON_GetStringValue(it));
			cJSON_Delete(j);
			free(path);
			free(key);
			return 0;
		}
		cJSON_Delete(j);
	}
	rc = kpar_image_worker_deps(bin, interp, libs);
	if (rc == 0) {
		size_t i;
		cJSON *arr;
		j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "worker", bin);
		cJSON_AddStringToObject(j, "key", key);
		if (*interp)
			cJSON_AddStringToObject(j, "interp", *interp);
		arr = cJSON_AddArrayToObject(j, "libs");
		for (i = 0; i < libs->n; i++)
			cJSON_AddItemToArray(arr, cJSON_CreateString(libs->v[i]));
		rc = write_json(path, j);
	}
	free(path);
	free(key);
	return rc;
}

static int worker_layer(struct build *b)
{
	const char *bin = b->o->worker;
	struct kpar_layer *l = kpar_layer_new(IMG_ROOT);
	struct kpar_strv libs = KPAR_STRV_INIT;
	char *interp = NULL;
	size_t i;
	int rc;

	if (!bin || !*bin)
		return kpar_error_set(KPAR_EINVAL, "no worker executable given");
	if ((rc = worker_deps_cached(b, bin, &interp, &libs)) < 0)
		goto done;
	if ((rc = kpar_layer_add_file(l, bin, IMG_WORKER)) < 0)
		goto done;
	/* the worker makes its private directory under /tmp, which scratch lacks */
	if (b->base.none && (rc = kpar_layer_add_dir(l, "/tmp", 1)) < 0)
		goto done;
	if (interp) {
		const char *base = strrchr(interp, '/');
		char *dest = kpar_xasprintf(IMG_LIB "/%s", base ? base + 1 : interp);

		/* a dynamic worker brings its own loader and libraries and is
		 * started through that loader, so it runs on any base (scratch
		 * included) and never mixes with the base's libc */
		rc = kpar_layer_add_file(l, interp, dest);
		kpar_strv_push(&b->entry_prefix, dest);
		kpar_strv_push(&b->entry_prefix, "--inhibit-cache");
		kpar_strv_push(&b->entry_prefix, "--library-path");
		kpar_strv_push(&b->entry_prefix, IMG_LIB);
		free(dest);
		for (i = 0; i < libs.n && rc == 0; i++) {
			char *tab = strchr(libs.v[i], '\t');
			*tab = '\0';
			dest = kpar_xasprintf(IMG_LIB "/%s", libs.v[i]);
			rc = kpar_layer_add_file(l, tab + 1, dest);
			free(dest);
		}
	}
	if (rc == 0)
		rc = do_layer(b, "worker", l, interp ? "kpar worker (with its libraries)" : "kpar worker");
done:
	if (rc < 0)
		kpar_error_prefix(rc, "worker");
	free(interp);
	kpar_strv_free(&libs);
	kpar_layer_free(l);
	return rc;
}

/* -------------------------------------------------------------- the image */

/* Bucket numbers of the test-group-N files in dir, ascending. */
static int list_buckets(const char *dir, long **out, size_t *n)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t cap = 0;

	*out = NULL;
	*n = 0;
	if (!d)
		return kpar_error_errno(errno == ENOENT ? KPAR_ENOTFOUND : KPAR_EIO,
					"cannot read bucket directory '%s'", dir);
	while ((de = readdir(d)) != NULL) {
		char *end;
		long v;
		if (strncmp(de->d_name, "test-group-", 11) != 0)
			continue;
		errno = 0;
		v = strtol(de->d_name + 11, &end, 10);
		if (errno || *end || end == de->d_name + 11 || v < 1)
			continue;
		if (*n == cap) {
			cap = cap ? 2 * cap : 64;
			*out = kpar_xrealloc(*out, cap * sizeof **out);
		}
		(*out)[(*n)++] = v;
	}
	closedir(d);
	for (size_t i = 1; i < *n; i++)
		for (size_t j = i; j > 0 && (*out)[j - 1] > (*out)[j]; j--) {
			long t = (*out)[j];
			(*out)[j] = (*out)[j - 1];
			(*out)[j - 1] = t;
		}
	return 0;
}

/* Writes config and manifest of one image made of the base, the own layers
 * selected by use[] and the extra entrypoint arguments. */
static int write_image(struct build *b, const unsigned char *use, const char *const *extra,
		       size_t nextra, int has_cache, struct kpar_oci_desc *manifest)
{
	const struct kpar_image_opts *o = b->o;
	struct kpar_strv ep = KPAR_STRV_INIT, env = KPAR_STRV_INIT;
	const char **ids = kpar_xcalloc(b->nl + 1, sizeof *ids), **by = kpar_xcalloc(b->nl + 1, sizeof *by);
	struct kpar_oci_desc *layers = kpar_xcalloc(b->base.nlayers + b->nl + 1, sizeof *layers);
	static const char *const defenv[] = { DEFAULT_PATH };
	struct kpar_oci_config c;
	struct kpar_buf cfg = KPAR_BUF_INIT, man = KPAR_BUF_INIT;
	struct kpar_oci_desc cfg_desc;
	size_t i, n = 0, nl = 0;
	int rc;

	for (i = 0; i < b->entry_prefix.n; i++)
		kpar_strv_push(&ep, b->entry_prefix.v[i]);
	kpar_strv_push(&ep, IMG_WORKER);
	kpar_strv_push(&ep, "worker");
	kpar_strv_push(&ep, "--buckets-dir");
	kpar_strv_push(&ep, IMG_BUCKETS);
	kpar_strv_push(&ep, "--root");
	kpar_strv_push(&ep, IMG_PROJECT);
	for (i = 0; i < nextra; i++)
		kpar_strv_push(&ep, extra[i]);
	if (has_cache)
		kpar_strv_push(&env, "KPAR_CACHE_DIR=" IMG_CACHE);
	for (i = 0; i < o->nenv; i++)
		kpar_strv_push(&env, o->env[i]);

	for (i = 0; i < b->base.nlayers; i++)
		layers[nl++] = b->base.layers[i];
	for (i = 0; i < b->nl; i++) {
		if (!use[i])
			continue;
		ids[n] = b->l[i].diff_id;
		by[n++] = b->l[i].created_by;
		layers[nl++] = b->l[i].desc;
	}
	memset(&c, 0, sizeof c);
	c.created = o->epoch;
	c.env = (const char *const *)env.v;
	c.nenv = env.n;
	c.default_env = defenv;
	c.ndefault_env = 1;
	c.entrypoint = (const char *const *)ep.v;
	c.nentrypoint = ep.n;
	c.workdir = IMG_PROJECT;
	c.diff_ids = ids;
	c.created_by = by;
	c.nlayers = n;
	rc = kpar_oci_config_json(&c, b->base.none ? NULL : b->base.config,
				  b->base.none ? 0 : b->base.config_len, &cfg);
	if (rc == 0)
		rc = kpar_oci_put_blob(o->layout, cfg.data, cfg.len, KPAR_MT_OCI_CONFIG, &cfg_desc);
	if (rc == 0)
		rc = kpar_oci_manifest_json(&cfg_desc, layers, nl, &man);
	if (rc == 0)
		rc = kpar_oci_put_blob(o->layout, man.data, man.len, KPAR_MT_OCI_MANIFEST, manifest);
	kpar_strv_free(&ep);
	kpar_strv_free(&env);
	kpar_buf_free(&cfg);
	kpar_buf_free(&man);
	free(ids);
	free(by);
	free(layers);
	return rc;
}

static void keep_manifest(const struct build *b, const struct kpar_oci_desc *m, struct kpar_strv *keep)
{
	char *path = kpar_oci_blob_path(b->o->layout, m->digest), *text = NULL;
	size_t len = 0, i;
	struct kpar_oci_manifest man;

	kpar_strv_push(keep, m->digest);
	if (path && kpar_fs_read_all(path, &text, &len) == 0 &&
	    kpar_oci_manifest_parse(text, len, &man) == 0) {
		kpar_strv_push(keep, man.config.digest);
		for (i = 0; i < man.nlayers; i++)
			kpar_strv_push(keep, man.layers[i].digest);
		kpar_oci_manifest_free(&man);
	}
	free(text);
	free(path);
}

/* Removes the records of layers this build no longer has (a dropped
 * payload group, a bucket that went away). */
static void prune_records(const struct build *b)
{
	char *dir = kpath(b, "layers");
	DIR *d = opendir(dir);
	struct dirent *de;

	if (d) {
		while ((de = readdir(d)) != NULL) {
			size_t i, n = strlen(de->d_name);
			int used = de->d_name[0] == '.';
			for (i = 0; i < b->nl && !used; i++)
				used = n == strlen(b->l[i].name) + 5 &&
				       strncmp(de->d_name, b->l[i].name, n - 5) == 0 &&
				       strcmp(de->d_name + n - 5, ".json") == 0;
			if (!used) {
				char *p = kpar_fs_join(dir, de->d_name);
				unlink(p);
				free(p);
			}
		}
		closedir(d);
	}
	free(dir);
}

static void drop_outputs(const char *layout)
{
	static const char *const names[] = { "digest", "bucket-digests", "ref", "bucket-refs",
					     "kpar/pushed" };
	size_t i;

	for (i = 0; i < sizeof names / sizeof names[0]; i++) {
		char *p = kpar_fs_join(layout, names[i]);
		unlink(p);
		free(p);
	}
}

static int lock_layout(const char *kdir, int *fd_out)
{
	char *path = kpar_fs_join(kdir, "lock");
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	int rc = 0;

	if (fd < 0)
		rc = kpar_error_errno(KPAR_EIO, "cannot open '%s'", path);
	else if (flock(fd, LOCK_EX) < 0)
		rc = kpar_error_errno(KPAR_EIO, "cannot lock '%s'", path);
	if (rc < 0 && fd >= 0) {
		close(fd);
		fd = -1;
	}
	*fd_out = fd;
	free(path);
	return rc;
}

int kpar_image_build(const struct kpar_image_opts *o, struct kpar_image_result *out)
{
	struct build b;
	struct kpar_strv keep = KPAR_STRV_INIT;
	struct kpar_oci_ref *refs = NULL;
	struct kpar_buf idx = KPAR_BUF_INIT, bd = KPAR_BUF_INIT;
	long *buckets = NULL;
	size_t nbuckets = 0, nrefs = 0, i, j, ncommon;
	unsigned char *use = NULL;
	char *old_digest = NULL, *path = NULL, **names = NULL;
	int rc, lockfd = -1, has_cache = 0;
	ssize_t buckets_layer = -1;

	memset(out, 0, sizeof *out);
	memset(&b, 0, sizeof b);
	b.o = o;
	b.res = out;
	if (!o->layout || !*o->layout)
		return kpar_error_set(KPAR_EINVAL, "no image layout directory given");
	b.kdir = kpar_fs_join(o->layout, "kpar");
	b.blob_dir = kpar_oci_blob_dir(o->layout);
	path = kpar_fs_join(b.kdir, "layers");
	if ((rc = kpar_oci_layout_init(o->layout)) < 0 || (rc = kpar_fs_mkdir_p(path, 0755)) < 0)
		goto done;
	if ((rc = lock_layout(b.kdir, &lockfd)) < 0)
		goto done;
	if (kpar_image_read_line(o->layout, "digest", &old_digest) < 0)
		kpar_error_clear();

	if ((rc = base_resolve(&b)) < 0)
		goto done;
	if (o->cache_dir && *o->cache_dir) {
		struct kpar_layer *l = kpar_layer_new(IMG_CACHE);
		rc = kpar_layer_add(l, o->cache_dir, IMG_CACHE);
		if (rc == 0)
			rc = do_layer(&b, "cache", l, "kpar artifact cache");
		else
			kpar_error_prefix(rc, "artifact cache layer");
		kpar_layer_free(l);
		if (rc < 0)
			goto done;
		has_cache = 1;
	}
	if ((rc = payload_layers(&b)) < 0)
		goto done;
	if ((rc = worker_layer(&b)) < 0)
		goto done;
	if (o->nprep) {
		struct kpar_layer *l = kpar_layer_new(IMG_PREP);
		for (i = 0; i < o->nprep && rc == 0; i++) {
			const char *base = strrchr(o->prep[i], '/');
			char *dest = kpar_xasprintf(IMG_PREP "/%s", base ? base + 1 : o->prep[i]);
			rc = kpar_layer_add(l, o->prep[i], dest);
			free(dest);
		}
		if (rc == 0)
			rc = do_layer(&b, "prep", l, "kpar prep artifacts");
		else
			kpar_error_prefix(rc, "prep");
		kpar_layer_free(l);
		if (rc < 0)
			goto done;
	}
	ncommon = b.nl;
	if (o->buckets_dir && *o->buckets_dir) {
		struct kpar_layer *l = kpar_layer_new(IMG_BUCKETS);
		rc = kpar_layer_add(l, o->buckets_dir, IMG_BUCKETS);
		if (rc == 0) {
			buckets_layer = (ssize_t)b.nl;
			rc = do_layer(&b, "buckets", l, "kpar bucket files");
		} else {
			kpar_error_prefix(rc, "buckets");
		}
		kpar_layer_free(l);
		if (rc < 0)
			goto done;
		if (o->per_bucket && (rc = list_buckets(o->buckets_dir, &buckets, &nbuckets)) < 0)
			goto done;
	} else if (o->per_bucket) {
		rc = kpar_error_set(KPAR_EINVAL, "one image per bucket needs the bucket directory");
		goto done;
	}
	for (i = 0; i < nbuckets; i++) {
		struct kpar_layer *l = kpar_layer_new(IMG_BUCKETS);
		char *src = kpar_xasprintf("%s/test-group-%ld", o->buckets_dir, buckets[i]);
		char *dest = kpar_xasprintf(IMG_BUCKETS "/test-group-%ld", buckets[i]);
		char name[48];

		snprintf(name, sizeof name, "bucket-%ld", buckets[i]);
		rc = kpar_layer_add(l, src, dest);
		if (rc == 0)
			rc = do_layer(&b, name, l, name);
		free(src);
		free(dest);
		kpar_layer_free(l);
		if (rc < 0)
			goto done;
	}

	/* the main image: every common layer and the buckets layer */
	use = kpar_xcalloc(b.nl + 1, 1);
	for (i = 0; i < ncommon; i++)
		use[i] = 1;
	if (buckets_layer >= 0)
		use[buckets_layer] = 1;
	refs = kpar_xcalloc(nbuckets + 1, sizeof *refs);
	names = kpar_xcalloc(nbuckets + 1, sizeof *names);
	if ((rc = write_image(&b, use, NULL, 0, has_cache, &refs[0].desc)) < 0)
		goto done;
	names[0] = kpar_xstrdup(o->tag && *o->tag ? o->tag : "latest");
	refs[0].name = names[0];
	nrefs = 1;
	for (i = 0; i < nbuckets; i++) {
		char num[32];
		const char *extra[2] = { "--bucket", num };

		snprintf(num, sizeof num, "%ld", buckets[i]);
		for (j = ncommon; j < b.nl; j++)
			use[j] = j == ncommon + 1 + i;   /* after the buckets layer */
		if ((rc = write_image(&b, use, extra, 2, has_cache, &refs[nrefs].desc)) < 0)
			goto done;
		names[nrefs] = kpar_xasprintf("bucket-%ld", buckets[i]);
		refs[nrefs].name = names[nrefs];
		kpar_buf_printf(&bd, "%ld %s\n", buckets[i], refs[nrefs].desc.digest);
		nrefs++;
	}
	if (o->dry_run) {
		/* Blobs are content-addressed and harmless; the files that name
		 * the image (digest, ref, index.json) stay as the last real build
		 * left them, and so does what depends on them. */
		memcpy(out->digest, refs[0].desc.digest, KPAR_DIGEST_STR);
		out->images = (unsigned)nrefs;
		out->changed = !old_digest || strcmp(old_digest, out->digest) != 0;
		goto done;
	}
	if ((rc = kpar_oci_index_json(refs, nrefs, &idx)) < 0)
		goto done;
	free(path);
	path = kpar_fs_join(o->layout, "index.json");
	if ((rc = kpar_fs_write_if_changed(path, idx.data, idx.len)) < 0)
		goto done;
	free(path);
	path = kpar_fs_join(o->layout, "bucket-digests");
	if (nbuckets) {
		if ((rc = kpar_fs_write_if_changed(path, bd.data, bd.len)) < 0)
			goto done;
	} else {
		unlink(path);
	}
	free(path);
	path = kpar_fs_join(o->layout, "digest");
	kpar_buf_clear(&bd);
	kpar_buf_printf(&bd, "%s\n", refs[0].desc.digest);
	if ((rc = kpar_fs_write_if_changed(path, bd.data, bd.len)) < 0)
		goto done;
	memcpy(out->digest, refs[0].desc.digest, KPAR_DIGEST_STR);
	out->images = (unsigned)nrefs;
	out->changed = !old_digest || strcmp(old_digest, out->digest) != 0;
	if (out->changed) {
		/* a new image was not pushed yet */
		char *p = kpar_fs_join(o->layout, "ref");
		unlink(p);
		free(p);
		p = kpar_fs_join(o->layout, "bucket-refs");
		unlink(p);
		free(p);
		p = kpar_fs_join(b.kdir, "pushed");
		unlink(p);
		free(p);
	}

	/* blobs no image references any more (replaced layers, an old base) */
	for (i = 0; i < nrefs; i++)
		keep_manifest(&b, &refs[i].desc, &keep);
	if (!b.base.none)  /* the base's config: its cache entry needs it */
		kpar_strv_push(&keep, b.base.config_desc.digest);
	kpar_strv_sort(&keep);
	kpar_strv_uniq(&keep);
	if ((rc = kpar_oci_gc(o->layout, &keep, NULL)) < 0)
		goto done;
	prune_records(&b);
done:
	if (rc < 0 && !o->dry_run)
		drop_outputs(o->layout);
	if (lockfd >= 0)
		close(lockfd);
	for (i = 0; i < b.nl; i++) {
		free(b.l[i].name);
		free(b.l[i].created_by);
	}
	for (i = 0; names && i < nrefs; i++)
		free(names[i]);
	free(names);
	free(b.l);
	base_free(&b.base);
	kpar_strv_free(&b.entry_prefix);
	kpar_strv_free(&keep);
	kpar_buf_free(&idx);
	kpar_buf_free(&bd);
	free(refs);
	free(use);
	free(buckets);
	free(old_digest);
	free(path);
	free(b.kdir);
	free(b.blob_dir);
	return rc;
}

/* ------------------------------------------------------------------- push */

struct index_entry {
	char *name;
	struct kpar_oci_desc desc;
};

static int read_index(const char *layout, struct index_entry **out, size_t *n)
{
	char *path = kpar_fs_join(layout, "index.json");
	cJSON *j = NULL;
	const cJSON *it, *arr;
	char *text = NULL;
	size_t len = 0;
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = kpar_fs_read_all(path, &text, &len)) < 0)
		goto done;
	j = cJSON_ParseWithLength(text, len);
	arr = cJSON_GetObjectItemCaseSensitive(j, "manifests");
	if (!cJSON_IsArray(arr)) {
		rc = kpar_error_set(KPAR_EINVAL, "'%s' is not an OCI index", path);
		goto done;
	}
	*out = kpar_xcalloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof **out);
	cJSON_ArrayForEach(it, arr) {
		const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
			cJSON_GetObjectItemCaseSensitive(it, "annotations"), KPAR_OCI_REF_NAME));
		if (desc_from_json(it, &(*out)[*n].desc) < 0) {
			rc = kpar_error_set(KPAR_EINVAL, "'%s' has a malformed descriptor", path);
			goto done;
		}
		(*out)[(*n)++].name = kpar_xstrdup(name ? name : "");
	}
done:
	cJSON_Delete(j);
	free(text);
	free(path);
	return rc;
}

static int confirmed(const struct kpar_strv *sv, const char *d)
{
	size_t i;

	for (i = 0; i < sv->n; i++)
		if (strcmp(sv->v[i], d) == 0)
			return 1;
	return 0;
}

void kpar_image_push_result_free(struct kpar_image_push_result *r)
{
	free(r->ref);
	r->ref = NULL;
}

/* What kpar/pushed holds: the target and every digest pushed there. */
static void pushed_record(const char *layout, const char *target, const char *main_digest,
			  struct kpar_buf *out)
{
	char *bd = NULL;

	kpar_buf_printf(out, "%s\n%s\n", target, main_digest);
	if (kpar_image_read_line(layout, "bucket-digests", &bd) == 0)
		kpar_buf_printf(out, "%s\n", bd);
	else
		kpar_error_clear();
	free(bd);
}

/* 1 when kpar/pushed holds rec (these digests went to this target) and
 * the layout has the pushed reference, which *ref then gets (may be NULL). */
static int pushed_already(const char *layout, const char *rec, char **ref)
{
	char *path = kpar_fs_join(layout, "kpar/pushed"), *old = NULL, *old_ref = NULL;
	int yes = kpar_fs_read_all(path, &old, NULL) == 0 && strcmp(old, rec) == 0 &&
		  kpar_image_read_line(layout, "ref", &old_ref) == 0;

	kpar_error_clear();
	if (yes && ref)
		*ref = old_ref;
	else
		free(old_ref);
	free(old);
	free(path);
	return yes;
}

int kpar_image_pushed(const char *layout, const char *target)
{
	struct kpar_buf rec = KPAR_BUF_INIT;
	char *main_digest = NULL;
	int yes = 0;

	if (kpar_image_read_line(layout, "digest", &main_digest) == 0) {
		pushed_record(layout, target, main_digest, &rec);
		yes = pushed_already(layout, rec.data, NULL);
	}
	kpar_error_clear();
	kpar_buf_free(&rec);
	free(main_digest);
	return yes;
}

int kpar_image_push(const char *layout, const char *target, const struct kpar_registry_opts *ro,
		    int flags, struct kpar_image_push_result *out)
{
	int verbose = flags & KPAR_IMAGE_VERBOSE;
	struct kpar_buf rec = KPAR_BUF_INIT;
	struct kpar_imageref ref = { 0 };
	struct kpar_registry *r = NULL;
	struct index_entry *ix = NULL;
	size_t nix = 0, i, k;
	struct kpar_strv done_blobs = KPAR_STRV_INIT, base_layers = KPAR_STRV_INIT;
	struct kpar_buf refs = KPAR_BUF_INIT;
	char *main_digest = NULL, *base_host = NULL, *base_repo = NULL, *path = NULL;
	const char *tag;
	cJSON *bj;
	int rc;

	memset(out, 0, sizeof *out);
	if ((rc = kpar_imageref_parse(target, &ref)) < 0)
		return kpar_error_prefix(rc, "push target");
	if (ref.digest) {
		rc = kpar_error_set(KPAR_EINVAL, "push target '%s' names a digest; give a repository and tag",
				    target);
		goto done;
	}
	tag = ref.tag ? ref.tag : "latest";
	if (kpar_image_read_line(layout, "digest", &main_digest) < 0) {
		rc = kpar_error_set(KPAR_ENOTFOUND, "no image is built in '%s' (run kpar image build)", layout);
		goto done;
	}
	pushed_record(layout, target, main_digest, &rec);
	if ((flags & KPAR_IMAGE_IF_NEW) && pushed_already(layout, rec.data, &out->ref))
		goto done;
	if ((rc = read_index(layout, &ix, &nix)) < 0)
		goto done;

	/* base layers can be mounted from the base's repository */
	path = kpar_fs_join(layout, "kpar/base.json");
	bj = read_json(path);
	if (bj) {
		const cJSON *it;
		const char *h = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(bj, "host"));
		const char *rp = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(bj, "repo"));
		if (h && rp && strcmp(h, ref.host) == 0 && strcmp(rp, ref.repo) != 0) {
			base_host = kpar_xstrdup(h);
			base_repo = kpar_xstrdup(rp);
			cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(bj, "layers")) {
				const char *d = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "digest"));
				if (d)
					kpar_strv_push(&base_layers, d);
			}
		}
		cJSON_Delete(bj);
	}
	if ((rc = kpar_registry_open(&r, ref.host, ref.repo, ro)) < 0)
		goto done;

	/* the main image first, then the bucket images, which add one small
	 * layer each: their shared blobs are confirmed already */
	for (k = 0; k < 2; k++) {
		for (i = 0; i < nix; i++) {
			struct kpar_oci_manifest m;
			struct kpar_registry_blob *blobs;
			struct kpar_push_stats st;
			char *text = NULL, dg[KPAR_DIGEST_STR], *tagbuf = NULL;
			const char *tags[1];
			size_t len = 0, nb = 0, L, ntags = 0;
			char **paths;
			int is_main = strcmp(ix[i].desc.digest, main_digest) == 0;

			if ((k == 0) != is_main)
				continue;
			free(path);
			path = kpar_oci_blob_path(layout, ix[i].desc.digest);
			if (!path || (rc = kpar_fs_read_all(path, &text, &len)) < 0) {
				rc = kpar_error_code();
				goto done;
			}
			kpar_digest_str(text, len, dg);
			if (strcmp(dg, ix[i].desc.digest) != 0) {
				free(text);
				rc = kpar_error_set(KPAR_ECHECKSUM, "manifest blob '%s' does not match its digest", path);
				goto done;
			}
			if ((rc = kpar_oci_manifest_parse(text, len, &m)) < 0) {
				free(text);
				kpar_error_prefix(rc, "'%s'", path);
				goto done;
			}
			blobs = kpar_xcalloc(m.nlayers + 2, sizeof *blobs);
			paths = kpar_xcalloc(m.nlayers + 2, sizeof *paths);
			for (L = 0; L <= m.nlayers; L++) {
				const struct kpar_oci_desc *d = L == 0 ? &m.config : &m.layers[L - 1];
				if (confirmed(&done_blobs, d->digest))
					continue;
				paths[nb] = kpar_oci_blob_path(layout, d->digest);
				blobs[nb].digest = d->digest;
				blobs[nb].path = paths[nb];
				blobs[nb].size = d->size;
				blobs[nb].mount_from = base_repo && confirmed(&base_layers, d->digest) ? base_repo : NULL;
				nb++;
			}
			if (is_main) {
				tags[ntags++] = tag;
			} else if (strlen(tag) + strlen(ix[i].name) + 1 <= 128) {
				tagbuf = kpar_xasprintf("%s-%s", tag, ix[i].name);
				tags[ntags++] = tagbuf;
			}
			memset(&st, 0, sizeof st);
			rc = kpar_registry_push(r, blobs, nb, text, len, m.media_type[0] ? m.media_type :
						KPAR_MT_OCI_MANIFEST, tags, ntags, &st);
			if (rc == 0) {
				for (L = 0; L < nb; L++)
					kpar_strv_push(&done_blobs, blobs[L].digest);
				out->stats.skipped += st.skipped;
				out->stats.uploaded += st.uploaded;
				out->stats.mounted += st.mounted;
				out->stats.bytes_sent += st.bytes_sent;
				out->images++;
				if (verbose)
					fprintf(stderr, "kpar image: pushed %s %s (%u uploaded, %u mounted, %u present, %llu bytes)\n",
						ix[i].name, ix[i].desc.digest, st.uploaded, st.mounted, st.skipped,
						(unsigned long long)st.bytes_sent);
				if (is_main)
					out->ref = kpar_xasprintf("%s/%s@%s", ref.host, ref.repo, ix[i].desc.digest);
				else if (strncmp(ix[i].name, "bucket-", 7) == 0)
					kpar_buf_printf(&refs, "%s %s/%s@%s\n", ix[i].name + 7, ref.host, ref.repo,
							ix[i].desc.digest);
			}
			for (L = 0; L < nb; L++)
				free(paths[L]);
			free(paths);
			free(blobs);
			free(text);
			free(tagbuf);
			kpar_oci_manifest_free(&m);
			if (rc < 0)
				goto done;
		}
	}
	if (!out->ref) {
		rc = kpar_error_set(KPAR_EINVAL, "'%s/index.json' does not list the image in '%s/digest'",
				    layout, layout);
		goto done;
	}
	memcpy(out->stats.manifest_digest, main_digest, KPAR_DIGEST_STR);
	free(path);
	path = kpar_fs_join(layout, "bucket-refs");
	if (refs.len)
		rc = kpar_fs_write_if_changed(path, refs.data, refs.len);
	else
		unlink(path);
	if (rc >= 0) {
		free(path);
		path = kpar_fs_join(layout, "ref");
		kpar_buf_clear(&refs);
		kpar_buf_printf(&refs, "%s\n", out->ref);
		rc = kpar_fs_write_if_changed(path, refs.data, refs.len);
	}
	if (rc >= 0) {
		free(path);
		path = kpar_fs_join(layout, "kpar/pushed");
		rc = kpar_fs_write_atomic(path, rec.data, rec.len);
	}
	rc = rc < 0 ? rc : 0;
done:
	if (rc < 0)
		kpar_image_push_result_free(out);
	for (i = 0; i < nix; i++)
		free(ix[i].name);
	free(ix);
	kpar_registry_free(r);
	kpar_imageref_free(&ref);
	kpar_strv_free(&done_blobs);
	kpar_strv_free(&base_layers);
	kpar_buf_free(&refs);
	kpar_buf_free(&rec);
	free(main_digest);
	free(base_host);
	free(base_repo);
	free(path);
	return rc;
}
