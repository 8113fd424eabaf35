/*
 * bench/mtx.c: a Matrix Market file, the input `gvm run --copy` and the
 * SpMV job templates hand to the host tools and to the probe guest.
 * Checked beyond the sanitizers: a matrix read is a valid CSR matrix
 * (row pointers monotonic and in range, columns ascending and in range)
 * of the declared shape, with no more entries than the header allowed for,
 * and the reader never claims more scratch than mtx_scratch_size said.
 * Matrices larger than 64K rows, columns or entries are only held to the
 * header check, to keep the allocations small.
 */
#include <string.h>

#include "bench/csr.h"
#include "bench/mtx.h"
#include "tests/fuzz/lib/fuzz.h"

#define LIMIT (1u << 16)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	struct bench_err err = { "" };
	struct mtx_header h;
	struct csr a = { 0 };
	void *scratch;

	if (mtx_parse_header(buf, size, &h, &err)) {
		FUZZ_CHECK(err.msg[0]);
		return 0;
	}
	FUZZ_CHECK(h.body <= size);
	FUZZ_CHECK(h.max_nnz >= h.nentries && h.max_nnz <= 2 * h.nentries);
	if (h.nrows > LIMIT || h.ncols > LIMIT || h.max_nnz > LIMIT)
		return 0;
	a.row_ptr = malloc((h.nrows + 1) * sizeof(*a.row_ptr));
	a.col = malloc((h.max_nnz ? h.max_nnz : 1) * sizeof(*a.col));
	a.val = malloc((h.max_nnz ? h.max_nnz : 1) * sizeof(*a.val));
	/* Exactly the size asked for, so that ASan sees a write past it. */
	scratch = malloc(mtx_scratch_size(&h));
	FUZZ_CHECK(a.row_ptr && a.col && a.val && scratch);
	if (mtx_parse_csr(buf, size, &h, &a, scratch, &err) == 0) {
		FUZZ_CHECK(a.nrows == h.nrows && a.ncols == h.ncols);
		FUZZ_CHECK(a.nnz <= h.max_nnz);
		FUZZ_CHECK(csr_valid(&a));
	} else {
		FUZZ_CHECK(err.msg[0]);
	}
	free(scratch);
	free(a.row_ptr);
	free(a.col);
	free(a.val);
	return 0;
}
