/* The probe's user-mode runtime: requests, console, memory, threads. */
#ifndef PROBE_ULIB_H
#define PROBE_ULIB_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "bench/tsc.h"
#include "images/probe/abi.h"

extern struct probe_bootinfo probe_bootinfo;
extern char _uthread[];

/* Requests to the kernel: UD2 with the number in rax (see layout.h). */
static inline long sys_call(long nr, long a, long b, long c, long d)
{
	register long rcx __asm__("rcx") = d;
	long r;

	__asm__ volatile("ud2" : "=a"(r) : "a"(nr), "D"(a), "S"(b), "d"(c), "r"(rcx) : "memory");
	return r;
}

__attribute__((noreturn)) static inline void sys_exit(int status)
{
	sys_call(SYS_EXIT, status, 0, 0, 0);
	for (;;)
		;
}

/* ulib.c: strings, console, options */
size_t ustrlen(const char *s);
int ustreq(const char *a, const char *b);
int ustartswith(const char *s, const char *prefix);
void con_write(const char *s, size_t n);
void uprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Failures: counted, printed as "error: ..." lines, turning the result into FAIL. */
void ufail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
unsigned ufailures(void);

/* Decimal number, or a size with K/M/G suffix (binary). Returns 0 or -1. */
int uparse_u64(const char *s, uint64_t *out);
int uparse_size(const char *s, uint64_t *out);

/* alloc.c: per-node bump allocators over the heaps the kernel gave each node. */
void node_alloc_init(void);
void *node_alloc(unsigned node, uint64_t size); /* 4 KiB aligned; NULL when full */
uint64_t node_alloc_mark(unsigned node);
void node_alloc_release(unsigned node, uint64_t mark);
uint64_t node_free(unsigned node);

/* team.c: one thread per CPU, running jobs the boot thread posts. */
struct team_info {
	unsigned nthreads;           /* = CPUs up, or 1 if only the boot thread was asked for */
	unsigned cpu[PROBE_MAX_CPUS]; /* thread id -> CPU index */
	unsigned node[PROBE_MAX_CPUS]; /* thread id -> node index */
	unsigned nnodes;
};

extern struct team_info team;

/* The threads, one per CPU up; with all 0, the boot thread alone (the other CPUs stay halted). */
int team_start(int all);
/* Run fn(tid, arg) on every thread (the caller is thread 0) and wait for all. */
void team_run(void (*fn)(unsigned tid, void *arg), void *arg);
/* Inside a job: wait until every thread got here. */
void team_barrier(unsigned tid);
/* The first thread of each node, for per-node work. */
int team_node_leader(unsigned tid);

static inline uint64_t atomic_xadd(volatile uint64_t *p, uint64_t v)
{
	__asm__ volatile("lock xaddq %0, %1" : "+r"(v), "+m"(*p) : : "memory");
	return v;
}

#endif
