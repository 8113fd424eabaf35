/*
 * topo-tool: build a guest topology and show it the ways the VMM does, for
 * the test scripts (tests/acpi, tests/topo), which check the output with
 * independent readers: iasl, lstopo, hwloc-info.
 *
 *   topo-tool [--nodes N] [--vcpus N] [--mem SIZE] [--distance D]
 *             [--host SYNTHETIC] [--print] [--xml FILE] [--acpi DIR]
 */
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/parse.h"
#include "vmm/host.h"
#include "vmm/topo.h"
#include "vmm/x86/acpi.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: topo-tool [--nodes N] [--vcpus N] [--mem SIZE] [--distance D]\n"
		   "                 [--host SYNTHETIC] [--print] [--xml FILE] [--acpi DIR]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "nodes", required_argument, NULL, 'n' },
		{ "vcpus", required_argument, NULL, 'c' },
		{ "mem", required_argument, NULL, 'm' },
		{ "distance", required_argument, NULL, 'd' },
		{ "host", required_argument, NULL, 'H' },
		{ "print", no_argument, NULL, 'p' },
		{ "xml", required_argument, NULL, 'x' },
		{ "acpi", required_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct topo_params p = { .host_ram_limit = UINT64_MAX };
	static struct vm_topology t;
	const char *xml = NULL, *acpi = NULL, *synthetic = NULL;
	char err[1024];
	struct host *h = NULL;
	int print = 0, c, ret = 0;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			if (parse_uint(optarg, 1, TOPO_MAX_NODES, &p.nr_nodes, err))
				goto bad;
			break;
		case 'c':
			if (parse_uint(optarg, 1, 1024, &p.nr_cpus, err))
				goto bad;
			break;
		case 'm':
			if (parse_size(optarg, &p.ram_size, err))
				goto bad;
			break;
		case 'd':
			if (parse_uint(optarg, 0, 1000, &p.remote_distance, err))
				goto bad;
			break;
		case 'H':
			synthetic = optarg;
			break;
		case 'p':
			print = 1;
			break;
		case 'x':
			xml = optarg;
			break;
		case 'a':
			acpi = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (synthetic) {
		h = host_open_synthetic(synthetic, err);
		if (!h)
			goto bad;
		p.host = h;
	}
	if (topo_build(&p, &t, err))
		goto bad;
	if (print)
		topo_print(&t, stdout);
	if (xml && topo_write_xml(&t, xml, err))
		goto bad;
	if (acpi && acpi_dump(&t, acpi, err))
		goto bad;
	host_close(h);
	return ret;
bad:
	fprintf(stderr, "topo-tool: %s\n", err);
	host_close(h);
	return 1;
}
