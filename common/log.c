#include "common/log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/*
 * Process-wide and written only by log_init/log_set_level before threads
 * start: several instances in one process share one stderr anyway.
 */
static const char *log_progname = "giantvm";
static enum log_level log_level = LOG_INFO;

static const char *const log_names[] = {
	[LOG_ERR] = "error", [LOG_WARN] = "warning", [LOG_INFO] = NULL,
	[LOG_DEBUG] = "debug",
};

void log_init(const char *progname)
{
	const char *env = getenv("GVM_LOG");

	if (progname) {
		const char *slash = strrchr(progname, '/');
		log_progname = slash ? slash + 1 : progname;
	}
	if (!env)
		return;
	for (unsigned i = 0; i <= LOG_DEBUG; i++) {
		const char *name = log_names[i] ? log_names[i] : "info";
		if (!strncasecmp(env, name, 3))
			log_level = i;
	}
}

void log_set_level(enum log_level level)
{
	log_level = level;
}

int log_enabled(enum log_level level)
{
	return level <= log_level;
}

void log_vmsg(enum log_level level, const char *fmt, va_list ap)
{
	char line[1024];
	int n;

	if (!log_enabled(level))
		return;
	/* One write per line so lines of concurrent threads do not interleave. */
	if (log_names[level])
		n = snprintf(line, sizeof(line), "%s: %s: ", log_progname, log_names[level]);
	else
		n = snprintf(line, sizeof(line), "%s: ", log_progname);
	if (n < 0 || (size_t)n >= sizeof(line))
		n = 0;
	vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
	n = strlen(line);
	if (n == 0 || line[n - 1] != '\n') {
		line[n++] = '\n';
		line[n] = '\0';
	}
	fputs(line, stderr);
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
	log_vmsg(LOG_ERR, fmt, ap);
	va_end(ap);
	exit(1);
}

void die_perror(const char *fmt, ...)
{
	char msg[768];
	int err = errno;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_msg(LOG_ERR, "%s: %s", msg, strerror(err));
	exit(1);
}
