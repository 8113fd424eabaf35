/*
 * Coherence of libgvdsm across 2, 3 and 4 real processes on loopback:
 * - every thread of every node increments counters spread over many pages
 *   with atomic instructions, and reads them between increments: no
 *   increment may be lost and no thread may see a counter go backwards
 *   (also with prefetch, exclusive-on-read and the anti ping-pong hold);
 * - a writer/reader round robin where every page carries a pattern derived
 *   from (page, version) and every reader checks every byte;
 * - one page ping-ponged between two writers in strict alternation, homed
 *   on a third node;
 * - every node reads one page (its copyset grows), then one write
 *   invalidates every copy, and everyone reads the new value;
 * - locked increments of a counter that straddles two pages homed on two
 *   nodes (a split lock needs both pages writable at once);
 * - litmus tests across nodes, each variable on its own page homed on its
 *   own node: store buffering with fences (x86 forbids both loads seeing 0)
 *   and IRIW (two readers may not see two independent writes in opposite
 *   orders: x86 stores are seen by all at once).
 * The policy variants check that their policy ran (pages prefetched, holds
 * taken, no downgrade under exclusive-on-read), not only that the data is right.
 */
#include <pthread.h>
#include <sched.h>

#include "tests/dsm/cluster.h"
#include "tests/lib/check.h"

#define THREADS 2

static struct dsm_stats stats_of(struct dsm *d)
{
	struct dsm_stats st;

	dsm_get_stats(d, &st);
	return st;
}

/* ---- atomic counters ---- */

struct counters {
	struct cluster *c;
	unsigned pages, per_page, rounds;
};

struct counter_thread {
	struct counters *k;
	uint8_t *base;
	unsigned rank, id;
	unsigned r0, r1; /* rounds [r0, r1) */
	unsigned seed;
	int bad;
	uint64_t seen[256];
};

static uint64_t *counter_addr(struct counters *k, uint8_t *base, unsigned i)
{
	unsigned pg = i % k->pages, slot = i / k->pages;

	return (uint64_t *)(base + (uint64_t)pg * DSM_PAGE_SIZE +
			    slot * (DSM_PAGE_SIZE / k->per_page));
}

static unsigned gcd(unsigned a, unsigned b)
{
	while (b) {
		unsigned t = a % b;
		a = b;
		b = t;
	}
	return a;
}

static void *counter_worker(void *arg)
{
	struct counter_thread *t = arg;
	struct counters *k = t->k;
	unsigned n = k->pages * k->per_page;
	unsigned seed = t->seed;

	for (unsigned r = t->r0; r < t->r1 && !t->bad; r++) {
		/*
		 * Each round increments every counter once, in an order of
		 * its own: a step coprime with n visits them all.
		 */
		unsigned start = rand_r(&seed) % n, step;

		do
			step = 1 + rand_r(&seed) % (n - 1);
		while (gcd(step, n) != 1);
		/* Thread 0 goes in order: sequential read faults, so prefetch (when on). */
		if (t->id == 0)
			step = 1;
		for (unsigned j = 0; j < n; j++) {
			unsigned i = (start + (uint64_t)j * step) % n;
			uint64_t *p = counter_addr(k, t->base, i), v, old;

			/* Every other access reads first: read faults, then upgrades. */
			if (j & 1) {
				v = __atomic_load_n(p, __ATOMIC_SEQ_CST);
				if (v < t->seen[i]) {
					fprintf(stderr, "rank %u thread %u: counter %u went back from "
						"%llu to %llu\n", t->rank, t->id, i,
						(unsigned long long)t->seen[i], (unsigned long long)v);
					t->bad = 1;
				}
				t->seen[i] = v;
			}
			old = __atomic_fetch_add(p, 1, __ATOMIC_SEQ_CST);
			if (old < t->seen[i]) {
				fprintf(stderr, "rank %u thread %u: counter %u was %llu, then %llu\n",
					t->rank, t->id, i, (unsigned long long)t->seen[i],
					(unsigned long long)old);
				t->bad = 1;
			}
			t->seen[i] = old + 1;
		}
	}
	t->seed = seed;
	return NULL;
}

