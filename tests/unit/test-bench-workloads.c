/* bench/: the formatter, Matrix Market reader, generator, SpMV, copy and cpio code. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/checksum.h"
#include "bench/copy.h"
#include "bench/cpio.h"
#include "bench/csr.h"
#include "bench/fmt.h"
#include "bench/matgen.h"
#include "bench/mtx.h"
#include "tests/lib/check.h"

static char *matrices_dir(void)
{
	static char dir[4096];
	const char *top = getenv("GVM_TOP");

	snprintf(dir, sizeof(dir), "%s/../shared/data/matrices", top ? top : ".");
	return dir;
}

static void test_fmt(void)
{
	char buf[128], ref[128];

	bfmt_snprintf(buf, sizeof(buf), "%d|%5u|%-4x|%08lx|%s|%.3s|%c|%%|%ld", -42, 7u, 0xabu,
		      0x1234ul, "str", "abcdef", 'z', -9000000000l);
	snprintf(ref, sizeof(ref), "%d|%5u|%-4x|%08lx|%s|%.3s|%c|%%|%ld", -42, 7u, 0xabu,
		 0x1234ul, "str", "abcdef", 'z', -9000000000l);
	CHECK_STR(buf, ref);
	bfmt_snprintf(buf, sizeof(buf), "%.3f %.0f %f %.2f %8.1f", 1.2345, 2.5, -0.25, 0.004, 3.0);
	CHECK_STR(buf, "1.235 3 -0.250000 0.00      3.0");
	bfmt_snprintf(buf, sizeof(buf), "%.3f", 1.5e21);
	CHECK_STR(buf, "1.500e+21");
	CHECK_EQ(bfmt_snprintf(buf, 4, "%s", "abcdef"), 6);
	CHECK_STR(buf, "abc");
	bfmt_snprintf(buf, sizeof(buf), "%lu %zu %-3d| %03d", 18446744073709551615ul, (size_t)5, 1, -5);
	CHECK_STR(buf, "18446744073709551615 5 1  | -05");
}

static int parse_str(const char *text, struct csr *a, struct mtx_header *h, char *msg)
{
	struct bench_err err = { "" };
	size_t len = strlen(text);
	int r = mtx_parse_header(text, len, h, &err);

	if (!r) {
		void *scratch = malloc(mtx_scratch_size(h));

		a->row_ptr = malloc((h->nrows + 1) * sizeof(*a->row_ptr));
		a->col = malloc((h->max_nnz + 1) * sizeof(*a->col));
		a->val = malloc((h->max_nnz + 1) * sizeof(*a->val));
		r = mtx_parse_csr(text, len, h, a, scratch, &err);
		free(scratch);
		if (r) {
			free(a->row_ptr);
			free(a->col);
			free(a->val);
		}
	}
	strcpy(msg, err.msg);
	return r;
}

static void free_csr(struct csr *a)
{
	free(a->row_ptr);
	free(a->col);
	free(a->val);
}

static void test_mtx_small(void)
{
	struct mtx_header h;
	struct csr a;
	char msg[BENCH_ERR_MAX];

	/* General, unsorted entries, comments, blank lines, CRLF. */
	CHECK(parse_str("%%MatrixMarket matrix coordinate real general\r\n% comment\n\n"
			"3 4 4\n3 1 -1.5e1\n1 4 2\n\n1 2 .5\r\n2 2 -0\n", &a, &h, msg) == 0);
	CHECK_EQ(a.nrows, 3);
	CHECK_EQ(a.ncols, 4);
	CHECK_EQ(a.nnz, 4);
	CHECK(csr_valid(&a));
	CHECK(a.row_ptr[1] == 2 && a.col[0] == 1 && a.val[0] == 0.5 && a.col[1] == 3 &&
	      a.val[1] == 2.0);
	CHECK(a.row_ptr[2] == 3 && a.col[2] == 1 && a.val[2] == 0 && signbit(a.val[2]));
	CHECK(a.col[3] == 0 && a.val[3] == -15.0);
	free_csr(&a);

	/* Symmetric: the transpose of each off-diagonal entry is added. */
	CHECK(parse_str("%%MatrixMarket matrix coordinate real symmetric\n3 3 3\n1 1 4\n3 1 2\n"
			"3 3 1\n", &a, &h, msg) == 0);
	CHECK_EQ(a.nnz, 4);
	CHECK(a.row_ptr[1] == 2 && a.col[1] == 2 && a.val[1] == 2.0);
	CHECK(a.row_ptr[2] == 2 && a.col[2] == 0 && a.val[2] == 2.0 && a.col[3] == 2);
	free_csr(&a);

	/* Skew-symmetric negates the transpose; pattern takes 1.0; integer. */
	CHECK(parse_str("%%MatrixMarket matrix coordinate real skew-symmetric\n2 2 1\n2 1 3\n",
			&a, &h, msg) == 0);
	CHECK(a.nnz == 2 && a.val[0] == -3.0 && a.col[0] == 1 && a.val[1] == 3.0);
	free_csr(&a);
	CHECK(parse_str("%%MatrixMarket MATRIX Coordinate Pattern Symmetric\n2 2 2\n1 1\n2 1\n",
			&a, &h, msg) == 0);
	CHECK(a.nnz == 3 && a.val[0] == 1.0 && a.val[1] == 1.0 && a.val[2] == 1.0);
	free_csr(&a);
	CHECK(parse_str("%%MatrixMarket matrix coordinate integer general\n1 1 1\n1 1 -7\n",
			&a, &h, msg) == 0);
	CHECK(a.nnz == 1 && a.val[0] == -7.0);
	free_csr(&a);
	/* Repeated entries are kept (they add up in SpMV); no trailing newline. */
	CHECK(parse_str("%%MatrixMarket matrix coordinate real general\n1 1 2\n1 1 1\n1 1 2",
			&a, &h, msg) == 0);
	CHECK(a.nnz == 2 && a.val[0] == 1.0 && a.val[1] == 2.0);
	free_csr(&a);
}

