/*
 * vmm/host.c: PU choice, pinning, host NUMA nodes, caches, and the
 * emulated-kernel heuristic checked against a measurement: a KVM guest runs
 * a loop at CPL 0 and we time it, then executes POPCNT at CPL 0.
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <linux/kvm.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "tests/lib/check.h"
#include "vmm/host.h"

static void test_choose_pus_synthetic(void)
{
	char err[HOST_ERR_MAX];
	struct host *h = host_open_synthetic("pack:2 core:2 pu:2", err);
	/* PUs 0..7: core 0 has 0,1; core 1 has 2,3; ... One per core, then the siblings. */
	static const unsigned want[] = { 0, 2, 4, 6, 1, 3, 5, 7, 0, 2 };
	unsigned pus[10];

	CHECK(h != NULL);
	if (!h)
		return;
	CHECK_EQ(host_nr_pus(h), 8);
	CHECK_EQ(host_nr_cores(h), 4);
	CHECK(host_choose_pus(h, 10, 1, pus, err) == 0);
	for (unsigned i = 0; i < 10; i++)
		CHECK_EQ(pus[i], want[i]);
	CHECK(!host_kernel_emulated(h, NULL));
	CHECK(host_pin_thread(h, pthread_self(), 0, err) == -1 && strstr(err, "synthetic"));
	host_close(h);

	/* No SMT: wrap around the cores. */
	h = host_open_synthetic("pack:1 core:3 pu:1", err);
	CHECK(h && host_choose_pus(h, 7, 1, pus, err) == 0);
	for (unsigned i = 0; h && i < 7; i++)
		CHECK_EQ(pus[i], i % 3);
	host_close(h);

	CHECK(host_open_synthetic("pack:2 bogus:3", err) == NULL);
	CHECK(strstr(err, "bogus:3") != NULL);
}

static void test_pu_node_synthetic(void)
{
	char err[HOST_ERR_MAX];
	struct host *h = host_open_synthetic("pack:2 [numa(memory=1073741824)] core:2 pu:1", err);

	CHECK(h != NULL);
	if (!h)
		return;
	CHECK_EQ(host_pu_node(h, 0), 0);
	CHECK_EQ(host_pu_node(h, 1), 0);
	CHECK_EQ(host_pu_node(h, 2), 1);
	CHECK_EQ(host_pu_node(h, 3), 1);
	CHECK_EQ(host_pu_node(h, 4), -1);
	CHECK_EQ(host_ram_size(h), 2ull << 30);
	host_close(h);
}

/*
 * Groups (guest NUMA nodes of one instance) go to host NUMA nodes in turn,
 * each on its own node's cores; groups that come round to a node again take
 * its next cores.
 */
static void test_choose_pus_groups(void)
{
	char err[HOST_ERR_MAX];
	unsigned pus[8];
	uint8_t d[TOPO_MAX_LOCAL_NODES][TOPO_MAX_LOCAL_NODES];
	struct host *h = host_open_synthetic("pack:2 [numa(memory=1073741824)] core:2 pu:2", err);

	CHECK(h != NULL);
	if (!h)
		return;
	CHECK_EQ(host_nr_cpu_nodes(h), 2);
	/* 4 vCPUs in 2 groups: cores 0, 1 of node 0 (PUs 0, 2), then of node 1 (PUs 4, 6) */
	CHECK(host_choose_pus(h, 4, 2, pus, err) == 0);
	CHECK_EQ(pus[0], 0);
	CHECK_EQ(pus[1], 2);
	CHECK_EQ(pus[2], 4);
	CHECK_EQ(pus[3], 6);
	CHECK_EQ(host_pu_node(h, pus[1]), 0);
	CHECK_EQ(host_pu_node(h, pus[2]), 1);
	/* 1 group: the whole host, cores first (node 0's two cores, then node 1's) */
	CHECK(host_choose_pus(h, 2, 1, pus, err) == 0);
	CHECK_EQ(pus[0], 0);
	CHECK_EQ(pus[1], 2);
	/* 4 groups on 2 nodes: groups 2 and 3 take the nodes' next cores, not the same */
	CHECK(host_choose_pus(h, 4, 4, pus, err) == 0);
	CHECK_EQ(pus[0], 0);
	CHECK_EQ(pus[1], 4);
	CHECK_EQ(pus[2], 2);
	CHECK_EQ(pus[3], 6);
	CHECK(host_choose_pus(h, 3, 2, pus, err) == -1 && strstr(err, "do not divide"));
	/* a synthetic host has no distances: 0, "unknown" */
	host_group_distances(h, 2, d);
	CHECK_EQ(d[0][1], 0);
	host_close(h);

	h = host_open_synthetic("pack:1 [numa(memory=1073741824)] core:2 pu:1", err);
	CHECK(h != NULL);
	if (!h)
		return;
	CHECK_EQ(host_nr_cpu_nodes(h), 1);
	CHECK(host_choose_pus(h, 2, 2, pus, err) == 0);
	CHECK_EQ(pus[0], 0);
	CHECK_EQ(pus[1], 1);
	host_group_distances(h, 2, d);
	CHECK_EQ(d[0][1], 0); /* both groups on one node */
	host_close(h);
}

