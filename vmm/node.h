/*
 * One instance of a VM that spans several (vmm/cluster.h): what `gvm node`
 * runs once its options are parsed, and what `gvm check` runs as one
 * instance of several.
 */
#ifndef GVM_VMM_NODE_H
#define GVM_VMM_NODE_H

#include "vmm/options.h"

/*
 * Run instance o->rank of the VM o describes (gvm node's options, parsed);
 * releases o.  Rank 0's guest console is console_fd, or standard output
 * when it is -1 (a job's output takes its own path either way).  Messages
 * start with "gvm rank R" while it runs, and with "gvm" again after.
 * Returns the exit status gvm node documents (gvm help node).
 */
int node_run(struct vm_options *o, int console_fd);

/*
 * The combinations of gvm node's options that a parser cannot see (rank
 * within --peers, distinct addresses...), reported as cmd's: 2 when they
 * are wrong, else 0.  node_run checks them too.
 */
int node_check_options(const struct vm_options *o, const char *cmd);

#endif