static void check_bad(const char *text, const char *expect)
{
	struct mtx_header h;
	struct csr a;
	char msg[BENCH_ERR_MAX];

	CHECK(parse_str(text, &a, &h, msg) == -1);
	if (!strstr(msg, expect)) {
		check_state.failures++;
		fprintf(stderr, "%s: message '%s' lacks '%s'\n", check_state.current, msg, expect);
	}
}

static void test_mtx_malformed(void)
{
	const char *g = "%%MatrixMarket matrix coordinate real general\n";
	char buf[512];

	check_bad("", "no %%MatrixMarket banner");
	check_bad("hello\n1 1 1\n", "no %%MatrixMarket banner");
	check_bad("%%MatrixMarket matrix array real general\n2 2\n1\n2\n3\n4\n",
		  "format 'array' unsupported");
	check_bad("%%MatrixMarket vector coordinate real general\n", "object 'vector'");
	check_bad("%%MatrixMarket matrix coordinate complex general\n1 1 1\n1 1 1 0\n",
		  "field 'complex' unsupported");
	check_bad("%%MatrixMarket matrix coordinate real hermitian\n1 1 1\n1 1 1\n",
		  "symmetry 'hermitian' unsupported");
	check_bad("%%MatrixMarket matrix coordinate real\n", "no symmetry");
	check_bad("%%MatrixMarket matrix coordinate real general extra\n", "junk 'extra'");
	check_bad("%%MatrixMarket matrix coordinate real symmetric\n2 3 1\n1 1 1\n",
		  "must be square");
#define BAD(body, expect) \
	do { \
		snprintf(buf, sizeof(buf), "%s%s", g, body); \
		check_bad(buf, expect); \
	} while (0)
	BAD("% only comments\n", "ends before the size line");
	BAD("2 2\n", "expected the size line");
	BAD("2 2 x\n", "expected the size line");
	BAD("2 2 1 5\n1 1 1\n", "junk after the size line");
	BAD("0 2 0\n", "out of range");
	BAD("2 2 -1\n", "expected the size line");
	BAD("2 2 1000\n1 1 1\n", "more than a");
	BAD("2 2 2\n1 1 1\n", "line 3: the file ends after 1 of the 2 entries");
	BAD("2 2 2\n1 1 1", "line 3: the file ends after 1 of the 2 entries");
	BAD("2 2 2\n1 1 1\n\n\n", "line 5: the file ends after 1 of the 2 entries");
	BAD("2 2 1\n", "line 2: the file ends after 0 of the 1 entries");
	BAD("2 2 1\n1 1 1\n2 2 2\n", "line 4: more entries than the 1 declared");
	BAD("2 2 1\n3 1 1\n", "line 3: row 3 out of range [1, 2]");
	BAD("2 2 1\n1 0 1\n", "line 3: column 0 out of range [1, 2]");
	BAD("2 2 1\n1 -1 1\n", "line 3: expected 'ROW COL VALUE'");
	BAD("2 2 1\n1 1\n", "line 3: expected a value after the indices");
	BAD("2 2 1\n1 1", "line 3: expected a value after the indices (the file ends within");
	BAD("2 2 2\n1 1 1\n2", "line 4: expected 'ROW COL VALUE' (the file ends within");
	BAD("2 2 1\n1 1 abc\n", "line 3: expected a value");
	BAD("2 2 1\n1 1 1.0 2.0\n", "line 3: junk after the entry");
	BAD("2 2 1\n1 1 1.0x\n", "line 3: junk after the entry");
	BAD("2 2 1\n1 1 1e\n", "expected a value");
	BAD("2 2 1\n1.5 1 1\n", "expected 'ROW COL VALUE'");
	check_bad("%%MatrixMarket matrix coordinate real symmetric\n2 2 1\n1 2 1\n",
		  "above the diagonal");
	check_bad("%%MatrixMarket matrix coordinate real skew-symmetric\n2 2 1\n1 1 1\n",
		  "on or above the diagonal");
	check_bad("%%MatrixMarket matrix coordinate integer general\n1 1 1\n1 1 1.5\n",
		  "non-integer value");
	check_bad("%%MatrixMarket matrix coordinate pattern general\n1 1 1\n1 1 1\n",
		  "junk after the entry");
#undef BAD
	/* A bad last line that does end in a newline is not taken for a cut. */
	struct mtx_header h;
	struct csr a;
	char msg[BENCH_ERR_MAX];

	snprintf(buf, sizeof(buf), "%s2 2 1\n1 x\n", g);
	CHECK(parse_str(buf, &a, &h, msg) == -1 && strstr(msg, "line 3:") && !strstr(msg, "cut"));
}

