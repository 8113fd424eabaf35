/*
 * gvm node: one instance of a VM that spans N instances (vmm/cluster.h).
 * Rank R runs guest NUMA node R: its vCPUs, and the RAM homed there in the
 * DSM; rank 0 also holds the devices and loads the guest.
 */
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "common/log.h"
#include "common/mesh.h"
#include "common/parse.h"
#include "dsm/dsm.h"
#include "vmm/cluster.h"
#include "vmm/cmd.h"
#include "vmm/guest.h"
#include "vmm/host.h"
#include "vmm/job.h"
#include "vmm/node.h"
#include "vmm/options.h"
#include "vmm/ram.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#define NODE_GROUPS (OPTG_MACHINE | OPTG_BOOT | OPTG_RUN | OPTG_NODE | OPTG_JOB)
/* How long instances wait for each other once connected. */
#define NODE_SETUP_TIMEOUT_S 120
/* A vCPU thread that does not end within this after a loss is left to exit(). */
#define NODE_LOST_JOIN_MS 2000
#define NODE_JOIN_MS 20000
/* After a loss, how long an instance stays before its connections close. */
#define NODE_LOST_GRACE_MS 300
/* After a set-up failure, how long rank k waits for rank 0 to leave first. */
#define NODE_LINGER_S 5

static void node_help(FILE *f)
{
	fprintf(f, "usage: gvm node --rank R --peers HOST:PORT,... --vm-id ID [OPTIONS]\n"
		   "                [-- COMMAND [ARGS]...]\n"
		   "\n"
		   "Run one instance of a guest that spans N instances, one per host (the\n"
		   "nodes of a Slurm allocation), N being the length of --peers.  Instance R\n"
		   "runs guest NUMA node R: its share of the vCPUs (pinned to this host's\n"
		   "CPUs) and of the RAM, which the instances share through a distributed\n"
		   "shared memory.  Rank 0 also holds the devices (its standard output is\n"
		   "the guest's console) and loads the guest; only rank 0 reads --kernel,\n"
		   "--image, --initrd and --append, and runs the job (-- COMMAND), as gvm\n"
		   "run does (see gvm help run).  Every instance must be given the same --vm-id\n"
		   "and machine options; rank 0's caches and CPU features are presented by\n"
		   "all.  Links are authenticated with munge: a peer of another VM or user\n"
		   "is refused.\n"
		   "\n"
		   "Every instance exits with the guest's status; %d if the VM failed or\n"
		   "an instance was lost (the message names it), 128+N when stopped by\n"
		   "signal N, 1 when the guest could not be started, 2 for bad options.\n"
		   "\n"
		   "Options:\n", VM_STATUS_FAILED);
	options_help(f, NODE_GROUPS);
}

struct node {
	struct vm_options o;
	struct image img;   /* rank 0: what --image (or a job) boots */
	struct job *job;    /* rank 0: the job, if any */
	char prefix[32];
	struct host *host;
	struct vm_topology *t;
	struct cluster_machine machine;
	unsigned pus[TOPO_MAX_CPUS];
	unsigned first_cpu, nr_cpus;     /* the vCPUs run here */
	struct mesh *mesh;
	struct cluster *cl;
	struct dsm *dsm;
	struct vm *vm;
	bool dsm_started;
	/*
	 * Every instance got its guest part running (rank 0: all said ready;
	 * rank k: it said so): from then on the instances stop the DSM
	 * together; before, one of them may have none to stop.
	 */
	bool all_ready;
	int console_fd;  /* rank 0: the guest's console, when no job has it */
	int fail_status; /* a set-up failure's status, when known */
	int sig_fd;      /* SIGINT and SIGTERM while setting up (signalfd), or -1 */
	int signo;       /* the one that ended the set-up, 0 */
};

/* Did SIGINT or SIGTERM arrive during the set-up?  Its number, or 0. */
static int node_signal(struct node *n)
{
	struct signalfd_siginfo si;

	if (!n->signo && n->sig_fd >= 0 && read(n->sig_fd, &si, sizeof(si)) == sizeof(si))
		n->signo = (int)si.ssi_signo;
	return n->signo;
}

