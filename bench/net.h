/* The virtio-net table of smolvm-bench (bench/net.c). */
#pragma once
#include <stdbool.h>
#include <stdio.h>

/* Debian's kernel with the busybox test guest (build/linux-guest) under smolvm
 * (configs/linux.ini under @p src, a virtio-net device on a TAP) and QEMU microvm
 * (virtio-net-device on a TAP, vhost=off), each on a TAP in its own network namespace,
 * interleaved, @p runs times each: TCP throughput guest->host and host->guest timed by this
 * process in the namespace, and the guest's ping round trip to the host side. Prints the table
 * and, when @p j is set, writes `"virtio_net": {...}` (followed by a comma unless @p last).
 * Without root the table is skipped, saying why (0). 1 if a runner never succeeded or the
 * table could not be set up. */
int net_bench(const char *build, const char *src, int runs, const char *where, FILE *j, bool last);
