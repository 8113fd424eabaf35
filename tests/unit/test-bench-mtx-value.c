/*
 * The Matrix Market reader's numbers (mtx_parse_double) against glibc's
 * strtod, bit for bit: both claim correct rounding, and the reader's own
 * code is what the probe guest runs, so any difference is a wrong checksum.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/mtx.h"
#include "tests/lib/check.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

/* xorshift64*: the same cases every run, so a failure can be replayed. */
static uint64_t next(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 0x2545f4914f6cdd1dull;
}

static uint64_t bits_of(double d)
{
	uint64_t b;

	memcpy(&b, &d, sizeof(b));
	return b;
}

static double of_bits(uint64_t b)
{
	double d;

	memcpy(&d, &b, sizeof(d));
	return d;
}

static unsigned mismatches;

/* One string, whole: the reader must take all of it and agree with strtod. */
static void check_text(const char *text)
{
	size_t len = strlen(text);
	double v = 0, ref = strtod(text, NULL);
	size_t used = mtx_parse_double(text, len, &v);

	CHECK_EQ(used, len);
	if (used != len || bits_of(v) != bits_of(ref)) {
		/* A few lines are enough to replay it; thousands would bury the summary. */
		if (mismatches++ < 10)
			fprintf(stderr, "'%.80s%s' (%zu chars): reader %a, strtod %a\n", text,
				len > 80 ? "..." : "", len, v, ref);
	}
}

static double random_finite(void)
{
	double d;

	do
		d = of_bits(next());
	while (!isfinite(d));
	return d;
}

/* Random bit patterns as a matrix file would print them. */
static void test_printed_doubles(void)
{
	static const char *fmts[] = { "%.17g", "%.16g", "%.15g", "%.17e", "%.16e" };
	char text[64];

	mismatches = 0;
	for (int i = 0; i < 150000; i++) {
		double d = random_finite();

		for (size_t f = 0; f < sizeof(fmts) / sizeof(fmts[0]); f++) {
			snprintf(text, sizeof(text), fmts[f], d);
			check_text(text);
		}
		snprintf(text, sizeof(text), "%.*e", (int)(next() % 21), d);
		check_text(text);
	}
	/* Magnitudes a matrix holds: where the old reader took its long double path. */
	for (int i = 0; i < 150000; i++) {
		double d = ldexp((double)(next() >> 11), (int)(next() % 200) - 153);

		snprintf(text, sizeof(text), i % 2 ? "%.16g" : "%.7e", d);
		check_text(text);
	}
	CHECK_EQ(mismatches, 0);
}

