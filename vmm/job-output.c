#include "vmm/job-output.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cpio.h"
#include "common/fdio.h"
#include "common/log.h"
#include "common/parse.h"

/*
 * Files being written are named with this prefix until they are whole; a
 * guest's name may not use it, so that what is left with it after a crash is
 * known to be a partial file of gvm's.
 */
#define TMP_PREFIX ".gvm-output."

struct extract {
	const struct job_output_opts *o;
	int dirfd;
	uint64_t total, files, refused;
};

static long source_fd(void *arg, void *buf, size_t len)
{
	ssize_t n;

	do
		n = read(*(int *)arg, buf, len);
	while (n < 0 && errno == EINTR);
	return n;
}

/*
 * A name from the guest, made safe: relative, components neither empty nor
 * "." nor ".." nor beginning with TMP_PREFIX, printable.  Returns NULL and
 * why in *why, else the name without a leading "./".
 */
static const char *safe_name(const char *name, const char **why)
{
	const char *p;

	while (!strncmp(name, "./", 2))
		name += 2;
	if (!*name || !strcmp(name, ".")) {
		*why = "an empty name";
		return NULL;
	}
	if (name[0] == '/') {
		*why = "an absolute name";
		return NULL;
	}
	for (p = name; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f) {
			*why = "a control character in its name";
			return NULL;
		}
	for (p = name; *p;) {
		size_t len = strcspn(p, "/");

		if (!len || (len == 1 && p[0] == '.') || (len == 2 && !strncmp(p, "..", 2))) {
			*why = len ? "a '.' or '..' in its name" : "an empty component in its name";
			return NULL;
		}
		if (!strncmp(p, TMP_PREFIX, strlen(TMP_PREFIX))) {
			*why = "a name beginning with '" TMP_PREFIX "', which gvm keeps for files "
			       "it has not finished writing";
			return NULL;
		}
		p += len + (p[len] == '/');
	}
	return name;
}

/*
 * The directory that holds name's last component, opened component by
 * component under x->dirfd without following a symbolic link, created as
 * needed.  Returns a descriptor and the last component in *base, or -1.
 */
static int open_parent(struct extract *x, const char *name, const char **base, const char **why)
{
	char comp[CPIO_NAME_MAX];
	int fd = dup(x->dirfd);
	const char *p = name;

	while (fd >= 0) {
		size_t len = strcspn(p, "/");
		int sub;

		if (!p[len]) {
			*base = p;
			return fd;
		}
		memcpy(comp, p, len);
		comp[len] = '\0';
		if (mkdirat(fd, comp, 0755) && errno != EEXIST) {
			*why = strerror(errno);
			close(fd);
			return -1;
		}
		sub = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(fd);
		if (sub < 0) {
			*why = errno == ENOTDIR || errno == ELOOP ?
				"a part of its path is not a directory here" : strerror(errno);
			return -1;
		}
		fd = sub;
		p += len + 1;
	}
	*why = strerror(errno);
	return -1;
}

static void refuse(struct extract *x, const char *name, const char *why)
{
	pr_err("job: output file %s: %s: not written", name, why);
	x->refused++;
}

/* One regular file: into a temporary name, then renamed over (or beside) nothing. */
static void extract_file(struct extract *x, struct cpio_reader *r, const struct cpio_entry *e,
			 const char *name, const char *shown)
{
	char tmp[64], err[CPIO_ERR_MAX], buf[65536];
	const char *base, *why = NULL;
	int dfd = open_parent(x, name, &base, &why), fd;
	uint64_t done = 0;

	if (dfd < 0) {
		refuse(x, shown, why);
		return;
	}
	snprintf(tmp, sizeof(tmp), TMP_PREFIX "%d.%" PRIu64, (int)getpid(), x->files);
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		refuse(x, shown, strerror(errno));
		close(dfd);
		return;
	}
	while (done < e->size) {
		long n = cpio_read_data(r, buf, sizeof(buf), err);

		if (n <= 0 || fd_write_all(fd, buf, n)) {
			why = n < 0 ? err : n ? strerror(errno) : "the archive ends early";
			goto fail;
		}
		done += n;
	}
	if (fchmod(fd, (e->mode & 0755) | 0600) || fsync(fd)) {
		why = strerror(errno);
		goto fail;
	}
	close(fd);
	fd = -1;
	if (x->o->overwrite ? renameat(dfd, tmp, dfd, base) :
	    renameat2(dfd, tmp, dfd, base, RENAME_NOREPLACE)) {
		why = errno == EEXIST ? "a file of that name is there already (--overwrite "
					"replaces it)" : strerror(errno);
		goto fail;
	}
	x->files++;
	close(dfd);
	return;
fail:
	if (fd >= 0)
		close(fd);
	unlinkat(dfd, tmp, 0);
	close(dfd);
	refuse(x, shown, why);
}

static void extract_dir(struct extract *x, const char *name, const char *shown)
{
	const char *base, *why = NULL;
	int dfd = open_parent(x, name, &base, &why);
	struct stat st;

	if (dfd < 0) {
		refuse(x, shown, why);
		return;
	}
	if (mkdirat(dfd, base, 0755) && (errno != EEXIST ||
	    fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) || !S_ISDIR(st.st_mode)))
		refuse(x, shown, errno == EEXIST ? "something that is not a directory is there "
		       "already" : strerror(errno));
	close(dfd);
}

static const char *type_name(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFLNK: return "a symbolic link";
	case S_IFCHR: return "a character device";
	case S_IFBLK: return "a block device";
	case S_IFIFO: return "a FIFO";
	case S_IFSOCK: return "a socket";
	default: return "of an unknown type";
	}
}

int job_output_extract(int fd, uint64_t stored, uint64_t sent, const struct job_output_opts *o,
		       struct job_output_result *res)
{
	struct extract x = { .o = o };
	struct cpio_reader r;
	struct cpio_entry e;
	char err[CPIO_ERR_MAX], sz[32];
	int k;

	memset(res, 0, sizeof(*res));
	if (mkdir(o->dir, 0755) && errno != EEXIST) {
		pr_err("job: --output '%s': %s: no output file written", o->dir, strerror(errno));
		return -1;
	}
	x.dirfd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (x.dirfd < 0) {
		pr_err("job: --output '%s': %s: no output file written", o->dir, strerror(errno));
		return -1;
	}
	cpio_reader_init(&r, source_fd, &fd);
	while ((k = cpio_read_header(&r, &e, err)) > 0) {
		const char *why, *name = safe_name(e.name, &why);
		char shown[CPIO_NAME_MAX + 8];

		snprintf(shown, sizeof(shown), "out/%s", name ? name : e.name);
		if (!name) {
			refuse(&x, shown, why);
		} else if (S_ISDIR(e.mode)) {
			extract_dir(&x, name, shown);
		} else if (!S_ISREG(e.mode)) {
			refuse(&x, shown, type_name(e.mode));
		} else if (x.total + e.size > o->max) {
			refuse(&x, shown, "it goes beyond --output-max");
		} else {
			x.total += e.size;
			extract_file(&x, &r, &e, name, shown);
		}
	}
	if (k < 0) {
		if (r.offset >= stored && stored < sent)
			pr_err("job: the output files go beyond --output-max (%s): the rest is not "
			       "written", format_size(o->max, sz, sizeof(sz)));
		else
			pr_err("job: the archive of output files is malformed: %s; the rest is "
			       "not written", err);
		x.refused++;
	}
	close(x.dirfd);
	res->files = x.files;
	res->bytes = x.total;
	res->refused = x.refused;
	return x.refused ? -1 : 0;
}
