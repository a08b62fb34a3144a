/* error.h - kpar's one error convention.
 *
 * Every libkpar function that can fail returns an int: 0 on success, a
 * negative kpar_error code on failure, and leaves a human-readable message
 * naming the offending input in a thread-local slot (kpar_error_last()).
 * Callers add context with kpar_error_prefix() on the way up, so the tool
 * prints one line such as
 *   kpar: plan: test list '.kpar/tests.list': line 3: control character in test id
 */
#ifndef KPAR_ERROR_H
#define KPAR_ERROR_H

#include <stdarg.h>

enum kpar_error {
	KPAR_OK = 0,
	KPAR_EGENERIC = -1,
	KPAR_ENOMEM = -2,
	KPAR_EIO = -3,        /* a file or pipe operation failed */
	KPAR_EINVAL = -4,     /* bad input: malformed file, bad name, bad option */
	KPAR_ENOTFOUND = -5,  /* a named thing does not exist */
	KPAR_EDB = -6,        /* the state database refused */
	KPAR_ENET = -7,       /* network or protocol failure */
	KPAR_EAUTH = -8,      /* credentials refused or missing */
	KPAR_ECHANGED = -9,   /* inputs differ from what a resume expects */
	KPAR_EINTR = -10,     /* interrupted by a signal; state is resumable */
	KPAR_ECHECKSUM = -11, /* content does not match its digest */
	KPAR_EBUSY = -12,     /* held by another process */
	KPAR_ELIB = -13       /* a library opened on first use is missing or unusable */
};

/* Sets the message and returns code, so `return kpar_error_set(...)` reads well. */
int kpar_error_set(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int kpar_error_setv(int code, const char *fmt, va_list ap);
/* As kpar_error_set, appending ": strerror(errno)". */
int kpar_error_errno(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Prepends "<context>: " to the current message; returns code unchanged. */
int kpar_error_prefix(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The last message of this thread, never NULL ("" when none). Borrowed. */
const char *kpar_error_last(void);
int kpar_error_code(void);
void kpar_error_clear(void);

#endif