/*
 * A real matrix: the reader against an independent one (stdio + strtod),
 * entry by entry, and SpMV on it against a dense-order reference.
 */
static void check_real_matrix(const char *file, uint32_t rows, uint64_t stored, int symmetric,
			      int pattern)
{
	char path[4200], msg[BENCH_ERR_MAX];
	FILE *f;
	struct mtx_header h;
	struct bench_err err;
	struct csr a;

	snprintf(path, sizeof(path), "%s/%s", matrices_dir(), file);
	f = fopen(path, "r");
	if (!f) {
		check_state.failures++;
		fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
		return;
	}
	fseek(f, 0, SEEK_END);
	long len = ftell(f);
	char *buf = malloc((size_t)len);

	rewind(f);
	CHECK(fread(buf, 1, (size_t)len, f) == (size_t)len);
	CHECK(mtx_parse_header(buf, (size_t)len, &h, &err) == 0);
	CHECK_EQ(h.nrows, rows);
	CHECK_EQ(h.ncols, rows);
	CHECK_EQ(h.nentries, stored);
	CHECK_EQ(h.symmetry, symmetric ? MTX_SYMMETRIC : MTX_GENERAL);

	void *scratch = malloc(mtx_scratch_size(&h));

	a.row_ptr = malloc((h.nrows + 1) * sizeof(*a.row_ptr));
	a.col = malloc(h.max_nnz * sizeof(*a.col));
	a.val = malloc(h.max_nnz * sizeof(*a.val));
	CHECK(mtx_parse_csr(buf, (size_t)len, &h, &a, scratch, &err) == 0);
	CHECK(csr_valid(&a));

	/* The independent reader: every entry found in the CSR with the same value. */
	char line[512];
	uint64_t seen = 0, diag = 0, missing = 0, inexact = 0;
	double *x = malloc(rows * sizeof(*x)), *y = malloc(rows * sizeof(*y));
	double *yref = calloc(rows, sizeof(*yref)), *yabs = calloc(rows, sizeof(*yabs));

	spmv_fill_x(x, rows);
	rewind(f);
	while (fgets(line, sizeof(line), f) && line[0] == '%')
		;
	while (fgets(line, sizeof(line), f)) {
		unsigned i, j;
		char val[128] = "1";
		int n = sscanf(line, "%u %u %127s", &i, &j, val);

		if (n < 2)
			continue;
		double v = strtod(val, NULL);
		int found = 0;

		seen++;
		diag += i == j;
		for (uint64_t k = a.row_ptr[i - 1]; k < a.row_ptr[i]; k++)
			if (a.col[k] == j - 1) {
				found = 1;
				inexact += a.val[k] != v;
			}
		missing += !found;
		yref[i - 1] += v * x[j - 1];
		yabs[i - 1] += fabs(v * x[j - 1]);
		if (symmetric && i != j) {
			yref[j - 1] += v * x[i - 1];
			yabs[j - 1] += fabs(v * x[i - 1]);
		}
	}
	CHECK_EQ(seen, stored);
	CHECK_EQ(missing, 0);
	CHECK_EQ(inexact, 0);
	CHECK_EQ(a.nnz, symmetric ? 2 * stored - diag : stored);
	if (pattern)
		CHECK(a.val[0] == 1.0 && a.val[a.nnz - 1] == 1.0);

	spmv_csr(&a, x, y);
	uint64_t bad = 0;

	for (uint32_t i = 0; i < rows; i++)
		bad += fabs(y[i] - yref[i]) > 1e-13 * yabs[i];
	CHECK_EQ(bad, 0);
	printf("     %s: %u rows, %lu entries, checksum 0x%016lx\n", file, rows, a.nnz,
	       checksum_f64(CHECKSUM_INIT, y, rows));

	/* Truncated copies of a real file fail with a count. */
	struct mtx_header h2;
	size_t cut = (size_t)len / 2;

	while (buf[cut - 1] != '\n')
		cut--;
	CHECK(mtx_parse_header(buf, cut, &h2, &err) == 0);
	CHECK(mtx_parse_csr(buf, cut, &h2, &a, scratch, &err) == -1);
	CHECK(strstr(err.msg, "the file ends after") != NULL);
	(void)msg;
	fclose(f);
	free(buf);
	free(scratch);
	free_csr(&a);
	free(x);
	free(y);
	free(yref);
	free(yabs);
}

