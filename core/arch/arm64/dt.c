/* The arm64 machine's device tree (see dt.h), written with libfdt's sequential-write API after
 * the whole description has been checked. */
#include "dt.h"

#include <errno.h>
#include <inttypes.h>
#include <libfdt.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <smolvm/sdk.h>

#define A64_DT_MAX_DEVS 256u
#define NODE_NAME_MAX 31 /* the DT spec's limit for a node name without its unit address */
#define COMPAT_MAX 127 /* one compatible string, a bound of ours */

/* The third cell of a GIC interrupt specifier (arm,gic-v3 binding): 1 edge, 4 level. */
#define GIC_SPI 0u
#define GIC_PPI 1u
#define GIC_EDGE_RISING 1u
#define GIC_LEVEL_HIGH 4u
#define GIC_MAINT_PPI 9u
/* The architected timer's PPIs, in the binding's order: secure physical, non-secure physical,
 * virtual, hypervisor. */
static const uint32_t timer_ppis[4] = { 13, 14, 11, 10 };

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

uint32_t a64_dt_mpidr(unsigned index)
{
	/* KVM's reset value of MPIDR_EL1 for vcpu_id N: Aff0 = N[3:0], Aff1 = N[11:4],
	 * Aff2 = N[19:12] (16 vCPUs per cluster, as the GICv3's target lists want). */
	return (index & 0x0fu) | ((index >> 4) & 0xffu) << 8 | ((index >> 12) & 0xffu) << 16;
}

/* ---- checking the description -------------------------------------------------------- */

/* An address range of the machine: RAM (dev -1), the GIC's (dev -2, -3) or a device's reg. */
struct range {
	uint64_t base, size;
	int dev;
	unsigned reg;
};

static bool valid_node_name(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > NODE_NAME_MAX)
		return false;
	if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == ',' || c == '.' || c == '_' || c == '+' || c == '-'))
			return false;
	}
	return true;
}

static bool valid_string(const char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < 0x21 || s[i] > 0x7e)
			return false;
	return true;
}

static void dev_name(const struct a64_dt_dev *d, char *out, size_t len)
{
	snprintf(out, len, "%s@%" PRIx64, d->node, d->reg_base[0]);
}

static int check_dev(const struct a64_dt_dev *d, unsigned idx, char *err, size_t errlen)
{
	char name[64];

	if (!valid_node_name(d->node))
		return fail(err, errlen, -EINVAL,
		            "device %u: node name \"%s\" is not 1-%d letters, digits or ,._+- "
		            "starting with a letter",
		            idx, d->node ? d->node : "(null)", NODE_NAME_MAX);
	if (d->n_reg < 1 || d->n_reg > A64_DT_MAX_REG)
		return fail(err, errlen, -EINVAL, "device %u (%s): %u reg ranges (want 1..%u)", idx,
		            d->node, d->n_reg, A64_DT_MAX_REG);
	dev_name(d, name, sizeof(name));
	if (d->n_compatible < 1 || d->n_compatible > A64_DT_MAX_COMPAT)
		return fail(err, errlen, -EINVAL, "device %s: %u compatible strings (want 1..%u)",
		            name, d->n_compatible, A64_DT_MAX_COMPAT);
	for (unsigned i = 0; i < d->n_compatible; i++)
		if (!valid_string(d->compatible[i], COMPAT_MAX))
			return fail(
			        err, errlen, -EINVAL,
			        "device %s: compatible string %u is empty, longer than %d bytes "
			        "or not printable ASCII without spaces",
			        name, i, COMPAT_MAX);
	for (unsigned i = 0; i < d->n_reg; i++) {
		if (d->reg_size[i] == 0)
			return fail(err, errlen, -EINVAL, "device %s: reg %u has size 0", name, i);
		if (d->reg_base[i] + d->reg_size[i] < d->reg_base[i])
			return fail(err, errlen, -EINVAL,
			            "device %s: reg %u [0x%" PRIx64 " + 0x%" PRIx64
			            ") wraps past 2^64",
			            name, i, d->reg_base[i], d->reg_size[i]);
	}
	if (d->n_irq > A64_DT_MAX_IRQ)
		return fail(err, errlen, -EINVAL, "device %s: %u interrupts (at most %u)", name,
		            d->n_irq, A64_DT_MAX_IRQ);
	for (unsigned i = 0; i < d->n_irq; i++) {
		if (d->spi[i] > A64_DT_SPI_MAX)
			return fail(err, errlen, -EINVAL,
			            "device %s: SPI %" PRIu32 " out of range (SPIs are 0..%u, "
			            "GIC INTIDs 32..1019)",
			            name, d->spi[i], A64_DT_SPI_MAX);
		if (d->irq_flags[i] & SMOL_IRQ_ACTIVE_LOW)
			return fail(err, errlen, -EINVAL,
			            "device %s: SPI %" PRIu32 " is active low: GIC SPIs are "
			            "level-high or rising-edge only",
			            name, d->spi[i]);
		if (d->irq_flags[i] & ~(uint32_t)SMOL_IRQ_LEVEL)
			return fail(err, errlen, -EINVAL,
			            "device %s: SPI %" PRIu32 " has unknown flags 0x%" PRIx32, name,
			            d->spi[i], d->irq_flags[i]);
	}
	if (d->n_clock > A64_DT_MAX_CLOCK)
		return fail(err, errlen, -EINVAL, "device %s: %u clocks (at most %u)", name,
		            d->n_clock, A64_DT_MAX_CLOCK);
	for (unsigned i = 0; i < d->n_clock; i++) {
		if (!valid_string(d->clock[i].name, COMPAT_MAX))
			return fail(err, errlen, -EINVAL,
			            "device %s: clock %u has an empty or malformed name", name, i);
		if (d->clock[i].hz == 0)
			return fail(err, errlen, -EINVAL, "device %s: clock %s runs at 0 Hz", name,
			            d->clock[i].name);
	}
	return 0;
}

