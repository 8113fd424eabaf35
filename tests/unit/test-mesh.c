/*
 * common/mesh.c with real processes over loopback and a real munged:
 * a full mesh forms and carries messages; peers of another VM, garbage on
 * the port, handshakes that say the wrong thing (each way) and unreachable
 * peers are refused with a reason.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <munge.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/auth.h"
#include "common/log.h"
#include "common/mesh.h"
#include "common/seal.h"
#include "common/wire.h"
#include "tests/lib/check.h"

#define MAX 4

struct setup {
	unsigned n, channels;
	struct hostport peers[MAX];
	int listen_fds[MAX];
};

static void setup_listen(struct setup *s, unsigned n, unsigned channels)
{
	char err[MESH_ERR_MAX];

	s->n = n;
	s->channels = channels;
	for (unsigned i = 0; i < n; i++) {
		struct hostport any = { .host = "127.0.0.1", .port = 0 };
		s->listen_fds[i] = mesh_listen(&any, err);
		CHECK(s->listen_fds[i] >= 0);
		s->peers[i] = any;
		s->peers[i].port = mesh_local_port(s->listen_fds[i]);
	}
}

static void setup_close(struct setup *s)
{
	for (unsigned i = 0; i < s->n; i++)
		if (s->listen_fds[i] >= 0)
			close(s->listen_fds[i]);
}


/* A child's end of the mesh (the other ranks' sockets closed), or NULL, said why. */
static struct mesh *child_mesh(struct setup *s, unsigned rank, uint64_t vm_id,
			       unsigned timeout_ms, bool integrity)
{
	struct mesh_config cfg = {
		.rank = rank, .nr_nodes = s->n, .nr_channels = s->channels, .peers = s->peers,
		.listen_fd = s->listen_fds[rank], .vm_id = vm_id,
		.munge_socket = getenv("GVM_MUNGE_SOCKET"), .timeout_ms = timeout_ms,
		.integrity = integrity,
	};
	char err[MESH_ERR_MAX];
	struct mesh *m;

	for (unsigned i = 0; i < s->n; i++)
		if (i != rank)
			close(s->listen_fds[i]);
	if (mesh_open(&cfg, &m, err)) {
		fprintf(stderr, "rank %u: %s\n", rank, err);
		return NULL;
	}
	return m;
}

/* Child: open the mesh, then exchange one message on every connection. */
static int child_exchange(struct setup *s, unsigned rank, uint64_t vm_id, unsigned timeout_ms)
{
	struct mesh *m = child_mesh(s, rank, vm_id, timeout_ms, false);
	char why[128];

	if (!m)
		return 10;
	for (unsigned p = 0; p < s->n; p++)
		for (unsigned c = 0; c < s->channels && p != rank; c++) {
			struct wire_hdr h = wire_hdr_make(0x300, rank, 0);
			h.arg[0] = rank * 100 + c;
			if (wire_send(mesh_fd(m, p, c), &h, NULL))
				return 11;
		}
	for (unsigned p = 0; p < s->n; p++)
		for (unsigned c = 0; c < s->channels && p != rank; c++) {
			struct wire_hdr h;
			if (wire_recv(mesh_fd(m, p, c), p, &h, NULL, 0, why) || h.arg[0] != p * 100 + c) {
				fprintf(stderr, "rank %u: from %u channel %u: %s\n", rank, p, c, why);
				return 12;
			}
		}
	mesh_close(m);
	return 0;
}

