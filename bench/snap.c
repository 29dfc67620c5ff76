/*
 * The snapshot table of smolvm-bench. guest/snap-bench asks for a snapshot first thing (a
 * byte to the snapshot-port device); a restore resumes at the next instruction, which writes
 * the marker '@' to COM1 and then exits through debug-exit. Per RAM size (128 MiB, 512 MiB,
 * 2 GiB), with every file on a tmpfs (/dev/shm):
 *   snapshot  `smolvm run M.ini` with [snapshot] then = stop, N times (each rewrites the
 *             file): the time smolvm logs ("snapshot written to PATH in X ms": from the pause
 *             the guest's request causes to the file fsynced and renamed into place), and
 *             the whole run's wall time; the file's size on disk (st_blocks * 512) and its
 *             apparent size (st_size)
 *   restore   three runners, interleaved, N times each, from fork to the marker reaching the
 *             runner's stdout pipe and to its exit:
 *               floor   bench/floor running the same payload from its entry, with the same
 *                       RAM size mapped (nothing listens at 0xf5 there)
 *               smolvm  `smolvm run FILE.smolmachine`
 *               qemu    QEMU microvm restoring (-incoming "exec:cat FILE") a migration file
 *                       saved through QMP from the same machine started with -S, i.e. paused
 *                       before its first instruction (QEMU cannot stop at port 0xf5). The
 *                       restored machine stays paused like its source: this process continues
 *                       it through QMP (`cont`) once the file is loaded, inside the timing.
 *                       Its firmware then loads the payload, which runs from its entry to the
 *                       exit: microseconds of guest time
 *   memory    an idle clone under each runner (the same machine with snap-bench.idle on its
 *             command line, saved the same way; the floor is given that command line: after
 *             the marker the payload halts): /proc/PID/status 100 ms after its marker (VmHWM,
 *             VmRSS and its anonymous, file and shmem parts), then SIGKILL. Only in the JSON:
 *             ru_maxrss of the exiting runs, which is never below what the child held of this
 *             process between fork and exec (about this process's anonymous RSS: after the
 *             virtio-blk table some 4 MiB), so it says little about the floor and smolvm
 *   clones    C restores (floor: C floors) started at once, each to its exit: C / wall time
 */
#define _GNU_SOURCE
#include "snap.h"
#include "run.h"
#include "snap-run.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define QEMU "/usr/bin/qemu-system-x86_64"
#define MAX_RUNS 200
#define NSIZES 3

static const unsigned sizes_mib[NSIZES] = { 128, 512, 2048 };

enum { FLOOR, SMOLVM, QEMU_R, NR };
static const char *const rname[NR] = { "floor", "smolvm", "qemu-microvm" };
static const char *const rkey[NR] = { "floor", "smolvm", "qemu" };
static const int ok_status[NR] = { 0, 0, 1 /* isa-debug-exit: (0 << 1) | 1 */ };

/* /proc/PID/status of idle clones, kB */
struct idle_stats {
	double hwm[MAX_RUNS], rss[MAX_RUNS], anon[MAX_RUNS], file[MAX_RUNS], shmem[MAX_RUNS];
	int n, failures;
	char error[400];
};

struct runner_stats {
	double marker[MAX_RUNS], exit[MAX_RUNS], rss[MAX_RUNS];
	int n, failures;
	char error[400];
	double clones_ms; /* -1: failed or not run */
	char clones_error[300];
	struct idle_stats idle;
};

struct row {
	unsigned mib;
	double snap_ms[MAX_RUNS], snap_run_ms[MAX_RUNS];
	int snaps, snap_failures;
	char snap_error[400];
	long long disk, apparent, qemu_file; /* bytes; -1 unknown */
	struct runner_stats r[NR];
};

static struct row rows[NSIZES];

static void one_line(char *s)
{
	for (; *s; s++)
		if (*s == '\n' || *s == '\r')
			*s = '|';
}

/* "why: status S, stdout: ..., stderr: ..." on one line */
static void describe(char *dst, size_t size, const char *why, const struct proc_result *p)
{
	snprintf(dst, size, "%s: status %d, stdout: %.60s, stderr: %.240s", why, p->code, p->out,
	         p->err);
	one_line(dst);
}

