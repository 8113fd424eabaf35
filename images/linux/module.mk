# The Linux guest image: a kernel built from Debian's linux-source-6.1 and an
# initramfs with busybox, hwloc's lstopo, numactl and the benchmarks.  Not
# part of `make images`: the kernel takes a while to build.  See
# docs/linux-image.md.
#
#   make linux-image     build/images/linux/{bzImage,vmlinux,initramfs.cpio}
#
# Other modules add programs to the image's /usr/local/bin by appending to
# LINUX_IMAGE_PROGS (paths under $(O), built by their own rules).
LINUX_OUT := $(IMG)/linux
LINUX_TARBALL ?= /usr/src/linux-source-6.1.tar.xz
LINUX_IMAGE_PROGS ?=
# The workload programs of bench/ (bench/NAME-main.c builds $(O)/bench/NAME)
# go in too, when that directory has them.
LINUX_IMAGE_PROGS += $(filter $(BENCH_PROGS),$(patsubst bench/%-main.c,$(O)/bench/%,\
	$(wildcard bench/*-main.c)))

.PHONY: linux-image
ifeq ($(SAN),1)
linux-image:
	@echo "linux-image: the guest takes no sanitizer build: run make without SAN=1" >&2; exit 1
else
linux-image: $(LINUX_OUT)/bzImage $(LINUX_OUT)/initramfs.cpio $(LINUX_OUT)/cmdline \
	$(LINUX_OUT)/cmdline-emulated
endif

# The image's command lines, beside its kernel (vmm/image.h).
$(LINUX_OUT)/cmdline $(LINUX_OUT)/cmdline-emulated: $(LINUX_OUT)/%: images/linux/%
	@mkdir -p $(@D)
	cp $< $@

# The slow tier boots this image.
check-slow: linux-image

# build-kernel.sh redoes only the steps whose inputs changed.
$(LINUX_OUT)/bzImage $(LINUX_OUT)/vmlinux $(LINUX_OUT)/gen_init_cpio &: \
		images/linux/build-kernel.sh images/linux/config.fragment \
		$(wildcard images/linux/patches/*.patch) $(wildcard $(LINUX_TARBALL))
	LINUX_TARBALL=$(LINUX_TARBALL) images/linux/build-kernel.sh $(LINUX_OUT)
	@touch $(LINUX_OUT)/bzImage $(LINUX_OUT)/vmlinux $(LINUX_OUT)/gen_init_cpio

# The exit tool runs as the last step of /init, and the job agent runs the
# job.  Both link the C library the image already holds for numactl: static,
# they would add 1.5 MB that the guest kernel copies at every boot, at about
# a second per MB where KVM emulates it (docs/linux-image.md).
$(LINUX_OUT)/gvm-exit: images/linux/gvm-exit.c common/guest_abi.h
	@mkdir -p $(@D)
	$(CC) -std=gnu11 $(WARN) -O2 -I. $< -o $@

$(LINUX_OUT)/gvm-job: images/linux/gvm-job.c common/cpio.c common/cpio.h common/guest_abi.h
	@mkdir -p $(@D)
	$(CC) -std=gnu11 $(WARN) -O2 -I. -D_GNU_SOURCE images/linux/gvm-job.c \
		common/cpio.c -o $@

LINUX_IMAGE_PROGS += $(LINUX_OUT)/gvm-job

$(LINUX_OUT)/initramfs.cpio: images/linux/mkinitramfs.sh images/linux/init \
		$(LINUX_OUT)/gen_init_cpio $(LINUX_OUT)/gvm-exit $(LINUX_IMAGE_PROGS)
	images/linux/mkinitramfs.sh $(LINUX_OUT)/gen_init_cpio $(LINUX_OUT)/gvm-exit $@ \
		$(LINUX_IMAGE_PROGS)

# make install: the image, where gvm --image linux finds it (vmm/image.h).
LINUX_INSTALLED := vmlinux initramfs.cpio cmdline cmdline-emulated
define install-linux-image
	@if [ -f $(LINUX_OUT)/vmlinux ] && [ -f $(LINUX_OUT)/initramfs.cpio ]; then \
		for f in $(LINUX_INSTALLED); do \
			install -D -m 0644 $(LINUX_OUT)/$$f \
				$(DESTDIR)$(PREFIX)/share/giantvm/images/linux/$$f || exit 1; \
		done; \
		echo "install: the Linux image in $(DESTDIR)$(PREFIX)/share/giantvm/images/linux"; \
	else \
		echo "install: the Linux image is not built, so not installed: make linux-image install" >&2; \
	fi
endef
