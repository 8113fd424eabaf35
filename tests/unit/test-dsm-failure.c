/*
 * libgvdsm when things go wrong, with real processes and sockets:
 * - one instance killed mid-run: every other one stops, non-zero,
 *   with an error naming the dead rank and its host:port; also when it had
 *   already begun its collective stop (said BYE) before it died;
 * - malformed or out-of-protocol messages from an authenticated peer: the
 *   connection is closed, the DSM stops naming the peer, memory is intact;
 * - garbage bytes on a node's port while the mesh forms: refused, and the
 *   DSM still comes up;
 * - bad configurations: a clear error from dsm_create.
 */
#include <arpa/inet.h>
#include <pthread.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include "common/seal.h"
#include "common/wire.h"
#include "dsm/internal.h"
#include "tests/dsm/cluster.h"
#include "tests/lib/check.h"


/* ---- kill one instance mid-run ---- */

struct kill_state {
	unsigned victim;
	unsigned working;  /* nodes that must be working before the kill */
	double ready_ms;   /* when they all were */
	double kill_ms;
	int killed;
};

static int kill_node(struct dsm *d, unsigned rank, void *arg)
{
	struct cluster *c = arg;
	volatile uint64_t *base = dsm_addr(d);
	uint64_t npages = dsm_size(d) / DSM_PAGE_SIZE;

	(void)rank;
	atomic_fetch_add(&c->sh->ready, 1);
	/* Work until the DSM fails (on_fatal exits); give up after 20 s. */
	for (unsigned i = 0; i < 2000000; i++) {
		__atomic_fetch_add(&base[(i % npages) * (DSM_PAGE_SIZE / 8)], 1, __ATOMIC_SEQ_CST);
		if (i % 64 == 0)
			usleep(100);
	}
	fprintf(stderr, "rank %u: still running, the DSM did not stop\n", rank);
	return 1;
}

/* Kill the victim once k->working nodes have been working for 300 ms. */
static void kill_hook(struct cluster *c, void *arg)
{
	struct kill_state *k = arg;

	if (k->killed || atomic_load(&c->sh->ready) < k->working)
		return;
	if (!k->ready_ms)
		k->ready_ms = cluster_ms_since(&c->t0);
	if (cluster_ms_since(&c->t0) - k->ready_ms < 300)
		return;
	kill(c->pids[k->victim], SIGKILL);
	k->kill_ms = cluster_ms_since(&c->t0);
	k->killed = 1;
}

/*
 * A survivor sees the victim's connections close at once and stops; the
 * bound only tells that from waiting for the parent's 30 s limit (a loaded
 * machine running 4 sanitized processes may take seconds).
 */
#define KILL_NOTICED_MS 15000

/* Run the nodes, kill the victim, and check every survivor stopped in time naming it. */
static void kill_run(struct kill_state *k, int (*node)(struct dsm *, unsigned, void *))
{
	struct cluster c;
	char name[64];

	cluster_init(&c, 4, 16 * DSM_PAGE_SIZE);
	c.parent_hook = kill_hook;
	c.arg = k;
	c.timeout_s = 30;
	cluster_run(&c, node, &c);
	CHECK(k->killed);
	snprintf(name, sizeof(name), "rank %u (127.0.0.1:%u)", k->victim, c.peers[k->victim].port);
	CHECK_EQ(c.status[k->victim], 128 + SIGKILL);
	for (unsigned i = 0; i < c.n; i++) {
		if (i == k->victim)
			continue;
		CHECK_EQ(c.status[i], 3);
		CHECK(c.exit_ms[i] - k->kill_ms < KILL_NOTICED_MS);
		CHECK(strstr(c.err[i], name) != NULL);
		if (c.status[i] != 3 || !strstr(c.err[i], name) || c.exit_ms[i] - k->kill_ms >= KILL_NOTICED_MS) {
			fprintf(stderr, "killed at %.0f ms\n", k->kill_ms);
			cluster_report(&c);
			break;
		}
	}
}

static void test_kill_one(void)
{
	struct kill_state k = { .victim = 2, .working = 4 };

	kill_run(&k, kill_node);
}

/*
 * The victim stops first (its BYE reaches every peer), then dies while the
 * others still work: the others still need it, so its connections closing
 * is a loss, BYE or not.  The others count as working only once its BYE
 * has come, so that the kill finds it in dsm_stop.
 */
static int kill_after_bye_node(struct dsm *d, unsigned rank, void *arg)
{
	struct cluster *c = arg;

	if (rank == 2)
		return 0; /* straight to dsm_stop: BYE, then serve until killed */
	if (!CLUSTER_WAIT(c, cluster_bye_from(d, 2), 20000)) {
		fprintf(stderr, "rank %u: no BYE from rank 2 within 20 s\n", rank);
		return 1;
	}
	return kill_node(d, rank, arg);
}

