/*
 * The virtio library's device thread (devices/virtio/virtio-worker.h) on its own, two queues,
 * under the test's threads: kicks through the ioeventfds while the main thread (a vCPU) uses
 * the MMIO window, the quiesce handshake (virtio_worker_wait_idle, virtio_worker_cancel_idle,
 * virtio_worker_io_cancelled), pause and resume, stop with a request in hand. The serve
 * callback stands in for a device: each "request" is CHUNKS chunks of "I/O" (a sleep) done
 * with the worker lock released, which ends early when virtio_worker_io_cancelled() says so.
 */
#define _GNU_SOURCE
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "fake-host.h"
#include "threads.h"
#include "virtio-worker.h"

#define WBASE 0xd0000000ull
#define NOTIFY_ADDR (WBASE + VIRTIO_MMIO_QUEUE_NOTIFY)

static struct smol_dev *wdev;
static struct virtio_mmio vm;
static struct virtio_worker w;

/* What serve does (set by the scenario) and what it did (read by it). */
static atomic_uint chunks; /* chunks of a request */
static atomic_uint chunk_us; /* how long one chunk's "I/O" takes */
static atomic_uint more[2]; /* serve calls left that answer "more" */
static atomic_uint served[2]; /* requests started, per queue */
static atomic_uint finished; /* requests that did all their chunks */
static atomic_uint cut; /* requests that ended early: io_cancelled */
static atomic_uint in_io; /* a request is between io_begin and io_end */
static atomic_uint chunks_done;

static void *t_gpa(void *opaque, uint64_t gpa, uint64_t len)
{
	(void)opaque;
	(void)gpa;
	(void)len;
	return NULL;
}

static void t_irq(void *opaque, int level)
{
	(void)opaque;
	(void)level;
}

static void t_notify(void *opaque, unsigned index)
{
	(void)opaque;
	virtio_worker_notify(&w, index);
}

static const struct virtio_mmio_ops ops = { .gpa_ptr = t_gpa,
	                                    .irq = t_irq,
	                                    .queue_notify = t_notify };

/* The device's MMIO window, as a device forwards it: the worker lock around the transport,
 * the handshake before a write that may take a queue away. */
static uint64_t t_mmio_read(void *opaque, uint64_t off, unsigned size)
{
	(void)opaque;
	virtio_worker_lock(&w);
	uint64_t v = virtio_mmio_read(&vm, off, size);
	virtio_worker_unlock(&w);
	return v;
}

static void t_mmio_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	(void)opaque;
	virtio_worker_lock(&w);
	if (off == VIRTIO_MMIO_STATUS || off == VIRTIO_MMIO_QUEUE_READY)
		virtio_worker_wait_idle(&w);
	virtio_mmio_write(&vm, off, size, value);
	virtio_worker_unlock(&w);
}

static const struct smol_io_ops io = { .read = t_mmio_read, .write = t_mmio_write };

static bool t_serve(void *opaque, unsigned index)
{
	unsigned n = atomic_load(&chunks), us = atomic_load(&chunk_us), c;

	(void)opaque;
	if (index > 1 || virtio_worker_yield(&w))
		return false;
	atomic_fetch_add(&served[index], 1);
	atomic_store(&in_io, 1);
	virtio_worker_io_begin(&w);
	for (c = 0; c < n && !virtio_worker_io_cancelled(&w); c++) {
		if (us)
			usleep(us);
		atomic_fetch_add(&chunks_done, 1);
	}
	atomic_store(&in_io, 0);
	virtio_worker_io_end(&w);
	atomic_fetch_add(c == n ? &finished : &cut, 1);
	if (atomic_load(&more[index]) == 0)
		return false;
	atomic_fetch_sub(&more[index], 1);
	return true;
}

