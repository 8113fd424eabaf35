/*
 * A reader of initramfs images: "newc" cpio archives (magic 070701 or
 * 070702), possibly several concatenated with zero padding between them, as
 * a boot loader hands them over.  Freestanding, for the probe guest.
 * Compressed archives are refused with a clear error.
 */
#ifndef GVM_BENCH_CPIO_H
#define GVM_BENCH_CPIO_H

#include <stddef.h>
#include <stdint.h>

#include "bench/err.h"

struct cpio_file {
	const char *name; /* not NUL-terminated in the archive: use name_len */
	size_t name_len;
	const void *data;
	uint64_t size;
	uint32_t mode;
};

#define CPIO_MODE_TYPE 0170000u
#define CPIO_MODE_REG 0100000u

/*
 * The entry at *pos, then *pos moves past it.  Returns 1 for an entry, 0 at
 * the end of the data, -1 for a malformed archive (err says where and why).
 * The trailer entries ("TRAILER!!!") are skipped.
 */
int cpio_next(const void *buf, size_t len, size_t *pos, struct cpio_file *f,
	      struct bench_err *err);

/*
 * The regular file called name ("dir/file"; a leading "./" or "/" in the
 * archive is ignored); when several archives hold it, the last one wins, as
 * when Linux unpacks them in order.  Returns 1 if found, 0 if not, -1 on a
 * malformed archive.
 */
int cpio_find(const void *buf, size_t len, const char *name, struct cpio_file *f,
	      struct bench_err *err);

#endif
