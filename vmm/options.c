#include "vmm/options.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/parse.h"

enum opt_id {
	OPT_VCPUS, OPT_MEM, OPT_NUMA, OPT_CPU_FEATURES,
	OPT_KERNEL, OPT_IMAGE, OPT_INITRD, OPT_APPEND,
	OPT_DUMP_ACPI, OPT_STATS, OPT_VERBOSE, OPT_REPORT_SILENCE,
	OPT_COPY, OPT_ENV, OPT_OUTPUT, OPT_OVERWRITE, OPT_OUTPUT_MAX, OPT_JOB_ID,
	OPT_XML,
	OPT_NODES,
	OPT_RANK, OPT_PEERS, OPT_VM_ID, OPT_MUNGE_SOCKET, OPT_LISTEN, OPT_LISTEN_FD, OPT_KVM_FD, OPT_UFFD_FD,
	OPT_STATUS_FD, OPT_HOST_CPUS, OPT_CONNECT_TIMEOUT, OPT_PEER_TIMEOUT, OPT_TRANSPORT,
	OPT_INTEGRITY,
	OPT_PORT, OPT_FLAG_FACTOR,
	OPT_NR,
};

struct opt_def {
	const char *name;
	const char *arg;  /* NULL: a flag */
	unsigned group;
	bool repeatable;
	const char *help;
};

