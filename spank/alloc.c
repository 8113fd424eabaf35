/*
 * sbatch and salloc (the allocator context): --giantvm is registered here
 * (sbatch ignores a static option table) and checked while sbatch parses
 * its options, so that a bad value is refused before anything is queued.
 * Nothing else happens at submission: the job does not exist yet.
 */
#include "spank/contexts.h"
#include "spank/options.h"

static struct gvm_config cfg;
static char cfg_err[GVM_ERR_MAX];

int alloc_init(spank_t sp, int ac, char **av)
{
	/* a wrong line refuses --giantvm, never a job without it */
	if (config_parse(&cfg, ac, av, cfg_err))
		return opts_register(sp, NULL, cfg_err);
	return opts_register(sp, &cfg, NULL);
}

int alloc_post_opt(spank_t sp, int ac, char **av)
{
	(void)sp;
	(void)ac;
	(void)av;
	return opts_submit_check(&cfg);
}
