/*
 * common/log.c for the fuzz targets: messages are formatted, so a bad
 * format argument (a NULL %s, a wrong width) still trips the sanitizers, but
 * not printed, since a decoder refuses most fuzz inputs with a message and
 * printing them would make the fuzzer I/O-bound and bury its own report.
 */
#include <stdio.h>
#include <stdlib.h>

#include "common/log.h"

void log_init(const char *progname)
{
	(void)progname;
}

void log_set_level(enum log_level level)
{
	(void)level;
}

int log_enabled(enum log_level level)
{
	return level <= LOG_DEBUG;
}

void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	char line[1024];

	(void)level;
	vsnprintf(line, sizeof(line), fmt, ap);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, fmt, ap);
	va_end(ap);
}

void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	abort(); /* a decoder must refuse bad input, never end the process */
}

void die_perror(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	abort();
}
