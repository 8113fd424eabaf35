/*
 * ACPI tables, written field by field in the order of the ACPI 6.x spec
 * (section numbers in the comments).  Every table comes from the same struct
 * vm_topology, so MADT, SRAT and SLIT agree with CPUID and with each other.
 */
#include "vmm/x86/acpi.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/guest_abi.h"

#define SETERR(...) snprintf(err, ACPI_ERR_MAX, __VA_ARGS__)
#define ERR(...) (SETERR(__VA_ARGS__), -1)

#define ACPI_OEM_ID "GIANTV"       /* 6 bytes */
#define ACPI_OEM_TABLE_ID "GIANTVM " /* 8 bytes */
#define ACPI_CREATOR_ID "GVM "     /* 4 bytes */
#define ACPI_HEADER_LEN 36
#define ACPI_MAX_TABLES 10

/* A byte sink that notices overflow instead of writing past its end. */
struct acpi_buf {
	uint8_t *p;
	size_t cap, len;
	bool overflow;
};

/* Where each table landed, for acpi_dump and the XSDT. */
struct acpi_table {
	char sig[5];
	size_t off, len;
};

struct acpi_layout {
	struct acpi_table tables[ACPI_MAX_TABLES];
	unsigned nr;
};

static void put(struct acpi_buf *b, const void *src, size_t n)
{
	if (b->overflow || n > b->cap - b->len) {
		b->overflow = true;
		return;
	}
	memcpy(b->p + b->len, src, n);
	b->len += n;
}

static void put8(struct acpi_buf *b, uint8_t v)
{
	put(b, &v, 1);
}

static void put16(struct acpi_buf *b, uint16_t v)
{
	uint8_t x[2] = { v, v >> 8 };

	put(b, x, 2);
}

static void put32(struct acpi_buf *b, uint32_t v)
{
	put16(b, v);
	put16(b, v >> 16);
}

static void put64(struct acpi_buf *b, uint64_t v)
{
	put32(b, v);
	put32(b, v >> 32);
}

static void put_zero(struct acpi_buf *b, size_t n)
{
	while (n--)
		put8(b, 0);
}

static void align(struct acpi_buf *b, size_t a)
{
	while (b->len % a && !b->overflow)
		put8(b, 0);
}

static void patch32(struct acpi_buf *b, size_t off, uint32_t v)
{
	if (b->overflow)
		return;
	for (int i = 0; i < 4; i++)
		b->p[off + i] = v >> (8 * i);
}

static uint8_t checksum(const uint8_t *p, size_t n)
{
	uint8_t sum = 0;

	while (n--)
		sum += *p++;
	return (uint8_t)-sum;
}

/* 5.2.6 System Description Table Header; length and checksum come in table_end. */
static size_t table_begin(struct acpi_buf *b, struct acpi_layout *l, const char *sig,
			  uint8_t revision)
{
	size_t start = b->len;

	put(b, sig, 4);
	put32(b, 0);             /* length */
	put8(b, revision);
	put8(b, 0);              /* checksum */
	put(b, ACPI_OEM_ID, 6);
	put(b, ACPI_OEM_TABLE_ID, 8);
	put32(b, 1);             /* OEM revision */
	put(b, ACPI_CREATOR_ID, 4);
	put32(b, 1);             /* creator revision */
	if (l->nr < ACPI_MAX_TABLES) {
		memcpy(l->tables[l->nr].sig, sig, 4);
		l->tables[l->nr].sig[4] = 0;
		l->tables[l->nr].off = start;
	}
	return start;
}

static void table_end(struct acpi_buf *b, struct acpi_layout *l, size_t start, bool has_checksum)
{
	if (l->nr < ACPI_MAX_TABLES)
		l->tables[l->nr++].len = b->len - start;
	if (b->overflow)
		return;
	patch32(b, start + 4, (uint32_t)(b->len - start));
	if (has_checksum)
		b->p[start + 9] = checksum(b->p + start, b->len - start);
}

/* 5.2.3.2 Generic Address Structure, in system I/O space. */
static void put_gas_io(struct acpi_buf *b, uint16_t port, uint8_t bits, uint8_t access)
{
	put8(b, port ? 1 : 0); /* address space: system I/O */
	put8(b, port ? bits : 0);
	put8(b, 0);            /* bit offset */
	put8(b, port ? access : 0);
	put64(b, port);
}

