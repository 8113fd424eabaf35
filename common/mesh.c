#include "common/mesh.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/auth.h"
#include "common/log.h"
#include "common/seal.h"
#include "common/wire.h"

#define MESH_CRED_MAX 4096
/*
 * A connecting peer must finish its handshake within this time, in all (a
 * byte now and then does not extend it); a handshake of ours that failed
 * for want of an answer is tried again until the mesh's deadline.
 */
#define MESH_HANDSHAKE_MS 5000
/*
 * Handshakes of accepted connections run in parallel, each in its own
 * thread, so that a connection that says nothing (a port scan, a stray nc)
 * delays no one else.  Beyond this many, new ones wait in the backlog.
 */
#define MESH_MAX_HANDSHAKES 16

struct mesh {
	struct mesh_config cfg;
	struct hostport *peers;
	int *fds; /* [peer * nr_channels + channel] */
	struct seal **seals; /* the same, with --integrity */
	int listen_fd;
	uid_t uid;
	atomic_uint inbound_done;
	atomic_uint outbound_done;
	atomic_bool stop;
	struct timespec deadline;
};

static unsigned mesh_slot(const struct mesh *m, unsigned peer, unsigned ch)
{
	return peer * m->cfg.nr_channels + ch;
}

static uint64_t mesh_now_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (uint64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static long mesh_ms_left(const struct mesh *m)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (m->deadline.tv_sec - now.tv_sec) * 1000 +
	       (m->deadline.tv_nsec - now.tv_nsec) / 1000000;
}

static void mesh_set_timeouts(int fd, unsigned ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/*
 * Options for an established connection: low latency, and a dead host
 * noticed after peer_timeout_ms (keepalive probes every second once idle,
 * unacknowledged data), not after TCP's own quarter of an hour.
 */
static void mesh_tune(int fd, unsigned peer_timeout_ms)
{
	int one = 1, idle = 1, intvl = 1, cnt = peer_timeout_ms / 1000 ? peer_timeout_ms / 1000 : 1;
	unsigned user_timeout = peer_timeout_ms;

	mesh_set_timeouts(fd, 0);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof(user_timeout));
}

static const char *mesh_addr_str(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const void *)ss;
		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		port = ntohs(sin->sin_port);
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const void *)ss;
		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		port = ntohs(sin6->sin6_port);
	}
	snprintf(buf, len, "%s:%u", host, port);
	return buf;
}

/*
 * Every address of this host: IPv6's wildcard, which takes IPv4 too, else
 * (a host without IPv6) IPv4's.
 */
static int mesh_listen_any(uint16_t port, char *err)
{
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_port = htons(port),
				   .sin6_addr = IN6ADDR_ANY_INIT };
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = htonl(INADDR_ANY) };
	int one = 1, zero = 0, fd, e;

	fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero))) {
		close(fd);
		fd = -1;
	}
	if (fd >= 0) {
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, (struct sockaddr *)&a6, sizeof(a6)) == 0 && listen(fd, 64) == 0)
			return fd;
		e = errno;
		close(fd);
		/* IPv6 there but the port taken: IPv4 would not do better */
		if (e != EAFNOSUPPORT && e != EADDRNOTAVAIL)
			goto fail;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		e = errno;
		goto fail;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a4, sizeof(a4)) == 0 && listen(fd, 64) == 0)
		return fd;
	e = errno;
	close(fd);
fail:
	snprintf(err, MESH_ERR_MAX, "cannot listen on port %u (every address of this host): %s",
		 port, strerror(e));
	return -1;
}

int mesh_listen(const struct hostport *addr, char *err)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE };
	struct addrinfo *res, *ai;
	char port[8];
	int fd = -1, rc, one = 1, saved = 0;

	if (!addr->host[0])
		return mesh_listen_any(addr->port, err);
	snprintf(port, sizeof(port), "%u", addr->port);
	rc = getaddrinfo(addr->host, port, &hints, &res);
	if (rc) {
		snprintf(err, MESH_ERR_MAX, "cannot resolve %s: %s", addr->host, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 64) == 0)
			break;
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		snprintf(err, MESH_ERR_MAX, "cannot listen on %s:%u: %s", addr->host, addr->port,
			 strerror(saved));
	return fd;
}

