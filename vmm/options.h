/*
 * Command-line options shared by the gvm subcommands.  One table describes
 * every option; a subcommand accepts the groups it names, so `gvm run`,
 * `gvm node` and `gvm topo` parse the machine shape the same way and their
 * --help lists exactly what they accept.
 */
#ifndef GVM_VMM_OPTIONS_H
#define GVM_VMM_OPTIONS_H

#include <stdbool.h>
#include <stdio.h>

#include "common/parse.h"
#include "vmm/topo.h"
#include "vmm/x86/cpuid.h"

enum opt_group {
	OPTG_MACHINE = 1u << 0, /* --vcpus --mem --numa --cpu-features */
	OPTG_BOOT = 1u << 1,    /* --kernel --initrd --append */
	OPTG_RUN = 1u << 2,     /* --dump-acpi --stats --report-silence */
	OPTG_TOPO = 1u << 3,    /* --xml */
	OPTG_LAUNCH = 1u << 4,  /* --nodes (gvm run) */
	OPTG_NODE = 1u << 5,    /* --rank --peers --vm-id ... (gvm node) */
	OPTG_JOB = 1u << 6,     /* --copy --output ... and -- COMMAND [ARGS] */
	OPTG_CHECK = 1u << 7,   /* --port --flag-factor (gvm check) */
	OPTG_PIN = 1u << 8,     /* --host-cpus (gvm node, and gvm run of one instance) */
};

#define OPT_MAX_INITRDS 32
#define OPT_MAX_COPIES 256
#define OPT_JOB_ID_MAX 64
#define OPT_MAX_ENVS 256
#define OPT_OUTPUT_MAX_DEFAULT (1ull << 30)

struct vm_options {
	/*
	 * The machine shape as given: a field left 0 takes topo_build's
	 * default from the host.  Divisibility and fit are checked by
	 * topo_build, not here.
	 */
	struct topo_params topo;
	bool numa_host;           /* --numa host: topo.nr_nodes is the host's to say */
	const char *cpu_features; /* --cpu-features spec as given; NULL: not given */
	struct cpuid_features features; /* parsed (and validated) from it; "auto" if not given */
	const char *kernel;       /* --kernel: bzImage, vmlinux or ELF64 guest */
	const char *initrds[OPT_MAX_INITRDS]; /* --initrd, in order, concatenated */
	unsigned nr_initrds;
	const char *append;       /* --append: kernel command line */
	const char *image;        /* --image NAME|PATH (vmm/image.h) */
	const char *dump_acpi;    /* --dump-acpi DIR */
	const char *xml;          /* --xml FILE (gvm topo) */
	bool stats;               /* --stats */
	bool verbose;             /* --verbose */

	/* a job (vmm/job.h): -- COMMAND [ARGS], and what goes with it */
	char **job_argv;          /* COMMAND and ARGS, pointing into argv; NULL: no job */
	unsigned job_argc;
	const char *copies[OPT_MAX_COPIES]; /* --copy */
	unsigned nr_copies;
	const char *output_dir;   /* --output (default: the current directory) */
	bool overwrite;           /* --overwrite */
	uint64_t output_max;      /* --output-max */
	const char *job_id;       /* --job-id */
	const char *envs[OPT_MAX_ENVS]; /* --env: NAME=VALUE, or NAME (this environment's value) */
	unsigned nr_envs;
	unsigned report_silence;  /* --report-silence, seconds (default 30, 0: never; jobs: 0) */

	unsigned nodes;           /* --nodes N (gvm run); 0: not given */

	/* gvm node */
	bool have_rank;
	unsigned rank;            /* --rank */
	struct hostport *peers;   /* --peers, malloc'ed (options_free) */
	unsigned nr_peers;
	bool have_vm_id;
	uint64_t vm_id;           /* --vm-id */
	const char *munge_socket; /* --munge-socket, else GVM_MUNGE_SOCKET, else NULL */
	const char *listen;       /* --listen ADDR; NULL: every address */
	int listen_fd, kvm_fd, uffd_fd, status_fd; /* inherited descriptors, -1: none */
	unsigned host_cpus[TOPO_MAX_CPUS];         /* --host-cpus */
	unsigned nr_host_cpus;
	unsigned connect_timeout; /* --connect-timeout, seconds (default 30) */
	unsigned peer_timeout;    /* --peer-timeout, seconds (default 30) */
	const char *transport;    /* --transport (dsm_config.transport); NULL: tcp */
	bool integrity;           /* --integrity (mesh_config.integrity) */

	/* gvm check */
	unsigned port;            /* --port; 0: not given */
	double flag_factor;       /* --flag-factor; 0: not given */
};

/*
 * Parse argv[1..argc) (argv[0] is the subcommand name) accepting the options
 * of `groups`.  Strings point into argv.  Returns 0 when parsed, 1 when
 * --help was given (the help is printed to stdout), -1 on a bad option or
 * value (an error naming it is printed).  Positional arguments are refused,
 * but for `-- COMMAND [ARGS]` where groups has OPTG_JOB.
 */
int options_parse(int argc, char **argv, unsigned groups, struct vm_options *o);

/* Release what options_parse allocated (also after it failed). */
void options_free(struct vm_options *o);

/*
 * Does argv[i] (an option of `groups`) take the next word as its value?  For
 * a launcher that passes options on: 1 it does, 0 it does not, -1 unknown.
 */
int options_takes_value(const char *arg, unsigned groups);

/* Is arg the long option `name`, as "--name" or "--name=value"? */
bool options_is(const char *arg, const char *name);

/* The option list of `groups`, as shown by `gvm help CMD`. */
void options_help(FILE *f, unsigned groups);

#endif