static int wait_status(pid_t pid)
{
	int st;

	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void test_full_mesh(void)
{
	struct setup s;
	pid_t pids[MAX];

	setup_listen(&s, 4, 3);
	for (unsigned r = 0; r < s.n; r++) {
		pids[r] = fork();
		if (pids[r] == 0)
			check_exit(child_exchange(&s, r, 77, 10000));
	}
	setup_close(&s);
	for (unsigned r = 0; r < s.n; r++)
		CHECK_EQ(wait_status(pids[r]), 0);
}

static void test_other_vm_refused(void)
{
	struct setup s;
	pid_t p0, p1;

	setup_listen(&s, 2, 1);
	p0 = fork();
	if (p0 == 0)
		check_exit(child_exchange(&s, 0, 1, 1500));
	p1 = fork();
	if (p1 == 0)
		check_exit(child_exchange(&s, 1, 2, 1500));
	setup_close(&s);
	CHECK_EQ(wait_status(p0), 10);
	CHECK_EQ(wait_status(p1), 10);
}

static void test_garbage_then_real_peer(void)
{
	struct setup s;
	pid_t p0, p1;
	char err[MESH_ERR_MAX];
	int fd;

	setup_listen(&s, 2, 1);
	p0 = fork();
	if (p0 == 0)
		check_exit(child_exchange(&s, 0, 5, 10000));
	/* A stranger sends junk first; rank 0 must drop it and still accept rank 1. */
	fd = socket(AF_INET, SOCK_STREAM, 0);
	{
		struct hostport hp = s.peers[0];
		struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(hp.port),
					   .sin_addr.s_addr = htonl(0x7f000001) };
		CHECK(connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
		CHECK(write(fd, "\x56\x47\x01\x00garbage garbage garbage garbage garbage!", 44) == 44);
	}
	p1 = fork();
	if (p1 == 0)
		check_exit(child_exchange(&s, 1, 5, 10000));
	setup_close(&s);
	CHECK_EQ(wait_status(p0), 0);
	CHECK_EQ(wait_status(p1), 0);
	close(fd);
	(void)err;
}

/*
 * Strangers that connect and say nothing (a port scan, a stray nc) while the
 * mesh forms: each one's handshake times out on its own, and the real peer
 * is accepted meanwhile (one silent connection used to stall the acceptor
 * past the peer's own handshake timeout, failing the whole mesh).
 */
static void test_silent_strangers(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001) };
	struct setup s;
	int fds[3];
	pid_t p0, p1;

	setup_listen(&s, 2, 2);
	p0 = fork();
	if (p0 == 0)
		check_exit(child_exchange(&s, 0, 6, 15000));
	sin.sin_port = htons(s.peers[0].port);
	for (unsigned i = 0; i < 3; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		CHECK(connect(fds[i], (struct sockaddr *)&sin, sizeof(sin)) == 0);
	}
	usleep(200 * 1000); /* accepted by now: the real peer comes after them */
	p1 = fork();
	if (p1 == 0)
		check_exit(child_exchange(&s, 1, 6, 15000));
	setup_close(&s);
	CHECK_EQ(wait_status(p0), 0);
	CHECK_EQ(wait_status(p1), 0);
	for (unsigned i = 0; i < 3; i++)
		close(fds[i]);
}


/* ---- --integrity: sealed connections ---- */

/*
 * Child: open a mesh with or without integrity, then 50 rounds of messages
 * with payloads both ways on every connection, each checked.  With inject,
 * rank 1 then writes a well-formed frame with a guessed tag on channel 0,
 * and rank 0 must refuse it.
 */
