#include "common/parse.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define ERR(...) (snprintf(err, PARSE_ERR_MAX, __VA_ARGS__), -1)

int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out, char *err)
{
	unsigned long long v;
	char *end;

	if (!s || !isdigit((unsigned char)s[0]))
		return ERR("'%s' is not a number", s ? s : "");
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return ERR("'%s' is not a number", s);
	if (v < min || v > max)
		return ERR("%s is out of range [%" PRIu64 ", %" PRIu64 "]", s, min, max);
	*out = v;
	return 0;
}

int parse_uint(const char *s, unsigned min, unsigned max, unsigned *out, char *err)
{
	uint64_t v;

	if (parse_u64(s, min, max, &v, err))
		return -1;
	*out = (unsigned)v;
	return 0;
}

int parse_size(const char *s, uint64_t *out, char *err)
{
	static const struct { const char *name; unsigned shift; } suffixes[] = {
		{ "", 0 }, { "b", 0 },
		{ "k", 10 }, { "kb", 10 }, { "kib", 10 },
		{ "m", 20 }, { "mb", 20 }, { "mib", 20 },
		{ "g", 30 }, { "gb", 30 }, { "gib", 30 },
		{ "t", 40 }, { "tb", 40 }, { "tib", 40 },
	};
	unsigned long long v;
	char *end;

	if (!s || !isdigit((unsigned char)s[0]))
		return ERR("'%s' is not a size (examples: 512M, 2G)", s ? s : "");
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return ERR("'%s' is too large", s);
	for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
		if (strcasecmp(end, suffixes[i].name))
			continue;
		if (suffixes[i].shift && v > (UINT64_MAX >> suffixes[i].shift))
			return ERR("'%s' is too large", s);
		*out = (uint64_t)v << suffixes[i].shift;
		return 0;
	}
	return ERR("'%s' has an unknown size suffix '%s' (use K, M, G or T)", s, end);
}

int parse_transport(const char *s, char *err)
{
	const char *p;

	if (!strcmp(s, "tcp") || !strcmp(s, "fabric"))
		return 0;
	if (strncmp(s, "fabric:", 7) || !s[7] || strlen(s) >= PARSE_TRANSPORT_MAX)
		goto bad;
	for (p = s + 7; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || *p == ',')
			goto bad;
	return 0;
bad:
	snprintf(err, PARSE_ERR_MAX, "'%s' is not tcp, fabric or fabric:PROVIDER", s);
	return -1;
}

int parse_hostport(const char *s, struct hostport *out, char *err)
{
	const char *colon, *host = s;
	size_t hostlen;
	unsigned port;

	if (!s || !*s)
		return ERR("empty address (expected host:port)");
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (!close || close[1] != ':')
			return ERR("'%s' is not [address]:port", s);
		host = s + 1;
		hostlen = close - host;
		colon = close + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return ERR("'%s' has no port (expected host:port)", s);
		hostlen = colon - s;
	}
	if (hostlen == 0 || hostlen >= HOSTPORT_HOST_MAX)
		return ERR("'%s' has an empty or too long host name", s);
	if (parse_uint(colon + 1, 1, 65535, &port, err))
		return ERR("bad port in '%s' (expected a number from 1 to 65535)", s);
	memcpy(out->host, host, hostlen);
	out->host[hostlen] = '\0';
	out->port = port;
	return 0;
}

int parse_hostport_list(const char *s, struct hostport **out, char *err)
{
	struct hostport *list = NULL;
	char *copy, *tok, *save = NULL;
	int n = 0;

	if (!s || !*s)
		return ERR("empty peer list (expected host:port,host:port,...)");
	copy = strdup(s);
	if (!copy)
		return ERR("out of memory");
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		struct hostport *grown = realloc(list, (n + 1) * sizeof(*list));
		if (!grown) {
			n = ERR("out of memory");
			break;
		}
		list = grown;
		if (parse_hostport(tok, &list[n], err)) {
			n = -1;
			break;
		}
		n++;
	}
	free(copy);
	if (n <= 0) {
		free(list);
		return n == 0 ? ERR("empty peer list '%s'", s) : -1;
	}
	*out = list;
	return n;
}

size_t appendf(char *buf, size_t size, size_t used, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (used >= size)
		return used;
	va_start(ap, fmt);
	n = vsnprintf(buf + used, size - used, fmt, ap);
	va_end(ap);
	return n < 0 ? size : used + (size_t)n;
}

const char *format_size(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	unsigned u = 0;

	while (u < 4 && bytes >= 1024 && bytes % 1024 == 0) {
		bytes /= 1024;
		u++;
	}
	snprintf(buf, len, "%" PRIu64 " %s", bytes, units[u]);
	return buf;
}

int parse_uint_list(const char *s, unsigned max_value, unsigned *out, unsigned max, unsigned *n,
		    char *err)
{
	char buf[4096], *save = NULL, *tok;

	if (!*s) {
		snprintf(err, PARSE_ERR_MAX, "an empty list of numbers");
		return -1;
	}
	/* Quoting all of it would push the reason out of the message. */
	if (strlen(s) >= sizeof(buf)) {
		snprintf(err, PARSE_ERR_MAX, "a list of numbers of %zu characters (at most %zu): "
			 "'%.32s...'", strlen(s), sizeof(buf) - 1, s);
		return -1;
	}
	strcpy(buf, s);
	*n = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *dash = strchr(tok, '-');
		unsigned lo, hi;

		if (dash)
			*dash = '\0';
		if (parse_uint(tok, 0, max_value, &lo, err) ||
		    (dash && parse_uint(dash + 1, lo, max_value, &hi, err)))
			return -1;
		if (!dash)
			hi = lo;
		for (unsigned v = lo; v <= hi; v++) {
			if (*n == max) {
				snprintf(err, PARSE_ERR_MAX, "more than %u numbers listed", max);
				return -1;
			}
			out[(*n)++] = v;
		}
	}
	if (!*n) {
		snprintf(err, PARSE_ERR_MAX, "'%s' lists no number", s);
		return -1;
	}
	return 0;
}
