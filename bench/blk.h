/* The virtio-blk table of smolvm-bench (bench/blk.c). */
#pragma once
#include <stdbool.h>
#include <stdio.h>

/* Runs guest/blk-bench under smolvm and QEMU microvm and the raw pread/pwrite ceiling,
 * interleaved, @p runs times each, on one image on a tmpfs; prints the table and, when @p j is
 * set, writes `"virtio_blk": {...}` (followed by a comma unless @p last). 1 if a runner never
 * succeeded. */
int blk_bench(const char *build, int runs, const char *where, FILE *j, bool last);