int node_check_options(const struct vm_options *o, const char *cmd)
{
	if (!o->have_rank || !o->nr_peers || !o->have_vm_id) {
		pr_err("%s: --rank, --peers and --vm-id are required (see gvm help node)", cmd);
		return 2;
	}
	if (o->rank >= o->nr_peers) {
		pr_err("%s: --rank %u, but --peers lists %u instance%s (ranks 0 to %u)", cmd, o->rank,
		       o->nr_peers, o->nr_peers > 1 ? "s" : "", o->nr_peers - 1);
		return 2;
	}
	if (o->nr_peers > DSM_MAX_NODES) {
		pr_err("%s: --peers lists %u instances; at most %u are supported", cmd, o->nr_peers,
		       DSM_MAX_NODES);
		return 2;
	}
	if (o->topo.nr_nodes % o->nr_peers) {
		pr_err("%s: --numa %u, but --peers lists %u instances: every instance holds "
		       "the same number of NUMA nodes, so --numa must be a multiple of %u (or "
		       "host)", cmd, o->topo.nr_nodes, o->nr_peers, o->nr_peers);
		return 2;
	}
	/*
	 * Two ranks at one address: the later one would connect to itself (or
	 * to the wrong instance) and fail its handshake with an obscure error.
	 */
	for (unsigned i = 0; i < o->nr_peers; i++)
		for (unsigned j = i + 1; j < o->nr_peers; j++)
			if (o->peers[i].port == o->peers[j].port &&
			    !strcmp(o->peers[i].host, o->peers[j].host)) {
				pr_err("%s: --peers lists %s:%u for rank %u and rank %u: every "
				       "instance needs an address of its own", cmd, o->peers[i].host,
				       o->peers[i].port, i, j);
				return 2;
			}
	if (o->listen && o->listen_fd >= 0) {
		pr_err("%s: --listen and --listen-fd both say where to listen: give one", cmd);
		return 2;
	}
	if (o->listen_fd >= 0 && mesh_local_port(o->listen_fd) < 0) {
		pr_err("%s: --listen-fd %d is not a socket", cmd, o->listen_fd);
		return 2;
	}
	return 0;
}

/* The machine as this instance's options say (rank k: before rank 0's word). */
static int node_build_topology(struct node *n, const struct cluster_machine *m)
{
	struct topo_params p;
	char err[TOPO_ERR_MAX > HOST_ERR_MAX ? TOPO_ERR_MAX : HOST_ERR_MAX];
	unsigned given = n->o.numa_host ? 0 : n->o.topo.nr_nodes;

	p = n->o.topo;
	p.nr_instances = n->o.nr_peers;
	if (!m) {
		if (guest_numa_shape(&n->o, n->host, n->o.nr_peers, &p, "node"))
			return -1;
		/* rank 0 sends them: one instance's host distances, as this host has them */
		memcpy(n->machine.host_distance, p.host_distance, sizeof(p.host_distance));
	}
	p.host = n->host;
	if (m) {
		if (given && given != m->nr_nodes) {
			pr_err("node: --numa %u here, but rank 0 runs the guest with %u NUMA nodes: "
			       "give every instance the same machine options", given,
			       m->nr_nodes);
			return -1;
		}
		p.nr_nodes = m->nr_nodes;
		memcpy(p.host_distance, m->host_distance, sizeof(p.host_distance));
		if (p.nr_cpus && p.nr_cpus != m->nr_cpus) {
			pr_err("node: --vcpus %u here, but rank 0 runs the guest with %u: "
			       "give every instance the same machine options", p.nr_cpus,
			       m->nr_cpus);
			return -1;
		}
		if (p.ram_size && p.ram_size != m->ram_size) {
			pr_err("node: --mem %" PRIu64 " here, but rank 0 runs the guest with "
			       "%" PRIu64 " bytes: give every instance the same machine options",
			       p.ram_size, m->ram_size);
			return -1;
		}
		p.nr_cpus = m->nr_cpus;
		p.ram_size = m->ram_size;
		p.remote_distance = m->remote_distance;
		p.nr_caches = m->nr_caches;
		memcpy(p.caches, m->caches, sizeof(p.caches));
	}
	p.host_nodes = p.nr_nodes / p.nr_instances;
	if (topo_build(&p, n->t, err)) {
		pr_err("node: %s", err);
		return -1;
	}
	n->first_cpu = topo_instance_node(n->t, n->o.rank)->first_cpu;
	n->nr_cpus = n->t->nr_cpus / n->t->nr_instances;
	/* a cluster of mixed nodes: rank 0's shape, on fewer memory domains here */
	if (n->t->nodes_per_instance > host_nr_cpu_nodes(n->host))
		pr_warn("node: this instance holds %u guest NUMA nodes but its host has %u NUMA "
			"nodes with CPUs: some guest nodes share one", n->t->nodes_per_instance,
			host_nr_cpu_nodes(n->host));
	if (n->o.nr_host_cpus && n->o.nr_host_cpus != n->nr_cpus) {
		pr_err("node: --host-cpus lists %u CPUs, but this instance runs %u vCPUs",
		       n->o.nr_host_cpus, n->nr_cpus);
		return -1;
	}
	if (n->o.nr_host_cpus && host_check_cpus(n->o.host_cpus, n->o.nr_host_cpus, err)) {
		pr_err("node: --host-cpus: %s", err);
		return -1;
	}
	return 0;
}

