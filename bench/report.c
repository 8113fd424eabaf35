#include "bench/report.h"

#include "bench/fmt.h"

static double seconds(uint64_t cycles, uint64_t tsc_khz)
{
	return (double)cycles / ((double)tsc_khz * 1e3);
}

double spmv_report_gflops(const struct spmv_report *r)
{
	if (!r->tsc_khz || !r->cycles)
		return 0;
	return 2.0 * (double)r->nnz * r->iters / seconds(r->cycles, r->tsc_khz) / 1e9;
}

double memcpy_report_gbps(const struct memcpy_report *r)
{
	if (!r->tsc_khz || !r->cycles)
		return 0;
	return (double)r->size * r->reps * r->threads / seconds(r->cycles, r->tsc_khz) / 1e9;
}

int spmv_report_line(char *buf, size_t size, const struct spmv_report *r)
{
	return bfmt_snprintf(buf, size,
			     "spmv: matrix=%s rows=%u cols=%u nnz=%lu checksum=0x%016lx iters=%u "
			     "threads=%u placement=%s cycles=%lu gflops=%.3f",
			     r->matrix, r->rows, r->cols, r->nnz, r->checksum, r->iters, r->threads,
			     r->placement, r->cycles, spmv_report_gflops(r));
}

int memcpy_report_line(char *buf, size_t size, const struct memcpy_report *r)
{
	return bfmt_snprintf(buf, size,
			     "memcpy: threads=%u size=%lu reps=%u method=%s placement=%s verify=%s "
			     "cycles=%lu gbps=%.3f",
			     r->threads, r->size, r->reps, r->method, r->placement,
			     r->verified ? "ok" : "FAIL", r->cycles, memcpy_report_gbps(r));
}
