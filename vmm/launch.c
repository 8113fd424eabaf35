#include "vmm/launch.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/auth.h"
#include "common/log.h"
#include "common/mesh.h"
#include "vmm/guest.h"
#include "vmm/host.h"
#include "vmm/vm.h"

#define LAUNCH_GROUPS (OPTG_MACHINE | OPTG_BOOT | OPTG_RUN | OPTG_LAUNCH | OPTG_JOB)
/* Once one instance has ended, the others stop by themselves within 5 s. */
#define LAUNCH_GRACE_S 15
/* After SIGINT/SIGTERM: time for a clean stop before SIGKILL. */
#define LAUNCH_STOP_S 20

struct instance {
	pid_t pid;
	int listen_fd;
	bool running, connected;
	int wstatus;
	char cpus[TOPO_MAX_CPUS * 11]; /* --host-cpus: up to "NNNNNNNNNN," per vCPU */
	char arg[6][24]; /* its --rank, --vm-id, --listen-fd, --status-fd, --vcpus, --mem */
};

struct launch {
	const char *cmd; /* for messages: the subcommand (argv[0]) */
	unsigned n;
	struct instance *inst;
	struct timespec start;
	char peers[MESH_MAX_NODES * 24];
	char self[PATH_MAX];
	uint64_t vm_id;
	unsigned nr_cpus;  /* the guest's shape, resolved once for every instance */
	uint64_t ram_size;
	int status_rd, status_wr;
	int console_fd; /* rank 0's standard output, or -1: the launcher's */
	unsigned connected;
	bool reported_connected, reported_running;
	int signo;  /* SIGINT/SIGTERM the launcher received, 0 */
};

static double launch_elapsed(const struct launch *l)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - l->start.tv_sec) + (now.tv_nsec - l->start.tv_nsec) / 1e9;
}

/* What can be checked before anything starts. */
static int launch_check(struct vm_options *o, struct host *host, struct vm_topology *t,
			struct image *img, const char *cmd)
{
	struct topo_params p = o->topo;
	char err[TOPO_ERR_MAX];

	if (guest_numa_shape(o, host, o->nodes, &p, cmd))
		return 2;
	guest_default_ram(o, host, p.nr_nodes, cmd);
	p.ram_size = o->topo.ram_size;
	p.host = host;
	p.host_nodes = 0; /* every instance's share lives on this machine */
	if (topo_build(&p, t, err)) {
		pr_err("%s: %s", cmd, err);
		return 1;
	}
	/* rank 0 resolves the image and writes the job's payload on its own host */
	if (guest_prepare(o, host, t->ram_size, img, cmd))
		return 1;
	guest_warn_shadow_paging(o, host, o->nodes, cmd);
	return 0;
}

/* munged must answer before N instances start and each finds out alone. */
static int launch_check_munge(const char *sock, const char *cmd)
{
	struct auth_claim claim = { .vm_id = 1 };
	char err[AUTH_ERR_MAX], *cred;

	if (auth_encode(sock, &claim, &cred, err)) {
		pr_err("%s: %s", cmd, err);
		pr_err("%s: the instances authenticate each other with munge: start munged (as "
		       "root: systemctl start munge, or munged), or point GVM_MUNGE_SOCKET at a "
		       "munged's socket", cmd);
		return -1;
	}
	free(cred);
	return 0;
}

uint64_t launch_vm_id(void)
{
	uint64_t id = 0;

	while (!id)
		if (getrandom(&id, sizeof(id), 0) != sizeof(id))
			die_perror("getrandom");
	return id;
}

