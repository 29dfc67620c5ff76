/* run.c: see run.h. */
#define _GNU_SOURCE
#include "run.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

pid_t bench_spawn(char *const argv[], unsigned alarm_s, int *out_fd)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(p[1], 1);
		dup2(p[1], 2);
		alarm(alarm_s);
		execv(argv[0], argv);
		_exit(127);
	}
	close(p[1]);
	if (pid < 0) {
		close(p[0]);
		return -1;
	}
	*out_fd = p[0];
	return pid;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

double bench_median(double *v, int n)
{
	if (n <= 0)
		return 0;
	qsort(v, (size_t)n, sizeof(*v), cmp_d);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

char *bench_b64(const char *in)
{
	static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(in);
	char *o = malloc(4 * ((n + 2) / 3) + 1), *q = o;
	if (!o)
		return NULL;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)(unsigned char)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)(unsigned char)in[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)in[i + 2];
		*q++ = t[(v >> 18) & 63];
		*q++ = t[(v >> 12) & 63];
		*q++ = i + 1 < n ? t[(v >> 6) & 63] : '=';
		*q++ = i + 2 < n ? t[v & 63] : '=';
	}
	*q = 0;
	return o;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

void bench_run_once(struct runner *r)
{
	int out;
	double t0 = now_ms(), t_line = -1;
	pid_t pid = bench_spawn(r->argv, r->time_to_line ? 180 : 60, &out);
	if (pid < 0) {
		r->failures++;
		return;
	}
	static char buf[1 << 16];
	size_t len = 0;
	for (;;) {
		ssize_t n = read(out, buf + len, sizeof(buf) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		buf[len] = 0;
		if (t_line < 0 && strstr(buf, r->expect))
			t_line = now_ms();
		if (len > sizeof(buf) / 2) { /* keep the tail: enough for the expected line */
			memmove(buf, buf + len - 4096, 4096);
			len = 4096;
		}
	}
	close(out);
	int status;
	struct rusage ru;
	if (wait4(pid, &status, 0, &ru) < 0) {
		r->failures++;
		return;
	}
	double t1 = now_ms();
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	if (code != r->ok_status || t_line < 0) {
		r->failures++;
		snprintf(r->last_error, sizeof(r->last_error), "status %d, output: %.180s", code,
		         buf);
		return;
	}
	r->ms[r->n] = (r->time_to_line ? t_line : t1) - t0;
	r->rss_kib[r->n] = ru.ru_maxrss;
	r->n++;
}

static int cmp_l(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;
	return x < y ? -1 : x > y;
}

static long median_l(long *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_l);
	return v[n / 2];
}

int bench_report(const char *what, struct runner *rs, int nr, int base, const char *unit, FILE *j,
                 bool last)
{
	double base_ms = rs[base].n ? bench_median(rs[base].ms, rs[base].n) : 0;
	long base_rss = rs[base].n ? median_l(rs[base].rss_kib, rs[base].n) : 0;
	int bad = 0;
	printf("%-14s %10s %10s %10s %9s %9s %s\n", "runner", "median ms", "min ms", "peak RSS",
	       "time/", "RSS/", "failures");
	printf("%-14s %10s %10s %10s %9s %9s\n", "", "", "", "", rs[base].name, rs[base].name);
	if (j)
		fprintf(j, "    \"%s\": [\n", what);
	for (int k = 0; k < nr; k++) {
		struct runner *r = &rs[k];
		if (!r->n) {
			printf("%-14s %10s %10s %10s %9s %9s %d (%s)\n", r->name, "-", "-", "-",
			       "-", "-", r->failures, r->last_error);
			bad = 1;
			continue;
		}
		double med = bench_median(r->ms, r->n), min = r->ms[0];
		long rss = median_l(r->rss_kib, r->n);
		printf("%-14s %10.1f %10.1f %7.2f MiB %8.2fx %8.2fx %d\n", r->name, med, min,
		       rss / 1024.0, base_ms ? med / base_ms : 0,
		       base_rss ? (double)rss / base_rss : 0, r->failures);
		if (r->failures)
			printf("    last failure: %s\n", r->last_error);
		if (j)
			fprintf(j,
			        "      {\"runner\": \"%s\", \"measures\": \"%s\", \"median_ms\": "
			        "%.3f, "
			        "\"min_ms\": %.3f, \"peak_rss_kib\": %ld, \"time_vs_%s\": %.3f, "
			        "\"rss_vs_%s\": %.3f, \"ok_runs\": %d, \"failures\": %d}%s\n",
			        r->name, unit, med, min, rss, rs[base].name,
			        base_ms ? med / base_ms : 0, rs[base].name,
			        base_rss ? (double)rss / base_rss : 0, r->n, r->failures,
			        k + 1 < nr ? "," : "");
	}
	if (j)
		fprintf(j, "    ]%s\n", last ? "" : ",");
	return bad;
}
