/*
 * The transports' send paths: a receive thread that answers what it reads
 * must never block writing, or two nodes that stream to each other stop for
 * good once more is in flight than their socket buffers hold.
 *
 * Two real processes over a real mesh, with socket buffers of 64 KiB
 * (tiny ones would make TCP itself crawl): each sends the other 32 small requests at once, and each
 * request is answered, from the receive thread, with a 64-page frame (a
 * prefetch run).  Every answer must arrive, in order, whole.  The same over
 * the fabric transport (libfabric's tcp provider on loopback), where the
 * answers outnumber the send buffers, and a close must come after the
 * messages sent before it.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "common/deadline.h"
#include "dsm/transport.h"
#include "tests/dsm/cluster.h"
#include "tests/lib/check.h"

#define T_REQ 0x1f0
#define T_ANSWER 0x1f1
#define NR_REQS 32u

struct stream {
	struct dsm_transport *tr;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned answers, bad, lost;
	unsigned char page[DSM_TRANSPORT_MAX_PAYLOAD];
};

static uint8_t pattern(uint64_t seq, size_t i)
{
	return (uint8_t)(seq * 131 + i * 7 + 1);
}

static int on_frame(void *arg, unsigned peer, unsigned channel, const struct wire_hdr *h,
		    const void *payload, char *why)
{
	struct stream *s = arg;
	const uint8_t *p = payload;

	(void)channel;
	if (h->type == T_REQ) {
		struct wire_hdr a = wire_hdr_make(T_ANSWER, h->from == peer ? 1 - peer : 0,
						  DSM_TRANSPORT_MAX_PAYLOAD);

		/* The answer to request n carries n's pattern. */
		a.arg[0] = h->arg[0];
		for (size_t i = 0; i < DSM_TRANSPORT_MAX_PAYLOAD; i++)
			s->page[i] = pattern(h->arg[0], i);
		if (s->tr->ops->send_pages(s->tr, peer, 0, &a, s->page)) {
			snprintf(why, 128, "cannot answer");
			return -1;
		}
		return 0;
	}
	pthread_mutex_lock(&s->lock);
	if (h->type != T_ANSWER || h->len != DSM_TRANSPORT_MAX_PAYLOAD || h->arg[0] != s->answers)
		s->bad++;
	for (size_t i = 0; i < h->len && !s->bad; i += 4093)
		if (p[i] != pattern(h->arg[0], i))
			s->bad++;
	s->answers++;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static void on_lost(void *arg, unsigned peer, unsigned channel, bool malformed, const char *why)
{
	struct stream *s = arg;

	fprintf(stderr, "lost rank %u channel %u%s: %s\n", peer, channel,
		malformed ? " (malformed)" : "", why);
	pthread_mutex_lock(&s->lock);
	s->lost++;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

/* Channel 0 of the mesh as a transport: TCP, or the fabric (tcp;ofi_rxm on loopback). */
static struct dsm_transport *open_transport(struct mesh *m, bool fabric, dsm_dispatch_fn dispatch,
					    dsm_lost_fn lost, void *arg, char *err)
{
	struct dsm_tcp_config cfg = {
		.mesh = m, .first_channel = 0, .nr_channels = 1,
		.dispatch = dispatch, .lost = lost, .arg = arg,
	};
	struct dsm_fabric_config fcfg = {
		.mesh = m, .first_channel = 0, .nr_channels = 1, .provider = "tcp;ofi_rxm",
		.dispatch = dispatch, .lost = lost, .arg = arg,
	};

	return fabric ? dsm_fabric_create(&fcfg, err) : dsm_tcp_create(&cfg, err);
}

/* Two real processes, each running raw over the mesh with the transport chosen. */
static void run_pair(int (*raw)(struct cluster *, struct mesh *, unsigned, void *), bool fabric)
{
	struct cluster c;

	cluster_init(&c, 2, DSM_PAGE_SIZE);
	c.raw_mask = 3;
	c.raw = raw;
	c.timeout_s = 40;
	cluster_run(&c, NULL, &fabric);
	CHECK_EQ(c.status[0], 0);
	CHECK_EQ(c.status[1], 0);
	if (c.status[0] || c.status[1])
		cluster_report(&c);
}

static int streamer(struct cluster *c, struct mesh *m, unsigned rank, void *arg)
{
	static struct stream s = { .lock = PTHREAD_MUTEX_INITIALIZER };
	const bool *fabric = arg;
	unsigned peer = 1 - rank;
	int fd = mesh_fd(m, peer, 0), small = 64 << 10, rc = 0;
	struct timespec deadline;
	char err[DSM_ERR_MAX];

	/* Far less than the 8 MiB of answers each way. */
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	deadline_cond_init(&s.cond);
	s.tr = open_transport(m, *fabric, on_frame, on_lost, &s, err);
	if (!s.tr || s.tr->ops->start(s.tr, err)) {
		fprintf(stderr, "rank %u: %s\n", rank, err);
		return 20;
	}
	if (strcmp(s.tr->ops->describe(s.tr), *fabric ? "fabric: provider tcp;ofi_rxm, domain lo, "
		   "fabric 127.0.0.1/32, pages by RMA write" : "tcp")) {
		fprintf(stderr, "rank %u: carried by '%s'\n", rank, s.tr->ops->describe(s.tr));
		return 23;
	}
	cluster_barrier(c);
	for (uint64_t n = 0; n < NR_REQS; n++) {
		struct wire_hdr h = wire_hdr_make(T_REQ, rank, 0);

		h.arg[0] = n;
		if (s.tr->ops->send_msg(s.tr, peer, 0, &h)) {
			fprintf(stderr, "rank %u: cannot send request %llu\n", rank,
				(unsigned long long)n);
			rc = 21;
			break;
		}
	}
	deadline_in_ms(&deadline, 20000);
	pthread_mutex_lock(&s.lock);
	while (!rc && s.answers < NR_REQS && !s.lost &&
	       pthread_cond_timedwait(&s.cond, &s.lock, &deadline) == 0)
		;
	if (!rc && (s.answers != NR_REQS || s.bad || s.lost)) {
		fprintf(stderr, "rank %u: %u of %u answers, %u bad, %u lost%s\n", rank, s.answers,
			NR_REQS, s.bad, s.lost,
			s.answers < NR_REQS && !s.lost ? " (stuck: a send blocked?)" : "");
		rc = 22;
	}
	pthread_mutex_unlock(&s.lock);
	if (!rc) {
		struct dsm_transport_counts n;

		/* Every answer fits one of the peer's staging slots, which are never all taken. */
		s.tr->ops->counts(s.tr, &n);
		if (n.rma_writes != (*fabric ? NR_REQS : 0)) {
			fprintf(stderr, "rank %u: %llu answers written by RMA, not %u\n", rank,
				n.rma_writes, *fabric ? NR_REQS : 0);
			rc = 24;
		}
	}
	/* Both done before either closes: a close would be a loss to the other. */
	cluster_barrier(c);
	s.tr->ops->destroy(s.tr);
	return rc;
}

/*
 * Rank 0 sends NR_CLOSE messages and closes at once; rank 1 must have them
 * all when it is told of the close, not fewer.
 */
#define T_DATA 0x1f2
#define NR_CLOSE 600u

struct sink {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned got, got_at_loss, losses, bad;
};

/* Set in a child by closer_slow_reader: each message then takes this long to take in. */
static unsigned data_delay_us;

static int on_data(void *arg, unsigned peer, unsigned channel, const struct wire_hdr *h,
		   const void *payload, char *why)
{
	struct sink *k = arg;

	(void)peer;
	(void)channel;
	(void)why;
	if (data_delay_us)
		usleep(data_delay_us);
	pthread_mutex_lock(&k->lock);
	if (h->type != T_DATA || h->arg[0] != k->got || ((const uint8_t *)payload)[17] != (uint8_t)k->got)
		k->bad++;
	k->got++;
	pthread_mutex_unlock(&k->lock);
	return 0;
}

static void on_close(void *arg, unsigned peer, unsigned channel, bool malformed, const char *why)
{
	struct sink *k = arg;

	(void)peer;
	(void)channel;
	pthread_mutex_lock(&k->lock);
	if (malformed)
		fprintf(stderr, "malformed: %s\n", why);
	k->got_at_loss = k->got;
	k->losses++;
	pthread_cond_broadcast(&k->cond);
	pthread_mutex_unlock(&k->lock);
}

static int closer(struct cluster *c, struct mesh *m, unsigned rank, void *arg)
{
	static struct sink k = { .lock = PTHREAD_MUTEX_INITIALIZER };
	static unsigned char page[DSM_PAGE_SIZE];
	const bool *fabric = arg;
	struct dsm_transport *tr;
	struct timespec deadline;
	char err[DSM_ERR_MAX];
	int rc = 0;

	deadline_cond_init(&k.cond);
	tr = open_transport(m, *fabric, on_data, on_close, &k, err);
	if (!tr || tr->ops->start(tr, err)) {
		fprintf(stderr, "rank %u: %s\n", rank, err);
		return 30;
	}
	cluster_barrier(c);
	if (rank == 0) {
		for (unsigned n = 0; n < NR_CLOSE && !rc; n++) {
			struct wire_hdr h = wire_hdr_make(T_DATA, 0, DSM_PAGE_SIZE);

			h.arg[0] = n;
			page[17] = (uint8_t)n;
			if (tr->ops->send_pages(tr, 1, 0, &h, page)) {
				fprintf(stderr, "rank 0: cannot send message %u\n", n);
				rc = 31;
			}
		}
		tr->ops->destroy(tr);
		return rc;
	}
	deadline_in_ms(&deadline, 20000);
	pthread_mutex_lock(&k.lock);
	while (!k.losses && pthread_cond_timedwait(&k.cond, &k.lock, &deadline) == 0)
		;
	if (k.losses != 1 || k.got_at_loss != NR_CLOSE || k.bad) {
		fprintf(stderr, "rank 1: %u losses; %u of %u messages when told of the close, "
			"%u bad\n", k.losses, k.got_at_loss, NR_CLOSE, k.bad);
		rc = 32;
	}
	pthread_mutex_unlock(&k.lock);
	tr->ops->destroy(tr);
	return rc;
}

/*
 * The same with socket buffers of 64 KiB and a reader that takes 100 us a
 * message: most of the 600 pages are still queued when rank 0 stops, and
 * the stop waits for its queue to drain.
 */
static int closer_slow_reader(struct cluster *c, struct mesh *m, unsigned rank, void *arg)
{
	int fd = mesh_fd(m, 1 - rank, 0), small = 64 << 10;

	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	data_delay_us = 100;
	return closer(c, m, rank, arg);
}

static void test_close_after_messages_tcp(void)
{
	run_pair(closer, false);
	run_pair(closer_slow_reader, false);
}

/*
 * Busy-polling (poll_us) while a reply is expected: when none comes within
 * the spin, the receive thread sleeps in recv, and a frame that comes later
 * still arrives.
 */
struct spinner {
	atomic_uint asked, got;
};

static bool always_expecting(void *arg, unsigned peer, unsigned channel)
{
	struct spinner *sp = arg;

	(void)peer;
	(void)channel;
	atomic_fetch_add(&sp->asked, 1);
	return true;
}

static int on_late(void *arg, unsigned peer, unsigned channel, const struct wire_hdr *h,
		   const void *payload, char *why)
{
	struct spinner *sp = arg;

	(void)peer;
	(void)channel;
	(void)payload;
	(void)why;
	if (h->type == T_DATA && h->arg[0] == 77)
		atomic_fetch_add(&sp->got, 1);
	return 0;
}

static void on_lost_quiet(void *arg, unsigned peer, unsigned channel, bool malformed,
			  const char *why)
{
	(void)arg;
	(void)peer;
	(void)channel;
	(void)malformed;
	(void)why;
}

static int late_sender(struct cluster *c, struct mesh *m, unsigned rank, void *arg)
{
	static struct spinner sp;
	struct dsm_tcp_config cfg = {
		.mesh = m, .first_channel = 0, .nr_channels = 1, .poll_us = 1000,
		.expecting = always_expecting, .dispatch = on_late, .lost = on_lost_quiet,
		.arg = &sp,
	};
	struct dsm_transport *tr;
	char err[DSM_ERR_MAX];
	int rc = 0;

	(void)arg;
	tr = dsm_tcp_create(&cfg, err);
	if (!tr || tr->ops->start(tr, err)) {
		fprintf(stderr, "rank %u: %s\n", rank, err);
		return 40;
	}
	cluster_barrier(c);
	if (rank == 0) {
		struct wire_hdr h = wire_hdr_make(T_DATA, 0, 0);

		/* long after rank 1's receive thread gave up spinning */
		usleep(100 * 1000);
		h.arg[0] = 77;
		if (tr->ops->send_msg(tr, 1, 0, &h))
			rc = 41;
	} else {
		for (unsigned i = 0; i < 5000 && !atomic_load(&sp.got); i++)
			usleep(1000);
		if (atomic_load(&sp.got) != 1 || !atomic_load(&sp.asked)) {
			fprintf(stderr, "rank 1: %u frames, asked %u times\n",
				atomic_load(&sp.got), atomic_load(&sp.asked));
			rc = 42;
		}
	}
	cluster_barrier(c);
	tr->ops->destroy(tr);
	return rc;
}

static void test_spin_then_sleep(void)
{
	run_pair(late_sender, false);
}

/* A transport over channels the mesh does not have is refused, naming the first missing. */
static int beyond_the_mesh(struct cluster *c, struct mesh *m, unsigned rank, void *arg)
{
	struct dsm_tcp_config cfg = {
		.mesh = m, .first_channel = DSM_NR_CHANNELS - 1, .nr_channels = 2,
		.dispatch = on_late, .lost = on_lost_quiet,
	};
	char err[DSM_ERR_MAX] = "", expect[96];

	(void)c;
	(void)arg;
	snprintf(expect, sizeof(expect), "the mesh has no channel %u to rank %u", DSM_NR_CHANNELS,
		 1 - rank);
	if (dsm_tcp_create(&cfg, err) != NULL || strcmp(err, expect)) {
		fprintf(stderr, "rank %u: \"%s\", expected \"%s\"\n", rank, err, expect);
		return 50;
	}
	return 0;
}

static void test_channels_beyond_the_mesh(void)
{
	run_pair(beyond_the_mesh, false);
}

static void test_close_after_messages_fabric(void)
{
	if (cluster_skip_without_libfabric(__func__))
		return;
	run_pair(closer, true);
}

static void test_both_ways_small_buffers(void)
{
	run_pair(streamer, false);
}

static void test_both_ways_fabric(void)
{
	if (cluster_skip_without_libfabric(__func__))
		return;
	run_pair(streamer, true);
}

int main(void)
{
	/* libfabric's tcp provider takes the first interface it finds unless told. */
	setenv("FI_TCP_IFACE", "lo", 0);
	RUN(test_both_ways_small_buffers);
	RUN(test_both_ways_fabric);
	RUN(test_close_after_messages_tcp);
	RUN(test_close_after_messages_fabric);
	RUN(test_spin_then_sleep);
	RUN(test_channels_beyond_the_mesh);
	return check_summary();
}