static int child_sealed(struct setup *s, unsigned rank, bool integrity, bool inject,
			unsigned timeout_ms)
{
	struct mesh *m = child_mesh(s, rank, 99, timeout_ms, integrity);
	uint8_t out[512], in[512];
	struct wire_hdr h;
	char why[128];

	if (!m)
		return 10;
	for (unsigned p = 0; p < s->n; p++)
		for (unsigned c = 0; c < s->channels && p != rank; c++)
			if (!mesh_seal(m, p, c) != !integrity)
				return 13;
	for (unsigned round = 0; round < 50; round++) {
		for (unsigned p = 0; p < s->n; p++)
			for (unsigned c = 0; c < s->channels && p != rank; c++) {
				h = wire_hdr_make(0x300, rank, round * 10 % sizeof(out));
				h.arg[0] = round;
				memset(out, (int)(rank + round), sizeof(out));
				if (wire_send_sealed(mesh_fd(m, p, c), mesh_seal(m, p, c), &h, out))
					return 11;
			}
		for (unsigned p = 0; p < s->n; p++)
			for (unsigned c = 0; c < s->channels && p != rank; c++) {
				if (wire_recv_sealed(mesh_fd(m, p, c), mesh_seal(m, p, c), p, &h, in,
						     sizeof(in), why) ||
				    h.arg[0] != round || h.len != round * 10 % sizeof(in) ||
				    (h.len && in[h.len - 1] != (uint8_t)(p + round))) {
					fprintf(stderr, "rank %u: from %u channel %u: %s\n", rank, p,
						c, why);
					return 12;
				}
			}
	}
	if (inject && rank == 1) {
		uint8_t tag[SEAL_TAG_LEN] = { 0 };

		h = wire_hdr_make(0x300, 1, 0);
		if (wire_send(mesh_fd(m, 0, 0), &h, NULL) ||
		    write(mesh_fd(m, 0, 0), tag, sizeof(tag)) != sizeof(tag))
			return 11;
		/* Until rank 0 has judged it. */
		while (read(mesh_fd(m, 0, 0), in, sizeof(in)) > 0)
			;
	}
	if (inject && rank == 0) {
		bool refused = wire_recv_sealed(mesh_fd(m, 1, 0), mesh_seal(m, 1, 0), 1, &h, in,
						sizeof(in), why) != 0;

		if (!refused || !strstr(why, "fails its integrity check")) {
			fprintf(stderr, "rank 0: injected frame: %s\n", refused ? why : "taken");
			return 14;
		}
	}
	mesh_close(m);
	return 0;
}

static void test_integrity(void)
{
	struct setup s;
	pid_t pids[MAX];

	setup_listen(&s, 3, 2);
	for (unsigned r = 0; r < s.n; r++) {
		pids[r] = fork();
		if (pids[r] == 0)
			check_exit(child_sealed(&s, r, true, false, 10000));
	}
	setup_close(&s);
	for (unsigned r = 0; r < s.n; r++)
		CHECK_EQ(wait_status(pids[r]), 0);
}

static void test_integrity_injected(void)
{
	struct setup s;
	pid_t pids[2];

	setup_listen(&s, 2, 1);
	for (unsigned r = 0; r < s.n; r++) {
		pids[r] = fork();
		if (pids[r] == 0)
			check_exit(child_sealed(&s, r, true, true, 10000));
	}
	setup_close(&s);
	for (unsigned r = 0; r < s.n; r++)
		CHECK_EQ(wait_status(pids[r]), 0);
}

static FILE *stderr_to_file(void);
static bool logged(FILE *log, const char *what);

/*
 * One instance with --integrity, one without, each way round: no VM forms,
 * and the acceptor, which judges the claim, says why.
 */
static void test_integrity_mismatch(void)
{
	static const char *const why[2] = { "runs without --integrity and this node with it",
					    "runs with --integrity and this node without it" };

	for (unsigned with = 0; with < 2; with++) {
		FILE *log = stderr_to_file();
		struct setup s;
		pid_t pids[2];

		setup_listen(&s, 2, 1);
		for (unsigned r = 0; r < s.n; r++) {
			pids[r] = fork();
			if (pids[r] == 0) {
				dup2(fileno(log), 2);
				check_exit(child_sealed(&s, r, r == with, false, 1500));
			}
		}
		setup_close(&s);
		for (unsigned r = 0; r < s.n; r++)
			CHECK_EQ(wait_status(pids[r]), 10);
		CHECK(logged(log, why[with]));
		fclose(log);
	}
}

/*
 * A claim that carries a link secret must have come encrypted: one encoded
 * without a cipher (its secret readable on the wire) is refused by
 * auth_decode, and the same claim as auth_encode sends it is taken.
 */