/*
 * The host's own NUMA distances, as hwloc reads them (here from an XML
 * topology with a latency matrix 10/21, in place of this machine's), scaled
 * to ACPI's 10 for a node to itself.
 */
static void test_group_distances_xml(void)
{
	char err[HOST_ERR_MAX], path[4096];
	uint8_t d[TOPO_MAX_LOCAL_NODES][TOPO_MAX_LOCAL_NODES];
	const char *top = getenv("GVM_TOP");
	struct host *h;

	snprintf(path, sizeof(path), "%s/tests/data/host-2socket.xml", top ? top : ".");
	setenv("HWLOC_XMLFILE", path, 1);
	setenv("HWLOC_THISSYSTEM", "1", 1);
	h = host_open(err);
	unsetenv("HWLOC_XMLFILE");
	unsetenv("HWLOC_THISSYSTEM");
	CHECK(h != NULL);
	if (!h)
		return;
	CHECK_EQ(host_nr_cpu_nodes(h), 2);
	host_group_distances(h, 2, d);
	CHECK_EQ(d[0][0], 0);
	CHECK_EQ(d[0][1], 21);
	CHECK_EQ(d[1][0], 21);
	host_group_distances(h, 3, d); /* group 2 is back on node 0 */
	CHECK_EQ(d[0][2], 0);
	CHECK_EQ(d[1][2], 21);
	host_close(h);
}

/*
 * Started with a narrower affinity (taskset, a batch system's binding), the
 * host is only the CPUs this process may use: vCPUs are never pinned outside.
 */
static void test_binding_respected(void)
{
	char err[HOST_ERR_MAX];
	cpu_set_t before, one;
	unsigned pus[3], last = 0;
	struct host *h;

	CHECK(sched_getaffinity(0, sizeof(before), &before) == 0);
	for (unsigned c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &before))
			last = c;
	CPU_ZERO(&one);
	CPU_SET(last, &one);
	CHECK(sched_setaffinity(0, sizeof(one), &one) == 0);
	h = host_open(err);
	sched_setaffinity(0, sizeof(before), &before);
	CHECK(h != NULL);
	if (!h)
		return;
	CHECK_EQ(host_nr_pus(h), 1);
	CHECK_EQ(host_nr_cores(h), 1);
	CHECK(host_choose_pus(h, 3, 1, pus, err) == 0);
	for (unsigned i = 0; i < 3; i++)
		CHECK_EQ(pus[i], last);
	CHECK(host_pu_node(h, last) >= 0);
	host_close(h);
}

