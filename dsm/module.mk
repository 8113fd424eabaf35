# libgvdsm: the distributed shared memory.
dsm_SRCS := $(wildcard dsm/*.c)
$(O)/libgvdsm.a: $(dsm_SRCS:%.c=$(O)/%.o)
