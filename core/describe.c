/* describe.c: collects device descriptions (ABI 1.1 describe()) for the ACPI tables and the
 * kernel command line. A device may only describe ranges and lines it owns: a description
 * that points the guest's driver at another device's registers is a config error. */
#define _GNU_SOURCE
#include "describe.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acpi.h"
#include "device.h"
#include "log.h"
#include "machine.h"

struct smol_describe {
	struct machine *m;
	struct smol_dev *dev;
	struct acpi_dev_desc *cur; /**< the device being described, NULL before desc_device() */
	struct dt_desc *dt; /**< the same device's device-tree part */
	int bad; /**< a helper refused something: the description as a whole fails */
};

static int refuse(struct smol_describe *d, int err, const char *fmt, ...) SMOL_PRINTF(3, 4);
static int refuse(struct smol_describe *d, int err, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	dev_error(d->dev, NULL, "describe: %s", msg);
	d->bad = 1;
	return err;
}

/* True when the device mapped [base, base+len) itself (ports when pio). */
static bool owns_range(const struct smol_dev *dev, bool pio, uint64_t base, uint64_t len)
{
	for (int i = 0; i < dev->n_ranges; i++)
		if (dev->ranges[i].pio == pio && base >= dev->ranges[i].base &&
		    len <= dev->ranges[i].len &&
		    base - dev->ranges[i].base <= dev->ranges[i].len - len)
			return true;
	return false;
}

int describe_device(struct smol_describe *d, const char *hid)
{
	struct machine *m = d->m;
	if (!hid || strlen(hid) >= sizeof(m->descs[0].hid) || !acpi_hid_valid(hid))
		return refuse(d, -EINVAL,
		              "hardware ID '%s' is neither an EISA id (\"PNP0501\") nor an ACPI id "
		              "(\"LNRO0005\")",
		              hid ? hid : "(null)");
	struct acpi_dev_desc *n = realloc(m->descs, (m->n_descs + 1) * sizeof(*n));
	if (!n)
		return refuse(d, -ENOMEM, "out of memory");
	m->descs = n;
	struct dt_desc *t = realloc(m->dt_descs, (m->n_descs + 1) * sizeof(*t));
	if (!t)
		return refuse(d, -ENOMEM, "out of memory");
	m->dt_descs = t;
	d->dt = &t[m->n_descs];
	memset(d->dt, 0, sizeof(*d->dt));
	d->dt->dev = d->dev;
	d->cur = &n[m->n_descs++];
	memset(d->cur, 0, sizeof(*d->cur));
	snprintf(d->cur->hid, sizeof(d->cur->hid), "%s", hid);
	/* _UID: unique per hardware ID, in the order devices appear in the INI file */
	for (size_t i = 0; i + 1 < m->n_descs; i++)
		if (strcmp(m->descs[i].hid, hid) == 0)
			d->cur->uid++;
	return 0;
}

int describe_io(struct smol_describe *d, uint16_t port, uint16_t len)
{
	if (!d->cur)
		return refuse(d, -EINVAL, "ports 0x%x before desc_device()", port);
	if (len == 0 || len > 255 || !owns_range(d->dev, true, port, len))
		return refuse(d, -EINVAL, "ports 0x%x+%u are not this device's (or over 255)", port,
		              len);
	if (d->cur->n_io == ACPI_MAX_RES)
		return refuse(d, -ENOSPC, "more than %d port ranges", ACPI_MAX_RES);
	d->cur->io[d->cur->n_io].base = port;
	d->cur->io[d->cur->n_io++].len = len;
	return 0;
}

int describe_mmio(struct smol_describe *d, uint64_t base, uint64_t len)
{
	if (!d->cur)
		return refuse(d, -EINVAL, "MMIO 0x%llx before desc_device()",
		              (unsigned long long)base);
	uint64_t limit = d->m->arch_ops->desc_mmio_limit;
	if (len == 0 || base >= limit || len > limit - base ||
	    !owns_range(d->dev, false, base, len))
		return refuse(d, -EINVAL,
		              "MMIO 0x%llx (+0x%llx) is not this device's window below 0x%llx",
		              (unsigned long long)base, (unsigned long long)len,
		              (unsigned long long)limit);
	if (d->cur->n_mmio == ACPI_MAX_RES)
		return refuse(d, -ENOSPC, "more than %d MMIO windows", ACPI_MAX_RES);
	d->cur->mmio[d->cur->n_mmio].base = base;
	d->cur->mmio[d->cur->n_mmio++].len = len;
	return 0;
}

