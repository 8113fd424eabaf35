# Benchmarks and the workload kernels shared by the host, the probe guest and
# the Linux image.
-include bench/dsm/module.mk
