/*
 * One guest over N gvm instances (`gvm node`): the links between them.
 *
 * Instance r (its rank) runs the vCPUs of guest NUMA node r and homes that
 * node's RAM in the DSM (dsm/dsm.h); rank 0 also holds the devices and loads
 * the guest.  Over the mesh (common/mesh.h) each pair of instances has:
 *   channel 0, control: the machine description, clock samples, IPIs and
 *     device interrupts, APIC destination changes, EOIs, the end;
 *   channel 1, I/O: port and MMIO accesses forwarded to rank 0 and their
 *     replies, so that an interrupt never waits behind a slow device;
 *   channels 2 and 3: the DSM's.
 * docs/cluster.md describes the messages, the checks made on them and the
 * life cycle; this header is the interface `gvm node` drives.
 *
 * Set-up, in order:
 *   rank 0: cluster_create, cluster_send_config (the machine every instance
 *     must present, rank 0's caches and CPU features, rank 0's clocks),
 *     cluster_attach (once its VM exists), cluster_start, cluster_wait_ready,
 *     then it loads the guest and starts its vCPUs;
 *   rank k: cluster_create, cluster_recv_config, cluster_attach,
 *     cluster_start, cluster_sync_clocks, then starts its vCPUs (they wait for
 *     INIT/SIPI) and cluster_ready.
 * The end: the first vm_stop anywhere is sent to every instance (vm_hooks);
 * each joins its vCPUs, stops the DSM together with the others, then
 * cluster_stop.  A lost instance (its connections closed, the DSM's
 * on_fatal, or silence: no heartbeat for 3 s while the guest runs) stops
 * every other one with VM_STATUS_FAILED and a message naming its rank and
 * address.
 */
#ifndef GVM_VMM_CLUSTER_H
#define GVM_VMM_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

#include "dsm/dsm.h"
#include "vmm/topo.h"
#include "vmm/x86/cpuid.h"

struct mesh;
struct vm;
struct vm_hooks;

#define CLUSTER_CH_CTRL 0
#define CLUSTER_CH_IO 1
#define CLUSTER_CH_DSM 2
#define CLUSTER_NR_CHANNELS (CLUSTER_CH_DSM + DSM_NR_CHANNELS)
#define CLUSTER_ERR_MAX 512

/* What rank 0 decides for every instance. */
struct cluster_machine {
	unsigned nr_cpus;
	unsigned nr_nodes; /* guest NUMA nodes: a multiple of the instances */
	/* the host distances between one instance's nodes (struct topo_params) */
	uint8_t host_distance[TOPO_MAX_LOCAL_NODES][TOPO_MAX_LOCAL_NODES];
	uint64_t ram_size;
	unsigned remote_distance;
	struct cpuid_features features; /* resolved */
	unsigned nr_caches;
	struct topo_cache caches[TOPO_MAX_CACHES];
	bool stats;
	/* rank 0's clocks (cluster_clock_reference) */
	bool has_tsc_offset;
	int64_t tsc_offset;
	int64_t kvmclock_offset;
	uint32_t tsc_khz;
};

struct cluster;

/*
 * Over an open mesh of CLUSTER_NR_CHANNELS channels (borrowed).  status_fd:
 * -1 or a pipe.  silent_ms: how long an instance may say nothing while the
 * guest runs before it is lost.
 */
struct cluster *cluster_create(struct mesh *mesh, int status_fd, unsigned silent_ms);
void cluster_destroy(struct cluster *c);

/*
 * One line for a launcher, if status_fd: "R connected", "R ready", "R running",
 * "R exit STATUS" (R: this rank).
 */
