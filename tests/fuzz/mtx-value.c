/*
 * bench/mtx.c's number reader against glibc's strtod, which rounds
 * correctly: mtx.h promises the same bits for every value it accepts (to
 * nearest, ties to even, any number of digits, overflow to infinity and
 * underflow to 0), since the host and the guest must agree on the matrix.
 * The input is the text of one value; what the reader takes of it, strtod
 * must take whole and convert to the same double.
 */
#include <string.h>

#include "bench/mtx.h"
#include "tests/fuzz/lib/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char text[1 << 16];
	double got = 0, want;
	size_t used;
	char *end;

	if (size >= sizeof(text))
		return 0;
	used = mtx_parse_double((const char *)data, size, &got);
	FUZZ_CHECK(used <= size);
	if (!used)
		return 0;
	/* strtod takes hex floats, "inf" and "nan": mtx_parse_double must not. */
	for (size_t i = 0; i < used; i++)
		FUZZ_CHECK(strchr("0123456789+-.eE", data[i]) && data[i]);
	memcpy(text, data, used);
	text[used] = '\0';
	want = strtod(text, &end);
	if (end != text + used || memcmp(&got, &want, sizeof(got))) {
		fprintf(stderr, "'%s': mtx_parse_double %a (took %zu), strtod %a (took %zu)\n",
			text, got, used, want, (size_t)(end - text));
		FUZZ_CHECK(!"mtx_parse_double disagrees with strtod");
	}
	return 0;
}
