/*
 * Command-line options shared by the gvm subcommands.  One table describes
 * every option; a subcommand accepts the groups it names, so `gvm run` and
 * `gvm topo` (and later `gvm node`) parse the machine shape the same way and
 * their --help lists exactly what they accept.
 */
#ifndef GVM_VMM_OPTIONS_H
#define GVM_VMM_OPTIONS_H

#include <stdbool.h>
#include <stdio.h>

#include "vmm/topo.h"
#include "vmm/x86/cpuid.h"

enum opt_group {
	OPTG_MACHINE = 1u << 0, /* --vcpus --mem --numa --cpu-features */
	OPTG_BOOT = 1u << 1,    /* --kernel --initrd --append */
	OPTG_RUN = 1u << 2,     /* --dump-acpi --stats */
	OPTG_TOPO = 1u << 3,    /* --xml */
};

#define OPT_MAX_INITRDS 32

struct vm_options {
	/*
	 * The machine shape as given: a field left 0 takes topo_build's
	 * default from the host.  Divisibility and fit are checked by
	 * topo_build, not here.
	 */
	struct topo_params topo;
	const char *cpu_features; /* --cpu-features spec as given; NULL: not given */
	struct cpuid_features features; /* parsed (and validated) from it; "auto" if not given */
	const char *kernel;       /* --kernel: bzImage, vmlinux or ELF64 guest */
	const char *initrds[OPT_MAX_INITRDS]; /* --initrd, in order, concatenated */
	unsigned nr_initrds;
	const char *append;       /* --append: kernel command line */
	const char *dump_acpi;    /* --dump-acpi DIR */
	const char *xml;          /* --xml FILE (gvm topo) */
	bool stats;               /* --stats */
};

/*
 * Parse argv[1..argc) (argv[0] is the subcommand name) accepting the options
 * of `groups`.  Strings point into argv.  Returns 0 when parsed, 1 when
 * --help was given (the help is printed to stdout), -1 on a bad option or
 * value (an error naming it is printed).  Positional arguments are refused.
 */
int options_parse(int argc, char **argv, unsigned groups, struct vm_options *o);

/* The option list of `groups`, as shown by `gvm help CMD`. */
void options_help(FILE *f, unsigned groups);

#endif
