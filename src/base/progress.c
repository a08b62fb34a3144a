/* progress.c - the live progress line and its plain-text fallback. */
#include "config.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/progress.h"

double kpar_progress_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void kpar_progress_init(struct kpar_progress *p, FILE *out, const char *mode, size_t total, long workers)
{
	memset(p, 0, sizeof *p);
	p->out = out;
	p->total = total;
	p->workers = workers > 0 ? workers : 1;
	p->scale = 1.0;
	p->started = p->last_line = kpar_progress_now();
	p->heartbeat = 30;
	if (strcmp(mode, "always") == 0)
		p->live = 1;
	else if (strcmp(mode, "auto") == 0)
		p->live = isatty(fileno(out));
	/* https://no-color.org: present and not empty means no colour */
	p->color = isatty(fileno(out)) && !(getenv("NO_COLOR") && *getenv("NO_COLOR"));
}

static void fmt_time(char *buf, size_t n, double s)
{
	long t = (long)(s + 0.5);
	if (t >= 3600)
		snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
	else
		snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

static void status(struct kpar_progress *p, const char *prefix)
{
	char el[32], eta[32];
	size_t pending = p->total - p->done - p->running;
	double left = p->est_remaining * p->scale / (double)p->workers;

	fmt_time(el, sizeof el, kpar_progress_now() - p->started);
	fmt_time(eta, sizeof eta, left > 0 ? left : 0);
	fprintf(p->out, "%skpar: buckets %zu/%zu done, %zu running, %zu pending | %zu test%s, %zu failed, "
		"%zu error%s | %s elapsed, ~%s left", prefix, p->done, p->total, p->running, pending,
		p->tests_done, kpar_buf_plural(p->tests_done), p->failed_tests, p->error_tests,
		kpar_buf_plural(p->error_tests), el, eta);
}

static void draw(struct kpar_progress *p)
{
	status(p, "\r\033[K");
	fflush(p->out);
	p->shown = 1;
}

void kpar_progress_tick(struct kpar_progress *p)
{
	double now;

	if (p->live) {
		draw(p);
		return;
	}
	now = kpar_progress_now();
	if (now - p->last_line >= p->heartbeat) {
		status(p, "");
		fputc('\n', p->out);
		fflush(p->out);
		p->last_line = now;
	}
}

void kpar_progress_line(struct kpar_progress *p, const char *fmt, ...)
{
	va_list ap;

	if (p->live && p->shown)
		fputs("\r\033[K", p->out);
	va_start(ap, fmt);
	vfprintf(p->out, fmt, ap);
	va_end(ap);
	fputc('\n', p->out);
	p->last_line = kpar_progress_now();
	if (p->live)
		draw(p);
	else
		fflush(p->out);
}

void kpar_progress_end(struct kpar_progress *p)
{
	if (p->live && p->shown) {
		draw(p);
		fputc('\n', p->out);
		fflush(p->out);
	}
}
