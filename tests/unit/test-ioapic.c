/* The IOAPIC: its registers, edge and level pins, remote IRR and EOI. */
#include <string.h>

#include "tests/lib/check.h"
#include "vmm/x86/ioapic.h"

static struct apic_msg sent[32];
static unsigned nr_sent;

static void on_send(void *opaque, const struct apic_msg *m)
{
	(void)opaque;
	if (nr_sent < 32)
		sent[nr_sent++] = *m;
}

static void redir(struct ioapic *io, unsigned pin, uint64_t rte)
{
	/* the way Linux does it: high half first, low half (with the mask) last */
	ioapic_write_reg(io, IOAPIC_REG_REDIR + 2 * pin + 1, rte >> 32);
	ioapic_write_reg(io, IOAPIC_REG_REDIR + 2 * pin, (uint32_t)rte);
}

static uint64_t rte_of(struct ioapic *io, unsigned pin)
{
	return ioapic_read_reg(io, IOAPIC_REG_REDIR + 2 * pin) |
	       (uint64_t)ioapic_read_reg(io, IOAPIC_REG_REDIR + 2 * pin + 1) << 32;
}

static void test_registers(void)
{
	struct ioapic *io = ioapic_create(3, on_send, NULL);

	CHECK_EQ(ioapic_read_reg(io, IOAPIC_REG_ID), 3u << 24);
	CHECK_EQ(ioapic_read_reg(io, IOAPIC_REG_VER), 0x00170011);
	for (unsigned pin = 0; pin < IOAPIC_NR_PINS; pin++)
		CHECK_EQ(rte_of(io, pin), IOAPIC_RTE_MASKED);
	ioapic_write_reg(io, IOAPIC_REG_ID, 5u << 24);
	CHECK_EQ(ioapic_read_reg(io, IOAPIC_REG_ID), 5u << 24);
	/* read-only bits (delivery status, remote IRR) ignore writes */
	redir(io, 7, 0x0300000000015F31ull);
	CHECK_EQ(rte_of(io, 7), 0x0300000000010F31ull);
	/* a register beyond the table reads 0 */
	CHECK_EQ(ioapic_read_reg(io, IOAPIC_REG_REDIR + 2 * IOAPIC_NR_PINS), 0);

	/* the MMIO window: IOREGSEL then IOWIN */
	uint8_t data[4];
	struct io_access a = { .len = 4, .data = data, .write = true, .off = IOAPIC_REGSEL };

	io_data_set(&a, IOAPIC_REG_REDIR + 2 * 7);
	ioapic_access(io, &a);
	a.write = false;
	a.off = IOAPIC_WIN;
	ioapic_access(io, &a);
	CHECK_EQ(io_data_get(&a), 0x00010F31);
	a.write = true;
	io_data_set(&a, 0x00000A40);
	ioapic_access(io, &a);
	CHECK_EQ(rte_of(io, 7), 0x0300000000000A40ull);
	a.write = false;
	a.off = IOAPIC_REGSEL;
	ioapic_access(io, &a);
	CHECK_EQ(io_data_get(&a), IOAPIC_REG_REDIR + 2 * 7);
	ioapic_destroy(io);
}

static void test_edge(void)
{
	struct ioapic *io = ioapic_create(0, on_send, NULL);

	nr_sent = 0;
	redir(io, 4, 0x0100000000000044ull); /* edge, high, fixed, physical, APIC 1 */
	ioapic_set_irq(io, 4, true);
	CHECK_EQ(nr_sent, 1);
	CHECK_EQ(sent[0].vector, 0x44);
	CHECK_EQ(sent[0].dest, 1);
	CHECK_EQ(sent[0].mode, APIC_DM_FIXED);
	CHECK(!sent[0].level && !sent[0].logical);
	CHECK_EQ(sent[0].src_cpu, APIC_SRC_NONE);
	/* staying high is not a new edge */
	ioapic_set_irq(io, 4, true);
	CHECK_EQ(nr_sent, 1);
	ioapic_set_irq(io, 4, false);
	ioapic_set_irq(io, 4, true);
	CHECK_EQ(nr_sent, 2);
	ioapic_set_irq(io, 4, false);

	/* an edge that arrives masked waits, and is delivered on unmask */
	redir(io, 4, 0x0100000000010044ull);
	ioapic_set_irq(io, 4, true);
	ioapic_set_irq(io, 4, false);
	CHECK_EQ(nr_sent, 2);
	CHECK(rte_of(io, 4) & IOAPIC_RTE_PENDING);
	redir(io, 4, 0x0100000000000044ull);
	CHECK_EQ(nr_sent, 3);
	CHECK(!(rte_of(io, 4) & IOAPIC_RTE_PENDING));
	redir(io, 4, 0x0100000000000044ull); /* once only */
	CHECK_EQ(nr_sent, 3);

	/* logical destination mode, lowest priority */
	redir(io, 2, 0x0F00000000000942ull);
	ioapic_set_irq(io, 2, true);
	CHECK_EQ(nr_sent, 4);
	CHECK(sent[3].logical);
	CHECK_EQ(sent[3].mode, APIC_DM_LOWEST);
	CHECK_EQ(sent[3].dest, 0x0F);
	/* an out-of-range pin is ignored */
	ioapic_set_irq(io, IOAPIC_NR_PINS, true);
	CHECK_EQ(nr_sent, 4);
	/*
	 * the extended destination ID: bits 55:49 are the APIC ID's bits 14:8
	 * (APIC ID 0x345 = 0x03 << 8 | 0x45); bits 48 and below stay reserved
	 */
	redir(io, 5, 0x4500000000000045ull | 0x03ull << 49 | 1ull << 48);
	CHECK_EQ(rte_of(io, 5), 0x4500000000000045ull | 0x03ull << 49);
	ioapic_set_irq(io, 5, true);
	CHECK_EQ(nr_sent, 5);
	CHECK_EQ(sent[4].dest, 0x345);
	CHECK(!sent[4].x2apic && !sent[4].logical);
	ioapic_destroy(io);
}

