/* dockercfg.h - registry credentials from the Docker client configuration.
 *
 * Looks in <dir>/config.json, dir being the argument, else $DOCKER_CONFIG,
 * else ~/.docker, the way the docker CLI, podman and skopeo do:
 *   credHelpers{"<host>": "<x>"}  -> run docker-credential-<x> get
 *   credsStore: "<x>"             -> the same, for every host
 *   auths{"<host>": {auth: base64(user:password)} or {identitytoken}}
 * Keys of auths may carry a scheme and path ("https://index.docker.io/v1/");
 * docker.io, index.docker.io and registry-1.docker.io are one registry.
 * A helper runs from $PATH with argv only (no shell), the server URL on its
 * stdin, and answers {"ServerURL","Username","Secret"}; a Username of
 * "<token>" means Secret is an identity (refresh) token.
 * Secrets never appear in error messages.
 */
#ifndef KPAR_DOCKERCFG_H
#define KPAR_DOCKERCFG_H

struct kpar_cred {
	char *username;      /* malloc'd; NULL with an identity token from auths */
	char *secret;        /* password or identity token; malloc'd, wiped on clear */
	int identity_token;  /* 1: secret is an OAuth2 refresh token, not a password */
};

/* Finds credentials for host[:port].  Returns 1 and fills *out when found,
 * 0 when there are none (no file, no entry, helper says "not found"), or a
 * negative code: KPAR_EINVAL for a malformed config.json (naming the file),
 * KPAR_EAUTH when a helper fails (naming the helper). */
int kpar_dockercfg_get(const char *config_dir, const char *host, struct kpar_cred *out);
/* Wipes and frees the strings; *c is zeroed. */
void kpar_cred_clear(struct kpar_cred *c);

#endif
