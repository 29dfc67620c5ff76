/* arch.h: what the core asks of an architecture (core/arch/<arch>/): where guest RAM lies, the
 * platform's own ranges and interrupt lines, the firmware tables and payload loaders, and the
 * boot CPU's entry state. One const table per architecture, picked by `[machine] arch`; the
 * rest of the core (config, devices, buses, lifecycle, snapshots) knows no arch layout. */
#ifndef SMOLVM_ARCH_H
#define SMOLVM_ARCH_H

#include <stdbool.h>
#include <stdint.h>

#include <smolvm/sdk.h>

struct machine;
struct guest_mem;

/** The most interrupt lines any arch gives devices (the size of the core's line tables). */
#define ARCH_MAX_IRQS 128

/** A boot CPU's entry state, tagged with enum smol_arch. */
struct arch_boot {
	uint32_t arch;
	union {
		struct smol_x86_boot x86;
		struct smol_arm64_boot arm64;
	} u;
};

struct arch_ops {
	const char *name; /**< `[machine] arch = NAME` */
	uint32_t tag; /**< enum smol_arch: snapshots and the backend's state blobs */
	uint32_t n_irqs; /**< lines 0 to n_irqs - 1 (x86: I/O APIC pins) */
	uint32_t irq_auto_first; /**< SMOL_IRQ_AUTO gives the first free line from here up */
	uint64_t mmio_auto_lo, mmio_auto_hi; /**< SMOL_ADDR_AUTO windows go in [lo, hi) */
	bool device_tree; /**< the guest finds its devices in a device tree, not ACPI or cmdline */
	uint64_t desc_mmio_limit; /**< a described MMIO window ends below (x86: ACPI's 4 GiB) */
	/** Lays out @p size bytes of guest RAM (no allocation). */
	void (*mem_layout)(struct guest_mem *mem, uint64_t size);
	/**
	 * Reads the arch's own `[machine]` keys, maps the platform's own devices and reserves
	 * the ranges and lines the hypervisor's irqchip and timers own (m->mmio, m->pio,
	 * m->irq_reserved). Errors go through cfg_error.
	 */
	void (*configure)(struct machine *m);
	/**
	 * With RAM allocated and the devices described: writes the firmware tables and loads the
	 * payload ([boot] kernel, initrd, cmdline), and fills @p boot. 0, or -EINVAL after
	 * reporting why.
	 */
	int (*load_payload)(struct machine *m, struct arch_boot *boot);
	/** Prints the platform's part of `smolvm check`: firmware tables, then @p boot's entry. */
	void (*print_layout)(const struct machine *m, const struct arch_boot *boot);
	/**
	 * A restored machine is about to run again (RAM, irqchip and vCPUs loaded): tells the
	 * guest it was restored (x86: a new VM generation ID). 0 or a negative errno (reported).
	 */
	int (*restored)(struct machine *m);
	/** `smolvm acpi`: builds the ACPI tables and writes one file per table into @p dir. 0, or
	 * -EINVAL / -ENOMEM / -EIO after reporting. NULL for an arch without ACPI. */
	int (*write_acpi)(struct machine *m, const char *dir);
	/** `smolvm dtb`: loads the payload and writes the device tree its kernel gets to the file
	 * @p out. As write_acpi; NULL for an arch without a device tree. */
	int (*write_dtb)(struct machine *m, const char *out);
	/**
	 * Every vCPU exists: finishes the VM through the backend's vm_ready with the arch's
	 * platform (arm64: the GIC's addresses). NULL: the core calls vm_ready, when the backend
	 * has it, with no platform. 0 or a negative errno.
	 */
	int (*vm_ready)(struct machine *m);
};

extern const struct arch_ops arch_x86_64;
extern const struct arch_ops arch_aarch64;

/** The arch called @p name, or NULL. */
const struct arch_ops *arch_find(const char *name);
/** The arch tagged @p tag (enum smol_arch), or NULL. */
const struct arch_ops *arch_by_tag(uint32_t tag);
/** The names arch_find() knows, for an error message ("x86_64"). */
const char *arch_names(void);

#endif
