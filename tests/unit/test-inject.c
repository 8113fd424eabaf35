/*
 * Resource and system-call failures, injected into the real library code:
 * this program is linked with -Wl,--wrap for the calls below
 * (tests/module.mk), so every call the libraries make to them comes here
 * first, and inject() makes the Nth call from now fail the way the system
 * would.  Each case checks what the failing branch promises: the error
 * names the cause, nothing is half-made (no descriptor left open, and no
 * memory: the sanitizer build's leak check), what was started is stopped.
 *
 * Calls are counted in the test's own thread only, and in the threads it
 * starts while an injection says so (inherit), so that the count of a
 * sweep ("fail the 1st, the 2nd, ... calloc of dsm_create") does not
 * depend on what other threads happen to do meanwhile.
 */
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <munge.h>
#include <numa.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#if HAVE_LIBFABRIC
#include <rdma/fabric.h>
#include <rdma/fi_cm.h>
#include <rdma/fi_domain.h>
#include <rdma/fi_endpoint.h>
#include <rdma/fi_errno.h>
#endif

#include "common/auth.h"
#include "common/log.h"
#include "common/mesh.h"
#include "common/seal.h"
#include "common/wire.h"
#include "dsm/dsm.h"
#include "dsm/internal.h"
#include "vmm/cluster.h"
#include "tests/lib/check.h"
#include "tests/lib/mesh-pair.h"

/* ---- the injection ---- */

enum inj_fn {
	INJ_NONE, INJ_CALLOC, INJ_MALLOC, INJ_ALIGNED_ALLOC, INJ_MMAP, INJ_PTHREAD_CREATE,
	INJ_EVENTFD, INJ_SOCKET, INJ_GETRANDOM, INJ_MUNGE_CTX, INJ_IOCTL, INJ_EPOLL_CREATE,
	INJ_EPOLL_CTL, INJ_EPOLL_WAIT, INJ_READ_UFFD, INJ_MADVISE, INJ_MBIND, INJ_FCNTL,
	INJ_EVP_CTX_NEW, INJ_EVP_DIGEST, INJ_EVP_ENCRYPT_INIT, INJ_EVP_CIPHER_UPDATE,
	INJ_FI, /* a libfabric call, inj.what the one (enum inj_fi) */
};

static struct {
	_Atomic int fn;            /* what fails (INJ_NONE: nothing) */
	atomic_int countdown;      /* the call that takes it to 0 fails */
	atomic_int fired;          /* failures injected since inject() */
	unsigned long what;        /* INJ_IOCTL: the request; INJ_MADVISE: the advice; INJ_FI */
	int err;                   /* errno (pthread_create: its return value) */
	bool every;                /* fail every call from the Nth on, not just the Nth */
	bool inherit;              /* count in threads started meanwhile too */
} inj;

static __thread bool counted; /* calls of this thread count */
static long fail_syscall;     /* this system call fails (EPERM), besides the injection */

static void inject(enum inj_fn fn, int nth, int err, unsigned long what)
{
	inj.what = what;
	inj.err = err;
	inj.every = false;
	inj.inherit = false;
	atomic_store(&inj.fired, 0);
	atomic_store(&inj.countdown, nth);
	atomic_store(&inj.fn, fn);
}

/* Stop injecting; how many calls failed. */
static int inject_end(void)
{
	atomic_store(&inj.fn, INJ_NONE);
	return atomic_load(&inj.fired);
}

static bool inj_fail(enum inj_fn fn)
{
	int left;

	if (!counted || atomic_load(&inj.fn) != (int)fn)
		return false;
	left = atomic_fetch_sub(&inj.countdown, 1) - 1; /* calls to go before the Nth */
	if (left > 0 || (left < 0 && !inj.every))
		return false;
	atomic_fetch_add(&inj.fired, 1);
	return true;
}

void *__real_calloc(size_t n, size_t size);
void *__real_malloc(size_t size);
void *__real_aligned_alloc(size_t align, size_t size);
void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __real_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *),
			  void *arg);
int __real_eventfd(unsigned init, int flags);
int __real_socket(int domain, int type, int proto);
ssize_t __real_getrandom(void *buf, size_t len, unsigned flags);
munge_ctx_t __real_munge_ctx_create(void);
int __real_ioctl(int fd, unsigned long req, ...);
long __real_syscall(long nr, ...);
int __real_epoll_create1(int flags);
int __real_epoll_ctl(int ep, int op, int fd, struct epoll_event *ev);
int __real_epoll_wait(int ep, struct epoll_event *ev, int n, int timeout);
ssize_t __real_read(int fd, void *buf, size_t n);
int __real_madvise(void *addr, size_t len, int advice);
long __real_mbind(void *addr, unsigned long len, int mode, const unsigned long *mask,
		  unsigned long maxnode, unsigned flags);
int __real_fcntl(int fd, int cmd, ...);
EVP_CIPHER_CTX *__real_EVP_CIPHER_CTX_new(void);
int __real_EVP_Digest(const void *data, size_t n, unsigned char *md, unsigned int *len,
		      const EVP_MD *type, ENGINE *impl);
int __real_EVP_EncryptInit_ex(EVP_CIPHER_CTX *ctx, const EVP_CIPHER *type, ENGINE *impl,
			      const unsigned char *key, const unsigned char *iv);
int __real_EVP_CipherUpdate(EVP_CIPHER_CTX *ctx, unsigned char *out, int *outl,
			    const unsigned char *in, int inl);

void *__wrap_calloc(size_t n, size_t size);
void *__wrap_malloc(size_t size);
void *__wrap_aligned_alloc(size_t align, size_t size);
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *),
			  void *arg);
int __wrap_eventfd(unsigned init, int flags);
int __wrap_socket(int domain, int type, int proto);
ssize_t __wrap_getrandom(void *buf, size_t len, unsigned flags);
munge_ctx_t __wrap_munge_ctx_create(void);
int __wrap_ioctl(int fd, unsigned long req, ...);
long __wrap_syscall(long nr, ...);
int __wrap_epoll_create1(int flags);
int __wrap_epoll_ctl(int ep, int op, int fd, struct epoll_event *ev);
int __wrap_epoll_wait(int ep, struct epoll_event *ev, int n, int timeout);
ssize_t __wrap_read(int fd, void *buf, size_t n);
int __wrap_madvise(void *addr, size_t len, int advice);
long __wrap_mbind(void *addr, unsigned long len, int mode, const unsigned long *mask,
		  unsigned long maxnode, unsigned flags);
int __wrap_fcntl(int fd, int cmd, ...);
EVP_CIPHER_CTX *__wrap_EVP_CIPHER_CTX_new(void);
int __wrap_EVP_Digest(const void *data, size_t n, unsigned char *md, unsigned int *len,
		      const EVP_MD *type, ENGINE *impl);
int __wrap_EVP_EncryptInit_ex(EVP_CIPHER_CTX *ctx, const EVP_CIPHER *type, ENGINE *impl,
			      const unsigned char *key, const unsigned char *iv);
int __wrap_EVP_CipherUpdate(EVP_CIPHER_CTX *ctx, unsigned char *out, int *outl,
			    const unsigned char *in, int inl);

/* libcrypto says no the way it does: NULL, or 0 for failure. */
EVP_CIPHER_CTX *__wrap_EVP_CIPHER_CTX_new(void)
{
	return inj_fail(INJ_EVP_CTX_NEW) ? NULL : __real_EVP_CIPHER_CTX_new();
}

int __wrap_EVP_Digest(const void *data, size_t n, unsigned char *md, unsigned int *len,
		      const EVP_MD *type, ENGINE *impl)
{
	return inj_fail(INJ_EVP_DIGEST) ? 0 : __real_EVP_Digest(data, n, md, len, type, impl);
}

int __wrap_EVP_EncryptInit_ex(EVP_CIPHER_CTX *ctx, const EVP_CIPHER *type, ENGINE *impl,
			      const unsigned char *key, const unsigned char *iv)
{
	return inj_fail(INJ_EVP_ENCRYPT_INIT) ? 0 : __real_EVP_EncryptInit_ex(ctx, type, impl, key, iv);
}

int __wrap_EVP_CipherUpdate(EVP_CIPHER_CTX *ctx, unsigned char *out, int *outl,
			    const unsigned char *in, int inl)
{
	return inj_fail(INJ_EVP_CIPHER_UPDATE) ? 0 : __real_EVP_CipherUpdate(ctx, out, outl, in, inl);
}

#if HAVE_LIBFABRIC
/*
 * libfabric: fi_getinfo, fi_dupinfo and fi_fabric are functions, wrapped
 * like the others; every other call is an inline call through the
 * provider's tables of functions, which --wrap cannot reach.  So each
 * object the code under test opens gets a copy of its provider's table in
 * which the calls to fail are ours, each failing when injected and
 * otherwise passing on to the provider's own.  One provider per run (the
 * copies are of the first tables seen; another's objects go unhooked).
 */
enum inj_fi {
	HOOK_GETINFO, HOOK_DUPINFO, HOOK_FABRIC, HOOK_DOMAIN, HOOK_AV_OPEN, HOOK_CQ_OPEN, HOOK_ENDPOINT,
	HOOK_EP_BIND, HOOK_EP_ENABLE, HOOK_RECV, HOOK_GETNAME, HOOK_MR_REG, HOOK_MR_BIND, HOOK_MR_ENABLE,
};

int __real_fi_getinfo(uint32_t version, const char *node, const char *service, uint64_t flags,
		      const struct fi_info *hints, struct fi_info **info);
struct fi_info *__real_fi_dupinfo(const struct fi_info *info);
int __real_fi_fabric(struct fi_fabric_attr *attr, struct fid_fabric **fabric, void *context);
int __wrap_fi_getinfo(uint32_t version, const char *node, const char *service, uint64_t flags,
		      const struct fi_info *hints, struct fi_info **info);
struct fi_info *__wrap_fi_dupinfo(const struct fi_info *info);
int __wrap_fi_fabric(struct fi_fabric_attr *attr, struct fid_fabric **fabric, void *context);

static struct {
	struct fi_ops_fabric fabric;
	struct fi_ops_domain domain;
	struct fi_ops_mr mr;
	struct fi_ops ep, mr_fid;
	struct fi_ops_cm cm;
	struct fi_ops_msg msg;
	/* the provider's own */
	const struct fi_ops_fabric *fabric_real;
	const struct fi_ops_domain *domain_real;
	const struct fi_ops_mr *mr_real;
	const struct fi_ops *ep_real, *mr_fid_real;
	const struct fi_ops_cm *cm_real;
	const struct fi_ops_msg *msg_real;
} fi_hook;

static bool fi_fail(enum inj_fi call)
{
	return inj.what == call && inj_fail(INJ_FI);
}

