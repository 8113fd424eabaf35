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

/*
 * Decimal to double, correctly rounded (to nearest, ties to even) for any
 * number of digits and any exponent, without libc: the probe guest runs
 * this too, and host and guest must agree with each other and with strtod.
 *
 * Short values take Clinger's fast path: at most 2^53 with a power of ten
 * at most 10^22, both exact in a double, so the one multiplication or
 * division rounds once, correctly.  Every other value is done exactly in
 * integers: value = D * 10^e = (N / M) * 2^e with N = D * 5^e, M = 1 for
 * e >= 0 and N = D, M = 5^-e otherwise; a division then gives the quotient
 * to 55 bits or more and the remainder tells whether anything is left
 * below, which is all rounding needs.  With at most 19 digits and |e| <= 27
 * that fits in 64-bit words (small_to_double), beyond it takes big numbers.
 *
 * Digits past the first DEC_MAX_DIGITS only count as "something non-zero
 * below": a point halfway between two doubles has at most 768 significant
 * digits (the longest are (2m + 1) * 2^-1075, m < 2^53), so no such point
 * lies strictly between the truncated value and the truncated value plus
 * one unit in its last digit, and rounding the truncated value with one
 * more non-zero digit appended gives the same double.
 */
#define DEC_MAX_DIGITS 800

/*
 * Either operand, shifted, has at most 2,668 bits: D below 10^801 has 2,661,
 * and 5^-e has 2,613 (e >= -325 - 800 once values that round to 0 are set
 * aside) before the 55 of the quotient.  big_shl writes one limb past its
 * result: 85 limbs, and a few to spare.
 */
#define BIG_LIMBS 88

struct big {
	unsigned n;		/* limbs in use, the top one non-zero */
	uint32_t w[BIG_LIMBS];	/* least significant first */
};

static void big_trim(struct big *b)
{
	while (b->n && !b->w[b->n - 1])
		b->n--;
}

/* b = b * mul + add */
static void big_mul_add(struct big *b, uint32_t mul, uint32_t add)
{
	uint64_t carry = add;

	for (unsigned i = 0; i < b->n; i++) {
		carry += (uint64_t)b->w[i] * mul;
		b->w[i] = (uint32_t)carry;
		carry >>= 32;
	}
	if (carry)
		b->w[b->n++] = (uint32_t)carry;
}

static void big_mul_pow5(struct big *b, uint64_t k)
{
	static const uint32_t pow5[] = {
		1, 5, 25, 125, 625, 3125, 15625, 78125, 390625, 1953125, 9765625,
		48828125, 244140625, 1220703125,
	};

	for (; k >= 13; k -= 13)
		big_mul_add(b, pow5[13], 0);
	big_mul_add(b, pow5[k], 0);
}

static unsigned big_bits(const struct big *b)
{
	return b->n ? 32 * b->n - (unsigned)__builtin_clz(b->w[b->n - 1]) : 0;
}

static void big_shl(struct big *b, unsigned s)
{
	unsigned q = s / 32, r = s % 32, n = b->n;

	if (!n)
		return;
	b->w[n + q] = r ? b->w[n - 1] >> (32 - r) : 0;
	for (unsigned i = n - 1; i > 0; i--)
		b->w[i + q] = r ? b->w[i] << r | b->w[i - 1] >> (32 - r) : b->w[i];
	b->w[q] = b->w[0] << r;
	for (unsigned i = 0; i < q; i++)
		b->w[i] = 0;
	b->n = n + q + 1;
	big_trim(b);
}

static void big_shr1(struct big *b)
{
	for (unsigned i = 0; i < b->n; i++)
		b->w[i] = b->w[i] >> 1 | (i + 1 < b->n ? b->w[i + 1] << 31 : 0);
	big_trim(b);
}

static int big_cmp(const struct big *a, const struct big *b)
{
	if (a->n != b->n)
		return a->n < b->n ? -1 : 1;
	for (unsigned i = a->n; i-- > 0;)
		if (a->w[i] != b->w[i])
			return a->w[i] < b->w[i] ? -1 : 1;
	return 0;
}

/* a -= b, a >= b */
static void big_sub(struct big *a, const struct big *b)
{
	uint64_t borrow = 0;

	for (unsigned i = 0; i < a->n; i++) {
		uint64_t d = (uint64_t)a->w[i] - (i < b->n ? b->w[i] : 0) - borrow;

		a->w[i] = (uint32_t)d;
		borrow = d >> 63;
	}
	big_trim(a);
}

