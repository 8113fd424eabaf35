/* common/: the parsers, the wire framing and whole writes. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/fdio.h"
#include "common/log.h"
#include "common/parse.h"
#include "common/wire.h"
#include "tests/lib/check.h"

static void test_parse_size(void)
{
	char err[PARSE_ERR_MAX];
	uint64_t v;

	CHECK(parse_size("4096", &v, err) == 0 && v == 4096);
	CHECK(parse_size("64M", &v, err) == 0 && v == 64ull << 20);
	CHECK(parse_size("2GiB", &v, err) == 0 && v == 2ull << 30);
	CHECK(parse_size("1t", &v, err) == 0 && v == 1ull << 40);
	CHECK(parse_size("12X", &v, err) == -1 && strstr(err, "'12X'"));
	CHECK(parse_size("-1", &v, err) == -1);
	CHECK(parse_size("", &v, err) == -1);
	CHECK(parse_size("99999999999999999999", &v, err) == -1);
	CHECK(parse_size("17179869184G", &v, err) == -1 && strstr(err, "too large"));
}

static void test_parse_uint(void)
{
	char err[PARSE_ERR_MAX];
	unsigned v;

	CHECK(parse_uint("7", 1, 8, &v, err) == 0 && v == 7);
	CHECK(parse_uint("9", 1, 8, &v, err) == -1 && strstr(err, "out of range"));
	CHECK(parse_uint("0", 1, 8, &v, err) == -1);
	CHECK(parse_uint("3x", 1, 8, &v, err) == -1 && strstr(err, "not a number"));
	CHECK(parse_uint(" 3", 1, 8, &v, err) == -1);
}

static void test_parse_hostport(void)
{
	char err[PARSE_ERR_MAX];
	struct hostport hp, *list;
	int n;

	CHECK(parse_hostport("node1:7000", &hp, err) == 0);
	CHECK_STR(hp.host, "node1");
	CHECK_EQ(hp.port, 7000);
	CHECK(parse_hostport("[::1]:80", &hp, err) == 0);
	CHECK_STR(hp.host, "::1");
	CHECK(parse_hostport("node1", &hp, err) == -1 && strstr(err, "no port"));
	CHECK(parse_hostport("node1:0", &hp, err) == -1);
	CHECK(parse_hostport("node1:65536", &hp, err) == -1);
	CHECK(parse_hostport(":80", &hp, err) == -1);
	n = parse_hostport_list("a:1,b:2,c:3", &list, err);
	CHECK_EQ(n, 3);
	if (n == 3) {
		CHECK_STR(list[2].host, "c");
		CHECK_EQ(list[1].port, 2);
		free(list);
	}
	CHECK(parse_hostport_list("a:1,,b", &list, err) == -1);
	CHECK(parse_hostport_list("", &list, err) == -1);
}

static void test_wire_roundtrip(void)
{
	char payload[5000], buf[8192], why[128];
	struct wire_hdr h, r;
	int sv[2];

	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (char)(i * 7);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	h = wire_hdr_make(0x105, 3, sizeof(payload));
	h.seq = 42;
	h.arg[1] = 0xdeadbeef;
	CHECK(wire_send(sv[0], &h, payload) == 0);
	h = wire_hdr_make(0x106, 3, 0);
	CHECK(wire_send(sv[0], &h, NULL) == 0);
	CHECK(wire_recv(sv[1], 3, &r, buf, sizeof(buf), why) == 0);
	CHECK_EQ(r.type, 0x105);
	CHECK_EQ(r.seq, 42);
	CHECK_EQ(r.arg[1], 0xdeadbeef);
	CHECK(memcmp(buf, payload, sizeof(payload)) == 0);
	CHECK(wire_recv(sv[1], 3, &r, buf, sizeof(buf), why) == 0);
	CHECK_EQ(r.type, 0x106);
	CHECK_EQ(r.len, 0);
	close(sv[0]);
	CHECK(wire_recv(sv[1], 3, &r, buf, sizeof(buf), why) == -1);
	CHECK(strstr(why, "closed") != NULL);
	close(sv[1]);
}

static void test_wire_rejects_malformed(void)
{
	char buf[64], why[128];
	struct wire_hdr h, r;
	int sv[2];

	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	/* garbage */
	CHECK(write(sv[0], "GET / HTTP/1.1\r\nHost: x\r\n\r\nxxxxxxxxxxxxxx", 40) == 40);
	CHECK(wire_recv(sv[1], -1, &r, buf, sizeof(buf), why) == -1);
	CHECK(strstr(why, "malformed") != NULL);
	/* a length larger than the receiver allows */
	h = wire_hdr_make(0x100, 0, 65);
	CHECK(write(sv[0], &h, sizeof(h)) == sizeof(h));
	CHECK(wire_recv(sv[1], -1, &r, buf, sizeof(buf), why) == -1);
	CHECK(strstr(why, "65 bytes") != NULL);
	/* a sender lying about its rank */
	h = wire_hdr_make(0x100, 5, 0);
	CHECK(write(sv[0], &h, sizeof(h)) == sizeof(h));
	CHECK(wire_recv(sv[1], 2, &r, buf, sizeof(buf), why) == -1);
	CHECK(strstr(why, "rank 5") != NULL);
	close(sv[0]);
	close(sv[1]);
}

