/*
 * vmm/cluster*.c against a forged peer, in one process: a real two-node
 * mesh over loopback (real munge), one end a cluster instance, the other
 * end this test writing frames on the mesh's connections by hand.
 *
 * - Rank k's checks of rank 0's machine description (cluster_recv_config):
 *   each field of CONFIG out of range, a frame that is no CONFIG, a STOP
 *   instead, nothing within the time, a signal, rank 0 gone.
 * - Messages that reach an instance's receive threads before it has a VM
 *   (the set-up): a STOP, a malformed message, an I/O reply nobody awaits,
 *   a clock sample nobody asked for, a clock lead; and rank 0 waiting for
 *   READYs that do not come.
 *
 * - A peer that does not read: sends do not block, and arrive in order;
 *   past the send queue's cap the peer is lost.
 *
 * Each case checks the status and the reason the instance keeps, the STOP
 * it sends the others, and that it closes the offending connection.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/mesh.h"
#include "common/wire.h"
#include "tests/lib/check.h"
#include "tests/lib/mesh-pair.h"
#include "vmm/cluster-internal.h"
#include "vmm/cluster.h"
#include "vmm/iobus.h"
#include "vmm/vm.h"

/* The forged peer: a frame from rank `from` on its connection of channel ch. */
static void forge(struct mesh_pair *p, unsigned from, unsigned ch, uint16_t type, uint64_t a0,
		  uint64_t a1, uint64_t a2, const void *payload, uint32_t len)
{
	struct wire_hdr h = wire_hdr_make(type, from, len);

	h.arg[0] = a0;
	h.arg[1] = a1;
	h.arg[2] = a2;
	CHECK(wire_send(mesh_fd(p->m[from], 1 - from, ch), &h, payload) == 0);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The forged peer reads its control connection (heartbeats and all) until
 * the instance's STOP, then, with wait_close, until it closes the
 * connection; 30 s at most.  Returns the STOP's status (-1: none), its
 * reason in reason.
 */
static int read_stop(struct mesh_pair *p, unsigned me, bool wait_close, char *reason, size_t size,
		     bool *closed)
{
	int fd = mesh_fd(p->m[me], 1 - me, CLUSTER_CH_CTRL), status = -1;
	uint64_t end = now_ms() + 30000;
	char buf[CL_RXBUF], why[128];
	struct wire_hdr h;

	*closed = false;
	reason[0] = '\0';
	while (now_ms() < end) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		if (poll(&pfd, 1, 100) <= 0)
			continue;
		if (wire_recv(fd, (int)(1 - me), &h, buf, sizeof(buf) - 1, why)) {
			*closed = true;
			break;
		}
		if (h.type == CL_STOP) {
			status = (int)h.arg[0];
			buf[h.len] = '\0';
			snprintf(reason, size, "%s", buf);
			if (!wait_close)
				break;
		}
	}
	return status;
}

/* ---- rank k: rank 0's machine ---- */

static struct cl_config good_config(void)
{
	return (struct cl_config){
		.magic = CL_CONFIG_MAGIC, .version = CL_CONFIG_VERSION, .nr_nodes = 2,
		.nr_cpus = 4, .ram_size = 2 * TOPO_NODE_ALIGN, .remote_distance = 20,
		.features_base = CPUID_BASE_HOST, .nr_caches = 1,
		.caches = { { .level = 2, .type = 3, .line_size = 64, .ways = 8, .size = 1 << 20 } },
		.tsc_khz = 2000000,
	};
}

static void expect_config_error(struct cluster *c, const char *what, const char *expect)
{
	struct cluster_machine m;
	char err[CLUSTER_ERR_MAX] = "";

	CHECK(cluster_recv_config(c, &m, 10, -1, err) == -1);
	CHECK(strstr(err, expect) != NULL);
	if (!strstr(err, expect))
		fprintf(stderr, "%s: \"%s\", expected \"%s\"\n", what, err, expect);
}

