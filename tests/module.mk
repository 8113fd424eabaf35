# Unit tests: every tests/unit/NAME.c is a program $(O)/tests/unit/NAME that
# tests/run executes.  tests/tools/NAME.c are helper programs for the test
# scripts (fake peers and the like), built to $(O)/tests/tools/NAME.
unit_SRCS := $(wildcard tests/unit/*.c)
tool_SRCS := $(wildcard tests/tools/*.c)
TEST_PROGS += $(unit_SRCS:tests/unit/%.c=$(O)/tests/unit/%) \
	$(tool_SRCS:tests/tools/%.c=$(O)/tests/tools/%)

$(O)/tests/unit/%: $(O)/tests/unit/%.o $(LIBS_ALL)
	$(CC) $(HOST_LDFLAGS) $< $(LIBS_ALL) $(HOST_LIBS) -o $@
$(O)/tests/tools/%: $(O)/tests/tools/%.o $(LIBS_ALL)
	$(CC) $(HOST_LDFLAGS) $< $(LIBS_ALL) $(HOST_LIBS) -o $@

# test-inject: fault injection into the libraries' own calls (tests/unit/test-inject.c).
INJECT_WRAP := calloc malloc aligned_alloc mmap pthread_create eventfd socket getrandom \
	munge_ctx_create ioctl syscall epoll_create1 epoll_ctl epoll_wait read madvise \
	mbind fcntl EVP_CIPHER_CTX_new EVP_Digest EVP_EncryptInit_ex EVP_CipherUpdate
ifeq ($(HAVE_LIBFABRIC),1)
INJECT_WRAP += fi_getinfo fi_dupinfo fi_fabric
endif
$(O)/tests/unit/test-inject: $(O)/tests/unit/test-inject.o $(LIBS_ALL)
	$(CC) $(HOST_LDFLAGS) $(INJECT_WRAP:%=-Wl,--wrap=%) $< $(LIBS_ALL) $(HOST_LIBS) -o $@
