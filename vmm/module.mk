# The VMM: libgvvmm (everything but main) and the gvm program.
vmm_SRCS := $(filter-out vmm/gvm.c,$(wildcard vmm/*.c vmm/x86/*.c vmm/hw/*.c))
$(O)/libgvvmm.a: $(vmm_SRCS:%.c=$(O)/%.o)

PROGS += $(O)/gvm
$(O)/gvm: $(O)/vmm/gvm.o $(LIBS_ALL)
	$(CC) $(HOST_LDFLAGS) $< $(LIBS_ALL) $(HOST_LIBS) -o $@

# Test guests (tests/vmm/*.S): tiny freestanding ELF kernels for the VMM's own
# tests, linked at 2 MiB and entered through the 64-bit boot protocol.
vmm_guest_SRCS := $(wildcard tests/vmm/*.S)
TEST_PROGS += $(vmm_guest_SRCS:tests/vmm/%.S=$(O)/tests/vmm/%.elf)
$(O)/tests/vmm/%.elf: tests/vmm/%.S tests/vmm/guest.inc
	@mkdir -p $(@D)
	$(CC) -nostdlib -static -no-pie -Wl,--build-id=none -Wl,-Ttext=0x200000 \
		-Wl,-z,noexecstack -Wl,-e,_start -o $@ $<
INSTALL_FILES += docs/man/gvm.1:share/man/man1/gvm.1
