#include "common/cpio.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define CPIO_MAGIC "070701"
#define TRAILER "TRAILER!!!"

static uint64_t pad4(uint64_t n)
{
	return (4 - (n & 3)) & 3;
}

void cpio_writer_init(struct cpio_writer *w, cpio_sink_fn sink, void *arg)
{
	memset(w, 0, sizeof(*w));
	w->sink = sink;
	w->arg = arg;
}

static int put(struct cpio_writer *w, const void *buf, size_t len)
{
	if (len && w->sink(w->arg, buf, len))
		return -1;
	w->offset += len;
	return 0;
}

static int put_pad(struct cpio_writer *w)
{
	static const char zero[4];

	return put(w, zero, pad4(w->offset));
}

int cpio_write_header(struct cpio_writer *w, const char *name, uint32_t mode, uint64_t size)
{
	char h[CPIO_HEADER_SIZE + 1];
	size_t namesize = strlen(name) + 1;

	if (size > CPIO_FILE_MAX || namesize > CPIO_NAME_MAX) {
		errno = EFBIG;
		return -1;
	}
	/* magic ino mode uid gid nlink mtime filesize devmajor devminor rdevmajor rdevminor namesize check */
	snprintf(h, sizeof(h), "%s%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08zX%08X",
		 CPIO_MAGIC, ++w->ino, mode, 0, 0, 1, 0, (unsigned)size, 0, 0, 0, 0, namesize, 0);
	if (put(w, h, CPIO_HEADER_SIZE) || put(w, name, namesize) || put_pad(w))
		return -1;
	return 0;
}

int cpio_write_data(struct cpio_writer *w, const void *buf, size_t len)
{
	return put(w, buf, len);
}

int cpio_write_end(struct cpio_writer *w)
{
	return put_pad(w);
}

int cpio_write_entry(struct cpio_writer *w, const char *name, uint32_t mode, const void *data,
		     uint64_t size)
{
	if (cpio_write_header(w, name, mode, size) || put(w, data, size) || put_pad(w))
		return -1;
	return 0;
}

int cpio_write_trailer(struct cpio_writer *w)
{
	return cpio_write_entry(w, TRAILER, 0, NULL, 0);
}

uint64_t cpio_entry_size(const char *name, uint64_t size)
{
	uint64_t head = CPIO_HEADER_SIZE + strlen(name) + 1;

	return head + pad4(head) + size + pad4(size);
}

uint64_t cpio_trailer_size(void)
{
	return cpio_entry_size(TRAILER, 0);
}

void cpio_reader_init(struct cpio_reader *r, cpio_source_fn source, void *arg)
{
	memset(r, 0, sizeof(*r));
	r->source = source;
	r->arg = arg;
}

/* Exactly len bytes, or -1 (an error or the end of the archive) with err set. */
static int get(struct cpio_reader *r, void *buf, size_t len, char *err)
{
	size_t done = 0;

	while (done < len) {
		long n = r->source(r->arg, (char *)buf + done, len - done);

		if (n < 0) {
			snprintf(err, CPIO_ERR_MAX, "read error at byte %llu: %s",
				 (unsigned long long)(r->offset + done), strerror(errno));
			return -1;
		}
		if (n == 0) {
			snprintf(err, CPIO_ERR_MAX, "the archive ends at byte %llu, in the "
				 "middle of an entry", (unsigned long long)(r->offset + done));
			return -1;
		}
		done += n;
	}
	r->offset += len;
	return 0;
}

static int skip(struct cpio_reader *r, uint64_t len, char *err)
{
	char buf[4096];

	while (len) {
		size_t n = len < sizeof(buf) ? len : sizeof(buf);

		if (get(r, buf, n, err))
			return -1;
		len -= n;
	}
	return 0;
}

int cpio_read_header(struct cpio_reader *r, struct cpio_entry *e, char *err)
{
	char h[CPIO_HEADER_SIZE];
	uint32_t f[CPIO_NR_FIELDS], namesize;
	uint64_t at;

	if (skip(r, r->left + r->pad, err))
		return -1;
	r->left = r->pad = 0;
	at = r->offset;
	if (get(r, h, sizeof(h), err))
		return -1;
	if (cpio_header_fields(h, f)) {
		snprintf(err, CPIO_ERR_MAX, "no valid newc cpio header at byte %llu",
			 (unsigned long long)at);
		return -1;
	}
	namesize = f[CPIO_F_NAMESIZE];
	if (namesize < 2 || namesize > CPIO_NAME_MAX) {
		snprintf(err, CPIO_ERR_MAX, "a name of %u bytes at byte %llu (1 to %u allowed)",
			 namesize ? namesize - 1 : 0, (unsigned long long)at, CPIO_NAME_MAX - 1);
		return -1;
	}
	if (get(r, e->name, namesize, err))
		return -1;
	if (e->name[namesize - 1] || strlen(e->name) != namesize - 1) {
		snprintf(err, CPIO_ERR_MAX, "a name with a NUL inside, or none at its end, at "
			 "byte %llu", (unsigned long long)at);
		return -1;
	}
	if (skip(r, pad4(CPIO_HEADER_SIZE + namesize), err))
		return -1;
	e->mode = f[CPIO_F_MODE];
	e->size = f[CPIO_F_FILESIZE];
	if (!strcmp(e->name, TRAILER))
		return 0;
	r->left = e->size;
	r->pad = pad4(e->size);
	return 1;
}

long cpio_read_data(struct cpio_reader *r, void *buf, size_t len, char *err)
{
	if (len > r->left)
		len = r->left;
	if (!len)
		return 0;
	if (get(r, buf, len, err))
		return -1;
	r->left -= len;
	return (long)len;
}