static int check_machine(const struct a64_dt_machine *m, char *err, size_t errlen)
{
	if (m->ram_size == 0 || m->ram_base + m->ram_size < m->ram_base)
		return fail(err, errlen, -EINVAL,
		            "RAM [0x%" PRIx64 " + 0x%" PRIx64 ") is empty or wraps past 2^64",
		            m->ram_base, m->ram_size);
	if (m->n_cpus < 1 || m->n_cpus > A64_DT_MAX_CPUS)
		return fail(err, errlen, -EINVAL, "%u vCPUs (want 1..%u)", m->n_cpus,
		            A64_DT_MAX_CPUS);
	if (m->gicd_size == 0 || m->gicd_base + m->gicd_size < m->gicd_base)
		return fail(err, errlen, -EINVAL,
		            "GIC distributor [0x%" PRIx64 " + 0x%" PRIx64
		            ") is empty or wraps past 2^64",
		            m->gicd_base, m->gicd_size);
	if (m->gicr_base + m->gicr_size < m->gicr_base)
		return fail(err, errlen, -EINVAL,
		            "GIC redistributors [0x%" PRIx64 " + 0x%" PRIx64 ") wrap past 2^64",
		            m->gicr_base, m->gicr_size);
	if (m->gicr_size < (uint64_t)m->n_cpus * A64_DT_GICR_PER_CPU)
		return fail(err, errlen, -EINVAL,
		            "GIC redistributor region of 0x%" PRIx64 " bytes holds %" PRIu64
		            " vCPUs (0x%llx bytes each), the machine has %u",
		            m->gicr_size, (uint64_t)(m->gicr_size / A64_DT_GICR_PER_CPU),
		            (unsigned long long)A64_DT_GICR_PER_CPU, m->n_cpus);
	if (m->has_initrd && (m->initrd_start > m->initrd_end || m->initrd_start < m->ram_base ||
	                      m->initrd_end - m->ram_base > m->ram_size))
		return fail(err, errlen, -EINVAL,
		            "initrd [0x%" PRIx64 ", 0x%" PRIx64 ") is not inside RAM [0x%" PRIx64
		            ", 0x%" PRIx64 ")",
		            m->initrd_start, m->initrd_end, m->ram_base, m->ram_base + m->ram_size);
	if (m->bootargs && strlen(m->bootargs) > 65536)
		return fail(err, errlen, -EINVAL, "bootargs of %zu bytes (at most 65536)",
		            strlen(m->bootargs));
	if (m->n_devs > A64_DT_MAX_DEVS)
		return fail(err, errlen, -EINVAL, "%u devices (at most %u)", m->n_devs,
		            A64_DT_MAX_DEVS);
	if (m->n_devs && !m->devs)
		return fail(err, errlen, -EINVAL, "%u devices but no device array", m->n_devs);
	return 0;
}

static void range_name(const struct a64_dt_machine *m, const struct range *r, char *out, size_t len)
{
	char name[64];

	if (r->dev == -1)
		snprintf(out, len, "RAM");
	else if (r->dev == -2)
		snprintf(out, len, "GIC distributor");
	else if (r->dev == -3)
		snprintf(out, len, "GIC redistributors");
	else {
		dev_name(&m->devs[r->dev], name, sizeof(name));
		snprintf(out, len, "device %s reg %u", name, r->reg);
	}
}

