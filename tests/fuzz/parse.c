/*
 * common/parse.c: the parsers of options, some of whose values come from
 * the environment a launcher or Slurm sets up (peer lists, CPU lists,
 * sizes).  The first byte of the input picks the parser, the rest is its
 * string.  Checked beyond the sanitizers: what a parser accepts is in the
 * range it was given, and a parsed size or number prints back as itself.
 */
#include <string.h>

#include "common/parse.h"
#include "tests/fuzz/lib/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char s[8192];
	char err[PARSE_ERR_MAX] = "", buf[64];
	unsigned list[64], n, u;
	struct hostport hp, *hps;
	uint64_t v;
	int rc;

	if (!size || size > sizeof(s))
		return 0;
	memcpy(s, data + 1, size - 1);
	s[size - 1] = '\0';
	switch (data[0] % 6) {
	case 0:
		rc = parse_u64(s, 3, UINT64_MAX - 3, &v, err);
		if (!rc) {
			FUZZ_CHECK(v >= 3 && v <= UINT64_MAX - 3);
			snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
			/* Leading zeros are a number too: compare without them. */
			FUZZ_CHECK(!strcmp(buf, s + strspn(s, "0")));
		}
		break;
	case 1:
		rc = parse_uint(s, 1, 65535, &u, err);
		FUZZ_CHECK(rc || (u >= 1 && u <= 65535));
		break;
	case 2:
		rc = parse_size(s, &v, err);
		if (!rc)
			FUZZ_CHECK(strlen(format_size(v, buf, sizeof(buf))) < sizeof(buf) - 1);
		break;
	case 3:
		rc = parse_uint_list(s, 255, list, 64, &n, err);
		if (!rc) {
			FUZZ_CHECK(n >= 1 && n <= 64);
			for (unsigned i = 0; i < n; i++)
				FUZZ_CHECK(list[i] <= 255);
		}
		break;
	case 4:
		rc = parse_hostport(s, &hp, err);
		if (!rc)
			FUZZ_CHECK(hp.port && hp.host[0] && strlen(hp.host) < HOSTPORT_HOST_MAX &&
				   strstr(s, hp.host));
		break;
	default:
		rc = parse_hostport_list(s, &hps, err);
		if (rc > 0) {
			for (int i = 0; i < rc; i++)
				FUZZ_CHECK(hps[i].port && hps[i].host[0]);
			free(hps);
		}
		break;
	}
	if (rc < 0)
		FUZZ_CHECK(err[0] && memchr(err, '\0', sizeof(err)));
	return 0;
}