/* Subnormals, the smallest normals and the largest finite values. */
static void test_extremes(void)
{
	char text[64];

	mismatches = 0;
	for (int i = 0; i < 50000; i++) {
		uint64_t r = next(), frac = r & ((1ull << 52) - 1);
		uint64_t sign = r & (1ull << 63);
		uint64_t bits[] = {
			sign | frac >> (r >> 52 & 63),		 /* subnormal, any size */
			sign | ((1ull << 52) + (frac >> 20)),	 /* near DBL_MIN */
			sign | ((0x7feull << 52) + frac),	 /* near DBL_MAX */
		};

		for (size_t b = 0; b < 3; b++) {
			snprintf(text, sizeof(text), "%.*e", (int)(next() % 18), of_bits(bits[b]));
			check_text(text);
			snprintf(text, sizeof(text), "%.17g", of_bits(bits[b]));
			check_text(text);
		}
	}
	static const char *cases[] = {
		"0", "-0", "+0", "0.0", "-0.0e0", "000", ".0", "0.", "0e999999999999999999999",
		"-0e-999999999999999999999", "1", "-1", "+2.5", ".5", "5.", "1E+10", "1e-5",
		"7.008967e-17", "3.14159265358979", "-564.2036607119013", "277281165.18",
		"9007199254740993", "9007199254740992.5", "9007199254740993.0000000000000000001",
		"123456789012345678901234", "0.000000000000000000000000000001234",
		"00000000000000000000000123.5", "1.7976931348623157e308", "1.7976931348623158e308",
		"1.797693134862315807e308", "1.7976931348623159e308", "1e308", "1e309", "1e400",
		"-1e400", "1e999999999999999999999999", "2.2250738585072014e-308",
		"2.2250738585072011e-308", "2.2250738585072012e-308", "4.9406564584124654e-324",
		"4.9e-324", "5e-324", "2.4703282292062327e-324", "2.4703282292062328e-324",
		"2.47032822920623272e-324", "1e-400", "1e-999999999999999999999999",
		"0.0000000000000000000000000000000000000000000000001e50", "1000000000000000000000e-21",
		"1e22", "1e23", "8.589973e9", "4503599627370496.5", "4503599627370497.5",
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_text(cases[i]);

	/* 1,000 digits: the most the reader keeps, at both ends of its range. */
	static const char *frames[][2] = {
		{ "0.", "e-324" }, { "2.", "e-324" }, { "4.", "e-324" }, { "", "e-1324" },
		{ "1.", "e308" }, { "17976931348623158", "e292" }, { "0.", "e309" },
		{ "", "e-1000" }, { "0.0000", "" },
	};
	static char big[1100];

	for (size_t f = 0; f < sizeof(frames) / sizeof(frames[0]); f++) {
		for (char d = '0'; d <= '9'; d += 9) {
			int n = snprintf(big, sizeof(big), "%s", frames[f][0]);

			memset(big + n, d, 1000);
			snprintf(big + n + 1000, sizeof(big) - (size_t)n - 1000, "%s", frames[f][1]);
			check_text(big);
			big[n + 999] = '1'; /* the very last digit decides */
			check_text(big);
		}
	}
	CHECK_EQ(mismatches, 0);
}

/*
 * Exactly halfway between two neighbouring doubles, and the long doubles
 * just above and below that: glibc prints each exactly (hundreds of digits
 * for small values), and the reader must round the tie to even and the
 * others away from it.
 */
static void test_halfway(void)
{
	static char text[1300];

	mismatches = 0;
	for (int i = 0; i < 6000; i++) {
		/* Any double, small ones, and ones whose ties have at most 20 digits. */
		double d = i % 3 == 0 ? random_finite() :
			   i % 3 == 1 ? of_bits(next() >> (12 + next() % 52)) :
			   ldexp((double)(next() >> 11), (int)(next() % 16) - 56);
		long double lo = fabs(d), hi = nextafter(fabs(d), INFINITY);
		long double mid = (lo + hi) / 2; /* exact: a long double has 11 more bits */

		if (isinf(hi))
			mid = (long double)DBL_MAX + ((long double)DBL_MAX - nextafter(DBL_MAX, 0)) / 2;
		snprintf(text, sizeof(text), "%.1100Lg", mid);
		check_text(text);
		snprintf(text, sizeof(text), "%.1100Lg", nextafterl(mid, 0));
		check_text(text);
		snprintf(text, sizeof(text), "%.1100Lg", nextafterl(mid, INFINITY));
		check_text(text);
	}
	CHECK_EQ(mismatches, 0);
}

/*
 * Up to 19 digits times 10^1 to 10^27 (the reader's 128-bit path) where the
 * top 64 bits of the product end in a tie and only the bits below break it.
 */
static void test_wide_integers(void)
{
	char text[64];
	unsigned found = 0;

	mismatches = 0;
	for (int tries = 0; found < 300 && tries < 20000000; tries++) {
		uint64_t d = next() % 10000000000000000000ull, p = 1;
		int e = 1 + (int)(next() % 27);

		for (int k = 0; k < e; k++)
			p *= 5;
		unsigned __int128 n = (unsigned __int128)d * p;

		if (!(n >> 64))
			continue;
		int z = __builtin_clzll((uint64_t)(n >> 64));

		/* 64 bits kept, 11 of them below a double's 53 */
		if (((uint64_t)(n >> (64 - z)) & 0x7ff) != 0x400 || !((uint64_t)n << z))
			continue;
		found++;
		snprintf(text, sizeof(text), "%lue%d", d, e);
		check_text(text);
	}
	CHECK_EQ(found, 300);
	CHECK_EQ(mismatches, 0);
}

/*
 * Decimal strings no printf makes: any number of digits (past the ~770 that
 * can decide a rounding), leading and trailing zeros, any exponent.
 */
static void test_random_decimals(void)
{
	static char text[2200];

	mismatches = 0;
	for (int i = 0; i < 40000; i++) {
		uint64_t r = next();
		size_t n = 0;
		unsigned ndig = r % 4 ? 1 + next() % 40 : 1 + next() % 1500;
		unsigned point = next() % (ndig + 1), zeros = r >> 8 & 1 ? next() % 30 : 0;

		if (r >> 4 & 1)
			text[n++] = r >> 5 & 1 ? '-' : '+';
		for (unsigned k = 0; k < zeros; k++)
			text[n++] = '0';
		for (unsigned k = 0; k < ndig; k++) {
			if (k == point)
				text[n++] = '.';
			/* Long runs of 0 or 9 put the value near a power of ten or a tie. */
			text[n++] = r >> 16 & 1 ? (char)('0' + next() % 10) :
				    (char)(k < 3 || next() % 50 ? (r >> 17 & 1 ? '0' : '9') :
						  '0' + next() % 10);
		}
		if (r >> 6 & 1)
			n += (size_t)snprintf(text + n, 32, "%c%d", r >> 7 & 1 ? 'e' : 'E',
					      (int)(next() % 1400) - 700);
		text[n] = '\0';
		check_text(text);
	}
	CHECK_EQ(mismatches, 0);
}

/* What the reader refuses, and that it stops at the given length. */
static void test_syntax(void)
{
	double v = -1;

	CHECK_EQ(mtx_parse_double("", 0, &v), 0);
	CHECK_EQ(mtx_parse_double("-", 1, &v), 0);
	CHECK_EQ(mtx_parse_double(".", 1, &v), 0);
	CHECK_EQ(mtx_parse_double("e5", 2, &v), 0);
	CHECK_EQ(mtx_parse_double("1e", 2, &v), 0);
	CHECK_EQ(mtx_parse_double("1e+", 3, &v), 0);
	CHECK_EQ(mtx_parse_double("1.5", 2, &v), 2);
	CHECK(v == 1.0);
	CHECK_EQ(mtx_parse_double("2.5e3x", 6, &v), 5);
	CHECK(v == 2500.0);
	/* An exponent cut off by the length is no exponent: the number is refused. */
	CHECK_EQ(mtx_parse_double("1.25e-2", 5, &v), 0);
}

int main(void)
{
	RUN(test_syntax);
	RUN(test_extremes);
	RUN(test_printed_doubles);
	RUN(test_halfway);
	RUN(test_wide_integers);
	RUN(test_random_decimals);
	return check_summary();
}
