/*
 * bench/cpio.c: the probe guest's reader of its initramfs (newc cpio
 * archives, concatenated), which holds the files of `gvm run --copy`.
 * Checked beyond the sanitizers: every entry lies inside the buffer, the
 * position only moves forward, and cpio_find agrees with a walk of
 * cpio_next.
 */
#include <string.h>

#include "bench/cpio.h"
#include "tests/fuzz/lib/fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bench_err err = { "" };
	struct cpio_file f;
	size_t pos = 0, prev = 0;
	int rc, found = 0;

	while ((rc = cpio_next(data, size, &pos, &f, &err)) > 0) {
		const uint8_t *name = (const uint8_t *)f.name, *body = f.data;

		FUZZ_CHECK(pos > prev && pos <= size);
		FUZZ_CHECK(name >= data && name + f.name_len < data + size);
		FUZZ_CHECK(body >= name + f.name_len && f.size <= (uint64_t)(data + size - body));
		prev = pos;
		if ((f.mode & CPIO_MODE_TYPE) == CPIO_MODE_REG && f.name_len == 4 &&
		    !memcmp(f.name, "data", 4))
			found = 1;
	}
	if (rc < 0)
		FUZZ_CHECK(err.msg[0]);
	rc = cpio_find(data, size, "data", &f, &err);
	/* The walk above found "data" only under that exact name, cpio_find also under ./ and /. */
	if (found)
		FUZZ_CHECK(rc != 0);
	if (rc > 0)
		FUZZ_CHECK((const uint8_t *)f.data >= data && f.size <= size);
	return 0;
}