/* Rank r's command line: gvm node, the launcher's options but --nodes, and its own. */
static char **launch_argv(struct launch *l, unsigned r, int argc, char **argv)
{
	char **a = calloc(argc + 24, sizeof(*a));
	char (*buf)[24] = l->inst[r].arg;
	unsigned k = 0;

	if (!a)
		die("out of memory");
	a[k++] = l->self;
	a[k++] = "node";
	snprintf(buf[0], sizeof(buf[0]), "%u", r);
	_Static_assert(sizeof(buf[0]) >= 21, "room for a 64-bit number");
	snprintf(buf[1], sizeof(buf[1]), "%" PRIu64, l->vm_id);
	snprintf(buf[2], sizeof(buf[2]), "%d", l->inst[r].listen_fd);
	snprintf(buf[3], sizeof(buf[3]), "%d", l->status_wr);
	a[k++] = "--rank";
	a[k++] = buf[0];
	a[k++] = "--peers";
	a[k++] = l->peers;
	a[k++] = "--vm-id";
	a[k++] = buf[1];
	a[k++] = "--listen-fd";
	a[k++] = buf[2];
	a[k++] = "--status-fd";
	a[k++] = buf[3];
	if (l->inst[r].cpus[0]) {
		a[k++] = "--host-cpus";
		a[k++] = l->inst[r].cpus;
	}
	/*
	 * The machine shape this launcher resolved, defaults included: an
	 * instance left to its own defaults would take this host's cores for
	 * its node alone, as on a cluster, not its share of them.
	 */
	snprintf(buf[4], sizeof(buf[4]), "%u", l->nr_cpus);
	snprintf(buf[5], sizeof(buf[5]), "%" PRIu64, l->ram_size);
	a[k++] = "--vcpus";
	a[k++] = buf[4];
	a[k++] = "--mem";
	a[k++] = buf[5];
	for (int i = 1; i < argc; i++) {
		int v = options_takes_value(argv[i], LAUNCH_GROUPS);

		if (!strcmp(argv[i], "--")) { /* the job's command and arguments, as they are */
			while (i < argc)
				a[k++] = argv[i++];
			break;
		}

		if (options_is(argv[i], "nodes") || options_is(argv[i], "vcpus") ||
		    options_is(argv[i], "mem")) {
			i += v > 0 && !strchr(argv[i], '=');
			continue;
		}
		a[k++] = argv[i];
		if (v > 0 && i + 1 < argc)
			a[k++] = argv[++i];
	}
	a[k] = NULL;
	return a;
}

static void launch_child(struct launch *l, unsigned r, char **a, pid_t parent)
{
	sigset_t none;

	/* die with the launcher, whatever kills it */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
		_exit(125);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (fcntl(l->inst[r].listen_fd, F_SETFD, 0) || fcntl(l->status_wr, F_SETFD, 0))
		_exit(125);
	if (r == 0 && l->console_fd >= 0 && dup2(l->console_fd, STDOUT_FILENO) < 0)
		_exit(125);
	if (r != 0) {
		/* only rank 0 has a console */
		int nul = open("/dev/null", O_RDONLY);

		if (nul < 0 || dup2(nul, STDIN_FILENO) < 0)
			_exit(125);
		close(nul);
	}
	execv(l->self, a);
	fprintf(stderr, "gvm: cannot run %s: %s\n", l->self, strerror(errno));
	_exit(125);
}

static void launch_kill_all(struct launch *l, int sig)
{
	for (unsigned r = 0; r < l->n; r++)
		if (l->inst[r].running)
			kill(l->inst[r].pid, sig);
}

static unsigned launch_running(const struct launch *l)
{
	unsigned n = 0;

	for (unsigned r = 0; r < l->n; r++)
		n += l->inst[r].running;
	return n;
}

static void launch_reap(struct launch *l)
{
	int ws;
	pid_t pid;

	while ((pid = waitpid(-1, &ws, WNOHANG)) > 0)
		for (unsigned r = 0; r < l->n; r++)
			if (l->inst[r].running && l->inst[r].pid == pid) {
				l->inst[r].running = false;
				l->inst[r].wstatus = ws;
				if (WIFSIGNALED(ws) && !l->signo)
					pr_err("rank %u (pid %d) was killed by signal %d (%s)", r,
					       (int)pid, WTERMSIG(ws), strsignal(WTERMSIG(ws)));
			}
}

/* "R phase": progress, one line per phase of the whole. */
static void launch_status_line(struct launch *l, const char *line)
{
	unsigned r;
	char phase[32];

	if (sscanf(line, "%u %31s", &r, phase) != 2 || r >= l->n)
		return;
	if (!strcmp(phase, "connected") && !l->inst[r].connected) {
		l->inst[r].connected = true;
		if (++l->connected == l->n && !l->reported_connected) {
			l->reported_connected = true;
			pr_info("%u instance%s connected and authenticated (%.1f s)", l->n,
				l->n == 1 ? "" : "s", launch_elapsed(l));
		}
	} else if (!strcmp(phase, "running") && r == 0 && !l->reported_running) {
		l->reported_running = true;
		pr_info("guest booting: every instance ready, clocks synchronised (%.1f s)",
			launch_elapsed(l));
	}
}

