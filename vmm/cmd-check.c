/*
 * gvm check: validate the nodes of a cluster (or N instances here) by
 * booting the probe guest over them with its check workload, which
 * measures every ordered pair of NUMA nodes (images/probe/user/w_check.c);
 * rank 0 reads the probe's console and prints the table (vmm/check.h).
 *
 * It starts nothing of its own: `--nodes N` goes through the launcher of
 * `gvm run --nodes` (vmm/launch.h), one instance of several through the
 * instance of `gvm node` (vmm/node.h), each given the probe image and the
 * check's options on a command line built here, with rank 0's console in
 * a memory file that is read once the guest has ended.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/log.h"
#include "common/parse.h"
#include "vmm/check.h"
#include "vmm/cmd.h"
#include "vmm/launch.h"
#include "vmm/node.h"
#include "vmm/options.h"

#define CHECK_GROUPS (OPTG_MACHINE | OPTG_LAUNCH | OPTG_NODE | OPTG_CHECK)
/* What the instances parse: gvm run --nodes's options, or gvm node's. */
#define CHECK_LAUNCH_GROUPS (OPTG_MACHINE | OPTG_BOOT | OPTG_LAUNCH)
#define CHECK_NODE_GROUPS (OPTG_MACHINE | OPTG_BOOT | OPTG_NODE)
/*
 * Defaults per node: two vCPUs give every node a local IPI baseline, and
 * the probe needs little memory (each pair's regions are a few MiB).
 */
#define CHECK_VCPUS_PER_NODE 2
#define CHECK_MEM_PER_NODE (256ull << 20)
#define CHECK_PORT_DEFAULT 47000
#define CHECK_STATUS_FAILED 1
#define CHECK_STATUS_FLAGGED 3
#define CHECK_APPEND "probe.workloads=check"
#define CHECK_ARGS_MAX 64

static void check_help(FILE *f)
{
	fprintf(f, "usage: gvm check --nodes N [OPTIONS]\n"
		   "       gvm check --rank R --peers HOST:PORT,... [OPTIONS]\n"
		   "       srun --ntasks-per-node=1 gvm check [OPTIONS]\n"
		   "\n"
		   "Validate a cluster: boot the probe guest over its nodes, one gvm instance\n"
		   "and one NUMA node each, and measure every ordered pair of nodes (i, j)\n"
		   "from a vCPU of node i: the IPI round trip to a vCPU of node j, the\n"
		   "latency of a first read of memory homed on node j (a DSM read fault),\n"
		   "and the bandwidth of a sequential read of such memory: medians of 20\n"
		   "round trips and of 64 pages, a read of 2 MiB.  Pairs i -> i are the\n"
		   "local baselines.  Rank 0 prints a table of every pair, with the host\n"
		   "of each node; the default --vcpus and --mem are given below.\n"
		   "\n"
		   "A pair of two nodes is FLAGGED when its IPI round trip or its read\n"
		   "fault takes more than %g times the median of the other pairs of two\n"
		   "nodes, or its read bandwidth is below 1/%g of theirs (--flag-factor).\n"
		   "\n"
		   "--nodes N starts N instances on this machine, as gvm run --nodes does.\n"
		   "--rank R --peers LIST runs one instance of several, as gvm node does\n"
		   "(--vm-id defaults to a hash of LIST, the same on every instance).  In a\n"
		   "Slurm step (srun -N4 --ntasks-per-node=1 gvm check) without --rank or\n"
		   "--peers, the rank is SLURM_NODEID and the peers are the step's nodes\n"
		   "(scontrol show hostnames $SLURM_STEP_NODELIST, at the NodeAddr scontrol\n"
		   "shows), each listening on the step's first reserved port\n"
		   "(SLURM_STEP_RESV_PORTS), else on --port; nodes that share an address\n"
		   "take the following ports.\n"
		   "\n"
		   "Defaults: --vcpus %u per node, --mem %llu MiB per node (not those of\n"
		   "gvm run that the list below gives).  One of --nodes, --rank with --peers,\n"
		   "or a Slurm step is needed (no default); there --vm-id is optional.  The\n"
		   "options of one instance of several (--rank, --peers, --vm-id,\n"
		   "--munge-socket, --listen, --listen-fd, --kvm-fd, --uffd-fd, --status-fd,\n"
		   "--host-cpus, --connect-timeout) are refused with --nodes.\n"
		   "\n"
		   "Exit status: 0 when every node joined and no pair is flagged; %d when\n"
		   "a node could not join, an instance was lost or the probe failed (the\n"
		   "messages name the rank); 2 for bad options; %d when every node joined\n"
		   "but a pair is flagged.  Ranks other than 0 print no table and exit 0\n"
		   "when the guest ran through.\n"
		   "\n"
		   "Options:\n", CHECK_FACTOR_DEFAULT, CHECK_FACTOR_DEFAULT, CHECK_VCPUS_PER_NODE,
		CHECK_MEM_PER_NODE >> 20, CHECK_STATUS_FAILED, CHECK_STATUS_FLAGGED);
	options_help(f, CHECK_GROUPS);
}