/* The object's table becomes our copy of it, made with make() the first time. */
#define FI_HOOK(table, name, make)                                              \
	do {                                                                    \
		if (!fi_hook.name##_real) {                                     \
			fi_hook.name##_real = (table);                          \
			fi_hook.name = *(table);                                \
			make;                                                   \
		}                                                               \
		if ((table) == fi_hook.name##_real)                             \
			(table) = &fi_hook.name;                                \
	} while (0)

static int fi_hook_bind(struct fid *fid, struct fid *bfid, uint64_t flags)
{
	bool ep = fid->fclass == FI_CLASS_EP;

	if (fi_fail(ep ? HOOK_EP_BIND : HOOK_MR_BIND))
		return -(int)inj.err;
	return (ep ? fi_hook.ep_real : fi_hook.mr_fid_real)->bind(fid, bfid, flags);
}

static int fi_hook_control(struct fid *fid, int command, void *arg)
{
	bool ep = fid->fclass == FI_CLASS_EP;

	if (command == FI_ENABLE && fi_fail(ep ? HOOK_EP_ENABLE : HOOK_MR_ENABLE))
		return -(int)inj.err;
	return (ep ? fi_hook.ep_real : fi_hook.mr_fid_real)->control(fid, command, arg);
}

static ssize_t fi_hook_recv(struct fid_ep *ep, void *buf, size_t len, void *desc, fi_addr_t src,
			    void *context)
{
	if (fi_fail(HOOK_RECV))
		return -(ssize_t)inj.err;
	return fi_hook.msg_real->recv(ep, buf, len, desc, src, context);
}

static int fi_hook_getname(fid_t fid, void *addr, size_t *len)
{
	if (fi_fail(HOOK_GETNAME))
		return -(int)inj.err;
	return fi_hook.cm_real->getname(fid, addr, len);
}

static int fi_hook_mr_reg(struct fid *fid, const void *buf, size_t len, uint64_t access,
			  uint64_t offset, uint64_t key, uint64_t flags, struct fid_mr **mr,
			  void *context)
{
	int rc;

	if (fi_fail(HOOK_MR_REG))
		return -(int)inj.err;
	rc = fi_hook.mr_real->reg(fid, buf, len, access, offset, key, flags, mr, context);
	if (!rc)
		FI_HOOK((*mr)->fid.ops, mr_fid, (fi_hook.mr_fid.bind = fi_hook_bind,
						 fi_hook.mr_fid.control = fi_hook_control));
	return rc;
}

static int fi_hook_endpoint(struct fid_domain *domain, struct fi_info *info, struct fid_ep **ep,
			    void *context)
{
	int rc;

	if (fi_fail(HOOK_ENDPOINT))
		return -(int)inj.err;
	rc = fi_hook.domain_real->endpoint(domain, info, ep, context);
	if (!rc) {
		FI_HOOK((*ep)->fid.ops, ep, (fi_hook.ep.bind = fi_hook_bind,
					     fi_hook.ep.control = fi_hook_control));
		FI_HOOK((*ep)->cm, cm, fi_hook.cm.getname = fi_hook_getname);
		FI_HOOK((*ep)->msg, msg, fi_hook.msg.recv = fi_hook_recv);
	}
	return rc;
}

static int fi_hook_av_open(struct fid_domain *domain, struct fi_av_attr *attr, struct fid_av **av,
			   void *context)
{
	if (fi_fail(HOOK_AV_OPEN))
		return -(int)inj.err;
	return fi_hook.domain_real->av_open(domain, attr, av, context);
}

static int fi_hook_cq_open(struct fid_domain *domain, struct fi_cq_attr *attr, struct fid_cq **cq,
			   void *context)
{
	if (fi_fail(HOOK_CQ_OPEN))
		return -(int)inj.err;
	return fi_hook.domain_real->cq_open(domain, attr, cq, context);
}

static int fi_hook_domain(struct fid_fabric *fabric, struct fi_info *info,
			  struct fid_domain **domain, void *context)
{
	int rc;

	if (fi_fail(HOOK_DOMAIN))
		return -(int)inj.err;
	rc = fi_hook.fabric_real->domain(fabric, info, domain, context);
	if (!rc) {
		FI_HOOK((*domain)->ops, domain, (fi_hook.domain.endpoint = fi_hook_endpoint,
						 fi_hook.domain.av_open = fi_hook_av_open,
						 fi_hook.domain.cq_open = fi_hook_cq_open));
		FI_HOOK((*domain)->mr, mr, fi_hook.mr.reg = fi_hook_mr_reg);
	}
	return rc;
}

int __wrap_fi_getinfo(uint32_t version, const char *node, const char *service, uint64_t flags,
		      const struct fi_info *hints, struct fi_info **info)
{
	if (fi_fail(HOOK_GETINFO))
		return -(int)inj.err;
	return __real_fi_getinfo(version, node, service, flags, hints, info);
}

struct fi_info *__wrap_fi_dupinfo(const struct fi_info *info)
{
	return fi_fail(HOOK_DUPINFO) ? NULL : __real_fi_dupinfo(info);
}

int __wrap_fi_fabric(struct fi_fabric_attr *attr, struct fid_fabric **fabric, void *context)
{
	int rc;

	if (fi_fail(HOOK_FABRIC))
		return -(int)inj.err;
	rc = __real_fi_fabric(attr, fabric, context);
	if (!rc)
		FI_HOOK((*fabric)->ops, fabric, fi_hook.fabric.domain = fi_hook_domain);
	return rc;
}
#endif

void *__wrap_calloc(size_t n, size_t size)
{
	if (inj_fail(INJ_CALLOC))
		return errno = ENOMEM, NULL;
	return __real_calloc(n, size);
}

void *__wrap_malloc(size_t size)
{
	if (inj_fail(INJ_MALLOC))
		return errno = ENOMEM, NULL;
	return __real_malloc(size);
}

void *__wrap_aligned_alloc(size_t align, size_t size)
{
	if (inj_fail(INJ_ALIGNED_ALLOC))
		return errno = ENOMEM, NULL;
	return __real_aligned_alloc(align, size);
}

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
	if (inj_fail(INJ_MMAP))
		return errno = ENOMEM, MAP_FAILED;
	return __real_mmap(addr, len, prot, flags, fd, off);
}

struct start {
	void *(*fn)(void *);
	void *arg;
	bool counted;
};

static void *start_thread(void *p)
{
	struct start s = *(struct start *)p;

	free(p);
	counted = s.counted;
	return s.fn(s.arg);
}

int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *),
			  void *arg)
{
	struct start *s;
	int rc;

	if (inj_fail(INJ_PTHREAD_CREATE))
		return inj.err;
	s = __real_malloc(sizeof(*s));
	if (!s)
		return EAGAIN;
	*s = (struct start){ fn, arg, counted && inj.inherit && atomic_load(&inj.fn) };
	rc = __real_pthread_create(t, attr, start_thread, s);
	if (rc)
		free(s);
	return rc;
}

int __wrap_eventfd(unsigned init, int flags)
{
	if (inj_fail(INJ_EVENTFD))
		return errno = inj.err, -1;
	return __real_eventfd(init, flags);
}

int __wrap_socket(int domain, int type, int proto)
{
	if (inj_fail(INJ_SOCKET))
		return errno = inj.err, -1;
	return __real_socket(domain, type, proto);
}

ssize_t __wrap_getrandom(void *buf, size_t len, unsigned flags)
{
	if (inj_fail(INJ_GETRANDOM))
		return inj.err ? (errno = inj.err, -1) : (ssize_t)len / 2;
	return __real_getrandom(buf, len, flags);
}

munge_ctx_t __wrap_munge_ctx_create(void)
{
	if (inj_fail(INJ_MUNGE_CTX))
		return NULL;
	return __real_munge_ctx_create();
}

/* Only the request inj.what counts; inj.err EAGAIN with a UFFDIO_COPY copies a page first. */
int __wrap_ioctl(int fd, unsigned long req, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, req);
	arg = va_arg(ap, void *);
	va_end(ap);
	/* EAGAIN for UFFDIO_COPY counts only copies of more than one page */
	if (req == inj.what && !(req == UFFDIO_COPY && inj.err == EAGAIN &&
				 ((struct uffdio_copy *)arg)->len <= 4096) &&
	    inj_fail(INJ_IOCTL)) {
		if (req == UFFDIO_REGISTER && !inj.err) {
			/* registered, but the kernel offers no write-protection for it */
			int rc = __real_ioctl(fd, req, arg);

			((struct uffdio_register *)arg)->ioctls &= ~(1ull << _UFFDIO_WRITEPROTECT);
			return rc;
		}
		if (req == UFFDIO_COPY && inj.err == EAGAIN) {
			/* the kernel's partial copy: one page done, the caller goes on from there */
			struct uffdio_copy *c = arg, one = *c;

			one.len = 4096;
			if (c->len > 4096 && __real_ioctl(fd, req, &one) == 0)
				c->copy = 4096;
		}
		errno = inj.err;
		return -1;
	}
	return __real_ioctl(fd, req, arg);
}

