/*
 * A user's job in the guest: `gvm run [...] -- COMMAND [ARGS]`, and through
 * `gvm node` the Slurm plugin's jobs, all by this one path.
 *
 * Before anything starts, job_check validates what the user named: the
 * command (a file of this host, packed into the payload, or a command of
 * the guest's), the --copy files, the output directory; and job_check_fit
 * that the payload fits the guest's RAM.  The instance that loads the guest
 * (gvm run, rank 0) then creates the job: it writes the payload (an
 * initramfs after the image's, common/guest_abi.h) to an unlinked
 * temporary file, keeps the guest's console in another (shown with
 * --verbose, or when the run fails), and attaches the job channel
 * (vmm/hw/jobio.h), which passes the job's standard output and error on as
 * they come.  When the VM has ended, job_finish writes the files the job
 * left in its output directory into --output, treating the archive as
 * untrusted: regular files and directories only, relative names without
 * "..", nothing followed through a symbolic link, at most --output-max in
 * all, no file replaced without --overwrite, each file written whole or not
 * at all; every refusal is named.
 */
#ifndef GVM_VMM_JOB_H
#define GVM_VMM_JOB_H

#include <stdbool.h>
#include <stdint.h>

#include "vmm/options.h"
#include "vmm/topo.h"

#define JOB_ERR_MAX 1024

struct job;
struct vm;

/* What the job is told about the machine (its GVM_* environment). */
struct job_env {
	unsigned nodes;      /* gvm instances */
	const struct vm_topology *topo; /* the machine (given to it as hwloc XML) */
	uint64_t vm_id;
};

/*
 * o's job (o->job_argv set): the command, the --copy files and --output.
 * On success *payload_size is the payload's size in bytes.  Returns 0, or -1
 * with the problem and what to do in err.
 */
int job_check(const struct vm_options *o, uint64_t *payload_size, char *err);

/*
 * Do the kernel, the initrds (the image's and the payload) and what Linux
 * makes of them fit into ram_size bytes of guest RAM?  0, or -1 with err.
 */
int job_check_fit(const struct vm_options *o, uint64_t payload_size, uint64_t ram_size,
		  char *err);

/* The payload written, the console log open.  NULL with err. */
struct job *job_create(const struct vm_options *o, const struct job_env *env, char *err);

/* Where the VM's console goes: standard error (--verbose) or the job's log. */
int job_console_fd(const struct job *j);

/* Add the payload to o's initrds (o must not outlive j).  0, or -1 with err. */
int job_add_payload(struct job *j, struct vm_options *o, char *err);

/* Register the job channel on vm (rank 0), before its vCPUs start. */
int job_attach(struct job *j, struct vm *vm);

/*
 * After the VM ended with status (failed: the VM itself failed, not the
 * job): report, write the output files.  Returns gvm's exit status: the
 * job's, or 1 when it succeeded but its output files could not all be
 * written.
 */
int job_finish(struct job *j, int status, bool failed);

void job_destroy(struct job *j);

#endif
