/*
 * srun (the local context): as for sbatch, --giantvm is registered and
 * checked before anything is launched.  An srun inside an sbatch --giantvm
 * job, or inside salloc --giantvm, gets the option from the job's
 * environment (SLURM_SPANK__SLURM_SPANK_OPTION_giantvm_giantvm): Slurm
 * passes every plugin option of the allocation on to its steps.
 */
#include "spank/contexts.h"
#include "spank/options.h"

static struct gvm_config cfg;
static char cfg_err[GVM_ERR_MAX];

int srun_init(spank_t sp, int ac, char **av)
{
	if (config_parse(&cfg, ac, av, cfg_err))
		return opts_register(sp, NULL, cfg_err);
	return opts_register(sp, &cfg, NULL);
}

int srun_post_opt(spank_t sp, int ac, char **av)
{
	(void)sp;
	(void)ac;
	(void)av;
	return opts_submit_check(&cfg);
}