static void start(unsigned n_chunks, unsigned us)
{
	uint64_t base;

	fake_host_init();
	fake_ioeventfd_accept(true);
	wdev = fake_dev_new("net0");
	atomic_store(&chunks, n_chunks);
	atomic_store(&chunk_us, us);
	for (unsigned i = 0; i < 2; i++) {
		atomic_store(&more[i], 0);
		atomic_store(&served[i], 0);
	}
	atomic_store(&finished, 0);
	atomic_store(&cut, 0);
	atomic_store(&in_io, 0);
	atomic_store(&chunks_done, 0);
	CHECK_EQ(virtio_mmio_init(&vm, &ops, NULL, 1 /* network */, 0, 2, 16, 0), 0);
	/* live queues: DRIVER_OK, both ready (this serve uses no ring) */
	vm.status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
	            VIRTIO_STATUS_DRIVER_OK;
	vm.queues[0].ready = vm.queues[1].ready = true;
	CHECK_EQ(fake_host.map_mmio(wdev, WBASE, 0x200, &io, NULL, &base), 0);
	virtio_worker_init(&w, &fake_host, wdev, &vm, 2, t_serve, NULL);
	CHECK_EQ(virtio_worker_attach(&w, NOTIFY_ADDR), 0, "%s", fake_log());
	CHECK(w.threaded, "no I/O thread with ioeventfds");
}

static void stop(void)
{
	CHECK_EQ(virtio_worker_stop(&w), 0);
	fake_host_fini();
}

static void guest_kick(unsigned index)
{
	fake_mmio_write(NOTIFY_ADDR, 4, index); /* the fake's ioeventfd, by datamatch */
}

static bool wait_for(atomic_uint *v, unsigned n)
{
	for (long end = now_ms() + 5000; now_ms() < end; usleep(200))
		if (atomic_load(v) >= n)
			return true;
	return atomic_load(v) >= n;
}

/* Until nothing changed in served[] and finished for 30 ms. */
static void settle(void)
{
	unsigned s0, s1, f;

	do {
		s0 = atomic_load(&served[0]);
		s1 = atomic_load(&served[1]);
		f = atomic_load(&finished);
		msleep(30);
	} while (s0 != atomic_load(&served[0]) || s1 != atomic_load(&served[1]) ||
	         f != atomic_load(&finished));
}

static uint32_t rd(uint64_t off)
{
	return (uint32_t)fake_mmio_read(WBASE + off, 4);
}

static void wr(uint64_t off, uint32_t v)
{
	fake_mmio_write(WBASE + off, 4, v);
}

/* Kicks of both queues through the ioeventfds, mixed with the register accesses a driver
 * makes, then QueueReady 0 on queue 1: its kicks are no longer served, queue 0's are. */
void worker_kicks_during_mmio(void)
{
	start(3, 50);
	for (unsigned i = 0; i < 300; i++) {
		guest_kick(i % 2);
		wr(VIRTIO_MMIO_QUEUE_SEL, i % 2);
		CHECK_EQ(rd(VIRTIO_MMIO_QUEUE_READY), 1, "queue %u", i % 2);
		CHECK_EQ(rd(VIRTIO_MMIO_STATUS), vm.status);
		if (i % 50 == 0)
			msleep(1);
	}
	CHECK(wait_for(&served[0], 1) && wait_for(&served[1], 1), "both queues served");
	settle();
	CHECK_EQ(atomic_load(&cut), 0, "a request ended early: nothing cancelled");
	CHECK_EQ(atomic_load(&finished), atomic_load(&served[0]) + atomic_load(&served[1]));
	CHECK_EQ(atomic_load(&chunks_done), 3 * atomic_load(&finished));
	CHECK_LE(atomic_load(&served[0]) + atomic_load(&served[1]), 300, "more than kicked");
	/* one more kick, one more request */
	unsigned s1 = atomic_load(&served[1]);
	guest_kick(1);
	CHECK(wait_for(&served[1], s1 + 1));
	settle();
	CHECK_EQ(atomic_load(&served[1]), s1 + 1);
	/* queue 1 switched off (waits for the request in hand): not served any more */
	wr(VIRTIO_MMIO_QUEUE_SEL, 1);
	wr(VIRTIO_MMIO_QUEUE_READY, 0);
	CHECK_EQ(atomic_load(&in_io), 0, "QueueReady 0 returned with a request in hand");
	s1 = atomic_load(&served[1]);
	unsigned s0 = atomic_load(&served[0]);
	for (unsigned i = 0; i < 20; i++)
		guest_kick(1);
	guest_kick(0);
	CHECK(wait_for(&served[0], s0 + 1), "queue 0 still served");
	settle();
	CHECK_EQ(atomic_load(&served[1]), s1, "a queue switched off was served");
	stop();
	CHECK_EQ(w.n_self_kicks, 0);
}

/* A request of 100000 chunks (10 s) in hand: virtio_worker_cancel_idle() ends it after a
 * chunk or so; the flag is down again once it returns; the next request runs whole. */
