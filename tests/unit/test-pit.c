/*
 * The 8254: counter reads, latches and read-back against host time, the
 * channel 2 gate and output on port 0x61 (what Linux polls to calibrate),
 * and IRQ 0 from channel 0.  Times are checked with wide margins: the point
 * is the behaviour, not the precision of a shared test machine.
 */
#include <stdatomic.h>
#include <time.h>

#include "tests/lib/check.h"
#include "vmm/hw/pit.h"

static atomic_uint edges;

static void on_irq(void *opaque, unsigned irq, bool level)
{
	(void)opaque;
	(void)irq;
	if (level)
		atomic_fetch_add(&edges, 1);
}

static uint64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000ull + ts.tv_nsec / 1000;
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
	uint64_t t0, waited;
	unsigned c1, c2;

	/* Linux's pit_calibrate_tsc: gate on, speaker off, mode 0, 0xFFFF */
	pit_outb(p, 0x61, (pit_inb(p, 0x61) & ~0x02) | 0x01);
	CHECK_EQ(pit_inb(p, 0x61) & 0x03, 0x01);
	pit_outb(p, 0x43, 0xB0);
	pit_outb(p, 0x42, 0xFF);
	pit_outb(p, 0x42, 0xFF);
	CHECK_EQ(pit_inb(p, 0x61) & 0x20, 0); /* OUT2 low while counting */
	/* the count goes down */
	c1 = read16(p, 2);
	sleep_us(2000);
	c2 = read16(p, 2);
	CHECK(c1 > c2);
	CHECK(c1 - c2 >= 2000 * 1193 / 1000 / 2); /* at least half of 2 ms worth */
	/* a latched count holds still */
	pit_outb(p, 0x43, 0x80);
	sleep_us(1000);
	c1 = read16(p, 2);
	pit_outb(p, 0x43, 0x80);
	c2 = read16(p, 2);
	CHECK(c1 > c2);

	/* 1193 counts (1 ms): OUT2 rises at terminal count */
	pit_outb(p, 0x43, 0xB0);
	pit_outb(p, 0x42, 1193 & 0xFF);
	pit_outb(p, 0x42, 1193 >> 8);
	t0 = now_us();
	while (!(pit_inb(p, 0x61) & 0x20) && now_us() - t0 < 1000000)
		;
	waited = now_us() - t0;
	CHECK(pit_inb(p, 0x61) & 0x20);
	CHECK(waited >= 900);
	CHECK(waited < 500000);

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
	unsigned n;

	atomic_store(&edges, 0);
	/* mode 2, 1193 counts: 1 kHz */
	pit_outb(p, 0x43, 0x34);
	pit_outb(p, 0x40, 1193 & 0xFF);
	pit_outb(p, 0x40, 1193 >> 8);
	sleep_us(100000);
	n = atomic_load(&edges);
	CHECK(n >= 20);  /* about 100 */
	CHECK(n <= 110);
	/* mode 0 with count 0 (what Linux writes to stop it): one edge after 55 ms, then none */
	pit_outb(p, 0x43, 0x30);
	pit_outb(p, 0x40, 0);
	pit_outb(p, 0x40, 0);
	atomic_store(&edges, 0);
	sleep_us(200000);
	CHECK_EQ(atomic_load(&edges), 1);
	/* reprogramming the mode without a count stops it */
	pit_outb(p, 0x43, 0x34);
	atomic_store(&edges, 0);
	sleep_us(20000);
	CHECK_EQ(atomic_load(&edges), 0);
	pit_destroy(p);
}

int main(void)
{
	RUN(test_channel2_gate);
	RUN(test_channel0_irq);
	return check_summary();
}
