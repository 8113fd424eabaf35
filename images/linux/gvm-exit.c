/*
 * gvm-exit: end the virtual machine with an exit status.
 *
 *     gvm-exit STATUS
 *
 * Writes STATUS (0..255) as one 32-bit OUT to the exit device (I/O port
 * GVM_EXIT_PORT, common/guest_abi.h); gvm stops the VM and exits with it.
 * Under QEMU, `-device isa-debug-exit,iobase=0x501,iosize=4` answers the
 * same port and exits with (STATUS << 1) | 1.
 *
 * Returns only when nothing stopped the VM (no exit device on that port),
 * with status 1 after saying so, so that the caller can fall back to a power
 * off.  Built static: it is the last thing /init runs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <unistd.h>

#include "common/guest_abi.h"

int main(int argc, char **argv)
{
	unsigned long status;
	char *end;

	if (argc != 2 || !argv[1][0]) {
		fprintf(stderr, "usage: gvm-exit STATUS   (0..255; ends the VM)\n");
		return 2;
	}
	errno = 0;
	status = strtoul(argv[1], &end, 10);
	if (errno || *end || argv[1][0] == '-' || status > 255) {
		fprintf(stderr, "gvm-exit: '%s' is not an exit status (0..255)\n", argv[1]);
		return 2;
	}
	if (ioperm(GVM_EXIT_PORT, 4, 1)) {
		fprintf(stderr, "gvm-exit: ioperm(0x%x): %s (needs root and "
			"CONFIG_X86_IOPL_IOPERM)\n", GVM_EXIT_PORT, strerror(errno));
		return 1;
	}
	fflush(NULL);
	outl((unsigned int)status, GVM_EXIT_PORT);
	/* A VMM stops this vCPU on the OUT; give a slow one a moment. */
	sleep(1);
	fprintf(stderr, "gvm-exit: the VM is still running: no exit device answers "
		"I/O port 0x%x\n", GVM_EXIT_PORT);
	return 1;
}
