/* Small helpers shared by the plugin's files. */
#ifndef GVM_SPANK_UTIL_H
#define GVM_SPANK_UTIL_H

#include <stdbool.h>
#include <stddef.h>

/* Paths the plugin keeps: longer ones are refused, never cut. */
#define GVM_PATH_MAX 1024
/* One message for the user (what was wrong, with which value, what to do). */
#define GVM_ERR_MAX 1024

/* snprintf into err (GVM_ERR_MAX bytes); returns -1 for `return errf(...)`. */
int errf(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * s as it may be shown in a message: at most max bytes, every byte that is
 * not printable ASCII as '?', so that a user's value cannot forge lines or
 * terminal escapes in Slurm's logs and the user's output.  Returns buf.
 */
const char *shown(const char *s, char *buf, size_t len);
#define SHOWN_MAX 128

/* yes/no/true/false/1/0 (any case): 1 or 0; -1 for anything else. */
int parse_bool_word(const char *s);

/*
 * A path or name from a user or the site: non-empty, shorter than
 * GVM_PATH_MAX, printable ASCII without spaces, not starting with '-' (it
 * becomes a program's argument).  0, or -1 with err naming what.
 */
int check_word(const char *what, const char *s, char *err);

/*
 * numa=: guest NUMA nodes per node, 1 to GVM_NUMA_MAX, or "host" (one per
 * NUMA node of the host, gvm --numa host) as GVM_NUMA_HOST.  0, or -1 with
 * err naming what.
 */
#define GVM_NUMA_HOST (~0u)
#define GVM_NUMA_MAX 8
int parse_numa_word(const char *what, const char *s, unsigned *numa, char *err);

#endif
