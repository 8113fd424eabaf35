/*
 * gvm check's results: what the probe guest's check workload measured per
 * ordered pair of NUMA nodes (its "pair:" lines, docs/probe.md), the rule
 * that flags a pair far from the others, and the table gvm check prints.
 * Pure functions over a struct check_result, so that the rule is tested
 * without a VM (tests/unit/test-check.c).
 */
#ifndef GVM_VMM_CHECK_H
#define GVM_VMM_CHECK_H

#include <stdbool.h>
#include <stdio.h>

#define CHECK_ERR_MAX 256
/* A remote pair is flagged when it is this many times worse than the others. */
#define CHECK_FACTOR_DEFAULT 3.0

enum {
	CHECK_FLAG_IPI = 1u << 0,   /* round trip > factor x the others' median */
	CHECK_FLAG_FAULT = 1u << 1, /* read fault > factor x the others' median */
	CHECK_FLAG_READ = 1u << 2,  /* bandwidth < the others' median / factor */
};

struct check_pair {
	bool seen;
	bool has_ipi;     /* false: no CPU to send to (a node of one CPU, local pair) */
	double ipi_us;    /* median IPI round trip */
	double fault_us;  /* median first-read fault */
	double read_mbps; /* sequential read, 10^6 bytes/s */
	unsigned flags;   /* CHECK_FLAG_*, set by check_flag */
};

struct check_result {
	unsigned nodes;
	struct check_pair *pairs; /* nodes x nodes, [from * nodes + to] */
};

/* An empty result for n nodes (1 <= n); 0, or -1 when out of memory. */
int check_result_init(struct check_result *r, unsigned nodes);
void check_result_free(struct check_result *r);

static inline struct check_pair *check_pair_at(const struct check_result *r, unsigned from,
					       unsigned to)
{
	return &r->pairs[from * r->nodes + to];
}

/*
 * One line of the probe's console.  A "pair:" line is recorded (1 returned);
 * other lines are not the check's (0); a malformed pair line, a node out of
 * range or a pair seen twice is -1 with the reason in err.
 */
int check_parse_line(struct check_result *r, const char *line, char *err);

/* Every ordered pair, local ones included, was seen: 0, else -1 naming the first missing. */
int check_complete(const struct check_result *r, char *err);

/*
 * The rule: a remote pair (from != to) is flagged when its IPI round trip
 * or its read-fault latency is more than factor times the median of the
 * other remote pairs' (of those that have one), or its bandwidth less than
 * that median divided by factor.  Local pairs are a baseline, never
 * flagged.  Sets each pair's flags; returns the number of flagged pairs.
 */
unsigned check_flag(struct check_result *r, double factor);

/*
 * The table, one row per ordered pair, the local baselines first, then a
 * line per flagged pair.  hosts[rank] names each node's host (NULL or a
 * NULL entry: not known).
 */
void check_print(const struct check_result *r, const char *const *hosts, double factor,
		 FILE *f);

#endif