/* Every address range of the machine: RAM, the GIC's two, each device's regs; none may
 * overlap another. */
static int check_overlaps(const struct a64_dt_machine *m, char *err, size_t errlen)
{
	struct range r[3 + A64_DT_MAX_DEVS * A64_DT_MAX_REG];
	char a[96], b[96], name[64];
	unsigned n = 0;

	r[n++] = (struct range){ m->ram_base, m->ram_size, -1, 0 };
	r[n++] = (struct range){ m->gicd_base, m->gicd_size, -2, 0 };
	r[n++] = (struct range){ m->gicr_base, m->gicr_size, -3, 0 };
	for (unsigned i = 0; i < m->n_devs; i++) {
		const struct a64_dt_dev *d = &m->devs[i];

		for (unsigned j = 0; j < i; j++) {
			if (!strcmp(m->devs[j].node, d->node) &&
			    m->devs[j].reg_base[0] == d->reg_base[0]) {
				dev_name(d, name, sizeof(name));
				return fail(err, errlen, -EINVAL,
				            "two devices are named %s (devices %u and %u)", name, j,
				            i);
			}
		}
		for (unsigned k = 0; k < d->n_reg; k++)
			r[n++] = (struct range){ d->reg_base[k], d->reg_size[k], (int)i, k };
	}
	for (unsigned i = 0; i < n; i++) {
		for (unsigned j = 0; j < i; j++) {
			if (r[i].base < r[j].base + r[j].size &&
			    r[j].base < r[i].base + r[i].size) {
				range_name(m, &r[i], a, sizeof(a));
				range_name(m, &r[j], b, sizeof(b));
				return fail(err, errlen, -EINVAL,
				            "%s [0x%" PRIx64 ", 0x%" PRIx64
				            ") overlaps %s [0x%" PRIx64 ", 0x%" PRIx64 ")",
				            a, r[i].base, r[i].base + r[i].size, b, r[j].base,
				            r[j].base + r[j].size);
			}
		}
	}
	return 0;
}

/* ---- writing the tree ------------------------------------------------------------------ */

/* libfdt calls with a sticky error: the first failure is kept, later calls do nothing. */
struct dtw {
	void *fdt;
	int rc;
	char where[64]; /* what was being written (copied: node names live on the stack) */
};

static void w_check(struct dtw *w, int rc, const char *where)
{
	if (rc < 0 && w->rc == 0) {
		w->rc = rc;
		snprintf(w->where, sizeof(w->where), "%s", where);
	}
}

static void begin(struct dtw *w, const char *name)
{
	if (!w->rc)
		w_check(w, fdt_begin_node(w->fdt, name), name);
}

static void end(struct dtw *w)
{
	if (!w->rc)
		w_check(w, fdt_end_node(w->fdt), "end of node");
}

static void prop(struct dtw *w, const char *name, const void *val, size_t len)
{
	if (!w->rc)
		w_check(w, fdt_property(w->fdt, name, val, (int)len), name);
}

static void prop_u32(struct dtw *w, const char *name, uint32_t v)
{
	if (!w->rc)
		w_check(w, fdt_property_u32(w->fdt, name, v), name);
}

static void prop_u64(struct dtw *w, const char *name, uint64_t v)
{
	if (!w->rc)
		w_check(w, fdt_property_u64(w->fdt, name, v), name);
}

static void prop_str(struct dtw *w, const char *name, const char *s)
{
	prop(w, name, s, strlen(s) + 1);
}

/* A list of u32 cells (interrupts, clocks). */
static void prop_cells(struct dtw *w, const char *name, const uint32_t *v, unsigned n)
{
	fdt32_t cells[12];

	_Static_assert(3 * A64_DT_MAX_IRQ <= 12 && A64_DT_MAX_CLOCK <= 12, "cells[] too small");
	if (n > 12) {
		w_check(w, -FDT_ERR_INTERNAL, name);
		return;
	}

	for (unsigned i = 0; i < n; i++)
		cells[i] = cpu_to_fdt32(v[i]);
	prop(w, name, cells, n * sizeof(cells[0]));
}

/* reg of (2 address cells, 2 size cells) pairs */
static void prop_reg(struct dtw *w, const uint64_t *base, const uint64_t *size, unsigned n)
{
	fdt64_t cells[2 * A64_DT_MAX_REG];

	for (unsigned i = 0; i < n; i++) {
		cells[2 * i] = cpu_to_fdt64(base[i]);
		cells[2 * i + 1] = cpu_to_fdt64(size[i]);
	}
	prop(w, "reg", cells, n * sizeof(cells[0]) * 2);
}

