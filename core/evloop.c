/* evloop.c: epoll loop on the main thread. Devices add and remove watches from any thread
 * (a port handler on a vCPU thread may re-arm its input), so the watch list is under a mutex.
 * A removed watch is only freed after the dispatch round that might still hold it, and its
 * callback is re-checked under the device's lock before it runs. */
#include "evloop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "device.h"

static void free_list(struct evwatch *w)
{
	while (w) {
		struct evwatch *next = w->next;
		free(w);
		w = next;
	}
}

int evloop_init(struct evloop *l)
{
	l->watches = NULL;
	l->dead = NULL;
	l->n_always = 0;
	pthread_mutex_init(&l->lock, NULL);
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0)
		return -errno;
	l->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->wakefd < 0) {
		int e = -errno;
		close(l->epfd);
		l->epfd = -1;
		return e;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wakefd, &ev) < 0) {
		int e = -errno;
		close(l->wakefd);
		close(l->epfd);
		l->wakefd = l->epfd = -1;
		return e;
	}
	return 0;
}

void evloop_free(struct evloop *l)
{
	free_list(l->dead);
	free_list(l->watches);
	l->dead = l->watches = NULL;
	if (l->wakefd >= 0)
		close(l->wakefd);
	if (l->epfd >= 0) {
		close(l->epfd);
		pthread_mutex_destroy(&l->lock);
	}
	l->wakefd = l->epfd = -1;
}

static uint32_t to_epoll(uint32_t ev)
{
	return (ev & SMOL_FD_IN ? EPOLLIN : 0) | (ev & SMOL_FD_OUT ? EPOLLOUT : 0);
}

int evloop_watch(struct evloop *l, int fd, uint32_t events, struct smol_dev *dev, smol_fd_fn cb,
                 void *opaque)
{
	int r = 0;
	bool always = false;
	if (fd < 0 || !cb)
		return -EINVAL;
	struct evwatch *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	*w = (struct evwatch){ .fd = fd, .events = events, .dev = dev, .cb = cb, .opaque = opaque };

	pthread_mutex_lock(&l->lock);
	for (struct evwatch *x = l->watches; x; x = x->next) {
		if (x->fd == fd) {
			r = -EEXIST;
			goto out;
		}
	}
	struct epoll_event ev = { .events = to_epoll(events), .data.ptr = w };
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		if (errno != EPERM) {
			r = -errno;
			goto out;
		}
		/* regular files (and /dev/null) are always readable and writable */
		w->always = 1;
		l->n_always++;
	}
	w->next = l->watches;
	l->watches = w;
	always = w->always;
	w = NULL;
out:
	pthread_mutex_unlock(&l->lock);
	free(w);
	/* epoll says nothing about a file it cannot watch: a loop asleep since before this watch
	 * (a vCPU re-watching a UART's input file once the guest read some) must look again */
	if (always)
		evloop_wake(l);
	return r;
}

int evloop_unwatch(struct evloop *l, int fd, struct smol_dev *dev)
{
	int r = -ENOENT;
	pthread_mutex_lock(&l->lock);
	for (struct evwatch **pw = &l->watches; *pw; pw = &(*pw)->next) {
		struct evwatch *w = *pw;
		if (w->fd != fd)
			continue;
		if (w->dev != dev) {
			r = -EPERM; /* another device's watch */
			break;
		}
		if (w->always)
			l->n_always--;
		else
			epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
		/* the current dispatch round may still hold it: freed after that round */
		*pw = w->next;
		w->cb = NULL;
		w->next = l->dead;
		l->dead = w;
		r = 0;
		break;
	}
	pthread_mutex_unlock(&l->lock);
	return r;
}

void evloop_wake(struct evloop *l)
{
	uint64_t one = 1;
	if (write(l->wakefd, &one, sizeof(one)) < 0) {
		/* the counter is saturated: the loop is awake anyway */
	}
}

/* Runs a watch's callback under its device's lock, unless it was removed meanwhile (a
 * device removes its own watches under its own lock, so the check cannot go stale). */
static void dispatch(struct evloop *l, struct evwatch *w, uint32_t events)
{
	struct smol_dev *dev = w->dev;
	dev_lock(dev);
	pthread_mutex_lock(&l->lock);
	smol_fd_fn cb = w->cb;
	void *opaque = w->opaque;
	int fd = w->fd;
	pthread_mutex_unlock(&l->lock);
	if (cb)
		cb(opaque, fd, events);
	dev_unlock(dev);
}

int evloop_run_once(struct evloop *l, int timeout_ms)
{
	struct epoll_event evs[16];
	struct evwatch *always[64];
	int n_always = 0;

	pthread_mutex_lock(&l->lock);
	int poll_now = l->n_always > 0;
	pthread_mutex_unlock(&l->lock);
	int n = epoll_wait(l->epfd, evs, 16, poll_now ? 0 : timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	if (poll_now) {
		/* fds epoll cannot watch: offer them every round */
		pthread_mutex_lock(&l->lock);
		for (struct evwatch *w = l->watches; w && n_always < 64; w = w->next)
			if (w->always)
				always[n_always++] = w;
		pthread_mutex_unlock(&l->lock);
	}
	for (int i = 0; i < n_always; i++)
		dispatch(l, always[i], always[i]->events & (SMOL_FD_IN | SMOL_FD_OUT));
	for (int i = 0; i < n; i++) {
		struct evwatch *w = evs[i].data.ptr;
		if (!w) {
			uint64_t v;
			if (read(l->wakefd, &v, sizeof(v)) < 0) {
				/* spurious */
			}
			continue;
		}
		uint32_t e = evs[i].events;
		dispatch(l, w,
		         (e & EPOLLIN ? SMOL_FD_IN : 0) | (e & EPOLLOUT ? SMOL_FD_OUT : 0) |
		                 (e & (EPOLLHUP | EPOLLERR) ? SMOL_FD_HUP : 0));
	}
	/* nothing of this round refers to the removed watches any more */
	pthread_mutex_lock(&l->lock);
	struct evwatch *dead = l->dead;
	l->dead = NULL;
	pthread_mutex_unlock(&l->lock);
	free_list(dead);
	return 0;
}
