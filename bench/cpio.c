#include "bench/cpio.h"

#include "common/cpio.h"


static size_t align4(size_t x)
{
	return (x + 3) & ~(size_t)3;
}

int cpio_next(const void *buf, size_t len, size_t *pos, struct cpio_file *f,
	      struct bench_err *err)
{
	const char *b = buf;

	for (;;) {
		size_t p = *pos;
		uint32_t v[CPIO_NR_FIELDS];

		/* Zero padding between concatenated archives. */
		while (p < len && b[p] == 0)
			p++;
		if (p >= len) {
			*pos = len;
			return 0;
		}
		if (len - p >= 2 && (unsigned char)b[p] == 0x1f && (unsigned char)b[p + 1] == 0x8b)
			return bench_fail(err, "offset %lu: a gzip-compressed archive; the probe reads "
					  "only uncompressed newc cpio (cpio -H newc)", (uint64_t)p);
		if (len - p < CPIO_HEADER_SIZE)
			return bench_fail(err, "offset %lu: truncated cpio header", (uint64_t)p);
		if (cpio_header_fields(b + p, v))
			return bench_fail(err, "offset %lu: not a newc cpio header (magic 070701, "
					  "8 hex digits per field)", (uint64_t)p);

		uint32_t mode = v[CPIO_F_MODE], size = v[CPIO_F_FILESIZE];
		uint32_t namesize = v[CPIO_F_NAMESIZE];
		size_t name = p + CPIO_HEADER_SIZE, data;

		if (namesize < 1 || namesize > len - name || b[name + namesize - 1] != '\0')
			return bench_fail(err, "offset %lu: bad cpio name size %u", (uint64_t)p,
					  namesize);
		data = align4(name + namesize);
		if (data > len || size > len - data)
			return bench_fail(err, "offset %lu: cpio entry of %u bytes runs past the end "
					  "of the %lu-byte image", (uint64_t)p, size, (uint64_t)len);
		*pos = align4(data + size) < len ? align4(data + size) : len;
		if (namesize == 11 && !__builtin_memcmp(b + name, "TRAILER!!!", 10))
			continue;
		f->name = b + name;
		f->name_len = namesize - 1;
		f->data = b + data;
		f->size = size;
		f->mode = mode;
		return 1;
	}
}

static int name_matches(const struct cpio_file *f, const char *name)
{
	const char *n = f->name;
	size_t l = f->name_len, i = 0;

	if (l >= 2 && n[0] == '.' && n[1] == '/')
		n += 2, l -= 2;
	while (l && n[0] == '/')
		n++, l--;
	/* An archive's name may hold a NUL before its end: stop at name's. */
	for (; i < l; i++)
		if (name[i] != n[i] || !name[i])
			return 0;
	return name[i] == '\0';
}

int cpio_find(const void *buf, size_t len, const char *name, struct cpio_file *f,
	      struct bench_err *err)
{
	struct cpio_file e;
	size_t pos = 0;
	int found = 0, r;

	while ((r = cpio_next(buf, len, &pos, &e, err)) == 1) {
		if ((e.mode & CPIO_MODE_TYPE) == CPIO_MODE_REG && name_matches(&e, name)) {
			*f = e;
			found = 1;
		}
	}
	return r < 0 ? -1 : found;
}
