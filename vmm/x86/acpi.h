/*
 * ACPI tables that describe the guest machine: RSDP, XSDT, FADT, FACS, DSDT,
 * MADT ("APIC"), SRAT and SLIT, all built from one struct vm_topology so the
 * APIC IDs, proximity domains and memory ranges agree with CPUID and e820.
 *
 * The FADT is a conventional one, not hardware-reduced: a hardware-reduced
 * FADT makes Linux replace the 8259 PIC with a null PIC and skip the PIT
 * timer set-up, and we want Linux to use the emulated PIT, PIC, RTC and UART
 * and to calibrate the LAPIC timer against the PIT (docs/topology.md).  A
 * conventional FADT obliges the VMM to decode the fixed ACPI registers
 * below: see ACPI_PM1*.
 */
#ifndef GVM_VMM_X86_ACPI_H
#define GVM_VMM_X86_ACPI_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/topo.h"

#define ACPI_ERR_MAX 256

/* Where the VMM puts the tables: RSDP first, at ACPI_BASE_GPA. */
#define ACPI_BASE_GPA 0xE0000ull
#define ACPI_MAX_SIZE 0x20000u

/* The interrupt controllers the MADT announces. */
#define ACPI_LAPIC_GPA 0xFEE00000u
#define ACPI_IOAPIC_GPA 0xFEC00000u
#define ACPI_IOAPIC_ID 0       /* what the IOAPIC's ID register must return */
#define ACPI_IOAPIC_GSI_BASE 0

/*
 * Fixed ACPI hardware in I/O space, which the VMM must decode:
 * - PM1a event block, 4 bytes: PM1_STS (16 bits, write 1 to clear) then
 *   PM1_EN (16 bits).  Status reads 0: we never raise the SCI.  The enable
 *   bits keep what is written (ACPI_PM1_EN_MASK): Linux checks that GBL_EN
 *   sticks before it uses the FACS global lock.
 * - PM1a control block, 2 bytes: PM1_CNT.  Reads return ACPI_PM1_SCI_EN.
 *   A write with ACPI_PM1_SLP_EN set and SLP_TYP (bits 12:10) equal to
 *   ACPI_SLP_TYP_S5 is the guest powering off (Linux `poweroff`, via the
 *   DSDT's \_S5 object).
 * SMI_CMD is 0: the machine is always in ACPI mode, no SMM hand-over.
 * There is no PM timer block (optional since ACPI 5.0).
 */
#define ACPI_PM1A_EVT_PORT 0x600
#define ACPI_PM1A_EVT_LEN 4
#define ACPI_PM1A_CNT_PORT 0x604
#define ACPI_PM1A_CNT_LEN 2
#define ACPI_PM1_EN_MASK 0x4721u /* TMR, GBL, PWRBTN, SLPBTN, RTC, PCIEXP_WAKE_DIS */
#define ACPI_PM1_SCI_EN (1u << 0)
#define ACPI_PM1_SLP_TYP_SHIFT 10
#define ACPI_PM1_SLP_TYP_MASK (7u << ACPI_PM1_SLP_TYP_SHIFT)
#define ACPI_PM1_SLP_EN (1u << 13)
#define ACPI_SLP_TYP_S5 5
/* The SCI line (ISA IRQ 9, level, active high; never raised by us). */
#define ACPI_SCI_IRQ 9

/*
 * Build every table into buf (capacity bytes), which the VMM copies to guest
 * address base_gpa: the RSDP is at the start of buf, so *rsdp_gpa ==
 * base_gpa.  Returns the number of bytes used, or -1 with the reason in err
 * (capacity too small, base not below 4 GiB...).
 */
long acpi_build(const struct vm_topology *t, void *buf, uint64_t base_gpa, size_t capacity,
		uint64_t *rsdp_gpa, char *err);

/*
 * Write each table as built for ACPI_BASE_GPA to DIR/<SIG>.dat (RSDP.dat,
 * XSDT.dat, FACP.dat, FACS.dat, DSDT.dat, APIC.dat, SRAT.dat, SLIT.dat),
 * the names `iasl -d` and acpidump use.  DIR must exist.  0, or -1 with the
 * reason in err.
 */
int acpi_dump(const struct vm_topology *t, const char *dir, char *err);

#endif