static void test_mtx_real(void)
{
	check_real_matrix("bcsstk13.mtx", 2003, 42943, 1, 0);
	check_real_matrix("bayer10.mtx", 13436, 94926, 0, 0);
	check_real_matrix("pushpull.mtx", 4000, 99208, 1, 1);
}

static void test_matgen(void)
{
	struct matgen g;
	struct bench_err err;
	char name[MATGEN_NAME_MAX];

	CHECK(matgen_parse("gen", &g, &err) == 0 && g.rows == 200000 && g.per_row == 16 &&
	      g.seed == 1);
	CHECK(matgen_parse("gen:1000:8:42", &g, &err) == 0 && g.rows == 1000 && g.per_row == 8 &&
	      g.seed == 42);
	matgen_name(&g, name, sizeof(name));
	CHECK_STR(name, "gen:1000:8:42");
	CHECK(matgen_parse("gen:0:8:1", &g, &err) == -1 && strstr(err.msg, "field 1"));
	CHECK(matgen_parse("gen:10:257:1", &g, &err) == -1 && strstr(err.msg, "field 2"));
	CHECK(matgen_parse("gen:10:8:1x", &g, &err) == -1 && strstr(err.msg, "junk"));
	CHECK(matgen_parse("gen:10:8:1:5", &g, &err) == -1);
	CHECK(matgen_parse("generic", &g, &err) == -1);
	CHECK(matgen_parse("foo", &g, &err) == -1 && strstr(err.msg, "not a generated"));

	/* Deterministic, valid, and a block equals the same rows of the whole. */
	matgen_parse("gen:5000:12:7", &g, &err);
	struct csr a, b;
	uint64_t max = matgen_max_nnz(&g, 0, g.rows);

	a.row_ptr = malloc((g.rows + 1) * sizeof(*a.row_ptr));
	a.col = malloc(max * sizeof(*a.col));
	a.val = malloc(max * sizeof(*a.val));
	b.row_ptr = malloc((g.rows + 1) * sizeof(*b.row_ptr));
	b.col = malloc(max * sizeof(*b.col));
	b.val = malloc(max * sizeof(*b.val));
	matgen_rows(&g, 0, g.rows, &a);
	CHECK(csr_valid(&a));
	CHECK(a.nnz > g.rows * 10 && a.nnz <= max);
	matgen_rows(&g, 1234, 3000, &b);
	CHECK(csr_valid(&b));
	CHECK_EQ(b.nnz, csr_block_nnz(&a, 1234, 3000));
	CHECK(!memcmp(b.col, a.col + a.row_ptr[1234], b.nnz * sizeof(*b.col)));
	CHECK(!memcmp(b.val, a.val + a.row_ptr[1234], b.nnz * sizeof(*b.val)));
	/* Diagonally dominant: every row holds its diagonal. */
	unsigned nodiag = 0;

	for (uint32_t i = 0; i < g.rows; i++) {
		int d = 0;

		for (uint64_t k = a.row_ptr[i]; k < a.row_ptr[i + 1]; k++)
			d |= a.col[k] == i && a.val[k] == 13.0;
		nodiag += !d;
	}
	CHECK_EQ(nodiag, 0);
	/* Tiny matrices wrap the band correctly. */
	matgen_parse("gen:3:256:1", &g, &err);
	matgen_rows(&g, 0, 3, &b);
	CHECK(csr_valid(&b) && b.nnz == 9);
	free_csr(&a);
	free_csr(&b);
}

