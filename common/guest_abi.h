/*
 * What a guest may rely on beyond a standard PC: the contract between the
 * VMM (vmm/) and the guest images (images/).  Freestanding: no libc types.
 */
#ifndef GVM_COMMON_GUEST_ABI_H
#define GVM_COMMON_GUEST_ABI_H

/*
 * Exit device: a 32-bit OUT to this I/O port ends the VM; the low 8 bits of
 * the value become the exit status of `gvm` (and so of the Slurm job).
 */
#define GVM_EXIT_PORT 0x501

/* The console: a 16550A UART at the standard COM1 port, IRQ 4. */
#define GVM_UART_PORT 0x3f8
#define GVM_UART_IRQ 4

/*
 * The job channel (vmm/hw/jobio.c), through which the Linux image's job
 * agent (images/linux/gvm-job.c) hands back what a job produces.  Bytes
 * written to a stream port (OUTSB; a REP OUTSB moves up to a page per VM
 * exit) go to gvm's standard output, its standard error, or the archive of
 * the job's output directory (a newc cpio, common/cpio.h).  A 32-bit IN from
 * the event port returns GVM_JOB_MAGIC where gvm is there (another VMM's
 * empty bus gives all ones); a 32-bit OUT to it reports an event.  The ports
 * live on rank 0 of a cluster: the agent writes from CPU 0, which rank 0
 * runs, so that nothing is forwarded byte by byte.
 */
#define GVM_JOB_PORT_BASE 0x510
#define GVM_JOB_STDOUT_PORT 0x510
#define GVM_JOB_STDERR_PORT 0x511
#define GVM_JOB_OUTPUT_PORT 0x512
#define GVM_JOB_EVENT_PORT 0x514
#define GVM_JOB_PORT_COUNT 8
#define GVM_JOB_MAGIC 0x31676a67u /* "gjg1" */
#define GVM_JOB_EVENT_STARTED 1   /* the job's command is about to run */
#define GVM_JOB_EVENT_ENDED 2     /* it ended; its output archive follows */
#define GVM_JOB_EVENT_OUTPUT_DONE 3 /* the archive is complete */

/*
 * A job's payload, an initramfs gvm appends to the image's (gvm run --
 * COMMAND): the job agent runs GVM_JOB_ARGV's command in GVM_JOB_WORKDIR,
 * which holds the files given with --copy under their own names, with the
 * environment GVM_JOB_ENV adds, and sends back what it leaves in
 * GVM_JOB_OUTDIR.  Both lists are NUL-terminated strings, one after the
 * other; a command that came from the host is GVM_JOB_COMMAND.  Names the
 * user gave are only ever file names or list entries, never parsed.
 * GVM_JOB_TOPOLOGY is the machine as `gvm topo --xml` describes it, for a
 * job to compare with what the guest's hwloc finds.
 */
#define GVM_JOB_DIR "/gvm"
#define GVM_JOB_ARGV "/gvm/argv"
#define GVM_JOB_ENV "/gvm/env"
/* the most bytes GVM_JOB_ARGV or GVM_JOB_ENV may hold (the agent's buffers) */
#define GVM_JOB_LIST_MAX ((1 << 20) - 1)
#define GVM_JOB_COMMAND "/gvm/command"
#define GVM_JOB_TOPOLOGY "/gvm/topology.xml"
#define GVM_JOB_WORKDIR "/job"
#define GVM_JOB_OUTDIR "/job/out"

#endif
