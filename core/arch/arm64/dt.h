/* The arm64 machine's flattened device tree, built with libfdt from a plain description of the
 * machine (no struct machine here: the core fills these structs from its own state).
 *
 * The tree follows Linux's Documentation/devicetree/bindings and Documentation/arch/arm64/
 * booting.rst: root compatible "linux,dummy-virt" (the binding Linux documents for a virtual
 * machine that is no particular board, as QEMU's virt machine does; smolvm claims no vendor
 * prefix of its own); /memory, /cpus (PSCI enable method, reg = the MPIDR affinity KVM gives
 * vCPU N), /psci (1.0 and 0.2, hvc), a GICv3 (distributor, one redistributor region,
 * maintenance PPI 9), the architected timer (PPIs 13, 14, 11, 10), one fixed-clock per distinct
 * device clock frequency, one node per device and /chosen (bootargs, stdout-path, initrd). */
#ifndef SMOLVM_ARCH_ARM64_DT_H
#define SMOLVM_ARCH_ARM64_DT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define A64_DT_MAX_COMPAT 4
#define A64_DT_MAX_REG 4
#define A64_DT_MAX_IRQ 4
#define A64_DT_MAX_CLOCK 2
/* SPIs are GIC INTIDs 32..1019: SPI numbers 0..987 in a device tree's interrupts cell. */
#define A64_DT_SPI_MAX 987u
/* KVM's limit for a GICv3 VM (KVM_MAX_VCPUS on arm64). */
#define A64_DT_MAX_CPUS 512u
/* A GICv3 redistributor is two 64 KiB frames (RD_base, SGI_base) per vCPU. */
#define A64_DT_GICR_PER_CPU 0x20000ull

/* The device tree's phandles: the GIC's, then one per fixed clock from A64_DT_PHANDLE_CLOCK. */
#define A64_DT_PHANDLE_GIC 1u
#define A64_DT_PHANDLE_CLOCK 2u

struct a64_dt_clock {
	const char *name; /**< the device's clock-names entry, e.g. "uartclk" */
	uint32_t hz; /**< its fixed frequency; one fixed-clock node per distinct value */
};

struct a64_dt_dev {
	/** node name prefix: "pl011" gives "pl011@9000000" (the first reg's base in hex) */
	const char *node;
	const char *compatible[A64_DT_MAX_COMPAT];
	unsigned n_compatible; /**< 1..A64_DT_MAX_COMPAT */
	uint64_t reg_base[A64_DT_MAX_REG], reg_size[A64_DT_MAX_REG];
	unsigned n_reg; /**< 1..A64_DT_MAX_REG */
	uint32_t spi[A64_DT_MAX_IRQ]; /**< SPI numbers 0..A64_DT_SPI_MAX (INTID - 32) */
	/** SMOL_IRQ_LEVEL (level, active high) or SMOL_IRQ_EDGE (rising edge) of enum
	 * smol_irq_flags (sdk.h); SMOL_IRQ_ACTIVE_LOW is refused: GIC SPIs have no polarity */
	uint32_t irq_flags[A64_DT_MAX_IRQ];
	unsigned n_irq; /**< 0..A64_DT_MAX_IRQ */
	struct a64_dt_clock clock[A64_DT_MAX_CLOCK];
	unsigned n_clock; /**< 0..A64_DT_MAX_CLOCK */
	bool console; /**< the first console device is /chosen's stdout-path */
	bool dma_coherent; /**< adds dma-coherent (virtio devices) */
};

struct a64_dt_machine {
	uint64_t ram_base, ram_size;
	unsigned n_cpus; /**< 1..A64_DT_MAX_CPUS */
	uint64_t gicd_base, gicd_size; /**< the distributor (64 KiB) */
	/** one redistributor region, A64_DT_GICR_PER_CPU bytes per vCPU at least */
	uint64_t gicr_base, gicr_size;
	const char *bootargs; /**< the kernel command line; NULL for none */
	bool has_initrd;
	uint64_t initrd_start, initrd_end; /**< [start, end) inside RAM, when has_initrd */
	const struct a64_dt_dev *devs;
	unsigned n_devs;
};

/**
 * Builds the device tree blob of machine @p m into @p buf (@p cap bytes) and stores its size
 * in @p len. Checks the description first: devices that overlap one another, RAM or the GIC,
 * SPI numbers out of range, two nodes of the same name@base, malformed names, a
 * redistributor region too small for the vCPUs, ... Returns 0, or a negative errno with a
 * message in @p err (-EINVAL: the description is wrong; -ENOSPC: @p cap is too small).
 */
int a64_dt_build(const struct a64_dt_machine *m, void *buf, size_t cap, size_t *len, char *err,
                 size_t errlen);

/** The MPIDR affinity fields (Aff2.Aff1.Aff0) KVM gives vCPU @p index: its cpu node's reg. */
uint32_t a64_dt_mpidr(unsigned index);

#endif