static int counters_node(struct dsm *d, unsigned rank, void *arg)
{
	struct counters *k = arg;
	static struct counter_thread t[THREADS];
	pthread_t th[THREADS];
	unsigned n = k->pages * k->per_page;
	uint64_t want = (uint64_t)k->c->n * THREADS * k->rounds;
	struct dsm_stats st;
	int bad = 0;

	for (unsigned i = 0; i < THREADS; i++)
		t[i] = (struct counter_thread){ .k = k, .base = dsm_addr(d), .rank = rank, .id = i,
						.seed = rank * 1000 + i };
	/*
	 * The first round, then the others, with every node between: on a
	 * loaded host one node could otherwise finish all its rounds before
	 * another starts, and never fault on a page the other wrote.
	 */
	for (unsigned phase = 0; phase < 2; phase++) {
		for (unsigned i = 0; i < THREADS; i++) {
			t[i].r0 = phase ? 1 : 0;
			t[i].r1 = phase ? k->rounds : 1;
			pthread_create(&th[i], NULL, counter_worker, &t[i]);
		}
		for (unsigned i = 0; i < THREADS; i++) {
			pthread_join(th[i], NULL);
			bad |= t[i].bad;
		}
		if (!phase)
			cluster_barrier(k->c);
	}
	cluster_barrier(k->c);
	for (unsigned i = 0; i < n; i++) {
		uint64_t v = *counter_addr(k, dsm_addr(d), i);
		if (v != want) {
			fprintf(stderr, "rank %u: counter %u is %llu, expected %llu\n", rank, i,
				(unsigned long long)v, (unsigned long long)want);
			bad = 1;
		}
	}
	st = stats_of(d);
	if (st.faults[DSM_FAULT_WRITE] + st.faults[DSM_FAULT_UPGRADE] == 0) {
		fprintf(stderr, "rank %u: no remote write fault: the test tested nothing\n", rank);
		bad = 1;
	}
	/* An owner that may write never downgrades: a read moves its only copy. */
	if (k->c->tmpl.excl_read && st.downgrades) {
		fprintf(stderr, "rank %u: %llu downgrades under exclusive-on-read\n", rank,
			(unsigned long long)st.downgrades);
		bad = 1;
	}
	atomic_fetch_add(&k->c->sh->ready, (unsigned)st.holds);
	cluster_barrier(k->c);
	if (k->c->tmpl.hold_us && rank == 0 && !atomic_load(&k->c->sh->ready)) {
		fprintf(stderr, "no request was held on any node: the hold did not run\n");
		bad = 1;
	}
	cluster_barrier(k->c);
	return bad;
}

static void run_counters(unsigned nodes, unsigned prefetch, bool excl_read, unsigned hold_us)
{
	struct counters k = { .pages = 32, .per_page = 4, .rounds = 25 };
	struct cluster c;

	cluster_init(&c, nodes, k.pages * DSM_PAGE_SIZE);
	c.tmpl.prefetch_pages = prefetch;
	c.tmpl.excl_read = excl_read;
	c.tmpl.hold_us = hold_us;
	k.c = &c;
	if (cluster_run(&c, counters_node, &k))
		cluster_report(&c);
	for (unsigned i = 0; i < nodes; i++)
		CHECK_EQ(c.status[i], 0);
}

static void test_counters_2(void)
{
	run_counters(2, 0, false, 0);
}

static void test_counters_3(void)
{
	run_counters(3, 8, false, 0);
}

static void test_counters_4(void)
{
	run_counters(4, 16, false, 0);
}

/* The policies: exclusive-on-read, and the anti ping-pong hold. */
static void test_counters_3_excl_read(void)
{
	/* Without prefetch, whose bulk copies are shared whatever the policy. */
	run_counters(3, 0, true, 0);
}

static void test_counters_3_hold(void)
{
	run_counters(3, 0, false, 50);
}

/* ---- writer/reader patterns ---- */

#define PAT_PAGES 48
#define PAT_VERSIONS 8

static uint8_t pattern(uint64_t pg, unsigned version, size_t i)
{
	return (uint8_t)(pg * 131 + version * 17 + i * 7 + (i >> 8) + (pg >> 3) * version);
}

struct pat_check {
	uint8_t *base;
	uint64_t first, end;
	unsigned version, rank;
	int bad;
};

static void *pat_checker(void *arg)
{
	struct pat_check *p = arg;

	for (uint64_t pg = p->first; pg < p->end && !p->bad; pg++)
		for (size_t i = 0; i < DSM_PAGE_SIZE; i++)
			if (p->base[pg * DSM_PAGE_SIZE + i] != pattern(pg, p->version, i)) {
				fprintf(stderr, "rank %u: version %u page %llu byte %zu: 0x%02x, "
					"expected 0x%02x\n", p->rank, p->version,
					(unsigned long long)pg, i, p->base[pg * DSM_PAGE_SIZE + i],
					pattern(pg, p->version, i));
				p->bad = 1;
				break;
			}
	return NULL;
}

