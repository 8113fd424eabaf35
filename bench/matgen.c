#include "bench/matgen.h"

#define MATGEN_BAND 64

static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static int parse_u64_field(const char **s, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;
	const char *p = *s;

	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (max - (uint64_t)(*p - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	*s = p;
	*out = v;
	return 0;
}

int matgen_parse(const char *name, struct matgen *g, struct bench_err *err)
{
	const char *p = name;
	uint64_t v[3] = { 200000, 16, 1 };
	static const uint64_t max[3] = { MATGEN_MAX_ROWS, MATGEN_MAX_PER_ROW, UINT64_MAX };

	if (p[0] != 'g' || p[1] != 'e' || p[2] != 'n')
		return bench_fail(err, "'%s' is not a generated matrix (gen:ROWS:PER_ROW:SEED)", name);
	p += 3;
	for (int i = 0; i < 3 && *p == ':'; i++) {
		p++;
		if (parse_u64_field(&p, max[i], &v[i]) || (v[i] == 0 && i < 2))
			return bench_fail(err, "'%s': field %d must be a number in [1, %lu] "
					  "(gen:ROWS:PER_ROW:SEED)", name, i + 1, max[i]);
	}
	if (*p)
		return bench_fail(err, "'%s': junk after the fields (gen:ROWS:PER_ROW:SEED)", name);
	g->rows = (uint32_t)v[0];
	g->per_row = (uint32_t)v[1];
	g->seed = v[2];
	return 0;
}

void matgen_name(const struct matgen *g, char *buf, unsigned size)
{
	bfmt_snprintf(buf, size, "gen:%u:%u:%lu", g->rows, g->per_row, g->seed);
}

static void sort_cols(uint32_t *c, unsigned n)
{
	for (unsigned i = 1; i < n; i++) {
		uint32_t v = c[i];
		unsigned j = i;

		for (; j > 0 && c[j - 1] > v; j--)
			c[j] = c[j - 1];
		c[j] = v;
	}
}

void matgen_rows(const struct matgen *g, uint32_t r0, uint32_t r1, struct csr *a)
{
	uint32_t n = g->rows;
	uint64_t k = 0;

	a->nrows = r1 - r0;
	a->ncols = n;
	a->row_ptr[0] = 0;
	for (uint32_t i = r0; i < r1; i++) {
		uint64_t state = g->seed * 0xd1342543de82ef95ull + i;
		uint32_t *c = &a->col[k];
		unsigned m = 0;

		c[m++] = i;
		for (unsigned e = 1; e < g->per_row; e++) {
			uint64_t r = splitmix64(&state);
			uint32_t j;

			if (e & 1) {
				int64_t d = (int64_t)(r % (2 * MATGEN_BAND + 1)) - MATGEN_BAND;
				int64_t jj = ((int64_t)i + d) % (int64_t)n;

				j = (uint32_t)(jj < 0 ? jj + n : jj);
			} else {
				j = (uint32_t)(r % n);
			}
			c[m++] = j;
		}
		sort_cols(c, m);
		unsigned u = 0;

		for (unsigned e = 0; e < m; e++)
			if (u == 0 || c[e] != c[u - 1])
				c[u++] = c[e];
		for (unsigned e = 0; e < u; e++) {
			uint64_t r = splitmix64(&state);

			a->val[k + e] = c[e] == i ? (double)g->per_row + 1.0 :
				(double)((int64_t)(r % 2001) - 1000) / 1024.0;
		}
		k += u;
		a->row_ptr[i - r0 + 1] = k;
	}
	a->nnz = k;
}
