#include "vmm/hw/legacy.h"

#include "common/log.h"
#include "vmm/vm.h"

/* Reads as absent (all ones), writes ignored. */
static void absent_access(void *dev, struct io_access *a)
{
	(void)dev;
	if (!a->write)
		io_data_set(a, ~0ull);
}

/* Reads as zero, writes ignored: the POST code port and the like. */
static void zero_access(void *dev, struct io_access *a)
{
	(void)dev;
	if (!a->write)
		io_data_set(a, 0);
}

/*
 * The i8042 keyboard controller: absent (status 0xFF tells Linux there is
 * none), except that command 0xFE pulses the CPU reset line.
 */
static void i8042_access(void *dev, struct io_access *a)
{
	struct vm *vm = dev;

	if (!a->write) {
		io_data_set(a, ~0ull);
		return;
	}
	if (a->addr == 0x64 && (io_data_get(a) & 0xFF) == 0xFE)
		vm_stop(vm, VM_STATUS_FAILED, "the guest asked for a reset (keyboard controller)");
}

/*
 * 0xCF8-0xCFB: the PCI configuration address (32-bit accesses) overlaid
 * with the reset control register at 0xCF9 (byte accesses; bit 2 resets).
 * There is no PCI device, so the address reads back as all ones and
 * configuration mechanism 1 is found absent.
 */
static void cf8_access(void *dev, struct io_access *a)
{
	struct vm *vm = dev;

	if (!a->write) {
		io_data_set(a, a->len == 1 && a->off == 1 ? 0 : ~0ull);
		return;
	}
	if (a->len == 1 && a->off == 1 && (io_data_get(a) & 4))
		vm_stop(vm, VM_STATUS_FAILED, "the guest asked for a reset (port 0xCF9)");
}

/* PCI configuration mechanism 1: no devices, every read is all ones. */
static void pci_access(void *dev, struct io_access *a)
{
	(void)dev;
	if (!a->write)
		io_data_set(a, ~0ull);
}

int legacy_init(struct vm *vm)
{
	static const struct {
		uint16_t base, len;
		io_handler_fn fn;
		const char *name;
	} ports[] = {
		{ 0x00, 0x20, absent_access, "DMA controller 1" },
		{ 0x80, 0x01, zero_access, "POST code" },
		{ 0x81, 0x0F, absent_access, "DMA page registers" },
		{ 0x92, 0x01, zero_access, "system control port A" },
		{ 0xC0, 0x20, absent_access, "DMA controller 2" },
		{ 0xED, 0x01, zero_access, "I/O delay" },
		{ 0xF0, 0x10, absent_access, "FPU error" },
		{ 0x170, 0x08, absent_access, "IDE 2" },
		{ 0x1F0, 0x08, absent_access, "IDE 1" },
		{ 0x2E8, 0x08, absent_access, "COM4" },
		{ 0x2F8, 0x08, absent_access, "COM2" },
		{ 0x376, 0x01, absent_access, "IDE 2 control" },
		{ 0x378, 0x08, absent_access, "LPT1" },
		{ 0x3B0, 0x30, absent_access, "VGA" },
		{ 0x3E8, 0x08, absent_access, "COM3" },
		{ 0x3F0, 0x06, absent_access, "floppy" },
		{ 0x3F6, 0x01, absent_access, "IDE 1 control" },
		{ 0x3F7, 0x01, absent_access, "floppy DIR" },
		{ 0xCF8, 0x04, cf8_access, "PCI config address / reset control" },
		{ 0xCFC, 0x04, pci_access, "PCI config data" },
	};

	for (unsigned i = 0; i < sizeof(ports) / sizeof(ports[0]); i++)
		if (io_bus_register(&vm->pio, ports[i].base, ports[i].len, ports[i].fn, vm,
				    IO_SHARED, ports[i].name))
			return -1;
	if (io_bus_register(&vm->pio, 0x60, 1, i8042_access, vm, IO_SHARED, "i8042 data") ||
	    io_bus_register(&vm->pio, 0x64, 1, i8042_access, vm, IO_SHARED, "i8042 command"))
		return -1;
	return 0;
}
