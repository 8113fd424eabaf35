/*
 * The cluster's messages from other instances (vmm/cluster.c,
 * vmm/cluster-io.c): cl_msg_check, which every message of the control
 * and I/O channels passes before its handler, and cl_config_decode, rank
 * 0's machine description as rank k takes it.  Checked beyond the
 * sanitizers, against docs/cluster.md and the message comments of
 * vmm/cluster-internal.h, written out again here: an accepted message has
 * flags and sequence 0, a type its channel carries, every vCPU it names
 * below nr_cpus and run where the type says (here, or by the sender),
 * every length within what its type allows; an IPI names a delivery mode
 * the APIC knows, an I/O access 1, 2, 4 (or 8 for MMIO) bytes that do not
 * wrap, a port below 0x10000, with data that fits.  An accepted machine
 * has vCPUs and RAM that divide among the instances, at most
 * TOPO_MAX_CACHES caches, a valid feature set, and the fields sent.  A
 * refusal says why.  Of the clock's messages, what depends on the samples
 * in progress (vmm/cluster-time.c) is left out: a sample request goes to
 * rank 0, a sample comes from rank 0 with its 8-byte step, and a lead
 * goes to rank 0, positive, at most CL_TIME_MAX_LEAD, measured against a
 * step that is not negative.
 *
 * Input: nr - 1, rank, peer (never ourselves), then a byte whose bit 0 is
 * the channel and bit 1 picks cl_config_decode, vCPUs per instance - 1
 * (vCPU i runs on rank i / per-instance, as topo_build places them), then
 * the 40-byte header, then the payload (at least h.len bytes).
 */
#include <string.h>

#include "tests/fuzz/lib/fuzz.h"
#include "vmm/cluster-internal.h"

#define IN_HDR 5

static struct cluster *c; /* big (ports, slots): allocated once */

static void check_ctrl(unsigned peer, const struct wire_hdr *h)
{
	uint64_t a0 = h->arg[0], a1 = h->arg[1], a2 = h->arg[2];

	FUZZ_CHECK(h->type > CL_CONFIG && h->type < CL_MSG_END);
	FUZZ_CHECK(h->type != CL_IO_REQ && h->type != CL_IO_REPLY);
	switch (h->type) {
	case CL_IPI: {
		unsigned mode = CL_IPI_MODE(a1);

		FUZZ_CHECK(!h->len && a0 < c->nr_cpus && c->owner[a0] == c->rank);
		FUZZ_CHECK(a1 <= CL_IPI_KNOWN);
		FUZZ_CHECK(mode == APIC_DM_FIXED || mode == APIC_DM_LOWEST || mode == APIC_DM_NMI ||
			   mode == APIC_DM_INIT || mode == APIC_DM_SIPI);
		if (a2 == UINT32_MAX)
			FUZZ_CHECK(peer == 0); /* a device interrupt, from rank 0's IOAPIC */
		else
			FUZZ_CHECK(a2 < c->nr_cpus && c->owner[a2] == peer);
		break;
	}
	case CL_DEST:
		FUZZ_CHECK(!h->len && a0 < c->nr_cpus && c->owner[a0] == peer);
		if (a2 == CL_DEST_X2APIC) { /* x2APIC: the LDR is the ID's */
			uint32_t id = (uint32_t)a1;

			FUZZ_CHECK(id != 0xFFFFFFFFu && a1 >> 32 == ((id >> 4) << 16 | 1u << (id & 15)));
			break;
		}
		FUZZ_CHECK((a1 & 0xFFFFFFFFu) <= 0xFF && !(a1 >> 32 & 0x00FFFFFFu));
		FUZZ_CHECK(a2 <= UINT32_MAX && (a2 & 0x0FFFFFFFu) == 0x0FFFFFFFu);
		break;
	case CL_DEST_ACK:
		FUZZ_CHECK(!h->len && a0 < c->nr_cpus && c->owner[a0] == c->rank && !a1 && !a2);
		break;
	case CL_EOI:
		FUZZ_CHECK(c->rank == 0 && !h->len && a0 >= 16 && a0 <= 255 && !a1 && !a2);
		break;
	case CL_STOP:
		FUZZ_CHECK(a0 <= 255 && !a1 && !a2 && h->len <= CL_REASON_MAX);
		break;
	case CL_READY:
		FUZZ_CHECK(c->rank == 0 && peer < TOPO_MAX_NODES && a0 <= 1 && !a1 && !a2);
		FUZZ_CHECK(h->len <= CL_REASON_MAX && (a0 || !h->len));
		break;
	case CL_HEARTBEAT:
		FUZZ_CHECK(!h->len && !a0 && !a1 && !a2);
		break;
	case CL_SILENT:
		FUZZ_CHECK(peer == 0 && !h->len && a0 <= UINT32_MAX && !a1 && !a2);
		break;
	case CL_TIME_PING:
		FUZZ_CHECK(c->rank == 0 && !h->len && !a1 && !a2);
		break;
	case CL_TIME_PONG:
		FUZZ_CHECK(peer == 0 && h->len == 8 && a0);
		break;
	case CL_TIME_LEAD:
		FUZZ_CHECK(c->rank == 0 && !h->len && a0 && a0 <= 1ull << 32 && (int64_t)a1 >= 0 &&
			   !a2);
		break;
	default:
		FUZZ_CHECK(!"a message type the docs do not list");
	}
}

