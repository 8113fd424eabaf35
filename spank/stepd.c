/*
 * slurmstepd (the remote context): one process per node and step, as root;
 * each task is a child of it that becomes the user just before it execs.
 *
 * A step with --giantvm becomes one gvm instance per node, and the guest
 * runs the step's command:
 *
 *   - a batch step (sbatch --giantvm; it runs on the job's first node only)
 *     execs, in place of the script, an srun of one task per node of the
 *     job whose command is the script: the case below, so that sbatch and
 *     srun share one path.  The option reaches that srun on its command
 *     line, as checked here, and its environment;
 *   - any other step (srun --giantvm, or the srun above): on each node the
 *     first task becomes the node's instance.  As root, before it becomes
 *     the user (task_init_privileged), it opens what the user may not:
 *     /dev/kvm, /dev/userfaultfd, and the listening socket at the port
 *     Slurm reserved for the step; then, as the user, instead of the
 *     command (task_init), it execs `gvm node --rank R --peers ... --
 *     COMMAND`, R being the node's place in the step's node list.  Rank
 *     0's standard output and error are the step's, its exit status every
 *     instance's.  The node's other tasks exit 0 at once.
 *
 * The instance is the task itself: Slurm tracks it, signals it (scancel,
 * time limit) and collects its status as for any command.  The plugin's
 * bookkeeping (spank/runtime.h) is there for what Slurm does not see: a
 * step whose slurmstepd died.
 *
 * Nothing here may fail in a way that drains the node (a user's error is
 * not the node's): problems found before the task runs are kept and
 * reported from task_init, which fails the step with the message on the
 * job's standard error (SchedMD bug 7573: errors of user_init are lost for
 * srun, and drain the node for sbatch).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <slurm/slurm.h>
#include <slurm/spank.h>

#include "common/parse.h"
#include "spank/contexts.h"
#include "spank/options.h"
#include "spank/peers.h"
#include "spank/runtime.h"

/* xAPIC: what gvm can give a guest in all (vmm/topo.h) */
#define GUEST_MAX_VCPUS 255

enum kind {
	STEP_UNTOUCHED, /* no --giantvm, or a step giantvm leaves alone */
	STEP_BATCH,     /* the batch script: becomes an srun of the instances */
	STEP_INSTANCES, /* each node's first task becomes its instance */
};

static struct {
	struct gvm_config cfg;
	char cfg_err[GVM_ERR_MAX];
	enum kind kind;
	uint32_t job, step;
	struct gvm_opts o;       /* with GIANTVM_* of the job's environment */
	char err[GVM_ERR_MAX];   /* what stops the step, reported by task_init */
	/* in the first task only, from task_init_privileged to task_init */
	int kvm_fd, uffd_fd, listen_fd;
	struct peers peers;
	/* the batch step's: ports its srun reserves per node, if more than Slurm's */
	unsigned resv_ports;
} st = { .kvm_fd = -1, .uffd_fd = -1, .listen_fd = -1 };

int stepd_init(spank_t sp, int ac, char **av)
{
	bool bad = config_parse(&st.cfg, ac, av, st.cfg_err);

	if (spank_get_item(sp, S_JOB_ID, &st.job) != ESPANK_SUCCESS ||
	    spank_get_item(sp, S_JOB_STEPID, &st.step) != ESPANK_SUCCESS) {
		slurm_error("giantvm: slurmstepd gives no job or step id");
		return -1;
	}
	return opts_register(sp, bad ? NULL : &st.cfg, bad ? st.cfg_err : NULL);
}

static int from_job(void *arg, const char *name, char *buf, size_t len)
{
	spank_err_t rc = spank_getenv((spank_t)arg, name, buf, len);

	if (rc == ESPANK_SUCCESS)
		return 1;
	return rc == ESPANK_NOSPACE ? -1 : 0;
}

