/*
 * The files a job hands back: a newc cpio archive from the guest (untrusted)
 * written into a directory of the user's.  Regular files and directories
 * only; names relative, printable, without "." or ".." components; nothing
 * followed through a symbolic link already in the directory; at most max
 * bytes of file data; no file replaced unless overwrite; each file written
 * to a temporary name and renamed into place, so it is there whole or not
 * at all.  Every refusal is reported by name (pr_err).
 */
#ifndef GVM_VMM_JOB_OUTPUT_H
#define GVM_VMM_JOB_OUTPUT_H

#include <stdbool.h>
#include <stdint.h>

struct job_output_opts {
	const char *dir;     /* created if missing (its parent must exist) */
	bool overwrite;
	uint64_t max;        /* bytes of file data in all */
};

struct job_output_result {
	uint64_t files, bytes, refused;
};

/*
 * The archive read from fd (at its start): stored bytes of it are there,
 * of sent that the guest sent (more when it was cut at a size limit).
 * Returns 0 when every entry was written, -1 when one or more were refused
 * or the archive is malformed (each said).
 */
int job_output_extract(int fd, uint64_t stored, uint64_t sent, const struct job_output_opts *o,
		       struct job_output_result *r);

#endif
