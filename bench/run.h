/* run.h: what the benchmark tables share: starting a runner with its output on a pipe, timing
 * it, medians and the boot tables' report. */
#pragma once
#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#define MAX_RUNS 200

/* One program a table times, and what it measured. */
struct runner {
	const char *name;
	char *argv[40];
	int ok_status; /* exit status meaning success */
	const char *expect; /* the line the output must hold */
	int time_to_line; /* 1: time to the expected line; 0: time to exit */
	double ms[MAX_RUNS];
	long rss_kib[MAX_RUNS];
	int n, failures;
	char last_error[256];
};

/* Runs @p r once with output on a pipe, read as it comes: the time to the expected line (or to
 * exit), then the exit status and peak RSS. */
void bench_run_once(struct runner *r);

/* Prints one table (ratios against runner @p base) and its JSON object ("WHAT": [...], then a
 * comma unless @p last). 1 if a runner never succeeded. */
int bench_report(const char *what, struct runner *rs, int nr, int base, const char *unit, FILE *j,
                 bool last);

/* Starts argv[0] with stdin on /dev/null and stdout + stderr on a pipe whose read end is
 * *out_fd (close-on-exec); the child dies of SIGALRM after @p alarm_s seconds (alarm survives
 * exec), so a hung runner fails. The pid, or -1 (nothing to close). */
pid_t bench_spawn(char *const argv[], unsigned alarm_s, int *out_fd);

/* The median of @p n values (sorts @p v); 0 when n is 0. */
double bench_median(double *v, int n);

/* Base64 of @p in (a guest script for smolvm.script=), malloc'd; NULL when out of memory. */
char *bench_b64(const char *in);