static void test_config_checks(void)
{
	struct cluster_machine m;
	char err[CLUSTER_ERR_MAX];
	struct cl_config cfg;
	struct cluster *c;
	struct mesh_pair p;
	int sig[2];

	CHECK(mesh_pair_open(&p, 2, CLUSTER_NR_CHANNELS, 4712, NULL) == 0);
	c = cluster_create(p.m[1], -1, 30000);
#define BAD_CONFIG(field, value, expect) \
	do { \
		cfg = good_config(); \
		cfg.field = value; \
		forge(&p, 0, CLUSTER_CH_CTRL, CL_CONFIG, 0, 0, 0, &cfg, sizeof(cfg)); \
		expect_config_error(c, #field, expect); \
	} while (0)
	BAD_CONFIG(magic, 0x12345678, "rank 0 speaks another version of gvm (machine description "
				      "0x12345678 version 2");
	BAD_CONFIG(version, 3, "version 3, this is version 2");
	BAD_CONFIG(nr_nodes, 3, "rank 0 describes 3 NUMA nodes for 2 instances");
	BAD_CONFIG(nr_nodes, 0, "rank 0 describes 0 NUMA nodes for 2 instances");
	BAD_CONFIG(nr_nodes, 2 * (TOPO_MAX_LOCAL_NODES + 1),
		   "rank 0 describes 18 NUMA nodes for 2 instances");
	BAD_CONFIG(nr_cpus, 0, "rank 0 describes 0 vCPUs for 2 NUMA nodes");
	BAD_CONFIG(nr_cpus, 3, "rank 0 describes 3 vCPUs for 2 NUMA nodes");
	BAD_CONFIG(nr_cpus, TOPO_MAX_CPUS + 1, "describes 1025 vCPUs");
	BAD_CONFIG(ram_size, 0, "rank 0 describes 0 bytes of RAM for 2 NUMA nodes");
	BAD_CONFIG(ram_size, 2 * TOPO_NODE_ALIGN + 2, "bytes of RAM for 2 NUMA nodes");
	BAD_CONFIG(ram_size, 3 * TOPO_NODE_ALIGN, "bytes of RAM for 2 NUMA nodes");
	BAD_CONFIG(features_base, 7, "rank 0 describes an unknown CPU feature set 7");
	BAD_CONFIG(features_add[CPUID_FEATURE_WORDS - 1], 1ull << 63,
		   "rank 0's CPU features: feature number");
	BAD_CONFIG(nr_caches, TOPO_MAX_CACHES + 1, "rank 0 describes 5 caches");
	BAD_CONFIG(flags, 6, "rank 0's machine has unknown flags 0x6");
	BAD_CONFIG(stats, 2, "rank 0's machine is malformed (stats 2, TSC 2000000 kHz)");
	BAD_CONFIG(tsc_khz, 0, "rank 0's machine is malformed (stats 0, TSC 0 kHz)");
	BAD_CONFIG(tsc_khz, 100000001, "TSC 100000001 kHz");
#undef BAD_CONFIG
	/* the frame around it */
	cfg = good_config();
	forge(&p, 0, CLUSTER_CH_CTRL, CL_CONFIG, 0, 0, 0, &cfg, sizeof(cfg) - 8);
	expect_config_error(c, "short", "rank 0 (127.0.0.1:");
	forge(&p, 0, CLUSTER_CH_CTRL, CL_CONFIG, 0, 0, 0, &cfg, sizeof(cfg) - 8);
	expect_config_error(c, "short", "sent a malformed machine description (type 0x200, ");
	forge(&p, 0, CLUSTER_CH_CTRL, CL_CONFIG, 1, 0, 0, &cfg, sizeof(cfg));
	expect_config_error(c, "argument", "sent a malformed machine description (type 0x200");
	forge(&p, 0, CLUSTER_CH_CTRL, CL_HEARTBEAT, 0, 0, 0, NULL, 0);
	expect_config_error(c, "heartbeat", "machine description (type 0x20b, 0 bytes)");
	forge(&p, 0, CLUSTER_CH_CTRL, CL_STOP, 1, 0, 0, "no\x01way", 6);
	expect_config_error(c, "stop", "rank 0 stopped: no?way");

	/* and a good one: the machine as described, two NUMA nodes per instance */
	cfg = good_config();
	cfg.flags = CL_CFG_TSC_OFFSET;
	cfg.tsc_offset = -5;
	cfg.nr_nodes = 4;
	cfg.ram_size = 4 * TOPO_NODE_ALIGN;
	cfg.host_distance[0][1] = cfg.host_distance[1][0] = 21;
	forge(&p, 0, CLUSTER_CH_CTRL, CL_CONFIG, 0, 0, 0, &cfg, sizeof(cfg));
	CHECK(cluster_recv_config(c, &m, 10, -1, err) == 0);
	CHECK(m.nr_nodes == 4 && m.host_distance[0][1] == 21 && m.host_distance[1][0] == 21);
	CHECK(m.nr_cpus == 4 && m.ram_size == 4 * TOPO_NODE_ALIGN && m.nr_caches == 1 &&
	      m.caches[0].size == 1 << 20 && m.has_tsc_offset && m.tsc_offset == -5 &&
	      m.tsc_khz == 2000000 && m.remote_distance == 20);

	/* nothing within the time; a signal; rank 0 gone */
	CHECK(cluster_recv_config(c, &m, 1, -1, err) == -1);
	CHECK(strstr(err, "rank 0 (127.0.0.1:") && strstr(err, "sent no machine description "
							      "within 1 s"));
	CHECK(pipe(sig) == 0);
	CHECK(write(sig[1], "x", 1) == 1);
	CHECK(cluster_recv_config(c, &m, 10, sig[0], err) == -1);
	CHECK(strstr(err, "interrupted by a signal") != NULL);
	close(sig[0]);
	close(sig[1]);
	shutdown(mesh_fd(p.m[0], 1, CLUSTER_CH_CTRL), SHUT_RDWR);
	CHECK(cluster_recv_config(c, &m, 10, -1, err) == -1);
	CHECK(strstr(err, "lost before it described the machine") != NULL);
	if (!strstr(err, "lost before"))
		fprintf(stderr, "lost: \"%s\"\n", err);
	cluster_destroy(c);
	mesh_pair_close(&p);
}

/* ---- before the VM: the receive threads ---- */

/*
 * An instance of rank `rank` with its receive threads running and no VM
 * yet; the forged peer sends one frame on channel ch.  The instance's
 * set-up must stop with `status` and a reason containing `expect`.
 */
static void expect_setup_stop(unsigned rank, unsigned ch, uint16_t type, uint64_t a0, uint64_t a1,
			      uint64_t a2, const void *payload, uint32_t len, int status,
			      const char *expect)
{
	unsigned peer = 1 - rank;
	struct cluster *c;
	const char *reason = "";
	char sent[CL_REASON_MAX + 1];
	uint64_t end;
	bool closed;
	int st = -1, stopped = 0;
	struct mesh_pair p;

	if (mesh_pair_open(&p, 2, CLUSTER_NR_CHANNELS, 4712, NULL))
		return;
	c = cluster_create(p.m[rank], -1, 30000);
	CHECK(cluster_start(c) == 0);
	forge(&p, peer, ch, type, a0, a1, a2, payload, len);
	for (end = now_ms() + 30000; now_ms() < end; usleep(1000))
		if ((stopped = cluster_setup_stopped(c, &st, &reason)))
			break;
	CHECK(stopped);
	CHECK_EQ(st, status);
	CHECK(strstr(reason, expect) != NULL);
	if (!strstr(reason, expect))
		fprintf(stderr, "set-up stopped (%d): \"%s\", expected \"%s\"\n", st, reason,
			expect);
	if (status == VM_STATUS_FAILED) {
		/* the instance told the others, and closed the offender's connection */
		CHECK(cluster_failed(c));
		CHECK_EQ(read_stop(&p, peer, ch == CLUSTER_CH_CTRL, sent, sizeof(sent), &closed),
			 VM_STATUS_FAILED);
		CHECK(strstr(sent, expect) != NULL);
		if (ch == CLUSTER_CH_CTRL)
			CHECK(closed);
	} else {
		CHECK(!cluster_failed(c));
	}
	cluster_destroy(c);
	mesh_pair_close(&p);
}

static void test_before_the_vm(void)
{
	int64_t step = 0;

	/* rank 0 stops the VM before rank 1 has one: the reason it gave is kept */
	expect_setup_stop(1, CLUSTER_CH_CTRL, CL_STOP, 3, 0, 0, "bye", 3, 3, "rank 0: bye");
	expect_setup_stop(1, CLUSTER_CH_CTRL, CL_STOP, 4, 0, 0, NULL, 0, 4, "rank 0: stopped");
	/* malformed: the set-up fails naming the sender */
	expect_setup_stop(1, CLUSTER_CH_CTRL, CL_HEARTBEAT, 1, 0, 0, NULL, 0, VM_STATUS_FAILED,
			  "sent a malformed message: malformed heartbeat");
	{
		/* flags and sequence are the wire's, never set by an instance */
		struct mesh_pair p;
		struct cluster *c;
		struct wire_hdr h = wire_hdr_make(CL_HEARTBEAT, 0, 0);
		const char *reason = "";
		uint64_t end;
		int st;

		CHECK(mesh_pair_open(&p, 2, CLUSTER_NR_CHANNELS, 4712, NULL) == 0);
		c = cluster_create(p.m[1], -1, 30000);
		CHECK(cluster_start(c) == 0);
		h.flags = 1;
		CHECK(wire_send(mesh_fd(p.m[0], 1, CLUSTER_CH_CTRL), &h, NULL) == 0);
		for (end = now_ms() + 30000; now_ms() < end; usleep(1000))
			if (cluster_setup_stopped(c, &st, &reason))
				break;
		CHECK(strstr(reason, "sent a malformed message: message 0x20b with flags 0x1 "
				     "sequence 0") != NULL);
		cluster_destroy(c);
		mesh_pair_close(&p);
	}
	/* rank k: an I/O reply for a vCPU it does not run, a clock sample it did not ask for */
	expect_setup_stop(1, CLUSTER_CH_IO, CL_IO_REPLY, 0, 0, 0, NULL, 0, VM_STATUS_FAILED,
			  "sent a malformed message: I/O reply for vCPU 0 (claimed 0)");
	expect_setup_stop(1, CLUSTER_CH_CTRL, CL_TIME_PONG, 5, 1, 1, &step, sizeof(step),
			  VM_STATUS_FAILED, "an unrequested clock sample (5, step 0)");
	/* rank 0: a clock lead before it has a VM (and so a clock) to step */
	expect_setup_stop(0, CLUSTER_CH_CTRL, CL_TIME_LEAD, 100, 0, 0, NULL, 0, VM_STATUS_FAILED,
			  "a clock lead before the VM exists");
}

/* Rank 0 waits for READYs that do not come: it says how many are missing. */
static void test_wait_ready(void)
{
	char err[CLUSTER_ERR_MAX] = "";
	struct cluster *c;
	struct mesh_pair p;

	CHECK(mesh_pair_open(&p, 2, CLUSTER_NR_CHANNELS, 4712, NULL) == 0);
	c = cluster_create(p.m[0], -1, 30000);
	CHECK(cluster_start(c) == 0);
	/* rank 0 answers to no one: nothing to send, and nobody to linger for */
	CHECK(cluster_ready(c, NULL) == -EINVAL);
	cluster_linger(c, 30);
	CHECK(cluster_wait_ready(c, 1, -1, err) == -1);
	CHECK(strstr(err, "1 of 1 instances not ready after 1 s") != NULL);
	if (!strstr(err, "not ready"))
		fprintf(stderr, "wait_ready: \"%s\"\n", err);
	cluster_destroy(c);
	mesh_pair_close(&p);
}

/* ---- with a VM: I/O forwarding ---- */

/*
 * What cluster_attach and the I/O paths use of a VM, without KVM: its
 * topology (vCPU 0 on rank 0, vCPU 1 on rank 1, nr_nodes NUMA nodes), its
 * buses and its end (vm_stop, with the cluster's hooks).
 */
static struct vm *fake_vm(struct cluster *c, unsigned nr_nodes)
{
	struct vm *vm = calloc(1, sizeof(*vm));

	CHECK(vm != NULL);
	vm->kvm_fd = vm->vm_fd = -1; /* no KVM: what would ask it fails */
	vm->topo.nr_nodes = vm->topo.nr_instances = nr_nodes;
	vm->topo.nodes_per_instance = 1;
	vm->topo.nr_cpus = 2;
	vm->topo.cpus[0] = (struct topo_cpu){ .apic_id = 0, .node = 0 };
	vm->topo.cpus[1] = (struct topo_cpu){ .apic_id = 1, .node = 1, .package = 1 };
	io_bus_init(&vm->pio, "port");
	io_bus_init(&vm->mmio, "mmio");
	pthread_mutex_init(&vm->stop_lock, NULL);
	vm->stop_fd = eventfd(0, EFD_CLOEXEC);
	cluster_vm_hooks(c, &vm->cfg.hooks);
	return vm;
}

static void fake_vm_free(struct vm *vm)
{
	io_bus_destroy(&vm->pio);
	io_bus_destroy(&vm->mmio);
	pthread_mutex_destroy(&vm->stop_lock);
	close(vm->stop_fd);
	free(vm);
}

/* A VM of 2 NUMA nodes attached to c, c started. */
static struct vm *fake_vm_started(struct cluster *c)
{
	struct vm *vm = fake_vm(c, 2);

	CHECK_EQ(cluster_attach(c, vm), 0);
	CHECK(cluster_start(c) == 0);
	return vm;
}

/* Until the VM stops (10 s at most); then whether its reason holds expect. */
static bool vm_stopped_for(struct vm *vm, int status, const char *expect)
{
	for (uint64_t end = now_ms() + 10000; !vm_stopping(vm) && now_ms() < end;)
		usleep(1000);
	if (!vm_stopping(vm) || vm->exit_status != status || !strstr(vm->exit_reason, expect)) {
		fprintf(stderr, "VM %s (%d): \"%s\", expected \"%s\"\n",
			vm_stopping(vm) ? "stopped" : "still running", vm->exit_status,
			vm->exit_reason, expect);
		return false;
	}
	return true;
}

/* A port read of vCPU 1 at 0x80, on rank 1: dispatched (so forwarded) in its own thread. */
struct io_read {
	struct vm *vm;
	pthread_t thread;
	uint8_t data;
	bool claimed;
	atomic_bool done;
};

static void *io_read_thread(void *arg)
{
	struct io_read *r = arg;
	struct io_access a = { .addr = 0x80, .len = 1, .cpu = 1, .data = &r->data };

	r->claimed = io_bus_dispatch(&r->vm->pio, &a);
	atomic_store(&r->done, true);
	return NULL;
}

/* The forged rank 0 reads the next message rank 1 sends on its I/O connection. */
static bool read_io_req(struct mesh_pair *p, struct wire_hdr *h)
{
	int fd = mesh_fd(p->m[0], 1, CLUSTER_CH_IO);
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char why[128];

	return poll(&pfd, 1, 10000) == 1 && wire_recv(fd, 1, h, NULL, 0, why) == 0;
}

/*
 * Rank 1 forwards a port access to rank 0 and waits for the reply; a STOP
 * from rank 0 meanwhile ends the wait (the read yields all ones, as from an
 * empty bus), and once the VM stops nothing more is forwarded.  A reply
 * that crossed the STOP is dropped, not taken for a malformed message.
 */
static void test_io_forward_stopped(void)
{
	struct io_read r = { 0 };
	char text[1024];
	FILE *log;
	int saved;
	struct mesh_pair p;
	struct cluster *c;
	struct wire_hdr h;
	struct vm *vm;

	CHECK(mesh_pair_open(&p, 2, CLUSTER_NR_CHANNELS, 4712, NULL) == 0);
	c = cluster_create(p.m[1], -1, 30000);
	vm = fake_vm(c, 3);
	CHECK_EQ(cluster_attach(c, vm), -1); /* 3 instances' guest over 2 */
	vm->topo.nr_nodes = vm->topo.nr_instances = 2;
	CHECK_EQ(cluster_attach(c, vm), 0);
	CHECK(cluster_start(c) == 0);

	r.vm = vm;
	CHECK(pthread_create(&r.thread, NULL, io_read_thread, &r) == 0);
	CHECK(read_io_req(&p, &h));
	CHECK(h.type == CL_IO_REQ && h.arg[0] == (1 | 1u << 16) && h.arg[1] == 0x80);
	usleep(20 * 1000);
	CHECK(!atomic_load(&r.done)); /* waiting for the reply */
	forge(&p, 0, CLUSTER_CH_CTRL, CL_STOP, 3, 0, 0, "bye", 3);
	pthread_join(r.thread, NULL);
	CHECK(!r.claimed && r.data == 0xff);
	CHECK(vm_stopped_for(vm, 3, "rank 0: bye"));

	/* stopped: not even sent */
	r = (struct io_read){ .vm = vm, .data = 0 };
	io_read_thread(&r);
	CHECK(!r.claimed && r.data == 0xff);

	/*
	 * The late reply is dropped: the instance fails (and says so, once)
	 * only for the bad one after it.
	 */
	fflush(stderr);
	saved = dup(2);
	log = tmpfile();
	CHECK(saved >= 0 && log && dup2(fileno(log), 2) == 2);
	forge(&p, 0, CLUSTER_CH_IO, CL_IO_REPLY, 1, 1, 0x42, NULL, 0);
	forge(&p, 0, CLUSTER_CH_IO, CL_IO_REPLY, 1, 2, 0, NULL, 0);
	for (uint64_t end = now_ms() + 10000; !cluster_failed(c) && now_ms() < end;)
		usleep(1000);
	dup2(saved, 2);
	close(saved);
	CHECK(cluster_failed(c));
	rewind(log);
	text[fread(text, 1, sizeof(text) - 1, log)] = '\0';
	fclose(log);
	CHECK(strstr(text, "I/O reply for vCPU 1 (claimed 2)") && !strstr(text, "awaits none"));
	if (!strstr(text, "(claimed 2)") || strstr(text, "awaits none"))
		fprintf(stderr, "logged: \"%s\"\n", text);
	cluster_destroy(c);
	fake_vm_free(vm);
	mesh_pair_close(&p);
}

/* A reply for a vCPU that awaits none, the VM running: it fails, naming rank 0. */
static void test_io_reply_unasked(void)
{
	char sent[CL_REASON_MAX + 1];
	struct mesh_pair p;
	struct cluster *c;
	struct vm *vm;
	bool closed;

	CHECK(mesh_pair_open(&p, 2, CLUSTER_NR_CHANNELS, 4712, NULL) == 0);
	c = cluster_create(p.m[1], -1, 30000);
	vm = fake_vm_started(c);
	forge(&p, 0, CLUSTER_CH_IO, CL_IO_REPLY, 1, 0, 0, NULL, 0);
	CHECK(vm_stopped_for(vm, VM_STATUS_FAILED, "sent a malformed message: I/O reply for "
			     "vCPU 1, which awaits none"));
	CHECK_EQ(read_stop(&p, 0, false, sent, sizeof(sent), &closed), VM_STATUS_FAILED);
	CHECK(strstr(sent, "which awaits none") != NULL);
	cluster_destroy(c);
	fake_vm_free(vm);
	mesh_pair_close(&p);
}

/* A device handler that holds its access until told to let go (10 s at most). */
static atomic_bool release_device, device_entered;

static void held_device(void *dev, struct io_access *a)
{
	(void)dev;
	atomic_store(&device_entered, true);
	for (unsigned i = 0; i < 10000 && !atomic_load(&release_device); i++)
		usleep(1000);
	if (!a->write)
		io_data_set(a, 0x5a);
}

/* Lets the device go once the proxy holding it was told to quit (its request no longer pending). */
static void *release_on_quit(void *arg)
{
	struct cl_proxy *px = arg;

	for (unsigned i = 0; i < 10000 && atomic_load(&px->pending) == 1; i++)
		usleep(1000);
	atomic_store(&release_device, true);
	return NULL;
}

/* Rank 0, with the devices: an I/O request of vCPU 1 (rank 1's) on a fresh pair. */
static void expect_io_request_refused(bool start_first, const char *expect)
{
	struct mesh_pair p;
	struct cluster *c;
	struct vm *vm;
	pthread_t t;

	CHECK(mesh_pair_open(&p, 2, CLUSTER_NR_CHANNELS, 4712, NULL) == 0);
	c = cluster_create(p.m[0], -1, 30000);
	vm = fake_vm(c, 2);
	CHECK(io_bus_register(&vm->pio, 0x70, 1, held_device, NULL, IO_LOCAL, "local") == 0);
	CHECK(io_bus_register(&vm->pio, 0x80, 1, held_device, NULL, IO_SHARED, "held") == 0);
	atomic_store(&release_device, false);
	atomic_store(&device_entered, false);
	/*
	 * Started before it knows the machine, rank 0 has no proxy for vCPU 1
	 * (cmd-node attaches first): a request then must not reach a proxy.
	 */
	if (start_first)
		CHECK(cluster_start(c) == 0);
	CHECK_EQ(cluster_attach(c, vm), 0);
	if (!start_first)
		CHECK(cluster_start(c) == 0);
	if (strstr(expect, "its own instance handles")) {
		forge(&p, 1, CLUSTER_CH_IO, CL_IO_REQ, 1 | 1u << 16, 0x70, 0, NULL, 0);
	} else {
		forge(&p, 1, CLUSTER_CH_IO, CL_IO_REQ, 1 | 1u << 16, 0x80, 0, NULL, 0);
		if (!start_first) {
			/* the proxy holds the first in the device; a second comes */
			for (uint64_t end = now_ms() + 10000;
			     !atomic_load(&device_entered) && now_ms() < end;)
				usleep(1000);
			forge(&p, 1, CLUSTER_CH_IO, CL_IO_REQ, 1 | 1u << 16, 0x80, 0, NULL, 0);
		}
	}
	CHECK(vm_stopped_for(vm, VM_STATUS_FAILED, expect));
	if (atomic_load(&device_entered)) {
		/* the device lets go once its proxy is told to quit: it ends without replying */
		CHECK(pthread_create(&t, NULL, release_on_quit, c->proxies[1]) == 0);
		cluster_destroy(c);
		pthread_join(t, NULL);
	} else {
		cluster_destroy(c);
	}
	fake_vm_free(vm);
	mesh_pair_close(&p);
}

static void test_io_requests_refused(void)
{
	expect_io_request_refused(true, "I/O request of vCPU 1 from rank 1 before its proxy "
				  "started");
	expect_io_request_refused(false, "I/O request of vCPU 1 at port 0x70 (local), which its "
				  "own instance handles");
	expect_io_request_refused(false, "a second I/O request of vCPU 1 before its reply");
}

/*
 * The clocks, with VMs that have no KVM behind them: rank 0's reference
 * needs its vCPU 0; rank 1 samples rank 0's clocks (rank 0's receive
 * threads answer), then cannot set its VM's clock, and says so; and one
 * that cannot reach rank 0 says that.
 */
static void test_clocks_without_kvm(void)
{
	struct cluster_machine m = { .nr_cpus = 2, .tsc_khz = 2000000 };
	char err[CLUSTER_ERR_MAX] = "";
	struct cluster *c0, *c1;
	struct vm *vm0, *vm1;
	struct mesh_pair p;

	CHECK(mesh_pair_open(&p, 2, CLUSTER_NR_CHANNELS, 4712, NULL) == 0);
	c0 = cluster_create(p.m[0], -1, 30000);
	c1 = cluster_create(p.m[1], -1, 30000);
	vm0 = fake_vm(c0, 2);
	vm1 = fake_vm(c1, 2);
	CHECK_EQ(cluster_clock_reference(vm0, &m, err), -1);
	CHECK_STR(err, "vCPU 0 does not run here");
	CHECK(cluster_attach(c0, vm0) == 0 && cluster_attach(c1, vm1) == 0);
	CHECK(cluster_start(c0) == 0 && cluster_start(c1) == 0);
	CHECK_EQ(cluster_sync_clocks(c1, &m, err), -1);
	CHECK_STR(err, "KVM_SET_CLOCK: Bad file descriptor");
	CHECK(!cluster_failed(c0) && !cluster_failed(c1));

	shutdown(mesh_fd(p.m[1], 0, CLUSTER_CH_CTRL), SHUT_WR);
	CHECK_EQ(cluster_sync_clocks(c1, &m, err), -1);
	CHECK_STR(err, "cannot reach rank 0 to read its clocks");
	cluster_destroy(c1);
	cluster_destroy(c0);
	fake_vm_free(vm1);
	fake_vm_free(vm0);
	mesh_pair_close(&p);
}

/*
 * Rank 0: the machine cannot be sent to a peer whose connection is gone;
 * and rank 0 stops waiting for READYs once its VM stops.
 */
static void test_rank0_setup_ends(void)
{
	char err[CLUSTER_ERR_MAX] = "";
	struct cluster_machine m = { .nr_cpus = 2, .ram_size = 2 * TOPO_NODE_ALIGN,
				     .tsc_khz = 2000000 };
	struct mesh_pair p;
	struct cluster *c;
	struct vm *vm;

	CHECK(mesh_pair_open(&p, 2, CLUSTER_NR_CHANNELS, 4712, NULL) == 0);
	c = cluster_create(p.m[0], -1, 30000);
	shutdown(mesh_fd(p.m[0], 1, CLUSTER_CH_CTRL), SHUT_WR);
	CHECK_EQ(cluster_send_config(c, &m, err), -1);
	CHECK(strstr(err, "cannot send the machine to rank 1 (127.0.0.1:") != NULL);
	CHECK(cluster_failed(c));
	{
		/* a destination change that cannot be sent awaits no acknowledgement (nor a VM) */
		struct vm_hooks hooks;
		uint64_t t0 = now_ms();

		cluster_vm_hooks(c, &hooks);
		hooks.dest_changed(hooks.arg, 0, &(struct apic_dest_state){ .id = 1, .dfr = ~0u });
		CHECK(now_ms() - t0 < 10000); /* waiting would be for ever: a hang guard */
	}
	cluster_destroy(c);
	mesh_pair_close(&p);

	CHECK(mesh_pair_open(&p, 2, CLUSTER_NR_CHANNELS, 4712, NULL) == 0);
	c = cluster_create(p.m[0], -1, 30000);
	vm = fake_vm_started(c);
	vm_stop(vm, 2, "stopped by the test");
	CHECK_EQ(cluster_wait_ready(c, 10, -1, err), -1);
	CHECK_STR(err, "the VM was stopped before every instance was ready");
	cluster_destroy(c);
	fake_vm_free(vm);
	mesh_pair_close(&p);
}

/*
 * Rank k lingers (its receive threads running) until rank 0 closes its
 * connection, not for the whole time allowed; a status line too long for
 * one write is not written at all.
 */
static void test_linger_and_status(void)
{
	struct mesh_pair p;
	struct cluster *c;
	char line[64];
	uint64_t t0;
	int sp[2];

	CHECK(pipe2(sp, O_NONBLOCK | O_CLOEXEC) == 0);
	CHECK(mesh_pair_open(&p, 2, CLUSTER_NR_CHANNELS, 4712, NULL) == 0);
	c = cluster_create(p.m[1], sp[1], 30000);
	cluster_status(c, "%0200d", 7);
	CHECK(read(sp[0], line, sizeof(line)) == -1 && errno == EAGAIN);
	cluster_status(c, "ready");
	CHECK(read(sp[0], line, sizeof(line)) == 8 && !memcmp(line, "1 ready\n", 8));
	CHECK(cluster_start(c) == 0);
	shutdown(mesh_fd(p.m[0], 1, CLUSTER_CH_CTRL), SHUT_RDWR);
	t0 = now_ms();
	cluster_linger(c, 20);
	CHECK(now_ms() - t0 < 10000);
	cluster_destroy(c);
	mesh_pair_close(&p);
	close(sp[0]);
	close(sp[1]);
}

/* ---- a peer that stops reading ---- */

struct flood {
	struct cluster *c;
	unsigned n;
	unsigned refused; /* sends that did not return 0 */
	atomic_bool done;
};

static void *flood_thread(void *arg)
{
	struct flood *f = arg;

	for (unsigned i = 0; i < f->n; i++)
		if (cl_send(f->c, 0, CLUSTER_CH_CTRL, CL_HEARTBEAT, i, 0, 0, NULL, 0))
			f->refused++;
	atomic_store(&f->done, true);
	return NULL;
}

/* Bytes the kernel may hold between an fd and its peer's: both ends' buffers. */
static size_t socket_room(int a, int b)
{
	int snd = 0, rcv = 0;
	socklen_t l = sizeof(int);

	CHECK(getsockopt(a, SOL_SOCKET, SO_SNDBUF, &snd, &l) == 0);
	l = sizeof(int);
	CHECK(getsockopt(b, SOL_SOCKET, SO_RCVBUF, &rcv, &l) == 0);
	return (size_t)snd + (size_t)rcv;
}

/* Sends from thread f until it is done, 60 s at most (a hang guard): whether it finished. */
static bool flood(struct flood *f)
{
	pthread_t t;

	CHECK(pthread_create(&t, NULL, flood_thread, f) == 0);
	for (uint64_t end = now_ms() + 60000; !atomic_load(&f->done) && now_ms() < end;)
		usleep(10000);
	CHECK(atomic_load(&f->done));
	if (!atomic_load(&f->done)) {
		/* a sender blocked for good: nothing to clean up that would not hang too */
		fprintf(stderr, "%u sends to a peer that does not read: still blocked after 60 s\n",
			f->n);
		return false;
	}
	pthread_join(t, NULL);
	return true;
}

/*
 * No sender blocks on a peer that does not read (the receive threads answer
 * inline, and the heartbeat thread sends to every peer in turn): more than
 * the sockets hold is queued, and reaches the peer in order once it reads.
 * A peer that leaves more than CL_QUEUE_MAX unread is lost, named.
 */
static void test_peer_not_reading(void)
{
	int fd0, fd1, st = -1;
	const char *reason = "";
	struct flood f = { 0 };
	struct mesh_pair p;
	struct wire_hdr h;
	unsigned got = 0;
	char why[128];

	CHECK(mesh_pair_open(&p, 2, CLUSTER_NR_CHANNELS, 4712, NULL) == 0);
	fd0 = mesh_fd(p.m[0], 1, CLUSTER_CH_CTRL);
	fd1 = mesh_fd(p.m[1], 0, CLUSTER_CH_CTRL);
	f.c = cluster_create(p.m[1], -1, 30000);
	/* twice what the sockets hold, and less than the queue's cap */
	f.n = (unsigned)(2 * socket_room(fd1, fd0) / sizeof(h) + 1000);
	CHECK((size_t)f.n * sizeof(h) < CL_QUEUE_MAX);
	if (!flood(&f))
		return;
	CHECK_EQ(f.refused, 0);
	/* a frame lost must fail the test, not hang it */
	CHECK(setsockopt(fd0, SOL_SOCKET, SO_RCVTIMEO, &(struct timeval){ .tv_sec = 30 },
			 sizeof(struct timeval)) == 0);
	CHECK(!cluster_failed(f.c));
	while (got < f.n && !wire_recv(fd0, 1, &h, NULL, 0, why) && h.type == CL_HEARTBEAT &&
	       h.arg[0] == got)
		got++;
	CHECK_EQ(got, f.n);
	if (got != f.n)
		fprintf(stderr, "frame %u of %u: type 0x%x, a0 %llu\n", got, f.n, h.type,
			(unsigned long long)h.arg[0]);

	/* and a peer that never reads, past the cap */
	f.n = (unsigned)((CL_QUEUE_MAX + 2 * socket_room(fd1, fd0)) / sizeof(h));
	f.refused = 0;
	atomic_store(&f.done, false);
	if (!flood(&f))
		return;
	CHECK(f.refused > 0);
	CHECK(cluster_failed(f.c));
	CHECK(cluster_setup_stopped(f.c, &st, &reason));
	CHECK_EQ(st, VM_STATUS_FAILED);
	CHECK(strstr(reason, "rank 0 (127.0.0.1:") &&
	      strstr(reason, "lost: it has not read what was sent to it for too long "
			     "(16 MiB waiting)"));
	if (!strstr(reason, "has not read"))
		fprintf(stderr, "a peer that never reads: \"%s\"\n", reason);
	cluster_destroy(f.c);
	mesh_pair_close(&p);
}

int main(void)
{
	log_init("test-cluster");
	RUN(test_config_checks);
	RUN(test_before_the_vm);
	RUN(test_wait_ready);
	RUN(test_io_forward_stopped);
	RUN(test_io_reply_unasked);
	RUN(test_io_requests_refused);
	RUN(test_rank0_setup_ends);
	RUN(test_clocks_without_kvm);
	RUN(test_linger_and_status);
	RUN(test_peer_not_reading);
	return check_summary();
}
