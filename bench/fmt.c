#include "bench/fmt.h"

#include <stdint.h>

struct out {
	char *buf;
	size_t size;
	size_t len;
};

static void out_char(struct out *o, char c)
{
	if (o->len + 1 < o->size)
		o->buf[o->len] = c;
	o->len++;
}

static void out_pad(struct out *o, char c, int n)
{
	while (n-- > 0)
		out_char(o, c);
}

static void out_field(struct out *o, const char *s, size_t n, int width, int left, char pad)
{
	int fill = width > (int)n ? width - (int)n : 0;

	if (!left)
		out_pad(o, pad, fill);
	for (size_t i = 0; i < n; i++)
		out_char(o, s[i]);
	if (left)
		out_pad(o, ' ', fill);
}

/* Digits of v in base 10 or 16, written backwards from end; returns the start. */
static char *utoa_rev(char *end, uint64_t v, unsigned base, int upper)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";

	do {
		*--end = digits[v % base];
		v /= base;
	} while (v);
	return end;
}

static void out_int(struct out *o, uint64_t mag, int neg, unsigned base, int upper, int width,
		    int left, int zero)
{
	char tmp[24];
	char *end = tmp + sizeof(tmp), *s = utoa_rev(end, mag, base, upper);
	size_t n = (size_t)(end - s);

	if (neg) {
		if (zero && !left) {
			out_char(o, '-');
			out_field(o, s, n, width - 1, 0, '0');
			return;
		}
		*--s = '-';
		n++;
	}
	out_field(o, s, n, width, left, zero && !left ? '0' : ' ');
}

#ifndef BFMT_NO_FLOAT
static void out_float(struct out *o, double v, int prec, int width, int left)
{
	static const double pow10[] = { 1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9 };
	char tmp[64];
	size_t n = 0;
	int neg = v < 0;

	if (prec < 0)
		prec = 6;
	if (prec > 9)
		prec = 9;
	if (neg)
		v = -v;
	if (v != v) {
		out_field(o, "nan", 3, width, left, ' ');
		return;
	}
	if (v > 1e18) {
		/* Exponent form: scale into [1, 10) by powers of ten. */
		int e = 0;

		while (v >= 10) {
			if (v > 1e308) {
				out_field(o, neg ? "-inf" : "inf", neg ? 4 : 3, width, left, ' ');
				return;
			}
			v /= 10;
			e++;
		}
		uint64_t m = (uint64_t)(v * 1e3 + 0.5);
		n = (size_t)bfmt_snprintf(tmp, sizeof(tmp), "%s%u.%03ue+%d", neg ? "-" : "",
					  (unsigned)(m / 1000), (unsigned)(m % 1000), e);
		out_field(o, tmp, n < sizeof(tmp) ? n : sizeof(tmp) - 1, width, left, ' ');
		return;
	}
	uint64_t scaled = (uint64_t)(v * pow10[prec] + 0.5);
	uint64_t ip = scaled / (uint64_t)pow10[prec], fp = scaled % (uint64_t)pow10[prec];
	char *end = tmp + sizeof(tmp), *s = end;

	for (int i = 0; i < prec; i++) {
		*--s = (char)('0' + fp % 10);
		fp /= 10;
	}
	if (prec)
		*--s = '.';
	s = utoa_rev(s, ip, 10, 0);
	if (neg && scaled)
		*--s = '-';
	out_field(o, s, (size_t)(end - s), width, left, ' ');
}
#endif

int bfmt_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct out o = { buf, size, 0 };

	for (const char *p = fmt; *p; p++) {
		int left = 0, zero = 0, width = 0, prec = -1, lng = 0;

		if (*p != '%') {
			out_char(&o, *p);
			continue;
		}
		p++;
		for (;; p++) {
			if (*p == '-')
				left = 1;
			else if (*p == '0')
				zero = 1;
			else
				break;
		}
		if (*p == '*') {
			width = va_arg(ap, int);
			p++;
		}
		while (*p >= '0' && *p <= '9')
			width = width * 10 + (*p++ - '0');
		if (*p == '.') {
			prec = 0;
			p++;
			if (*p == '*') {
				prec = va_arg(ap, int);
				p++;
			}
			while (*p >= '0' && *p <= '9')
				prec = prec * 10 + (*p++ - '0');
		}
		while (*p == 'l' || *p == 'z') {
			lng++;
			p++;
		}
		switch (*p) {
		case '%':
			out_char(&o, '%');
			break;
		case 'c': {
			char c = (char)va_arg(ap, int);

			out_field(&o, &c, 1, width, left, ' ');
			break;
		}
		case 's': {
			const char *s = va_arg(ap, const char *);
			size_t n = 0;

			if (!s)
				s = "(null)";
			while (s[n] && (prec < 0 || n < (size_t)prec))
				n++;
			out_field(&o, s, n, width, left, ' ');
			break;
		}
		case 'd':
		case 'i': {
			int64_t v = lng ? va_arg(ap, long) : va_arg(ap, int);
			uint64_t mag = v < 0 ? -(uint64_t)v : (uint64_t)v;

			out_int(&o, mag, v < 0, 10, 0, width, left, zero);
			break;
		}
		case 'u':
		case 'x':
		case 'X': {
			uint64_t v = lng ? va_arg(ap, unsigned long) : va_arg(ap, unsigned);

			out_int(&o, v, 0, *p == 'u' ? 10 : 16, *p == 'X', width, left, zero);
			break;
		}
		case 'p':
			out_char(&o, '0');
			out_char(&o, 'x');
			out_int(&o, (uintptr_t)va_arg(ap, void *), 0, 16, 0, 0, 0, 0);
			break;
#ifndef BFMT_NO_FLOAT
		case 'f':
			out_float(&o, va_arg(ap, double), prec, width, left);
			break;
#endif
		case '\0':
			p--;
			break;
		default:
			/* Unknown conversion: print it as is, so the mistake shows. */
			out_char(&o, '%');
			out_char(&o, *p);
			break;
		}
	}
	if (o.size)
		o.buf[o.len < o.size ? o.len : o.size - 1] = '\0';
	return (int)o.len;
}

int bfmt_snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = bfmt_vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}
