/*
 * The job channel (common/guest_abi.h): the ports through which the Linux
 * image's job agent hands back a job's standard output and error, the
 * archive of its output directory, and its progress.  A device of rank 0.
 * What arrives is the guest's and untrusted: streams are passed on as bytes,
 * the archive is only stored (at most archive_max bytes) for the job module
 * to check, and events are numbers.
 */
#ifndef GVM_VMM_HW_JOBIO_H
#define GVM_VMM_HW_JOBIO_H

#include <stdbool.h>
#include <stdint.h>

struct vm;
struct jobio;

struct jobio_config {
	int out_fd, err_fd;    /* where the job's streams go */
	int archive_fd;        /* where the output archive is stored */
	uint64_t archive_max;  /* bytes beyond it are dropped, and counted */
	/* A GVM_JOB_EVENT_* from the guest (any value: check it); may be NULL. */
	void (*event)(void *arg, uint32_t event);
	void *arg;
};

struct jobio *jobio_create(struct vm *vm, const struct jobio_config *cfg);
void jobio_destroy(struct jobio *j);

/* The archive's bytes as sent, stored or not (more than stored: it was cut). */
uint64_t jobio_archive_sent(const struct jobio *j);

#endif