/* 5.2.9 FADT, revision 6: a conventional (not hardware-reduced) PC. */
static void build_fadt(struct acpi_buf *b, struct acpi_layout *l, uint64_t facs, uint64_t dsdt)
{
	size_t t = table_begin(b, l, "FACP", 6);

	put32(b, 0);                   /* FIRMWARE_CTRL: X_FIRMWARE_CTRL is used */
	put32(b, 0);                   /* DSDT: X_DSDT is used */
	put8(b, 0);                    /* reserved */
	put8(b, 0);                    /* preferred PM profile: unspecified */
	put16(b, ACPI_SCI_IRQ);
	put32(b, 0);                   /* SMI_CMD: no SMM, always in ACPI mode */
	put8(b, 0);                    /* ACPI_ENABLE */
	put8(b, 0);                    /* ACPI_DISABLE */
	put8(b, 0);                    /* S4BIOS_REQ */
	put8(b, 0);                    /* PSTATE_CNT */
	put32(b, ACPI_PM1A_EVT_PORT);  /* PM1a_EVT_BLK */
	put32(b, 0);                   /* PM1b_EVT_BLK */
	put32(b, ACPI_PM1A_CNT_PORT);  /* PM1a_CNT_BLK */
	put32(b, 0);                   /* PM1b_CNT_BLK */
	put32(b, 0);                   /* PM2_CNT_BLK */
	put32(b, 0);                   /* PM_TMR_BLK: none */
	put32(b, 0);                   /* GPE0_BLK */
	put32(b, 0);                   /* GPE1_BLK */
	put8(b, ACPI_PM1A_EVT_LEN);
	put8(b, ACPI_PM1A_CNT_LEN);
	put8(b, 0);                    /* PM2_CNT_LEN */
	put8(b, 0);                    /* PM_TMR_LEN */
	put8(b, 0);                    /* GPE0_BLK_LEN */
	put8(b, 0);                    /* GPE1_BLK_LEN */
	put8(b, 0);                    /* GPE1_BASE */
	put8(b, 0);                    /* CST_CNT */
	put16(b, 101);                 /* P_LVL2_LAT > 100: no C2 */
	put16(b, 1001);                /* P_LVL3_LAT > 1000: no C3 */
	put16(b, 0);                   /* FLUSH_SIZE */
	put16(b, 0);                   /* FLUSH_STRIDE */
	put8(b, 0);                    /* DUTY_OFFSET */
	put8(b, 0);                    /* DUTY_WIDTH */
	put8(b, 0);                    /* DAY_ALRM */
	put8(b, 0);                    /* MON_ALRM */
	put8(b, 0);                    /* CENTURY */
	/*
	 * IA-PC boot architecture: legacy devices present (the UART), no
	 * 8042 (so Linux does not probe a keyboard controller), no VGA.
	 */
	put16(b, (1u << 0) | (1u << 2));
	put8(b, 0);                    /* reserved */
	/* WBINVD, C1 on all CPUs, power and sleep buttons not fixed features. */
	put32(b, (1u << 0) | (1u << 2) | (1u << 4) | (1u << 5));
	put_gas_io(b, 0, 0, 0);        /* RESET_REG: none */
	put8(b, 0);                    /* RESET_VALUE */
	put16(b, 0);                   /* ARM_BOOT_ARCH */
	put8(b, 0);                    /* FADT minor version */
	put64(b, facs);                /* X_FIRMWARE_CTRL */
	put64(b, dsdt);                /* X_DSDT */
	put_gas_io(b, ACPI_PM1A_EVT_PORT, ACPI_PM1A_EVT_LEN * 8, 2); /* X_PM1a_EVT_BLK */
	put_gas_io(b, 0, 0, 0);        /* X_PM1b_EVT_BLK */
	put_gas_io(b, ACPI_PM1A_CNT_PORT, ACPI_PM1A_CNT_LEN * 8, 2); /* X_PM1a_CNT_BLK */
	put_gas_io(b, 0, 0, 0);        /* X_PM1b_CNT_BLK */
	put_gas_io(b, 0, 0, 0);        /* X_PM2_CNT_BLK */
	put_gas_io(b, 0, 0, 0);        /* X_PM_TMR_BLK */
	put_gas_io(b, 0, 0, 0);        /* X_GPE0_BLK */
	put_gas_io(b, 0, 0, 0);        /* X_GPE1_BLK */
	put_gas_io(b, 0, 0, 0);        /* SLEEP_CONTROL_REG */
	put_gas_io(b, 0, 0, 0);        /* SLEEP_STATUS_REG */
	put(b, "GIANTVM", 8);          /* hypervisor vendor identity */
	table_end(b, l, t, true);
}

