/*
 * The LAPIC state machine, driven through its register interface with a
 * test clock, and several LAPICs on a real APIC bus for destinations.
 */
#include <stdlib.h>
#include <string.h>

#include "tests/lib/check.h"
#include "vmm/x86/apic.h"
#include "vmm/x86/lapic.h"

#define MAX_MSGS 16

struct env {
	uint64_t now;
	struct apic_msg sent[MAX_MSGS];
	unsigned nr_sent;
	int eois[MAX_MSGS];
	unsigned nr_eois;
	unsigned kicks;
	uint64_t armed;  /* last timer_arm deadline */
	unsigned arms;
	uint32_t id;
	uint32_t ldr, dfr;
	bool x2apic;
	unsigned dest_changes;
	struct apic_bus *bus; /* if set, send goes on the bus */
};

static void e_send(void *o, const struct apic_msg *m)
{
	struct env *e = o;

	if (e->nr_sent < MAX_MSGS)
		e->sent[e->nr_sent++] = *m;
	if (e->bus)
		apic_bus_send(e->bus, m);
}

static void e_eoi(void *o, uint8_t v)
{
	struct env *e = o;

	if (e->nr_eois < MAX_MSGS)
		e->eois[e->nr_eois++] = v;
}

static void e_kick(void *o)
{
	((struct env *)o)->kicks++;
}

static void e_arm(void *o, uint64_t d)
{
	struct env *e = o;

	e->armed = d;
	e->arms++;
}

static void e_dest(void *o, const struct apic_dest_state *d)
{
	struct env *e = o;

	e->id = d->id;
	e->ldr = d->ldr;
	e->dfr = d->dfr;
	e->x2apic = d->x2apic;
	e->dest_changes++;
}

static uint64_t e_now(void *o)
{
	return ((struct env *)o)->now;
}

static struct lapic *make(struct env *e, unsigned cpu, uint32_t id)
{
	struct lapic_env le = {
		.opaque = e, .send = e_send, .eoi = e_eoi, .kick = e_kick, .timer_arm = e_arm,
		.dest_changed = e_dest, .now = e_now,
	};

	memset(e, 0, sizeof(*e));
	return lapic_create(cpu, id, cpu == 0, &le);
}

static struct apic_msg fixed(uint8_t vector, bool level)
{
	return (struct apic_msg){ .vector = vector, .mode = APIC_DM_FIXED, .level = level,
				  .assert = true };
}

static void test_reset_state(void)
{
	struct env e;
	struct lapic *l = make(&e, 0, 5);

	CHECK_EQ(lapic_read(l, LAPIC_ID), 5u << 24);
	CHECK_EQ(lapic_read(l, LAPIC_VERSION), LAPIC_VERSION_VALUE);
	CHECK_EQ(lapic_read(l, LAPIC_SVR), 0xFF);
	CHECK_EQ(lapic_read(l, LAPIC_DFR), 0xFFFFFFFF);
	CHECK_EQ(lapic_read(l, LAPIC_LDR), 0);
	CHECK_EQ(lapic_read(l, LAPIC_TPR), 0);
	for (unsigned off = LAPIC_LVT_TIMER; off <= LAPIC_LVT_ERROR; off += 0x10)
		CHECK_EQ(lapic_read(l, off), LAPIC_LVT_MASKED);
	CHECK_EQ(lapic_read(l, LAPIC_LVT_CMCI), LAPIC_LVT_MASKED);
	CHECK_EQ(lapic_id(l), 5);

	/* A software-disabled APIC drops fixed interrupts... */
	lapic_accept(l, &(struct apic_msg){ .vector = 0x40, .mode = APIC_DM_FIXED });
	CHECK_EQ(lapic_read(l, LAPIC_IRR + 0x20), 0);
	CHECK_EQ(lapic_pending_interrupt(l), -1);
	CHECK_EQ(e.kicks, 0);
	/* ...and keeps its LVTs masked whatever is written. */
	lapic_write(l, LAPIC_LVT_TIMER, 0x30);
	CHECK_EQ(lapic_read(l, LAPIC_LVT_TIMER), 0x30 | LAPIC_LVT_MASKED);

	/* Changes to ID, LDR and DFR are reported for destination routing. */
	lapic_write(l, LAPIC_LDR, 0x12345678);
	CHECK_EQ(lapic_read(l, LAPIC_LDR), 0x12000000);
	CHECK_EQ(e.ldr, 0x12000000);
	lapic_write(l, LAPIC_DFR, 0x0FFFFFFF);
	CHECK_EQ(lapic_read(l, LAPIC_DFR), 0x0FFFFFFF);
	CHECK_EQ(e.dfr, 0x0FFFFFFF);
	lapic_write(l, LAPIC_ID, 7u << 24);
	CHECK_EQ(e.id, 7);
	CHECK_EQ(lapic_id(l), 7);

	/* INIT brings everything back but the ID. */
	lapic_write(l, LAPIC_SVR, 0x1FF);
	lapic_write(l, LAPIC_TPR, 0x20);
	lapic_reset(l);
	CHECK_EQ(lapic_read(l, LAPIC_SVR), 0xFF);
	CHECK_EQ(lapic_read(l, LAPIC_TPR), 0);
	CHECK_EQ(lapic_read(l, LAPIC_LDR), 0);
	CHECK_EQ(lapic_read(l, LAPIC_DFR), 0xFFFFFFFF);
	CHECK_EQ(lapic_read(l, LAPIC_ID), 7u << 24);
	lapic_destroy(l);
}

