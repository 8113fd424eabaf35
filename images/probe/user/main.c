/*
 * The boot thread: options from the kernel command line, the machine
 * report, then the workloads on one thread per CPU, then the verdict
 * through the exit device.
 */
#include "images/probe/user/probe.h"

struct probe_opts opts = {
	.ipi = 1, .counter = 1, .memcpy = 1, .spmv = 1,
	.matrix = { "gen" }, .nmatrices = 1,
	.iters = 20,
	.memcpy_size = 8 << 20, .memcpy_reps = 10, .memcpy_warmups = 1, .memcpy_method = COPY_REP,
	.counter_iters = 200000, .counter_pages = 16,
	.ipi_rounds = 20,
	.clock_rounds = 16,
	.check_pages = 64, .check_size = 2 << 20, .check_rounds = 20,
};
uint64_t tsc_khz;

static char cmdline[PROBE_CMDLINE_MAX];

/* Split s at each sep into at most max pieces; returns the count, or -1 if too many. */
static int split(char *s, char sep, const char **out, unsigned max)
{
	unsigned n = 0;

	while (*s) {
		if (n == max)
			return -1;
		out[n++] = s;
		while (*s && *s != sep)
			s++;
		if (*s)
			*s++ = '\0';
	}
	return (int)n;
}

static int parse_workloads(char *v)
{
	const char *w[8];
	int n = split(v, ',', w, 8);

	if (n < 0)
		return -1;
	opts.ipi = opts.irq = opts.clock = opts.counter = opts.memcpy = opts.spmv = 0;
	opts.check = 0;
	for (int i = 0; i < n; i++) {
		if (ustreq(w[i], "ipi"))
			opts.ipi = 1;
		else if (ustreq(w[i], "irq"))
			opts.irq = 1;
		else if (ustreq(w[i], "clock"))
			opts.clock = 1;
		else if (ustreq(w[i], "counter"))
			opts.counter = 1;
		else if (ustreq(w[i], "memcpy"))
			opts.memcpy = 1;
		else if (ustreq(w[i], "spmv"))
			opts.spmv = 1;
		else if (ustreq(w[i], "check"))
			opts.check = 1;
		else if (!ustreq(w[i], "none"))
			return -1;
	}
	return 0;
}

static int parse_option(const char *key, char *v)
{
	uint64_t x;

	if (ustreq(key, "workloads"))
		return parse_workloads(v);
	if (ustreq(key, "matrix")) {
		int n = split(v, ',', opts.matrix, PROBE_MAX_MATRICES);

		if (n <= 0)
			return -1;
		opts.nmatrices = (unsigned)n;
		return 0;
	}
	if (ustreq(key, "placement")) {
		if (ustreq(v, "node"))
			opts.naive = 0;
		else if (ustreq(v, "naive"))
			opts.naive = 1;
		else
			return -1;
		return 0;
	}
	if (ustreq(key, "apic")) /* read by the kernel at boot */
		return ustreq(v, "auto") || ustreq(v, "x2apic") ? 0 : -1;
	if (ustreq(key, "end")) {
		if (ustreq(v, "exit"))
			opts.poweroff = 0;
		else if (ustreq(v, "poweroff"))
			opts.poweroff = 1;
		else
			return -1;
		return 0;
	}
	if (ustreq(key, "memcpy_method"))
		return copy_method_parse(v, &opts.memcpy_method);
	if (ustreq(key, "check_size")) {
		if (uparse_size(v, &x) || !x || x % 4096 || x > (1ull << 30))
			return -1;
		opts.check_size = x;
		return 0;
	}
	if (ustreq(key, "memcpy_size")) {
		if (uparse_size(v, &x) || !x || x % 64)
			return -1;
		opts.memcpy_size = x;
		return 0;
	}

	static const struct {
		const char *key;
		uint64_t *val;
		uint64_t min, max;
	} nums[] = {
		{ "iters", &opts.iters, 1, 1000000 },
		{ "memcpy_reps", &opts.memcpy_reps, 1, 1000000 },
		{ "memcpy_warmups", &opts.memcpy_warmups, 1, 1000 },
		{ "counter_iters", &opts.counter_iters, 1, 1000000000 },
		{ "counter_pages", &opts.counter_pages, 1, 4096 },
		{ "ipi_rounds", &opts.ipi_rounds, 1, 100000 },
		{ "clock_rounds", &opts.clock_rounds, 1, 1000000 },
		{ "clock_gap_us", &opts.clock_gap_us, 0, 10000000 },
		{ "check_pages", &opts.check_pages, 1, 1024 },
		{ "check_rounds", &opts.check_rounds, 1, 1024 },
		{ "tsc_khz", &opts.tsc_khz, 1000, 100000000 },
	};

	for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		if (!ustreq(key, nums[i].key))
			continue;
		if (uparse_u64(v, &x) || x < nums[i].min || x > nums[i].max)
			return -1;
		*nums[i].val = x;
		return 0;
	}
	return -2;
}

