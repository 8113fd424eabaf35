#include "vmm/ram.h"

#include <errno.h>
#include <numaif.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "common/log.h"
#include "common/parse.h"

static void anon_release(struct guest_ram *ram)
{
	munmap(ram->base, ram->size);
	free(ram);
}

struct guest_ram *guest_ram_anon(uint64_t size)
{
	struct guest_ram *ram = calloc(1, sizeof(*ram));
	char buf[32];
	void *p;

	if (!ram) {
		pr_err("out of memory");
		return NULL;
	}
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		 -1, 0);
	if (p == MAP_FAILED) {
		pr_err("cannot map %s of guest RAM: %s", format_size(size, buf, sizeof(buf)),
		       strerror(errno));
		free(ram);
		return NULL;
	}
	/* Large guest pages keep KVM's and the host's page-table walks short. */
	madvise(p, size, MADV_HUGEPAGE);
	ram->base = p;
	ram->size = size;
	ram->release = anon_release;
	return ram;
}

void guest_ram_release(struct guest_ram *ram)
{
	if (ram && ram->release)
		ram->release(ram);
}

int guest_ram_prefer_node(struct guest_ram *ram, uint64_t off, uint64_t len, int host_node)
{
	const unsigned bits = 8 * sizeof(unsigned long);
	unsigned long mask[1024 / (8 * sizeof(unsigned long))] = { 0 };

	if (host_node < 0 || host_node >= 1024 || off > ram->size || len > ram->size - off)
		return -1;
	mask[host_node / bits] |= 1ul << (host_node % bits);
	if (mbind(ram->base + off, len, MPOL_PREFERRED, mask, 1024, 0)) {
		pr_warn("cannot place guest RAM on host NUMA node %d: %s", host_node,
			strerror(errno));
		return -1;
	}
	return 0;
}
