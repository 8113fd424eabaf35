/*
 * Guest images (--image NAME|PATH): what `gvm run -- COMMAND` boots.
 *
 * An image is a directory holding a kernel (vmlinux, or else bzImage), an
 * initramfs (initramfs.cpio, optional), the kernel command line it boots
 * with (cmdline) and the words it needs on hosts whose KVM emulates guest
 * kernel code (cmdline-emulated: gvm adds them there, so users need not
 * know them); or a single kernel file.  In both files, lines starting with
 * '#' are comments.
 *
 * A NAME (linux, probe) is the directory NAME holding a kernel, or the file
 * NAME.elf, in the first of: $GVM_IMAGES; images/ beside the gvm program (a
 * build tree: build/images); share/giantvm/images of the installation the
 * program is in; GVM_PREFIX/share/giantvm/images.  A PATH names a directory
 * or a kernel file.
 */
#ifndef GVM_VMM_IMAGE_H
#define GVM_VMM_IMAGE_H

#include <limits.h>
#include <stdbool.h>

#include "vmm/options.h"

#define IMAGE_ERR_MAX (3 * PATH_MAX)
#define IMAGE_CMDLINE_MAX 4096
#define IMAGE_DEFAULT "linux"

struct image {
	char path[PATH_MAX];     /* the directory or kernel file found */
	char kernel[PATH_MAX];
	char initrd[PATH_MAX];   /* "" if the image has none */
	char cmdline[IMAGE_CMDLINE_MAX]; /* the image's words, the host's, then the user's */
	bool emulated_words;     /* cmdline holds cmdline-emulated's words */
};

/*
 * Find spec (NAME or PATH) and compose its command line: the image's own
 * words, those of cmdline-emulated when emulated is true, then append (the
 * user's --append, which so has the last word).  Returns 0, or -1 with the
 * reason and what to do in err.
 */
int image_resolve(const char *spec, bool emulated, const char *append, struct image *img,
		  char *err);

/*
 * Boot o from img: --kernel, the image's initramfs before o's --initrd
 * files, and the composed command line.  img must outlive o's use.
 */
int image_apply(const struct image *img, struct vm_options *o, char *err);

#endif