static void check_io(unsigned peer, const struct wire_hdr *h)
{
	uint64_t a0 = h->arg[0], addr = h->arg[1], data = h->arg[2];

	FUZZ_CHECK(!h->len);
	if (h->type == CL_IO_REQ) {
		unsigned cpu = CL_IO_CPU(a0), len = CL_IO_LEN(a0);
		bool mmio = a0 & CL_IO_MMIO;

		FUZZ_CHECK(c->rank == 0 && !(a0 >> 26));
		FUZZ_CHECK(cpu < c->nr_cpus && c->owner[cpu] == peer);
		FUZZ_CHECK(len == 1 || len == 2 || len == 4 || (len == 8 && mmio));
		FUZZ_CHECK(mmio ? addr <= UINT64_MAX - len : addr <= 0xFFFF);
		FUZZ_CHECK(len == 8 || data < 1ull << 8 * len);
		FUZZ_CHECK((a0 & CL_IO_WRITE) || !data);
	} else {
		FUZZ_CHECK(h->type == CL_IO_REPLY && peer == 0);
		FUZZ_CHECK(a0 < c->nr_cpus && c->owner[a0] == c->rank && addr <= 1);
	}
}

static void check_machine(const struct cluster_machine *m, const void *payload)
{
	struct cl_config cfg;
	char err[CPUID_ERR_MAX];

	memcpy(&cfg, payload, sizeof(cfg));
	FUZZ_CHECK(m->nr_nodes && m->nr_nodes % c->nr == 0 &&
		   m->nr_nodes / c->nr <= TOPO_MAX_LOCAL_NODES);
	FUZZ_CHECK(m->nr_cpus >= 1 && m->nr_cpus <= TOPO_MAX_CPUS && m->nr_cpus % m->nr_nodes == 0);
	FUZZ_CHECK(m->ram_size && m->ram_size / m->nr_nodes * m->nr_nodes == m->ram_size);
	FUZZ_CHECK(m->ram_size / m->nr_nodes % TOPO_NODE_ALIGN == 0);
	FUZZ_CHECK(m->nr_caches <= TOPO_MAX_CACHES && m->tsc_khz && m->tsc_khz <= 100000000);
	FUZZ_CHECK(cpuid_features_check(&m->features, err) == 0);
	/* What was sent, and nothing else. */
	FUZZ_CHECK(!memcmp(m->host_distance, cfg.host_distance, sizeof(cfg.host_distance)));
	FUZZ_CHECK(cfg.nr_nodes == m->nr_nodes && m->nr_cpus == cfg.nr_cpus &&
		   m->ram_size == cfg.ram_size && m->remote_distance == cfg.remote_distance);
	FUZZ_CHECK(m->has_tsc_offset == (cfg.flags == CL_CFG_TSC_OFFSET) &&
		   m->tsc_offset == cfg.tsc_offset && m->kvmclock_offset == cfg.kvmclock_offset &&
		   m->tsc_khz == cfg.tsc_khz && m->stats == (cfg.stats == 1));
	FUZZ_CHECK(!memcmp(m->features.add, cfg.features_add, sizeof(cfg.features_add)) &&
		   !memcmp(m->features.remove, cfg.features_remove, sizeof(cfg.features_remove)));
	for (unsigned i = 0; i < m->nr_caches; i++)
		FUZZ_CHECK(m->caches[i].level == cfg.caches[i].level &&
			   m->caches[i].size == cfg.caches[i].size &&
			   m->caches[i].ways == cfg.caches[i].ways &&
			   m->caches[i].line_size == cfg.caches[i].line_size);
}