static const struct opt_def opts[OPT_NR] = {
	[OPT_VCPUS] = { "vcpus", "N", OPTG_MACHINE, false,
		      "virtual CPUs in all, a multiple of the NUMA nodes (default: this host's "
		      "cores, at least one per NUMA node; with gvm node, that many per "
		      "instance)" },
	[OPT_MEM] = { "mem", "SIZE", OPTG_MACHINE, false,
		    "guest RAM in all, e.g. 512M or 4G, split evenly between the NUMA nodes "
		    "(default: half this host's RAM; with gvm node, that much per instance; "
		    "for a job where KVM emulates guest kernel code, 512M per node)" },
	[OPT_NUMA] = { "numa", "N|host", OPTG_MACHINE, false,
		     "virtual NUMA nodes the guest sees (default: 1; over several "
		     "instances, one per instance; there, a multiple of the instances); "
		     "host: one per host NUMA node the vCPUs run on, on every instance" },
	[OPT_CPU_FEATURES] = { "cpu-features", "SPEC", OPTG_MACHINE, false,
			     "CPU features the guest sees: host, conservative or auto, then "
			     "optional ,+name / ,-name changes (default: auto, which picks "
			     "conservative where this host emulates guest kernel code)" },
	[OPT_KERNEL] = { "kernel", "FILE", OPTG_BOOT, false,
		       "the guest kernel: a Linux bzImage or vmlinux, or an ELF64 guest such as "
		       "the probe (required, unless --image or a job gives it)" },
	[OPT_IMAGE] = { "image", "NAME|PATH", OPTG_BOOT, false,
		      "boot an image: linux (the default for a job), probe, or a directory "
		      "or kernel file; its command line, with the words this host needs, "
		      "comes before --append" },
	[OPT_INITRD] = { "initrd", "FILE", OPTG_BOOT, true,
		       "an initramfs; give it several times to concatenate several, in order" },
	[OPT_APPEND] = { "append", "CMDLINE", OPTG_BOOT, false, "the kernel command line" },
	[OPT_DUMP_ACPI] = { "dump-acpi", "DIR", OPTG_RUN, false,
			  "also write the ACPI tables given to the guest to DIR, one file per "
			  "table (for iasl -d)" },
	[OPT_VERBOSE] = { "verbose", NULL, OPTG_RUN, false,
			"for a job, show the phases of the run and the guest's console on "
			"standard error" },
	[OPT_COPY] = { "copy", "PATH", OPTG_JOB, true,
		     "a file or directory for the job, in its working directory under its "
		     "own name; give it several times for several" },
	[OPT_ENV] = { "env", "NAME=VALUE|NAME", OPTG_JOB, true,
		    "a variable of the job's environment (NAME alone: its value here); give it "
		    "several times for several; GVM_* names are gvm's own" },
	[OPT_OUTPUT] = { "output", "DIR", OPTG_JOB, false,
		       "where the files the job leaves in $GVM_OUTPUT_DIR come back (default: "
		       "the current directory)" },
	[OPT_OVERWRITE] = { "overwrite", NULL, OPTG_JOB, false,
			  "let the job's output files replace files of the same name in --output" },
	[OPT_OUTPUT_MAX] = { "output-max", "SIZE", OPTG_JOB, false,
			   "refuse output files beyond SIZE in all (default 1G)" },
	[OPT_JOB_ID] = { "job-id", "ID", OPTG_JOB, false,
		       "the job's identity, which it sees as $GVM_JOB_ID (the Slurm job id)" },
	[OPT_STATS] = { "stats", NULL, OPTG_RUN, false,
		      "at the end, print the VM exits by reason and per second (over several "
		      "instances, each prints its own, with its DSM faults and peak RSS)" },
	[OPT_REPORT_SILENCE] = { "report-silence", "SECONDS", OPTG_RUN, false,
			       "when the guest's console has been silent for SECONDS, and again "
			       "every SECONDS while it stays so, print on standard error what each "
			       "vCPU does: running or halted, its mode, RIP and exits per second "
			       "(default 30, for a job 0; 0: never)" },
	[OPT_XML] = { "xml", "FILE", OPTG_TOPO, false,
		    "also write the topology as hwloc XML to FILE (for lstopo --input FILE)" },
	[OPT_NODES] = { "nodes", "N", OPTG_LAUNCH | OPTG_TOPO, false,
		      "run the guest over N gvm instances on this machine, joined like the "
		      "nodes of a cluster, one NUMA node each unless --numa says more "
		      "(default: one instance); gvm topo: show the guest of N cluster "
		      "nodes like this one" },
	[OPT_RANK] = { "rank", "R", OPTG_NODE, false,
		     "this instance's rank, 0 to N-1: its entry in --peers and the guest "
		     "NUMA node it runs (required)" },
	[OPT_PEERS] = { "peers", "HOST:PORT,...", OPTG_NODE, false,
		      "every instance's address, in rank order (required); this one listens "
		      "on its own entry" },
	[OPT_VM_ID] = { "vm-id", "ID", OPTG_NODE, false,
		      "the VM's identity, the same for every instance (the Slurm job id); "
		      "peers of another VM are refused (required)" },
	[OPT_MUNGE_SOCKET] = { "munge-socket", "PATH", OPTG_NODE, false,
			     "munged's socket (default: $GVM_MUNGE_SOCKET, else munge's own)" },
	[OPT_LISTEN] = { "listen", "ADDR", OPTG_NODE, false,
		       "the address to accept the other instances on, at this rank's port "
		       "in --peers (default: every address of this host, since its own "
		       "name may resolve to loopback here)" },
	[OPT_LISTEN_FD] = { "listen-fd", "FD", OPTG_NODE, false,
			  "an inherited listening TCP socket to accept peers on, instead of "
			  "opening this rank's address" },
	[OPT_KVM_FD] = { "kvm-fd", "FD", OPTG_NODE, false,
		       "an inherited descriptor of /dev/kvm, for a user who may not open it" },
	[OPT_UFFD_FD] = { "uffd-fd", "FD", OPTG_NODE, false,
			"an inherited descriptor of /dev/userfaultfd, for a user who may not "
			"open it" },
	[OPT_STATUS_FD] = { "status-fd", "FD", OPTG_NODE, false,
			  "write one line per phase to FD, for a launcher: 'R connected', "
			  "'R ready', 'R running', 'R exit STATUS' (R: the rank)" },
	[OPT_HOST_CPUS] = { "host-cpus", "LIST", OPTG_NODE | OPTG_PIN, false,
			  "host CPUs (OS numbers, e.g. 0,2,4-7) to pin this instance's vCPUs "
			  "to, one each, in order (default: chosen with hwloc; not with --nodes)" },
	[OPT_CONNECT_TIMEOUT] = { "connect-timeout", "SECONDS", OPTG_NODE, false,
				"give up when the other instances are not all connected after "
				"SECONDS (default 30)" },
	[OPT_PEER_TIMEOUT] = { "peer-timeout", "SECONDS", OPTG_NODE | OPTG_LAUNCH, false,
			     "an instance that says nothing for SECONDS while the guest runs "
			     "(stopped, hung, cut off) is lost, and the VM stops (default 30: "
			     "long enough for a busy host or a network fail-over)" },
	[OPT_TRANSPORT] = { "transport", "tcp|fabric[:PROVIDER]", OPTG_NODE | OPTG_LAUNCH, false,
			  "what carries guest RAM's pages between instances, the same for all: "
			  "tcp (default), the instances' own connections; fabric, libfabric's "
			  "first provider here that reaches other hosts (verbs on InfiniBand and "
			  "RoCE...); fabric:PROVIDER, the one named (fi_info -l lists them).  "
			  "The instance says which it used" },
	[OPT_INTEGRITY] = { "integrity", NULL, OPTG_NODE | OPTG_LAUNCH, false,
			  "check every message between instances (a 16-byte AES-GCM tag, keys "
			  "agreed through munge), so that one forged or altered on the network "
			  "stops the VM instead of being taken; all instances alike, "
			  "--transport tcp only (about 1 us per page each way)" },
	[OPT_PORT] = { "port", "PORT", OPTG_CHECK, false,
		     "in a Slurm step without SLURM_STEP_RESV_PORTS, the TCP port every "
		     "instance listens on (the next ones for nodes that share an address; "
		     "default 47000)" },
	[OPT_FLAG_FACTOR] = { "flag-factor", "X", OPTG_CHECK, false,
			    "flag a pair of nodes whose IPI round trip or read fault takes more "
			    "than X times, or whose read bandwidth is below 1/X of, the median of "
			    "the other pairs (default 3; at least 1)" },
};