static void test_integrity_secret_encrypted(void)
{
	const char *sock = getenv("GVM_MUNGE_SOCKET");
	struct auth_claim claim = { .vm_id = 5, .from = 1, .to = 0, .nr_nodes = 2,
				    .flags = AUTH_SEALED }, got;
	char err[AUTH_ERR_MAX] = "", *cred = NULL;
	munge_ctx_t ctx = munge_ctx_create();

	memset(claim.secret, 0x77, sizeof(claim.secret));
	CHECK(ctx && (!sock || munge_ctx_set(ctx, MUNGE_OPT_SOCKET, sock) == EMUNGE_SUCCESS));
	CHECK(munge_ctx_set(ctx, MUNGE_OPT_CIPHER_TYPE, MUNGE_CIPHER_NONE) == EMUNGE_SUCCESS);
	CHECK(munge_encode(&cred, ctx, &claim, sizeof(claim)) == EMUNGE_SUCCESS);
	munge_ctx_destroy(ctx);
	CHECK_EQ(auth_decode(sock, cred, getuid(), &got, err), -1);
	CHECK(strstr(err, "carries a link key but was not encrypted") != NULL);
	free(cred);

	cred = NULL;
	CHECK_EQ(auth_encode(sock, &claim, &cred, err), 0);
	CHECK_EQ(auth_decode(sock, cred, getuid(), &got, err), 0);
	CHECK(!memcmp(got.secret, claim.secret, sizeof(got.secret)) && got.flags == AUTH_SEALED);
	free(cred);
}

/* ---- handshakes that say the wrong thing ---- */

/* A child's stderr goes to a file, for the test to find the reason logged. */
static FILE *stderr_to_file(void)
{
	FILE *f = tmpfile();

	CHECK(f != NULL);
	fflush(stderr);
	return f;
}

static pid_t fork_logged(FILE *log, struct setup *s, unsigned rank, uint64_t vm_id,
			 unsigned timeout_ms)
{
	pid_t pid = fork();

	if (pid == 0) {
		dup2(fileno(log), 2);
		check_exit(child_exchange(s, rank, vm_id, timeout_ms));
	}
	return pid;
}

static bool logged(FILE *log, const char *what)
{
	char line[1024];
	bool found = false;

	rewind(log);
	while (!found && fgets(line, sizeof(line), log))
		found = strstr(line, what) != NULL;
	if (!found)
		fprintf(stderr, "not logged: \"%s\"\n", what);
	return found;
}

static int tcp_to(unsigned port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port),
				   .sin_addr.s_addr = htonl(0x7f000001) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	CHECK(connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
	return fd;
}

/* A connection to rank 0 and the challenge it opens with. */
static int stranger(unsigned port, uint8_t *challenge)
{
	char why[128];
	struct wire_hdr h;
	int fd = tcp_to(port);

	CHECK(wire_recv(fd, 0, &h, challenge, AUTH_NONCE_LEN, why) == 0 &&
	      h.type == MESH_CHALLENGE);
	return fd;
}

/* Send a hello of `type` carrying the text cred; true if rank 0 answers with its own. */
static bool hello_answered(int fd, uint16_t type, const char *cred)
{
	struct wire_hdr h = wire_hdr_make(type, 1, strlen(cred) + 1);
	char buf[4096], why[128];
	bool ok;

	CHECK(wire_send(fd, &h, cred) == 0);
	ok = !wire_recv(fd, 0, &h, buf, sizeof(buf), why) && h.type == MESH_HELLO_ACK;
	return ok;
}

/* A valid claim of rank 1 on channel ch of VM vm_id, answering challenge. */
static bool claim_answered(int fd, uint64_t vm_id, unsigned ch, const uint8_t *challenge)
{
	struct auth_claim claim = { .vm_id = vm_id, .from = 1, .to = 0, .channel = ch,
				    .nr_nodes = 2 };
	char *cred, err[AUTH_ERR_MAX];
	bool ok;

	memcpy(claim.challenge, challenge, AUTH_NONCE_LEN);
	CHECK(auth_encode(getenv("GVM_MUNGE_SOCKET"), &claim, &cred, err) == 0);
	ok = hello_answered(fd, MESH_HELLO, cred);
	free(cred);
	return ok;
}

