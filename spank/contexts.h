/*
 * The plugin's parts, one per Slurm context (spank/giantvm.c dispatches):
 *
 *   alloc.c   sbatch, salloc (allocator): --giantvm registered and checked
 *   srun.c    srun (local): the same
 *   stepd.c   slurmstepd (remote): a batch step becomes an srun of the
 *             instances; each node's first task of a step becomes that
 *             node's gvm instance
 *   slurmd.c  slurmd: the configuration checked once, where an
 *             administrator reads it
 *   epilog.c  the job's epilog (job_script): whatever the bookkeeping
 *             still lists is ended
 */
#ifndef GVM_SPANK_CONTEXTS_H
#define GVM_SPANK_CONTEXTS_H

#include <slurm/spank.h>

int alloc_init(spank_t sp, int ac, char **av);
int alloc_post_opt(spank_t sp, int ac, char **av);

int srun_init(spank_t sp, int ac, char **av);
int srun_post_opt(spank_t sp, int ac, char **av);

int stepd_init(spank_t sp, int ac, char **av);
int stepd_post_opt(spank_t sp, int ac, char **av);
int stepd_exit(spank_t sp, int ac, char **av);

int slurmd_init(spank_t sp, int ac, char **av);

#endif
