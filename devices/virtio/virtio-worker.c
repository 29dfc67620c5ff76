/*
 * The device thread (virtio-worker.h): kick eventfds, the I/O thread, the quiesce handshake,
 * the per-request lock dance, stop, pause and resume.
 *
 * The handshake: busy says the thread is inside a request with the lock released; whoever
 * is about to take a queue away waits on idle until it is not. want_idle counts such
 * waiters (and a pause): while it is not 0 the thread takes no new request and waits on idle
 * too (it would otherwise: it holds the lock from one request's end to the next one's
 * start), so a reset waits for one request, not for the ring to drain. stopping (stop) makes
 * it finish the request it has and leave.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <smolvm/sdk.h>

#include "virtio-worker.h"

void virtio_worker_init(struct virtio_worker *w, const struct smol_host *host, struct smol_dev *dev,
                        struct virtio_mmio *vm, unsigned n_queues, virtio_worker_serve_fn serve,
                        void *opaque)
{
	memset(w, 0, sizeof(*w));
	w->host = host;
	w->dev = dev;
	w->vm = vm;
	w->n_queues = n_queues < VIRTIO_MAX_QUEUES ? n_queues : VIRTIO_MAX_QUEUES;
	w->serve = serve;
	w->opaque = opaque;
	w->stop_fd = -1;
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		w->kick[i] = (struct virtio_worker_kick){ .w = w, .index = i, .fd = -1 };
		w->io[i] = (struct virtio_worker_io){ .w = w, .index = i, .fd = -1 };
	}
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->idle, NULL);
}

void virtio_worker_stats(struct virtio_worker *w,
                         void (*put)(void *ctx, const char *name, uint64_t value), void *ctx)
{
	char name[32];
	virtio_worker_lock(w);
	for (unsigned i = 0; i < w->vm->n_queues; i++) {
		const struct virtq *q = &w->vm->queues[i];
		uint64_t read = __atomic_load_n(&w->kicks_read[i], __ATOMIC_RELAXED);
		uint64_t own = __atomic_load_n(&w->kicks_own[i], __ATOMIC_RELAXED);
		/* a kick of our own written and not read yet: not the guest's */
		uint64_t by_ioeventfd = read > own ? read - own : 0;
		uint64_t notifications = q->mmio_notifications + by_ioeventfd;
		if (notifications < w->notifications_seen[i])
			notifications = w->notifications_seen[i];
		w->notifications_seen[i] = notifications;
		const struct {
			const char *what;
			uint64_t n;
		} c[] = {
			{ "requests", q->requests },        { "malformed", q->malformed },
			{ "notifications", notifications }, { "interrupts", q->interrupts },
			{ "suppressed", q->suppressed },
		};
		for (size_t k = 0; k < sizeof(c) / sizeof(c[0]); k++) {
			snprintf(name, sizeof(name), "q%u.%s", i, c[k].what);
			put(ctx, name, c[k].n);
		}
	}
	virtio_worker_unlock(w);
}

void virtio_worker_lock(struct virtio_worker *w)
{
	if (w->threaded)
		pthread_mutex_lock(&w->lock);
}

void virtio_worker_unlock(struct virtio_worker *w)
{
	if (w->threaded)
		pthread_mutex_unlock(&w->lock);
}

void virtio_worker_wait_idle(struct virtio_worker *w)
{
	if (!w->threaded)
		return;
	w->want_idle++;
	while (w->busy)
		pthread_cond_wait(&w->idle, &w->lock);
	if (--w->want_idle == 0)
		pthread_cond_broadcast(&w->idle); /* the thread goes on once we release the lock */
}

void virtio_worker_cancel_idle(struct virtio_worker *w)
{
	if (!w->threaded)
		return;
	__atomic_add_fetch(&w->cancel, 1, __ATOMIC_RELAXED);
	virtio_worker_wait_idle(w);
	__atomic_sub_fetch(&w->cancel, 1, __ATOMIC_RELAXED);
}

bool virtio_worker_io_cancelled(const struct virtio_worker *w)
{
	return w->threaded && (__atomic_load_n(&w->cancel, __ATOMIC_RELAXED) ||
	                       __atomic_load_n(&w->stopping, __ATOMIC_RELAXED));
}

bool virtio_worker_yield(const struct virtio_worker *w)
{
	return w->threaded && (w->want_idle || w->stopping);
}

void virtio_worker_io_begin(struct virtio_worker *w)
{
	if (w->threaded) {
		w->busy = true;
		pthread_mutex_unlock(&w->lock);
	}
}

