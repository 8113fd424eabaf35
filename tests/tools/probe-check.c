/*
 * probe-check: judge a probe guest's console output.
 *
 *   probe-check --vcpus V --numa N --mem SIZE [--topo FILE] [--ref FILE]
 *               [--matrices M1,M2,...] [--distance D] [--per-host K --host-distance H]
 *               [--layout gvm|qemu] [--expect ipi,irq,clock] LOG
 *
 * Checks that the probe passed, that the topology it printed is the one
 * asked for (V vCPUs, N nodes, SIZE of RAM: APIC IDs and memory ranges as
 * docs/topology.md defines them, computed here independently), and equal
 * to what `gvm topo` printed (--topo), that every AP came up, and that
 * every SpMV checksum equals the host's (--ref: bench/spmv output) and that
 * the matrices listed ran.  Prints each problem; exits 0 only if none.
 *
 * --expect: those workloads covered every CPU: an IPI round trip by APIC ID
 * to every other CPU (and by LDR bit to the first 8), a device interrupt to
 * every CPU, a clock comparison with every other CPU in causal order, each
 * line naming the right NUMA node (vCPU i is in node i / (V / N)).
 *
 * --per-host K: the nodes come K to a host (gvm --numa host): H between two
 * nodes of one host, D between hosts.
 *
 * --layout qemu: the machine is QEMU's (-smp V -numa ... with N equal nodes):
 * APIC IDs are the CPU indexes, and a node's ranges need only add up to its
 * share (QEMU leaves 0xa0000-0xfffff out of node 0).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/parse.h"

#define MAXN 64
#define MAXC 1025 /* gvm allows 1024 vCPUs */
#define HOLE_START 0xC0000000ull
#define HOLE_SIZE 0x40000000ull

static unsigned problems;

static void bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void bad(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "probe-check: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	problems++;
}

static char **read_lines(const char *path, unsigned *n)
{
	FILE *f = fopen(path, "r");
	char buf[8192], **lines = NULL;
	unsigned cap = 0;

	*n = 0;
	if (!f) {
		fprintf(stderr, "probe-check: cannot open '%s'\n", path);
		exit(2);
	}
	while (fgets(buf, sizeof(buf), f)) {
		buf[strcspn(buf, "\r\n")] = '\0';
		if (*n == cap) {
			cap = cap ? 2 * cap : 256;
			lines = realloc(lines, cap * sizeof(*lines));
		}
		lines[(*n)++] = strdup(buf);
	}
	fclose(f);
	return lines;
}

static void free_lines(char **lines, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		free(lines[i]);
	free(lines);
}

/* "key=value" in a line: the value, up to the next space, in out. */
static int field(const char *line, const char *key, char *out, size_t size)
{
	size_t kl = strlen(key);

	for (const char *p = line; (p = strstr(p, key)); p++) {
		if ((p == line || p[-1] == ' ') && p[kl] == '=') {
			size_t n = strcspn(p + kl + 1, " ");

			snprintf(out, size, "%.*s", (int)(n < size ? n : size - 1), p + kl + 1);
			return 0;
		}
	}
	return -1;
}

struct expect {
	int qemu;
	int x2apic; /* an APIC ID above 254: the probe must use x2APIC */
	unsigned ncpus, nnodes;
	uint64_t mem;
	unsigned apic[MAXC], node_of[MAXC];
	unsigned nranges[MAXN];
	uint64_t rb[MAXN][2], re[MAXN][2]; /* inclusive ends */
	unsigned dist[MAXN][MAXN];
};

