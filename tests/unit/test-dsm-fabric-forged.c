/*
 * A peer that speaks the fabric transport's mesh-connection protocol
 * wrongly.  On each mesh connection a fabric peer writes its HELLO (its
 * endpoint address and the staging slots it offers), then its READY once it
 * has ours, and at the end its CLOSE; the watcher of dsm/fabric.c reads
 * them from whoever is at the other end, so each must be checked before it
 * is believed.
 *
 * Rank 0 runs the real transport over tcp;ofi_rxm on loopback; rank 1 is
 * this test, writing on its end of a real mesh (munge-authenticated, as a
 * forger on the cluster network would have to be).  Each forgery must take
 * the connection down as malformed, saying what was wrong; the same bytes
 * well formed, even a byte at a time, must not.  Rank 0's own HELLO, read
 * from the connection, gives the forger an address the provider takes.
 */
#include "dsm/fabric.c"

#include <sys/socket.h>

#include "tests/lib/check.h"
#include "tests/lib/mesh-pair.h"

#if HAVE_LIBFABRIC
struct lost {
	pthread_mutex_t lock;
	unsigned n;
	bool malformed;
	char why[128];
};

static int on_dispatch(void *arg, unsigned peer, unsigned channel, const struct wire_hdr *h,
		       const void *payload, char *why)
{
	(void)arg, (void)peer, (void)channel, (void)h, (void)payload, (void)why;
	return 0;
}

static void on_lost(void *arg, unsigned peer, unsigned channel, bool malformed, const char *why)
{
	struct lost *l = arg;

	(void)channel;
	pthread_mutex_lock(&l->lock);
	l->n += peer == 1;
	l->malformed = malformed;
	snprintf(l->why, sizeof(l->why), "%s", why);
	pthread_mutex_unlock(&l->lock);
}

/* Rank 0's transport, started, and rank 0's HELLO as rank 1 read it. */
struct rig {
	struct mesh_pair p;
	struct dsm_transport *t;
	struct lost lost;
	int fd; /* rank 1's end */
	struct fab_ctl hello;
	unsigned char addr[FAB_ADDR_MAX];
	struct fab_rma rma;
};

static bool read_all(int fd, void *buf, size_t n)
{
	size_t done = 0;

	while (done < n) {
		ssize_t r = recv(fd, (char *)buf + done, n - done, 0);

		if (r <= 0)
			return false;
		done += r;
	}
	return true;
}

static bool rig_open(struct rig *r)
{
	struct dsm_fabric_config cfg = {
		.first_channel = 0, .nr_channels = 1, .provider = "tcp;ofi_rxm",
		.dispatch = on_dispatch, .lost = on_lost, .arg = &r->lost,
	};
	char err[DSM_ERR_MAX] = "";

	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lost.lock, NULL);
	if (mesh_pair_open(&r->p, 2, 1, 4712, NULL))
		return false;
	cfg.mesh = r->p.m[0];
	r->fd = mesh_fd(r->p.m[1], 0, 0);
	r->t = dsm_fabric_create(&cfg, err);
	if (!r->t || r->t->ops->start(r->t, err)) {
		fprintf(stderr, "rank 0: %s\n", err);
		return false;
	}
	if (!read_all(r->fd, &r->hello, sizeof(r->hello)) || r->hello.magic != FAB_HELLO ||
	    r->hello.len > FAB_ADDR_MAX || !read_all(r->fd, r->addr, r->hello.len) ||
	    !read_all(r->fd, &r->rma, sizeof(r->rma))) {
		fprintf(stderr, "rank 0 sent no HELLO\n");
		return false;
	}
	return true;
}

static void rig_close(struct rig *r)
{
	if (r->t)
		r->t->ops->destroy(r->t);
	mesh_pair_close(&r->p);
	pthread_mutex_destroy(&r->lost.lock);
}

static void put(struct rig *r, const void *buf, size_t n)
{
	CHECK(send(r->fd, buf, n, MSG_NOSIGNAL) == (ssize_t)n);
}