void virtio_worker_io_end(struct virtio_worker *w)
{
	if (w->threaded) {
		pthread_mutex_lock(&w->lock);
		w->busy = false;
		pthread_cond_broadcast(&w->idle);
	}
}

void virtio_worker_kick(struct virtio_worker *w, unsigned index)
{
	uint64_t one = 1;
	int fd = index < w->n_queues ? w->kick[index].fd : -1;

	if (fd < 0)
		return;
	__atomic_add_fetch(&w->kicks_own[index], 1, __ATOMIC_RELAXED);
	if (write(fd, &one, sizeof(one)) != (ssize_t)sizeof(one)) {
		__atomic_sub_fetch(&w->kicks_own[index], 1, __ATOMIC_RELAXED);
		w->host->log(w->dev, SMOL_LOG_WARN, "cannot kick the queue: %s", strerror(errno));
	}
}

void virtio_worker_notify(struct virtio_worker *w, unsigned index)
{
	if (w->threaded) {
		virtio_worker_kick(w, index); /* a QueueNotify the ioeventfd did not take */
	} else if (w->paused) {
		w->kick_missed |= 1u << index; /* served on resume */
	} else if (w->serve(w->opaque, index)) {
		w->n_self_kicks++;
		virtio_worker_kick(w, index); /* the rest after the event loop has had its turn */
	}
}

/* Without the thread: a guest write to QueueNotify signalled by the backend instead of a
 * vCPU exit, or the device's own self-kick, served on the event loop's thread under the
 * device's lock. */
static void worker_kicked(void *opaque, int fd, uint32_t events)
{
	struct virtio_worker_kick *k = opaque;
	uint64_t n;

	(void)events;
	if (read(fd, &n, sizeof(n)) == (ssize_t)sizeof(n)) {
		__atomic_add_fetch(&k->w->kicks_read[k->index], n, __ATOMIC_RELAXED);
		virtio_mmio_queue_notify(k->w->vm, k->index);
	}
}

/* Without the thread: a queue's host fd is ready, served on the event loop's thread under
 * the device's lock. A queue that cannot be served (before DRIVER_OK, not ready, NEEDS_RESET)
 * would leave the fd ready and wake the loop again at once, forever (the thread polls live
 * queues only): its watch goes, forgotten, and the device sets it again when it next serves
 * the queue (virtio_worker_watch_io()). */
static void worker_io_ready(void *opaque, int fd, uint32_t events)
{
	struct virtio_worker_io *io = opaque;
	struct virtio_worker *w = io->w;

	(void)events;
	if (!virtio_mmio_queue_live(w->vm, io->index) || w->paused) {
		/* paused: served on resume (the watch comes back when the device asks again) */
		if (w->paused)
			w->kick_missed |= 1u << io->index;
		(void)w->host->fd_unwatch(w->dev, fd);
		io->on_loop = false;
		io->fd = -1;
		io->events = 0;
		return;
	}
	virtio_mmio_queue_notify(w->vm, io->index);
}

int virtio_worker_watch_io(struct virtio_worker *w, unsigned index, int fd, uint32_t events)
{
	struct virtio_worker_io *io;
	int r = 0;

	if (index >= w->n_queues)
		return -EINVAL;
	io = &w->io[index];
	if (fd < 0)
		events = 0;
	if (io->fd == fd && io->events == events)
		return 0;
	if (io->on_loop) {
		(void)w->host->fd_unwatch(w->dev, io->fd);
		io->on_loop = false;
	}
	io->fd = fd;
	io->events = events;
	if (w->threaded) {
		/* the thread polls what was set when it last looked: wake it to look again */
		if (!(w->thread_started && pthread_equal(pthread_self(), w->thread)))
			virtio_worker_kick(w, index);
	} else if (events && w->watched) {
		r = w->host->fd_watch(w->dev, fd, events, worker_io_ready, io);
		if (r < 0)
			w->host->log(w->dev, SMOL_LOG_ERROR, "cannot watch fd %d for queue %u: %s",
			             fd, index, strerror(-r));
		io->on_loop = r >= 0;
	}
	return r < 0 ? r : 0;
}