/* An inherited descriptor: a number, and open in this process. */
static int parse_fd(const char *val, int *out, char *err)
{
	unsigned fd;

	if (parse_uint(val, 0, 1 << 20, &fd, err))
		return -1;
	if (fcntl((int)fd, F_GETFD) < 0) {
		snprintf(err, PARSE_ERR_MAX, "descriptor %u is not open in this process", fd);
		return -1;
	}
	*out = (int)fd;
	return 0;
}

static int set_option(struct vm_options *o, enum opt_id id, const char *val, const char *cmd)
{
	char err[PARSE_ERR_MAX];

	switch (id) {
	case OPT_VCPUS:
		if (parse_uint(val, 1, TOPO_MAX_CPUS, &o->topo.nr_cpus, err))
			goto bad;
		break;
	case OPT_MEM:
		if (parse_size(val, &o->topo.ram_size, err))
			goto bad;
		if (!o->topo.ram_size) {
			snprintf(err, sizeof(err), "the guest needs some memory");
			goto bad;
		}
		break;
	case OPT_NUMA:
		o->numa_host = !strcmp(val, "host");
		if (!o->numa_host && parse_uint(val, 1, TOPO_MAX_NODES, &o->topo.nr_nodes, err)) {
			snprintf(err + strlen(err), sizeof(err) - strlen(err),
				 " (or host: one per host NUMA node)");
			goto bad;
		}
		if (o->numa_host)
			o->topo.nr_nodes = 0;
		break;
	case OPT_CPU_FEATURES:
		if (!*val) {
			snprintf(err, sizeof(err), "the feature spec is empty");
			goto bad;
		}
		o->cpu_features = val;
		break;
	case OPT_KERNEL:
		o->kernel = val;
		break;
	case OPT_IMAGE:
		if (!*val) {
			snprintf(err, sizeof(err), "an empty name (linux, probe, or a directory or kernel file)");
			goto bad;
		}
		o->image = val;
		break;
	case OPT_VERBOSE:
		o->verbose = true;
		break;
	case OPT_COPY:
		if (o->nr_copies == OPT_MAX_COPIES) {
			snprintf(err, sizeof(err), "at most %d (copy a directory instead)",
				 OPT_MAX_COPIES);
			goto bad;
		}
		if (!*val) {
			snprintf(err, sizeof(err), "an empty path");
			goto bad;
		}
		o->copies[o->nr_copies++] = val;
		break;
	case OPT_ENV: {
		size_t n = strcspn(val, "=");

		if (o->nr_envs == OPT_MAX_ENVS) {
			snprintf(err, sizeof(err), "at most %d (copy a file of settings instead)",
				 OPT_MAX_ENVS);
			goto bad;
		}
		/* a name the guest's shell can use: its environment is data, not syntax */
		if (!n || n > 255 || (val[0] >= '0' && val[0] <= '9') ||
		    strspn(val, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") != n) {
			snprintf(err, sizeof(err), "'%.*s' is not a variable name (letters, digits "
				 "and _, not first a digit)", (int)(n > 255 ? 255 : n), val);
			goto bad;
		}
		if (!strncmp(val, "GVM_", 4)) {
			snprintf(err, sizeof(err), "%.*s: GVM_* variables are gvm's own, set for the "
				 "job by gvm", (int)n, val);
			goto bad;
		}
		if (!val[n] && !getenv(val)) {
			snprintf(err, sizeof(err), "%s is not set here: give %s=VALUE", val, val);
			goto bad;
		}
		o->envs[o->nr_envs++] = val;
		break;
	}
	case OPT_OUTPUT:
		if (!*val) {
			snprintf(err, sizeof(err), "an empty path (give a directory)");
			goto bad;
		}
		o->output_dir = val;
		break;
	case OPT_OVERWRITE:
		o->overwrite = true;
		break;
	case OPT_OUTPUT_MAX:
		if (parse_size(val, &o->output_max, err))
			goto bad;
		break;
	case OPT_JOB_ID: {
		size_t n = strlen(val);

		if (!n || n > OPT_JOB_ID_MAX || strspn(val, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			"abcdefghijklmnopqrstuvwxyz0123456789_.+-") != n) {
			snprintf(err, sizeof(err), "'%s' is not a job id (1 to %d letters, digits "
				 "or _.+-)", val, OPT_JOB_ID_MAX);
			goto bad;
		}
		o->job_id = val;
		break;
	}
	case OPT_INITRD:
		if (o->nr_initrds == OPT_MAX_INITRDS) {
			snprintf(err, sizeof(err), "at most %d initrds", OPT_MAX_INITRDS);
			goto bad;
		}
		o->initrds[o->nr_initrds++] = val;
		break;
	case OPT_APPEND:
		o->append = val;
		break;
	case OPT_DUMP_ACPI:
		o->dump_acpi = val;
		break;
	case OPT_STATS:
		o->stats = true;
		break;
	case OPT_REPORT_SILENCE:
		if (parse_uint(val, 0, 86400, &o->report_silence, err))
			goto bad;
		break;
	case OPT_XML:
		o->xml = val;
		break;
	case OPT_NODES:
		if (parse_uint(val, 1, TOPO_MAX_NODES, &o->nodes, err))
			goto bad;
		break;
	case OPT_RANK:
		if (parse_uint(val, 0, TOPO_MAX_NODES - 1, &o->rank, err))
			goto bad;
		o->have_rank = true;
		break;
	case OPT_PEERS: {
		int n = parse_hostport_list(val, &o->peers, err);

		if (n < 0)
			goto bad;
		o->nr_peers = (unsigned)n;
		if (o->nr_peers > TOPO_MAX_NODES) {
			snprintf(err, sizeof(err), "%u peers; at most %u instances are supported",
				 o->nr_peers, TOPO_MAX_NODES);
			goto bad;
		}
		break;
	}
	case OPT_VM_ID:
		if (parse_u64(val, 1, UINT64_MAX, &o->vm_id, err))
			goto bad;
		o->have_vm_id = true;
		break;
	case OPT_MUNGE_SOCKET:
		if (!*val) {
			snprintf(err, sizeof(err), "an empty path");
			goto bad;
		}
		o->munge_socket = val;
		break;
	case OPT_LISTEN:
		if (!*val || strlen(val) >= HOSTPORT_HOST_MAX || strchr(val, ' ')) {
			snprintf(err, sizeof(err), "'%s' is not an address", val);
			goto bad;
		}
		o->listen = val;
		break;
	case OPT_LISTEN_FD:
		if (parse_fd(val, &o->listen_fd, err))
			goto bad;
		break;
	case OPT_KVM_FD:
		if (parse_fd(val, &o->kvm_fd, err))
			goto bad;
		break;
	case OPT_UFFD_FD:
		if (parse_fd(val, &o->uffd_fd, err))
			goto bad;
		break;
	case OPT_STATUS_FD:
		if (parse_fd(val, &o->status_fd, err))
			goto bad;
		break;
	case OPT_HOST_CPUS:
		if (parse_uint_list(val, 65535, o->host_cpus, TOPO_MAX_CPUS, &o->nr_host_cpus, err))
			goto bad;
		break;
	case OPT_CONNECT_TIMEOUT:
		if (parse_uint(val, 1, 3600, &o->connect_timeout, err))
			goto bad;
		break;
	case OPT_PEER_TIMEOUT:
		if (parse_uint(val, 1, 3600, &o->peer_timeout, err))
			goto bad;
		break;
	case OPT_TRANSPORT:
		if (parse_transport(val, err))
			goto bad;
		o->transport = val;
		break;
	case OPT_INTEGRITY:
		o->integrity = true;
		break;
	case OPT_PORT:
		if (parse_uint(val, 1, 65535, &o->port, err))
			goto bad;
		break;
	case OPT_FLAG_FACTOR: {
		char *end;

		o->flag_factor = strtod(val, &end);
		if (!*val || *end || !(o->flag_factor >= 1 && o->flag_factor <= 1e6)) {
			snprintf(err, sizeof(err), "'%s' is not a number from 1 to 1000000", val);
			goto bad;
		}
		break;
	}
	default:
		break;
	}
	return 0;
bad:
	pr_err("%s: --%s: %s", cmd, opts[id].name, err);
	return -1;
}

int options_parse(int argc, char **argv, unsigned groups, struct vm_options *o)
{
	bool seen[OPT_NR] = { false };
	const char *cmd = argv[0];
	char cerr[CPUID_ERR_MAX];

	memset(o, 0, sizeof(*o));
	o->listen_fd = o->kvm_fd = o->uffd_fd = o->status_fd = -1;
	o->connect_timeout = 30;
	o->peer_timeout = 30;
	o->output_max = OPT_OUTPUT_MAX_DEFAULT;
	o->report_silence = 30;
	cpuid_features_parse(NULL, &o->features, cerr);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = NULL, *eq;
		size_t namelen;
		int id = -1;

		if (!strcmp(a, "-h") || !strcmp(a, "--help"))
			return 1;
		if (!strcmp(a, "--") && (groups & OPTG_JOB)) {
			if (i + 1 == argc || !argv[i + 1][0]) {
				pr_err("%s: -- must be followed by the job's command (see gvm "
				       "help %s)", cmd, cmd);
				return -1;
			}
			o->job_argv = argv + i + 1;
			o->job_argc = argc - i - 1;
			break;
		}
		if (strncmp(a, "--", 2) || !a[2]) {
			pr_err("%s: unexpected argument '%s' (options start with --; "
			       "see gvm help %s)", cmd, a, cmd);
			return -1;
		}
		a += 2;
		eq = strchr(a, '=');
		namelen = eq ? (size_t)(eq - a) : strlen(a);
		for (int k = 0; k < OPT_NR; k++) {
			if ((opts[k].group & groups) && strlen(opts[k].name) == namelen &&
			    !strncmp(opts[k].name, a, namelen)) {
				id = k;
				break;
			}
		}
		if (id < 0) {
			pr_err("%s: unknown option '--%.*s' (see gvm help %s)", cmd,
			       (int)namelen, a, cmd);
			return -1;
		}
		if (seen[id] && !opts[id].repeatable) {
			pr_err("%s: --%s given twice", cmd, opts[id].name);
			return -1;
		}
		seen[id] = true;
		if (opts[id].arg) {
			if (eq) {
				val = eq + 1;
			} else if (i + 1 < argc) {
				val = argv[++i];
			} else {
				pr_err("%s: --%s needs a value (%s)", cmd, opts[id].name,
				       opts[id].arg);
				return -1;
			}
		} else if (eq) {
			pr_err("%s: --%s takes no value", cmd, opts[id].name);
			return -1;
		}
		if (set_option(o, id, val, cmd))
			return -1;
	}
	/*
	 * A job computes as long as it likes without a word on the console
	 * (its output takes another path, and the image's kernel is quiet):
	 * its silence is no sign of trouble unless the user asks.
	 */
	if (o->job_argv && !seen[OPT_REPORT_SILENCE])
		o->report_silence = 0;
	if (o->kernel && o->image) {
		pr_err("%s: --kernel and --image both name the guest: give one", cmd);
		return -1;
	}
	if (!o->job_argv && (seen[OPT_COPY] || seen[OPT_ENV] || seen[OPT_OUTPUT] ||
			     seen[OPT_OVERWRITE] || seen[OPT_OUTPUT_MAX] || seen[OPT_JOB_ID])) {
		pr_err("%s: --copy, --env, --output, --overwrite, --output-max and --job-id are for a "
		       "job: gvm %s [OPTIONS] -- COMMAND [ARGS]", cmd, cmd);
		return -1;
	}
	if (o->integrity && o->transport && strcmp(o->transport, "tcp")) {
		pr_err("%s: --integrity checks what goes over the instances' TCP connections; "
		       "--transport %s would carry guest RAM's pages unchecked: use --transport "
		       "tcp with it", cmd, o->transport);
		return -1;
	}
	if (o->cpu_features && cpuid_features_parse(o->cpu_features, &o->features, cerr)) {
		pr_err("%s: --cpu-features: %s", cmd, cerr);
		return -1;
	}
	if ((groups & OPTG_NODE) && !o->munge_socket) {
		const char *env = getenv("GVM_MUNGE_SOCKET");

		o->munge_socket = env && *env ? env : NULL;
	}
	return 0;
}