/* The ms figure of smolvm's "snapshot written to PATH in X ms" line, or -1. */
static double logged_ms(const char *err)
{
	const char *p = strstr(err, "snapshot written to ");
	p = p ? strstr(p, " in ") : NULL;
	if (!p)
		return -1;
	char *end;
	double ms = strtod(p + 4, &end);
	return end != p + 4 && strncmp(end, " ms", 3) == 0 ? ms : -1;
}

static void write_ini(const char *path, unsigned mib, const char *payload, const char *snap,
                      bool idle)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return;
	fprintf(f,
	        "[machine]\nmemory = %uM\nacpi = off\n[boot]\nkernel = %s\ncmdline = "
	        "console=ttyS0%s\n[snapshot]\npath = %s\nthen = stop\n"
	        "[device com1]\ntype = uart-16550\ninput = none\n"
	        "[device exit]\ntype = debug-exit\nsize = 1\n"
	        "[device snap0]\ntype = snapshot-port\nport = 0xf5\n",
	        mib, payload, idle ? " snap-bench.idle" : "", snap);
	fclose(f);
}

/* One snapshotting run of @p ini: its figures into @p w when @p timed. 0 or -1. */
static int take_snapshot(struct row *w, char *smolvm, char *ini, bool timed)
{
	char *argv[] = { smolvm, "run", ini, NULL };
	struct snap_cmd c = { argv, NULL };
	struct proc_result p;
	if (snap_run(&c, 120, false, &p) < 0) {
		describe(w->snap_error, sizeof(w->snap_error), "snapshot", &p);
		w->snap_failures++;
		return -1;
	}
	double ms = logged_ms(p.err);
	const char *why = p.code   ? "snapshot run: wrong exit status"
	                  : ms < 0 ? "snapshot run: no 'snapshot written to ... in X ms' line"
	                  : p.marker_ms >= 0 ? "snapshot run: the guest ran on after the snapshot"
	                                     : NULL;
	if (why) {
		describe(w->snap_error, sizeof(w->snap_error), why, &p);
		w->snap_failures++;
		return -1;
	}
	if (timed) {
		w->snap_ms[w->snaps] = ms;
		w->snap_run_ms[w->snaps++] = p.exit_ms;
	}
	return 0;
}

static void restore_once(struct runner_stats *s, const struct snap_cmd *c, int ok)
{
	struct proc_result p;
	if (snap_run(c, 120, false, &p) < 0 || p.code != ok || p.marker_ms < 0) {
		s->failures++;
		describe(s->error, sizeof(s->error),
		         p.code != ok ? "wrong exit status" : "no marker", &p);
		return;
	}
	s->marker[s->n] = p.marker_ms;
	s->exit[s->n] = p.exit_ms;
	s->rss[s->n++] = (double)p.maxrss_kib;
}

static void idle_once(struct idle_stats *s, const struct snap_cmd *c)
{
	struct proc_result p;
	if (snap_run(c, 120, true, &p) < 0 || p.marker_ms < 0 || p.vmhwm < 0) {
		s->failures++;
		describe(s->error, sizeof(s->error),
		         p.marker_ms < 0 ? "idle clone: no marker" : "idle clone: no /proc sample",
		         &p);
		return;
	}
	s->hwm[s->n] = (double)p.vmhwm;
	s->rss[s->n] = (double)p.vmrss;
	s->anon[s->n] = (double)p.rss_anon;
	s->file[s->n] = (double)p.rss_file;
	s->shmem[s->n++] = (double)p.rss_shmem;
}

static long long file_bytes(const char *path, bool on_disk)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return -1;
	return on_disk ? (long long)st.st_blocks * 512 : (long long)st.st_size;
}