static void test_kill_after_bye(void)
{
	/* Ranks 0, 1 and 3 are working (and rank 2 is in dsm_stop). */
	struct kill_state k = { .victim = 2, .working = 3 };

	kill_run(&k, kill_after_bye_node);
}

/* ---- bad messages from an authenticated peer ---- */

#define BAD_PAGES 8 /* rank 0 homes pages 0-3, rank 1 pages 4-7 */

struct bad_msg {
	const char *what;
	struct wire_hdr h;
	const char *raw;        /* instead of h: raw bytes */
	unsigned channel;
	const char *expect;     /* in rank 0's error */
};

/* A bad message after a good one: a request answered with PAGE. */
struct bad_after {
	struct bad_msg m;
	struct wire_hdr first;  /* if its type is set: sent before m.h */
	unsigned gone;          /* pages of rank 0 that first took away */
	bool forged;            /* on a sealed mesh, m.h goes without its tag */
};

static uint8_t bad_pattern(uint64_t pg, size_t i)
{
	return (uint8_t)(pg * 37 + i * 11 + 5);
}

/* The victim survives its DSM's failure, to check its memory. */
static void survive(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

/* Rank 0: a DSM with data in its pages, waiting for the peer's message to stop it. */
static int bad_victim(struct dsm *d, unsigned rank, void *arg)
{
	struct cluster *c = arg;
	const struct bad_after *a = c->arg;
	const struct bad_msg *m = &a->m;
	uint8_t *base = dsm_addr(d);
	const char *e = NULL;

	(void)rank;
	for (uint64_t pg = 0; pg < BAD_PAGES / 2; pg++)
		for (size_t i = 0; i < DSM_PAGE_SIZE; i++)
			base[pg * DSM_PAGE_SIZE + i] = bad_pattern(pg, i);
	cluster_barrier(c);
	for (int i = 0; i < 5000 && !(e = dsm_error(d)); i++)
		usleep(1000);
	if (__gcov_exit) /* it may be killed before it ends */
		__gcov_exit();
	if (!e) {
		fprintf(stderr, "%s: the DSM did not stop\n", m->what);
		return 1;
	}
	if (!strstr(e, "protocol error from rank 1 (127.0.0.1:") || !strstr(e, m->expect)) {
		fprintf(stderr, "%s: unexpected error: %s\n", m->what, e);
		return 1;
	}
	for (uint64_t pg = 0; pg < BAD_PAGES / 2; pg++)
		for (size_t i = 0; i < DSM_PAGE_SIZE && !(a->gone & 1u << pg); i++)
			if (base[pg * DSM_PAGE_SIZE + i] != bad_pattern(pg, i)) {
				fprintf(stderr, "%s: page %llu was changed\n", m->what,
					(unsigned long long)pg);
				return 1;
			}
	return CLUSTER_FAILED_OK;
}

/*
 * Rank 1: no DSM, just the authenticated mesh (or the fabric transport over
 * it); sends one bad message.
 */
static int bad_sender(struct cluster *c, struct mesh *m, unsigned rank, void *arg)
{
	const struct bad_after *a = c->arg;
	const struct bad_msg *b = &a->m;
	unsigned char page[DSM_PAGE_SIZE + 64] = { 0 };
	int fd = mesh_fd(m, 0, b->channel);
	struct cluster_link l;
	struct wire_hdr h;
	char why[128];
	int rc = 0;

	(void)rank;
	(void)arg;
	memset(page, 0xee, sizeof(page));
	if (cluster_link_open(&l, c, m))
		cluster_fail(c, rank, "no link to rank 0");
	cluster_barrier(c);
	if (a->first.type && (cluster_link_send(&l, 0, b->channel, &a->first, NULL) ||
			      cluster_link_recv(&l, 0, b->channel, &h, page, sizeof(page), why) ||
			      h.type != 0x105)) {
		rc = 22;
	} else if (b->raw) {
		if (write(fd, b->raw, strlen(b->raw)) < 0)
			rc = 20;
	} else if (b->h.len > DSM_PAGE_SIZE) {
		/* The header lies about its length: nothing follows. */
		if (write(fd, &b->h, sizeof(b->h)) < 0)
			rc = 20;
	} else if (a->forged) {
		/* A whole frame, as an attacker would inject it: the tag is a guess. */
		uint8_t tag[SEAL_TAG_LEN] = { 0 };

		if (wire_send(fd, &b->h, b->h.len ? page : NULL) || write(fd, tag, sizeof(tag)) < 0)
			rc = 21;
	} else if (cluster_link_send(&l, 0, b->channel, &b->h, b->h.len ? page : NULL)) {
		rc = 21;
	}
	/* Rank 0 must close the connection. */
	if (!rc)
		cluster_link_drain(&l, 0, b->channel);
	cluster_link_close(&l);
	return rc;
}

static struct wire_hdr hdr(uint16_t type, uint64_t a0, uint64_t a1, uint64_t a2, uint32_t len)
{
	struct wire_hdr h = wire_hdr_make(type, 1, len);

	h.arg[0] = a0;
	h.arg[1] = a1;
	h.arg[2] = a2;
	return h;
}

static void bad_run(const struct bad_after *a)
{
	struct cluster c;

	cluster_init(&c, 2, BAD_PAGES * DSM_PAGE_SIZE);
	c.integrity = a->forged;
	c.tmpl.on_fatal = survive;
	c.raw_mask = 1u << 1;
	c.raw = bad_sender;
	c.arg = (void *)a;
	c.timeout_s = 20;
	cluster_run(&c, bad_victim, &c);
	CHECK_EQ(c.status[0], 0);
	CHECK_EQ(c.status[1], 0);
	if (c.status[0] || c.status[1]) {
		fprintf(stderr, "case: %s\n", a->m.what);
		cluster_report(&c);
	}
}

/*
 * Bytes that are no frame, or a header that lies about its length, go
 * straight onto the mesh's TCP connection: no seal, and nothing a fabric
 * peer could send (test-dsm-fabric-forged and the fabric-recv fuzz target
 * forge the fabric's own framing).
 */
static bool bad_skip(const struct bad_msg *m)
{
	if (!m->raw && m->h.len <= DSM_PAGE_SIZE)
		return false;
	if (getenv("GVM_DSM_INTEGRITY")) {
		printf("skip %s with every frame sealed: it carries no integrity tag\n", m->what);
		return true;
	}
	return cluster_skip_if_fabric(m->what, "a fabric peer cannot send it");
}

static void test_bad_messages(void)
{
	static const char garbage[] = "GET / HTTP/1.1\r\nHost: giantvm\r\n\r\n"
				      "and more garbage to fill a header";
	const char *t = getenv("GVM_DSM_TRANSPORT");
	bool fabric = t && !strncmp(t, "fabric", 6);
	struct bad_msg msgs[] = {
		{ "unknown type", hdr(0x1ff, 0, 0, 0, 0), NULL, 0, "unknown message type 0x1ff" },
		{ "page out of range", hdr(0x100, 9999, 0, 0, 0), NULL, 0, "beyond the region" },
		{ "request to the wrong home", hdr(0x101, 5, 0, 0, 0), NULL, 0, "whose home is rank 1" },
		{ "unsolicited page", hdr(0x105, 2, 1, 0, DSM_PAGE_SIZE), NULL, 0,
		  "no request of ours" },
		{ "page of the wrong size", hdr(0x105, 2, 1, 0, 100), NULL, 0, "not 4096" },
		{ "invalidation from a non-home", hdr(0x103, 1, 1, 0, 0), NULL, 0,
		  "whose home is rank 0" },
		{ "forward to a bad rank", hdr(0x102, 5, 7, 1, 0), NULL, 0, "invalid arguments" },
		{ "DONE without a transaction", hdr(0x108, 1, 0, 0, 0), NULL, 0, "no transaction" },
		{ "demand message on the bulk channel", hdr(0x100, 1, 0, 0, 0), NULL, 1,
		  "does not carry it" },
		{ "garbage bytes", { 0 }, garbage, 0, "malformed frame" },
		{ "oversized frame", hdr(0x105, 2, 0, 0, 64u << 20), NULL, 0, "more than" },
		{ "flags set", { .magic = WIRE_MAGIC, .version = WIRE_VERSION, .flags = 1,
				 .type = 0x100, .from = 1 }, NULL, 0, "both must be 0" },
		{ "a token on an ack", { .magic = WIRE_MAGIC, .version = WIRE_VERSION, .seq = 5,
				       .type = 0x104, .from = 1 }, NULL, 0, "seq 5 (both must be 0)" },
		{ "READ with arguments", hdr(0x100, 1, 1, 0, 0), NULL, 0, "invalid arguments" },
		{ "DONE naming a rank beyond the VM", hdr(0x108, 1, 9, 0, 0), NULL, 0,
		  "invalid arguments" },
		{ "FWD of an unknown kind", hdr(0x102, 5, 1 | 2u << 16, 0, 0), NULL, 0,
		  "invalid arguments" },
		{ "INV with a second argument", hdr(0x103, 5, 1, 1, 0), NULL, 0, "invalid arguments" },
		{ "INV_ACK with arguments", hdr(0x104, 1, 1, 0, 0), NULL, 0, "invalid arguments" },
		{ "INV_ACK without a write of ours", hdr(0x104, 5, 0, 0, 0), NULL, 0,
		  "unexpected invalidation ack" },
		{ "PAGE with unknown flags", hdr(0x105, 5, 4, 0, DSM_PAGE_SIZE), NULL, 0,
		  "invalid arguments" },
		{ "PAGE whose acks name the receiver", hdr(0x105, 5, 1, 1, DSM_PAGE_SIZE), NULL, 0,
		  "invalid arguments" },
		{ "PAGE whose acks name a rank beyond the VM", hdr(0x105, 5, 1, 4, DSM_PAGE_SIZE),
		  NULL, 0, "invalid arguments" },
		{ "ZERO with a payload", hdr(0x106, 5, 1, 0, DSM_PAGE_SIZE), NULL, 0, "not 0" },
		{ "GRANT without a request", hdr(0x107, 5, 1, 0, 0), NULL, 0, "no request of ours" },
		{ "PREFETCH of no pages", hdr(0x109, 1, 0, 0, 0), NULL, 1, "invalid arguments" },
		{ "PREFETCH of too many pages", hdr(0x109, 0, 65, 0, 0), NULL, 1, "invalid arguments" },
		{ "PREFETCH across two homes", hdr(0x109, 3, 2, 0, 0), NULL, 1, "invalid arguments" },
		{ "BULK of more than asked", hdr(0x10a, 5, 1, 2, 0), NULL, 1,
		  "invalid arguments" },
		{ "BULK not asked for", hdr(0x10a, 5, 1, 1, DSM_PAGE_SIZE), NULL, 1,
		  "was not asked for" },
		{ "BULK_DONE of pages not sent", hdr(0x10b, 1, 1, 0, 0), NULL, 1, "was not sent" },
		{ "BYE with arguments", hdr(0x10c, 1, 0, 0, 0), NULL, 0, "invalid arguments" },
		{ "ABORT naming a rank beyond the VM", hdr(0x10d, 7, 0, 0, 0), NULL, 0,
		  "invalid arguments" },
		{ "a sender lying about its rank", { .magic = WIRE_MAGIC, .version = WIRE_VERSION,
						      .type = 0x100, .from = 0 }, NULL, 0,
		  fabric ? "message claims to come from rank 0" :
			   "frame claims to come from rank 0" },
		{ "FWD of a page not here", hdr(0x102, 5, 1, 0, 0), NULL, 0,
		  "asked to send page 5, which is not here" },
		{ "INV of a page not here", hdr(0x103, 5, 1, 0, 0), NULL, 0,
		  "asked to drop page 5, of which no read copy is here" },
	};

	/* Requests for what the sender already has. */
	struct bad_after after[] = {
		{ { "READ of a page held", hdr(0x100, 1, 0, 0, 0), NULL, 0,
		    "read request for page 1, of which rank 1 holds a copy" },
		  hdr(0x100, 1, 0, 0, 0), 0, false },
		{ { "WRITE of a page writable", hdr(0x101, 3, 0, 0, 0), NULL, 0,
		    "write request for page 3, which rank 1 can already write" },
		  hdr(0x101, 3, 0, 0, 0), 1u << 3, false },
	};

	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++)
		if (!bad_skip(&msgs[i]))
			bad_run(&(struct bad_after){ .m = msgs[i] });
	for (size_t i = 0; i < sizeof(after) / sizeof(after[0]); i++)
		bad_run(&after[i]);
}

