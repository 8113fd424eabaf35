/*
 * gvm-job: run a user's job in the giantvm Linux guest and hand back what it
 * produces (common/guest_abi.h, "The job channel" and "A job's payload").
 *
 *     gvm-job      (run by /init when the payload holds /gvm/argv)
 *
 * Runs the payload's command with its arguments in /job, with standard input
 * from /dev/null and the payload's environment; relays its standard output
 * and error to gvm as they come; once it has ended, sends the archive of
 * /job/out and ends the VM with the job's status (128+N when a signal N
 * killed it, as a shell reports it).  Built static: only the kernel and this
 * file are needed to run a job.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdnoreturn.h>
#include <string.h>
#include <sys/io.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cpio.h"
#include "common/guest_abi.h"

#define LIST_MAX (GVM_JOB_LIST_MAX + 1) /* one more: a longer file is seen */
#define RELAY_CHUNK 65536
#define DEPTH_MAX 64

static int under_gvm;

/* REP OUTSB: up to a page per VM exit. */
static void port_write(unsigned port, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		size_t n = len < 4096 ? len : 4096;

		len -= n;
		__asm__ volatile("rep outsb" : "+S"(p), "+c"(n) : "d"((uint16_t)port) : "memory");
	}
}

static void event(unsigned e)
{
	if (under_gvm)
		outl(e, GVM_JOB_EVENT_PORT);
}

/* Bytes for the job's standard error (under another VMM, the console). */
static void say(const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n = snprintf(buf, sizeof(buf), "gvm-job: ");

	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(buf) - 1)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	if (under_gvm)
		port_write(GVM_JOB_STDERR_PORT, buf, n);
	else if (write(STDERR_FILENO, buf, n) < 0)
		return;
}

static noreturn void finish(int status)
{
	sync();
	if (under_gvm)
		outl((unsigned)status, GVM_EXIT_PORT);
	/* no exit device answered: /init powers off */
	exit(status);
}

/* A file of NUL-terminated strings as a NULL-terminated vector. */
static char **read_list(const char *path, int required)
{
	static char buf[2][LIST_MAX];
	static int used;
	char *b = buf[used], **v;
	size_t len = 0, n = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		if (!required && errno == ENOENT) {
			v = calloc(1, sizeof(*v));
			return v;
		}
		say("cannot open %s: %s", path, strerror(errno));
		return NULL;
	}
	used++;
	for (;;) {
		ssize_t r = read(fd, b + len, LIST_MAX - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			say("cannot read %s: %s", path, strerror(errno));
			close(fd);
			return NULL;
		}
		if (r == 0)
			break;
		len += r;
		if (len == LIST_MAX) {
			say("%s is larger than %d bytes", path, LIST_MAX);
			close(fd);
			return NULL;
		}
	}
	close(fd);
	if (len && b[len - 1]) {
		say("%s does not end with a NUL", path);
		return NULL;
	}
	for (size_t i = 0; i < len; i++)
		n += !b[i];
	v = calloc(n + 1, sizeof(*v));
	if (!v)
		return NULL;
	for (size_t i = 0, k = 0; i < len; i += strlen(b + i) + 1)
		v[k++] = b + i;
	return v;
}

static noreturn void run_child(char **argv, char **env, int out, int err)
{
	int nul = open("/dev/null", O_RDONLY);

	if (nul < 0 || dup2(nul, STDIN_FILENO) < 0 || dup2(out, STDOUT_FILENO) < 0 ||
	    dup2(err, STDERR_FILENO) < 0)
		_exit(126);
	if (chdir(GVM_JOB_WORKDIR)) {
		dprintf(STDERR_FILENO, "gvm-job: cannot enter %s: %s\n", GVM_JOB_WORKDIR,
			strerror(errno));
		_exit(126);
	}
	clearenv();
	setenv("PATH", "/usr/local/bin:/bin:/sbin:/usr/bin:/usr/sbin", 1);
	setenv("HOME", "/root", 1);
	setenv("TMPDIR", "/tmp", 1);
	for (char **e = env; *e; e++)
		if (strchr(*e, '=') && **e != '=')
			putenv(*e);
	signal(SIGPIPE, SIG_DFL);
	execvp(argv[0], argv);
	dprintf(STDERR_FILENO, "gvm-job: cannot run '%s': %s\n", argv[0], strerror(errno));
	_exit(errno == ENOENT ? 127 : 126);
}

