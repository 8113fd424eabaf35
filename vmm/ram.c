#include "vmm/ram.h"

#include <errno.h>
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