/* 5.2.10 FACS: required with a conventional FADT; 64-byte aligned, no checksum. */
static void build_facs(struct acpi_buf *b, struct acpi_layout *l)
{
	size_t start = b->len;

	put(b, "FACS", 4);
	put32(b, 64);
	put32(b, 0);      /* hardware signature */
	put32(b, 0);      /* firmware waking vector */
	put32(b, 0);      /* global lock */
	put32(b, 0);      /* flags */
	put64(b, 0);      /* X firmware waking vector */
	put8(b, 2);       /* version */
	put_zero(b, 3);
	put32(b, 0);      /* OSPM flags */
	put_zero(b, 24);
	if (l->nr < ACPI_MAX_TABLES) {
		strcpy(l->tables[l->nr].sig, "FACS");
		l->tables[l->nr].off = start;
		l->tables[l->nr++].len = b->len - start;
	}
}

/*
 * AML (chapter 20).  A package is emitted into its own small buffer first,
 * because its PkgLength prefix counts itself and must be known before the
 * bytes that follow it.
 */
struct aml {
	uint8_t p[256];
	struct acpi_buf b;
};

static void aml_init(struct aml *a)
{
	a->b = (struct acpi_buf){ .p = a->p, .cap = sizeof(a->p) };
}

/* 20.2.4 PkgLength: 1 byte up to 63, else a lead byte with the low nibble and 1-3 more. */
static void aml_pkg(struct acpi_buf *b, const uint8_t *body, size_t n)
{
	size_t total;

	if (n + 1 < 64) {
		put8(b, (uint8_t)(n + 1));
	} else if (n + 2 < (1u << 12)) {
		total = n + 2;
		put8(b, 0x40 | (total & 0xf));
		put8(b, (uint8_t)(total >> 4));
	} else {
		total = n + 3;
		put8(b, 0x80 | (total & 0xf));
		put8(b, (uint8_t)(total >> 4));
		put8(b, (uint8_t)(total >> 12));
	}
	put(b, body, n);
}

static void aml_name(struct acpi_buf *b, const char *seg)
{
	put8(b, 0x08); /* NameOp */
	put(b, seg, 4);
}

/* EisaId("PNP0501"): three 5-bit letters and four hex digits, stored big-endian. */
static uint32_t eisa_id(const char *id)
{
	uint16_t vendor = (uint16_t)(((id[0] - 0x40) << 10) | ((id[1] - 0x40) << 5) |
				     (id[2] - 0x40));
	uint16_t product = (uint16_t)strtoul(id + 3, NULL, 16);

	return (uint32_t)(vendor >> 8) | (uint32_t)(vendor & 0xff) << 8 |
	       (uint32_t)(product >> 8) << 16 | (uint32_t)(product & 0xff) << 24;
}

/* Device (COM1): the console UART, so that ACPI PNP enumeration finds it. */
static void aml_com1(struct acpi_buf *b)
{
	struct aml dev, crs, res;

	aml_init(&res);
	put8(&res.b, 0x47);                 /* IO port descriptor (6.4.2.5) */
	put8(&res.b, 0x01);                 /* 16-bit decode */
	put16(&res.b, GVM_UART_PORT);       /* minimum base */
	put16(&res.b, GVM_UART_PORT);       /* maximum base */
	put8(&res.b, 0x00);                 /* alignment */
	put8(&res.b, 0x08);                 /* length */
	put8(&res.b, 0x22);                 /* IRQ descriptor without flags (6.4.2.1) */
	put16(&res.b, 1u << GVM_UART_IRQ);
	put8(&res.b, 0x79);                 /* end tag */
	put8(&res.b, 0x00);                 /* checksum 0: treated as correct */

	aml_init(&crs);
	put8(&crs.b, 0x0a);                 /* BytePrefix: buffer size */
	put8(&crs.b, (uint8_t)res.b.len);
	put(&crs.b, res.p, res.b.len);

	aml_init(&dev);
	put(&dev.b, "COM1", 4);
	aml_name(&dev.b, "_HID");
	put8(&dev.b, 0x0c);                 /* DWordPrefix */
	put32(&dev.b, eisa_id("PNP0501"));
	aml_name(&dev.b, "_UID");
	put8(&dev.b, 0x01);                 /* OneOp */
	aml_name(&dev.b, "_CRS");
	put8(&dev.b, 0x11);                 /* BufferOp */
	aml_pkg(&dev.b, crs.p, crs.b.len);

	put8(b, 0x5b);                      /* DeviceOp */
	put8(b, 0x82);
	aml_pkg(b, dev.p, dev.b.len);
}