static void launch_read_status(struct launch *l, char *buf, size_t *used)
{
	ssize_t n = read(l->status_rd, buf + *used, 1023 - *used);
	char *nl;

	if (n <= 0)
		return;
	*used += n;
	buf[*used] = '\0';
	while ((nl = strchr(buf, '\n'))) {
		*nl = '\0';
		launch_status_line(l, buf);
		memmove(buf, nl + 1, *used - (nl + 1 - buf) + 1);
		*used -= nl + 1 - buf;
	}
	if (*used >= 1000)
		*used = 0; /* a line too long is nobody's status */
}

/* Wait for every instance, passing signals on; kill what does not end in time. */
static void launch_wait(struct launch *l, int sfd)
{
	char buf[1024];
	size_t used = 0;
	double deadline = -1;
	bool killed = false;

	while (launch_running(l)) {
		struct pollfd p[2] = {
			{ .fd = sfd, .events = POLLIN },
			{ .fd = l->status_rd, .events = POLLIN },
		};
		double now = launch_elapsed(l);
		int timeout = deadline < 0 ? -1 : (int)((deadline - now) * 1000) + 1;

		if (deadline >= 0 && now >= deadline && !killed) {
			for (unsigned r = 0; r < l->n; r++)
				if (l->inst[r].running)
					pr_err("rank %u (pid %d) did not stop in time: killed", r,
					       (int)l->inst[r].pid);
			launch_kill_all(l, SIGKILL);
			killed = true;
			timeout = -1;
		}
		if (poll(p, l->status_rd >= 0 ? 2 : 1, timeout) < 0 && errno != EINTR)
			die_perror("poll");
		if (p[1].revents & POLLIN)
			launch_read_status(l, buf, &used);
		else if (p[1].revents & (POLLHUP | POLLERR)) {
			close(l->status_rd);
			l->status_rd = -1;
		}
		if (p[0].revents & POLLIN) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) != sizeof(si))
				continue;
			if (si.ssi_signo == SIGCHLD) {
				unsigned before = launch_running(l);

				launch_reap(l);
				if (launch_running(l) < before && launch_running(l) && deadline < 0)
					deadline = launch_elapsed(l) + LAUNCH_GRACE_S;
			} else if (!l->signo) {
				/* the same signal: each instance reports and exits as for it */
				l->signo = (int)si.ssi_signo;
				launch_kill_all(l, l->signo);
				deadline = launch_elapsed(l) + LAUNCH_STOP_S;
			} else {
				/* asked twice: no more waiting */
				launch_kill_all(l, SIGKILL);
			}
		}
	}
}

static int launch_status(struct launch *l)
{
	int ws0 = l->inst[0].wstatus, status;

	if (WIFEXITED(ws0)) {
		status = WEXITSTATUS(ws0);
	} else {
		status = l->signo ? VM_STATUS_SIGNAL_BASE + l->signo : VM_STATUS_FAILED;
		if (!l->signo)
			pr_err("rank 0 ended without a status: the VM failed");
	}
	/* rank 0 saw the guest through, but another instance did not stop cleanly */
	for (unsigned r = 1; r < l->n && !status; r++) {
		int ws = l->inst[r].wstatus;

		if (!WIFEXITED(ws) || WEXITSTATUS(ws)) {
			status = WIFEXITED(ws) ? WEXITSTATUS(ws) : VM_STATUS_FAILED;
			pr_err("rank %u ended with %s %d", r, WIFEXITED(ws) ? "status" : "signal",
			       WIFEXITED(ws) ? WEXITSTATUS(ws) : WTERMSIG(ws));
		}
	}
	return status;
}

