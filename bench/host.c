#include "bench/host.h"

#include <errno.h>
#include <fcntl.h>
#include <numa.h>
#include <numaif.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bench/matgen.h"
#include "bench/mtx.h"
#include "bench/tsc.h"
#include "common/log.h"

struct host_worker {
	struct host_team *team;
	unsigned id;
	int cpu;
	pthread_t thread;
};

static void *worker_main(void *p)
{
	struct host_worker *w = p;

	if (w->cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(w->cpu, &set);
		if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set)) {
			pr_warn("cannot pin thread %u to CPU %d", w->id, w->cpu);
			w->team->cpus[w->id] = -1;
		}
	}
	w->team->fn(w->team, w->id, w->team->arg);
	return NULL;
}

void host_team_run(unsigned nthreads, void (*fn)(struct host_team *, unsigned, void *),
		   void *arg)
{
	struct host_team team = { .nthreads = nthreads, .fn = fn, .arg = arg };
	struct host_worker *w = calloc(nthreads, sizeof(*w));
	int *tcpu = calloc(nthreads, sizeof(*tcpu));
	cpu_set_t allowed;
	int ncpus = 0, cpus[CPU_SETSIZE];

	if (!w || !tcpu)
		die("out of memory for %u threads", nthreads);
	if (sched_getaffinity(0, sizeof(allowed), &allowed) == 0)
		for (int c = 0; c < CPU_SETSIZE; c++)
			if (CPU_ISSET(c, &allowed))
				cpus[ncpus++] = c;
	if (pthread_barrier_init(&team.barrier, NULL, nthreads))
		die("pthread_barrier_init failed");
	for (unsigned i = 0; i < nthreads; i++)
		tcpu[i] = ncpus ? cpus[i % ncpus] : -1;
	team.cpus = tcpu;
	for (unsigned i = 0; i < nthreads; i++) {
		w[i] = (struct host_worker){ &team, i, tcpu[i], 0 };
		if (pthread_create(&w[i].thread, NULL, worker_main, &w[i]))
			die("cannot create thread %u of %u", i, nthreads);
	}
	for (unsigned i = 0; i < nthreads; i++)
		pthread_join(w[i].thread, NULL);
	pthread_barrier_destroy(&team.barrier);
	free(tcpu);
	free(w);
}

void host_team_wait(struct host_team *team)
{
	pthread_barrier_wait(&team->barrier);
}

void host_team_spin(struct host_team *team)
{
	unsigned sense = team->spin_sense;
	unsigned long spins = 0;

	if (team->spin_count++ == team->nthreads - 1) {
		team->spin_count = 0;
		team->spin_sense = !sense;
		return;
	}
	while (team->spin_sense == sense)
		/* about 0.1 s: someone lost its CPU, so let it have ours */
		if (++spins % (1ul << 22) == 0)
			sched_yield();
		else
			cpu_relax();
}

unsigned host_cpu_count(void)
{
	cpu_set_t allowed;

	if (sched_getaffinity(0, sizeof(allowed), &allowed))
		return 1;
	return (unsigned)CPU_COUNT(&allowed);
}

int host_no_thp;

#define HUGE_PAGE (2ul << 20)

void *host_alloc(size_t size)
{
	size_t r = ((size ? size : 1) + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1), len = r + HUGE_PAGE;
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *a;

	if (p == MAP_FAILED)
		die_perror("cannot map %zu bytes", size);
	/* 2 MiB aligned: give back the slack before and after [a, a + r). */
	a = (char *)(((uintptr_t)p + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1));
	if (a > p)
		munmap(p, (size_t)(a - p));
	if (p + len > a + r)
		munmap(a + r, (size_t)(p + len - (a + r)));
	if (!host_no_thp)
		madvise(a, r, MADV_HUGEPAGE);
	return a;
}

void host_free(void *p, size_t size)
{
	if (p)
		munmap(p, ((size ? size : 1) + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1));
}

int host_numa_nodes(void)
{
	return numa_available() < 0 ? 1 : numa_num_configured_nodes();
}

int host_cpu_node(int cpu)
{
	int node;

	if (cpu < 0 || numa_available() < 0)
		return 0;
	node = numa_node_of_cpu(cpu);
	return node < 0 ? 0 : node;
}

