/*
 * virtio helper library: the device thread. One implementation, for a device with one or
 * several queues, of what serves them off the vCPU threads:
 *
 *  - a kick eventfd per queue, registered as an ioeventfd on QueueNotify with the queue's
 *    index as datamatch (ABI 1.2);
 *  - when every queue got its ioeventfd, one I/O thread that polls the kick eventfds and
 *    serves the kicked queues outside the core's device lock; otherwise the kick eventfds
 *    are watched on the event loop and the queues are served in the MMIO exit (a vCPU) or
 *    the event loop, under the core's device lock, as without a thread;
 *  - the worker's lock, which guards the transport and queue state (the device's struct
 *    virtio_mmio) between the thread and the device's handlers, and the per-request lock
 *    dance: the serve callback drops the lock during each request's I/O
 *    (virtio_worker_io_begin/end), so a vCPU's register access waits for at most one
 *    request, never a whole batch;
 *  - the quiesce handshake: virtio_worker_wait_idle() (before a reset, QueueReady = 0, a
 *    save) waits for the request in flight only: the thread takes no new one while someone
 *    waits (virtio_worker_yield());
 *  - stop (destroy): the thread finishes the request in hand, takes no other, and leaves;
 *  - pause/resume (snapshots): the request in hand finishes, none is taken until resume; a
 *    kick that comes meanwhile is served on resume.
 *
 * Use: embed a struct virtio_worker in the device; virtio_worker_init() in create (before
 * anything can fail: virtio_worker_stop() is safe after it); virtio_worker_attach() once the
 * MMIO window is mapped (not for `smolvm check`); the device's queue_notify callback calls
 * virtio_worker_notify(); its MMIO handlers, reset, save and load take virtio_worker_lock()
 * around the transport and call virtio_worker_wait_idle() before anything that takes a
 * queue away (Status, QueueReady writes; reset; save; load). The serve callback:
 *
 *   bool serve(void *opaque, unsigned index)   // worker lock held
 *   {
 *           struct virtq *q = virtio_mmio_queue(vm, index);
 *           for (unsigned n = 0; n < q->num && !virtio_worker_yield(w); n++) {
 *                   if (virtq_pop(q, chain) <= 0)
 *                           break;
 *                   virtio_worker_io_begin(w);   // lock dropped: only the chain copy,
 *                   ... the I/O ...              // guest RAM and the device's own files
 *                   virtio_worker_io_end(w);
 *                   if (virtq_push(q, chain->head, len))
 *                           break;
 *           }
 *           virtq_notify(q);
 *           return virtq_pending(q);         // more waiting: the worker comes back
 *   }
 *
 * Without the thread, every function here is a plain call (the lock ones do nothing: the
 * core's device lock serialises the device's callbacks).
 */
#ifndef SMOLVM_VIRTIO_WORKER_H
#define SMOLVM_VIRTIO_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "virtio.h"

struct smol_host;
struct smol_dev;
struct virtio_worker;

/* Serves queue @index, worker lock held (dropped only within io_begin/io_end); returns
 * whether more work is waiting (the worker serves the queue again after the others' turn). */
typedef bool (*virtio_worker_serve_fn)(void *opaque, unsigned index);

/* One queue's kick eventfd (fields are the worker's). */
struct virtio_worker_kick {
	struct virtio_worker *w;
	unsigned index;
	int fd;
};

/* A host fd whose readiness serves a queue (virtio_worker_watch_io()). */
struct virtio_worker_io {
	struct virtio_worker *w;
	unsigned index;
	int fd; /* -1: none */
	uint32_t events; /* SMOL_FD_IN | SMOL_FD_OUT; 0: not watched */
	bool on_loop; /* without the thread: watched on the event loop */
};

/* Fields are the worker's; devices read threaded and n_self_kicks. */
struct virtio_worker {
	const struct smol_host *host;
	struct smol_dev *dev;
	struct virtio_mmio *vm;
	virtio_worker_serve_fn serve;
	void *opaque;
	unsigned n_queues;
	struct virtio_worker_kick kick[VIRTIO_MAX_QUEUES];
	struct virtio_worker_io io[VIRTIO_MAX_QUEUES];
	bool threaded; /* served by the I/O thread */
	bool thread_started;
	bool watched; /* kick eventfds watched on the event loop */
	pthread_t thread;
	int stop_fd;
	pthread_mutex_t lock;
	pthread_cond_t idle;
	bool busy; /* the thread is inside a request, lock released */
	unsigned want_idle; /* waiters (and a pause): the thread takes no new request */
	bool stopping;
	unsigned cancel; /* waiters that throw the request in hand away (a reset): atomic */
	bool paused;
	uint32_t kick_missed; /* without the thread: queues notified while paused */
	uint64_t n_self_kicks; /* a batch done, another one waiting */
	/* per queue, atomic: the sum of the kick eventfd's counts read, and the kicks the worker
	 * wrote itself (self-kicks, QueueNotify forwarded): the rest came from the ioeventfd */
	uint64_t kicks_read[VIRTIO_MAX_QUEUES], kicks_own[VIRTIO_MAX_QUEUES];
	/* the notifications last reported (worker lock): the count never goes back, even while
	 * a kick of our own is written and not read yet */
	uint64_t notifications_seen[VIRTIO_MAX_QUEUES];
};

