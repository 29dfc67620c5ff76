/* Unit tests of the event loop (core/evloop.c): dispatch, removal during dispatch, ownership,
 * and watches changed from another thread while the loop runs (as a UART's port handler on a
 * vCPU thread re-arms its input). */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#include "evloop.h"

static int calls;
static void on_ready(void *opaque, int fd, uint32_t events)
{
	char buf[64];
	(void)opaque;
	cr_assert(events & SMOL_FD_IN);
	if (read(fd, buf, sizeof(buf)) < 0)
		cr_assert_fail("read");
	calls++;
}

Test(evloop, dispatches_and_unwatches)
{
	struct evloop l;
	int p[2];
	cr_assert_eq(evloop_init(&l), 0);
	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(evloop_watch(&l, p[0], SMOL_FD_IN, NULL, on_ready, NULL), 0);
	cr_assert_eq(evloop_watch(&l, p[0], SMOL_FD_IN, NULL, on_ready, NULL), -EEXIST);
	cr_assert_eq(write(p[1], "x", 1), 1);
	cr_assert_eq(evloop_run_once(&l, 1000), 0);
	cr_assert_eq(calls, 1);
	/* another owner may not remove it */
	cr_assert_eq(evloop_unwatch(&l, p[0], (struct smol_dev *)&l), -EPERM);
	cr_assert_eq(evloop_unwatch(&l, p[0], NULL), 0);
	cr_assert_eq(evloop_unwatch(&l, p[0], NULL), -ENOENT);
	cr_assert_eq(write(p[1], "y", 1), 1);
	cr_assert_eq(evloop_run_once(&l, 10), 0);
	cr_assert_eq(calls, 1); /* not watched any more */
	evloop_free(&l);
}

/* A regular file holding a few bytes, read from its start. */
static FILE *data_file(void)
{
	FILE *f = tmpfile();
	cr_assert(f);
	fputs("data", f);
	fflush(f);
	rewind(f);
	return f;
}

Test(evloop, regular_files_are_always_ready)
{
	struct evloop l;
	FILE *f = data_file();
	cr_assert_eq(evloop_init(&l), 0);
	calls = 0;
	cr_assert_eq(evloop_watch(&l, fileno(f), SMOL_FD_IN, NULL, on_ready, NULL), 0);
	cr_assert_eq(evloop_run_once(&l, -1), 0); /* must not block */
	cr_assert_eq(calls, 1);
	cr_assert_eq(evloop_unwatch(&l, fileno(f), NULL), 0);
	evloop_free(&l);
	fclose(f);
}

/* A regular file watched from another thread while the loop sleeps with no timeout (a UART
 * whose host buffer emptied re-watches its input file from a vCPU's register read): the loop
 * must wake and offer it, or input from a file stops after the buffer's first fill. */
struct late {
	struct evloop *l;
	int fd;
};

static void *watch_late(void *arg)
{
	struct late *w = arg;
	usleep(100 * 1000); /* the loop is asleep in epoll_wait by now */
	cr_assert_eq(evloop_watch(w->l, w->fd, SMOL_FD_IN, NULL, on_ready, NULL), 0);
	return NULL;
}

Test(evloop, a_regular_file_watched_from_another_thread_wakes_the_loop, .timeout = 10)
{
	struct evloop l;
	FILE *f = data_file();
	cr_assert_eq(evloop_init(&l), 0);
	calls = 0;
	struct late w = { &l, fileno(f) };
	pthread_t t;
	pthread_create(&t, NULL, watch_late, &w);
	cr_assert_eq(evloop_run_once(&l, -1), 0); /* no timeout: only a wake-up ends this round */
	pthread_join(t, NULL);
	if (!calls)
		cr_assert_eq(evloop_run_once(&l, 0), 0); /* the round after it offers the file */
	cr_assert_eq(calls, 1, "the file was not offered: the loop slept through the watch");
	evloop_unwatch(&l, fileno(f), NULL);
	evloop_free(&l);
	fclose(f);
}

struct churn {
	struct evloop *l;
	int fd;
	volatile int stop;
};

static void noop(void *opaque, int fd, uint32_t events)
{
	(void)opaque;
	(void)fd;
	(void)events;
}

static void *churn_thread(void *arg)
{
	struct churn *c = arg;
	for (int i = 0; i < 20000 && !c->stop; i++) {
		evloop_watch(c->l, c->fd, SMOL_FD_IN, NULL, noop, NULL);
		evloop_unwatch(c->l, c->fd, NULL);
	}
	return NULL;
}

Test(evloop, watches_changed_from_other_threads)
{
	struct evloop l;
	int a[2], b[2];
	cr_assert_eq(evloop_init(&l), 0);
	cr_assert_eq(pipe(a), 0);
	cr_assert_eq(pipe(b), 0);
	/* both always readable: every round has events to dispatch */
	cr_assert_eq(write(a[1], "a", 1), 1);
	cr_assert_eq(write(b[1], "b", 1), 1);
	struct churn c1 = { &l, a[0], 0 }, c2 = { &l, b[0], 0 };
	pthread_t t1, t2;
	pthread_create(&t1, NULL, churn_thread, &c1);
	pthread_create(&t2, NULL, churn_thread, &c2);
	for (int i = 0; i < 20000; i++)
		cr_assert_eq(evloop_run_once(&l, 0), 0);
	c1.stop = c2.stop = 1;
	pthread_join(t1, NULL);
	pthread_join(t2, NULL);
	evloop_run_once(&l, 0);
	evloop_free(&l);
}