/*
 * --integrity: on sealed connections a request with its tag is served (a
 * READ, answered with a sealed PAGE), and a well-formed request injected
 * without one, which the DSM would serve too, stops it instead.
 */
static void test_integrity_injected(void)
{
	struct bad_after a = {
		.m = { "an injected READ", hdr(0x100, 2, 0, 0, 0), NULL, 0,
		       "frame of type 0x100 fails its integrity check" },
		.first = hdr(0x100, 1, 0, 0, 0),
		.forged = true,
	};

	if (cluster_skip_if_fabric(__func__, "it does not seal (test_integrity_not_over_fabric)"))
		return;
	a.first.seq = 77;
	a.m.h.seq = 78;
	bad_run(&a);
}

static int never_runs(struct dsm *d, unsigned rank, void *arg)
{
	(void)d;
	(void)rank;
	(void)arg;
	return 1;
}

/* A sealed mesh and the fabric transport, which cannot seal: refused, said why. */
static void test_integrity_not_over_fabric(void)
{
	struct cluster c;

	if (cluster_skip_without_libfabric(__func__))
		return;
	cluster_init(&c, 2, 2 * DSM_PAGE_SIZE);
	c.integrity = true;
	c.tmpl.transport = "fabric:tcp;ofi_rxm";
	c.timeout_s = 20;
	cluster_run(&c, never_runs, NULL);
	for (unsigned r = 0; r < 2; r++) {
		CHECK_EQ(c.status[r], 11);
		CHECK(strstr(c.err[r], "the mesh checks every message (--integrity), which the "
				       "fabric transport does not") != NULL);
	}
}

