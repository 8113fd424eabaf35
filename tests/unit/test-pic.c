/* The 8259 pair: Linux's initialisation, masking, cascade, EOI, ELCR. */
#include "tests/lib/check.h"
#include "vmm/hw/pic.h"

static unsigned notified;

static void on_notify(void *opaque)
{
	(void)opaque;
	notified++;
}

static void out(struct io_bus *bus, uint16_t port, uint8_t v)
{
	uint8_t d = v;
	struct io_access a = { .addr = port, .len = 1, .write = true, .data = &d };

	io_bus_dispatch(bus, &a);
}

static uint8_t in(struct io_bus *bus, uint16_t port)
{
	uint8_t d = 0;
	struct io_access a = { .addr = port, .len = 1, .data = &d };

	io_bus_dispatch(bus, &a);
	return d;
}

/* What Linux's init_8259A does (vectors 0x30 and 0x38). */
static void linux_init(struct io_bus *bus)
{
	out(bus, 0x21, 0xFF);
	out(bus, 0xA1, 0xFF);
	out(bus, 0x20, 0x11);
	out(bus, 0x21, 0x30);
	out(bus, 0x21, 0x04);
	out(bus, 0x21, 0x01);
	out(bus, 0xA0, 0x11);
	out(bus, 0xA1, 0x38);
	out(bus, 0xA1, 0x02);
	out(bus, 0xA1, 0x01);
}

static void test_pic(void)
{
	struct io_bus bus;
	struct pic *p;

	io_bus_init(&bus, "port");
	p = pic_create(&bus, on_notify, NULL);
	linux_init(&bus);
	CHECK_EQ(in(&bus, 0x21), 0x00); /* ICW1 clears the mask... */
	/* ...so Linux masks everything again after the initialisation */
	out(&bus, 0x21, 0xFF);
	out(&bus, 0xA1, 0xFF);
	CHECK_EQ(in(&bus, 0x21), 0xFF);
	CHECK_EQ(in(&bus, 0xA1), 0xFF);

	/* masked: nothing comes out */
	pic_set_irq(p, 0, true);
	pic_set_irq(p, 0, false);
	CHECK(!pic_output(p));
	/* unmasking IRQ 0 lets the latched edge through */
	out(&bus, 0x21, 0xFE);
	CHECK(pic_output(p));
	CHECK_EQ(notified, 1);
	CHECK_EQ(pic_ack(p), 0x30);
	CHECK(!pic_output(p));
	/* in service: OCW3 read ISR */
	out(&bus, 0x20, 0x0B);
	CHECK_EQ(in(&bus, 0x20), 0x01);
	/* a lower-priority IRQ waits for the EOI */
	out(&bus, 0x21, 0xEE);
	pic_set_irq(p, 4, true);
	CHECK(!pic_output(p));
	out(&bus, 0x20, 0x0A); /* read IRR */
	CHECK_EQ(in(&bus, 0x20), 0x10);
	out(&bus, 0x20, 0x20); /* non-specific EOI */
	CHECK(pic_output(p));
	CHECK_EQ(pic_ack(p), 0x34);
	out(&bus, 0x20, 0x64); /* specific EOI, IRQ 4 */
	pic_set_irq(p, 4, false);

	/* the slave through the cascade */
	out(&bus, 0x21, 0xFA); /* unmask 0 and 2 */
	out(&bus, 0xA1, 0xFE); /* unmask 8 */
	pic_set_irq(p, 8, true);
	CHECK(pic_output(p));
	CHECK_EQ(pic_ack(p), 0x38);
	out(&bus, 0xA0, 0x20);
	out(&bus, 0x20, 0x20);
	CHECK(!pic_output(p));
	pic_set_irq(p, 8, false);

	/* level-triggered through ELCR: stays requested while the line is high */
	out(&bus, 0x4D1, 0x02); /* IRQ 9 level */
	CHECK_EQ(in(&bus, 0x4D1), 0x02);
	out(&bus, 0xA1, 0xFD);
	pic_set_irq(p, 9, true);
	CHECK_EQ(pic_ack(p), 0x39);
	out(&bus, 0xA0, 0x20);
	out(&bus, 0x20, 0x20);
	CHECK(pic_output(p)); /* still high: requested again */
	pic_set_irq(p, 9, false);
	CHECK(!pic_output(p));
	/* IRQs 0-2 cannot be level-triggered */
	out(&bus, 0x4D0, 0xFF);
	CHECK_EQ(in(&bus, 0x4D0), 0xF8);

	/* with nothing requested, an acknowledge gets the spurious IRQ 7 */
	CHECK_EQ(pic_ack(p), 0x37);
	pic_destroy(p);
	io_bus_destroy(&bus);
}

int main(void)
{
	RUN(test_pic);
	return check_summary();
}
