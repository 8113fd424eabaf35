#include "bench/checksum.h"

uint64_t checksum_f64(uint64_t h, const double *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t w;

		__builtin_memcpy(&w, &v[i], sizeof(w));
		h = checksum_u64(h, w);
	}
	return h;
}

uint64_t checksum_words(uint64_t h, const void *p, size_t n)
{
	const uint64_t *w = p;

	for (size_t i = 0; i < n / 8; i++)
		h = checksum_u64(h, w[i]);
	return h;
}
