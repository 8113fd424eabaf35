#include "bench/copy.h"

typedef long long v2di __attribute__((vector_size(16)));

static int streq(const char *a, const char *b)
{
	while (*a && *a == *b)
		a++, b++;
	return *a == *b;
}

int copy_method_parse(const char *name, enum copy_method *m)
{
	if (streq(name, "rep"))
		*m = COPY_REP;
	else if (streq(name, "sse2"))
		*m = COPY_SSE2;
	else
		return -1;
	return 0;
}

const char *copy_method_name(enum copy_method m)
{
	return m == COPY_REP ? "rep" : "sse2";
}

static void copy_rep(void *dst, const void *src, size_t n)
{
	__asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
}

static void copy_sse2(void *dst, const void *src, size_t n)
{
	v2di *d = dst;
	const v2di *s = src;

	for (size_t i = 0; i < n / 16; i += 4) {
		v2di a = s[i], b = s[i + 1], c = s[i + 2], e = s[i + 3];

		d[i] = a;
		d[i + 1] = b;
		d[i + 2] = c;
		d[i + 3] = e;
	}
}

void copy_run(enum copy_method m, void *dst, const void *src, size_t n)
{
	if (m == COPY_REP)
		copy_rep(dst, src, n);
	else
		copy_sse2(dst, src, n);
}

void copy_fill(void *buf, size_t n, uint64_t seed)
{
	uint64_t *w = buf;

	for (size_t i = 0; i < n / 8; i++) {
		uint64_t z = seed + i * 0x9e3779b97f4a7c15ull;

		z = (z ^ (z >> 31)) * 0xbf58476d1ce4e5b9ull;
		w[i] = z ^ (z >> 29);
	}
}