static void test_priorities(void)
{
	struct env e;
	struct lapic *l = make(&e, 0, 0);

	lapic_write(l, LAPIC_SVR, 0x1FF);
	lapic_accept(l, &(struct apic_msg){ .vector = 0x31, .mode = APIC_DM_FIXED });
	CHECK_EQ(e.kicks, 1);
	lapic_accept(l, &(struct apic_msg){ .vector = 0x51, .mode = APIC_DM_FIXED });
	lapic_accept(l, &(struct apic_msg){ .vector = 0x42, .mode = APIC_DM_FIXED });
	CHECK_EQ(e.kicks, 3);
	/* the same vector again coalesces in IRR: no new kick */
	lapic_accept(l, &(struct apic_msg){ .vector = 0x42, .mode = APIC_DM_FIXED });
	CHECK_EQ(e.kicks, 3);
	CHECK_EQ(lapic_read(l, LAPIC_IRR + 0x10), 1u << (0x31 - 32));
	CHECK_EQ(lapic_read(l, LAPIC_IRR + 0x20), 1u << (0x42 - 64) | 1u << (0x51 - 64));
	CHECK_EQ(lapic_pending_interrupt(l), 0x51);

	CHECK_EQ(lapic_ack_interrupt(l), 0x51);
	CHECK_EQ(lapic_read(l, LAPIC_ISR + 0x20), 1u << (0x51 - 64));
	CHECK_EQ(lapic_read(l, LAPIC_PPR), 0x50);
	/* 0x42 is of a lower class than 0x51 in service */
	CHECK_EQ(lapic_pending_interrupt(l), -1);
	CHECK_EQ(lapic_ack_interrupt(l), -1);
	/* a vector of the same class as the one in service waits too */
	lapic_accept(l, &(struct apic_msg){ .vector = 0x5A, .mode = APIC_DM_FIXED });
	CHECK_EQ(lapic_pending_interrupt(l), -1);
	/* a higher class nests */
	lapic_accept(l, &(struct apic_msg){ .vector = 0x61, .mode = APIC_DM_FIXED });
	CHECK_EQ(lapic_ack_interrupt(l), 0x61);
	CHECK_EQ(lapic_read(l, LAPIC_PPR), 0x60);

	/* a failed injection puts the vector back */
	lapic_unack_interrupt(l, 0x61);
	CHECK_EQ(lapic_read(l, LAPIC_PPR), 0x50);
	CHECK_EQ(lapic_ack_interrupt(l), 0x61);

	/* EOI retires the highest in service */
	lapic_write(l, LAPIC_EOI, 0);
	CHECK_EQ(lapic_read(l, LAPIC_ISR + 0x30), 0);
	CHECK_EQ(lapic_read(l, LAPIC_PPR), 0x50);
	lapic_write(l, LAPIC_EOI, 0);
	CHECK_EQ(lapic_read(l, LAPIC_PPR), 0);
	CHECK_EQ(lapic_pending_interrupt(l), 0x5A);
	CHECK_EQ(e.nr_eois, 0); /* edge-triggered: no EOI broadcast */

	/* TPR holds back everything at or below its class */
	lapic_write(l, LAPIC_TPR, 0x5F);
	CHECK_EQ(lapic_read(l, LAPIC_PPR), 0x5F);
	CHECK_EQ(lapic_pending_interrupt(l), -1);
	lapic_write(l, LAPIC_TPR, 0x40);
	CHECK_EQ(lapic_pending_interrupt(l), 0x5A);
	CHECK_EQ(lapic_ack_interrupt(l), 0x5A);
	lapic_write(l, LAPIC_EOI, 0);
	CHECK_EQ(lapic_pending_interrupt(l), -1); /* 0x42 and 0x31: at or below TPR 0x40 */
	lapic_write(l, LAPIC_TPR, 0);
	CHECK_EQ(lapic_ack_interrupt(l), 0x42);
	lapic_write(l, LAPIC_EOI, 0);
	CHECK_EQ(lapic_ack_interrupt(l), 0x31);
	lapic_write(l, LAPIC_EOI, 0);
	CHECK_EQ(lapic_pending_interrupt(l), -1);
	/* an EOI with nothing in service is harmless */
	lapic_write(l, LAPIC_EOI, 0);
	CHECK_EQ(lapic_read(l, LAPIC_PPR), 0);
	lapic_destroy(l);
}

static void test_level_eoi(void)
{
	struct env e;
	struct lapic *l = make(&e, 0, 0);
	struct apic_msg m = fixed(0x70, true);

	lapic_write(l, LAPIC_SVR, 0x1FF);
	lapic_accept(l, &m);
	CHECK_EQ(lapic_read(l, LAPIC_TMR + 0x30), 1u << (0x70 - 96));
	CHECK_EQ(lapic_ack_interrupt(l), 0x70);
	lapic_write(l, LAPIC_EOI, 0);
	CHECK_EQ(e.nr_eois, 1);
	CHECK_EQ(e.eois[0], 0x70);
	/* the same vector edge-triggered clears TMR and broadcasts nothing */
	m.level = false;
	lapic_accept(l, &m);
	CHECK_EQ(lapic_read(l, LAPIC_TMR + 0x30), 0);
	lapic_ack_interrupt(l);
	lapic_write(l, LAPIC_EOI, 0);
	CHECK_EQ(e.nr_eois, 1);
	lapic_destroy(l);
}