int host_bind(void *p, size_t size, int node)
{
	unsigned long mask[16] = { 0 };
	size_t len = ((size ? size : 1) + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);

	if (numa_available() < 0)
		return 0; /* no NUMA: every page is on node 0 already */
	if (node < 0 || node >= (int)(sizeof(mask) * 8))
		die("NUMA node %d is out of range", node);
	mask[node / (8 * sizeof(mask[0]))] |= 1ul << (node % (8 * sizeof(mask[0])));
	/* mbind itself, not numa_tonode_memory: that one fails silently */
	if (mbind(p, len, MPOL_BIND, mask, sizeof(mask) * 8, 0)) {
		pr_warn("cannot bind %zu bytes to NUMA node %d: %s", size, node, strerror(errno));
		return -1;
	}
	return 0;
}

void *host_alloc_on(size_t size, int node)
{
	void *p = host_alloc(size);

	host_bind(p, size, node);
	return p;
}

unsigned host_pages_on_node(const void *p, size_t size, int node, unsigned *sampled)
{
	enum { SAMPLES = 64 };
	void *pages[SAMPLES];
	int status[SAMPLES];
	long psize = sysconf(_SC_PAGESIZE);
	size_t npages = (size + psize - 1) / psize;
	unsigned n = npages < SAMPLES ? (unsigned)npages : SAMPLES, on = 0;

	*sampled = 0;
	if (!n || numa_available() < 0)
		return 0;
	for (unsigned i = 0; i < n; i++)
		pages[i] = (char *)p + (npages * i / n) * psize;
	if (move_pages(0, n, pages, NULL, status, 0))
		return 0;
	for (unsigned i = 0; i < n; i++)
		on += status[i] == node;
	*sampled = n;
	return on;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t host_tsc_khz(void)
{
	uint64_t best = 0;

	/* The best of three 20 ms windows: preemption only lengthens a window. */
	for (int i = 0; i < 3; i++) {
		uint64_t n0 = now_ns(), t0 = tsc_read(), n1, t1;
		struct timespec d = { 0, 20000000 };

		nanosleep(&d, NULL);
		n1 = now_ns();
		t1 = tsc_read();
		uint64_t khz = (t1 - t0) * 1000000ull / (n1 - n0);

		if (!best || khz < best)
			best = khz;
	}
	return best;
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		die("out of memory (%zu bytes)", n);
	return p;
}

static void csr_alloc(struct csr *a, uint32_t nrows, uint64_t nnz)
{
	a->row_ptr = xmalloc(((size_t)nrows + 1) * sizeof(*a->row_ptr));
	a->col = xmalloc(nnz * sizeof(*a->col));
	a->val = xmalloc(nnz * sizeof(*a->val));
}

void host_load_matrix(const char *name, struct csr *a, char *label, unsigned label_size)
{
	struct bench_err err;

	if (!strncmp(name, "gen", 3) && access(name, F_OK)) {
		struct matgen g;

		if (matgen_parse(name, &g, &err))
			die("%s", err.msg);
		csr_alloc(a, g.rows, matgen_max_nnz(&g, 0, g.rows));
		matgen_rows(&g, 0, g.rows, a);
		matgen_name(&g, label, label_size);
		return;
	}

	int fd = open(name, O_RDONLY);
	struct stat st;
	struct mtx_header h;

	if (fd < 0)
		die_perror("cannot open matrix file '%s'", name);
	if (fstat(fd, &st))
		die_perror("cannot stat '%s'", name);
	if (!S_ISREG(st.st_mode))
		die("%s: not a regular file", name);
	if (st.st_size == 0)
		die("%s: line 1: the file is empty (no %%%%MatrixMarket banner)", name);

	char *buf = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);

	close(fd);
	if (buf == MAP_FAILED)
		die_perror("cannot map '%s'", name);
	if (mtx_parse_header(buf, (size_t)st.st_size, &h, &err))
		die("%s: %s", name, err.msg);
	csr_alloc(a, h.nrows, h.max_nnz);

	void *scratch = xmalloc(mtx_scratch_size(&h));

	if (mtx_parse_csr(buf, (size_t)st.st_size, &h, a, scratch, &err))
		die("%s: %s", name, err.msg);
	free(scratch);
	munmap(buf, (size_t)st.st_size);

	const char *base = strrchr(name, '/');

	snprintf(label, label_size, "%s", base ? base + 1 : name);
}

void host_free_matrix(struct csr *a)
{
	free(a->row_ptr);
	free(a->col);
	free(a->val);
}
