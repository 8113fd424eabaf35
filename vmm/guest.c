#include "vmm/guest.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>

#include "common/log.h"
#include "common/parse.h"
#include "vmm/host.h"
#include "vmm/job.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"
#include "vmm/x86/acpi.h"
#include "vmm/x86/boot.h"

int guest_check_boot(const struct vm_options *o, const char *cmd)
{
	char err[BOOT_ERR_MAX];
	enum boot_kind kind;
	struct stat dst;

	if (!o->kernel) {
		pr_err("%s: nothing to boot: give a job (-- COMMAND, run in the linux image), "
		       "--image NAME, or --kernel FILE (see gvm help %s)", cmd, cmd);
		return -1;
	}
	if (boot_probe(o->kernel, &kind, err)) {
		pr_err("%s: %s", cmd, err);
		return -1;
	}
	for (unsigned i = 0; i < o->nr_initrds; i++) {
		struct stat st;

		if (stat(o->initrds[i], &st)) {
			pr_err("%s: initrd '%s': %s", cmd, o->initrds[i], strerror(errno));
			return -1;
		}
		if (!S_ISREG(st.st_mode)) {
			pr_err("%s: initrd '%s' is not a regular file", cmd, o->initrds[i]);
			return -1;
		}
	}
	if (o->dump_acpi && (stat(o->dump_acpi, &dst) || !S_ISDIR(dst.st_mode))) {
		pr_err("%s: --dump-acpi: '%s' is not a directory (create it first)", cmd,
		       o->dump_acpi);
		return -1;
	}
	return 0;
}

int guest_numa_shape(const struct vm_options *o, const struct host *host, unsigned instances,
		     struct topo_params *p, const char *cmd)
{
	unsigned k, given = o->numa_host ? 0 : o->topo.nr_nodes;

	p->nr_instances = instances;
	if (o->numa_host)
		p->nr_nodes = instances * host_nr_cpu_nodes(host);
	else
		p->nr_nodes = given ? given : instances;
	if (p->nr_nodes % instances) {
		pr_err("%s: --numa %u over %u instances: every instance holds the same number of "
		       "NUMA nodes, so --numa must be a multiple of %u (or host: one per host "
		       "NUMA node)", cmd, p->nr_nodes, instances, instances);
		return -1;
	}
	k = p->nr_nodes / instances;
	if (instances > 1 && k > TOPO_MAX_LOCAL_NODES) {
		pr_err("%s: %u NUMA nodes per instance; at most %u are supported", cmd, k,
		       TOPO_MAX_LOCAL_NODES);
		return -1;
	}
	host_group_distances(host, k < TOPO_MAX_LOCAL_NODES ? k : TOPO_MAX_LOCAL_NODES,
			     p->host_distance);
	return 0;
}

void guest_default_ram(struct vm_options *o, const struct host *host, unsigned nodes,
		       const char *cmd)
{
	const char *why;
	char sz[32];

	if (!o->job_argv || o->topo.ram_size || !host_kernel_emulated(host, &why))
		return;
	o->topo.ram_size = GUEST_JOB_EMULATED_RAM_PER_NODE * (nodes ? nodes : 1);
	pr_info("%s: this host's KVM emulates guest kernel code, where a boot takes longer "
		"the more RAM the guest has: %s of guest RAM (give --mem for more)", cmd,
		format_size(o->topo.ram_size, sz, sizeof(sz)));
}

void guest_warn_shadow_paging(const struct vm_options *o, const struct host *host,
			      unsigned instances, const char *cmd)
{
	const char *why;

	if (!o->job_argv || instances < 2 || !host_kernel_emulated(host, &why))
		return;
	pr_warn("%s: this host's KVM has no hardware virtualization: it keeps shadow page "
		"tables, which the instances' shared memory does not keep coherent, so a "
		"guest process whose page tables change on one instance while another runs "
		"it may see stale memory there; the Linux image keeps its processes on the "
		"first instance's vCPUs unless a job pins them elsewhere (docs/cluster.md, "
		"\"Limits\"); on hosts with hardware virtualization this does not arise", cmd);
}

int guest_prepare(struct vm_options *o, const struct host *host, uint64_t ram_size,
		  struct image *img, const char *cmd)
{
	char err[IMAGE_ERR_MAX > JOB_ERR_MAX ? IMAGE_ERR_MAX : JOB_ERR_MAX];
	uint64_t payload;
	const char *why;

	if (o->image || (o->job_argv && !o->kernel)) {
		if (image_resolve(o->image, host_kernel_emulated(host, &why), o->append, img, err) ||
		    image_apply(img, o, err)) {
			pr_err("%s: %s", cmd, err);
			return -1;
		}
		pr_debug("%s: image %s%s%s", cmd, img->path,
			 img->emulated_words ? ", with the words for a host where " : "",
			 img->emulated_words ? why : "");
	}
	if (guest_check_boot(o, cmd))
		return -1;
	if (o->job_argv && (job_check(o, &payload, err) ||
			    job_check_fit(o, payload, ram_size, err))) {
		pr_err("%s: %s", cmd, err);
		return -1;
	}
	return 0;
}