/* Sets @w up for queues 0 to @n_queues - 1 (<= VIRTIO_MAX_QUEUES) of @vm, served by @serve.
 * No fd yet. */
void virtio_worker_init(struct virtio_worker *w, const struct smol_host *host, struct smol_dev *dev,
                        struct virtio_mmio *vm, unsigned n_queues, virtio_worker_serve_fn serve,
                        void *opaque);

/*
 * Makes the kick eventfds, registers them as ioeventfds on QueueNotify at
 * @notify_addr (the window's base + VIRTIO_MMIO_QUEUE_NOTIFY) when the host can (ABI 1.2),
 * and starts the I/O thread when all of them were taken, else watches them on the event
 * loop. w->threaded says which. 0, or -EINVAL after logging what failed.
 */
int virtio_worker_attach(struct virtio_worker *w, uint64_t notify_addr);

/*
 * Stops the thread (it finishes the request in hand), unwatches and closes the eventfds,
 * frees the lock. 0; -EIO (logged) when the thread could not be told to stop: it may still
 * use the device's state, which the caller must then leak.
 */
int virtio_worker_stop(struct virtio_worker *w);

/* The device's queue_notify callback: wakes the thread, or (without it) serves the queue
 * here, or remembers it for resume while paused. */
void virtio_worker_notify(struct virtio_worker *w, unsigned index);

/*
 * Serves queue @index also when @fd is ready for @events (SMOL_FD_IN, SMOL_FD_OUT; 0 or
 * @fd -1: no longer): a network device's backend, readable for its receive queue, writable
 * for its transmit queue once a frame waits. Worker lock held, from the serve callback or any
 * of the device's callbacks (not from create; after virtio_worker_attach()). The fd is polled
 * only while the queue is live: the serve callback turns @events off when it can take
 * nothing more (no receive buffers), so a ready fd never makes the worker spin; the fd of a
 * queue that is not live (before DRIVER_OK, NEEDS_RESET) is not polled: the thread skips it,
 * and without the thread its watch is dropped when it fires (the fd forgotten). So call it
 * again each time the queue is served and should wait for the fd (cheap: nothing changes
 * when the fd and events are those set). 0, or a negative errno when the event loop refused
 * the watch (logged).
 */
int virtio_worker_watch_io(struct virtio_worker *w, unsigned index, int fd, uint32_t events);

/* Has queue @index served soon (by the thread, or on the event loop without it). */
void virtio_worker_kick(struct virtio_worker *w, unsigned index);

/* The worker lock (with the thread; nothing without it). */
/*
 * Reports every queue's counters through @p put (a device's stats() op, smol_stat_fn): per
 * queue N, "qN.requests", "qN.malformed", "qN.notifications" (QueueNotify writes, by exit
 * or ioeventfd), "qN.interrupts" and "qN.suppressed" (used-buffer interrupts raised, and
 * those the driver's flags or used_event spared). Takes the worker lock.
 */
void virtio_worker_stats(struct virtio_worker *w,
                         void (*put)(void *ctx, const char *name, uint64_t value), void *ctx);
void virtio_worker_lock(struct virtio_worker *w);
void virtio_worker_unlock(struct virtio_worker *w);

/* With the lock held: until the thread is out of the request it took. */
void virtio_worker_wait_idle(struct virtio_worker *w);

/* For the serve callback, lock held: true when it must take no new request (someone waits
 * for idle, a pause, or the worker stops). */
bool virtio_worker_yield(const struct virtio_worker *w);
/** As virtio_worker_wait_idle(), for a waiter that throws the request in hand away (a device
 * reset, a queue switched off): the request is told to end early, so a reset waits for one
 * chunk of I/O, not for whatever size the guest asked. Worker lock held. */
void virtio_worker_cancel_idle(struct virtio_worker *w);
/** From the I/O thread between io_begin and io_end: true when the request in hand should end
 * now (virtio_worker_cancel_idle(), or the thread is stopping). Served in chunks, a long
 * request checks it between chunks. */
bool virtio_worker_io_cancelled(const struct virtio_worker *w);

/* For the serve callback: around a request's I/O, the lock released in between (with the
 * thread). The chain is a copy, the I/O touches guest RAM and the device's own resources
 * only; the queue is still the chain's at io_end (resets wait for it). */
void virtio_worker_io_begin(struct virtio_worker *w);
void virtio_worker_io_end(struct virtio_worker *w);

/* Device ops pause and resume (ABI 1.3): see the top of this file. */
void virtio_worker_pause(struct virtio_worker *w);
void virtio_worker_resume(struct virtio_worker *w);

#endif
