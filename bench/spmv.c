#include "bench/csr.h"

void spmv_csr(const struct csr *a, const double *x, double *y)
{
	const uint64_t *rp = a->row_ptr;
	const uint32_t *col = a->col;
	const double *val = a->val;

	for (uint32_t i = 0; i < a->nrows; i++) {
		double sum = 0.0;

		for (uint64_t k = rp[i]; k < rp[i + 1]; k++)
			sum += val[k] * x[col[k]];
		y[i] = sum;
	}
}

void csr_partition(const struct csr *a, unsigned nparts, uint32_t *bounds)
{
	uint64_t total = (uint64_t)a->nrows + a->nnz;
	uint32_t r = 0;

	bounds[0] = 0;
	for (unsigned p = 1; p < nparts; p++) {
		uint64_t target = total * p / nparts;

		while (r < a->nrows && (uint64_t)r + a->row_ptr[r] < target)
			r++;
		bounds[p] = r;
	}
	bounds[nparts] = a->nrows;
}

void csr_block_copy(const struct csr *a, uint32_t r0, uint32_t r1, struct csr *b)
{
	uint64_t base = a->row_ptr[r0];
	uint64_t n = a->row_ptr[r1] - base;

	b->nrows = r1 - r0;
	b->ncols = a->ncols;
	b->nnz = n;
	for (uint32_t i = 0; i <= r1 - r0; i++)
		b->row_ptr[i] = a->row_ptr[r0 + i] - base;
	for (uint64_t k = 0; k < n; k++) {
		b->col[k] = a->col[base + k];
		b->val[k] = a->val[base + k];
	}
}

int csr_valid(const struct csr *a)
{
	if (a->row_ptr[0] != 0 || a->row_ptr[a->nrows] != a->nnz)
		return 0;
	for (uint32_t i = 0; i < a->nrows; i++) {
		if (a->row_ptr[i] > a->row_ptr[i + 1])
			return 0;
		for (uint64_t k = a->row_ptr[i]; k < a->row_ptr[i + 1]; k++)
			if (a->col[k] >= a->ncols ||
			    (k > a->row_ptr[i] && a->col[k] < a->col[k - 1]))
				return 0;
	}
	return 1;
}

void spmv_fill_x(double *x, uint32_t n)
{
	for (uint32_t j = 0; j < n; j++)
		x[j] = 1.0 + (double)(j % 17) / 32.0;
}