/* probe.KEY=VALUE words of the command line; other words are not ours. */
static int parse_cmdline(void)
{
	const char *words[256];
	int n, bad = 0;

	__builtin_memcpy(cmdline, probe_bootinfo.cmdline, sizeof(cmdline));
	n = split(cmdline, ' ', words, 256);
	if (n < 0) {
		ufail("more than 256 words on the command line");
		return -1;
	}
	for (int i = 0; i < n; i++) {
		char *w = (char *)words[i], *eq = w;
		int r;

		if (!ustartswith(w, "probe."))
			continue;
		while (*eq && *eq != '=')
			eq++;
		if (!*eq) {
			ufail("option '%s' has no value (probe.KEY=VALUE)", w);
			bad = 1;
			continue;
		}
		*eq = '\0';
		r = parse_option(w + 6, eq + 1);
		if (r == -2)
			ufail("unknown option '%s' (see docs/probe.md)", w);
		else if (r)
			ufail("bad value '%s' for option %s (see docs/probe.md)", eq + 1, w);
		bad |= r != 0;
	}
	return bad ? -1 : 0;
}

static void cpuid(uint32_t leaf, uint32_t r[4])
{
	__asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(0));
}

/* TSC rate: the command line, else what CPUID says, else unknown. */
static const char *find_tsc_khz(void)
{
	uint32_t r[4];

	if (opts.tsc_khz) {
		tsc_khz = opts.tsc_khz;
		return "cmdline";
	}
	cpuid(0, r);
	if (r[0] >= 0x15) {
		cpuid(0x15, r);
		if (r[0] && r[1] && r[2]) {
			tsc_khz = (uint64_t)r[2] * r[1] / r[0] / 1000;
			return "cpuid-0x15";
		}
	}
	cpuid(0, r);
	if (r[0] >= 0x16) {
		cpuid(0x16, r);
		if (r[0] & 0xffff) {
			tsc_khz = (uint64_t)(r[0] & 0xffff) * 1000;
			return "cpuid-0x16";
		}
	}
	if (probe_bootinfo.kvmclock_mul) {
		/* ns per tick = mul * 2^shift / 2^32 */
		int sh = probe_bootinfo.kvmclock_shift;
		uint64_t num = 1000000ull << 32, den = probe_bootinfo.kvmclock_mul;

		if (sh >= 0)
			den <<= sh;
		else
			num <<= -sh;
		tsc_khz = (num + den / 2) / den;
		return "kvmclock";
	}
	cpuid(0x40000000, r);
	if (r[0] >= 0x40000010 && r[0] < 0x40000100) {
		cpuid(0x40000010, r);
		if (r[0]) {
			tsc_khz = r[0];
			return "cpuid-0x40000010";
		}
	}
	return "none";
}

/*
 * A passing run ends with ACPI soft-off when asked: the way an OS ends, and a
 * check that the FADT and \_S5 lead to a port gvm stops at.
 */
static void power_off(void)
{
	const struct acpi_topo *t = &probe_bootinfo.acpi;

	if (!t->pm1a_cnt || t->s5_typ == PROBE_ACPI_NO_S5) {
		ufail("poweroff: no %s in the ACPI tables", t->pm1a_cnt ? "\\_S5" : "PM1a control port");
		return;
	}
	uprintf("poweroff: pm1a_cnt=0x%x slp_typ=%u\n", t->pm1a_cnt, t->s5_typ);
	if (sys_call(SYS_POWEROFF, 0, 0, 0, 0) == -1)
		ufail("poweroff: the FADT's PM1a control port 0x%x or \\_S5 (%u) is unusable",
		      t->pm1a_cnt, t->s5_typ);
	else
		ufail("poweroff: writing S5 to port 0x%x did not stop the VM", t->pm1a_cnt);
}

static __attribute__((noreturn)) void finish(void)
{
	unsigned f = ufailures();

	uprintf("result: %s\n", f ? "FAIL" : "PASS");
	if (!f && opts.poweroff) {
		power_off();
		uprintf("result: FAIL\n");
		f = 1;
	}
	sys_exit(f ? 1 : 0);
}

void user_main(struct probe_bootinfo *bi, uint64_t cpu);
void user_main(struct probe_bootinfo *bi, uint64_t cpu)
{
	uint64_t ready;
	const char *src;

	(void)cpu;
	uprintf("probe: version=1 boot=%s cmdline=\"%s\"\n",
		bi->boot_protocol == PROBE_BOOT_PVH ? "pvh" : "linux", bi->cmdline);
	if (parse_cmdline())
		finish();
	src = find_tsc_khz();
	uprintf("tsc: khz=%lu source=%s\n", tsc_khz, src);
	topo_report();
	node_alloc_init();
	ready = tsc_read();
	uprintf("boot: kernel_cycles=%lu smp_cycles=%lu kernel_us=%lu smp_us=%lu ready_us=%lu\n",
		bi->tsc_user - bi->tsc_entry, bi->tsc_smp_done - bi->tsc_smp_start,
		cycles_to_us(bi->tsc_user - bi->tsc_entry),
		cycles_to_us(bi->tsc_smp_done - bi->tsc_smp_start),
		cycles_to_us(ready - bi->tsc_entry));
	if (opts.ipi)
		run_ipi();
	if (opts.irq)
		run_irq();
	/* Only workloads that run on every CPU need the threads (which spin while they wait). */
	if (team_start(opts.clock || opts.counter || opts.memcpy || opts.spmv || opts.check) == 0) {
		uprintf("ready: threads=%u nodes=%u placement=%s\n", team.nthreads, team.nnodes,
			opts.naive ? "naive" : "node");
		if (opts.clock)
			run_clock();
		if (opts.counter)
			run_counter();
		if (opts.memcpy)
			run_memcpy();
		if (opts.spmv)
			for (unsigned i = 0; i < opts.nmatrices; i++)
				run_spmv(opts.matrix[i]);
		if (opts.check)
			run_check();
	}
	finish();
}
