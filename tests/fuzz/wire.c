/*
 * common/wire.c's wire_recv on a stream socket: the framing every
 * inter-node channel reads from peers, checked before any component looks
 * at a message.  The input is what a peer sent before closing.  Checked
 * beyond the sanitizers: a frame received passes the checks wire.h lists
 * (magic, version, payload within the buffer and WIRE_MAX_PAYLOAD, the
 * expected sender), and header and payload are the bytes sent, in order.
 * Odd-sized inputs are read as rank 1's connection with a 4 KiB buffer,
 * even-sized ones from any rank with a buffer of WIRE_MAX_PAYLOAD.
 */
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/wire.h"
#include "tests/fuzz/lib/fuzz.h"

#define MAX_INPUT (64u << 10) /* fits a socket buffer, so one write takes it */

/* Allocated once, at their exact sizes, so that ASan sees a write past either. */
static uint8_t *small, *big;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	small = malloc(4096);
	big = malloc(WIRE_MAX_PAYLOAD);
	FUZZ_CHECK(small && big);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int from = size & 1 ? 1 : -1, sv[2];
	size_t cap = size & 1 ? 4096 : WIRE_MAX_PAYLOAD, at = 0;
	char why[128];
	struct wire_hdr h;
	uint8_t *buf;

	if (size > MAX_INPUT)
		return 0;
	FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	FUZZ_CHECK(write(sv[1], data, size) == (ssize_t)size);
	close(sv[1]);
	buf = size & 1 ? small : big;
	while (wire_recv(sv[0], from, &h, buf, cap, why) == 0) {
		FUZZ_CHECK(h.magic == WIRE_MAGIC && h.version == WIRE_VERSION);
		FUZZ_CHECK(h.len <= cap && h.len <= WIRE_MAX_PAYLOAD);
		FUZZ_CHECK(from < 0 || h.from == from);
		FUZZ_CHECK(at + sizeof(h) + h.len <= size);
		FUZZ_CHECK(!memcmp(&h, data + at, sizeof(h)));
		FUZZ_CHECK(!memcmp(buf, data + at + sizeof(h), h.len));
		at += sizeof(h) + h.len;
	}
	FUZZ_CHECK(memchr(why, '\0', sizeof(why)) && why[0]);
	close(sv[0]);
	return 0;
}
