#include "vmm/hw/jobio.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/fdio.h"
#include "common/guest_abi.h"
#include "common/log.h"
#include "vmm/vm.h"

struct jobio {
	struct jobio_config cfg;
	pthread_mutex_t lock; /* several vCPUs may write; the archive keeps its order */
	uint64_t sent, stored;
	bool stream_error[2];
};

/* All of it, or the reason once: a closed pipe must not stop the guest. */
static void stream_write(struct jobio *j, unsigned which, const uint8_t *p, size_t len)
{
	if (j->stream_error[which] ||
	    !fd_write_all(which ? j->cfg.err_fd : j->cfg.out_fd, p, len))
		return;
	pr_warn("job: cannot write its standard %s: %s; the rest is lost",
		which ? "error" : "output", strerror(errno));
	j->stream_error[which] = true;
}

static void archive_write(struct jobio *j, const uint8_t *p, size_t len)
{
	uint64_t room = j->cfg.archive_max - j->stored;
	size_t keep = len < room ? len : room;

	j->sent += len;
	if (!keep)
		return;
	if (fd_write_all(j->cfg.archive_fd, p, keep)) {
		pr_warn("job: cannot store its output files: %s", strerror(errno));
		/* store no more: the job module sees sent > stored */
		j->cfg.archive_max = j->stored;
		return;
	}
	j->stored += keep;
}

static void jobio_access(void *dev, struct io_access *a)
{
	struct jobio *j = dev;
	uint64_t port = GVM_JOB_PORT_BASE + a->off;

	if (!a->write) {
		io_data_set(a, port == GVM_JOB_EVENT_PORT && a->len == 4 ? GVM_JOB_MAGIC : 0);
		return;
	}
	pthread_mutex_lock(&j->lock);
	switch (port) {
	case GVM_JOB_STDOUT_PORT:
	case GVM_JOB_STDERR_PORT:
		stream_write(j, port == GVM_JOB_STDERR_PORT, a->data, a->len);
		break;
	case GVM_JOB_OUTPUT_PORT:
		archive_write(j, a->data, a->len);
		break;
	case GVM_JOB_EVENT_PORT:
		if (a->len == 4 && j->cfg.event)
			j->cfg.event(j->cfg.arg, (uint32_t)io_data_get(a));
		break;
	default:
		break;
	}
	pthread_mutex_unlock(&j->lock);
}

struct jobio *jobio_create(struct vm *vm, const struct jobio_config *cfg)
{
	struct jobio *j = calloc(1, sizeof(*j));

	if (!j) {
		pr_err("out of memory creating the job channel");
		return NULL;
	}
	j->cfg = *cfg;
	pthread_mutex_init(&j->lock, NULL);
	/* one byte per port: a REP OUTSB arrives whole (IO_STRING) */
	if (io_bus_register(&vm->pio, GVM_JOB_PORT_BASE, GVM_JOB_PORT_COUNT, jobio_access, j,
			    IO_SHARED | IO_STRING, "job channel")) {
		jobio_destroy(j);
		return NULL;
	}
	return j;
}

void jobio_destroy(struct jobio *j)
{
	if (!j)
		return;
	pthread_mutex_destroy(&j->lock);
	free(j);
}

uint64_t jobio_archive_sent(const struct jobio *j)
{
	return j->sent;
}