int mesh_local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -1;
}

/*
 * Our claim on fd, answering the peer's challenge; with nonce, a fresh
 * challenge of ours goes with it (kept in nonce) for the peer's answer.
 */
static int mesh_send_hello(struct mesh *m, int fd, uint16_t type, unsigned to, unsigned ch,
			   const uint8_t *challenge, uint8_t *nonce, uint8_t *secret, char *err)
{
	struct auth_claim claim = { .vm_id = m->cfg.vm_id, .from = m->cfg.rank, .to = to,
				    .channel = ch, .nr_nodes = m->cfg.nr_nodes };
	struct wire_hdr h;
	char *cred;
	int rc;

	memcpy(claim.challenge, challenge, AUTH_NONCE_LEN);
	if (m->cfg.integrity) {
		claim.flags |= AUTH_SEALED;
		if (auth_nonce(secret, err))
			return -2;
		memcpy(claim.secret, secret, AUTH_NONCE_LEN);
	}
	if (nonce) {
		if (auth_nonce(nonce, err))
			return -2;
		memcpy(claim.nonce, nonce, AUTH_NONCE_LEN);
	}
	if (auth_encode(m->cfg.munge_socket, &claim, &cred, err))
		return -2; /* our own munged: asking again will not help */
	h = wire_hdr_make(type, m->cfg.rank, strlen(cred) + 1);
	rc = wire_send(fd, &h, cred);
	free(cred);
	memset(&claim, 0, sizeof(claim));
	if (rc) {
		snprintf(err, MESH_ERR_MAX, "sending the handshake: %s", strerror(-rc));
		return -1;
	}
	return 0;
}

/* The acceptor speaks first: a fresh challenge, which the caller keeps. */
static int mesh_send_challenge(const struct mesh *m, int fd, uint8_t *challenge, char *err)
{
	struct wire_hdr h = wire_hdr_make(MESH_CHALLENGE, m->cfg.rank, AUTH_NONCE_LEN);
	int rc;

	if (auth_nonce(challenge, err))
		return -1;
	rc = wire_send(fd, &h, challenge);
	if (rc)
		snprintf(err, MESH_ERR_MAX, "sending the challenge: %s", strerror(-rc));
	return rc ? -1 : 0;
}

/* -1 when no challenge came (worth asking again), -2 when something else did. */
static int mesh_recv_challenge(int fd, uint8_t *challenge, char *err)
{
	char why[128];
	struct wire_hdr h;

	if (wire_recv(fd, -1, &h, challenge, AUTH_NONCE_LEN, why)) {
		snprintf(err, MESH_ERR_MAX, "handshake: %s", why);
		return -1;
	}
	return mesh_challenge_check(&h, err) ? -2 : 0;
}

int mesh_challenge_check(const struct wire_hdr *h, char *err)
{
	if (h->type != MESH_CHALLENGE || h->len != AUTH_NONCE_LEN) {
		snprintf(err, MESH_ERR_MAX, "handshake: a message of type 0x%x and %u bytes where a "
			 "challenge was due (another version of gvm?)", h->type, h->len);
		return -1;
	}
	return 0;
}

int mesh_claim_check(const struct mesh_config *cfg, unsigned sender, int want_from, int want_ch,
		     const uint8_t *challenge, const struct auth_claim *claim, char *err)
{
	if (claim->vm_id != cfg->vm_id) {
		snprintf(err, MESH_ERR_MAX, "peer belongs to VM %llu, this is VM %llu",
			 (unsigned long long)claim->vm_id, (unsigned long long)cfg->vm_id);
		return -1;
	}
	if (claim->nr_nodes != cfg->nr_nodes || claim->to != cfg->rank ||
	    claim->from >= cfg->nr_nodes || claim->channel >= cfg->nr_channels ||
	    claim->from != sender) {
		snprintf(err, MESH_ERR_MAX,
			 "claim does not fit this VM (from %u to %u channel %u of %u nodes)",
			 claim->from, claim->to, claim->channel, claim->nr_nodes);
		return -1;
	}
	if ((want_from < 0 && claim->from <= cfg->rank) ||
	    (want_from >= 0 && claim->from != (unsigned)want_from) ||
	    (want_ch >= 0 && claim->channel != (unsigned)want_ch)) {
		snprintf(err, MESH_ERR_MAX, "unexpected peer: rank %u channel %u", claim->from,
			 claim->channel);
		return -1;
	}
	if (!(claim->flags & AUTH_SEALED) != !cfg->integrity) {
		snprintf(err, MESH_ERR_MAX, "rank %u runs %s --integrity and this node %s: every "
			 "node of a VM must agree", claim->from,
			 claim->flags & AUTH_SEALED ? "with" : "without",
			 cfg->integrity ? "with it" : "without it");
		return -1;
	}
	if (claim->flags & ~AUTH_SEALED || claim->reserved) {
		snprintf(err, MESH_ERR_MAX, "claim with unknown flags 0x%x (another version of gvm?)",
			 claim->flags);
		return -1;
	}
	if (memcmp(claim->challenge, challenge, AUTH_NONCE_LEN)) {
		snprintf(err, MESH_ERR_MAX, "the credential answers another connection's challenge "
			 "(a replayed handshake?)");
		return -1;
	}
	return 0;
}