/* The instances' command line, built word by word; strings it owns are kept in `owned`. */
struct check_args {
	char *argv[2 * CHECK_ARGS_MAX];
	int argc;
	char *owned[CHECK_ARGS_MAX];
	unsigned nr_owned;
};

static void args_add(struct check_args *a, const char *word)
{
	if (a->argc + 1 >= (int)(sizeof(a->argv) / sizeof(a->argv[0])))
		die("check: too many options");
	a->argv[a->argc++] = (char *)word;
	a->argv[a->argc] = NULL;
}

static void args_addf(struct check_args *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void args_addf(struct check_args *a, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) < 0)
		die("out of memory");
	va_end(ap);
	if (a->nr_owned == CHECK_ARGS_MAX)
		die("check: too many options");
	a->owned[a->nr_owned++] = s;
	args_add(a, s);
}

static void args_free(struct check_args *a)
{
	for (unsigned i = 0; i < a->nr_owned; i++)
		free(a->owned[i]);
}

/*
 * argv[1..] but gvm check's own options, then the machine's defaults for
 * `nodes` nodes where the user gave none, and the probe image.
 */
static void args_build(struct check_args *a, const char *cmd, int argc, char **argv,
		       const struct vm_options *o, unsigned nodes)
{
	args_add(a, cmd);
	for (int i = 1; i < argc; i++) {
		int v = options_takes_value(argv[i], CHECK_GROUPS);
		bool own = options_is(argv[i], "port") || options_is(argv[i], "flag-factor");

		if (!own)
			args_add(a, argv[i]);
		if (v > 0 && i + 1 < argc) {
			i++;
			if (!own)
				args_add(a, argv[i]);
		}
	}
	if (!o->topo.nr_cpus)
		args_addf(a, "--vcpus=%u", CHECK_VCPUS_PER_NODE * nodes);
	if (!o->topo.ram_size)
		args_addf(a, "--mem=%llu", CHECK_MEM_PER_NODE * nodes);
	args_add(a, "--image=probe");
	args_add(a, "--append=" CHECK_APPEND);
}

