#include "images/probe/user/ulib.h"

#include "bench/fmt.h"
#include "common/guest_abi.h"

size_t ustrlen(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

int ustreq(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

int ustartswith(const char *s, const char *prefix)
{
	while (*prefix)
		if (*s++ != *prefix++)
			return 0;
	return 1;
}

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port));
}

static inline uint8_t inb(uint16_t port)
{
	uint8_t v;

	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

/* Its own cache line: every thread that prints takes it. */
static volatile uint32_t con_lock __attribute__((aligned(64)));

/* User mode writes the UART itself (the TSS grants its ports), 16 bytes (a FIFO) per empty check. */
void con_write(const char *s, size_t n)
{
	while (__atomic_exchange_n(&con_lock, 1, __ATOMIC_ACQUIRE))
		cpu_relax();
	while (n) {
		size_t chunk = n < 16 ? n : 16;

		for (int i = 0; i < 100000 && !(inb(GVM_UART_PORT + 5) & 0x20); i++)
			cpu_relax();
		for (size_t i = 0; i < chunk; i++)
			outb(GVM_UART_PORT, (uint8_t)s[i]);
		s += chunk;
		n -= chunk;
	}
	__atomic_store_n(&con_lock, 0, __ATOMIC_RELEASE);
}

void uprintf(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = bfmt_vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	con_write(buf, n < (int)sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

static volatile uint64_t nr_failures __attribute__((aligned(64)));

void ufail(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	atomic_xadd(&nr_failures, 1);
	n = bfmt_snprintf(buf, sizeof(buf), "error: ");
	va_start(ap, fmt);
	n += bfmt_vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	va_end(ap);
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	con_write(buf, (size_t)n);
}

unsigned ufailures(void)
{
	return (unsigned)nr_failures;
}

int uparse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

int uparse_size(const char *s, uint64_t *out)
{
	char num[32];
	size_t n = 0;
	unsigned shift = 0;
	uint64_t v;

	while (s[n] >= '0' && s[n] <= '9' && n < sizeof(num) - 1) {
		num[n] = s[n];
		n++;
	}
	num[n] = '\0';
	if (s[n] == 'K' || s[n] == 'k')
		shift = 10;
	else if (s[n] == 'M' || s[n] == 'm')
		shift = 20;
	else if (s[n] == 'G' || s[n] == 'g')
		shift = 30;
	else if (s[n])
		return -1;
	if (shift && s[n + 1])
		return -1;
	if (uparse_u64(num, &v) || v > (UINT64_MAX >> shift))
		return -1;
	*out = v << shift;
	return 0;
}