void options_free(struct vm_options *o)
{
	free(o->peers);
	o->peers = NULL;
	o->nr_peers = 0;
}

bool options_is(const char *arg, const char *name)
{
	size_t n = strlen(name);

	return !strncmp(arg, "--", 2) && !strncmp(arg + 2, name, n) &&
	       (arg[n + 2] == '=' || !arg[n + 2]);
}

int options_takes_value(const char *arg, unsigned groups)
{
	size_t namelen;

	if (strncmp(arg, "--", 2))
		return -1;
	arg += 2;
	namelen = strcspn(arg, "=");
	for (int k = 0; k < OPT_NR; k++)
		if ((opts[k].group & groups) && strlen(opts[k].name) == namelen &&
		    !strncmp(opts[k].name, arg, namelen))
			return opts[k].arg && !arg[namelen];
	return -1;
}

#define HELP_INDENT 25
#define HELP_WIDTH 79

/* One option: its name in the left column, its help wrapped in the right one. */
static void help_line(FILE *f, const char *left, const char *text)
{
	unsigned col = fprintf(f, "  %-*s", HELP_INDENT - 3, left);

	if (col >= HELP_INDENT) {
		fputc('\n', f);
		col = 0;
	}
	while (*text) {
		size_t word = strcspn(text, " ");

		if (col > HELP_INDENT && col + 1 + word > HELP_WIDTH) {
			fputc('\n', f);
			col = 0;
		}
		if (col < HELP_INDENT) {
			col += fprintf(f, "%*s", (int)(HELP_INDENT - col), "");
		} else {
			fputc(' ', f);
			col++;
		}
		col += fwrite(text, 1, word, f);
		text += word;
		text += strspn(text, " ");
	}
	fputc('\n', f);
}

void options_help(FILE *f, unsigned groups)
{
	for (int k = 0; k < OPT_NR; k++) {
		char left[64];

		if (!(opts[k].group & groups))
			continue;
		snprintf(left, sizeof(left), "--%s%s%s", opts[k].name, opts[k].arg ? " " : "",
			 opts[k].arg ? opts[k].arg : "");
		help_line(f, left, opts[k].help);
	}
	if (groups & OPTG_JOB)
		help_line(f, "-- COMMAND [ARGS]", "run COMMAND with ARGS in the guest (the linux "
			  "image unless --image or --kernel says otherwise): a file of this "
			  "host (a path with a '/', or one in the current directory) or a "
			  "command of the guest's; its output is gvm's, its status gvm's");
	help_line(f, "-h, --help", "show this help");
}
