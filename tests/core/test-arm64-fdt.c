/* The arm64 device tree builder (core/arch/arm64/dt.c): every property read back with libfdt,
 * every refusal with its message, and dtc's checks (tests/core/test-arm64-dtc.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <libfdt.h>
#include <stdio.h>
#include <string.h>

#include <smolvm/sdk.h>

#include "arm64-fdt-fixture.h"
#include "arch/arm64/dt.h"

static uint8_t blob[64 * 1024];
static size_t blob_len;
static char err[256];

static int build(const struct a64_dt_machine *m)
{
	err[0] = 0;
	return a64_dt_build(m, blob, sizeof(blob), &blob_len, err, sizeof(err));
}

static int node(const char *path)
{
	int off = fdt_path_offset(blob, path);
	cr_assert(off >= 0, "no node %s: %s", path, fdt_strerror(off));
	return off;
}

static const void *prop(int off, const char *name, int *len)
{
	const void *p = fdt_getprop(blob, off, name, len);
	cr_assert(p, "node %s has no %s", fdt_get_name(blob, off, NULL), name);
	return p;
}

static uint32_t u32(int off, const char *name)
{
	int len;
	const fdt32_t *p = prop(off, name, &len);
	cr_assert_eq(len, 4, "%s is %d bytes, not one cell", name, len);
	return fdt32_to_cpu(*p);
}

static void str(int off, const char *name, const char *want)
{
	int len;
	const char *p = prop(off, name, &len);
	cr_assert_eq(len, (int)strlen(want) + 1, "%s is %d bytes", name, len);
	cr_assert_str_eq(p, want);
}

/* a string list: the strings of @p want, NUL-separated, nothing more */
static void strlist(int off, const char *name, const char *const *want, int n)
{
	cr_assert_eq(fdt_stringlist_count(blob, off, name), n, "%s: %d strings", name,
	             fdt_stringlist_count(blob, off, name));
	for (int i = 0; i < n; i++) {
		const char *s = fdt_stringlist_get(blob, off, name, i, NULL);
		cr_assert(s && !strcmp(s, want[i]), "%s[%d] is %s, want %s", name, i, s, want[i]);
	}
}

static void cells(int off, const char *name, const uint32_t *want, int n)
{
	int len;
	const fdt32_t *p = prop(off, name, &len);
	cr_assert_eq(len, 4 * n, "%s is %d bytes, want %d cells", name, len, n);
	for (int i = 0; i < n; i++)
		cr_assert_eq(fdt32_to_cpu(p[i]), want[i], "%s cell %d is 0x%x, want 0x%x", name, i,
		             fdt32_to_cpu(p[i]), want[i]);
}

static void reg(int off, const uint64_t *base, const uint64_t *size, int n)
{
	int len;
	const fdt64_t *p = prop(off, "reg", &len);
	cr_assert_eq(len, 16 * n, "reg is %d bytes, want %d pairs", len, n);
	for (int i = 0; i < n; i++) {
		cr_assert_eq(fdt64_ld(&p[2 * i]), base[i], "reg %d base", i);
		cr_assert_eq(fdt64_ld(&p[2 * i + 1]), size[i], "reg %d size", i);
	}
}

static void empty(int off, const char *name)
{
	int len;
	prop(off, name, &len);
	cr_assert_eq(len, 0, "%s has %d bytes, want none", name, len);
}

static void absent(int off, const char *name)
{
	cr_assert_null(fdt_getprop(blob, off, name, NULL), "%s should be absent", name);
}

