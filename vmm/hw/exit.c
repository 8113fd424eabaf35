#include "vmm/hw/exit.h"

#include "common/guest_abi.h"
#include "common/log.h"
#include "vmm/vm.h"

static void exit_access(void *dev, struct io_access *a)
{
	struct vm *vm = dev;

	if (!a->write) {
		io_data_set(a, 0);
		return;
	}
	vm_stop(vm, io_data_get(a) & 0xFF, NULL);
}

int exit_dev_init(struct vm *vm)
{
	return io_bus_register(&vm->pio, GVM_EXIT_PORT, 4, exit_access, vm, IO_SHARED,
			       "exit device");
}