/* docs/topology.md: bit-packed APIC IDs; RAM split evenly, 1 GiB hole at 3 GiB. */
static void expect_from_args(struct expect *e, unsigned distance, unsigned per_host,
			     unsigned host_distance)
{
	unsigned per = e->ncpus / e->nnodes, bits = 0;
	uint64_t share = e->mem / e->nnodes;

	while ((1u << bits) < per)
		bits++;
	for (unsigned c = 0; c < e->ncpus; c++) {
		e->node_of[c] = c / per;
		e->apic[c] = e->qemu ? c : (c / per) << bits | (c % per);
		if (e->apic[c] > 254)
			e->x2apic = 1;
	}
	for (unsigned n = 0; n < e->nnodes; n++) {
		uint64_t b = n * share, end = b + share;

		e->nranges[n] = 0;
		if (b < HOLE_START) {
			uint64_t lo_end = end < HOLE_START ? end : HOLE_START;

			e->rb[n][0] = b;
			e->re[n][0] = lo_end - 1;
			e->nranges[n] = 1;
			b = lo_end;
		}
		if (b < end) {
			e->rb[n][e->nranges[n]] = b + HOLE_SIZE;
			e->re[n][e->nranges[n]] = end + HOLE_SIZE - 1;
			e->nranges[n]++;
		}
		for (unsigned m = 0; m < e->nnodes; m++)
			e->dist[n][m] = n == m ? 10 :
					n / per_host == m / per_host ? host_distance : distance;
	}
}

/* `gvm topo` output must say the same. */
static void compare_topo(const struct expect *e, const char *path)
{
	unsigned n, cpus = 0, ranges[MAXN] = { 0 }, row = 0;
	char **l = read_lines(path, &n);
	int in_dist = 0;

	for (unsigned i = 0; i < n; i++) {
		unsigned c, a, nd;
		uint64_t b, en;
		int off;

		if (sscanf(l[i], "cpu %u: apic-id %u, node %u", &c, &a, &nd) == 3) {
			if (c >= e->ncpus || a != e->apic[c] || nd != e->node_of[c])
				bad("gvm topo: '%s' differs from the expected APIC ID %u, node %u", l[i],
				    c < e->ncpus ? e->apic[c] : 0, c < e->ncpus ? e->node_of[c] : 0);
			cpus++;
		} else if (sscanf(l[i], "node %u: range 0x%" SCNx64 "-0x%" SCNx64, &nd, &b, &en) ==
			   3) {
			unsigned k = nd < MAXN ? ranges[nd]++ : 0;

			if (nd >= e->nnodes || k >= e->nranges[nd] || b != e->rb[nd][k] ||
			    en != e->re[nd][k])
				bad("gvm topo: '%s' is not the expected range", l[i]);
		} else if (!strcmp(l[i], "distances:")) {
			in_dist = 1;
			i++; /* header */
		} else if (in_dist && (off = -1, sscanf(l[i], " %u%n", &nd, &off)) == 1 && off > 0) {
			const char *p = l[i] + off;
			unsigned v, k = 0;

			while (sscanf(p, " %u%n", &v, &off) == 1) {
				if (nd >= e->nnodes || k >= e->nnodes || v != e->dist[nd][k])
					bad("gvm topo: distance(%u, %u) = %u, expected %u", nd, k, v,
					    nd < e->nnodes && k < e->nnodes ? e->dist[nd][k] : 0);
				p += off;
				k++;
			}
			if (++row == e->nnodes)
				in_dist = 0;
		}
	}
	if (cpus != e->ncpus)
		bad("gvm topo: %u cpu lines, expected %u", cpus, e->ncpus);
	free_lines(l, n);
}

