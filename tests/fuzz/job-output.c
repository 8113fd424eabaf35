/*
 * vmm/job-output.c: a guest's archive of output files unpacked into a
 * directory, as gvm does at the end of a job.  The harness holds the
 * unpacker to its promises, not only to the sanitizers': nothing is written
 * outside the output directory, not even through the symbolic link "esc"
 * planted in it (pointing at a sibling directory that must stay empty); an
 * existing file stays unless overwrite; what is left is regular files and
 * directories only, within the size limit, with no temporary file behind;
 * no descriptor leaks.
 *
 * The archive goes in through a memfd, as gvm reads it from a file.  The
 * directory is on tmpfs when there is one ($GVM_FUZZ_TMP, else /dev/shm),
 * because the unpacker fsyncs every file.
 */
#include <fcntl.h>
#include <ftw.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/fuzz/lib/fuzz.h"
#include "vmm/job-output.h"

#define MAX_BYTES 16384
#define KEEP "keep me"

static char base[256], out[300], victim[300];
static int memfd = -1;
static uint64_t seen_bytes;
static int seen_bad;

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP ? rmdir(path) : unlink(path))
		FUZZ_CHECK(!"cannot clean up the scratch directory");
	return 0;
}

static void remove_tree(const char *path)
{
	if (access(path, F_OK) == 0)
		nftw(path, remove_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void cleanup(void)
{
	remove_tree(base);
}

/* What the unpacker left in the output directory. */
static int inspect(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	const char *name = path + ftw->base;

	(void)flag;
	if (ftw->level == 1 && !strcmp(name, "esc") && S_ISLNK(st->st_mode))
		return 0;
	if (!strncmp(name, ".gvm-output.", 12) || !(S_ISREG(st->st_mode) || S_ISDIR(st->st_mode)))
		seen_bad = 1;
	if (S_ISREG(st->st_mode))
		seen_bytes += st->st_size;
	return 0;
}

static int fresh_fd(void)
{
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

	close(fd);
	return fd;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_scratch_dir("job-output", base, sizeof(base));
	atexit(cleanup);
	snprintf(out, sizeof(out), "%s/out", base);
	snprintf(victim, sizeof(victim), "%s/victim", base);
	memfd = memfd_create("archive", MFD_CLOEXEC);
	FUZZ_CHECK(memfd >= 0);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The two low bits of the size pick the options, so every input tries one set. */
	struct job_output_opts o = { .dir = out, .overwrite = size & 1, .max = MAX_BYTES };
	uint64_t sent = size + (size & 2 ? 100 : 0);
	struct job_output_result r;
	char keep[sizeof(KEEP)] = "";
	/* Taken here, not once: libFuzzer opens files of its own between inputs. */
	int free_fd = fresh_fd(), fd;

	FUZZ_CHECK(mkdir(out, 0755) == 0 && mkdir(victim, 0755) == 0);
	{
		char esc[320], k[320];

		snprintf(esc, sizeof(esc), "%s/esc", out);
		snprintf(k, sizeof(k), "%s/keep", out);
		FUZZ_CHECK(symlink("../victim", esc) == 0);
		fd = open(k, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
		FUZZ_CHECK(fd >= 0 && write(fd, KEEP, strlen(KEEP)) == (ssize_t)strlen(KEEP));
		close(fd);
	}
	FUZZ_CHECK(ftruncate(memfd, 0) == 0);
	FUZZ_CHECK(pwrite(memfd, data, size, 0) == (ssize_t)size);
	FUZZ_CHECK(lseek(memfd, 0, SEEK_SET) == 0);

	job_output_extract(memfd, size, sent, &o, &r);

	FUZZ_CHECK(r.bytes <= MAX_BYTES);
	FUZZ_CHECK(rmdir(victim) == 0); /* empty: nothing went through "esc" */
	seen_bytes = 0;
	seen_bad = 0;
	FUZZ_CHECK(nftw(out, inspect, 16, FTW_PHYS) == 0);
	FUZZ_CHECK(!seen_bad);
	FUZZ_CHECK(seen_bytes <= MAX_BYTES + strlen(KEEP));
	if (!o.overwrite) {
		char k[320];

		snprintf(k, sizeof(k), "%s/keep", out);
		fd = open(k, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
		FUZZ_CHECK(fd >= 0 && read(fd, keep, sizeof(keep)) == (ssize_t)strlen(KEEP));
		FUZZ_CHECK(!memcmp(keep, KEEP, strlen(KEEP)));
		close(fd);
	}
	FUZZ_CHECK(fresh_fd() == free_fd);
	remove_tree(out);
	return 0;
}
