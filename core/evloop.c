/* evloop.c: epoll loop. Watches are added before or during the run from device callbacks,
 * which all run on the main thread, so the watch list needs no lock. */
#include "evloop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "device.h"

static void free_dead(struct evloop *l)
{
	while (l->dead) {
		struct evwatch *w = l->dead;
		l->dead = w->next;
		free(w);
	}
}

int evloop_init(struct evloop *l)
{
	l->watches = NULL;
	l->dead = NULL;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (l->epfd < 0)
		return -errno;
	l->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->wakefd < 0) {
		int e = -errno;
		close(l->epfd);
		return e;
	}
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wakefd, &ev) < 0) {
		int e = -errno;
		close(l->wakefd);
		close(l->epfd);
		return e;
	}
	return 0;
}

void evloop_free(struct evloop *l)
{
	free_dead(l);
	while (l->watches) {
		struct evwatch *w = l->watches;
		l->watches = w->next;
		free(w);
	}
	if (l->wakefd >= 0)
		close(l->wakefd);
	if (l->epfd >= 0)
		close(l->epfd);
	l->wakefd = l->epfd = -1;
}

static uint32_t to_epoll(uint32_t ev)
{
	return (ev & SMOL_FD_IN ? EPOLLIN : 0) | (ev & SMOL_FD_OUT ? EPOLLOUT : 0);
}

int evloop_watch(struct evloop *l, int fd, uint32_t events, struct smol_dev *dev, smol_fd_fn cb,
                 void *opaque)
{
	if (fd < 0 || !cb)
		return -EINVAL;
	for (struct evwatch *w = l->watches; w; w = w->next)
		if (w->fd == fd)
			return -EEXIST;
	struct evwatch *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	*w = (struct evwatch){ .fd = fd, .events = events, .dev = dev, .cb = cb, .opaque = opaque };
	struct epoll_event ev = { .events = to_epoll(events), .data.ptr = w };
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		if (errno != EPERM) {
			int e = -errno;
			free(w);
			return e;
		}
		/* regular files (and /dev/null) are always readable and writable */
		w->always = 1;
		l->n_always++;
	}
	w->next = l->watches;
	l->watches = w;
	return 0;
}

int evloop_unwatch(struct evloop *l, int fd)
{
	for (struct evwatch **pw = &l->watches; *pw; pw = &(*pw)->next) {
		struct evwatch *w = *pw;
		if (w->fd == fd) {
			if (w->always)
				l->n_always--;
			else
				epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
			*pw = w->next;
			/* it may still be in the current epoll batch: freed after it (run_once) */
			w->cb = NULL;
			w->next = l->dead;
			l->dead = w;
			return 0;
		}
	}
	return -ENOENT;
}

void evloop_wake(struct evloop *l)
{
	uint64_t one = 1;
	if (write(l->wakefd, &one, sizeof(one)) < 0) {
		/* the counter is saturated: the loop is awake anyway */
	}
}

static void dispatch(struct evwatch *w, uint32_t events)
{
	struct smol_dev *dev = w->dev;
	dev_lock(dev);
	w->cb(w->opaque, w->fd, events);
	dev_unlock(dev);
}

int evloop_run_once(struct evloop *l, int timeout_ms)
{
	struct epoll_event evs[16];
	int n = epoll_wait(l->epfd, evs, 16, l->n_always ? 0 : timeout_ms);
	if (n < 0)
		return errno == EINTR ? 0 : -errno;
	if (l->n_always) {
		/* fds epoll cannot watch: offer them every round (the list may change under us) */
		struct evwatch *ready[64];
		int k = 0;
		for (struct evwatch *w = l->watches; w && k < 64; w = w->next)
			if (w->always)
				ready[k++] = w;
		for (int i = 0; i < k; i++)
			if (ready[i]->cb)
				dispatch(ready[i], ready[i]->events & (SMOL_FD_IN | SMOL_FD_OUT));
	}
	for (int i = 0; i < n; i++) {
		struct evwatch *w = evs[i].data.ptr;
		if (!w) {
			uint64_t v;
			if (read(l->wakefd, &v, sizeof(v)) < 0) {
				/* spurious */
			}
			continue;
		}
		/* a callback earlier in this batch may have removed this watch */
		if (!w->cb)
			continue;
		uint32_t e = evs[i].events;
		uint32_t smol = (e & EPOLLIN ? SMOL_FD_IN : 0) | (e & EPOLLOUT ? SMOL_FD_OUT : 0) |
		                (e & (EPOLLHUP | EPOLLERR) ? SMOL_FD_HUP : 0);
		dispatch(w, smol);
	}
	free_dead(l);
	return 0;
}