/* A string list (compatible, clock-names): the strings one after another, each with its NUL. */
static void prop_strlist(struct dtw *w, const char *name, const char *const *s, unsigned n)
{
	char buf[A64_DT_MAX_COMPAT * (COMPAT_MAX + 1)];
	size_t len = 0;

	for (unsigned i = 0; i < n; i++) {
		size_t l = strlen(s[i]) + 1;
		memcpy(buf + len, s[i], l);
		len += l;
	}
	prop(w, name, buf, len);
}

static void write_cpus(struct dtw *w, const struct a64_dt_machine *m)
{
	char name[32];

	begin(w, "cpus");
	prop_u32(w, "#address-cells", 1);
	prop_u32(w, "#size-cells", 0);
	for (unsigned i = 0; i < m->n_cpus; i++) {
		uint32_t mpidr = a64_dt_mpidr(i);
		snprintf(name, sizeof(name), "cpu@%" PRIx32, mpidr);
		begin(w, name);
		prop_str(w, "device_type", "cpu");
		prop_str(w, "compatible", "arm,arm-v8");
		prop_u32(w, "reg", mpidr);
		prop_str(w, "enable-method", "psci");
		end(w);
	}
	end(w);
}

static void write_gic_timer(struct dtw *w, const struct a64_dt_machine *m)
{
	static const char *const psci[2] = { "arm,psci-1.0", "arm,psci-0.2" };
	uint64_t base[2] = { m->gicd_base, m->gicr_base };
	uint64_t size[2] = { m->gicd_size, m->gicr_size };
	uint32_t cells[12];
	char name[64];

	begin(w, "psci");
	prop_strlist(w, "compatible", psci, 2);
	prop_str(w, "method", "hvc");
	end(w);

	snprintf(name, sizeof(name), "interrupt-controller@%" PRIx64, m->gicd_base);
	begin(w, name);
	prop_str(w, "compatible", "arm,gic-v3");
	prop_u32(w, "#interrupt-cells", 3);
	/* no children (no ITS): no addresses below it, and an interrupt-map that names it
	 * would give no parent unit address (dtc's interrupt_provider check wants it said) */
	prop_u32(w, "#address-cells", 0);
	prop(w, "interrupt-controller", "", 0);
	prop_reg(w, base, size, 2);
	cells[0] = GIC_PPI;
	cells[1] = GIC_MAINT_PPI;
	cells[2] = GIC_LEVEL_HIGH;
	prop_cells(w, "interrupts", cells, 3);
	prop_u32(w, "phandle", A64_DT_PHANDLE_GIC);
	end(w);

	/* Level-high without a CPU mask: the arm,gic-v3 binding's third cell is 1 (edge) or
	 * 4 (level); the PPI CPU mask of bits 8-15 is GICv2's (QEMU's virt does the same). */
	for (unsigned i = 0; i < 4; i++) {
		cells[3 * i] = GIC_PPI;
		cells[3 * i + 1] = timer_ppis[i];
		cells[3 * i + 2] = GIC_LEVEL_HIGH;
	}
	begin(w, "timer");
	prop_str(w, "compatible", "arm,armv8-timer");
	prop_cells(w, "interrupts", cells, 12);
	end(w);
}

/* The distinct clock frequencies in the order devices name them: clock node i has phandle
 * A64_DT_PHANDLE_CLOCK + i. */
struct clocks {
	uint32_t hz[A64_DT_MAX_DEVS * A64_DT_MAX_CLOCK];
	unsigned n;
};

static uint32_t clock_phandle(struct clocks *c, uint32_t hz)
{
	for (unsigned i = 0; i < c->n; i++)
		if (c->hz[i] == hz)
			return A64_DT_PHANDLE_CLOCK + i;
	c->hz[c->n] = hz;
	return A64_DT_PHANDLE_CLOCK + c->n++;
}

static void write_clocks(struct dtw *w, const struct a64_dt_machine *m, struct clocks *c)
{
	char name[48];

	c->n = 0;
	for (unsigned i = 0; i < m->n_devs; i++)
		for (unsigned k = 0; k < m->devs[i].n_clock; k++)
			clock_phandle(c, m->devs[i].clock[k].hz);
	for (unsigned i = 0; i < c->n; i++) {
		snprintf(name, sizeof(name), "clock-%" PRIu32, c->hz[i]);
		begin(w, name);
		prop_str(w, "compatible", "fixed-clock");
		prop_u32(w, "#clock-cells", 0);
		prop_u32(w, "clock-frequency", c->hz[i]);
		snprintf(name, sizeof(name), "clk%" PRIu32 "hz", c->hz[i]);
		prop_str(w, "clock-output-names", name);
		prop_u32(w, "phandle", A64_DT_PHANDLE_CLOCK + i);
		end(w);
	}
}

