/*
 * The gvm subcommands.  gvm.c holds the table; each subcommand lives in its
 * own cmd-NAME.c and exports one struct gvm_cmd.
 */
#ifndef GVM_VMM_CMD_H
#define GVM_VMM_CMD_H

#include <stdio.h>

struct gvm_cmd {
	const char *name;
	const char *summary; /* one line, for `gvm --help` */
	/*
	 * argv[0] is the subcommand name.  Returns the process exit status
	 * (for `gvm run`, the guest's).
	 */
	int (*main)(int argc, char **argv);
	/* The full help: usage line, description, options. */
	void (*help)(FILE *f);
};

extern const struct gvm_cmd cmd_run;
extern const struct gvm_cmd cmd_node;
extern const struct gvm_cmd cmd_topo;
extern const struct gvm_cmd cmd_check;

#endif
