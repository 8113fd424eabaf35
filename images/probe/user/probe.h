/* The probe's user-mode program: options, reports, workloads. */
#ifndef PROBE_USER_PROBE_H
#define PROBE_USER_PROBE_H

#include "bench/copy.h"
#include "bench/fmt.h"
#include "images/probe/user/ulib.h"

#define PROBE_MAX_MATRICES 16

struct probe_opts {
	int ipi, irq, clock, counter, memcpy, spmv, check; /* workloads to run */
	const char *matrix[PROBE_MAX_MATRICES];
	unsigned nmatrices;
	uint64_t iters;                  /* SpMV iterations */
	int naive;                       /* every thread's data on node 0 */
	uint64_t memcpy_size, memcpy_reps, memcpy_warmups;
	enum copy_method memcpy_method;
	uint64_t counter_iters, counter_pages;
	uint64_t ipi_rounds;
	uint64_t clock_rounds, clock_gap_us; /* w_clock.c: per CPU, and the pause between */
	uint64_t check_pages, check_size, check_rounds; /* per node pair (w_check.c) */
	uint64_t tsc_khz;
	int poweroff;                    /* end by ACPI soft-off instead of the exit device */
};

extern struct probe_opts opts;
extern uint64_t tsc_khz; /* 0: unknown */

static inline uint64_t cycles_to_us(uint64_t c)
{
	return tsc_khz ? c * 1000 / tsc_khz : 0;
}

void topo_report(void);
void run_ipi(void);
void run_clock(void);
void run_irq(void);
void run_counter(void);
void run_memcpy(void);
void run_spmv(const char *matrix);
void run_check(void);

/* Placement of a thread's data: its node, or node 0 for the naive placement. */
static inline unsigned data_node(unsigned tid)
{
	return opts.naive ? 0 : team.node[tid];
}

#endif
