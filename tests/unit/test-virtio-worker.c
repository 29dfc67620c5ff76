/*
 * Unit tests of the virtio library's device thread (devices/virtio/virtio-worker.h) with two
 * queues, as virtio-net will use it: each queue's kick reaches that queue's serve, a queue
 * that always has more does not starve the other, a kick while paused is served on resume,
 * and without ioeventfds the kicks go through the event loop. virtio-blk's tests cover the
 * single-queue handshake (reset and destroy against a request in flight) through the plugin.
 * The serve callback here stands in for a device: no rings, the queues only made live.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "fake-host.h"
#include "virtio-worker.h"

#define BASE 0xd0000000ull
#define NOTIFY_ADDR (BASE + VIRTIO_MMIO_QUEUE_NOTIFY)
#define BUSY_ROUNDS 100000

static struct smol_dev *dev;
static struct virtio_mmio vm;
static struct virtio_worker w;
static atomic_uint served[2]; /* serve calls per queue */
static atomic_uint more[2]; /* serve calls left that answer "more" */
static atomic_bool q0_until_q1; /* queue 0 has more until queue 1 was served */

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

/* The device's MMIO window, as a device forwards it (ioeventfds need one). */
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
	(void)opaque;
	if (index > 1)
		return false; /* never asked: served[] stays as it is, the tests see it */
	atomic_fetch_add(&served[index], 1);
	virtio_worker_io_begin(&w); /* the "I/O" */
	virtio_worker_io_end(&w);
	if (index == 0 && atomic_load(&q0_until_q1))
		return atomic_load(&served[1]) == 0 && atomic_load(&served[0]) < BUSY_ROUNDS;
	if (atomic_load(&more[index]) == 0)
		return false;
	atomic_fetch_sub(&more[index], 1);
	return true;
}

static void start(bool ioeventfd)
{
	fake_host_init();
	fake_ioeventfd_accept(ioeventfd);
	dev = fake_dev_new("net0");
	cr_assert_eq(virtio_mmio_init(&vm, &ops, NULL, 1 /* network */, 0, 2, 16, 0), 0);
	/* live queues: DRIVER_OK, both ready (rings are not used by this serve) */
	vm.status = VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK |
	            VIRTIO_STATUS_DRIVER_OK;
	vm.queues[0].ready = vm.queues[1].ready = true;
	uint64_t base;
	cr_assert_eq(fake_host.map_mmio(dev, BASE, 0x200, &io, NULL, &base), 0);
	virtio_worker_init(&w, &fake_host, dev, &vm, 2, t_serve, NULL);
	cr_assert_eq(virtio_worker_attach(&w, NOTIFY_ADDR), 0, "%s", fake_log());
	cr_assert_eq(w.threaded, ioeventfd);
}

static void stop(void)
{
	cr_assert_eq(virtio_worker_stop(&w), 0);
	fake_host_fini();
}

static void guest_kick(unsigned index)
{
	fake_mmio_write(NOTIFY_ADDR, 4, index); /* the fake's ioeventfd, by datamatch */
}

static bool wait_served(unsigned index, unsigned n)
{
	for (int i = 0; i < 2000; i++) {
		if (atomic_load(&served[index]) >= n)
			return true;
		usleep(1000);
	}
	return false;
}

Test(worker, each_queue_kick_serves_that_queue)
{
	start(true);
	guest_kick(1);
	cr_assert(wait_served(1, 1), "queue 1 served after its kick");
	usleep(20000);
	cr_assert_eq(atomic_load(&served[0]), 0, "queue 0 was not kicked");
	guest_kick(0);
	cr_assert(wait_served(0, 1), "queue 0 served after its kick");
	cr_assert_eq(atomic_load(&served[1]), 1);
	stop();
}

Test(worker, more_comes_back_and_counts_self_kicks)
{
	start(true);
	atomic_store(&more[1], 3);
	guest_kick(1);
	cr_assert(wait_served(1, 4));
	usleep(20000);
	cr_assert_eq(atomic_load(&served[1]), 4, "served until it had no more");
	cr_assert_eq(atomic_load(&served[0]), 0);
	stop();
	cr_assert_eq(w.n_self_kicks, 3);
}

Test(worker, a_busy_queue_does_not_starve_the_other)
{
	start(true);
	atomic_store(&q0_until_q1, true);
	guest_kick(0);
	cr_assert(wait_served(0, 2), "queue 0 is being served");
	guest_kick(1);
	cr_assert(wait_served(1, 1), "queue 1 served while queue 0 had more");
	cr_assert_lt(atomic_load(&served[0]), BUSY_ROUNDS, "queue 1 waited for queue 0 to drain");
	stop();
}

Test(worker, kicks_while_paused_are_served_on_resume)
{
	start(true);
	virtio_worker_pause(&w);
	guest_kick(0);
	guest_kick(1);
	usleep(50000);
	cr_assert_eq(atomic_load(&served[0]) + atomic_load(&served[1]), 0, "nothing while paused");
	virtio_worker_resume(&w);
	cr_assert(wait_served(0, 1));
	cr_assert(wait_served(1, 1));
	stop();
}

Test(worker, a_queue_not_live_is_not_served)
{
	start(true);
	fake_mmio_write(BASE + VIRTIO_MMIO_QUEUE_SEL, 4, 1);
	fake_mmio_write(BASE + VIRTIO_MMIO_QUEUE_READY, 4, 0);
	guest_kick(1);
	guest_kick(0);
	cr_assert(wait_served(0, 1));
	usleep(20000);
	cr_assert_eq(atomic_load(&served[1]), 0);
	stop();
}

Test(worker, without_ioeventfds_kicks_go_through_the_event_loop)
{
	start(false);
	cr_assert(fake_fd_watched(w.kick[0].fd));
	cr_assert(fake_fd_watched(w.kick[1].fd));
	/* a QueueNotify exit serves in the handler; "more" kicks the queue's eventfd */
	atomic_store(&more[1], 1);
	virtio_mmio_queue_notify(&vm, 1);
	cr_assert_eq(atomic_load(&served[1]), 1);
	cr_assert_eq(w.n_self_kicks, 1);
	cr_assert_eq(fake_fd_fire_ready(w.kick[1].fd, 1000), 0, "the self-kick is pending");
	cr_assert_eq(atomic_load(&served[1]), 2);
	cr_assert_eq(atomic_load(&served[0]), 0);
	/* paused: remembered, kicked on resume, served by the event loop */
	virtio_worker_pause(&w);
	virtio_mmio_queue_notify(&vm, 0);
	cr_assert_eq(atomic_load(&served[0]), 0);
	virtio_worker_resume(&w);
	cr_assert_eq(fake_fd_fire_ready(w.kick[0].fd, 1000), 0, "resume kicked queue 0");
	cr_assert_eq(atomic_load(&served[0]), 1);
	stop();
	cr_assert_eq(w.watched, true);
}
