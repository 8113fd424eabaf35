#include "bench/mtx.h"

struct cursor {
	const char *buf;
	size_t len, pos;
	unsigned line;
};

static int is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static void skip_blanks(struct cursor *c)
{
	while (c->pos < c->len && is_blank(c->buf[c->pos]))
		c->pos++;
}

static int at_eol(const struct cursor *c)
{
	return c->pos >= c->len || c->buf[c->pos] == '\n';
}

/* Past the end of the current line. */
static void next_line(struct cursor *c)
{
	while (c->pos < c->len && c->buf[c->pos] != '\n')
		c->pos++;
	if (c->pos < c->len)
		c->pos++;
	c->line++;
}

/* The next blank-separated word on this line, lowercased into w. */
static int word(struct cursor *c, char *w, size_t size)
{
	size_t n = 0;

	skip_blanks(c);
	while (!at_eol(c) && !is_blank(c->buf[c->pos])) {
		if (n + 1 < size)
			w[n++] = lower(c->buf[c->pos]);
		else
			n = size; /* too long: no valid word is, so make it mismatch */
		c->pos++;
	}
	if (n >= size)
		n = size - 1, w[0] = '?';
	w[n] = '\0';
	return n > 0;
}

static int streq(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

static int parse_u64(struct cursor *c, uint64_t *out)
{
	uint64_t v = 0;
	size_t start;

	skip_blanks(c);
	start = c->pos;
	while (c->pos < c->len && is_digit(c->buf[c->pos])) {
		unsigned d = (unsigned)(c->buf[c->pos] - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
		c->pos++;
	}
	if (c->pos == start || (!at_eol(c) && !is_blank(c->buf[c->pos])))
		return -1;
	*out = v;
	return 0;
}

size_t mtx_parse_double(const char *s, size_t len, double *out)
{
	static const long double pow10[] = {
		1e0L, 1e1L, 1e2L, 1e3L, 1e4L, 1e5L, 1e6L, 1e7L, 1e8L, 1e9L, 1e10L, 1e11L, 1e12L,
		1e13L, 1e14L, 1e15L, 1e16L, 1e17L, 1e18L, 1e19L, 1e20L, 1e21L, 1e22L, 1e23L,
		1e24L, 1e25L, 1e26L, 1e27L,
	};
	size_t i = 0;
	int neg = 0, digits = 0, sig = 0;
	int64_t exp10 = 0;
	uint64_t m = 0;

	if (i < len && (s[i] == '+' || s[i] == '-'))
		neg = s[i++] == '-';
	for (; i < len && is_digit(s[i]); i++, digits++) {
		if (sig < 19) {
			m = m * 10 + (uint64_t)(s[i] - '0');
			if (m)
				sig++;
		} else {
			exp10++; /* dropped digit: only its place counts */
		}
	}
	if (i < len && s[i] == '.') {
		for (i++; i < len && is_digit(s[i]); i++, digits++) {
			if (sig < 19) {
				m = m * 10 + (uint64_t)(s[i] - '0');
				if (m)
					sig++;
				exp10--;
			}
		}
	}
	if (!digits)
		return 0;
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		int eneg = 0;
		int64_t e = 0;
		size_t start;

		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			eneg = s[i++] == '-';
		start = i;
		for (; i < len && is_digit(s[i]); i++)
			if (e < 100000)
				e = e * 10 + (s[i] - '0');
		if (i == start)
			return 0;
		exp10 += eneg ? -e : e;
	}

	double v;

	if (m == 0) {
		v = 0.0;
	} else if (m <= (1ull << 53) && exp10 >= -22 && exp10 <= 22) {
		/* Both operands exact: one correctly rounded operation. */
		double p = (double)pow10[exp10 < 0 ? -exp10 : exp10];

		v = exp10 < 0 ? (double)m / p : (double)m * p;
	} else {
		/* 64-bit mantissa, then one rounding to double (rarely off by an ulp). */
		long double x = (long double)m;

		while (exp10 > 27 && x < 1e4000L)
			x *= pow10[27], exp10 -= 27;
		while (exp10 < -27 && x > 1e-4000L)
			x /= pow10[27], exp10 += 27;
		if (exp10 > 27 || exp10 < -27)
			x = exp10 > 0 ? x * 1e300L * 1e300L : 0;
		else
			x = exp10 < 0 ? x / pow10[-exp10] : x * pow10[exp10];
		v = (double)x;
	}
	*out = neg ? -v : v;
	return i;
}

int mtx_parse_header(const char *buf, size_t len, struct mtx_header *h, struct bench_err *err)
{
	struct cursor c = { buf, len, 0, 1 };
	char w[32];
	uint64_t dims[3];

	if (!word(&c, w, sizeof(w)) || !streq(w, "%%matrixmarket"))
		return bench_fail(err, "line 1: not a Matrix Market file (no %%%%MatrixMarket banner)");
	if (!word(&c, w, sizeof(w)) || !streq(w, "matrix"))
		return bench_fail(err, "line 1: object '%s' unsupported (only 'matrix')", w);
	if (!word(&c, w, sizeof(w)) || !streq(w, "coordinate"))
		return bench_fail(err, "line 1: format '%s' unsupported (only 'coordinate', "
				  "the sparse format)", w);
	if (!word(&c, w, sizeof(w)))
		return bench_fail(err, "line 1: the banner has no field (real, integer, pattern)");
	if (streq(w, "real"))
		h->field = MTX_REAL;
	else if (streq(w, "integer"))
		h->field = MTX_INTEGER;
	else if (streq(w, "pattern"))
		h->field = MTX_PATTERN;
	else
		return bench_fail(err, "line 1: field '%s' unsupported (real, integer or pattern)", w);
	if (!word(&c, w, sizeof(w)))
		return bench_fail(err, "line 1: the banner has no symmetry (general, symmetric, "
				  "skew-symmetric)");
	if (streq(w, "general"))
		h->symmetry = MTX_GENERAL;
	else if (streq(w, "symmetric"))
		h->symmetry = MTX_SYMMETRIC;
	else if (streq(w, "skew-symmetric"))
		h->symmetry = MTX_SKEW;
	else
		return bench_fail(err, "line 1: symmetry '%s' unsupported (general, symmetric or "
				  "skew-symmetric)", w);
	if (word(&c, w, sizeof(w)))
		return bench_fail(err, "line 1: junk '%s' after the banner", w);
	next_line(&c);

	/* Comments and blank lines, then the size line. */
	for (;;) {
		if (c.pos >= len)
			return bench_fail(err, "line %u: the file ends before the size line "
					  "'ROWS COLS ENTRIES'", c.line);
		skip_blanks(&c);
		if (at_eol(&c) || buf[c.pos] == '%') {
			next_line(&c);
			continue;
		}
		break;
	}
	for (int i = 0; i < 3; i++)
		if (parse_u64(&c, &dims[i]))
			return bench_fail(err, "line %u: expected the size line 'ROWS COLS ENTRIES'",
					  c.line);
	skip_blanks(&c);
	if (!at_eol(&c))
		return bench_fail(err, "line %u: junk after the size line 'ROWS COLS ENTRIES'",
				  c.line);
	if (dims[0] < 1 || dims[0] > MTX_MAX_DIM || dims[1] < 1 || dims[1] > MTX_MAX_DIM)
		return bench_fail(err, "line %u: dimensions %lu x %lu out of range [1, %u]",
				  c.line, dims[0], dims[1], MTX_MAX_DIM);
	if (h->symmetry != MTX_GENERAL && dims[0] != dims[1])
		return bench_fail(err, "line %u: a %s matrix must be square, not %lu x %lu", c.line,
				  h->symmetry == MTX_SKEW ? "skew-symmetric" : "symmetric",
				  dims[0], dims[1]);

	/*
	 * Repeated entries are allowed, so the matrix size is no bound on the
	 * count; but an entry takes at least 4 bytes ("1 1\n"), which bounds what
	 * the caller must allocate.
	 */
	if (dims[2] > len / 4)
		return bench_fail(err, "line %u: %lu entries declared, more than a %lu-byte "
				  "file can hold", c.line, dims[2], (uint64_t)len);
	h->nrows = (uint32_t)dims[0];
	h->ncols = (uint32_t)dims[1];
	h->nentries = dims[2];
	h->max_nnz = h->symmetry == MTX_GENERAL ? dims[2] : 2 * dims[2];
	next_line(&c);
	h->body = c.pos;
	h->body_line = c.line;
	return 0;
}

uint64_t mtx_scratch_size(const struct mtx_header *h)
{
	uint64_t dim = h->nrows > h->ncols ? h->nrows : h->ncols;

	/* Two COO copies (row, col, value) and one counter per row or column. */
	return 2 * h->max_nnz * (4 + 4 + 8) + 8 * (dim + 1);
}

struct coo {
	uint32_t *row, *col;
	double *val;
};

static void coo_carve(struct coo *c, char **p, uint64_t n)
{
	c->val = (double *)*p;
	*p += 8 * n;
	c->row = (uint32_t *)*p;
	*p += 4 * n;
	c->col = (uint32_t *)*p;
	*p += 4 * n;
}

int mtx_parse_csr(const char *buf, size_t len, const struct mtx_header *h, struct csr *a,
		  void *scratch, struct bench_err *err)
{
	struct cursor c = { buf, len, h->body, h->body_line };
	char *p = scratch;
	struct coo in, by_col;
	uint64_t *count, n = 0, stored = 0;

	coo_carve(&in, &p, h->max_nnz);
	coo_carve(&by_col, &p, h->max_nnz);
	count = (uint64_t *)p;

	while (c.pos < len) {
		uint64_t i, j;
		double v = 1.0;

		skip_blanks(&c);
		if (at_eol(&c)) {
			next_line(&c);
			continue;
		}
		if (stored == h->nentries)
			return bench_fail(err, "line %u: more entries than the %lu declared",
					  c.line, h->nentries);
		if (parse_u64(&c, &i) || parse_u64(&c, &j))
			return bench_fail(err, "line %u: expected '%s'", c.line,
					  h->field == MTX_PATTERN ? "ROW COL" : "ROW COL VALUE");
		if (i < 1 || i > h->nrows)
			return bench_fail(err, "line %u: row %lu out of range [1, %u]", c.line, i,
					  h->nrows);
		if (j < 1 || j > h->ncols)
			return bench_fail(err, "line %u: column %lu out of range [1, %u]", c.line, j,
					  h->ncols);
		if (h->field != MTX_PATTERN) {
			size_t used;

			skip_blanks(&c);
			used = mtx_parse_double(buf + c.pos, len - c.pos, &v);
			if (!used)
				return bench_fail(err, "line %u: expected a value after the indices",
						  c.line);
			if (h->field == MTX_INTEGER)
				for (size_t k = 0; k < used; k++)
					if (buf[c.pos + k] == '.' || buf[c.pos + k] == 'e' ||
					    buf[c.pos + k] == 'E')
						return bench_fail(err, "line %u: an integer matrix "
								  "holds a non-integer value", c.line);
			c.pos += used;
		}
		skip_blanks(&c);
		if (!at_eol(&c))
			return bench_fail(err, "line %u: junk after the entry", c.line);
		if (h->symmetry == MTX_SYMMETRIC && i < j)
			return bench_fail(err, "line %u: entry (%lu, %lu) above the diagonal: a "
					  "symmetric file stores the lower triangle", c.line, i, j);
		if (h->symmetry == MTX_SKEW && i <= j)
			return bench_fail(err, "line %u: entry (%lu, %lu) on or above the diagonal: a "
					  "skew-symmetric file stores the strict lower triangle",
					  c.line, i, j);
		in.row[n] = (uint32_t)(i - 1);
		in.col[n] = (uint32_t)(j - 1);
		in.val[n++] = v;
		if (h->symmetry != MTX_GENERAL && i != j) {
			in.row[n] = (uint32_t)(j - 1);
			in.col[n] = (uint32_t)(i - 1);
			in.val[n++] = h->symmetry == MTX_SKEW ? -v : v;
		}
		stored++;
		next_line(&c);
	}
	if (stored != h->nentries)
		return bench_fail(err, "the file ends after %lu of the %lu entries declared",
				  stored, h->nentries);

	/* Stable counting sorts, by column then by row: CSR, columns ascending. */
	for (uint64_t k = 0; k <= h->ncols; k++)
		count[k] = 0;
	for (uint64_t k = 0; k < n; k++)
		count[in.col[k] + 1]++;
	for (uint64_t k = 0; k < h->ncols; k++)
		count[k + 1] += count[k];
	for (uint64_t k = 0; k < n; k++) {
		uint64_t d = count[in.col[k]]++;

		by_col.row[d] = in.row[k];
		by_col.col[d] = in.col[k];
		by_col.val[d] = in.val[k];
	}
	for (uint64_t k = 0; k <= h->nrows; k++)
		a->row_ptr[k] = 0;
	for (uint64_t k = 0; k < n; k++)
		a->row_ptr[by_col.row[k] + 1]++;
	for (uint64_t k = 0; k < h->nrows; k++)
		a->row_ptr[k + 1] += a->row_ptr[k];
	for (uint64_t k = 0; k <= h->nrows; k++)
		count[k] = a->row_ptr[k];
	for (uint64_t k = 0; k < n; k++) {
		uint64_t d = count[by_col.row[k]]++;

		a->col[d] = by_col.col[k];
		a->val[d] = by_col.val[k];
	}
	a->nrows = h->nrows;
	a->ncols = h->ncols;
	a->nnz = n;
	return 0;
}