Test(arm64_fdt, root_memory_psci_timer)
{
	struct virt v;
	virt_init(&v, 1, false);
	cr_assert_eq(build(&v.m), 0, "%s", err);
	cr_assert_eq(fdt_check_full(blob, blob_len), 0);
	cr_assert_eq(fdt_totalsize(blob), blob_len);

	int root = node("/");
	cr_assert_eq(u32(root, "#address-cells"), 2);
	cr_assert_eq(u32(root, "#size-cells"), 2);
	str(root, "compatible", "linux,dummy-virt");
	uint32_t gic_ph = u32(root, "interrupt-parent");

	int mem = node("/memory@40000000");
	str(mem, "device_type", "memory");
	reg(mem, &v.m.ram_base, &v.m.ram_size, 1);

	int psci = node("/psci");
	strlist(psci, "compatible", (const char *[]){ "arm,psci-1.0", "arm,psci-0.2" }, 2);
	str(psci, "method", "hvc");

	int gic = node("/interrupt-controller@8000000");
	cr_assert_eq(fdt_get_phandle(blob, gic), gic_ph, "interrupt-parent is not the GIC");
	str(gic, "compatible", "arm,gic-v3");
	cr_assert_eq(u32(gic, "#interrupt-cells"), 3);
	cr_assert_eq(u32(gic, "#address-cells"), 0);
	empty(gic, "interrupt-controller");
	reg(gic, (uint64_t[]){ v.m.gicd_base, v.m.gicr_base },
	    (uint64_t[]){ v.m.gicd_size, v.m.gicr_size }, 2);
	cells(gic, "interrupts", (uint32_t[]){ 1, 9, 4 }, 3);

	int timer = node("/timer");
	str(timer, "compatible", "arm,armv8-timer");
	cells(timer, "interrupts", (uint32_t[]){ 1, 13, 4, 1, 14, 4, 1, 11, 4, 1, 10, 4 }, 12);
}

Test(arm64_fdt, cpus_psci_and_mpidr)
{
	static const unsigned counts[] = { 1, 4, 20 };
	for (unsigned c = 0; c < 3; c++) {
		struct virt v;
		virt_init(&v, counts[c], false);
		cr_assert_eq(build(&v.m), 0, "%s", err);
		int cpus = node("/cpus");
		cr_assert_eq(u32(cpus, "#address-cells"), 1);
		cr_assert_eq(u32(cpus, "#size-cells"), 0);
		unsigned n = 0;
		int cpu;
		fdt_for_each_subnode(cpu, blob, cpus)
		{
			/* KVM's MPIDR: Aff0 = vCPU[3:0], Aff1 = vCPU[11:4] */
			uint32_t want = (n & 15) | (n >> 4) << 8;
			char name[32];
			snprintf(name, sizeof(name), "cpu@%x", want);
			cr_assert_str_eq(fdt_get_name(blob, cpu, NULL), name);
			str(cpu, "device_type", "cpu");
			str(cpu, "compatible", "arm,arm-v8");
			str(cpu, "enable-method", "psci");
			cr_assert_eq(u32(cpu, "reg"), want, "cpu %u reg", n);
			cr_assert_eq(a64_dt_mpidr(n), want);
			n++;
		}
		cr_assert_eq(n, counts[c], "%u cpu nodes for %u vCPUs", n, counts[c]);
	}
	cr_assert_eq(a64_dt_mpidr(4096 + 17), 1u << 16 | 1u << 8 | 1u);
}

