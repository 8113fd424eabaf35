/*
 * Where the instances of a step meet: every node's address, as Slurm knows
 * it (NodeAddr), and a port for each that no other step on that node holds.
 *
 * Ports come from Slurm (MpiParams=ports=A-B in slurm.conf makes
 * slurmctld reserve some for every step, the same on every node of the
 * step, in SLURM_STEP_RESV_PORTS, never two steps the same on one node);
 * failing that, from the site's ports=A-B, spread by job and step, which
 * two steps may then share (the bind fails and says so).  Nodes at one
 * address (several slurmd on one host) each take the next port.
 */
#ifndef GVM_SPANK_PEERS_H
#define GVM_SPANK_PEERS_H

#include <stdint.h>
#include <sys/socket.h>

#include <slurm/spank.h>

#include "spank/config.h"

/* gvm's own limit on instances (DSM_MAX_NODES). */
#define PEERS_MAX 64

struct peers {
	unsigned n, rank;
	char *list;                     /* host:port,... in rank order, for gvm --peers */
	struct sockaddr_storage self;   /* where this rank listens */
	socklen_t self_len;
	char self_name[96];             /* the same, for messages */
};

/*
 * The step's instances (this node's rank among SLURM_STEP_NODELIST, found
 * with Slurm's hostlist) and their addresses.  Asks slurmctld for the node
 * table (run as root: PrivateData=nodes hides it from users).  0, or -1
 * with err.
 */
int peers_get(spank_t sp, const struct gvm_config *c, uint32_t job, uint32_t step,
	      struct peers *p, char *err);

/*
 * The most nodes of nodelist that share one address (several slurmd on
 * one host), for an srun that must reserve a port for each.  As root, as
 * peers_get.  0, or -1 with err.
 */
int peers_crowding(const char *nodelist, unsigned *most, char *err);

/* A listening TCP socket at p->self, not closed on exec.  The fd, or -1 with err. */
int peers_listen(const struct peers *p, char *err);

void peers_free(struct peers *p);

#endif
