/*
 * The host machine, as seen through hwloc: where this instance's vCPU
 * threads run, which host NUMA node backs them, which caches a guest core is
 * given, and whether this host's KVM runs guest kernel code natively.
 *
 * A struct host is owned by its caller (host_open ... host_close); nothing
 * here keeps global state, so two instances in one process do not interfere.
 */
#ifndef GVM_VMM_HOST_H
#define GVM_VMM_HOST_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/topo.h"

#define HOST_ERR_MAX 256

struct host;

/* This machine (the PUs this process may use).  NULL with the reason in err. */
struct host *host_open(char *err);
/*
 * A host described by an hwloc synthetic string, e.g. "pack:2 core:4 pu:2"
 * (tests, and `gvm topo` for a machine other than this one).  Nothing about
 * virtualisation is known of it: host_kernel_emulated() says no.
 */
struct host *host_open_synthetic(const char *desc, char *err);
void host_close(struct host *h);

unsigned host_nr_pus(const struct host *h);
unsigned host_nr_cores(const struct host *h);
/* Physical RAM in bytes. */
uint64_t host_ram_size(const struct host *h);
/* Physical address width of the host CPU (CPUID 0x80000008 EAX[7:0]): the guest's too. */
unsigned host_phys_bits(const struct host *h);

/*
 * Host PUs (OS indexes, as in /sys/devices/system/cpu/cpuN) for nr vCPUs in
 * `groups` equal groups (one per guest NUMA node this host holds): group g
 * runs on the g-th host NUMA node that has usable PUs (round again when
 * there are more groups than such nodes; 0 or 1 group: the whole host).
 * Within a group: the first PU of every core in hwloc order, then the next
 * PU of every core, and round again when there are more vCPUs than PUs.
 * Returns 0, or -1 with the reason in err.
 */
int host_choose_pus(const struct host *h, unsigned nr, unsigned groups, unsigned *pus, char *err);

/* Host NUMA nodes that hold PUs this process may use (not memory-only ones); at least 1. */
unsigned host_nr_cpu_nodes(const struct host *h);

/*
 * The host's own distances between the NUMA nodes host_choose_pus puts
 * groups 0..groups-1 on, normalised to 10 for a node to itself: d[a][b],
 * 0 where hwloc knows none or both groups share a node.  groups is at most
 * TOPO_MAX_LOCAL_NODES.
 */
void host_group_distances(const struct host *h, unsigned groups,
			  uint8_t d[TOPO_MAX_LOCAL_NODES][TOPO_MAX_LOCAL_NODES]);

/*
 * CPUs a user named (--host-cpus) that this process may run on: an
 * unusable one would leave its vCPU unpinned, not what was asked.  0, or
 * -1 with the first bad one and the usable ones in err.
 */
int host_check_cpus(const unsigned *cpus, unsigned n, char *err);

/* Bind a thread to one PU.  0, or -1 with the reason in err. */
int host_pin_thread(const struct host *h, pthread_t thread, unsigned pu, char *err);

/* OS index of the host NUMA node that holds PU pu's local memory; -1 if unknown. */
int host_pu_node(const struct host *h, unsigned pu);

/*
 * The caches a guest core is given: the host's caches above its first PU
 * (L1d, L1i, L2, L3...), at most max, in level order (data before
 * instruction).  ways is 0 when hwloc does not know it; shared_by is left
 * 0 for topo_build to set from the guest topology.  Returns how many were
 * written.
 */
unsigned host_caches(const struct host *h, struct topo_cache *out, unsigned max);

/*
 * Does this host's KVM emulate guest kernel (CPL 0) code instead of running
 * it in hardware?  Then the guest needs the conservative CPU feature set.
 *
 * Heuristic: KVM works but the CPU flags in /proc/cpuinfo have neither vmx
 * nor svm.  A KVM that runs guests in hardware needs one of them; without
 * either, /dev/kvm is a software implementation (as on this project's CI
 * hosts, where CPL 0 runs at about 1 us per instruction and XSAVE, POPCNT,
 * CLAC/STAC are missing).  why (may be NULL) receives a one-line reason.
 * docs/topology.md has the measurement behind it.
 */
bool host_kernel_emulated(const struct host *h, const char **why);

#endif