/* Takes the kicks signalled in @p[0..n) into a mask of queues to serve. */
static uint32_t worker_take_kicks(struct virtio_worker *w, struct pollfd *p, unsigned n)
{
	uint32_t todo = 0;
	uint64_t v;

	for (unsigned i = 0; i < n; i++) {
		if (!p[i].revents)
			continue;
		ssize_t r = read(p[i].fd, &v, sizeof(v));
		if (r == (ssize_t)sizeof(v))
			__atomic_add_fetch(&w->kicks_read[i], v, __ATOMIC_RELAXED);
		if (r >= 0 || errno == EAGAIN)
			todo |= 1u << i;
	}
	return todo;
}

/* The I/O thread: waits for a kick (the guest's, through an ioeventfd, or its own), serves
 * the kicked queues while requests are waiting, until stop writes stop_fd. */
static void *worker_thread(void *opaque)
{
	struct virtio_worker *w = opaque;
	struct pollfd p[2 * VIRTIO_MAX_QUEUES + 1];
	unsigned queue_of[2 * VIRTIO_MAX_QUEUES + 1];
	unsigned n = w->n_queues, np;

	for (unsigned i = 0; i < n; i++)
		p[i] = (struct pollfd){ .fd = w->kick[i].fd, .events = POLLIN };
	p[n] = (struct pollfd){ .fd = w->stop_fd, .events = POLLIN };
	for (;;) {
		uint32_t todo;

		/* the queues' host fds, as the device last set them (live queues only: a ready
		 * fd of a queue that cannot be served would make the poll spin) */
		np = n + 1;
		pthread_mutex_lock(&w->lock);
		for (unsigned i = 0; i < n; i++) {
			const struct virtio_worker_io *io = &w->io[i];

			if (io->fd < 0 || !io->events || !virtio_mmio_queue_live(w->vm, i))
				continue;
			p[np] = (struct pollfd){
				.fd = io->fd,
				.events = (short)(((io->events & SMOL_FD_IN) ? POLLIN : 0) |
				                  ((io->events & SMOL_FD_OUT) ? POLLOUT : 0)),
			};
			queue_of[np++] = i;
		}
		pthread_mutex_unlock(&w->lock);
		if (poll(p, np, -1) < 0) {
			if (errno == EINTR)
				continue;
			/* the device would never be served again: end the run rather than hang */
			w->host->log(w->dev, SMOL_LOG_ERROR,
			             "I/O thread: poll: %s; stopping the VM", strerror(errno));
			w->host->request_exit(w->dev, 1);
			return NULL;
		}
		if (p[n].revents)
			return NULL;
		todo = worker_take_kicks(w, p, n);
		for (unsigned k = n + 1; k < np; k++)
			if (p[k].revents)
				todo |= 1u << queue_of[k];
		pthread_mutex_lock(&w->lock);
		while (todo && !w->stopping) {
			/* a vCPU about to reset a queue goes first, and a pause holds us here */
			while (w->want_idle && !w->stopping)
				pthread_cond_wait(&w->idle, &w->lock);
			/* vCPUs get the transport during each request's I/O (the serve callback
			 * drops the lock there), resets through want_idle above */
			for (unsigned i = 0; i < n && !w->stopping; i++) {
				if (!(todo & (1u << i)))
					continue;
				if (!w->stopping && virtio_mmio_queue_live(w->vm, i) &&
				    w->serve(w->opaque, i))
					w->n_self_kicks++; /* a batch done, another one waiting */
				else
					todo &= ~(1u << i);
			}
			/* a queue kept busy must not starve the others: take their kicks, and
			 * their host fds' readiness, too */
			if (n > 1 && todo && poll(p, np, 0) > 0) {
				todo |= worker_take_kicks(w, p, n);
				for (unsigned k = n + 1; k < np; k++)
					if (p[k].revents)
						todo |= 1u << queue_of[k];
			}
		}
		pthread_mutex_unlock(&w->lock);
	}
}

