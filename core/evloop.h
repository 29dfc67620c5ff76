/* evloop.h: the core's event loop (epoll) on the main thread: device fd watches, signals,
 * and wake-ups from vCPU threads. */
#ifndef SMOLVM_EVLOOP_H
#define SMOLVM_EVLOOP_H

#include <pthread.h>
#include <stdint.h>

#include <smolvm/sdk.h>

struct smol_dev;

struct evwatch {
	int fd;
	uint32_t events;
	struct smol_dev *dev; /**< callbacks run under this device's lock (NULL: core) */
	smol_fd_fn cb;
	void *opaque;
	int always; /**< epoll cannot watch it (a regular file): reported ready every round */
	struct evwatch *next;
};

struct evloop {
	pthread_mutex_t lock; /**< watches, dead, n_always: devices change them from any thread */
	int epfd;
	int wakefd; /**< eventfd: vCPU threads wake the loop */
	struct evwatch *watches;
	struct evwatch *dead; /**< removed during a dispatch round, freed after it */
	int n_always; /**< watches on fds epoll refuses (regular files): always ready */
};

int evloop_init(struct evloop *l);
void evloop_free(struct evloop *l);
int evloop_watch(struct evloop *l, int fd, uint32_t events, struct smol_dev *dev, smol_fd_fn cb,
                 void *opaque);
/** Removes @p dev's watch on @p fd (-EPERM if another device owns it). Any thread. */
int evloop_unwatch(struct evloop *l, int fd, struct smol_dev *dev);
/** Wakes evloop_run from any thread. */
void evloop_wake(struct evloop *l);
/** Waits for events up to @p timeout_ms and dispatches them; returns after one round. */
int evloop_run_once(struct evloop *l, int timeout_ms);

#endif