static void write_dev(struct dtw *w, const struct a64_dt_dev *d, struct clocks *c)
{
	uint32_t cells[3 * A64_DT_MAX_IRQ];
	const char *names[A64_DT_MAX_CLOCK];
	char name[64];

	dev_name(d, name, sizeof(name));
	begin(w, name);
	prop_strlist(w, "compatible", d->compatible, d->n_compatible);
	prop_reg(w, d->reg_base, d->reg_size, d->n_reg);
	if (d->n_irq) {
		for (unsigned i = 0; i < d->n_irq; i++) {
			cells[3 * i] = GIC_SPI;
			cells[3 * i + 1] = d->spi[i];
			cells[3 * i + 2] = (d->irq_flags[i] & SMOL_IRQ_LEVEL) ? GIC_LEVEL_HIGH
			                                                      : GIC_EDGE_RISING;
		}
		prop_cells(w, "interrupts", cells, 3 * d->n_irq);
	}
	if (d->n_clock) {
		for (unsigned i = 0; i < d->n_clock; i++) {
			cells[i] = clock_phandle(c, d->clock[i].hz);
			names[i] = d->clock[i].name;
		}
		prop_cells(w, "clocks", cells, d->n_clock);
		prop_strlist(w, "clock-names", names, d->n_clock);
	}
	if (d->dma_coherent)
		prop(w, "dma-coherent", "", 0);
	end(w);
}

static void write_chosen(struct dtw *w, const struct a64_dt_machine *m)
{
	char path[72];

	begin(w, "chosen");
	if (m->bootargs)
		prop_str(w, "bootargs", m->bootargs);
	for (unsigned i = 0; i < m->n_devs; i++) {
		if (m->devs[i].console) {
			path[0] = '/';
			dev_name(&m->devs[i], path + 1, sizeof(path) - 1);
			prop_str(w, "stdout-path", path);
			break;
		}
	}
	if (m->has_initrd) {
		prop_u64(w, "linux,initrd-start", m->initrd_start);
		prop_u64(w, "linux,initrd-end", m->initrd_end);
	}
	end(w);
}

int a64_dt_build(const struct a64_dt_machine *m, void *buf, size_t cap, size_t *len, char *err,
                 size_t errlen)
{
	struct clocks clocks;
	struct dtw w = { .fdt = buf };
	char name[48];
	int rc;

	if (!m || !buf || !len)
		return fail(err, errlen, -EINVAL, "device tree: no machine, buffer or length");
	if (cap > INT32_MAX)
		cap = INT32_MAX;
	if ((rc = check_machine(m, err, errlen)) < 0)
		return rc;
	for (unsigned i = 0; i < m->n_devs; i++)
		if ((rc = check_dev(&m->devs[i], i, err, errlen)) < 0)
			return rc;
	if ((rc = check_overlaps(m, err, errlen)) < 0)
		return rc;

	w_check(&w, fdt_create(buf, (int)cap), "header");
	if (!w.rc)
		w_check(&w, fdt_finish_reservemap(buf), "memory reservation map");
	begin(&w, "");
	prop_u32(&w, "#address-cells", 2);
	prop_u32(&w, "#size-cells", 2);
	prop_str(&w, "compatible", "linux,dummy-virt");
	prop_u32(&w, "interrupt-parent", A64_DT_PHANDLE_GIC);

	write_chosen(&w, m);
	snprintf(name, sizeof(name), "memory@%" PRIx64, m->ram_base);
	begin(&w, name);
	prop_str(&w, "device_type", "memory");
	prop_reg(&w, &m->ram_base, &m->ram_size, 1);
	end(&w);
	write_cpus(&w, m);
	write_gic_timer(&w, m);
	write_clocks(&w, m, &clocks);
	for (unsigned i = 0; i < m->n_devs; i++)
		write_dev(&w, &m->devs[i], &clocks);
	end(&w);
	if (!w.rc)
		w_check(&w, fdt_finish(buf), "end of tree");

	if (w.rc == -FDT_ERR_NOSPACE)
		return fail(err, errlen, -ENOSPC,
		            "device tree: does not fit in %zu bytes (ran out at %s)", cap, w.where);
	if (w.rc)
		return fail(err, errlen, -EINVAL, "device tree: libfdt failed at %s: %s", w.where,
		            fdt_strerror(w.rc));
	*len = fdt_totalsize(buf);
	return 0;
}
