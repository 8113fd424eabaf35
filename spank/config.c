#include "spank/config.h"

#include <stdio.h>
#include <string.h>

#include "common/parse.h"

#ifndef GVM_BINDIR
#error "GVM_BINDIR (where make install puts gvm) comes from spank/module.mk"
#endif

/* Guest RAM is given to each node in whole 2 MiB pages (gvm's rule). */
#define MEM_UNIT (2u << 20)

enum key {
	K_GVM, K_SRUN, K_IMAGE, K_MEM, K_VCPUS, K_MAX_MEM, K_MAX_VCPUS, K_PORTS,
	K_CONNECT_TIMEOUT, K_PEER_TIMEOUT, K_MUNGE_SOCKET, K_RUNTIME_DIR, K_TRANSPORT,
	K_INTEGRITY, K_REPORT_SILENCE, K_NUMA, K_NR
};

static const char *const keys[K_NR] = {
	[K_GVM] = "gvm", [K_SRUN] = "srun", [K_IMAGE] = "image", [K_MEM] = "mem",
	[K_VCPUS] = "vcpus", [K_MAX_MEM] = "max_mem", [K_MAX_VCPUS] = "max_vcpus",
	[K_PORTS] = "ports", [K_CONNECT_TIMEOUT] = "connect_timeout",
	[K_PEER_TIMEOUT] = "peer_timeout", [K_MUNGE_SOCKET] = "munge_socket",
	[K_RUNTIME_DIR] = "runtime_dir", [K_TRANSPORT] = "transport", [K_INTEGRITY] = "integrity",
	[K_REPORT_SILENCE] = "report_silence", [K_NUMA] = "numa",
};

#define KNOWN "gvm, srun, image, mem, vcpus, max_mem, max_vcpus, ports, connect_timeout, " \
	"peer_timeout, munge_socket, runtime_dir, transport, integrity, report_silence, numa"

/* An absolute path: programs run and directories written as root are never relative. */
static int set_path(char *dst, const char *key, const char *val, char *err)
{
	char what[64];

	snprintf(what, sizeof(what), "%s=", key);
	if (check_word(what, val, err))
		return -1;
	if (val[0] != '/')
		return errf(err, "%s%s is not an absolute path", what, val);
	strcpy(dst, val);
	return 0;
}

static int set_mem(uint64_t *dst, const char *key, const char *val, char *err)
{
	char perr[PARSE_ERR_MAX];

	if (parse_size(val, dst, perr))
		return errf(err, "%s=: %s", key, perr);
	if (!*dst || *dst % MEM_UNIT)
		return errf(err, "%s=%s: a node's guest RAM is a non-zero multiple of 2 MiB",
			    key, val);
	return 0;
}

static int set_uint(unsigned *dst, const char *key, const char *val, unsigned min,
		    unsigned max, char *err)
{
	char perr[PARSE_ERR_MAX];

	if (parse_uint(val, min, max, dst, perr))
		return errf(err, "%s=: %s", key, perr);
	return 0;
}

static int set_ports(struct gvm_config *c, const char *val, char *err)
{
	char lo[16], perr[PARSE_ERR_MAX];
	const char *dash = strchr(val, '-');

	if (!dash || (size_t)(dash - val) >= sizeof(lo))
		return errf(err, "ports=%s is not a range A-B (e.g. ports=40000-40999)", val);
	memcpy(lo, val, dash - val);
	lo[dash - val] = '\0';
	if (parse_uint(lo, 1024, 65535, &c->port_lo, perr) ||
	    parse_uint(dash + 1, c->port_lo, 65535, &c->port_hi, perr))
		return errf(err, "ports=%s: %s (a range A-B of unprivileged ports, A <= B)",
			    val, perr);
	return 0;
}