/*
 * Receive a handshake message of `type` and check every field of its claim.
 * want_from < 0 accepts any higher rank (the acceptor does not know yet who
 * is calling).  The claim must answer `challenge`, ours on this connection.
 * Returns the peer's claim in *claim; -1 when no answer came (worth asking
 * again), -2 when the answer was wrong.
 */
static int mesh_recv_hello(struct mesh *m, int fd, uint16_t type, int want_from, int want_ch,
			   const uint8_t *challenge, struct auth_claim *claim, char *err)
{
	char cred[MESH_CRED_MAX], why[128];
	struct wire_hdr h;
	char aerr[AUTH_ERR_MAX];

	if (wire_recv(fd, -1, &h, cred, sizeof(cred) - 1, why)) {
		snprintf(err, MESH_ERR_MAX, "handshake: %s", why);
		return -1;
	}
	if (h.type != type || h.len == 0) {
		snprintf(err, MESH_ERR_MAX, "handshake: unexpected message type 0x%x", h.type);
		return -1;
	}
	/* From here on the peer answered: what it says will not change if asked again. */
	cred[h.len] = '\0';
	if (auth_decode(m->cfg.munge_socket, cred, m->uid, claim, aerr)) {
		snprintf(err, MESH_ERR_MAX, "%s", aerr);
		return -2;
	}
	return mesh_claim_check(&m->cfg, h.from, want_from, want_ch, challenge, claim, err) ? -2
												  : 0;
}

/*
 * A handshake is either cut short at its deadline or adopted, never both:
 * a connection adopted and then shut down by the acceptor would be a dead
 * socket in the mesh.
 */
enum { HS_RUNNING, HS_ADOPTING, HS_CUT };

/* One accepted connection's handshake; the socket stays the caller's. */
struct mesh_hs {
	struct mesh *m;
	pthread_t thread;
	int fd;
	bool busy;              /* a thread was started and is not joined yet */
	bool adopted;           /* the mesh took the socket */
	atomic_bool finished;
	atomic_int state;       /* HS_* */
	uint64_t start_ms;
	char addr[80];
};

