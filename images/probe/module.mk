# The probe guest: a freestanding 64-bit kernel (emulated here, so small,
# general registers only) and its user program (native: SSE2 allowed), linked
# into one ELF that boots by the Linux 64-bit protocol or PVH.
PROBE := $(IMG)/probe.elf
OBJCOPY ?= objcopy
IMAGES += $(PROBE)
INSTALL_FILES += $(PROBE):share/giantvm/images/probe.elf

PROBE_CFLAGS := -std=gnu11 $(WARN) -g -O2 -I. -MMD -MP -ffreestanding -fno-pic -fno-pie \
	-fno-stack-protector -fno-asynchronous-unwind-tables -fcf-protection=none \
	-march=x86-64 -mtune=generic -fno-common
PROBE_KCFLAGS := $(PROBE_CFLAGS) -mno-red-zone -mgeneral-regs-only -DBFMT_NO_FLOAT
# Must round like the host tools: see bench/module.mk.
PROBE_UCFLAGS := $(PROBE_CFLAGS) $(BENCH_FPFLAGS)

probe_KSRCS := images/probe/kernel/entry.S images/probe/kernel/main.c \
	images/probe/kernel/mem.c images/probe/kernel/smp.c images/probe/kernel/trap.c \
	images/probe/kernel/console.c images/probe/string.c images/probe/kernel/irq.c \
	images/probe/acpi.c bench/fmt.c
probe_USRCS := $(wildcard images/probe/user/*.c images/probe/user/*.S) \
	images/probe/acpi.c images/probe/string.c $(bench_LIB_SRCS)

probe_KOBJS := $(patsubst %,$(IMG)/probe/kernel/%.o,$(basename $(probe_KSRCS)))
probe_UOBJS := $(patsubst %,$(IMG)/probe/user/%.o,$(basename $(probe_USRCS)))

$(IMG)/probe/kernel/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(PROBE_KCFLAGS) -c $< -o $@
$(IMG)/probe/kernel/%.o: %.S
	@mkdir -p $(@D)
	$(CC) $(PROBE_KCFLAGS) -c $< -o $@
$(IMG)/probe/user/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(PROBE_UCFLAGS) -c $< -o $@
$(IMG)/probe/user/%.o: %.S
	@mkdir -p $(@D)
	$(CC) $(PROBE_UCFLAGS) -c $< -o $@

# The user program shares code with the kernel (formatter, ACPI reader) built
# with other flags: link it apart, and keep global only what the kernel uses.
probe_UEXPORTS := probe_bootinfo _ustart _uthread user_bsp_stack_top
$(IMG)/probe/user/all.o: $(probe_UOBJS)
	$(LD) -r -o $@.tmp $^
	$(OBJCOPY) $(addprefix --keep-global-symbol=,$(probe_UEXPORTS)) $@.tmp $@
	rm -f $@.tmp

$(PROBE): images/probe/probe.ld $(probe_KOBJS) $(IMG)/probe/user/all.o
	$(CC) -nostdlib -static -no-pie -Wl,--no-dynamic-linker -Wl,-z,max-page-size=4096 \
		-Wl,-z,noexecstack -Wl,--build-id=none -Wl,--no-warn-rwx-segments \
		-Wl,-T,images/probe/probe.ld $(probe_KOBJS) $(IMG)/probe/user/all.o -o $@

-include $(shell find $(IMG)/probe -name '*.d' 2>/dev/null)