static double from_bits(uint64_t bits)
{
	union {
		uint64_t u;
		double d;
	} x = { bits };

	return x.d;
}

/*
 * n * 2^e2 rounded to a double, n having more than 53 bits: its top 53 (or
 * fewer where the result is subnormal) are kept and the rest decides, with
 * sticky standing for more non-zero bits below n.
 */
static double round_to_double(uint64_t n, int64_t e2, int sticky)
{
	int len = 64 - __builtin_clzll(n);
	int64_t drop = len - 53;
	uint64_t rest, half;

	if (e2 + drop < -1074)
		drop = -1074 - e2; /* subnormal: the last bit is worth 2^-1074 */
	if (drop > len)
		return 0; /* below half the smallest subnormal */
	rest = n & ((1ull << drop) - 1);
	half = 1ull << (drop - 1);
	n >>= drop;
	e2 += drop;
	if (rest > half || (rest == half && (sticky || (n & 1))))
		n++;
	if (n == 1ull << 53)
		n >>= 1, e2++;
	if (n < 1ull << 52)
		return from_bits(n); /* subnormal (e2 is -1074), or 0 */
	if (e2 + 52 > 1023)
		return from_bits(0x7ffull << 52);
	return from_bits((uint64_t)(e2 + 52 + 1023) << 52 | (n & ((1ull << 52) - 1)));
}

/*
 * m * 10^e for m below 10^19 and |e| <= 27, where 5^|e| fits in 63 bits:
 * m * 5^e in 128 bits, or m / 5^-e to 63 bits and a remainder, then the
 * same rounding.  Most values in matrix files land here, so it is worth
 * being fast: the big-number division takes ten times longer.
 */
static double small_to_double(uint64_t m, int e)
{
	uint64_t p = 1, hi, lo, q, r;
	int z;

	for (int k = e < 0 ? -e : e; k; k--)
		p *= 5;
	if (e >= 0) {
		unsigned __int128 n = (unsigned __int128)m * p;

		hi = (uint64_t)(n >> 64);
		lo = (uint64_t)n;
		if (!hi) {
			z = __builtin_clzll(lo);
			return round_to_double(lo << z, e - z, 0);
		}
		z = __builtin_clzll(hi);
		return round_to_double(z ? hi << z | lo >> (64 - z) : hi, e + 64 - z, lo << z != 0);
	}
	/*
	 * Both normalised to 64 bits: m * 2^63 / p then has 63 or 64 bits, and
	 * one divq computes it (a C division of 128 bits would call libgcc,
	 * which the probe guest does not link).
	 */
	z = __builtin_clzll(m) - __builtin_clzll(p);
	m <<= __builtin_clzll(m);
	p <<= __builtin_clzll(p);
	__asm__("divq %4" : "=a"(q), "=d"(r) : "a"(m << 63), "d"(m >> 1), "rm"(p) : "cc");
	return round_to_double(q, e - 63 - z, r != 0);
}

/* D * 10^e, D > 0, its decimal exponent (e + digits - 1) in [-325, 308]. */
static double big_to_double(struct big *num, int64_t e)
{
	struct big den = { 1, { 1 } };
	int64_t s;
	uint64_t q = 0;

	if (e >= 0)
		big_mul_pow5(num, (uint64_t)e);
	else
		big_mul_pow5(&den, (uint64_t)-e);
	/* Scaled so that the quotient lies in [2^54, 2^56). */
	s = 55 - ((int64_t)big_bits(num) - (int64_t)big_bits(&den));
	if (s > 0)
		big_shl(num, (unsigned)s);
	else
		big_shl(&den, (unsigned)-s);
	big_shl(&den, 55);
	for (int i = 55; i >= 0; i--) {
		if (big_cmp(num, &den) >= 0) {
			big_sub(num, &den);
			q |= 1ull << i;
		}
		if (i)
			big_shr1(&den);
	}
	return round_to_double(q, e - s, num->n != 0);
}

