/*
 * A deterministic sparse matrix generator, so the host and the guest build
 * the same matrix from a short name: "gen:ROWS:PER_ROW:SEED".
 *
 * Row i holds its diagonal (PER_ROW + 1.0) and up to PER_ROW - 1 other
 * entries, half within a band of 64 around the diagonal and half anywhere,
 * drawn from a generator seeded by (SEED, i) alone; duplicates are merged.
 * Values are small multiples of 1/1024, exact in binary.  Since each row
 * depends only on its index, a thread can generate its own rows in its own
 * node's memory.
 */
#ifndef GVM_BENCH_MATGEN_H
#define GVM_BENCH_MATGEN_H

#include <stdint.h>

#include "bench/csr.h"
#include "bench/err.h"

#define MATGEN_MAX_PER_ROW 256
#define MATGEN_MAX_ROWS (1u << 30)
#define MATGEN_NAME_MAX 64

struct matgen {
	uint32_t rows;
	uint32_t per_row;
	uint64_t seed;
};

/* "gen" alone gives the defaults (200000 rows, 16 per row, seed 1). */
int matgen_parse(const char *name, struct matgen *g, struct bench_err *err);
void matgen_name(const struct matgen *g, char *buf, unsigned size);

/* Upper bound of the entries in rows [r0, r1): allocate this many. */
static inline uint64_t matgen_max_nnz(const struct matgen *g, uint32_t r0, uint32_t r1)
{
	return (uint64_t)(r1 - r0) * g->per_row;
}

/*
 * Rows [r0, r1) as a matrix of r1 - r0 rows and g->rows columns, into
 * arrays of r1 - r0 + 1 row pointers and matgen_max_nnz() entries.
 */
void matgen_rows(const struct matgen *g, uint32_t r0, uint32_t r1, struct csr *a);

#endif
