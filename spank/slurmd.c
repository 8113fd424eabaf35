/*
 * slurmd: loads the plugin once when it starts.  The plugstack line is
 * checked here, where an administrator reads the log, but a wrong line does
 * not stop slurmd: it only refuses --giantvm (sbatch, srun and slurmstepd
 * say why), so that jobs without it run on.
 */
#include "spank/contexts.h"
#include "spank/config.h"

int slurmd_init(spank_t sp, int ac, char **av)
{
	struct gvm_config cfg;
	char err[GVM_ERR_MAX];

	(void)sp;
	if (config_parse(&cfg, ac, av, err))
		slurm_error("giantvm: plugstack.conf: %s; --giantvm jobs will be refused", err);
	else
		slurm_info("giantvm: gvm %s, srun %s, bookkeeping in %s", cfg.gvm, cfg.srun,
			   cfg.runtime_dir);
	return 0;
}