size_t mtx_parse_double(const char *s, size_t len, double *out)
{
	static const double pow10[] = {
		1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
		1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
	};
	size_t i = 0, first = 0;
	int neg = 0, any = 0, frac = 0, sticky = 0;
	/*
	 * The significant digits, from the first non-zero one to the last,
	 * number sig; value = (those digits as an integer) * 10^exp10.  m holds
	 * them while there are at most 19.
	 */
	uint64_t sig = 0, zeros = 0, m = 0;
	int64_t exp10 = 0;
	double v;

	if (i < len && (s[i] == '+' || s[i] == '-'))
		neg = s[i++] == '-';
	for (; i < len; i++) {
		if (s[i] == '.' && !frac) {
			frac = 1;
			continue;
		}
		if (!is_digit(s[i]))
			break;
		any = 1;
		exp10 -= frac;
		if (s[i] == '0') {
			zeros += sig > 0; /* significant only if a non-zero digit follows */
			continue;
		}
		if (!sig)
			first = i;
		sig += zeros + 1;
		if (sig <= 19) {
			for (; zeros; zeros--)
				m *= 10;
			m = m * 10 + (uint64_t)(s[i] - '0');
		}
		zeros = 0;
	}
	if (!any)
		return 0;
	exp10 += (int64_t)zeros;
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		int eneg = 0;
		int64_t e = 0;
		size_t start;

		i++;
		if (i < len && (s[i] == '+' || s[i] == '-'))
			eneg = s[i++] == '-';
		start = i;
		/* Saturated far beyond what any count of digits in memory can offset. */
		for (; i < len && is_digit(s[i]); i++)
			if (e < 100000000000000000ll)
				e = e * 10 + (s[i] - '0');
		if (i == start)
			return 0;
		exp10 += eneg ? -e : e;
	}
	if (sig > DEC_MAX_DIGITS) {
		/* The last significant digit is non-zero, and it is among those dropped. */
		exp10 += (int64_t)(sig - DEC_MAX_DIGITS);
		sig = DEC_MAX_DIGITS;
		sticky = 1;
	}

	if (!sig) {
		v = 0.0;
	} else if (sig <= 19 && m <= 1ull << 53 && exp10 >= -22 && exp10 <= 22) {
		v = exp10 < 0 ? (double)m / pow10[-exp10] : (double)m * pow10[exp10];
	} else if (sig <= 19 && exp10 >= -27 && exp10 <= 27) {
		v = small_to_double(m, (int)exp10);
	} else if (exp10 + (int64_t)sig - 1 > 308) {
		v = from_bits(0x7ffull << 52); /* at least 10^309: infinity */
	} else if (exp10 + (int64_t)sig - 1 < -325) {
		v = 0.0; /* below 10^-324, less than half the smallest subnormal */
	} else {
		struct big num = { 0, { 0 } };
		uint32_t chunk = 0, scale = 1;

		/* The significant digits, nine at a time. */
		for (size_t k = first, left = sig; left; k++) {
			if (s[k] == '.')
				continue;
			chunk = chunk * 10 + (uint32_t)(s[k] - '0');
			scale *= 10;
			if (--left == 0 || scale == 1000000000) {
				big_mul_add(&num, scale, chunk);
				chunk = 0;
				scale = 1;
			}
		}
		if (sticky) {
			big_mul_add(&num, 10, 1);
			exp10--;
		}
		v = big_to_double(&num, exp10);
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

/*
 * After a malformed entry: if its line is the last and has no newline, the
 * likeliest cause is a file cut short (a download that stopped), so say so.
 */
static int cut_short(const struct cursor *c, struct bench_err *err)
{
	size_t p = c->pos, n = 0;

	while (p < c->len && c->buf[p] != '\n')
		p++;
	if (p == c->len && err) {
		while (err->msg[n])
			n++;
		bfmt_snprintf(err->msg + n, sizeof(err->msg) - n,
			      " (the file ends within this line: is it cut short?)");
	}
	return -1;
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
		if (parse_u64(&c, &i) || parse_u64(&c, &j)) {
			bench_fail(err, "line %u: expected '%s'", c.line,
				   h->field == MTX_PATTERN ? "ROW COL" : "ROW COL VALUE");
			return cut_short(&c, err);
		}
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
			if (!used) {
				bench_fail(err, "line %u: expected a value after the indices",
					   c.line);
				return cut_short(&c, err);
			}
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
	/* Named: the file's last line (c.line has gone one past it). */
	if (stored != h->nentries)
		return bench_fail(err, "line %u: the file ends after %lu of the %lu entries "
				  "declared (is it cut short?)", c.line - 1, stored, h->nentries);

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
