/* Logging and fatal errors, shared by every component. */
#ifndef GVM_COMMON_LOG_H
#define GVM_COMMON_LOG_H

#include <stdarg.h>
#include <stdnoreturn.h>

enum log_level { LOG_ERR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/*
 * Set once at start-up, before any thread: the program name that prefixes
 * every line and the verbosity (also taken from GVM_LOG=err|warn|info|debug).
 */
void log_init(const char *progname);
void log_set_level(enum log_level level);
int log_enabled(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_vmsg(enum log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

#define pr_err(...) log_msg(LOG_ERR, __VA_ARGS__)
#define pr_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define pr_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define pr_debug(...) \
	do { \
		if (log_enabled(LOG_DEBUG)) \
			log_msg(LOG_DEBUG, __VA_ARGS__); \
	} while (0)

/* Fatal set-up errors: print and exit(1).  die_perror appends strerror(errno). */
noreturn void die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
noreturn void die_perror(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