/* Returns 0 when the connection became one of the mesh's. */
static int mesh_accept_one(struct mesh *m, int fd, const char *addr, atomic_int *state)
{
	uint8_t challenge[AUTH_NONCE_LEN], secret[AUTH_NONCE_LEN];
	struct auth_claim claim;
	char err[MESH_ERR_MAX];
	unsigned slot;
	int free_slot = -1, running = HS_RUNNING;

	mesh_set_timeouts(fd, MESH_HANDSHAKE_MS);
	if (mesh_send_challenge(m, fd, challenge, err) ||
	    mesh_recv_hello(m, fd, MESH_HELLO, -1, -1, challenge, &claim, err))
		goto refuse;
	slot = mesh_slot(m, claim.from, claim.channel);
	if (!atomic_compare_exchange_strong(state, &running, HS_ADOPTING)) {
		snprintf(err, MESH_ERR_MAX, "its handshake took more than %u s", MESH_HANDSHAKE_MS / 1000);
		goto refuse;
	}
	/* Other handshakes run at the same time: take the slot atomically. */
	if (!__atomic_compare_exchange_n(&m->fds[slot], &free_slot, fd, false, __ATOMIC_SEQ_CST,
					 __ATOMIC_SEQ_CST)) {
		snprintf(err, MESH_ERR_MAX, "rank %u channel %u is already connected", claim.from,
			 claim.channel);
		goto refuse;
	}
	if (mesh_send_hello(m, fd, MESH_HELLO_ACK, claim.from, claim.channel, claim.nonce, NULL,
			    secret, err) ||
	    (m->cfg.integrity && !(m->seals[slot] = seal_new(secret, claim.secret, false,
							     m->cfg.vm_id, claim.channel, err)))) {
		__atomic_store_n(&m->fds[slot], -1, __ATOMIC_SEQ_CST);
		goto refuse;
	}
	mesh_tune(fd, m->cfg.peer_timeout_ms);
	pr_debug("rank %u: rank %u channel %u connected from %s", m->cfg.rank, claim.from,
		 claim.channel, addr);
	return 0;
refuse:
	pr_warn("rank %u: refused connection from %s: %s", m->cfg.rank, addr, err);
	return -1;
}

static void *mesh_handshake(void *arg)
{
	struct mesh_hs *hs = arg;

	hs->adopted = mesh_accept_one(hs->m, hs->fd, hs->addr, &hs->state) == 0;
	atomic_store(&hs->finished, true);
	/* Counted last: once every peer is counted, every adopting thread has finished. */
	if (hs->adopted)
		atomic_fetch_add(&hs->m->inbound_done, 1);
	return NULL;
}

/*
 * Join the finished handshakes, or all of them (those still waiting for a
 * stranger are cut short); close the sockets the mesh did not take.
 */
static void mesh_reap(struct mesh_hs *hs, bool all)
{
	for (unsigned i = 0; i < MESH_MAX_HANDSHAKES && all; i++)
		if (hs[i].busy && !atomic_load(&hs[i].finished))
			shutdown(hs[i].fd, SHUT_RDWR);
	for (unsigned i = 0; i < MESH_MAX_HANDSHAKES; i++) {
		if (!hs[i].busy || (!all && !atomic_load(&hs[i].finished)))
			continue;
		pthread_join(hs[i].thread, NULL);
		if (!hs[i].adopted)
			close(hs[i].fd);
		hs[i].busy = false;
	}
}

/* Cut short the handshakes past their deadline: their threads then finish. */
static void mesh_expire(struct mesh_hs *hs)
{
	uint64_t now = mesh_now_ms();

	for (unsigned i = 0; i < MESH_MAX_HANDSHAKES; i++) {
		int running = HS_RUNNING;

		if (hs[i].busy && !atomic_load(&hs[i].finished) &&
		    now - hs[i].start_ms > MESH_HANDSHAKE_MS &&
		    atomic_compare_exchange_strong(&hs[i].state, &running, HS_CUT))
			shutdown(hs[i].fd, SHUT_RDWR);
	}
}

static struct mesh_hs *mesh_hs_free(struct mesh_hs *hs)
{
	for (unsigned i = 0; i < MESH_MAX_HANDSHAKES; i++)
		if (!hs[i].busy)
			return &hs[i];
	return NULL;
}

static unsigned mesh_inbound_total(const struct mesh *m)
{
	return (m->cfg.nr_nodes - 1 - m->cfg.rank) * m->cfg.nr_channels;
}

static void *mesh_acceptor(void *arg)
{
	struct mesh_hs hs[MESH_MAX_HANDSHAKES] = { 0 };
	struct mesh *m = arg;

	while (atomic_load(&m->inbound_done) < mesh_inbound_total(m) && !atomic_load(&m->stop)) {
		struct pollfd pfd = { .fd = m->listen_fd, .events = POLLIN };
		struct sockaddr_storage ss;
		socklen_t len = sizeof(ss);
		struct mesh_hs *h;
		int fd, rc;

		if (mesh_ms_left(m) <= 0)
			break;
		mesh_expire(hs);
		mesh_reap(hs, false);
		if (!(h = mesh_hs_free(hs))) {
			usleep(10 * 1000);
			continue;
		}
		if (poll(&pfd, 1, 100) <= 0)
			continue;
		fd = accept4(m->listen_fd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC);
		if (fd < 0)
			continue;
		*h = (struct mesh_hs){ .m = m, .fd = fd, .start_ms = mesh_now_ms() };
		mesh_addr_str(&ss, h->addr, sizeof(h->addr));
		rc = pthread_create(&h->thread, NULL, mesh_handshake, h);
		if (rc) {
			pr_warn("rank %u: refused connection from %s: no thread for it: %s",
				m->cfg.rank, h->addr, strerror(rc));
			close(fd);
			continue;
		}
		h->busy = true;
	}
	mesh_reap(hs, true);
	return NULL;
}

