/*
 * Strict parsers for user input.  Each returns 0 on success or -1 with a
 * message in err (what was wrong and with which value) for the caller to show.
 */
#ifndef GVM_COMMON_PARSE_H
#define GVM_COMMON_PARSE_H

#include <stddef.h>
#include <stdint.h>

#define PARSE_ERR_MAX 256
#define HOSTPORT_HOST_MAX 256

struct hostport {
	char host[HOSTPORT_HOST_MAX];
	uint16_t port;
};

/* Decimal unsigned integer in [min, max]; no sign, no trailing junk. */
int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out, char *err);
int parse_uint(const char *s, unsigned min, unsigned max, unsigned *out, char *err);

/* A size with an optional binary suffix: 4096, 64K, 512M, 2G, 1T (also KiB, MiB...). */
int parse_size(const char *s, uint64_t *out, char *err);

/*
 * A list of numbers and ranges, 0,2,4-7 (CPUs, ports): at most max of them,
 * each at most max_value, into out[0..*n), in the order given.
 */
int parse_uint_list(const char *s, unsigned max_value, unsigned *out, unsigned max, unsigned *n,
		    char *err);

/* host:port, [v6addr]:port */
int parse_hostport(const char *s, struct hostport *out, char *err);

/*
 * What carries a DSM's messages (dsm_config.transport, gvm's --transport,
 * the Slurm plugin's transport=): tcp, fabric or fabric:PROVIDER, the
 * provider's name at most PARSE_TRANSPORT_MAX - 8 printable characters
 * without space or comma.  0, or -1 with why in err.
 */
#define PARSE_TRANSPORT_MAX 72
int parse_transport(const char *s, char *err);

/*
 * Comma-separated host:port list.  Returns the number of entries (>= 1) and
 * a malloc'ed array in *out, or -1.
 */
int parse_hostport_list(const char *s, struct hostport **out, char *err);

/*
 * Append to buf (size bytes, used of them taken) what fmt makes, cut short
 * if it does not fit; returns the new length, which is size or more once
 * something was cut (so "did it fit" is: result < size).
 */
size_t appendf(char *buf, size_t size, size_t used, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Human-readable size for messages: "512 MiB". */
const char *format_size(uint64_t bytes, char *buf, size_t len);

#endif
