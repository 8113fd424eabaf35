/*
 * The user's --giantvm[=key=value,...] and its GIANTVM_* mirrors.
 *
 * The same parser runs wherever Slurm calls the option back: in sbatch,
 * srun and salloc, where a bad value must stop the submission with a
 * message naming it, and again in slurmstepd, where the value arrives from
 * the job's environment and is trusted no more than it was at submission.
 */
#ifndef GVM_SPANK_OPTIONS_H
#define GVM_SPANK_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

#include <slurm/spank.h>

#include "spank/config.h"
#include "spank/util.h"

/* All copy= paths together, each ended by a NUL. */
#define OPTS_COPIES_MAX (4 * GVM_PATH_MAX)

struct gvm_opts {
	bool enabled;                /* --giantvm was given */
	char image[GVM_PATH_MAX];    /* "" : the site's, else gvm's */
	uint64_t mem;                /* guest RAM per node, 0: the site's, else gvm's */
	unsigned vcpus;              /* vCPUs per node, 0: the site's, else the job's CPUs */
	unsigned numa;               /* guest NUMA nodes per node, GVM_NUMA_HOST, 0: the site's */
	char output[GVM_PATH_MAX];   /* "" : the job's working directory */
	/* files for the job (gvm --copy), each ended by a NUL; ncopies of them */
	char copies[OPTS_COPIES_MAX];
	unsigned ncopies;
	int overwrite;               /* -1: not said */
	int verbose;                 /* -1: not said */
};

/* What the option callback left: the last --giantvm seen in this process. */
extern struct gvm_opts gvm_opts;

/*
 * Register --giantvm (every context that parses options: sbatch ignores a
 * static table).  c is the site's configuration (limits); when it could not
 * be parsed, cfg_err says why and the option refuses every use, saying so
 * (in slurmstepd: the step fails, see opts_error).
 */
int opts_register(spank_t sp, const struct gvm_config *c, const char *cfg_err);

/*
 * In slurmstepd the option callback never fails (a failure there could
 * drain the node): what it found wrong waits here for the step to report.
 */
extern char opts_error[GVM_ERR_MAX];

/*
 * sbatch, salloc, srun, after their options: for a --giantvm job, the
 * GIANTVM_* variables of this environment and the site's limits.  0, or -1
 * after telling the user why (nothing is submitted).
 */
int opts_submit_check(const struct gvm_config *c);

/* Parse an option value (NULL or "" for a bare --giantvm) into o.  0, or -1 with err. */
int opts_parse(const char *arg, struct gvm_opts *o, char *err);

/*
 * Where GIANTVM_* are read: getenv in sbatch and srun, the job's environment
 * in slurmstepd.  Copies name's value into buf (len bytes) and returns 1; 0
 * if it is not set; -1 if it does not fit.
 */
typedef int (*opts_getenv_fn)(void *arg, const char *name, char *buf, size_t len);

/*
 * Fill what o does not say from GIANTVM_IMAGE, GIANTVM_MEM, GIANTVM_VCPUS, GIANTVM_NUMA,
 * GIANTVM_OUTPUT, GIANTVM_COPY (comma-separated), GIANTVM_OVERWRITE and
 * GIANTVM_VERBOSE (the command line wins).  0, or -1 with err naming the
 * variable.
 */
int opts_apply_env(struct gvm_opts *o, opts_getenv_fn get, void *arg, char *err);

/*
 * o as an option value that opts_parse reads back the same ("" when o says
 * nothing): what a batch step hands to the srun of its instances, so that
 * they run with what was checked at submission.  0, or -1 if len is short.
 */
int opts_format(const struct gvm_opts *o, char *buf, size_t len);

/* The site's limits (max_mem, max_vcpus).  0, or -1 with err. */
int opts_check_site(const struct gvm_opts *o, const struct gvm_config *c, char *err);

#endif
