/*
 * A DSM cluster for tests: N real processes on loopback, each with its own
 * mesh (real munge authentication, real TCP) and its own DSM instance.
 *
 * cluster_run() forks one child per rank; each forms the mesh, creates and
 * starts its DSM, runs fn, stops the DSM collectively and exits with fn's
 * status.  A fatal DSM error makes the child print it and exit 3.  The
 * parent collects every child's exit status and its stderr.
 *
 * Children synchronise with cluster_barrier(), over a small shared mapping
 * that only carries the barrier: every datum a test checks goes through
 * the DSM.
 */
#ifndef GVM_TESTS_DSM_CLUSTER_H
#define GVM_TESTS_DSM_CLUSTER_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "common/log.h"
#include "common/mesh.h"
#include "common/wire.h"
#include "dsm/dsm.h"
#include "dsm/transport.h"
#include "tests/lib/check.h"

#define CLUSTER_MAX 8
#define CLUSTER_ERR_MAX 8192

struct cluster_shared {
	atomic_uint arrived, generation;
	atomic_int abort;
	atomic_uint ready;   /* free for tests: e.g. ranks that reached their main loop */
};

/* fn's return value for "the DSM failed, as this test wanted": no stop barrier, exit 0. */
#define CLUSTER_FAILED_OK 100

struct cluster {
	unsigned n;
	uint64_t size;
	const uint64_t *home_start;
	struct dsm_config tmpl; /* policy fields copied into every node's config */
	unsigned timeout_s;     /* the parent kills children still running then */
	bool integrity;         /* every mesh connection sealed (or GVM_DSM_INTEGRITY set) */
	struct hostport peers[CLUSTER_MAX];
	int listen_fds[CLUSTER_MAX];
	pid_t pids[CLUSTER_MAX];
	int status[CLUSTER_MAX];            /* exit status, or 128 + signal */
	double exit_ms[CLUSTER_MAX];        /* when each child ended, from cluster_run start */
	char err[CLUSTER_MAX][CLUSTER_ERR_MAX]; /* each child's stderr */
	struct cluster_shared *sh;
	/* Optional, in the parent while the children run (e.g. to kill one). */
	void (*parent_hook)(struct cluster *c, void *arg);
	void *arg;
	/* Optional, in the parent once the ports listen, before any child starts. */
	void (*before_fork)(struct cluster *c, void *arg);
	/* Optional: ranks in raw_mask run raw() on the bare mesh instead of a DSM. */
	unsigned raw_mask;
	int (*raw)(struct cluster *c, struct mesh *m, unsigned rank, void *arg);
	struct timespec t0;
};

typedef int (*cluster_fn)(struct dsm *d, unsigned rank, void *arg);

static inline double cluster_ms_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t0->tv_sec) * 1e3 + (now.tv_nsec - t0->tv_nsec) / 1e6;
}

static inline void cluster_init(struct cluster *c, unsigned n, uint64_t size)
{
	memset(c, 0, sizeof(*c));
	c->n = n;
	c->size = size;
	c->timeout_s = 60;
	dsm_config_init(&c->tmpl);
	/* tests/dsm/fabric.t runs the DSM suites again over the fabric transport. */
	c->tmpl.transport = getenv("GVM_DSM_TRANSPORT");
}

/* A test that cannot run over the fabric transport says why and does not run there. */
static inline bool cluster_skip_if_fabric(const char *test, const char *why)
{
	const char *t = getenv("GVM_DSM_TRANSPORT");

	if (!t || strncmp(t, "fabric", 6))
		return false;
	printf("skip %s over the fabric transport: %s\n", test, why);
	return true;
}

/* A test of the fabric transport itself, in a build without it: says so and does not run. */
static inline bool cluster_skip_without_libfabric(const char *test)
{
	if (HAVE_LIBFABRIC)
		return false;
	printf("skip %s: built without libfabric\n", test);
	return true;
}

/*
 * A raw rank's side of the DSM's connections, over what the DSM ranks use.
 * Over TCP, the mesh's own connections (sealed as the mesh is), on which a
 * forger may also write bytes no transport would.  Over the fabric
 * (GVM_DSM_TRANSPORT), a transport of its own opened as dsm_create opens
 * the DSM's: well-framed messages only, each one held here until
 * cluster_link_recv takes it.
 */
struct cluster_msg {
	struct cluster_msg *next;
	unsigned peer, channel;
	struct wire_hdr h;
	unsigned char payload[];
};

struct cluster_link {
	struct mesh *m;
	struct dsm_transport *tr; /* NULL over TCP */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct cluster_msg *head;
	uint32_t lost;            /* bit peer * DSM_NR_CHANNELS + channel */
};