static void test_level(void)
{
	struct ioapic *io = ioapic_create(0, on_send, NULL);

	nr_sent = 0;
	redir(io, 9, 0x0000000000008069ull); /* level, active high, vector 0x69 */
	ioapic_set_irq(io, 9, true);
	CHECK_EQ(nr_sent, 1);
	CHECK(sent[0].level);
	CHECK(rte_of(io, 9) & IOAPIC_RTE_REMOTE_IRR);
	/* while remote IRR is set, nothing more is sent */
	ioapic_set_irq(io, 9, false);
	ioapic_set_irq(io, 9, true);
	CHECK_EQ(nr_sent, 1);
	/* an EOI of another vector changes nothing */
	ioapic_eoi(io, 0x68);
	CHECK(rte_of(io, 9) & IOAPIC_RTE_REMOTE_IRR);
	CHECK_EQ(nr_sent, 1);
	/* EOI with the line still asserted: delivered again */
	ioapic_eoi(io, 0x69);
	CHECK_EQ(nr_sent, 2);
	CHECK(rte_of(io, 9) & IOAPIC_RTE_REMOTE_IRR);
	/* EOI after the line dropped: remote IRR clears, nothing sent */
	ioapic_set_irq(io, 9, false);
	ioapic_eoi(io, 0x69);
	CHECK_EQ(nr_sent, 2);
	CHECK(!(rte_of(io, 9) & IOAPIC_RTE_REMOTE_IRR));

	/* active low: a low line is asserted (its device holds it high while idle) */
	redir(io, 10, 0x000000000001A06Aull);
	ioapic_set_irq(io, 10, true);
	redir(io, 10, 0x000000000000A06Aull);
	CHECK_EQ(nr_sent, 2);
	ioapic_set_irq(io, 10, false);
	CHECK_EQ(nr_sent, 3);
	CHECK_EQ(sent[2].vector, 0x6A);

	/* a masked level pin fires when unmasked if still asserted */
	redir(io, 11, 0x000000000001806Bull);
	ioapic_set_irq(io, 11, true);
	CHECK_EQ(nr_sent, 3);
	redir(io, 11, 0x000000000000806Bull);
	CHECK_EQ(nr_sent, 4);
	CHECK_EQ(sent[3].vector, 0x6B);
	/* switching the pin to edge drops its remote IRR */
	redir(io, 11, 0x000000000000006Bull);
	CHECK(!(rte_of(io, 11) & IOAPIC_RTE_REMOTE_IRR));
	ioapic_destroy(io);
}

/* The polarity applies to the line as it is now, also when the guest changes it. */
static void test_polarity_change(void)
{
	struct ioapic *io = ioapic_create(0, on_send, NULL);

	nr_sent = 0;
	/* a high line on a masked, active-high pin, then made active low: not asserted */
	redir(io, 12, 0x000000000001806Cull);
	ioapic_set_irq(io, 12, true);
	redir(io, 12, 0x000000000000A06Cull);
	CHECK_EQ(nr_sent, 0);
	CHECK(!(rte_of(io, 12) & IOAPIC_RTE_REMOTE_IRR));
	/* a low line on a masked pin, made active low: asserted, delivered */
	redir(io, 13, 0x000000000001806Dull);
	ioapic_set_irq(io, 13, false);
	redir(io, 13, 0x000000000000A06Dull);
	CHECK_EQ(nr_sent, 1);
	CHECK_EQ(sent[0].vector, 0x6D);
	/* an edge pin made active low: the line going low is its rising edge */
	redir(io, 14, 0x000000000000006Eull);
	ioapic_set_irq(io, 14, true);
	CHECK_EQ(nr_sent, 2);
	redir(io, 14, 0x000000000000206Eull);
	ioapic_set_irq(io, 14, false);
	CHECK_EQ(nr_sent, 3);
	CHECK_EQ(sent[2].vector, 0x6E);
	ioapic_destroy(io);
}

int main(void)
{
	RUN(test_registers);
	RUN(test_edge);
	RUN(test_level);
	RUN(test_polarity_change);
	return check_summary();
}
