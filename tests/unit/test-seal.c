/*
 * common/seal.c: a frame sealed by one end of a connection passes the other
 * end's check, in order; a frame with one bit changed anywhere (header,
 * payload, tag), a frame replayed, frames swapped, a frame reflected back
 * to its sender, or one sealed for another connection fails it.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/seal.h"
#include "tests/lib/check.h"

struct pair {
	struct seal *conn, *acc; /* the connecting end's, the accepting end's */
};

static void pair_make(struct pair *p, uint8_t first)
{
	uint8_t c[SEAL_SECRET_LEN], a[SEAL_SECRET_LEN];
	char err[SEAL_ERR_MAX];

	for (unsigned i = 0; i < SEAL_SECRET_LEN; i++) {
		c[i] = (uint8_t)(first + i);
		a[i] = (uint8_t)(first * 7 + i * 3);
	}
	p->conn = seal_new(c, a, true, 4242, 1, err);
	p->acc = seal_new(a, c, false, 4242, 1, err);
	CHECK(p->conn && p->acc);
}

static void pair_free(struct pair *p)
{
	seal_free(p->conn);
	seal_free(p->acc);
}

struct frame {
	struct wire_hdr h;
	uint8_t payload[4096];
	uint8_t tag[SEAL_TAG_LEN];
};

static void frame_make(struct frame *f, struct seal *s, uint64_t n, uint32_t len)
{
	f->h = wire_hdr_make(0x105, 1, len);
	f->h.arg[0] = n;
	for (uint32_t i = 0; i < len; i++)
		f->payload[i] = (uint8_t)(n + i * 13);
	CHECK_EQ(seal_tag(s, &f->h, f->payload, f->tag), 0);
}

static int frame_check(struct seal *s, const struct frame *f)
{
	return seal_check(s, &f->h, f->payload, f->tag);
}

static void test_in_order(void)
{
	struct pair p;
	struct frame f;

	pair_make(&p, 1);
	/* Both directions, with and without payload, interleaved. */
	for (uint64_t n = 0; n < 200; n++) {
		frame_make(&f, p.conn, n, n % 3 ? 4096 : 0);
		CHECK_EQ(frame_check(p.acc, &f), 0);
		frame_make(&f, p.acc, n, (uint32_t)(n * 17 % 4097));
		CHECK_EQ(frame_check(p.conn, &f), 0);
	}
	pair_free(&p);
}

/* Each bit of header, payload and tag in turn: a fresh pair each time, same frame. */
static void test_any_bit_changed(void)
{
	size_t bits = (sizeof(struct wire_hdr) + 64 + SEAL_TAG_LEN) * 8, caught = 0;

	for (size_t b = 0; b < bits; b++) {
		struct pair p;
		struct frame f;
		uint8_t *at;

		/* The frame's length is checked before the tag (wire_recv): keep it in the buffer. */
		if (b / 8 >= offsetof(struct wire_hdr, len) &&
		    b / 8 < offsetof(struct wire_hdr, len) + 4 &&
		    (b - offsetof(struct wire_hdr, len) * 8) >= 12) {
			caught++;
			continue;
		}
		pair_make(&p, 9);
		frame_make(&f, p.conn, 5, 64);
		if (b < sizeof(f.h) * 8)
			at = (uint8_t *)&f.h + b / 8;
		else if (b < (sizeof(f.h) + 64) * 8)
			at = f.payload + (b / 8 - sizeof(f.h));
		else
			at = f.tag + (b / 8 - sizeof(f.h) - 64);
		*at ^= (uint8_t)(1u << (b % 8));
		caught += frame_check(p.acc, &f) != 0;
		pair_free(&p);
	}
	CHECK_EQ(caught, bits);
}

static void test_replay_and_swap(void)
{
	struct pair p;
	struct frame f1, f2;

	pair_make(&p, 3);
	frame_make(&f1, p.conn, 1, 100);
	CHECK_EQ(frame_check(p.acc, &f1), 0);
	/* The same frame again: its number has passed. */
	CHECK(frame_check(p.acc, &f1) != 0);
	pair_free(&p);

	pair_make(&p, 3);
	frame_make(&f1, p.conn, 1, 100);
	frame_make(&f2, p.conn, 2, 100);
	CHECK(frame_check(p.acc, &f2) != 0);
	pair_free(&p);

	/* A frame dropped: the next one does not pass in its place. */
	pair_make(&p, 3);
	frame_make(&f1, p.conn, 1, 0);
	frame_make(&f2, p.conn, 2, 0);
	CHECK(frame_check(p.acc, &f2) != 0);
	pair_free(&p);
}

static void test_reflection_and_other_connection(void)
{
	struct pair p, q;
	struct frame f;
	char err[SEAL_ERR_MAX];
	uint8_t c[SEAL_SECRET_LEN] = { 1 }, a[SEAL_SECRET_LEN] = { 2 };
	struct seal *other_ch, *other_vm;

	/* Sent back to its sender: the directions' keys differ. */
	pair_make(&p, 4);
	frame_make(&f, p.conn, 1, 32);
	CHECK(frame_check(p.conn, &f) != 0);
	pair_free(&p);

	/* Another connection's secrets, channel or VM: another key. */
	pair_make(&p, 4);
	pair_make(&q, 5);
	frame_make(&f, q.conn, 1, 32);
	CHECK(frame_check(p.acc, &f) != 0);
	pair_free(&p);
	pair_free(&q);

	p.conn = seal_new(c, a, true, 4242, 1, err);
	other_ch = seal_new(a, c, false, 4242, 2, err);
	other_vm = seal_new(a, c, false, 4243, 1, err);
	p.acc = seal_new(a, c, false, 4242, 1, err);
	CHECK(p.conn && other_ch && other_vm && p.acc);
	frame_make(&f, p.conn, 1, 32);
	CHECK(frame_check(other_ch, &f) != 0);
	CHECK(frame_check(other_vm, &f) != 0);
	CHECK_EQ(frame_check(p.acc, &f), 0);
	seal_free(other_ch);
	seal_free(other_vm);
	pair_free(&p);
	seal_free(NULL);
}

int main(void)
{
	RUN(test_in_order);
	RUN(test_any_bit_changed);
	RUN(test_replay_and_swap);
	RUN(test_reflection_and_other_connection);
	return check_summary();
}