/* A HELLO of rank 1's: rank 0's own address, with these staging slots. */
static void put_hello(struct rig *r, const struct fab_rma *rma)
{
	put(r, &r->hello, sizeof(r->hello));
	put(r, r->addr, r->hello.len);
	put(r, rma, sizeof(*rma));
}

/* Within ms: the peer lost, as malformed or not, with why; or (why NULL) not lost. */
static void expect_lost(struct rig *r, const char *why, bool malformed, int ms)
{
	unsigned n = 0;

	for (int waited = 0; waited < ms; waited += 5) {
		pthread_mutex_lock(&r->lost.lock);
		n = r->lost.n;
		pthread_mutex_unlock(&r->lost.lock);
		if (n)
			break;
		usleep(5000);
	}
	pthread_mutex_lock(&r->lost.lock);
	if (!why) {
		CHECK_EQ(n, 0);
	} else {
		CHECK_EQ(n, 1);
		CHECK_EQ(r->lost.malformed, malformed);
		CHECK(strcmp(r->lost.why, why) == 0);
		if (strcmp(r->lost.why, why))
			fprintf(stderr, "lost: \"%s\", not \"%s\"\n", r->lost.why, why);
	}
	pthread_mutex_unlock(&r->lost.lock);
}

static const char no_hello[] = "it sent no endpoint address (does it use the fabric transport too?)";
static const char unexpected[] = "an unexpected message on its mesh connection";

/* Where a HELLO belongs, something else, or a HELLO that cannot be one. */
static void test_bad_hello(void)
{
	const struct fab_ctl bad[] = {
		{ .magic = FAB_READY },
		{ .magic = FAB_HELLO, .len = 0 },
		{ .magic = FAB_HELLO, .len = FAB_ADDR_MAX + 1 },
		{ .magic = FAB_HELLO, .len = 16, .count = 1 },
	};

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct rig r;

		CHECK(rig_open(&r));
		put(&r, &bad[i], sizeof(bad[i]));
		expect_lost(&r, no_hello, true, 10000);
		rig_close(&r);
	}
}

/* Staging slots gvm never offers: more than it ever makes, or too small for a header. */
static void test_bad_slots(void)
{
	const struct fab_rma bad[] = {
		{ .base = 4096, .key = 1, .slots = FAB_RMA_SLOTS_MAX + 1, .slot_size = 8192 },
		{ .base = 4096, .key = 1, .slots = 1, .slot_size = sizeof(struct wire_hdr) - 1 },
	};

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct rig r;

		CHECK(rig_open(&r));
		put_hello(&r, &bad[i]);
		expect_lost(&r, "it offers staging slots gvm never does", true, 10000);
		rig_close(&r);
	}
}

/* After a good HELLO, anything but READY; after READY, anything but CLOSE; a CLOSE that lies. */
static void test_bad_sequence(void)
{
	const struct fab_ctl ready = { .magic = FAB_READY }, close = { .magic = FAB_CLOSE };
	const struct fab_ctl hello = { .magic = FAB_HELLO, .len = 16 };
	struct rig r;
	struct fab_ctl got;

	CHECK(rig_open(&r));
	put_hello(&r, &r.rma);
	put(&r, &close, sizeof(close));
	expect_lost(&r, unexpected, true, 10000);
	rig_close(&r);

	CHECK(rig_open(&r));
	put_hello(&r, &r.rma);
	put(&r, &ready, sizeof(ready));
	put(&r, &hello, sizeof(hello));
	expect_lost(&r, unexpected, true, 10000);
	rig_close(&r);

	/* a CLOSE after 5 messages that never come: lost after the grace, not a forgery */
	CHECK(rig_open(&r));
	put_hello(&r, &r.rma);
	put(&r, &ready, sizeof(ready));
	/* rank 0 took the address: it says READY */
	CHECK(read_all(r.fd, &got, sizeof(got)) && got.magic == FAB_READY);
	got = (struct fab_ctl){ .magic = FAB_CLOSE, .count = 5 };
	put(&r, &got, sizeof(got));
	expect_lost(&r, "connection closed, with messages it sent still missing", false,
		    FAB_CLOSE_GRACE_MS + 10000);
	rig_close(&r);
}

