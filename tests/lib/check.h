/*
 * A small unit-test harness: CHECK records a failure and goes on, so one
 * run shows every broken expectation; check_summary() prints the counts and
 * gives main's exit status.
 */
#ifndef GVM_TESTS_CHECK_H
#define GVM_TESTS_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/*
 * A forked child ends with _exit, which skips the handler that writes a
 * --coverage build's counts (tools/coverage): check_exit writes them first.
 * __gcov_exit exists only in such a build.
 */
extern void __gcov_exit(void) __attribute__((weak));

static inline __attribute__((__noreturn__)) void check_exit(int status)
{
	if (__gcov_exit)
		__gcov_exit();
	_exit(status);
}

struct check_state {
	unsigned checks, failures;
	const char *current;
};

static struct check_state check_state;

#define CHECK(cond) \
	do { \
		check_state.checks++; \
		if (!(cond)) { \
			check_state.failures++; \
			fprintf(stderr, "%s:%d: %s: CHECK failed: %s\n", __FILE__, __LINE__, \
				check_state.current, #cond); \
		} \
	} while (0)

#define CHECK_EQ(a, b) \
	do { \
		uint64_t check_a_ = (uint64_t)(a), check_b_ = (uint64_t)(b); \
		check_state.checks++; \
		if (check_a_ != check_b_) { \
			check_state.failures++; \
			fprintf(stderr, "%s:%d: %s: CHECK failed: %s == %s (0x%" PRIx64 " != 0x%" PRIx64 ")\n", \
				__FILE__, __LINE__, check_state.current, #a, #b, check_a_, check_b_); \
		} \
	} while (0)

#define CHECK_STR(a, b) \
	do { \
		const char *check_a_ = (a), *check_b_ = (b); \
		check_state.checks++; \
		if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_)) { \
			check_state.failures++; \
			fprintf(stderr, "%s:%d: %s: CHECK failed: %s == %s (\"%s\" != \"%s\")\n", \
				__FILE__, __LINE__, check_state.current, #a, #b, \
				check_a_ ? check_a_ : "(null)", check_b_ ? check_b_ : "(null)"); \
		} \
	} while (0)

#define RUN(fn) \
	do { \
		unsigned check_before_ = check_state.failures; \
		check_state.current = #fn; \
		fn(); \
		printf("%s %s\n", check_state.failures == check_before_ ? "ok  " : "FAIL", #fn); \
	} while (0)

static inline int check_summary(void)
{
	printf("%u checks, %u failed\n", check_state.checks, check_state.failures);
	return check_state.failures ? 1 : 0;
}

#endif
