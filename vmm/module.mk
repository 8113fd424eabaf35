# The VMM: libgvvmm (everything but main) and the gvm program.
vmm_SRCS := $(filter-out vmm/gvm.c,$(wildcard vmm/*.c vmm/x86/*.c vmm/hw/*.c))
$(O)/libgvvmm.a: $(vmm_SRCS:%.c=$(O)/%.o)