/* An address the provider cannot take: all ones, of the length a real one has. */
static void test_bad_address(void)
{
	struct rig r;

	CHECK(rig_open(&r));
	memset(r.addr, 0xff, r.hello.len);
	put_hello(&r, &r.rma);
	expect_lost(&r, "its endpoint address is not one this provider reaches", true, 10000);
	rig_close(&r);
}

/*
 * Sends the transport refuses (to itself, pages without their bytes, more
 * than a buffer holds), and a peer that never says HELLO: what is sent to it
 * waits, up to 64 MiB, then the peer is lost for that reason and later
 * sends say so.
 */
static void test_sends_waiting(void)
{
	static unsigned char pages[DSM_TRANSPORT_MAX_PAYLOAD];
	struct wire_hdr h = wire_hdr_make(0x1f4, 0, 0);
	struct wire_hdr big = wire_hdr_make(0x1f4, 0, DSM_TRANSPORT_MAX_PAYLOAD);
	unsigned sent = 0;
	struct rig r;
	int rc = 0;

	CHECK(rig_open(&r));
	CHECK_EQ(r.t->ops->send_msg(r.t, 0, 0, &h), -EINVAL);
	CHECK_EQ(r.t->ops->send_msg(r.t, 1, 1, &h), -EINVAL);
	CHECK_EQ(r.t->ops->send_pages(r.t, 1, 0, &big, NULL), -EINVAL);
	big.len++;
	CHECK_EQ(r.t->ops->send_pages(r.t, 1, 0, &big, pages), -EMSGSIZE);
	big.len--;
	CHECK_EQ(r.t->ops->send_msg(r.t, 1, 0, &h), 0);
	while (sent < 1000 && !(rc = r.t->ops->send_pages(r.t, 1, 0, &big, pages)))
		sent++;
	CHECK_EQ(rc, -ENOBUFS);
	CHECK(sent >= (FAB_QUEUE_MAX - 64 * 1024) / (sizeof(big) + big.len) && sent < 1000);
	expect_lost(&r, "it has not read what was sent to it for too long (64 MiB waiting)", false,
		    1000);
	CHECK_EQ(r.t->ops->send_msg(r.t, 1, 0, &h), -ECONNRESET);
	rig_close(&r);
}

/*
 * The control: a good HELLO and READY, a byte at a time, are taken (rank 0
 * answers READY, nothing is lost); a connection that then ends without a
 * CLOSE is a loss, not a forgery.
 */
static void test_good_in_pieces(void)
{
	const struct fab_ctl ready = { .magic = FAB_READY };
	unsigned char all[sizeof(struct fab_ctl) + FAB_ADDR_MAX + sizeof(struct fab_rma) +
			  sizeof(struct fab_ctl)];
	size_t n = 0;
	struct fab_ctl got;
	struct rig r;

	CHECK(rig_open(&r));
	memcpy(all, &r.hello, sizeof(r.hello));
	n += sizeof(r.hello);
	memcpy(all + n, r.addr, r.hello.len);
	n += r.hello.len;
	memcpy(all + n, &r.rma, sizeof(r.rma));
	n += sizeof(r.rma);
	memcpy(all + n, &ready, sizeof(ready));
	n += sizeof(ready);
	for (size_t i = 0; i < n; i++) {
		put(&r, all + i, 1);
		usleep(200);
	}
	CHECK(read_all(r.fd, &got, sizeof(got)) && got.magic == FAB_READY && !got.len);
	expect_lost(&r, NULL, false, 300);
	shutdown(r.fd, SHUT_WR);
	expect_lost(&r, "connection closed", false, 10000);
	rig_close(&r);
}

int main(void)
{
	/* libfabric's tcp provider takes the first interface it finds unless told. */
	setenv("FI_TCP_IFACE", "lo", 1);
	RUN(test_bad_hello);
	RUN(test_bad_slots);
	RUN(test_bad_sequence);
	RUN(test_bad_address);
	RUN(test_sends_waiting);
	RUN(test_good_in_pieces);
	return check_summary();
}
#else
int main(void)
{
	printf("SKIP: this build has no libfabric (./configure --with-libfabric)\n");
	return 77;
}
#endif
