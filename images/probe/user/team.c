/*
 * One thread per CPU, each started once on its CPU by the kernel and then
 * waiting, in user mode, for jobs from the boot thread.  Job posting and
 * barriers are plain shared-memory flags, each in its own page.
 */
#include "images/probe/user/ulib.h"

#define THREAD_STACK (256 * 1024)

struct team_info team;

struct job {
	volatile uint64_t gen;
	void (*fn)(unsigned tid, void *arg);
	void *arg;
} __attribute__((aligned(4096)));

struct bar {
	volatile uint64_t count;
	uint8_t pad[4096 - 8];
	volatile uint64_t sense;
} __attribute__((aligned(4096)));

static struct job job;
static struct bar bar;
static struct {
	volatile uint64_t done;
} done __attribute__((aligned(4096)));

/* Each thread's private state, on its own page in its own node. */
struct thread_self {
	unsigned tid;
	uint64_t seen_gen;
	uint64_t sense;
};

static struct thread_self *selves[PROBE_MAX_CPUS];

void team_barrier(unsigned tid)
{
	struct thread_self *me = selves[tid];
	uint64_t s = me->sense ^ 1;

	me->sense = s;
	if (atomic_xadd(&bar.count, 1) == team.nthreads - 1) {
		bar.count = 0;
		__atomic_store_n(&bar.sense, s, __ATOMIC_RELEASE);
	} else {
		while (__atomic_load_n(&bar.sense, __ATOMIC_ACQUIRE) != s)
			cpu_relax();
	}
}

static unsigned leader[PROBE_ACPI_MAX_DOMAINS];

int team_node_leader(unsigned tid)
{
	return leader[team.node[tid]] == tid;
}

void thread_main(void *arg, uint64_t cpu);
void thread_main(void *arg, uint64_t cpu)
{
	struct thread_self *me = arg;

	(void)cpu;
	for (;;) {
		while (__atomic_load_n(&job.gen, __ATOMIC_ACQUIRE) == me->seen_gen)
			cpu_relax();
		me->seen_gen = job.gen;
		job.fn(me->tid, job.arg);
		atomic_xadd(&done.done, 1);
	}
}

void team_run(void (*fn)(unsigned tid, void *arg), void *arg)
{
	uint64_t target = done.done + team.nthreads - 1;

	job.fn = fn;
	job.arg = arg;
	__atomic_store_n(&job.gen, job.gen + 1, __ATOMIC_RELEASE);
	selves[0]->seen_gen = job.gen;
	fn(0, arg);
	while (__atomic_load_n(&done.done, __ATOMIC_ACQUIRE) != target)
		cpu_relax();
}

int team_start(int all)
{
	struct probe_bootinfo *bi = &probe_bootinfo;
	struct acpi_topo *t = &bi->acpi;
	unsigned n = 0;

	/* Thread ids in node order, the boot CPU first: thread 0 is the caller. */
	team.cpu[n] = bi->bsp;
	team.node[n++] = (unsigned)acpi_domain_index(t, t->cpus[bi->bsp].domain);
	for (uint32_t d = 0; d < t->nr_domains; d++)
		for (uint32_t i = 0; i < t->nr_cpus; i++)
			if (all && i != bi->bsp && t->cpus[i].domain == t->domains[d] &&
			    bi->cpu[i].state == CPU_UP) {
				team.cpu[n] = i;
				team.node[n++] = d;
			}
	team.nthreads = n;
	team.nnodes = t->nr_domains;
	for (unsigned i = n; i-- > 0;)
		leader[team.node[i]] = i;
	for (unsigned i = 0; i < n; i++) {
		struct thread_self *me = node_alloc(team.node[i], sizeof(*me));

		if (!me) {
			ufail("no memory for thread %u on node %u", i, t->domains[team.node[i]]);
			return -1;
		}
		me->tid = i;
		me->seen_gen = 0;
		me->sense = 0;
		selves[i] = me;
	}
	for (unsigned i = 1; i < n; i++) {
		char *stack = node_alloc(team.node[i], THREAD_STACK);

		if (!stack) {
			ufail("no memory for thread %u's stack", i);
			return -1;
		}
		if (sys_call(SYS_START, team.cpu[i], (long)_uthread, (long)(stack + THREAD_STACK),
			     (long)selves[i]))
			ufail("the kernel refused to start a thread on CPU %u", team.cpu[i]);
	}
	return 0;
}