long __wrap_syscall(long nr, ...)
{
	long a[6];
	va_list ap;

	va_start(ap, nr);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (counted && fail_syscall && nr == fail_syscall)
		return errno = EPERM, -1;
	return __real_syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

int __wrap_epoll_create1(int flags)
{
	if (inj_fail(INJ_EPOLL_CREATE))
		return errno = inj.err, -1;
	return __real_epoll_create1(flags);
}

int __wrap_epoll_ctl(int ep, int op, int fd, struct epoll_event *ev)
{
	if (inj_fail(INJ_EPOLL_CTL))
		return errno = inj.err, -1;
	return __real_epoll_ctl(ep, op, fd, ev);
}

int __wrap_epoll_wait(int ep, struct epoll_event *ev, int n, int timeout)
{
	if (inj_fail(INJ_EPOLL_WAIT))
		return errno = inj.err, -1;
	return __real_epoll_wait(ep, ev, n, timeout);
}

/* Only reads of a userfaultfd count. */
static bool is_uffd(int fd)
{
	char path[64], link[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return false;
	link[n] = '\0';
	return strstr(link, "userfaultfd") != NULL;
}

ssize_t __wrap_read(int fd, void *buf, size_t n)
{
	if (counted && atomic_load(&inj.fn) == INJ_READ_UFFD && is_uffd(fd) &&
	    inj_fail(INJ_READ_UFFD))
		return errno = inj.err, -1;
	return __real_read(fd, buf, n);
}

/* Only the advice inj.what counts. */
int __wrap_madvise(void *addr, size_t len, int advice)
{
	if ((unsigned long)advice == inj.what && inj_fail(INJ_MADVISE))
		return errno = inj.err, -1;
	return __real_madvise(addr, len, advice);
}

long __wrap_mbind(void *addr, unsigned long len, int mode, const unsigned long *mask,
		  unsigned long maxnode, unsigned flags)
{
	if (inj_fail(INJ_MBIND))
		return errno = inj.err, -1;
	return __real_mbind(addr, len, mode, mask, maxnode, flags);
}

/* Only the command inj.what counts. */
int __wrap_fcntl(int fd, int cmd, ...)
{
	va_list ap;
	long arg;

	va_start(ap, cmd);
	arg = va_arg(ap, long);
	va_end(ap);
	if ((unsigned long)cmd == inj.what && inj_fail(INJ_FCNTL))
		return errno = inj.err, -1;
	return __real_fcntl(fd, cmd, arg);
}

/* ---- helpers ---- */

static unsigned open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	unsigned n = 0;

	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own */
}

/* Rank 1 of a mesh pair is not under test: neither its thread's start nor its calls count. */
static void pair_uncounted(bool before)
{
	static bool was;

	if (before) {
		was = counted;
		counted = false;
	} else {
		counted = was;
	}
}

/* A mesh of `n` (1 or 2) nodes in this process: m[0] rank 0, m[1] rank 1. */
static int pair_open(struct mesh_pair *p, unsigned n, unsigned channels)
{
	return mesh_pair_open(p, n, channels, 4711, pair_uncounted);
}

static void dsm_cfg(struct dsm_config *cfg, struct mesh *m, unsigned pages)
{
	dsm_config_init(cfg);
	cfg->mesh = m;
	cfg->size = (uint64_t)pages * DSM_PAGE_SIZE;
}

#define NOMEM(err) (strstr(err, "out of memory") || strstr(err, strerror(ENOMEM)))

/* ---- the DSM ---- */

/*
 * Every allocation of dsm_create, on rank 0 of a two-node mesh (the
 * transport's per-connection buffers too), fails in turn: an error that
 * says so, no DSM, the descriptors it opened closed.
 */
static void test_dsm_create_oom(void)
{
	static const enum inj_fn fns[] = { INJ_CALLOC, INJ_MALLOC, INJ_ALIGNED_ALLOC, INJ_MMAP };
	static const char *names[] = { "calloc", "malloc", "aligned_alloc", "mmap" };
	struct mesh_pair p;

	CHECK(pair_open(&p, 2, DSM_NR_CHANNELS) == 0);
	for (unsigned f = 0; f < sizeof(fns) / sizeof(fns[0]); f++) {
		unsigned failed = 0;

		for (int nth = 1; nth < 64; nth++) {
			struct dsm_config cfg;
			char err[DSM_ERR_MAX] = "";
			struct dsm *d = (struct dsm *)1;
			unsigned fds = open_fds();
			int rc;

			dsm_cfg(&cfg, p.m[0], 8);
			inject(fns[f], nth, ENOMEM, 0);
			rc = dsm_create(&cfg, &d, err);
			if (!inject_end()) {
				CHECK(rc == 0);
				dsm_destroy(d);
				break;
			}
			failed++;
			CHECK(rc == -1 && d == NULL);
			CHECK(NOMEM(err));
			CHECK_EQ(open_fds(), fds);
			if (rc != -1 || !NOMEM(err))
				fprintf(stderr, "%s #%d failed: dsm_create %d, \"%s\"\n", names[f], nth,
					rc, err);
		}
		printf("  dsm_create: %u %s calls failed in turn\n", failed, names[f]);
		/* d, 4 tables and the transport's 2 (and its 4 buffers); the park; 3 mappings */
		CHECK(failed >= (fns[f] == INJ_CALLOC ? 7u : fns[f] == INJ_MMAP ? 3u : 1u));
	}
	mesh_pair_close(&p);
}

/* Each thread dsm_start starts fails in turn: an error naming it, then a clean destroy. */
static void test_dsm_start_threads(void)
{
	unsigned failed = 0;

	for (int nth = 1; nth < 32; nth++) {
		struct dsm_config cfg[2];
		struct dsm *d[2] = { NULL, NULL };
		char err[DSM_ERR_MAX] = "";
		struct mesh_pair p;
		unsigned fds;
		int rc;

		CHECK(pair_open(&p, 2, DSM_NR_CHANNELS) == 0);
		fds = open_fds();
		for (unsigned i = 0; i < 2; i++) {
			dsm_cfg(&cfg[i], p.m[i], 8);
			CHECK(dsm_create(&cfg[i], &d[i], err) == 0);
		}
		inject(INJ_PTHREAD_CREATE, nth, EAGAIN, 0);
		rc = dsm_start(d[0], err);
		if (!inject_end()) {
			CHECK(rc == 0);
			CHECK(dsm_start(d[1], err) == 0);
			/* a page homed on rank 1 comes to rank 0: both run */
			((volatile char *)dsm_addr(d[0]))[7 * DSM_PAGE_SIZE] = 1;
			CHECK(((volatile char *)dsm_addr(d[1]))[7 * DSM_PAGE_SIZE] == 1);
			dsm_destroy(d[0]);
			dsm_destroy(d[1]);
			mesh_pair_close(&p);
			break;
		}
		failed++;
		CHECK(rc == -1);
		CHECK(strstr(err, "cannot start") && strstr(err, strerror(EAGAIN)));
		if (!strstr(err, "cannot start"))
			fprintf(stderr, "thread #%d: \"%s\"\n", nth, err);
		/* whatever started is joined: destroy returns, and its descriptors are gone */
		dsm_destroy(d[0]);
		dsm_destroy(d[1]);
		CHECK_EQ(open_fds(), fds);
		mesh_pair_close(&p);
	}
	printf("  dsm_start: %u thread starts failed in turn\n", failed);
	/* hold, send, 3 receive (one per DSM channel), 2 fault handlers */
	CHECK(failed >= 2 + DSM_NR_CHANNELS + 2);
}

/* eventfd: the transport's (dsm_create) and the fault handlers' (dsm_start). */
static void test_dsm_eventfd(void)
{
	struct dsm_config cfg;
	char err[DSM_ERR_MAX] = "";
	struct dsm *d;
	struct mesh_pair p;
	unsigned fds;

	CHECK(pair_open(&p, 1, DSM_NR_CHANNELS) == 0);
	fds = open_fds();
	dsm_cfg(&cfg, p.m[0], 4);
	inject(INJ_EVENTFD, 1, EMFILE, 0);
	CHECK(dsm_create(&cfg, &d, err) == -1);
	CHECK(inject_end() == 1);
	CHECK(strstr(err, "eventfd") && strstr(err, strerror(EMFILE)));
	CHECK_EQ(open_fds(), fds);

	CHECK(dsm_create(&cfg, &d, err) == 0);
	inject(INJ_EVENTFD, 1, EMFILE, 0);
	CHECK(dsm_start(d, err) == -1);
	CHECK(inject_end() == 1);
	CHECK(strstr(err, "eventfd") && strstr(err, strerror(EMFILE)));
	dsm_destroy(d);
	CHECK_EQ(open_fds(), fds);
	mesh_pair_close(&p);
}

/* dsm_create on m with ioctl `req` failing (from its nth call on, with errno e); its result. */
static int create_with_ioctl(struct mesh *m, int uffd, unsigned long req, int nth, bool every,
			     int e, char *err)
{
	struct dsm_config cfg;
	struct dsm *d = NULL;
	int rc;

	dsm_cfg(&cfg, m, 4);
	cfg.uffd = uffd;
	inject(INJ_IOCTL, nth, e, req);
	inj.every = every;
	rc = dsm_create(&cfg, &d, err);
	dsm_destroy(d);
	return rc;
}

/*
 * userfaultfd refusing what region_create asks: the error names the
 * operation and the kernel's reason; a refused /dev/userfaultfd falls back
 * to the system call, and a refused feature to the descriptor without it.
 */
static void test_region_create(void)
{
	char err[DSM_ERR_MAX] = "";
	struct mesh_pair p;
	unsigned fds;
	int dev;

	CHECK(pair_open(&p, 1, DSM_NR_CHANNELS) == 0);
	fds = open_fds();

	CHECK(create_with_ioctl(p.m[0], -1, UFFDIO_REGISTER, 1, false, EIO, err) == -1);
	CHECK(inject_end() == 1);
	CHECK(strstr(err, "cannot register the region with userfaultfd") &&
	      strstr(err, strerror(EIO)));
	/* registered, but without write-protection: the DSM cannot work */
	CHECK(create_with_ioctl(p.m[0], -1, UFFDIO_REGISTER, 1, false, 0, err) == -1);
	CHECK(inject_end() == 1);
	CHECK(strstr(err, "cannot write-protect anonymous memory") != NULL);
	CHECK(create_with_ioctl(p.m[0], -1, UFFDIO_API, 1, true, EINVAL, err) == -1);
	CHECK(inject_end() == 2);
	CHECK(strstr(err, "refuses write-protect mode") && strstr(err, strerror(EINVAL)));
	/* the first UFFDIO_API (with WP_UNPOPULATED) refused: the second does without */
	CHECK(create_with_ioctl(p.m[0], -1, UFFDIO_API, 1, false, EINVAL, err) == 0);
	CHECK(inject_end() == 1);
	/* /dev/userfaultfd refused: a userfaultfd of the system call's */
	CHECK(create_with_ioctl(p.m[0], -1, USERFAULTFD_IOC_NEW, 1, false, EPERM, err) == 0);
	CHECK(inject_end() == 1);
	/* and that refused too: no userfaultfd, said with what to do */
	fail_syscall = SYS_userfaultfd;
	CHECK(create_with_ioctl(p.m[0], -1, USERFAULTFD_IOC_NEW, 1, false, EPERM, err) == -1);
	fail_syscall = 0;
	CHECK(inject_end() == 1);
	CHECK(strstr(err, "cannot create a userfaultfd") && strstr(err, strerror(EPERM)) &&
	      strstr(err, "/dev/userfaultfd"));
	/* a /dev/userfaultfd handed over that refuses: named, and closed */
	dev = open("/dev/userfaultfd", O_RDWR | O_CLOEXEC);
	CHECK(dev >= 0);
	CHECK(create_with_ioctl(p.m[0], dev, USERFAULTFD_IOC_NEW, 1, false, EPERM, err) == -1);
	CHECK(inject_end() == 1);
	CHECK(strstr(err, "/dev/userfaultfd (descriptor") && strstr(err, "refuses a userfaultfd") &&
	      strstr(err, strerror(EPERM)));
	CHECK(fcntl(dev, F_GETFD) == -1);
	CHECK_EQ(open_fds(), fds);
	mesh_pair_close(&p);
}

/* dsm_create's checks of a mesh of two nodes: a home map out of order, channels missing. */
static void test_dsm_two_node_checks(void)
{
	uint64_t homes[] = { 0, 6, 4 };
	struct dsm_config cfg;
	char err[DSM_ERR_MAX] = "";
	struct dsm *d = (struct dsm *)1;
	struct mesh_pair p;

	CHECK(pair_open(&p, 2, DSM_NR_CHANNELS) == 0);
	dsm_cfg(&cfg, p.m[0], 4);
	cfg.home_start = homes;
	CHECK(dsm_create(&cfg, &d, err) == -1 && d == NULL);
	CHECK(strstr(err, "home map: node 1's range ends (page 4) before it starts (page 6)"));
	dsm_cfg(&cfg, p.m[0], 4);
	cfg.first_channel = 1;
	CHECK(dsm_create(&cfg, &d, err) == -1 && d == NULL);
	CHECK(strstr(err, "the mesh has no channel") && strstr(err, "from channel 1"));
	mesh_pair_close(&p);
}

/* ---- the running DSM ---- */

/* What on_fatal was told, first call only. */
struct fatal {
	pthread_mutex_t lock;
	bool set;
	char msg[DSM_ERR_MAX];
};

static void fatal_record(void *arg, const char *msg)
{
	struct fatal *f = arg;

	pthread_mutex_lock(&f->lock);
	if (!f->set)
		snprintf(f->msg, sizeof(f->msg), "%s", msg);
	f->set = true;
	pthread_mutex_unlock(&f->lock);
}

/* Wait, FATAL_WAIT_S at most, for on_fatal; true if it came (its message in f->msg). */
#ifndef FATAL_WAIT_S
#define FATAL_WAIT_S 60 /* a mutant's run may set less */
#endif
static bool fatal_wait(struct fatal *f)
{
	struct timespec t0, now;
	bool set;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		pthread_mutex_lock(&f->lock);
		set = f->set;
		pthread_mutex_unlock(&f->lock);
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (set || now.tv_sec - t0.tv_sec >= FATAL_WAIT_S)
			return set;
		usleep(1000);
	}
}

