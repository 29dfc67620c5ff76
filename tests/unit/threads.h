/*
 * The threaded scenarios run without Criterion (test-threads.c): the device I/O thread against
 * the test's threads standing in for vCPUs, for ThreadSanitizer (Criterion's runner cannot
 * start under it). Each scenario is a function that sets its machine up, checks, and tears it
 * down; a failed check ends the process with status 1 (check.h, built with -DTEST_PLAIN).
 */
#ifndef SMOLVM_TEST_THREADS_H
#define SMOLVM_TEST_THREADS_H

#include <pthread.h>
#include <stdbool.h>

#include "check.h"

#define CHECK cr_assert
#define CHECK_NOT cr_assert_not
#define CHECK_EQ cr_assert_eq
#define CHECK_NE cr_assert_neq
#define CHECK_LT cr_assert_lt
#define CHECK_LE cr_assert_leq
#define CHECK_GT cr_assert_gt
#define CHECK_GE cr_assert_geq

/* A second thread running @fn(@arg) once: a vCPU doing one access, a peer, a feeder. */
struct bg {
	pthread_t thread;
	void (*fn)(void *arg);
	void *arg;
	int done; /* atomic: fn returned */
	bool started;
};

void bg_start(struct bg *b, void (*fn)(void *arg), void *arg);
bool bg_done(struct bg *b);
/* Joins it, failing the check "@what hangs" after @ms milliseconds. */
void bg_join(struct bg *b, const char *what, int ms);

void msleep(int ms);
long now_ms(void);

/* The scenarios (threads-worker.c, threads-blk.c, threads-net.c). */
void worker_kicks_during_mmio(void);
void worker_cancel_idle_ends_the_request(void);
void worker_wait_idle_waits_for_the_request_whole(void);
void worker_pause_resume(void);
void worker_stop_while_busy(void);

void blk_stream_with_register_traffic(void);
void blk_reset_races_a_stream(void);
void blk_reset_waits_for_the_request_in_flight(void);
void blk_queue_ready_0_waits_for_the_request_in_flight(void);
void blk_pause_save_restore(void);
void blk_destroy_while_busy(void);

void net_traffic_both_ways(void);
void net_reset_mid_traffic(void);
void net_queue_ready_0_mid_traffic(void);
void net_pause_save_restore(void);
void net_destroy_mid_traffic(void);

#endif
