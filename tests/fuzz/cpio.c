/*
 * common/cpio.c's reader on an archive in memory: the decoder gvm runs on
 * the output archive a guest sends back.  Beyond the sanitizers, it checks
 * what the reader promises its callers: names are terminated and of the
 * declared length, an entry yields exactly its size in bytes and they are
 * the archive's own, and the reader never claims to have consumed more
 * than there was.
 */
#include <string.h>

#include "common/cpio.h"
#include "tests/fuzz/lib/fuzz.h"

struct mem {
	const uint8_t *data;
	size_t size, at;
	unsigned calls;
};

/* Short reads of varying length, as a pipe gives them. */
static long source_mem(void *arg, void *buf, size_t len)
{
	struct mem *m = arg;
	size_t n = m->size - m->at, most = 1 + (m->calls++ * 7919u) % 5000;

	if (n > len)
		n = len;
	if (n > most)
		n = most;
	memcpy(buf, m->data + m->at, n);
	m->at += n;
	return (long)n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mem m = { .data = data, .size = size };
	static char buf[8192];
	struct cpio_reader r;
	struct cpio_entry e;
	char err[CPIO_ERR_MAX];
	unsigned k = 0;
	int rc;

	cpio_reader_init(&r, source_mem, &m);
	while ((rc = cpio_read_header(&r, &e, err)) > 0) {
		size_t nlen = strnlen(e.name, sizeof(e.name));
		uint64_t got = 0, start = r.offset;
		long n;

		FUZZ_CHECK(nlen > 0 && nlen < sizeof(e.name));
		FUZZ_CHECK(r.offset <= size && r.offset == m.at);
		/* Read every other entry, so that skipping unread data is tried too. */
		if (k++ % 2)
			continue;
		while ((n = cpio_read_data(&r, buf, 1 + (got * 31 + k) % sizeof(buf), err)) > 0) {
			FUZZ_CHECK(start + got + n <= size);
			FUZZ_CHECK(!memcmp(buf, data + start + got, n));
			got += n;
		}
		if (n < 0)
			break;
		FUZZ_CHECK(got == e.size);
	}
	if (rc < 0)
		FUZZ_CHECK(memchr(err, '\0', CPIO_ERR_MAX) && err[0]);
	FUZZ_CHECK(r.offset <= size);
	return 0;
}