static void check_topology(const struct expect *e, char **l, unsigned n)
{
	unsigned seen_nodes = 0, up = 0, drows = 0;
	int have_summary = 0, have_mode = 0;
	const char *mode = e->x2apic ? "apic: mode=x2apic" : "apic: mode=xapic";
	char want[64];

	snprintf(want, sizeof(want), "topology: nodes=%u cpus=%u", e->nnodes, e->ncpus);
	for (unsigned i = 0; i < n; i++) {
		unsigned nd, c, a;
		int off = -1;

		if (!strcmp(l[i], want))
			have_summary = 1;
		if (!strcmp(l[i], mode))
			have_mode = 1;
		/* %n sentinels: sscanf counts conversions even when later literals differ. */
		if (sscanf(l[i], "topology: node %u cpus %n", &nd, &off) == 1 && off > 0) {
			const char *p = l[i] + off;
			unsigned k = 0, r = 0;

			seen_nodes++;
			if (nd >= e->nnodes) {
				bad("the probe saw node %u; %u nodes were asked for", nd, e->nnodes);
				continue;
			}
			/* cpus A,B,C mem X-Y,Z-W */
			while (*p && *p != ' ') {
				a = (unsigned)strtoul(p, (char **)&p, 10);
				while (k < e->ncpus && e->node_of[k] != nd)
					k++;
				if (k >= e->ncpus || e->apic[k] != a)
					bad("node %u: APIC ID %u not expected there (%s)", nd, a, l[i]);
				k++;
				if (*p == ',')
					p++;
			}
			for (unsigned j = 0; j < e->ncpus; j++)
				if (e->node_of[j] == nd && j >= k)
					bad("node %u: APIC ID %u missing (%s)", nd, e->apic[j], l[i]);
			if (strncmp(p, " mem ", 5)) {
				bad("node %u: no memory ranges (%s)", nd, l[i]);
				continue;
			}
			p += 5;
			if (e->qemu) {
				uint64_t total = 0, share = e->mem / e->nnodes;

				while (*p) {
					uint64_t b = strtoull(p, (char **)&p, 16), en;

					if (*p++ != '-')
						break;
					en = strtoull(p, (char **)&p, 16);
					total += en - b + 1;
					if (*p == ',')
						p++;
				}
				if (total > share || total + (1u << 20) < share)
					bad("node %u: %" PRIu64 " bytes of memory, expected %" PRIu64, nd,
					    total, share);
				continue;
			}
			while (*p) {
				uint64_t b = strtoull(p, (char **)&p, 16), en;

				if (*p++ != '-') {
					bad("node %u: malformed range in '%s'", nd, l[i]);
					break;
				}
				en = strtoull(p, (char **)&p, 16);
				if (r >= e->nranges[nd] || b != e->rb[nd][r] || en != e->re[nd][r])
					bad("node %u: range 0x%" PRIx64 "-0x%" PRIx64 " not expected", nd, b,
					    en);
				r++;
				if (*p == ',')
					p++;
			}
			if (r != e->nranges[nd])
				bad("node %u: %u memory ranges, expected %u", nd, r, e->nranges[nd]);
		} else if ((off = -1, sscanf(l[i], "distance: node %u%n", &nd, &off)) == 1 && off > 0) {
			const char *p = l[i] + off;
			unsigned v, k = 0;

			drows++;
			while (sscanf(p, " %u%n", &v, &off) == 1) {
				if (nd >= e->nnodes || k >= e->nnodes || v != e->dist[nd][k])
					bad("distance(%u, %u) = %u, expected %u", nd, k, v,
					    nd < e->nnodes && k < e->nnodes ? e->dist[nd][k] : 0);
				p += off;
				k++;
			}
			if (k != e->nnodes)
				bad("distance row %u has %u entries, expected %u", nd, k, e->nnodes);
		} else if ((off = -1, sscanf(l[i], "ap: cpu %u apic %u up%n", &c, &a, &off)) == 2 &&
			   off > 0 && (l[i][off] == ' ' || !l[i][off])) {
			if (c >= e->ncpus || a != e->apic[c])
				bad("'%s': expected APIC ID %u", l[i], c < e->ncpus ? e->apic[c] : 0);
			up++;
		} else if (strstr(l[i], "ap: cpu ") == l[i] && strstr(l[i], " down")) {
			bad("an AP did not come up: %s", l[i]);
		}
	}
	if (!have_summary)
		bad("no '%s' line", want);
	if (!have_mode)
		bad("no '%s' line", mode);
	if (seen_nodes != e->nnodes)
		bad("%u node lines, expected %u", seen_nodes, e->nnodes);
	if (drows != e->nnodes)
		bad("%u distance rows, expected %u", drows, e->nnodes);
	if (up != e->ncpus - 1)
		bad("%u APs up, expected %u", up, e->ncpus - 1);
}