/* child_exchange's part for rank 1, on an accepted connection. */
static void exchange_as_rank1(int fd, unsigned ch)
{
	struct wire_hdr h = wire_hdr_make(0x300, 1, 0), r;
	char why[128];

	h.arg[0] = 100 + ch;
	CHECK(wire_send(fd, &h, NULL) == 0);
	CHECK(wire_recv(fd, 0, &r, NULL, 0, why) == 0 && r.arg[0] == ch);
}

/*
 * Rank 0 refuses, each for its reason, hellos that munged does not verify,
 * that carry something else than a claim, that are not hellos, and a second
 * connection for a channel already connected; the test then completes the
 * mesh as rank 1 (a valid credential of this uid and VM is all rank 1 is).
 */
static void test_refused_hellos(void)
{
	uint8_t ch[AUTH_NONCE_LEN];
	FILE *log = stderr_to_file();
	char *cred, err[AUTH_ERR_MAX];
	struct setup s;
	munge_ctx_t ctx;
	int a, b, c, fd;
	pid_t p0;

	setup_listen(&s, 2, 2);
	p0 = fork_logged(log, &s, 0, 9, 15000);
	close(s.listen_fds[1]);

	fd = stranger(s.peers[0].port, ch);
	CHECK(!hello_answered(fd, MESH_HELLO, "MUNGE:not-a-credential:"));
	close(fd);

	/* munged signs it, but it is 5 bytes, not a claim */
	ctx = munge_ctx_create();
	CHECK(ctx && (!getenv("GVM_MUNGE_SOCKET") ||
		      munge_ctx_set(ctx, MUNGE_OPT_SOCKET, getenv("GVM_MUNGE_SOCKET")) == 0));
	CHECK(munge_encode(&cred, ctx, "hello", 5) == EMUNGE_SUCCESS);
	munge_ctx_destroy(ctx);
	fd = stranger(s.peers[0].port, ch);
	CHECK(!hello_answered(fd, MESH_HELLO, cred));
	close(fd);
	free(cred);

	fd = stranger(s.peers[0].port, ch);
	CHECK(!hello_answered(fd, MESH_HELLO_ACK, "a hello was due"));
	close(fd);

	a = stranger(s.peers[0].port, ch);
	CHECK(claim_answered(a, 9, 0, ch));
	b = stranger(s.peers[0].port, ch);
	CHECK(!claim_answered(b, 9, 0, ch));
	close(b);
	c = stranger(s.peers[0].port, ch);
	CHECK(claim_answered(c, 9, 1, ch));
	exchange_as_rank1(a, 0);
	exchange_as_rank1(c, 1);
	CHECK_EQ(wait_status(p0), 0);
	close(a);
	close(c);
	CHECK(logged(log, "munge credential refused"));
	CHECK(logged(log, "credential carries 5 bytes, not a giantvm claim"));
	CHECK(logged(log, "handshake: unexpected message type 0x2"));
	CHECK(logged(log, "rank 1 channel 0 is already connected"));
	fclose(log);
	(void)err;
}

/*
 * Rank 1's side: rank 0's port answers with something that is not a
 * challenge (fails at once, naming rank 0), or closes every connection at
 * once (asked again until the deadline), or resets each one right after its
 * challenge, so that rank 1's hello cannot be sent (asked again too; if
 * this process is held up between the challenge and the reset, the hello
 * goes out and the reset shows as the answer's end: expect_alt), or rank
 * 1's own munged cannot be reached (fails at once: asking again would not
 * help).
 */
enum answer { ANSWER_JUNK, ANSWER_CLOSE, ANSWER_CHALLENGE, ANSWER_RESET };