void worker_cancel_idle_ends_the_request(void)
{
	start(100000, 100);
	guest_kick(0);
	CHECK(wait_for(&in_io, 1), "the request never started");
	CHECK(wait_for(&chunks_done, 3));
	virtio_worker_lock(&w);
	virtio_worker_cancel_idle(&w);
	CHECK_EQ(atomic_load(&in_io), 0, "cancel_idle returned with the request in hand");
	CHECK_EQ(atomic_load(&cut), 1, "the request was not cut short");
	CHECK_EQ(atomic_load(&finished), 0);
	/* cut short, not waited out (no clock: the host may be loaded) */
	CHECK_LT(atomic_load(&chunks_done), 100000, "cancel_idle waited for the whole request");
	CHECK_NOT(virtio_worker_io_cancelled(&w), "still cancelled after cancel_idle");
	virtio_worker_unlock(&w);
	/* the next one is not cancelled */
	atomic_store(&chunks, 5);
	guest_kick(0);
	CHECK(wait_for(&finished, 1), "the next request did not run whole");
	CHECK_EQ(atomic_load(&cut), 1);
	stop();
}

/* virtio_worker_wait_idle() waits for the request in hand to finish (not cancelled), and the
 * thread takes none of the ones waiting ("more") until the waiter lets go. */
void worker_wait_idle_waits_for_the_request_whole(void)
{
	start(20, 1000);
	atomic_store(&more[0], 5);
	guest_kick(0);
	CHECK(wait_for(&served[0], 2), "the first requests");
	virtio_worker_lock(&w);
	virtio_worker_wait_idle(&w);
	unsigned s = atomic_load(&served[0]);
	CHECK_EQ(atomic_load(&in_io), 0, "wait_idle returned with a request in hand");
	CHECK_EQ(atomic_load(&cut), 0, "wait_idle cut the request short");
	CHECK_EQ(atomic_load(&finished), s, "every request taken finished whole");
	CHECK_EQ(atomic_load(&chunks_done), 20 * s);
	virtio_worker_unlock(&w);
	CHECK(wait_for(&finished, 6), "the rest after the waiter let go");
	settle();
	CHECK_EQ(atomic_load(&served[0]), 6);
	CHECK_EQ(atomic_load(&cut), 0);
	stop();
	CHECK_EQ(w.n_self_kicks, 5);
}

static void do_pause(void *arg)
{
	(void)arg;
	virtio_worker_pause(&w);
}

/* Pause (another thread, as the core's snapshot does) waits for the request in hand; kicks
 * while paused wait; resume serves them. */
void worker_pause_resume(void)
{
	struct bg b = { 0 };

	start(10, 2000);
	guest_kick(0);
	CHECK(wait_for(&in_io, 1));
	bg_start(&b, do_pause, NULL);
	bg_join(&b, "pause", 5000);
	CHECK_EQ(atomic_load(&in_io), 0, "pause returned with a request in hand");
	CHECK_EQ(atomic_load(&finished), 1);
	CHECK_EQ(atomic_load(&cut), 0, "pause cut the request short");
	guest_kick(0);
	guest_kick(1);
	msleep(50);
	CHECK_EQ(atomic_load(&served[0]), 1, "queue 0 served while paused");
	CHECK_EQ(atomic_load(&served[1]), 0, "queue 1 served while paused");
	virtio_worker_resume(&w);
	CHECK(wait_for(&served[1], 1), "queue 1's kick lost in the pause");
	CHECK(wait_for(&served[0], 2), "queue 0's kick lost in the pause");
	CHECK(wait_for(&finished, 3));
	stop();
}

/* Stop with a 10 s request in hand: io_cancelled tells it to end; stop joins quickly. */
void worker_stop_while_busy(void)
{
	start(100000, 100);
	atomic_store(&more[0], 10);
	guest_kick(0);
	guest_kick(1);
	CHECK(wait_for(&in_io, 1));
	CHECK_EQ(virtio_worker_stop(&w), 0);
	CHECK_LT(atomic_load(&chunks_done), 100000, "stop waited for the whole request");
	CHECK_EQ(atomic_load(&in_io), 0);
	CHECK_EQ(atomic_load(&cut), 1, "the request in hand was not told to end");
	CHECK_EQ(atomic_load(&served[0]) + atomic_load(&served[1]), 1,
	         "a request taken after stop");
	fake_host_fini();
}