int virtio_worker_attach(struct virtio_worker *w, uint64_t notify_addr)
{
	const struct smol_host *h = w->host;
	bool ioevent = h->abi_minor >= 2;
	int r;

	for (unsigned i = 0; i < w->n_queues; i++) {
		w->kick[i].fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (w->kick[i].fd < 0) {
			h->log(w->dev, SMOL_LOG_ERROR, "cannot create the queue's eventfd: %s",
			       strerror(errno));
			return -EINVAL;
		}
	}
	for (unsigned i = 0; i < w->n_queues && ioevent; i++) {
		r = h->ioeventfd(w->dev, notify_addr, 4, SMOL_IOEVENT_DATAMATCH, i, w->kick[i].fd);
		ioevent = r == 0;
		if (r < 0 && r != -ENOTSUP)
			h->log(w->dev, SMOL_LOG_WARN, "no ioeventfd (%s): queue notifications exit",
			       strerror(-r));
	}
	if (ioevent) {
		/* the stop signals are blocked in the thread (it inherits the mask it is created
		 * with): they are the main thread's to serve; others (the core's seccomp
		 * installation signal) reach it */
		sigset_t stop, old;
		sigemptyset(&stop);
		sigaddset(&stop, SIGINT);
		sigaddset(&stop, SIGTERM);
		sigaddset(&stop, SIGHUP);
		w->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		w->threaded = true;
		pthread_sigmask(SIG_BLOCK, &stop, &old);
		r = w->stop_fd < 0 ? errno : pthread_create(&w->thread, NULL, worker_thread, w);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (r) {
			w->threaded = false;
			h->log(w->dev, SMOL_LOG_ERROR, "cannot start the I/O thread: %s",
			       strerror(r));
			return -EINVAL;
		}
		w->thread_started = true;
		/* its name in ps, /proc and seccomp's report: io-DEVICE (15 bytes at most) */
		if (h->abi_minor >= 4 && h->dev_name) {
			char name[16];
			snprintf(name, sizeof(name), "io-%s", h->dev_name(w->dev));
			pthread_setname_np(w->thread, name);
		}
		return 0;
	}
	/* the queues with an ioeventfd (if some got one) are served here too */
	for (unsigned i = 0; i < w->n_queues; i++) {
		if (h->fd_watch(w->dev, w->kick[i].fd, SMOL_FD_IN, worker_kicked, &w->kick[i]) <
		    0) {
			h->log(w->dev, SMOL_LOG_ERROR, "cannot watch the queue's eventfd: %s",
			       strerror(errno));
			return -EINVAL;
		}
		w->watched = true;
	}
	return 0;
}

int virtio_worker_stop(struct virtio_worker *w)
{
	if (w->thread_started) {
		uint64_t one = 1;

		/* it finishes the request in hand (if any), takes no other, and leaves */
		pthread_mutex_lock(&w->lock);
		__atomic_store_n(&w->stopping, true, __ATOMIC_RELAXED); /* read by io_cancelled */
		pthread_cond_broadcast(&w->idle);
		pthread_mutex_unlock(&w->lock);
		if (write(w->stop_fd, &one, sizeof(one)) != (ssize_t)sizeof(one)) {
			/* a thread still polling would use what the device frees: keep it all */
			w->host->log(w->dev, SMOL_LOG_ERROR,
			             "cannot stop the I/O thread: %s; its state is leaked",
			             strerror(errno));
			return -EIO;
		}
		pthread_join(w->thread, NULL);
		w->thread_started = false;
	}
	if (w->stop_fd >= 0)
		close(w->stop_fd);
	w->stop_fd = -1;
	for (unsigned i = 0; i < w->n_queues; i++) {
		if (w->io[i].on_loop)
			(void)w->host->fd_unwatch(w->dev, w->io[i].fd);
		w->io[i].on_loop = false;
		if (w->kick[i].fd < 0)
			continue;
		if (w->watched)
			(void)w->host->fd_unwatch(w->dev, w->kick[i].fd);
		close(w->kick[i].fd);
		w->kick[i].fd = -1;
	}
	pthread_cond_destroy(&w->idle);
	pthread_mutex_destroy(&w->lock);
	return 0;
}

/* The request in hand finishes, no new one is taken (the thread waits on want_idle as it
 * does for a reset, holding nothing); a kick that comes meanwhile waits in the thread (or
 * its eventfd), or in kick_missed without the thread. */
void virtio_worker_pause(struct virtio_worker *w)
{
	virtio_worker_lock(w);
	if (!w->paused) {
		w->paused = true;
		if (w->threaded) {
			w->want_idle++;
			while (w->busy)
				pthread_cond_wait(&w->idle, &w->lock);
		}
	}
	virtio_worker_unlock(w);
}

void virtio_worker_resume(struct virtio_worker *w)
{
	virtio_worker_lock(w);
	if (w->paused) {
		w->paused = false;
		if (w->threaded && --w->want_idle == 0)
			pthread_cond_broadcast(&w->idle); /* it serves what came meanwhile */
		for (unsigned i = 0; !w->threaded && w->kick_missed && i < w->n_queues; i++) {
			if (w->kick_missed & (1u << i)) {
				w->kick_missed &= ~(1u << i);
				virtio_worker_kick(w, i);
			}
		}
	}
	virtio_worker_unlock(w);
}