static int pattern_node(struct dsm *d, unsigned rank, void *arg)
{
	struct cluster *c = arg;
	uint8_t *base = dsm_addr(d);

	for (unsigned v = 1; v <= PAT_VERSIONS; v++) {
		if (rank == v % c->n)
			for (uint64_t pg = 0; pg < PAT_PAGES; pg++)
				for (size_t i = 0; i < DSM_PAGE_SIZE; i++)
					base[pg * DSM_PAGE_SIZE + i] = pattern(pg, v, i);
		cluster_barrier(c);
		if (rank != v % c->n) {
			/* Two threads: faults on different pages in flight at once. */
			struct pat_check p[2] = {
				{ base, 0, PAT_PAGES / 2, v, rank, 0 },
				{ base, PAT_PAGES / 2, PAT_PAGES, v, rank, 0 },
			};
			pthread_t th;

			pthread_create(&th, NULL, pat_checker, &p[1]);
			pat_checker(&p[0]);
			pthread_join(th, NULL);
			if (p[0].bad || p[1].bad)
				return 1;
		}
		cluster_barrier(c);
	}
	/* Sequential readers of remote pages: prefetch, when on, must have brought some. */
	struct dsm_stats st = stats_of(d);

	if (!c->tmpl.prefetch_pages != !st.prefetched) {
		fprintf(stderr, "rank %u: %llu pages prefetched with prefetch %s\n", rank,
			(unsigned long long)st.prefetched, c->tmpl.prefetch_pages ? "on" : "off");
		return 1;
	}
	return 0;
}

static void run_pattern(unsigned prefetch)
{
	struct cluster c;

	cluster_init(&c, 3, PAT_PAGES * DSM_PAGE_SIZE);
	c.tmpl.prefetch_pages = prefetch;
	if (cluster_run(&c, pattern_node, &c))
		cluster_report(&c);
	for (unsigned i = 0; i < c.n; i++)
		CHECK_EQ(c.status[i], 0);
}

static void test_pattern(void)
{
	run_pattern(0);
}

static void test_pattern_prefetch(void)
{
	run_pattern(16);
}

/* ---- prefetch stays near its reader ---- */

#define PF_PAGES 2048
#define PF_READ 512
#define PF_WINDOW 64

/*
 * Rank 1 reads PF_READ pages homed on rank 0 in order, as fast as it can
 * (so it waits for windows, and prefetch runs ahead of it), then stops.
 * Windows go ahead of a reader only while it waits for them: at most the
 * window it waited in and two more (dsm/prefetch.c), whatever the timing,
 * so no more than PF_READ + 3 windows may ever arrive.
 */
static int prefetch_bound_node(struct dsm *d, unsigned rank, void *arg)
{
	struct cluster *c = arg;
	uint64_t *base = dsm_addr(d);
	const uint64_t words = DSM_PAGE_SIZE / 8;
	int bad = 0;

	if (rank == 0)
		for (uint64_t pg = 0; pg < PF_PAGES; pg++)
			base[pg * words] = pg * 3 + 1;
	cluster_barrier(c);
	if (rank == 1) {
		struct dsm_stats st;

		for (uint64_t pg = 0; pg < PF_READ; pg++)
			if (((volatile uint64_t *)base)[pg * words] != pg * 3 + 1) {
				fprintf(stderr, "page %llu: wrong data\n", (unsigned long long)pg);
				bad = 1;
				break;
			}
		/* Whatever is on its way arrives meanwhile. */
		usleep(300 * 1000);
		st = stats_of(d);
		if (st.pages_received > PF_READ + 3 * PF_WINDOW || st.prefetched < PF_READ / 2) {
			fprintf(stderr, "read %u pages in order: %llu received, %llu of them "
				"prefetched; expected at most %u, and at least %u prefetched\n",
				PF_READ, (unsigned long long)st.pages_received,
				(unsigned long long)st.prefetched, PF_READ + 3 * PF_WINDOW,
				PF_READ / 2);
			bad = 1;
		}
	}
	cluster_barrier(c);
	return bad;
}

