/*
 * The threaded host scenarios in plain C (no Criterion: its runner cannot start under
 * ThreadSanitizer, issue 18), built and run in every build: plain, ASan+UBSan, and TSan
 * (scripts/test-sanitize runs it as 'threads-tsan'). The device I/O thread of the virtio
 * library, of virtio-blk on an image file and of virtio-net on its socket backend, against
 * the test's threads doing what vCPUs do: MMIO writes, resets, QueueReady 0, pause and resume
 * for snapshots, destroy with requests in flight.
 *
 *   test-threads            every scenario, in order
 *   test-threads NAME...    those named
 *
 * Each prints "ok NAME (N ms)"; a failed check prints what failed (file, line, the check,
 * the values, the scenario, the fake host's log) and the process ends with status 1. A data
 * race that TSan reports ends it too (TSAN_OPTIONS=halt_on_error=1 in scripts/test-sanitize).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fake-host.h"
#include "threads.h"

static const char *scenario = "(none)";

void check_failed(const char *file, int line, const char *expr, int have_values, long long a,
                  long long b, const char *fmt, ...)
{
	static int failing; /* a second thread failing meanwhile waits for the first's exit */
	va_list ap;

	if (__atomic_exchange_n(&failing, 1, __ATOMIC_ACQ_REL))
		for (;;)
			pause();
	fprintf(stderr, "FAILED %s: %s:%d: check failed: %s",
	        __atomic_load_n(&scenario, __ATOMIC_ACQUIRE), file, line, expr);
	if (have_values)
		fprintf(stderr, " (%lld vs %lld)", a, b);
	if (fmt[1]) {
		fprintf(stderr, ":");
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
	}
	fprintf(stderr, "\n---- fake host log\n%s---- end of log\n", fake_log());
	fflush(stderr);
	_exit(1); /* device threads may still run: no exit handlers */
}

static void *bg_run(void *opaque)
{
	struct bg *b = opaque;

	b->fn(b->arg);
	__atomic_store_n(&b->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

void bg_start(struct bg *b, void (*fn)(void *arg), void *arg)
{
	b->fn = fn;
	b->arg = arg;
	b->done = 0;
	CHECK_EQ(pthread_create(&b->thread, NULL, bg_run, b), 0, "cannot start a thread");
	b->started = true;
}

bool bg_done(struct bg *b)
{
	return __atomic_load_n(&b->done, __ATOMIC_ACQUIRE);
}

void bg_join(struct bg *b, const char *what, int ms)
{
	struct timespec ts;

	CHECK(b->started);
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	int r = pthread_timedjoin_np(b->thread, NULL, &ts);
	CHECK_EQ(r, 0, "%s hangs (%d ms)", what, ms);
	b->started = false;
}

void msleep(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

#define S(name)                                                                                    \
	{                                                                                          \
#name, name                                                                        \
	}
static const struct {
	const char *name;
	void (*run)(void);
} scenarios[] = {
	S(worker_kicks_during_mmio),
	S(worker_cancel_idle_ends_the_request),
	S(worker_wait_idle_waits_for_the_request_whole),
	S(worker_pause_resume),
	S(worker_stop_while_busy),
	S(blk_stream_with_register_traffic),
	S(blk_reset_races_a_stream),
	S(blk_reset_waits_for_the_request_in_flight),
	S(blk_queue_ready_0_waits_for_the_request_in_flight),
	S(blk_pause_save_restore),
	S(blk_destroy_while_busy),
	S(net_traffic_both_ways),
	S(net_reset_mid_traffic),
	S(net_queue_ready_0_mid_traffic),
	S(net_pause_save_restore),
	S(net_destroy_mid_traffic),
};
#define N_SCENARIOS (sizeof(scenarios) / sizeof(scenarios[0]))

static void run(unsigned i)
{
	long t0 = now_ms();

	__atomic_store_n(&scenario, scenarios[i].name, __ATOMIC_RELEASE);
	scenarios[i].run();
	printf("ok %s (%ld ms)\n", scenarios[i].name, now_ms() - t0);
	fflush(stdout);
	__atomic_store_n(&scenario, "(between scenarios)", __ATOMIC_RELEASE);
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN); /* a peer writing to a device that left: EPIPE */
	if (argc == 1) {
		for (unsigned i = 0; i < N_SCENARIOS; i++)
			run(i);
		printf("%zu scenarios passed\n", N_SCENARIOS);
		return 0;
	}
	for (int a = 1; a < argc; a++) {
		unsigned i = 0;

		while (i < N_SCENARIOS && strcmp(scenarios[i].name, argv[a]) != 0)
			i++;
		if (i == N_SCENARIOS) {
			fprintf(stderr, "test-threads: no scenario '%s'; they are:\n", argv[a]);
			for (i = 0; i < N_SCENARIOS; i++)
				fprintf(stderr, "  %s\n", scenarios[i].name);
			return 2;
		}
		run(i);
	}
	return 0;
}
