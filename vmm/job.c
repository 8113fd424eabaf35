#include "vmm/job.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/cpio.h"
#include "common/fdio.h"
#include "common/guest_abi.h"
#include "common/log.h"
#include "common/parse.h"
#include "vmm/hw/jobio.h"
#include "vmm/job-output.h"
#include "vmm/vm.h"

#define ERR(...) (snprintf(err, JOB_ERR_MAX, __VA_ARGS__), -1)
#define SETERR(...) ((void)snprintf(err, JOB_ERR_MAX, __VA_ARGS__))
#define COPY_DEPTH_MAX 64
/* What Linux needs besides the initramfs images, and their unpacked copy. */
#define JOB_RAM_OVERHEAD (96ull << 20)
/* Room for the archive's headers beyond --output-max of file data. */
#define ARCHIVE_SLACK (1ull << 20)
#define CONSOLE_TAIL 8192

struct job {
	const struct vm_options *o;
	struct job_env env;
	int payload_fd, archive_fd, console_fd;
	char payload_path[32];
	struct jobio *io;
	struct timespec t0;
	/* events from the guest, written by vCPU threads, read after the VM ended */
	_Atomic bool started, ended, output_done;
	_Atomic double started_s;
};

/* --- what the user named ---------------------------------------------------- */

/* Is COMMAND a file of this host (else a command of the guest's)? */
static bool command_is_host_file(const char *cmd)
{
	struct stat st;

	return strchr(cmd, '/') || (!lstat(cmd, &st) && !S_ISDIR(st.st_mode));
}