/*
 * Two DSMs of `pages` pages on a mesh pair in this process, rank 0 with
 * its threads counted (the injections reach them), rank 1 not: each
 * records what on_fatal is told in f[rank].
 */
struct run2 {
	struct mesh_pair p;
	struct dsm *d[2];
	struct fatal f[2];
	unsigned fds;
};

static void run2_start(struct run2 *r, unsigned pages, unsigned poll_us)
{
	char err[DSM_ERR_MAX] = "";

	CHECK(pair_open(&r->p, 2, DSM_NR_CHANNELS) == 0);
	r->fds = open_fds();
	for (unsigned i = 0; i < 2; i++) {
		struct dsm_config cfg;

		r->f[i] = (struct fatal){ .lock = PTHREAD_MUTEX_INITIALIZER };
		dsm_cfg(&cfg, r->p.m[i], pages);
		cfg.on_fatal = fatal_record;
		cfg.arg = &r->f[i];
		cfg.handler_poll_us = poll_us;
		cfg.recv_poll_us = poll_us;
		cfg.stop_timeout_s = 5;
		r->d[i] = NULL;
		CHECK(dsm_create(&cfg, &r->d[i], err) == 0);
	}
	/* an injection that never fires, inherited: rank 0's threads count */
	inject(INJ_IOCTL, 1 << 30, 0, ~0ul);
	inj.inherit = true;
	CHECK(dsm_start(r->d[0], err) == 0);
	inject_end();
	CHECK(dsm_start(r->d[1], err) == 0);
}

static void run2_destroy(struct run2 *r)
{
	dsm_destroy(r->d[0]);
	dsm_destroy(r->d[1]);
}

/* After run2_destroy: nothing the DSMs opened is left open. */
static void run2_close(struct run2 *r)
{
	CHECK_EQ(open_fds(), r->fds);
	mesh_pair_close(&r->p);
}

static void run2_end(struct run2 *r)
{
	run2_destroy(r);
	run2_close(r);
}

/*
 * A thread that touches a DSM page through a system call (the kernel's
 * access, as KVM's would be): a read copies the page into a pipe, a write
 * reads a byte from the pipe into it.  Left waiting on a page the DSM
 * never maps, it must end with EFAULT once the DSM is destroyed (its
 * region is unmapped first), not with data the DSM never gave.
 */
struct toucher {
	pthread_t t;
	char *addr;
	bool writing;
	int pipe[2];
	ssize_t rc;
	int err;
};

static void *toucher_run(void *arg)
{
	struct toucher *k = arg;

	k->rc = k->writing ? read(k->pipe[0], k->addr, 1) : write(k->pipe[1], k->addr, 1);
	k->err = errno;
	return NULL;
}

static void toucher_start(struct toucher *k, struct dsm *d, uint64_t pg, bool wr)
{
	k->addr = (char *)dsm_addr(d) + pg * DSM_PAGE_SIZE;
	k->writing = wr;
	CHECK(pipe(k->pipe) == 0);
	if (wr)
		CHECK(write(k->pipe[1], "w", 1) == 1);
	CHECK(pthread_create(&k->t, NULL, toucher_run, k) == 0);
}

/* After the DSM's destroy: the access failed, EFAULT. */
static void toucher_end(struct toucher *k)
{
	pthread_join(k->t, NULL);
	CHECK(k->rc == -1 && k->err == EFAULT);
	if (k->rc != -1)
		fprintf(stderr, "  the access returned %zd\n", k->rc);
	close(k->pipe[0]);
	close(k->pipe[1]);
}

/* Rank 0's DSM fails naming `what`, tells on_fatal, and rank 1 learns it from rank 0. */
static void expect_fatal(struct run2 *r, const char *what)
{
	CHECK(fatal_wait(&r->f[0]));
	CHECK(strstr(r->f[0].msg, what) != NULL);
	printf("  rank 0: %s\n", r->f[0].msg);
	if (!strstr(r->f[0].msg, what))
		fprintf(stderr, "  expected \"%s\"\n", what);
	CHECK(dsm_error(r->d[0]) && strstr(dsm_error(r->d[0]), what));
	CHECK(fatal_wait(&r->f[1]));
	CHECK(strstr(r->f[1].msg, "rank 0") != NULL);
	if (!strstr(r->f[1].msg, "rank 0"))
		fprintf(stderr, "  rank 1: %s\n", r->f[1].msg);
}

static void run_bare(struct run2 *r, unsigned pages, unsigned recv_poll_us, unsigned hold_us);

/*
 * userfaultfd and madvise failing on a running DSM, with a thread waiting
 * on the page: the DSM fails naming the operation, the page and the
 * kernel's reason (region_broken), on_fatal is told, the peer learns it,
 * the DSM stops and is destroyed, and the waiting thread's access fails.
 */
static void test_region_running(void)
{
	char *a1;

	/* UFFDIO_COPY of a page rank 1 wrote, read by rank 0 */
	{
		struct run2 r;
		struct toucher k;

		run2_start(&r, 8, 0);
		((volatile char *)dsm_addr(r.d[1]))[6 * DSM_PAGE_SIZE] = 0x5a;
		inject(INJ_IOCTL, 1, EIO, UFFDIO_COPY);
		toucher_start(&k, r.d[0], 6, false);
		expect_fatal(&r, "internal error: UFFDIO_COPY of page 6 failed: Input/output error");
		CHECK(inject_end() == 1);
		run2_destroy(&r);
		toucher_end(&k);
		run2_close(&r);
	}
	/* UFFDIO_ZEROPAGE of a page never touched, read by rank 0 */
	{
		struct run2 r;
		struct toucher k;

		run2_start(&r, 8, 0);
		inject(INJ_IOCTL, 1, EIO, UFFDIO_ZEROPAGE);
		toucher_start(&k, r.d[0], 7, false);
		expect_fatal(&r, "internal error: UFFDIO_ZEROPAGE of page 7 failed: Input/output error");
		CHECK(inject_end() == 1);
		run2_destroy(&r);
		toucher_end(&k);
		run2_close(&r);
	}
	/* MADV_DONTNEED: rank 0 drops its read copy when rank 1 writes the page */
	{
		struct run2 r;
		struct toucher k;

		run2_start(&r, 8, 0);
		a1 = dsm_addr(r.d[1]);
		a1[6 * DSM_PAGE_SIZE] = 0x5a;
		CHECK(((volatile char *)dsm_addr(r.d[0]))[6 * DSM_PAGE_SIZE] == 0x5a);
		inject(INJ_MADVISE, 1, EINVAL, MADV_DONTNEED);
		toucher_start(&k, r.d[1], 6, true);
		expect_fatal(&r, "internal error: MADV_DONTNEED of page 6 failed: Invalid argument");
		CHECK(inject_end() == 1);
		run2_destroy(&r);
		toucher_end(&k);
		run2_close(&r);
	}
}

/*
 * The kernel copying part of a multi-page UFFDIO_COPY (EAGAIN, c.copy the
 * part done): region_copy goes on from there.  Rank 0 reads rank 1's pages
 * in order, prefetch brings runs of them; one run is copied in two goes.
 * Every byte is what rank 1 wrote.  The fault handlers and receive threads
 * busy-poll meanwhile (handler_poll_us, recv_poll_us): what they read while
 * spinning is handled like the rest.
 */
struct reader {
	char *base;
	uint64_t first, end;
	bool same;
	atomic_bool done;
};

static uint8_t partial_byte(uint64_t pg, size_t i)
{
	return (uint8_t)(pg * 7 + i / 512 + 1);
}

/* Each page through a pipe (the kernel's access): on a failed DSM, EFAULT, not a hang. */
static void *reader_run(void *arg)
{
	struct reader *rd = arg;
	static uint8_t buf[DSM_PAGE_SIZE];
	int pfd[2];

	rd->same = pipe(pfd) == 0;
	for (uint64_t pg = rd->first; pg < rd->end && rd->same; pg++) {
		rd->same = write(pfd[1], rd->base + pg * DSM_PAGE_SIZE, DSM_PAGE_SIZE) ==
				   DSM_PAGE_SIZE &&
			   read(pfd[0], buf, DSM_PAGE_SIZE) == DSM_PAGE_SIZE;
		for (size_t i = 0; i < DSM_PAGE_SIZE && rd->same; i += 512)
			rd->same = buf[i] == partial_byte(pg, i);
	}
	close(pfd[0]);
	close(pfd[1]);
	atomic_store(&rd->done, true);
	return NULL;
}