static int set_key(struct gvm_config *c, enum key k, const char *val, char *err)
{
	char b[SHOWN_MAX];

	switch (k) {
	case K_GVM:
		return set_path(c->gvm, keys[k], val, err);
	case K_SRUN:
		return set_path(c->srun, keys[k], val, err);
	case K_IMAGE:
		if (check_word("image=", val, err))
			return -1;
		strcpy(c->image, val);
		return 0;
	case K_MEM:
		return set_mem(&c->mem, keys[k], val, err);
	case K_MAX_MEM:
		return set_mem(&c->max_mem, keys[k], val, err);
	case K_VCPUS:
		return set_uint(&c->vcpus, keys[k], val, 1, 255, err);
	case K_NUMA:
		return parse_numa_word("numa=", val, &c->numa, err);
	case K_MAX_VCPUS:
		return set_uint(&c->max_vcpus, keys[k], val, 1, 255, err);
	case K_PORTS:
		return set_ports(c, val, err);
	case K_CONNECT_TIMEOUT:
		return set_uint(&c->connect_timeout, keys[k], val, 1, 3600, err);
	case K_PEER_TIMEOUT:
		return set_uint(&c->peer_timeout, keys[k], val, 1, 3600, err);
	case K_REPORT_SILENCE:
		return set_uint(&c->report_silence, keys[k], val, 1, 86400, err);
	case K_MUNGE_SOCKET:
		return set_path(c->munge_socket, keys[k], val, err);
	case K_RUNTIME_DIR:
		return set_path(c->runtime_dir, keys[k], val, err);
	case K_TRANSPORT: {
		char perr[PARSE_ERR_MAX];

		/* gvm's --transport: what carries guest RAM's pages on this cluster's network. */
		if (check_word("transport=", val, err))
			return -1;
		if (parse_transport(val, perr))
			return errf(err, "transport=%s: it is tcp, fabric or fabric:PROVIDER (a "
				    "libfabric provider, as fi_info -l lists them)", val);
		strcpy(c->transport, val);
		return 0;
	}
	case K_INTEGRITY:
		/* gvm's --integrity: for a network the site does not trust with guest RAM. */
		if (strcmp(val, "yes") && strcmp(val, "no"))
			return errf(err, "integrity=%s: it is yes or no", shown(val, b, sizeof(b)));
		c->integrity = !strcmp(val, "yes");
		return 0;
	case K_NR:
		break;
	}
	return errf(err, "internal error: key %d", (int)k);
}

int config_parse(struct gvm_config *c, int ac, char **av, char *err)
{
	bool seen[K_NR] = { false };
	char b[SHOWN_MAX];

	memset(c, 0, sizeof(*c));
	snprintf(c->gvm, sizeof(c->gvm), "%s/gvm", GVM_BINDIR);
	strcpy(c->srun, "/usr/bin/srun");
	strcpy(c->runtime_dir, "/run/giantvm");
	for (int i = 0; i < ac; i++) {
		const char *a = av[i], *eq = strchr(a, '=');
		size_t n = eq ? (size_t)(eq - a) : strlen(a);
		int k;

		for (k = 0; k < K_NR; k++)
			if (strlen(keys[k]) == n && !strncmp(keys[k], a, n))
				break;
		if (k == K_NR)
			return errf(err, "unknown argument '%s' (known: " KNOWN ")",
				    shown(a, b, sizeof(b)));
		if (!eq)
			return errf(err, "%s needs a value: %s=VALUE", keys[k], keys[k]);
		if (seen[k])
			return errf(err, "%s= is given twice", keys[k]);
		seen[k] = true;
		if (set_key(c, (enum key)k, eq + 1, err))
			return -1;
	}
	if (c->max_mem && c->mem > c->max_mem)
		return errf(err, "mem= is above max_mem=");
	if (c->max_vcpus && c->vcpus > c->max_vcpus)
		return errf(err, "vcpus= is above max_vcpus=");
	if (c->integrity && c->transport[0] && strcmp(c->transport, "tcp"))
		return errf(err, "integrity=yes checks the instances' TCP connections only: "
			    "transport=%s would carry guest RAM unchecked", c->transport);
	return 0;
}
