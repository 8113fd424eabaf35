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
#include "vmm/guest.h"
#include "vmm/host.h"
#include "vmm/job.h"
#include "vmm/launch.h"
#include "vmm/options.h"
#include "vmm/ram.h"
#include "vmm/vcpu.h"
#include "vmm/vm.h"

#define RUN_GROUPS (OPTG_MACHINE | OPTG_BOOT | OPTG_RUN | OPTG_LAUNCH | OPTG_JOB | OPTG_PIN)

static void run_help(FILE *f)
{
	fprintf(f, "usage: gvm run [--nodes N] [OPTIONS] -- COMMAND [ARGS]...\n"
		   "       gvm run (--kernel FILE | --image NAME|PATH) [--nodes N] [OPTIONS]\n"
		   "\n"
		   "Run a job in a Linux guest on this machine: COMMAND runs with ARGS in\n"
		   "a directory that holds the --copy files; its standard output and error\n"
		   "are gvm's, the files it leaves in $GVM_OUTPUT_DIR come back into\n"
		   "--output, and gvm exits with its status (1 if it succeeded but its\n"
		   "output files could not all be written).  The job sees GVM_NODES,\n"
		   "GVM_VCPUS, GVM_NUMA_NODES, GVM_VM_ID, GVM_JOB_ID, GVM_WORKDIR and\n"
		   "GVM_OUTPUT_DIR in its environment.\n"
		   "\n"
		   "Without a job, boot a guest and wait for it to end.  The guest's\n"
		   "console (a 16550A UART at 0x3f8) is gvm's standard output and input.\n"
		   "gvm exits with the status the guest writes to its exit device (port\n"
		   "0x501), 0 if it powers off, %d if the VM fails (triple fault, reset,\n"
		   "KVM error, a lost instance), 128+N when stopped by signal N (Ctrl-C:\n"
		   "130), 1 when it cannot start the guest, and 2 for bad options.\n"
		   "\n"
		   "With --nodes N, the guest runs over N gvm instances (gvm node), one\n"
		   "NUMA node each unless --numa says more, started here and joined over loopback exactly as on the\n"
		   "nodes of a cluster: each holds its share of the RAM and runs its share\n"
		   "of the vCPUs.  --vcpus and --mem are totals; --numa, if given, is a\n"
		   "multiple of N (or host: one node per host NUMA node on each instance).\n"
		   "Progress is shown on standard error.\n"
		   "\n"
		   "Options:\n", VM_STATUS_FAILED);
	options_help(f, RUN_GROUPS);
}

/* Everything that can be checked before a VM exists, so bad input starts nothing. */
static int check_input(struct vm_options *o, const struct host *host, struct vm_topology *t,
		       struct image *img)
{
	char err[TOPO_ERR_MAX];

	o->topo.host = host;
	if (topo_build(&o->topo, t, err)) {
		pr_err("run: %s", err);
		return -1;
	}
	return guest_prepare(o, host, t->ram_size, img, "run");
}

static int run_main(int argc, char **argv)
{
	struct vm_options o;
	struct vm_topology *t;
	struct vm_config cfg = { .console_fd = STDOUT_FILENO, .console_in_fd = STDIN_FILENO,
				 .kvm_fd = -1 };
	struct host *host;
	const char *why;
	char fbuf[256];
	struct guest_ram *ram;
	struct vm *vm;
	struct image *img = NULL;
	struct job *job = NULL;
	char err[HOST_ERR_MAX > JOB_ERR_MAX ? HOST_ERR_MAX : JOB_ERR_MAX];
	sigset_t sigs;
	int r, status;

	r = options_parse(argc, argv, RUN_GROUPS, &o);
	if (r) {
		options_free(&o);
		if (r > 0) {
			run_help(stdout);
			return 0;
		}
		return 2;
	}
	if (!o.nodes && o.transport) {
		pr_err("run: --transport chooses what carries pages between instances: give "
		       "--nodes too");
		options_free(&o);
		return 2;
	}
	if (!o.nodes && o.integrity) {
		pr_err("run: --integrity checks the messages between instances: give --nodes too");
		options_free(&o);
		return 2;
	}
	if (o.nodes && o.nr_host_cpus) {
		pr_err("run: --host-cpus pins the vCPUs of one instance; with --nodes, gvm "
		       "chooses each instance's CPUs (or start them with gvm node --host-cpus)");
		options_free(&o);
		return 2;
	}
	if (o.nodes)
		return launch_main(&o, argc, argv, -1);
	t = malloc(sizeof(*t));
	img = calloc(1, sizeof(*img));
	if (!t || !img)
		die("out of memory");
	host = host_open(err);
	if (!host) {
		pr_err("run: cannot read this host's topology: %s", err);
		status = 1;
		goto out_input;
	}
	if (guest_numa_shape(&o, host, 1, &o.topo, "run")) {
		status = 1;
		goto out_input;
	}
	guest_default_ram(&o, host, o.topo.nr_nodes, "run");
	if (check_input(&o, host, t, img)) {
		status = 1;
		goto out_input;
	}
	if (o.job_argv) {
		struct job_env env = { .nodes = 1, .topo = t, .vm_id = launch_vm_id() };

		job = job_create(&o, &env, err);
		if (!job || job_add_payload(job, &o, err)) {
			pr_err("run: %s", err);
			status = 1;
			goto out_input;
		}
		cfg.console_fd = job_console_fd(job);
		cfg.console_in_fd = -1;
	}
	if (o.nr_host_cpus && o.nr_host_cpus != t->nr_cpus) {
		pr_err("run: --host-cpus lists %u CPUs, but the guest has %u vCPUs",
		       o.nr_host_cpus, t->nr_cpus);
		status = 2;
		goto out_input;
	}
	if (o.nr_host_cpus && host_check_cpus(o.host_cpus, o.nr_host_cpus, err)) {
		pr_err("run: --host-cpus: %s", err);
		status = 1;
		goto out_input;
	}
	cfg.host_pus = o.nr_host_cpus ? o.host_cpus : NULL;
	cfg.stats = o.stats;
	cfg.report_silence_s = o.report_silence;
	cfg.host = host;
	cfg.cpu_features = o.features;
	cpuid_features_resolve(&cfg.cpu_features, host_kernel_emulated(host, &why), t->x2apic);
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
		status = 1;
		goto out_input;
	}
	vm = vm_create(t, ram, &cfg);
	if (!vm) {
		status = 1;
		goto out_input;
	}
	if (vm_create_machine(vm) || (job && job_attach(job, vm)) || guest_load(vm, &o, "run") ||
	    vm_start(vm)) {
		status = 1;
		goto out_vm;
	}
	status = vm_wait(vm);
	if (vm->exit_reason[0]) {
		if (status == 0)
			pr_info("%s", vm->exit_reason);
		else
			pr_err("%s", vm->exit_reason);
	}
	if (job)
		status = job_finish(job, status, vm->exit_reason[0] && status);
	if (o.stats)
		vm_print_stats(vm, stderr, "gvm");
out_vm:
	vm_destroy(vm);
out_input:
	job_destroy(job);
	host_close(host);
	free(img);
	free(t);
	return status;
}

const struct gvm_cmd cmd_run = {
	.name = "run",
	.summary = "boot a guest on this machine",
	.main = run_main,
	.help = run_help,
};
