#include "vmm/hw/pm.h"

#include "vmm/vm.h"
#include "vmm/x86/acpi.h"

static void pm1_evt_access(void *dev, struct io_access *a)
{
	(void)dev;
	if (!a->write)
		io_data_set(a, 0); /* no event ever: the SCI is never raised */
}

static void pm1_cnt_access(void *dev, struct io_access *a)
{
	struct vm *vm = dev;
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
		vm_stop(vm, 0, "the guest powered off");
}

int pm_init(struct vm *vm)
{
	if (io_bus_register(&vm->pio, ACPI_PM1A_EVT_PORT, ACPI_PM1A_EVT_LEN, pm1_evt_access, vm,
			    IO_SHARED, "ACPI PM1a event") ||
	    io_bus_register(&vm->pio, ACPI_PM1A_CNT_PORT, ACPI_PM1A_CNT_LEN, pm1_cnt_access, vm,
			    IO_SHARED, "ACPI PM1a control"))
		return -1;
	return 0;
}
