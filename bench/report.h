/*
 * The result lines the host tools and the probe guest both print, formatted
 * by the same code so that a test or a benchmark compares them as text
 * (docs/probe.md describes every key).  Each line is "NAME: key=value ...",
 * with the keys that must agree between host and guest first.
 */
#ifndef GVM_BENCH_REPORT_H
#define GVM_BENCH_REPORT_H

#include <stddef.h>
#include <stdint.h>

struct spmv_report {
	const char *matrix; /* "gen:ROWS:PER_ROW:SEED" or the file name */
	uint32_t rows, cols;
	uint64_t nnz;
	uint64_t checksum; /* of y = A x, see bench/checksum.h */
	unsigned iters, threads;
	const char *placement;
	uint64_t cycles; /* TSC cycles for all iterations, first start to last end */
	uint64_t tsc_khz; /* 0: unknown, no GFLOP/s */
};

struct memcpy_report {
	unsigned threads;
	uint64_t size; /* bytes per copy and thread */
	unsigned reps;
	const char *method;
	const char *placement;
	uint64_t cycles; /* first start to last end */
	uint64_t tsc_khz;
	int verified; /* every destination equals the source */
};

/* Floating-point operations of the SpMV run: two per entry and iteration. */
double spmv_report_gflops(const struct spmv_report *r);
double memcpy_report_gbps(const struct memcpy_report *r);

int spmv_report_line(char *buf, size_t size, const struct spmv_report *r);
int memcpy_report_line(char *buf, size_t size, const struct memcpy_report *r);

#endif
