/*
 * The fixed ACPI power-management registers the FADT announces
 * (vmm/x86/acpi.h: ACPI_PM1A_*): status reads as 0 (no event is ever
 * raised), the enable register keeps what the guest writes to its defined
 * bits, the control register reads "SCI enabled", and a sleep request for
 * S5 powers the guest off, which ends the VM with status 0.
 */
#ifndef GVM_VMM_HW_PM_H
#define GVM_VMM_HW_PM_H

struct vm;
struct pm;

/* Register the PM1a blocks on vm's port bus (vm->pm); -1 with a message on failure. */
int pm_init(struct vm *vm);
/* After the VM's vCPUs are gone. */
void pm_destroy(struct pm *pm);

#endif