Test(arm64_fdt, devices_clocks_chosen)
{
	struct virt v;
	virt_init(&v, 2, true);
	cr_assert_eq(build(&v.m), 0, "%s", err);

	int clk = node("/clock-24000000");
	str(clk, "compatible", "fixed-clock");
	cr_assert_eq(u32(clk, "#clock-cells"), 0);
	cr_assert_eq(u32(clk, "clock-frequency"), 24000000);
	str(clk, "clock-output-names", "clk24000000hz");
	uint32_t clk_ph = fdt_get_phandle(blob, clk);
	cr_assert(clk_ph != 0 && clk_ph != u32(node("/"), "interrupt-parent"));

	int uart = node("/pl011@9000000");
	strlist(uart, "compatible", (const char *[]){ "arm,pl011", "arm,primecell" }, 2);
	reg(uart, (uint64_t[]){ 0x9000000 }, (uint64_t[]){ 0x1000 }, 1);
	cells(uart, "interrupts", (uint32_t[]){ 0, 1, 4 }, 3);
	cells(uart, "clocks", (uint32_t[]){ clk_ph, clk_ph }, 2);
	strlist(uart, "clock-names", (const char *[]){ "uartclk", "apb_pclk" }, 2);
	absent(uart, "dma-coherent");

	int blk = node("/virtio@a000000");
	strlist(blk, "compatible", (const char *[]){ "virtio,mmio" }, 1);
	reg(blk, (uint64_t[]){ 0xa000000 }, (uint64_t[]){ 0x200 }, 1);
	cells(blk, "interrupts", (uint32_t[]){ 0, 16, 1 }, 3);
	empty(blk, "dma-coherent");
	absent(blk, "clocks");
	int net = node("/virtio@a000200");
	cells(net, "interrupts", (uint32_t[]){ 0, 17, 4 }, 3);

	int chosen = node("/chosen");
	str(chosen, "bootargs", "console=ttyAMA0 earlycon");
	str(chosen, "stdout-path", "/pl011@9000000");
	cr_assert_eq(fdt_path_offset(blob, "/pl011@9000000"), uart);
	int len;
	const fdt64_t *p = prop(chosen, "linux,initrd-start", &len);
	cr_assert_eq(len, 8);
	cr_assert_eq(fdt64_ld(p), v.m.initrd_start);
	p = prop(chosen, "linux,initrd-end", &len);
	cr_assert_eq(len, 8);
	cr_assert_eq(fdt64_ld(p), v.m.initrd_end);
}

Test(arm64_fdt, optional_parts_absent)
{
	struct virt v;
	virt_init(&v, 1, false);
	v.m.bootargs = NULL;
	v.devs[0].console = false;
	cr_assert_eq(build(&v.m), 0, "%s", err);
	int chosen = node("/chosen");
	absent(chosen, "bootargs");
	absent(chosen, "stdout-path");
	absent(chosen, "linux,initrd-start");
	absent(chosen, "linux,initrd-end");

	/* the second console is not stdout */
	virt_init(&v, 1, false);
	v.devs[0].console = false;
	v.devs[2].console = true;
	v.devs[1].console = true;
	cr_assert_eq(build(&v.m), 0, "%s", err);
	str(node("/chosen"), "stdout-path", "/virtio@a000000");
}

Test(arm64_fdt, one_clock_per_frequency)
{
	struct virt v;
	virt_init(&v, 1, false);
	v.devs[1].clock[0] = (struct a64_dt_clock){ "core", 100000000 };
	v.devs[1].clock[1] = (struct a64_dt_clock){ "bus", 24000000 };
	v.devs[1].n_clock = 2;
	cr_assert_eq(build(&v.m), 0, "%s", err);
	uint32_t a = fdt_get_phandle(blob, node("/clock-24000000"));
	uint32_t b = fdt_get_phandle(blob, node("/clock-100000000"));
	cr_assert(a && b && a != b);
	cells(node("/virtio@a000000"), "clocks", (uint32_t[]){ b, a }, 2);
	int n = 0, off;
	fdt_for_each_subnode(off, blob, 0) n +=
	        !fdt_node_check_compatible(blob, off, "fixed-clock");
	cr_assert_eq(n, 2, "%d fixed clocks for 2 frequencies", n);
}

Test(arm64_fdt, highest_spi_and_multiple_regs)
{
	struct virt v;
	virt_init(&v, 1, false);
	v.devs[1].spi[0] = A64_DT_SPI_MAX;
	v.devs[1].reg_base[1] = 0xb000000;
	v.devs[1].reg_size[1] = 0x1000;
	v.devs[1].n_reg = 2;
	cr_assert_eq(build(&v.m), 0, "%s", err);
	int blk = node("/virtio@a000000");
	cells(blk, "interrupts", (uint32_t[]){ 0, 987, 1 }, 3);
	reg(blk, (uint64_t[]){ 0xa000000, 0xb000000 }, (uint64_t[]){ 0x200, 0x1000 }, 2);
}

/* ---- refusals ------------------------------------------------------------------------ */

