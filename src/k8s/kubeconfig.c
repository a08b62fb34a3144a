/* kubeconfig.c - kubeconfig files (libyaml document trees), exec credential
 * plugins and the in-cluster service account.
 *
 * Loading works on the parsed documents of every file in the KUBECONFIG
 * list at once: the structure of each file is checked first (so a broken
 * file is reported even when an earlier one would have answered), then the
 * context, its cluster and its user are looked up first-wins, and only
 * those three are decoded and validated, as kubectl does.  Secrets (file
 * bytes, YAML scalars, plugin output, JSON trees) are wiped before they are
 * freed; no message ever quotes a value that could be one.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/fs.h"
#include "base/yaml_load.h"
#include "k8s/kubeconfig.h"
#include "run/proc.h"

extern char **environ;

#define SA_DIR "/var/run/secrets/kubernetes.io/serviceaccount"
#define EXEC_TIMEOUT_DEFAULT 60.0
/* A credential this close to its expiry is refreshed before use, so it
 * does not expire on the way to the server. */
#define EXEC_MARGIN 10
#define MAX_CONFIG_BYTES (16u << 20)
#define MAX_PEM_BYTES (4u << 20)
#define MAX_EXEC_OUTPUT (1u << 20)
#define STDERR_TAIL 512
#define EXEC_V1 "client.authentication.k8s.io/v1"
#define EXEC_V1BETA1 "client.authentication.k8s.io/v1beta1"

/* ---- small helpers ---------------------------------------------------- */

static void wipe_buf(struct kpar_buf *b)
{
	if (b->data)
		explicit_bzero(b->data, b->cap);
	kpar_buf_free(b);
}

static void wipe_json(cJSON *j)
{
	for (; j; j = j->next) {
		if (j->valuestring)
			explicit_bzero(j->valuestring, strlen(j->valuestring));
		wipe_json(j->child);
	}
}

static const char *read_errstr(int e)
{
	if (e == EINVAL)
		return "not a regular file";
	if (e == EFBIG)
		return "file too large";
	return strerror(e);
}

/* Reads a regular file into out (which must be empty), at most max bytes.
 * Growing copies are wiped, as the file may hold a key.  Returns 0 or
 * -errno (EINVAL: not a regular file, EFBIG: too large). */
static int slurp(const char *path, size_t max, struct kpar_buf *out)
{
	struct stat st;
	size_t cap;
	char *p;
	int fd, e;

	/* O_NONBLOCK: a FIFO at the path must not hang the open. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		e = errno;
		close(fd);
		return -e;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
	}
	if ((unsigned long long)st.st_size > max) {
		close(fd);
		return -EFBIG;
	}
	cap = (size_t)st.st_size + 4096;
	p = kpar_xmalloc(cap + 1);
	out->len = 0;
	for (;;) {
		ssize_t n;

		if (out->len == cap) {
			char *q;

			if (cap >= max) {
				explicit_bzero(p, cap);
				free(p);
				close(fd);
				return -EFBIG;
			}
			q = kpar_xmalloc(cap * 2 + 1);
			memcpy(q, p, out->len);
			explicit_bzero(p, cap);
			free(p);
			p = q;
			cap *= 2;
		}
		n = read(fd, p + out->len, cap - out->len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			e = errno;
			explicit_bzero(p, cap);
			free(p);
			close(fd);
			return -e;
		}
		if (n == 0)
			break;
		out->len += (size_t)n;
	}
	close(fd);
	if (out->len > max) {
		explicit_bzero(p, cap);
		free(p);
		out->len = 0;
		return -EFBIG;
	}
	p[out->len] = '\0';
	out->data = p;
	out->cap = cap + 1;
	return 0;
}

static void trim_space(struct kpar_buf *b)
{
	size_t start = 0;

	if (!b->data)
		return;
	while (b->len > 0 && strchr(" \t\r\n", b->data[b->len - 1]))
		b->data[--b->len] = '\0';
	while (start < b->len && strchr(" \t\r\n", b->data[start]))
		start++;
	if (start) {
		memmove(b->data, b->data + start, b->len - start + 1);
		explicit_bzero(b->data + b->len - start + 1, start);
		b->len -= start;
	}
}

/* A token goes into an HTTP header, where a control character could
 * smuggle in another header. */
static int has_ctl(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		if ((unsigned char)s[i] < ' ' || s[i] == 0x7f)
			return 1;
	}
	return 0;
}

static int is_b64_char(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
	       ch == '+' || ch == '/';
}

/* Standard base64 with padding, line breaks allowed (Go's decoder, which
 * kubectl uses, takes the same).  EVP_DecodeBlock alone would accept
 * unpadded and stray characters and return the padding as zero bytes. */
static int b64_decode(const char *s, size_t len, struct kpar_buf *out)
{
	char *clean = kpar_xmalloc(len + 1);
	size_t n = 0, i, pad = 0;
	int got;

	for (i = 0; i < len; i++) {
		if (s[i] != '\r' && s[i] != '\n')
			clean[n++] = s[i];
	}
	if (n % 4 != 0)
		goto bad;
	while (pad < n && clean[n - 1 - pad] == '=')
		pad++;
	if (pad > 2)
		goto bad;
	for (i = 0; i < n - pad; i++) {
		if (!is_b64_char(clean[i]))
			goto bad;
	}
	out->data = kpar_xmalloc(n / 4 * 3 + 1);
	out->cap = n / 4 * 3 + 1;
	out->len = 0;
	if (n > 0) {
		got = EVP_DecodeBlock((unsigned char *)out->data, (const unsigned char *)clean, (int)n);
		if (got < 0 || (size_t)got != n / 4 * 3) {
			wipe_buf(out);
			goto bad;
		}
		out->len = (size_t)got - pad;
	}
	out->data[out->len] = '\0';
	explicit_bzero(clean, len + 1);
	free(clean);
	return 0;
bad:
	explicit_bzero(clean, len + 1);
	free(clean);
	return -1;
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir, *cwd, *abs;

	if (slash == path)
		return kpar_xstrdup("/");
	dir = slash ? kpar_xstrndup(path, (size_t)(slash - path)) : kpar_xstrdup(".");
	if (dir[0] == '/')
		return dir;
	/* Relative paths inside the file must not depend on a later chdir. */
	cwd = getcwd(NULL, 0);
	if (!cwd)
		return dir;
	abs = strcmp(dir, ".") == 0 ? kpar_xstrdup(cwd) : kpar_fs_join(cwd, dir);
	free(cwd);
	free(dir);
	return abs;
}

static char *resolve_path(const char *dir, const char *path)
{
	return path[0] == '/' ? kpar_xstrdup(path) : kpar_fs_join(dir, path);
}

/* ---- where a field is, for messages ----------------------------------- */

struct kfile {
	char *path;             /* as listed */
	char *dir;              /* absolute directory for relative paths */
	yaml_document_t doc;
	int have_doc;
	yaml_node_t *root;      /* the top-level mapping; NULL for an empty file */
};

struct loc {
	const struct kfile *f;
	const char *section;    /* "clusters", "users", "contexts"; NULL = top level */
	int index;
	const char *name;       /* the entry's name, when known */
};

/* "kubeconfig 'F'" or "kubeconfig 'F': users[0] "ci"" */
static void loc_prefix(struct kpar_buf *b, const struct loc *l)
{
	kpar_buf_printf(b, "kubeconfig '%s'", l->f->path);
	if (l->section) {
		kpar_buf_printf(b, ": %s[%d]", l->section, l->index);
		if (l->name)
			kpar_buf_printf(b, " \"%s\"", l->name);
	}
}

