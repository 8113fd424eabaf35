/*
 * newc ("070701") cpio archives, the format Linux unpacks as an initramfs:
 * gvm writes a job's payload with it, and the guest hands the job's output
 * files back in it.  Only libc: the guest's job agent (images/linux) builds
 * this file too.
 *
 * The reader is for archives from an untrusted guest: every field is
 * checked (magic, hex digits, sizes against what remains, name length and
 * termination) before anything is used.  cpio_header_fields, freestanding,
 * is also the probe guest's (bench/cpio.c).
 */
#ifndef GVM_COMMON_CPIO_H
#define GVM_COMMON_CPIO_H

#include <stddef.h>
#include <stdint.h>

#define CPIO_HEADER_SIZE 110
#define CPIO_NAME_MAX 4096          /* with its NUL */
#define CPIO_FILE_MAX 0xffffffffull /* newc sizes are 32 bits */
#define CPIO_ERR_MAX 256

/* The fields of a header, in order: ino, mode, uid, gid, nlink, mtime, filesize... */
enum { CPIO_F_MODE = 1, CPIO_F_FILESIZE = 6, CPIO_F_NAMESIZE = 11, CPIO_NR_FIELDS = 13 };

/*
 * The 13 fields of the header at h (CPIO_HEADER_SIZE bytes): 0, or -1 if
 * the magic is not newc's (070701, or 070702 with checksums) or a field is
 * not 8 hex digits.
 */
static inline int cpio_header_fields(const char *h, uint32_t f[CPIO_NR_FIELDS])
{
	if (h[0] != '0' || h[1] != '7' || h[2] != '0' || h[3] != '7' || h[4] != '0' ||
	    (h[5] != '1' && h[5] != '2'))
		return -1;
	for (unsigned k = 0; k < CPIO_NR_FIELDS; k++) {
		uint32_t v = 0;

		for (unsigned i = 0; i < 8; i++) {
			char c = h[6 + 8 * k + i];

			if (c >= '0' && c <= '9')
				v = v << 4 | (uint32_t)(c - '0');
			else if (c >= 'a' && c <= 'f')
				v = v << 4 | (uint32_t)(c - 'a' + 10);
			else if (c >= 'A' && c <= 'F')
				v = v << 4 | (uint32_t)(c - 'A' + 10);
			else
				return -1;
		}
		f[k] = v;
	}
	return 0;
}

/* Where a writer's bytes go: returns 0, or -1 (errno set). */
typedef int (*cpio_sink_fn)(void *arg, const void *buf, size_t len);

struct cpio_writer {
	cpio_sink_fn sink;
	void *arg;
	uint64_t offset; /* bytes written so far */
	uint32_t ino;
};

void cpio_writer_init(struct cpio_writer *w, cpio_sink_fn sink, void *arg);

/*
 * An entry's header and name; for a regular file or a symlink the caller
 * then writes exactly size bytes with cpio_write_data and ends the entry
 * with cpio_write_end.  mode carries the type bits (S_IFREG, S_IFDIR...).
 */
int cpio_write_header(struct cpio_writer *w, const char *name, uint32_t mode, uint64_t size);
int cpio_write_data(struct cpio_writer *w, const void *buf, size_t len);
int cpio_write_end(struct cpio_writer *w);
/* A whole entry whose data is in memory (a directory: NULL, 0). */
int cpio_write_entry(struct cpio_writer *w, const char *name, uint32_t mode, const void *data,
		     uint64_t size);
int cpio_write_trailer(struct cpio_writer *w);

/* The bytes an entry takes in an archive: header, name, data, padding. */
uint64_t cpio_entry_size(const char *name, uint64_t size);
/* ... and the trailer. */
uint64_t cpio_trailer_size(void);

/* Where a reader's bytes come from: returns the bytes read (0 at the end), or -1. */
typedef long (*cpio_source_fn)(void *arg, void *buf, size_t len);

struct cpio_reader {
	cpio_source_fn source;
	void *arg;
	uint64_t offset;   /* bytes consumed so far */
	uint64_t left;     /* data bytes of the current entry not yet read */
	uint64_t pad;      /* padding after them */
};

struct cpio_entry {
	char name[CPIO_NAME_MAX];
	uint32_t mode;
	uint64_t size;
};

void cpio_reader_init(struct cpio_reader *r, cpio_source_fn source, void *arg);

/*
 * The next entry's header: 1 and *e, 0 at the trailer, -1 with the reason in
 * err (a malformed or truncated archive).  Unread data of the previous entry
 * is skipped.
 */
int cpio_read_header(struct cpio_reader *r, struct cpio_entry *e, char *err);

/*
 * Up to len bytes of the current entry's data: the count (0 once all read),
 * or -1 with the reason in err.
 */
long cpio_read_data(struct cpio_reader *r, void *buf, size_t len, char *err);

#endif
