/*
 * SpMV (CSR) with one row block per thread in the thread's node: a
 * generated matrix is generated there directly, a Matrix Market file from
 * the initramfs is read on node 0 and each thread copies its block.  Each
 * node has its own copy of x; y is summed into one checksum in row order.
 */
#include "bench/checksum.h"
#include "bench/cpio.h"
#include "bench/matgen.h"
#include "bench/mtx.h"
#include "bench/report.h"
#include "images/probe/user/probe.h"

struct spmv_run {
	const struct csr *whole;  /* a file's matrix, or NULL (generated) */
	struct matgen gen;
	uint32_t nrows, ncols;
	uint32_t bounds[PROBE_MAX_CPUS + 1];
	double *x[PROBE_ACPI_MAX_DOMAINS];
	struct csr block[PROBE_MAX_CPUS];
	double *y[PROBE_MAX_CPUS];
	int nomem;
};

static struct spmv_run run;
/* Written after each thread's timed loop: apart from what the loops read. */
static struct {
	uint64_t t0, t1, w0, w1;
} __attribute__((aligned(64))) times[PROBE_MAX_CPUS] __attribute__((aligned(4096)));

static int alloc_block(unsigned node, struct csr *b, uint32_t rows, uint64_t nnz)
{
	b->row_ptr = node_alloc(node, ((uint64_t)rows + 1) * sizeof(uint64_t));
	b->col = node_alloc(node, nnz * sizeof(uint32_t));
	b->val = node_alloc(node, nnz * sizeof(double));
	return b->row_ptr && b->col && b->val ? 0 : -1;
}

/*
 * Thread tid's block, row pointers, y, allocated on node and written for
 * the first time by the calling thread (its own, or thread 0 for all).
 */
static void spmv_init_block(unsigned tid, unsigned node)
{
	uint32_t r0 = run.bounds[tid], r1 = run.bounds[tid + 1];
	struct csr *b = &run.block[tid];

	run.y[tid] = node_alloc(node, ((uint64_t)(r1 - r0) + 1) * sizeof(double));
	if (!run.y[tid])
		run.nomem = 1;
	else
		for (uint32_t i = 0; i <= r1 - r0; i++)
			run.y[tid][i] = 0;
	if (!run.whole) {
		if (alloc_block(node, b, r1 - r0, matgen_max_nnz(&run.gen, r0, r1) + 1))
			run.nomem = 1;
		else
			matgen_rows(&run.gen, r0, r1, b);
	} else if (opts.naive) {
		/* Naive: the rows where the file was read, on node 0, as a view. */
		*b = (struct csr){ r1 - r0, run.ncols, csr_block_nnz(run.whole, r0, r1), NULL,
				   run.whole->col, run.whole->val };
		b->row_ptr = node_alloc(0, ((uint64_t)(r1 - r0) + 1) * sizeof(uint64_t));
		if (!b->row_ptr) {
			run.nomem = 1;
		} else {
			uint64_t base = run.whole->row_ptr[r0];

			for (uint32_t i = 0; i <= r1 - r0; i++)
				b->row_ptr[i] = run.whole->row_ptr[r0 + i] - base;
			b->col += base;
			b->val += base;
		}
	} else {
		if (alloc_block(node, b, r1 - r0, csr_block_nnz(run.whole, r0, r1) + 1))
			run.nomem = 1;
		else
			csr_block_copy(run.whole, r0, r1, b);
	}
}

static void spmv_job(unsigned tid, void *arg)
{
	unsigned xn = opts.naive ? 0 : team.node[tid];
	struct csr *b = &run.block[tid];

	(void)arg;
	if (opts.naive ? tid == 0 : team_node_leader(tid)) {
		run.x[xn] = node_alloc(xn, (uint64_t)run.ncols * sizeof(double));
		if (run.x[xn])
			spmv_fill_x(run.x[xn], run.ncols);
		else
			run.nomem = 1;
	}
	/*
	 * Node-aware: each thread writes its own data first, in its node.
	 * Naive: the classic serial initialisation, thread 0 writing every
	 * block into node 0's memory (and, across instances, onto rank 0).
	 */
	if (!opts.naive)
		spmv_init_block(tid, team.node[tid]);
	else if (tid == 0)
		for (unsigned t = 0; t < team.nthreads; t++)
			spmv_init_block(t, 0);
	team_barrier(tid);
	if (run.nomem)
		return;
	struct csr a = *b;
	const double *x = run.x[xn];
	double *y = run.y[tid];
	uint64_t iters = opts.iters;

	team_barrier(tid);
	/* the first iteration, timed apart: where the data is first fetched */
	uint64_t w0 = tsc_read();

	spmv_csr(&a, x, y);
	uint64_t w1 = tsc_read();

	team_barrier(tid);

	uint64_t t0 = tsc_read();

	for (uint64_t i = 0; i < iters; i++)
		spmv_csr(&a, x, y);
	times[tid].t1 = tsc_read();
	times[tid].t0 = t0;
	times[tid].w0 = w0;
	times[tid].w1 = w1;
}

