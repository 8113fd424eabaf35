#include "vmm/options.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/parse.h"

enum opt_id {
	O_VCPUS, O_MEM, O_NUMA, O_CPU_FEATURES,
	O_KERNEL, O_INITRD, O_APPEND,
	O_DUMP_ACPI, O_STATS,
	O_XML,
	O_NR,
};

struct opt_def {
	const char *name;
	const char *arg;  /* NULL: a flag */
	unsigned group;
	bool repeatable;
	const char *help;
};

static const struct opt_def opts[O_NR] = {
	[O_VCPUS] = { "vcpus", "N", OPTG_MACHINE, false,
		      "virtual CPUs in all, a multiple of the NUMA nodes (default: this host's "
		      "cores)" },
	[O_MEM] = { "mem", "SIZE", OPTG_MACHINE, false,
		    "guest RAM in all, e.g. 512M or 4G, split evenly between the NUMA nodes "
		    "(default: half this host's RAM)" },
	[O_NUMA] = { "numa", "N", OPTG_MACHINE, false,
		     "virtual NUMA nodes the guest sees (default: 1)" },
	[O_CPU_FEATURES] = { "cpu-features", "SPEC", OPTG_MACHINE, false,
			     "CPU features the guest sees: host, conservative or auto, then "
			     "optional ,+name / ,-name changes (default: auto, which picks "
			     "conservative where this host emulates guest kernel code)" },
	[O_KERNEL] = { "kernel", "FILE", OPTG_BOOT, false,
		       "the guest kernel: a Linux bzImage or vmlinux, or an ELF64 guest such as "
		       "the probe (required)" },
	[O_INITRD] = { "initrd", "FILE", OPTG_BOOT, true,
		       "an initramfs; give it several times to concatenate several, in order" },
	[O_APPEND] = { "append", "CMDLINE", OPTG_BOOT, false, "the kernel command line" },
	[O_DUMP_ACPI] = { "dump-acpi", "DIR", OPTG_RUN, false,
			  "also write the ACPI tables given to the guest to DIR, one file per "
			  "table (for iasl -d)" },
	[O_STATS] = { "stats", NULL, OPTG_RUN, false,
		      "at the end, print the VM exits by reason and per second" },
	[O_XML] = { "xml", "FILE", OPTG_TOPO, false,
		    "also write the topology as hwloc XML to FILE (for lstopo --input FILE)" },
};

static int set_option(struct vm_options *o, enum opt_id id, const char *val, const char *cmd)
{
	char err[PARSE_ERR_MAX];

	switch (id) {
	case O_VCPUS:
		if (parse_uint(val, 1, TOPO_MAX_CPUS, &o->topo.nr_cpus, err))
			goto bad;
		break;
	case O_MEM:
		if (parse_size(val, &o->topo.ram_size, err))
			goto bad;
		if (!o->topo.ram_size) {
			snprintf(err, sizeof(err), "the guest needs some memory");
			goto bad;
		}
		break;
	case O_NUMA:
		if (parse_uint(val, 1, TOPO_MAX_NODES, &o->topo.nr_nodes, err))
			goto bad;
		break;
	case O_CPU_FEATURES:
		if (!*val) {
			snprintf(err, sizeof(err), "the feature spec is empty");
			goto bad;
		}
		o->cpu_features = val;
		break;
	case O_KERNEL:
		o->kernel = val;
		break;
	case O_INITRD:
		if (o->nr_initrds == OPT_MAX_INITRDS) {
			snprintf(err, sizeof(err), "at most %d initrds", OPT_MAX_INITRDS);
			goto bad;
		}
		o->initrds[o->nr_initrds++] = val;
		break;
	case O_APPEND:
		o->append = val;
		break;
	case O_DUMP_ACPI:
		o->dump_acpi = val;
		break;
	case O_STATS:
		o->stats = true;
		break;
	case O_XML:
		o->xml = val;
		break;
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
	bool seen[O_NR] = { false };
	const char *cmd = argv[0];
	char cerr[CPUID_ERR_MAX];

	memset(o, 0, sizeof(*o));
	cpuid_features_parse(NULL, &o->features, cerr);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *val = NULL, *eq;
		size_t namelen;
		int id = -1;

		if (!strcmp(a, "-h") || !strcmp(a, "--help"))
			return 1;
		if (strncmp(a, "--", 2) || !a[2]) {
			pr_err("%s: unexpected argument '%s' (options start with --; "
			       "see gvm help %s)", cmd, a, cmd);
			return -1;
		}
		a += 2;
		eq = strchr(a, '=');
		namelen = eq ? (size_t)(eq - a) : strlen(a);
		for (int k = 0; k < O_NR; k++) {
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
	if (o->cpu_features && cpuid_features_parse(o->cpu_features, &o->features, cerr)) {
		pr_err("%s: --cpu-features: %s", cmd, cerr);
		return -1;
	}
	return 0;
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
	for (int k = 0; k < O_NR; k++) {
		char left[64];

		if (!(opts[k].group & groups))
			continue;
		snprintf(left, sizeof(left), "--%s%s%s", opts[k].name, opts[k].arg ? " " : "",
			 opts[k].arg ? opts[k].arg : "");
		help_line(f, left, opts[k].help);
	}
	help_line(f, "-h, --help", "show this help");
}
