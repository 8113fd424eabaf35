/* gvm run: boot a guest in one instance on this machine. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/parse.h"
#include "vmm/cmd.h"
#include "vmm/host.h"
#include "vmm/options.h"
#include "vmm/ram.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"
#include "vmm/x86/acpi.h"
#include "vmm/x86/boot.h"

#define RUN_GROUPS (OPTG_MACHINE | OPTG_BOOT | OPTG_RUN)

static void run_help(FILE *f)
{
	fprintf(f, "usage: gvm run --kernel FILE [OPTIONS]\n"
		   "\n"
		   "Boot a guest on this machine and wait for it to end.  The guest's\n"
		   "console (a 16550A UART at 0x3f8) is gvm's standard output and input.\n"
		   "gvm exits with the status the guest writes to its exit device (port\n"
		   "0x501), 0 if it powers off, %d if the VM fails (triple fault, reset,\n"
		   "KVM error), 128+N when stopped by signal N (Ctrl-C: 130), 1 when it\n"
		   "cannot start the guest, and 2 for bad options.\n"
		   "\n"
		   "Options:\n", VM_STATUS_FAILED);
	options_help(f, RUN_GROUPS);
}

/* Everything that can be checked before a VM exists, so bad input starts nothing. */
static int check_input(struct vm_options *o, const struct host *host, struct vm_topology *t)
{
	char err[BOOT_ERR_MAX];
	enum boot_kind kind;
	struct stat dst;

	if (!o->kernel) {
		pr_err("run: --kernel FILE is required (see gvm help run)");
		return -1;
	}
	o->topo.host = host;
	if (topo_build(&o->topo, t, err)) {
		pr_err("run: %s", err);
		return -1;
	}
	if (boot_probe(o->kernel, &kind, err)) {
		pr_err("run: %s", err);
		return -1;
	}
	for (unsigned i = 0; i < o->nr_initrds; i++) {
		struct stat st;

		if (stat(o->initrds[i], &st)) {
			pr_err("run: initrd '%s': %s", o->initrds[i], strerror(errno));
			return -1;
		}
		if (!S_ISREG(st.st_mode)) {
			pr_err("run: initrd '%s' is not a regular file", o->initrds[i]);
			return -1;
		}
	}
	if (o->dump_acpi && (stat(o->dump_acpi, &dst) || !S_ISDIR(dst.st_mode))) {
		pr_err("run: --dump-acpi: '%s' is not a directory (create it first)", o->dump_acpi);
		return -1;
	}
	return 0;
}

/* The ACPI tables, in the guest's RAM at ACPI_BASE_GPA (reserved in the e820 map). */
static int load_acpi(struct vm *vm, const struct vm_options *o, uint64_t *rsdp)
{
	void *at = guest_ram_ptr(vm->ram, ACPI_BASE_GPA, ACPI_MAX_SIZE);
	char err[ACPI_ERR_MAX];

	if (!at || acpi_build(&vm->topo, at, ACPI_BASE_GPA, ACPI_MAX_SIZE, rsdp, err) < 0) {
		pr_err("run: cannot build the ACPI tables: %s", at ? err : "no RAM at 0xE0000");
		return -1;
	}
	if (o->dump_acpi && acpi_dump(&vm->topo, o->dump_acpi, err)) {
		pr_err("run: --dump-acpi: %s", err);
		return -1;
	}
	return 0;
}

static int run_main(int argc, char **argv)
{
	struct vm_options o;
	struct vm_topology *t = malloc(sizeof(*t));
	struct vm_config cfg = { .console_fd = STDOUT_FILENO, .console_in_fd = STDIN_FILENO };
	struct host *host;
	const char *why;
	char fbuf[256];
	uint64_t rsdp;
	struct boot_config bc;
	struct boot_entry entry;
	struct guest_ram *ram;
	struct vm *vm;
	char err[BOOT_ERR_MAX];
	sigset_t sigs;
	int r, status;

	if (!t)
		die("out of memory");
	r = options_parse(argc, argv, RUN_GROUPS, &o);
	if (r) {
		free(t);
		if (r > 0) {
			run_help(stdout);
			return 0;
		}
		return 2;
	}
	host = host_open(err);
	if (!host) {
		pr_err("run: cannot read this host's topology: %s", err);
		free(t);
		return 1;
	}
	if (check_input(&o, host, t)) {
		host_close(host);
		free(t);
		return 1;
	}
	cfg.stats = o.stats;
	cfg.host = host;
	cfg.cpu_features = o.features;
	cpuid_features_resolve(&cfg.cpu_features, host_kernel_emulated(host, &why));
	pr_debug("CPU features: %s (%s)",
		 cpuid_features_format(&cfg.cpu_features, fbuf, sizeof(fbuf)), why);

	/*
	 * SIGINT and SIGTERM are taken by vm_wait through a signalfd: block them
	 * before any thread exists so that every thread inherits the mask.
	 */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	vcpu_signal_setup();

	ram = guest_ram_anon(t->ram_size);
	if (!ram) {
		host_close(host);
		free(t);
		return 1;
	}
	vm = vm_create(t, ram, &cfg);
	free(t);
	if (!vm) {
		host_close(host);
		return 1;
	}
	if (vm_create_machine(vm) || load_acpi(vm, &o, &rsdp))
		goto fail;
	bc = (struct boot_config){
		.kernel = o.kernel,
		.initrds = o.initrds,
		.nr_initrds = o.nr_initrds,
		.cmdline = o.append,
		.rsdp_gpa = rsdp,
	};
	if (boot_load(vm->ram, &bc, &entry, err)) {
		pr_err("run: %s", err);
		goto fail;
	}
	if (boot_set_bsp_state(vm->vcpus[0]->fd, &entry))
		goto fail;
	if (vm_start(vm))
		goto fail;
	status = vm_wait(vm);
	if (vm->exit_reason[0]) {
		if (status == 0)
			pr_info("%s", vm->exit_reason);
		else
			pr_err("%s", vm->exit_reason);
	}
	if (o.stats)
		vm_print_stats(vm, stderr);
	vm_destroy(vm);
	host_close(host);
	return status;
fail:
	vm_destroy(vm);
	host_close(host);
	return 1;
}

const struct gvm_cmd cmd_run = {
	.name = "run",
	.summary = "boot a guest on this machine",
	.main = run_main,
	.help = run_help,
};
