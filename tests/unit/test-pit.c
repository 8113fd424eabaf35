/*
 * The 8254: counter reads, latches and read-back against host time, the
 * channel 2 gate and output on port 0x61 (what Linux polls to calibrate),
 * and IRQ 0 from channel 0.  Times are checked against the time that did
 * pass, not the time asked for: on a loaded machine a 2 ms sleep can last
 * 100, and a thread can wait as long for a core.
 */
#include <stdatomic.h>
#include <time.h>

#include "tests/lib/check.h"
#include "vmm/hw/pit.h"

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000ull + ts.tv_nsec / 1000;
}

/* IRQ 0's rising edges: when each came (the first EDGES_MAX), and how many */
#define EDGES_MAX 4096
static _Atomic uint64_t edge_us[EDGES_MAX];
static atomic_uint edges;

static void on_irq(void *opaque, unsigned irq, bool level)
{
	unsigned i;

	(void)opaque;
	(void)irq;
	if (!level)
		return;
	i = atomic_fetch_add(&edges, 1);
	if (i < EDGES_MAX)
		atomic_store(&edge_us[i], now_us());
}

/* Edges stamped at or after t (an edge counted but not yet stamped is not). */
static unsigned edges_since(uint64_t t)
{
	unsigned n = 0, end = atomic_load(&edges);

	for (unsigned i = 0; i < end && i < EDGES_MAX; i++)
		n += atomic_load(&edge_us[i]) >= t;
	return n;
}

/* Waits up to 30 s for n edges stamped at or after t. */
static void wait_edges(uint64_t t, unsigned n)
{
	uint64_t t0 = now_us();

	while (edges_since(t) < n && now_us() - t0 < 30000000)
		nanosleep(&(struct timespec){ 0, 1000000 }, NULL);
}

static void sleep_us(unsigned us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
}

static unsigned read16(struct pit *p, unsigned ch)
{
	unsigned lo = pit_inb(p, 0x40 + ch);

	return lo | pit_inb(p, 0x40 + ch) << 8;
}

static void test_channel2_gate(void)
{
	struct irq_line none = { 0 };
	struct pit *p = pit_create(NULL, &none);
	uint64_t t0, t1, t2, t3, waited;
	unsigned c1, c2;

	/* Linux's pit_calibrate_tsc: gate on, speaker off, mode 0, 0xFFFF */
	pit_outb(p, 0x61, (pit_inb(p, 0x61) & ~0x02) | 0x01);
	CHECK_EQ(pit_inb(p, 0x61) & 0x03, 0x01);
	pit_outb(p, 0x43, 0xB0);
	pit_outb(p, 0x42, 0xFF);
	pit_outb(p, 0x42, 0xFF);
	CHECK_EQ(pit_inb(p, 0x61) & 0x20, 0); /* OUT2 low while counting */
	/*
	 * The count goes down, by what the time between the reads is worth
	 * (1.193 MHz): at least half of the least of it, at most twice the
	 * most; compared only when the reads were under 50 ms apart, as the
	 * count wraps every 55 ms.
	 */
	t0 = now_us();
	c1 = read16(p, 2);
	t1 = now_us();
	sleep_us(2000);
	t2 = now_us();
	c2 = read16(p, 2);
	t3 = now_us();
	if (t3 - t0 < 50000) {
		CHECK(c1 > c2);
		CHECK(c1 - c2 >= (t2 - t1) * 1193 / 1000 / 2);
		CHECK(c1 - c2 <= (t3 - t0) * 1193 / 1000 * 2 + 2);
	}
	/* a latched count holds still (a later latch is lower, within 55 ms) */
	pit_outb(p, 0x43, 0x80);
	t0 = now_us();
	sleep_us(1000);
	c1 = read16(p, 2);
	pit_outb(p, 0x43, 0x80);
	c2 = read16(p, 2);
	t1 = now_us();
	if (t1 - t0 < 50000)
		CHECK(c1 > c2);

	/* 1193 counts (1 ms): OUT2 rises at terminal count */
	pit_outb(p, 0x43, 0xB0);
	pit_outb(p, 0x42, 1193 & 0xFF);
	pit_outb(p, 0x42, 1193 >> 8);
	t0 = now_us();
	while (!(pit_inb(p, 0x61) & 0x20) && now_us() - t0 < 30000000)
		;
	waited = now_us() - t0;
	CHECK(pit_inb(p, 0x61) & 0x20);
	CHECK(waited >= 900);

	/* the gate off holds the count */
	pit_outb(p, 0x43, 0xB0);
	pit_outb(p, 0x42, 0xFF);
	pit_outb(p, 0x42, 0xFF);
	pit_outb(p, 0x61, 0x00);
	c1 = read16(p, 2);
	sleep_us(2000);
	c2 = read16(p, 2);
	CHECK_EQ(c1, c2);

	/* read-back of the status: mode 0, LSB then MSB, OUT low, count loaded */
	pit_outb(p, 0x61, 0x01);
	pit_outb(p, 0x43, 0xE8); /* latch status of channel 2 */
	CHECK_EQ(pit_inb(p, 0x42), 0x30);
	pit_destroy(p);
}

static void test_channel0_irq(void)
{
	struct irq_line irq0 = { .set = on_irq };
	struct pit *p = pit_create(NULL, &irq0);
	uint64_t t0, t1, prog;
	unsigned n;

	/* mode 2, 1193 counts: 1 kHz; missed ticks coalesce, so never faster */
	t0 = now_us();
	pit_outb(p, 0x43, 0x34);
	pit_outb(p, 0x40, 1193 & 0xFF);
	pit_outb(p, 0x40, 1193 >> 8);
	wait_edges(t0, 20);
	sleep_us(50000);
	n = atomic_load(&edges);
	t1 = now_us();
	CHECK(n >= 20);
	CHECK(n <= (t1 - t0) / 1000 + 1);
	/*
	 * Mode 0 with count 0 (what Linux writes to stop it): one edge 55 ms
	 * later, then none.  An edge of mode 2 already on its way may still
	 * land: only edges from 50 ms on count.
	 */
	prog = now_us();
	pit_outb(p, 0x43, 0x30);
	pit_outb(p, 0x40, 0);
	pit_outb(p, 0x40, 0);
	wait_edges(prog + 50000, 1);
	sleep_us(150000);
	CHECK_EQ(edges_since(prog + 50000), 1);
	CHECK(atomic_load(&edges) < EDGES_MAX);
	/* reprogramming the mode without a count stops it */
	pit_outb(p, 0x43, 0x34);
	t0 = now_us();
	sleep_us(20000);
	CHECK_EQ(edges_since(t0), 0);
	pit_destroy(p);
}

int main(void)
{
	RUN(test_channel2_gate);
	RUN(test_channel0_irq);
	return check_summary();
}
