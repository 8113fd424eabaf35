/*
 * Ports a PC guest probes that giantvm has nothing behind: they are claimed
 * so that the probes read "absent" quietly instead of counting as unclaimed
 * accesses, and the reset requests among them (keyboard controller 0xFE,
 * port 0xCF9) end the VM.
 */
#ifndef GVM_VMM_HW_LEGACY_H
#define GVM_VMM_HW_LEGACY_H

struct vm;

int legacy_init(struct vm *vm);

#endif
