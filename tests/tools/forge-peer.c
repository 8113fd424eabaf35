/*
 * forge-peer: connect to a gvm instance as if it were one of its peers and
 * present a munge credential of our choosing, to test that the instance
 * refuses what it must refuse.
 *
 *   forge-peer --to HOST:PORT --vm-id ID --rank R --nodes N [--target T]
 *              [--channels C] [--uid USER] [--hold SECONDS] [--send CH:TYPE:A0:A1:A2[:TEXT]]...
 *              [--gap MS] [--replay]
 *              --expect refused|accepted
 *
 * The claim says: VM ID, from rank R, to rank T (default 0), N nodes, one
 * connection per channel 0..C-1 (default 1).  --uid: become USER (by name
 * or number) before encoding, so munged signs for that uid (needs root).
 * Each connection speaks the mesh's handshake (common/mesh.h): it reads the
 * instance's challenge, sends a hello whose credential answers it, and waits
 * for the instance's answer: its own hello back (accepted) or the connection
 * closed (refused).  --replay: the credential answers the challenge of
 * another connection, opened just before and left waiting, as a credential
 * read off the network and presented elsewhere would.  With --hold, accepted connections stay open
 * that long, holding their slots, then close.  --send: once every channel
 * is accepted, send a frame of that type and arguments (numbers in C
 * notation), with TEXT as its payload if given, on channel CH, in the order
 * given, as a peer that passed authentication but speaks wrongly would;
 * --gap waits MS milliseconds before each frame but the first (for the
 * instance to reach a later phase).  With --send, the hold ends early when
 * the instance closes the channel of the last frame (what it does with a
 * peer whose message it refuses).
 *
 * Exit status: 0 every connection went as --expect says, 1 otherwise,
 * 2 usage, 3 set-up (munge, connect).
 */
#include <errno.h>
#include <getopt.h>
#include <time.h>
#include <netdb.h>
#include <poll.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/auth.h"
#include "common/mesh.h"
#include "common/parse.h"
#include "common/wire.h"

static int connect_to(const struct hostport *hp)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	char port[8];
	int fd = -1;

	snprintf(port, sizeof(port), "%u", hp->port);
	if (getaddrinfo(hp->host, port, &hints, &res))
		return -1;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
		if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd;
}

/* A connection to hp and the challenge it opens with; -1 (said) if none. */
static int connect_challenged(const struct hostport *hp, uint8_t *challenge)
{
	struct wire_hdr h;
	char why[128];
	int fd = connect_to(hp);

	if (fd < 0) {
		fprintf(stderr, "forge-peer: cannot connect to %s:%u: %s\n", hp->host, hp->port,
			strerror(errno));
		return -1;
	}
	if (wire_recv(fd, -1, &h, challenge, AUTH_NONCE_LEN, why) || h.type != MESH_CHALLENGE ||
	    h.len != AUTH_NONCE_LEN) {
		fprintf(stderr, "forge-peer: %s:%u sent no challenge\n", hp->host, hp->port);
		close(fd);
		return -1;
	}
	return fd;
}

/* Read and drop what fd brings until the instance closes it, or seconds pass. */
static void hold_until_closed(int fd, unsigned seconds)
{
	struct timespec t0, now;
	char buf[4096];

	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, 100) > 0 && read(fd, buf, sizeof(buf)) <= 0) {
			printf("forge-peer: the instance closed the connection\n");
			return;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (now.tv_sec - t0.tv_sec < (time_t)seconds);
}

static void usage(void)
{
	fprintf(stderr, "usage: forge-peer --to HOST:PORT --vm-id ID --rank R --nodes N "
			"[--target T] [--channels C] [--uid USER] [--hold SECONDS] "
			"[--send CH:TYPE:A0:A1:A2[:TEXT]]... [--gap MS] [--replay] "
			"--expect refused|accepted\n");
	exit(2);
}

#define MAX_SENDS 8

struct frame {
	unsigned ch;
	struct wire_hdr h;
	const char *text; /* the payload, or NULL */
};