static void test_icr(void)
{
	struct env e;
	struct lapic *l = make(&e, 3, 3);

	lapic_write(l, LAPIC_SVR, 0x1FF);
	/* fixed, physical, to APIC 0x0A */
	lapic_write(l, LAPIC_ICR_HI, 0x0A000000);
	lapic_write(l, LAPIC_ICR_LO, 0x00004041);
	CHECK_EQ(e.nr_sent, 1);
	CHECK_EQ(e.sent[0].vector, 0x41);
	CHECK_EQ(e.sent[0].mode, APIC_DM_FIXED);
	CHECK(!e.sent[0].logical);
	CHECK_EQ(e.sent[0].dest, 0x0A);
	CHECK_EQ(e.sent[0].shorthand, APIC_SH_NONE);
	CHECK_EQ(e.sent[0].src_cpu, 3);
	CHECK_EQ(lapic_read(l, LAPIC_ICR_HI), 0x0A000000);
	CHECK_EQ(lapic_read(l, LAPIC_ICR_LO) & LAPIC_ICR_PENDING, 0); /* delivered at once */
	CHECK_EQ(lapic_read(l, LAPIC_ICR_LO), 0x00004041);

	/* lowest priority, logical, to mask 0x0C */
	lapic_write(l, LAPIC_ICR_HI, 0x0C000000);
	lapic_write(l, LAPIC_ICR_LO, 0x00000950);
	CHECK_EQ(e.sent[1].mode, APIC_DM_LOWEST);
	CHECK(e.sent[1].logical);
	CHECK_EQ(e.sent[1].dest, 0x0C);

	/* NMI to self, INIT to all but self, SIPI to all */
	lapic_write(l, LAPIC_ICR_LO, 0x00044400);
	CHECK_EQ(e.sent[2].mode, APIC_DM_NMI);
	CHECK_EQ(e.sent[2].shorthand, APIC_SH_SELF);
	lapic_write(l, LAPIC_ICR_LO, 0x000CC500);
	CHECK_EQ(e.sent[3].mode, APIC_DM_INIT);
	CHECK_EQ(e.sent[3].shorthand, APIC_SH_OTHERS);
	CHECK(e.sent[3].level && e.sent[3].assert);
	/* the INIT level de-assert sends nothing */
	lapic_write(l, LAPIC_ICR_LO, 0x000C8500);
	CHECK_EQ(e.nr_sent, 4);
	lapic_write(l, LAPIC_ICR_LO, 0x00084630);
	CHECK_EQ(e.sent[4].mode, APIC_DM_SIPI);
	CHECK_EQ(e.sent[4].vector, 0x30);
	CHECK_EQ(e.sent[4].shorthand, APIC_SH_ALL);

	/* an illegal vector is not sent; ESR shows it after a write to ESR */
	lapic_write(l, LAPIC_LVT_ERROR, 0xFE);
	lapic_write(l, LAPIC_ICR_LO, 0x00004005);
	CHECK_EQ(e.nr_sent, 5);
	CHECK_EQ(lapic_read(l, LAPIC_ESR), 0);
	lapic_write(l, LAPIC_ESR, 0);
	CHECK_EQ(lapic_read(l, LAPIC_ESR), LAPIC_ESR_SEND_ILLEGAL);
	/* ...and raised the LVT error vector */
	CHECK_EQ(lapic_pending_interrupt(l), 0xFE);
	lapic_write(l, LAPIC_ESR, 0);
	CHECK_EQ(lapic_read(l, LAPIC_ESR), 0);

	/* receiving an illegal vector is an error too */
	lapic_accept(l, &(struct apic_msg){ .vector = 3, .mode = APIC_DM_FIXED });
	lapic_write(l, LAPIC_ESR, 0);
	CHECK_EQ(lapic_read(l, LAPIC_ESR), LAPIC_ESR_RECV_ILLEGAL);
	lapic_destroy(l);
}

static void test_init_sipi_nmi(void)
{
	struct env e;
	struct lapic *l = make(&e, 1, 1);

	int sipi;

	CHECK(!lapic_take_start(l, &sipi));
	CHECK_EQ(sipi, -1);
	CHECK(!lapic_take_nmi(l));
	/* accepted even while software-disabled */
	lapic_accept(l, &(struct apic_msg){ .mode = APIC_DM_INIT, .level = true, .assert = true });
	lapic_accept(l, &(struct apic_msg){ .mode = APIC_DM_SIPI, .vector = 0x9A });
	lapic_accept(l, &(struct apic_msg){ .mode = APIC_DM_NMI });
	CHECK_EQ(e.kicks, 3);
	/* INIT then SIPI: both taken at once, so the SIPI is known to follow the INIT */
	CHECK(lapic_take_start(l, &sipi));
	CHECK_EQ(sipi, 0x9A);
	CHECK(!lapic_take_start(l, &sipi));
	CHECK_EQ(sipi, -1);
	CHECK(lapic_take_nmi(l));
	CHECK(!lapic_take_nmi(l));
	/* a later INIT cancels a SIPI that was not taken yet */
	lapic_accept(l, &(struct apic_msg){ .mode = APIC_DM_SIPI, .vector = 0x10 });
	lapic_accept(l, &(struct apic_msg){ .mode = APIC_DM_INIT, .level = true, .assert = true });
	CHECK(lapic_take_start(l, &sipi));
	CHECK_EQ(sipi, -1);
	/* a SIPI alone */
	lapic_accept(l, &(struct apic_msg){ .mode = APIC_DM_SIPI, .vector = 0x11 });
	CHECK(!lapic_take_start(l, &sipi));
	CHECK_EQ(sipi, 0x11);
	/* an INIT level de-assert is ignored */
	lapic_accept(l, &(struct apic_msg){ .mode = APIC_DM_INIT, .level = true, .assert = false });
	CHECK(!lapic_take_start(l, &sipi));
	lapic_destroy(l);
}

