/*
 * netrelay: a simulated cluster network between network namespaces, for
 * tests/net.  This kernel has no netem qdisc, so delay, jitter and loss come
 * from here: one TUN device in each namespace, and this process moving IPv4
 * packets between them.
 *
 *   netrelay [--delay USEC] [--jitter USEC] [--loss PERCENT] [--seed N]
 *            [--reorder] [--queue PACKETS] [--ifname NAME] [--control FIFO]
 *            NETNS=ADDR/PREFIX ...
 *
 * For each NETNS (a namespace file such as /proc/PID/ns/net; host i is the
 * i-th, from 0) it enters the namespace, creates TUN device NAME (default
 * gvtun0) there, gives it ADDR/PREFIX and sets it up, and comes back; it
 * opens no socket of its own outside those namespaces.  A packet read from
 * host i's device whose destination is host j's address is written to host
 * j's device after delay + a uniform random [0, jitter] microseconds, unless
 * it is lost (each packet with probability PERCENT/100), the link is cut, or
 * the link's queue holds PACKETS already (default 4096).  Packets of one
 * direction of a link keep their order unless --reorder (then each gets its
 * own delay, as netem does).  Anything else (IPv6, an unknown destination)
 * is dropped.  The random generator is seeded with --seed (default: from
 * the clock), printed at start.
 *
 * It prints "netrelay: ready" on standard output once every device is up.
 * Commands, one per line, on the FIFO of --control (each acknowledged on
 * standard output with "netrelay: ok: COMMAND"):
 *   cut A B | heal A B     drop everything between hosts A and B, or not
 *   cut A | heal A         the same for every link of host A
 *   drop A B | pass A B    drop what goes from A to B only, or not
 *   stall A | unstall A    A looks like a peer that stopped reading: every
 *                          TCP segment it sends advertises a zero window
 *   tamper A B             an attacker on the wire: the next TCP segment
 *                          with data from A to B has its last byte changed
 *                          (checksum fixed, so TCP takes it)
 *   loss PERCENT           change the loss rate
 *   stats                  print the counters
 * SIGTERM or SIGINT ends it: it frees every queued packet, closes its
 * devices (which vanish with them) and prints the counters on standard
 * error.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <arpa/inet.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_HOSTS 16
#define PKT_MAX 65536

struct pkt {
	struct pkt *next;
	uint64_t due;   /* CLOCK_MONOTONIC, ns */
	size_t len;
	unsigned char data[];
};

struct link {
	struct pkt *head, *tail;
	unsigned queued;
	int cut;        /* this direction drops everything */
	int tamper;     /* change the next data segment */
	uint64_t fwd, fwd_bytes, lost, dropped_cut, overflow, write_err;
};

struct host {
	int fd;
	uint32_t addr;  /* network order */
	int stalled;
};

static struct host hosts[MAX_HOSTS];
static struct link links[MAX_HOSTS][MAX_HOSTS];
static int nhosts;
static uint64_t delay_ns, jitter_ns;
static double loss_p;
static int reorder;
static unsigned queue_max = 4096;
static uint64_t rng_state;
static uint64_t unroutable, stalled_segs, tampered_segs;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: reproducible from --seed */
static uint64_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

static double rng_unit(void)
{
	return (double)(rng() >> 11) / (double)(1ull << 53);
}

static int host_by_addr(uint32_t addr)
{
	int i;

	for (i = 0; i < nhosts; i++)
		if (hosts[i].addr == addr)
			return i;
	return -1;
}

