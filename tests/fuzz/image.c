/*
 * vmm/image.c: an image directory's cmdline and cmdline-emulated files,
 * whose words (lines starting with '#' are comments) become the kernel
 * command line, before the user's --append.  The input is split in two, one
 * half per file.  Checked beyond the sanitizers: the command line is the
 * files' words in order, each whole, one space apart, then --append's; or
 * the files are refused with a reason.  (Inputs holding a NUL are only
 * held to the sanitizers: the words after a NUL are not defined.)
 */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/fuzz/lib/fuzz.h"
#include "vmm/image.h"

#define APPEND "init=/bin/sh"

static char dir[256];

static void cleanup(void)
{
	static const char *const files[] = { "vmlinux", "cmdline", "cmdline-emulated" };
	char f[300];

	for (unsigned i = 0; i < 3; i++) {
		snprintf(f, sizeof(f), "%s/%s", dir, files[i]);
		unlink(f);
	}
	rmdir(dir);
}

static void put(const char *name, const uint8_t *data, size_t len)
{
	char f[300];
	int fd;

	snprintf(f, sizeof(f), "%s/%s", dir, name);
	fd = open(f, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	FUZZ_CHECK(fd >= 0 && write(fd, data, len) == (ssize_t)len);
	close(fd);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_scratch_dir("image", dir, sizeof(dir));
	atexit(cleanup);
	put("vmlinux", (const uint8_t *)"", 0);
	return 0;
}

/* The words of a file's text as the header of vmm/image.h defines them, appended to want. */
static size_t words(char *want, size_t used, size_t cap, const uint8_t *d, size_t len)
{
	size_t i = 0;

	while (i < len) {
		size_t end = i;

		while (end < len && d[end] != '\n')
			end++;
		if (d[i] != '#') {
			for (size_t k = i; k < end;) {
				size_t w = k;

				while (w < end && !strchr(" \t\r", d[w]))
					w++;
				if (w > k) {
					if (used && used < cap)
						want[used] = ' ';
					used += !!used;
					for (size_t j = k; j < w; j++, used++)
						if (used < cap)
							want[used] = d[j];
				}
				k = w + 1;
			}
		}
		i = end + 1;
	}
	return used;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct image img;
	static char want[2 * IMAGE_CMDLINE_MAX + 64];
	char err[IMAGE_ERR_MAX] = "";
	size_t half = size / 2, used;
	int rc;

	put("cmdline", data, half);
	put("cmdline-emulated", data + half, size - half);
	rc = image_resolve(dir, true, APPEND, &img, err);
	FUZZ_CHECK(rc == 0 || err[0]);
	if (memchr(data, '\0', size))
		return 0;
	used = words(want, 0, sizeof(want), data, half);
	used = words(want, used, sizeof(want), data + half, size - half);
	if (used + 1 + strlen(APPEND) >= IMAGE_CMDLINE_MAX) {
		FUZZ_CHECK(rc != 0);
		return 0;
	}
	snprintf(want + used, sizeof(want) - used, "%s%s", used ? " " : "", APPEND);
	FUZZ_CHECK(rc == 0);
	if (strcmp(img.cmdline, want)) {
		fprintf(stderr, "command line:\n  got  '%s'\n  want '%s'\n", img.cmdline, want);
		FUZZ_CHECK(!"the command line is not the files' words");
	}
	return 0;
}
