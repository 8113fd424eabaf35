/*
 * A small freestanding snprintf for code that runs without libc (the probe
 * guest's kernel and user mode) and for host code that must print the very
 * same lines (bench tools), so their outputs compare as text.
 *
 * Conversions: %% %c %s %d %i %u %x %X %p, with the flags '-' and '0', a
 * width, a precision for %s, and the length modifiers l, ll, z.  Unless
 * BFMT_NO_FLOAT is defined (kernel code built with -mgeneral-regs-only),
 * also %f with a precision of at most 9 digits; values too large for it
 * print in an exponent form "1.234e+21".
 */
#ifndef GVM_BENCH_FMT_H
#define GVM_BENCH_FMT_H

#include <stdarg.h>
#include <stddef.h>

/* Like vsnprintf: returns the length the full output would have. */
int bfmt_vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int bfmt_snprintf(char *buf, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