/* Create and configure the TUN device in namespace file ns; 0 or -1. */
static int open_tun(int home_ns, const char *ns, const char *ifname, struct host *h,
		    int prefix)
{
	struct ifreq ifr;
	struct sockaddr_in *sin;
	int nsfd, fd = -1, s = -1, ret = -1;

	nsfd = open(ns, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0) {
		fprintf(stderr, "netrelay: %s: %s\n", ns, strerror(errno));
		return -1;
	}
	if (setns(nsfd, CLONE_NEWNET) < 0) {
		fprintf(stderr, "netrelay: setns %s: %s\n", ns, strerror(errno));
		close(nsfd);
		return -1;
	}
	close(nsfd);
	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "netrelay: /dev/net/tun: %s\n", strerror(errno));
		goto out;
	}
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		fprintf(stderr, "netrelay: TUNSETIFF %s in %s: %s\n", ifname, ns, strerror(errno));
		goto out;
	}
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0) {
		fprintf(stderr, "netrelay: socket: %s\n", strerror(errno));
		goto out;
	}
	sin = (struct sockaddr_in *)&ifr.ifr_addr;
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = h->addr;
	if (ioctl(s, SIOCSIFADDR, &ifr) < 0) {
		fprintf(stderr, "netrelay: SIOCSIFADDR in %s: %s\n", ns, strerror(errno));
		goto out;
	}
	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(prefix ? ~0u << (32 - prefix) : 0);
	if (ioctl(s, SIOCSIFNETMASK, &ifr) < 0) {
		fprintf(stderr, "netrelay: SIOCSIFNETMASK in %s: %s\n", ns, strerror(errno));
		goto out;
	}
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) {
		fprintf(stderr, "netrelay: SIOCGIFFLAGS in %s: %s\n", ns, strerror(errno));
		goto out;
	}
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) {
		fprintf(stderr, "netrelay: SIOCSIFFLAGS in %s: %s\n", ns, strerror(errno));
		goto out;
	}
	h->fd = fd;
	fd = -1;
	ret = 0;
out:
	if (s >= 0)
		close(s);
	if (fd >= 0)
		close(fd);
	if (setns(home_ns, CLONE_NEWNET) < 0) {
		fprintf(stderr, "netrelay: setns back: %s\n", strerror(errno));
		ret = -1;
	}
	return ret;
}

static void print_stats(FILE *f)
{
	uint64_t fwd = 0, bytes = 0, lost = 0, cut = 0, over = 0, werr = 0, all;
	int i, j;

	for (i = 0; i < nhosts; i++)
		for (j = 0; j < nhosts; j++) {
			struct link *l = &links[i][j];

			if (i == j)
				continue;
			fwd += l->fwd;
			bytes += l->fwd_bytes;
			lost += l->lost;
			cut += l->dropped_cut;
			over += l->overflow;
			werr += l->write_err;
			if (l->fwd || l->lost || l->dropped_cut || l->overflow)
				fprintf(f, "netrelay: link %d->%d: forwarded %" PRIu64 " (%" PRIu64
					   " bytes), lost %" PRIu64 ", cut %" PRIu64
					   ", overflow %" PRIu64 ", write errors %" PRIu64 "\n",
					i, j, l->fwd, l->fwd_bytes, l->lost, l->dropped_cut, l->overflow,
					l->write_err);
		}
	all = fwd + lost + over + werr;
	fprintf(f, "netrelay: total: forwarded %" PRIu64 " packets (%" PRIu64 " bytes), lost %" PRIu64
		   " (%.3f%%), cut %" PRIu64 ", overflow %" PRIu64 ", write errors %" PRIu64
		   ", unroutable %" PRIu64 ", zero-window segments %" PRIu64
		   ", tampered segments %" PRIu64 "\n",
		fwd, bytes, lost, all ? 100.0 * (double)lost / (double)all : 0.0, cut, over, werr,
		unroutable, stalled_segs, tampered_segs);
	fflush(f);
}

/* 16-bit one's complement addition */
static uint16_t csum_add(uint16_t a, uint16_t b)
{
	uint32_t s = (uint32_t)a + b;

	return (uint16_t)((s & 0xffff) + (s >> 16));
}

/* Set a TCP segment's window to 0 (RFC 1624 checksum update). */
static void zero_window(unsigned char *p, size_t len)
{
	size_t ihl = (size_t)(p[0] & 0x0f) * 4;
	unsigned char *tcp = p + ihl;
	uint16_t win, sum;

	if (p[9] != 6 || len < ihl + 20 || (((p[6] & 0x1f) << 8) | p[7]) != 0)
		return;
	if (tcp[13] & 0x02) /* SYN: leave the handshake alone */
		return;
	win = (uint16_t)(tcp[14] << 8 | tcp[15]);
	if (!win)
		return;
	sum = (uint16_t)(tcp[16] << 8 | tcp[17]);
	/* HC' = ~(~HC + ~m + m'), m' = 0 */
	sum = (uint16_t)~csum_add((uint16_t)~sum, (uint16_t)~win);
	tcp[14] = tcp[15] = 0;
	tcp[16] = (unsigned char)(sum >> 8);
	tcp[17] = (unsigned char)sum;
	stalled_segs++;
}

/* The checksummed 16-bit word of a segment of n bytes holding byte at (odd tail: zero-padded). */
static uint16_t word_at(const unsigned char *tcp, size_t at, size_t n)
{
	at &= ~(size_t)1;
	return (uint16_t)(tcp[at] << 8 | (at + 1 < n ? tcp[at + 1] : 0));
}