static void check_spmv(char **l, unsigned n, const char *ref, const char *matrices)
{
	unsigned rn = 0;
	char **r = ref ? read_lines(ref, &rn) : NULL;
	char want[4096];

	for (unsigned i = 0; i < n; i++) {
		char m[256], key[64], a[64], b[64];
		int found = 0;

		if (strncmp(l[i], "spmv: ", 6) || field(l[i], "matrix", m, sizeof(m)))
			continue;
		for (unsigned j = 0; j < rn; j++) {
			char rm[256];

			if (strncmp(r[j], "spmv: ", 6) || field(r[j], "matrix", rm, sizeof(rm)) ||
			    strcmp(rm, m))
				continue;
			found = 1;
			for (const char *const *k = (const char *const[]){ "rows", "cols", "nnz",
									 "checksum", NULL };
			     *k; k++) {
				snprintf(key, sizeof(key), "%s", *k);
				if (field(l[i], key, a, sizeof(a)) || field(r[j], key, b, sizeof(b)) ||
				    strcmp(a, b))
					bad("spmv %s: %s=%s in the guest, %s on the host", m, key, a, b);
			}
		}
		if (ref && !found)
			bad("spmv %s: no host reference for it", m);
	}
	free_lines(r, rn);
	if (!matrices)
		return;
	snprintf(want, sizeof(want), "%s", matrices);
	for (char *s = strtok(want, ","); s; s = strtok(NULL, ",")) {
		int ran = 0;

		for (unsigned i = 0; i < n; i++) {
			char m[256];

			if (!strncmp(l[i], "spmv: ", 6) && !field(l[i], "matrix", m, sizeof(m)) &&
			    !strcmp(m, s))
				ran = 1;
		}
		if (!ran)
			bad("no spmv result for matrix %s", s);
	}
}

/* The line of kind ("ipi: ") whose to= is cpu (and whose key=want, if key). */
static const char *find_to(char **l, unsigned n, const char *kind, unsigned cpu, const char *key,
			   const char *want)
{
	char v[64];

	for (unsigned i = 0; i < n; i++) {
		if (strncmp(l[i], kind, strlen(kind)) || field(l[i], "to", v, sizeof(v)) ||
		    strtoul(v, NULL, 10) != cpu)
			continue;
		if (key && (field(l[i], key, v, sizeof(v)) || strcmp(v, want)))
			continue;
		return l[i];
	}
	return NULL;
}

static void check_cpu_line(const struct expect *e, const char *line, const char *what,
			   unsigned cpu)
{
	char v[64];

	if (!line) {
		bad("no %s line for cpu %u", what, cpu);
		return;
	}
	if (field(line, "node", v, sizeof(v)) || strtoul(v, NULL, 10) != e->node_of[cpu])
		bad("%s line for cpu %u names node %s, not %u", what, cpu, v, e->node_of[cpu]);
}

/* Workload w covered cpu c. */
static void check_expect_cpu(const struct expect *e, char **l, unsigned n, const char *w,
			     unsigned c)
{
	const char *line;
	char v[64];

	if (!strcmp(w, "ipi") && c) {
		check_cpu_line(e, find_to(l, n, "ipi: ", c, "dest", "physical"), "ipi (physical)",
			       c);
		if (c < 8 || e->x2apic)
			check_cpu_line(e, find_to(l, n, "ipi: ", c, "dest", "logical"),
				       "ipi (logical)", c);
	} else if (!strcmp(w, "irq")) {
		check_cpu_line(e, find_to(l, n, "irq: ", c, NULL, NULL), "irq", c);
	} else if (!strcmp(w, "clock") && c) {
		line = find_to(l, n, "clock: ", c, NULL, NULL);
		check_cpu_line(e, line, "clock", c);
		if (line && (field(line, "result", v, sizeof(v)) || strcmp(v, "ok")))
			bad("clock line for cpu %u: %s", c, line);
		if (line && !e->qemu &&
		    (field(line, "kvmclock", v, sizeof(v)) || !strcmp(v, "none")))
			bad("clock line for cpu %u compared no kvmclock: %s", c, line);
	}
}

