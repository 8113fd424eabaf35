/*
 * The fixed ACPI power-management registers the FADT announces
 * (vmm/x86/acpi.h: ACPI_PM1A_*): status and enable read as 0, the control
 * register reads "SCI enabled", and a sleep request for S5 powers the
 * guest off, which ends the VM with status 0.
 */
#ifndef GVM_VMM_HW_PM_H
#define GVM_VMM_HW_PM_H

struct vm;

int pm_init(struct vm *vm);

#endif
