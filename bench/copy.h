/*
 * The copy kernels of the memcpy microbenchmark, shared by the host tool and
 * the probe guest.  Baseline x86-64 only (the guest CPUID is conservative):
 *   rep  - one "rep movsb" (fast-string microcode on every current CPU);
 *   sse2 - 16-byte aligned SSE2 loads and stores, 64 bytes per iteration.
 */
#ifndef GVM_BENCH_COPY_H
#define GVM_BENCH_COPY_H

#include <stddef.h>
#include <stdint.h>

enum copy_method { COPY_REP, COPY_SSE2 };

/* Returns 0, or -1 if name is neither "rep" nor "sse2". */
int copy_method_parse(const char *name, enum copy_method *m);
const char *copy_method_name(enum copy_method m);

/* dst and src 64-byte aligned, n a multiple of 64. */
void copy_run(enum copy_method m, void *dst, const void *src, size_t n);

/* Deterministic source contents: word i of the buffer is a hash of (seed, i). */
void copy_fill(void *buf, size_t n, uint64_t seed);

#endif