static void dsm_ram_release(struct guest_ram *ram)
{
	free(ram); /* the mapping is the DSM's */
}

/* The DSM region (this node's pages homed here), then the VM over it. */
static int node_create_vm(struct node *n, const struct cpuid_features *features)
{
	const struct vm_topology *t = n->t;
	uint64_t home[TOPO_MAX_NODES + 1];
	struct dsm_config dc;
	struct vm_config vc = { .console_fd = -1, .console_in_fd = -1 };
	struct guest_ram *ram;
	char err[DSM_ERR_MAX > HOST_ERR_MAX ? DSM_ERR_MAX : HOST_ERR_MAX];

	if (n->o.nr_host_cpus) {
		memcpy(n->pus, n->o.host_cpus, n->nr_cpus * sizeof(n->pus[0]));
	} else if (host_choose_pus(n->host, n->nr_cpus, t->nodes_per_instance, n->pus, err)) {
		pr_err("node: cannot choose host CPUs for the vCPUs: %s", err);
		return -1;
	}
	for (unsigned i = 0; i < t->nr_instances; i++)
		home[i] = topo_instance_node(t, i)->ram_offset / DSM_PAGE_SIZE;
	home[t->nr_instances] = t->ram_size / DSM_PAGE_SIZE;
	dsm_config_init(&dc);
	dc.mesh = n->mesh;
	dc.first_channel = CLUSTER_CH_DSM;
	dc.size = t->ram_size;
	dc.home_start = home;
	dc.uffd = n->o.uffd_fd;
	n->o.uffd_fd = -1; /* the DSM's now, whatever happens */
	/* several guest nodes here: the VM places each on its own host node (vm.c) */
	dc.numa_node = t->nodes_per_instance == 1 ? host_pu_node(n->host, n->pus[0]) : -1;
	/*
	 * The others wait this long at the collective stop for an instance
	 * still joining its vCPUs (up to NODE_JOIN_MS): not less, or a slow
	 * join would be taken for a lost instance.
	 */
	dc.stop_timeout_s = NODE_JOIN_MS / 1000 + 10;
	dc.transport = n->o.transport;
	dc.on_fatal = cluster_dsm_fatal;
	dc.arg = n->cl;
	if (dsm_create(&dc, &n->dsm, err)) {
		pr_err("node: guest RAM: %s", err);
		return -1;
	}
	/* Which provider and interface a fabric gave is the user's to know: it is the speed. */
	if (n->o.transport && strcmp(n->o.transport, "tcp"))
		pr_info("node: guest RAM's pages go over %s", dsm_transport_describe(n->dsm));
	cluster_set_dsm(n->cl, n->dsm);
	if (dsm_start(n->dsm, err)) {
		pr_err("node: guest RAM: %s", err);
		return -1;
	}
	n->dsm_started = true;

	ram = calloc(1, sizeof(*ram));
	if (!ram)
		die("out of memory");
	ram->base = dsm_addr(n->dsm);
	ram->size = dsm_size(n->dsm);
	ram->release = dsm_ram_release;

	if (n->o.rank == 0) {
		vc.console_fd = n->job ? job_console_fd(n->job) : n->console_fd;
		vc.console_in_fd = n->job ? -1 : STDIN_FILENO;
	}
	vc.stats = n->o.stats;
	vc.report_silence_s = n->o.report_silence;
	vc.host = n->host;
	vc.cpu_features = *features;
	vc.kvm_fd = n->o.kvm_fd;
	n->o.kvm_fd = -1; /* the VM's now */
	vc.first_cpu = n->first_cpu;
	vc.nr_cpus = n->nr_cpus;
	vc.host_pus = n->pus;
	vc.no_devices = n->o.rank != 0;
	vc.ram_bound = t->nodes_per_instance == 1;
	cluster_vm_hooks(n->cl, &vc.hooks);
	n->vm = vm_create(t, ram, &vc);
	if (!n->vm)
		return -1;
	if (vm_create_machine(n->vm) || cluster_attach(n->cl, n->vm))
		return -1;
	return 0;
}

