/*
 * Host side of the benchmark tools: pinned worker threads, the TSC rate, and
 * reading a matrix (file or generated) into a CSR.
 */
#ifndef GVM_BENCH_HOST_H
#define GVM_BENCH_HOST_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "bench/csr.h"

struct host_team {
	unsigned nthreads;
	pthread_barrier_t barrier;
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
 * Memory for the workloads: page aligned, first touched by the caller, on
 * transparent huge pages unless host_no_thp was set (gvm backs guest RAM
 * with them too, and the probe maps it with 2 MiB pages: the same TLB reach
 * on both sides, so a guest/host ratio measures virtualisation, not page
 * size).  Dies when out of memory.
 */
extern int host_no_thp;
void *host_alloc(size_t size);
void host_free(void *p, size_t size);

/* TSC ticks per millisecond, measured against CLOCK_MONOTONIC. */
uint64_t host_tsc_khz(void);

/*
 * A matrix by name: "gen[:ROWS:PER_ROW:SEED]" or a Matrix Market file.
 * Dies with a message naming the file on any error.  *label is the name to
 * print: the generator's full name or the file's base name.
 */
void host_load_matrix(const char *name, struct csr *a, char *label, unsigned label_size);
void host_free_matrix(struct csr *a);

#endif
