/* device.c: device instances and the host table: config getters that know file and line,
 * range and IRQ registration with conflict reports, checked memory, fd watches, exits. */
#define _GNU_SOURCE
#include "device.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "describe.h"
#include "log.h"
#include "machine.h"
#include "notify.h"
#include "snapshot.h"

/* ---- logging and config --------------------------------------------------------------- */

static void host_log(struct smol_dev *dev, enum smol_log_level level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	log_vmsg((int)level, dev->name, fmt, ap);
	va_end(ap);
}

void dev_error(struct smol_dev *dev, const struct cfg_kv *kv, const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	cfg_error(dev->m->cfg, dev->sec, kv, "%s: %s", dev->label, msg);
	dev->cfg_errors++;
}

static int host_cfg_str(struct smol_dev *dev, const char *key, const char *def, const char **out)
{
	struct cfg_kv *kv = cfg_get(dev->sec, key);
	*out = kv ? kv->value : def;
	return 0;
}

static int bad_value(struct smol_dev *dev, struct cfg_kv *kv, const char *what)
{
	dev_error(dev, kv, "bad %s for '%s': '%s'", what, kv->key, kv->value);
	return -EINVAL;
}

static int host_cfg_u64(struct smol_dev *dev, const char *key, uint64_t def, uint64_t *out)
{
	struct cfg_kv *kv = cfg_get(dev->sec, key);
	if (!kv) {
		*out = def;
		return 0;
	}
	return cfg_parse_u64(kv->value, out) < 0 ? bad_value(dev, kv, "number") : 0;
}

static int host_cfg_bool(struct smol_dev *dev, const char *key, int def, int *out)
{
	struct cfg_kv *kv = cfg_get(dev->sec, key);
	if (!kv) {
		*out = def;
		return 0;
	}
	return cfg_parse_bool(kv->value, out) < 0 ? bad_value(dev, kv, "boolean (on/off)") : 0;
}

static int host_cfg_size(struct smol_dev *dev, const char *key, uint64_t def, uint64_t *out)
{
	struct cfg_kv *kv = cfg_get(dev->sec, key);
	if (!kv) {
		*out = def;
		return 0;
	}
	return cfg_parse_size(kv->value, out) < 0 ? bad_value(dev, kv, "size") : 0;
}

