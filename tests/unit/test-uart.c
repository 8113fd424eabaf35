/* The 16550A: transmit, interrupts and their OUT2 gate, FIFO id, loopback, input. */
#include <fcntl.h>
#include <stdbool.h>
#include <time.h>
#include <unistd.h>

#include "tests/lib/check.h"
#include "vmm/hw/uart.h"

enum { THR = 0, IER = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };

static bool level;
static unsigned changes;

static void on_irq(void *opaque, unsigned irq, bool l)
{
	(void)opaque;
	(void)irq;
	level = l;
	changes++;
}

static void test_uart(void)
{
	struct irq_line line = { .set = on_irq, .irq = 4 };
	int out[2], in[2];
	char buf[16];
	struct uart *u;

	if (pipe(out) || pipe(in)) {
		CHECK(!"pipe");
		return;
	}
	fcntl(out[0], F_SETFL, O_NONBLOCK);
	u = uart_create(NULL, 0x3f8, &line, out[1], in[0]);

	/* transmit: bytes come out at once, the transmitter is always empty */
	CHECK_EQ(uart_inb(u, LSR) & 0x60, 0x60);
	uart_outb(u, THR, 'o');
	uart_outb(u, THR, 'k');
	CHECK_EQ(read(out[0], buf, sizeof(buf)), 2);
	CHECK(buf[0] == 'o' && buf[1] == 'k');

	/* scratch and divisor latch */
	uart_outb(u, SCR, 0x5A);
	CHECK_EQ(uart_inb(u, SCR), 0x5A);
	uart_outb(u, LCR, 0x83);
	uart_outb(u, THR, 0x01); /* DLL */
	uart_outb(u, IER, 0x00); /* DLM */
	CHECK_EQ(uart_inb(u, THR), 0x01);
	uart_outb(u, LCR, 0x03);
	CHECK_EQ(uart_inb(u, LCR), 0x03);
	CHECK_EQ(read(out[0], buf, sizeof(buf)), -1); /* DLL writes send nothing */

	/* FIFO: IIR bits 7:6 say 16550A */
	uart_outb(u, FCR, 0x07);
	CHECK_EQ(uart_inb(u, IIR), 0xC1);

	/* THRE interrupt: only with OUT2, acknowledged by reading IIR */
	uart_outb(u, IER, 0x02);
	CHECK(!level);
	uart_outb(u, MCR, 0x08);
	CHECK(level);
	CHECK_EQ(uart_inb(u, IIR), 0xC2);
	CHECK(!level);
	CHECK_EQ(uart_inb(u, IIR), 0xC1);
	uart_outb(u, THR, '!');
	CHECK(level); /* empty again after the byte */
	uart_outb(u, IER, 0x00);
	CHECK(!level);
	CHECK_EQ(read(out[0], buf, sizeof(buf)), 1);

	/* loopback: what is sent is received; modem lines mirror MCR */
	uart_outb(u, MCR, 0x10 | 0x08 | 0x02 | 0x01);
	CHECK_EQ(uart_inb(u, MSR) & 0xF0, 0xB0);
	uart_outb(u, MCR, 0x10 | 0x0F);
	CHECK_EQ(uart_inb(u, MSR) & 0xF0, 0xF0);
	uart_outb(u, IER, 0x01);
	uart_outb(u, THR, 'L');
	CHECK_EQ(uart_inb(u, LSR) & 0x01, 1);
	CHECK(level);
	CHECK_EQ(uart_inb(u, IIR), 0xC4);
	CHECK_EQ(uart_inb(u, THR), 'L');
	CHECK_EQ(uart_inb(u, LSR) & 0x01, 0);
	CHECK(!level);
	CHECK_EQ(read(out[0], buf, sizeof(buf)), -1); /* nothing went out */
	uart_outb(u, MCR, 0x08);
	CHECK_EQ(uart_inb(u, MSR) & 0xF0, 0xB0);

	/* input from in_fd, read by the UART's thread */
	CHECK_EQ(write(in[1], "hi", 2), 2);
	for (int i = 0; i < 6000 && !(uart_inb(u, LSR) & 1); i++) /* 30 s: a loaded machine */
		nanosleep(&(struct timespec){ 0, 5000000 }, NULL);
	CHECK(level);
	CHECK_EQ(uart_inb(u, THR), 'h');
	CHECK_EQ(uart_inb(u, THR), 'i');
	CHECK(!level);
	uart_destroy(u);
	for (int i = 0; i < 2; i++) {
		close(out[i]);
		close(in[i]);
	}
}

int main(void)
{
	RUN(test_uart);
	return check_summary();
}
