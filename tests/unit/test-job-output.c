/*
 * vmm/job-output.c against hostile archives, as a guest could send them:
 * every entry that is not a plain file or directory under the output
 * directory is refused by name, nothing lands outside it (not even through
 * a symbolic link already there), existing files stay unless --overwrite,
 * the size limit holds, a truncated or malformed archive writes what came
 * before it and says so, and no temporary file is left behind.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cpio.h"
#include "tests/lib/check.h"
#include "vmm/job-output.h"

static char top[64];   /* a scratch directory for the whole test */
static unsigned seq;

static int sink(void *arg, const void *buf, size_t len)
{
	return write(*(int *)arg, buf, len) == (ssize_t)len ? 0 : -1;
}

/* A new archive being written to an unlinked file. */
struct arc {
	int fd;
	struct cpio_writer w;
};

static void arc_open(struct arc *a)
{
	a->fd = open(top, O_TMPFILE | O_RDWR, 0600);
	CHECK(a->fd >= 0);
	cpio_writer_init(&a->w, sink, &a->fd);
}

static void add(struct arc *a, const char *name, uint32_t mode, const char *data)
{
	CHECK(cpio_write_entry(&a->w, name, mode, data, data ? strlen(data) : 0) == 0);
}

/* Extract a's archive (trailer added unless raw) into a fresh directory. */
static int run(struct arc *a, bool trailer, bool overwrite, uint64_t max, char *dir,
	       struct job_output_result *r)
{
	struct job_output_opts o = { .dir = dir, .overwrite = overwrite, .max = max };
	off_t size;
	int rc;

	if (trailer)
		CHECK(cpio_write_trailer(&a->w) == 0);
	size = lseek(a->fd, 0, SEEK_END);
	lseek(a->fd, 0, SEEK_SET);
	rc = job_output_extract(a->fd, size, size, &o, r);
	close(a->fd);
	return rc;
}

static void fresh_dir(char *dir, size_t len)
{
	snprintf(dir, len, "%s/out%u", top, seq++);
	CHECK(mkdir(dir, 0755) == 0);
}

static char *slurp(const char *dir, const char *name)
{
	static char buf[4096];
	char path[512];
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_NOFOLLOW);
	if (fd < 0)
		return NULL;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n < 0 ? 0 : n] = '\0';
	return buf;
}

static bool exists(const char *dir, const char *name)
{
	char path[512];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return !lstat(path, &st);
}

/* No ".gvm-output.*" anywhere under dir. */
static bool no_temporaries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	bool clean = true;

	if (!d)
		return true;
	while ((de = readdir(d))) {
		char sub[512];

		if (!strncmp(de->d_name, ".gvm-output.", 12))
			clean = false;
		if (de->d_type == DT_DIR && strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
			clean &= no_temporaries(sub);
		}
	}
	closedir(d);
	return clean;
}

static void test_plain(void)
{
	struct arc a;
	struct job_output_result r;
	char dir[128];
	struct stat st;

	fresh_dir(dir, sizeof(dir));
	arc_open(&a);
	add(&a, "sub", S_IFDIR | 0755, NULL);
	add(&a, "a.txt", S_IFREG | 0644, "alpha\n");
	add(&a, "./sub/b", S_IFREG | 04755, "beta");
	add(&a, "deep/er/c", S_IFREG | 0600, "gamma"); /* parents not in the archive */
	CHECK(run(&a, true, false, 1 << 20, dir, &r) == 0);
	CHECK_EQ(r.files, 3);
	CHECK_EQ(r.bytes, 15);
	CHECK_EQ(r.refused, 0);
	CHECK_STR(slurp(dir, "a.txt"), "alpha\n");
	CHECK_STR(slurp(dir, "sub/b"), "beta");
	CHECK_STR(slurp(dir, "deep/er/c"), "gamma");
	/* no set-id bit from the guest; the owner may read and write */
	CHECK(!stat(strcat(strcpy((char[512]){ 0 }, dir), "/sub/b"), &st) &&
	      (st.st_mode & 07777) == 0755);
	CHECK(no_temporaries(dir));
}