/*
 * Partial frames: a header sent in two pieces is one frame; a peer that
 * closes after the header, before the payload it announced, is a closed
 * connection, not a frame; a header without its payload is refused by the
 * sender itself.
 */
static void test_wire_partial_frames(void)
{
	char buf[64], why[128] = "";
	struct wire_hdr h = wire_hdr_make(0x107, 1, 8), r;
	int sv[2];

	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	CHECK(wire_write_full(sv[0], &h, 13) == 0);
	CHECK(wire_write_full(sv[0], (char *)&h + 13, sizeof(h) - 13) == 0);
	CHECK(wire_write_full(sv[0], "12345678", 8) == 0);
	CHECK(wire_recv(sv[1], 1, &r, buf, sizeof(buf), why) == 0);
	CHECK(r.type == 0x107 && r.len == 8 && !memcmp(buf, "12345678", 8));

	CHECK(wire_send(sv[0], &h, NULL) == -EINVAL);
	CHECK(wire_write_full(sv[0], &h, sizeof(h)) == 0);
	CHECK(wire_write_full(sv[0], "1234", 4) == 0);
	close(sv[0]);
	CHECK(wire_recv(sv[1], 1, &r, buf, sizeof(buf), why) == -1);
	CHECK_STR(why, "payload: connection closed by peer");
	close(sv[1]);

	/* A write to a connection its peer closed fails with the reason. */
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	close(sv[1]);
	CHECK(wire_write_full(sv[0], &h, sizeof(h)) == -EPIPE);
	close(sv[0]);
}

/*
 * Time limits: a receive timeout that runs out says so (the mesh's
 * handshake relies on it); a send that times out on a full socket, part of
 * the frame taken, reports the failure rather than a frame sent.
 */
static void test_wire_timeouts(void)
{
	struct timeval tv = { .tv_usec = 50 * 1000 };
	static char big[1 << 20];
	char why[128] = "";
	struct wire_hdr h = wire_hdr_make(0x105, 0, sizeof(big)), r;
	int sv[2], sndbuf = 4096;

	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	CHECK(setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0);
	CHECK(wire_recv(sv[1], -1, &r, NULL, 0, why) == -1);
	CHECK_STR(why, "no answer within the time allowed");

	CHECK(setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) == 0);
	CHECK(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)) == 0);
	CHECK(wire_send(sv[0], &h, big) == -EAGAIN);
	close(sv[0]);
	close(sv[1]);
}

/* fd_write_all: every byte, or -1 with the reason in errno. */
static void test_fd_write_all(void)
{
	char buf[8] = "";
	int p[2];

	CHECK(pipe(p) == 0);
	CHECK(fd_write_all(p[1], "abcdefg", 8) == 0);
	CHECK(read(p[0], buf, sizeof(buf)) == 8 && !strcmp(buf, "abcdefg"));
	close(p[0]);
	signal(SIGPIPE, SIG_IGN);
	errno = 0;
	CHECK(fd_write_all(p[1], "x", 1) == -1 && errno == EPIPE);
	close(p[1]);
}

/* What a child writes on stderr (up to len bytes) and its exit status. */
static int child_says(void (*fn)(void), char *buf, size_t len)
{
	int p[2], st;
	ssize_t n;
	pid_t pid;

	CHECK(pipe(p) == 0);
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		dup2(p[1], 2);
		fn();
		_exit(99);
	}
	close(p[1]);
	n = read(p[0], buf, len - 1);
	buf[n > 0 ? n : 0] = '\0';
	close(p[0]);
	CHECK(waitpid(pid, &st, 0) == pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void dies(void)
{
	log_init("/usr/bin/gvm-test");
	die("cannot go on: %d", 7);
}

static void dies_of_errno(void)
{
	errno = ENOENT;
	die_perror("opening %s", "x");
}

/* GVM_LOG picks the level; die and die_perror say why (with errno's text) and exit 1. */
static void test_log(void)
{
	char buf[256];

	setenv("GVM_LOG", "debug", 1);
	log_init(NULL);
	CHECK(log_enabled(LOG_DEBUG));
	setenv("GVM_LOG", "warn", 1);
	log_init(NULL);
	CHECK(!log_enabled(LOG_INFO) && log_enabled(LOG_WARN));
	unsetenv("GVM_LOG");
	log_set_level(LOG_INFO);
	CHECK_EQ(child_says(dies, buf, sizeof(buf)), 1);
	CHECK_STR(buf, "gvm-test: error: cannot go on: 7\n");
	CHECK_EQ(child_says(dies_of_errno, buf, sizeof(buf)), 1);
	CHECK(strstr(buf, "error: opening x: No such file or directory\n") != NULL);
}

int main(void)
{
	RUN(test_parse_size);
	RUN(test_parse_uint);
	RUN(test_parse_hostport);
	RUN(test_wire_roundtrip);
	RUN(test_wire_rejects_malformed);
	RUN(test_wire_partial_frames);
	RUN(test_wire_timeouts);
	RUN(test_fd_write_all);
	RUN(test_log);
	return check_summary();
}
