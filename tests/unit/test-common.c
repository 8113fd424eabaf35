/* common/: the parsers, the wire framing and whole writes. */
#include <ctype.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cpio.h"
#include "common/fdio.h"
#include "common/log.h"
#include "common/parse.h"
#include "common/seal.h"
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
	CHECK(parse_hostport("", &hp, err) == -1 && strstr(err, "empty address"));
	CHECK(parse_hostport(NULL, &hp, err) == -1 && strstr(err, "empty address"));
	/* an IPv6 literal must be followed by its port at once */
	CHECK(parse_hostport("[::1]80", &hp, err) == -1 && strstr(err, "is not [address]:port"));
	CHECK(parse_hostport("[::1:80", &hp, err) == -1 && strstr(err, "is not [address]:port"));
	CHECK(parse_hostport("[]:80", &hp, err) == -1 && strstr(err, "empty or too long host"));
}

/* Providers are passed on to libfabric as they are: nothing that could split or end one. */
static void test_parse_transport(void)
{
	char err[PARSE_ERR_MAX] = "";

	CHECK(parse_transport("tcp", err) == 0);
	CHECK(parse_transport("fabric", err) == 0);
	CHECK(parse_transport("fabric:tcp;ofi_rxm", err) == 0);
	CHECK(parse_transport("fabric:", err) == -1 && strstr(err, "'fabric:' is not tcp, fabric"));
	CHECK(parse_transport("udp", err) == -1);
	CHECK(parse_transport("fabric:a b", err) == -1 && strstr(err, "'fabric:a b'"));
	CHECK(parse_transport("fabric:verbs,tcp", err) == -1);
	CHECK(parse_transport("fabric:\x7f", err) == -1);
}

