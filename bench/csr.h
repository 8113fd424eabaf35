/*
 * Sparse matrices in CSR form and the SpMV kernel, shared by the host tools
 * and the probe guest's user mode (freestanding: no libc).
 *
 * Floating point: y[i] is summed over the row's entries in storage order,
 * with one rounding per multiply and per add.  Every user of this file is
 * built with -ffp-contract=off and without -ffast-math, so the host and the
 * guest produce bit-identical results whatever their thread count (a row is
 * never split between threads).
 */
#ifndef GVM_BENCH_CSR_H
#define GVM_BENCH_CSR_H

#include <stddef.h>
#include <stdint.h>

struct csr {
	uint32_t nrows, ncols;
	uint64_t nnz;
	uint64_t *row_ptr; /* nrows + 1 entries, row_ptr[0] == 0 */
	uint32_t *col;     /* nnz entries, ascending within a row */
	double *val;       /* nnz entries */
};

/* y = A x (y has a->nrows entries, x has a->ncols). */
void spmv_csr(const struct csr *a, const double *x, double *y);

/*
 * Split the rows into nparts contiguous blocks of about the same work (rows
 * plus entries); block p is rows [bounds[p], bounds[p + 1]).
 */
void csr_partition(const struct csr *a, unsigned nparts, uint32_t *bounds);

/* Entries in rows [r0, r1). */
static inline uint64_t csr_block_nnz(const struct csr *a, uint32_t r0, uint32_t r1)
{
	return a->row_ptr[r1] - a->row_ptr[r0];
}

/*
 * Copy rows [r0, r1) of a into b, a matrix of r1 - r0 rows whose arrays the
 * caller allocated (r1 - r0 + 1 row pointers, csr_block_nnz() entries):
 * a thread's own block, placed in its NUMA node's memory.
 */
void csr_block_copy(const struct csr *a, uint32_t r0, uint32_t r1, struct csr *b);

/* Structural check: row pointers monotonic and in range, columns in range. */
int csr_valid(const struct csr *a);

/* The input vector every SpMV run uses: exact small dyadic values. */
void spmv_fill_x(double *x, uint32_t n);

#endif