/* Rank 0: the image and the job, checked, and the job's payload written. */
static int node_prepare_guest(struct node *n)
{
	char err[JOB_ERR_MAX];
	struct job_env env = { .nodes = n->o.nr_peers, .topo = n->t, .vm_id = n->o.vm_id };

	if (guest_prepare(&n->o, n->host, n->t->ram_size, &n->img, "node"))
		return -1;
	/* a launcher (it passes --status-fd) has said it already */
	if (n->o.status_fd < 0)
		guest_warn_shadow_paging(&n->o, n->host, n->o.nr_peers, "node");
	if (!n->o.job_argv)
		return 0;
	n->job = job_create(&n->o, &env, err);
	if (!n->job || job_add_payload(n->job, &n->o, err)) {
		pr_err("node: %s", err);
		return -1;
	}
	return 0;
}

/* Rank 0: decide the machine, build it, tell the others, wait for them, boot. */
static int node_setup_rank0(struct node *n)
{
	struct cluster_machine *m = &n->machine;
	char err[CLUSTER_ERR_MAX];
	const char *why;

	if (node_build_topology(n, NULL))
		return -1;
	m->nr_cpus = n->t->nr_cpus;
	m->nr_nodes = n->t->nr_nodes; /* and host_distance, set by node_build_topology */
	m->ram_size = n->t->ram_size;
	m->remote_distance = n->o.topo.remote_distance;
	m->features = n->o.features;
	cpuid_features_resolve(&m->features, host_kernel_emulated(n->host, &why), n->t->x2apic);
	m->nr_caches = n->t->nr_caches;
	memcpy(m->caches, n->t->caches, sizeof(m->caches));
	m->stats = n->o.stats;
	if (node_create_vm(n, &m->features))
		return -1;
	if (cluster_clock_reference(n->vm, m, err)) {
		pr_err("node: %s", err);
		return -1;
	}
	if (cluster_send_config(n->cl, m, err)) {
		pr_err("node: %s", err);
		return -1;
	}
	if (cluster_start(n->cl))
		return -1;
	if (cluster_wait_ready(n->cl, NODE_SETUP_TIMEOUT_S, n->sig_fd, err)) {
		if (node_signal(n))
			return -1;
		if (cluster_refused(n->cl))
			n->fail_status = 1;
		if (!cluster_failed(n->cl) || n->fail_status) /* a loss is reported already */
			pr_err("node: %s", err);
		return -1;
	}
	n->all_ready = true;
	cluster_status(n->cl, "ready");
	cluster_watch(n->cl);
	if ((n->job && job_attach(n->job, n->vm)) || guest_load(n->vm, &n->o, "node") ||
	    vm_start(n->vm))
		return -1;
	cluster_status(n->cl, "running");
	return 0;
}

