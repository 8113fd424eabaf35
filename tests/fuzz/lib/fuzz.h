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

/*
 * The seeds of the targets that decode binary messages are written by the
 * targets themselves: with $GVM_FUZZ_WRITE_SEEDS set to a directory,
 * LLVMFuzzerInitialize's fuzz_write_seeds has `seeds` write each one with
 * fuzz_seed there, then exits, e.g.
 *   GVM_FUZZ_WRITE_SEEDS=tests/fuzz/corpus/dsm-msg build/fuzz/dsm-msg
 */
static inline void fuzz_seed(const char *dir, const char *name, const void *buf, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	FUZZ_CHECK(f && fwrite(buf, 1, len, f) == len && fclose(f) == 0);
}

static inline void fuzz_write_seeds(void (*seeds)(const char *dir))
{
	const char *dir = getenv("GVM_FUZZ_WRITE_SEEDS");

	if (dir) {
		seeds(dir);
		exit(0);
	}
}

/* The LLVMFuzzerInitialize of a target with nothing else to set up. */
#define FUZZ_INIT_SEEDS(seeds) \
	int LLVMFuzzerInitialize(int *argc, char ***argv) \
	{ \
		(void)argc; \
		(void)argv; \
		fuzz_write_seeds(seeds); \
		return 0; \
	}

#endif
