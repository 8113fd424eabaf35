/* Kernel messages on the UART, the exit device, fatal errors. */
#include <stdarg.h>

#include "bench/fmt.h"
#include "common/guest_abi.h"
#include "images/probe/kernel/kernel.h"

static volatile uint32_t console_lock;

void kputs(const char *s)
{
	while (__atomic_exchange_n(&console_lock, 1, __ATOMIC_ACQUIRE))
		cpu_pause();
	for (; *s; s++) {
		/* Transmitter empty (LSR bit 5), bounded in case there is no UART. */
		for (int i = 0; i < 1000 && !(inb(GVM_UART_PORT + 5) & 0x20); i++)
			cpu_pause();
		outb(GVM_UART_PORT, (uint8_t)*s);
	}
	__atomic_store_n(&console_lock, 0, __ATOMIC_RELEASE);
}

void kprintf(const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	va_start(ap, fmt);
	bfmt_vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	kputs(buf);
}

/* A problem for user mode to report ("error: ..." lines) and to fail on. */
void kerr(const char *fmt, ...)
{
	struct probe_bootinfo *bi = &probe_bootinfo;
	size_t used = 0;
	va_list ap;

	while (used < PROBE_KERR_MAX && bi->kernel_errors[used])
		used++;
	bi->nr_kernel_errors++;
	if (used + 16 >= PROBE_KERR_MAX)
		return;
	used += (size_t)bfmt_snprintf(bi->kernel_errors + used, PROBE_KERR_MAX - used, "error: ");
	va_start(ap, fmt);
	used += (size_t)bfmt_vsnprintf(bi->kernel_errors + used, PROBE_KERR_MAX - used, fmt, ap);
	va_end(ap);
	if (used + 1 < PROBE_KERR_MAX) {
		bi->kernel_errors[used] = '\n';
		bi->kernel_errors[used + 1] = '\0';
	}
}

void exit_vm(uint32_t status)
{
	outl(GVM_EXIT_PORT, status);
	kputs("probe: the exit device did not stop the VM; halting\n");
	halt_forever();
}

void fatal(const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	va_start(ap, fmt);
	bfmt_vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	kprintf("error: %s\nresult: FAIL\n", buf);
	exit_vm(3);
}
