#include "vmm/hw/uart.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"

enum { RBR_THR = 0, IER = 1, IIR_FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };

#define IER_RDI 0x01  /* received data available */
#define IER_THRI 0x02 /* transmitter holding register empty */
#define IER_RLSI 0x04 /* receiver line status */
#define IER_MSI 0x08  /* modem status */

#define IIR_NONE 0x01
#define IIR_MSI 0x00
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_FIFO 0xC0

#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02

#define LCR_DLAB 0x80
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

#define RX_SIZE 64

struct uart {
	pthread_mutex_t lock;
	struct irq_line irq;
	bool irq_level;
	int out_fd, in_fd;
	uint16_t base;

	uint8_t ier, fcr, lcr, mcr, msr_delta, scr, dll, dlm;
	bool thre_pending;
	uint8_t rx[RX_SIZE];
	unsigned rx_head, rx_count;

	pthread_t reader;
	bool reader_started;
	int stop_pipe[2];

	_Atomic uint64_t last_output; /* CLOCK_MONOTONIC ns of the last byte sent, 0: none */
};

static uint8_t iir_locked(const struct uart *u)
{
	uint8_t fifo = u->fcr & FCR_ENABLE ? IIR_FIFO : 0;

	if ((u->ier & IER_RDI) && u->rx_count)
		return IIR_RDI | fifo;
	if ((u->ier & IER_THRI) && u->thre_pending)
		return IIR_THRI | fifo;
	if ((u->ier & IER_MSI) && u->msr_delta)
		return IIR_MSI | fifo;
	return IIR_NONE | fifo;
}

/* The PC wires the interrupt through OUT2. */
static void update_irq_locked(struct uart *u)
{
	bool level = !(iir_locked(u) & IIR_NONE) && (u->mcr & MCR_OUT2);

	if (level != u->irq_level) {
		u->irq_level = level;
		irq_line_set(&u->irq, level);
	}
}

static void rx_push_locked(struct uart *u, uint8_t c)
{
	if (u->rx_count == RX_SIZE)
		return; /* overrun: the byte is lost, as on the real chip */
	u->rx[(u->rx_head + u->rx_count) % RX_SIZE] = c;
	u->rx_count++;
}

static uint8_t msr_locked(const struct uart *u)
{
	uint8_t m;

	if (u->mcr & MCR_LOOP) {
		/* loopback: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD */
		m = (u->mcr & 0x01) << 5 | (u->mcr & 0x02) << 3 | (u->mcr & 0x04) << 4 |
		    (u->mcr & 0x08) << 4;
	} else {
		m = 0xB0; /* DCD, DSR, CTS: a terminal is always there */
	}
	return m | u->msr_delta;
}

static uint8_t read_locked(struct uart *u, unsigned reg)
{
	uint8_t v = 0;

	switch (reg) {
	case RBR_THR:
		if (u->lcr & LCR_DLAB) {
			v = u->dll;
		} else if (u->rx_count) {
			v = u->rx[u->rx_head];
			u->rx_head = (u->rx_head + 1) % RX_SIZE;
			u->rx_count--;
		}
		break;
	case IER:
		v = u->lcr & LCR_DLAB ? u->dlm : u->ier;
		break;
	case IIR_FCR:
		v = iir_locked(u);
		/* reading the IIR that reports THRE acknowledges it */
		if ((v & 0x0F) == IIR_THRI)
			u->thre_pending = false;
		break;
	case LCR:
		v = u->lcr;
		break;
	case MCR:
		v = u->mcr;
		break;
	case LSR:
		v = LSR_THRE | LSR_TEMT | (u->rx_count ? LSR_DR : 0);
		break;
	case MSR:
		v = msr_locked(u);
		u->msr_delta = 0;
		break;
	case SCR:
		v = u->scr;
		break;
	}
	update_irq_locked(u);
	return v;
}

static void transmit(struct uart *u, uint8_t c)
{
	struct timespec ts;

	if (u->out_fd < 0)
		return;
	while (write(u->out_fd, &c, 1) < 0 && errno == EINTR)
		;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	atomic_store_explicit(&u->last_output, (uint64_t)ts.tv_sec * 1000000000 + ts.tv_nsec,
			      memory_order_relaxed);
}

uint64_t uart_last_output(struct uart *u)
{
	return atomic_load_explicit(&u->last_output, memory_order_relaxed);
}