int launch_main(struct vm_options *o, int argc, char **argv, int console_fd)
{
	struct launch l = { .cmd = argv[0], .n = o->nodes, .status_rd = -1, .status_wr = -1,
			    .console_fd = console_fd };
	struct vm_topology *t = malloc(sizeof(*t));
	struct image *img = malloc(sizeof(*img));
	unsigned pus[TOPO_MAX_CPUS];
	char err[HOST_ERR_MAX > MESH_ERR_MAX ? HOST_ERR_MAX : MESH_ERR_MAX], sz[32], share[32];
	struct host *host;
	sigset_t sigs, old;
	int status = 1, sfd = -1, pfd[2];
	ssize_t len;
	size_t off = 0;
	pid_t self = getpid();

	clock_gettime(CLOCK_MONOTONIC, &l.start);
	l.inst = calloc(l.n, sizeof(*l.inst));
	if (!t || !img || !l.inst)
		die("out of memory");
	for (unsigned r = 0; r < l.n; r++)
		l.inst[r].listen_fd = -1;
	host = host_open(err);
	if (!host) {
		pr_err("%s: cannot read this host's topology: %s", l.cmd, err);
		goto out;
	}
	if ((status = launch_check(o, host, t, img, l.cmd))) {
		host_close(host);
		goto out;
	}
	status = 1;
	if (host_choose_pus(host, t->nr_cpus, t->nr_nodes, pus, err)) {
		pr_err("%s: cannot choose host CPUs for the vCPUs: %s", l.cmd, err);
		host_close(host);
		goto out;
	}
	if (launch_check_munge(getenv("GVM_MUNGE_SOCKET"), l.cmd)) {
		host_close(host);
		goto out;
	}
	host_close(host);
	len = readlink("/proc/self/exe", l.self, sizeof(l.self) - 1);
	if (len <= 0 || (size_t)len >= sizeof(l.self) - 1) {
		pr_err("%s: cannot find the gvm program itself: %s", l.cmd, strerror(errno));
		goto out;
	}
	l.self[len] = '\0';
	l.vm_id = launch_vm_id();
	l.nr_cpus = t->nr_cpus;
	l.ram_size = t->ram_size;

	/* Sockets bound here, once, and handed down: no port race between instances. */
	for (unsigned r = 0; r < l.n; r++) {
		struct hostport hp = { .host = "127.0.0.1", .port = 0 };
		unsigned per = t->nr_cpus / l.n;
		size_t used = 0;
		int port;

		l.inst[r].listen_fd = mesh_listen(&hp, err);
		if (l.inst[r].listen_fd < 0) {
			pr_err("%s: %s", l.cmd, err);
			goto out;
		}
		port = mesh_local_port(l.inst[r].listen_fd);
		off = appendf(l.peers, sizeof(l.peers), off, "%s127.0.0.1:%d", r ? "," : "", port);
		for (unsigned k = 0; k < per; k++)
			used = appendf(l.inst[r].cpus, sizeof(l.inst[r].cpus), used, "%s%u",
				       k ? "," : "", pus[r * per + k]);
		if (off >= sizeof(l.peers) || used >= sizeof(l.inst[r].cpus)) {
			pr_err("%s: %u instances of %u vCPUs make lists longer than gvm holds",
			       l.cmd, l.n, per);
			goto out;
		}
	}
	if (pipe2(pfd, O_CLOEXEC)) {
		pr_err("%s: pipe: %s", l.cmd, strerror(errno));
		goto out;
	}
	l.status_rd = pfd[0];
	l.status_wr = pfd[1];

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &sigs, &old);
	sfd = signalfd(-1, &sigs, SFD_CLOEXEC);
	if (sfd < 0) {
		pr_err("%s: signalfd: %s", l.cmd, strerror(errno));
		goto out_sigs;
	}

	pr_info("starting %u instance%s on this machine (VM %016" PRIx64 "): %u vCPU%s, %s of "
		"RAM, %s on each", l.n, l.n == 1 ? "" : "s", l.vm_id, t->nr_cpus,
		t->nr_cpus == 1 ? "" : "s",
		format_size(t->ram_size, sz, sizeof(sz)),
		format_size(t->ram_size / l.n, share, sizeof(share)));
	for (unsigned r = 0; r < l.n; r++) {
		char **a = launch_argv(&l, r, argc, argv);
		pid_t pid = fork();

		if (pid < 0) {
			pr_err("%s: fork: %s", l.cmd, strerror(errno));
			free(a);
			launch_kill_all(&l, SIGKILL);
			break;
		}
		if (pid == 0)
			launch_child(&l, r, a, self);
		free(a);
		l.inst[r].pid = pid;
		l.inst[r].running = true;
	}
	/* the instances have them now */
	for (unsigned r = 0; r < l.n; r++) {
		close(l.inst[r].listen_fd);
		l.inst[r].listen_fd = -1;
	}
	close(l.status_wr);
	l.status_wr = -1;
	launch_wait(&l, sfd);
	status = l.inst[0].pid ? launch_status(&l) : 1;
	if (l.reported_running)
		pr_info("guest exited with status %d (%.1f s)", status, launch_elapsed(&l));
	else
		pr_info("the instances stopped before the guest started, status %d (%.1f s)",
			status, launch_elapsed(&l));
out_sigs:
	if (sfd >= 0)
		close(sfd);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
out:
	for (unsigned r = 0; r < l.n; r++)
		if (l.inst[r].listen_fd >= 0)
			close(l.inst[r].listen_fd);
	if (l.status_rd >= 0)
		close(l.status_rd);
	if (l.status_wr >= 0)
		close(l.status_wr);
	free(l.inst);
	free(img);
	free(t);
	options_free(o);
	return status;
}