static void test_bad_names(void)
{
	static const char *const names[] = { "/etc/evil", "../evil", "a/../../evil", "a//b", "",
					     ".", "x/./y", "new\nline", "tab\tbed", "sub/..",
					     ".gvm-output.1.0", "d/.gvm-output.x",
					     ".gvm-output.dir/f" };
	struct arc a;
	struct job_output_result r;
	char dir[128];

	fresh_dir(dir, sizeof(dir));
	arc_open(&a);
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i][0]) /* an empty name cannot be written: a 1-byte name instead */
			add(&a, names[i], S_IFREG | 0644, "x");
	add(&a, "good", S_IFREG | 0644, "ok");
	CHECK(run(&a, true, false, 1 << 20, dir, &r) == -1);
	CHECK_EQ(r.refused, sizeof(names) / sizeof(names[0]) - 1);
	CHECK_EQ(r.files, 1);
	CHECK_STR(slurp(dir, "good"), "ok");
	CHECK(!exists(top, "evil") && !exists(dir, "../evil") && !exists("/etc", "evil"));
	CHECK(!exists(dir, "new\nline") && !exists(dir, "x"));
	CHECK(no_temporaries(dir) && !exists(dir, "d") && !exists(dir, ".gvm-output.dir"));
}

static void test_types(void)
{
	struct arc a;
	struct job_output_result r;
	char dir[128];

	fresh_dir(dir, sizeof(dir));
	arc_open(&a);
	add(&a, "link", S_IFLNK | 0777, "/etc/passwd");
	add(&a, "fifo", S_IFIFO | 0644, NULL);
	add(&a, "dev", S_IFCHR | 0666, NULL);
	add(&a, "blk", S_IFBLK | 0666, NULL);
	add(&a, "sock", S_IFSOCK | 0666, NULL);
	add(&a, "odd", 0644, NULL); /* no type at all */
	CHECK(run(&a, true, false, 1 << 20, dir, &r) == -1);
	CHECK_EQ(r.refused, 6);
	CHECK_EQ(r.files, 0);
	CHECK(!exists(dir, "link") && !exists(dir, "fifo") && !exists(dir, "dev") &&
	      !exists(dir, "blk") && !exists(dir, "sock") && !exists(dir, "odd"));
}

/* A symbolic link already in the output directory is never followed. */
static void test_existing_link(void)
{
	struct arc a;
	struct job_output_result r;
	char dir[128], outside[128], link[256];

	fresh_dir(dir, sizeof(dir));
	fresh_dir(outside, sizeof(outside));
	snprintf(link, sizeof(link), "%s/sneaky", dir);
	CHECK(symlink(outside, link) == 0);
	snprintf(link, sizeof(link), "%s/file-link", dir);
	CHECK(symlink("/tmp/gvm-test-job-output-target", link) == 0);
	arc_open(&a);
	add(&a, "sneaky/planted", S_IFREG | 0644, "x");
	add(&a, "sneaky", S_IFDIR | 0755, NULL);
	add(&a, "file-link", S_IFREG | 0644, "x");
	CHECK(run(&a, true, true, 1 << 20, dir, &r) == -1);
	CHECK(!exists(outside, "planted"));
	CHECK(!exists("/tmp", "gvm-test-job-output-target"));
	CHECK_EQ(r.refused, 2); /* sneaky/planted and the directory; file-link is replaced */
	CHECK_STR(slurp(dir, "file-link"), "x");
	CHECK(no_temporaries(dir));
}

static void test_overwrite(void)
{
	struct arc a;
	struct job_output_result r;
	char dir[128], path[256];
	int fd;

	fresh_dir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/result", dir);
	fd = open(path, O_WRONLY | O_CREAT, 0644);
	CHECK(fd >= 0 && write(fd, "mine", 4) == 4);
	close(fd);
	arc_open(&a);
	add(&a, "result", S_IFREG | 0644, "guest's");
	CHECK(run(&a, true, false, 1 << 20, dir, &r) == -1);
	CHECK_EQ(r.refused, 1);
	CHECK_STR(slurp(dir, "result"), "mine");
	CHECK(no_temporaries(dir));
	arc_open(&a);
	add(&a, "result", S_IFREG | 0644, "guest's");
	CHECK(run(&a, true, true, 1 << 20, dir, &r) == 0);
	CHECK_STR(slurp(dir, "result"), "guest's");
	/* a directory where a file would go stays a directory */
	snprintf(path, sizeof(path), "%s/adir", dir);
	CHECK(mkdir(path, 0755) == 0);
	arc_open(&a);
	add(&a, "adir", S_IFREG | 0644, "x");
	CHECK(run(&a, true, true, 1 << 20, dir, &r) == -1);
	CHECK(exists(dir, "adir/."));
}

