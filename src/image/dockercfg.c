/* dockercfg.c - credentials from Docker's config.json and docker-credential-* helpers.
 *
 * Lookup order per host: credHelpers[host], then credsStore, then auths, as
 * containers/image does (the docker CLI stops at the store; falling back to
 * auths only adds credentials the user wrote there).  Secrets are wiped from
 * every buffer that held them: the file bytes, the cJSON tree and the
 * helper's output.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "base/buf.h"
#include "image/dockercfg.h"
#include "base/error.h"
#include "base/fs.h"

extern char **environ;

#define HUB_SERVER_URL "https://index.docker.io/v1/"

void kpar_cred_clear(struct kpar_cred *c)
{
	if (c->secret) {
		explicit_bzero(c->secret, strlen(c->secret));
		free(c->secret);
	}
	free(c->username);
	memset(c, 0, sizeof *c);
}

static void wipe_json(cJSON *j)
{
	for (; j; j = j->next) {
		if (j->valuestring)
			explicit_bzero(j->valuestring, strlen(j->valuestring));
		wipe_json(j->child);
	}
}

static int is_hub(const char *host)
{
	return strcmp(host, "docker.io") == 0 || strcmp(host, "index.docker.io") == 0 ||
	       strcmp(host, "registry-1.docker.io") == 0;
}

/* "https://host:port/v1/" -> compares host:port with host (docker.io aliases equal). */
static int key_matches(const char *key, const char *host)
{
	const char *p = key, *end;
	size_t len;
	char *k;
	int eq;

	if (strncmp(p, "https://", 8) == 0)
		p += 8;
	else if (strncmp(p, "http://", 7) == 0)
		p += 7;
	end = strchr(p, '/');
	len = end ? (size_t)(end - p) : strlen(p);
	k = kpar_xstrndup(p, len);
	eq = strcmp(k, host) == 0 || (is_hub(k) && is_hub(host));
	free(k);
	return eq;
}

/* Decodes base64("user:password") into c. */
static int decode_auth(const char *b64, struct kpar_cred *c)
{
	size_t len = strlen(b64), pad = 0, n;
	unsigned char *raw;
	char *colon;
	int got;

	if (len == 0 || len % 4 != 0)
		return -1;
	if (b64[len - 1] == '=')
		pad++;
	if (len > 1 && b64[len - 2] == '=')
		pad++;
	raw = kpar_xmalloc(len / 4 * 3 + 1);
	got = EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)len);
	if (got < 0 || (size_t)got < pad) {
		free(raw);
		return -1;
	}
	n = (size_t)got - pad;
	raw[n] = '\0';
	colon = memchr(raw, ':', n);
	if (!colon || memchr(raw, '\0', n)) {
		explicit_bzero(raw, n);
		free(raw);
		return -1;
	}
	c->username = kpar_xstrndup((char *)raw, (size_t)(colon - (char *)raw));
	c->secret = kpar_xstrdup(colon + 1);
	explicit_bzero(raw, n);
	free(raw);
	return 0;
}

