/*
 * What a guest may rely on beyond a standard PC: the contract between the
 * VMM (vmm/) and the guest images (images/).  Freestanding: no libc types.
 */
#ifndef GVM_COMMON_GUEST_ABI_H
#define GVM_COMMON_GUEST_ABI_H

/*
 * Exit device: a 32-bit OUT to this I/O port ends the VM; the low 8 bits of
 * the value become the exit status of `gvm` (and so of the Slurm job).
 */
#define GVM_EXIT_PORT 0x501

/* The console: a 16550A UART at the standard COM1 port, IRQ 4. */
#define GVM_UART_PORT 0x3f8
#define GVM_UART_IRQ 4

#endif
