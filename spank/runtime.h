/*
 * The plugin's own bookkeeping of the gvm instances it started, so that
 * whatever happens to a step (slurmstepd killed, a node's clock of events
 * out of order), the job's epilog can still find and end them:
 *
 *   RUNTIME_DIR/NODE/JOB.STEP   "PID STARTTIME\n"
 *
 * one file per instance (NODE: several slurmd may share a host), written as
 * root by slurmstepd when the task starts, removed when it has been reaped.
 * STARTTIME (from /proc/PID/stat) tells the instance from a later process
 * that happens to get its PID: only the instance itself is ever signalled.
 */
#ifndef GVM_SPANK_RUNTIME_H
#define GVM_SPANK_RUNTIME_H

#include <stdint.h>
#include <sys/types.h>

/* Every step of a job, for runtime_end. */
#define RUNTIME_ALL_STEPS UINT64_MAX

/* Record pid as job.step's instance on node.  0, or -1 with err. */
int runtime_record(const char *dir, const char *node, uint32_t job, uint32_t step, pid_t pid,
		   char *err);

/*
 * End what is recorded for job.step (or all of job's steps) on node: SIGKILL
 * to an instance still running, then its record removed.  Returns how many
 * were still running, or -1 with err.
 */
int runtime_end(const char *dir, const char *node, uint32_t job, uint64_t step, char *err);

/*
 * Remove the records on node whose instance no longer runs (left by a
 * slurmstepd or a slurmd that died, a node that failed): the epilog of any
 * later job there calls it.  Returns how many went, or -1 with err.
 */
int runtime_sweep(const char *dir, const char *node, char *err);

#endif