/* Rank k: rank 0's machine, then this node's part of it, then ready. */
static int node_setup_rank_k(struct node *n)
{
	char err[CLUSTER_ERR_MAX];

	if (cluster_recv_config(n->cl, &n->machine, n->o.connect_timeout + NODE_SETUP_TIMEOUT_S,
				n->sig_fd, err)) {
		if (!node_signal(n))
			pr_err("node: %s", err);
		return -1;
	}
	if (node_build_topology(n, &n->machine) || node_create_vm(n, &n->machine.features)) {
		cluster_ready(n->cl, "cannot build its part of the machine (see its messages)");
		return -1;
	}
	if (cluster_start(n->cl))
		return -1;
	if (cluster_sync_clocks(n->cl, &n->machine, err)) {
		if (!vm_stopping(n->vm)) { /* else another instance stopped us, and says why */
			pr_err("node: %s", err);
			cluster_ready(n->cl, err);
		}
		return -1;
	}
	if (vm_start(n->vm)) {
		cluster_ready(n->cl, "cannot start its vCPUs");
		return -1;
	}
	cluster_status(n->cl, "ready");
	n->all_ready = true;
	cluster_ready(n->cl, NULL);
	cluster_watch(n->cl);
	cluster_status(n->cl, "running");
	return 0;
}

static void node_print_stats(struct node *n)
{
	struct dsm_stats st;
	struct rusage ru;
	struct timespec now;
	double secs, vcpu_secs, fault_s;
	uint64_t nfaults = 0;
	char share[32];

	vm_print_stats(n->vm, stderr, n->prefix);
	dsm_get_stats(n->dsm, &st);
	clock_gettime(CLOCK_MONOTONIC, &now);
	secs = (now.tv_sec - n->vm->started.tv_sec) + (now.tv_nsec - n->vm->started.tv_nsec) / 1e9;
	vcpu_secs = secs * n->nr_cpus;
	fault_s = st.fault_us / 1e6;
	for (unsigned i = 0; i < DSM_LAT_BUCKETS; i++)
		nfaults += st.lat_hist[i];
	fprintf(stderr, "%s: stats: dsm: faults read %" PRIu64 " write %" PRIu64 " upgrade %"
		PRIu64 " zero %" PRIu64 " local %" PRIu64 "; pages in %" PRIu64 " out %" PRIu64
		" prefetched %" PRIu64 "; invalidations %" PRIu64 "\n", n->prefix,
		st.faults[DSM_FAULT_READ], st.faults[DSM_FAULT_WRITE], st.faults[DSM_FAULT_UPGRADE],
		st.faults[DSM_FAULT_ZERO], st.faults[DSM_FAULT_LOCAL], st.pages_received,
		st.pages_sent, st.prefetched, st.invalidations);
	fprintf(stderr, "%s: stats: dsm: fault time %.3f s over %" PRIu64 " faults, %.2f%% of "
		"%.3f vCPU-seconds\n", n->prefix, fault_s, nfaults,
		vcpu_secs > 0 ? 100.0 * fault_s / vcpu_secs : 0.0, vcpu_secs);
	getrusage(RUSAGE_SELF, &ru);
	fprintf(stderr, "%s: stats: peak RSS %.1f MiB, guest RAM share %s\n", n->prefix,
		ru.ru_maxrss / 1024.0,
		format_size(n->t->ram_size / n->t->nr_instances, share, sizeof(share)));
}

/*
 * Blocked in every thread: vm_wait_stop takes them once the guest runs, and
 * until then the set-up's waits watch n->sig_fd, so that Ctrl-C or a
 * scheduler's SIGTERM ends a set-up stuck on another instance at once.
 */