static void test_prefetch_bound(void)
{
	struct cluster c;

	cluster_init(&c, 2, PF_PAGES * DSM_PAGE_SIZE);
	c.home_start = (const uint64_t[]){ 0, PF_PAGES, PF_PAGES };
	c.tmpl.prefetch_pages = PF_WINDOW;
	if (cluster_run(&c, prefetch_bound_node, &c))
		cluster_report(&c);
	for (unsigned i = 0; i < c.n; i++)
		CHECK_EQ(c.status[i], 0);
}

/* ---- ping-pong ---- */

#define PP_ROUNDS 300

static int pingpong_node(struct dsm *d, unsigned rank, void *arg)
{
	struct cluster *c = arg;
	/* One page, homed on rank 2: every transfer goes home -> owner -> requester. */
	volatile uint64_t *page = (uint64_t *)((uint8_t *)dsm_addr(d) + 2 * DSM_PAGE_SIZE);

	if (rank < 2) {
		for (uint64_t turn = rank; turn < 2 * PP_ROUNDS; turn += 2) {
			while (__atomic_load_n(&page[0], __ATOMIC_SEQ_CST) != turn)
				sched_yield();
			/* The other writer's data must be all there. */
			for (unsigned i = 1; i < DSM_PAGE_SIZE / 8 && turn; i++)
				if (page[i] != (turn - 1) * 1000 + i) {
					fprintf(stderr, "rank %u turn %llu: word %u is %llu\n", rank,
						(unsigned long long)turn, i,
						(unsigned long long)page[i]);
					return 1;
				}
			for (unsigned i = 1; i < DSM_PAGE_SIZE / 8; i++)
				page[i] = turn * 1000 + i;
			__atomic_store_n(&page[0], turn + 1, __ATOMIC_SEQ_CST);
		}
	}
	cluster_barrier(c);
	if (page[0] != 2 * PP_ROUNDS) {
		fprintf(stderr, "rank %u: %llu turns\n", rank, (unsigned long long)page[0]);
		return 1;
	}
	return 0;
}

static void test_pingpong(void)
{
	struct cluster c;

	cluster_init(&c, 3, 3 * DSM_PAGE_SIZE);
	if (cluster_run(&c, pingpong_node, &c))
		cluster_report(&c);
	for (unsigned i = 0; i < c.n; i++)
		CHECK_EQ(c.status[i], 0);
}

/* ---- copyset growth, then one write invalidates every copy ---- */

static int copyset_node(struct dsm *d, unsigned rank, void *arg)
{
	struct cluster *c = arg;
	/* 4 pages, one per node: page 1 is homed on rank 1. */
	volatile uint64_t *x = (uint64_t *)((uint8_t *)dsm_addr(d) + DSM_PAGE_SIZE);
	struct dsm_stats before, after;
	int bad = 0;

	if (rank == 2)
		x[0] = 42; /* rank 2 owns it, writable */
	cluster_barrier(c);
	if (x[0] != 42) /* every node gets a read copy */
		bad = 1;
	cluster_barrier(c);
	before = stats_of(d);
	cluster_barrier(c);
	if (rank == 3)
		x[0] = 43; /* upgrade: three copies to invalidate (ranks 0, 1, 2) */
	cluster_barrier(c);
	after = stats_of(d);
	if (rank == 3 && after.faults[DSM_FAULT_UPGRADE] - before.faults[DSM_FAULT_UPGRADE] != 1) {
		fprintf(stderr, "rank 3: the write was not an upgrade\n");
		bad = 1;
	}
	if (rank != 3 && after.invalidations - before.invalidations != 1) {
		fprintf(stderr, "rank %u: %llu invalidations, expected 1\n", rank,
			(unsigned long long)(after.invalidations - before.invalidations));
		bad = 1;
	}
	if (x[0] != 43) {
		fprintf(stderr, "rank %u: read %llu after the write\n", rank,
			(unsigned long long)x[0]);
		bad = 1;
	}
	cluster_barrier(c);
	return bad;
}

static void test_copyset(void)
{
	struct cluster c;

	cluster_init(&c, 4, 4 * DSM_PAGE_SIZE);
	if (cluster_run(&c, copyset_node, &c))
		cluster_report(&c);
	for (unsigned i = 0; i < c.n; i++)
		CHECK_EQ(c.status[i], 0);
}

/*
 * ---- split lock: a locked increment across two pages of two homes ----
 *
 * Few of them: on the development machine the host throttles bus locks,
 * and one split lock can take from microseconds to a second.
 */