/* Relay both pipes until they close or the job has ended and they are drained. */
static void relay(int out, int err, pid_t pid, int *wstatus)
{
	static char buf[RELAY_CHUNK];
	struct pollfd p[2] = { { .fd = out, .events = POLLIN }, { .fd = err, .events = POLLIN } };
	const unsigned port[2] = { GVM_JOB_STDOUT_PORT, GVM_JOB_STDERR_PORT };
	int open_fds = 2, ended = 0;

	while (open_fds) {
		/* once the job has ended, take what is there and no more: a
		 * background process of its own may hold the pipes for ever */
		int n = poll(p, 2, ended ? 0 : 200);

		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; n > 0 && i < 2; i++) {
			ssize_t r;

			if (p[i].fd < 0 || !(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			r = read(p[i].fd, buf, sizeof(buf));
			if (r > 0) {
				if (under_gvm)
					port_write(port[i], buf, r);
				else if (write(i ? STDERR_FILENO : STDOUT_FILENO, buf, r) < 0)
					continue;
			} else if (r == 0 || errno != EINTR) {
				close(p[i].fd);
				p[i].fd = -1;
				open_fds--;
			}
		}
		if (!ended && waitpid(pid, wstatus, WNOHANG) == pid)
			ended = 1;
		else if (ended && n == 0)
			break;
	}
	for (int i = 0; i < 2; i++)
		if (p[i].fd >= 0)
			close(p[i].fd);
	if (!ended)
		waitpid(pid, wstatus, 0);
}

static int sink(void *arg, const void *buf, size_t len)
{
	(void)arg;
	port_write(GVM_JOB_OUTPUT_PORT, buf, len);
	return 0;
}

/* One file's bytes, exactly size of them whatever happens to the file meanwhile. */
static void pack_file(struct cpio_writer *w, int dirfd, const char *name, const char *rel,
		      uint64_t size)
{
	static char buf[RELAY_CHUNK];
	int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	uint64_t done = 0;

	while (done < size) {
		size_t want = size - done < sizeof(buf) ? size - done : sizeof(buf);
		ssize_t r = fd < 0 ? -1 : read(fd, buf, want);

		if (r <= 0) {
			say("out/%s: %s after %llu of %llu bytes; the rest is zeros", rel,
			    r < 0 ? strerror(errno) : "shorter", (unsigned long long)done,
			    (unsigned long long)size);
			memset(buf, 0, sizeof(buf));
			while (done < size) {
				want = size - done < sizeof(buf) ? size - done : sizeof(buf);
				cpio_write_data(w, buf, want);
				done += want;
			}
			break;
		}
		cpio_write_data(w, buf, r);
		done += r;
	}
	if (fd >= 0)
		close(fd);
	cpio_write_end(w);
}

/* Everything under dirfd, as rel/...; what the host refuses it names itself. */
static void pack_dir(struct cpio_writer *w, int dirfd, const char *rel, int depth)
{
	DIR *d = fdopendir(dirfd);
	struct dirent *de;

	if (!d) {
		close(dirfd);
		return;
	}
	while ((de = readdir(d))) {
		char path[CPIO_NAME_MAX];
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if ((size_t)snprintf(path, sizeof(path), "%s%s%s", rel, *rel ? "/" : "",
				     de->d_name) >= sizeof(path)) {
			say("out/%s/%s: the name is too long to send", rel, de->d_name);
			continue;
		}
		if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW))
			continue;
		if (S_ISREG(st.st_mode) && (uint64_t)st.st_size > CPIO_FILE_MAX) {
			say("out/%s: larger than 4 GiB, not sent", path);
		} else if (S_ISREG(st.st_mode)) {
			cpio_write_header(w, path, st.st_mode, st.st_size);
			pack_file(w, dirfd, de->d_name, path, st.st_size);
		} else if (S_ISDIR(st.st_mode)) {
			int sub = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
					 O_CLOEXEC);

			cpio_write_entry(w, path, st.st_mode, NULL, 0);
			if (sub >= 0 && depth < DEPTH_MAX)
				pack_dir(w, sub, path, depth + 1);
			else if (sub >= 0)
				close(sub);
		} else if (S_ISLNK(st.st_mode)) {
			char target[CPIO_NAME_MAX];
			ssize_t n = readlinkat(dirfd, de->d_name, target, sizeof(target));

			if (n >= 0)
				cpio_write_entry(w, path, st.st_mode, target, n);
		} else {
			cpio_write_entry(w, path, st.st_mode, NULL, 0);
		}
	}
	closedir(d);
}

static void send_output(void)
{
	struct cpio_writer w;
	int dir = open(GVM_JOB_OUTDIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (dir < 0) {
		say("%s is gone: no output files", GVM_JOB_OUTDIR);
		return;
	}
	cpio_writer_init(&w, sink, NULL);
	pack_dir(&w, dir, "", 0);
	cpio_write_trailer(&w);
	event(GVM_JOB_EVENT_OUTPUT_DONE);
}

int main(void)
{
	char **argv, **env;
	int out[2], err[2], wstatus = 0, status;
	pid_t pid;
	cpu_set_t cpu0;

	if (ioperm(GVM_EXIT_PORT, 4, 1) == 0 && ioperm(GVM_JOB_PORT_BASE, GVM_JOB_PORT_COUNT, 1) == 0)
		under_gvm = inl(GVM_JOB_EVENT_PORT) == GVM_JOB_MAGIC;
	argv = read_list(GVM_JOB_ARGV, 1);
	env = read_list(GVM_JOB_ENV, 0);
	if (!argv || !env)
		finish(126);
	if (!argv[0] || !argv[0][0]) {
		say("%s names no command", GVM_JOB_ARGV);
		finish(126);
	}
	if (mkdir(GVM_JOB_OUTDIR, 0755) && errno != EEXIST)
		say("cannot create %s: %s", GVM_JOB_OUTDIR, strerror(errno));
	if (pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC)) {
		say("pipe: %s", strerror(errno));
		finish(126);
	}
	event(GVM_JOB_EVENT_STARTED);
	pid = fork();
	if (pid < 0) {
		say("fork: %s", strerror(errno));
		finish(126);
	}
	if (pid == 0)
		run_child(argv, env, out[1], err[1]);
	close(out[1]);
	close(err[1]);
	/* the ports live where CPU 0 runs (rank 0): nothing to forward */
	CPU_ZERO(&cpu0);
	CPU_SET(0, &cpu0);
	sched_setaffinity(0, sizeof(cpu0), &cpu0);
	relay(out[0], err[0], pid, &wstatus);
	status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) :
		 WIFSIGNALED(wstatus) ? 128 + WTERMSIG(wstatus) : 126;
	event(GVM_JOB_EVENT_ENDED);
	if (under_gvm)
		send_output();
	finish(status);
}