/* The ACPI tables, in the guest's RAM at ACPI_BASE_GPA (reserved in the e820 map). */
static int load_acpi(struct vm *vm, const struct vm_options *o, uint64_t *rsdp, const char *cmd)
{
	void *at = guest_ram_ptr(vm->ram, ACPI_BASE_GPA, ACPI_MAX_SIZE);
	char err[ACPI_ERR_MAX];

	if (!at || acpi_build(&vm->topo, at, ACPI_BASE_GPA, ACPI_MAX_SIZE, rsdp, err) < 0) {
		pr_err("%s: cannot build the ACPI tables: %s", cmd, at ? err : "no RAM at 0xE0000");
		return -1;
	}
	if (o->dump_acpi && acpi_dump(&vm->topo, o->dump_acpi, err)) {
		pr_err("%s: --dump-acpi: %s", cmd, err);
		return -1;
	}
	return 0;
}

/*
 * The value gvm gives a "NAME=auto" word of the command line: into value
 * (empty: the word goes).  Other words are left as they are (0 returned).
 *   tsc_early_khz=auto  the guest's TSC rate: where each PIT read is a VM
 *       exit, Linux cannot calibrate its TSC and keeps time with jiffies,
 *       which run slow there;
 *   isolcpus=auto  over several instances, "domain," and the vCPUs of every
 *       instance but rank 0's, so that the guest's processes stay on rank
 *       0's vCPUs unless pinned elsewhere: where KVM keeps shadow page
 *       tables, the DSM does not keep a process's page tables coherent
 *       across instances (docs/cluster.md, "Limits"); nothing on one
 *       instance.
 */
static int guest_auto_word(struct vm *vm, const char *word, size_t len, char *value, size_t size)
{
	if (len == strlen("tsc_early_khz=auto") && !strncmp(word, "tsc_early_khz=auto", len)) {
		int khz = ioctl(vm->vcpus[0]->fd, KVM_GET_TSC_KHZ, 0);

		value[0] = '\0';
		if (khz > 0)
			snprintf(value, size, "tsc_early_khz=%d", khz);
		else /* Linux calibrates as it can */
			pr_warn("cannot read the guest's TSC rate: %s", strerror(errno));
		return 1;
	}
	if (len == strlen("isolcpus=auto") && !strncmp(word, "isolcpus=auto", len)) {
		unsigned first = vm->first_local + vm->nr_local;

		value[0] = '\0';
		/* rank 0 runs the first node's vCPUs; the others run the rest */
		if (vm->first_local == 0 && first < vm->nr_vcpus)
			snprintf(value, size, "isolcpus=domain,%u-%u", first, vm->nr_vcpus - 1);
		return 1;
	}
	return 0;
}

/* The command line, its "auto" words given their values; -1 if it does not fit. */
static int guest_cmdline(struct vm *vm, const char *in, char *buf, size_t size, const char **out)
{
	size_t used = 0;

	*out = in;
	if (!in || !strstr(in, "=auto"))
		return 0;
	buf[0] = '\0';
	while (*in) {
		size_t len = strcspn(in, " ");
		char value[64];
		int n;

		if (!len) {
			in++;
			continue;
		}
		if (guest_auto_word(vm, in, len, value, sizeof(value)))
			n = *value ? snprintf(buf + used, size - used, "%s%s", used ? " " : "", value) : 0;
		else
			n = snprintf(buf + used, size - used, "%s%.*s", used ? " " : "", (int)len, in);
		if (n < 0 || (size_t)n >= size - used)
			return -1;
		used += n;
		in += len;
	}
	*out = buf;
	return 0;
}

int guest_load(struct vm *vm, const struct vm_options *o, const char *cmd)
{
	struct boot_config bc;
	struct boot_entry entry;
	char err[BOOT_ERR_MAX], line[BOOT_CMDLINE_MAX];
	const char *cmdline;
	uint64_t rsdp;

	if (!vm->vcpus[0]) {
		pr_err("%s: the boot vCPU does not run on this instance", cmd);
		return -1;
	}
	if (load_acpi(vm, o, &rsdp, cmd))
		return -1;
	if (guest_cmdline(vm, o->append, line, sizeof(line), &cmdline)) {
		pr_err("%s: the kernel command line is longer than %u bytes", cmd,
		       BOOT_CMDLINE_MAX - 1);
		return -1;
	}
	bc = (struct boot_config){
		.kernel = o->kernel,
		.initrds = o->initrds,
		.nr_initrds = o->nr_initrds,
		.cmdline = cmdline,
		.rsdp_gpa = rsdp,
	};
	if (boot_load(vm->ram, &bc, &entry, err)) {
		pr_err("%s: %s", cmd, err);
		return -1;
	}
	return boot_set_bsp_state(vm->vcpus[0]->fd, &entry);
}
