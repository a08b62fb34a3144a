/* error.c - the thread-local error slot behind kpar_error_*. */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/error.h"

#define KPAR_ERROR_MAX 2048

static _Thread_local char error_msg[KPAR_ERROR_MAX];
static _Thread_local int error_code;

int kpar_error_setv(int code, const char *fmt, va_list ap)
{
	vsnprintf(error_msg, sizeof error_msg, fmt, ap);
	error_code = code;
	return code;
}

int kpar_error_set(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	kpar_error_setv(code, fmt, ap);
	va_end(ap);
	return code;
}

int kpar_error_errno(int code, const char *fmt, ...)
{
	int saved = errno;
	size_t len;
	va_list ap;

	va_start(ap, fmt);
	kpar_error_setv(code, fmt, ap);
	va_end(ap);
	len = strlen(error_msg);
	if (len < sizeof error_msg)
		snprintf(error_msg + len, sizeof error_msg - len, ": %s", strerror(saved));
	errno = saved;
	return code;
}

int kpar_error_prefix(int code, const char *fmt, ...)
{
	char prefix[KPAR_ERROR_MAX], old[KPAR_ERROR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	memcpy(old, error_msg, sizeof old);
	/* Truncation keeps the head, which names the outermost context. */
	if (snprintf(error_msg, sizeof error_msg, "%s: %s", prefix, old) < 0)
		error_msg[0] = '\0';
	if (error_code == 0)
		error_code = code;
	return code;
}

const char *kpar_error_last(void)
{
	return error_msg;
}

int kpar_error_code(void)
{
	return error_code;
}

void kpar_error_clear(void)
{
	error_msg[0] = '\0';
	error_code = 0;
}