/* One attempt; on failure *why says what stood in the way (a static string). */
static int mesh_connect_once(const struct hostport *hp, int *fd_out, const char **why)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM };
	struct addrinfo *res, *ai;
	char port[8];
	int fd = -1, rc;

	snprintf(port, sizeof(port), "%u", hp->port);
	rc = getaddrinfo(hp->host, port, &hints, &res);
	if (rc) {
		/* retried like a refused connection: a name may come up with its node */
		*why = rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc);
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		*why = strerror(errno);
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	*fd_out = fd;
	return fd < 0 ? -1 : 0;
}

static int mesh_connect_peer(struct mesh *m, unsigned peer, unsigned ch, char *err)
{
	const struct hostport *hp = &m->peers[peer];
	struct auth_claim claim;
	char herr[MESH_ERR_MAX];
	const char *why = strerror(ETIMEDOUT);
	int fd;

	bool answered = false; /* a handshake was tried: its failure is the news */

	for (;;) {
		if (atomic_load(&m->stop))
			return -1;
		if (mesh_connect_once(hp, &fd, &why) == 0) {
			uint8_t challenge[AUTH_NONCE_LEN], nonce[AUTH_NONCE_LEN];
			uint8_t secret[AUTH_NONCE_LEN];
			int rc;

			mesh_set_timeouts(fd, MESH_HANDSHAKE_MS);
			rc = mesh_recv_challenge(fd, challenge, herr);
			if (rc == 0)
				rc = mesh_send_hello(m, fd, MESH_HELLO, peer, ch, challenge, nonce,
						     secret, herr);
			if (rc == 0)
				rc = mesh_recv_hello(m, fd, MESH_HELLO_ACK, peer, ch, nonce, &claim,
						     herr);
			if (rc == 0 && m->cfg.integrity &&
			    !(m->seals[mesh_slot(m, peer, ch)] =
				      seal_new(secret, claim.secret, true, m->cfg.vm_id, ch, herr)))
				rc = -2;
			if (rc == 0)
				break;
			close(fd);
			/*
			 * No answer: its acceptor may be busy (with strangers
			 * holding its handshake slots) or it may be restarting:
			 * ask again.  A wrong answer will not change.
			 */
			if (rc == -2) {
				snprintf(err, MESH_ERR_MAX, "rank %u at %s:%u failed the handshake: %s",
					 peer, hp->host, hp->port, herr);
				return -1;
			}
			answered = true;
			pr_debug("rank %u: handshake with rank %u channel %u: %s; trying again",
				 m->cfg.rank, peer, ch, herr);
		}
		if (mesh_ms_left(m) <= 0) {
			if (answered)
				snprintf(err, MESH_ERR_MAX, "rank %u at %s:%u failed the handshake: %s "
					 "(gave up after %u s)", peer, hp->host, hp->port, herr,
					 m->cfg.timeout_ms / 1000);
			else
				snprintf(err, MESH_ERR_MAX, "cannot reach rank %u at %s:%u: %s (gave up "
					 "after %u s)", peer, hp->host, hp->port, why,
					 m->cfg.timeout_ms / 1000);
			return -1;
		}
		usleep(50 * 1000);
	}
	mesh_tune(fd, m->cfg.peer_timeout_ms);
	m->fds[mesh_slot(m, peer, ch)] = fd;
	atomic_fetch_add(&m->outbound_done, 1);
	return 0;
}

/*
 * A lower rank whose connection of ours closed while we wait for higher
 * ranks: it failed or was killed, and the higher rank we wait for may be
 * stuck trying to reach it, so it is news beside the one we wait for.
 * Only our own (outbound) connections are looked at: the acceptor's
 * threads may still be filling or clearing the inbound slots.
 */
