#include "bench/host.h"

#include <errno.h>
#include <fcntl.h>
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
		if (pthread_setaffinity_np(pthread_self(), sizeof(set), &set))
			pr_warn("cannot pin thread %u to CPU %d", w->id, w->cpu);
	}
	w->team->fn(w->team, w->id, w->team->arg);
	return NULL;
}

void host_team_run(unsigned nthreads, void (*fn)(struct host_team *, unsigned, void *),
		   void *arg)
{
	struct host_team team = { .nthreads = nthreads, .fn = fn, .arg = arg };
	struct host_worker *w = calloc(nthreads, sizeof(*w));
	cpu_set_t allowed;
	int ncpus = 0, cpus[CPU_SETSIZE];

	if (!w)
		die("out of memory for %u threads", nthreads);
	if (sched_getaffinity(0, sizeof(allowed), &allowed) == 0)
		for (int c = 0; c < CPU_SETSIZE; c++)
			if (CPU_ISSET(c, &allowed))
				cpus[ncpus++] = c;
	if (pthread_barrier_init(&team.barrier, NULL, nthreads))
		die("pthread_barrier_init failed");
	for (unsigned i = 0; i < nthreads; i++) {
		w[i] = (struct host_worker){ &team, i, ncpus ? cpus[i % ncpus] : -1, 0 };
		if (pthread_create(&w[i].thread, NULL, worker_main, &w[i]))
			die("cannot create thread %u of %u", i, nthreads);
	}
	for (unsigned i = 0; i < nthreads; i++)
		pthread_join(w[i].thread, NULL);
	pthread_barrier_destroy(&team.barrier);
	free(w);
}

void host_team_wait(struct host_team *team)
{
	pthread_barrier_wait(&team->barrier);
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