/*
 * ---- replies, acks and requests against the state of the page ----
 *
 * Three ranks; rank 0 runs a DSM, ranks 1 and 2 are scripted on its
 * transport (tests/dsm/cluster.h's link).  Pages 0-1 are homed at rank 0, 2-3 at rank 1, 4-5 at rank 2.
 * Either rank 0 faults on page 2 and its home (rank 1) or rank 2 answers it
 * wrongly, or rank 0 is the home of page 0 and ranks 1 and 2 ask for it
 * out of turn.
 */

enum {
	/* rank 0 writes page 2; rank 1 answers the WRITE: */
	WRONG_ACK,      /* PAGE naming rank 2's ack, then an ack from rank 1 */
	REPLY_TWICE,    /* PAGE waiting for rank 2's ack, twice */
	GRANT_NO_COPY,  /* GRANT, though rank 0 holds no copy */
	ZERO_READ_ONLY, /* ZERO without write access */
	READ_WITH_ACKS, /* a read-only PAGE that names acks */
	COPY_MAPPED,    /* (rank 0 read it first) PAGE, though its copy is mapped */
	/* rank 1 takes the WRITE and says nothing; rank 2 sends rank 0: */
	NOT_DONE,       /* PAGE without the DONE flag */
	ACK_UNNAMED,    /* an ack, then PAGE (DONE) naming no ack */
	ACK_TWICE,      /* two acks */
	FORGED_PAGE,    /* PAGE (DONE), without the token of rank 0's WRITE */
	/* rank 0 homes page 0, which rank 2 took for writing: */
	WRONG_SOURCE,   /* rank 1 reports it came from rank 0 */
	QUEUE_DUP,      /* rank 1 asks three times while rank 2 keeps it */
	QUEUED_INVALID, /* rank 1 asks again while it gets it, then reports DONE */
};