static void test_copy_partial(void)
{
	enum { PAGES = 64 };
	struct reader rd = { .first = PAGES / 2, .end = PAGES };
	struct timespec t0, now;
	struct dsm_stats st;
	pthread_t t;
	struct run2 r;
	char *a1;

	run2_start(&r, PAGES, 200);
	rd.base = dsm_addr(r.d[0]);
	a1 = dsm_addr(r.d[1]);
	for (uint64_t pg = PAGES / 2; pg < PAGES; pg++)
		for (size_t i = 0; i < DSM_PAGE_SIZE; i += 512)
			a1[pg * DSM_PAGE_SIZE + i] = (char)partial_byte(pg, i);
	inject(INJ_IOCTL, 1, EAGAIN, UFFDIO_COPY);
	CHECK(pthread_create(&t, NULL, reader_run, &rd) == 0);
	/* until the reader is done or a DSM failed, 60 s at most */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		usleep(1000);
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (!atomic_load(&rd.done) && !dsm_error(r.d[0]) && now.tv_sec - t0.tv_sec < 60);
	CHECK(inject_end() == 1);
	CHECK(!dsm_error(r.d[0]) && !dsm_error(r.d[1]));
	if (dsm_error(r.d[0]))
		fprintf(stderr, "  rank 0: %s\n", dsm_error(r.d[0]));
	dsm_get_stats(r.d[0], &st);
	printf("  %llu pages prefetched, one run copied in two goes\n",
	       (unsigned long long)st.prefetched);
	CHECK(st.prefetched > 1);
	run2_destroy(&r);
	pthread_join(t, NULL);
	CHECK(rd.same);
	run2_close(&r);
}

/*
 * The fault handlers' own failures: no epoll set (epoll_create1, either
 * epoll_ctl), epoll_wait failing, and reading the userfaultfd failing with
 * a fault queued.  Each fails the DSM saying which, on_fatal is told, and
 * the DSM stops and is destroyed; a thread waiting on a page meanwhile
 * gets EFAULT.
 */
static void test_fault_handler(void)
{
	static const struct {
		enum inj_fn fn;
		int nth;
		const char *what;
	} cases[] = {
		{ INJ_EPOLL_CREATE, 1, "fault handler: epoll: Too many open files" },
		{ INJ_EPOLL_CTL, 1, "fault handler: epoll: Too many open files" },
		{ INJ_EPOLL_CTL, 2, "fault handler: epoll: Too many open files" },
		{ INJ_EPOLL_WAIT, 1, "waiting on the userfaultfd: Too many open files" },
	};

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct run2 r;
		char err[DSM_ERR_MAX] = "";

		CHECK(pair_open(&r.p, 2, DSM_NR_CHANNELS) == 0);
		r.fds = open_fds();
		for (unsigned k = 0; k < 2; k++) {
			struct dsm_config cfg;

			r.f[k] = (struct fatal){ .lock = PTHREAD_MUTEX_INITIALIZER };
			dsm_cfg(&cfg, r.p.m[k], 8);
			cfg.on_fatal = fatal_record;
			cfg.arg = &r.f[k];
			cfg.stop_timeout_s = 5;
			CHECK(dsm_create(&cfg, &r.d[k], err) == 0);
		}
		CHECK(dsm_start(r.d[1], err) == 0); /* first: rank 1's threads do not count */
		inject(cases[i].fn, cases[i].nth, EMFILE, 0);
		inj.inherit = true;
		CHECK(dsm_start(r.d[0], err) == 0);
		expect_fatal(&r, cases[i].what);
		CHECK(inject_end() == 1);
		run2_end(&r);
	}
	/*
	 * reading the userfaultfd fails when a fault is there to read (rank 1
	 * is the test, which never answers: the access cannot complete)
	 */
	{
		struct run2 r;
		struct toucher k;

		run_bare(&r, 8, 0, 0);
		inject(INJ_READ_UFFD, 1, EIO, 0);
		toucher_start(&k, r.d[0], 7, false);
		CHECK(fatal_wait(&r.f[0]));
		CHECK(inject_end() == 1);
		printf("  rank 0: %s\n", r.f[0].msg);
		CHECK(strstr(r.f[0].msg, "reading the userfaultfd: Input/output error") != NULL);
		dsm_destroy(r.d[0]);
		toucher_end(&k);
		run2_close(&r);
	}
}

/* ---- the transport, against a bare rank 1 ---- */

/* Rank 0's DSM alone (rank 1 of the pair is the test, on the bare mesh). */
static void run_bare(struct run2 *r, unsigned pages, unsigned recv_poll_us, unsigned hold_us)
{
	struct dsm_config cfg;
	char err[DSM_ERR_MAX] = "";

	CHECK(pair_open(&r->p, 2, DSM_NR_CHANNELS) == 0);
	r->fds = open_fds();
	r->f[0] = (struct fatal){ .lock = PTHREAD_MUTEX_INITIALIZER };
	dsm_cfg(&cfg, r->p.m[0], pages);
	cfg.on_fatal = fatal_record;
	cfg.arg = &r->f[0];
	cfg.recv_poll_us = recv_poll_us;
	cfg.hold_us = hold_us;
	cfg.prefetch_pages = 0;
	cfg.stop_timeout_s = 1;
	r->d[1] = NULL;
	CHECK(dsm_create(&cfg, &r->d[0], err) == 0);
	/* the test's reads of rank 1's end fail after 60 s rather than hang */
	for (unsigned ch = 0; ch < DSM_NR_CHANNELS; ch++)
		CHECK(setsockopt(mesh_fd(r->p.m[1], 0, ch), SOL_SOCKET, SO_RCVTIMEO,
				 &(struct timeval){ .tv_sec = 60 }, sizeof(struct timeval)) == 0);
	/* its threads count (an injection that never fires, inherited) */
	inject(INJ_IOCTL, 1 << 30, 0, ~0ul);
	inj.inherit = true;
	CHECK(dsm_start(r->d[0], err) == 0);
	inject_end();
}

static int bare_send(int fd, uint16_t type, uint64_t a0, uint64_t a1)
{
	struct wire_hdr h = wire_hdr_make(type, 1, 0);

	h.arg[0] = a0;
	h.arg[1] = a1;
	return wire_send(fd, &h, NULL);
}

/* The next frame on fd, a READ: its page; -1 if it is not one. */
static int64_t bare_read_req(int fd)
{
	static unsigned char buf[DSM_PAGE_SIZE];
	struct wire_hdr h;
	char why[128] = "";

	if (wire_recv(fd, 0, &h, buf, sizeof(buf), why) || h.type != DSM_MSG_READ) {
		fprintf(stderr, "  waited for a READ: type 0x%x, %s\n", h.type, why);
		return -1;
	}
	return (int64_t)h.arg[0];
}

/* A read through a toucher that the reply let through: the page's zeros. */
static void toucher_done(struct toucher *k)
{
	char c = 1;

	pthread_join(k->t, NULL);
	CHECK(k->rc == 1);
	CHECK(read(k->pipe[0], &c, 1) == 1 && c == 0);
	close(k->pipe[0]);
	close(k->pipe[1]);
}

/*
 * The receive thread's spin (recv_poll_us): after a reply, with another
 * still awaited, it peeks at the socket instead of sleeping in recv.
 * What comes meanwhile is read at once, and so is the connection's close:
 * with a budget of 120 s, a close seen only after the budget would leave
 * the test's 60 s wait for on_fatal unanswered.
 */
static void test_tcp_spin(void)
{
	struct toucher k[4];
	struct run2 r;
	int fd;
	int64_t a, b;

	run_bare(&r, 8, 120u * 1000 * 1000, 0);
	fd = mesh_fd(r.p.m[1], 0, DSM_CH_DEMAND);
	/* pages 4-7 are rank 1's: two reads in flight, answered one by one */
	toucher_start(&k[0], r.d[0], 6, false);
	toucher_start(&k[1], r.d[0], 7, false);
	a = bare_read_req(fd);
	b = bare_read_req(fd);
	CHECK((a == 6 && b == 7) || (a == 7 && b == 6));
	CHECK(bare_send(fd, DSM_MSG_ZERO, 6, DSM_REPLY_WRITE) == 0);
	toucher_done(&k[0]);
	/* page 7 still awaited: the receive thread spins, and takes this */
	CHECK(bare_send(fd, DSM_MSG_ZERO, 7, DSM_REPLY_WRITE) == 0);
	toucher_done(&k[1]);
	/* again, then rank 1 closes the connection while page 4 is awaited */
	toucher_start(&k[2], r.d[0], 5, false);
	toucher_start(&k[3], r.d[0], 4, false);
	a = bare_read_req(fd);
	b = bare_read_req(fd);
	CHECK((a == 4 && b == 5) || (a == 5 && b == 4));
	CHECK(bare_send(fd, DSM_MSG_ZERO, 5, DSM_REPLY_WRITE) == 0);
	toucher_done(&k[2]);
	shutdown(fd, SHUT_RDWR);
	CHECK(fatal_wait(&r.f[0]));
	printf("  rank 0: %s\n", r.f[0].msg);
	CHECK(strstr(r.f[0].msg, "rank 1") && strstr(r.f[0].msg, "connection closed"));
	dsm_destroy(r.d[0]);
	toucher_end(&k[3]);
	run2_close(&r);
}

/*
 * A peer that sends requests but reads nothing: rank 0's replies queue on
 * the connection until TCP_QUEUE_MAX (64 MiB), and then the peer counts as
 * gone, said so (on_fatal names rank 1 and why); the queue is freed with
 * the DSM (the sanitizer build's leak check).
 */
static void test_tcp_queue_max(void)
{
	enum { HOMED = 18432 }; /* 72 MiB of pages homed at rank 0 */
	int small = 65536;
	struct run2 r;
	char *a;
	int fd;

	run_bare(&r, 2 * HOMED, 0, 0);
	fd = mesh_fd(r.p.m[1], 0, DSM_CH_DEMAND);
	/* the sockets take little: what rank 0 sends queues almost all */
	CHECK(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)) == 0);
	CHECK(setsockopt(mesh_fd(r.p.m[0], 1, DSM_CH_DEMAND), SOL_SOCKET, SO_SNDBUF, &small,
			 sizeof(small)) == 0);
	a = dsm_addr(r.d[0]);
	for (uint64_t pg = 0; pg < HOMED; pg++)
		a[pg * DSM_PAGE_SIZE] = 1; /* written: a READ gets the page itself */
	for (uint64_t pg = 0; pg < HOMED; pg++)
		if (bare_send(fd, DSM_MSG_READ, pg, 0))
			break;
	CHECK(fatal_wait(&r.f[0]));
	printf("  rank 0: %s\n", r.f[0].msg);
	CHECK(strstr(r.f[0].msg, "rank 1") && strstr(r.f[0].msg, "64 MiB waiting"));
	dsm_destroy(r.d[0]);
	run2_close(&r);
}

