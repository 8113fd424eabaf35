/*
 * The giantvm SPANK plugin: --giantvm runs a Slurm job's command inside one
 * giantvm guest made of the job's nodes (docs/admin-guide.md, spank-giantvm(8)).
 *
 * Slurm loads this one object into sbatch, salloc, srun, slurmd,
 * slurmstepd and the prolog/epilog runner, and calls the same entry points
 * in each; what they must do differs entirely, so each context has its own
 * file (spank/contexts.h) and this one only dispatches.  Callbacks that
 * exist in one context only (task_*, job_epilog) live in that context's
 * file.
 */
#include <slurm/spank.h>

#include "spank/contexts.h"

SPANK_PLUGIN(giantvm, 1);

int slurm_spank_init(spank_t sp, int ac, char **av)
{
	switch (spank_context()) {
	case S_CTX_ALLOCATOR:
		return alloc_init(sp, ac, av);
	case S_CTX_LOCAL:
		return srun_init(sp, ac, av);
	case S_CTX_REMOTE:
		return stepd_init(sp, ac, av);
	case S_CTX_SLURMD:
		return slurmd_init(sp, ac, av);
	default:
		return 0;
	}
}

int slurm_spank_init_post_opt(spank_t sp, int ac, char **av)
{
	switch (spank_context()) {
	case S_CTX_ALLOCATOR:
		return alloc_post_opt(sp, ac, av);
	case S_CTX_LOCAL:
		return srun_post_opt(sp, ac, av);
	case S_CTX_REMOTE:
		return stepd_post_opt(sp, ac, av);
	default:
		return 0;
	}
}

int slurm_spank_exit(spank_t sp, int ac, char **av)
{
	switch (spank_context()) {
	case S_CTX_REMOTE:
		return stepd_exit(sp, ac, av);
	default:
		return 0;
	}
}