/* A file from the initramfs, read into a CSR on node 0. */
static int load_file(const char *name, struct csr *a)
{
	struct probe_bootinfo *bi = &probe_bootinfo;
	struct cpio_file f;
	struct bench_err err;
	struct mtx_header h;
	int r;

	if (!bi->initrd_size) {
		ufail("spmv: matrix '%s' asked for, but no initramfs was given", name);
		return -1;
	}
	r = cpio_find((const void *)bi->initrd_base, bi->initrd_size, name, &f, &err);
	if (r < 0) {
		ufail("spmv: the initramfs is malformed: %s", err.msg);
		return -1;
	}
	if (!r) {
		ufail("spmv: no file '%s' in the initramfs", name);
		return -1;
	}
	if (mtx_parse_header(f.data, f.size, &h, &err)) {
		ufail("spmv: %s: %s", name, err.msg);
		return -1;
	}
	a->row_ptr = node_alloc(0, ((uint64_t)h.nrows + 1) * sizeof(uint64_t));
	a->col = node_alloc(0, (h.max_nnz + 1) * sizeof(uint32_t));
	a->val = node_alloc(0, (h.max_nnz + 1) * sizeof(double));

	uint64_t mark = node_alloc_mark(0);
	void *scratch = node_alloc(0, mtx_scratch_size(&h));

	if (!a->row_ptr || !a->col || !a->val || !scratch) {
		ufail("spmv: %s: out of memory on node 0 (%lu entries)", name, h.max_nnz);
		return -1;
	}
	r = mtx_parse_csr(f.data, f.size, &h, a, scratch, &err);
	node_alloc_release(0, mark);
	if (r) {
		ufail("spmv: %s: %s", name, err.msg);
		return -1;
	}
	return 0;
}

void run_spmv(const char *matrix)
{
	uint64_t marks[PROBE_ACPI_MAX_DOMAINS];
	unsigned nt = team.nthreads;
	struct csr whole;
	struct bench_err err;
	char name[MATGEN_NAME_MAX], line[512];

	for (unsigned d = 0; d < team.nnodes; d++)
		marks[d] = node_alloc_mark(d);
	run.whole = NULL;
	run.nomem = 0;
	if (ustartswith(matrix, "gen") && (matrix[3] == '\0' || matrix[3] == ':')) {
		if (matgen_parse(matrix, &run.gen, &err)) {
			ufail("spmv: %s", err.msg);
			goto out;
		}
		matgen_name(&run.gen, name, sizeof(name));
		matrix = name;
		run.nrows = run.ncols = run.gen.rows;
		/* Rows in equal shares: every generated row has about the same length. */
		for (unsigned t = 0; t <= nt; t++)
			run.bounds[t] = (uint32_t)((uint64_t)run.nrows * t / nt);
	} else {
		if (load_file(matrix, &whole))
			goto out;
		run.whole = &whole;
		run.nrows = whole.nrows;
		run.ncols = whole.ncols;
		csr_partition(&whole, nt, run.bounds);
	}
	team_run(spmv_job, NULL);
	if (run.nomem) {
		ufail("spmv: %s: out of memory for the per-thread blocks", matrix);
		goto out;
	}

	uint64_t start = times[0].t0, end = times[0].t1, nnz = 0, sum = CHECKSUM_INIT;
	uint64_t wstart = times[0].w0, wend = times[0].w1;

	for (unsigned t = 0; t < nt; t++) {
		start = times[t].t0 < start ? times[t].t0 : start;
		end = times[t].t1 > end ? times[t].t1 : end;
		wstart = times[t].w0 < wstart ? times[t].w0 : wstart;
		wend = times[t].w1 > wend ? times[t].w1 : wend;
		nnz += run.block[t].nnz;
		sum = checksum_f64(sum, run.y[t], run.bounds[t + 1] - run.bounds[t]);
	}

	struct spmv_report r = {
		.matrix = matrix, .rows = run.nrows, .cols = run.ncols, .nnz = nnz,
		.checksum = sum, .iters = (unsigned)opts.iters, .threads = nt,
		.placement = opts.naive ? "naive" : "node", .cycles = end - start,
		.tsc_khz = tsc_khz,
	};

	spmv_report_line(line, sizeof(line), &r);
	uprintf("%s first_cycles=%lu\n", line, wend - wstart);
out:
	for (unsigned d = 0; d < team.nnodes; d++)
		node_alloc_release(d, marks[d]);
}