/* 5.2.11.1 DSDT: \_SB.COM1 and \_S5 (soft-off through PM1a_CNT). */
static void build_dsdt(struct acpi_buf *b, struct acpi_layout *l)
{
	size_t t = table_begin(b, l, "DSDT", 2);
	struct aml scope, s5;

	aml_init(&scope);
	put(&scope.b, "\\_SB_", 5);
	aml_com1(&scope.b);
	put8(b, 0x10);                      /* ScopeOp */
	aml_pkg(b, scope.p, scope.b.len);

	aml_init(&s5);
	put8(&s5.b, 4);                     /* NumElements */
	put8(&s5.b, 0x0a);                  /* SLP_TYPa */
	put8(&s5.b, ACPI_SLP_TYP_S5);
	put8(&s5.b, 0x0a);                  /* SLP_TYPb */
	put8(&s5.b, ACPI_SLP_TYP_S5);
	put8(&s5.b, 0x00);                  /* reserved */
	put8(&s5.b, 0x00);
	aml_name(b, "_S5_");
	put8(b, 0x12);                      /* PackageOp */
	aml_pkg(b, s5.p, s5.b.len);
	table_end(b, l, t, true);
}

/*
 * 5.2.12 MADT: LAPICs, the IOAPIC, ISA overrides, LINT1 = NMI.  APIC IDs
 * above 254 get x2APIC entries (Linux takes those for them only).
 */
static void build_madt(struct acpi_buf *b, struct acpi_layout *l, const struct vm_topology *t)
{
	size_t start = table_begin(b, l, "APIC", 5);

	put32(b, ACPI_LAPIC_GPA);
	put32(b, 1);                        /* PCAT_COMPAT: dual 8259s present */
	for (unsigned i = 0; i < t->nr_cpus; i++) {
		if (t->cpus[i].apic_id > TOPO_MAX_XAPIC_ID) {
			put8(b, 9);         /* processor local x2APIC */
			put8(b, 16);
			put16(b, 0);
			put32(b, t->cpus[i].apic_id);
			put32(b, 1);        /* enabled */
			put32(b, i);        /* ACPI processor UID */
			continue;
		}
		put8(b, 0);                 /* processor local APIC */
		put8(b, 8);
		put8(b, (uint8_t)i);        /* ACPI processor UID */
		put8(b, (uint8_t)t->cpus[i].apic_id);
		put32(b, 1);                /* enabled */
	}
	put8(b, 1);                         /* I/O APIC */
	put8(b, 12);
	put8(b, ACPI_IOAPIC_ID);
	put8(b, 0);
	put32(b, ACPI_IOAPIC_GPA);
	put32(b, ACPI_IOAPIC_GSI_BASE);
	/* The PIT's IRQ 0 is wired to IOAPIC pin 2, as on every PC. */
	put8(b, 2);                         /* interrupt source override */
	put8(b, 10);
	put8(b, 0);                         /* bus: ISA */
	put8(b, 0);                         /* source IRQ */
	put32(b, 2);                        /* GSI */
	put16(b, 0);                        /* flags: conforms to the bus */
	/* The SCI: level-triggered, active high on pin 9. */
	put8(b, 2);
	put8(b, 10);
	put8(b, 0);
	put8(b, ACPI_SCI_IRQ);
	put32(b, ACPI_SCI_IRQ);
	put16(b, (1u << 0) | (3u << 2));    /* active high, level */
	put8(b, 4);                         /* local APIC NMI */
	put8(b, 6);
	put8(b, 0xff);                      /* every processor */
	put16(b, 0);                        /* flags: conforms */
	put8(b, 1);                         /* LINT1 */
	if (t->x2apic) {
		put8(b, 0xA);               /* local x2APIC NMI */
		put8(b, 12);
		put16(b, 0);                /* flags: conforms */
		put32(b, 0xFFFFFFFFu);      /* every processor */
		put8(b, 1);                 /* LINT1 */
		put8(b, 0);
		put16(b, 0);
	}
	table_end(b, l, start, true);
}