static void refused(const struct a64_dt_machine *m, int want, const char *msg)
{
	int rc = build(m);
	cr_assert_eq(rc, want, "rc %d, want %d (%s)", rc, want, err);
	cr_assert(strstr(err, msg), "message \"%s\" does not say \"%s\"", err, msg);
}

Test(arm64_fdt, refuses_overlaps)
{
	struct virt v;
	virt_init(&v, 1, false);
	v.devs[2].reg_base[0] = 0xa000100;
	refused(&v.m, -EINVAL,
	        "device virtio@a000100 reg 0 [0xa000100, 0xa000300) overlaps device "
	        "virtio@a000000 reg 0 [0xa000000, 0xa000200)");

	virt_init(&v, 1, false);
	v.devs[0].reg_base[0] = 0x4ffff000;
	refused(&v.m, -EINVAL, "device pl011@4ffff000 reg 0 [0x4ffff000, 0x50000000) overlaps RAM");

	virt_init(&v, 1, false);
	v.devs[0].reg_base[0] = 0x800f000;
	v.devs[0].reg_size[0] = 0x2000;
	refused(&v.m, -EINVAL, "overlaps GIC distributor [0x8000000, 0x8010000)");

	virt_init(&v, 1, false);
	v.devs[1].reg_base[0] = 0x8100000;
	refused(&v.m, -EINVAL, "overlaps GIC redistributors");

	virt_init(&v, 1, false);
	v.m.gicr_base = 0x7ff0000;
	v.m.gicr_size = 0x20000;
	refused(&v.m, -EINVAL,
	        "GIC redistributors [0x7ff0000, 0x8010000) overlaps GIC distributor");

	virt_init(&v, 1, false);
	v.m.gicd_base = 0x40000000;
	refused(&v.m, -EINVAL, "GIC distributor [0x40000000, 0x40010000) overlaps RAM");

	/* a device's own two regs */
	virt_init(&v, 1, false);
	v.devs[1].reg_base[1] = 0xa000100;
	v.devs[1].reg_size[1] = 0x10;
	v.devs[1].n_reg = 2;
	refused(&v.m, -EINVAL, "device virtio@a000000 reg 1 [0xa000100, 0xa000110) overlaps");
}

Test(arm64_fdt, refuses_duplicate_names)
{
	struct virt v;
	virt_init(&v, 1, false);
	v.devs[2].reg_base[0] = 0xa000000;
	refused(&v.m, -EINVAL, "two devices are named virtio@a000000 (devices 1 and 2)");
}

Test(arm64_fdt, refuses_bad_interrupts)
{
	struct virt v;
	virt_init(&v, 1, false);
	v.devs[0].spi[0] = 988;
	refused(&v.m, -EINVAL, "device pl011@9000000: SPI 988 out of range (SPIs are 0..987");
	virt_init(&v, 1, false);
	v.devs[0].irq_flags[0] = SMOL_IRQ_LEVEL | SMOL_IRQ_ACTIVE_LOW;
	refused(&v.m, -EINVAL, "SPI 1 is active low");
	virt_init(&v, 1, false);
	v.devs[0].irq_flags[0] = 0x10;
	refused(&v.m, -EINVAL, "unknown flags 0x10");
	virt_init(&v, 1, false);
	v.devs[0].n_irq = 5;
	refused(&v.m, -EINVAL, "5 interrupts (at most 4)");
}

