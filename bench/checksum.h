/*
 * A 64-bit checksum of results, computed the same way on the host and in the
 * guest: FNV-1a over 64-bit words.  A double contributes its exact bit
 * pattern, so equal checksums mean bit-identical vectors.
 */
#ifndef GVM_BENCH_CHECKSUM_H
#define GVM_BENCH_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

#define CHECKSUM_INIT 0xcbf29ce484222325ull

static inline uint64_t checksum_u64(uint64_t h, uint64_t w)
{
	return (h ^ w) * 0x100000001b3ull;
}

uint64_t checksum_f64(uint64_t h, const double *v, size_t n);

/* Over n bytes, n a multiple of 8 and p 8-byte aligned. */
uint64_t checksum_words(uint64_t h, const void *p, size_t n);

#endif