static void test_extint(void)
{
	struct env e;
	struct lapic *l = make(&e, 0, 0);

	CHECK(!lapic_accepts_extint(l));
	lapic_write(l, LAPIC_SVR, 0x1FF);
	lapic_write(l, LAPIC_LVT_LINT0, 0x700);
	CHECK(lapic_accepts_extint(l));
	lapic_write(l, LAPIC_LVT_LINT0, 0x10700);
	CHECK(!lapic_accepts_extint(l));
	lapic_write(l, LAPIC_LVT_LINT0, 0x400); /* NMI mode */
	CHECK(!lapic_accepts_extint(l));
	/* software-disabling masks every LVT */
	lapic_write(l, LAPIC_LVT_LINT0, 0x700);
	lapic_write(l, LAPIC_SVR, 0x0FF);
	CHECK(!lapic_accepts_extint(l));
	CHECK_EQ(lapic_read(l, LAPIC_LVT_LINT0), 0x10700);
	lapic_destroy(l);
}

static void test_timer(void)
{
	struct env e;
	struct lapic *l = make(&e, 0, 0);

	lapic_write(l, LAPIC_SVR, 0x1FF);
	/* one-shot, divide by 1: 1000 counts = 1000 ns */
	e.now = 5000;
	lapic_write(l, LAPIC_TDCR, 0xB);
	lapic_write(l, LAPIC_LVT_TIMER, 0x40);
	lapic_write(l, LAPIC_TMICT, 1000);
	CHECK_EQ(e.armed, 6000);
	CHECK_EQ(lapic_timer_deadline(l), 6000);
	e.now = 5250;
	CHECK_EQ(lapic_read(l, LAPIC_TMCCT), 750);
	lapic_timer_expired(l); /* early: nothing */
	CHECK_EQ(lapic_pending_interrupt(l), -1);
	e.now = 6001;
	CHECK_EQ(lapic_read(l, LAPIC_TMCCT), 0);
	lapic_timer_expired(l);
	CHECK_EQ(lapic_pending_interrupt(l), 0x40);
	CHECK_EQ(e.armed, 0);
	CHECK_EQ(lapic_timer_deadline(l), 0);
	CHECK_EQ(lapic_ack_interrupt(l), 0x40);
	lapic_write(l, LAPIC_EOI, 0);

	/* divide by 2: twice as long */
	e.now = 10000;
	lapic_write(l, LAPIC_TDCR, 0x0);
	lapic_write(l, LAPIC_TMICT, 1000);
	CHECK_EQ(e.armed, 12000);
	e.now = 11000;
	CHECK_EQ(lapic_read(l, LAPIC_TMCCT), 500);
	/* divide by 128 */
	lapic_write(l, LAPIC_TDCR, 0xA);
	e.now = 20000;
	lapic_write(l, LAPIC_TMICT, 10);
	CHECK_EQ(e.armed, 21280);
	/* writing 0 stops it */
	lapic_write(l, LAPIC_TMICT, 0);
	CHECK_EQ(e.armed, 0);
	CHECK_EQ(lapic_read(l, LAPIC_TMCCT), 0);

	/* periodic, 100 us; missed periods coalesce into one interrupt */
	lapic_write(l, LAPIC_TDCR, 0xB);
	lapic_write(l, LAPIC_LVT_TIMER, 0x20041);
	e.now = 1000000;
	lapic_write(l, LAPIC_TMICT, 100000);
	CHECK_EQ(e.armed, 1100000);
	e.now = 1350000;
	CHECK_EQ(lapic_read(l, LAPIC_TMCCT), 50000);
	lapic_timer_expired(l);
	CHECK_EQ(e.armed, 1400000);
	CHECK_EQ(lapic_ack_interrupt(l), 0x41);
	CHECK_EQ(lapic_pending_interrupt(l), -1);
	lapic_write(l, LAPIC_EOI, 0);
	e.now = 1400000;
	lapic_timer_expired(l);
	CHECK_EQ(e.armed, 1500000);
	CHECK_EQ(lapic_pending_interrupt(l), 0x41);
	CHECK_EQ(lapic_ack_interrupt(l), 0x41);
	lapic_write(l, LAPIC_EOI, 0);
	/* a tiny periodic count is held to the minimum period */
	e.now = 2000000;
	lapic_write(l, LAPIC_TMICT, 10);
	CHECK_EQ(e.armed, 2000000 + LAPIC_TIMER_MIN_PERIOD_NS);
	/*
	 * ...also when the divider shrinks the period while it runs, or a short
	 * one-shot count becomes periodic: the re-arm after each expiry keeps it.
	 */
	lapic_write(l, LAPIC_TDCR, 0xB); /* counts left: at most TMICT, 10 */
	CHECK_EQ(e.armed, 2000010);
	e.now = 2000010;
	lapic_timer_expired(l);
	CHECK_EQ(e.armed, 2000010 + LAPIC_TIMER_MIN_PERIOD_NS);
	CHECK_EQ(lapic_ack_interrupt(l), 0x41);
	lapic_write(l, LAPIC_EOI, 0);
	lapic_write(l, LAPIC_LVT_TIMER, 0x41);
	e.now = 2500000;
	lapic_write(l, LAPIC_TMICT, 10);
	CHECK_EQ(e.armed, 2500010);
	lapic_write(l, LAPIC_LVT_TIMER, 0x20041);
	e.now = 2500010;
	lapic_timer_expired(l);
	CHECK_EQ(e.armed, 2500010 + LAPIC_TIMER_MIN_PERIOD_NS);
	CHECK_EQ(lapic_ack_interrupt(l), 0x41);
	lapic_write(l, LAPIC_EOI, 0);

	/* masked: it counts, but raises nothing */
	lapic_write(l, LAPIC_LVT_TIMER, 0x30041);
	e.now = 3000000;
	lapic_write(l, LAPIC_TMICT, 100000);
	e.now = 3100000;
	lapic_timer_expired(l);
	CHECK_EQ(lapic_pending_interrupt(l), -1);
	CHECK_EQ(e.armed, 3200000);

	/* INIT stops it */
	lapic_reset(l);
	CHECK_EQ(e.armed, 0);
	lapic_destroy(l);
}

