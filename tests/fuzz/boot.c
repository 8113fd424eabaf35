/*
 * vmm/x86/boot.c: the loader of a guest kernel (a bzImage or an ELF64
 * executable) and of an initrd beside it, into a 16 MiB guest RAM.  The
 * kernel file comes from the user or an image directory, so its headers are
 * input like any other: a damaged one must be refused, never make the
 * loader write outside guest RAM or read outside the file.
 *
 * Checked beyond the sanitizers: boot_probe, the check gvm makes before it
 * starts anything, accepts every kernel boot_load loads, as the same kind;
 * a loaded kernel lies in RAM above the boot structures and the initrd
 * after it, inside RAM; an ELF's entry point is in the kernel.
 */
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tests/fuzz/lib/fuzz.h"
#include "vmm/x86/boot.h"

#define RAM_SIZE (16u << 20)

static struct guest_ram ram;
static int kernel_fd, initrd_fd;
static char kernel_path[64], initrd_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char initrd[100] = "an initrd of 100 bytes";

	(void)argc;
	(void)argv;
	ram.size = RAM_SIZE;
	ram.base = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	FUZZ_CHECK(ram.base != MAP_FAILED);
	kernel_fd = memfd_create("kernel", MFD_CLOEXEC);
	initrd_fd = memfd_create("initrd", MFD_CLOEXEC);
	FUZZ_CHECK(kernel_fd >= 0 && initrd_fd >= 0);
	FUZZ_CHECK(write(initrd_fd, initrd, sizeof(initrd)) == sizeof(initrd));
	snprintf(kernel_path, sizeof(kernel_path), "/proc/self/fd/%d", kernel_fd);
	snprintf(initrd_path, sizeof(initrd_path), "/proc/self/fd/%d", initrd_fd);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *initrds[] = { initrd_path };
	struct boot_config c = {
		.kernel = kernel_path,
		.initrds = initrds,
		/* Every other input without an initrd, so both layouts are tried. */
		.nr_initrds = size & 1,
		.cmdline = "console=ttyS0 quiet",
		.rsdp_gpa = 0xE0000,
	};
	char err[BOOT_ERR_MAX] = "", perr[BOOT_ERR_MAX] = "";
	enum boot_kind kind = BOOT_BZIMAGE;
	struct boot_entry e;
	int probed, loaded;

	FUZZ_CHECK(ftruncate(kernel_fd, 0) == 0);
	FUZZ_CHECK(pwrite(kernel_fd, data, size, 0) == (ssize_t)size);

	probed = boot_probe(kernel_path, &kind, perr);
	loaded = boot_load(&ram, &c, &e, err);
	FUZZ_CHECK(probed == 0 || perr[0]);
	FUZZ_CHECK(loaded == 0 || err[0]);
	if (loaded)
		return 0;
	FUZZ_CHECK(probed == 0 && kind == e.kind);
	FUZZ_CHECK(e.kernel_start >= BOOT_KERNEL_ADDR && e.kernel_start < e.kernel_end);
	FUZZ_CHECK(e.kernel_end <= RAM_SIZE);
	if (e.kind == BOOT_ELF)
		FUZZ_CHECK(e.rip >= e.kernel_start && e.rip < e.kernel_end);
	if (c.nr_initrds) {
		FUZZ_CHECK(e.initrd_size >= 100);
		FUZZ_CHECK(e.initrd_start >= e.kernel_end);
		FUZZ_CHECK(e.initrd_start + e.initrd_size <= RAM_SIZE);
	}
	return 0;
}
