/*
 * A mesh of one or two nodes inside one test process, over loopback with
 * real munge credentials: m[0] is rank 0, m[1] rank 1 (opened by a thread,
 * since both sides of the handshake must run at once).  Tests forge one
 * side's frames against the code under test on the other.
 */
#ifndef GVM_TESTS_LIB_MESH_PAIR_H
#define GVM_TESTS_LIB_MESH_PAIR_H

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mesh.h"

struct mesh_pair {
	struct hostport peers[2];
	struct mesh_config cfg[2];
	struct mesh *m[2];
	char err[2][MESH_ERR_MAX];
	int rc[2];
};

static void *mesh_pair_open_one(void *arg)
{
	struct mesh_pair *p = arg;

	p->rc[1] = mesh_open(&p->cfg[1], &p->m[1], p->err[1]);
	return NULL;
}

/*
 * n nodes (1 or 2) with `channels` connections each; 0, or -1 with why on
 * stderr.  around, if not NULL, is called with true before rank 1's thread
 * starts and with false after.
 */
static inline int mesh_pair_open(struct mesh_pair *p, unsigned n, unsigned channels,
				 uint64_t vm_id, void (*around)(bool before))
{
	pthread_t t;

	memset(p, 0, sizeof(*p));
	for (unsigned i = 0; i < n; i++) {
		int fd;

		p->peers[i] = (struct hostport){ .host = "127.0.0.1" };
		fd = mesh_listen(&p->peers[i], p->err[i]);
		p->peers[i].port = mesh_local_port(fd);
		p->cfg[i] = (struct mesh_config){
			.rank = i, .nr_nodes = n, .nr_channels = channels, .peers = p->peers,
			.listen_fd = fd, .vm_id = vm_id, .munge_socket = getenv("GVM_MUNGE_SOCKET"),
			.timeout_ms = 30000,
		};
	}
	if (n == 2) {
		if (around)
			around(true);
		pthread_create(&t, NULL, mesh_pair_open_one, p);
		if (around)
			around(false);
	}
	p->rc[0] = mesh_open(&p->cfg[0], &p->m[0], p->err[0]);
	if (n == 2)
		pthread_join(t, NULL);
	for (unsigned i = 0; i < n; i++)
		if (p->rc[i])
			fprintf(stderr, "mesh rank %u: %s\n", i, p->err[i]);
	return p->rc[0] || (n == 2 && p->rc[1]) ? -1 : 0;
}

static inline void mesh_pair_close(struct mesh_pair *p)
{
	mesh_close(p->m[0]);
	mesh_close(p->m[1]);
}

#endif