/* Run argv, its standard output into buf (NUL-terminated); 0 if it exited 0. */
static int check_capture(char *const argv[], char *buf, size_t size)
{
	int pfd[2], ws;
	size_t used = 0;
	ssize_t n;
	pid_t pid;

	if (pipe2(pfd, O_CLOEXEC))
		return -1;
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (pid == 0) {
		if (dup2(pfd[1], STDOUT_FILENO) < 0)
			_exit(127);
		execvp(argv[0], argv);
		fprintf(stderr, "gvm: check: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(pfd[1]);
	while (used < size - 1 && ((n = read(pfd[0], buf + used, size - 1 - used)) > 0 ||
				   (n < 0 && errno == EINTR)))
		used += n > 0 ? (size_t)n : 0;
	buf[used] = '\0';
	close(pfd[0]);
	while (waitpid(pid, &ws, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(ws) && WEXITSTATUS(ws) == 0 && used < size - 1 ? 0 : -1;
}

/* The address slurmctld has for node `name` (NodeAddr) in `scontrol -o show node` output. */
static void slurm_node_addr(const char *nodes, const char *name, char *addr, size_t size)
{
	size_t nl = strlen(name);

	snprintf(addr, size, "%s", name);
	for (const char *line = nodes; *line; line += strcspn(line, "\n"), line += *line == '\n') {
		const char *a;
		size_t len;

		if (strncmp(line, "NodeName=", 9) || strncmp(line + 9, name, nl) ||
		    line[9 + nl] != ' ')
			continue;
		a = strstr(line, " NodeAddr=");
		if (!a || a > line + strcspn(line, "\n"))
			return;
		a += strlen(" NodeAddr=");
		len = strcspn(a, " \n");
		if (len && len < size)
			snprintf(addr, size, "%.*s", (int)len, a);
		return;
	}
}

struct check_slurm {
	unsigned rank, n;
	char *peers;                   /* host:port,... (malloc) */
	char names[TOPO_MAX_NODES][HOSTPORT_HOST_MAX];
	uint64_t vm_id;
};

/*
 * The step's instances: rank, names, addresses and ports (see check_help).
 * 0, or -1 after a message.
 */
static int check_slurm_peers(const struct vm_options *o, struct check_slurm *s)
{
	const char *list = getenv("SLURM_STEP_NODELIST"), *resv = getenv("SLURM_STEP_RESV_PORTS");
	const char *ntasks = getenv("SLURM_STEP_NUM_TASKS"), *job = getenv("SLURM_JOB_ID");
	const char *step = getenv("SLURM_STEP_ID");
	char out[64 * 1024], *nodes = malloc(1 << 20), addr[TOPO_MAX_NODES][HOSTPORT_HOST_MAX];
	char err[PARSE_ERR_MAX], *line, *save = NULL;
	unsigned ports[TOPO_MAX_NODES], nports = 0, tasks, jobid, stepid = 0;
	size_t len = 0;

	if (!nodes)
		die("out of memory");
	if (parse_uint(getenv("SLURM_NODEID"), 0, TOPO_MAX_NODES - 1, &s->rank, err)) {
		pr_err("check: SLURM_NODEID: %s", err);
		goto fail;
	}
	if (!job || parse_uint(job, 1, UINT32_MAX, &jobid, err) ||
	    (step && parse_uint(step, 0, UINT32_MAX, &stepid, err))) {
		pr_err("check: not in a Slurm step with a job id (SLURM_JOB_ID, SLURM_STEP_ID)");
		goto fail;
	}
	if (check_capture((char *[]){ "scontrol", "show", "hostnames", (char *)list, NULL }, out,
			  sizeof(out))) {
		pr_err("check: 'scontrol show hostnames %s' failed: is Slurm's scontrol in PATH?",
		       list);
		goto fail;
	}
	s->n = 0;
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (s->n == TOPO_MAX_NODES) {
			pr_err("check: the step spans more than %u nodes", TOPO_MAX_NODES);
			goto fail;
		}
		snprintf(s->names[s->n++], HOSTPORT_HOST_MAX, "%s", line);
	}
	if (s->rank >= s->n) {
		pr_err("check: SLURM_NODEID %u, but the step has %u nodes (%s)", s->rank, s->n,
		       list);
		goto fail;
	}
	if (ntasks && (parse_uint(ntasks, 1, 1u << 30, &tasks, err) || tasks != s->n)) {
		pr_err("check: the step runs %s tasks on %u nodes: run one per node (srun "
		       "--ntasks-per-node=1 gvm check)", ntasks, s->n);
		goto fail;
	}
	/* where each node listens: its NodeAddr if slurmctld has one, else its name */
	if (check_capture((char *[]){ "scontrol", "-o", "show", "node", NULL }, nodes, 1 << 20))
		nodes[0] = '\0';
	for (unsigned i = 0; i < s->n; i++)
		slurm_node_addr(nodes, s->names[i], addr[i], sizeof(addr[i]));
	if (resv && *resv) {
		if (parse_uint_list(resv, 65535, ports, TOPO_MAX_NODES, &nports, err)) {
			pr_err("check: SLURM_STEP_RESV_PORTS: %s", err);
			goto fail;
		}
	} else {
		unsigned base = o->port ? o->port : CHECK_PORT_DEFAULT;

		for (; nports < TOPO_MAX_NODES && base + nports <= 65535; nports++)
			ports[nports] = base + nports;
	}
	s->peers = malloc((size_t)s->n * (HOSTPORT_HOST_MAX + 10));
	if (!s->peers)
		die("out of memory");
	s->peers[0] = '\0';
	for (unsigned i = 0; i < s->n; i++) {
		unsigned k = 0;
		bool v6 = strchr(addr[i], ':') != NULL;

		/* the k-th port for the k-th node at one address, as the SPANK plugin does */
		for (unsigned j = 0; j < i; j++)
			k += !strcmp(addr[j], addr[i]);
		if (k >= nports) {
			pr_err("check: %u nodes of the step share the address %s, but only %u "
			       "port%s %s reserved (srun --resv-ports=%u)", k + 1, addr[i], nports,
			       nports == 1 ? "" : "s", nports == 1 ? "is" : "are", s->n);
			free(s->peers);
			goto fail;
		}
		len += sprintf(s->peers + len, "%s%s%s%s:%u", i ? "," : "", v6 ? "[" : "", addr[i],
			       v6 ? "]" : "", ports[k]);
	}
	/* the same on every node of the step, and another VM's for another step */
	s->vm_id = (uint64_t)jobid << 32 | (stepid + 1);
	free(nodes);
	return 0;
fail:
	free(nodes);
	return -1;
}

/* FNV-1a of s, never 0: the VM id every instance given the same --peers computes. */
static uint64_t check_hash(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
	return h ? h : 1;
}

/* The probe's console, whole (NUL-terminated, malloc'ed); NULL if unreadable. */
static char *check_read_console(int fd)
{
	off_t size = lseek(fd, 0, SEEK_END);
	char *buf;
	size_t used = 0;

	if (size < 0 || lseek(fd, 0, SEEK_SET) < 0)
		return NULL;
	buf = malloc((size_t)size + 1);
	if (!buf)
		die("out of memory");
	while (used < (size_t)size) {
		ssize_t n = read(fd, buf + used, (size_t)size - used);

		if (n <= 0)
			break;
		used += (size_t)n;
	}
	buf[used] = '\0';
	return buf;
}

/* Rank 0: judge what the probe said, print the table; the exit status. */
static int check_report(const char *console, int status, unsigned nodes,
			const char *const *hosts, double factor)
{
	struct check_result r;
	char err[CHECK_ERR_MAX], *copy, *line, *save = NULL;
	bool bad = false, passed = false;
	unsigned flagged;

	if (check_result_init(&r, nodes))
		die("out of memory");
	copy = strdup(console);
	if (!copy)
		die("out of memory");
	for (line = strtok_r(copy, "\r\n", &save); line; line = strtok_r(NULL, "\r\n", &save)) {
		if (!strncmp(line, "error: ", 7)) {
			pr_err("check: the probe says: %s", line + 7);
			bad = true;
		}
		passed |= !strcmp(line, "result: PASS");
		if (check_parse_line(&r, line, err) < 0) {
			pr_err("check: %s", err);
			bad = true;
		}
	}
	free(copy);
	if (status || bad || !passed) {
		pr_err("check: %s (status %d): see the messages above",
		       console[0] ? "the probe guest failed" :
		       "the check did not start, or a node could not join", status);
		check_result_free(&r);
		return CHECK_STATUS_FAILED;
	}
	if (check_complete(&r, err)) {
		pr_err("check: %s", err);
		check_result_free(&r);
		return CHECK_STATUS_FAILED;
	}
	flagged = check_flag(&r, factor);
	printf("gvm check: %u node%s joined; medians per ordered pair of nodes (from a vCPU "
	       "of the first to the second)\n", nodes, nodes == 1 ? "" : "s");
	check_print(&r, hosts, factor, stdout);
	if (flagged)
		printf("gvm check: %u pair%s of nodes far from the others (more than %gx their "
		       "median)\n", flagged, flagged == 1 ? "" : "s", factor);
	else
		printf("gvm check: no pair of nodes is far from the others (%gx rule)\n", factor);
	fflush(stdout);
	check_result_free(&r);
	return flagged ? CHECK_STATUS_FLAGGED : 0;
}

static int check_main(int argc, char **argv)
{
	struct vm_options o, io;
	struct check_args a = { .argc = 0 };
	struct check_slurm *slurm = NULL;
	const char *hosts[TOPO_MAX_NODES] = { NULL };
	char self[HOSTPORT_HOST_MAX] = "localhost", *console;
	unsigned nodes, rank = 0;
	double factor;
	int r, fd, status;

	r = options_parse(argc, argv, CHECK_GROUPS, &o);
	if (r) {
		options_free(&o);
		if (r > 0) {
			check_help(stdout);
			return 0;
		}
		return 2;
	}
	factor = o.flag_factor ? o.flag_factor : CHECK_FACTOR_DEFAULT;
	gethostname(self, sizeof(self) - 1);
	if (o.nodes) {
		if (o.have_rank || o.nr_peers || o.have_vm_id) {
			pr_err("check: --nodes starts every instance here; --rank, --peers and "
			       "--vm-id are for one instance of several");
			options_free(&o);
			return 2;
		}
		nodes = o.nodes;
		for (unsigned i = 0; i < nodes; i++)
			hosts[i] = self;
		args_build(&a, "check", argc, argv, &o, nodes);
	} else if (o.have_rank || o.nr_peers) {
		if (!o.have_rank || !o.nr_peers) {
			pr_err("check: --rank and --peers go together (see gvm help check)");
			options_free(&o);
			return 2;
		}
		nodes = o.nr_peers;
		rank = o.rank;
		for (unsigned i = 0; i < nodes; i++)
			hosts[i] = o.peers[i].host;
		args_build(&a, "node", argc, argv, &o, nodes);
		if (!o.have_vm_id) {
			const char *peers = NULL;

			for (int i = 1; i < argc && !peers; i++)
				if (options_is(argv[i], "peers"))
					peers = strchr(argv[i], '=') ? strchr(argv[i], '=') + 1 :
					       argv[i + 1];
			args_addf(&a, "--vm-id=%" PRIu64, check_hash(peers));
		}
	} else if (getenv("SLURM_STEP_NODELIST") && getenv("SLURM_NODEID")) {
		slurm = calloc(1, sizeof(*slurm));
		if (!slurm)
			die("out of memory");
		if (check_slurm_peers(&o, slurm)) {
			free(slurm);
			options_free(&o);
			return CHECK_STATUS_FAILED;
		}
		nodes = slurm->n;
		rank = slurm->rank;
		for (unsigned i = 0; i < nodes; i++)
			hosts[i] = slurm->names[i];
		args_build(&a, "node", argc, argv, &o, nodes);
		args_addf(&a, "--rank=%u", rank);
		args_addf(&a, "--peers=%s", slurm->peers);
		if (!o.have_vm_id)
			args_addf(&a, "--vm-id=%" PRIu64, slurm->vm_id);
		pr_info("check: rank %u of %u in Slurm step %s.%s: %s", rank, nodes,
			getenv("SLURM_JOB_ID"), getenv("SLURM_STEP_ID") ? getenv("SLURM_STEP_ID") :
			"?", slurm->peers);
	} else {
		pr_err("check: give --nodes N (every instance here), --rank R --peers LIST (one "
		       "instance of several), or run it in a Slurm step (srun "
		       "--ntasks-per-node=1 gvm check); see gvm help check");
		options_free(&o);
		return 2;
	}

	/* the table is of hosts: node i is instance i */
	if (o.numa_host || (o.topo.nr_nodes && o.topo.nr_nodes != nodes)) {
		pr_err("check: --numa: the check measures one NUMA node per instance; leave "
		       "--numa out");
		status = 2;
		goto out;
	}
	/* The instances' own options, parsed as gvm run --nodes or gvm node parse them. */
	r = options_parse(a.argc, a.argv, o.nodes ? CHECK_LAUNCH_GROUPS : CHECK_NODE_GROUPS, &io);
	if (!r && !o.nodes)
		r = node_check_options(&io, "check");
	if (r) {
		options_free(&io);
		status = 2;
		goto out;
	}
	fd = memfd_create("gvm-check-console", MFD_CLOEXEC);
	if (fd < 0)
		die_perror("memfd_create");
	status = o.nodes ? launch_main(&io, a.argc, a.argv, fd) : node_run(&io, fd);
	if (rank == 0) {
		console = check_read_console(fd);
		status = check_report(console ? console : "", status, nodes, hosts, factor);
		free(console);
	} else if (status) {
		pr_err("check: rank %u: the check did not run through (status %d): see the "
		       "messages above", rank, status);
		status = CHECK_STATUS_FAILED;
	}
	close(fd);
out:
	if (slurm) {
		free(slurm->peers);
		free(slurm);
	}
	args_free(&a);
	options_free(&o);
	return status;
}

const struct gvm_cmd cmd_check = {
	.name = "check",
	.summary = "validate a cluster: latency and bandwidth between every pair of nodes",
	.main = check_main,
	.help = check_help,
};