static void test_mmio(void)
{
	struct env e;
	struct lapic *l = make(&e, 0, 2);
	uint8_t data[8];
	struct io_access a = { .len = 4, .data = data };

	a.off = LAPIC_VERSION;
	lapic_access(l, &a);
	CHECK_EQ(io_data_get(&a), LAPIC_VERSION_VALUE);
	a.off = LAPIC_SVR;
	a.write = true;
	io_data_set(&a, 0x1FF);
	lapic_access(l, &a);
	CHECK_EQ(lapic_read(l, LAPIC_SVR), 0x1FF);
	/* a byte read of the ID register's top byte */
	a.write = false;
	a.off = LAPIC_ID + 3;
	a.len = 1;
	lapic_access(l, &a);
	CHECK_EQ(data[0], 2);
	/* unaligned writes are ignored */
	a.write = true;
	a.off = LAPIC_TPR + 4;
	a.len = 4;
	io_data_set(&a, 0xFF);
	lapic_access(l, &a);
	CHECK_EQ(lapic_read(l, LAPIC_TPR), 0);
	/* an unknown register is an illegal register access */
	lapic_write(l, 0x3F0, 1);
	lapic_write(l, LAPIC_ESR, 0);
	CHECK_EQ(lapic_read(l, LAPIC_ESR), LAPIC_ESR_ILLEGAL_REG);
	lapic_destroy(l);
}

/* Four LAPICs on one bus, each reached through a port that accepts into it. */
struct node {
	struct apic_port port;
	struct lapic *l;
	struct env e;
};

static void node_deliver(struct apic_port *p, const struct apic_msg *m)
{
	lapic_accept(((struct node *)p)->l, m);
}

static struct apic_bus bus;
static struct node nodes[4];

static void bus_setup_ids(const uint32_t *ids)
{
	apic_bus_init(&bus, 4);
	for (unsigned i = 0; i < 4; i++) {
		struct lapic_env le = {
			.opaque = &nodes[i].e, .send = e_send, .eoi = e_eoi, .kick = e_kick,
			.timer_arm = e_arm, .dest_changed = e_dest, .now = e_now,
		};

		memset(&nodes[i].e, 0, sizeof(nodes[i].e));
		nodes[i].e.bus = &bus;
		nodes[i].l = lapic_create(i, ids[i], i == 0, &le);
		nodes[i].port.deliver = node_deliver;
		apic_bus_attach(&bus, i, ids[i], &nodes[i].port);
		lapic_write(nodes[i].l, LAPIC_SVR, 0x1FF);
	}
}

static void bus_setup(void)
{
	bus_setup_ids((const uint32_t[]){ 0, 2, 4, 6 });
}

/* Mirror what the VMM does: the bus learns of destination changes. */
static void sync_dest(unsigned i)
{
	const struct env *e = &nodes[i].e;

	apic_bus_set_dest(&bus, i, &(struct apic_dest_state){ .id = e->id, .ldr = e->ldr,
							      .dfr = e->dfr,
							      .x2apic = e->x2apic });
}

static void set_logical(unsigned i, uint32_t ldr, uint32_t dfr)
{
	lapic_write(nodes[i].l, LAPIC_DFR, dfr);
	lapic_write(nodes[i].l, LAPIC_LDR, ldr);
	sync_dest(i);
}

static unsigned who_got(uint8_t vector)
{
	unsigned mask = 0;

	for (unsigned i = 0; i < 4; i++) {
		if (lapic_pending_interrupt(nodes[i].l) == vector) {
			mask |= 1u << i;
			lapic_ack_interrupt(nodes[i].l);
			lapic_write(nodes[i].l, LAPIC_EOI, 0);
		}
	}
	return mask;
}

static void send(unsigned from, uint32_t hi, uint32_t lo)
{
	lapic_write(nodes[from].l, LAPIC_ICR_HI, hi);
	lapic_write(nodes[from].l, LAPIC_ICR_LO, lo);
}