static int check_command(const char *cmd, uint64_t *size, char *err)
{
	unsigned char magic[4] = { 0 };
	struct stat st;
	int fd;

	fd = open(cmd, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return ERR("job: the command '%s': %s", cmd, strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return ERR("job: the command '%s' is not a regular file", cmd);
	}
	if (read(fd, magic, sizeof(magic)) < 2 ||
	    (memcmp(magic, "#!", 2) && memcmp(magic, "\177ELF", 4))) {
		close(fd);
		return ERR("job: the command '%s' starts with neither '#!' nor an ELF header: "
			   "the guest cannot run it", cmd);
	}
	close(fd);
	if ((uint64_t)st.st_size > CPIO_FILE_MAX)
		return ERR("job: the command '%s' is larger than 4 GiB", cmd);
	*size = st.st_size;
	return 0;
}

/* The name a --copy path has in the job's directory: its last component. */
static int copy_name(const char *path, char *name, size_t size, char *err)
{
	size_t len = strlen(path), start;

	while (len > 1 && path[len - 1] == '/')
		len--;
	start = len;
	while (start && path[start - 1] != '/')
		start--;
	if (len - start >= size)
		return ERR("--copy '%s': the name is too long", path);
	memcpy(name, path + start, len - start);
	name[len - start] = '\0';
	if (!*name || !strcmp(name, "/") || !strcmp(name, ".") || !strcmp(name, ".."))
		return ERR("--copy '%s' has no name of its own to give it in the guest: name "
			   "the file or directory itself", path);
	if (!strcmp(name, "out"))
		return ERR("--copy '%s': 'out' is the job's output directory (%s): rename it",
			   path, GVM_JOB_OUTDIR);
	return 0;
}

/*
 * The payload: written to w, or only measured when w is NULL.  One walk for
 * both, so that the size checked is the size written.
 */
struct payload {
	struct cpio_writer *w;
	uint64_t size;
	const char *topo_xml; /* the machine's description, a file; NULL: none yet */
	char *err;
};

static int payload_entry(struct payload *p, const char *name, uint32_t mode, const void *data,
			 uint64_t size)
{
	char *err = p->err;

	p->size += cpio_entry_size(name, size);
	if (p->w && cpio_write_entry(p->w, name, mode, data, size))
		return ERR("job: cannot write the payload: %s", strerror(errno));
	return 0;
}

/* A host file's bytes as the entry name (what the user named is in src). */
static int payload_file(struct payload *p, const char *name, const char *src, uint32_t mode)
{
	char buf[65536];
	struct stat st;
	uint64_t done = 0;
	int fd = open(src, O_RDONLY | O_CLOEXEC);
	char *err = p->err;

	if (fd < 0)
		return ERR("job: '%s': %s", src, strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		close(fd);
		return ERR("job: '%s' is not a regular file", src);
	}
	if ((uint64_t)st.st_size > CPIO_FILE_MAX) {
		close(fd);
		return ERR("job: '%s' is larger than 4 GiB, the most a file in the payload may be",
			   src);
	}
	p->size += cpio_entry_size(name, st.st_size);
	if (!p->w) {
		close(fd);
		return 0;
	}
	if (cpio_write_header(p->w, name, S_IFREG | (mode & 0777), st.st_size))
		goto write_error;
	while (done < (uint64_t)st.st_size) {
		ssize_t n = read(fd, buf, sizeof(buf) < st.st_size - done ? sizeof(buf) :
				 st.st_size - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			close(fd);
			return ERR("job: '%s' changed while it was packed for the guest (%s)", src,
				   n ? strerror(errno) : "it became shorter");
		}
		if (cpio_write_data(p->w, buf, n))
			goto write_error;
		done += n;
	}
	close(fd);
	if (cpio_write_end(p->w))
		goto write_error;
	return 0;
write_error:
	close(fd);
	return ERR("job: cannot write the payload: %s", strerror(errno));
}

/* A --copy path (file or directory, followed through symbolic links) as name. */
static int payload_copy(struct payload *p, const char *src, const char *name, int depth)
{
	char *err = p->err;
	struct stat st;
	DIR *d;
	struct dirent *de;
	int r = 0;

	if (stat(src, &st))
		return ERR("--copy '%s': %s", src, strerror(errno));
	if (S_ISREG(st.st_mode))
		return payload_file(p, name, src, st.st_mode);
	if (!S_ISDIR(st.st_mode))
		return ERR("--copy '%s' is neither a regular file nor a directory", src);
	if (depth > COPY_DEPTH_MAX)
		return ERR("--copy '%s': directories nested more than %d deep (a link loop?)", src,
			   COPY_DEPTH_MAX);
	if (payload_entry(p, name, S_IFDIR | (st.st_mode & 0777) | 0700, NULL, 0))
		return -1;
	d = opendir(src);
	if (!d)
		return ERR("--copy '%s': %s", src, strerror(errno));
	while (!r && (de = readdir(d))) {
		char s2[PATH_MAX], n2[CPIO_NAME_MAX];

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if ((size_t)snprintf(s2, sizeof(s2), "%s/%s", src, de->d_name) >= sizeof(s2) ||
		    (size_t)snprintf(n2, sizeof(n2), "%s/%s", name, de->d_name) >= sizeof(n2)) {
			r = ERR("--copy '%s/%s': the path is too long", src, de->d_name);
			break;
		}
		r = payload_copy(p, s2, n2, depth + 1);
	}
	closedir(d);
	return r;
}

/* A list of NUL-terminated strings, as the agent reads it. */
struct strlist {
	char *buf;
	size_t len, cap;
};

static int strlist_add(struct strlist *l, const char *s)
{
	size_t n = strlen(s) + 1;

	if (l->len + n > l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 1024;
		char *b;

		while (cap < l->len + n)
			cap *= 2;
		b = realloc(l->buf, cap);
		if (!b)
			return -1;
		l->buf = b;
		l->cap = cap;
	}
	memcpy(l->buf + l->len, s, n);
	l->len += n;
	return 0;
}

static int strlist_addf(struct strlist *l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int strlist_addf(struct strlist *l, const char *fmt, ...)
{
	char *s;
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r < 0)
		return -1;
	r = strlist_add(l, s);
	free(s);
	return r;
}

/* The whole payload: /gvm (argv, env, the command), /job (the copies). */
static int payload_walk(struct payload *p, const struct vm_options *o, const struct job_env *e)
{
	struct strlist argv = { 0 }, env = { 0 };
	const char *cmd = o->job_argv[0];
	bool host_file = command_is_host_file(cmd);
	char *err = p->err;
	int r = -1;

	if (strlist_add(&argv, host_file ? GVM_JOB_COMMAND : cmd))
		goto oom;
	for (unsigned i = 1; i < o->job_argc; i++)
		if (strlist_add(&argv, o->job_argv[i]))
			goto oom;
	if (strlist_addf(&env, "GVM_NODES=%u", e->nodes) ||
	    strlist_addf(&env, "GVM_VCPUS=%u", e->topo ? e->topo->nr_cpus : 0) ||
	    strlist_addf(&env, "GVM_NUMA_NODES=%u", e->topo ? e->topo->nr_nodes : 0) ||
	    strlist_addf(&env, "GVM_TOPOLOGY_XML=%s", GVM_JOB_TOPOLOGY) ||
	    strlist_addf(&env, "GVM_VM_ID=%016" PRIx64, e->vm_id) ||
	    strlist_addf(&env, "GVM_WORKDIR=%s", GVM_JOB_WORKDIR) ||
	    strlist_addf(&env, "GVM_OUTPUT_DIR=%s", GVM_JOB_OUTDIR) ||
	    (o->job_id && strlist_addf(&env, "GVM_JOB_ID=%s", o->job_id)))
		goto oom;
	/* after gvm's own, which --env may not name (vmm/options.c) */
	for (unsigned i = 0; i < o->nr_envs; i++) {
		const char *v = o->envs[i], *here = strchr(v, '=') ? NULL : getenv(v);

		if (strchr(v, '=') ? strlist_add(&env, v) : strlist_addf(&env, "%s=%s", v, here ? here : ""))
			goto oom;
	}
	if (env.len > GVM_JOB_LIST_MAX || argv.len > GVM_JOB_LIST_MAX) {
		SETERR("job: the %s take %zu bytes; the guest takes at most %d (copy a file "
		       "instead)", env.len > GVM_JOB_LIST_MAX ? "--env variables" : "arguments",
		       env.len > GVM_JOB_LIST_MAX ? env.len : argv.len, GVM_JOB_LIST_MAX);
		goto out;
	}
	if (payload_entry(p, GVM_JOB_DIR + 1, S_IFDIR | 0755, NULL, 0) ||
	    payload_entry(p, GVM_JOB_ARGV + 1, S_IFREG | 0644, argv.buf, argv.len) ||
	    payload_entry(p, GVM_JOB_ENV + 1, S_IFREG | 0644, env.buf, env.len) ||
	    (host_file && payload_file(p, GVM_JOB_COMMAND + 1, cmd, 0755)) ||
	    (p->topo_xml && payload_file(p, GVM_JOB_TOPOLOGY + 1, p->topo_xml, 0644)) ||
	    payload_entry(p, GVM_JOB_WORKDIR + 1, S_IFDIR | 0755, NULL, 0))
		goto out;
	for (unsigned i = 0; i < o->nr_copies; i++) {
		char name[CPIO_NAME_MAX], where[CPIO_NAME_MAX + 8];

		if (copy_name(o->copies[i], name, sizeof(name), err))
			goto out;
		snprintf(where, sizeof(where), "%s/%s", GVM_JOB_WORKDIR + 1, name);
		if (payload_copy(p, o->copies[i], where, 0))
			goto out;
	}
	if (p->w && cpio_write_trailer(p->w)) {
		SETERR("job: cannot write the payload: %s", strerror(errno));
		goto out;
	}
	p->size += cpio_trailer_size();
	r = 0;
	goto out;
oom:
	SETERR("job: out of memory");
out:
	free(argv.buf);
	free(env.buf);
	return r;
}

/* An existing directory this user may write, or one that can be created. */
static int check_output_dir(const char *dir, char *err)
{
	struct stat st;
	char parent[PATH_MAX], *slash;

	if (!stat(dir, &st)) {
		if (!S_ISDIR(st.st_mode))
			return ERR("--output '%s' is not a directory", dir);
		if (access(dir, W_OK | X_OK))
			return ERR("--output '%s': %s", dir, strerror(errno));
		return 0;
	}
	if (errno != ENOENT)
		return ERR("--output '%s': %s", dir, strerror(errno));
	snprintf(parent, sizeof(parent), "%s", dir);
	while ((slash = strrchr(parent, '/')) && !slash[1] && slash > parent)
		*slash = '\0';
	slash = strrchr(parent, '/');
	if (!slash)
		strcpy(parent, ".");
	else if (slash == parent)
		parent[1] = '\0';
	else
		*slash = '\0';
	if (stat(parent, &st) || !S_ISDIR(st.st_mode) || access(parent, W_OK | X_OK))
		return ERR("--output '%s' does not exist and cannot be created in '%s'", dir,
			   parent);
	return 0;
}

int job_check(const struct vm_options *o, uint64_t *payload_size, char *err)
{
	const char *cmd = o->job_argv[0];
	struct job_env e = { 0 };
	struct payload p = { .err = err };
	uint64_t size;

	if (command_is_host_file(cmd)) {
		if (check_command(cmd, &size, err))
			return -1;
	} else {
		pr_debug("job: '%s' is no file here: the guest's own command runs", cmd);
	}
	for (unsigned i = 0; i < o->nr_copies; i++) {
		char a[CPIO_NAME_MAX], b[CPIO_NAME_MAX];

		if (copy_name(o->copies[i], a, sizeof(a), err))
			return -1;
		for (unsigned k = 0; k < i; k++)
			if (!strcmp(o->copies[k], o->copies[i]))
				return ERR("--copy '%s' is given twice", o->copies[i]);
			else if (!copy_name(o->copies[k], b, sizeof(b), err) && !strcmp(a, b))
				return ERR("--copy '%s' and --copy '%s' would both be '%s' in the "
					   "guest: copy a directory holding them instead",
					   o->copies[k], o->copies[i], a);
	}
	if (payload_walk(&p, o, &e))
		return -1;
	if (check_output_dir(o->output_dir ? o->output_dir : ".", err))
		return -1;
	*payload_size = p.size;
	return 0;
}

int job_check_fit(const struct vm_options *o, uint64_t payload_size, uint64_t ram_size,
		  char *err)
{
	uint64_t initrds = payload_size, need;
	struct stat st;
	char s1[32];

	for (unsigned i = 0; i < o->nr_initrds; i++)
		if (!stat(o->initrds[i], &st))
			initrds += st.st_size;
	if (o->kernel && !stat(o->kernel, &st))
		need = st.st_size;
	else
		need = 0;
	/* the archives stay in RAM while the kernel unpacks them into files */
	need += 2 * initrds + JOB_RAM_OVERHEAD;
	if (need > ram_size)
		return ERR("job: the kernel, the image and the job's payload (%.1f MiB, the files "
			   "given with --copy included) need about %.0f MiB of guest RAM, and --mem "
			   "gives %s: give more (--mem), or copy less", payload_size / 1048576.0,
			   (need + 1048575) / 1048576.0, format_size(ram_size, s1, sizeof(s1)));
	return 0;
}

/* --- the run ---------------------------------------------------------------- */

static double job_elapsed(const struct job *j)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - j->t0.tv_sec) + (now.tv_nsec - j->t0.tv_nsec) / 1e9;
}