/* As root, once the options are known: what kind of step, and is all well. */
int stepd_post_opt(spank_t sp, int ac, char **av)
{
	(void)ac;
	(void)av;
	if (!gvm_opts.enabled)
		return 0;
	/*
	 * The extern step never sees the option; salloc's interactive step
	 * runs the user's shell on the first node, whose sruns get
	 * --giantvm from the allocation, as a batch script's would.
	 */
	if (st.step == SLURM_EXTERN_CONT || st.step == SLURM_INTERACTIVE_STEP)
		return 0;
	st.kind = st.step == SLURM_BATCH_SCRIPT ? STEP_BATCH : STEP_INSTANCES;
	st.o = gvm_opts;
	if (opts_error[0])
		strcpy(st.err, opts_error);
	else if (!opts_apply_env(&st.o, from_job, sp, st.err))
		opts_check_site(&st.o, &st.cfg, st.err);
	return 0;
}

/* A descriptor for the task: above the standard ones, kept across exec. */
static int keep_fd(int fd)
{
	int moved;

	if (fd < 0 || fd > 2)
		return fd;
	/* slurmstepd may have closed 0-2; they become the task's stdio next */
	moved = fcntl(fd, F_DUPFD, 3);
	close(fd);
	return moved;
}

static void close_fds(void)
{
	if (st.kvm_fd >= 0)
		close(st.kvm_fd);
	if (st.uffd_fd >= 0)
		close(st.uffd_fd);
	if (st.listen_fd >= 0)
		close(st.listen_fd);
	st.kvm_fd = st.uffd_fd = st.listen_fd = -1;
}

/*
 * The first task's instance, as root: its place among the step's nodes,
 * the devices the user may not open, its listening socket.  0, or -1 with
 * st.err.
 */
static int instance_open(spank_t sp)
{
	char err[GVM_ERR_MAX];

	if (peers_get(sp, &st.cfg, st.job, st.step, &st.peers, err))
		return errf(st.err, "%s", err);
	/*
	 * The devices, not a VM or a userfaultfd: those belong to the mm of
	 * the process that makes them, which the task's exec replaces.
	 */
	st.kvm_fd = keep_fd(open("/dev/kvm", O_RDWR));
	if (st.kvm_fd < 0) {
		errf(st.err, "cannot open /dev/kvm on %s: %s", getenv("SLURMD_NODENAME"),
		     strerror(errno));
		goto fail;
	}
	/*
	 * Linux 6.1 and later: a userfaultfd that sees the kernel's faults
	 * (KVM's), which vm.unprivileged_userfaultfd=0 denies users.  Without
	 * the device gvm tries by itself, and says why it cannot.
	 */
	st.uffd_fd = keep_fd(open("/dev/userfaultfd", O_RDWR));
	if (st.uffd_fd < 0 && errno != ENOENT) {
		errf(st.err, "cannot open /dev/userfaultfd on %s: %s", getenv("SLURMD_NODENAME"),
		     strerror(errno));
		goto fail;
	}
	st.listen_fd = keep_fd(peers_listen(&st.peers, err));
	if (st.listen_fd < 0) {
		errf(st.err, "node %s: %s", getenv("SLURMD_NODENAME"), err);
		goto fail;
	}
	return 0;
fail:
	close_fds();
	peers_free(&st.peers);
	return -1;
}

static int task_id(spank_t sp)
{
	int id = -1;

	return spank_get_item(sp, S_TASK_ID, &id) == ESPANK_SUCCESS ? id : -1;
}

/*
 * Nodes at one address (several slurmd on one host) listen on one port
 * each, from the step's reservation; Slurm reserves tasks per node + 1
 * (2 here) unless told.  Asked here, as root, since the node table may be
 * hidden from the user; a failure is left to the instances to report.
 */
static void batch_count_ports(spank_t sp)
{
	char nodelist[4096], err[GVM_ERR_MAX];
	unsigned most;

	if (spank_getenv(sp, "SLURM_JOB_NODELIST", nodelist, sizeof(nodelist)) == ESPANK_SUCCESS &&
	    !peers_crowding(nodelist, &most, err) && most > 1)
		st.resv_ports = most;
}

