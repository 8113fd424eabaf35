#include "images/probe/acpi.h"

#include <stdarg.h>

#include "bench/fmt.h"

#define SDT_HDR 36

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static int sig_is(const uint8_t *p, const char *sig)
{
	return p[0] == sig[0] && p[1] == sig[1] && p[2] == sig[2] && p[3] == sig[3];
}

static void problem(struct acpi_topo *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problem(struct acpi_topo *t, const char *fmt, ...)
{
	size_t used = 0;
	va_list ap;

	while (used < PROBE_ACPI_ERR_MAX && t->errors[used])
		used++;
	t->nr_errors++;
	if (used + 8 >= PROBE_ACPI_ERR_MAX)
		return; /* full: the count still says how many */
	used += (size_t)bfmt_snprintf(t->errors + used, PROBE_ACPI_ERR_MAX - used, "acpi: ");
	va_start(ap, fmt);
	if (used < PROBE_ACPI_ERR_MAX)
		used += (size_t)bfmt_vsnprintf(t->errors + used, PROBE_ACPI_ERR_MAX - used, fmt, ap);
	va_end(ap);
	if (used + 1 < PROBE_ACPI_ERR_MAX) {
		t->errors[used] = '\n';
		t->errors[used + 1] = '\0';
	}
}

/* A whole table: header first to learn its length. */
static const uint8_t *map_table(const struct acpi_access *a, uint64_t phys, uint32_t *len)
{
	const uint8_t *h = a->map(a->ctx, phys, SDT_HDR);

	if (!h)
		return NULL;
	*len = rd32(h + 4);
	if (*len < SDT_HDR)
		return NULL;
	return a->map(a->ctx, phys, *len);
}

/* The XSDT's (or RSDT's) entries: calls fn for each table address. */
static int walk_root(const struct acpi_access *a, uint64_t rsdp, struct acpi_topo *t,
		     void (*fn)(const struct acpi_access *, uint64_t, void *), void *arg)
{
	const uint8_t *r = a->map(a->ctx, rsdp, 20);
	uint64_t root;
	unsigned width;
	uint32_t len;

	if (!r || !sig_is(r, "RSD ") || !sig_is(r + 4, "PTR ")) {
		if (t)
			problem(t, "no RSDP at 0x%lx", rsdp);
		return -1;
	}
	if (r[15] >= 2 && (r = a->map(a->ctx, rsdp, 36)) && rd64(r + 24)) {
		root = rd64(r + 24);
		width = 8;
	} else {
		root = rd32(r + 16);
		width = 4;
	}

	const uint8_t *x = map_table(a, root, &len);

	if (!x || !sig_is(x, width == 8 ? "XSDT" : "RSDT")) {
		if (t)
			problem(t, "the RSDP points to no %s at 0x%lx", width == 8 ? "XSDT" : "RSDT",
				root);
		return -1;
	}
	for (uint32_t off = SDT_HDR; off + width <= len; off += width)
		fn(a, width == 8 ? rd64(x + off) : rd32(x + off), arg);
	return 0;
}

struct find_ctx {
	struct acpi_topo *t;
};

static void find_table(const struct acpi_access *a, uint64_t phys, void *arg)
{
	struct acpi_topo *t = ((struct find_ctx *)arg)->t;
	const uint8_t *h = a->map(a->ctx, phys, SDT_HDR);
	uint64_t *slot = NULL;

	if (!h) {
		problem(t, "the XSDT lists a table at 0x%lx outside memory", phys);
		return;
	}
	if (sig_is(h, "APIC"))
		slot = &t->madt;
	else if (sig_is(h, "SRAT"))
		slot = &t->srat;
	else if (sig_is(h, "SLIT"))
		slot = &t->slit;
	else if (sig_is(h, "FACP"))
		slot = &t->fadt;
	if (!slot)
		return;
	if (*slot)
		problem(t, "two %.4s tables (0x%lx and 0x%lx)", (const char *)h, *slot, phys);
	else
		*slot = phys;
}

static struct acpi_cpu *cpu_by_apic(struct acpi_topo *t, uint32_t apic)
{
	for (uint32_t i = 0; i < t->nr_cpus; i++)
		if (t->cpus[i].apic_id == apic)
			return &t->cpus[i];
	return NULL;
}

static void add_cpu(struct acpi_topo *t, uint32_t apic, uint32_t uid, uint32_t flags, int x2)
{
	if (!(flags & 1)) {
		t->nr_disabled++;
		return;
	}
	if (cpu_by_apic(t, apic)) {
		problem(t, "MADT: APIC ID %u listed twice", apic);
		return;
	}
	if (apic == 0xffffffffu || (!x2 && apic == 0xff)) {
		problem(t, "MADT: processor %u has the broadcast APIC ID 0x%x", uid, apic);
		return;
	}
	if (t->nr_cpus == PROBE_ACPI_MAX_CPUS) {
		problem(t, "MADT: more than %u processors", PROBE_ACPI_MAX_CPUS);
		return;
	}
	t->cpus[t->nr_cpus++] = (struct acpi_cpu){ apic, uid, PROBE_ACPI_NO_DOMAIN, (uint32_t)x2 };
}

static void parse_madt(const struct acpi_access *a, struct acpi_topo *t)
{
	uint32_t len;
	const uint8_t *m = map_table(a, t->madt, &len);

	if (!m || len < 44) {
		problem(t, "MADT at 0x%lx is truncated", t->madt);
		return;
	}
	t->lapic_addr = rd32(m + 36);
	t->madt_flags = rd32(m + 40);
	for (uint32_t off = 44; off < len;) {
		const uint8_t *e = m + off;
		uint8_t type, elen;

		if (len - off < 2 || (elen = e[1]) < 2 || elen > len - off) {
			problem(t, "MADT: malformed entry at offset %u", off);
			return;
		}
		type = e[0];
		if (type == 0 && elen >= 8) {
			add_cpu(t, e[3], e[2], rd32(e + 4), 0);
		} else if (type == 9 && elen >= 16) {
			add_cpu(t, rd32(e + 4), rd32(e + 12), rd32(e + 8), 1);
		} else if (type == 1 && elen >= 12) {
			if (!t->nr_ioapics++)
				t->ioapic_addr = rd32(e + 4);
		} else if (type == 5 && elen >= 12) {
			t->lapic_addr = rd64(e + 4);
		} else if ((type == 0 && elen < 8) || (type == 9 && elen < 16) ||
			   (type == 1 && elen < 12) || (type == 5 && elen < 12)) {
			problem(t, "MADT: entry of type %u too short (%u bytes)", type, elen);
		}
		off += elen;
	}
	if (t->lapic_addr != 0xfee00000)
		problem(t, "MADT: local APIC at 0x%lx, not 0xfee00000", t->lapic_addr);
	if (!t->nr_cpus)
		problem(t, "MADT: no enabled processor");
}

static void srat_cpu(struct acpi_topo *t, uint32_t apic, uint32_t domain, uint32_t flags)
{
	struct acpi_cpu *c;

	if (!(flags & 1))
		return;
	c = cpu_by_apic(t, apic);
	if (!c)
		problem(t, "SRAT: APIC ID %u (domain %u) is not an enabled MADT processor", apic,
			domain);
	else if (c->domain != PROBE_ACPI_NO_DOMAIN)
		problem(t, "SRAT: APIC ID %u listed twice (domains %u and %u)", apic, c->domain,
			domain);
	else
		c->domain = domain;
}

static void srat_mem(struct acpi_topo *t, uint64_t base, uint64_t len, uint32_t domain,
		     uint32_t flags)
{
	if (!(flags & 1) || !len)
		return;
	if (base + len < base) {
		problem(t, "SRAT: memory range 0x%lx + 0x%lx wraps around", base, len);
		return;
	}
	for (uint32_t i = 0; i < t->nr_mem; i++) {
		const struct acpi_mem *m = &t->mem[i];

		if (base < m->base + m->len && m->base < base + len) {
			problem(t, "SRAT: memory 0x%lx-0x%lx (domain %u) overlaps 0x%lx-0x%lx "
				"(domain %u)", base, base + len - 1, domain, m->base,
				m->base + m->len - 1, m->domain);
			return;
		}
	}
	if (t->nr_mem == PROBE_ACPI_MAX_MEM) {
		problem(t, "SRAT: more than %u memory ranges", PROBE_ACPI_MAX_MEM);
		return;
	}
	t->mem[t->nr_mem++] = (struct acpi_mem){ base, len, domain, flags };
}

static void parse_srat(const struct acpi_access *a, struct acpi_topo *t)
{
	uint32_t len;
	const uint8_t *s = map_table(a, t->srat, &len);

	if (!s || len < 48) {
		problem(t, "SRAT at 0x%lx is truncated", t->srat);
		return;
	}
	for (uint32_t off = 48; off < len;) {
		const uint8_t *e = s + off;
		uint8_t type, elen;

		if (len - off < 2 || (elen = e[1]) < 2 || elen > len - off) {
			problem(t, "SRAT: malformed entry at offset %u", off);
			return;
		}
		type = e[0];
		if (type == 0 && elen >= 16)
			srat_cpu(t, e[3], e[2] | (uint32_t)e[9] << 8 | (uint32_t)e[10] << 16 |
				 (uint32_t)e[11] << 24, rd32(e + 4));
		else if (type == 1 && elen >= 40)
			srat_mem(t, rd64(e + 8), rd64(e + 16), rd32(e + 2), rd32(e + 28));
		else if (type == 2 && elen >= 24)
			srat_cpu(t, rd32(e + 8), rd32(e + 4), rd32(e + 12));
		else if (type <= 2)
			problem(t, "SRAT: entry of type %u too short (%u bytes)", type, elen);
		off += elen;
	}
	for (uint32_t i = 0; i < t->nr_cpus; i++)
		if (t->cpus[i].domain == PROBE_ACPI_NO_DOMAIN)
			problem(t, "SRAT: no proximity domain for APIC ID %u", t->cpus[i].apic_id);
	if (!t->nr_mem)
		problem(t, "SRAT: no enabled memory range");
}

static void add_domain(struct acpi_topo *t, uint32_t d)
{
	uint32_t i = 0;

	if (d == PROBE_ACPI_NO_DOMAIN)
		return;
	while (i < t->nr_domains && t->domains[i] < d)
		i++;
	if (i < t->nr_domains && t->domains[i] == d)
		return;
	if (t->nr_domains == PROBE_ACPI_MAX_DOMAINS) {
		problem(t, "more than %u proximity domains", PROBE_ACPI_MAX_DOMAINS);
		return;
	}
	for (uint32_t j = t->nr_domains; j > i; j--)
		t->domains[j] = t->domains[j - 1];
	t->domains[i] = d;
	t->nr_domains++;
}

int acpi_domain_index(const struct acpi_topo *t, uint32_t domain)
{
	for (uint32_t i = 0; i < t->nr_domains; i++)
		if (t->domains[i] == domain)
			return (int)i;
	return -1;
}

static void parse_slit(const struct acpi_access *a, struct acpi_topo *t)
{
	uint32_t len;
	const uint8_t *s = map_table(a, t->slit, &len);
	uint64_t n;

	if (!s || len < 44) {
		problem(t, "SLIT at 0x%lx is truncated", t->slit);
		return;
	}
	n = rd64(s + 36);
	t->slit_localities = n;
	if (n > 0xffff || 44 + n * n > len) {
		problem(t, "SLIT: %lu localities do not fit in its %u bytes", n, len);
		return;
	}
	if (t->nr_domains && t->domains[t->nr_domains - 1] >= n) {
		problem(t, "SLIT: %lu localities, but the SRAT has domain %u", n,
			t->domains[t->nr_domains - 1]);
		return;
	}
	for (uint64_t i = 0; i < n; i++) {
		for (uint64_t j = 0; j < n; j++) {
			uint8_t d = s[44 + i * n + j];
			int di = acpi_domain_index(t, (uint32_t)i), dj = acpi_domain_index(t, (uint32_t)j);

			if (i == j && d != 10)
				problem(t, "SLIT: distance(%lu, %lu) = %u, must be 10", i, j, d);
			else if (i != j && d <= 10)
				problem(t, "SLIT: distance(%lu, %lu) = %u, must be > 10", i, j, d);
			else if (i != j && d != s[44 + j * n + i])
				problem(t, "SLIT: distance(%lu, %lu) = %u but distance(%lu, %lu) = %u",
					i, j, d, j, i, s[44 + j * n + i]);
			if (di >= 0 && dj >= 0)
				t->distance[di][dj] = d;
		}
	}
}

/* FADT fields (ACPI 6.x, 5.2.9): DSDT, PM1a_CNT_BLK, X_DSDT. */
#define FADT_DSDT 40
#define FADT_PM1A_CNT 64
#define FADT_X_DSDT 140

/*
 * SLP_TYPa of \_S5 in the DSDT: Name (_S5, Package () { SLP_TYPa, ... }).
 * A byte scan for the name, as small OSes do, not an AML interpreter: the
 * name is only looked for where a NameOp, maybe with a root prefix, stands
 * right before it.
 */
static uint32_t dsdt_s5(const uint8_t *p, uint32_t len)
{
	for (uint32_t i = SDT_HDR + 1; i + 8 <= len; i++) {
		const uint8_t *q;
		uint32_t extra;

		if (!sig_is(p + i, "_S5_"))
			continue;
		if (!(p[i - 1] == 0x08 || (p[i - 1] == '\\' && p[i - 2] == 0x08)))
			continue;
		q = p + i + 4;
		if (*q++ != 0x12) /* PackageOp */
			continue;
		extra = *q >> 6;  /* PkgLength: its lead byte says how many follow */
		q += 1 + extra + 1; /* and NumElements */
		if (q >= p + len)
			return PROBE_ACPI_NO_S5;
		switch (*q) {
		case 0x00: /* ZeroOp */
		case 0x01: /* OneOp */
			return *q;
		case 0x0a: /* BytePrefix */
			return q + 1 < p + len ? q[1] : PROBE_ACPI_NO_S5;
		}
		return PROBE_ACPI_NO_S5;
	}
	return PROBE_ACPI_NO_S5;
}

static void parse_fadt(const struct acpi_access *a, struct acpi_topo *t)
{
	uint32_t len, dlen;
	const uint8_t *f = map_table(a, t->fadt, &len), *d;

	if (!f || len < FADT_PM1A_CNT + 4) {
		problem(t, "the FADT at 0x%lx is too short", t->fadt);
		return;
	}
	t->pm1a_cnt = rd32(f + FADT_PM1A_CNT);
	t->dsdt = rd32(f + FADT_DSDT);
	if (len >= FADT_X_DSDT + 8 && rd64(f + FADT_X_DSDT))
		t->dsdt = rd64(f + FADT_X_DSDT);
	if (!t->dsdt)
		return;
	d = map_table(a, t->dsdt, &dlen);
	if (!d || !sig_is(d, "DSDT")) {
		problem(t, "the FADT's DSDT at 0x%lx is not a DSDT", t->dsdt);
		return;
	}
	t->s5_typ = dsdt_s5(d, dlen);
}

unsigned acpi_parse(const struct acpi_access *a, uint64_t rsdp, struct acpi_topo *t)
{
	struct find_ctx fc = { t };

	__builtin_memset(t, 0, sizeof(*t));
	t->rsdp = rsdp;
	t->s5_typ = PROBE_ACPI_NO_S5;
	if (walk_root(a, rsdp, t, find_table, &fc))
		return t->nr_errors;
	if (!t->madt) {
		problem(t, "no MADT");
		return t->nr_errors;
	}
	parse_madt(a, t);
	if (t->srat) {
		parse_srat(a, t);
	} else {
		/* No SRAT: one node, domain 0, holding everything. */
		for (uint32_t i = 0; i < t->nr_cpus; i++)
			t->cpus[i].domain = 0;
	}
	for (uint32_t i = 0; i < t->nr_cpus; i++)
		add_domain(t, t->cpus[i].domain);
	for (uint32_t i = 0; i < t->nr_mem; i++)
		add_domain(t, t->mem[i].domain);
	if (!t->nr_domains)
		add_domain(t, 0);
	if (t->slit)
		parse_slit(a, t);
	else if (t->nr_domains > 1)
		problem(t, "no SLIT, with %u proximity domains", t->nr_domains);
	if (t->fadt)
		parse_fadt(a, t);
	return t->nr_errors;
}

struct sum_ctx {
	char *err;
	size_t size;
	unsigned bad;
};

static uint8_t byte_sum(const uint8_t *p, uint32_t len)
{
	uint8_t s = 0;

	for (uint32_t i = 0; i < len; i++)
		s = (uint8_t)(s + p[i]);
	return s;
}

static void note_bad(struct sum_ctx *c, const char *what, uint64_t phys)
{
	size_t used = 0;

	while (used < c->size && c->err[used])
		used++;
	c->bad++;
	if (used < c->size)
		bfmt_snprintf(c->err + used, c->size - used, "acpi: %s at 0x%lx: bad checksum\n",
			      what, phys);
}

static void sum_table(const struct acpi_access *a, uint64_t phys, void *arg)
{
	struct sum_ctx *c = arg;
	uint32_t len;
	const uint8_t *tab = map_table(a, phys, &len);
	char sig[5] = "????";

	if (!tab) {
		note_bad(c, "unreadable table", phys);
		return;
	}
	__builtin_memcpy(sig, tab, 4);
	if (byte_sum(tab, len))
		note_bad(c, sig, phys);
}

unsigned acpi_verify_checksums(const struct acpi_access *a, uint64_t rsdp, char *err, size_t size)
{
	struct sum_ctx c = { err, size, 0 };
	const uint8_t *r = a->map(a->ctx, rsdp, 36);

	if (size)
		err[0] = '\0';
	if (!r || byte_sum(r, 20))
		note_bad(&c, "RSDP", rsdp);
	else if (r[15] >= 2 && byte_sum(r, 36))
		note_bad(&c, "RSDP (extended)", rsdp);

	const uint8_t *h = NULL;
	uint64_t root = 0;

	if (r) {
		root = r[15] >= 2 && rd64(r + 24) ? rd64(r + 24) : rd32(r + 16);
		h = a->map(a->ctx, root, SDT_HDR);
	}
	if (h) {
		uint32_t len;
		const uint8_t *x = map_table(a, root, &len);

		if (!x || byte_sum(x, len))
			note_bad(&c, "XSDT", root);
	}
	walk_root(a, rsdp, NULL, sum_table, &c);
	return c.bad;
}