static int loc_err(int code, const struct loc *l, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* "kubeconfig 'F': users[0] "ci" user.client-key-data: invalid base64" */
static int loc_err(int code, const struct loc *l, const char *field, const char *fmt, ...)
{
	struct kpar_buf b = KPAR_BUF_INIT;
	va_list ap;

	loc_prefix(&b, l);
	if (field)
		kpar_buf_printf(&b, "%s%s", l->section ? " " : ": ", field);
	kpar_buf_puts(&b, ": ");
	va_start(ap, fmt);
	kpar_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	kpar_error_set(code, "%s", b.data);
	kpar_buf_free(&b);
	return code;
}

static char *loc_str(const struct loc *l)
{
	struct kpar_buf b = KPAR_BUF_INIT;

	loc_prefix(&b, l);
	return kpar_buf_detach(&b, NULL);
}

/* ---- YAML nodes ------------------------------------------------------- */

static yaml_node_t *ynode(const struct kfile *f, int id)
{
	return yaml_document_get_node((yaml_document_t *)&f->doc, id);
}

static int is_null(const yaml_node_t *n)
{
	const char *v;

	if (!n)
		return 1;
	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return 0;
	v = (const char *)n->data.scalar.value;
	return n->data.scalar.length == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
	       strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

static const char *kind_name(const yaml_node_t *n)
{
	if (is_null(n))
		return "null";
	switch (n->type) {
	case YAML_MAPPING_NODE:
		return "a mapping";
	case YAML_SEQUENCE_NODE:
		return "a list";
	default:
		return "a string";
	}
}

/* Looks key up in mapping m (NULL = empty).  field names it for messages.
 * Returns 1 with *out set, 0 when absent, or an error for a repeated key:
 * YAML forbids it and guessing which one the user meant could pick the
 * wrong credentials. */
static int map_get(const struct loc *l, const yaml_node_t *m, const char *field, const char *key,
		   yaml_node_t **out)
{
	yaml_node_pair_t *pair;
	int found = 0;

	*out = NULL;
	if (!m || m->type != YAML_MAPPING_NODE)
		return 0;
	for (pair = m->data.mapping.pairs.start; pair < m->data.mapping.pairs.top; pair++) {
		yaml_node_t *k = ynode(l->f, pair->key);

		if (!k || k->type != YAML_SCALAR_NODE || strcmp((const char *)k->data.scalar.value, key) != 0)
			continue;
		if (found)
			return loc_err(KPAR_EINVAL, l, field, "appears twice");
		*out = ynode(l->f, pair->value);
		found = 1;
	}
	return found;
}

/* *out: the string, or NULL when absent, null or empty (kubectl treats an
 * empty string as unset). */
static int get_str(const struct loc *l, const yaml_node_t *m, const char *field, const char *key,
		   const char **out)
{
	yaml_node_t *n;
	int rc = map_get(l, m, field, key, &n);

	*out = NULL;
	if (rc <= 0)
		return rc;
	if (is_null(n))
		return 0;
	if (n->type != YAML_SCALAR_NODE)
		return loc_err(KPAR_EINVAL, l, field, "expected a string, found %s", kind_name(n));
	if (strlen((const char *)n->data.scalar.value) != n->data.scalar.length)
		return loc_err(KPAR_EINVAL, l, field, "contains a NUL byte");
	if (n->data.scalar.length > 0)
		*out = (const char *)n->data.scalar.value;
	return 0;
}

static int get_bool(const struct loc *l, const yaml_node_t *m, const char *field, const char *key,
		    int *out)
{
	static const char *const yes[] = { "true", "True", "TRUE", "yes", "Yes", "YES", "on", "On", "ON" };
	static const char *const no[] = { "false", "False", "FALSE", "no", "No", "NO", "off", "Off", "OFF" };
	yaml_node_t *n;
	const char *v;
	size_t i;
	int rc = map_get(l, m, field, key, &n);

	*out = 0;
	if (rc <= 0 || is_null(n))
		return rc;
	if (n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE) {
		v = (const char *)n->data.scalar.value;
		for (i = 0; i < sizeof yes / sizeof yes[0]; i++) {
			if (strcmp(v, yes[i]) == 0) {
				*out = 1;
				return 0;
			}
			if (strcmp(v, no[i]) == 0)
				return 0;
		}
	}
	return loc_err(KPAR_EINVAL, l, field, "expected true or false");
}

/* A mapping (or null = empty) under key; *out NULL when absent or null. */
static int get_map(const struct loc *l, const yaml_node_t *m, const char *field, const char *key,
		   yaml_node_t **out)
{
	int rc = map_get(l, m, field, key, out);

	if (rc <= 0)
		return rc;
	if (is_null(*out)) {
		*out = NULL;
		return 0;
	}
	if ((*out)->type != YAML_MAPPING_NODE)
		return loc_err(KPAR_EINVAL, l, field, "expected a mapping, found %s", kind_name(*out));
	return 0;
}

static int get_seq(const struct loc *l, const yaml_node_t *m, const char *field, const char *key,
		   yaml_node_t **out)
{
	int rc = map_get(l, m, field, key, out);

	if (rc <= 0)
		return rc;
	if (is_null(*out)) {
		*out = NULL;
		return 0;
	}
	if ((*out)->type != YAML_SEQUENCE_NODE)
		return loc_err(KPAR_EINVAL, l, field, "expected a list, found %s", kind_name(*out));
	return 0;
}

static int seq_len(const yaml_node_t *s)
{
	return s ? (int)(s->data.sequence.items.top - s->data.sequence.items.start) : 0;
}

static yaml_node_t *seq_at(const struct kfile *f, const yaml_node_t *s, int i)
{
	return ynode(f, s->data.sequence.items.start[i]);
}

/* ---- files ------------------------------------------------------------ */

static void kfile_free(struct kfile *f)
{
	if (f->have_doc) {
		yaml_node_t *n;

		for (n = f->doc.nodes.start; n && n < f->doc.nodes.top; n++) {
			if (n->type == YAML_SCALAR_NODE && n->data.scalar.value)
				explicit_bzero(n->data.scalar.value, n->data.scalar.length);
		}
		yaml_document_delete(&f->doc);
	}
	free(f->path);
	free(f->dir);
	memset(f, 0, sizeof *f);
}

static int yaml_problem(const struct kfile *f, const yaml_parser_t *p)
{
	struct kpar_buf b = KPAR_BUF_INIT;

	if (p->error == YAML_MEMORY_ERROR)
		return kpar_error_set(KPAR_ENOMEM, "kubeconfig '%s': out of memory parsing YAML", f->path);
	kpar_buf_printf(&b, "kubeconfig '%s': ", f->path);
	if (p->error == YAML_READER_ERROR)
		kpar_buf_printf(&b, "byte %zu: ", p->problem_offset);
	else
		kpar_buf_printf(&b, "line %zu column %zu: ", p->problem_mark.line + 1,
				p->problem_mark.column + 1);
	kpar_buf_puts(&b, p->problem ? p->problem : "invalid YAML");
	if (p->context)
		kpar_buf_printf(&b, " (%s at line %zu column %zu)", p->context,
				p->context_mark.line + 1, p->context_mark.column + 1);
	kpar_error_set(KPAR_EINVAL, "%s", b.data);
	kpar_buf_free(&b);
	return KPAR_EINVAL;
}

static int parse_yaml(struct kfile *f, const struct kpar_buf *text)
{
	yaml_parser_t p;
	yaml_document_t extra;
	int rc = 0;

	/* here rather than in kpar_k8s_config_load: the in-cluster
	 * configuration parses no YAML, so it does not need libyaml */
	if ((rc = kpar_yaml_load()) < 0)
		return kpar_error_prefix(rc, "kubeconfig '%s'", f->path);
	if (!yaml_parser_initialize(&p))
		return kpar_error_set(KPAR_ENOMEM, "kubeconfig '%s': out of memory", f->path);
	yaml_parser_set_input_string(&p, (const unsigned char *)(text->data ? text->data : ""),
				     text->len);
	if (!yaml_parser_load(&p, &f->doc)) {
		rc = yaml_problem(f, &p);
		goto done;
	}
	f->have_doc = 1;
	if (!yaml_document_get_root_node(&f->doc))
		goto done;
	/* A second document would be silently ignored by a reader that stops
	 * at the first; say so instead. */
	if (!yaml_parser_load(&p, &extra)) {
		rc = yaml_problem(f, &p);
		goto done;
	}
	if (yaml_document_get_root_node(&extra))
		rc = kpar_error_set(KPAR_EINVAL, "kubeconfig '%s': more than one YAML document", f->path);
	{
		yaml_node_t *n;

		for (n = extra.nodes.start; n && n < extra.nodes.top; n++) {
			if (n->type == YAML_SCALAR_NODE && n->data.scalar.value)
				explicit_bzero(n->data.scalar.value, n->data.scalar.length);
		}
	}
	yaml_document_delete(&extra);
done:
	yaml_parser_delete(&p);
	return rc;
}

static const char *const sections[3] = { "clusters", "users", "contexts" };
static const char *const items[3] = { "cluster", "user", "context" };

/* Checks the shape every reader relies on: a top-level mapping, lists of
 * {name, <item>} mappings with unique names, current-context a string. */
static int check_file(struct kfile *f)
{
	struct loc l = { f, NULL, 0, NULL };
	yaml_node_t *root = yaml_document_get_root_node(&f->doc);
	const char *cur;
	int s, i, j, rc;

	if (is_null(root))
		return 0;
	if (root->type != YAML_MAPPING_NODE)
		return kpar_error_set(KPAR_EINVAL, "kubeconfig '%s': the top level is %s, not a mapping",
				      f->path, kind_name(root));
	f->root = root;
	if ((rc = get_str(&l, root, "current-context", "current-context", &cur)) < 0)
		return rc;
	for (s = 0; s < 3; s++) {
		yaml_node_t *seq;

		if ((rc = get_seq(&l, root, sections[s], sections[s], &seq)) < 0)
			return rc;
		for (i = 0; i < seq_len(seq); i++) {
			yaml_node_t *e = seq_at(f, seq, i), *inner;
			struct loc el = { f, sections[s], i, NULL };
			const char *name;

			if (e->type != YAML_MAPPING_NODE)
				return loc_err(KPAR_EINVAL, &el, NULL, "expected a mapping, found %s",
					       kind_name(e));
			if ((rc = get_str(&el, e, "name", "name", &name)) < 0)
				return rc;
			if (!name)
				return loc_err(KPAR_EINVAL, &el, "name", "missing");
			el.name = name;
			if ((rc = get_map(&el, e, items[s], items[s], &inner)) < 0)
				return rc;
			/* kubectl keeps the last of two same-named entries in one file
			 * but the first across files; refuse the ambiguity instead. */
			for (j = 0; j < i; j++) {
				const char *other;
				struct loc ol = { f, sections[s], j, NULL };

				if (get_str(&ol, seq_at(f, seq, j), "name", "name", &other) == 0 && other &&
				    strcmp(other, name) == 0)
					return loc_err(KPAR_EINVAL, &el, "name", "already used by %s[%d]",
						       sections[s], j);
			}
		}
	}
	return 0;
}

/* Finds the first entry named name in section s across the files. */
static int find_entry(struct kfile *files, size_t nfiles, int s, const char *name,
		      struct loc *where, yaml_node_t **inner)
{
	size_t fi;
	int i;

	for (fi = 0; fi < nfiles; fi++) {
		struct loc l = { &files[fi], NULL, 0, NULL };
		yaml_node_t *seq;

		if (!files[fi].root || get_seq(&l, files[fi].root, sections[s], sections[s], &seq) < 0)
			continue;
		for (i = 0; i < seq_len(seq); i++) {
			yaml_node_t *e = seq_at(&files[fi], seq, i);
			struct loc el = { &files[fi], sections[s], i, NULL };
			const char *n;

			if (get_str(&el, e, "name", "name", &n) < 0 || !n || strcmp(n, name) != 0)
				continue;
			el.name = n;
			*where = el;
			return get_map(&el, e, items[s], items[s], inner) < 0 ? -1 : 1;
		}
	}
	return 0;
}

/* ---- the cluster -------------------------------------------------------- */

static int is_loopback(const char *host, size_t len)
{
	if ((len == 9 && strncmp(host, "localhost", 9) == 0) ||
	    (len == 5 && strncmp(host, "[::1]", 5) == 0))
		return 1;
	if (len >= 4 && strncmp(host, "127.", 4) == 0) {
		size_t i;

		for (i = 4; i < len; i++) {
			if (!(host[i] == '.' || (host[i] >= '0' && host[i] <= '9')))
				return 0;
		}
		return 1;
	}
	return 0;
}

static int check_port(const char *p, size_t len)
{
	unsigned long v = 0;
	size_t i;

	if (len == 0 || len > 5)
		return -1;
	for (i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (unsigned long)(p[i] - '0');
	}
	return v >= 1 && v <= 65535 ? 0 : -1;
}

/* server: https://host[:port][/prefix]; plain http only to this machine,
 * where no one can read the token on the way. */
static int set_server(struct kpar_k8s_config *out, const struct loc *l, const char *server)
{
	const char *field = "cluster.server", *auth, *host, *end, *port = NULL;
	size_t i, len, hostlen;
	int https;

	for (i = 0; server[i]; i++) {
		if ((unsigned char)server[i] <= ' ' || server[i] == 0x7f)
			return loc_err(KPAR_EINVAL, l, field, "contains whitespace or a control character");
	}
	if (strncmp(server, "https://", 8) == 0) {
		https = 1;
		auth = server + 8;
	} else if (strncmp(server, "http://", 7) == 0) {
		https = 0;
		auth = server + 7;
	} else {
		return loc_err(KPAR_EINVAL, l, field, "'%s' is not an https:// URL", server);
	}
	end = auth + strcspn(auth, "/?#");
	if (strpbrk(auth, "?#"))
		return loc_err(KPAR_EINVAL, l, field, "'%s': a query or fragment is not allowed", server);
	if (memchr(auth, '@', (size_t)(end - auth)))
		/* Do not quote it: the user information may be a password. */
		return loc_err(KPAR_EINVAL, l, field, "user information in the URL is not supported");
	host = auth;
	if (*host == '[') {
		const char *close = memchr(host, ']', (size_t)(end - host));

		if (!close)
			return loc_err(KPAR_EINVAL, l, field, "'%s': unterminated IPv6 address", server);
		hostlen = (size_t)(close - host) + 1;
		if (close + 1 < end) {
			if (close[1] != ':')
				return loc_err(KPAR_EINVAL, l, field, "'%s': bad host", server);
			port = close + 2;
		}
	} else {
		const char *colon = memchr(host, ':', (size_t)(end - host));

		hostlen = colon ? (size_t)(colon - host) : (size_t)(end - host);
		if (colon)
			port = colon + 1;
	}
	if (hostlen == 0 || (host[0] == '[' && hostlen <= 2))
		return loc_err(KPAR_EINVAL, l, field, "'%s' names no host", server);
	if (port && check_port(port, (size_t)(end - port)) < 0)
		return loc_err(KPAR_EINVAL, l, field, "'%s': bad port", server);
	if (!https && !is_loopback(host, hostlen))
		return loc_err(KPAR_EINVAL, l, field,
			       "'%s': plain http:// is allowed only to a loopback address; use https://",
			       server);
	len = strlen(server);
	while (len > 0 && server[len - 1] == '/')
		len--;
	out->server = kpar_xstrndup(server, len);
	return 0;
}

static int pem_has(const struct kpar_buf *b, const char *what)
{
	return b->data && memmem(b->data, b->len, what, strlen(what)) != NULL;
}

/* Fills out from field-data (base64) or field (a path relative to the
 * file); *set tells whether either was there. */
static int load_pem(const struct loc *l, const yaml_node_t *m, const char *item, const char *key,
		    const char *marker, const char *what, struct kpar_buf *out, int *set)
{
	char field[96], dfield[96], dkey[64];
	const char *data, *path;
	int rc;

	snprintf(field, sizeof field, "%s.%s", item, key);
	snprintf(dkey, sizeof dkey, "%s-data", key);
	snprintf(dfield, sizeof dfield, "%s.%s", item, dkey);
	*set = 0;
	if ((rc = get_str(l, m, dfield, dkey, &data)) < 0 ||
	    (rc = get_str(l, m, field, key, &path)) < 0)
		return rc;
	if (data) {
		*set = 1;
		if (b64_decode(data, strlen(data), out) < 0)
			return loc_err(KPAR_EINVAL, l, dfield, "invalid base64");
		if (!pem_has(out, marker))
			return loc_err(KPAR_EINVAL, l, dfield, "does not hold a PEM %s", what);
		return 0;
	}
	if (path) {
		char *full = resolve_path(l->f->dir, path);

		*set = 1;
		rc = slurp(full, MAX_PEM_BYTES, out);
		if (rc < 0)
			rc = loc_err(rc == -ENOENT ? KPAR_ENOTFOUND : KPAR_EIO, l, field,
				     "cannot read '%s': %s", full, read_errstr(-rc));
		else if (!pem_has(out, marker))
			rc = loc_err(KPAR_EINVAL, l, field, "'%s' does not hold a PEM %s", full, what);
		free(full);
		return rc;
	}
	return 0;
}

static int load_cluster(struct kpar_k8s_config *out, const struct loc *l, const yaml_node_t *m)
{
	const char *server, *name, *proxy;
	int rc, have_ca;

	if ((rc = get_str(l, m, "cluster.server", "server", &server)) < 0)
		return rc;
	if (!server)
		return loc_err(KPAR_EINVAL, l, "cluster.server", "missing");
	if ((rc = set_server(out, l, server)) < 0)
		return rc;
	if ((rc = get_bool(l, m, "cluster.insecure-skip-tls-verify", "insecure-skip-tls-verify",
			   &out->insecure)) < 0)
		return rc;
	if ((rc = load_pem(l, m, "cluster", "certificate-authority", "-----BEGIN CERTIFICATE-----",
			   "certificate", &out->ca_pem, &have_ca)) < 0)
		return rc;
	if (out->insecure && have_ca)
		return loc_err(KPAR_EINVAL, l, "cluster.insecure-skip-tls-verify",
			       "true beside a certificate-authority; a CA cannot be used without "
			       "verifying (kubectl refuses this too)");
	if ((rc = get_str(l, m, "cluster.tls-server-name", "tls-server-name", &name)) < 0)
		return rc;
	if (name)
		out->tls_server_name = kpar_xstrdup(name);
	if ((rc = get_str(l, m, "cluster.proxy-url", "proxy-url", &proxy)) < 0)
		return rc;
	if (proxy) {
		/* Not quoted: a proxy URL may carry a password. */
		if (strncmp(proxy, "http://", 7) != 0 && strncmp(proxy, "https://", 8) != 0 &&
		    strncmp(proxy, "socks5://", 9) != 0)
			return loc_err(KPAR_EINVAL, l, "cluster.proxy-url",
				       "not an http://, https:// or socks5:// URL");
		out->proxy_url = kpar_xstrdup(proxy);
	}
	return 0;
}

/* ---- the user ----------------------------------------------------------- */

static void exec_drop(struct kpar_k8s_exec *x)
{
	kpar_wipe_free(x->token);
	x->token = NULL;
	wipe_buf(&x->cert_pem);
	wipe_buf(&x->key_pem);
	x->expiry = 0;
	x->have = 0;
}

static void exec_free(struct kpar_k8s_exec *x)
{
	size_t i;

	if (!x)
		return;
	exec_drop(x);
	free(x->command);
	free(x->api_version);
	kpar_strv_free(&x->args);
	for (i = 0; i < x->env.n; i++)
		explicit_bzero(x->env.v[i], strlen(x->env.v[i]));
	kpar_strv_free(&x->env);
	free(x);
}

static int load_exec(struct kpar_k8s_config *out, const struct loc *l, const yaml_node_t *m)
{
	struct kpar_k8s_exec *x = kpar_xcalloc(1, sizeof *x);
	yaml_node_t *args, *env;
	const char *cmd, *ver, *mode;
	char field[96];
	int rc, i;

	out->exec = x;
	if ((rc = get_str(l, m, "user.exec.command", "command", &cmd)) < 0)
		return rc;
	if (!cmd)
		return loc_err(KPAR_EINVAL, l, "user.exec.command", "missing");
	/* kubectl's rule: a path with a '/' is relative to the kubeconfig, a
	 * bare name is looked up in PATH when the plugin runs. */
	x->command = strchr(cmd, '/') ? resolve_path(l->f->dir, cmd) : kpar_xstrdup(cmd);
	if ((rc = get_str(l, m, "user.exec.apiVersion", "apiVersion", &ver)) < 0)
		return rc;
	if (!ver)
		return loc_err(KPAR_EINVAL, l, "user.exec.apiVersion", "missing");
	if (strcmp(ver, EXEC_V1) != 0 && strcmp(ver, EXEC_V1BETA1) != 0)
		return loc_err(KPAR_EINVAL, l, "user.exec.apiVersion",
			       "'%s' is not supported (use " EXEC_V1 " or " EXEC_V1BETA1 ")", ver);
	x->api_version = kpar_xstrdup(ver);
	if ((rc = get_str(l, m, "user.exec.interactiveMode", "interactiveMode", &mode)) < 0)
		return rc;
	if (mode && strcmp(mode, "Never") != 0 && strcmp(mode, "IfAvailable") != 0) {
		if (strcmp(mode, "Always") == 0)
			return loc_err(KPAR_EINVAL, l, "user.exec.interactiveMode",
				       "Always: kpar runs plugins without a terminal");
		return loc_err(KPAR_EINVAL, l, "user.exec.interactiveMode",
			       "'%s' is not Never, IfAvailable or Always", mode);
	}
	if ((rc = get_bool(l, m, "user.exec.provideClusterInfo", "provideClusterInfo",
			   &x->provide_cluster_info)) < 0)
		return rc;
	if ((rc = get_seq(l, m, "user.exec.args", "args", &args)) < 0)
		return rc;
	for (i = 0; i < seq_len(args); i++) {
		yaml_node_t *a = seq_at(l->f, args, i);

		snprintf(field, sizeof field, "user.exec.args[%d]", i);
		if (a->type != YAML_SCALAR_NODE)
			return loc_err(KPAR_EINVAL, l, field, "expected a string, found %s", kind_name(a));
		kpar_strv_push(&x->args, (const char *)a->data.scalar.value);
	}
	if ((rc = get_seq(l, m, "user.exec.env", "env", &env)) < 0)
		return rc;
	for (i = 0; i < seq_len(env); i++) {
		yaml_node_t *e = seq_at(l->f, env, i);
		const char *name, *value;
		char *kv;

		snprintf(field, sizeof field, "user.exec.env[%d]", i);
		if (e->type != YAML_MAPPING_NODE)
			return loc_err(KPAR_EINVAL, l, field, "expected a mapping, found %s", kind_name(e));
		snprintf(field, sizeof field, "user.exec.env[%d].name", i);
		if ((rc = get_str(l, e, field, "name", &name)) < 0)
			return rc;
		if (!name || strchr(name, '='))
			return loc_err(KPAR_EINVAL, l, field, name ? "contains '='" : "missing");
		snprintf(field, sizeof field, "user.exec.env[%d].value", i);
		if ((rc = get_str(l, e, field, "value", &value)) < 0)
			return rc;
		kv = kpar_xasprintf("%s=%s", name, value ? value : "");
		kpar_strv_push(&x->env, kv);
		explicit_bzero(kv, strlen(kv));
		free(kv);
	}
	return 0;
}

static int read_token_file(struct kpar_k8s_config *c, const char *field)
{
	struct kpar_buf b = KPAR_BUF_INIT;
	int rc = slurp(c->token_file, MAX_PEM_BYTES, &b);

	if (rc < 0)
		return kpar_error_set(rc == -ENOENT ? KPAR_ENOTFOUND : KPAR_EAUTH,
				      "%s %s: cannot read '%s': %s", c->auth_where, field,
				      c->token_file, read_errstr(-rc));
	trim_space(&b);
	if (b.len == 0 || has_ctl(b.data, b.len)) {
		rc = kpar_error_set(KPAR_EAUTH, "%s %s: '%s' %s", c->auth_where, field, c->token_file,
				    b.len == 0 ? "is empty" : "is not one line of text");
		wipe_buf(&b);
		return rc;
	}
	kpar_wipe_free(c->file_token);
	c->file_token = kpar_buf_detach(&b, NULL);
	return 0;
}

static int load_user(struct kpar_k8s_config *out, const struct loc *l, const yaml_node_t *m)
{
	static const char *const unsupported[] = { "auth-provider", "as", "as-uid", "as-groups",
						   "as-user-extra" };
	const char *token, *token_file, *user, *pass;
	yaml_node_t *exec, *n;
	char field[64];
	int rc, have_cert, have_key, methods = 0;
	size_t i;

	for (i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++) {
		snprintf(field, sizeof field, "user.%s", unsupported[i]);
		if ((rc = map_get(l, m, field, unsupported[i], &n)) < 0)
			return rc;
		if (rc > 0 && !is_null(n))
			return loc_err(KPAR_EINVAL, l, field, "not supported by kpar%s",
				       i == 0 ? " (use an exec plugin)" : "");
	}
	if ((rc = load_pem(l, m, "user", "client-certificate", "-----BEGIN CERTIFICATE-----",
			   "certificate", &out->cert_pem, &have_cert)) < 0 ||
	    (rc = load_pem(l, m, "user", "client-key", "PRIVATE KEY-----", "private key",
			   &out->key_pem, &have_key)) < 0)
		return rc;
	if (have_cert != have_key)
		return loc_err(KPAR_EINVAL, l, have_cert ? "user.client-key" : "user.client-certificate",
			       "missing (%s is set)", have_cert ? "client-certificate" : "client-key");
	if ((rc = get_str(l, m, "user.token", "token", &token)) < 0 ||
	    (rc = get_str(l, m, "user.tokenFile", "tokenFile", &token_file)) < 0 ||
	    (rc = get_str(l, m, "user.username", "username", &user)) < 0 ||
	    (rc = get_str(l, m, "user.password", "password", &pass)) < 0 ||
	    (rc = get_map(l, m, "user.exec", "exec", &exec)) < 0)
		return rc;
	methods = (token || token_file) + (user || pass) + (exec != NULL);
	if (methods > 1)
		return loc_err(KPAR_EINVAL, l, "user",
			       "more than one of token/tokenFile, username/password and exec is set");
	if (token && has_ctl(token, strlen(token)))
		return loc_err(KPAR_EINVAL, l, "user.token", "contains a control character");
	if (token)
		out->token = kpar_xstrdup(token);
	if (user)
		out->username = kpar_xstrdup(user);
	if (pass)
		out->password = kpar_xstrdup(pass);
	if (token_file) {
		/* client-go reads the file now (and then whenever it changes), and a
		 * file beside a token wins over it. */
		out->token_file = resolve_path(l->f->dir, token_file);
		if ((rc = read_token_file(out, "user.tokenFile")) < 0)
			return rc;
	}
	if (exec)
		return load_exec(out, l, exec);
	return 0;
}

/* ---- loading ------------------------------------------------------------ */

static int resolve(struct kpar_k8s_config *out, struct kfile *files, size_t nfiles,
		   const char *context, const char *list)
{
	struct loc cl, ul, xl;
	yaml_node_t *ctx = NULL, *cluster = NULL, *user = NULL;
	const struct kfile *cur_file = NULL;
	const char *name = NULL, *cluster_name, *user_name, *ns;
	size_t fi;
	int rc;

	for (fi = 0; fi < nfiles; fi++) {
		if ((rc = check_file(&files[fi])) < 0)
			return rc;
	}
	for (fi = 0; fi < nfiles && !cur_file; fi++) {
		struct loc l = { &files[fi], NULL, 0, NULL };
		const char *cur;

		if (files[fi].root && get_str(&l, files[fi].root, "current-context", "current-context",
					      &cur) == 0 && cur) {
			cur_file = &files[fi];
			if (!context || !*context)
				name = cur;
		}
	}
	if (context && *context)
		name = context;
	if (!name)
		return kpar_error_set(KPAR_ENOTFOUND, "kubeconfig '%s': current-context is not set "
				      "and no context was requested", list);
	rc = find_entry(files, nfiles, 2, name, &xl, &ctx);
	if (rc < 0)
		return KPAR_EINVAL;
	if (rc == 0)
		return kpar_error_set(KPAR_ENOTFOUND, "kubeconfig '%s': context \"%s\" (%s) not found",
				      context && *context ? list : cur_file->path, name,
				      context && *context ? "KPAR_CONTEXT" : "current-context");
	if ((rc = get_str(&xl, ctx, "context.cluster", "cluster", &cluster_name)) < 0 ||
	    (rc = get_str(&xl, ctx, "context.user", "user", &user_name)) < 0 ||
	    (rc = get_str(&xl, ctx, "context.namespace", "namespace", &ns)) < 0)
		return rc;
	out->source = kpar_xstrdup(xl.f->path);
	out->context = kpar_xstrdup(name);
	out->namespace = kpar_xstrdup(ns ? ns : "");
	if (!cluster_name)
		return loc_err(KPAR_EINVAL, &xl, "context.cluster", "missing");
	rc = find_entry(files, nfiles, 0, cluster_name, &cl, &cluster);
	if (rc < 0)
		return KPAR_EINVAL;
	if (rc == 0)
		return loc_err(KPAR_ENOTFOUND, &xl, "context.cluster", "cluster \"%s\" not found",
			       cluster_name);
	if ((rc = load_cluster(out, &cl, cluster)) < 0)
		return rc;
	/* A context without a user is anonymous access, which kubectl allows. */
	if (!user_name) {
		out->auth_where = kpar_xasprintf("kubeconfig '%s': context \"%s\"", xl.f->path, name);
		return 0;
	}
	rc = find_entry(files, nfiles, 1, user_name, &ul, &user);
	if (rc < 0)
		return KPAR_EINVAL;
	if (rc == 0)
		return loc_err(KPAR_ENOTFOUND, &xl, "context.user", "user \"%s\" not found", user_name);
	out->auth_where = loc_str(&ul);
	return load_user(out, &ul, user);
}

static void split_list(const char *list, struct kpar_strv *out)
{
	const char *p = list;

	while (*p) {
		size_t len = strcspn(p, ":"), i;
		int dup = 0;

		for (i = 0; len && i < out->n; i++) {
			if (strlen(out->v[i]) == len && strncmp(out->v[i], p, len) == 0)
				dup = 1;
		}
		if (len && !dup)
			kpar_strv_pushn(out, p, len);
		p += len;
		if (*p == ':')
			p++;
	}
}

int kpar_k8s_config_load(struct kpar_k8s_config *out, const char *kubeconfig, const char *context)
{
	struct kpar_strv paths = KPAR_STRV_INIT;
	struct kfile *files = NULL;
	size_t nfiles = 0, i;
	const char *home, *list;
	char *def = NULL;
	int rc = 0, from_list;

	memset(out, 0, sizeof *out);
	out->exec_timeout = EXEC_TIMEOUT_DEFAULT;
	if (!kubeconfig)
		kubeconfig = getenv("KUBECONFIG");
	from_list = kubeconfig && *kubeconfig;
	if (from_list) {
		split_list(kubeconfig, &paths);
		list = kubeconfig;
	} else {
		home = getenv("HOME");
		if (home && *home) {
			def = kpar_xasprintf("%s/.kube/config", home);
			kpar_strv_push(&paths, def);
		}
		list = def ? def : "$HOME/.kube/config";
	}
	files = kpar_xcalloc(paths.n + 1, sizeof *files);
	for (i = 0; i < paths.n; i++) {
		struct kpar_buf text = KPAR_BUF_INIT;
		struct kfile *f = &files[nfiles];
		int e = slurp(paths.v[i], MAX_CONFIG_BYTES, &text);

		if (e == -ENOENT)
			continue;
		f->path = kpar_xstrdup(paths.v[i]);
		f->dir = dir_of(paths.v[i]);
		nfiles++;
		if (e < 0) {
			rc = kpar_error_set(KPAR_EIO, "kubeconfig '%s': cannot read: %s", f->path,
					    read_errstr(-e));
			goto done;
		}
		rc = parse_yaml(f, &text);
		wipe_buf(&text);
		if (rc < 0)
			goto done;
	}
	if (nfiles == 0) {
		if (from_list) {
			rc = kpar_error_set(KPAR_ENOTFOUND, "KUBECONFIG '%s': none of the listed files exists",
					    kubeconfig);
		} else if (context && *context) {
			rc = kpar_error_set(KPAR_ENOTFOUND, "context \"%s\" requested but there is no "
					    "kubeconfig ('%s' does not exist and KUBECONFIG is unset)",
					    context, list);
		} else if (getenv("KUBERNETES_SERVICE_HOST") && *getenv("KUBERNETES_SERVICE_HOST")) {
			rc = kpar_k8s_config_in_cluster(out, NULL);
		} else {
			rc = kpar_error_set(KPAR_ENOTFOUND, "no Kubernetes configuration: KUBECONFIG is "
					    "unset, '%s' does not exist and KUBERNETES_SERVICE_HOST "
					    "is unset (not in a cluster)", list);
		}
		goto done;
	}
	rc = resolve(out, files, nfiles, context, nfiles == 1 ? files[0].path : list);
done:
	for (i = 0; i < nfiles; i++)
		kfile_free(&files[i]);
	free(files);
	free(def);
	kpar_strv_free(&paths);
	if (rc < 0) {
		/* Nothing half-loaded escapes; freeing again stays harmless. */
		kpar_k8s_config_free(out);
		out->exec_timeout = EXEC_TIMEOUT_DEFAULT;
	}
	return rc;
}

/* ---- in-cluster --------------------------------------------------------- */

int kpar_k8s_config_in_cluster(struct kpar_k8s_config *out, const char *dir)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
	struct kpar_buf b = KPAR_BUF_INIT;
	char *path;
	size_t i;
	int rc;

	memset(out, 0, sizeof *out);
	out->exec_timeout = EXEC_TIMEOUT_DEFAULT;
	if (!dir)
		dir = SA_DIR;
	if (!host || !*host || !port || !*port)
		return kpar_error_set(KPAR_ENOTFOUND, "in-cluster config: KUBERNETES_SERVICE_HOST and "
				      "KUBERNETES_SERVICE_PORT must both be set");
	for (i = 0; host[i]; i++) {
		if ((unsigned char)host[i] <= ' ' || strchr("/@[]?#", host[i]))
			return kpar_error_set(KPAR_EINVAL, "in-cluster config: KUBERNETES_SERVICE_HOST "
					      "'%s' is not a host name or address", host);
	}
	if (check_port(port, strlen(port)) < 0)
		return kpar_error_set(KPAR_EINVAL, "in-cluster config: KUBERNETES_SERVICE_PORT '%s' "
				      "is not a port", port);
	out->server = kpar_xasprintf(strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s", host,
				     port);
	out->source = kpar_xstrdup("in-cluster");
	out->context = kpar_xstrdup("");
	out->auth_where = kpar_xasprintf("in-cluster config (service account '%s')", dir);
	out->token_file = kpar_fs_join(dir, "token");
	if ((rc = read_token_file(out, "token")) < 0)
		goto fail;
	/* client-go goes on with the system's CAs when ca.crt is missing. */
	path = kpar_fs_join(dir, "ca.crt");
	rc = slurp(path, MAX_PEM_BYTES, &out->ca_pem);
	if (rc < 0 && rc != -ENOENT) {
		rc = kpar_error_set(KPAR_EIO, "%s: cannot read '%s': %s", out->auth_where, path,
				    read_errstr(-rc));
		free(path);
		goto fail;
	}
	if (rc == 0 && !pem_has(&out->ca_pem, "-----BEGIN CERTIFICATE-----")) {
		rc = kpar_error_set(KPAR_EINVAL, "%s: '%s' does not hold a PEM certificate",
				    out->auth_where, path);
		free(path);
		goto fail;
	}
	free(path);
	path = kpar_fs_join(dir, "namespace");
	rc = slurp(path, 4096, &b);
	free(path);
	trim_space(&b);
	out->namespace = rc == 0 && b.data ? kpar_buf_detach(&b, NULL) : kpar_xstrdup("");
	kpar_buf_free(&b);
	return 0;
fail:
	kpar_k8s_config_free(out);
	out->exec_timeout = EXEC_TIMEOUT_DEFAULT;
	return rc;
}

void kpar_k8s_config_free(struct kpar_k8s_config *c)
{
	free(c->source);
	free(c->context);
	free(c->namespace);
	free(c->server);
	free(c->tls_server_name);
	kpar_wipe_free(c->proxy_url);
	wipe_buf(&c->ca_pem);
	wipe_buf(&c->cert_pem);
	wipe_buf(&c->key_pem);
	kpar_wipe_free(c->token);
	free(c->token_file);
	free(c->username);
	kpar_wipe_free(c->password);
	exec_free(c->exec);
	free(c->auth_where);
	kpar_wipe_free(c->file_token);
	memset(c, 0, sizeof *c);
}

/* ---- exec plugins ------------------------------------------------------- */

static char *find_in_path(const char *cmd)
{
	const char *p = getenv("PATH");

	if (!p || !*p)
		p = "/usr/local/bin:/usr/bin:/bin";
	for (;;) {
		size_t len = strcspn(p, ":");
		char *dir = len ? kpar_xstrndup(p, len) : kpar_xstrdup(".");
		char *full = kpar_fs_join(dir, cmd);
		struct stat st;

		free(dir);
		if (stat(full, &st) == 0 && S_ISREG(st.st_mode) && access(full, X_OK) == 0)
			return full;
		free(full);
		if (!p[len])
			return NULL;
		p += len + 1;
	}
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian), as timegm would,
 * without touching TZ. */
static long long days_from_civil(int y, int m, int d)
{
	long long era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int digits(const char *s, int n, int *out)
{
	int i, v = 0;

	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

/* RFC 3339: 2006-01-02T15:04:05[.frac](Z|+hh:mm|-hh:mm). */
static int parse_rfc3339(const char *s, time_t *out)
{
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	const char *p;
	long long t;

	if (strlen(s) < 20 || digits(s, 4, &y) < 0 || s[4] != '-' || digits(s + 5, 2, &mo) < 0 ||
	    s[7] != '-' || digits(s + 8, 2, &d) < 0 || (s[10] != 'T' && s[10] != 't') ||
	    digits(s + 11, 2, &h) < 0 || s[13] != ':' || digits(s + 14, 2, &mi) < 0 ||
	    s[16] != ':' || digits(s + 17, 2, &sec) < 0)
		return -1;
	if (mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 60)
		return -1;
	{
		static const int mdays[12] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
		int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

		if (d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap))
			return -1;
	}
	p = s + 19;
	if (*p == '.') {
		if (p[1] < '0' || p[1] > '9')
			return -1;
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p == '-' ? -1 : 1;
		if (digits(p + 1, 2, &oh) < 0 || p[3] != ':' || digits(p + 4, 2, &om) < 0 || oh > 23 ||
		    om > 59)
			return -1;
		p += 6;
	} else {
		return -1;
	}
	if (*p)
		return -1;
	t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
	t -= sign * (oh * 3600 + om * 60);
	*out = (time_t)t;
	return 0;
}

/* The plugin's stderr, last STDERR_TAIL bytes, on one line, with any
 * secret the plugin also printed on stdout cut out. */
static void stderr_tail(int fd, const char *const *secrets, struct kpar_buf *out)
{
	char raw[STDERR_TAIL + 1];
	struct kpar_buf t = KPAR_BUF_INIT;
	off_t size = lseek(fd, 0, SEEK_END), from;
	ssize_t n;
	size_t i;
	int space = 1;

	if (size <= 0)
		return;
	from = size > STDERR_TAIL ? size - STDERR_TAIL : 0;
	n = pread(fd, raw, (size_t)(size - from), from);
	if (n <= 0)
		return;
	raw[n] = '\0';
	for (i = 0; secrets[i]; i++) {
		size_t sl = strlen(secrets[i]);
		char *hit;

		if (sl < 4)
			continue;
		while ((hit = memmem(raw, (size_t)n, secrets[i], sl)) != NULL)
			memset(hit, '*', sl);
	}
	if (from > 0)
		kpar_buf_puts(&t, "...");
	for (i = 0; i < (size_t)n; i++) {
		unsigned char ch = (unsigned char)raw[i];

		if (ch < ' ' || ch == 0x7f) {
			if (!space)
				kpar_buf_putc(&t, ' ');
			space = 1;
		} else {
			kpar_buf_putc(&t, (char)ch);
			space = ch == ' ';
		}
	}
	while (t.len > 0 && t.data[t.len - 1] == ' ')
		t.data[--t.len] = '\0';
	if (t.len)
		kpar_buf_printf(out, "; stderr: %s", t.data);
	explicit_bzero(raw, sizeof raw);
	kpar_buf_free(&t);
}

static int env_overridden(const struct kpar_strv *env, const char *entry)
{
	size_t i, len = strcspn(entry, "=");

	if (len == strlen("KUBERNETES_EXEC_INFO") && strncmp(entry, "KUBERNETES_EXEC_INFO", len) == 0)
		return 1;
	for (i = 0; i < env->n; i++) {
		if (strncmp(env->v[i], entry, len) == 0 && env->v[i][len] == '=')
			return 1;
	}
	return 0;
}

/* Reads the ExecCredential in out (stdout) into x; *what says what was
 * wrong. */
static int parse_credential(struct kpar_k8s_exec *x, const char *text, size_t len, cJSON **jout,
			    const char **what)
{
	cJSON *j = cJSON_ParseWithLength(text, len), *v, *status, *tok, *cert, *key, *exp;
	time_t expiry = 0;

	*jout = j;
	if (!cJSON_IsObject(j)) {
		*what = "printed no JSON ExecCredential on stdout";
		return -1;
	}
	v = cJSON_GetObjectItemCaseSensitive(j, "kind");
	if (!cJSON_IsString(v) || strcmp(v->valuestring, "ExecCredential") != 0) {
		*what = "printed JSON whose kind is not ExecCredential";
		return -1;
	}
	v = cJSON_GetObjectItemCaseSensitive(j, "apiVersion");
	if (!cJSON_IsString(v) || strcmp(v->valuestring, x->api_version) != 0) {
		*what = "answered with an apiVersion other than the one configured";
		return -1;
	}
	status = cJSON_GetObjectItemCaseSensitive(j, "status");
	if (!cJSON_IsObject(status)) {
		*what = "printed an ExecCredential without a status";
		return -1;
	}
	tok = cJSON_GetObjectItemCaseSensitive(status, "token");
	cert = cJSON_GetObjectItemCaseSensitive(status, "clientCertificateData");
	key = cJSON_GetObjectItemCaseSensitive(status, "clientKeyData");
	exp = cJSON_GetObjectItemCaseSensitive(status, "expirationTimestamp");
	if ((tok && !cJSON_IsString(tok) && !cJSON_IsNull(tok)) ||
	    (cert && !cJSON_IsString(cert) && !cJSON_IsNull(cert)) ||
	    (key && !cJSON_IsString(key) && !cJSON_IsNull(key))) {
		*what = "printed a status whose token or client certificate is not a string";
		return -1;
	}
	if (!cJSON_IsString(tok) || !*tok->valuestring)
		tok = NULL;
	if (!cJSON_IsString(cert) || !*cert->valuestring)
		cert = NULL;
	if (!cJSON_IsString(key) || !*key->valuestring)
		key = NULL;
	if (!cert != !key) {
		*what = "printed only one of status.clientCertificateData and status.clientKeyData";
		return -1;
	}
	if (!tok && !cert) {
		*what = "printed neither status.token nor status.clientCertificateData/clientKeyData";
		return -1;
	}
	if (tok && has_ctl(tok->valuestring, strlen(tok->valuestring))) {
		*what = "printed a status.token with a control character";
		return -1;
	}
	if (cert && (!strstr(cert->valuestring, "-----BEGIN CERTIFICATE-----") ||
		     !strstr(key->valuestring, "PRIVATE KEY-----"))) {
		*what = "printed a client certificate or key that is not PEM";
		return -1;
	}
	if (exp && !cJSON_IsNull(exp) &&
	    (!cJSON_IsString(exp) || parse_rfc3339(exp->valuestring, &expiry) < 0)) {
		*what = "printed a status.expirationTimestamp that is not an RFC 3339 time";
		return -1;
	}
	exec_drop(x);
	if (tok)
		x->token = kpar_xstrdup(tok->valuestring);
	if (cert) {
		kpar_buf_puts(&x->cert_pem, cert->valuestring);
		x->key_pem.data = kpar_xstrdup(key->valuestring);
		x->key_pem.len = strlen(key->valuestring);
		x->key_pem.cap = x->key_pem.len + 1;
	}
	x->expiry = expiry;
	x->have = 1;
	return 0;
}

/* KUBERNETES_EXEC_INFO=<ExecCredential>: kubectl's input to the plugin,
 * with the cluster when the kubeconfig asks for it (provideClusterInfo). */
static char *exec_info(const struct kpar_k8s_config *c)
{
	cJSON *j = cJSON_CreateObject(), *spec, *cl;
	char *json, *out;

	cJSON_AddStringToObject(j, "apiVersion", c->exec->api_version);
	cJSON_AddStringToObject(j, "kind", "ExecCredential");
	spec = cJSON_AddObjectToObject(j, "spec");
	if (c->exec->provide_cluster_info) {
		cl = cJSON_AddObjectToObject(spec, "cluster");
		cJSON_AddStringToObject(cl, "server", c->server ? c->server : "");
		if (c->tls_server_name)
			cJSON_AddStringToObject(cl, "tls-server-name", c->tls_server_name);
		if (c->insecure)
			cJSON_AddTrueToObject(cl, "insecure-skip-tls-verify");
		if (c->ca_pem.len) {
			char *b = kpar_xmalloc((c->ca_pem.len + 2) / 3 * 4 + 1);

			EVP_EncodeBlock((unsigned char *)b, (const unsigned char *)c->ca_pem.data,
					(int)c->ca_pem.len);
			cJSON_AddStringToObject(cl, "certificate-authority-data", b);
			free(b);
		}
		if (c->proxy_url)
			cJSON_AddStringToObject(cl, "proxy-url", c->proxy_url);
	}
	cJSON_AddFalseToObject(spec, "interactive");
	json = cJSON_PrintUnformatted(j);
	out = kpar_xasprintf("KUBERNETES_EXEC_INFO=%s", json ? json : "{}");
	if (json) {
		explicit_bzero(json, strlen(json));
		cJSON_free(json);
	}
	wipe_json(j);
	cJSON_Delete(j);
	return out;
}

static int exec_run(struct kpar_k8s_config *c)
{
	static const char wrapper[] = "f=$1; shift; exec \"$@\" 2>\"$f\"";
	struct kpar_k8s_exec *x = c->exec;
	struct kpar_strv argv = KPAR_STRV_INIT, envp = KPAR_STRV_INIT;
	struct kpar_buf msg = KPAR_BUF_INIT;
	struct kpar_capture cap;
	struct kpar_proc_status st;
	struct kpar_proc p;
	const char *secrets[3] = { NULL, NULL, NULL }, *what = NULL;
	const char *tmp = getenv("TMPDIR");
	char *prog, *info, *errpath;
	cJSON *j = NULL;
	int errfd, rc = 0, code = KPAR_EAUTH;
	size_t i;

	prog = strchr(x->command, '/') ? kpar_xstrdup(x->command) : find_in_path(x->command);
	if (!prog)
		return kpar_error_set(KPAR_EAUTH, "%s user.exec: command '%s' not found in PATH",
				      c->auth_where, x->command);
	/* The plugin's stdout is the credential and its stderr the diagnostics:
	 * kpar_proc_run captures one merged stream, so stderr is sent to a
	 * private file by a shell that then becomes the plugin. */
	errpath = kpar_xasprintf("%s/kpar-exec-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	errfd = mkstemp(errpath);
	if (errfd < 0) {
		rc = kpar_error_errno(KPAR_EIO, "%s user.exec: cannot create a temporary file in '%s'",
				      c->auth_where, tmp && *tmp ? tmp : "/tmp");
		free(errpath);
		free(prog);
		return rc;
	}
	kpar_strv_push(&argv, "/bin/sh");
	kpar_strv_push(&argv, "-c");
	kpar_strv_push(&argv, wrapper);
	kpar_strv_push(&argv, "kpar-exec-plugin");
	kpar_strv_push(&argv, errpath);
	kpar_strv_push(&argv, prog);
	for (i = 0; i < x->args.n; i++)
		kpar_strv_push(&argv, x->args.v[i]);
	for (i = 0; environ[i]; i++) {
		if (!env_overridden(&x->env, environ[i]))
			kpar_strv_push(&envp, environ[i]);
	}
	for (i = 0; i < x->env.n; i++)
		kpar_strv_push(&envp, x->env.v[i]);
	info = exec_info(c);
	kpar_strv_push(&envp, info);
	explicit_bzero(info, strlen(info));
	free(info);

	memset(&p, 0, sizeof p);
	p.path = "/bin/sh";
	p.argv = argv.v;
	p.envp = envp.v;
	p.timeout = c->exec_timeout > 0 ? c->exec_timeout : EXEC_TIMEOUT_DEFAULT;
	p.kill_grace = 2;
	kpar_capture_init(&cap, MAX_EXEC_OUTPUT, 0);
	rc = kpar_proc_run(&p, &cap, &st);
	if (rc < 0) {
		kpar_error_prefix(rc, "%s user.exec: command '%s'", c->auth_where, x->command);
		goto done;
	}
	if (st.spawn_error) {
		kpar_buf_printf(&msg, "cannot be started (/bin/sh: %s)", strerror(st.spawn_error));
		code = KPAR_EIO;
	} else if (st.interrupted) {
		what = "interrupted";
		code = KPAR_EINTR;
	} else if (st.timed_out) {
		kpar_buf_printf(&msg, "did not finish within %g s", p.timeout);
	} else if (!st.exited) {
		kpar_buf_printf(&msg, "was killed by signal %d", st.signo);
	} else if (st.exit_code != 0) {
		kpar_buf_printf(&msg, "exited with status %d", st.exit_code);
	} else if (cap.total > cap.head_len) {
		what = "printed more than 1 MiB";
	} else if (parse_credential(x, cap.head, cap.head_len, &j, &what) == 0) {
		goto done;
	}
	if (j) {
		cJSON *status = cJSON_GetObjectItemCaseSensitive(j, "status");
		cJSON *tok = cJSON_GetObjectItemCaseSensitive(status, "token");
		cJSON *key = cJSON_GetObjectItemCaseSensitive(status, "clientKeyData");

		secrets[0] = cJSON_IsString(tok) ? tok->valuestring : NULL;
		secrets[secrets[0] ? 1 : 0] = cJSON_IsString(key) ? key->valuestring : NULL;
	}
	if (what)
		kpar_buf_puts(&msg, what);
	stderr_tail(errfd, secrets, &msg);
	rc = kpar_error_set(code, "%s user.exec: command '%s' %s", c->auth_where, x->command,
			    msg.data);
done:
	if (j) {
		wipe_json(j);
		cJSON_Delete(j);
	}
	explicit_bzero(cap.head, cap.head_max);
	kpar_capture_free(&cap);
	close(errfd);
	unlink(errpath);
	free(errpath);
	kpar_buf_free(&msg);
	kpar_strv_free(&argv);
	for (i = 0; i < envp.n; i++)
		explicit_bzero(envp.v[i], strlen(envp.v[i]));
	kpar_strv_free(&envp);
	free(prog);
	return rc;
}

int kpar_k8s_config_auth(struct kpar_k8s_config *c, int refresh, const char **token,
			 const struct kpar_buf **cert_pem, const struct kpar_buf **key_pem)
{
	int rc;

	*token = NULL;
	*cert_pem = &c->cert_pem;
	*key_pem = &c->key_pem;
	if (c->exec) {
		struct kpar_k8s_exec *x = c->exec;

		if (x->have && (refresh || (x->expiry && time(NULL) >= x->expiry - EXEC_MARGIN)))
			exec_drop(x);
		if (!x->have && (rc = exec_run(c)) < 0)
			return rc;
		*token = x->token;
		if (x->cert_pem.len) {
			*cert_pem = &x->cert_pem;
			*key_pem = &x->key_pem;
		}
		return 0;
	}
	if (c->token_file) {
		rc = read_token_file(c, strcmp(c->source ? c->source : "", "in-cluster") == 0 ?
				     "token" : "user.tokenFile");
		if (rc < 0)
			return rc;
		*token = c->file_token;
		return 0;
	}
	*token = c->token;
	return 0;
}
