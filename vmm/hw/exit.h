/* The exit device (common/guest_abi.h): the guest's exit status ends the VM. */
#ifndef GVM_VMM_HW_EXIT_H
#define GVM_VMM_HW_EXIT_H

struct vm;

int exit_dev_init(struct vm *vm);

#endif