static void test_parse_uint_list(void)
{
	char err[PARSE_ERR_MAX] = "", big[5000];
	unsigned v[8], n;

	CHECK(parse_uint_list("0,2,4-6", 7, v, 8, &n, err) == 0);
	CHECK(n == 5 && v[0] == 0 && v[1] == 2 && v[2] == 4 && v[4] == 6);
	CHECK(parse_uint_list("", 7, v, 8, &n, err) == -1 &&
	      strcmp(err, "an empty list of numbers") == 0);
	/* longer than the parser's copy: refused, not cut short, and the message says why */
	memset(big, '1', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK(parse_uint_list(big, 7, v, 8, &n, err) == -1 &&
	      !strncmp(err, "a list of numbers of 4999 characters (at most 4095): '1111", 57) &&
	      strlen(err) < 120);
	CHECK(parse_uint_list(",,", 7, v, 8, &n, err) == -1 && strstr(err, "',,' lists no number"));
	CHECK(parse_uint_list("0-8", 7, v, 8, &n, err) == -1 && strstr(err, "out of range"));
	CHECK(parse_uint_list("5-3", 7, v, 8, &n, err) == -1 && strstr(err, "out of range"));
	CHECK(parse_uint_list("0-7,1", 7, v, 8, &n, err) == -1 &&
	      strstr(err, "more than 8 numbers"));
}

/* appendf: once the buffer is full, what follows is dropped and the length stays past its end. */
static void test_appendf(void)
{
	char buf[8];
	size_t used = appendf(buf, sizeof(buf), 0, "%s", "abcdef");

	CHECK_EQ(used, 6);
	used = appendf(buf, sizeof(buf), used, "%d", 1234);
	CHECK_EQ(used, 10);
	CHECK_STR(buf, "abcdef1");
	CHECK_EQ(appendf(buf, sizeof(buf), used, "%s", "more"), 10);
	CHECK_STR(buf, "abcdef1");
}

/* ---- cpio: an archive in memory ---- */

struct mem {
	char buf[16384];
	size_t len, at;
	size_t fail_at; /* the sink fails a write that would reach past this (0: never) */
	bool read_error;
};

static int mem_sink(void *arg, const void *buf, size_t len)
{
	struct mem *m = arg;

	if ((m->fail_at && m->len + len > m->fail_at) || m->len + len > sizeof(m->buf)) {
		errno = ENOSPC;
		return -1;
	}
	memcpy(m->buf + m->len, buf, len);
	m->len += len;
	return 0;
}

/* Hands out at most 7 bytes at a time, so that reads come in pieces. */
static long mem_source(void *arg, void *buf, size_t len)
{
	struct mem *m = arg;
	size_t n = m->len - m->at;

	if (m->read_error && m->at >= 128) {
		errno = EIO;
		return -1;
	}
	if (n > len)
		n = len;
	if (n > 7)
		n = 7;
	memcpy(buf, m->buf + m->at, n);
	m->at += n;
	return (long)n;
}

/* An entry written in parts (header, data in two pieces, end) reads back as one. */
static void test_cpio_write_parts(void)
{
	static struct mem m;
	struct cpio_writer w;
	struct cpio_reader r;
	struct cpio_entry e;
	char err[CPIO_ERR_MAX] = "", data[16];

	memset(&m, 0, sizeof(m));
	cpio_writer_init(&w, mem_sink, &m);
	CHECK(cpio_write_header(&w, "out/result", 0100644, 11) == 0);
	CHECK(cpio_write_data(&w, "hello ", 6) == 0);
	CHECK(cpio_write_data(&w, "world", 5) == 0);
	CHECK(cpio_write_end(&w) == 0);
	CHECK(cpio_write_trailer(&w) == 0);
	CHECK_EQ(m.len, cpio_entry_size("out/result", 11) + cpio_trailer_size());
	CHECK_EQ(m.len % 4, 0);

	cpio_reader_init(&r, mem_source, &m);
	CHECK_EQ(cpio_read_header(&r, &e, err), 1);
	CHECK_STR(e.name, "out/result");
	CHECK(e.mode == 0100644 && e.size == 11);
	CHECK_EQ(cpio_read_data(&r, data, sizeof(data), err), 11);
	CHECK(!memcmp(data, "hello world", 11));
	CHECK_EQ(cpio_read_data(&r, data, sizeof(data), err), 0);
	CHECK_EQ(cpio_read_header(&r, &e, err), 0);
}

/* A sink that fails at any point fails the write that reached it; too large an entry is EFBIG. */
static void test_cpio_write_errors(void)
{
	static struct mem m;
	struct cpio_writer w;
	char name[CPIO_NAME_MAX + 1];

	memset(&m, 0, sizeof(m));
	cpio_writer_init(&w, mem_sink, &m);
	errno = 0;
	CHECK(cpio_write_header(&w, "big", 0100644, CPIO_FILE_MAX + 1) == -1 && errno == EFBIG);
	memset(name, 'n', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	errno = 0;
	CHECK(cpio_write_header(&w, name, 0100644, 0) == -1 && errno == EFBIG);
	CHECK_EQ(m.len, 0);

	/* in the header itself */
	m.fail_at = 50;
	CHECK(cpio_write_header(&w, "a", 0100644, 1) == -1 && errno == ENOSPC);
	/* in the data of an entry */
	memset(&m, 0, sizeof(m));
	cpio_writer_init(&w, mem_sink, &m);
	m.fail_at = cpio_entry_size("a", 0) + 2;
	CHECK(cpio_write_entry(&w, "a", 0100644, "xyz", 3) == -1 && errno == ENOSPC);
	/* in the padding after the data */
	memset(&m, 0, sizeof(m));
	cpio_writer_init(&w, mem_sink, &m);
	m.fail_at = cpio_entry_size("a", 0) + 3;
	CHECK(cpio_write_entry(&w, "a", 0100644, "xyz", 3) == -1);
	CHECK(cpio_write_data(&w, "", 0) == 0); /* an empty write does not reach the failing sink */
}

/* What the reader says of an archive cut or altered at `what`. */
static int cpio_read_altered(struct mem *m, char *err)
{
	struct cpio_reader r;
	struct cpio_entry e;

	m->at = 0;
	cpio_reader_init(&r, mem_source, m);
	return cpio_read_header(&r, &e, err);
}

/*
 * The reader takes lower-case hex digits (newc allows both) and refuses a
 * header with anything else, an archive cut inside a name or its padding,
 * and a source that fails, each said with where.
 */
static void test_cpio_read_errors(void)
{
	static struct mem m;
	struct cpio_writer w;
	struct cpio_entry e;
	struct cpio_reader r;
	char err[CPIO_ERR_MAX] = "";

	memset(&m, 0, sizeof(m));
	cpio_writer_init(&w, mem_sink, &m);
	CHECK(cpio_write_entry(&w, "dir/name", 0100755, "0123456789abcdef0123456789", 26) == 0);
	CHECK(cpio_write_trailer(&w) == 0);

	for (unsigned i = 6; i < CPIO_HEADER_SIZE; i++)
		m.buf[i] = (char)tolower((unsigned char)m.buf[i]);
	CHECK_EQ(cpio_read_altered(&m, err), 1);
	{
		char was = m.buf[20]; /* in the mode field */

		m.buf[20] = 'g';
		CHECK_EQ(cpio_read_altered(&m, err), -1);
		CHECK_STR(err, "no valid newc cpio header at byte 0");
		m.buf[20] = was;
	}
	m.buf[5] = '7';
	CHECK_EQ(cpio_read_altered(&m, err), -1);
	CHECK_STR(err, "no valid newc cpio header at byte 0");
	m.buf[5] = '1';

	/* cut in the name, then in the padding after it (110 + 9 bytes: 1 of padding) */
	{
		size_t len = m.len;

		m.len = CPIO_HEADER_SIZE + 4;
		CHECK_EQ(cpio_read_altered(&m, err), -1);
		CHECK(strstr(err, "the archive ends at byte 114") != NULL);
		m.len = CPIO_HEADER_SIZE + 9;
		CHECK_EQ(cpio_read_altered(&m, err), -1);
		CHECK(strstr(err, "the archive ends at byte 119") != NULL);
		m.len = len;
	}

	/* the source fails in the data */
	m.at = 0;
	m.read_error = true;
	cpio_reader_init(&r, mem_source, &m);
	CHECK_EQ(cpio_read_header(&r, &e, err), 1);
	CHECK_EQ(cpio_read_data(&r, m.buf + 8192, 26, err), -1);
	CHECK(strstr(err, "read error at byte ") && strstr(err, strerror(EIO)));
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

/*
 * A frame whose payload or tag does not come in time, or at all: the
 * reason names the part missing, and the system's word for why.
 */
static void test_wire_missing_parts(void)
{
	struct timeval tv = { .tv_usec = 50 * 1000 };
	uint8_t secret[SEAL_SECRET_LEN] = { 1 };
	char buf[64], why[128] = "", err[SEAL_ERR_MAX];
	struct wire_hdr h = wire_hdr_make(0x107, 1, 8), r;
	struct seal *seal = seal_new(secret, secret, false, 1, 0, err);
	int sv[2];

	CHECK(seal != NULL);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	CHECK(setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0);
	CHECK(wire_write_full(sv[0], &h, sizeof(h)) == 0);
	CHECK(wire_write_full(sv[0], "1234", 4) == 0);
	CHECK(wire_recv(sv[1], 1, &r, buf, sizeof(buf), why) == -1);
	CHECK_STR(why, "payload: Resource temporarily unavailable");

	/* a sealed frame without its tag */
	close(sv[0]);
	close(sv[1]);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	CHECK(wire_send(sv[0], &h, "12345678") == 0);
	CHECK(wire_write_full(sv[0], "tag", 3) == 0);
	CHECK(setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0);
	CHECK(wire_recv_sealed(sv[1], seal, 1, &r, buf, sizeof(buf), why) == -1);
	CHECK_STR(why, "tag: Resource temporarily unavailable");
	close(sv[0]);
	CHECK(wire_send(sv[1], &h, "12345678") == -EPIPE);
	close(sv[1]);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	CHECK(wire_send(sv[0], &h, "12345678") == 0);
	close(sv[0]);
	CHECK(wire_recv_sealed(sv[1], seal, 1, &r, buf, sizeof(buf), why) == -1);
	CHECK_STR(why, "tag: connection closed by peer");
	close(sv[1]);
	seal_free(seal);
}

/*
 * Signals that interrupt a blocked read or write (SIGALRM here, without
 * SA_RESTART, every 5 ms) cost no byte: every loop picks up where it was.
 * The peer, a child, starts reading (or writing) only after 100 ms.
 */
static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

/* The child's end: after 100 ms, read len bytes and compare them with expect, or write them. */
static pid_t slow_peer(int fd, const char *expect, size_t len, bool write_them)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		static char buf[1 << 20];

		usleep(100 * 1000);
		if (write_them)
			check_exit(fd_write_all(fd, expect, len) ? 1 : 0);
		for (size_t got = 0; got < len;) {
			ssize_t n = read(fd, buf + got, len - got);

			if (n <= 0)
				check_exit(2);
			got += n;
		}
		check_exit(memcmp(buf, expect, len) ? 3 : 0);
	}
	return pid;
}

static bool exited_0(pid_t pid)
{
	pid_t r;
	int st;

	while ((r = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
		;
	return r == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static void test_interrupted_io(void)
{
	struct sigaction sa = { .sa_handler = on_alarm }, old;
	struct itimerval every = { { 0, 5000 }, { 0, 5000 } }, off = { { 0, 0 }, { 0, 0 } };
	static char big[1 << 20];
	struct wire_hdr h = wire_hdr_make(0x108, 0, sizeof(big) - sizeof(h));
	char got[4096];
	int p[2], sv[2];
	pid_t pid;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (char)(i * 13);
	CHECK(sigaction(SIGALRM, &sa, &old) == 0);
	CHECK(setitimer(ITIMER_REAL, &every, NULL) == 0);

	/* fd_write_all into a pipe much smaller than what it writes */
	CHECK(pipe(p) == 0);
	pid = slow_peer(p[0], big, 256 << 10, false);
	close(p[0]);
	CHECK(fd_write_all(p[1], big, 256 << 10) == 0);
	close(p[1]);
	CHECK(exited_0(pid));

	/* wire_write_full; then wire_send, one sendmsg for the frame */
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	pid = slow_peer(sv[1], big, sizeof(big), false);
	CHECK(wire_write_full(sv[0], big, sizeof(big)) == 0);
	CHECK(exited_0(pid));
	memcpy(big, &h, sizeof(h));
	pid = slow_peer(sv[1], big, sizeof(big), false);
	CHECK(wire_send(sv[0], &h, big + sizeof(h)) == 0);
	CHECK(exited_0(pid));
	close(sv[0]);
	close(sv[1]);

	/* wire_read_full, waiting for a writer that comes late */
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	pid = slow_peer(sv[1], big + 4096, sizeof(got), true);
	CHECK(wire_read_full(sv[0], got, sizeof(got)) == 0);
	CHECK(!memcmp(got, big + 4096, sizeof(got)));
	CHECK(exited_0(pid));
	close(sv[0]);
	close(sv[1]);

	CHECK(setitimer(ITIMER_REAL, &off, NULL) == 0);
	CHECK(sigaction(SIGALRM, &old, NULL) == 0);
	CHECK(alarms > 0);
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

static void logs_below_level(void)
{
	log_init("/usr/bin/gvm-test");
	log_set_level(LOG_WARN);
	pr_info("not shown");
	pr_warn("shown");
	exit(0);
}

/* A program name too long for the line still lets the message through. */
static void logs_long_name(void)
{
	static char name[1200];

	memset(name, 'p', sizeof(name) - 1);
	log_init(name);
	pr_warn("the message");
	exit(0);
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
	CHECK_EQ(child_says(logs_below_level, buf, sizeof(buf)), 0);
	CHECK_STR(buf, "gvm-test: warning: shown\n");
	CHECK_EQ(child_says(logs_long_name, buf, sizeof(buf)), 0);
	CHECK_STR(buf, "the message\n");
}

int main(void)
{
	RUN(test_parse_size);
	RUN(test_parse_uint);
	RUN(test_parse_hostport);
	RUN(test_parse_transport);
	RUN(test_parse_uint_list);
	RUN(test_appendf);
	RUN(test_cpio_write_parts);
	RUN(test_cpio_write_errors);
	RUN(test_cpio_read_errors);
	RUN(test_wire_roundtrip);
	RUN(test_wire_rejects_malformed);
	RUN(test_wire_partial_frames);
	RUN(test_wire_timeouts);
	RUN(test_wire_missing_parts);
	RUN(test_interrupted_io);
	RUN(test_fd_write_all);
	RUN(test_log);
	return check_summary();
}