Test(arm64_fdt, refuses_bad_devices)
{
	static const char *const bad_names[] = {
		"", "pl 011", "0uart", "a/b", "uart@1", "abcdefghijklmnopqrstuvwxyz012345"
	};
	struct virt v;
	for (unsigned i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		virt_init(&v, 1, false);
		v.devs[0].node = bad_names[i];
		refused(&v.m, -EINVAL, "device 0: node name");
	}
	virt_init(&v, 1, false);
	v.devs[0].node = NULL;
	refused(&v.m, -EINVAL, "device 0: node name \"(null)\"");

	virt_init(&v, 1, false);
	v.devs[1].n_compatible = 0;
	refused(&v.m, -EINVAL, "device virtio@a000000: 0 compatible strings");
	virt_init(&v, 1, false);
	v.devs[1].compatible[0] = "virtio mmio";
	refused(&v.m, -EINVAL, "compatible string 0 is empty");
	virt_init(&v, 1, false);
	v.devs[1].n_reg = 0;
	refused(&v.m, -EINVAL, "device 1 (virtio): 0 reg ranges");
	virt_init(&v, 1, false);
	v.devs[1].n_reg = 5;
	refused(&v.m, -EINVAL, "5 reg ranges");
	virt_init(&v, 1, false);
	v.devs[1].reg_size[0] = 0;
	refused(&v.m, -EINVAL, "device virtio@a000000: reg 0 has size 0");
	virt_init(&v, 1, false);
	v.devs[1].reg_base[0] = UINT64_MAX - 0xff;
	refused(&v.m, -EINVAL, "wraps past 2^64");
	virt_init(&v, 1, false);
	v.devs[0].clock[1].hz = 0;
	refused(&v.m, -EINVAL, "device pl011@9000000: clock apb_pclk runs at 0 Hz");
	virt_init(&v, 1, false);
	v.devs[0].clock[1].name = "";
	refused(&v.m, -EINVAL, "clock 1 has an empty or malformed name");
	virt_init(&v, 1, false);
	v.devs[0].n_clock = 3;
	refused(&v.m, -EINVAL, "3 clocks (at most 2)");
}

Test(arm64_fdt, refuses_bad_machines)
{
	struct virt v;
	virt_init(&v, 1, false);
	v.m.n_cpus = 0;
	refused(&v.m, -EINVAL, "0 vCPUs (want 1..512)");
	virt_init(&v, 1, false);
	v.m.n_cpus = 513;
	refused(&v.m, -EINVAL, "513 vCPUs");
	virt_init(&v, 1, false);
	v.m.n_cpus = 124;
	refused(&v.m, -EINVAL,
	        "GIC redistributor region of 0xf60000 bytes holds 123 vCPUs (0x20000 bytes each), "
	        "the machine has 124");
	virt_init(&v, 1, false);
	v.m.ram_size = 0;
	refused(&v.m, -EINVAL, "RAM [0x40000000 + 0x0) is empty");
	virt_init(&v, 1, false);
	v.m.gicd_size = 0;
	refused(&v.m, -EINVAL, "GIC distributor [0x8000000 + 0x0) is empty");
	virt_init(&v, 1, true);
	v.m.initrd_end = 0x50000001;
	refused(&v.m, -EINVAL,
	        "initrd [0x48000000, 0x50000001) is not inside RAM [0x40000000, 0x50000000)");
	virt_init(&v, 1, true);
	v.m.initrd_start = 0x3fffffff;
	refused(&v.m, -EINVAL, "initrd [0x3fffffff,");
	virt_init(&v, 1, true);
	v.m.initrd_start = v.m.initrd_end + 1;
	refused(&v.m, -EINVAL, "is not inside RAM");
	virt_init(&v, 1, false);
	v.m.devs = NULL;
	refused(&v.m, -EINVAL, "3 devices but no device array");
}

Test(arm64_fdt, too_small_a_buffer)
{
	struct virt v;
	virt_init(&v, 4, true);
	cr_assert_eq(build(&v.m), 0, "%s", err);
	size_t need = blob_len, len = 0;
	for (size_t cap = 0; cap < need; cap += cap < 128 ? 1 : 97) {
		err[0] = 0;
		int rc = a64_dt_build(&v.m, blob, cap, &len, err, sizeof(err));
		cr_assert_eq(rc, -ENOSPC, "cap %zu: rc %d (%s)", cap, rc, err);
		cr_assert(strstr(err, "device tree: does not fit in"), "%s", err);
	}
	cr_assert_eq(a64_dt_build(&v.m, blob, need, &len, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(len, need);
}
