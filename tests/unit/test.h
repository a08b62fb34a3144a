/* test.h - the small unit-test harness of every unit test in tests/unit.
 *
 * A test file defines functions with KPAR_TEST(name) and lists them in
 * KPAR_TEST_MAIN(...).  Each check prints file:line and what differed, and the
 * program exits 1 if any check failed, so automake's harness reports it.  A
 * single test can be run by name: ./test_buf shell_quote
 */
#ifndef KPAR_TEST_H
#define KPAR_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int kpar_test_failures;
static int kpar_test_checks;

#define KPAR_TEST(name) static void test_##name(void)

#define CHECK(cond) do { kpar_test_checks++; if (!(cond)) { \
	fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
	kpar_test_failures++; } } while (0)

#define CHECK_INT(a, b) do { long long a_ = (long long)(a), b_ = (long long)(b); \
	kpar_test_checks++; if (a_ != b_) { \
	fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n", __FILE__, __LINE__, \
		#a, a_, #b, b_); kpar_test_failures++; } } while (0)

#define CHECK_STR(a, b) do { const char *a_ = (a), *b_ = (b); \
	kpar_test_checks++; if (!a_ || !b_ || strcmp(a_, b_) != 0) { \
	fprintf(stderr, "%s:%d: %s == \"%s\", expected \"%s\"\n", __FILE__, __LINE__, \
		#a, a_ ? a_ : "(null)", b_ ? b_ : "(null)"); kpar_test_failures++; } } while (0)

/* rc is a kpar return code; prints kpar_error_last() when it is negative. */
#define CHECK_OK(rc) do { int rc_ = (rc); kpar_test_checks++; if (rc_ < 0) { \
	fprintf(stderr, "%s:%d: %s failed (%d): %s\n", __FILE__, __LINE__, #rc, rc_, \
		kpar_error_last()); kpar_test_failures++; } } while (0)

struct kpar_test_case { const char *name; void (*fn)(void); };
#define KPAR_CASE(name) { #name, test_##name }

#define KPAR_TEST_MAIN(...) \
int main(int argc, char **argv) { \
	static const struct kpar_test_case cases[] = { __VA_ARGS__ }; \
	size_t i, ran = 0; \
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) { \
		if (argc > 1 && strcmp(argv[1], cases[i].name) != 0) continue; \
		int before = kpar_test_failures; \
		cases[i].fn(); ran++; \
		printf("%s %s\n", kpar_test_failures == before ? "ok" : "FAIL", cases[i].name); \
	} \
	printf("%zu cases, %d checks, %d failed\n", ran, kpar_test_checks, kpar_test_failures); \
	return kpar_test_failures || ran == 0 ? 1 : 0; \
}

#endif