static void host_cfg_error(struct smol_dev *dev, const char *key, const char *fmt, ...)
{
	char msg[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (key)
		dev_error(dev, cfg_get(dev->sec, key), "'%s': %s", key, msg);
	else
		dev_error(dev, NULL, "%s", msg);
}

static char *host_cfg_path(struct smol_dev *dev, const char *path)
{
	if (!path)
		return NULL;
	/* a value that came from --set is relative to the current directory */
	for (size_t i = 0; i < dev->sec->n_kv; i++)
		if (dev->sec->kv[i].value == path || strcmp(dev->sec->kv[i].value, path) == 0)
			return cfg_resolve_kv_path(dev->m->cfg, &dev->sec->kv[i]);
	return cfg_resolve_path(dev->m->cfg, path);
}

/* ---- ranges and IRQs ----------------------------------------------------------------- */

static void note_range(struct smol_dev *dev, uint64_t base, uint64_t len, bool pio)
{
	if (dev->n_ranges < DEV_MAX_RANGES)
		dev->ranges[dev->n_ranges++] = (typeof(dev->ranges[0])){ base, len, pio };
}

/* vCPU threads read the buses and IRQ owners without a lock: they are frozen once running. */
static int refuse_when_running(struct smol_dev *dev, const char *what)
{
	if (!dev->m->running)
		return 0;
	host_log(dev, SMOL_LOG_ERROR, "cannot %s after create(): the machine runs", what);
	return -EBUSY;
}

static int map_range(struct smol_dev *dev, struct bus *b, uint64_t base, uint64_t len,
                     const struct smol_io_ops *ops, void *opaque, bool pio)
{
	const struct bus_range *other;
	int r = bus_add(b, base, len, ops, opaque, dev, dev->name, &other);
	if (r == -EEXIST) {
		dev_error(dev, NULL, "%s 0x%llx-0x%llx: already taken by %s%s%s (0x%llx-0x%llx)",
		          pio ? "I/O ports" : "MMIO range", (unsigned long long)base,
		          (unsigned long long)(base + len - 1), other->dev ? "device '" : "",
		          other->owner, other->dev ? "'" : "", (unsigned long long)other->base,
		          (unsigned long long)(other->base + other->len - 1));
	} else if (r == -EINVAL) {
		dev_error(dev, NULL, "%s 0x%llx+0x%llx is outside the %s space",
		          pio ? "I/O ports" : "MMIO range", (unsigned long long)base,
		          (unsigned long long)len, pio ? "16-bit port" : "physical address");
	} else if (r == 0) {
		note_range(dev, base, len, pio);
	}
	return r;
}

static int host_map_mmio(struct smol_dev *dev, uint64_t base, uint64_t len,
                         const struct smol_io_ops *ops, void *opaque, uint64_t *out_base)
{
	struct machine *m = dev->m;
	if (refuse_when_running(dev, "map ranges"))
		return -EBUSY;
	if (base == SMOL_ADDR_AUTO) {
		uint64_t align = 0x1000;
		while (align < len && align < 0x100000)
			align <<= 1;
		if (bus_find_free(&m->mmio, m->arch_ops->mmio_auto_lo, m->arch_ops->mmio_auto_hi,
		                  len, align, &base) < 0) {
			dev_error(dev, NULL, "no free MMIO window of 0x%llx bytes",
			          (unsigned long long)len);
			return -ENOSPC;
		}
	} else {
		/* RAM is not MMIO */
		for (int i = 0; i < m->mem.n_regions; i++) {
			const struct mem_region *rg = &m->mem.region[i];
			if (len && base < rg->gpa + rg->size && rg->gpa < base + len) {
				dev_error(dev, NULL,
				          "MMIO range 0x%llx-0x%llx overlaps guest RAM "
				          "(0x%llx-0x%llx)",
				          (unsigned long long)base,
				          (unsigned long long)(base + len - 1),
				          (unsigned long long)rg->gpa,
				          (unsigned long long)(rg->gpa + rg->size - 1));
				return -EEXIST;
			}
		}
	}
	int r = map_range(dev, &m->mmio, base, len, ops, opaque, false);
	if (r == 0 && out_base)
		*out_base = base;
	return r;
}

static int host_map_pio(struct smol_dev *dev, uint16_t port, uint16_t len,
                        const struct smol_io_ops *ops, void *opaque)
{
	if (refuse_when_running(dev, "map ranges"))
		return -EBUSY;
	return map_range(dev, &dev->m->pio, port, len, ops, opaque, true);
}

static int host_irq_claim(struct smol_dev *dev, uint32_t line)
{
	struct machine *m = dev->m;
	if (refuse_when_running(dev, "claim IRQ lines"))
		return -EBUSY;
	if (line == SMOL_IRQ_AUTO) { /* ABI 1.2: the first free line from the arch's first */
		for (uint32_t l = m->arch_ops->irq_auto_first; l < m->n_irqs; l++) {
			if (m->irq_reserved[l] || m->irq_owner[l] || dev->n_irqs >= DEV_MAX_IRQS)
				continue;
			dev->irqs[dev->n_irqs++] = l;
			m->irq_owner[l] = dev;
			return (int)l;
		}
		dev_error(dev, cfg_get(dev->sec, "irq"), "no free IRQ line (%u-%u): set one",
		          m->arch_ops->irq_auto_first, m->n_irqs - 1);
		return -EBUSY;
	}
	if (line >= m->n_irqs) {
		dev_error(dev, cfg_get(dev->sec, "irq"), "IRQ %u does not exist (lines 0-%u)", line,
		          m->n_irqs - 1);
		return -EINVAL;
	}
	if (m->irq_reserved[line]) {
		dev_error(dev, cfg_get(dev->sec, "irq"), "IRQ %u is reserved for %s", line,
		          m->irq_reserved[line]);
		return -EBUSY;
	}
	if (m->irq_owner[line] && m->irq_owner[line] != dev) {
		dev_error(dev, cfg_get(dev->sec, "irq"),
		          "IRQ %u is already used by device '%s' (line %d)", line,
		          m->irq_owner[line]->name, m->irq_owner[line]->sec->line);
		return -EBUSY;
	}
	if (!m->irq_owner[line] && dev->n_irqs < DEV_MAX_IRQS)
		dev->irqs[dev->n_irqs++] = line;
	m->irq_owner[line] = dev;
	return 0;
}

static int host_irq_set(struct smol_dev *dev, uint32_t line, int level)
{
	if (line >= dev->m->n_irqs || dev->m->irq_owner[line] != dev)
		return -EPERM;
	return machine_irq_set(dev->m, line, level ? 1 : 0);
}

static int host_irq_pulse(struct smol_dev *dev, uint32_t line)
{
	int r = host_irq_set(dev, line, 1);
	if (r < 0)
		return r;
	return host_irq_set(dev, line, 0);
}

/* ---- memory, fds, exits ------------------------------------------------------------- */

static void *host_gpa_ptr(struct smol_dev *dev, uint64_t gpa, uint64_t len)
{
	return mem_gpa_ptr(&dev->m->mem, gpa, len);
}

static int host_fd_watch(struct smol_dev *dev, int fd, uint32_t events, smol_fd_fn cb, void *opaque)
{
	return evloop_watch(&dev->m->loop, fd, events, dev, cb, opaque);
}

static int host_fd_unwatch(struct smol_dev *dev, int fd)
{
	return evloop_unwatch(&dev->m->loop, fd, dev);
}

static void host_request_exit(struct smol_dev *dev, int status)
{
	log_debug("%s ends the run with status %d", dev->label, status);
	machine_request_exit(dev->m, status & 0xff);
}

static void host_request_reset(struct smol_dev *dev)
{
	log_debug("%s asks for a reset", dev->label);
	machine_request_reset(dev->m);
}

static void host_request_snapshot(struct smol_dev *dev)
{
	machine_request_snapshot(dev->m, dev);
}

static const char *host_dev_name(struct smol_dev *dev)
{
	return dev->name;
}

static const char *host_machine_name(struct smol_dev *dev)
{
	return dev->m->name;
}

static int host_cfg_str_at(struct smol_dev *dev, const char *key, unsigned index, const char **out)
{
	struct cfg_kv *kv = cfg_get_at(dev->sec, key, index);

	*out = kv ? kv->value : NULL;
	return kv ? 0 : -ENOENT;
}

const struct smol_host dev_host_table = {
	.abi_major = SMOL_ABI_MAJOR,
	.abi_minor = SMOL_ABI_MINOR,
	.struct_size = sizeof(struct smol_host),
	.log = host_log,
	.cfg_str = host_cfg_str,
	.cfg_u64 = host_cfg_u64,
	.cfg_bool = host_cfg_bool,
	.cfg_size = host_cfg_size,
	.cfg_error = host_cfg_error,
	.cfg_path = host_cfg_path,
	.map_mmio = host_map_mmio,
	.map_pio = host_map_pio,
	.irq_claim = host_irq_claim,
	.irq_set = host_irq_set,
	.irq_pulse = host_irq_pulse,
	.gpa_ptr = host_gpa_ptr,
	.fd_watch = host_fd_watch,
	.fd_unwatch = host_fd_unwatch,
	.request_exit = host_request_exit,
	.request_reset = host_request_reset,
	.desc_device = describe_device,
	.desc_io = describe_io,
	.desc_mmio = describe_mmio,
	.desc_irq = describe_irq,
	.desc_cmdline = describe_cmdline,
	.desc_compatible = describe_compatible,
	.desc_clock = describe_clock,
	.desc_console = describe_console,
	.ioeventfd = notify_ioeventfd,
	.irqfd = notify_irqfd,
	.snap_set_version = snap_host_set_version,
	.snap_write = snap_host_write,
	.snap_version = snap_host_version,
	.snap_read = snap_host_read,
	.snap_remaining = snap_host_remaining,
	.request_snapshot = host_request_snapshot,
	.dev_name = host_dev_name,
	.machine_name = host_machine_name,
	.cfg_str_at = host_cfg_str_at,
};

/* ---- lifecycle -------------------------------------------------------------------- */

static void dev_free(struct smol_dev *d)
{
	if (!d)
		return;
	pthread_mutex_destroy(&d->lock);
	free(d->name);
	free(d->label);
	free(d);
}

/* Takes back what a device that failed to be created had registered. */
static void dev_forget(struct machine *m, struct smol_dev *d)
{
	bus_remove_dev(&m->mmio, d);
	bus_remove_dev(&m->pio, d);
	for (uint32_t i = 0; i < m->n_irqs; i++)
		if (m->irq_owner[i] == d)
			m->irq_owner[i] = NULL;
	for (struct evwatch *w = m->loop.watches; w;) {
		struct evwatch *next = w->next;
		if (w->dev == d)
			evloop_unwatch(&m->loop, w->fd, d);
		w = next;
	}
	notify_forget(m, d);
}

static void dev_fail(struct machine *m, struct smol_dev *d)
{
	if (d->state)
		d->ops->destroy(d->state);
	dev_forget(m, d);
	dev_free(d);
}

static int dev_create_one(struct machine *m, struct cfg_section *sec)
{
	struct cfg *c = m->cfg;
	struct cfg_kv *type = cfg_get(sec, "type");
	char err[1024];

	if (!type) {
		cfg_error(c, sec, NULL, "[device %s] has no 'type' (the device plugin's name)",
		          sec->name);
		return -EINVAL;
	}
	struct plugin *p;
	if (plugin_find(&m->pp, type->value, SMOL_KIND_DEVICE, &p, err, sizeof(err)) < 0) {
		cfg_error(c, sec, type, "device '%s': %s", sec->name, err);
		return -EINVAL;
	}
	struct smol_dev *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	pthread_mutex_init(&d->lock, NULL);
	d->m = m;
	d->sec = sec;
	d->plugin = p;
	d->ops = p->desc->ops;
	d->name = strdup(sec->name);
	if (!d->name || asprintf(&d->label, "%s device '%s'", p->desc->name, sec->name) < 0) {
		d->label = NULL;
		dev_free(d);
		return -ENOMEM;
	}
	int r = d->ops->create(&dev_host_table, d, m->check_only ? SMOL_CREATE_CHECK_ONLY : 0,
	                       &d->state);
	if (r < 0) {
		if (d->cfg_errors == 0)
			cfg_error(c, sec, NULL, "%s: could not be created: %s", d->label,
			          strerror(r < -4095 ? EINVAL : -r));
		dev_fail(m, d);
		return -EINVAL;
	}
	if (d->cfg_errors) {
		/* a plugin that reported a problem but still returned 0 */
		dev_fail(m, d);
		return -EINVAL;
	}
	char what[300];
	snprintf(what, sizeof(what), "%s (device '%s')", p->desc->name, sec->name);
	if (cfg_report_unused(c, sec, what)) {
		dev_fail(m, d);
		return -EINVAL;
	}
	struct smol_dev **devs = realloc(m->devs, (m->n_devs + 1) * sizeof(*devs));
	if (!devs) {
		dev_fail(m, d);
		return -ENOMEM;
	}
	m->devs = devs;
	m->devs[m->n_devs++] = d;
	return 0;
}

int dev_create_all(struct machine *m)
{
	int bad = 0;
	for (size_t i = 0; i < m->cfg->n_sec; i++) {
		struct cfg_section *s = &m->cfg->sec[i];
		if (s->kind == CFG_DEVICE && dev_create_one(m, s) < 0)
			bad++;
	}
	return bad ? -EINVAL : 0;
}

void dev_destroy_all(struct machine *m)
{
	while (m->n_devs) {
		struct smol_dev *d = m->devs[--m->n_devs];
		dev_lock(d);
		d->ops->destroy(d->state);
		dev_unlock(d);
		dev_free(d);
	}
	free(m->devs);
	m->devs = NULL;
}

void dev_reset_all(struct machine *m)
{
	for (size_t i = 0; i < m->n_devs; i++) {
		struct smol_dev *d = m->devs[i];
		if (DEV_HAS_OP(d->ops, reset) && d->ops->reset) {
			dev_lock(d);
			d->ops->reset(d->state);
			dev_unlock(d);
		}
	}
}