#define SPLIT_ROUNDS 3

static int split_node(struct dsm *d, unsigned rank, void *arg)
{
	struct cluster *c = arg;
	/* Bytes 4094..4097: the last 2 bytes of page 0 (rank 0) and the first 2 of page 1 (rank 1). */
	uint8_t *ctr = (uint8_t *)dsm_addr(d) + DSM_PAGE_SIZE - 2;
	uint32_t v;

	for (unsigned i = 0; i < SPLIT_ROUNDS; i++)
		__asm__ volatile("lock incl (%0)" : : "r"(ctr) : "memory");
	cluster_barrier(c);
	memcpy(&v, ctr, sizeof(v));
	if (v != SPLIT_ROUNDS * c->n) {
		fprintf(stderr, "rank %u: split counter %u, expected %u\n", rank, v,
			SPLIT_ROUNDS * c->n);
		return 1;
	}
	cluster_barrier(c);
	return 0;
}

static void test_split_lock(void)
{
	struct cluster c;

	cluster_init(&c, 2, 2 * DSM_PAGE_SIZE);
	c.timeout_s = 120;
	if (cluster_run(&c, split_node, &c))
		cluster_report(&c);
	for (unsigned i = 0; i < c.n; i++)
		CHECK_EQ(c.status[i], 0);
}

/* ---- litmus tests ---- */

#define LITMUS_ROUNDS 300

/*
 * Round r uses fresh pages: variable v of round r is on page
 * v * LITMUS_ROUNDS + r, so each variable's pages are homed on one node
 * (the region is split evenly), a different one per variable.  Results go
 * to the pages after them.
 */
static volatile uint64_t *litmus_var(struct dsm *d, unsigned v, unsigned r)
{
	return (volatile uint64_t *)((uint8_t *)dsm_addr(d) +
				     ((uint64_t)v * LITMUS_ROUNDS + r) * DSM_PAGE_SIZE);
}

static volatile uint64_t *litmus_result(struct dsm *d, unsigned nvars, unsigned rank,
					 unsigned r)
{
	return (volatile uint64_t *)((uint8_t *)dsm_addr(d) +
				     (uint64_t)nvars * LITMUS_ROUNDS * DSM_PAGE_SIZE) +
	       (uint64_t)rank * LITMUS_ROUNDS + r;
}

/* Up to `max` pauses (some 20 ns each): rounds start at different relative moments. */
static void litmus_jitter(unsigned *seed, unsigned max)
{
	for (unsigned i = rand_r(seed) % max; i; i--)
		__builtin_ia32_pause();
}

/* Store buffering: rank 0 "x = 1; mfence; r0 = y", rank 1 "y = 1; mfence; r1 = x". */
static int sb_node(struct dsm *d, unsigned rank, void *arg)
{
	struct cluster *c = arg;
	unsigned seed = rank + 7, both0 = 0, seen[4] = { 0 };

	for (unsigned r = 0; r < LITMUS_ROUNDS; r++) {
		volatile uint64_t *mine = litmus_var(d, rank, r), *other = litmus_var(d, 1 - rank, r);

		cluster_barrier(c);
		litmus_jitter(&seed, 2000);
		*mine = 1;
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		*litmus_result(d, 2, rank, r) = *other;
	}
	cluster_barrier(c);
	for (unsigned r = 0; r < LITMUS_ROUNDS && rank == 0; r++) {
		uint64_t r0 = *litmus_result(d, 2, 0, r), r1 = *litmus_result(d, 2, 1, r);

		seen[r0 * 2 + r1]++;
		both0 += !r0 && !r1;
	}
	if (rank == 0)
		fprintf(stderr, "store buffering, %u rounds: (0,0) %u (0,1) %u (1,0) %u (1,1) %u\n",
		       LITMUS_ROUNDS, seen[0], seen[1], seen[2], seen[3]);
	cluster_barrier(c);
	if (both0) {
		fprintf(stderr, "store buffering with fences: both loads saw 0 in %u rounds\n", both0);
		return 1;
	}
	return 0;
}

/*
 * Two variables of LITMUS_ROUNDS pages each, then the results of every
 * rank and round (8 bytes each: a few pages), over `nodes` nodes.
 */