/* CH:TYPE:A0:A1:A2[:TEXT], every number required. */
static int parse_frame(const char *s, struct frame *f)
{
	uint64_t v[5];
	char *end;

	f->text = NULL;
	for (int i = 0; i < 5; i++) {
		errno = 0;
		v[i] = strtoull(s, &end, 0);
		if (errno || end == s || (*end != (i < 4 ? ':' : '\0') && !(i == 4 && *end == ':')))
			return -1;
		if (i == 4 && *end == ':')
			f->text = end + 1;
		s = end + 1;
	}
	if (v[0] >= 8 || v[1] > 0xffff)
		return -1;
	f->ch = (unsigned)v[0];
	f->h = wire_hdr_make((uint16_t)v[1], 0, f->text ? strlen(f->text) : 0);
	for (int i = 0; i < 3; i++)
		f->h.arg[i] = v[2 + i];
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "to", 1, NULL, 't' }, { "vm-id", 1, NULL, 'v' }, { "rank", 1, NULL, 'r' },
		{ "nodes", 1, NULL, 'n' }, { "target", 1, NULL, 'T' }, { "channels", 1, NULL, 'c' },
		{ "uid", 1, NULL, 'u' }, { "hold", 1, NULL, 'h' }, { "expect", 1, NULL, 'e' },
		{ "send", 1, NULL, 's' }, { "gap", 1, NULL, 'g' }, { "replay", 0, NULL, 'R' },
		{ NULL, 0, NULL, 0 },
	};
	struct hostport to;
	struct auth_claim claim = { 0 };
	const char *user = NULL, *expect = NULL, *sock = getenv("GVM_MUNGE_SOCKET");
	unsigned channels = 1, hold = 0, have = 0, nr_sends = 0, gap_ms = 0;
	struct frame sends[MAX_SENDS];
	char err[PARSE_ERR_MAX > AUTH_ERR_MAX ? PARSE_ERR_MAX : AUTH_ERR_MAX];
	int fds[8], c, wrong = 0, decoy = -1;
	bool replay = false;
	uint64_t v;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		unsigned u;

		switch (c) {
		case 't':
			if (parse_hostport(optarg, &to, err))
				usage();
			have |= 1;
			break;
		case 'v':
			if (parse_u64(optarg, 0, UINT64_MAX, &v, err))
				usage();
			claim.vm_id = v;
			have |= 2;
			break;
		case 'r':
			if (parse_uint(optarg, 0, 255, &u, err))
				usage();
			claim.from = u;
			have |= 4;
			break;
		case 'n':
			if (parse_uint(optarg, 1, 256, &u, err))
				usage();
			claim.nr_nodes = u;
			have |= 8;
			break;
		case 'T':
			if (parse_uint(optarg, 0, 255, &u, err))
				usage();
			claim.to = u;
			break;
		case 'c':
			if (parse_uint(optarg, 1, 8, &channels, err))
				usage();
			break;
		case 'u':
			user = optarg;
			break;
		case 'h':
			if (parse_uint(optarg, 0, 3600, &hold, err))
				usage();
			break;
		case 'e':
			expect = optarg;
			break;
		case 's':
			if (nr_sends == MAX_SENDS || parse_frame(optarg, &sends[nr_sends++]))
				usage();
			break;
		case 'g':
			if (parse_uint(optarg, 0, 60000, &gap_ms, err))
				usage();
			break;
		case 'R':
			replay = true;
			break;
		default:
			usage();
		}
	}
	if (have != 15 || !expect || (strcmp(expect, "refused") && strcmp(expect, "accepted")))
		usage();
	for (unsigned i = 0; i < nr_sends; i++)
		if (sends[i].ch >= channels)
			usage();
	if (user) {
		struct passwd *pw = getpwnam(user);
		char *end;
		unsigned long id = strtoul(user, &end, 10);
		uid_t uid = pw ? pw->pw_uid : (uid_t)id;

		if (!pw && *end) {
			fprintf(stderr, "forge-peer: no user '%s'\n", user);
			return 3;
		}
		if (setgid(pw ? pw->pw_gid : (gid_t)id) || setuid(uid)) {
			fprintf(stderr, "forge-peer: cannot become %s: %s\n", user,
				strerror(errno));
			return 3;
		}
	}
	for (unsigned ch = 0; ch < channels; ch++) {
		uint8_t challenge[AUTH_NONCE_LEN];
		struct wire_hdr h;
		char *cred, why[128], buf[4096];
		struct pollfd p;
		bool accepted;

		if (replay) {
			if (decoy >= 0)
				close(decoy);
			decoy = connect_challenged(&to, claim.challenge);
			if (decoy < 0)
				return 3;
		}
		fds[ch] = connect_challenged(&to, challenge);
		if (fds[ch] < 0)
			return 3;
		if (!replay)
			memcpy(claim.challenge, challenge, AUTH_NONCE_LEN);
		claim.channel = ch;
		if (auth_encode(sock, &claim, &cred, err)) {
			fprintf(stderr, "forge-peer: %s\n", err);
			return 3;
		}
		h = wire_hdr_make(MESH_HELLO, (uint16_t)claim.from, strlen(cred) + 1);
		if (wire_send(fds[ch], &h, cred)) {
			fprintf(stderr, "forge-peer: cannot send the handshake\n");
			free(cred);
			return 3;
		}
		free(cred);
		p = (struct pollfd){ .fd = fds[ch], .events = POLLIN };
		if (poll(&p, 1, 30000) <= 0) {
			fprintf(stderr, "forge-peer: channel %u: no answer in 30 s\n", ch);
			return 1;
		}
		accepted = !wire_recv(fds[ch], -1, &h, buf, sizeof(buf), why) &&
			   h.type == MESH_HELLO_ACK;
		printf("forge-peer: channel %u: %s\n", ch, accepted ? "accepted" : "refused");
		wrong |= accepted != !strcmp(expect, "accepted");
	}
	for (unsigned i = 0; i < nr_sends && !wrong; i++) {
		struct frame *f = &sends[i];

		if (i)
			usleep(gap_ms * 1000);
		f->h.from = (uint16_t)claim.from;
		if (wire_send(fds[f->ch], &f->h, f->text)) {
			fprintf(stderr, "forge-peer: cannot send frame %u\n", i);
			return 3;
		}
		printf("forge-peer: sent type 0x%x on channel %u\n", f->h.type, f->ch);
	}
	fflush(stdout);
	if (hold && nr_sends && !wrong)
		hold_until_closed(fds[sends[nr_sends - 1].ch], hold);
	else if (hold)
		sleep(hold);
	for (unsigned ch = 0; ch < channels; ch++)
		close(fds[ch]);
	if (decoy >= 0)
		close(decoy);
	return wrong ? 1 : 0;
}