/* 5.2.16 SRAT: each vCPU's and each node's RAM's proximity domain (= guest node). */
static void build_srat(struct acpi_buf *b, struct acpi_layout *l, const struct vm_topology *t)
{
	size_t start = table_begin(b, l, "SRAT", 3);

	put32(b, 1);                        /* reserved, 1 for backward compatibility */
	put64(b, 0);                        /* reserved */
	for (unsigned i = 0; i < t->nr_cpus; i++) {
		uint32_t pd = t->cpus[i].node;

		if (t->cpus[i].apic_id > TOPO_MAX_XAPIC_ID) {
			put8(b, 2);         /* processor local x2APIC affinity */
			put8(b, 24);
			put16(b, 0);
			put32(b, pd);
			put32(b, t->cpus[i].apic_id);
			put32(b, 1);        /* enabled */
			put32(b, 0);        /* clock domain */
			put32(b, 0);
			continue;
		}
		put8(b, 0);                 /* processor local APIC affinity */
		put8(b, 16);
		put8(b, (uint8_t)pd);       /* proximity domain [7:0] */
		put8(b, (uint8_t)t->cpus[i].apic_id);
		put32(b, 1);                /* enabled */
		put8(b, 0);                 /* local SAPIC EID */
		put8(b, (uint8_t)(pd >> 8)); /* proximity domain [31:8] */
		put8(b, (uint8_t)(pd >> 16));
		put8(b, (uint8_t)(pd >> 24));
		put32(b, 0);                /* clock domain */
	}
	for (unsigned n = 0; n < t->nr_nodes; n++) {
		struct topo_range r[TOPO_NODE_RANGES_MAX];
		unsigned nr = topo_node_ranges(t, n, r);

		for (unsigned i = 0; i < nr; i++) {
			put8(b, 1);         /* memory affinity */
			put8(b, 40);
			put32(b, n);        /* proximity domain */
			put16(b, 0);
			put32(b, (uint32_t)r[i].gpa);
			put32(b, (uint32_t)(r[i].gpa >> 32));
			put32(b, (uint32_t)r[i].size);
			put32(b, (uint32_t)(r[i].size >> 32));
			put32(b, 0);
			put32(b, 1);        /* enabled */
			put64(b, 0);
		}
	}
	table_end(b, l, start, true);
}

/* 5.2.17 SLIT: the distance matrix, row-major by proximity domain. */
static void build_slit(struct acpi_buf *b, struct acpi_layout *l, const struct vm_topology *t)
{
	size_t start = table_begin(b, l, "SLIT", 1);

	put64(b, t->nr_nodes);
	for (unsigned i = 0; i < t->nr_nodes; i++)
		for (unsigned j = 0; j < t->nr_nodes; j++)
			put8(b, t->distance[i][j]);
	table_end(b, l, start, true);
}

