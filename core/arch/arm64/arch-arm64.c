/* arch-arm64.c: the aarch64 machine, laid out like QEMU's `virt` board: the GICv3's
 * distributor and redistributors below 0x09000000, device windows from 0x09000000 (the PL011
 * customarily there, SMOL_ADDR_AUTO windows from 0x0a000000), RAM from 1 GiB. The guest finds
 * its devices in a flattened device tree (dt.c) built from the devices' descriptions; the
 * kernel is an arm64 Image (image.c) entered with the tree's address in x0 (booting.rst). The
 * hypervisor's in-kernel GIC, architected timer and PSCI serve the rest: no platform device
 * of the core's own. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acpi.h" /* struct acpi_dev_desc: where the core keeps what devices describe */
#include "arch.h"
#include "bootfile.h"
#include "bus.h"
#include "config.h"
#include "describe.h"
#include "device.h"
#include "dt.h"
#include "image.h"
#include "log.h"
#include "machine.h"
#include "memory.h"

#define A64_GICD_BASE 0x08000000ull
#define A64_GICD_SIZE 0x10000ull
#define A64_GICR_BASE 0x080a0000ull
#define A64_RAM_BASE 0x40000000ull
/** KVM's default guest-physical address space on arm64: 40 bits. */
#define A64_IPA_LIMIT (1ull << 40)
/** SPIs devices may use (the GIC gets 32 private interrupts more). */
#define A64_IRQS 96
/** The largest device tree the loader places (booting.rst: 2 MiB at most). */
#define A64_DTB_MAX (2ull << 20)

_Static_assert(A64_IRQS <= ARCH_MAX_IRQS, "the core's line tables hold every SPI");
_Static_assert(A64_GICR_BASE + MACHINE_MAX_VCPUS * A64_DT_GICR_PER_CPU <= 0x09000000ull,
               "the redistributors of the most vCPUs end below the device windows");

static uint64_t gicr_size(const struct machine *m)
{
	return (uint64_t)m->n_vcpus * A64_DT_GICR_PER_CPU;
}

static void a64_mem_layout(struct guest_mem *mem, uint64_t size)
{
	memset(mem, 0, sizeof(*mem));
	mem->fd = -1;
	mem->size = size;
	mem->region[0] = (struct mem_region){ .gpa = A64_RAM_BASE, .size = size, .fd_offset = 0 };
	mem->n_regions = 1;
}

static void a64_configure(struct machine *m)
{
	struct cfg_section *s = cfg_section(m->cfg, CFG_MACHINE, NULL);
	if (m->ram_size > A64_IPA_LIMIT - A64_RAM_BASE) {
		struct cfg_section top = { .line = 1 };
		cfg_error(m->cfg, s ? s : &top, s ? cfg_get(s, "memory") : NULL,
		          "memory %" PRIu64 " MiB: an aarch64 machine has at most %" PRIu64
		          " MiB (RAM from 1 GiB up to the 40-bit address space)",
		          m->ram_size >> 20, (uint64_t)((A64_IPA_LIMIT - A64_RAM_BASE) >> 20));
	}
	m->acpi = false; /* described by a device tree */
	bus_add(&m->mmio, A64_GICD_BASE, A64_GICD_SIZE, NULL, NULL, NULL,
	        "the in-kernel GICv3 distributor", NULL);
	bus_add(&m->mmio, A64_GICR_BASE, gicr_size(m), NULL, NULL, NULL,
	        "the in-kernel GICv3 redistributors", NULL);
}

