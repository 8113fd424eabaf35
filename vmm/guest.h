/*
 * Putting a guest into a VM: what `gvm run` and rank 0 of `gvm node` both
 * do.  The boot input is checked before anything starts (so bad input
 * starts nothing); loading writes the ACPI tables, the kernel, the initrds
 * and the zero page into guest RAM (through the DSM in a cluster, like any
 * other access) and gives the boot vCPU its entry state.
 */
#ifndef GVM_VMM_GUEST_H
#define GVM_VMM_GUEST_H

#include "vmm/options.h"

struct vm;

/*
 * --kernel (required), --initrd and --dump-acpi of o: the files exist and
 * are what they must be.  Returns 0, or -1 after an error message that
 * starts with cmd ("run", "node").
 */
int guest_check_boot(const struct vm_options *o, const char *cmd);

/* Load the guest into vm (whose vCPU 0 runs here) and set vCPU 0's entry state. */
int guest_load(struct vm *vm, const struct vm_options *o, const char *cmd);

#endif