void cluster_status(struct cluster *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* rank 0: send m to every other instance.  0, or -1 with err. */
int cluster_send_config(struct cluster *c, const struct cluster_machine *m, char *err);
/*
 * rank k: wait for rank 0's machine (timeout_s) and check every field.
 * 0, or -1 with err.  sig_fd: -1, or a descriptor (a signalfd) that ends
 * the wait with -1 when it becomes readable (left unread).
 */
int cluster_recv_config(struct cluster *c, struct cluster_machine *m, unsigned timeout_s,
			int sig_fd, char *err);

/* The hooks the VM must be created with. */
void cluster_vm_hooks(struct cluster *c, struct vm_hooks *h);

/* rank 0: its clocks as the others must copy them (vCPU 0 exists). 0, or -1 with err. */
int cluster_clock_reference(struct vm *vm, struct cluster_machine *m, char *err);

/*
 * The VM exists (its local vCPUs created): plug the remote vCPUs' ports
 * into its APIC bus, the forwarder into its I/O buses (rank k), the proxy
 * threads for remote vCPUs (rank 0).  0, or -1 with a message.
 */
int cluster_attach(struct cluster *c, struct vm *vm);

/* Start the receive threads.  0, or -1 with a message. */
int cluster_start(struct cluster *c);

/*
 * rank k: measure the offsets of rank 0's clocks over the control channel
 * (CL_TIME_SAMPLES round trips, the one of least round-trip time taken) and
 * set this VM's TSC offset and kvmclock so that the guest reads the same
 * time on every instance.  0, or -1 with err.
 */
int cluster_sync_clocks(struct cluster *c, const struct cluster_machine *m, char *err);

/*
 * The guest runs everywhere: from now until cluster_quiesce, an instance
 * silent for silent_ms (stopped, hung, or cut off without its connections
 * closing) is lost.
 */
void cluster_watch(struct cluster *c);

/* rank k: tell rank 0 this instance runs (why NULL) or refuses to (why: the reason). */
int cluster_ready(struct cluster *c, const char *why);
/*
 * rank 0: wait until every instance said ready (timeout_s).  0, or -1 with
 * err (one refused, was lost, the VM was stopped, or took too long, or
 * sig_fd, as for cluster_recv_config, became readable).
 */
int cluster_wait_ready(struct cluster *c, unsigned timeout_s, int sig_fd, char *err);

/*
 * Stop everything because of rank `culprit` (or this rank): print the
 * message, end the VM with VM_STATUS_FAILED and tell the other instances.
 * Any thread.
 */
void cluster_fail(struct cluster *c, unsigned culprit, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Tell the others the VM ends (before the VM exists: set-up failed). Any thread. */
void cluster_stop_all(struct cluster *c, int status, const char *reason);

/* rank 0: did an instance refuse the machine (cluster_wait_ready)? */
bool cluster_refused(struct cluster *c);

/*
 * rank k, set-up failed: wait (at most timeout_s) until rank 0 closes the
 * control connection or says stop, so that rank 0 learns why from our
 * messages before it sees this instance go.
 */
void cluster_linger(struct cluster *c, unsigned timeout_s);

/* Has an instance been lost (or misbehaved)? */
bool cluster_failed(struct cluster *c);

/* Did the VM stop because another instance said so (that one reports why)? */
bool cluster_stopped_by_peer(struct cluster *c);

/*
 * A STOP that arrived before this instance's VM existed: 1 and its status
 * and reason, or 0.
 */
int cluster_setup_stopped(struct cluster *c, int *status, const char **reason);

/*
 * This instance's vCPUs are joined and it is about to stop the DSM with
 * the others: from now on a closed connection is an instance that finished
 * (a loss shows in the DSM's stop), and messages are dropped.
 */
void cluster_quiesce(struct cluster *c);

/*
 * The end, once the vCPUs are joined and the DSM stopped: no message is
 * expected any more.  Stops the proxy threads, shuts the mesh down and joins
 * the receive threads.
 */
void cluster_stop(struct cluster *c);

/* The DSM's on_fatal, with the cluster as arg. */
void cluster_dsm_fatal(void *arg, const char *msg);

/*
 * The DSM over the same mesh: a loss it already reported is not reported
 * twice.  Set it to NULL before destroying the DSM.
 */
void cluster_set_dsm(struct cluster *c, struct dsm *d);

#endif
