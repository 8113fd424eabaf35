/*
 * A randomized coherence stress of libgvdsm: 2, 3 and 4 real processes on
 * loopback, several threads each, a mix of whole-slot writes, checked reads
 * in both directions and atomic increments on a few pages homed on every
 * node, with prefetch, exclusive-on-read and the hold switched on or off.
 *
 * Every thread w owns one slot (8 words) in every page.  A write pass stores
 * its next sequence number s in its slot of every page, in ascending page
 * order and word order.  So at any time, in memory, a writer's values do
 * not grow with the page (or word) number, and never go down in time.  A
 * reader going down the pages (and words) must therefore see values that
 * never decrease (x86 TSO keeps loads in order and stores in order; the
 * DSM promises sequential consistency): a stale copy of a page shows up as
 * a value smaller than one read before it.  Every reader also checks that
 * no slot goes back in time, and its own slot is exactly what it wrote.
 * Atomic increments on word 0 of each page must all be there at the end.
 * The sequence of operations of each thread is a function of the seed, so
 * every node computes what the memory must hold at the end.
 *
 * The default tier runs a few short seeds.  GVM_DSM_STRESS=N runs N rounds
 * of random seeds over every configuration (a soak); GVM_DSM_STRESS_SEED=S
 * replays one seed.
 */
#include <pthread.h>
#include <sched.h>

#include "tests/dsm/cluster.h"
#include "tests/lib/check.h"

#define MAX_THREADS 3
#define MAX_WRITERS (CLUSTER_MAX * MAX_THREADS)
#define SLOT_WORDS 8
#define SLOT_FIRST 8 /* word 0 is the atomic counter; slots start at word 8 */
#define MAX_PAGES 64

struct stress {
	struct cluster *c;
	unsigned pages, threads, steps;
	uint64_t seed;
};

struct worker {
	struct stress *s;
	uint64_t *base;
	unsigned rank, id, w;
	int bad;
	uint64_t seen[MAX_WRITERS][MAX_PAGES][SLOT_WORDS];
};

enum { OP_WRITE, OP_READ_DOWN, OP_READ_UP, OP_ATOMIC, OP_RMW };

static uint64_t mix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Step i of writer w: the operation and its parameter, from the seed alone. */
static unsigned stress_op(uint64_t *rng, uint64_t *param)
{
	unsigned r = mix64(rng) % 100;

	*param = mix64(rng);
	if (r < 30)
		return OP_WRITE;
	if (r < 55)
		return OP_READ_DOWN;
	if (r < 75)
		return OP_READ_UP;
	if (r < 92)
		return OP_ATOMIC;
	return OP_RMW;
}

static uint64_t stress_rng(const struct stress *s, unsigned w)
{
	return s->seed * 1000003ull + w * 7919ull + 1;
}

/* What writer w's operations leave: its last sequence number, its increments per page. */
static uint64_t stress_replay(const struct stress *s, unsigned w, uint64_t *adds)
{
	uint64_t rng = stress_rng(s, w), param, seq = 0;

	for (unsigned i = 0; i < s->steps; i++)
		switch (stress_op(&rng, &param)) {
		case OP_WRITE:
			seq++;
			break;
		case OP_ATOMIC:
		case OP_RMW:
			adds[param % s->pages]++;
			break;
		}
	return seq;
}

static uint64_t *slot(struct worker *t, unsigned pg, unsigned w, unsigned word)
{
	return t->base + (uint64_t)pg * (DSM_PAGE_SIZE / 8) + SLOT_FIRST + w * SLOT_WORDS + word;
}

static int stress_fail(struct worker *t, const char *what, unsigned w, unsigned pg,
		       unsigned word, uint64_t v, uint64_t bound)
{
	fprintf(stderr, "rank %u thread %u seed %llu: %s: writer %u page %u word %u is %llu, "
		"bound %llu\n", t->rank, t->id, (unsigned long long)t->s->seed, what, w, pg, word,
		(unsigned long long)v, (unsigned long long)bound);
	t->bad = 1;
	return 1;
}

/*
 * Read writer w's slots going down (pages, then words): values never
 * decrease; or going up.  Either way, no word goes back in time.
 */
