/* Error messages from the freestanding bench code (no errno, no stdio). */
#ifndef GVM_BENCH_ERR_H
#define GVM_BENCH_ERR_H

#include "bench/fmt.h"

#define BENCH_ERR_MAX 256

struct bench_err {
	char msg[BENCH_ERR_MAX];
};

/* Fills err (if not NULL) and returns -1, for `return bench_fail(err, ...)`. */
int bench_fail(struct bench_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
