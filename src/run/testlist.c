/* testlist.c - gathering and checking test ids. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/error.h"
#include "base/fs.h"
#include "run/testlist.h"

/* Length of the UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len, i;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0)
		len = 2, cp = s[0] & 0x1f;
	else if ((s[0] & 0xf0) == 0xe0)
		len = 3, cp = s[0] & 0x0f;
	else if ((s[0] & 0xf8) == 0xf0)
		len = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* Reject overlong forms, surrogates and values past U+10FFFF. */
	if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
		return 0;
	return len;
}

int kpar_testlist_check_id(const char *id, size_t len, const char *origin, size_t line)
{
	const unsigned char *s = (const unsigned char *)id;
	size_t i = 0;

	if (len == 0)
		return kpar_error_set(KPAR_EINVAL, "%s: line %zu: empty test id", origin, line);
	while (i < len) {
		size_t n;
		if (s[i] < 0x20 || s[i] == 0x7f)
			return kpar_error_set(KPAR_EINVAL,
				"%s: line %zu: test id has control character 0x%02x at byte %zu",
				origin, line, s[i], i + 1);
		n = utf8_len(s + i, len - i);
		if (n == 0)
			return kpar_error_set(KPAR_EINVAL,
				"%s: line %zu: test id is not valid UTF-8 at byte %zu", origin, line, i + 1);
		i += n;
	}
	return 0;
}

int kpar_testlist_parse(const char *text, size_t len, const char *origin, struct kpar_strv *out)
{
	size_t pos = 0, line = 0;
	int rc;

	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t end = nl ? (size_t)(nl - text) : len, n = end - pos;

		line++;
		if (n > 0 && text[pos + n - 1] == '\r')
			n--;
		if (n > 0) {
			if ((rc = kpar_testlist_check_id(text + pos, n, origin, line)) < 0)
				return rc;
			kpar_strv_pushn(out, text + pos, n);
		}
		pos = end + 1;
	}
	return 0;
}

int kpar_testlist_from_words(const char *words, struct kpar_strv *out)
{
	const char *p = words;
	int rc;

	while (*p) {
		size_t n;
		while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
			p++;
		n = strcspn(p, " \t\n\r");
		if (n == 0)
			break;
		if ((rc = kpar_testlist_check_id(p, n, "KPAR_TESTS", 1)) < 0)
			return rc;
		kpar_strv_pushn(out, p, n);
		p += n;
	}
	return 0;
}

int kpar_testlist_from_cmd(const char *cmd, const char *dir, struct kpar_strv *out)
{
	int outp[2], errp[2], status, rc = 0;
	struct kpar_buf ob = KPAR_BUF_INIT, eb = KPAR_BUF_INIT;
	struct pollfd pf[2];
	pid_t pid;
	char origin[256];

	if (pipe2(outp, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0)
		return kpar_error_errno(KPAR_EIO, "KPAR_LIST_CMD: cannot create pipe");
	pid = fork();
	if (pid < 0)
		return kpar_error_errno(KPAR_EIO, "KPAR_LIST_CMD: cannot fork");
	if (pid == 0) {
		dup2(outp[1], 1);
		dup2(errp[1], 2);
		if (dir && chdir(dir) < 0)
			_exit(126);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	close(outp[1]);
	close(errp[1]);
	pf[0].fd = outp[0];
	pf[1].fd = errp[0];
	pf[0].events = pf[1].events = POLLIN;
	while (pf[0].fd >= 0 || pf[1].fd >= 0) {
		int i;
		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (i = 0; i < 2; i++) {
			struct kpar_buf *b = i == 0 ? &ob : &eb;
			ssize_t n;
			if (pf[i].fd < 0 || !pf[i].revents)
				continue;
			kpar_buf_grow(b, 65536);
			n = read(pf[i].fd, b->data + b->len, 65536);
			if (n > 0) {
				b->len += (size_t)n;
				b->data[b->len] = '\0';
			} else if (n == 0 || errno != EINTR) {
				close(pf[i].fd);
				pf[i].fd = -1;
			}
		}
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	snprintf(origin, sizeof origin, "output of KPAR_LIST_CMD");
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		const char *tail = eb.data ? eb.data : "";
		if (eb.len > 1000)
			tail = eb.data + eb.len - 1000;
		rc = kpar_error_set(KPAR_EINVAL, "KPAR_LIST_CMD '%s' failed (%s %d)%s%s", cmd,
				    WIFEXITED(status) ? "exit status" : "signal",
				    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status),
				    *tail ? ": " : "", tail);
	} else if (ob.len && memchr(ob.data, '\0', ob.len)) {
		rc = kpar_error_set(KPAR_EINVAL, "%s: contains a NUL byte; print one test id per line", origin);
	} else {
		rc = kpar_testlist_parse(ob.data ? ob.data : "", ob.len, origin, out);
	}
	kpar_buf_free(&ob);
	kpar_buf_free(&eb);
	return rc;
}

void kpar_testlist_canonicalise(struct kpar_strv *list)
{
	kpar_strv_sort(list);
	kpar_strv_uniq(list);
}

void kpar_testlist_format(const struct kpar_strv *list, struct kpar_buf *out)
{
	size_t i;

	for (i = 0; i < list->n; i++) {
		kpar_buf_puts(out, list->v[i]);
		kpar_buf_putc(out, '\n');
	}
	if (!out->data)
		kpar_buf_grow(out, 0), out->data[0] = '\0';
}

int kpar_testlist_read(const char *path, struct kpar_strv *out)
{
	char *text;
	size_t len;
	int rc = kpar_fs_read_all(path, &text, &len);

	if (rc < 0)
		return rc;
	rc = kpar_testlist_parse(text, len, path, out);
	free(text);
	return rc;
}
