/*
 * Host side of the benchmark tools: pinned worker threads, NUMA placement,
 * the TSC rate, and reading a matrix (file or generated) into a CSR.  "Host"
 * as opposed to the probe guest, which has no libc: these tools also run in
 * the Linux guest (its /usr/local/bin), where they are the jobs' workloads.
 */
#ifndef GVM_BENCH_HOST_H
#define GVM_BENCH_HOST_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "bench/csr.h"

struct host_team {
	unsigned nthreads;
	int *cpus; /* thread id's CPU, or -1 when it could not be pinned */
	pthread_barrier_t barrier;
	/* host_team_spin's state */
	_Atomic unsigned spin_count, spin_sense;
	void (*fn)(struct host_team *team, unsigned id, void *arg);
	void *arg;
};

/*
 * Run fn(team, id, arg) on nthreads threads, thread id pinned to the id-th
 * CPU this process may use (round robin); returns when all are done.
 */
void host_team_run(unsigned nthreads, void (*fn)(struct host_team *, unsigned, void *),
		   void *arg);
void host_team_wait(struct host_team *team);

/*
 * A barrier that spins in user mode: no system call, so the threads leave it
 * within a few hundred cycles of each other even where a system call costs
 * milliseconds (a guest whose kernel code is emulated), and a timed region
 * that starts after it starts together on every thread.  Spinning assumes a
 * CPU per thread; a thread that waits long yields.
 */
void host_team_spin(struct host_team *team);

/* CPUs this process may run on: a thread count of "all". */
unsigned host_cpu_count(void);

/*
 * NUMA placement through libnuma.  host_numa_nodes() is the number of nodes
 * (1 where the kernel has no NUMA).  host_cpu_node(cpu) is its node (0 when
 * unknown).  host_bind(p, size, node) binds the pages of a host_alloc()
 * region to node before anything touches them (mbind MPOL_BIND, what
 * numa_alloc_onnode does: the pages then come from node whoever touches
 * them first); it returns 0, or -1 with a warning when the kernel refused.
 * host_alloc_on(size, node) is host_alloc() then host_bind().
 */
int host_numa_nodes(void);
int host_cpu_node(int cpu);
int host_bind(void *p, size_t size, int node);
void *host_alloc_on(size_t size, int node);

/*
 * Of up to 64 pages sampled evenly over [p, p + size) (touched already),
 * how many the kernel says are on node (move_pages query): *sampled gets the
 * number sampled, 0 when the kernel cannot tell.  A sample, not every page:
 * a guest whose kernel code is emulated spends about a millisecond per page
 * on the query.
 */
unsigned host_pages_on_node(const void *p, size_t size, int node, unsigned *sampled);

/*
 * Memory for the workloads: page aligned, first touched by the caller, on
 * transparent huge pages unless host_no_thp was set (gvm backs guest RAM
 * with them too, and the probe maps it with 2 MiB pages: the same TLB reach
 * on both sides, so a guest/host ratio measures virtualisation, not page
 * size).  Dies when out of memory.
 */
extern int host_no_thp;
void *host_alloc(size_t size);
void host_free(void *p, size_t size);

/* TSC ticks per millisecond, measured against CLOCK_MONOTONIC_RAW. */
uint64_t host_tsc_khz(void);

/*
 * A matrix by name: "gen[:ROWS:PER_ROW:SEED]" or a Matrix Market file.
 * Dies with a message naming the file on any error.  *label is the name to
 * print: the generator's full name or the file's base name.
 */
void host_load_matrix(const char *name, struct csr *a, char *label, unsigned label_size);
void host_free_matrix(struct csr *a);

#endif
