/*
 * fuzz-arm64-dt: the arm64 device tree builder (core/arch/arm64/dt.c) on machine descriptions
 * made from the input: its checks (overlaps, SPI range, names, counts) and libfdt's writing
 * into buffers of several sizes.
 *
 * Input, field by field (fuzz-input.h: zeros past the end):
 *   u8 vCPUs (low 8 bits), u8 flags (bit 0 initrd, bit 1 bootargs, bit 2 adds 256 vCPUs,
 *   bits 3-5 the buffer's size, one of eight from 0 to 64 KiB), u8 RAM base in 256 MiB
 *   units, u16 RAM size in 64 KiB units, u16 GICD base and u8 size (64 KiB / 4 KiB units),
 *   u16 GICR base and u16 size (64 KiB units), u16 + u16 the initrd's offset and size in
 *   RAM (4 KiB units), u8 devices (a value past 250 asks for 300, past the limit); then per
 *   device: u8 node name (a table, invalid names among them), u8 compatible count, u8 reg
 *   count, u8 interrupt count, u8 clock count, u8 bits (console, dma-coherent), then per
 *   compatible a u8 string index, per reg a u32 base (256-byte units) and u16 size (16-byte
 *   units), per interrupt a u16 SPI and a u8 flags, per clock a u8 name and a u8 frequency.
 *
 * Checked: no sanitizer report; a refusal says why with -EINVAL or -ENOSPC; an accepted
 * machine gives a blob libfdt's full check accepts, no larger than the buffer, with one cpu
 * node per vCPU and each device's node at name@base with its first compatible string.
 */
#include <errno.h>
#include <libfdt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/arm64/dt.h"
#include "fuzz-input.h"

#define MAX_DEVS 300

static const char *const names[8] = {
	"pl011", "virtio", "serial", "9bad", "a b", "", "abcdefghijklmnopqrstuvwxyz01234", NULL
};
static const char *const strings[8] = {
	"arm,pl011",
	"arm,primecell",
	"virtio,mmio",
	"",
	"with space",
	"uartclk",
	"apb_pclk",
	("x23456789012345678901234567890123456789012345678901234567890123456789012345678901234"
	 "5678901234567890123456789012345678901234567890"), /* 130 bytes: too long */
};
static const uint32_t hz[4] = { 24000000, 0, 1, 4000000000u };
static const size_t caps[8] = { 0, 64, 512, 1024, 2048, 4096, 16384, 65536 };

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz-arm64-dt: %s fails (%s:%d)\n", #cond, __FILE__,      \
			        __LINE__);                                                         \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static struct a64_dt_dev devs[MAX_DEVS];
static uint8_t blob[65536];

static void read_dev(struct in *in, struct a64_dt_dev *d)
{
	memset(d, 0, sizeof(*d));
	d->node = names[in_u8(in) & 7];
	d->n_compatible = in_u8(in) % 6;
	d->n_reg = in_u8(in) % 6;
	d->n_irq = in_u8(in) % 6;
	d->n_clock = in_u8(in) % 4;
	uint8_t bits = in_u8(in);
	d->console = bits & 1;
	d->dma_coherent = bits & 2;
	for (unsigned i = 0; i < d->n_compatible && i < A64_DT_MAX_COMPAT; i++)
		d->compatible[i] = strings[in_u8(in) & 7];
	for (unsigned i = 0; i < d->n_reg && i < A64_DT_MAX_REG; i++) {
		d->reg_base[i] = in_le(in, 4) << 8;
		d->reg_size[i] = in_le(in, 2) << 4;
	}
	for (unsigned i = 0; i < d->n_irq && i < A64_DT_MAX_IRQ; i++) {
		d->spi[i] = (uint32_t)in_le(in, 2);
		d->irq_flags[i] = in_u8(in);
	}
	for (unsigned i = 0; i < d->n_clock && i < A64_DT_MAX_CLOCK; i++) {
		d->clock[i].name = strings[in_u8(in) & 7];
		d->clock[i].hz = hz[in_u8(in) & 3];
	}
}

static void check_blob(const struct a64_dt_machine *m, size_t len, size_t cap)
{
	CHECK(len <= cap);
	CHECK(fdt_check_full(blob, len) == 0);
	int cpus = fdt_path_offset(blob, "/cpus"), n = 0, off;
	CHECK(cpus >= 0);
	fdt_for_each_subnode(off, blob, cpus) n++;
	CHECK(n == (int)m->n_cpus);
	for (unsigned i = 0; i < m->n_devs; i++) {
		char path[80];
		snprintf(path, sizeof(path), "/%s@%llx", m->devs[i].node,
		         (unsigned long long)m->devs[i].reg_base[0]);
		off = fdt_path_offset(blob, path);
		CHECK(off >= 0);
		CHECK(fdt_stringlist_get(blob, off, "compatible", 0, NULL) &&
		      !strcmp(fdt_stringlist_get(blob, off, "compatible", 0, NULL),
		              m->devs[i].compatible[0]));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };
	struct a64_dt_machine m = { 0 };
	char err[256];
	size_t len = 0;

	m.n_cpus = in_u8(&in);
	uint8_t flags = in_u8(&in);
	m.n_cpus += (flags & 4) ? 256 : 0;
	size_t cap = caps[(flags >> 3) & 7];
	m.ram_base = in_le(&in, 1) << 28;
	m.ram_size = in_le(&in, 2) << 16;
	m.gicd_base = in_le(&in, 2) << 16;
	m.gicd_size = in_le(&in, 1) << 12;
	m.gicr_base = in_le(&in, 2) << 16;
	m.gicr_size = in_le(&in, 2) << 16;
	m.has_initrd = flags & 1;
	m.initrd_start = m.ram_base + (in_le(&in, 2) << 12);
	m.initrd_end = m.initrd_start + (in_le(&in, 2) << 12);
	m.bootargs = (flags & 2) ? "console=ttyAMA0 root=/dev/vda rw" : NULL;
	unsigned n = in_u8(&in);
	m.n_devs = n > 250 ? MAX_DEVS : n;
	for (unsigned i = 0; i < m.n_devs; i++)
		read_dev(&in, &devs[i]);
	m.devs = devs;

	err[0] = 0;
	int rc = a64_dt_build(&m, blob, cap, &len, err, sizeof(err));
	if (rc < 0) {
		CHECK(rc == -EINVAL || rc == -ENOSPC);
		CHECK(err[0]);
		return 0;
	}
	CHECK(rc == 0);
	check_blob(&m, len, cap);
	return 0;
}