struct wrong_case {
	int kind;
	const char *expect;
};

static bool wrong_at_home(int kind)
{
	return kind >= WRONG_SOURCE;
}

static void *wrong_writer(void *arg)
{
	volatile uint8_t *p = arg;

	*p = 1; /* faults; answered (wrongly) by the script, or never */
	return NULL;
}

/* Rank 0: fault on page 2 (homed at rank 1), or hold page 0 for rank 2, and wait for the DSM to stop. */
static int wrong_victim(struct dsm *d, unsigned rank, void *arg)
{
	struct cluster *c = arg;
	const struct wrong_case *w = c->arg;
	uint8_t *base = dsm_addr(d);
	const char *e = NULL;
	pthread_t t;

	(void)rank;
	if (wrong_at_home(w->kind))
		memset(base, 0x5a, DSM_PAGE_SIZE); /* page 0 is ours, with data */
	cluster_barrier(c);
	if (wrong_at_home(w->kind))
		cluster_barrier(c); /* rank 2 owns page 0 now */
	if (w->kind == COPY_MAPPED && ((volatile uint8_t *)base)[2 * DSM_PAGE_SIZE])
		return 1; /* a read copy of page 2, of zeros */
	if (!wrong_at_home(w->kind) &&
	    pthread_create(&t, NULL, wrong_writer, base + 2 * DSM_PAGE_SIZE))
		return 1;
	for (int i = 0; i < 10000 && !(e = dsm_error(d)); i++)
		usleep(1000);
	if (!e || !strstr(e, w->expect)) {
		fprintf(stderr, "unexpected error: %s (wanted \"%s\")\n", e ? e : "none", w->expect);
		return 1;
	}
	/*
	 * The writer is still blocked in its fault: tearing the DSM down under
	 * it would unmap the page it retries (SIGSEGV).  gvm stops its vCPUs
	 * first; here the process ends with the thread.
	 */
	if (!wrong_at_home(w->kind))
		check_exit(0);
	return CLUSTER_FAILED_OK;
}

static int wrong_recv(struct cluster_link *l, unsigned from, uint16_t type, struct wire_hdr *h)
{
	static unsigned char buf[DSM_PAGE_SIZE];
	char why[128] = "";

	if (cluster_link_recv(l, from, 0, h, buf, sizeof(buf), why) || h->type != type) {
		fprintf(stderr, "script: waited for 0x%x: %s\n", type, why);
		return -1;
	}
	return 0;
}

/* With seq: the token of the request it answers (from the request's header). */
static int wrong_send_seq(struct cluster_link *l, unsigned to, uint32_t seq, uint16_t type,
			  uint64_t a0, uint64_t a1, uint64_t a2, const void *page)
{
	struct wire_hdr h = wire_hdr_make(type, mesh_rank(l->m), page ? DSM_PAGE_SIZE : 0);

	h.seq = seq;
	h.arg[0] = a0;
	h.arg[1] = a1;
	h.arg[2] = a2;
	return cluster_link_send(l, to, 0, &h, page);
}

static int wrong_send(struct cluster_link *l, unsigned to, uint16_t type, uint64_t a0, uint64_t a1,
		      uint64_t a2, const void *page)
{
	return wrong_send_seq(l, to, 0, type, a0, a1, a2, page);
}

