#include "vmm/hw/pm.h"

#include <stdatomic.h>
#include <stdlib.h>

#include "common/log.h"
#include "vmm/vm.h"
#include "vmm/x86/acpi.h"

struct pm {
	struct vm *vm;
	/*
	 * PM1_EN keeps what the guest writes: Linux enables the global lock
	 * event (GBL_EN) at boot and reads it back, and logs an ACPI error and
	 * gives up the lock when the bit does not stick.
	 */
	_Atomic uint16_t en;
};

/* The event block: PM1_STS (bytes 0-1, no event is ever raised) then PM1_EN. */
static void pm1_evt_access(void *dev, struct io_access *a)
{
	struct pm *pm = dev;
	uint32_t reg = (uint32_t)atomic_load(&pm->en) << 16; /* PM1_STS reads 0 */
	unsigned shift = 8 * a->off;

	if (a->off + a->len > ACPI_PM1A_EVT_LEN)
		return;
	if (!a->write) {
		io_data_set(a, reg >> shift);
		return;
	}
	/* a write to PM1_STS clears status bits that are never set: only EN changes */
	for (unsigned i = 0; i < a->len; i++) {
		unsigned byte = a->off + i;
		uint16_t v = a->data[i], old, new;

		if (byte < 2)
			continue;
		old = atomic_load(&pm->en);
		do
			new = (old & ~(0xffu << 8 * (byte - 2))) | v << 8 * (byte - 2);
		while (!atomic_compare_exchange_weak(&pm->en, &old, new & ACPI_PM1_EN_MASK));
	}
}

static void pm1_cnt_access(void *dev, struct io_access *a)
{
	struct pm *pm = dev;
	uint64_t v;

	if (!a->write) {
		io_data_set(a, a->off == 0 ? ACPI_PM1_SCI_EN : 0);
		return;
	}
	if (a->off != 0 || a->len < 2)
		return;
	v = io_data_get(a);
	if ((v & ACPI_PM1_SLP_EN) &&
	    ((v & ACPI_PM1_SLP_TYP_MASK) >> ACPI_PM1_SLP_TYP_SHIFT) == ACPI_SLP_TYP_S5)
		vm_stop(pm->vm, 0, "the guest powered off");
}

int pm_init(struct vm *vm)
{
	struct pm *pm = calloc(1, sizeof(*pm));

	if (!pm) {
		pr_err("out of memory creating the ACPI PM registers");
		return -1;
	}
	pm->vm = vm;
	vm->pm = pm; /* the VM owns it from here, error or not */
	if (io_bus_register(&vm->pio, ACPI_PM1A_EVT_PORT, ACPI_PM1A_EVT_LEN, pm1_evt_access, pm,
			    IO_SHARED, "ACPI PM1a event") ||
	    io_bus_register(&vm->pio, ACPI_PM1A_CNT_PORT, ACPI_PM1A_CNT_LEN, pm1_cnt_access, pm,
			    IO_SHARED, "ACPI PM1a control"))
		return -1;
	return 0;
}

void pm_destroy(struct pm *pm)
{
	free(pm);
}