static void test_destinations(void)
{
	int sipi;

	bus_setup();
	/* physical: by APIC ID, 0xFF is everyone, an unknown ID nobody */
	send(0, 4u << 24, 0x4050);
	CHECK_EQ(who_got(0x50), 1u << 2);
	send(0, 0xFFu << 24, 0x4051);
	CHECK_EQ(who_got(0x51), 0xF);
	send(0, 5u << 24, 0x4052);
	CHECK_EQ(who_got(0x52), 0);
	/* shorthands */
	send(1, 0, 0x44053);
	CHECK_EQ(who_got(0x53), 1u << 1);
	send(1, 0, 0x84054);
	CHECK_EQ(who_got(0x54), 0xF);
	send(1, 0, 0xC4055);
	CHECK_EQ(who_got(0x55), 0xD);

	/* logical flat: one bit per APIC in LDR[31:24] */
	for (unsigned i = 0; i < 4; i++)
		set_logical(i, 1u << (24 + i), 0xFFFFFFFF);
	send(0, 0x05u << 24, 0x4856);
	CHECK_EQ(who_got(0x56), 0x5);
	send(0, 0x08u << 24, 0x4857);
	CHECK_EQ(who_got(0x57), 0x8);
	send(0, 0xFFu << 24, 0x4858);
	CHECK_EQ(who_got(0x58), 0xF);
	/* lowest priority reaches exactly one of the set */
	for (int k = 0; k < 4; k++) {
		send(0, 0x0Fu << 24, 0x4959);
		unsigned got = who_got(0x59);

		CHECK(got && !(got & (got - 1)));
	}

	/* logical cluster: cluster in LDR[31:28], members in LDR[27:24] */
	set_logical(0, 0x11000000, 0x0FFFFFFF);
	set_logical(1, 0x12000000, 0x0FFFFFFF);
	set_logical(2, 0x21000000, 0x0FFFFFFF);
	set_logical(3, 0x22000000, 0x0FFFFFFF);
	send(0, 0x13u << 24, 0x485A);
	CHECK_EQ(who_got(0x5A), 0x3);
	send(0, 0x22u << 24, 0x485B);
	CHECK_EQ(who_got(0x5B), 0x8);
	send(0, 0xF1u << 24, 0x485C); /* cluster 15: every cluster */
	CHECK_EQ(who_got(0x5C), 0x5);
	CHECK(apic_bus_match(&bus, 2, &(struct apic_msg){ .dest = 0x21, .logical = true }));
	CHECK(!apic_bus_match(&bus, 2, &(struct apic_msg){ .dest = 0x12, .logical = true }));

	/* INIT and SIPI go through the bus like the rest */
	send(0, 6u << 24, 0x4500);
	CHECK(lapic_take_start(nodes[3].l, &sipi));
	CHECK(!lapic_take_start(nodes[2].l, &sipi));
	send(0, 6u << 24, 0x4612);
	CHECK(!lapic_take_start(nodes[3].l, &sipi));
	CHECK_EQ(sipi, 0x12);
	for (unsigned i = 0; i < 4; i++)
		lapic_destroy(nodes[i].l);
}

#define MSR(off) (LAPIC_X2APIC_MSR_FIRST + (off) / 16)

