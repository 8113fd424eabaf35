# Benchmarks and the workload kernels shared by the host, the probe guest and
# the Linux image.
-include bench/dsm/module.mk

# Freestanding workload code: no libc, built here for the host tools and by
# images/probe/module.mk for the probe guest's user mode.
bench_LIB_SRCS := bench/fmt.c bench/err.c bench/spmv.c bench/checksum.c bench/matgen.c \
	bench/mtx.c bench/copy.c bench/cpio.c bench/report.c

# Host and guest must round every floating-point operation the same way.
BENCH_FPFLAGS := -ffp-contract=off -fno-fast-math

$(O)/libgvbench.a: $(bench_LIB_SRCS:%.c=$(O)/%.o)
$(O)/bench/%.o: HOST_CFLAGS += $(BENCH_FPFLAGS)
$(O)/tests/unit/test-bench-%.o: HOST_CFLAGS += $(BENCH_FPFLAGS)

bench_TOOLS := $(O)/bench/spmv $(O)/bench/memcpy $(O)/bench/stream
# The tests compare the probe's checksums with these, so `make tests` builds them.
BENCH_PROGS += $(bench_TOOLS)
TEST_PROGS += $(bench_TOOLS)

# Explicit, so make keeps the objects.
bench_HOST_OBJS := $(O)/bench/host.o $(O)/libgvbench.a $(O)/libgvcommon.a
$(O)/bench/spmv: $(O)/bench/spmv-main.o $(bench_HOST_OBJS)
	$(CC) $(HOST_LDFLAGS) $^ $(HOST_LIBS) -o $@
$(O)/bench/memcpy: $(O)/bench/memcpy-main.o $(bench_HOST_OBJS)
	$(CC) $(HOST_LDFLAGS) $^ $(HOST_LIBS) -o $@
$(O)/bench/stream: $(O)/bench/stream-main.o $(bench_HOST_OBJS)
	$(CC) $(HOST_LDFLAGS) $^ $(HOST_LIBS) -o $@

# Unit tests of the bench code (and of the probe's parsers) link libgvbench.
$(O)/tests/unit/test-bench-%: $(O)/tests/unit/test-bench-%.o $(O)/libgvbench.a $(LIBS_ALL)
	$(CC) $(HOST_LDFLAGS) $(filter %.o,$^) $(filter %.a,$^) $(HOST_LIBS) -o $@

# The probe's ACPI reader, built for the host, against gvm's ACPI builder.
$(O)/tests/unit/test-bench-acpi: $(O)/images/probe/acpi.o

# The probe guest against the host (bench/probe-bench.sh; ROUNDS=N).
.PHONY: bench-probe
bench-probe: progs images $(bench_TOOLS)
	bench/probe-bench.sh $(O)

# A job in the Linux guest: boot phases, and SpMV against the probe and the host
# (bench/linux-bench.sh; ROUNDS=N).
.PHONY: bench-linux
bench-linux: progs images $(bench_TOOLS)
	$(MAKE) SAN=0 linux-image
	bench/linux-bench.sh $(O)

# The probe in x2APIC against xAPIC mode, and its boot up to 512 vCPUs (bench/apic-bench.sh; ROUNDS=N).
.PHONY: bench-apic
bench-apic: progs images
	bench/apic-bench.sh $(O)

# One guest over several instances against one instance (bench/cluster-bench.sh; ROUNDS=N).
.PHONY: bench-cluster
bench-cluster: progs images
	bench/cluster-bench.sh $(O)
