/* gvm topo: show the machine a guest would see. */
#include <stdlib.h>

#include "common/log.h"
#include "vmm/cmd.h"
#include "vmm/guest.h"
#include "vmm/host.h"
#include "vmm/options.h"
#include "vmm/topo.h"

#define TOPO_GROUPS (OPTG_MACHINE | OPTG_TOPO)

static void topo_help(FILE *f)
{
	fprintf(f, "usage: gvm topo [OPTIONS]\n"
		   "\n"
		   "Print the topology a guest started with the same options would see: NUMA\n"
		   "nodes, their vCPUs (APIC IDs) and memory, distances, caches.  With --xml,\n"
		   "also write it as hwloc XML: lstopo --input FILE then shows the guest.\n"
		   "With --nodes N, the guest of N cluster nodes shaped like this one, each\n"
		   "holding a share of the vCPUs and RAM; without --vcpus and --mem, each\n"
		   "gives this host's cores and half its RAM, where gvm run --nodes N, whose\n"
		   "instances all run here, divides this host's among them.\n"
		   "\n"
		   "Options:\n");
	options_help(f, TOPO_GROUPS);
}

static int topo_main(int argc, char **argv)
{
	struct vm_options o;
	struct vm_topology *t;
	struct host *host;
	char err[TOPO_ERR_MAX > HOST_ERR_MAX ? TOPO_ERR_MAX : HOST_ERR_MAX];
	int r = options_parse(argc, argv, TOPO_GROUPS, &o), status = 1;

	if (r > 0) {
		topo_help(stdout);
		return 0;
	}
	if (r < 0)
		return 2;
	t = malloc(sizeof(*t));
	if (!t)
		die("out of memory");
	host = host_open(err);
	if (!host) {
		pr_err("topo: cannot read this host's topology: %s", err);
		goto out;
	}
	if (guest_numa_shape(&o, host, o.nodes ? o.nodes : 1, &o.topo, "topo")) {
		status = 2;
		goto out;
	}
	o.topo.host = host;
	if (o.nodes)
		o.topo.host_nodes = o.topo.nr_nodes / o.nodes;
	if (topo_build(&o.topo, t, err)) {
		pr_err("topo: %s", err);
		goto out;
	}
	/* The file first: a failure must not look like a topology that was shown and saved. */
	if (o.xml && topo_write_xml(t, o.xml, err)) {
		pr_err("topo: %s", err);
		goto out;
	}
	topo_print(t, stdout);
	status = 0;
out:
	host_close(host);
	free(t);
	return status;
}

const struct gvm_cmd cmd_topo = {
	.name = "topo",
	.summary = "print the topology a guest would see",
	.main = topo_main,
	.help = topo_help,
};