#define PAGE_W 1u /* DSM_REPLY_WRITE */
#define PAGE_D 2u /* DSM_REPLY_DONE */

/* Rank 1, the home of page 2: take rank 0's WRITE and answer it as w->kind says. */
static int wrong_home(struct cluster *c, struct cluster_link *l, int kind)
{
	static unsigned char page[DSM_PAGE_SIZE];
	struct wire_hdr h;

	if (kind == COPY_MAPPED &&
	    (wrong_recv(l, 0, 0x100, &h) || wrong_send_seq(l, 0, h.seq, 0x105, 2, 0, 0, page)))
		return 10;
	if (wrong_recv(l, 0, 0x101, &h) || h.arg[0] != 2)
		return 11;
	switch (kind) {
	case WRONG_ACK:
		/* The answer says rank 2 will ack; then rank 1 acks instead. */
		return wrong_send_seq(l, 0, h.seq, 0x105, 2, PAGE_W | PAGE_D, 1u << 2, page) ||
		       wrong_send(l, 0, 0x104, 2, 0, 0, NULL);
	case REPLY_TWICE:
		return wrong_send_seq(l, 0, h.seq, 0x105, 2, PAGE_W, 1u << 2, page) ||
		       wrong_send_seq(l, 0, h.seq, 0x105, 2, PAGE_W, 1u << 2, page);
	case GRANT_NO_COPY:
		return wrong_send(l, 0, 0x107, 2, PAGE_W, 0, NULL);
	case ZERO_READ_ONLY:
		return wrong_send(l, 0, 0x106, 2, 0, 0, NULL);
	case READ_WITH_ACKS:
		return wrong_send_seq(l, 0, h.seq, 0x105, 2, 0, 1u << 2, page);
	case COPY_MAPPED:
		return wrong_send_seq(l, 0, h.seq, 0x105, 2, PAGE_W, 0, page);
	}
	atomic_store(&c->sh->ready, 1); /* rank 2's turn */
	return 0;
}

/* Rank 2, once rank 0's WRITE for page 2 is at rank 1: speak to rank 0 about it. */
static int wrong_other(struct cluster *c, struct cluster_link *l, int kind)
{
	static unsigned char page[DSM_PAGE_SIZE];

	if (kind < NOT_DONE) /* rank 1 answers those alone */
		return 0;
	if (!CLUSTER_WAIT(c, atomic_load(&c->sh->ready), 10000))
		return 20;
	switch (kind) {
	case NOT_DONE:
		return wrong_send(l, 0, 0x105, 2, PAGE_W, 0, page);
	case ACK_UNNAMED:
		return wrong_send(l, 0, 0x104, 2, 0, 0, NULL) ||
		       wrong_send(l, 0, 0x105, 2, PAGE_W | PAGE_D, 0, page);
	case ACK_TWICE:
		return wrong_send(l, 0, 0x104, 2, 0, 0, NULL) ||
		       wrong_send(l, 0, 0x104, 2, 0, 0, NULL);
	case FORGED_PAGE:
		/* Rank 2 never saw the WRITE: it can only guess its token. */
		return wrong_send_seq(l, 0, 1, 0x105, 2, PAGE_W | PAGE_D, 0, page);
	}
	return 0;
}

/* Ranks 1 and 2 around page 0, homed at rank 0, once rank 2 owns it. */
static int wrong_requests(struct cluster_link *l, unsigned rank, int kind)
{
	static unsigned char page[DSM_PAGE_SIZE];
	struct wire_hdr h;

	if (rank == 2) {
		/*
		 * Rank 1's first request may still wait in the home's queue (the
		 * home marks page 0 idle only after rank 2's page went out) when
		 * the duplicate is refused: then nothing is forwarded.
		 */
		if (kind == QUEUE_DUP)
			return 0;
		/* Forwarded to rank 2: say nothing, as if its page were lost; or pass it on. */
		if (wrong_recv(l, 0, 0x102, &h))
			return 30;
		if ((kind == QUEUED_INVALID || kind == WRONG_SOURCE) &&
		    wrong_send(l, 1, 0x105, 0, PAGE_W | PAGE_D, 0, page))
			return 31;
		return 0;
	}
	switch (kind) {
	case WRONG_SOURCE:
		/*
		 * Rank 1 asks, gets the page from rank 2, and reports it as come
		 * from the home.  Only once the page is here: before the home has
		 * started the transaction (its request may wait in the queue, e.g.
		 * while the home holds the page) a DONE is refused for another
		 * reason.
		 */
		return wrong_send(l, 0, 0x101, 0, 0, 0, NULL) || wrong_recv(l, 2, 0x105, &h) ||
		       wrong_send(l, 0, 0x108, 0, 0, 0, NULL);
	case QUEUE_DUP:
		/* The second waits behind the first (it may overtake its DONE); a third may not. */
		return wrong_send(l, 0, 0x101, 0, 0, 0, NULL) ||
		       wrong_send(l, 0, 0x101, 0, 0, 0, NULL) ||
		       wrong_send(l, 0, 0x101, 0, 0, 0, NULL);
	case QUEUED_INVALID:
		/* Asked again once writable: refused when the queue reaches it. */
		return wrong_send(l, 0, 0x101, 0, 0, 0, NULL) || wrong_recv(l, 2, 0x105, &h) ||
		       wrong_send(l, 0, 0x101, 0, 0, 0, NULL) ||
		       wrong_send(l, 0, 0x108, 0, 2, 0, NULL);
	}
	return 0;
}