/*
 * dsm_create, dsm_start and dsm_stop at their edges: a progress hold over
 * the limit, and no memory, with a userfaultfd handed over (the DSM owns
 * it, error or not: closed); a second start; a stop whose peer never says
 * BYE (the DSM fails naming it); a stop of a DSM never started.
 */
/*
 * A descriptor to hand over as cfg.uffd: a pipe's write end.  Checking it
 * is closed by its number would race with descriptors other threads open;
 * the read end sees the end of file only once the write end is closed.
 */
static int handed(int pfd[2])
{
	CHECK(pipe2(pfd, O_CLOEXEC | O_NONBLOCK) == 0);
	return pfd[1];
}

static bool closed(int pfd[2])
{
	char b;
	bool eof = read(pfd[0], &b, 1) == 0;

	close(pfd[0]);
	return eof;
}

static void test_dsm_edges(void)
{
	struct dsm_config cfg;
	char err[DSM_ERR_MAX] = "";
	struct dsm *d = (struct dsm *)1;
	struct run2 r;
	int pfd[2];

	/* never started: nothing to stop (a mesh of its own: its destroy shuts the sockets) */
	{
		struct mesh_pair p;

		CHECK(pair_open(&p, 2, DSM_NR_CHANNELS) == 0);
		dsm_cfg(&cfg, p.m[0], 8);
		CHECK(dsm_create(&cfg, &d, err) == 0);
		CHECK(dsm_stop(d) == 0);
		dsm_destroy(d);
		mesh_pair_close(&p);
	}

	run_bare(&r, 8, 0, 0);
	CHECK_EQ(dsm_rank(r.d[0]), 0);
	CHECK_EQ(dsm_nr_nodes(r.d[0]), 2);
	CHECK(dsm_start(r.d[0], err) == -1 && strstr(err, "the DSM is already started"));

	dsm_cfg(&cfg, r.p.m[0], 8);
	cfg.hold_progress_us = 10000001;
	cfg.uffd = handed(pfd);
	CHECK(dsm_create(&cfg, &d, err) == -1 && d == NULL);
	CHECK(strstr(err, "progress hold of 10000001 us: at most 10000000") != NULL);
	CHECK(closed(pfd));
	dsm_cfg(&cfg, r.p.m[0], 8);
	cfg.uffd = handed(pfd);
	inject(INJ_CALLOC, 1, ENOMEM, 0);
	CHECK(dsm_create(&cfg, &d, err) == -1 && d == NULL);
	CHECK(inject_end() == 1);
	CHECK(NOMEM(err));
	CHECK(closed(pfd));

	/* rank 1 (the test) never says BYE: named once stop_timeout_s (1 s) is over */
	CHECK(dsm_stop(r.d[0]) == -1);
	CHECK(fatal_wait(&r.f[0]));
	CHECK(strstr(r.f[0].msg, "stopping: rank(s) 1 did not stop within 1 s") != NULL);
	printf("  rank 0: %s\n", r.f[0].msg);
	dsm_destroy(r.d[0]);
	run2_close(&r);
}

/*
 * The home without memory for a request it must keep: rank 0 holds page 0
 * (hold_us: written here, kept 10 s), rank 1 asks for it meanwhile; the
 * queued request's memory, or the hold's, fails.  The DSM fails saying
 * "out of memory", the peer's connection closed.
 */
static void test_home_held_oom(void)
{
	for (int nth = 1; nth <= 2; nth++) {
		struct run2 r;
		int fd;

		run_bare(&r, 8, 0, 10000000);
		((volatile char *)dsm_addr(r.d[0]))[0] = 1;
		fd = mesh_fd(r.p.m[1], 0, DSM_CH_DEMAND);
		inject(INJ_MALLOC, nth, ENOMEM, 0);
		CHECK(bare_send(fd, DSM_MSG_READ, 0, 0) == 0);
		CHECK(fatal_wait(&r.f[0]));
		CHECK(inject_end() == 1);
		printf("  rank 0: %s\n", r.f[0].msg);
		CHECK(strstr(r.f[0].msg, "out of memory") != NULL);
		/* its own lack of memory, not rank 1's fault */
		CHECK(strstr(r.f[0].msg, "protocol error") == NULL);
		dsm_destroy(r.d[0]);
		run2_close(&r);
	}
}

/* The transport refuses what it cannot send as asked, and sends nothing. */
static void test_transport_misuse(void)
{
	static unsigned char page[DSM_PAGE_SIZE];
	struct dsm_transport *tr;
	struct wire_hdr h = wire_hdr_make(DSM_MSG_BYE, 0, 0), big;
	struct run2 r;
	char b;
	int fd;

	run_bare(&r, 8, 0, 0);
	tr = r.d[0]->tr;
	fd = mesh_fd(r.p.m[1], 0, DSM_CH_DEMAND);
	CHECK_EQ(tr->ops->send_msg(tr, 0, DSM_CH_DEMAND, &h), -EINVAL);  /* to itself */
	CHECK_EQ(tr->ops->send_msg(tr, 2, DSM_CH_DEMAND, &h), -EINVAL);  /* no such rank */
	CHECK_EQ(tr->ops->send_msg(tr, 1, DSM_NR_CHANNELS, &h), -EINVAL); /* no such channel */
	h.len = 8;
	CHECK_EQ(tr->ops->send_msg(tr, 1, DSM_CH_DEMAND, &h), -EINVAL);  /* a message has no payload */
	CHECK_EQ(tr->ops->send_pages(tr, 1, DSM_CH_DEMAND, &h, NULL), -EINVAL); /* nor NULL pages */
	big = wire_hdr_make(DSM_MSG_BULK, 0, DSM_TRANSPORT_MAX_PAYLOAD + 1);
	CHECK_EQ(tr->ops->send_pages(tr, 1, DSM_CH_BULK, &big, page), -EMSGSIZE);
	for (unsigned ch = 0; ch < DSM_NR_CHANNELS; ch++)
		CHECK(recv(mesh_fd(r.p.m[1], 0, ch), &b, 1, MSG_PEEK | MSG_DONTWAIT) == -1 &&
		      errno == EAGAIN);
	(void)fd;
	CHECK(!dsm_error(r.d[0]));
	dsm_destroy(r.d[0]);
	run2_close(&r);
}

/* The toucher's access went through. */
static void toucher_through(struct toucher *k)
{
	pthread_join(k->t, NULL);
	CHECK(k->rc == 1);
	close(k->pipe[0]);
	close(k->pipe[1]);
}

/*
 * An owner that holds a page (hold_us) keeps a FWD for it until the hold
 * ends: without memory for that, the DSM fails saying so; with it, the FWD
 * waits (no page goes out, the hold is counted), and a DSM destroyed
 * meanwhile frees it (the sanitizer build's leak check).
 */
static void test_fwd_held(void)
{
	for (int oom = 1; oom >= 0; oom--) {
		static unsigned char buf[DSM_PAGE_SIZE];
		struct wire_hdr h;
		struct toucher k;
		struct run2 r;
		char why[128] = "";
		char b;
		int fd;

		run_bare(&r, 8, 0, 10000000);
		fd = mesh_fd(r.p.m[1], 0, DSM_CH_DEMAND);
		/* rank 0 writes page 6 (rank 1's): rank 1 gives it, never touched */
		toucher_start(&k, r.d[0], 6, true);
		CHECK(wire_recv(fd, 0, &h, buf, sizeof(buf), why) == 0 &&
		      h.type == DSM_MSG_WRITE && h.arg[0] == 6);
		CHECK(bare_send(fd, DSM_MSG_ZERO, 6, DSM_REPLY_WRITE) == 0);
		toucher_through(&k);
		/* the home asks rank 0 to send it to rank 1, for reading */
		if (oom)
			inject(INJ_MALLOC, 1, ENOMEM, 0);
		CHECK(bare_send(fd, DSM_MSG_FWD, 6, 1 | (uint64_t)DSM_KIND_READ << 16) == 0);
		if (oom) {
			CHECK(fatal_wait(&r.f[0]));
			CHECK(inject_end() == 1);
			printf("  rank 0: %s\n", r.f[0].msg);
			CHECK(strstr(r.f[0].msg, "out of memory") != NULL);
		} else {
			struct timespec t0, now;
			struct dsm_stats st;

			clock_gettime(CLOCK_MONOTONIC, &t0);
			do {
				usleep(1000);
				dsm_get_stats(r.d[0], &st);
				clock_gettime(CLOCK_MONOTONIC, &now);
			} while (!st.holds && now.tv_sec - t0.tv_sec < 60);
			CHECK_EQ(st.holds, 1);
			CHECK(recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == -1 && errno == EAGAIN);
			CHECK(!dsm_error(r.d[0]));
		}
		dsm_destroy(r.d[0]);
		run2_close(&r);
	}
}

/* dsm_create's binding to a NUMA node refused, and its userfaultfd's flags unreadable. */
static void test_region_bind_fcntl(void)
{
	struct dsm_config cfg;
	char err[DSM_ERR_MAX] = "";
	struct dsm *d = (struct dsm *)1;
	struct mesh_pair p;
	unsigned fds;

	CHECK(pair_open(&p, 1, DSM_NR_CHANNELS) == 0);
	fds = open_fds();
	dsm_cfg(&cfg, p.m[0], 4);
	cfg.numa_node = 0;
	inject(INJ_MBIND, 1, EINVAL, 0);
	CHECK(dsm_create(&cfg, &d, err) == -1 && d == NULL);
	if (numa_available() < 0) {
		CHECK(inject_end() == 0);
		CHECK(strstr(err, "NUMA node 0 requested, but this host has no NUMA support"));
	} else {
		CHECK(inject_end() == 1);
		CHECK(strstr(err, "cannot bind the home range to NUMA node 0") &&
		      strstr(err, strerror(EINVAL)));
	}
	CHECK_EQ(open_fds(), fds);

	dsm_cfg(&cfg, p.m[0], 4);
	inject(INJ_FCNTL, 1, EBADF, F_GETFL);
	CHECK(dsm_create(&cfg, &d, err) == -1 && d == NULL);
	CHECK(inject_end() == 1);
	CHECK(strstr(err, "userfaultfd descriptor") && strstr(err, strerror(EBADF)));
	CHECK_EQ(open_fds(), fds);
	mesh_pair_close(&p);
}

/* ---- the mesh and munge ---- */

/* What the code under test writes to stderr meanwhile goes to a file: read it into buf. */
static int stderr_to_file(void)
{
	char path[] = "/tmp/test-inject.XXXXXX";
	int fd = mkstemp(path), saved = dup(2);

	unlink(path);
	fflush(stderr);
	dup2(fd, 2);
	close(fd);
	return saved;
}