static int sink_fd(void *arg, const void *buf, size_t len)
{
	return fd_write_all(*(int *)arg, buf, len);
}

/* An unlinked file in TMPDIR: gone with the process, whatever ends it. */
static int temp_fd(char *err, const char *what)
{
	const char *dir = getenv("TMPDIR");
	int fd = open(dir && *dir ? dir : "/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (fd < 0)
		SETERR("job: cannot create a temporary file for %s in %s: %s", what,
		    dir && *dir ? dir : "/tmp", strerror(errno));
	return fd;
}

struct job *job_create(const struct vm_options *o, const struct job_env *env, char *err)
{
	struct job *j = calloc(1, sizeof(*j));
	struct cpio_writer w;
	struct payload p = { .w = &w, .err = err };
	char xml[32];
	int xml_fd = -1;

	if (!j) {
		SETERR("job: out of memory");
		return NULL;
	}
	clock_gettime(CLOCK_MONOTONIC, &j->t0);
	j->o = o;
	j->env = *env;
	j->archive_fd = j->console_fd = -1;
	j->payload_fd = temp_fd(err, "the payload");
	if (j->payload_fd < 0)
		goto fail;
	cpio_writer_init(&w, sink_fd, &j->payload_fd);
	if (env->topo) {
		xml_fd = temp_fd(err, "the topology");
		snprintf(xml, sizeof(xml), "/proc/self/fd/%d", xml_fd);
		if (xml_fd < 0 || topo_write_xml(env->topo, xml, err))
			goto fail;
		p.topo_xml = xml;
	}
	if (payload_walk(&p, o, env))
		goto fail;
	close(xml_fd);
	xml_fd = -1;
	snprintf(j->payload_path, sizeof(j->payload_path), "/proc/self/fd/%d", j->payload_fd);
	if ((j->archive_fd = temp_fd(err, "the output files")) < 0)
		goto fail;
	if (o->verbose) {
		j->console_fd = dup(STDERR_FILENO);
		if (j->console_fd < 0) {
			SETERR("job: dup: %s", strerror(errno));
			goto fail;
		}
	} else if ((j->console_fd = temp_fd(err, "the guest's console")) < 0) {
		goto fail;
	}
	if (o->verbose) {
		char sz[32];

		pr_info("job: payload of %s written (%.1f s)", format_size(p.size, sz, sizeof(sz)),
			job_elapsed(j));
	}
	return j;
fail:
	if (xml_fd >= 0)
		close(xml_fd);
	job_destroy(j);
	return NULL;
}

int job_console_fd(const struct job *j)
{
	return j->console_fd;
}

int job_add_payload(struct job *j, struct vm_options *o, char *err)
{
	if (o->nr_initrds == OPT_MAX_INITRDS)
		return ERR("job: at most %d initrds besides the job's payload",
			   OPT_MAX_INITRDS - 1);
	o->initrds[o->nr_initrds++] = j->payload_path;
	return 0;
}

static void job_event(void *arg, uint32_t event)
{
	struct job *j = arg;

	switch (event) {
	case GVM_JOB_EVENT_STARTED:
		if (!j->started) {
			j->started_s = job_elapsed(j);
			j->started = true;
			if (j->o->verbose)
				pr_info("job: started (%.1f s)", j->started_s);
		}
		break;
	case GVM_JOB_EVENT_ENDED:
		j->ended = true;
		if (j->o->verbose)
			pr_info("job: ended (%.1f s)", job_elapsed(j));
		break;
	case GVM_JOB_EVENT_OUTPUT_DONE:
		j->output_done = true;
		break;
	default:
		break; /* an event of a newer agent, or noise: nothing to do */
	}
}

int job_attach(struct job *j, struct vm *vm)
{
	struct jobio_config c = {
		.out_fd = STDOUT_FILENO,
		.err_fd = STDERR_FILENO,
		.archive_fd = j->archive_fd,
		.archive_max = j->o->output_max + ARCHIVE_SLACK,
		.event = job_event,
		.arg = j,
	};

	j->io = jobio_create(vm, &c);
	return j->io ? 0 : -1;
}

/* The end of the guest's console, for a run that went wrong. */
static void job_console_tail(struct job *j)
{
	char buf[CONSOLE_TAIL + 1], *p;
	off_t end = lseek(j->console_fd, 0, SEEK_END), from;
	ssize_t n;

	if (j->o->verbose || end <= 0)
		return;
	from = end > CONSOLE_TAIL ? end - CONSOLE_TAIL : 0;
	n = pread(j->console_fd, buf, CONSOLE_TAIL, from);
	if (n <= 0)
		return;
	buf[n] = '\0';
	p = buf;
	if (from) /* start at a whole line */
		p = strchr(buf, '\n') ? strchr(buf, '\n') + 1 : buf;
	fprintf(stderr, "gvm: the guest's console, %s:\n", from ? "its last lines" : "all of it");
	while (*p) {
		size_t len = strcspn(p, "\n");

		fprintf(stderr, "  | %.*s\n", (int)len, p);
		p += len + (p[len] == '\n');
	}
}

int job_finish(struct job *j, int status, bool failed)
{
	off_t stored = lseek(j->archive_fd, 0, SEEK_END);

	if (!j->started) {
		pr_err("job: the guest ended (status %d) before the job started", status);
		job_console_tail(j);
		return status ? status : 1;
	}
	if (failed)
		job_console_tail(j);
	if (!j->ended) {
		pr_err("job: the VM stopped before the job ended: no output files");
		return status ? status : 1;
	}
	if (!j->output_done) {
		pr_err("job: the VM stopped while the job's output files were being sent: none "
		       "written");
		return status ? status : 1;
	}
	if (j->o->verbose)
		pr_info("job: exited with status %d (%.1f s)", status, job_elapsed(j));
	if (stored > 0) {
		struct job_output_opts oo = { .dir = j->o->output_dir ? j->o->output_dir : ".",
					      .overwrite = j->o->overwrite,
					      .max = j->o->output_max };
		struct job_output_result res;
		char sz[32];

		if (lseek(j->archive_fd, 0, SEEK_SET) < 0 ||
		    job_output_extract(j->archive_fd, stored, jobio_archive_sent(j->io), &oo, &res)) {
			if (!status)
				status = 1;
		}
		if (res.files)
			pr_info("job: %" PRIu64 " output file%s (%s) written to %s", res.files,
				res.files == 1 ? "" : "s", format_size(res.bytes, sz, sizeof(sz)),
				oo.dir);
	}
	return status;
}

void job_destroy(struct job *j)
{
	if (!j)
		return;
	jobio_destroy(j->io);
	if (j->payload_fd >= 0)
		close(j->payload_fd);
	if (j->archive_fd >= 0)
		close(j->archive_fd);
	if (j->console_fd >= 0)
		close(j->console_fd);
	free(j);
}