static long acpi_layout_build(const struct vm_topology *t, void *buf, uint64_t base,
			      size_t capacity, struct acpi_layout *l, char *err)
{
	struct acpi_buf b = { .p = buf, .cap = capacity };
	size_t xsdt, fadt, facs, dsdt, madt, srat, slit, rsdp_len = 36;

	if (!t->nr_cpus || !t->nr_nodes)
		return ERR("ACPI: the topology is empty");
	if (base & 0xf)
		return ERR("ACPI: base 0x%" PRIx64 " is not 16-byte aligned", base);
	if (base + capacity > (1ull << 32))
		return ERR("ACPI: tables at 0x%" PRIx64 " would not all be below 4 GiB", base);
	memset(l, 0, sizeof(*l));

	/*
	 * Lay out first, write second: the RSDP and XSDT point at tables that
	 * follow them, so their offsets are computed from the sizes before
	 * anything is written.
	 */
	xsdt = 48;
	fadt = (xsdt + ACPI_HEADER_LEN + 4 * 8 + 15) & ~(size_t)15;
	facs = (fadt + 276 + 63) & ~(size_t)63;
	dsdt = facs + 64;

	/* 5.2.5.3 RSDP, revision 2: the XSDT's address, two checksums. */
	put(&b, "RSD PTR ", 8);
	put8(&b, 0);
	put(&b, ACPI_OEM_ID, 6);
	put8(&b, 2);
	put32(&b, 0);                       /* RSDT: none */
	put32(&b, (uint32_t)rsdp_len);
	put64(&b, base + xsdt);
	put8(&b, 0);
	put_zero(&b, 3);
	if (!b.overflow) {
		b.p[8] = checksum(b.p, 20);
		b.p[32] = checksum(b.p, 36);
	}
	strcpy(l->tables[0].sig, "RSDP");
	l->tables[0].len = rsdp_len;
	l->nr = 1;
	align(&b, 16);
	put_zero(&b, xsdt - b.len);

	/* XSDT, its entries patched once the tables' places are known. */
	size_t x = table_begin(&b, l, "XSDT", 1);
	size_t entries = b.len;

	put_zero(&b, 4 * 8);
	table_end(&b, l, x, false);

	align(&b, 16);
	build_fadt(&b, l, base + facs, base + dsdt);
	align(&b, 64);
	build_facs(&b, l);
	build_dsdt(&b, l);
	align(&b, 16);
	madt = b.len;
	build_madt(&b, l, t);
	align(&b, 16);
	srat = b.len;
	build_srat(&b, l, t);
	align(&b, 16);
	slit = b.len;
	build_slit(&b, l, t);

	if (b.overflow)
		return ERR("ACPI: the tables for %u vCPUs and %u nodes do not fit in %zu bytes",
			   t->nr_cpus, t->nr_nodes, capacity);
	/* The fixed offsets above must be where the tables really went. */
	if (l->tables[2].off != fadt || l->tables[3].off != facs || l->tables[4].off != dsdt)
		return ERR("ACPI: internal layout error");
	patch32(&b, entries + 0, (uint32_t)(base + fadt));
	patch32(&b, entries + 4, (uint32_t)((base + fadt) >> 32));
	patch32(&b, entries + 8, (uint32_t)(base + madt));
	patch32(&b, entries + 12, (uint32_t)((base + madt) >> 32));
	patch32(&b, entries + 16, (uint32_t)(base + srat));
	patch32(&b, entries + 20, (uint32_t)((base + srat) >> 32));
	patch32(&b, entries + 24, (uint32_t)(base + slit));
	patch32(&b, entries + 28, (uint32_t)((base + slit) >> 32));
	b.p[x + 9] = checksum(b.p + x, ACPI_HEADER_LEN + 4 * 8);
	return (long)b.len;
}

long acpi_build(const struct vm_topology *t, void *buf, uint64_t base_gpa, size_t capacity,
		uint64_t *rsdp_gpa, char *err)
{
	struct acpi_layout l;
	long n = acpi_layout_build(t, buf, base_gpa, capacity, &l, err);

	if (n >= 0 && rsdp_gpa)
		*rsdp_gpa = base_gpa;
	return n;
}

static int write_file(const char *path, const void *p, size_t n, char *err)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	const uint8_t *c = p;

	if (fd < 0)
		return ERR("cannot create %s: %s", path, strerror(errno));
	while (n) {
		ssize_t w = write(fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			SETERR("cannot write %s: %s", path, strerror(w < 0 ? errno : EIO));
			close(fd);
			return -1;
		}
		c += w;
		n -= (size_t)w;
	}
	if (close(fd))
		return ERR("cannot write %s: %s", path, strerror(errno));
	return 0;
}

int acpi_dump(const struct vm_topology *t, const char *dir, char *err)
{
	struct acpi_layout l;
	uint8_t *buf = malloc(ACPI_MAX_SIZE);
	int ret = 0;

	if (!buf)
		return ERR("out of memory");
	if (acpi_layout_build(t, buf, ACPI_BASE_GPA, ACPI_MAX_SIZE, &l, err) < 0) {
		free(buf);
		return -1;
	}
	for (unsigned i = 0; i < l.nr && !ret; i++) {
		char path[4096];

		if ((size_t)snprintf(path, sizeof(path), "%s/%s.dat", dir, l.tables[i].sig) >=
		    sizeof(path)) {
			ret = ERR("directory name too long: %s", dir);
			break;
		}
		ret = write_file(path, buf + l.tables[i].off, l.tables[i].len, err);
	}
	free(buf);
	return ret;
}