static void check_expect(const struct expect *e, char **l, unsigned n, const char *list)
{
	char buf[256];

	snprintf(buf, sizeof(buf), "%s", list);
	for (char *w = strtok(buf, ","); w; w = strtok(NULL, ",")) {
		if (strcmp(w, "ipi") && strcmp(w, "irq") && strcmp(w, "clock")) {
			bad("--expect: unknown workload '%s'", w);
			return;
		}
		for (unsigned c = 0; c < e->ncpus; c++)
			check_expect_cpu(e, l, n, w, c);
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "vcpus", required_argument, NULL, 'c' },
		{ "numa", required_argument, NULL, 'n' },
		{ "mem", required_argument, NULL, 'm' },
		{ "topo", required_argument, NULL, 't' },
		{ "ref", required_argument, NULL, 'r' },
		{ "matrices", required_argument, NULL, 'x' },
		{ "distance", required_argument, NULL, 'd' },
		{ "per-host", required_argument, NULL, 'k' },
		{ "host-distance", required_argument, NULL, 'h' },
		{ "layout", required_argument, NULL, 'l' },
		{ "expect", required_argument, NULL, 'e' },
		{ NULL, 0, NULL, 0 },
	};
	static struct expect ex;
	struct expect *e = &ex;
	const char *topo = NULL, *ref = NULL, *matrices = NULL, *expect = NULL;
	unsigned distance = 20, per_host = 1, host_distance = 20, n;
	char err[PARSE_ERR_MAX];
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			if (parse_uint(optarg, 1, MAXC - 1, &e->ncpus, err))
				goto usage;
			break;
		case 'n':
			if (parse_uint(optarg, 1, MAXN, &e->nnodes, err))
				goto usage;
			break;
		case 'm':
			if (parse_size(optarg, &e->mem, err))
				goto usage;
			break;
		case 't':
			topo = optarg;
			break;
		case 'r':
			ref = optarg;
			break;
		case 'x':
			matrices = optarg;
			break;
		case 'd':
			if (parse_uint(optarg, 11, 255, &distance, err))
				goto usage;
			break;
		case 'k':
			if (parse_uint(optarg, 1, MAXN, &per_host, err))
				goto usage;
			break;
		case 'h':
			if (parse_uint(optarg, 11, 255, &host_distance, err))
				goto usage;
			break;
		case 'e':
			expect = optarg;
			break;
		case 'l':
			if (strcmp(optarg, "gvm") && strcmp(optarg, "qemu"))
				goto usage;
			e->qemu = !strcmp(optarg, "qemu");
			break;
		default:
			goto usage;
		}
	}
	if (optind + 1 != argc || !e->ncpus || !e->nnodes || !e->mem || e->ncpus % e->nnodes)
		goto usage;

	char **l = read_lines(argv[optind], &n);
	int pass = 0;

	for (unsigned i = 0; i < n; i++) {
		if (!strcmp(l[i], "result: PASS"))
			pass = 1;
		if (!strncmp(l[i], "error: ", 7))
			bad("the probe reported: %s", l[i]);
	}
	if (!pass)
		bad("no 'result: PASS' line");
	expect_from_args(e, distance, per_host, host_distance);
	if (topo)
		compare_topo(e, topo);
	check_topology(e, l, n);
	check_spmv(l, n, ref, matrices);
	if (expect)
		check_expect(e, l, n, expect);
	if (problems)
		fprintf(stderr, "probe-check: %u problems in %s\n", problems, argv[optind]);
	free_lines(l, n);
	return problems ? 1 : 0;
usage:
	fprintf(stderr, "usage: probe-check --vcpus V --numa N --mem SIZE [--topo FILE] "
			"[--ref FILE] [--matrices LIST] [--distance D] [--per-host K "
			"--host-distance H] [--layout gvm|qemu] [--expect ipi,irq,clock] LOG\n");
	return 2;
}
