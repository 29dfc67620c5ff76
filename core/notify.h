/* notify.h: ioeventfds and irqfds (ABI 1.2): a device's queue notifications and interrupts
 * without a vCPU exit or a round-trip through the core. Devices register them in create(),
 * before the VM exists; the core hands them to the backend once it does, and emulates an irqfd
 * on its event loop when the backend has none. */
#ifndef SMOLVM_NOTIFY_H
#define SMOLVM_NOTIFY_H

#include <stdint.h>

struct machine;
struct smol_dev;

/** smol_host::ioeventfd */
int notify_ioeventfd(struct smol_dev *dev, uint64_t addr, uint32_t len, uint32_t flags,
                     uint64_t datamatch, int fd);
/** smol_host::irqfd */
int notify_irqfd(struct smol_dev *dev, uint32_t line, int fd);

/** Registers every ioeventfd and irqfd with the VM (or the fallback watch). 0 or -errno,
 * reported. */
int notify_attach(struct machine *m);
/** Forgets what @p dev registered (its create() failed: its fds are gone). */
void notify_forget(struct machine *m, struct smol_dev *dev);
/** Drops the fallback watches and forgets everything (before the devices close their fds). */
void notify_free(struct machine *m);

#endif
