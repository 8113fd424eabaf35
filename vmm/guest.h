/*
 * Putting a guest into a VM: what `gvm run` and rank 0 of `gvm node` both
 * do.  The boot input is checked before anything starts (so bad input
 * starts nothing); loading writes the ACPI tables, the kernel, the initrds
 * and the zero page into guest RAM (through the DSM in a cluster, like any
 * other access) and gives the boot vCPU its entry state.
 */
#ifndef GVM_VMM_GUEST_H
#define GVM_VMM_GUEST_H

#include <stdint.h>

#include "vmm/image.h"
#include "vmm/options.h"

struct vm;
struct host;

/*
 * --kernel (required), --initrd and --dump-acpi of o: the files exist and
 * are what they must be.  Returns 0, or -1 after an error message that
 * starts with cmd ("run", "node").
 */
int guest_check_boot(const struct vm_options *o, const char *cmd);

/*
 * The guest's NUMA shape over `instances` instances of this host's kind,
 * into p (which may be &o->topo; o's --numa is read first): --numa host
 * gives each instance one node per host NUMA node that has usable PUs;
 * --numa N (a multiple of instances) N / instances each; neither, one each.
 * Sets the host's own distances between one instance's nodes.  Returns 0,
 * or -1 after an error message that starts with cmd.
 */
int guest_numa_shape(const struct vm_options *o, const struct host *host, unsigned instances,
		     struct topo_params *p, const char *cmd);

/*
 * A job's default RAM where KVM emulates guest kernel code: the boot's
 * memory set-up grows with RAM, at a microsecond per guest instruction
 * there (half this host's RAM, the usual default, would take minutes).
 */
#define GUEST_JOB_EMULATED_RAM_PER_NODE (512ull << 20)

/*
 * Apply that default to o (nodes: the guest's NUMA nodes) when o is a job
 * on such a host and --mem was not given, saying so.
 */
void guest_default_ram(struct vm_options *o, const struct host *host, unsigned nodes,
		       const char *cmd);

/*
 * Say, for a job over several instances on a host whose KVM emulates guest
 * kernel code, that such a host keeps shadow page tables the instances'
 * shared memory does not keep coherent (docs/cluster.md, "Limits").
 */
void guest_warn_shadow_paging(const struct vm_options *o, const struct host *host,
			      unsigned instances, const char *cmd);

/*
 * Everything the boot needs that can be checked before anything starts:
 * --image (the linux image by default for a job) resolved into o's kernel,
 * initrds and command line (img must outlive o; the host decides whether
 * the image's words for emulating hosts are added), guest_check_boot, and
 * for a job its command, files and output directory, and that it fits
 * ram_size bytes of guest RAM.  Returns 0, or -1 after an error message that
 * starts with cmd.
 */
int guest_prepare(struct vm_options *o, const struct host *host, uint64_t ram_size,
		  struct image *img, const char *cmd);

/* Load the guest into vm (whose vCPU 0 runs here) and set vCPU 0's entry state. */
int guest_load(struct vm *vm, const struct vm_options *o, const char *cmd);

#endif