static void test_this_host(void)
{
	char err[HOST_ERR_MAX];
	struct host *h = host_open(err);
	cpu_set_t before, after;
	unsigned *pus, n;

	CHECK(h != NULL);
	if (!h)
		return;
	CHECK(sched_getaffinity(0, sizeof(before), &before) == 0);
	n = host_nr_pus(h);
	CHECK_EQ(n, CPU_COUNT(&before)); /* hwloc keeps only the PUs we may use */
	CHECK(host_ram_size(h) == (uint64_t)sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE));
	CHECK(host_phys_bits(h) >= 36 && host_phys_bits(h) <= 64);

	pus = calloc(n + 1, sizeof(*pus));
	CHECK(host_choose_pus(h, n + 1, 1, pus, err) == 0);
	for (unsigned i = 0; i <= n; i++)
		CHECK(CPU_ISSET(pus[i], &before));
	CHECK(host_pin_thread(h, pthread_self(), pus[n - 1], err) == 0);
	CHECK(pthread_getaffinity_np(pthread_self(), sizeof(after), &after) == 0);
	CHECK_EQ(CPU_COUNT(&after), 1);
	CHECK(CPU_ISSET(pus[n - 1], &after));
	CHECK(host_pin_thread(h, pthread_self(), 100000, err) == -1 && strstr(err, "100000"));
	sched_setaffinity(0, sizeof(before), &before);
	CHECK(host_pu_node(h, pus[0]) >= 0);
	free(pus);
	host_close(h);
}

/* Cache sizes agree with what the kernel says in sysfs, read independently. */
static void test_caches_vs_sysfs(void)
{
	char err[HOST_ERR_MAX];
	struct host *h = host_open(err);
	struct topo_cache c[TOPO_MAX_CACHES];
	glob_t g;
	unsigned n, matched = 0;

	if (!h || glob("/sys/devices/system/cpu/cpu0/cache/index*", 0, NULL, &g)) {
		printf("no sysfs cache information: skipped\n");
		host_close(h);
		return;
	}
	n = host_caches(h, c, TOPO_MAX_CACHES);
	CHECK(n >= 1);
	for (size_t i = 0; i < g.gl_pathc; i++) {
		char path[512], type[32] = "";
		unsigned level = 0, kib = 0;
		FILE *f;

		snprintf(path, sizeof(path), "%s/level", g.gl_pathv[i]);
		if ((f = fopen(path, "r"))) {
			if (fscanf(f, "%u", &level) != 1)
				level = 0;
			fclose(f);
		}
		snprintf(path, sizeof(path), "%s/size", g.gl_pathv[i]);
		if ((f = fopen(path, "r"))) {
			if (fscanf(f, "%uK", &kib) != 1)
				kib = 0;
			fclose(f);
		}
		snprintf(path, sizeof(path), "%s/type", g.gl_pathv[i]);
		if ((f = fopen(path, "r"))) {
			if (fscanf(f, "%31s", type) != 1)
				type[0] = 0;
			fclose(f);
		}
		enum topo_cache_type t = !strcmp(type, "Data") ? TOPO_CACHE_DATA :
					 !strcmp(type, "Instruction") ? TOPO_CACHE_INST :
					 TOPO_CACHE_UNIFIED;
		for (unsigned j = 0; j < n; j++)
			if (c[j].level == level && c[j].type == t &&
			    c[j].size == (uint64_t)kib << 10)
				matched++;
	}
	CHECK_EQ(matched, n < g.gl_pathc ? n : g.gl_pathc);
	for (unsigned j = 1; j < n; j++)
		CHECK(c[j - 1].level <= c[j].level);
	globfree(&g);
	host_close(h);
}

/*
 * Run 32-bit protected-mode code at CPL 0 in a fresh VM until it halts.
 * Returns the exit reason and the time KVM_RUN took, or -1 if KVM is absent.
 */