int describe_irq(struct smol_describe *d, uint32_t line, uint32_t flags)
{
	bool owned = false;
	if (!d->cur)
		return refuse(d, -EINVAL, "IRQ %u before desc_device()", line);
	for (int i = 0; i < d->dev->n_irqs; i++)
		owned |= d->dev->irqs[i] == line;
	if (!owned)
		return refuse(d, -EINVAL, "IRQ %u is not a line this device claimed", line);
	if (flags & ~(uint32_t)(SMOL_IRQ_LEVEL | SMOL_IRQ_ACTIVE_LOW))
		return refuse(d, -EINVAL, "IRQ %u: unknown flags 0x%x", line, flags);
	if (d->cur->n_irq == ACPI_MAX_RES)
		return refuse(d, -ENOSPC, "more than %d interrupts", ACPI_MAX_RES);
	d->cur->irq[d->cur->n_irq].gsi = line;
	d->cur->irq[d->cur->n_irq].level = !!(flags & SMOL_IRQ_LEVEL);
	d->cur->irq[d->cur->n_irq++].active_low = !!(flags & SMOL_IRQ_ACTIVE_LOW);
	return 0;
}

int describe_cmdline(struct smol_describe *d, const char *words)
{
	struct machine *m = d->m;
	if (!words || !*words || strchr(words, '\n'))
		return refuse(d, -EINVAL, "command-line words must be one non-empty line");
	if (m->acpi || m->arch_ops->device_tree)
		return 0;
	char *n;
	if (asprintf(&n, "%s%s%s", m->cmdline_extra ? m->cmdline_extra : "",
	             m->cmdline_extra ? " " : "", words) < 0)
		return refuse(d, -ENOMEM, "out of memory");
	free(m->cmdline_extra);
	m->cmdline_extra = n;
	return 0;
}

/* A string for a device tree: printable ASCII, no quote or backslash, 1 to max-1 bytes. */
static bool dt_string_ok(const char *s, size_t max)
{
	size_t n = s ? strnlen(s, max) : max;
	if (n == 0 || n >= max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~' || s[i] == '"' || s[i] == '\\')
			return false;
	return true;
}

int describe_compatible(struct smol_describe *d, const char *compatible)
{
	if (!d->cur)
		return refuse(d, -EINVAL, "a compatible string before desc_device()");
	if (!dt_string_ok(compatible, DESC_COMPAT_LEN))
		return refuse(d, -EINVAL,
		              "compatible string '%.80s' is not 1-%d printable characters without "
		              "spaces or quotes",
		              compatible ? compatible : "(null)", DESC_COMPAT_LEN - 1);
	if (d->dt->n_compatible == DESC_MAX_COMPAT)
		return refuse(d, -ENOSPC, "more than %d compatible strings", DESC_MAX_COMPAT);
	snprintf(d->dt->compatible[d->dt->n_compatible++], DESC_COMPAT_LEN, "%s", compatible);
	return 0;
}

int describe_clock(struct smol_describe *d, const char *name, uint32_t hz)
{
	if (!d->cur)
		return refuse(d, -EINVAL, "a clock before desc_device()");
	if (!dt_string_ok(name, DESC_CLOCK_NAME_LEN) || hz == 0)
		return refuse(d, -EINVAL,
		              "clock '%.80s' at %u Hz: a name of 1-%d characters and a "
		              "rate above 0 are needed",
		              name ? name : "(null)", hz, DESC_CLOCK_NAME_LEN - 1);
	if (d->dt->n_clock == DESC_MAX_CLOCKS)
		return refuse(d, -ENOSPC, "more than %d clocks", DESC_MAX_CLOCKS);
	snprintf(d->dt->clock[d->dt->n_clock].name, DESC_CLOCK_NAME_LEN, "%s", name);
	d->dt->clock[d->dt->n_clock++].hz = hz;
	return 0;
}

int describe_console(struct smol_describe *d)
{
	if (!d->cur)
		return refuse(d, -EINVAL, "a console before desc_device()");
	d->dt->console = true;
	return 0;
}

int describe_all(struct machine *m)
{
	for (size_t i = 0; i < m->n_devs; i++) {
		struct smol_dev *dev = m->devs[i];
		if (!DEV_HAS_OP(dev->ops, describe) || !dev->ops->describe)
			continue;
		struct smol_describe d = { .m = m, .dev = dev };
		dev_lock(dev);
		int r = dev->ops->describe(dev->state, &d);
		dev_unlock(dev);
		if (r < 0 && !d.bad)
			dev_error(dev, NULL, "describe failed: %s", strerror(-r));
		if (r < 0 || d.bad)
			return -EINVAL;
	}
	if (m->cmdline_extra) {
		char *full;
		if (asprintf(&full, "%s%s%s", m->cmdline, *m->cmdline ? " " : "",
		             m->cmdline_extra) < 0)
			return -ENOMEM;
		free(m->cmdline_buf);
		m->cmdline_buf = full;
		m->cmdline = full;
	}
	return 0;
}

void describe_free(struct machine *m)
{
	free(m->descs);
	m->descs = NULL;
	free(m->dt_descs);
	m->dt_descs = NULL;
	m->n_descs = 0;
	free(m->cmdline_extra);
	m->cmdline_extra = NULL;
	free(m->cmdline_buf);
	m->cmdline_buf = NULL;
}
