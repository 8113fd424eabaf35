# The Slurm SPANK plugin (spank/): $(O)/spank/spank_giantvm.so, built when
# ./configure found slurm/spank.h, and never with sanitizers: Slurm's own
# processes (sbatch, srun, slurmstepd...) load it, and they have no
# sanitizer runtime.  Not linked against libslurm: those processes provide
# the spank_* and slurm_* functions it calls.
#
#   make                 also builds the plugin
#   make install         also installs it, its plugstack line and its man page
#   make check-slurm     the Slurm tier: a private Slurm cluster on this
#                        machine runs --giantvm jobs (root; tests/slurm)
#
# Where make install puts the plugin and its plugstack.conf.d line (give
# SLURM_PLUGSTACK_DIR=/etc/slurm/plugstack.conf.d to enable it in Debian's
# Slurm at once).
SLURM_PLUGIN_DIR ?= $(PREFIX)/lib/slurm
SLURM_PLUGSTACK_DIR ?= $(PREFIX)/etc/slurm/plugstack.conf.d

SPANK_SO := $(O)/spank/spank_giantvm.so
spank_SRCS := $(wildcard spank/*.c) common/parse.c
spank_OBJS := $(spank_SRCS:%.c=$(O)/spank/obj/%.o)

# Hardened as a distribution would build it; every object position
# independent; common/parse.c compiled in (shared code, never copied).
SPANK_CFLAGS := -std=gnu11 $(WARN) -g -O2 -fPIC -D_GNU_SOURCE -I. $(SLURM_CFLAGS) \
	-fstack-protector-strong -fstack-clash-protection -D_FORTIFY_SOURCE=2 \
	-DGVM_BINDIR='"$(PREFIX)/bin"' -MMD -MP $(CFLAGS)
SPANK_LDFLAGS := -shared -Wl,-z,noexecstack -Wl,-z,relro -Wl,-z,now \
	-Wl,--version-script=spank/giantvm.lds $(LDFLAGS)

.PHONY: spank check-slurm install-spank

ifeq ($(HAVE_SLURM)$(SAN),10)
spank: $(SPANK_SO)
progs: $(SPANK_SO)
install: install-spank
INSTALL_FILES += docs/man/spank-giantvm.8:share/man/man8/spank-giantvm.8

$(O)/spank/obj/%.o: %.c config.mk spank/module.mk
	@mkdir -p $(@D)
	$(CC) $(SPANK_CFLAGS) -c $< -o $@

$(SPANK_SO): $(spank_OBJS) spank/giantvm.lds
	$(CC) $(SPANK_LDFLAGS) -o $@ $(spank_OBJS)

# The plugstack line: `required`, since an `optional` plugin that failed
# would let a --giantvm job run its script on the host instead of the guest;
# gvm= names the gvm installed with it (make install PREFIX=... may differ
# from the PREFIX the plugin was built with).
install-spank: $(SPANK_SO)
	install -d $(DESTDIR)$(SLURM_PLUGIN_DIR) $(DESTDIR)$(SLURM_PLUGSTACK_DIR)
	install -m 0644 $(SPANK_SO) $(DESTDIR)$(SLURM_PLUGIN_DIR)/spank_giantvm.so
	printf '# giantvm: sbatch/srun/salloc --giantvm (man 8 spank-giantvm)\nrequired %s gvm=%s\n' \
		'$(SLURM_PLUGIN_DIR)/spank_giantvm.so' '$(PREFIX)/bin/gvm' \
		>$(DESTDIR)$(SLURM_PLUGSTACK_DIR)/giantvm.conf
	chmod 0644 $(DESTDIR)$(SLURM_PLUGSTACK_DIR)/giantvm.conf
else ifeq ($(HAVE_SLURM),0)
spank:
	@echo "spank: ./configure found no slurm/spank.h (apt-get install libslurm-dev)" >&2; exit 1
else
spank:
	@echo "spank: the plugin is not built with SAN=1 (Slurm's processes load it)" >&2; exit 1
endif

# The Slurm tier boots the Linux image; it runs with the slow tier too.
check-slurm:
	$(MAKE) SAN=0 progs tests images linux-image
	tests/run --tier slow --build build slurm/