static int run_cpl0(const uint8_t *code, size_t len, double *secs)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC), vm = -1, vcpu = -1, ret = -1;
	size_t mem_size = 1 << 20, run_size;
	struct kvm_run *run = MAP_FAILED;
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rip = 0x1000, .rflags = 2, .rsp = 0x8000 };
	struct kvm_segment seg = { .base = 0, .limit = 0xffffffff, .present = 1, .s = 1,
				   .db = 1, .g = 1 };
	struct timespec t0, t1;
	uint8_t *mem;

	if (kvm < 0)
		return -1;
	mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0 || mem == MAP_FAILED)
		goto out;
	memcpy(mem + 0x1000, code, len);
	struct kvm_userspace_memory_region region = {
		.slot = 0, .guest_phys_addr = 0, .memory_size = mem_size,
		.userspace_addr = (uintptr_t)mem,
	};
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region))
		goto out;
	ioctl(vm, KVM_SET_TSS_ADDR, 0xfffbd000ul);
	vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	run_size = (size_t)ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vcpu < 0)
		goto out;
	run = mmap(NULL, run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED || ioctl(vcpu, KVM_GET_SREGS, &sregs))
		goto out;
	seg.type = 11;
	seg.selector = 8;
	sregs.cs = seg;
	seg.type = 3;
	seg.selector = 16;
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = seg;
	sregs.cr0 |= 1;
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) || ioctl(vcpu, KVM_SET_REGS, &regs))
		goto out;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		ret = ioctl(vcpu, KVM_RUN, 0);
	} while (ret < 0 && errno == EINTR);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	*secs = (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	ret = ret < 0 ? -1 : (int)run->exit_reason;
out:
	if (run != MAP_FAILED)
		munmap(run, run_size);
	if (vcpu >= 0)
		close(vcpu);
	if (vm >= 0)
		close(vm);
	if (mem != MAP_FAILED)
		munmap(mem, mem_size);
	close(kvm);
	return ret;
}

static void test_emulation_measured(void)
{
	enum { LOOPS = 50000 };
	/* mov ecx, LOOPS; 1: dec ecx; jnz 1b; hlt */
	uint8_t loop[] = { 0xb9, LOOPS & 0xff, (LOOPS >> 8) & 0xff, LOOPS >> 16, 0, 0x49, 0x75,
			   0xfd, 0xf4 };
	uint8_t empty[] = { 0xb9, 1, 0, 0, 0, 0x49, 0x75, 0xfd, 0xf4 };
	/* popcnt eax, ebx; hlt.  With no IDT a #UD ends in a triple fault (SHUTDOWN). */
	static const uint8_t popcnt[] = { 0xf3, 0x0f, 0xb8, 0xc3, 0xf4 };
	char err[HOST_ERR_MAX];
	const char *why;
	struct host *h = host_open(err);
	double t_loop = 1e9, t_empty = 1e9, t, ns;
	int r;

	if (!h)
		return;
	/* Best of three runs of each: the machine is shared and timings are noisy. */
	for (int i = 0; i < 3; i++) {
		r = run_cpl0(empty, sizeof(empty), &t);
		if (r < 0) {
			printf("no usable /dev/kvm: measurement skipped\n");
			host_close(h);
			return;
		}
		CHECK_EQ(r, KVM_EXIT_HLT);
		if (t < t_empty)
			t_empty = t;
		CHECK_EQ(run_cpl0(loop, sizeof(loop), &t), KVM_EXIT_HLT);
		if (t < t_loop)
			t_loop = t;
	}
	ns = (t_loop > t_empty ? t_loop - t_empty : 0) * 1e9 / (2.0 * LOOPS);
	r = run_cpl0(popcnt, sizeof(popcnt), &t);
	bool emulated = host_kernel_emulated(h, &why);
	printf("CPL0: %.1f ns per instruction (%d instructions in %.2f ms); POPCNT at CPL0: %s "
	       "(exit reason %d)\n", ns, 2 * LOOPS, (t_loop - t_empty) * 1e3,
	       r == KVM_EXIT_HLT ? "runs" : r == KVM_EXIT_SHUTDOWN ? "faults" : "fails", r);
	printf("heuristic: %s\n", why);
	/*
	 * Hardware runs this loop at well under 1 ns an instruction, the emulator at
	 * ~0.5-1 us; 100 ns leaves room for a preempted run on a busy machine.
	 */
	CHECK_EQ(emulated, ns > 100.0);
	if (emulated)
		CHECK(r != KVM_EXIT_HLT);
	host_close(h);
}

int main(void)
{
	RUN(test_choose_pus_synthetic);
	RUN(test_pu_node_synthetic);
	RUN(test_choose_pus_groups);
	RUN(test_group_distances_xml);
	RUN(test_this_host);
	RUN(test_binding_respected);
	RUN(test_caches_vs_sysfs);
	RUN(test_emulation_measured);
	return check_summary();
}
