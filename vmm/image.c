#include "vmm/image.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"

#define ERR(...) (snprintf(err, IMAGE_ERR_MAX, __VA_ARGS__), -1)

static bool is_dir(const char *p)
{
	struct stat st;

	return !stat(p, &st) && S_ISDIR(st.st_mode);
}

static bool is_file(const char *p)
{
	struct stat st;

	return !stat(p, &st) && S_ISREG(st.st_mode);
}

/* Append the words of file (comments dropped) to buf; a missing file adds nothing. */
static int add_words(char *buf, size_t size, const char *file, char *err)
{
	FILE *f = fopen(file, "re");
	/* Whole lines, however long: a fixed buffer would cut a word in two. */
	char *line = NULL;
	size_t cap = 0, used = strlen(buf);
	int rc = 0;

	if (!f)
		return errno == ENOENT ? 0 : ERR("image: cannot read %s: %s", file, strerror(errno));
	while (!rc && getline(&line, &cap, f) >= 0) {
		char *save = NULL, *w;

		if (line[0] == '#')
			continue;
		for (w = strtok_r(line, " \t\r\n", &save); w; w = strtok_r(NULL, " \t\r\n", &save)) {
			int n = snprintf(buf + used, size - used, "%s%s", used ? " " : "", w);

			if (n < 0 || (size_t)n >= size - used) {
				rc = ERR("image: the command line from %s is longer than %zu bytes",
					 file, size - 1);
				break;
			}
			used += n;
		}
	}
	free(line);
	fclose(f);
	return rc;
}

/* Add dir to the places to look, unless it is there already or does not exist. */
static void add_place(char (*out)[PATH_MAX], unsigned *n, unsigned max, const char *dir)
{
	char real[PATH_MAX];

	if (*n == max || !realpath(dir, real))
		return;
	for (unsigned i = 0; i < *n; i++)
		if (!strcmp(out[i], real))
			return;
	snprintf(out[(*n)++], PATH_MAX, "%s", real);
}

/* The directories images may be in, in order (see image.h); returns how many. */
static unsigned places(char (*out)[PATH_MAX], unsigned max)
{
	char exe[PATH_MAX], dir[PATH_MAX + 32], *slash;
	const char *env = getenv("GVM_IMAGES");
	ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	unsigned n = 0;

	if (env && *env)
		add_place(out, &n, max, env);
	if (len > 0) {
		exe[len] = '\0';
		slash = strrchr(exe, '/');
		if (slash) {
			*slash = '\0';
			snprintf(dir, sizeof(dir), "%s/images", exe);
			add_place(out, &n, max, dir);
			snprintf(dir, sizeof(dir), "%s/../share/giantvm/images", exe);
			add_place(out, &n, max, dir);
		}
	}
	add_place(out, &n, max, GVM_PREFIX "/share/giantvm/images");
	return n;
}

static bool valid_name(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' ||
		      *s == '_'))
			return false;
	return true;
}

/*
 * A directory that holds a kernel: in a build tree, images/probe is the
 * probe's object directory beside images/probe.elf, and must not hide it.
 */
static bool is_image_dir(const char *dir)
{
	char f[PATH_MAX + 32];

	snprintf(f, sizeof(f), "%s/vmlinux", dir);
	if (is_file(f))
		return true;
	snprintf(f, sizeof(f), "%s/bzImage", dir);
	return is_file(f);
}

/* An image directory: its kernel, initramfs and words. */
static int from_dir(struct image *img, bool emulated, char *err)
{
	char f[PATH_MAX + 32];

	snprintf(f, sizeof(f), "%s/vmlinux", img->path);
	if (!is_file(f))
		snprintf(f, sizeof(f), "%s/bzImage", img->path);
	if (!is_file(f))
		return ERR("image: %s holds no kernel (vmlinux or bzImage)", img->path);
	snprintf(img->kernel, sizeof(img->kernel), "%s", f);
	snprintf(f, sizeof(f), "%s/initramfs.cpio", img->path);
	if (is_file(f))
		snprintf(img->initrd, sizeof(img->initrd), "%s", f);
	snprintf(f, sizeof(f), "%s/cmdline", img->path);
	if (add_words(img->cmdline, sizeof(img->cmdline), f, err))
		return -1;
	if (emulated) {
		size_t before = strlen(img->cmdline);

		snprintf(f, sizeof(f), "%s/cmdline-emulated", img->path);
		if (add_words(img->cmdline, sizeof(img->cmdline), f, err))
			return -1;
		img->emulated_words = strlen(img->cmdline) > before;
	}
	return 0;
}

int image_resolve(const char *spec, bool emulated, const char *append, struct image *img,
		  char *err)
{
	char cand[8][PATH_MAX];
	size_t used;

	memset(img, 0, sizeof(*img));
	if (!spec || !*spec)
		spec = IMAGE_DEFAULT;
	if (strchr(spec, '/') || !strcmp(spec, ".") || !strcmp(spec, "..")) {
		if (!realpath(spec, img->path))
			return ERR("image '%s': %s", spec, strerror(errno));
	} else if (!valid_name(spec)) {
		return ERR("image '%s': an image is a name (linux, probe) or a path with a '/' "
			   "(./%s for one in this directory)", spec, spec);
	} else {
		unsigned n = places(cand, 8);
		char tried[IMAGE_ERR_MAX / 2] = "";
		size_t t = 0;

		for (unsigned i = 0; i < n && !img->path[0]; i++) {
			char dir[PATH_MAX + 80], elf[PATH_MAX + 80];

			snprintf(dir, sizeof(dir), "%s/%s", cand[i], spec);
			snprintf(elf, sizeof(elf), "%s/%s.elf", cand[i], spec);
			if ((is_image_dir(dir) && realpath(dir, img->path)) ||
			    (is_file(elf) && realpath(elf, img->path)))
				break;
			t += snprintf(tried + t, t < sizeof(tried) ? sizeof(tried) - t : 0, "%s%s",
				      i ? ", " : "", cand[i]);
		}
		if (!img->path[0])
			return ERR("no image '%s' (neither %s/ nor %s.elf in %s): build it (make "
				   "images, make linux-image), install it (make install), or give "
				   "--image PATH", spec, spec, spec, n ? tried : "any place");
	}
	if (is_dir(img->path)) {
		if (from_dir(img, emulated, err))
			return -1;
	} else if (is_file(img->path)) {
		snprintf(img->kernel, sizeof(img->kernel), "%s", img->path);
	} else {
		return ERR("image '%s' is neither a directory nor a kernel file", spec);
	}
	used = strlen(img->cmdline);
	if (append && *append) {
		int n = snprintf(img->cmdline + used, sizeof(img->cmdline) - used, "%s%s",
				 used ? " " : "", append);

		if (n < 0 || (size_t)n >= sizeof(img->cmdline) - used)
			return ERR("the kernel command line is longer than %zu bytes",
				   sizeof(img->cmdline) - 1);
	}
	return 0;
}

int image_apply(const struct image *img, struct vm_options *o, char *err)
{
	if (img->initrd[0]) {
		if (o->nr_initrds == OPT_MAX_INITRDS)
			return ERR("at most %d initrds, the image's included", OPT_MAX_INITRDS - 1);
		memmove(&o->initrds[1], &o->initrds[0], o->nr_initrds * sizeof(o->initrds[0]));
		o->initrds[0] = img->initrd;
		o->nr_initrds++;
	}
	o->kernel = img->kernel;
	o->append = img->cmdline;
	return 0;
}
