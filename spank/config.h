/*
 * The site's settings: the arguments after the plugin's path on its
 * plugstack.conf line, e.g.
 *
 *   required /usr/lib/slurm/spank_giantvm.so mem=4G vcpus=8 max_mem=64G
 *
 * Slurm hands them to every callback in every context; each context parses
 * them once, strictly (an unknown or repeated key, a bad value: refused).
 * They are the administrator's, not the user's, but are checked all the
 * same: a typo must say which word is wrong, not misbehave later.
 */
#ifndef GVM_SPANK_CONFIG_H
#define GVM_SPANK_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "common/parse.h"

#include "spank/util.h"

struct gvm_config {
	char gvm[GVM_PATH_MAX];          /* the gvm program (gvm=) */
	char srun[GVM_PATH_MAX];         /* srun, for a batch job's instances (srun=) */
	char image[GVM_PATH_MAX];        /* default image, "" for gvm's (image=) */
	uint64_t mem;                    /* default guest RAM per node, 0: gvm's (mem=) */
	unsigned vcpus;                  /* default vCPUs per node, 0: the job's CPUs (vcpus=) */
	unsigned numa;                   /* default guest NUMA nodes per node, GVM_NUMA_HOST, 0: 1 */
	uint64_t max_mem;                /* a user may ask for at most this per node, 0: any */
	unsigned max_vcpus;              /* likewise for vCPUs per node, 0: any */
	unsigned port_lo, port_hi;       /* ports=A-B when Slurm reserves none, 0: none */
	unsigned connect_timeout;        /* seconds, 0: gvm's */
	unsigned peer_timeout;           /* seconds, 0: gvm's */
	unsigned report_silence;         /* seconds, 0: never (gvm's default for a job) */
	char munge_socket[GVM_PATH_MAX]; /* munged's socket, "" for munge's own */
	char runtime_dir[GVM_PATH_MAX];  /* the plugin's bookkeeping (runtime_dir=) */
	char transport[PARSE_TRANSPORT_MAX]; /* gvm's --transport (transport=), "" for gvm's */
	bool integrity;                  /* gvm's --integrity (integrity=yes) */
};

/*
 * Parse the plugstack arguments into c (defaults first).  Returns 0, or -1
 * with the offending argument and what is allowed in err.
 */
int config_parse(struct gvm_config *c, int ac, char **av, char *err);

#endif
