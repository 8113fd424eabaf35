common_SRCS := common/log.c common/parse.c common/wire.c common/auth.c common/mesh.c \
	common/deadline.c common/seal.c \
	common/cpio.c common/fdio.c common/outq.c
$(O)/libgvcommon.a: $(common_SRCS:%.c=$(O)/%.o)
