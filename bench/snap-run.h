/* snap-run.h: how the snapshot table (bench/snap.c) runs its processes: one run timed to a
 * marker byte on its stdout and to its exit, an idle clone sampled from /proc, a batch of
 * clones at once, and QEMU's migration file saved through QMP. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

#define SNAP_MARKER '@' /* guest/snap-bench's first byte after a restore */
#define SNAP_MAX_CLONES 100

/* One process, from fork to exit. */
struct proc_result {
	int code; /* exit status, or 128 + the signal */
	double marker_ms; /* fork to the first SNAP_MARKER on stdout; -1 when none came */
	double exit_ms; /* fork to the exit */
	long maxrss_kib; /* its ru_maxrss */
	char out[2048], err[2048]; /* the head of its stdout and the tail of its stderr */
	/* idle runs: /proc/PID/status once the marker came (kB) */
	long vmhwm, vmrss, rss_anon, rss_file, rss_shmem;
};

/* What a runner starts: its argv, and for a QEMU restore (-incoming) the QMP socket its argv
 * names (-qmp unix:SOCK,server=on,wait=off), through which the machine is continued once the
 * migration file is loaded: a machine saved paused stays paused after the load. */
struct snap_cmd {
	char **argv;
	const char *qmp;
};

/* Runs @p c (stdin /dev/null, stdout and stderr each on a pipe) to its exit, killing it after
 * @p timeout_s. With @p idle, once the marker came the process is given 100 ms, its
 * /proc/PID/status is sampled and it is killed (SIGKILL; code is then 128 + 9). 0, or -1 when
 * it could not be started or waited for (@p r->err says why). */
int snap_run(const struct snap_cmd *c, unsigned timeout_s, bool idle, struct proc_result *r);

/* Starts @p n (1 to SNAP_MAX_CLONES) commands at once (@p cmds: one each; QEMU's are
 * continued through QMP in turn) and waits for all: the wall time in ms from the first fork
 * to the last exit, or -1 when one could not be started, did not exit with @p ok_status or
 * printed no marker (@p err says which). */
double snap_clones(const struct snap_cmd *cmds, int n, int ok_status, char *err, size_t errlen);

/* Starts QEMU with @p argv (which must hold -S and `-qmp unix:SOCK,server=on,wait=off`),
 * migrates the paused machine into @p file through QMP on @p sock and quits it. 0, or -1 with
 * @p err filled in. */
int snap_qemu_save(char **argv, const char *sock, const char *file, char *err, size_t errlen);

/* Milliseconds on CLOCK_MONOTONIC. */
double snap_now_ms(void);