static void test_spmv_partition(void)
{
	struct matgen g = { 20000, 16, 3 };
	uint64_t max = matgen_max_nnz(&g, 0, g.rows);
	struct csr a = {
		.row_ptr = malloc((g.rows + 1) * sizeof(uint64_t)),
		.col = malloc(max * sizeof(uint32_t)), .val = malloc(max * sizeof(double)),
	};
	double *x = malloc(g.rows * sizeof(double)), *y = malloc(g.rows * sizeof(double));
	double *y2 = malloc(g.rows * sizeof(double));

	matgen_rows(&g, 0, g.rows, &a);
	spmv_fill_x(x, g.rows);
	spmv_csr(&a, x, y);
	uint64_t whole = checksum_f64(CHECKSUM_INIT, y, g.rows);

	for (unsigned parts = 1; parts <= 7; parts++) {
		uint32_t bounds[8];
		uint64_t h = CHECKSUM_INIT;

		csr_partition(&a, parts, bounds);
		CHECK(bounds[0] == 0 && bounds[parts] == g.rows);
		for (unsigned p = 0; p < parts; p++) {
			uint32_t r0 = bounds[p], r1 = bounds[p + 1];
			uint64_t n = csr_block_nnz(&a, r0, r1);
			struct csr b = {
				.row_ptr = malloc((r1 - r0 + 1) * sizeof(uint64_t)),
				.col = malloc((n + 1) * sizeof(uint32_t)),
				.val = malloc((n + 1) * sizeof(double)),
			};

			CHECK(r0 <= r1);
			/* Balanced within 5% of the work. */
			CHECK((r1 - r0 + n) * parts <= (g.rows + a.nnz) * 105 / 100);
			csr_block_copy(&a, r0, r1, &b);
			CHECK(csr_valid(&b));
			spmv_csr(&b, x, y2);
			h = checksum_f64(h, y2, r1 - r0);
			free_csr(&b);
		}
		CHECK_EQ(h, whole);
	}
	/* A 2x2 by hand. */
	uint64_t rp[] = { 0, 2, 3 };
	uint32_t col[] = { 0, 1, 0 };
	double val[] = { 2, 3, -1 }, xx[] = { 1, 10 }, yy[2];
	struct csr s = { 2, 2, 3, rp, col, val };

	spmv_csr(&s, xx, yy);
	CHECK(yy[0] == 32 && yy[1] == -1);
	CHECK(checksum_f64(CHECKSUM_INIT, yy, 2) != checksum_f64(CHECKSUM_INIT, yy, 1));
	yy[1] = -0.0;
	double zz[2] = { 32, 0.0 };

	CHECK(checksum_f64(CHECKSUM_INIT, yy, 2) != checksum_f64(CHECKSUM_INIT, zz, 2));
	free_csr(&a);
	free(x);
	free(y);
	free(y2);
}

static void test_copy(void)
{
	size_t n = 1 << 20;
	char *src = aligned_alloc(64, n), *dst = aligned_alloc(64, n);
	enum copy_method m;

	copy_fill(src, n, 9);
	for (int k = 0; k < 2; k++) {
		memset(dst, 0, n);
		copy_run(k ? COPY_SSE2 : COPY_REP, dst, src, n);
		CHECK(!memcmp(dst, src, n));
		CHECK_EQ(checksum_words(CHECKSUM_INIT, dst, n), checksum_words(CHECKSUM_INIT, src, n));
	}
	copy_fill(dst, n, 10);
	CHECK(memcmp(dst, src, n) != 0);
	CHECK(copy_method_parse("rep", &m) == 0 && m == COPY_REP);
	CHECK(copy_method_parse("sse2", &m) == 0 && m == COPY_SSE2);
	CHECK(copy_method_parse("avx", &m) == -1);
	free(src);
	free(dst);
}

