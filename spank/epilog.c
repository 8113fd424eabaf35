/*
 * The job's epilog (the job_script context: `slurmstepd spank epilog`, as
 * root, on every node of the job once it has ended, whatever the end).
 * The instances are tasks, which Slurm has ended by now; whatever the
 * bookkeeping still lists on this node (a slurmstepd that died before its
 * task was reaped) is ended here, and the records of earlier jobs whose
 * instance is gone are removed.  Never fails: a failing epilog drains
 * the node, and nothing here is worth that.
 */
#include <stdint.h>
#include <stdlib.h>

#include <slurm/spank.h>

#include "spank/config.h"
#include "spank/runtime.h"

int slurm_spank_job_epilog(spank_t sp, int ac, char **av)
{
	struct gvm_config cfg;
	char err[GVM_ERR_MAX];
	const char *node = getenv("SLURMD_NODENAME");
	uint32_t job;
	int r;

	if (config_parse(&cfg, ac, av, err) || !node ||
	    spank_get_item(sp, S_JOB_ID, &job) != ESPANK_SUCCESS)
		return 0;
	r = runtime_end(cfg.runtime_dir, node, job, RUNTIME_ALL_STEPS, err);
	if (r < 0)
		slurm_error("giantvm: epilog of job %u: %s", job, err);
	else if (r > 0)
		slurm_error("giantvm: epilog of job %u: %d gvm instance%s still ran; killed", job,
			    r, r > 1 ? "s" : "");
	/* and what earlier jobs left when their slurmstepd, slurmd or node died */
	r = runtime_sweep(cfg.runtime_dir, node, err);
	if (r < 0)
		slurm_error("giantvm: epilog of job %u: %s", job, err);
	else if (r > 0)
		slurm_info("giantvm: epilog of job %u: removed %d record%s of instances that "
			   "had ended without their slurmstepd", job, r, r > 1 ? "s" : "");
	return 0;
}