/* Flip bits of a TCP segment's last data byte, checksum updated; 1 when it had data. */
static int tamper_segment(unsigned char *p, size_t len)
{
	size_t ihl = (size_t)(p[0] & 0x0f) * 4, tot = (size_t)(p[2] << 8 | p[3]), n;
	unsigned char *tcp = p + ihl;
	uint16_t old, sum;

	if (p[9] != 6 || len < ihl + 20 || tot > len || (((p[6] & 0x1f) << 8) | p[7]) != 0)
		return 0;
	n = tot - ihl;
	if ((size_t)(tcp[12] >> 4) * 4 >= n)
		return 0;
	old = word_at(tcp, n - 1, n);
	tcp[n - 1] ^= 0x5a;
	/* HC' = ~(~HC + ~m + m') (RFC 1624) */
	sum = (uint16_t)(tcp[16] << 8 | tcp[17]);
	sum = (uint16_t)~csum_add(csum_add((uint16_t)~sum, (uint16_t)~old), word_at(tcp, n - 1, n));
	tcp[16] = (unsigned char)(sum >> 8);
	tcp[17] = (unsigned char)sum;
	tampered_segs++;
	return 1;
}

static void enqueue(struct link *l, struct pkt *p)
{
	struct pkt **pp;

	if (!reorder || !l->head) {
		if (l->tail && p->due < l->tail->due)
			p->due = l->tail->due;
		p->next = NULL;
		if (l->tail)
			l->tail->next = p;
		else
			l->head = p;
		l->tail = p;
	} else {
		for (pp = &l->head; *pp && (*pp)->due <= p->due; pp = &(*pp)->next)
			;
		p->next = *pp;
		*pp = p;
		if (!p->next)
			l->tail = p;
	}
	l->queued++;
}

/* Read what host i's device has, up to a batch; queue or drop each packet. */
static void read_host(int i, unsigned char *buf)
{
	int n;

	for (n = 0; n < 64; n++) {
		ssize_t len = read(hosts[i].fd, buf, PKT_MAX);
		struct link *l;
		struct pkt *p;
		uint32_t dst;
		uint64_t d;
		int j;

		if (len < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != EIO)
				fprintf(stderr, "netrelay: read host %d: %s\n", i, strerror(errno));
			return;
		}
		if (len < 20 || (buf[0] >> 4) != 4) {
			unroutable++;
			continue;
		}
		memcpy(&dst, buf + 16, 4);
		j = host_by_addr(dst);
		if (j < 0 || j == i) {
			unroutable++;
			continue;
		}
		l = &links[i][j];
		if (l->cut) {
			l->dropped_cut++;
			continue;
		}
		if (loss_p > 0 && rng_unit() < loss_p) {
			l->lost++;
			continue;
		}
		if (l->queued >= queue_max) {
			l->overflow++;
			continue;
		}
		p = malloc(sizeof(*p) + (size_t)len);
		if (!p) {
			l->overflow++;
			continue;
		}
		memcpy(p->data, buf, (size_t)len);
		p->len = (size_t)len;
		if (hosts[i].stalled)
			zero_window(p->data, p->len);
		if (l->tamper && tamper_segment(p->data, p->len))
			l->tamper = 0;
		d = delay_ns;
		if (jitter_ns)
			d += rng() % (jitter_ns + 1);
		p->due = now_ns() + d;
		enqueue(l, p);
	}
}

/* Write every due packet; return the earliest due time left (0: none). */
static uint64_t deliver(void)
{
	uint64_t now = now_ns(), next = 0;
	int i, j;

	for (i = 0; i < nhosts; i++)
		for (j = 0; j < nhosts; j++) {
			struct link *l = &links[i][j];
			struct pkt *p;

			while ((p = l->head) && p->due <= now) {
				l->head = p->next;
				if (!l->head)
					l->tail = NULL;
				l->queued--;
				if (l->cut) {
					l->dropped_cut++;
				} else if (write(hosts[j].fd, p->data, p->len) != (ssize_t)p->len) {
					l->write_err++;
				} else {
					l->fwd++;
					l->fwd_bytes += p->len;
				}
				free(p);
			}
			if (p && (!next || p->due < next))
				next = p->due;
		}
	return next;
}

static void free_queues(void)
{
	int i, j;

	for (i = 0; i < MAX_HOSTS; i++)
		for (j = 0; j < MAX_HOSTS; j++) {
			struct pkt *p, *q;

			for (p = links[i][j].head; p; p = q) {
				q = p->next;
				free(p);
			}
			links[i][j].head = links[i][j].tail = NULL;
			links[i][j].queued = 0;
		}
}