static int mesh_lost_lower(struct mesh *m)
{
	for (unsigned peer = 0; peer < m->cfg.rank; peer++)
		for (unsigned ch = 0; ch < m->cfg.nr_channels; ch++) {
			struct pollfd p = { .fd = m->fds[mesh_slot(m, peer, ch)], .events = POLLRDHUP };

			if (p.fd >= 0 && poll(&p, 1, 0) == 1 &&
			    (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
				return (int)peer;
		}
	return -1;
}

static void mesh_report(struct mesh *m, unsigned *last)
{
	unsigned done = atomic_load(&m->inbound_done) + atomic_load(&m->outbound_done);

	if (m->cfg.progress && done != *last)
		m->cfg.progress(m->cfg.progress_arg, done,
				(m->cfg.nr_nodes - 1) * m->cfg.nr_channels);
	*last = done;
}

int mesh_open(const struct mesh_config *cfg, struct mesh **out, char *err)
{
	unsigned nslots = cfg->nr_nodes * cfg->nr_channels, reported = ~0u;
	struct mesh *m = NULL;
	pthread_t acceptor;
	int rc = -1, lost = -1;

	if (cfg->nr_nodes == 0 || cfg->nr_nodes > MESH_MAX_NODES || cfg->rank >= cfg->nr_nodes ||
	    cfg->nr_channels == 0 || cfg->nr_channels > MESH_MAX_CHANNELS) {
		snprintf(err, MESH_ERR_MAX, "bad mesh: rank %u of %u nodes, %u channels (at most %u nodes)",
			 cfg->rank, cfg->nr_nodes, cfg->nr_channels, MESH_MAX_NODES);
		goto fail_alloc;
	}
	m = calloc(1, sizeof(*m));
	if (!m || !(m->peers = calloc(cfg->nr_nodes, sizeof(*m->peers))) ||
	    !(m->fds = malloc(nslots * sizeof(int))) ||
	    !(m->seals = calloc(nslots, sizeof(*m->seals)))) {
		snprintf(err, MESH_ERR_MAX, "out of memory");
		goto fail_alloc;
	}
	m->cfg = *cfg;
	if (!m->cfg.timeout_ms)
		m->cfg.timeout_ms = 30000;
	if (!m->cfg.peer_timeout_ms)
		m->cfg.peer_timeout_ms = 30000;
	memcpy(m->peers, cfg->peers, cfg->nr_nodes * sizeof(*m->peers));
	m->cfg.peers = m->peers;
	for (unsigned i = 0; i < nslots; i++)
		m->fds[i] = -1;
	m->uid = getuid();
	clock_gettime(CLOCK_MONOTONIC, &m->deadline);
	m->deadline.tv_sec += m->cfg.timeout_ms / 1000;
	m->deadline.tv_nsec += (m->cfg.timeout_ms % 1000) * 1000000L;
	if (m->deadline.tv_nsec >= 1000000000L) {
		m->deadline.tv_sec++;
		m->deadline.tv_nsec -= 1000000000L;
	}

	m->listen_fd = cfg->listen_fd >= 0 ? cfg->listen_fd : mesh_listen(&m->peers[cfg->rank], err);
	if (m->listen_fd < 0)
		goto fail_alloc;
	if ((rc = pthread_create(&acceptor, NULL, mesh_acceptor, m))) {
		snprintf(err, MESH_ERR_MAX, "cannot start the acceptor thread: %s", strerror(rc));
		rc = -1;
		goto fail_listen;
	}
	rc = 0;
	for (unsigned peer = 0; peer < cfg->rank && rc == 0; peer++)
		for (unsigned ch = 0; ch < cfg->nr_channels && rc == 0; ch++) {
			rc = mesh_connect_peer(m, peer, ch, err);
			mesh_report(m, &reported);
		}
	if (rc)
		atomic_store(&m->stop, true);
	while (rc == 0 && atomic_load(&m->inbound_done) < mesh_inbound_total(m) &&
	       mesh_ms_left(m) > 0) {
		if ((lost = mesh_lost_lower(m)) >= 0) {
			rc = -1;
			atomic_store(&m->stop, true);
			break;
		}
		mesh_report(m, &reported);
		usleep(20 * 1000);
	}
	pthread_join(acceptor, NULL);
	mesh_report(m, &reported);
	if (rc == 0 || lost >= 0) {
		/* The slots are ours alone now: name the first higher rank missing, if any. */
		bool short_of = atomic_load(&m->inbound_done) < mesh_inbound_total(m);
		int missing = -1;

		for (unsigned i = (cfg->rank + 1) * cfg->nr_channels;
		     short_of && i < nslots && missing < 0; i++)
			if (m->fds[i] < 0)
				missing = (int)(i / cfg->nr_channels);
		/*
		 * A lower rank that closed may have been killed, or may have
		 * given up on the missing one itself (its deadline came
		 * first): the message names both.
		 */
		char lname[MESH_ERR_MAX / 4], mname[MESH_ERR_MAX / 4];

		if (lost >= 0)
			mesh_peer_name(m, lost, lname, sizeof(lname));
		if (missing >= 0)
			mesh_peer_name(m, missing, mname, sizeof(mname));
		if (lost >= 0 && missing >= 0)
			snprintf(err, MESH_ERR_MAX, "%s closed its connection while the mesh was "
				 "forming (it failed or was stopped), and %s had not connected",
				 lname, mname);
		else if (lost >= 0)
			snprintf(err, MESH_ERR_MAX, "%s closed its connection while the mesh was "
				 "forming: it failed or was stopped", lname);
		else if (missing >= 0)
			snprintf(err, MESH_ERR_MAX, "%s did not connect within %u s", mname,
				 m->cfg.timeout_ms / 1000);
		else if (short_of)
			snprintf(err, MESH_ERR_MAX, "a higher rank did not connect within %u s",
				 m->cfg.timeout_ms / 1000);
		if (lost >= 0 || short_of)
			rc = -1;
	}
fail_listen:
	close(m->listen_fd);
	m->listen_fd = -1;
	if (rc == 0) {
		*out = m;
		return 0;
	}
	mesh_close(m);
	return -1;
fail_alloc:
	/* The listening socket handed over is ours to close, whatever happens. */
	if (cfg->listen_fd >= 0)
		close(cfg->listen_fd);
	if (m) {
		free(m->seals);
		free(m->fds);
		free(m->peers);
	}
	free(m);
	return -1;
}

int mesh_fd(const struct mesh *m, unsigned peer, unsigned channel)
{
	if (peer >= m->cfg.nr_nodes || channel >= m->cfg.nr_channels)
		return -1;
	return m->fds[mesh_slot(m, peer, channel)];
}

struct seal *mesh_seal(const struct mesh *m, unsigned peer, unsigned channel)
{
	if (peer >= m->cfg.nr_nodes || channel >= m->cfg.nr_channels)
		return NULL;
	return m->seals[mesh_slot(m, peer, channel)];
}

unsigned mesh_rank(const struct mesh *m)
{
	return m->cfg.rank;
}

unsigned mesh_nr_nodes(const struct mesh *m)
{
	return m->cfg.nr_nodes;
}

const struct hostport *mesh_peer(const struct mesh *m, unsigned peer)
{
	return peer < m->cfg.nr_nodes ? &m->peers[peer] : NULL;
}

const char *mesh_peer_name(const struct mesh *m, unsigned peer, char *buf, size_t len)
{
	const struct hostport *hp = mesh_peer(m, peer);

	if (hp)
		snprintf(buf, len, "rank %u (%s:%u)", peer, hp->host, hp->port);
	else
		snprintf(buf, len, "rank %u", peer);
	return buf;
}

void mesh_shutdown(struct mesh *m)
{
	for (unsigned i = 0; i < m->cfg.nr_nodes * m->cfg.nr_channels; i++)
		if (m->fds[i] >= 0)
			shutdown(m->fds[i], SHUT_RDWR);
}

void mesh_close(struct mesh *m)
{
	if (!m)
		return;
	for (unsigned i = 0; i < m->cfg.nr_nodes * m->cfg.nr_channels; i++) {
		if (m->fds[i] >= 0)
			close(m->fds[i]);
		seal_free(m->seals[i]);
	}
	free(m->seals);
	free(m->fds);
	free(m->peers);
	free(m);
}