/* A device's node name: its [device NAME] when a device tree allows it, else "devN". */
static void node_name(const struct smol_dev *d, size_t i, char *out, size_t n)
{
	const char *name = d->name;
	bool ok = (name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z');
	ok = ok && strlen(name) <= 31;
	for (const char *p = name; ok && *p; p++)
		ok = *p != '.'; /* allowed in a node name, but a unit name of its own */
	if (ok)
		snprintf(out, n, "%s", name);
	else
		snprintf(out, n, "dev%zu", i);
}

/* The device tree's picture of the machine, the devices' descriptions included. The strings
 * point into m and @p names; false after reporting a device that cannot be in a tree. */
static bool dt_machine(const struct machine *m, struct a64_dt_machine *dm, struct a64_dt_dev *devs,
                       char (*names)[32])
{
	memset(dm, 0, sizeof(*dm));
	dm->ram_base = A64_RAM_BASE;
	dm->ram_size = m->ram_size;
	dm->n_cpus = m->n_vcpus;
	dm->gicd_base = A64_GICD_BASE;
	dm->gicd_size = A64_GICD_SIZE;
	dm->gicr_base = A64_GICR_BASE;
	dm->gicr_size = gicr_size(m);
	dm->bootargs = m->cmdline;
	dm->devs = devs;
	for (size_t i = 0; i < m->n_descs; i++) {
		const struct acpi_dev_desc *a = &m->descs[i];
		const struct dt_desc *t = &m->dt_descs[i];
		if (!t->n_compatible) {
			log_warn(
			        "device '%s' (%s) describes no compatible string: it is not in the "
			        "device tree",
			        t->dev->name, a->hid);
			continue;
		}
		if (a->n_io) {
			log_err("device '%s' describes I/O ports: an aarch64 machine has none",
			        t->dev->name);
			return false;
		}
		struct a64_dt_dev *d = &devs[dm->n_devs++];
		memset(d, 0, sizeof(*d));
		node_name(t->dev, i, names[i], sizeof(names[i]));
		d->node = names[i];
		for (uint32_t j = 0; j < t->n_compatible; j++)
			d->compatible[d->n_compatible++] = t->compatible[j];
		for (uint32_t j = 0; j < a->n_mmio && j < A64_DT_MAX_REG; j++) {
			d->reg_base[d->n_reg] = a->mmio[j].base;
			d->reg_size[d->n_reg++] = a->mmio[j].len;
		}
		for (uint32_t j = 0; j < a->n_irq && j < A64_DT_MAX_IRQ; j++) {
			d->spi[d->n_irq] = a->irq[j].gsi;
			d->irq_flags[d->n_irq++] = (a->irq[j].level ? SMOL_IRQ_LEVEL : 0) |
			                           (a->irq[j].active_low ? SMOL_IRQ_ACTIVE_LOW : 0);
		}
		for (uint32_t j = 0; j < t->n_clock; j++) {
			d->clock[d->n_clock].name = t->clock[j].name;
			d->clock[d->n_clock++].hz = t->clock[j].hz;
		}
		d->console = t->console;
		/* every device model reaches guest RAM through the host's own coherent mapping */
		d->dma_coherent = true;
	}
	return true;
}

/* Builds the device tree into a malloc'd buffer of *len bytes. 0 or -EINVAL (reported). */
static int dt_build(const struct machine *m, struct a64_dt_machine *dm, void **out, size_t *len)
{
	char err[512];
	for (size_t cap = 64 << 10; cap <= A64_DTB_MAX; cap *= 2) {
		void *buf = malloc(cap);
		if (!buf) {
			log_err("out of memory for the device tree");
			return -EINVAL;
		}
		int r = a64_dt_build(dm, buf, cap, len, err, sizeof(err));
		if (r == 0) {
			*out = buf;
			return 0;
		}
		free(buf);
		if (r != -ENOSPC) {
			log_err("%s: cannot build the device tree: %s", m->cfg->path, err);
			return -EINVAL;
		}
	}
	log_err("%s: the device tree is larger than 2 MiB", m->cfg->path);
	return -EINVAL;
}

static int read_payload_file(const char *path, const char *what, struct boot_file *f)
{
	int r = boot_read_file(path, f);
	if (r < 0)
		fprintf(stderr, "%s: cannot read %s: %s\n", path, what,
		        r == -EINVAL ? "not a regular file" : strerror(-r));
	return r;
}

static int a64_load_payload(struct machine *m, struct arch_boot *boot)
{
	struct boot_file kernel = { 0 }, initrd = { 0 };
	struct a64_dt_dev *devs = calloc(m->n_descs + 1, sizeof(*devs));
	char(*names)[32] = calloc(m->n_descs + 1, sizeof(*names));
	struct a64_dt_machine dm;
	struct a64_image img;
	struct a64_placement p;
	void *dtb = NULL;
	size_t dtb_len = 0;
	char err[512];
	int r = -EINVAL;

	memset(boot, 0, sizeof(*boot));
	boot->arch = SMOL_ARCH_AARCH64;
	if (!devs || !names) {
		log_err("out of memory");
		goto out;
	}
	if (read_payload_file(m->kernel_path, "kernel", &kernel) < 0)
		goto out;
	if (a64_image_parse(kernel.data, kernel.size, &img, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s: %s\n", m->kernel_path, err);
		goto out;
	}
	if (m->initrd_path && read_payload_file(m->initrd_path, "initrd", &initrd) < 0)
		goto out;
	if (!dt_machine(m, &dm, devs, names))
		goto out;
	/* the tree's size does not depend on the initrd's addresses: build it once to learn it,
	 * place everything, then build it again with the initrd where it went */
	dm.has_initrd = initrd.size > 0;
	dm.initrd_start = A64_RAM_BASE;
	dm.initrd_end = A64_RAM_BASE + initrd.size;
	if (dt_build(m, &dm, &dtb, &dtb_len) < 0)
		goto out;
	if (a64_image_place(&img, A64_RAM_BASE, m->ram_size, initrd.size, dtb_len, &p, err,
	                    sizeof(err)) < 0) {
		fprintf(stderr, "%s: %s\n", m->kernel_path, err);
		goto out;
	}
	dm.initrd_start = p.initrd;
	dm.initrd_end = p.initrd_end;
	free(dtb);
	dtb = NULL;
	if (dt_build(m, &dm, &dtb, &dtb_len) < 0)
		goto out;
	uint8_t *k = mem_gpa_ptr(&m->mem, p.kernel_load, img.file_size);
	uint8_t *t = mem_gpa_ptr(&m->mem, p.dtb, dtb_len);
	uint8_t *i = initrd.size ? mem_gpa_ptr(&m->mem, p.initrd, initrd.size) : NULL;
	if (!k || !t || (initrd.size && !i)) { /* a64_image_place kept them inside RAM */
		log_err("%s: the kernel, initrd or device tree was placed outside guest RAM",
		        m->kernel_path);
		goto out;
	}
	memcpy(k, kernel.data, img.file_size);
	memcpy(t, dtb, dtb_len);
	if (initrd.size)
		memcpy(i, initrd.data, initrd.size);
	boot->u.arm64.pc = p.kernel_load;
	boot->u.arm64.x[0] = p.dtb;
	r = 0;
out:
	free(dtb);
	free(devs);
	free(names);
	boot_file_free(&kernel);
	boot_file_free(&initrd);
	return r;
}

/* The size of the device tree at @p gpa in guest RAM (its header's big-endian totalsize), or 0. */
static uint32_t dtb_size_at(const struct machine *m, uint64_t gpa)
{
	const uint8_t *hdr = mem_gpa_ptr(&m->mem, gpa, 8);
	return hdr ? (uint32_t)hdr[4] << 24 | (uint32_t)hdr[5] << 16 | (uint32_t)hdr[6] << 8 |
	                       hdr[7]
	           : 0;
}

static void a64_print_layout(const struct machine *m, const struct arch_boot *boot)
{
	uint32_t size = dtb_size_at(m, boot->u.arm64.x[0]);
	printf("firmware tables: a device tree at 0x%llx (%u bytes), %zu device%s in it; GICv3 "
	       "distributor 0x%llx, redistributors 0x%llx-0x%llx\n",
	       (unsigned long long)boot->u.arm64.x[0], size, m->n_descs, m->n_descs == 1 ? "" : "s",
	       (unsigned long long)A64_GICD_BASE, (unsigned long long)A64_GICR_BASE,
	       (unsigned long long)(A64_GICR_BASE + gicr_size(m) - 1));
	printf("entry: 0x%llx (arm64 Image, EL1), x0 = the device tree\n",
	       (unsigned long long)boot->u.arm64.pc);
}

static int a64_write_dtb(struct machine *m, const char *out)
{
	struct arch_boot boot;
	int r = machine_load_payload(m, &boot);
	if (r < 0)
		return r;
	uint32_t size = dtb_size_at(m, boot.u.arm64.x[0]);
	const uint8_t *blob = size ? mem_gpa_ptr(&m->mem, boot.u.arm64.x[0], size) : NULL;
	if (!blob) {
		log_err("%s: no device tree in guest RAM at 0x%llx", m->cfg->path,
		        (unsigned long long)boot.u.arm64.x[0]);
		return -EIO;
	}
	FILE *f = fopen(out, "wb");
	if (!f) {
		log_err("%s: cannot create: %s", out, strerror(errno));
		return -EIO;
	}
	bool written = fwrite(blob, 1, size, f) == size;
	if (fclose(f) != 0 || !written) {
		log_err("%s: cannot write: %s", out, strerror(errno));
		return -EIO;
	}
	printf("%s: the device tree (%u bytes) written to %s\n", m->cfg->path, size, out);
	return 0;
}

static int a64_vm_ready(struct machine *m)
{
	const struct smol_arm64_platform pf = {
		.struct_size = sizeof(pf),
		.n_irqs = A64_IRQS,
		.gicd_base = A64_GICD_BASE,
		.gicr_base = A64_GICR_BASE,
		.gicr_size = gicr_size(m),
	};
	if (!BACKEND_OP_SINCE(m, 5, vm_ready)) {
		log_err("the %s backend (%s) cannot run aarch64 machines (no vm_ready: ABI 1.5)",
		        m->backend_name, m->backend->path);
		return -ENOTSUP;
	}
	return m->be->vm_ready(m->vm, SMOL_ARCH_AARCH64, &pf, sizeof(pf));
}

const struct arch_ops arch_aarch64 = {
	.name = "aarch64",
	.tag = SMOL_ARCH_AARCH64,
	.n_irqs = A64_IRQS,
	.irq_auto_first = 16, /* SPIs 0-15 for devices placed by hand, as QEMU's virt does */
	.mmio_auto_lo = 0x0a000000,
	.mmio_auto_hi = A64_RAM_BASE,
	.device_tree = true,
	.desc_mmio_limit = A64_IPA_LIMIT,
	.mem_layout = a64_mem_layout,
	.configure = a64_configure,
	.load_payload = a64_load_payload,
	.print_layout = a64_print_layout,
	.vm_ready = a64_vm_ready,
	.write_dtb = a64_write_dtb,
};
