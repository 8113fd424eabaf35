# bench-dsm: libgvdsm's yardsticks as ratios to this machine's floor.
#   make bench-dsm                          build (optimised) and run it; its output
#                                           and plot: $(O)/bench/dsm/bench-dsm.{txt,png}
#   make bench-dsm BENCH_DSM_ARGS=--extras  also measure the policies
#   make bench-dsm TRANSPORT=fabric         over the fabric transport, its floor too
BENCH_PROGS += $(O)/bench/dsm/bench-dsm

$(O)/bench/dsm/bench-dsm: $(O)/bench/dsm/bench-dsm.o $(O)/bench/dsm/fabric-floor.o $(LIBS_ALL)
	$(CC) $(HOST_LDFLAGS) $(filter %.o,$^) $(LIBS_ALL) $(HOST_LIBS) -o $@

.PHONY: bench-dsm
bench-dsm: $(O)/bench/dsm/bench-dsm
	bench/dsm/run --report $(O)/bench/dsm/bench-dsm$(if $(TRANSPORT),-$(subst ;,_,$(subst :,-,$(TRANSPORT)))) \
		$(O)/bench/dsm/bench-dsm $(if $(TRANSPORT),--transport $(TRANSPORT)) $(BENCH_DSM_ARGS)