int slurm_spank_task_init_privileged(spank_t sp, int ac, char **av)
{
	(void)ac;
	(void)av;
	if (spank_context() != S_CTX_REMOTE || st.err[0] || task_id(sp) != 0)
		return 0;
	if (st.kind == STEP_BATCH)
		batch_count_ports(sp);
	else if (st.kind == STEP_INSTANCES)
		instance_open(sp);
	return 0;
}

int slurm_spank_task_post_fork(spank_t sp, int ac, char **av)
{
	char err[GVM_ERR_MAX];
	pid_t pid;

	(void)ac;
	(void)av;
	if (spank_context() != S_CTX_REMOTE || st.kind != STEP_INSTANCES || st.err[0] ||
	    task_id(sp) != 0 || spank_get_item(sp, S_TASK_PID, &pid) != ESPANK_SUCCESS)
		return 0;
	/* Slurm still tracks the task: losing the record is no reason to fail it */
	if (runtime_record(st.cfg.runtime_dir, getenv("SLURMD_NODENAME"), st.job, st.step, pid,
			   err))
		slurm_error("giantvm: bookkeeping: %s", err);
	return 0;
}

/* slurmstepd's tasks start with signals blocked and some ignored: gvm needs them back. */
static void reset_signals(void)
{
	sigset_t none;

	for (int s = 1; s < NSIG; s++)
		if (s != SIGKILL && s != SIGSTOP)
			signal(s, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* A growing argument vector; the process execs or ends, so nothing is freed. */
struct args {
	char **v;
	int n, cap;
};

static int add(struct args *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int add(struct args *a, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int r;

	if (a->n + 2 > a->cap) {
		int cap = a->cap ? 2 * a->cap : 64;
		char **v = realloc(a->v, cap * sizeof(*v));

		if (!v)
			return -1;
		a->v = v;
		a->cap = cap;
	}
	va_start(ap, fmt);
	r = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r < 0)
		return -1;
	a->v[a->n++] = s;
	a->v[a->n] = NULL;
	return 0;
}

static int job_argv(spank_t sp, int *argc, char ***argv)
{
	if (spank_get_item(sp, S_JOB_ARGV, argc, argv) != ESPANK_SUCCESS || *argc < 1 ||
	    !(*argv)[0] || !(*argv)[0][0]) {
		slurm_error("giantvm: the step has no command to run in the guest");
		return -1;
	}
	return 0;
}

/*
 * What gvm gets of the job's environment: what it reads (GVM_*, TMPDIR for
 * its temporary files), and the basics.  Nothing else: it holds devices the
 * user may not open, so the loader variables (LD_PRELOAD...) of a job's
 * environment must not reach it.  That only closes the easy way in: the
 * user owns the process (see the admin guide).
 */
static bool gvm_env_var(const char *e)
{
	static const char *const keep[] = {
		"PATH=", "HOME=", "USER=", "LOGNAME=", "LANG=", "TZ=", "TMPDIR=",
		"GVM_LOG=", "GVM_IMAGES=", "GVM_MUNGE_SOCKET=", "SLURM_JOB_ID=",
	};

	if (!strncmp(e, "LC_", 3))
		return true;
	for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
		if (!strncmp(e, keep[i], strlen(keep[i])))
			return true;
	return false;
}

/*
 * exec path with the job's environment; if only_gvm, only what gvm_env_var
 * keeps of it, and libfabric's FI_* variables from slurmstepd's own
 * environment (the site's, set where slurmd starts: which interface or
 * provider the fabric transport uses is the site's choice, and a user's
 * FI_PROVIDER_PATH would load code into gvm).
 */
static void exec_or_say(const char *path, struct args *a, spank_t sp, bool only_gvm,
			const char *fix)
{
	char **env, **kept;
	size_t n = 0, k = 0, site = 0;

	if (spank_get_item(sp, S_JOB_ENV, &env) != ESPANK_SUCCESS) {
		slurm_error("giantvm: slurmstepd gives no job environment");
		return;
	}
	if (only_gvm) {
		while (env[n])
			n++;
		while (environ[site])
			site++;
		kept = calloc(n + site + 1, sizeof(*kept));
		if (!kept) {
			slurm_error("giantvm: out of memory");
			return;
		}
		for (size_t i = 0; i < n; i++)
			if (gvm_env_var(env[i]))
				kept[k++] = env[i];
		for (size_t i = 0; i < site; i++)
			if (!strncmp(environ[i], "FI_", 3))
				kept[k++] = environ[i];
		env = kept;
	}
	execve(path, a->v, env);
	slurm_error("giantvm: cannot run %s on %s: %s (%s)", path, getenv("SLURMD_NODENAME"),
		    strerror(errno), fix);
	if (only_gvm)
		free(env);
}

/*
 * Does Slurm bind tasks to CPUs here?  Then the instances' srun asks it not
 * to: a task per node would get one CPU, and gvm pins its vCPUs itself, on
 * the CPUs the job may use on the node.  Without a task plugin, srun would
 * print a warning for --cpu-bind into the job's output (even with
 * --quiet): ask slurmctld, once per batch job.
 */
static bool binds_tasks(void)
{
	slurm_conf_t *conf = NULL;
	bool binds = true;

	if (slurm_load_ctl_conf(0, &conf) == SLURM_SUCCESS && conf) {
		binds = !conf->task_plugin || strcmp(conf->task_plugin, "task/none");
		slurm_free_ctl_conf(conf);
	}
	return binds;
}

/*
 * The batch step: an srun of the instances, one per node of the job, whose
 * command is the script.  Rank 0 runs on the first node, the only one where
 * the script is (slurmd's spool): this one must be it.
 */
static int exec_srun(spank_t sp)
{
	char nodelist[4096], n[16], value[8 * GVM_PATH_MAX], perr[PARSE_ERR_MAX];
	const char *me = getenv("SLURMD_NODENAME");
	struct args a = { 0 };
	hostlist_t hl;
	char *first = NULL;
	unsigned nodes;
	char **argv;
	int argc;

	if (job_argv(sp, &argc, &argv))
		return -1;
	if (spank_getenv(sp, "SLURM_JOB_NODELIST", nodelist, sizeof(nodelist)) != ESPANK_SUCCESS ||
	    spank_getenv(sp, "SLURM_JOB_NUM_NODES", n, sizeof(n)) != ESPANK_SUCCESS) {
		slurm_error("giantvm: the batch job has no SLURM_JOB_NODELIST or SLURM_JOB_NUM_NODES");
		return -1;
	}
	if (parse_uint(n, 1, PEERS_MAX, &nodes, perr)) {
		slurm_error("giantvm: the job has %s nodes; a giantvm guest spans 1 to %d", n,
			    PEERS_MAX);
		return -1;
	}
	hl = slurm_hostlist_create(nodelist);
	if (hl)
		first = slurm_hostlist_shift(hl);
	if (!first || !me || strcmp(first, me)) {
		slurm_error("giantvm: the batch script runs on %s, not on the job's first node "
			    "(%s), which runs the guest's rank 0", me ? me : "?",
			    first ? first : "?");
		free(first);
		if (hl)
			slurm_hostlist_destroy(hl);
		return -1;
	}
	free(first);
	slurm_hostlist_destroy(hl);
	if (opts_format(&st.o, value, sizeof(value))) {
		slurm_error("giantvm: the --giantvm settings are too long");
		return -1;
	}
	if (add(&a, "%s", st.cfg.srun) ||
	    /* only errors: the job's output is the guest's */
	    add(&a, "--quiet") ||
	    add(&a, "--nodes=%u", nodes) || add(&a, "--ntasks=%u", nodes) ||
	    add(&a, "--ntasks-per-node=1") ||
	    (st.resv_ports && add(&a, "--resv-ports=%u", st.resv_ports)) ||
	    (binds_tasks() && add(&a, "--cpu-bind=none")) ||
	    add(&a, value[0] ? "--giantvm=%s" : "--giantvm%s", value) || add(&a, "--")) {
		slurm_error("giantvm: out of memory");
		return -1;
	}
	for (int i = 0; i < argc; i++)
		if (add(&a, "%s", argv[i])) {
			slurm_error("giantvm: out of memory");
			return -1;
		}
	exec_or_say(st.cfg.srun, &a, sp, false, "set srun= in plugstack.conf");
	return -1;
}

/*
 * The vCPUs of each node: the user's, the site's, else as many as the job
 * has CPUs on this node (at most what a guest can have).  0: gvm's choice.
 */
static unsigned vcpus_per_node(spank_t sp, unsigned nodes)
{
	char buf[16], perr[PARSE_ERR_MAX];
	unsigned v;

	if (st.o.vcpus)
		return st.o.vcpus;
	if (st.cfg.vcpus)
		return st.cfg.vcpus;
	if (spank_getenv(sp, "SLURM_CPUS_ON_NODE", buf, sizeof(buf)) == ESPANK_SUCCESS &&
	    !parse_uint(buf, 1, 65535, &v, perr))
		return v * nodes > GUEST_MAX_VCPUS ? GUEST_MAX_VCPUS / nodes : v;
	return 0;
}

/*
 * The variables of the job's environment that the guest's job sees too:
 * those that say which job it is (an array task's index above all), true
 * inside the guest as outside.  Not those that describe the host's tasks
 * and CPUs (SLURM_NTASKS, SLURM_CPUS_ON_NODE...), which the guest's one
 * machine would belie, nor the user's own (PATH and the like name this
 * host's files): --copy a file of settings for those.
 */
static const char *const job_identity[] = {
	"SLURM_JOB_ID", "SLURM_JOB_NAME", "SLURM_JOB_USER", "SLURM_JOB_ACCOUNT",
	"SLURM_JOB_PARTITION", "SLURM_JOB_QOS", "SLURM_JOB_NUM_NODES", "SLURM_JOB_NODELIST",
	"SLURM_CLUSTER_NAME", "SLURM_SUBMIT_DIR", "SLURM_SUBMIT_HOST", "SLURM_RESTART_COUNT",
	"SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT",
	"SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_MAX", "SLURM_ARRAY_TASK_STEP",
};

static int add_job_identity(spank_t sp, struct args *a)
{
	char v[4096];
	int bad = 0;

	for (size_t i = 0; i < sizeof(job_identity) / sizeof(job_identity[0]); i++)
		if (spank_getenv(sp, job_identity[i], v, sizeof(v)) == ESPANK_SUCCESS)
			bad |= add(a, "--env=%s=%s", job_identity[i], v);
	return bad;
}

static int exec_gvm(spank_t sp)
{
	const struct gvm_config *c = &st.cfg;
	struct peers *p = &st.peers;
	struct args a = { 0 };
	uint64_t mem = st.o.mem ? st.o.mem : c->mem;
	const char *image = st.o.image[0] ? st.o.image : c->image;
	unsigned numa = st.o.numa ? st.o.numa : c->numa;
	unsigned vcpus;
	char **argv;
	int argc, bad = 0;

	if (job_argv(sp, &argc, &argv))
		return -1;
	vcpus = vcpus_per_node(sp, p->n);
	if (vcpus * p->n > GUEST_MAX_VCPUS) {
		slurm_error("giantvm: vcpus=%u per node over %u nodes makes %u vCPUs; a guest has "
			    "at most %d", vcpus, p->n, vcpus * p->n, GUEST_MAX_VCPUS);
		return -1;
	}
	if (mem > UINT64_MAX / p->n) {
		slurm_error("giantvm: mem=%" PRIu64 " per node is too large", mem);
		return -1;
	}
	/* the same VM id on every node: job and step */
	bad |= add(&a, "%s", c->gvm) | add(&a, "node") | add(&a, "--rank=%u", p->rank) |
	       add(&a, "--peers=%s", p->list) |
	       add(&a, "--vm-id=%" PRIu64, ((uint64_t)st.job << 32) | st.step) |
	       add(&a, "--listen-fd=%d", st.listen_fd) | add(&a, "--kvm-fd=%d", st.kvm_fd);
	if (st.uffd_fd >= 0)
		bad |= add(&a, "--uffd-fd=%d", st.uffd_fd);
	if (c->munge_socket[0])
		bad |= add(&a, "--munge-socket=%s", c->munge_socket);
	if (c->connect_timeout)
		bad |= add(&a, "--connect-timeout=%u", c->connect_timeout);
	if (c->peer_timeout)
		bad |= add(&a, "--peer-timeout=%u", c->peer_timeout);
	if (c->transport[0])
		bad |= add(&a, "--transport=%s", c->transport);
	if (c->integrity)
		bad |= add(&a, "--integrity");
	if (c->report_silence)
		bad |= add(&a, "--report-silence=%u", c->report_silence);
	/*
	 * Rank 0 decides the machine and runs the job; the others take its
	 * word.  gvm's --vcpus and --mem are the guest's, in all.
	 */
	if (p->rank == 0) {
		if (vcpus)
			bad |= add(&a, "--vcpus=%u", vcpus * p->n);
		if (mem)
			bad |= add(&a, "--mem=%" PRIu64, mem * p->n);
		if (numa == GVM_NUMA_HOST)
			bad |= add(&a, "--numa=host");
		else if (numa)
			bad |= add(&a, "--numa=%u", numa * p->n);
		if (image[0])
			bad |= add(&a, "--image=%s", image);
		if (st.o.output[0])
			bad |= add(&a, "--output=%s", st.o.output);
		for (unsigned i = 0, at = 0; i < st.o.ncopies; i++) {
			bad |= add(&a, "--copy=%s", st.o.copies + at);
			at += strlen(st.o.copies + at) + 1;
		}
		if (st.o.overwrite > 0)
			bad |= add(&a, "--overwrite");
		if (st.o.verbose > 0)
			bad |= add(&a, "--verbose");
		bad |= add_job_identity(sp, &a);
		bad |= add(&a, "--job-id=%" PRIu32, st.job) | add(&a, "--");
		for (int i = 0; i < argc; i++)
			bad |= add(&a, "%s", argv[i]);
	}
	if (bad) {
		slurm_error("giantvm: out of memory");
		return -1;
	}
	exec_or_say(c->gvm, &a, sp, true, "set gvm= in plugstack.conf");
	return -1;
}

int slurm_spank_task_init(spank_t sp, int ac, char **av)
{
	(void)ac;
	(void)av;
	if (spank_context() != S_CTX_REMOTE || st.kind == STEP_UNTOUCHED)
		return 0;
	if (st.err[0]) {
		slurm_error("giantvm: %s", st.err);
		return -1;
	}
	reset_signals();
	if (st.kind == STEP_BATCH)
		return exec_srun(sp);
	if (task_id(sp) != 0)
		_exit(0);
	if (st.listen_fd < 0) {
		slurm_error("giantvm: the instance's descriptors were not opened");
		return -1;
	}
	exec_gvm(sp);
	close_fds();
	return -1;
}

int slurm_spank_task_exit(spank_t sp, int ac, char **av)
{
	char err[GVM_ERR_MAX];

	(void)ac;
	(void)av;
	if (spank_context() != S_CTX_REMOTE || st.kind != STEP_INSTANCES || task_id(sp) != 0)
		return 0;
	/* reaped: its pid may be anyone's from now on */
	if (runtime_end(st.cfg.runtime_dir, getenv("SLURMD_NODENAME"), st.job, st.step, err) < 0)
		slurm_error("giantvm: bookkeeping: %s", err);
	return 0;
}

int stepd_exit(spank_t sp, int ac, char **av)
{
	char err[GVM_ERR_MAX];
	int r;

	(void)sp;
	(void)ac;
	(void)av;
	if (st.kind != STEP_INSTANCES)
		return 0;
	r = runtime_end(st.cfg.runtime_dir, getenv("SLURMD_NODENAME"), st.job, st.step, err);
	if (r < 0)
		slurm_error("giantvm: bookkeeping: %s", err);
	else if (r > 0)
		slurm_error("giantvm: the step's gvm instance outlived it; it was killed");
	return 0;
}
