#include "spank/peers.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <slurm/slurm.h>

#include "common/parse.h"
#include "spank/util.h"

struct node {
	char *name;                  /* from slurm_hostlist_shift: free() */
	char addr[INET6_ADDRSTRLEN]; /* numeric */
	struct sockaddr_storage sa;
	socklen_t sa_len;
	unsigned port;
};

/* SLURM_STEP_RESV_PORTS: "A-B", "A,B" or a mix, in increasing order. */
static int parse_ports(const char *s, unsigned *ports, unsigned max, unsigned *n, char *err)
{
	char buf[256], *save = NULL, *tok, perr[PARSE_ERR_MAX];

	*n = 0;
	if (strlen(s) >= sizeof(buf))
		return errf(err, "SLURM_STEP_RESV_PORTS is too long");
	strcpy(buf, s);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *dash = strchr(tok, '-');
		unsigned lo, hi;

		if (dash)
			*dash = '\0';
		if (parse_uint(tok, 1, 65535, &lo, perr) ||
		    (dash && parse_uint(dash + 1, lo, 65535, &hi, perr)))
			return errf(err, "SLURM_STEP_RESV_PORTS=%s: %s", s, perr);
		if (!dash)
			hi = lo;
		for (unsigned p = lo; p <= hi && *n < max; p++)
			ports[(*n)++] = p;
	}
	if (!*n)
		return errf(err, "SLURM_STEP_RESV_PORTS=%s lists no port", s);
	return 0;
}

/* name's address as slurmctld has it (NodeAddr, else the name), resolved. */
static int resolve(struct node *nd, const node_info_msg_t *m, char *err)
{
	const char *host = nd->name;
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM }, *res;
	int rc;

	for (uint32_t i = 0; i < m->record_count; i++)
		if (m->node_array[i].name && !strcmp(m->node_array[i].name, nd->name)) {
			if (m->node_array[i].node_addr && m->node_array[i].node_addr[0])
				host = m->node_array[i].node_addr;
			break;
		}
	rc = getaddrinfo(host, NULL, &hints, &res);
	if (rc)
		return errf(err, "node %s: cannot resolve its address '%s': %s", nd->name, host,
			    gai_strerror(rc));
	/* the first answer, as gvm takes it: every node makes the same choice */
	memcpy(&nd->sa, res->ai_addr, res->ai_addrlen);
	nd->sa_len = res->ai_addrlen;
	freeaddrinfo(res);
	rc = getnameinfo((struct sockaddr *)&nd->sa, nd->sa_len, nd->addr, sizeof(nd->addr), NULL,
			 0, NI_NUMERICHOST);
	if (rc)
		return errf(err, "node %s: %s", nd->name, gai_strerror(rc));
	return 0;
}

/* The first count nodes of hl, and their addresses from slurmctld's node table. */
static int nodes_load(hostlist_t hl, struct node *nodes, int count, char *err)
{
	node_info_msg_t *m = NULL;
	int rc = 0;

	for (int i = 0; i < count; i++)
		if (!(nodes[i].name = slurm_hostlist_shift(hl)))
			return errf(err, "out of memory");
	if (slurm_load_node(0, &m, SHOW_ALL) != SLURM_SUCCESS)
		return errf(err, "cannot read the node table from slurmctld: %s",
			    slurm_strerror(slurm_get_errno()));
	for (int i = 0; i < count && !rc; i++)
		rc = resolve(&nodes[i], m, err);
	slurm_free_node_info_msg(m);
	return rc;
}

static void set_port(struct sockaddr_storage *sa, unsigned port)
{
	if (sa->ss_family == AF_INET6)
		((struct sockaddr_in6 *)sa)->sin6_port = htons(port);
	else
		((struct sockaddr_in *)sa)->sin_port = htons(port);
}

/* Each node's port: the k-th port for the k-th node at one address. */
static int assign_ports(spank_t sp, const struct gvm_config *c, uint32_t job, uint32_t step,
			struct node *nodes, unsigned n, char *err)
{
	unsigned ports[PEERS_MAX], nports = 0, span = 0, base = 0;
	char resv[256];

	if (spank_getenv(sp, "SLURM_STEP_RESV_PORTS", resv, sizeof(resv)) == ESPANK_SUCCESS) {
		if (parse_ports(resv, ports, PEERS_MAX, &nports, err))
			return -1;
	} else if (c->port_lo) {
		/*
		 * No reservation: spread steps over the site's range.  Two
		 * steps may still meet on a port; the bind then fails and
		 * says so, rather than two VMs sharing a port.
		 */
		span = c->port_hi - c->port_lo + 1;
		base = (unsigned)(((uint64_t)job * 2654435761u + step * 40503u) % span);
	} else {
		return errf(err, "Slurm reserved no ports for this step (no SLURM_STEP_RESV_PORTS): "
			    "the administrator sets MpiParams=ports=A-B in slurm.conf, or "
			    "ports=A-B on the plugin's plugstack.conf line");
	}
	for (unsigned i = 0; i < n; i++) {
		unsigned k = 0;

		for (unsigned j = 0; j < i; j++)
			k += !strcmp(nodes[j].addr, nodes[i].addr);
		if (nports) {
			if (k >= nports)
				return errf(err, "%u nodes of this step share the address %s, but Slurm "
					    "reserved %u port%s for it (SLURM_STEP_RESV_PORTS=%s): run "
					    "it with srun --resv-ports=%u", k + 1, nodes[i].addr, nports,
					    nports > 1 ? "s" : "", resv, n);
			nodes[i].port = ports[k];
		} else {
			if (k >= span)
				return errf(err, "%u nodes of this step share the address %s, more "
					    "than the %u ports of ports=", k + 1, nodes[i].addr, span);
			nodes[i].port = c->port_lo + (base + k) % span;
		}
		set_port(&nodes[i].sa, nodes[i].port);
	}
	return 0;
}