static int wrong_script(struct cluster *c, struct mesh *m, unsigned rank, void *arg)
{
	const struct wrong_case *w = c->arg;
	struct cluster_link l;
	struct wire_hdr h;
	int rc;

	(void)arg;
	if (cluster_link_open(&l, c, m))
		cluster_fail(c, rank, "no link to ranks 0-2");
	cluster_barrier(c);
	if (wrong_at_home(w->kind)) {
		/* Rank 2 takes page 0 with write access: it is its owner now. */
		if (rank == 2 &&
		    (wrong_send(&l, 0, 0x101, 0, 0, 0, NULL) || wrong_recv(&l, 0, 0x105, &h))) {
			rc = 40;
			goto out;
		}
		cluster_barrier(c);
		rc = wrong_requests(&l, rank, w->kind);
	} else {
		rc = rank == 1 ? wrong_home(c, &l, w->kind) : wrong_other(c, &l, w->kind);
	}
	/* Until rank 0 closes the connection. */
	if (!rc)
		cluster_link_drain(&l, 0, 0);
out:
	cluster_link_close(&l);
	return rc;
}

static void test_wrong_sender(void)
{
	static const struct wrong_case cases[] = {
		{ WRONG_ACK, "the home did not ask that node to drop the page" },
		{ REPLY_TWICE, "reply 0x105 for page 2 from rank 1: it was already answered" },
		{ GRANT_NO_COPY, "a grant needs a read copy here and must give write access" },
		{ ZERO_READ_ONLY, "a never-touched page is always given with write access" },
		{ READ_WITH_ACKS, "only a write grant waits for invalidations" },
		{ COPY_MAPPED, "reply 0x105 for page 2 from rank 1: a copy is already mapped here" },
		{ NOT_DONE, "from rank 2: a page from another node than its home must be reported DONE" },
		{ ACK_UNNAMED, "an invalidation ack came from a node it does not name" },
		{ ACK_TWICE, "invalidation ack for page 2 from rank 2: a second one from that node" },
		{ FORGED_PAGE, "reply 0x105 for page 2 from rank 2: it does not carry our request's "
			       "token" },
		{ WRONG_SOURCE, "page 0 came to rank 1 from rank 0, not from rank 2" },
		{ QUEUE_DUP, "second request for page 0 while the first is in progress" },
		{ QUEUED_INVALID, "write request for page 0, which rank 1 can already write" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cluster c;

		cluster_init(&c, 3, 6 * DSM_PAGE_SIZE);
		c.tmpl.on_fatal = survive;
		c.raw_mask = 1u << 1 | 1u << 2;
		c.raw = wrong_script;
		c.arg = (void *)&cases[i];
		c.timeout_s = 20;
		cluster_run(&c, wrong_victim, &c);
		for (unsigned r = 0; r < 3; r++)
			CHECK_EQ(c.status[r], 0);
		if (c.status[0] || c.status[1] || c.status[2]) {
			fprintf(stderr, "case: %s\n", cases[i].expect);
			cluster_report(&c);
		}
	}
}

/* ---- garbage on the port while the mesh forms ---- */

static int garbage_fd = -1;

static void send_garbage(struct cluster *c, void *arg)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(c->peers[0].port),
				   .sin_addr.s_addr = htonl(0x7f000001) };

	static const char junk[] = "\x56\x47\x01\x00 this is not a giantvm peer, not at all!";

	(void)arg;
	garbage_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (connect(garbage_fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    write(garbage_fd, junk, sizeof(junk) - 1) < 0)
		perror("write");
}

static int simple_node(struct dsm *d, unsigned rank, void *arg)
{
	struct cluster *c = arg;
	volatile uint64_t *x = dsm_addr(d);

	if (rank == 1)
		x[0] = 7;
	cluster_barrier(c);
	return x[0] == 7 ? 0 : 1;
}

static void test_garbage_on_port(void)
{
	struct cluster c;

	cluster_init(&c, 2, 2 * DSM_PAGE_SIZE);
	c.before_fork = send_garbage;
	cluster_run(&c, simple_node, &c);
	CHECK_EQ(c.status[0], 0);
	CHECK_EQ(c.status[1], 0);
	CHECK(strstr(c.err[0], "refused connection") != NULL);
	if (c.status[0] || c.status[1] || !strstr(c.err[0], "refused connection"))
		cluster_report(&c);
	close(garbage_fd);
}