static void stress_read(struct worker *t, unsigned w, bool down, uint64_t own)
{
	unsigned n = t->s->pages;
	uint64_t prev = 0;

	for (unsigned k = 0; k < n; k++) {
		unsigned pg = down ? n - 1 - k : k;

		for (unsigned j = 0; j < SLOT_WORDS; j++) {
			unsigned word = down ? SLOT_WORDS - 1 - j : j;
			uint64_t v = __atomic_load_n(slot(t, pg, w, word), __ATOMIC_ACQUIRE);
			uint64_t *seen = &t->seen[w][pg][word];

			if (down && v < prev) {
				stress_fail(t, "a write seen before an earlier one", w, pg, word, v,
					    prev);
				return;
			}
			if (v < *seen) {
				stress_fail(t, "went back in time", w, pg, word, v, *seen);
				return;
			}
			if (w == t->w && v != own) {
				stress_fail(t, "own write not read back", w, pg, word, v, own);
				return;
			}
			if (v > t->s->steps) {
				stress_fail(t, "garbage", w, pg, word, v, t->s->steps);
				return;
			}
			prev = v;
			*seen = v;
		}
	}
}

static void *stress_worker(void *arg)
{
	struct worker *t = arg;
	struct stress *s = t->s;
	unsigned writers = s->c->n * s->threads;
	uint64_t rng = stress_rng(s, t->w), param, seq = 0;

	for (unsigned i = 0; i < s->steps && !t->bad; i++) {
		unsigned op = stress_op(&rng, &param);
		unsigned pg = param % s->pages;

		switch (op) {
		case OP_WRITE:
			seq++;
			for (unsigned p = 0; p < s->pages; p++)
				for (unsigned j = 0; j < SLOT_WORDS; j++)
					__atomic_store_n(slot(t, p, t->w, j), seq, __ATOMIC_RELEASE);
			break;
		case OP_READ_DOWN:
			stress_read(t, (param >> 32) % writers, true, seq);
			break;
		case OP_READ_UP:
			stress_read(t, (param >> 32) % writers, false, seq);
			break;
		case OP_ATOMIC:
			__atomic_fetch_add(&t->base[pg * (DSM_PAGE_SIZE / 8)], 1, __ATOMIC_SEQ_CST);
			break;
		case OP_RMW: {
			/* Read first (a read fault, then an upgrade), then a compare-and-swap loop. */
			uint64_t *p = &t->base[pg * (DSM_PAGE_SIZE / 8)];
			uint64_t v = __atomic_load_n(p, __ATOMIC_ACQUIRE);

			while (!__atomic_compare_exchange_n(p, &v, v + 1, false, __ATOMIC_SEQ_CST,
							    __ATOMIC_ACQUIRE))
				;
			break;
		}
		}
	}
	return NULL;
}

static int stress_node(struct dsm *d, unsigned rank, void *arg)
{
	struct stress *s = arg;
	struct worker *t = calloc(s->threads, sizeof(*t));
	pthread_t th[MAX_THREADS];
	uint64_t adds[MAX_PAGES] = { 0 }, *base = dsm_addr(d);
	unsigned writers = s->c->n * s->threads;
	int bad = 0;

	if (!t)
		return 20;
	for (unsigned i = 0; i < s->threads; i++) {
		t[i] = (struct worker){ .s = s, .base = base, .rank = rank, .id = i,
					.w = rank * s->threads + i };
		pthread_create(&th[i], NULL, stress_worker, &t[i]);
	}
	for (unsigned i = 0; i < s->threads; i++) {
		pthread_join(th[i], NULL);
		bad |= t[i].bad;
	}
	free(t);
	cluster_barrier(s->c);
	/* Every node checks the whole final state. */
	for (unsigned w = 0; w < writers && !bad; w++) {
		uint64_t seq = stress_replay(s, w, adds);

		for (unsigned pg = 0; pg < s->pages && !bad; pg++)
			for (unsigned j = 0; j < SLOT_WORDS; j++) {
				uint64_t v = base[pg * (DSM_PAGE_SIZE / 8) + SLOT_FIRST +
						  w * SLOT_WORDS + j];
				if (v != seq) {
					fprintf(stderr, "rank %u seed %llu: writer %u page %u word %u "
						"is %llu at the end, not %llu\n", rank,
						(unsigned long long)s->seed, w, pg, j,
						(unsigned long long)v, (unsigned long long)seq);
					bad = 1;
					break;
				}
			}
	}
	for (unsigned pg = 0; pg < s->pages && !bad; pg++)
		if (base[pg * (DSM_PAGE_SIZE / 8)] != adds[pg]) {
			fprintf(stderr, "rank %u seed %llu: page %u counts %llu increments, not %llu\n",
				rank, (unsigned long long)s->seed, pg,
				(unsigned long long)base[pg * (DSM_PAGE_SIZE / 8)],
				(unsigned long long)adds[pg]);
			bad = 1;
		}
	cluster_barrier(s->c);
	return bad;
}