static void stderr_back(int saved, char *buf, size_t size)
{
	ssize_t n;

	fflush(stderr);
	n = pread(2, buf, size - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	dup2(saved, 2);
	close(saved);
}

/*
 * Rank 0 of a forming mesh pair, the Nth call of fn in its threads failing:
 * it refuses that connection, saying why, and rank 1's retry forms the mesh.
 */
static void mesh_refused_once(enum inj_fn fn, int nth, int err, const char *why)
{
	char log[4096];
	struct mesh_pair p;
	int saved = stderr_to_file();

	inject(fn, nth, err, 0);
	inj.inherit = true;
	CHECK(pair_open(&p, 2, 1) == 0);
	CHECK(inject_end() == 1);
	stderr_back(saved, log, sizeof(log));
	CHECK(strstr(log, "refused connection from 127.0.0.1:") && strstr(log, why));
	CHECK(mesh_fd(p.m[0], 1, 0) >= 0 && mesh_fd(p.m[1], 0, 0) >= 0);
	mesh_pair_close(&p);
}

static void test_mesh_resources(void)
{
	struct hostport any = { .host = "" }, self = { .host = "127.0.0.1" };
	struct mesh_config mc = { .rank = 0, .nr_nodes = 1, .nr_channels = 1, .peers = &self,
				  .listen_fd = -1, .vm_id = 1 };
	char err[MESH_ERR_MAX] = "";
	unsigned fds = open_fds(), failed = 0;
	struct mesh *m;
	int fd;

	/* each allocation of mesh_open in turn */
	for (int nth = 1; nth < 16; nth++) {
		int rc;

		inject(nth < 4 ? INJ_CALLOC : INJ_MALLOC, nth < 4 ? nth : nth - 3, ENOMEM, 0);
		rc = mesh_open(&mc, &m, err);
		if (!inject_end()) {
			CHECK(rc == 0);
			mesh_close(m);
			break;
		}
		failed++;
		CHECK(rc == -1 && strstr(err, "out of memory"));
	}
	CHECK_EQ(failed, 4);
	/* no acceptor thread: said, and the listening socket closed */
	inject(INJ_PTHREAD_CREATE, 1, EAGAIN, 0);
	CHECK(mesh_open(&mc, &m, err) == -1);
	CHECK(inject_end() == 1);
	CHECK(strstr(err, "cannot start the acceptor thread") && strstr(err, strerror(EAGAIN)));
	CHECK_EQ(open_fds(), fds);

	/* no socket: a named address says so; every address falls back to IPv4, then says so */
	inject(INJ_SOCKET, 1, EMFILE, 0);
	CHECK(mesh_listen(&self, err) == -1);
	CHECK(inject_end() == 1);
	CHECK(strstr(err, "cannot listen on 127.0.0.1:0") && strstr(err, strerror(EMFILE)));
	inject(INJ_SOCKET, 1, EAFNOSUPPORT, 0);
	fd = mesh_listen(&any, err);
	CHECK(inject_end() == 1);
	CHECK(fd >= 0 && mesh_local_port(fd) > 0);
	if (fd >= 0)
		close(fd);
	inject(INJ_SOCKET, 1, EAFNOSUPPORT, 0);
	inj.every = true;
	CHECK(mesh_listen(&any, err) == -1);
	CHECK(inject_end() == 2);
	CHECK(strstr(err, "(every address of this host)") && strstr(err, strerror(EAFNOSUPPORT)));
	CHECK_EQ(open_fds(), fds);

	/* an accepted connection without a thread for its handshake: refused, the peer retries */
	mesh_refused_once(INJ_PTHREAD_CREATE, 2, EAGAIN, "no thread for it"); /* the 1st: the acceptor */
	/* no random bytes for a connection's challenge */
	mesh_refused_once(INJ_GETRANDOM, 1, ENOSYS, "no random bytes for a challenge");
}

static void test_auth_resources(void)
{
	struct auth_claim claim = { .vm_id = 1 };
	uint8_t nonce[AUTH_NONCE_LEN];
	char err[AUTH_ERR_MAX] = "", *cred = NULL;
	const char *sock = getenv("GVM_MUNGE_SOCKET");

	inject(INJ_MUNGE_CTX, 1, 0, 0);
	CHECK(auth_encode(sock, &claim, &cred, err) == -1);
	CHECK(inject_end() == 1);
	CHECK(strstr(err, "munge: cannot create a context (out of memory)") != NULL);
	CHECK(auth_encode(sock, &claim, &cred, err) == 0);
	inject(INJ_MUNGE_CTX, 1, 0, 0);
	CHECK(auth_decode(sock, cred, getuid(), &claim, err) == -1);
	CHECK(inject_end() == 1);
	CHECK(strstr(err, "munge: cannot create a context") != NULL);
	free(cred);

	inject(INJ_GETRANDOM, 1, ENOSYS, 0);
	CHECK(auth_nonce(nonce, err) == -1);
	CHECK(inject_end() == 1);
	CHECK(strstr(err, "no random bytes for a challenge") && strstr(err, strerror(ENOSYS)));
	inject(INJ_GETRANDOM, 1, 0, 0); /* half of what was asked */
	CHECK(auth_nonce(nonce, err) == -1);
	CHECK(inject_end() == 1);
	CHECK(strstr(err, "no random bytes for a challenge: short read") != NULL);
}

/*
 * A link's seal (--integrity) when libcrypto refuses: no seal, the reason
 * named (the sanitizer build's leak check sees a context left behind); a
 * tag that cannot be computed is an error, not a frame sent untagged.
 */
static void test_seal_resources(void)
{
	uint8_t a[SEAL_SECRET_LEN] = { 1 }, b[SEAL_SECRET_LEN] = { 2 }, tag[SEAL_TAG_LEN];
	struct wire_hdr h = { .type = 0x105, .len = 4 };
	char err[SEAL_ERR_MAX] = "", payload[4] = "page";
	struct seal *tx, *rx;

	inject(INJ_CALLOC, 1, ENOMEM, 0);
	CHECK(seal_new(a, b, true, 7, 0, err) == NULL);
	CHECK(inject_end() == 1);
	CHECK(strcmp(err, "integrity: out of memory") == 0);
	for (int fn = INJ_EVP_CTX_NEW; fn <= INJ_EVP_ENCRYPT_INIT; fn++)
		for (int nth = 1; nth <= 2; nth++) {
			err[0] = 0;
			inject(fn, nth, 0, 0);
			CHECK(seal_new(a, b, true, 7, 0, err) == NULL);
			CHECK(inject_end() == 1);
			CHECK(strstr(err, "cannot set up AES-128-GCM") != NULL);
			if (fn == INJ_EVP_ENCRYPT_INIT)
				break; /* one encrypting context per seal */
		}

	tx = seal_new(a, b, true, 7, 0, err);
	rx = seal_new(b, a, false, 7, 0, err);
	CHECK(tx && rx);
	if (!tx || !rx)
		goto out;
	for (int nth = 1; nth <= 2; nth++) { /* the header, then the payload */
		inject(INJ_EVP_CIPHER_UPDATE, nth, 0, 0);
		CHECK(seal_tag(tx, &h, payload, tag) == -1);
		CHECK(inject_end() == 1);
	}
	inject(INJ_EVP_ENCRYPT_INIT, 1, 0, 0);
	CHECK(seal_tag(tx, &h, payload, tag) == -1);
	CHECK(inject_end() == 1);
	/*
	 * Each refused tag used up a frame number; the receiver's count moves
	 * only with the frames it checks, so the next tag no longer matches:
	 * a sender that went on after a refusal would be caught.
	 */
	CHECK(seal_tag(tx, &h, payload, tag) == 0);
	CHECK(seal_check(rx, &h, payload, tag) == -1);
out:
	seal_free(tx);
	seal_free(rx);
}

/* ---- the cluster ---- */

/*
 * cluster_create without memory (its own, and its send queues': 6 calloc),
 * its send queues' eventfd or their thread ends the program, saying why.
 */
static void test_cluster_create_oom(void)
{
	static const struct {
		enum inj_fn fn;
		int nth, err;
		const char *expect;
	} cases[] = {
		{ INJ_CALLOC, 1, ENOMEM, "out of memory" },
		{ INJ_CALLOC, 2, ENOMEM, "out of memory" },
		{ INJ_CALLOC, 3, ENOMEM, "out of memory" },
		{ INJ_CALLOC, 4, ENOMEM, "out of memory" },
		{ INJ_CALLOC, 5, ENOMEM, "out of memory" },
		{ INJ_CALLOC, 6, ENOMEM, "out of memory" },
		{ INJ_EVENTFD, 1, EMFILE, "eventfd: Too many open files" },
		{ INJ_PTHREAD_CREATE, 1, EAGAIN, "cannot start the send thread" },
	};
	struct mesh_pair p;

	CHECK(pair_open(&p, 1, CLUSTER_NR_CHANNELS) == 0);
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		char log[4096];
		int saved, status;
		pid_t pid;

		fflush(stdout); /* the child's exit flushes what it inherited */
		saved = stderr_to_file();
		pid = fork();

		if (pid == 0) {
			inject(cases[k].fn, cases[k].nth, cases[k].err, 0);
			cluster_create(p.m[0], -1, 1000);
			check_exit(0);
		}
		waitpid(pid, &status, 0);
		stderr_back(saved, log, sizeof(log));
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 1);
		CHECK(strstr(log, cases[k].expect) != NULL);
		if (!strstr(log, cases[k].expect))
			fprintf(stderr, "cluster_create, case %zu: \"%s\"\n", k, log);
	}
	mesh_pair_close(&p);
}

/* cluster_start without its threads: it says which, and the instance still stops cleanly. */
static void test_cluster_start_threads(void)
{
	static const char *expect[] = { "cannot start a receive thread",
					"cannot start a receive thread",
					"cannot start the heartbeat thread" };

	for (int nth = 1; nth <= 3; nth++) {
		char log[4096];
		struct cluster *c;
		struct mesh_pair p;
		int saved, rc;

		CHECK(pair_open(&p, 2, CLUSTER_NR_CHANNELS) == 0);
		c = cluster_create(p.m[1], -1, 30000);
		saved = stderr_to_file();
		inject(INJ_PTHREAD_CREATE, nth, EAGAIN, 0);
		rc = cluster_start(c);
		CHECK(inject_end() == 1);
		stderr_back(saved, log, sizeof(log));
		CHECK(rc == -1);
		CHECK(strstr(log, expect[nth - 1]) && strstr(log, strerror(EAGAIN)));
		if (!strstr(log, expect[nth - 1]))
			fprintf(stderr, "thread %d: \"%s\"\n", nth, log);
		cluster_destroy(c);
		mesh_pair_close(&p);
	}
}

#if HAVE_LIBFABRIC
/* ---- the fabric transport (tcp;ofi_rxm on loopback) ---- */

struct fab_lost {
	pthread_mutex_t lock;
	unsigned lost;
	char why[128];
};