/* IA32_APIC_BASE's modes and the x2APIC MSRs of one LAPIC (SDM vol. 3, 11.12). */
static void test_x2apic_registers(void)
{
	struct env e;
	struct lapic *l = make(&e, 0, 0x123);
	uint64_t v, base = APIC_DEFAULT_BASE | LAPIC_BASE_ENABLE;

	CHECK_EQ(lapic_base(l), base | LAPIC_BASE_BSP);
	CHECK(!lapic_x2apic(l));
	CHECK_EQ(lapic_read(l, LAPIC_ID), 0x23u << 24); /* xAPIC: the low 8 bits */
	CHECK(lapic_msr_read(l, MSR(LAPIC_TPR), &v) == -1); /* no MSRs in xAPIC mode */
	/* invalid: x2APIC while disabled, reserved bits */
	CHECK(lapic_set_base(l, APIC_DEFAULT_BASE | LAPIC_BASE_EXTD) == -1);
	CHECK(lapic_set_base(l, base | 1u << 9) == -1);
	CHECK(lapic_set_base(l, base | 1) == -1);
	CHECK(!lapic_x2apic(l));

	/* xAPIC -> x2APIC: the 32-bit initial ID, its logical ID, reported */
	lapic_write(l, LAPIC_ID, 0x45u << 24); /* a changed xAPIC ID does not carry over */
	e.dest_changes = 0;
	CHECK(lapic_set_base(l, base | LAPIC_BASE_EXTD) == 0);
	CHECK(lapic_x2apic(l));
	CHECK_EQ(lapic_base(l), base | LAPIC_BASE_EXTD | LAPIC_BASE_BSP); /* BSP stays */
	CHECK_EQ(e.dest_changes, 1);
	CHECK(e.x2apic && e.id == 0x123 && e.ldr == (0x12u << 16 | 1u << 3) && e.dfr == 0);
	CHECK_EQ(lapic_id(l), 0x123);
	CHECK(lapic_msr_read(l, MSR(LAPIC_ID), &v) == 0 && v == 0x123);
	CHECK(lapic_msr_read(l, MSR(LAPIC_LDR), &v) == 0 && v == (0x12u << 16 | 1u << 3));
	CHECK(lapic_msr_read(l, MSR(LAPIC_VERSION), &v) == 0 && v == LAPIC_VERSION_VALUE);
	/* x2APIC -> xAPIC directly is invalid */
	CHECK(lapic_set_base(l, base) == -1);
	CHECK(lapic_x2apic(l));

	/* registers that are not there, read-only ones, write-only ones */
	static const unsigned none[] = { 0x000, 0x010, 0x040, 0x070, LAPIC_APR, LAPIC_RRD,
					 LAPIC_DFR, 0x290, 0x2E0, LAPIC_ICR_HI, 0x3A0, 0x3D0,
					 0x3F0 + 0x10, 0xFF0 };
	for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
		CHECK(lapic_msr_read(l, MSR(none[i]), &v) == -1);
		CHECK(lapic_msr_write(l, MSR(none[i]), 0) == -1);
	}
	static const unsigned ro[] = { LAPIC_ID, LAPIC_VERSION, LAPIC_PPR, LAPIC_LDR, LAPIC_ISR,
				       LAPIC_TMR + 0x70, LAPIC_IRR + 0x30, LAPIC_TMCCT };
	for (size_t i = 0; i < sizeof(ro) / sizeof(ro[0]); i++) {
		CHECK(lapic_msr_read(l, MSR(ro[i]), &v) == 0);
		CHECK(lapic_msr_write(l, MSR(ro[i]), 0) == -1);
	}
	CHECK(lapic_msr_read(l, MSR(LAPIC_EOI), &v) == -1);
	CHECK(lapic_msr_read(l, MSR(LAPIC_X2APIC_SELF_IPI), &v) == -1);
	CHECK(lapic_msr_write(l, LAPIC_X2APIC_MSR_LAST + 1, 0) == -1);
	/* the MMIO page is not the APIC's any more */
	lapic_write(l, LAPIC_SVR, 0x1FF); /* (the register interface still is) */
	uint8_t data[4];
	struct io_access a = { .off = LAPIC_TPR, .len = 4, .write = true, .data = data };

	io_data_set(&a, 0x20);
	lapic_access(l, &a);
	CHECK(lapic_msr_read(l, MSR(LAPIC_TPR), &v) == 0 && v == 0);
	a = (struct io_access){ .off = LAPIC_VERSION, .len = 4, .data = data };
	lapic_access(l, &a);
	CHECK_EQ(io_data_get(&a), 0);

	/* writes: 32-bit registers refuse the high half; EOI and ESR only take 0 */
	CHECK(lapic_msr_write(l, MSR(LAPIC_TPR), 0x30) == 0);
	CHECK(lapic_msr_read(l, MSR(LAPIC_TPR), &v) == 0 && v == 0x30);
	CHECK(lapic_msr_write(l, MSR(LAPIC_TPR), 1ull << 32) == -1);
	CHECK(lapic_msr_write(l, MSR(LAPIC_EOI), 1) == -1);
	CHECK(lapic_msr_write(l, MSR(LAPIC_EOI), 0) == 0);
	CHECK(lapic_msr_write(l, MSR(LAPIC_ESR), 1) == -1);
	CHECK(lapic_msr_write(l, MSR(LAPIC_ESR), 0) == 0);
	CHECK(lapic_msr_write(l, MSR(LAPIC_TPR), 0) == 0);

	/* the ICR: one 64-bit write, a 32-bit destination, read back whole */
	e.nr_sent = 0;
	CHECK(lapic_msr_write(l, MSR(LAPIC_ICR_LO), 0x456ull << 32 | 0x4041) == 0);
	CHECK_EQ(e.nr_sent, 1);
	CHECK(e.sent[0].x2apic && e.sent[0].dest == 0x456 && e.sent[0].vector == 0x41 &&
	      !e.sent[0].logical && e.sent[0].mode == APIC_DM_FIXED && e.sent[0].src_cpu == 0);
	CHECK(lapic_msr_read(l, MSR(LAPIC_ICR_LO), &v) == 0 && v == (0x456ull << 32 | 0x4041));
	/* SELF IPI: to this LAPIC alone, without a message on the bus */
	CHECK(lapic_msr_write(l, MSR(LAPIC_X2APIC_SELF_IPI), 0x52) == 0);
	CHECK_EQ(e.nr_sent, 1);
	CHECK_EQ(lapic_pending_interrupt(l), 0x52);
	CHECK_EQ(lapic_ack_interrupt(l), 0x52);
	CHECK(lapic_msr_read(l, MSR(LAPIC_ISR + 0x20), &v) == 0 && v == 1u << (0x52 - 64));
	CHECK(lapic_msr_write(l, MSR(LAPIC_EOI), 0) == 0);
	CHECK_EQ(lapic_pending_interrupt(l), -1);
	/* INIT keeps the mode and the ID */
	lapic_reset(l);
	CHECK(lapic_x2apic(l) && lapic_id(l) == 0x123 && e.ldr == (0x12u << 16 | 1u << 3));

	/* x2APIC -> disabled: power-on state, the xAPIC ID again; no messages taken */
	CHECK(lapic_set_base(l, APIC_DEFAULT_BASE) == 0);
	CHECK(!lapic_x2apic(l) && !e.x2apic && e.id == 0x23);
	CHECK(lapic_msr_read(l, MSR(LAPIC_ID), &v) == -1);
	lapic_accept(l, &(struct apic_msg){ .vector = 0x60, .mode = APIC_DM_NMI, .assert = true });
	CHECK(!lapic_take_nmi(l));
	/* disabled -> x2APIC is invalid; -> xAPIC -> x2APIC is the way */
	CHECK(lapic_set_base(l, base | LAPIC_BASE_EXTD) == -1);
	CHECK(lapic_set_base(l, base) == 0);
	CHECK(lapic_set_base(l, base | LAPIC_BASE_EXTD) == 0);
	CHECK(lapic_x2apic(l) && lapic_id(l) == 0x123);
	lapic_destroy(l);
}

