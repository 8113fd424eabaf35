/*
 * The region: an anonymous mapping registered with userfaultfd for missing
 * and write-protect faults, and the four operations the protocol does on it:
 * install a page (UFFDIO_COPY, read-only with MODE_WP), map the zero page,
 * change write protection (UFFDIO_WRITEPROTECT) and drop a copy
 * (MADV_DONTNEED, which returns the memory to the host).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <numa.h>
#include <numaif.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/log.h"
#include "dsm/internal.h"

/* Newer than the uapi headers of Debian 12; the kernel says whether it has them. */
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef USERFAULTFD_IOC_NEW
#define USERFAULTFD_IOC_NEW _IO(0xAA, 0x00)
#endif

static int region_open_uffd(char *err)
{
	int dev, fd;

	/* /dev/userfaultfd gives kernel-mode faults (KVM's) to whoever may open it. */
	dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	if (dev >= 0) {
		fd = ioctl(dev, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);
		close(dev);
		if (fd >= 0)
			return fd;
	}
	fd = syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		snprintf(err, DSM_ERR_MAX,
			 "cannot create a userfaultfd: %s (run as root, give access to "
			 "/dev/userfaultfd, or pass a descriptor opened by a privileged helper)",
			 strerror(errno));
	return fd;
}

/*
 * A descriptor handed over is either /dev/userfaultfd, opened by someone
 * allowed to (a userfaultfd belongs to the process that creates it, so we
 * ask the device for ours), or a userfaultfd this process created.
 */
static int region_adopt_uffd(struct dsm *d, char *err)
{
	int fd = ioctl(d->uffd, USERFAULTFD_IOC_NEW, O_CLOEXEC | O_NONBLOCK);

	if (fd >= 0) {
		close(d->uffd);
		d->uffd = fd;
		return 0;
	}
	if (errno == ENOTTY || errno == EINVAL)
		return 0; /* not the device: a userfaultfd, UFFDIO_API will tell */
	snprintf(err, DSM_ERR_MAX, "/dev/userfaultfd (descriptor %d) refuses a userfaultfd: %s",
		 d->uffd, strerror(errno));
	return -1;
}

static int region_api(int uffd, char *err)
{
	uint64_t want = UFFD_FEATURE_PAGEFAULT_FLAG_WP | UFFD_FEATURE_THREAD_ID;
	struct uffdio_api api = { .api = UFFD_API, .features = want | UFFD_FEATURE_WP_UNPOPULATED };

	/* A refused feature leaves the descriptor uninitialised: retry without it. */
	if (ioctl(uffd, UFFDIO_API, &api) == 0)
		return 0;
	api = (struct uffdio_api){ .api = UFFD_API, .features = want };
	if (ioctl(uffd, UFFDIO_API, &api) == 0)
		return 0;
	snprintf(err, DSM_ERR_MAX,
		 "userfaultfd descriptor %d refuses write-protect mode (%s): it is no "
		 "userfaultfd of this process, it was already initialised, or this kernel is "
		 "too old (Linux 5.7 or later is needed)", uffd, strerror(errno));
	return -1;
}

static int region_bind(struct dsm *d, char *err)
{
	struct bitmask *mask;
	uint64_t len = (d->home_end - d->home_first) << DSM_PAGE_SHIFT;
	int rc;

	if (d->cfg.numa_node < 0 || len == 0)
		return 0;
	if (numa_available() < 0) {
		snprintf(err, DSM_ERR_MAX, "NUMA node %d requested, but this host has no NUMA support",
			 d->cfg.numa_node);
		return -1;
	}
	if (d->cfg.numa_node > numa_max_node()) {
		snprintf(err, DSM_ERR_MAX, "NUMA node %d does not exist (this host has nodes 0-%d)",
			 d->cfg.numa_node, numa_max_node());
		return -1;
	}
	mask = numa_allocate_nodemask();
	numa_bitmask_setbit(mask, d->cfg.numa_node);
	rc = mbind(dsm_page_addr(d, d->home_first), len, MPOL_BIND, mask->maskp, mask->size + 1, 0);
	numa_free_nodemask(mask);
	if (rc) {
		snprintf(err, DSM_ERR_MAX, "cannot bind the home range to NUMA node %d: %s",
			 d->cfg.numa_node, strerror(errno));
		return -1;
	}
	return 0;
}