static void node_block_signals(struct node *n)
{
	sigset_t sigs;

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	vcpu_signal_setup();
	n->sig_fd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
	if (n->sig_fd < 0)
		pr_warn("signalfd: %s; a signal will not end the set-up", strerror(errno));
}

/* After a loss, or when something would not end: leave, the kernel frees the rest. */
static noreturn void node_leave(struct node *n, int status)
{
	cluster_status(n->cl, "exit %d", status);
	fflush(stderr);
	_exit(status);
}

int node_run(struct vm_options *o, int console_fd)
{
	struct node *n = calloc(1, sizeof(*n));
	char err[MESH_ERR_MAX];
	struct mesh_config mc;
	int r, status = 1;
	bool lost;

	if (!n || !(n->t = malloc(sizeof(*n->t))))
		die("out of memory");
	n->sig_fd = -1;
	n->o = *o; /* ours now, to release */
	n->console_fd = console_fd >= 0 ? console_fd : STDOUT_FILENO;
	if ((r = node_check_options(&n->o, "node"))) {
		status = r;
		goto out_opts;
	}
	snprintf(n->prefix, sizeof(n->prefix), "gvm rank %u", n->o.rank);
	log_init(n->prefix);
	n->host = host_open(err);
	if (!n->host) {
		pr_err("node: cannot read this host's topology: %s", err);
		goto out_opts;
	}
	/* what can be checked before connecting, so bad input starts nothing */
	if (n->o.rank == 0)
		guest_default_ram(&n->o, n->host, n->o.nr_peers, "node");
	if (node_build_topology(n, NULL))
		goto out_host;
	if (n->o.rank == 0 && node_prepare_guest(n))
		goto out_host;

	/*
	 * Not at our own entry of --peers: the name others reach us by may
	 * resolve to loopback here (Debian's /etc/hosts maps the host's name
	 * to 127.0.1.1), or to one of several addresses.
	 */
	if (n->o.listen_fd < 0) {
		struct hostport at = { .port = n->o.peers[n->o.rank].port };

		if (n->o.listen)
			snprintf(at.host, sizeof(at.host), "%s", n->o.listen);
		n->o.listen_fd = mesh_listen(&at, err);
		if (n->o.listen_fd < 0) {
			pr_err("node: %s", err);
			goto out_host;
		}
	}
	mc = (struct mesh_config){
		.rank = n->o.rank, .nr_nodes = n->o.nr_peers, .nr_channels = CLUSTER_NR_CHANNELS,
		.peers = n->o.peers, .listen_fd = n->o.listen_fd, .vm_id = n->o.vm_id,
		.munge_socket = n->o.munge_socket, .timeout_ms = n->o.connect_timeout * 1000,
		.peer_timeout_ms = n->o.peer_timeout * 1000, .integrity = n->o.integrity,
	};
	n->o.listen_fd = -1; /* mesh_open closes it */
	if (mesh_open(&mc, &n->mesh, err)) {
		pr_err("node: %s", err);
		goto out_host;
	}
	/* Before any other thread: they all inherit the mask (vm_wait_stop takes them). */
	node_block_signals(n);
	n->cl = cluster_create(n->mesh, n->o.status_fd, n->o.peer_timeout * 1000);
	cluster_status(n->cl, "connected");
	if (n->o.integrity)
		pr_info("node: every message between instances is checked (--integrity)");

	if (n->o.rank == 0 ? node_setup_rank0(n) : node_setup_rank_k(n)) {
		int st;
		const char *why;

		/* tell the others, unless one of them is the cause */
		if (node_signal(n)) {
			char reason[64];

			status = VM_STATUS_SIGNAL_BASE + n->signo;
			snprintf(reason, sizeof(reason), "stopped by %s", strsignal(n->signo));
			pr_err("%s", reason);
			cluster_stop_all(n->cl, status, reason);
		} else if (n->fail_status) {
			status = n->fail_status;
			cluster_stop_all(n->cl, status, "an instance could not start the guest");
		} else if (cluster_failed(n->cl)) {
			status = VM_STATUS_FAILED;
		} else if (cluster_setup_stopped(n->cl, &st, &why)) {
			status = st;
		} else if (n->vm && vm_stopping(n->vm)) {
			status = n->vm->exit_status;
		} else {
			status = 1;
			cluster_stop_all(n->cl, 1, "an instance could not start the guest");
		}
		if (n->vm)
			vm_stop(n->vm, status, NULL);
		/* rank k: rank 0 leaves first, so that it hears why before it sees us go */
		if (n->o.rank && !n->all_ready)
			cluster_linger(n->cl, NODE_LINGER_S);
		goto out_shutdown;
	}

	vm_wait_stop(n->vm);
	status = n->vm->exit_status;
	lost = cluster_failed(n->cl) || dsm_error(n->dsm);
	if (vm_join(n->vm, lost ? NODE_LOST_JOIN_MS : NODE_JOIN_MS)) {
		pr_err("node: a vCPU thread did not stop; leaving");
		node_leave(n, lost ? status : VM_STATUS_FAILED);
	}
	/*
	 * Where the end came from says why; a failure is repeated by everyone
	 * else too, so that each instance's log names the culprit.
	 */
	if (n->vm->exit_reason[0] &&
	    (cluster_stopped_by_peer(n->cl) ? status == VM_STATUS_FAILED : !cluster_failed(n->cl))) {
		if (status == 0)
			pr_info("%s", n->vm->exit_reason);
		else
			pr_err("%s", n->vm->exit_reason);
	}
out_shutdown:
	lost = cluster_failed(n->cl) || (n->dsm && dsm_error(n->dsm));
	if (n->vm && vm_join(n->vm, lost ? NODE_LOST_JOIN_MS : NODE_JOIN_MS))
		node_leave(n, status);
	/* collective: returns once every instance has stopped using the memory */
	cluster_quiesce(n->cl);
	if (n->dsm_started && n->all_ready && !lost && dsm_stop(n->dsm)) {
		lost = true;
		if (!status)
			status = VM_STATUS_FAILED;
	}
	if (n->vm && n->vm->started.tv_sec && (n->o.stats || n->machine.stats))
		node_print_stats(n);
	if (n->job && n->all_ready)
		status = job_finish(n->job, status, n->vm->exit_reason[0] && status);
	/*
	 * After a loss the others are stopping too, told why by our STOP: a
	 * moment for them to read it before our connections close, or they
	 * would see this instance go first and blame it.
	 */
	if (lost)
		usleep(NODE_LOST_GRACE_MS * 1000);
	/* the DSM's threads end before the mesh goes down under them */
	cluster_set_dsm(n->cl, NULL);
	dsm_destroy(n->dsm);
	n->dsm = NULL;
	cluster_stop(n->cl);
	cluster_status(n->cl, "exit %d", status);
	vm_destroy(n->vm);
	cluster_destroy(n->cl);
	mesh_close(n->mesh);
out_host:
	job_destroy(n->job);
	host_close(n->host);
out_opts:
	if (n->sig_fd >= 0)
		close(n->sig_fd);
	if (n->o.listen_fd >= 0)
		close(n->o.listen_fd);
	if (n->o.kvm_fd >= 0)
		close(n->o.kvm_fd);
	if (n->o.uffd_fd >= 0)
		close(n->o.uffd_fd);
	options_free(&n->o);
	free(n->t);
	/* the log's prefix was n->prefix: the program's own again, before n goes */
	log_init("gvm");
	free(n);
	return status;
}

static int node_main(int argc, char **argv)
{
	struct vm_options o;
	int r = options_parse(argc, argv, NODE_GROUPS, &o);

	if (r) {
		options_free(&o);
		if (r > 0) {
			node_help(stdout);
			return 0;
		}
		return 2;
	}
	return node_run(&o, -1);
}

const struct gvm_cmd cmd_node = {
	.name = "node",
	.summary = "run one instance of a guest that spans several hosts",
	.main = node_main,
	.help = node_help,
};