static void write_locked(struct uart *u, unsigned reg, uint8_t v)
{
	switch (reg) {
	case RBR_THR:
		if (u->lcr & LCR_DLAB) {
			u->dll = v;
			break;
		}
		if (u->mcr & MCR_LOOP)
			rx_push_locked(u, v);
		else
			transmit(u, v);
		/* sent at once: the holding register is empty again */
		u->thre_pending = true;
		break;
	case IER:
		if (u->lcr & LCR_DLAB) {
			u->dlm = v;
			break;
		}
		if ((v & IER_THRI) && !(u->ier & IER_THRI))
			u->thre_pending = true;
		u->ier = v & 0x0F;
		break;
	case IIR_FCR:
		u->fcr = v & 0xC9;
		if (v & FCR_CLEAR_RX)
			u->rx_count = 0;
		break;
	case LCR:
		u->lcr = v;
		break;
	case MCR: {
		uint8_t before = msr_locked(u);

		u->mcr = v & 0x1F;
		/* modem status changes seen through the loopback set the delta bits */
		if ((before ^ msr_locked(u)) & 0xF0)
			u->msr_delta |= ((before ^ msr_locked(u)) >> 4) & 0x0B;
		break;
	}
	case SCR:
		u->scr = v;
		break;
	default:
		break; /* LSR and MSR are read-only */
	}
	update_irq_locked(u);
}

uint8_t uart_inb(struct uart *u, unsigned reg)
{
	uint8_t v;

	pthread_mutex_lock(&u->lock);
	v = read_locked(u, reg & 7);
	pthread_mutex_unlock(&u->lock);
	return v;
}

void uart_outb(struct uart *u, unsigned reg, uint8_t val)
{
	pthread_mutex_lock(&u->lock);
	write_locked(u, reg & 7, val);
	pthread_mutex_unlock(&u->lock);
}

static void uart_access(void *dev, struct io_access *a)
{
	struct uart *u = dev;

	/* byte registers; a wider access touches consecutive ones */
	pthread_mutex_lock(&u->lock);
	for (unsigned i = 0; i < a->len && a->off + i < 8; i++) {
		if (a->write)
			write_locked(u, a->off + i, a->data[i]);
		else
			a->data[i] = read_locked(u, a->off + i);
	}
	pthread_mutex_unlock(&u->lock);
}

static void *reader_thread(void *arg)
{
	struct uart *u = arg;
	uint8_t buf[RX_SIZE];

	for (;;) {
		struct pollfd p[2] = {
			{ .fd = u->in_fd, .events = POLLIN },
			{ .fd = u->stop_pipe[0], .events = POLLIN },
		};
		ssize_t n;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		pthread_mutex_lock(&u->lock);
		/* take no more than there is room for; the rest waits in the pipe */
		size_t room = RX_SIZE - u->rx_count;
		pthread_mutex_unlock(&u->lock);
		if (!room) {
			usleep(1000);
			continue;
		}
		n = read(u->in_fd, buf, room);
		if (n <= 0)
			break; /* end of input: the guest simply gets no more */
		pthread_mutex_lock(&u->lock);
		for (ssize_t i = 0; i < n; i++)
			rx_push_locked(u, buf[i]);
		update_irq_locked(u);
		pthread_mutex_unlock(&u->lock);
	}
	return NULL;
}

struct uart *uart_create(struct io_bus *pio, uint16_t base, const struct irq_line *irq,
			 int out_fd, int in_fd)
{
	struct uart *u = calloc(1, sizeof(*u));

	if (!u) {
		pr_err("out of memory");
		return NULL;
	}
	pthread_mutex_init(&u->lock, NULL);
	u->irq = *irq;
	u->out_fd = out_fd;
	u->in_fd = in_fd;
	u->base = base;
	u->stop_pipe[0] = u->stop_pipe[1] = -1;
	if (pio && io_bus_register(pio, base, 8, uart_access, u, IO_SHARED, "UART")) {
		uart_destroy(u);
		return NULL;
	}
	if (in_fd >= 0) {
		if (pipe(u->stop_pipe)) {
			pr_err("pipe: %s", strerror(errno));
			uart_destroy(u);
			return NULL;
		}
		if (pthread_create(&u->reader, NULL, reader_thread, u)) {
			pr_err("cannot start the UART input thread");
			uart_destroy(u);
			return NULL;
		}
		u->reader_started = true;
	}
	return u;
}

void uart_destroy(struct uart *u)
{
	if (!u)
		return;
	if (u->reader_started) {
		if (write(u->stop_pipe[1], "", 1) < 0)
			pr_warn("cannot stop the UART input thread: %s", strerror(errno));
		pthread_join(u->reader, NULL);
	}
	for (int i = 0; i < 2; i++)
		if (u->stop_pipe[i] >= 0)
			close(u->stop_pipe[i]);
	pthread_mutex_destroy(&u->lock);
	free(u);
}
