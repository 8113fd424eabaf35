/* What the fuzz targets share: the libFuzzer entry points and a check that aborts. */
#ifndef GVM_TESTS_FUZZ_H
#define GVM_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

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

/*
 * A scratch directory for a target that writes files, made at buf
 * ("DIR/gvm-fuzz-NAME.XXXXXX"): on tmpfs when possible, as the decoders
 * fsync what they write.  $GVM_FUZZ_TMP, else /dev/shm, else $TMPDIR, else /tmp.
 */
static inline void fuzz_scratch_dir(const char *name, char *buf, size_t len)
{
	const char *tmp = getenv("GVM_FUZZ_TMP");

	if (!tmp)
		tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
	snprintf(buf, len, "%s/gvm-fuzz-%s.XXXXXX", tmp ? tmp : "/tmp", name);
	FUZZ_CHECK(mkdtemp(buf));
}

#endif
