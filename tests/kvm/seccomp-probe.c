/*
 * seccomp-probe: a device plugin for the seccomp tests (tests/kvm/seccomp-test) that makes a
 * system call no smolvm thread may make, execve, when the guest asks: on the vCPU thread
 * that runs its port handler, or on an I/O thread of its own.
 *
 * One I/O port at `port` (default 0x530):
 *   write 1: execve here, on the vCPU thread
 *   write 2: execve on the device's thread (woken through an eventfd)
 *   read: 0 while nothing was tried; else 0x100 | the errno execve gave back (with seccomp
 *   off: ENOENT, the program does not exist), so the guest can report it
 * The execve names a program that does not exist: allowed, it fails and the run goes on.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <smolvm/sdk.h>

struct probe {
	const struct smol_host *host;
	struct smol_dev *dev;
	int wake_fd, stop_fd;
	pthread_t thread;
	bool started;
	int result; /* atomic: 0x100 | errno once execve returned */
};

static void try_execve(struct probe *p, const char *where)
{
	char *argv[] = { "smolvm-seccomp-probe", NULL }, *envp[] = { NULL };

	p->host->log(p->dev, SMOL_LOG_INFO, "calling execve on the %s", where);
	execve("/nonexistent/smolvm-seccomp-probe", argv, envp);
	int e = errno;
	p->host->log(p->dev, SMOL_LOG_INFO, "execve on the %s returned: %s", where, strerror(e));
	__atomic_store_n(&p->result, 0x100 | (e & 0xff), __ATOMIC_SEQ_CST);
}

static void *probe_thread(void *opaque)
{
	struct probe *p = opaque;
	struct pollfd fds[2] = { { .fd = p->wake_fd, .events = POLLIN },
		                 { .fd = p->stop_fd, .events = POLLIN } };
	for (;;) {
		uint64_t v;

		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			return NULL;
		}
		if (fds[1].revents)
			return NULL;
		if (fds[0].revents && read(p->wake_fd, &v, sizeof(v)) == (ssize_t)sizeof(v))
			try_execve(p, "device's thread");
	}
}

static uint64_t probe_read(void *opaque, uint64_t offset, unsigned size)
{
	struct probe *p = opaque;
	(void)offset;
	(void)size;
	return (uint64_t)__atomic_load_n(&p->result, __ATOMIC_SEQ_CST);
}

static void probe_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct probe *p = opaque;
	uint64_t one = 1;
	(void)offset;
	(void)size;
	if (value == 1)
		try_execve(p, "vCPU thread");
	else if (value == 2 && write(p->wake_fd, &one, sizeof(one)) != (ssize_t)sizeof(one))
		p->host->log(p->dev, SMOL_LOG_ERROR, "cannot wake the thread: %s", strerror(errno));
}

static const struct smol_io_ops probe_io = { .read = probe_read, .write = probe_write };

static void probe_destroy(void *state)
{
	struct probe *p = state;
	uint64_t one = 1;

	if (p->started && write(p->stop_fd, &one, sizeof(one)) == (ssize_t)sizeof(one))
		pthread_join(p->thread, NULL);
	if (p->wake_fd >= 0)
		close(p->wake_fd);
	if (p->stop_fd >= 0)
		close(p->stop_fd);
	free(p);
}

static int probe_create(const struct smol_host *host, struct smol_dev *dev, uint32_t flags,
                        void **state)
{
	uint64_t port;
	int r;

	if (host->cfg_u64(dev, "port", 0x530, &port) < 0)
		return -EINVAL;
	if (port > 0xffff) {
		host->cfg_error(dev, "port", "0x%llx is not a port", (unsigned long long)port);
		return -EINVAL;
	}
	struct probe *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->host = host;
	p->dev = dev;
	p->wake_fd = p->stop_fd = -1;
	*state = p;
	r = host->map_pio(dev, (uint16_t)port, 1, &probe_io, p);
	if (r || (flags & SMOL_CREATE_CHECK_ONLY))
		return r;
	p->wake_fd = eventfd(0, EFD_CLOEXEC);
	p->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (p->wake_fd < 0 || p->stop_fd < 0) {
		host->log(dev, SMOL_LOG_ERROR, "eventfd: %s", strerror(errno));
		return -EINVAL;
	}
	r = pthread_create(&p->thread, NULL, probe_thread, p);
	if (r) {
		host->log(dev, SMOL_LOG_ERROR, "cannot start the thread: %s", strerror(r));
		return -EINVAL;
	}
	p->started = true;
	pthread_setname_np(p->thread, "probe-io");
	return 0;
}

static const struct smol_device_ops probe_ops = {
	.struct_size = sizeof(struct smol_device_ops),
	.create = probe_create,
	.destroy = probe_destroy,
};

SMOL_PLUGIN(SMOL_KIND_DEVICE, "seccomp-probe",
            "test device: calls execve when the guest asks (seccomp tests)", &probe_ops);