static int read_fd_all(int fd, struct kpar_buf *b)
{
	for (;;) {
		ssize_t n;
		kpar_buf_grow(b, 4096);
		n = read(fd, b->data + b->len, b->cap - b->len - 1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		b->len += (size_t)n;
		b->data[b->len] = '\0';
		if (b->len > (1u << 20))
			return -1;
	}
	return 0;
}

/* Runs `docker-credential-<suffix> get` with server on stdin. */
static int run_helper(const char *suffix, const char *server, struct kpar_cred *out)
{
	char *prog = kpar_xasprintf("docker-credential-%s", suffix);
	char *argv[] = { prog, (char *)"get", NULL };
	int in[2] = { -1, -1 }, outp[2] = { -1, -1 }, status = 0, rc = 0;
	posix_spawn_file_actions_t fa;
	struct kpar_buf b = KPAR_BUF_INIT;
	cJSON *j = NULL, *user, *secret;
	struct sigaction ign = { 0 }, old_pipe;
	pid_t pid;
	size_t i;

	for (i = 0; suffix[i]; i++) {
		/* The suffix comes from a config file; it names a program, never a path. */
		if (suffix[i] == '/' || suffix[i] == ' ') {
			rc = kpar_error_set(KPAR_EINVAL, "credential helper name '%s' is not a plain name",
					    suffix);
			free(prog);
			return rc;
		}
	}
	if (!*suffix) {
		free(prog);
		return 0;
	}
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(outp, O_CLOEXEC) < 0) {
		rc = kpar_error_errno(KPAR_EIO, "credential helper '%s': pipe", prog);
		goto done;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
	rc = posix_spawnp(&pid, prog, &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(in[0]);
	close(outp[1]);
	in[0] = outp[1] = -1;
	if (rc != 0) {
		errno = rc;
		rc = kpar_error_errno(KPAR_EAUTH, "credential helper '%s' (from the docker config) "
				      "cannot be run", prog);
		goto done;
	}
	/* A helper that exits without reading stdin must not kill us with SIGPIPE. */
	ign.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &ign, &old_pipe);
	kpar_fs_write_fully(in[1], server, strlen(server));
	sigaction(SIGPIPE, &old_pipe, NULL);
	close(in[1]);
	in[1] = -1;
	if (read_fd_all(outp[0], &b) < 0)
		rc = kpar_error_errno(KPAR_EAUTH, "credential helper '%s': cannot read its answer", prog);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (rc < 0)
		goto done;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		/* The helpers' protocol: "credentials not found" on stdout means none. */
		if (b.data && strstr(b.data, "credentials not found")) {
			rc = 0;
			goto done;
		}
		rc = kpar_error_set(KPAR_EAUTH, "credential helper '%s' failed for '%s' (exit %d)",
				    prog, server, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
		goto done;
	}
	j = cJSON_ParseWithLength(b.data ? b.data : "", b.len);
	user = j ? cJSON_GetObjectItemCaseSensitive(j, "Username") : NULL;
	secret = j ? cJSON_GetObjectItemCaseSensitive(j, "Secret") : NULL;
	if (!cJSON_IsString(user) || !cJSON_IsString(secret)) {
		rc = kpar_error_set(KPAR_EAUTH, "credential helper '%s' answered something other than "
				    "{\"Username\",\"Secret\"} for '%s'", prog, server);
		goto done;
	}
	if (strcmp(user->valuestring, "<token>") == 0) {
		out->identity_token = 1;
	} else {
		out->username = kpar_xstrdup(user->valuestring);
	}
	out->secret = kpar_xstrdup(secret->valuestring);
	rc = 1;
done:
	if (j) {
		wipe_json(j);
		cJSON_Delete(j);
	}
	if (b.data)
		explicit_bzero(b.data, b.len);
	kpar_buf_free(&b);
	for (i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (outp[i] >= 0)
			close(outp[i]);
	}
	free(prog);
	return rc;
}

static int from_auths(const cJSON *auths, const char *path, const char *host, struct kpar_cred *out)
{
	const cJSON *e;

	if (!auths)
		return 0;
	if (!cJSON_IsObject(auths))
		return kpar_error_set(KPAR_EINVAL, "docker config '%s': \"auths\" is not an object", path);
	cJSON_ArrayForEach(e, auths) {
		const cJSON *auth, *tok, *user, *pass;

		if (!e->string || !key_matches(e->string, host))
			continue;
		if (!cJSON_IsObject(e))
			return kpar_error_set(KPAR_EINVAL, "docker config '%s': auths entry '%s' is not an "
					      "object", path, e->string);
		auth = cJSON_GetObjectItemCaseSensitive(e, "auth");
		tok = cJSON_GetObjectItemCaseSensitive(e, "identitytoken");
		user = cJSON_GetObjectItemCaseSensitive(e, "username");
		pass = cJSON_GetObjectItemCaseSensitive(e, "password");
		if (auth && !(cJSON_IsString(auth) || cJSON_IsNull(auth)))
			return kpar_error_set(KPAR_EINVAL, "docker config '%s': auths entry '%s': \"auth\" "
					      "is not a string", path, e->string);
		if (cJSON_IsString(auth) && auth->valuestring[0]) {
			if (decode_auth(auth->valuestring, out) < 0)
				return kpar_error_set(KPAR_EINVAL, "docker config '%s': auths entry '%s': "
						      "\"auth\" is not base64 of user:password",
						      path, e->string);
		} else if (cJSON_IsString(user) && cJSON_IsString(pass)) {
			out->username = kpar_xstrdup(user->valuestring);
			out->secret = kpar_xstrdup(pass->valuestring);
		}
		if (cJSON_IsString(tok) && tok->valuestring[0]) {
			/* The identity token replaces the password; the user name is kept
			 * only because some token servers want it as client context. */
			if (out->secret) {
				explicit_bzero(out->secret, strlen(out->secret));
				free(out->secret);
			}
			out->secret = kpar_xstrdup(tok->valuestring);
			out->identity_token = 1;
		}
		if (out->secret)
			return 1;
		kpar_cred_clear(out);
		/* An empty entry (left by `docker login` with a store) means "ask the store". */
	}
	return 0;
}

int kpar_dockercfg_get(const char *config_dir, const char *host, struct kpar_cred *out)
{
	char *dir = NULL, *path = NULL, *text = NULL, *server;
	const char *env;
	size_t len = 0;
	cJSON *j = NULL;
	const cJSON *helpers, *store, *h;
	int rc;

	memset(out, 0, sizeof *out);
	if (config_dir && *config_dir)
		dir = kpar_xstrdup(config_dir);
	else if ((env = getenv("DOCKER_CONFIG")) && *env)
		dir = kpar_xstrdup(env);
	else if ((env = getenv("HOME")) && *env)
		dir = kpar_fs_join(env, ".docker");
	else
		return 0;
	path = kpar_fs_join(dir, "config.json");
	rc = kpar_fs_read_all(path, &text, &len);
	if (rc == KPAR_ENOTFOUND) {
		kpar_error_clear();
		rc = 0;
		goto done;
	}
	if (rc < 0)
		goto done;
	j = cJSON_ParseWithLength(text, len);
	if (!j || !cJSON_IsObject(j)) {
		rc = kpar_error_set(KPAR_EINVAL, "docker config '%s' is not a JSON object", path);
		goto done;
	}
	server = is_hub(host) ? kpar_xstrdup(HUB_SERVER_URL) : kpar_xstrdup(host);

	rc = 0;
	helpers = cJSON_GetObjectItemCaseSensitive(j, "credHelpers");
	if (helpers && !cJSON_IsObject(helpers)) {
		rc = kpar_error_set(KPAR_EINVAL, "docker config '%s': \"credHelpers\" is not an object",
				    path);
		goto done_server;
	}
	cJSON_ArrayForEach(h, helpers) {
		if (h->string && key_matches(h->string, host)) {
			if (!cJSON_IsString(h)) {
				rc = kpar_error_set(KPAR_EINVAL, "docker config '%s': credHelpers entry "
						    "'%s' is not a string", path, h->string);
				goto done_server;
			}
			rc = run_helper(h->valuestring, server, out);
			if (rc != 0)
				goto done_server;
			break;
		}
	}
	store = cJSON_GetObjectItemCaseSensitive(j, "credsStore");
	if (store && !cJSON_IsString(store)) {
		rc = kpar_error_set(KPAR_EINVAL, "docker config '%s': \"credsStore\" is not a string", path);
		goto done_server;
	}
	if (store && store->valuestring[0]) {
		rc = run_helper(store->valuestring, server, out);
		if (rc != 0)
			goto done_server;
	}
	rc = from_auths(cJSON_GetObjectItemCaseSensitive(j, "auths"), path, host, out);

done_server:
	free(server);
done:
	if (rc <= 0)
		kpar_cred_clear(out);
	if (j) {
		wipe_json(j);
		cJSON_Delete(j);
	}
	if (text) {
		explicit_bzero(text, len);
		free(text);
	}
	free(path);
	free(dir);
	return rc;
}