static void rank0_answers(enum answer how, const char *munge_socket, unsigned timeout_ms,
			  const char *expect, const char *expect_alt)
{
	struct hostport peers[2] = { { "127.0.0.1", 0 }, { "127.0.0.1", 0 } };
	struct mesh_config cfg = { .rank = 1, .nr_nodes = 2, .nr_channels = 1, .peers = peers,
				   .vm_id = 3, .munge_socket = munge_socket,
				   .timeout_ms = timeout_ms };
	char err[MESH_ERR_MAX] = "", junk[16] = "not a challenge";
	int lfd = mesh_listen(&peers[0], err), st, fd;
	struct mesh *m = NULL;
	pid_t pid;

	CHECK(lfd >= 0);
	peers[0].port = mesh_local_port(lfd);
	cfg.listen_fd = mesh_listen(&peers[1], err);
	pid = fork();
	if (pid == 0) {
		close(lfd);
		if (mesh_open(&cfg, &m, err) == 0)
			_exit(1);
		check_exit(strstr(err, expect) || (expect_alt && strstr(err, expect_alt))
				   ? 0 : (fprintf(stderr, "error: %s\n", err), 2));
	}
	close(cfg.listen_fd);
	/* Answer every connection until rank 1 gives up. */
	while (waitpid(pid, &st, WNOHANG) == 0) {
		struct pollfd p = { .fd = lfd, .events = POLLIN };
		struct wire_hdr h;
		uint8_t challenge[AUTH_NONCE_LEN] = { 0 };

		if (poll(&p, 1, 50) <= 0 || (fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0)
			continue;
		if (how == ANSWER_JUNK) {
			h = wire_hdr_make(0x300, 0, sizeof(junk));
			CHECK(wire_send(fd, &h, junk) == 0);
		} else if (how == ANSWER_CHALLENGE || how == ANSWER_RESET) {
			h = wire_hdr_make(MESH_CHALLENGE, 0, AUTH_NONCE_LEN);
			CHECK(wire_send(fd, &h, challenge) == 0);
		}
		if (how == ANSWER_RESET) {
			/* a reset: the challenge stays readable, the hello cannot be sent */
			struct linger now = { .l_onoff = 1, .l_linger = 0 };

			CHECK(setsockopt(fd, SOL_SOCKET, SO_LINGER, &now, sizeof(now)) == 0);
		} else if (how != ANSWER_CLOSE) {
			char buf[64];

			/* until rank 1 closes it */
			while (read(fd, buf, sizeof(buf)) > 0)
				;
		}
		close(fd);
	}
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(lfd);
}

static void test_handshake_answers(void)
{
	/* 1999 ms: the deadline's nanoseconds carry into its seconds */
	rank0_answers(ANSWER_JUNK, getenv("GVM_MUNGE_SOCKET"), 1999,
		      "failed the handshake: handshake: a message of type 0x300 and 16 bytes where "
		      "a challenge was due", NULL);
	rank0_answers(ANSWER_CLOSE, getenv("GVM_MUNGE_SOCKET"), 600,
		      "failed the handshake: handshake: connection closed by peer (gave up", NULL);
	rank0_answers(ANSWER_RESET, getenv("GVM_MUNGE_SOCKET"), 600,
		      "failed the handshake: sending the handshake: ",
		      "failed the handshake: handshake: connection closed by peer (gave up");
	rank0_answers(ANSWER_CHALLENGE, "/nonexistent/munge.socket", 10000,
		      "failed the handshake: munge: cannot encode a credential on "
		      "/nonexistent/munge.socket", NULL);
}

static void test_unreachable_peer(void)
{
	struct hostport peers[2] = { { "127.0.0.1", 1 }, { "127.0.0.1", 0 } };
	struct mesh_config cfg = { .rank = 1, .nr_nodes = 2, .nr_channels = 1, .peers = peers,
				   .vm_id = 1, .munge_socket = getenv("GVM_MUNGE_SOCKET"),
				   .timeout_ms = 1000 };
	char err[MESH_ERR_MAX] = "";
	struct mesh *m;

	cfg.listen_fd = mesh_listen(&peers[1], err);
	CHECK(cfg.listen_fd >= 0);
	CHECK(mesh_open(&cfg, &m, err) == -1);
	CHECK(strstr(err, "cannot reach rank 0 at 127.0.0.1:1") != NULL);
	CHECK(strstr(err, "refused") != NULL);

	/* a name that does not resolve says so, not "no route to host" */
	peers[0] = (struct hostport){ "nosuchhost.invalid", 1 };
	cfg.listen_fd = mesh_listen(&peers[1], err);
	CHECK(cfg.listen_fd >= 0);
	CHECK(mesh_open(&cfg, &m, err) == -1);
	CHECK(strstr(err, "cannot reach rank 0 at nosuchhost.invalid:1") != NULL);
	CHECK(strcasestr(err, "name") != NULL);
}

static void test_bad_config(void)
{
	struct hostport peers[1] = { { "127.0.0.1", 0 } };
	struct mesh_config cfg = { .rank = 1, .nr_nodes = 1, .nr_channels = 1, .peers = peers,
				   .listen_fd = -1 };
	char err[MESH_ERR_MAX] = "";
	struct mesh *m;

	CHECK(mesh_open(&cfg, &m, err) == -1 && strstr(err, "rank 1 of 1"));

	/* A listening socket handed over is closed on every path, this one included. */
	cfg.listen_fd = mesh_listen(&peers[0], err);
	CHECK(cfg.listen_fd >= 0);
	CHECK(mesh_open(&cfg, &m, err) == -1);
	CHECK(fcntl(cfg.listen_fd, F_GETFD) == -1 && errno == EBADF);
}

/* Listening sockets that cannot be had say why; the ones that can, where. */
static void test_listen(void)
{
	struct hostport any = { "", 0 }, hp = { "nosuchhost.invalid", 7000 };
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct mesh_config cfg = { .rank = 0, .nr_nodes = 1, .nr_channels = 1, .peers = &hp,
				   .listen_fd = -1 };
	char err[MESH_ERR_MAX] = "";
	struct mesh *m;
	int fd, fd2, port;

	CHECK(mesh_listen(&hp, err) == -1 && strstr(err, "cannot resolve nosuchhost.invalid"));
	/* a documentation address (RFC 5737): not one of this host's */
	hp = (struct hostport){ "192.0.2.1", 7000 };
	CHECK(mesh_listen(&hp, err) == -1 && strstr(err, "cannot listen on 192.0.2.1:7000"));
	/* mesh_open makes its own, and says so when it cannot */
	CHECK(mesh_open(&cfg, &m, err) == -1 && strstr(err, "cannot listen on 192.0.2.1:7000"));

	/* every address of this host, then the same port again */
	fd = mesh_listen(&any, err);
	CHECK(fd >= 0);
	port = mesh_local_port(fd);
	CHECK(port > 0);
	any.port = port;
	fd2 = mesh_listen(&any, err);
	CHECK(fd2 == -1 && strstr(err, "every address of this host") && strstr(err, "in use"));
	close(fd);

	/* a socket that is not the network's has no port */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	CHECK(bind(fd, (struct sockaddr *)&sun, sizeof(sa_family_t)) == 0);
	CHECK_EQ(mesh_local_port(fd), -1);
	close(fd);
}

/*
 * Rank 1 has connected to rank 0 and waits for rank 2, which never comes
 * (on a cluster: it is stuck trying to reach rank 0).  Rank 0 is killed:
 * rank 1 must name rank 0 at once, beside rank 2, not only rank 2 when
 * its time runs out.  (Rank 0 may also have given up on rank 2 itself:
 * that is why both are named.)
 */
static void tell_connected(void *arg, unsigned done, unsigned total)
{
	(void)total;
	if (done == 2 && write(*(int *)arg, "c", 1) != 1)
		_exit(20);
}

static void test_lower_rank_dies(void)
{
	struct setup s;
	int pipefd[2];
	pid_t r0, r1;
	FILE *log = stderr_to_file();
	char c, want[96];

	setup_listen(&s, 3, 2);
	CHECK(pipe(pipefd) == 0);
	r0 = fork();
	if (r0 == 0)
		check_exit(child_mesh(&s, 0, 5, 60000, false) ? 0 : 10);
	r1 = fork();
	if (r1 == 0) {
		struct mesh_config cfg = {
			.rank = 1, .nr_nodes = 3, .nr_channels = 2, .peers = s.peers,
			.listen_fd = s.listen_fds[1], .vm_id = 5,
			.munge_socket = getenv("GVM_MUNGE_SOCKET"), .timeout_ms = 8000,
			.progress = tell_connected, .progress_arg = &pipefd[1],
		};
		char err[MESH_ERR_MAX];
		struct mesh *m;

		dup2(fileno(log), 2);
		close(s.listen_fds[0]);
		close(s.listen_fds[2]);
		if (mesh_open(&cfg, &m, err) == 0)
			check_exit(11);
		fprintf(stderr, "rank 1: %s\n", err);
		check_exit(12);
	}
	setup_close(&s);
	close(pipefd[1]);
	/* Both of rank 1's connections to rank 0 are up (or rank 1 failed: EOF). */
	CHECK_EQ(read(pipefd[0], &c, 1), 1);
	close(pipefd[0]);
	kill(r0, SIGKILL);
	CHECK_EQ(wait_status(r0), 128 + SIGKILL);
	CHECK_EQ(wait_status(r1), 12);
	snprintf(want, sizeof(want), "rank 0 (127.0.0.1:%u) closed its connection",
		 s.peers[0].port);
	CHECK(logged(log, want));
	snprintf(want, sizeof(want), "rank 2 (127.0.0.1:%u) had not connected", s.peers[2].port);
	CHECK(logged(log, want));
	fclose(log);
}

/* A mesh of one: nothing to connect; its accessors refuse what is not in it. */
static void progress(void *arg, unsigned done, unsigned total)
{
	*(unsigned *)arg = done + 1 + total;
}

static void test_accessors(void)
{
	struct hostport self = { "127.0.0.1", 0 };
	unsigned called = 0;
	struct mesh_config cfg = { .rank = 0, .nr_nodes = 1, .nr_channels = 2, .peers = &self,
				   .listen_fd = -1, .progress = progress, .progress_arg = &called };
	char err[MESH_ERR_MAX], name[64];
	struct mesh *m;

	CHECK(mesh_open(&cfg, &m, err) == 0);
	CHECK_EQ(called, 1); /* 0 of 0 connections, reported once */
	CHECK_EQ(mesh_fd(m, 1, 0), -1);
	CHECK_EQ(mesh_fd(m, 0, 2), -1);
	CHECK(mesh_seal(m, 1, 0) == NULL && mesh_seal(m, 0, 2) == NULL);
	CHECK(mesh_peer(m, 1) == NULL);
	CHECK_STR(mesh_peer_name(m, 3, name, sizeof(name)), "rank 3");
	CHECK_STR(mesh_peer_name(m, 0, name, sizeof(name)), "rank 0 (127.0.0.1:0)");
	mesh_close(m);
	mesh_close(NULL);
}

int main(void)
{
	log_init("test-mesh");
	RUN(test_full_mesh);
	RUN(test_other_vm_refused);
	RUN(test_garbage_then_real_peer);
	RUN(test_silent_strangers);
	RUN(test_refused_hellos);
	RUN(test_handshake_answers);
	RUN(test_unreachable_peer);
	RUN(test_lower_rank_dies);
	RUN(test_bad_config);
	RUN(test_listen);
	RUN(test_accessors);
	RUN(test_integrity);
	RUN(test_integrity_injected);
	RUN(test_integrity_mismatch);
	RUN(test_integrity_secret_encrypted);
	return check_summary();
}