static int build_list(struct peers *p, const struct node *nodes, unsigned n, char *err)
{
	size_t len = 0, used = 0;

	for (unsigned i = 0; i < n; i++)
		len += strlen(nodes[i].addr) + 10;
	p->list = malloc(len + 1);
	if (!p->list)
		return errf(err, "out of memory");
	for (unsigned i = 0; i < n; i++) {
		bool v6 = nodes[i].sa.ss_family == AF_INET6;

		used += snprintf(p->list + used, len + 1 - used, "%s%s%s%s:%u", i ? "," : "",
				 v6 ? "[" : "", nodes[i].addr, v6 ? "]" : "", nodes[i].port);
	}
	return 0;
}

int peers_get(spank_t sp, const struct gvm_config *c, uint32_t job, uint32_t step,
	      struct peers *p, char *err)
{
	char nodelist[4096], b[SHOWN_MAX];
	const char *me = getenv("SLURMD_NODENAME");
	struct node nodes[PEERS_MAX] = { { 0 } };
	uint32_t nnodes = 0, nodeid = 0;
	hostlist_t hl;
	int count, rank, rc = -1;

	memset(p, 0, sizeof(*p));
	/*
	 * slurmstepd's own environment names this node; the job's copy of
	 * SLURMD_NODENAME may still be the batch host's (an srun in a batch
	 * script).
	 */
	if (!me || !*me)
		return errf(err, "slurmstepd has no SLURMD_NODENAME");
	if (spank_getenv(sp, "SLURM_STEP_NODELIST", nodelist, sizeof(nodelist)) != ESPANK_SUCCESS)
		return errf(err, "the step has no SLURM_STEP_NODELIST");
	hl = slurm_hostlist_create(nodelist);
	if (!hl)
		return errf(err, "SLURM_STEP_NODELIST=%s is not a host list",
			    shown(nodelist, b, sizeof(b)));
	count = slurm_hostlist_count(hl);
	rank = slurm_hostlist_find(hl, me);
	if (count < 1 || count > PEERS_MAX) {
		errf(err, "the step spans %d nodes; giantvm runs 1 to %d", count, PEERS_MAX);
		goto out;
	}
	if (rank < 0) {
		errf(err, "this node (%s) is not in the step's nodes (%s)", me,
		     shown(nodelist, b, sizeof(b)));
		goto out;
	}
	/* Slurm's own numbering must agree, or two nodes could take one rank. */
	if (spank_get_item(sp, S_JOB_NNODES, &nnodes) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_NODEID, &nodeid) != ESPANK_SUCCESS ||
	    nnodes != (uint32_t)count || nodeid != (uint32_t)rank) {
		errf(err, "node %s: rank %d of %d in %s, but Slurm says node %u of %u", me, rank,
		     count, shown(nodelist, b, sizeof(b)), nodeid, nnodes);
		goto out;
	}
	if (nodes_load(hl, nodes, count, err))
		goto out;
	if (assign_ports(sp, c, job, step, nodes, count, err) || build_list(p, nodes, count, err))
		goto out;
	p->n = count;
	p->rank = rank;
	p->self = nodes[rank].sa;
	p->self_len = nodes[rank].sa_len;
	snprintf(p->self_name, sizeof(p->self_name), "%s%s%s:%u",
		 p->self.ss_family == AF_INET6 ? "[" : "", nodes[rank].addr,
		 p->self.ss_family == AF_INET6 ? "]" : "", nodes[rank].port);
	rc = 0;
out:
	for (int i = 0; i < PEERS_MAX; i++)
		free(nodes[i].name);
	slurm_hostlist_destroy(hl);
	if (rc)
		peers_free(p);
	return rc;
}

int peers_crowding(const char *nodelist, unsigned *most, char *err)
{
	struct node nodes[PEERS_MAX] = { { 0 } };
	hostlist_t hl = slurm_hostlist_create(nodelist);
	int count, rc = -1;

	*most = 0;
	if (!hl)
		return errf(err, "'%s' is not a host list", nodelist);
	count = slurm_hostlist_count(hl);
	if (count < 1 || count > PEERS_MAX) {
		errf(err, "%d nodes; giantvm runs 1 to %d", count, PEERS_MAX);
		goto out;
	}
	if (nodes_load(hl, nodes, count, err))
		goto out;
	for (int i = 0; i < count; i++) {
		unsigned k = 1;

		for (int j = 0; j < i; j++)
			k += !strcmp(nodes[j].addr, nodes[i].addr);
		if (k > *most)
			*most = k;
	}
	rc = 0;
out:
	for (int i = 0; i < PEERS_MAX; i++)
		free(nodes[i].name);
	slurm_hostlist_destroy(hl);
	return rc;
}

int peers_listen(const struct peers *p, char *err)
{
	int fd, one = 1;

	fd = socket(p->self.ss_family, SOCK_STREAM, 0);
	if (fd < 0)
		return errf(err, "socket: %s", strerror(errno));
	/* a port of an earlier step may linger in TIME_WAIT: that is no conflict */
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&p->self, p->self_len) || listen(fd, PEERS_MAX)) {
		int e = errno;

		close(fd);
		return errf(err, "cannot listen on %s: %s%s", p->self_name, strerror(e),
			    e == EADDRINUSE ? " (another program holds this port: if it is not "
			    "Slurm's reservation, the administrator should set "
			    "MpiParams=ports=A-B in slurm.conf)" : "");
	}
	return fd;
}

void peers_free(struct peers *p)
{
	free(p->list);
	p->list = NULL;
}
