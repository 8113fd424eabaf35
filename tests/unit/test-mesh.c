/*
 * common/mesh.c with real processes over loopback and a real munged:
 * a full mesh forms and carries messages; peers of another VM, garbage on
 * the port and unreachable peers are refused with a reason.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/mesh.h"
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

/* Child: open the mesh, then exchange one message on every connection. */
static int child_exchange(struct setup *s, unsigned rank, uint64_t vm_id, unsigned timeout_ms)
{
	struct mesh_config cfg = {
		.rank = rank, .nr_nodes = s->n, .nr_channels = s->channels, .peers = s->peers,
		.listen_fd = s->listen_fds[rank], .vm_id = vm_id,
		.munge_socket = getenv("GVM_MUNGE_SOCKET"), .timeout_ms = timeout_ms,
	};
	char err[MESH_ERR_MAX], why[128];
	struct mesh *m;

	for (unsigned i = 0; i < s->n; i++)
		if (i != rank)
			close(s->listen_fds[i]);
	if (mesh_open(&cfg, &m, err)) {
		fprintf(stderr, "rank %u: %s\n", rank, err);
		return 10;
	}
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
			_exit(child_exchange(&s, r, 77, 10000));
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
		_exit(child_exchange(&s, 0, 1, 1500));
	p1 = fork();
	if (p1 == 0)
		_exit(child_exchange(&s, 1, 2, 1500));
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
		_exit(child_exchange(&s, 0, 5, 10000));
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
		_exit(child_exchange(&s, 1, 5, 10000));
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
		_exit(child_exchange(&s, 0, 6, 15000));
	sin.sin_port = htons(s.peers[0].port);
	for (unsigned i = 0; i < 3; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		CHECK(connect(fds[i], (struct sockaddr *)&sin, sizeof(sin)) == 0);
	}
	usleep(200 * 1000); /* accepted by now: the real peer comes after them */
	p1 = fork();
	if (p1 == 0)
		_exit(child_exchange(&s, 1, 6, 15000));
	setup_close(&s);
	CHECK_EQ(wait_status(p0), 0);
	CHECK_EQ(wait_status(p1), 0);
	for (unsigned i = 0; i < 3; i++)
		close(fds[i]);
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

int main(void)
{
	log_init("test-mesh");
	RUN(test_full_mesh);
	RUN(test_other_vm_refused);
	RUN(test_garbage_then_real_peer);
	RUN(test_silent_strangers);
	RUN(test_unreachable_peer);
	RUN(test_bad_config);
	return check_summary();
}