/* x2APIC destinations on the bus: 32-bit IDs, clusters of 16, broadcasts. */
static void test_x2apic_destinations(void)
{
	uint64_t base = APIC_DEFAULT_BASE | LAPIC_BASE_ENABLE | LAPIC_BASE_EXTD;
	int sipi;

	bus_setup_ids((const uint32_t[]){ 0, 0x11, 0x12, 0x300 });
	for (unsigned i = 0; i < 4; i++) {
		CHECK(lapic_set_base(nodes[i].l, base) == 0);
		sync_dest(i);
	}
	/* physical: the whole ID, all ones for everyone */
	CHECK(lapic_msr_write(nodes[0].l, MSR(LAPIC_ICR_LO), 0x300ull << 32 | 0x4050) == 0);
	CHECK_EQ(who_got(0x50), 1u << 3);
	CHECK(lapic_msr_write(nodes[0].l, MSR(LAPIC_ICR_LO), 0xFFFFFFFFull << 32 | 0x4051) == 0);
	CHECK_EQ(who_got(0x51), 0xF);
	CHECK(lapic_msr_write(nodes[0].l, MSR(LAPIC_ICR_LO), 0x00ull << 32 | 0x4052) == 0);
	CHECK_EQ(who_got(0x52), 1u << 0);
	/* 0xFF is an ID like any other in x2APIC format */
	CHECK(lapic_msr_write(nodes[0].l, MSR(LAPIC_ICR_LO), 0xFFull << 32 | 0x4053) == 0);
	CHECK_EQ(who_got(0x53), 0);
	/* logical: cluster (ID / 16) in the high half, a bit per member (ID % 16) */
	CHECK(lapic_msr_write(nodes[0].l, MSR(LAPIC_ICR_LO), 0x10006ull << 32 | 0x4854) == 0);
	CHECK_EQ(who_got(0x54), 0x6);
	CHECK(lapic_msr_write(nodes[0].l, MSR(LAPIC_ICR_LO), 0x300001ull << 32 | 0x4855) == 0);
	CHECK_EQ(who_got(0x55), 0x8);
	CHECK(lapic_msr_write(nodes[0].l, MSR(LAPIC_ICR_LO), 0x10001ull << 32 | 0x4856) == 0);
	CHECK_EQ(who_got(0x56), 0);
	/* shorthands */
	CHECK(lapic_msr_write(nodes[1].l, MSR(LAPIC_ICR_LO), 0xC4057) == 0);
	CHECK_EQ(who_got(0x57), 0xD);
	/* xAPIC-format messages (IOAPIC, MSI): physical by ID, 0xFF everyone, no logical */
	apic_bus_send(&bus, &(struct apic_msg){ .vector = 0x58, .dest = 0x12, .assert = true,
						.src_cpu = APIC_SRC_NONE });
	CHECK_EQ(who_got(0x58), 1u << 2);
	apic_bus_send(&bus, &(struct apic_msg){ .vector = 0x59, .dest = 0xFF, .assert = true,
						.src_cpu = APIC_SRC_NONE });
	CHECK_EQ(who_got(0x59), 0xF);
	apic_bus_send(&bus, &(struct apic_msg){ .vector = 0x5A, .dest = 0x01, .logical = true,
						.assert = true, .src_cpu = APIC_SRC_NONE });
	CHECK_EQ(who_got(0x5A), 0);
	/* INIT and SIPI to an ID above 255 */
	CHECK(lapic_msr_write(nodes[0].l, MSR(LAPIC_ICR_LO), 0x300ull << 32 | 0x4500) == 0);
	CHECK(lapic_take_start(nodes[3].l, &sipi));
	CHECK(lapic_msr_write(nodes[0].l, MSR(LAPIC_ICR_LO), 0x300ull << 32 | 0x4612) == 0);
	CHECK(!lapic_take_start(nodes[3].l, &sipi) && sipi == 0x12);
	/* an xAPIC target of an x2APIC sender: physical only */
	CHECK(lapic_set_base(nodes[2].l, APIC_DEFAULT_BASE) == 0);
	CHECK(lapic_set_base(nodes[2].l, APIC_DEFAULT_BASE | LAPIC_BASE_ENABLE) == 0);
	lapic_write(nodes[2].l, LAPIC_SVR, 0x1FF);
	lapic_write(nodes[2].l, LAPIC_LDR, 0xFF000000u);
	sync_dest(2);
	CHECK(lapic_msr_write(nodes[0].l, MSR(LAPIC_ICR_LO), 0x12ull << 32 | 0x405B) == 0);
	CHECK_EQ(who_got(0x5B), 1u << 2);
	CHECK(lapic_msr_write(nodes[0].l, MSR(LAPIC_ICR_LO), 0x1FFFFull << 32 | 0x485C) == 0);
	CHECK_EQ(who_got(0x5C), 0x2);
	/*
	 * An AP above 255 after reset, in xAPIC mode (its ID register says
	 * 0x00), started by an x2APIC BSP: INIT and SIPI reach it by its
	 * initial ID, before and after the INIT resets its LAPIC, as the vCPU
	 * does.
	 */
	CHECK(lapic_set_base(nodes[3].l, APIC_DEFAULT_BASE) == 0);
	CHECK(lapic_set_base(nodes[3].l, APIC_DEFAULT_BASE | LAPIC_BASE_ENABLE) == 0);
	sync_dest(3);
	CHECK_EQ(lapic_id(nodes[3].l), 0);
	CHECK(lapic_msr_write(nodes[0].l, MSR(LAPIC_ICR_LO), 0x300ull << 32 | 0x4500) == 0);
	CHECK(lapic_take_start(nodes[3].l, &sipi));
	lapic_reset(nodes[3].l);
	sync_dest(3);
	CHECK(lapic_msr_write(nodes[0].l, MSR(LAPIC_ICR_LO), 0x300ull << 32 | 0x4612) == 0);
	CHECK(!lapic_take_start(nodes[3].l, &sipi) && sipi == 0x12);
	for (unsigned i = 0; i < 4; i++)
		lapic_destroy(nodes[i].l);
}

int main(void)
{
	RUN(test_reset_state);
	RUN(test_priorities);
	RUN(test_level_eoi);
	RUN(test_icr);
	RUN(test_init_sipi_nmi);
	RUN(test_extint);
	RUN(test_timer);
	RUN(test_mmio);
	RUN(test_destinations);
	RUN(test_x2apic_registers);
	RUN(test_x2apic_destinations);
	return check_summary();
}
