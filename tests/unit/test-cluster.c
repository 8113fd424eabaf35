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
 * Each case checks the status and the reason the instance keeps, the STOP
 * it sends the others, and that it closes the offending connection.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
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
				      "0x12345678 version 1");
	BAD_CONFIG(version, 2, "version 2, this is version 1");
	BAD_CONFIG(nr_nodes, 3, "rank 0 describes 3 NUMA nodes for 2 instances");
	BAD_CONFIG(nr_cpus, 0, "rank 0 describes 0 vCPUs for 2 instances");
	BAD_CONFIG(nr_cpus, 3, "rank 0 describes 3 vCPUs for 2 instances");
	BAD_CONFIG(nr_cpus, TOPO_MAX_CPUS + 1, "describes 256 vCPUs");
	BAD_CONFIG(ram_size, 0, "rank 0 describes 0 bytes of RAM for 2 instances");
	BAD_CONFIG(ram_size, 2 * TOPO_NODE_ALIGN + 2, "bytes of RAM for 2 instances");
	BAD_CONFIG(ram_size, 3 * TOPO_NODE_ALIGN, "bytes of RAM for 2 instances");
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

	/* and a good one: the machine as described */
	cfg = good_config();
	cfg.flags = CL_CFG_TSC_OFFSET;
	cfg.tsc_offset = -5;
	forge(&p, 0, CLUSTER_CH_CTRL, CL_CONFIG, 0, 0, 0, &cfg, sizeof(cfg));
	CHECK(cluster_recv_config(c, &m, 10, -1, err) == 0);
	CHECK(m.nr_cpus == 4 && m.ram_size == 2 * TOPO_NODE_ALIGN && m.nr_caches == 1 &&
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

int main(void)
{
	log_init("test-cluster");
	RUN(test_config_checks);
	RUN(test_before_the_vm);
	RUN(test_wait_ready);
	return check_summary();
}