static void test_limit(void)
{
	char big[601];
	struct arc a;
	struct job_output_result r;
	char dir[128];

	memset(big, 'b', 600);
	big[600] = '\0';
	fresh_dir(dir, sizeof(dir));
	arc_open(&a);
	add(&a, "one", S_IFREG | 0644, big);
	add(&a, "two", S_IFREG | 0644, big);
	add(&a, "small", S_IFREG | 0644, "s");
	CHECK(run(&a, true, false, 1000, dir, &r) == -1);
	CHECK(exists(dir, "one") && !exists(dir, "two") && exists(dir, "small"));
	CHECK_EQ(r.bytes, 601);
	CHECK_EQ(r.refused, 1);
}

static void test_truncated_and_malformed(void)
{
	struct arc a;
	struct job_output_result r;
	struct job_output_opts o;
	char dir[128];
	off_t size;

	/* cut in the middle of the second file's data */
	fresh_dir(dir, sizeof(dir));
	arc_open(&a);
	add(&a, "first", S_IFREG | 0644, "complete");
	add(&a, "second", S_IFREG | 0644, "this one is cut short");
	size = lseek(a.fd, 0, SEEK_END);
	CHECK(ftruncate(a.fd, size - 10) == 0);
	CHECK(run(&a, false, false, 1 << 20, dir, &r) == -1);
	CHECK_STR(slurp(dir, "first"), "complete");
	CHECK(!exists(dir, "second"));
	CHECK(no_temporaries(dir));

	/* garbage after a good entry */
	fresh_dir(dir, sizeof(dir));
	arc_open(&a);
	add(&a, "first", S_IFREG | 0644, "complete");
	CHECK(write(a.fd, "070701ZZZZ", 10) == 10);
	CHECK(run(&a, false, false, 1 << 20, dir, &r) == -1);
	CHECK_STR(slurp(dir, "first"), "complete");

	/* a name size beyond the limit, and one without its NUL */
	fresh_dir(dir, sizeof(dir));
	arc_open(&a);
	CHECK(write(a.fd, "070701" "00000001" "000081A4" "00000000" "00000000" "00000001"
		  "00000000" "00000000" "00000000" "00000000" "00000000" "00000000" "7FFFFFFF"
		  "00000000", 110) == 110);
	CHECK(run(&a, false, false, 1 << 20, dir, &r) == -1);
	fresh_dir(dir, sizeof(dir));
	arc_open(&a);
	CHECK(write(a.fd, "070701" "00000001" "000081A4" "00000000" "00000000" "00000001"
		  "00000000" "00000000" "00000000" "00000000" "00000000" "00000000" "00000002"
		  "00000000" "ab", 112) == 112);
	CHECK(run(&a, false, false, 1 << 20, dir, &r) == -1);

	/* cut at the size limit: said as such (sent > stored) */
	fresh_dir(dir, sizeof(dir));
	arc_open(&a);
	add(&a, "first", S_IFREG | 0644, "complete");
	add(&a, "second", S_IFREG | 0644, "this one is cut short");
	size = lseek(a.fd, 0, SEEK_END);
	CHECK(ftruncate(a.fd, size - 10) == 0);
	lseek(a.fd, 0, SEEK_SET);
	o = (struct job_output_opts){ .dir = dir, .max = 1 << 20 };
	CHECK(job_output_extract(a.fd, size - 10, size + 1000, &o, &r) == -1);
	close(a.fd);
	CHECK(exists(dir, "first") && !exists(dir, "second"));
}

/* The output directory itself: created when missing, refused when it cannot be. */
static void test_output_dir(void)
{
	struct arc a;
	struct job_output_result r;
	char dir[160];

	snprintf(dir, sizeof(dir), "%s/new-dir", top);
	arc_open(&a);
	add(&a, "f", S_IFREG | 0644, "x");
	CHECK(run(&a, true, false, 1 << 20, dir, &r) == 0);
	CHECK(exists(dir, "f"));
	snprintf(dir, sizeof(dir), "%s/no/such/parent", top);
	arc_open(&a);
	add(&a, "f", S_IFREG | 0644, "x");
	CHECK(run(&a, true, false, 1 << 20, dir, &r) == -1);
}

int main(void)
{
	char cmd[128];
	int rc;

	snprintf(top, sizeof(top), "%s/job-output.XXXXXX",
		 getenv("GVM_TEST_TMP") ? getenv("GVM_TEST_TMP") : "/tmp");
	if (!mkdtemp(top)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_plain);
	RUN(test_bad_names);
	RUN(test_types);
	RUN(test_existing_link);
	RUN(test_overwrite);
	RUN(test_limit);
	RUN(test_truncated_and_malformed);
	RUN(test_output_dir);
	rc = check_summary();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", top);
	if (system(cmd))
		fprintf(stderr, "could not remove %s\n", top);
	return rc;
}
