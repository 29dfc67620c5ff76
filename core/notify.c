/* notify.c: ioeventfds and irqfds (ABI 1.2). See notify.h. */
#include "notify.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "device.h"
#include "log.h"
#include "machine.h"

struct notify_ioevent {
	struct smol_dev *dev;
	uint64_t addr, datamatch;
	uint32_t len, flags;
	int fd;
};

struct notify_irqfd {
	struct machine *m;
	struct smol_dev *dev;
	uint32_t line;
	int fd;
	int watched; /**< emulated on the event loop (the backend has no irqfd) */
};

static bool in_own_mmio(const struct smol_dev *dev, uint64_t addr, uint32_t len)
{
	for (int i = 0; i < dev->n_ranges; i++)
		if (!dev->ranges[i].pio && addr >= dev->ranges[i].base &&
		    len <= dev->ranges[i].len &&
		    addr - dev->ranges[i].base <= dev->ranges[i].len - len)
			return true;
	return false;
}

int notify_ioeventfd(struct smol_dev *dev, uint64_t addr, uint32_t len, uint32_t flags,
                     uint64_t datamatch, int fd)
{
	struct machine *m = dev->m;
	if (m->running)
		return -EBUSY;
	if (!BACKEND_OP_SINCE(m, 2, ioeventfd))
		return -ENOTSUP; /* the writes keep reaching the MMIO handler */
	if ((len != 1 && len != 2 && len != 4 && len != 8) || fd < 0 ||
	    (flags & ~(uint32_t)SMOL_IOEVENT_DATAMATCH) || !in_own_mmio(dev, addr, len)) {
		log_err("%s: ioeventfd at 0x%llx (%u bytes): not inside its own MMIO range",
		        dev->label, (unsigned long long)addr, len);
		return -EINVAL;
	}
	struct notify_ioevent *n = realloc(m->ioevents, (m->n_ioevents + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	m->ioevents = n;
	n[m->n_ioevents++] = (struct notify_ioevent){ .dev = dev,
		                                      .addr = addr,
		                                      .datamatch = datamatch,
		                                      .len = len,
		                                      .flags = flags,
		                                      .fd = fd };
	return 0;
}

int notify_irqfd(struct smol_dev *dev, uint32_t line, int fd)
{
	struct machine *m = dev->m;
	bool owned = false;
	if (m->running)
		return -EBUSY;
	for (int i = 0; i < dev->n_irqs; i++)
		owned |= dev->irqs[i] == line;
	if (!owned || fd < 0) {
		log_err("%s: irqfd for line %u, which it did not claim", dev->label, line);
		return -EINVAL;
	}
	struct notify_irqfd *n = realloc(m->irqfds, (m->n_irqfds + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	m->irqfds = n;
	n[m->n_irqfds++] = (struct notify_irqfd){ .m = m, .dev = dev, .line = line, .fd = fd };
	return 0;
}

/* The fallback irqfd: each write to the eventfd pulses the line. */
static void irqfd_ready(void *opaque, int fd, uint32_t events)
{
	struct notify_irqfd *q = opaque;
	uint64_t count;
	(void)events;
	if (read(fd, &count, sizeof(count)) != (ssize_t)sizeof(count))
		return;
	machine_irq_set(q->m, q->line, 1);
	machine_irq_set(q->m, q->line, 0);
}

int notify_attach(struct machine *m)
{
	for (size_t i = 0; i < m->n_ioevents; i++) {
		struct notify_ioevent *e = &m->ioevents[i];
		int r = m->be->ioeventfd(m->vm, e->addr, e->len, 0, e->flags, e->datamatch, e->fd);
		if (r < 0) {
			log_err("%s: cannot register its ioeventfd at 0x%llx: %s", e->dev->label,
			        (unsigned long long)e->addr, strerror(-r));
			return r;
		}
	}
	for (size_t i = 0; i < m->n_irqfds; i++) {
		struct notify_irqfd *q = &m->irqfds[i];
		int r = BACKEND_OP_SINCE(m, 2, irqfd) ? m->be->irqfd(m->vm, q->line, q->fd)
		                                      : -ENOTSUP;
		if (r == -ENOTSUP || r == -ENOSYS) {
			r = evloop_watch(&m->loop, q->fd, SMOL_FD_IN, NULL, irqfd_ready, q);
			q->watched = r == 0;
		}
		if (r < 0) {
			log_err("%s: cannot attach its irqfd for line %u: %s", q->dev->label,
			        q->line, strerror(-r));
			return r;
		}
	}
	return 0;
}

void notify_forget(struct machine *m, struct smol_dev *dev)
{
	size_t k = 0;
	for (size_t i = 0; i < m->n_ioevents; i++)
		if (m->ioevents[i].dev != dev)
			m->ioevents[k++] = m->ioevents[i];
	m->n_ioevents = k;
	k = 0;
	for (size_t i = 0; i < m->n_irqfds; i++)
		if (m->irqfds[i].dev != dev)
			m->irqfds[k++] = m->irqfds[i];
	m->n_irqfds = k;
}

void notify_free(struct machine *m)
{
	for (size_t i = 0; i < m->n_irqfds; i++)
		if (m->irqfds[i].watched)
			evloop_unwatch(&m->loop, m->irqfds[i].fd, NULL);
	free(m->ioevents);
	free(m->irqfds);
	m->ioevents = NULL;
	m->irqfds = NULL;
	m->n_ioevents = m->n_irqfds = 0;
}
