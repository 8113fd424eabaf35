#include "spank/runtime.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "spank/util.h"

/* open_dir's answer for a directory that is not there (and was not to be made) */
#define ABSENT (-2)

/*
 * A directory root writes into: root's, and nobody else may write to it, or
 * a user could plant a link there and have root write or remove through it.
 * Opened relative to at, created first if create.  The fd, ABSENT, or -1
 * with err.
 */
static int open_dir(int at, const char *path, const char *name, bool create, char *err)
{
	struct stat st;
	int fd;

	if (create && mkdirat(at, path, 0755) && errno != EEXIST)
		return errf(err, "cannot create %s: %s", name, strerror(errno));
	fd = openat(at, path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && !create)
		return ABSENT;
	if (fd < 0)
		return errf(err, "cannot open %s: %s", name, strerror(errno));
	if (fstat(fd, &st) || st.st_uid != 0 || (st.st_mode & 022)) {
		close(fd);
		return errf(err, "%s must be a directory of root's that only root may write to",
			    name);
	}
	return fd;
}

/* Node names come from slurm.conf, but become a path: keep them one plain component. */
static int check_node(const char *node, char *err)
{
	if (!node || !*node || strchr(node, '/') || node[0] == '.' || strlen(node) > 255)
		return errf(err, "unusable node name '%s'", node ? node : "");
	return 0;
}

static int open_node_dir(const char *dir, const char *node, bool create, char *err)
{
	char name[GVM_PATH_MAX + 300];
	int top, fd;

	if (check_node(node, err))
		return -1;
	top = open_dir(AT_FDCWD, dir, dir, create, err);
	if (top < 0)
		return top;
	snprintf(name, sizeof(name), "%s/%s", dir, node);
	fd = open_dir(top, node, name, create, err);
	close(top);
	return fd;
}

/* Field 22 of /proc/PID/stat: when the process started, in clock ticks since boot. */
static int start_time(pid_t pid, unsigned long long *t)
{
	char path[64], buf[1024], *p;
	ssize_t n;
	int fd, field;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* the command name may hold spaces and parentheses: count from the last ')' */
	p = strrchr(buf, ')');
	if (!p)
		return -1;
	for (field = 2; field < 22 && p; field++)
		p = strchr(p + 1, ' ');
	if (!p || sscanf(p + 1, "%llu", t) != 1)
		return -1;
	return 0;
}

int runtime_record(const char *dir, const char *node, uint32_t job, uint32_t step, pid_t pid,
		   char *err)
{
	unsigned long long t;
	char name[64], line[64];
	int dfd, fd, n, rc = 0;

	if (start_time(pid, &t))
		return errf(err, "process %d is gone", (int)pid);
	dfd = open_node_dir(dir, node, true, err);
	if (dfd < 0)
		return -1;
	snprintf(name, sizeof(name), "%" PRIu32 ".%" PRIu32, job, step);
	fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0) {
		rc = errf(err, "cannot write %s/%s/%s: %s", dir, node, name, strerror(errno));
	} else {
		n = snprintf(line, sizeof(line), "%d %llu\n", (int)pid, t);
		if (write(fd, line, n) != n)
			rc = errf(err, "cannot write %s/%s/%s: %s", dir, node, name, strerror(errno));
		close(fd);
	}
	close(dfd);
	return rc;
}

/* The instance a record names, if it still runs: its PID, else 0 (-1: no such record). */
static int record_running(int dfd, const char *name)
{
	unsigned long long t, now;
	char line[64];
	int fd, pid;
	ssize_t n;

	fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? -1 : 0;
	n = read(fd, line, sizeof(line) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	line[n] = '\0';
	if (sscanf(line, "%d %llu", &pid, &t) == 2 && pid > 1 && !start_time(pid, &now) && now == t)
		return pid;
	return 0;
}

/* One record: end its instance if it still runs, remove it.  1 if it ran, 0, -1. */
static int end_one(int dfd, const char *name)
{
	int pid = record_running(dfd, name);

	if (pid < 0)
		return 0;
	if (pid)
		kill(pid, SIGKILL);
	if (unlinkat(dfd, name, 0) && errno != ENOENT)
		return -1;
	return pid > 0;
}

/*
 * The records on node whose name starts with prefix: each ended (gone_only:
 * only those whose instance no longer runs, removed).  How many instances
 * ran (gone_only: how many records went), or -1 with err.
 */
static int end_all(const char *dir, const char *node, const char *prefix, bool gone_only,
		   char *err)
{
	size_t plen = strlen(prefix);
	int dfd, n = 0, r;
	DIR *d;
	struct dirent *e;

	/* nothing recorded on this node, ever: nothing to end */
	dfd = open_node_dir(dir, node, false, err);
	if (dfd == ABSENT)
		return 0;
	if (dfd < 0)
		return -1;
	d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return errf(err, "cannot read %s/%s: %s", dir, node, strerror(errno));
	}
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.' || strncmp(e->d_name, prefix, plen) ||
		    (gone_only && record_running(dirfd(d), e->d_name)))
			continue;
		r = end_one(dirfd(d), e->d_name);
		if (r < 0) {
			errf(err, "cannot remove %s/%s/%s: %s", dir, node, e->d_name,
			     strerror(errno));
			n = -1;
			break;
		}
		n += gone_only ? 1 : r;
	}
	closedir(d);
	return n;
}

int runtime_sweep(const char *dir, const char *node, char *err)
{
	return end_all(dir, node, "", true, err);
}

int runtime_end(const char *dir, const char *node, uint32_t job, uint64_t step, char *err)
{
	char name[64];
	int dfd, r;

	if (step == RUNTIME_ALL_STEPS) {
		snprintf(name, sizeof(name), "%" PRIu32 ".", job);
		return end_all(dir, node, name, false, err);
	}
	dfd = open_node_dir(dir, node, false, err);
	if (dfd == ABSENT)
		return 0;
	if (dfd < 0)
		return -1;
	snprintf(name, sizeof(name), "%" PRIu32 ".%" PRIu64, job, step);
	r = end_one(dfd, name);
	close(dfd);
	if (r < 0)
		return errf(err, "cannot remove %s/%s/%s: %s", dir, node, name, strerror(errno));
	return r;
}
