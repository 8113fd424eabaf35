/* gvm: the giantvm VMM.  Dispatches to one subcommand (vmm/cmd.h). */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "dsm/transport.h"
#include "vmm/cmd.h"

#define GVM_VERSION "0.1.0"

static const struct gvm_cmd *const commands[] = {
	&cmd_run,
	&cmd_node,
	&cmd_topo,
	&cmd_check,
};

#define NR_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	fprintf(f, "usage: gvm [--version] [--help] COMMAND [OPTIONS]\n"
		   "\n"
		   "giantvm: one virtual machine over the nodes of a cluster.\n"
		   "\n"
		   "Commands:\n");
	for (unsigned i = 0; i < NR_COMMANDS; i++)
		fprintf(f, "  %-8s %s\n", commands[i]->name, commands[i]->summary);
	fprintf(f, "  %-8s %s\n", "help", "show the help of a command: gvm help COMMAND");
	fprintf(f, "\nRun 'gvm help COMMAND' or 'gvm COMMAND --help' for its options.\n"
		   "GVM_LOG=err|warn|info|debug sets how much gvm itself reports.\n");
}

static const struct gvm_cmd *find(const char *name)
{
	for (unsigned i = 0; i < NR_COMMANDS; i++)
		if (!strcmp(commands[i]->name, name))
			return commands[i];
	return NULL;
}

int main(int argc, char **argv)
{
	const struct gvm_cmd *c;

	log_init("gvm");
	/*
	 * A reader of the guest's console or of a job's output that goes away
	 * (gvm run -- CMD | head) loses the rest of that stream, which the
	 * device says; it must not kill the VM and its other instances.
	 */
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		char fab[64];

		printf("gvm %s\n", GVM_VERSION);
		if (dsm_fabric_built(fab, sizeof(fab)))
			printf("transports: tcp fabric (%s)\n", fab);
		else
			printf("transports: tcp (built without libfabric)\n");
		return 0;
	}
	if (!strcmp(argv[1], "help")) {
		if (argc == 2) {
			usage(stdout);
			return 0;
		}
		c = find(argv[2]);
		if (!c) {
			pr_err("no command '%s' (see gvm --help)", argv[2]);
			return 2;
		}
		c->help(stdout);
		return 0;
	}
	c = find(argv[1]);
	if (!c) {
		pr_err("unknown command '%s' (see gvm --help)", argv[1]);
		return 2;
	}
	return c->main(argc - 1, argv + 1);
}
