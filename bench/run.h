/* run.h: what the benchmark tables share: starting a runner with its output on a pipe, and
 * medians. */
#pragma once
#include <sys/types.h>

/* Starts argv[0] with stdin on /dev/null and stdout + stderr on a pipe whose read end is
 * *out_fd (close-on-exec); the child dies of SIGALRM after @p alarm_s seconds (alarm survives
 * exec), so a hung runner fails. The pid, or -1 (nothing to close). */
pid_t bench_spawn(char *const argv[], unsigned alarm_s, int *out_fd);

/* The median of @p n values (sorts @p v); 0 when n is 0. */
double bench_median(double *v, int n);

/* Base64 of @p in (a guest script for smolvm.script=), malloc'd; NULL when out of memory. */
char *bench_b64(const char *in);