/* The seeds: 4 instances of 2 vCPUs (vCPU i on rank i / 2). */
static void seed(const char *dir, const char *name, unsigned rank, unsigned peer, unsigned mode,
		 uint16_t type, uint64_t a0, uint64_t a1, uint64_t a2, const void *payload,
		 uint32_t len)
{
	uint8_t in[IN_HDR + sizeof(struct wire_hdr) + 1024] = { 3, rank, peer, mode, 1 };
	struct wire_hdr h = wire_hdr_make(type, peer, len);

	h.arg[0] = a0;
	h.arg[1] = a1;
	h.arg[2] = a2;
	memcpy(in + IN_HDR, &h, sizeof(h));
	if (len)
		memcpy(in + IN_HDR + sizeof(h), payload, len);
	fuzz_seed(dir, name, in, IN_HDR + sizeof(h) + len);
}

static void seeds(const char *dir)
{
	struct cl_config cfg = {
		.magic = CL_CONFIG_MAGIC, .version = CL_CONFIG_VERSION, .nr_nodes = 4,
		.nr_cpus = 8, .ram_size = 4 * TOPO_NODE_ALIGN, .remote_distance = 20,
		.features_base = CPUID_BASE_CONSERVATIVE, .nr_caches = 1,
		.flags = CL_CFG_TSC_OFFSET, .tsc_khz = 2000000,
		.caches = { { .level = 1, .type = 1, .line_size = 64, .ways = 8, .size = 32768 } },
	};
	uint64_t io = 2 | 1ull << 16 | CL_IO_WRITE; /* vCPU 2 writes a byte */
	int64_t step = 5000;

	seed(dir, "ipi", 1, 0, 0, CL_IPI, 3, 0x30, 0, NULL, 0);
	seed(dir, "ipi-device", 1, 0, 0, CL_IPI, 2, 0x31, UINT32_MAX, NULL, 0);
	seed(dir, "ipi-init", 0, 2, 0, CL_IPI, 1, APIC_DM_INIT << 8, 5, NULL, 0);
	seed(dir, "dest", 0, 3, 0, CL_DEST, 6, 6 | 1ull << 56, 0xFFFFFFFF, NULL, 0);
	seed(dir, "dest-x2apic", 0, 3, 0, CL_DEST, 6, 0x123 | (0x12ull << 16 | 1 << 3) << 32,
	     CL_DEST_X2APIC, NULL, 0);
	seed(dir, "dest-ack", 2, 1, 0, CL_DEST_ACK, 4, 0, 0, NULL, 0);
	seed(dir, "eoi", 0, 1, 0, CL_EOI, 0x30, 0, 0, NULL, 0);
	seed(dir, "stop", 2, 0, 0, CL_STOP, 3, 0, 0, "guest panic", 11);
	seed(dir, "ready", 0, 3, 0, CL_READY, 0, 0, 0, NULL, 0);
	seed(dir, "ready-refused", 0, 3, 0, CL_READY, 1, 0, 0, "no /dev/kvm", 11);
	seed(dir, "heartbeat", 1, 2, 0, CL_HEARTBEAT, 0, 0, 0, NULL, 0);
	seed(dir, "silent", 3, 0, 0, CL_SILENT, 60, 0, 0, NULL, 0);
	seed(dir, "time-ping", 0, 1, 0, CL_TIME_PING, 7, 0, 0, NULL, 0);
	seed(dir, "time-pong", 1, 0, 0, CL_TIME_PONG, 7, 123456789, 987654321, &step, sizeof(step));
	seed(dir, "time-lead", 0, 2, 0, CL_TIME_LEAD, 40000, 1000, 0, NULL, 0);
	seed(dir, "io-req", 0, 1, 1, CL_IO_REQ, io, 0x3f8, 0x41, NULL, 0);
	seed(dir, "io-req-mmio", 0, 3, 1, CL_IO_REQ, 7 | 8ull << 16 | CL_IO_MMIO, 0xfec00000, 0,
	     NULL, 0);
	seed(dir, "io-reply", 2, 0, 1, CL_IO_REPLY, 5, 1, 0xff, NULL, 0);
	seed(dir, "config", 1, 0, 2, CL_CONFIG, 0, 0, 0, &cfg, sizeof(cfg));
	cfg.nr_nodes = 8; /* two per instance, at the host's distance 21 */
	cfg.ram_size = 8 * TOPO_NODE_ALIGN;
	cfg.host_distance[0][1] = cfg.host_distance[1][0] = 21;
	seed(dir, "config-numa", 1, 0, 2, CL_CONFIG, 0, 0, 0, &cfg, sizeof(cfg));
	seed(dir, "config-stop", 1, 0, 2, CL_STOP, 1, 0, 0, "bad image", 9);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_write_seeds(seeds);
	c = calloc(1, sizeof(*c));
	FUZZ_CHECK(c);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned peer, per_node;
	char why[CLUSTER_ERR_MAX] = "";
	struct cluster_machine m;
	struct wire_hdr h;
	const uint8_t *payload = data + IN_HDR + sizeof(h);

	if (size < IN_HDR + sizeof(h))
		return 0;
	c->nr = 1 + data[0] % TOPO_MAX_NODES;
	c->rank = data[1] % c->nr;
	peer = data[2] % c->nr;
	per_node = 1 + data[4] % 8;
	if (peer == c->rank || c->nr * per_node > TOPO_MAX_CPUS)
		return 0;
	c->nr_cpus = c->nr * per_node;
	for (unsigned i = 0; i < c->nr_cpus; i++)
		c->owner[i] = (uint8_t)(i / per_node);
	memcpy(&h, data + IN_HDR, sizeof(h));
	if (h.len > size - IN_HDR - sizeof(h) || h.len > CL_RXBUF)
		return 0; /* wire_recv delivers h.len bytes, at most the connection's buffer */

	if (data[3] & 2) {
		if (c->rank == 0)
			return 0;
		if (cl_config_decode(c->nr, "rank 0 (fuzz)", &h, payload, &m, why) == 0) {
			FUZZ_CHECK(h.type == CL_CONFIG && h.len == sizeof(struct cl_config) && !h.flags &&
				   !h.seq && !h.arg[0] && !h.arg[1] && !h.arg[2]);
			check_machine(&m, payload);
			return 0;
		}
	} else if (cl_msg_check(c, peer, data[3] & 1 ? CLUSTER_CH_IO : CLUSTER_CH_CTRL, &h,
				why) == 0) {
		FUZZ_CHECK(!h.flags && !h.seq);
		if (data[3] & 1)
			check_io(peer, &h);
		else
			check_ctrl(peer, &h);
		return 0;
	}
	FUZZ_CHECK(why[0] && memchr(why, '\0', sizeof(why)));
	return 0;
}