/* The QEMU command line for @p mib of RAM, then @p extra (NULL-terminated). */
static void qemu_argv(char **a, char *mem, size_t memsize, unsigned mib, char *payload,
                      char *const extra[])
{
	snprintf(mem, memsize, "%uM", mib);
	char *base[] = {
		QEMU,
		"-M",
		"microvm,x-option-roms=off,rtc=off",
		"-accel",
		"kvm",
		"-cpu",
		"host",
		"-m",
		mem,
		"-smp",
		"1",
		"-nodefaults",
		"-no-user-config",
		"-display",
		"none",
		"-serial",
		"stdio",
		"-device",
		"isa-debug-exit,iobase=0xf4,iosize=1", /* not 4: 0xf5 is the snapshot port */
		"-kernel",
		payload,
		NULL
	};
	int n = 0;
	for (; base[n]; n++)
		a[n] = base[n];
	for (int i = 0; extra[i]; i++)
		a[n++] = extra[i];
	a[n] = NULL;
}

/* Saves QEMU's migration file @p mig of the machine with @p append paused before its first
 * instruction, and makes @p restore the command line that restores it (continued through
 * @p sock). true when saved; the error in @p r otherwise. */
static bool qemu_prepare(struct runner_stats *r, char **save, char **restore, char *mem,
                         size_t memsize, unsigned mib, char *payload, char *append, char *mig,
                         char *sock, char *qmp_arg, char *inc)
{
	char *save_extra[] = { "-append", append, "-S", "-qmp", qmp_arg, NULL };
	char *restore_extra[] = { "-append", append, "-incoming", inc, "-qmp", qmp_arg, NULL };
	qemu_argv(save, mem, memsize, mib, payload, save_extra);
	qemu_argv(restore, mem, memsize, mib, payload, restore_extra);
	if (snap_qemu_save(save, sock, mig, r->error, sizeof(r->error)) == 0)
		return true;
	r->failures++;
	return false;
}

/* @p n clones of @p c at once; QEMU's each get their own QMP socket in @p dir. */
static void clone_batch(struct runner_stats *r, const struct snap_cmd *c, int n, int ok, bool qemu,
                        const char *dir, char *mem, size_t memsize, unsigned mib, char *payload,
                        char *append, char *inc)
{
	static struct snap_cmd many[SNAP_MAX_CLONES];
	static char *qargv[SNAP_MAX_CLONES][48], qsock[SNAP_MAX_CLONES][128];
	static char qarg[SNAP_MAX_CLONES][160];
	for (int i = 0; i < n; i++) {
		many[i] = *c;
		if (!qemu)
			continue;
		snprintf(qsock[i], sizeof(qsock[i]), "%s/qmp-%d.sock", dir, i);
		snprintf(qarg[i], sizeof(qarg[i]), "unix:%s,server=on,wait=off", qsock[i]);
		char *extra[] = { "-append", append, "-incoming", inc, "-qmp", qarg[i], NULL };
		qemu_argv(qargv[i], mem, memsize, mib, payload, extra);
		many[i].argv = qargv[i];
		many[i].qmp = qsock[i];
	}
	r->clones_ms = snap_clones(many, n, ok, r->clones_error, sizeof(r->clones_error));
	for (int i = 0; qemu && i < n; i++)
		unlink(qsock[i]);
}

