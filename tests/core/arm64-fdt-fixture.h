/* A QEMU-virt-like arm64 machine for the device tree tests: 256 MiB of RAM at 1 GiB, a GICv3
 * (distributor at 0x8000000, redistributors at 0x80a0000), a PL011 console with its two
 * 24 MHz clocks and two virtio-mmio devices (one edge, one level interrupt). */
#ifndef SMOLVM_TEST_ARM64_FDT_FIXTURE_H
#define SMOLVM_TEST_ARM64_FDT_FIXTURE_H

#include <string.h>

#include <smolvm/sdk.h>

#include "arch/arm64/dt.h"

struct virt {
	struct a64_dt_machine m;
	struct a64_dt_dev devs[3];
};

static inline void virt_init(struct virt *v, unsigned cpus, bool initrd)
{
	memset(v, 0, sizeof(*v));
	v->devs[0] = (struct a64_dt_dev){
		.node = "pl011",
		.compatible = { "arm,pl011", "arm,primecell" },
		.n_compatible = 2,
		.reg_base = { 0x9000000 },
		.reg_size = { 0x1000 },
		.n_reg = 1,
		.spi = { 1 },
		.irq_flags = { SMOL_IRQ_LEVEL },
		.n_irq = 1,
		.clock = { { "uartclk", 24000000 }, { "apb_pclk", 24000000 } },
		.n_clock = 2,
		.console = true,
	};
	for (int i = 1; i < 3; i++) {
		v->devs[i] = (struct a64_dt_dev){
			.node = "virtio",
			.compatible = { "virtio,mmio" },
			.n_compatible = 1,
			.reg_base = { 0xa000000 + 0x200 * (uint64_t)(i - 1) },
			.reg_size = { 0x200 },
			.n_reg = 1,
			.spi = { 15 + (uint32_t)i },
			.irq_flags = { i == 1 ? SMOL_IRQ_EDGE : SMOL_IRQ_LEVEL },
			.n_irq = 1,
			.dma_coherent = true,
		};
	}
	v->m = (struct a64_dt_machine){
		.ram_base = 0x40000000,
		.ram_size = 256ull << 20,
		.n_cpus = cpus,
		.gicd_base = 0x8000000,
		.gicd_size = 0x10000,
		.gicr_base = 0x80a0000,
		.gicr_size = 0xf60000,
		.bootargs = "console=ttyAMA0 earlycon",
		.has_initrd = initrd,
		.initrd_start = initrd ? 0x48000000 : 0,
		.initrd_end = initrd ? 0x48800000 : 0,
		.devs = v->devs,
		.n_devs = 3,
	};
}

#endif
