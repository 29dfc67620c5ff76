/*
 * smolvm-bench: `make bench`. Boots the guest kit's `oneline` payload (prints one line, exits)
 * under three runners, interleaved, N times each, in the same place (the nest here):
 *   floor   bench/floor, the raw-ioctl minimum (kvm-smoke's kind of program)
 *   smolvm  build/smolvm run with a UART and a debug-exit device
 *   qemu    QEMU microvm booting the same file through its PVH entry
 * and reports, per runner, the wall time from fork to exit (median and min), the peak RSS
 * (median of ru_maxrss), and ratios to the floor. Prints a table, writes JSON.
 *
 * usage: smolvm-bench BUILD_DIR [--runs N] [--json FILE]
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_RUNS 200
#define EXPECT_LINE "oneline: hello from the guest"

struct runner {
	const char *name;
	char *argv[32];
	int ok_status; /* exit status meaning success */
	double ms[MAX_RUNS];
	long rss_kib[MAX_RUNS];
	int n, failures;
	char last_error[256];
};

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Runs once; output goes to a temp file checked for the guest's line. */
static void run_once(struct runner *r)
{
	char out[] = "/tmp/smolvm-bench.XXXXXX";
	int fd = mkstemp(out);
	if (fd < 0) {
		r->failures++;
		return;
	}
	unlink(out);
	double t0 = now_ms();
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		alarm(60); /* survives exec: a runner that hangs dies and counts as a failure */
		execv(r->argv[0], r->argv);
		_exit(127);
	}
	int status;
	struct rusage ru;
	if (pid < 0 || wait4(pid, &status, 0, &ru) < 0) {
		r->failures++;
		close(fd);
		return;
	}
	double t1 = now_ms();
	char buf[8192];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	if (code != r->ok_status || !strstr(buf, EXPECT_LINE)) {
		r->failures++;
		snprintf(r->last_error, sizeof(r->last_error), "status %d, output: %.180s", code,
		         buf);
		return;
	}
	r->ms[r->n] = t1 - t0;
	r->rss_kib[r->n] = ru.ru_maxrss;
	r->n++;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}
static int cmp_l(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;
	return x < y ? -1 : x > y;
}

static double median_d(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_d);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static long median_l(long *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_l);
	return v[n / 2];
}

int main(int argc, char **argv)
{
	const char *build = NULL, *json = NULL;
	int runs = 10;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
			runs = atoi(argv[++i]);
		else if (strcmp(argv[i], "--json") == 0 && i + 1 < argc)
			json = argv[++i];
		else
			build = argv[i];
	}
	if (!build || runs < 1 || runs > MAX_RUNS) {
		fprintf(stderr, "usage: smolvm-bench BUILD_DIR [--runs 1-%d] [--json FILE]\n",
		        MAX_RUNS);
		return 2;
	}
	char smolvm[4096], floor_bin[4096], payload[4096], ini[] = "/tmp/smolvm-bench-XXXXXX.ini";
	snprintf(smolvm, sizeof(smolvm), "%s/smolvm", build);
	snprintf(floor_bin, sizeof(floor_bin), "%s/bench/floor", build);
	snprintf(payload, sizeof(payload), "%s/guest/oneline", build);
	if (access(payload, R_OK) != 0) {
		fprintf(stderr, "smolvm-bench: %s: %s\n", payload, strerror(errno));
		return 1;
	}
	int ifd = mkstemps(ini, 4);
	if (ifd < 0)
		return 1;
	dprintf(ifd,
	        "[machine]\nmemory = 128M\n[boot]\nkernel = %s\n"
	        "[device com1]\ntype = uart-16550\ninput = none\n"
	        "[device exit]\ntype = debug-exit\n",
	        realpath(payload, NULL));
	close(ifd);

	struct runner rs[3] = {
		{ .name = "floor", .argv = { floor_bin, payload, "128", NULL }, .ok_status = 0 },
		{ .name = "smolvm", .argv = { smolvm, "run", ini, NULL }, .ok_status = 0 },
		{ .name = "qemu-microvm",
		  .argv = { "/usr/bin/qemu-system-x86_64",
		            "-M",
		            "microvm,x-option-roms=off,rtc=off",
		            "-accel",
		            "kvm",
		            "-cpu",
		            "host",
		            "-m",
		            "128M",
		            "-smp",
		            "1",
		            "-nodefaults",
		            "-no-user-config",
		            "-display",
		            "none",
		            "-serial",
		            "stdio",
		            "-device",
		            "isa-debug-exit,iobase=0xf4,iosize=4",
		            "-kernel",
		            payload,
		            NULL },
		  .ok_status = 1 /* isa-debug-exit: (0 << 1) | 1 */ },
	};
	int nr = access(rs[2].argv[0], X_OK) == 0 ? 3 : 2;

	for (int i = 0; i < runs; i++)
		for (int k = 0; k < nr; k++)
			run_once(&rs[k]);
	unlink(ini);

	double floor_ms = rs[0].n ? median_d(rs[0].ms, rs[0].n) : 0;
	long floor_rss = rs[0].n ? median_l(rs[0].rss_kib, rs[0].n) : 0;
	const char *where = getenv("NEST_INSIDE") ? "the test nest (nested KVM under QEMU TCG)"
	                                          : "this host's KVM";
	printf("boot-to-exit of guest/oneline (prints one line, exits), %d runs each, in %s\n",
	       runs, where);
	printf("%-14s %10s %10s %10s %9s %9s %s\n", "runner", "median ms", "min ms", "peak RSS",
	       "time/flr", "RSS/flr", "failures");
	FILE *j = json ? fopen(json, "w") : NULL;
	if (j)
		fprintf(j,
		        "{\n  \"benchmark\": \"boot-to-exit\",\n  \"payload\": \"guest/oneline\",\n"
		        "  \"runs\": %d,\n  \"where\": \"%s\",\n  \"results\": [\n",
		        runs, getenv("NEST_INSIDE") ? "nest" : "host");
	int bad = 0;
	for (int k = 0; k < nr; k++) {
		struct runner *r = &rs[k];
		if (!r->n) {
			printf("%-14s %10s %10s %10s %9s %9s %d (%s)\n", r->name, "-", "-", "-",
			       "-", "-", r->failures, r->last_error);
			bad = 1;
			continue;
		}
		double med = median_d(r->ms, r->n), min = r->ms[0];
		long rss = median_l(r->rss_kib, r->n);
		printf("%-14s %10.1f %10.1f %7.2f MiB %8.2fx %8.2fx %d\n", r->name, med, min,
		       rss / 1024.0, floor_ms ? med / floor_ms : 0,
		       floor_rss ? (double)rss / floor_rss : 0, r->failures);
		if (r->failures)
			printf("    last failure: %s\n", r->last_error);
		if (j)
			fprintf(j,
			        "    {\"runner\": \"%s\", \"median_ms\": %.3f, \"min_ms\": %.3f, "
			        "\"peak_rss_kib\": %ld, \"time_vs_floor\": %.3f, \"rss_vs_floor\": "
			        "%.3f, "
			        "\"ok_runs\": %d, \"failures\": %d}%s\n",
			        r->name, med, min, rss, floor_ms ? med / floor_ms : 0,
			        floor_rss ? (double)rss / floor_rss : 0, r->n, r->failures,
			        k + 1 < nr ? "," : "");
	}
	if (nr < 3)
		printf("qemu-microvm   not run: /usr/bin/qemu-system-x86_64 is missing\n");
	if (j) {
		fprintf(j, "  ]\n}\n");
		fclose(j);
		printf("wrote %s\n", json);
	}
	return bad;
}