static void run_litmus(unsigned nodes, cluster_fn fn, unsigned timeout_s)
{
	struct cluster c;

	cluster_init(&c, nodes, (2 * LITMUS_ROUNDS + nodes) * DSM_PAGE_SIZE);
	c.timeout_s = timeout_s;
	if (cluster_run(&c, fn, &c))
		cluster_report(&c);
	else
		printf("%s", c.err[0]); /* rank 0's count of the outcomes */
	for (unsigned i = 0; i < c.n; i++)
		CHECK_EQ(c.status[i], 0);
}

static void test_litmus_sb(void)
{
	run_litmus(2, sb_node, 120);
}

/*
 * IRIW: rank 0 "x = 1", rank 1 "y = 1", rank 2 reads x then y, rank 3
 * reads y then x, each until a write shows.  Forbidden: rank 2 sees x = 1,
 * y = 0 and rank 3 sees y = 1, x = 0 (they saw the writes in opposite
 * orders).
 */
static int iriw_node(struct dsm *d, unsigned rank, void *arg)
{
	struct cluster *c = arg;
	unsigned seed = rank * 31 + 1, bad = 0, split = 0, seen[2][4] = { { 0 } };

	for (unsigned r = 0; r < LITMUS_ROUNDS; r++) {
		volatile uint64_t *x = litmus_var(d, 0, r), *y = litmus_var(d, 1, r);
		volatile uint64_t *first = rank == 2 ? x : y, *second = rank == 2 ? y : x;

		cluster_barrier(c);
		/* Writers late by up to a few remote faults: readers may fall between them. */
		litmus_jitter(&seed, rank < 2 ? 20000 : 100);
		if (rank < 2) {
			*(rank == 0 ? x : y) = 1;
		} else {
			uint64_t a, b;

			/* Read both until one write shows: what showed first is the order seen. */
			do {
				a = *first;
				/* x86 keeps loads in order; the compiler must too. */
				__atomic_signal_fence(__ATOMIC_SEQ_CST);
				b = *second;
				if (!a && !b)
					sched_yield(); /* two cores, four processes: let the writers run */
			} while (!a && !b);
			*litmus_result(d, 2, rank, r) = a << 1 | b;
		}
	}
	cluster_barrier(c);
	for (unsigned r = 0; r < LITMUS_ROUNDS && rank == 0; r++) {
		uint64_t o2 = *litmus_result(d, 2, 2, r), o3 = *litmus_result(d, 2, 3, r);

		seen[0][o2 & 3]++;
		seen[1][o3 & 3]++;
		/* 0b10: saw its first variable written, the second not yet. */
		bad += o2 == 2 && o3 == 2;
		split += (o2 == 2) + (o3 == 2);
	}
	if (rank == 0)
		fprintf(stderr, "IRIW, %u rounds: a reader saw one write but not the other %u times, "
			"both readers in opposite orders %u times; rank 2 (x, y) 00 %u 01 %u 10 %u "
			"11 %u, rank 3 (y, x) 00 %u 01 %u 10 %u 11 %u\n", LITMUS_ROUNDS, split, bad,
			seen[0][0], seen[0][1], seen[0][2], seen[0][3], seen[1][0], seen[1][1],
			seen[1][2], seen[1][3]);
	cluster_barrier(c);
	return bad ? 1 : 0;
}

static void test_litmus_iriw(void)
{
	run_litmus(4, iriw_node, 180);
}

int main(void)
{
	/* GVM_DSM_SOAK=N runs everything N times (a soak; the default tier runs it once). */
	const char *soak = getenv("GVM_DSM_SOAK");
	int rounds = soak ? atoi(soak) : 1;

	log_init("test-dsm-coherence");
	for (int i = 1; i < rounds && check_state.failures == 0; i++) {
		test_counters_2();
		test_counters_3();
		test_counters_4();
		test_counters_3_excl_read();
		test_counters_3_hold();
		test_pattern();
		test_pattern_prefetch();
		test_pingpong();
		test_copyset();
		printf("soak round %d: %u failures\n", i, check_state.failures);
	}
	RUN(test_counters_2);
	RUN(test_counters_3);
	RUN(test_counters_4);
	RUN(test_counters_3_excl_read);
	RUN(test_counters_3_hold);
	RUN(test_pattern);
	RUN(test_pattern_prefetch);
	RUN(test_prefetch_bound);
	RUN(test_pingpong);
	RUN(test_copyset);
	RUN(test_split_lock);
	RUN(test_litmus_sb);
	RUN(test_litmus_iriw);
	return check_summary();
}