static int fab_dispatch(void *arg, unsigned peer, unsigned channel, const struct wire_hdr *h,
			const void *payload, char *why)
{
	(void)arg, (void)peer, (void)channel, (void)h, (void)payload, (void)why;
	return 0;
}

static void fab_on_lost(void *arg, unsigned peer, unsigned channel, bool malformed,
			const char *why)
{
	struct fab_lost *l = arg;

	(void)peer, (void)channel, (void)malformed;
	pthread_mutex_lock(&l->lock);
	l->lost++;
	snprintf(l->why, sizeof(l->why), "%s", why);
	pthread_mutex_unlock(&l->lock);
}

static struct dsm_transport *fab_open(struct mesh *m, struct fab_lost *l, char *err)
{
	struct dsm_fabric_config cfg = {
		.mesh = m, .first_channel = 0, .nr_channels = 1, .provider = "tcp;ofi_rxm",
		.dispatch = fab_dispatch, .lost = fab_on_lost, .arg = l,
	};

	return dsm_fabric_create(&cfg, err);
}

/* rank 0's transport fails to be made, saying `says`, and leaves no descriptor open */
static void fab_refused(struct mesh *m, const char *says, const char *because, const char *what)
{
	struct fab_lost l = { .lock = PTHREAD_MUTEX_INITIALIZER };
	char err[DSM_ERR_MAX] = "";
	unsigned fds = open_fds();
	struct dsm_transport *t = fab_open(m, &l, err);

	if (t) {
		/* not refused: the call is not made with this provider */
		fprintf(stderr, "%s: not refused\n", what);
		t->ops->destroy(t);
		CHECK(t == NULL);
		return;
	}
	if (!strstr(err, says) || !strstr(err, because))
		fprintf(stderr, "%s: \"%s\"\n", what, err);
	CHECK(strstr(err, says) && strstr(err, because));
	CHECK_EQ(open_fds(), fds);
}

/*
 * Each libfabric call of the fabric transport's set-up refused in turn,
 * with the provider's own errors, then each allocation and descriptor of
 * its own: no transport, the step named with the reason, nothing left open
 * (and no memory: the sanitizer build's leak check).  Then a peer it cannot
 * tell its address, the threads of its start, and a watcher without memory,
 * which reports each peer lost rather than leave its death unseen.
 */
static void test_fabric_setup(void)
{
	static const struct { enum inj_fi call; int nth, err; const char *says; } calls[] = {
		{ HOOK_DUPINFO, 1, 0, "fabric: out of memory" },	/* the hints */
		{ HOOK_GETINFO, 1, FI_ENOMEM, "fabric: out of memory" },
		{ HOOK_DUPINFO, 2, 0, "fabric: out of memory" },	/* the choice */
		{ HOOK_FABRIC, 1, FI_ENODEV, "fabric: opening the fabric: " },
		{ HOOK_DOMAIN, 1, FI_ENODEV, "fabric: opening the domain: " },
		{ HOOK_AV_OPEN, 1, FI_ENOMEM, "fabric: an address vector: " },
		{ HOOK_ENDPOINT, 1, FI_EBUSY, "fabric: an endpoint: " },
		{ HOOK_CQ_OPEN, 1, FI_ENOMEM, "fabric: a completion queue: " },
		/* (not the 1st, the address vector's: that endpoint is left open, dsm/fabric.c) */
		{ HOOK_EP_BIND, 2, FI_EINVAL, "fabric: binding the endpoint: " },
		{ HOOK_MR_REG, 1, FI_EACCES, "fabric: registering the " },
		{ HOOK_MR_BIND, 1, FI_EINVAL, "fabric: registering the " },
		{ HOOK_MR_ENABLE, 1, FI_EINVAL, "fabric: registering the " },
		{ HOOK_EP_ENABLE, 1, FI_EOPBADSTATE, "fabric: enabling the endpoint: " },
		{ HOOK_RECV, 1, FI_ENOMEM, "fabric: posting receive buffers: " },
		{ HOOK_RECV, 9, FI_ENOMEM, "fabric: posting receive buffers: " },
		{ HOOK_GETNAME, 1, FI_ETOOSMALL, "fabric: the endpoint's address: " },
	};
	struct fab_lost l0 = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct fab_lost l1 = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct dsm_transport *t0, *t1;
	char err[DSM_ERR_MAX] = "", what[64];
	struct fi_info *info;
	struct mesh_pair p;
	uint64_t mr_mode;
	bool rma;

	setenv("FI_TCP_IFACE", "lo", 1);
	info = dsm_fabric_choose("tcp;ofi_rxm", err);
	if (!info) {
		fprintf(stderr, "SKIP: %s\n", err);
		return;
	}
	mr_mode = info->domain_attr->mr_mode;
	rma = info->caps & FI_RMA;
	fi_freeinfo(info);
	CHECK(pair_open(&p, 2, 1) == 0);

	for (unsigned i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
		enum inj_fi c = calls[i].call;

		/* the buffers' registrations are made only where the provider wants them */
		if ((c == HOOK_MR_REG && !(mr_mode & FI_MR_LOCAL) && !rma) ||
		    ((c == HOOK_MR_BIND || c == HOOK_MR_ENABLE) && !(mr_mode & FI_MR_ENDPOINT)))
			continue;
		snprintf(what, sizeof(what), "libfabric call %d, #%d", c, calls[i].nth);
		inject(INJ_FI, calls[i].nth, calls[i].err, c);
		/* fab_err's "step: reason", or a message of its own */
		fab_refused(p.m[0], calls[i].says,
			    calls[i].says[strlen(calls[i].says) - 1] == ' ' ?
			    fi_strerror(calls[i].err) : "", what);
		CHECK(inject_end() == 1);
	}
	/* its own allocations, and its wake-up descriptor */
	for (int nth = 1; nth <= 4; nth++) {
		inject(INJ_CALLOC, nth, ENOMEM, 0);
		fab_refused(p.m[0], "fabric: out of memory", "", "calloc");
		CHECK(inject_end() == 1);
	}
	inject(INJ_ALIGNED_ALLOC, 1, ENOMEM, 0);
	fab_refused(p.m[0], "fabric: out of memory for ", " bytes of buffers", "aligned_alloc");
	CHECK(inject_end() == 1);
	if (rma) {
		inject(INJ_ALIGNED_ALLOC, 2, ENOMEM, 0);
		fab_refused(p.m[0], "fabric: out of memory for ", " bytes of staging slots",
			    "aligned_alloc");
		CHECK(inject_end() == 1);
	}
	inject(INJ_EVENTFD, 1, EMFILE, 0);
	fab_refused(p.m[0], "fabric: ", strerror(EMFILE), "eventfd");
	CHECK(inject_end() == 1);
	/* no provider at all, where any would do */
	inject(INJ_FI, 1, FI_ENODATA, HOOK_GETINFO);
	inj.every = true;
	CHECK(dsm_fabric_choose(NULL, err) == NULL);
	CHECK(inject_end() == 3); /* with RMA, without, without delivery completion */
	CHECK(strstr(err, "fabric: no libfabric provider reaches other hosts here") &&
	      strstr(err, fi_strerror(FI_ENODATA)));
	/* any would do: never a shared-memory one, which reaches no other host */
	info = dsm_fabric_choose(NULL, err);
	CHECK(info != NULL);
	if (info) {
		CHECK(strncmp(info->fabric_attr->prov_name, "shm", 3) != 0);
		fi_freeinfo(info);
	}
	/* a peer it cannot send its address to */
	shutdown(mesh_fd(p.m[0], 1, 0), SHUT_WR);
	fab_refused(p.m[0], "fabric: cannot send rank 1 our address: ", strerror(EPIPE), "hello");
	mesh_pair_close(&p);

	/* its threads: a progress thread, then the watcher */
	for (int nth = 1; nth <= 2; nth++) {
		CHECK(pair_open(&p, 2, 1) == 0);
		t0 = fab_open(p.m[0], &l0, err);
		t1 = fab_open(p.m[1], &l1, err);
		CHECK(t0 && t1);
		if (!t0 || !t1)
			fprintf(stderr, "fabric: %s\n", err);
		if (t0) {
			inject(INJ_PTHREAD_CREATE, nth, EAGAIN, 0);
			CHECK(t0->ops->start(t0, err) == -1);
			CHECK(inject_end() == 1);
			CHECK(strstr(err, nth == 1 ? "fabric: cannot start a progress thread: " :
				      "fabric: cannot start its watcher: ") &&
			      strstr(err, strerror(EAGAIN)));
			t0->ops->destroy(t0);
		}
		if (t1)
			t1->ops->destroy(t1);
		mesh_pair_close(&p);
	}
	/* a watcher without memory: the peer reported lost, for that reason */
	CHECK(pair_open(&p, 2, 1) == 0);
	t0 = fab_open(p.m[0], &l0, err);
	t1 = fab_open(p.m[1], &l1, err);
	CHECK(t0 && t1);
	if (t0 && t1) {
		unsigned lost = 0;

		l0.lost = 0;
		inject(INJ_CALLOC, 1, ENOMEM, 0);
		inj.inherit = true;
		CHECK(t0->ops->start(t0, err) == 0);
		for (int ms = 0; ms < 30000 && !lost; ms += 10) {
			pthread_mutex_lock(&l0.lock);
			lost = l0.lost;
			pthread_mutex_unlock(&l0.lock);
			if (!lost)
				usleep(10000);
		}
		CHECK(inject_end() == 1);
		CHECK_EQ(lost, 1);
		CHECK(strcmp(l0.why, "out of memory to watch it") == 0);
		t0->ops->shutdown(t0);
	}
	if (t0)
		t0->ops->destroy(t0);
	if (t1)
		t1->ops->destroy(t1);
	mesh_pair_close(&p);
}
#endif

int main(void)
{
	log_init("test-inject");
	counted = true;
	RUN(test_dsm_create_oom);
	RUN(test_dsm_start_threads);
	RUN(test_dsm_eventfd);
	RUN(test_region_create);
	RUN(test_dsm_two_node_checks);
	RUN(test_region_running);
	RUN(test_copy_partial);
	RUN(test_fault_handler);
	RUN(test_tcp_spin);
	RUN(test_tcp_queue_max);
	RUN(test_dsm_edges);
	RUN(test_home_held_oom);
	RUN(test_transport_misuse);
	RUN(test_fwd_held);
	RUN(test_region_bind_fcntl);
	RUN(test_mesh_resources);
	RUN(test_auth_resources);
	RUN(test_seal_resources);
	RUN(test_cluster_create_oom);
	RUN(test_cluster_start_threads);
#if HAVE_LIBFABRIC
	RUN(test_fabric_setup);
#endif
	return check_summary();
}
