/* The snapshot table of smolvm-bench (bench/snap.c, bench/snap-run.c). */
#pragma once
#include <stdbool.h>
#include <stdio.h>

/* Snapshots guest/snap-bench at 128 MiB, 512 MiB and 2 GiB of RAM and restores it under
 * smolvm, beside the raw floor and QEMU microvm restoring its migration file, @p runs times
 * each (interleaved), then @p clones restores of one file at once per runner; prints the table
 * and, when @p j is set, writes `"snapshot": {...}` (followed by a comma unless @p last).
 * 1 if a runner never succeeded. */
int snap_bench(const char *build, int runs, int clones, const char *where, FILE *j, bool last);
