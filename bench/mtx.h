/*
 * A strict Matrix Market reader (coordinate format), freestanding: it reads
 * a file already in memory and writes into arrays the caller allocated, so
 * the probe guest can use it on a file from its initramfs.
 *
 * Supported: "%%MatrixMarket matrix coordinate {real|integer|pattern}
 * {general|symmetric|skew-symmetric}".  Indices are 1-based.  A symmetric
 * file stores the lower triangle (row >= col); each off-diagonal entry also
 * gives its transpose (negated for skew-symmetric, whose diagonal must be
 * empty).  A pattern entry has the value 1.0.  Entries may come in any
 * order; repeated (row, col) pairs are kept and so add up in SpMV.  Blank
 * lines are ignored.  Anything else that does not fit (a bad banner, a
 * missing or malformed size line, an index out of range, a value that is not
 * a number, more or fewer entries than declared) is an error naming the line.
 *
 * Values convert as a correctly rounding strtod does (to nearest, ties to
 * even, any number of digits; past the range of a double, to infinity or
 * to 0), so the host and the guest, which run this same code, agree with
 * each other and with any other correct reader bit for bit.
 */
#ifndef GVM_BENCH_MTX_H
#define GVM_BENCH_MTX_H

#include <stddef.h>
#include <stdint.h>

#include "bench/csr.h"
#include "bench/err.h"

enum mtx_field { MTX_REAL, MTX_INTEGER, MTX_PATTERN };
enum mtx_symmetry { MTX_GENERAL, MTX_SYMMETRIC, MTX_SKEW };

struct mtx_header {
	enum mtx_field field;
	enum mtx_symmetry symmetry;
	uint32_t nrows, ncols;
	uint64_t nentries; /* entries stored in the file, as declared */
	uint64_t max_nnz;  /* entries once symmetry is expanded: allocate this many */
	size_t body;       /* offset of the line after the size line */
	unsigned body_line;
};

#define MTX_MAX_DIM 0xfffffff0u

int mtx_parse_header(const char *buf, size_t len, struct mtx_header *h, struct bench_err *err);

/* Scratch bytes mtx_parse_csr needs (8-byte aligned). */
uint64_t mtx_scratch_size(const struct mtx_header *h);

/*
 * The entries, as CSR with columns ascending within each row, into a whose
 * arrays hold nrows + 1 row pointers and h->max_nnz entries.
 */
int mtx_parse_csr(const char *buf, size_t len, const struct mtx_header *h, struct csr *a,
		  void *scratch, struct bench_err *err);

/* A decimal number as the reader converts it; returns the characters used or 0. */
size_t mtx_parse_double(const char *s, size_t len, double *out);

#endif
