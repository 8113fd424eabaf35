/* The time-stamp counter: the clock both the host tools and the guest use. */
#ifndef GVM_BENCH_TSC_H
#define GVM_BENCH_TSC_H

#include <stdint.h>

static inline uint64_t tsc_read(void)
{
	uint32_t lo, hi;

	__asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
	return (uint64_t)hi << 32 | lo;
}

static inline void cpu_relax(void)
{
	__asm__ volatile("pause" : : : "memory");
}

#endif
