# giantvm build.  Non-recursive: every directory adds its parts through its
# own module.mk, so a reader finds a component's build next to its code.
#
#   make                 optimised build in build/
#   make SAN=1           AddressSanitizer + UBSan build in build/san/
#   make check           both builds, then the default test tier on both
#   make check-slow      the slow tier (Linux guest boot)
#   make bench-dsm       DSM benchmark (prints ratios to this machine's floor)
#   make bench-linux     a job in the Linux guest: boot phases, SpMV vs probe and host
#   make images          guest images (the probe guest)
#   make install         PREFIX from ./configure, DESTDIR honoured

ifeq ($(wildcard config.mk),)
$(error config.mk is missing: run ./configure first)
endif
include config.mk

SAN ?= 0
ifeq ($(SAN),1)
O ?= build/san
else
O ?= build
endif

# Guest images do not depend on the host build flavour.
IMG := build/images

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
	-Wformat=2 -Wno-format-nonliteral -Wno-format-truncation -Wundef
HOST_CFLAGS := -std=gnu11 $(WARN) -g -pthread -D_GNU_SOURCE -I. -MMD -MP \
	$(HWLOC_CFLAGS) $(NUMA_CFLAGS) $(MUNGE_CFLAGS) $(CRYPTO_CFLAGS) $(IBVERBS_CFLAGS) $(LIBFABRIC_CFLAGS)
ifeq ($(SAN),1)
HOST_CFLAGS += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer \
	-fno-sanitize-recover=undefined
HOST_LDFLAGS += -fsanitize=address,undefined
else
HOST_CFLAGS += -O2
endif
HOST_CFLAGS += $(CFLAGS)
HOST_LDFLAGS += -pthread $(LDFLAGS)
HOST_LIBS := $(HWLOC_LIBS) $(NUMA_LIBS) $(MUNGE_LIBS) $(CRYPTO_LIBS) $(IBVERBS_LIBS) $(LIBFABRIC_LIBS) -lm

# Libraries, in link order (a library before the ones it uses).
LIBS_ALL := $(O)/libgvvmm.a $(O)/libgvdsm.a $(O)/libgvcommon.a

# Lists every module.mk appends to.
PROGS :=
TEST_PROGS :=
BENCH_PROGS :=
IMAGES :=
INSTALL_FILES :=
INSTALL_SCRIPTS :=

all: progs
.PHONY: all progs tests benches images check check-slow check-build install clean
# Keep objects of programs built by chained rules (tests), so they are not rebuilt.
.SECONDARY:

include common/module.mk
include dsm/module.mk
include vmm/module.mk
include bench/module.mk
include images/module.mk
include tests/module.mk
include tests/fuzz/module.mk
-include spank/module.mk

progs: $(PROGS)
tests: $(TEST_PROGS)
benches: $(BENCH_PROGS)
images: $(IMAGES)

$(O)/%.o: %.c config.h
	@mkdir -p $(@D)
	$(CC) $(HOST_CFLAGS) -c $< -o $@

$(O)/%.a:
	@mkdir -p $(@D)
	rm -f $@ && $(AR) rcs $@ $^

config.h: config.mk

# The default test tier, run against the optimised and the sanitizer build.
check-build:
	$(MAKE) SAN=0 progs tests benches images
	$(MAKE) SAN=1 progs tests benches

check: check-build
	tests/run --build build --build build/san

check-slow: check-build
	tests/run --tier slow --build build

# INSTALL_FILES and INSTALL_SCRIPTS hold SOURCE:DEST pairs, DEST under PREFIX.
# The Linux image goes in when it is built (make linux-image install): it
# takes minutes to build, which a plain install should not start.
install: progs images
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 $(PROGS) $(DESTDIR)$(PREFIX)/bin/
	$(foreach f,$(INSTALL_FILES),install -D -m 0644 $(word 1,$(subst :, ,$(f))) \
		$(DESTDIR)$(PREFIX)/$(word 2,$(subst :, ,$(f)));)
	$(foreach f,$(INSTALL_SCRIPTS),install -D -m 0755 $(word 1,$(subst :, ,$(f))) \
		$(DESTDIR)$(PREFIX)/$(word 2,$(subst :, ,$(f)));)
	$(install-linux-image)

clean:
	rm -rf build

# The Linux guest's kernel tree (images/linux) has its own .d files and dirs.
-include $(shell find $(O) -path $(IMG)/linux -prune -o -name '*.d' -print 2>/dev/null)