/* newc by hand, for malformed cases. */
static size_t newc_entry(char *p, const char *name, const char *data, unsigned mode)
{
	size_t dlen = strlen(data), nlen = strlen(name) + 1, off;

	off = (size_t)sprintf(p, "070701%08X%08X%08X%08X%08X%08X%08zX%08X%08X%08X%08X%08zX%08X",
			      1, mode, 0, 0, 1, 0, dlen, 0, 0, 0, 0, nlen, 0);
	memcpy(p + off, name, nlen);
	off += nlen;
	while (off % 4)
		p[off++] = 0;
	memcpy(p + off, data, dlen);
	off += dlen;
	while (off % 4)
		p[off++] = 0;
	return off;
}

static void test_cpio(void)
{
	char arc[4096];
	size_t n = 0;
	struct cpio_file f;
	struct bench_err err;

	n += newc_entry(arc + n, ".", "", 040755);
	n += newc_entry(arc + n, "./a.mtx", "first", 0100644);
	n += newc_entry(arc + n, "dir/b.txt", "bee", 0100644);
	n += newc_entry(arc + n, "TRAILER!!!", "", 0);
	memset(arc + n, 0, 512 - n % 512);
	n += 512 - n % 512;
	n += newc_entry(arc + n, "/a.mtx", "second!", 0100644);
	n += newc_entry(arc + n, "TRAILER!!!", "", 0);

	CHECK(cpio_find(arc, n, "a.mtx", &f, &err) == 1);
	CHECK(f.size == 7 && !memcmp(f.data, "second!", 7));
	CHECK(cpio_find(arc, n, "dir/b.txt", &f, &err) == 1 && f.size == 3);
	CHECK(cpio_find(arc, n, "b.txt", &f, &err) == 0);
	CHECK(cpio_find(arc, n, ".", &f, &err) == 0); /* a directory, not a file */
	CHECK(cpio_find(arc, n, "a.mt", &f, &err) == 0);

	CHECK(cpio_find(arc, n - 127, "a.mtx", &f, &err) == -1 && strstr(err.msg, "runs past"));
	CHECK(cpio_find(arc, 50, "a.mtx", &f, &err) == -1 && strstr(err.msg, "truncated"));
	CHECK(cpio_find(arc, n - 20, "a.mtx", &f, &err) == -1 && strstr(err.msg, "truncated"));
	arc[0] = 'x';
	CHECK(cpio_find(arc, n, "a.mtx", &f, &err) == -1 && strstr(err.msg, "not a newc"));
	arc[0] = (char)0x1f;
	arc[1] = (char)0x8b;
	CHECK(cpio_find(arc, n, "a.mtx", &f, &err) == -1 && strstr(err.msg, "gzip"));
	CHECK(cpio_find(arc, 0, "a.mtx", &f, &err) == 0);
}

/* An archive written by GNU cpio, two of them concatenated as a boot loader would. */
static void test_cpio_real(void)
{
	char dir[] = "/tmp/test-bench.XXXXXX", cmd[8192], *img = malloc(1 << 22);
	struct cpio_file f;
	struct bench_err err;
	FILE *p;
	size_t n;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(cmd, sizeof(cmd),
		 "set -e; cd %s; mkdir -p m; cp %s/bcsstk13.mtx m/; echo hi > x;"
		 "echo x | cpio -o -H newc --quiet > 1.cpio;"
		 "echo m/bcsstk13.mtx | cpio -o -H newc --quiet > 2.cpio;"
		 "cat 1.cpio 2.cpio", dir, matrices_dir());
	p = popen(cmd, "r");
	CHECK(p != NULL);
	n = fread(img, 1, 1 << 22, p);
	CHECK(pclose(p) == 0);
	CHECK(cpio_find(img, n, "m/bcsstk13.mtx", &f, &err) == 1);
	CHECK_EQ(f.size, 1025924);
	CHECK(f.size > 14 && !memcmp(f.data, "%%MatrixMarket", 14));
	CHECK(cpio_find(img, n, "x", &f, &err) == 1 && f.size == 3);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0);
	free(img);
}

int main(void)
{
	RUN(test_fmt);
	RUN(test_mtx_small);
	RUN(test_mtx_malformed);
	RUN(test_mtx_real);
	RUN(test_matgen);
	RUN(test_spmv_partition);
	RUN(test_copy);
	RUN(test_cpio);
	RUN(test_cpio_real);
	return check_summary();
}
