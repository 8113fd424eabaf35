/*
 * Do the CPUs agree on the time?  Thread 0 and each other thread in turn
 * pass a token back and forth through memory: thread 0 reads its clocks
 * (a), hands the token over, the other thread reads its own (b) and hands
 * it back, thread 0 reads again (c).  Clocks that agree give a <= b <= c
 * in every round, for the TSC and for kvmclock alike; clocks that are
 * apart by more than the one-way trip of the token break it.  The round of
 * least round trip gives the best estimate of the offset, b - (a + c) / 2.
 *
 * Each thread reads kvmclock from its own area (a page on its own node),
 * which KVM keeps up to date for its vCPU (SYS_KVMCLOCK).
 */
#include "images/probe/user/probe.h"

struct pvclock {
	volatile uint32_t version, pad0;
	volatile uint64_t tsc_timestamp, system_time;
	volatile uint32_t tsc_to_system_mul;
	volatile int8_t tsc_shift;
	volatile uint8_t flags, pad[2];
} __attribute__((aligned(64)));

/* One page per thread for each direction: only the two threads of a pair touch it. */
struct token {
	volatile uint64_t seq;
	uint64_t tsc, ns;
} __attribute__((aligned(4096)));

struct clock_run {
	struct pvclock *pv[PROBE_MAX_CPUS];
	struct token *req[PROBE_MAX_CPUS], *rep[PROBE_MAX_CPUS];
	int kvmclock; /* every thread has its area */
	int nomem;
};

static struct clock_run run;
static volatile uint32_t kvmclock_ok[PROBE_MAX_CPUS] __attribute__((aligned(4096)));

static inline uint64_t rdtsc_ordered(void)
{
	uint32_t lo, hi;

	__asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
	return (uint64_t)hi << 32 | lo;
}

/* kvmclock now (ns), and the TSC it was computed from. */
static uint64_t kvmclock_read(const struct pvclock *pv, uint64_t *tsc)
{
	uint32_t v;
	uint64_t ns, d;

	do {
		v = pv->version;
		__asm__ volatile("" : : : "memory");
		*tsc = rdtsc_ordered();
		d = *tsc - pv->tsc_timestamp;
		if (pv->tsc_shift >= 0)
			d <<= pv->tsc_shift;
		else
			d >>= -pv->tsc_shift;
		ns = pv->system_time +
		     (uint64_t)(((unsigned __int128)d * pv->tsc_to_system_mul) >> 32);
		__asm__ volatile("" : : : "memory");
	} while ((v & 1) || v != pv->version);
	return ns;
}

static void now(unsigned tid, uint64_t *tsc, uint64_t *ns)
{
	if (run.kvmclock) {
		*ns = kvmclock_read(run.pv[tid], tsc);
	} else {
		*tsc = rdtsc_ordered();
		*ns = 0;
	}
}

static void clock_setup_job(unsigned tid, void *arg)
{
	unsigned node = team.node[tid];

	(void)arg;
	run.pv[tid] = node_alloc(node, sizeof(struct pvclock));
	run.req[tid] = node_alloc(node, sizeof(struct token));
	run.rep[tid] = node_alloc(tid ? team.node[0] : node, sizeof(struct token));
	if (!run.pv[tid] || !run.req[tid] || !run.rep[tid]) {
		run.nomem = 1;
		return;
	}
	if (sys_call(SYS_KVMCLOCK, (long)run.pv[tid], 0, 0, 0) == 0) {
		/* KVM fills it in at the next entry: wait for a stable, non-zero version */
		for (uint64_t t0 = rdtsc_ordered();
		     (!run.pv[tid]->version || (run.pv[tid]->version & 1)) &&
		     rdtsc_ordered() - t0 < 20000000000ull;)
			cpu_relax();
		kvmclock_ok[tid] = run.pv[tid]->version && run.pv[tid]->tsc_to_system_mul;
	}
}

static void clock_job(unsigned tid, void *arg)
{
	(void)arg;
	if (tid == 0)
		return;
	for (uint64_t r = 1; r <= opts.clock_rounds; r++) {
		struct token *rq = run.req[tid], *rp = run.rep[tid];

		while (__atomic_load_n(&rq->seq, __ATOMIC_ACQUIRE) != r)
			cpu_relax();
		now(tid, &rp->tsc, &rp->ns);
		__atomic_store_n(&rp->seq, r, __ATOMIC_RELEASE);
	}
}

static void clock_off_job(unsigned tid, void *arg)
{
	(void)arg;
	(void)tid;
	sys_call(SYS_KVMCLOCK, 0, 0, 0, 0);
}