struct stress_cfg {
	unsigned nodes, threads, pages, steps, handlers;
	unsigned prefetch, hold_us, poll_us;
	bool excl_read;
};

static int run_stress(const struct stress_cfg *sc, uint64_t seed)
{
	struct stress s = { .pages = sc->pages, .threads = sc->threads, .steps = sc->steps,
			    .seed = seed };
	struct cluster c;
	int bad = 0;

	cluster_init(&c, sc->nodes, (uint64_t)sc->pages * DSM_PAGE_SIZE);
	c.tmpl.prefetch_pages = sc->prefetch;
	c.tmpl.excl_read = sc->excl_read;
	c.tmpl.hold_us = sc->hold_us;
	c.tmpl.nr_handlers = sc->handlers;
	c.tmpl.handler_poll_us = sc->poll_us;
	c.tmpl.recv_poll_us = sc->poll_us;
	c.timeout_s = 120;
	s.c = &c;
	if (cluster_run(&c, stress_node, &s)) {
		fprintf(stderr, "seed %llu: %u nodes x %u threads, %u pages, %u handlers, "
			"prefetch %u, excl_read %d, hold %u us, poll %u us\n",
			(unsigned long long)seed, sc->nodes, sc->threads, sc->pages, sc->handlers,
			sc->prefetch, sc->excl_read, sc->hold_us, sc->poll_us);
		cluster_report(&c);
	}
	for (unsigned i = 0; i < sc->nodes; i++) {
		CHECK_EQ(c.status[i], 0);
		bad |= c.status[i] != 0;
	}
	return bad;
}

static const struct stress_cfg cfgs[] = {
	{ .nodes = 2, .threads = 2, .pages = 8, .steps = 400, .handlers = 2 },
	{ .nodes = 3, .threads = 2, .pages = 24, .steps = 300, .handlers = 2, .prefetch = 16,
	  .excl_read = true },
	{ .nodes = 4, .threads = 2, .pages = 32, .steps = 200, .handlers = 3, .prefetch = 8,
	  .hold_us = 50 },
	{ .nodes = 3, .threads = 3, .pages = 12, .steps = 300, .handlers = 1, .prefetch = 64,
	  .excl_read = true, .hold_us = 100 },
};

static void test_stress_2(void)
{
	run_stress(&cfgs[0], 1);
}

static void test_stress_3_prefetch_excl(void)
{
	run_stress(&cfgs[1], 2);
}

static void test_stress_4_prefetch_hold(void)
{
	run_stress(&cfgs[2], 3);
}

static void test_stress_3_all(void)
{
	run_stress(&cfgs[3], 4);
}

int main(void)
{
	const char *soak = getenv("GVM_DSM_STRESS"), *one = getenv("GVM_DSM_STRESS_SEED");

	log_init("test-dsm-stress");
	if (one) {
		uint64_t seed = strtoull(one, NULL, 0);

		for (size_t i = 0; i < sizeof(cfgs) / sizeof(cfgs[0]); i++)
			run_stress(&cfgs[i], seed);
		return check_summary();
	}
	if (soak) {
		int rounds = atoi(soak);
		uint64_t seed0 = (uint64_t)time(NULL) << 16;

		for (int r = 0; r < rounds && check_state.failures == 0; r++)
			for (size_t i = 0; i < sizeof(cfgs) / sizeof(cfgs[0]); i++) {
				struct stress_cfg sc = cfgs[i];

				/* Longer runs, all policies in turn. */
				sc.steps *= 4;
				sc.excl_read = (r + i) & 1;
				sc.hold_us = (r + i) & 2 ? 50 : 0;
				sc.prefetch = (r + i) & 4 ? 0 : sc.prefetch ? sc.prefetch : 16;
				sc.poll_us = (r + i) & 8 ? 20 : 0;
				if (run_stress(&sc, seed0 + r * 16 + i))
					break;
			}
		printf("stress soak: %d rounds, %u failures\n", rounds, check_state.failures);
		return check_summary();
	}
	RUN(test_stress_2);
	RUN(test_stress_3_prefetch_excl);
	RUN(test_stress_4_prefetch_hold);
	RUN(test_stress_3_all);
	return check_summary();
}