static void bench_size(struct row *w, unsigned mib, int runs, int clones, const char *build,
                       bool have_qemu)
{
	char dir[64], smolvm[4096], floor_bin[4096], payload_rel[4096];
	char ini[128], iini[128], snap[128], isnap[128], mig[128], imig[128], sock[128];
	char inc[160], iinc[160], qmp_arg[160], mem[16], mibs[16];
	char append[] = "console=ttyS0", iappend[] = "console=ttyS0 snap-bench.idle";
	char *qsave[48], *qrestore[48], *qisave[48], *qirestore[48];
	w->mib = mib;
	w->disk = w->apparent = w->qemu_file = -1;
	for (int k = 0; k < NR; k++)
		w->r[k].clones_ms = -1;
	snprintf(dir, sizeof(dir), "%s/smolvm-bench-snap-XXXXXX",
	         access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	snprintf(smolvm, sizeof(smolvm), "%s/smolvm", build);
	snprintf(floor_bin, sizeof(floor_bin), "%s/bench/floor", build);
	snprintf(payload_rel, sizeof(payload_rel), "%s/guest/snap-bench", build);
	char *payload = realpath(payload_rel, NULL);
	if (!payload || !mkdtemp(dir)) {
		snprintf(w->snap_error, sizeof(w->snap_error), "%.200s: %.100s",
		         payload ? "a folder for the files" : payload_rel, strerror(errno));
		w->snap_failures++;
		free(payload);
		return;
	}
	snprintf(ini, sizeof(ini), "%s/exit.ini", dir);
	snprintf(iini, sizeof(iini), "%s/idle.ini", dir);
	snprintf(snap, sizeof(snap), "%s/exit.smolmachine", dir);
	snprintf(isnap, sizeof(isnap), "%s/idle.smolmachine", dir);
	snprintf(mig, sizeof(mig), "%s/exit.migration", dir);
	snprintf(imig, sizeof(imig), "%s/idle.migration", dir);
	snprintf(sock, sizeof(sock), "%s/qmp.sock", dir);
	snprintf(qmp_arg, sizeof(qmp_arg), "unix:%s,server=on,wait=off", sock);
	snprintf(inc, sizeof(inc), "exec:cat %s", mig);
	snprintf(iinc, sizeof(iinc), "exec:cat %s", imig);
	snprintf(mibs, sizeof(mibs), "%u", mib);
	write_ini(ini, mib, payload, snap, false);
	write_ini(iini, mib, payload, isnap, true);

	/* smolvm's files: the timed snapshots, then the idle clone's */
	for (int i = 0; i < runs; i++)
		take_snapshot(w, smolvm, ini, true);
	bool have_snap = w->snaps > 0 && take_snapshot(w, smolvm, iini, false) == 0;
	w->disk = file_bytes(snap, true);
	w->apparent = file_bytes(snap, false);
	if (!have_snap)
		snprintf(w->r[SMOLVM].error, sizeof(w->r[SMOLVM].error), "no snapshot: %.300s",
		         w->snap_error);

	/* QEMU's */
	struct runner_stats *q = &w->r[QEMU_R];
	bool qemu_ok = false;
	if (!have_qemu)
		snprintf(q->error, sizeof(q->error), QEMU " is missing");
	else
		qemu_ok = qemu_prepare(q, qsave, qrestore, mem, sizeof(mem), mib, payload, append,
		                       mig, sock, qmp_arg, inc) &&
		          qemu_prepare(q, qisave, qirestore, mem, sizeof(mem), mib, payload,
		                       iappend, imig, sock, qmp_arg, iinc);
	w->qemu_file = qemu_ok ? file_bytes(mig, false) : -1;

	char *fargv[] = { floor_bin, payload, mibs, NULL };
	char *fiargv[] = { floor_bin, payload, mibs, iappend, NULL };
	char *sargv[] = { smolvm, "run", snap, NULL };
	char *siargv[] = { smolvm, "run", isnap, NULL };
	struct snap_cmd cmd[NR] = { { fargv, NULL }, { sargv, NULL }, { qrestore, sock } };
	struct snap_cmd idle_cmd[NR] = { { fiargv, NULL }, { siargv, NULL }, { qirestore, sock } };
	bool on[NR] = { true, have_snap, qemu_ok };
	for (int i = 0; i < runs; i++)
		for (int k = 0; k < NR; k++) {
			if (!on[k])
				continue;
			restore_once(&w->r[k], &cmd[k], ok_status[k]);
			idle_once(&w->r[k].idle, &idle_cmd[k]);
		}
	for (int k = 0; k < NR && clones > 0; k++)
		if (on[k])
			clone_batch(&w->r[k], &cmd[k], clones, ok_status[k], k == QEMU_R, dir, mem,
			            sizeof(mem), mib, payload, append, inc);
	const char *const files[] = { sock, ini, iini, snap, isnap, mig, imig };
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		unlink(files[i]);
	rmdir(dir);
	free(payload);
}

/* ---- output ------------------------------------------------------------------------- */

static double med(double *v, int n)
{
	return bench_median(v, n);
}

static void cell(char *dst, size_t size, bool ok, const char *fmt, double v)
{
	if (ok)
		snprintf(dst, size, fmt, v);
	else
		snprintf(dst, size, "-");
}

static void print_restore(const char *what, bool marker)
{
	printf("\nrestore, fork to %s (ms): medians (min)\n", what);
	printf("%-8s %17s %17s %17s %9s %9s\n", "RAM", "floor", "smolvm", "qemu-microvm", "smolvm/",
	       "qemu/");
	printf("%-8s %17s %17s %17s %9s %9s\n", "", "", "", "", "floor", "smolvm");
	for (int s = 0; s < NSIZES; s++) {
		struct row *w = &rows[s];
		char c[NR][32], r1[16], r2[16];
		double m[NR];
		for (int k = 0; k < NR; k++) {
			struct runner_stats *r = &w->r[k];
			double *v = marker ? r->marker : r->exit;
			m[k] = med(v, r->n);
			if (r->n)
				snprintf(c[k], sizeof(c[k]), "%.2f (%.2f)", m[k], v[0]);
			else
				snprintf(c[k], sizeof(c[k]), "-");
		}
		cell(r1, sizeof(r1), w->r[FLOOR].n && w->r[SMOLVM].n, "%.2fx",
		     m[SMOLVM] / m[FLOOR]);
		cell(r2, sizeof(r2), w->r[SMOLVM].n && w->r[QEMU_R].n, "%.1fx",
		     m[QEMU_R] / m[SMOLVM]);
		printf("%-4u MiB %17s %17s %17s %9s %9s\n", w->mib, c[0], c[1], c[2], r1, r2);
	}
}

static void print_table(int runs, int clones, const char *where)
{
	printf("\nsnapshots: guest/snap-bench asks for a snapshot first thing (snapshot-port); "
	       "a restore resumes at the next\ninstruction, which writes '@' to COM1 and exits. "
	       "smolvm: `smolvm run FILE.smolmachine`; floor: bench/floor\nrunning the same "
	       "payload from its entry with the same RAM mapped; qemu-microvm: -incoming of a "
	       "migration\nfile saved through QMP from the same machine started with -S (before "
	       "its first instruction: QEMU\ncannot stop at port 0xf5), continued through QMP "
	       "once loaded (it stays paused like its source);\nits firmware then loads the "
	       "payload, which runs from its entry (microseconds). Files on a tmpfs.\n%d runs "
	       "each, in %s\n",
	       runs, where);
	printf("%-8s %12s %12s %12s %12s %12s\n", "RAM", "snapshot ms", "snap run ms",
	       "file on disk", "apparent", "qemu file");
	for (int s = 0; s < NSIZES; s++) {
		struct row *w = &rows[s];
		char c[5][24];
		cell(c[0], 24, w->snaps, "%.2f", med(w->snap_ms, w->snaps));
		cell(c[1], 24, w->snaps, "%.1f", med(w->snap_run_ms, w->snaps));
		cell(c[2], 24, w->disk >= 0, "%.2f MiB", w->disk / 1048576.0);
		cell(c[3], 24, w->apparent >= 0, "%.2f MiB", w->apparent / 1048576.0);
		cell(c[4], 24, w->qemu_file >= 0, "%.2f MiB", w->qemu_file / 1048576.0);
		printf("%-4u MiB %12s %12s %12s %12s %12s\n", w->mib, c[0], c[1], c[2], c[3], c[4]);
	}
	printf("(snapshot ms: smolvm's own log line, from the pause at the guest's request to the "
	       "file fsynced and renamed;\nsnap run ms: the whole snapshotting run, fork to "
	       "exit)\n");
	print_restore("the guest's first byte after the restore on the pipe", true);
	print_restore("exit", false);

	printf("\nmemory (MiB): an idle clone under each runner (the same machine with "
	       "snap-bench.idle on its command line,\nhalted after the marker): /proc/PID/status "
	       "100 ms after the marker, medians\n");
	printf("%-8s %7s %7s %7s %8s %8s | %23s\n", "", "floor", "smolvm", "qemu", "smolvm/",
	       "qemu/", "smolvm's VmHWM is");
	printf("%-8s %7s %7s %7s %8s %8s | %7s %7s %7s\n", "RAM", "VmHWM", "VmHWM", "VmHWM",
	       "floor", "smolvm", "anon", "file", "shmem");
	for (int s = 0; s < NSIZES; s++) {
		struct row *w = &rows[s];
		struct idle_stats *f = &w->r[FLOOR].idle, *m = &w->r[SMOLVM].idle;
		struct idle_stats *q = &w->r[QEMU_R].idle;
		char c[8][24];
		cell(c[0], 24, f->n, "%.2f", med(f->hwm, f->n) / 1024);
		cell(c[1], 24, m->n, "%.2f", med(m->hwm, m->n) / 1024);
		cell(c[2], 24, q->n, "%.2f", med(q->hwm, q->n) / 1024);
		cell(c[3], 24, f->n && m->n, "%.2fx", med(m->hwm, m->n) / med(f->hwm, f->n));
		cell(c[4], 24, m->n && q->n, "%.1fx", med(q->hwm, q->n) / med(m->hwm, m->n));
		cell(c[5], 24, m->n, "%.2f", med(m->anon, m->n) / 1024);
		cell(c[6], 24, m->n, "%.2f", med(m->file, m->n) / 1024);
		cell(c[7], 24, m->n, "%.2f", med(m->shmem, m->n) / 1024);
		printf("%-4u MiB %7s %7s %7s %8s %8s | %7s %7s %7s\n", w->mib, c[0], c[1], c[2],
		       c[3], c[4], c[5], c[6], c[7]);
	}
	printf("(each runner's VmRSS, anon, file and shmem, and ru_maxrss of the exiting runs: "
	       "in the JSON)\n");

	printf("\nclones: %d restores of one file started at once (floor: %d floors), each to its "
	       "exit; clones/s = %d / wall time\n",
	       clones, clones, clones);
	printf("%-8s %9s %9s %9s %9s %9s\n", "RAM", "floor/s", "smolvm/s", "qemu/s", "smolvm/",
	       "smolvm/");
	printf("%-8s %9s %9s %9s %9s %9s\n", "", "", "", "", "floor", "qemu");
	for (int s = 0; s < NSIZES; s++) {
		struct row *w = &rows[s];
		char c[5][24];
		double cps[NR];
		for (int k = 0; k < NR; k++) {
			cps[k] = w->r[k].clones_ms > 0 ? clones * 1000.0 / w->r[k].clones_ms : 0;
			cell(c[k], 24, cps[k] > 0, "%.1f", cps[k]);
		}
		cell(c[3], 24, cps[SMOLVM] > 0 && cps[FLOOR] > 0, "%.2fx",
		     cps[SMOLVM] / cps[FLOOR]);
		cell(c[4], 24, cps[SMOLVM] > 0 && cps[QEMU_R] > 0, "%.1fx",
		     cps[SMOLVM] / cps[QEMU_R]);
		printf("%-4u MiB %9s %9s %9s %9s %9s\n", w->mib, c[0], c[1], c[2], c[3], c[4]);
	}
	for (int s = 0; s < NSIZES; s++) {
		struct row *w = &rows[s];
		one_line(w->snap_error);
		if (w->snap_failures)
			printf("%u MiB: snapshot: %d failed; last: %s\n", w->mib, w->snap_failures,
			       w->snap_error);
		for (int k = 0; k < NR; k++) {
			struct runner_stats *r = &w->r[k];
			one_line(r->error);
			one_line(r->clones_error);
			one_line(r->idle.error);
			if (r->failures || (!r->n && r->error[0]))
				printf("%u MiB: %s: %d ok, %d failed; last: %s\n", w->mib, rname[k],
				       r->n, r->failures, r->error);
			if (r->idle.failures)
				printf("%u MiB: %s idle clone: %d failed; last: %s\n", w->mib,
				       rname[k], r->idle.failures, r->idle.error);
			if (r->clones_error[0])
				printf("%u MiB: %s clones: %s\n", w->mib, rname[k],
				       r->clones_error);
		}
	}
}

static void json_series(FILE *j, const char *name, double *v, int n, double scale)
{
	if (n)
		fprintf(j, ", \"%s\": %.3f", name, med(v, n) * scale);
}

static void write_json(FILE *j, int runs, int clones, bool last)
{
	fprintf(j,
	        "    \"snapshot\": {\n      \"runs\": %d, \"clones\": %d, \"payload\": "
	        "\"guest/snap-bench\",\n      \"restore_measures\": \"fork to the guest's first "
	        "byte after the restore on stdout (marker_ms) and to exit (exit_ms); qemu: "
	        "-incoming of a migration file saved at -S, continued through QMP, payload from "
	        "its entry\",\n"
	        "      \"snapshot_measures\": \"smolvm's log line: pause to file durable\",\n"
	        "      \"memory_measures\": \"idle_clone: /proc/PID/status of an idle clone 100 "
	        "ms after its marker; ru_maxrss_kib: of the exiting runs, never below what the "
	        "child held of the bench between fork and exec\",\n"
	        "      \"rows\": [\n",
	        runs, clones);
	for (int s = 0; s < NSIZES; s++) {
		struct row *w = &rows[s];
		fprintf(j, "        {\"ram_mib\": %u, \"snapshot_failures\": %d", w->mib,
		        w->snap_failures);
		json_series(j, "snapshot_ms", w->snap_ms, w->snaps, 1);
		json_series(j, "snapshot_run_ms", w->snap_run_ms, w->snaps, 1);
		fprintf(j,
		        ", \"file_disk_bytes\": %lld, \"file_apparent_bytes\": %lld, "
		        "\"qemu_file_bytes\": %lld",
		        w->disk, w->apparent, w->qemu_file);
		for (int k = 0; k < NR; k++) {
			struct runner_stats *r = &w->r[k];
			fprintf(j, ",\n         \"%s\": {\"ok_runs\": %d, \"failures\": %d",
			        rkey[k], r->n, r->failures);
			json_series(j, "marker_ms", r->marker, r->n, 1);
			json_series(j, "exit_ms", r->exit, r->n, 1);
			if (r->n)
				fprintf(j, ", \"min_marker_ms\": %.3f, \"min_exit_ms\": %.3f",
				        r->marker[0], r->exit[0]); /* sorted by the medians */
			json_series(j, "ru_maxrss_kib", r->rss, r->n, 1);
			if (r->clones_ms > 0)
				fprintf(j, ", \"clones_per_s\": %.2f",
				        clones * 1000.0 / r->clones_ms);
			{
				struct idle_stats *d = &r->idle;
				fprintf(j, ", \"idle_clone\": {\"samples\": %d, \"failures\": %d",
				        d->n, d->failures);
				json_series(j, "vmhwm_kib", d->hwm, d->n, 1);
				json_series(j, "vmrss_kib", d->rss, d->n, 1);
				json_series(j, "rss_anon_kib", d->anon, d->n, 1);
				json_series(j, "rss_file_kib", d->file, d->n, 1);
				json_series(j, "rss_shmem_kib", d->shmem, d->n, 1);
				fprintf(j, "}");
			}
			fprintf(j, "}");
		}
		struct runner_stats *f = &w->r[FLOOR], *m = &w->r[SMOLVM], *q = &w->r[QEMU_R];
		if (f->n && m->n)
			fprintf(j,
			        ",\n         \"smolvm_vs_floor\": {\"marker\": %.3f, \"exit\": "
			        "%.3f}",
			        med(m->marker, m->n) / med(f->marker, f->n),
			        med(m->exit, m->n) / med(f->exit, f->n));
		if (m->n && q->n)
			fprintf(j,
			        ",\n         \"qemu_vs_smolvm\": {\"marker\": %.3f, \"exit\": "
			        "%.3f}",
			        med(q->marker, q->n) / med(m->marker, m->n),
			        med(q->exit, q->n) / med(m->exit, m->n));
		fprintf(j, "}%s\n", s + 1 < NSIZES ? "," : "");
	}
	fprintf(j, "      ]\n    }%s\n", last ? "" : ",");
}

int snap_bench(const char *build, int runs, int clones, const char *where, FILE *j, bool last)
{
	bool have_qemu = access(QEMU, X_OK) == 0;
	for (int s = 0; s < NSIZES; s++)
		bench_size(&rows[s], sizes_mib[s], runs, clones, build, have_qemu);
	print_table(runs, clones, where);
	if (j)
		write_json(j, runs, clones, last);
	int bad = 0;
	for (int s = 0; s < NSIZES; s++)
		for (int k = 0; k < NR; k++)
			if (!rows[s].r[k].n && (k != QEMU_R || have_qemu))
				bad = 1;
	return bad;
}