static inline int cluster_link_dispatch(void *arg, unsigned peer, unsigned channel,
					const struct wire_hdr *h, const void *payload, char *why)
{
	struct cluster_link *l = arg;
	struct cluster_msg *msg = malloc(sizeof(*msg) + h->len), **tail;

	if (!msg) {
		snprintf(why, 128, "out of memory");
		return -1;
	}
	*msg = (struct cluster_msg){ .peer = peer, .channel = channel, .h = *h };
	memcpy(msg->payload, payload, h->len);
	pthread_mutex_lock(&l->lock);
	for (tail = &l->head; *tail; tail = &(*tail)->next)
		;
	*tail = msg;
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
	return 0;
}

static inline void cluster_link_lost(void *arg, unsigned peer, unsigned channel, bool malformed,
				     const char *why)
{
	struct cluster_link *l = arg;

	(void)malformed;
	(void)why;
	pthread_mutex_lock(&l->lock);
	l->lost |= 1u << (peer * DSM_NR_CHANNELS + channel);
	pthread_cond_broadcast(&l->cond);
	pthread_mutex_unlock(&l->lock);
}

_Static_assert(CLUSTER_MAX * DSM_NR_CHANNELS <= 32, "cluster_link's lost bits");

/*
 * Over the transport c's DSM ranks use (their channels from 0), collective
 * as dsm_create and dsm_start are there.  0, or -1 said on stderr.
 */
static inline int cluster_link_open(struct cluster_link *l, const struct cluster *c,
				    struct mesh *m)
{
	const char *spec = c->tmpl.transport;
	char err[DSM_ERR_MAX];

	memset(l, 0, sizeof(*l));
	l->m = m;
	if (!spec || strncmp(spec, "fabric", 6))
		return 0;
	pthread_mutex_init(&l->lock, NULL);
	pthread_cond_init(&l->cond, NULL);
	l->tr = dsm_transport_open(&(struct dsm_transport_config){
		.spec = spec, .mesh = m, .dispatch = cluster_link_dispatch,
		.lost = cluster_link_lost, .arg = l }, err);
	if (l->tr && l->tr->ops->start(l->tr, err)) {
		l->tr->ops->destroy(l->tr);
		l->tr = NULL;
	}
	if (!l->tr) {
		fprintf(stderr, "raw rank %u: %s\n", mesh_rank(m), err);
		pthread_cond_destroy(&l->cond);
		pthread_mutex_destroy(&l->lock);
		return -1;
	}
	return 0;
}

/* Abrupt, as a forger may be: no waiting for what is in flight to be read. */
static inline void cluster_link_close(struct cluster_link *l)
{
	if (!l->tr)
		return;
	l->tr->ops->shutdown(l->tr);
	l->tr->ops->stop(l->tr);
	l->tr->ops->destroy(l->tr);
	while (l->head) {
		struct cluster_msg *msg = l->head;

		l->head = msg->next;
		free(msg);
	}
	pthread_cond_destroy(&l->cond);
	pthread_mutex_destroy(&l->lock);
}

/* h and h->len bytes of payload to peer on channel.  0, or -1. */
static inline int cluster_link_send(struct cluster_link *l, unsigned peer, unsigned channel,
				    const struct wire_hdr *h, const void *payload)
{
	if (!l->tr)
		return wire_send_sealed(mesh_fd(l->m, peer, channel),
					mesh_seal(l->m, peer, channel), h, payload);
	return (h->len ? l->tr->ops->send_pages(l->tr, peer, channel, h, payload) :
			 l->tr->ops->send_msg(l->tr, peer, channel, h)) ? -1 : 0;
}

/*
 * The next message from peer on channel, its payload into buf (cap bytes).
 * 0, or -1 with why (128 bytes) when the connection ended or the message
 * was bad.
 */
static inline int cluster_link_recv(struct cluster_link *l, unsigned peer, unsigned channel,
				    struct wire_hdr *h, void *buf, size_t cap, char *why)
{
	struct cluster_msg **p, *msg = NULL;
	uint32_t bit = 1u << (peer * DSM_NR_CHANNELS + channel);

	if (!l->tr)
		return wire_recv_sealed(mesh_fd(l->m, peer, channel),
					mesh_seal(l->m, peer, channel), (int)peer, h, buf, cap, why);
	pthread_mutex_lock(&l->lock);
	for (;;) {
		for (p = &l->head; *p && ((*p)->peer != peer || (*p)->channel != channel);
		     p = &(*p)->next)
			;
		if ((msg = *p) || (l->lost & bit))
			break;
		pthread_cond_wait(&l->cond, &l->lock);
	}
	if (msg)
		*p = msg->next;
	pthread_mutex_unlock(&l->lock);
	if (!msg) {
		snprintf(why, 128, "rank %u closed channel %u", peer, channel);
		return -1;
	}
	*h = msg->h;
	if (h->len > cap) {
		snprintf(why, 128, "a message of %u bytes, more than %zu", h->len, cap);
		free(msg);
		return -1;
	}
	memcpy(buf, msg->payload, h->len);
	free(msg);
	return 0;
}

