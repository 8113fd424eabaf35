/* What the fuzz targets share: the libFuzzer entry points and a check that aborts. */
#ifndef GVM_TESTS_FUZZ_H
#define GVM_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/*
 * An invariant the decoder promises: when it does not hold, abort so that
 * libFuzzer keeps the input as a crash, as it does for a sanitizer report.
 */
#define FUZZ_CHECK(cond) \
	do { \
		if (!(cond)) { \
			fprintf(stderr, "%s:%d: FUZZ_CHECK(%s) failed\n", __FILE__, __LINE__, \
				#cond); \
			abort(); \
		} \
	} while (0)

#endif
