#include "spank/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/parse.h"

int errf(char *err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, GVM_ERR_MAX, fmt, ap);
	va_end(ap);
	return -1;
}

const char *shown(const char *s, char *buf, size_t len)
{
	size_t i, n;

	if (!len)
		return "";
	if (!s)
		s = "(null)";
	n = strlen(s);
	for (i = 0; i < n && i + 1 < len; i++) {
		unsigned char c = (unsigned char)s[i];

		buf[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	buf[i] = '\0';
	/* say that it was cut, rather than show a different value */
	if (i < n && len > 4)
		memcpy(buf + len - 4, "...", 4);
	return buf;
}

int parse_bool_word(const char *s)
{
	static const char *const yes[] = { "yes", "true", "1" }, *const no[] = { "no", "false", "0" };

	for (size_t i = 0; i < 3; i++) {
		if (!strcasecmp(s, yes[i]))
			return 1;
		if (!strcasecmp(s, no[i]))
			return 0;
	}
	return -1;
}

int check_word(const char *what, const char *s, char *err)
{
	char b[SHOWN_MAX];
	size_t n = strlen(s);

	if (!n)
		return errf(err, "%s is empty", what);
	if (n >= GVM_PATH_MAX)
		return errf(err, "%s is longer than %d characters", what, GVM_PATH_MAX - 1);
	if (s[0] == '-')
		return errf(err, "%s '%s' starts with '-'", what, shown(s, b, sizeof(b)));
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
			return errf(err, "%s '%s' has a space or a character that is not printable "
				    "ASCII", what, shown(s, b, sizeof(b)));
	return 0;
}

int parse_numa_word(const char *what, const char *s, unsigned *numa, char *err)
{
	char perr[PARSE_ERR_MAX], b[SHOWN_MAX];

	if (!strcmp(s, "host")) {
		*numa = GVM_NUMA_HOST;
		return 0;
	}
	if (parse_uint(s, 1, GVM_NUMA_MAX, numa, perr))
		return errf(err, "%s%s: say host (one guest NUMA node per NUMA node of each host) "
			    "or a number of them per node, 1 to %d", what, shown(s, b, sizeof(b)),
			    GVM_NUMA_MAX);
	return 0;
}