/* Until peer closes the connection on channel (what it sends meanwhile goes unread). */
static inline void cluster_link_drain(struct cluster_link *l, unsigned peer, unsigned channel)
{
	uint32_t bit = 1u << (peer * DSM_NR_CHANNELS + channel);
	char buf[256];

	if (!l->tr) {
		for (;;) {
			ssize_t r = read(mesh_fd(l->m, peer, channel), buf, sizeof(buf));

			if (r == 0 || (r < 0 && errno != EINTR))
				return;
		}
	}
	pthread_mutex_lock(&l->lock);
	while (!(l->lost & bit))
		pthread_cond_wait(&l->cond, &l->lock);
	pthread_mutex_unlock(&l->lock);
}

/* Wait until every rank has arrived (or one gave up: then exit 4). */
static inline void cluster_barrier(struct cluster *c)
{
	struct cluster_shared *sh = c->sh;
	unsigned gen = atomic_load(&sh->generation);

	if (atomic_fetch_add(&sh->arrived, 1) + 1 == c->n) {
		atomic_store(&sh->arrived, 0);
		atomic_fetch_add(&sh->generation, 1);
		return;
	}
	while (atomic_load(&sh->generation) == gen) {
		if (atomic_load(&sh->abort))
			check_exit(4);
		usleep(200);
	}
}

/*
 * Wait until cond (an expression) holds, re-checking it every 200 us, for at
 * most ms of CLOCK_MONOTONIC; true if it did.  False is a failure for the
 * caller to report, never a reason to go on as if cond held.  A rank that
 * gave up (cluster_fail), or the parent's deadline, makes it exit 4, as in
 * cluster_barrier.
 */
#define CLUSTER_WAIT(c, cond, ms) \
	({ \
		struct timespec cw_t0_; \
		bool cw_ok_; \
		clock_gettime(CLOCK_MONOTONIC, &cw_t0_); \
		while (!(cw_ok_ = (cond)) && cluster_ms_since(&cw_t0_) < (ms)) { \
			if (atomic_load(&(c)->sh->abort)) \
				check_exit(4); \
			usleep(200); \
		} \
		cw_ok_; \
	})

/*
 * A rank gives up in the middle of a race: say why, make the ranks waiting
 * in cluster_barrier or CLUSTER_WAIT give up too, and exit 1 at once (a
 * collective dsm_stop would wait for ranks that wait for this one).
 */
static inline __attribute__((__noreturn__, format(printf, 3, 4))) void
cluster_fail(struct cluster *c, unsigned rank, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "rank %u: ", rank);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	atomic_store(&c->sh->abort, 1);
	check_exit(1);
}

static void cluster_fatal(void *arg, const char *msg)
{
	(void)arg;
	fprintf(stderr, "fatal DSM error: %s\n", msg);
	check_exit(3);
}

static inline int cluster_child(struct cluster *c, unsigned rank, cluster_fn fn, void *arg)
{
	struct mesh_config mc = {
		.rank = rank, .nr_nodes = c->n, .nr_channels = DSM_NR_CHANNELS,
		.peers = c->peers, .listen_fd = c->listen_fds[rank], .vm_id = 4242,
		.munge_socket = getenv("GVM_MUNGE_SOCKET"), .timeout_ms = 20000,
		/* tests/dsm/integrity.t runs the DSM suites again with every frame sealed. */
		.integrity = c->integrity || getenv("GVM_DSM_INTEGRITY") != NULL,
	};
	struct dsm_config cfg = c->tmpl;
	char err[DSM_ERR_MAX > MESH_ERR_MAX ? DSM_ERR_MAX : MESH_ERR_MAX];
	struct mesh *m;
	struct dsm *d;
	int rc;

	for (unsigned i = 0; i < c->n; i++)
		if (i != rank)
			close(c->listen_fds[i]);
	if (mesh_open(&mc, &m, err)) {
		fprintf(stderr, "rank %u: mesh: %s\n", rank, err);
		return 10;
	}
	if (c->raw_mask & (1u << rank)) {
		rc = c->raw(c, m, rank, arg);
		mesh_close(m);
		return rc;
	}
	cfg.mesh = m;
	cfg.size = c->size;
	cfg.home_start = c->home_start;
	if (!cfg.on_fatal)
		cfg.on_fatal = cluster_fatal;
	if (dsm_create(&cfg, &d, err) || dsm_start(d, err)) {
		fprintf(stderr, "rank %u: dsm: %s\n", rank, err);
		return 11;
	}
	rc = fn(d, rank, arg);
	if (rc == CLUSTER_FAILED_OK) {
		rc = 0;
	} else if (dsm_stop(d)) {
		fprintf(stderr, "rank %u: stop: %s\n", rank, dsm_error(d));
		rc = rc ? rc : 12;
	}
	dsm_destroy(d);
	mesh_close(m);
	return rc;
}