int region_create(struct dsm *d, char *err)
{
	struct uffdio_register reg;
	uint64_t size = d->npages << DSM_PAGE_SHIFT;
	int fl;

	d->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		       -1, 0);
	if (d->base == MAP_FAILED) {
		d->base = NULL;
		snprintf(err, DSM_ERR_MAX, "cannot map %llu bytes: %s", (unsigned long long)size,
			 strerror(errno));
		return -1;
	}
	/* 4 KiB coherence: a transparent huge page would share 512 pages' fate. */
	madvise(d->base, size, MADV_NOHUGEPAGE);
	if (region_bind(d, err))
		return -1;
	if (d->uffd < 0 && (d->uffd = region_open_uffd(err)) < 0)
		return -1;
	if (region_adopt_uffd(d, err))
		return -1;
	/* The handlers poll: a descriptor handed over blocking is made non-blocking. */
	fl = fcntl(d->uffd, F_GETFL);
	if (fl < 0 || fcntl(d->uffd, F_SETFL, fl | O_NONBLOCK)) {
		snprintf(err, DSM_ERR_MAX, "userfaultfd descriptor %d: %s", d->uffd, strerror(errno));
		return -1;
	}
	if (region_api(d->uffd, err))
		return -1;
	reg = (struct uffdio_register){
		.range = { .start = (uintptr_t)d->base, .len = size },
		.mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP,
	};
	if (ioctl(d->uffd, UFFDIO_REGISTER, &reg)) {
		snprintf(err, DSM_ERR_MAX, "cannot register the region with userfaultfd: %s",
			 strerror(errno));
		return -1;
	}
	if (!(reg.ioctls & (1ull << _UFFDIO_WRITEPROTECT)) || !(reg.ioctls & (1ull << _UFFDIO_COPY))) {
		snprintf(err, DSM_ERR_MAX, "userfaultfd cannot write-protect anonymous memory here");
		return -1;
	}
	return 0;
}

void region_destroy(struct dsm *d)
{
	/*
	 * Unmap first: closing the userfaultfd wakes the threads still waiting
	 * for a page, and on a mapping still there their retry would get a
	 * fresh zero page, data the DSM never gave (a vCPU would run on it).
	 * Unmapped, the retry fails: SIGSEGV, or EFAULT for KVM.
	 */
	if (d->base)
		munmap(d->base, d->npages << DSM_PAGE_SHIFT);
	d->base = NULL;
	if (d->uffd >= 0)
		close(d->uffd);
	d->uffd = -1;
}

/* An ioctl that failed where the protocol says it cannot: our state is wrong. */
static int region_broken(struct dsm *d, const char *what, uint64_t pg, int e)
{
	dsm_fail(d, d->rank, "internal error: %s of page %llu failed: %s", what,
		 (unsigned long long)pg, strerror(e));
	return -1;
}

int region_copy(struct dsm *d, uint64_t pg, uint64_t n, const void *src, bool wp, bool wake)
{
	struct uffdio_copy c = {
		.dst = (uintptr_t)dsm_page_addr(d, pg),
		.src = (uintptr_t)src,
		.len = n << DSM_PAGE_SHIFT,
		.mode = (wp ? UFFDIO_COPY_MODE_WP : 0) | (wake ? 0 : UFFDIO_COPY_MODE_DONTWAKE),
	};

	while (ioctl(d->uffd, UFFDIO_COPY, &c)) {
		/* EAGAIN: the mm changed under us; c.copy says how far it got. */
		if (errno != EAGAIN)
			return region_broken(d, "UFFDIO_COPY", pg, errno);
		if (c.copy > 0) {
			c.dst += c.copy;
			c.src += c.copy;
			c.len -= c.copy;
		}
		c.copy = 0;
	}
	return 0;
}

int region_zeropage(struct dsm *d, uint64_t pg)
{
	struct uffdio_zeropage z = {
		.range = { .start = (uintptr_t)dsm_page_addr(d, pg), .len = DSM_PAGE_SIZE },
	};

	while (ioctl(d->uffd, UFFDIO_ZEROPAGE, &z))
		if (errno != EAGAIN)
			return region_broken(d, "UFFDIO_ZEROPAGE", pg, errno);
	return 0;
}

int region_protect(struct dsm *d, uint64_t pg, uint64_t n, bool wp, bool wake)
{
	struct uffdio_writeprotect w = {
		.range = { .start = (uintptr_t)dsm_page_addr(d, pg), .len = n << DSM_PAGE_SHIFT },
		/* Only un-protecting wakes anyone; the kernel refuses DONTWAKE with WP. */
		.mode = wp ? UFFDIO_WRITEPROTECT_MODE_WP :
			     (wake ? 0 : UFFDIO_WRITEPROTECT_MODE_DONTWAKE),
	};

	while (ioctl(d->uffd, UFFDIO_WRITEPROTECT, &w))
		if (errno != EAGAIN)
			return region_broken(d, "UFFDIO_WRITEPROTECT", pg, errno);
	return 0;
}

int region_drop(struct dsm *d, uint64_t pg, uint64_t n)
{
	if (madvise(dsm_page_addr(d, pg), n << DSM_PAGE_SHIFT, MADV_DONTNEED))
		return region_broken(d, "MADV_DONTNEED", pg, errno);
	return 0;
}