/* ---- bad configurations ---- */

static void expect_create_error(struct mesh *m, uint64_t size, const uint64_t *homes,
				unsigned first_channel, const char *expect)
{
	struct dsm_config cfg;
	char err[DSM_ERR_MAX] = "";
	struct dsm *d = (struct dsm *)1;

	dsm_config_init(&cfg);
	cfg.mesh = m;
	cfg.size = size;
	cfg.home_start = homes;
	cfg.first_channel = first_channel;
	CHECK(dsm_create(&cfg, &d, err) == -1);
	CHECK(d == NULL);
	CHECK(strstr(err, expect) != NULL);
	if (!strstr(err, expect))
		fprintf(stderr, "error: \"%s\", expected \"%s\"\n", err, expect);
}

static void test_bad_config(void)
{
	struct hostport self = { "127.0.0.1", 0 };
	struct mesh_config mc = { .rank = 0, .nr_nodes = 1, .nr_channels = DSM_NR_CHANNELS,
				  .peers = &self, .listen_fd = -1, .vm_id = 1 };
	uint64_t bad_homes[] = { 1, 4 }, good_homes[] = { 0, 4 };
	char err[MESH_ERR_MAX];
	struct dsm_config cfg;
	struct mesh *m;
	struct dsm *d;

	CHECK(mesh_open(&mc, &m, err) == 0);
	expect_create_error(m, 0, NULL, 0, "region size 0 bytes");
	expect_create_error(m, 4096 + 100, NULL, 0, "multiple of 4096");
	expect_create_error(m, 1ull << 50, NULL, 0, "at most");
	expect_create_error(m, 4 * 4096, bad_homes, 0, "home map: must start at page 0");
	expect_create_error(m, 8 * 4096, good_homes, 0, "end at page 8");
	expect_create_error(NULL, 4096, NULL, 0, "no mesh");

	/* Policies beyond what the DSM supports. */
	dsm_config_init(&cfg);
	cfg.mesh = m;
	cfg.size = 4 * 4096;
	cfg.nr_handlers = 1000;
	CHECK(dsm_create(&cfg, &d, err) == -1 && strstr(err, "1000 fault handler threads"));
	cfg.nr_handlers = 0;
	cfg.hold_us = ~0u;
	CHECK(dsm_create(&cfg, &d, err) == -1 && strstr(err, "hold of 4294967295 us"));
	cfg.hold_us = 0;
	cfg.prefetch_pages = 65;
	CHECK(dsm_create(&cfg, &d, err) == -1 && strstr(err, "prefetch window of 65 pages"));
	cfg.prefetch_pages = 0;
	cfg.transport = "udp";
	CHECK(dsm_create(&cfg, &d, err) == -1 &&
	      strstr(err, "transport: 'udp' is not tcp, fabric or fabric:PROVIDER"));

	/* A descriptor that is no userfaultfd; a NUMA node that does not exist. */
	dsm_config_init(&cfg);
	cfg.mesh = m;
	cfg.size = 4 * 4096;
	cfg.uffd = eventfd(0, EFD_CLOEXEC);
	CHECK(dsm_create(&cfg, &d, err) == -1 && strstr(err, "userfaultfd"));
	CHECK(fcntl(cfg.uffd, F_GETFD) == -1); /* dsm_create owned it, and closed it */
	cfg.uffd = -1;
	cfg.numa_node = 999;
	CHECK(dsm_create(&cfg, &d, err) == -1 && strstr(err, "NUMA node 999"));
	if (!strstr(err, "NUMA node 999"))
		fprintf(stderr, "error: %s\n", err);

	/* And a good one, alone: it maps, starts and stops. */
	dsm_config_init(&cfg);
	cfg.mesh = m;
	cfg.size = 4 * 4096;
	cfg.home_start = good_homes;
	CHECK(dsm_create(&cfg, &d, err) == 0);
	CHECK(dsm_start(d, err) == 0);
	((volatile char *)dsm_addr(d))[4096 * 3] = 1;
	CHECK(dsm_stop(d) == 0);
	dsm_destroy(d);
	mesh_close(m);
}

int main(void)
{
	/* GVM_DSM_KILL_ROUNDS=N: only the kill test, N times (who gets named is a race). */
	const char *kills = getenv("GVM_DSM_KILL_ROUNDS");

	log_init("test-dsm-failure");
	if (kills) {
		for (int i = atoi(kills); i > 0; i--)
			RUN(test_kill_one);
		return check_summary();
	}
	RUN(test_kill_one);
	RUN(test_kill_after_bye);
	RUN(test_bad_messages);
	RUN(test_wrong_sender);
	RUN(test_integrity_injected);
	RUN(test_integrity_not_over_fabric);
	RUN(test_garbage_on_port);
	RUN(test_bad_config);
	return check_summary();
}