/* Read what the children write on stderr until every pipe is closed or the deadline. */
static inline void cluster_collect(struct cluster *c, int *fds)
{
	size_t have[CLUSTER_MAX] = { 0 };
	unsigned open_fds = c->n;

	while (open_fds) {
		struct pollfd pfd[CLUSTER_MAX];
		int ms = (int)(c->timeout_s * 1000 - cluster_ms_since(&c->t0));

		if (ms <= 0)
			break;
		for (unsigned i = 0; i < c->n; i++)
			pfd[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
		if (c->parent_hook) {
			c->parent_hook(c, c->arg);
			ms = ms > 10 ? 10 : ms;
		}
		if (poll(pfd, c->n, ms) <= 0)
			continue;
		for (unsigned i = 0; i < c->n; i++) {
			ssize_t r;

			if (fds[i] < 0 || !(pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			r = read(fds[i], c->err[i] + have[i], CLUSTER_ERR_MAX - 1 - have[i]);
			if (r > 0) {
				have[i] += r;
				continue;
			}
			if (r < 0 && errno == EINTR)
				continue;
			close(fds[i]);
			fds[i] = -1;
			c->exit_ms[i] = cluster_ms_since(&c->t0);
			open_fds--;
		}
	}
}

/* Run fn on every rank.  Returns 0 when every child exited 0. */
static inline int cluster_run(struct cluster *c, cluster_fn fn, void *arg)
{
	int fds[CLUSTER_MAX], bad = 0;
	char err[MESH_ERR_MAX];

	c->sh = mmap(NULL, sizeof(*c->sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
		     0);
	if (c->sh == MAP_FAILED)
		return -1;
	memset(c->sh, 0, sizeof(*c->sh));
	for (unsigned i = 0; i < c->n; i++) {
		struct hostport any = { .host = "127.0.0.1", .port = 0 };

		c->listen_fds[i] = mesh_listen(&any, err);
		if (c->listen_fds[i] < 0) {
			fprintf(stderr, "%s\n", err);
			return -1;
		}
		c->peers[i] = any;
		c->peers[i].port = mesh_local_port(c->listen_fds[i]);
	}
	if (c->before_fork)
		c->before_fork(c, c->arg);
	fflush(NULL);
	clock_gettime(CLOCK_MONOTONIC, &c->t0);
	for (unsigned i = 0; i < c->n; i++) {
		int p[2];

		if (pipe2(p, O_CLOEXEC))
			return -1;
		c->pids[i] = fork();
		if (c->pids[i] == 0) {
			dup2(p[1], 2);
			check_exit(cluster_child(c, i, fn, arg));
		}
		close(p[1]);
		fds[i] = p[0];
		memset(c->err[i], 0, CLUSTER_ERR_MAX);
	}
	for (unsigned i = 0; i < c->n; i++)
		close(c->listen_fds[i]);
	cluster_collect(c, fds);
	for (unsigned i = 0; i < c->n; i++) {
		int st;

		if (fds[i] >= 0) {
			/* Past the deadline: stop it, and say so. */
			kill(c->pids[i], SIGKILL);
			close(fds[i]);
			snprintf(c->err[i] + strlen(c->err[i]), 64, "\n(killed after %u s)\n",
				 c->timeout_s);
			atomic_store(&c->sh->abort, 1);
		}
		if (waitpid(c->pids[i], &st, 0) != c->pids[i])
			st = 255 << 8;
		c->status[i] = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		if (c->status[i])
			bad = 1;
	}
	munmap(c->sh, sizeof(*c->sh));
	c->sh = NULL;
	return bad;
}

/* Print every child's status and stderr (for a failing test). */
static inline void cluster_report(const struct cluster *c)
{
	for (unsigned i = 0; i < c->n; i++) {
		fprintf(stderr, "-- rank %u: status %d after %.0f ms\n", i, c->status[i], c->exit_ms[i]);
		if (c->err[i][0])
			fprintf(stderr, "%s", c->err[i]);
	}
}

#ifdef GVM_DSM_INTERNAL_H
/* For white-box tests (dsm/internal.h included first): peer's BYE came on every channel, it is in dsm_stop. */
static inline bool cluster_bye_from(struct dsm *d, unsigned peer)
{
	bool all = true;

	pthread_mutex_lock(&d->lock);
	for (unsigned ch = 0; ch < DSM_NR_CHANNELS; ch++)
		all = all && d->bye[peer * DSM_NR_CHANNELS + ch];
	pthread_mutex_unlock(&d->lock);
	return all;
}
#endif

#endif