static int64_t mid_offset(uint64_t a, uint64_t b, uint64_t c)
{
	return (int64_t)(b - (a + (c - a) / 2));
}

/* How far b is outside [a, c]: by how much the clocks are out of order (0: in order). */
static uint64_t abs_skew(uint64_t a, uint64_t b, uint64_t c)
{
	if ((int64_t)(b - a) < 0)
		return a - b;
	return (int64_t)(c - b) < 0 ? b - c : 0;
}

/* Thread 0's side of the rounds with thread t; runs while t runs clock_job. */
static void measure(unsigned t)
{
	struct token *rq = run.req[t], *rp = run.rep[t];
	uint64_t best_rtt = ~0ull, bad_tsc = 0, bad_ns = 0, worst = 0;
	uint64_t gap = opts.clock_gap_us * tsc_khz / 1000;
	int64_t skew_tsc = 0, skew_ns = 0;

	for (uint64_t r = 1; r <= opts.clock_rounds; r++) {
		uint64_t a_tsc, a_ns, c_tsc, c_ns;

		now(0, &a_tsc, &a_ns);
		__atomic_store_n(&rq->seq, r, __ATOMIC_RELEASE);
		while (__atomic_load_n(&rp->seq, __ATOMIC_ACQUIRE) != r)
			cpu_relax();
		now(0, &c_tsc, &c_ns);
		if (abs_skew(a_tsc, rp->tsc, c_tsc) > worst)
			worst = abs_skew(a_tsc, rp->tsc, c_tsc);
		if ((int64_t)(rp->tsc - a_tsc) < 0 || (int64_t)(c_tsc - rp->tsc) < 0)
			bad_tsc++;
		if (run.kvmclock && ((int64_t)(rp->ns - a_ns) < 0 || (int64_t)(c_ns - rp->ns) < 0))
			bad_ns++;
		if (c_tsc - a_tsc < best_rtt) {
			best_rtt = c_tsc - a_tsc;
			skew_tsc = mid_offset(a_tsc, rp->tsc, c_tsc);
			skew_ns = run.kvmclock ? mid_offset(a_ns, rp->ns, c_ns) : 0;
		}
		for (uint64_t t0 = rdtsc_ordered(); gap && rdtsc_ordered() - t0 < gap;)
			cpu_relax();
	}
	/* kvmclock=stable: KVM's TSC-stable mode (one TSC time base for every vCPU) */
	uprintf("clock: from=%u to=%u node=%u rounds=%lu rtt_us=%lu tsc_skew_cycles=%ld "
		"kvmclock=%s kvmclock_skew_ns=%ld out_of_order=%lu out_of_order_cycles=%lu result=%s\n",
		team.cpu[0], team.cpu[t], probe_bootinfo.acpi.domains[team.node[t]],
		opts.clock_rounds, cycles_to_us(best_rtt), skew_tsc,
		!run.kvmclock ? "none" : run.pv[t]->flags & 1 ? "stable" : "yes", skew_ns,
		bad_tsc + bad_ns, worst, bad_tsc + bad_ns ? "FAIL" : "ok");
	if (bad_tsc)
		ufail("clock: cpu %u's TSC is out of order with cpu %u's in %lu of %lu rounds",
		      team.cpu[t], team.cpu[0], bad_tsc, opts.clock_rounds);
	if (bad_ns)
		ufail("clock: cpu %u's kvmclock is out of order with cpu %u's in %lu of %lu rounds",
		      team.cpu[t], team.cpu[0], bad_ns, opts.clock_rounds);
}

struct pair_arg {
	unsigned t;
};

static void pair_job(unsigned tid, void *arg)
{
	struct pair_arg *pa = arg;

	if (tid == 0)
		measure(pa->t);
	else if (tid == pa->t)
		clock_job(tid, NULL);
}

void run_clock(void)
{
	uint64_t marks[PROBE_ACPI_MAX_DOMAINS];

	for (unsigned d = 0; d < team.nnodes; d++)
		marks[d] = node_alloc_mark(d);
	run.nomem = 0;
	team_run(clock_setup_job, NULL);
	if (run.nomem) {
		ufail("clock: out of memory");
		goto out;
	}
	run.kvmclock = 1;
	for (unsigned t = 0; t < team.nthreads; t++)
		run.kvmclock &= kvmclock_ok[t] != 0;
	for (unsigned t = 1; t < team.nthreads; t++) {
		struct pair_arg pa = { t };

		run.req[t]->seq = 0;
		run.rep[t]->seq = 0;
		team_run(pair_job, &pa);
	}
	team_run(clock_off_job, NULL);
out:
	for (unsigned d = 0; d < team.nnodes; d++)
		node_alloc_release(d, marks[d]);
}
