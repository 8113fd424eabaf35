/* gvm run: boot a guest in one instance on this machine. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "common/log.h"
#include "common/parse.h"
#include "vmm/cmd.h"
#include "vmm/options.h"
#include "vmm/ram.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"
#include "vmm/x86/boot.h"

#define RUN_GROUPS (OPTG_MACHINE | OPTG_BOOT | OPTG_RUN)

static void run_help(FILE *f)
{
	fprintf(f, "usage: gvm run --kernel FILE [OPTIONS]\n"
		   "\n"
		   "Boot a guest on this machine and wait for it to end.  The guest's console\n"
		   "(a 16550A UART at 0x3f8) is gvm's standard output.  gvm exits with the\n"
		   "status the guest writes to its exit device (port 0x501), with %d if the\n"
		   "VM fails (triple fault, reset, KVM error), with 128+N when stopped by\n"
		   "signal N (Ctrl-C: 130), with 1 when it cannot start the guest, and 2 for\n"
		   "bad options.\n"
		   "\n"
		   "Options:\n", VM_STATUS_FAILED);
	options_help(f, RUN_GROUPS);
}

/* Everything that can be checked before a VM exists, so bad input starts nothing. */
static int check_input(const struct vm_options *o, struct vm_topology *t)
{
	char err[BOOT_ERR_MAX], buf[32], buf2[32];
	enum boot_kind kind;
	struct sysinfo si;

	if (!o->kernel) {
		pr_err("run: --kernel FILE is required (see gvm help run)");
		return -1;
	}
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
	if (!sysinfo(&si) && t->ram_size > (uint64_t)si.totalram * si.mem_unit) {
		pr_err("run: the guest's %s of RAM do not fit in this machine's %s: ask for less "
		       "with --mem", format_size(t->ram_size, buf, sizeof(buf)),
		       format_size((uint64_t)si.totalram * si.mem_unit, buf2, sizeof(buf2)));
		return -1;
	}
	return 0;
}

static int run_main(int argc, char **argv)
{
	struct vm_options o;
	struct vm_topology *t = malloc(sizeof(*t));
	struct vm_config cfg = { .console_fd = STDOUT_FILENO, .console_in_fd = -1 };
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
	if (check_input(&o, t)) {
		free(t);
		return 1;
	}
	cfg.stats = o.stats;

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
		free(t);
		return 1;
	}
	vm = vm_create(t, ram, &cfg);
	free(t);
	if (!vm)
		return 1;
	if (vm_create_machine(vm))
		goto fail;
	bc = (struct boot_config){
		.kernel = o.kernel,
		.initrds = o.initrds,
		.nr_initrds = o.nr_initrds,
		.cmdline = o.append,
		.rsdp_gpa = 0,
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
	return status;
fail:
	vm_destroy(vm);
	return 1;
}

const struct gvm_cmd cmd_run = {
	.name = "run",
	.summary = "boot a guest on this machine",
	.main = run_main,
	.help = run_help,
};
