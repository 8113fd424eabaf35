/*
 * gvm run --nodes N: the embedded default, a cluster of N `gvm node`
 * instances on this machine over loopback.  The launcher checks the input,
 * binds each instance's listening socket itself (port 0, handed down: no
 * port can be taken in between), picks a random VM id and distinct host CPUs
 * for each instance, starts them, shows their progress on standard error,
 * and exits with rank 0's status (the guest's).  Rank 0's console is the
 * launcher's own standard output.
 *
 * Nothing outlives the launcher: the instances die with it (PR_SET_PDEATHSIG),
 * SIGINT/SIGTERM are passed on to them, and one that does not end in time
 * once another has ended is killed.
 */
#ifndef GVM_VMM_LAUNCH_H
#define GVM_VMM_LAUNCH_H

#include <stdint.h>

#include "vmm/options.h"

/* A random VM id, never 0. */
uint64_t launch_vm_id(void);

/*
 * o parsed from argv (gvm run's options, o->nodes set; argv[0], the
 * subcommand, starts the messages); releases o.  Rank 0's standard output
 * (the guest's console) is console_fd, or the launcher's own when it is -1.
 * The exit status.
 */
int launch_main(struct vm_options *o, int argc, char **argv, int console_fd);

#endif
