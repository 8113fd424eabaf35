# Fuzz targets (libFuzzer): tests/fuzz/NAME.c, listed in fuzz_NAMES, is a
# program build/fuzz/NAME, built with clang, ASan and UBSan from the sources
# it tests (fuzz_NAME_SRCS, and the libraries fuzz_NAME_LIBS), compiled
# here: the libraries of $(O) are gcc's, without the fuzzer's coverage
# instrumentation.  The targets of binary messages write their own seeds
# (GVM_FUZZ_WRITE_SEEDS, tests/fuzz/lib/fuzz.h).  `make fuzz` builds them;
# tests/fuzz/fuzz.t runs each briefly on its seed corpus
# (tests/fuzz/corpus/NAME/), docs/reliability.md says how to run them long.
FUZZ_CC ?= clang
FUZZ := build/fuzz
FUZZ_SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined
# The project's warnings but one that clang lacks.
FUZZ_CFLAGS := -std=gnu11 $(filter-out -Wno-format-truncation,$(WARN)) -g -O1 \
	-fno-omit-frame-pointer -pthread -D_GNU_SOURCE -I. -MMD -MP \
	$(FUZZ_SAN) -fsanitize=fuzzer-no-link
FUZZ_LDFLAGS := -pthread $(FUZZ_SAN) -fsanitize=fuzzer

fuzz_NAMES := cpio job-output boot image mtx mtx-value initramfs wire parse emulate \
	dsm-msg cluster-msg mesh-hello
# The fabric transport's receive path is only there with libfabric; the tests
# that run the targets say it skipped without it.
ifeq ($(HAVE_LIBFABRIC),1)
fuzz_NAMES += fabric-recv
endif
fuzz_LOG := tests/fuzz/lib/log-quiet.c
fuzz_cpio_SRCS := common/cpio.c
fuzz_job-output_SRCS := vmm/job-output.c common/cpio.c common/fdio.c common/parse.c $(fuzz_LOG)
fuzz_boot_SRCS := vmm/x86/boot.c common/parse.c $(fuzz_LOG)
fuzz_image_SRCS := vmm/image.c
fuzz_mtx_SRCS := bench/mtx.c bench/spmv.c bench/err.c bench/fmt.c
fuzz_mtx-value_SRCS := bench/mtx.c bench/err.c bench/fmt.c
fuzz_initramfs_SRCS := bench/cpio.c bench/err.c bench/fmt.c
fuzz_wire_SRCS := common/wire.c common/seal.c
fuzz_wire_LIBS := $(CRYPTO_LIBS)
fuzz_parse_SRCS := common/parse.c
fuzz_emulate_SRCS := vmm/x86/emulate.c tests/fuzz/lib/cpu-stub.c
fuzz_dsm-msg_SRCS := dsm/msg.c tests/fuzz/lib/dsm-stub.c
fuzz_cluster-msg_SRCS := vmm/cluster.c vmm/cluster-io.c vmm/iobus.c vmm/x86/cpuid.c \
	common/wire.c common/deadline.c tests/fuzz/lib/cluster-stub.c $(fuzz_LOG)
fuzz_mesh-hello_SRCS := common/mesh.c common/auth.c common/wire.c common/seal.c $(fuzz_LOG)
fuzz_mesh-hello_LIBS := $(MUNGE_LIBS) $(CRYPTO_LIBS)
# dsm/fabric.c is included; the mesh is there for its set-up, never called.
fuzz_fabric-recv_SRCS := common/mesh.c common/auth.c common/wire.c common/seal.c $(fuzz_LOG)
fuzz_fabric-recv_LIBS := $(MUNGE_LIBS) $(CRYPTO_LIBS) $(LIBFABRIC_LIBS)

FUZZ_PROGS := $(fuzz_NAMES:%=$(FUZZ)/%)
.PHONY: fuzz
fuzz: $(FUZZ_PROGS)

define fuzz_prog
$(FUZZ)/$(1): $(FUZZ)/obj/tests/fuzz/$(1).o $$(fuzz_$(1)_SRCS:%.c=$(FUZZ)/obj/%.o)
	$$(FUZZ_CC) $$(FUZZ_LDFLAGS) $$^ $$(fuzz_$(1)_LIBS) -o $$@
endef
$(foreach t,$(fuzz_NAMES),$(eval $(call fuzz_prog,$(t))))

$(FUZZ)/obj/%.o: %.c config.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -c $< -o $@
# The bench code rounds as its other builds do (bench/module.mk).
$(FUZZ)/obj/bench/%.o: FUZZ_CFLAGS += $(BENCH_FPFLAGS)

# The top Makefile reads the dependency files under $(O) only.
ifeq ($(filter $(O)/%,$(FUZZ)/),)
-include $(shell find $(FUZZ) -name '*.d' 2>/dev/null)
endif

# The same targets built by this build's compiler and flags, with a main
# that replays files instead of libFuzzer's (tests/fuzz/lib/replay.c):
# tools/coverage runs them over the corpora in its --coverage build, so that
# what the fuzzers drive counts.  They share this build's objects.
FUZZ_REPLAY_PROGS := $(fuzz_NAMES:%=$(O)/fuzz-replay/%)
TEST_PROGS += $(FUZZ_REPLAY_PROGS)
.PHONY: fuzz-replay
fuzz-replay: $(FUZZ_REPLAY_PROGS)

define fuzz_replay_prog
$(O)/fuzz-replay/$(1): $(O)/tests/fuzz/$(1).o $(O)/tests/fuzz/lib/replay.o \
		$$(fuzz_$(1)_SRCS:%.c=$(O)/%.o)
	@mkdir -p $$(@D)
	$$(CC) $$(HOST_LDFLAGS) $$^ $$(HOST_LIBS) -o $$@
endef
$(foreach t,$(fuzz_NAMES),$(eval $(call fuzz_replay_prog,$(t))))