static int host_arg(const char *s, int *h)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (!*s || *end || v < 0 || v >= nhosts)
		return -1;
	*h = (int)v;
	return 0;
}

/* One control line; 0 when understood. */
static int command(char *line)
{
	char *w[4] = { NULL, NULL, NULL, NULL }, *save = NULL, *t;
	int n = 0, a = -1, b = -1, on, j;

	for (t = strtok_r(line, " \t\r", &save); t && n < 4; t = strtok_r(NULL, " \t\r", &save))
		w[n++] = t;
	if (!n)
		return 0;
	if (n >= 2 && host_arg(w[1], &a) < 0 && strcmp(w[0], "loss"))
		return -1;
	if (n >= 3 && host_arg(w[2], &b) < 0)
		return -1;
	if (!strcmp(w[0], "stats") && n == 1) {
		print_stats(stdout);
	} else if (!strcmp(w[0], "loss") && n == 2) {
		char *end;
		double v = strtod(w[1], &end);

		if (*end || v < 0 || v > 100)
			return -1;
		loss_p = v / 100;
	} else if ((!strcmp(w[0], "cut") || !strcmp(w[0], "heal")) && (n == 2 || n == 3)) {
		on = !strcmp(w[0], "cut");
		for (j = 0; j < nhosts; j++) {
			if (j == a || (n == 3 && j != b))
				continue;
			links[a][j].cut = links[j][a].cut = on;
		}
	} else if ((!strcmp(w[0], "drop") || !strcmp(w[0], "pass")) && n == 3 && a != b) {
		links[a][b].cut = !strcmp(w[0], "drop");
	} else if (!strcmp(w[0], "tamper") && n == 3 && a != b) {
		links[a][b].tamper = 1;
	} else if ((!strcmp(w[0], "stall") || !strcmp(w[0], "unstall")) && n == 2) {
		hosts[a].stalled = !strcmp(w[0], "stall");
	} else {
		return -1;
	}
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: netrelay [--delay USEC] [--jitter USEC] [--loss PERCENT] "
			"[--seed N] [--reorder] [--queue PACKETS] [--ifname NAME] "
			"[--control FIFO] NETNS=ADDR/PREFIX...\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "delay", required_argument, NULL, 'd' },
		{ "jitter", required_argument, NULL, 'j' },
		{ "loss", required_argument, NULL, 'l' },
		{ "seed", required_argument, NULL, 's' },
		{ "reorder", no_argument, NULL, 'r' },
		{ "queue", required_argument, NULL, 'q' },
		{ "ifname", required_argument, NULL, 'i' },
		{ "control", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *ifname = "gvtun0", *control = NULL;
	struct pollfd pfd[MAX_HOSTS + 2];
	char ctl[1024];
	size_t ctl_len = 0;
	unsigned char *buf = NULL;
	uint64_t seed = now_ns() ^ (uint64_t)getpid() << 32;
	int home_ns = -1, ctl_fd = -1, sig_fd = -1, ret = 1, c, i, running = 1;
	int prefixes[MAX_HOSTS];
	sigset_t mask;
	char *end;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			delay_ns = strtoull(optarg, &end, 10) * 1000;
			if (*end || !*optarg)
				goto bad;
			break;
		case 'j':
			jitter_ns = strtoull(optarg, &end, 10) * 1000;
			if (*end || !*optarg)
				goto bad;
			break;
		case 'l':
			loss_p = strtod(optarg, &end) / 100;
			if (*end || !*optarg || loss_p < 0 || loss_p > 1)
				goto bad;
			break;
		case 's':
			seed = strtoull(optarg, &end, 0);
			if (*end || !*optarg)
				goto bad;
			break;
		case 'r':
			reorder = 1;
			break;
		case 'q':
			queue_max = (unsigned)strtoul(optarg, &end, 10);
			if (*end || !queue_max)
				goto bad;
			break;
		case 'i':
			ifname = optarg;
			break;
		case 'c':
			control = optarg;
			break;
		case 'h':
			usage();
			return 0;
		default:
			goto bad;
		}
	}
	nhosts = argc - optind;
	if (nhosts < 2 || nhosts > MAX_HOSTS) {
		fprintf(stderr, "netrelay: 2 to %d namespaces\n", MAX_HOSTS);
		goto bad;
	}
	rng_state = seed ? seed : 1;
	for (i = 0; i < MAX_HOSTS; i++)
		hosts[i].fd = -1;
	for (i = 0; i < nhosts; i++) {
		char *arg = argv[optind + i], *eq = strrchr(arg, '='), *slash;
		struct in_addr a;
		long prefix = 24;

		if (!eq || eq == arg)
			goto bad;
		*eq = '\0'; /* argv[optind + i]: the namespace file */
		slash = strchr(eq + 1, '/');
		if (slash) {
			prefix = strtol(slash + 1, &end, 10);
			if (*end || prefix < 1 || prefix > 32)
				goto bad;
			*slash = '\0';
		}
		if (inet_pton(AF_INET, eq + 1, &a) != 1)
			goto bad;
		hosts[i].addr = a.s_addr;
		prefixes[i] = (int)prefix;
		pfd[i].events = POLLIN;
	}
	buf = malloc(PKT_MAX);
	if (!buf)
		goto out;
	prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sig_fd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	home_ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (sig_fd < 0 || home_ns < 0) {
		fprintf(stderr, "netrelay: signalfd or /proc/self/ns/net: %s\n", strerror(errno));
		goto out;
	}
	for (i = 0; i < nhosts; i++) {
		if (open_tun(home_ns, argv[optind + i], ifname, &hosts[i], prefixes[i]) < 0)
			goto out;
		pfd[i].fd = hosts[i].fd;
	}
	if (control) {
		ctl_fd = open(control, O_RDWR | O_NONBLOCK | O_CLOEXEC);
		if (ctl_fd < 0) {
			fprintf(stderr, "netrelay: %s: %s\n", control, strerror(errno));
			goto out;
		}
	}
	pfd[nhosts].fd = sig_fd;
	pfd[nhosts].events = POLLIN;
	pfd[nhosts + 1].fd = ctl_fd;
	pfd[nhosts + 1].events = POLLIN;
	printf("netrelay: %d hosts, delay %" PRIu64 " us, jitter %" PRIu64
	       " us, loss %.4f%%, seed %" PRIu64 "%s\n",
	       nhosts, delay_ns / 1000, jitter_ns / 1000, loss_p * 100, seed,
	       reorder ? ", reordering" : "");
	printf("netrelay: ready\n");
	fflush(stdout);

	while (running) {
		uint64_t next = deliver(), now;
		struct timespec ts, *tsp = NULL;

		if (next) {
			now = now_ns();
			next = next > now ? next - now : 0;
			ts.tv_sec = (time_t)(next / 1000000000u);
			ts.tv_nsec = (long)(next % 1000000000u);
			tsp = &ts;
		}
		if (ppoll(pfd, (nfds_t)nhosts + 2, tsp, NULL) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "netrelay: ppoll: %s\n", strerror(errno));
			goto out;
		}
		for (i = 0; i < nhosts; i++)
			if (pfd[i].revents & POLLIN)
				read_host(i, buf);
		if (pfd[nhosts].revents & POLLIN)
			running = 0;
		if (ctl_fd >= 0 && (pfd[nhosts + 1].revents & POLLIN)) {
			ssize_t r = read(ctl_fd, ctl + ctl_len, sizeof(ctl) - 1 - ctl_len);
			char *nl;

			if (r > 0)
				ctl_len += (size_t)r;
			while ((nl = memchr(ctl, '\n', ctl_len))) {
				char line[sizeof(ctl)], copy[sizeof(ctl)];
				size_t ll = (size_t)(nl - ctl);

				memcpy(line, ctl, ll);
				line[ll] = '\0';
				memcpy(copy, line, ll + 1);
				memmove(ctl, nl + 1, ctl_len - ll - 1);
				ctl_len -= ll + 1;
				if (command(line) == 0)
					printf("netrelay: ok: %s\n", copy);
				else
					printf("netrelay: bad command: %s\n", copy);
				fflush(stdout);
			}
			if (ctl_len == sizeof(ctl) - 1)
				ctl_len = 0; /* a line too long: forget it */
		}
	}
	ret = 0;
out:
	print_stats(stderr);
	free_queues();
	free(buf);
	for (i = 0; i < MAX_HOSTS; i++)
		if (hosts[i].fd >= 0)
			close(hosts[i].fd);
	if (ctl_fd >= 0)
		close(ctl_fd);
	if (sig_fd >= 0)
		close(sig_fd);
	if (home_ns >= 0)
		close(home_ns);
	return ret;
bad:
	usage();
	return 2;
}
