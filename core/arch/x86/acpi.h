/* acpi.h: the ACPI tables of an x86 machine (ACPI 6.5, hardware-reduced): RSDP, XSDT, FADT,
 * MADT and a DSDT describing the vCPUs and the devices plugins contribute.
 *
 * The tables go into one buffer the guest sees at a guest-physical address, RSDP first (so
 * a scan of 0xE0000-0xFFFFF on 16-byte boundaries finds it), each table 16-byte aligned.
 *
 * The platform registers the FADT points to are three 8-bit SystemIO ports the core emulates:
 *
 *   pm_port      sleep control register (write). Bits 4-2 SLP_TYP, bit 5 SLP_EN. The DSDT's
 *                \_S5 package gives SLP_TYP 5 for S5, so poweroff writes
 *                (5 << 2) | (1 << 5) = 0x34 (ACPI_SLEEP_CTL_S5). Other values: ignore.
 *   pm_port + 1  sleep status register. Bit 7 WAK_STS, write 1 to clear: Linux clears it
 *                before writing the sleep control register, then polls it for the wake.
 *   pm_port + 2  reset register (write): reset_value resets the machine.
 *
 * With vmgenid_gpa set, the DSDT also holds the platform's own two devices (ASL):
 *
 *   Device (\_SB.VGEN) {                       // the VM generation ID (Microsoft's
 *       Name (_HID, "SMOL0001")                 // "Virtual Machine Generation ID" spec; Linux
 *       Name (_CID, "VM_GEN_COUNTER")           // binds drivers/virt/vmgenid.c by the _CID)
 *       Name (_DDN, "VM_GEN_COUNTER")
 *       Method (ADDR) { Return (Package (2) { vmgenid_gpa & 0xFFFFFFFF, vmgenid_gpa >> 32 }) }
 *   }
 *   Device (\_SB.GED0) {                       // Generic Event Device (ACPI 6.1 and later)
 *       Name (_HID, "ACPI0013")
 *       Name (_UID, 0)
 *       Name (_CRS, ResourceTemplate () {
 *           Interrupt (ResourceConsumer, Edge, ActiveHigh, Exclusive) { ged_gsi } })
 *       Method (_EVT, 1) { If (Arg0 == ged_gsi) { Notify (\_SB.VGEN, 0x80) } }
 *   }
 *
 * The ID is 16 bytes of guest RAM at vmgenid_gpa; a VMM that changes them raises an edge on
 * ged_gsi, the guest's GED driver runs _EVT and the Notify makes the vmgenid driver read the
 * new ID (Linux then reseeds its RNG: "crng reseeded due to virtual machine fork").
 */
#ifndef SMOLVM_ACPI_H
#define SMOLVM_ACPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Sleep control register (ACPI 6.5, 4.8.3.7). */
#define ACPI_SLP_TYP_SHIFT 2
#define ACPI_SLP_TYP_MASK 0x1C
#define ACPI_SLP_EN 0x20
#define ACPI_S5_SLP_TYP 5 /**< the \_S5 package's first element */
#define ACPI_SLEEP_CTL_S5 ((ACPI_S5_SLP_TYP << ACPI_SLP_TYP_SHIFT) | ACPI_SLP_EN)
/* Sleep status register. */
#define ACPI_WAK_STS 0x80

/** Where the core places the tables: Linux scans 0xE0000-0xFFFFF for the RSDP. */
#define ACPI_TABLES_GPA 0xE0000ull
/** Up to 0xFDFFF: the VM generation ID's page (0xFE000) and the reset vector's page follow. */
#define ACPI_TABLES_SIZE 0x1E000ull

/* The platform's own devices in the DSDT (acpi_machine.vmgenid_gpa). */
#define ACPI_VMGENID_NAME "VGEN"
#define ACPI_VMGENID_HID "SMOL0001"
#define ACPI_VMGENID_CID "VM_GEN_COUNTER" /**< what Linux's vmgenid driver matches */
#define ACPI_VMGENID_SIZE 16
#define ACPI_VMGENID_NOTIFY 0x80 /**< the Notify value _EVT sends the VGEN device */
#define ACPI_GED_NAME "GED0"
#define ACPI_GED_HID "ACPI0013"
#define ACPI_GED_UID 0

#define ACPI_MAX_RES 4
/** One device the DSDT describes (contributed by a device plugin). */
struct acpi_dev_desc {
	/** "PNP0501" (EISA id: 3 uppercase letters, 4 uppercase hex digits) -> EISAID _HID;
	 *  "LNRO0005" (ACPI id: 4 uppercase letters or digits, 4 uppercase hex digits) -> String
	 *  _HID; anything else is refused. */
	char hid[16];
	/** ACPI NameSeg ("COM0", 1-4 of [A-Z0-9_], not starting with a digit or '_'); if empty
	 *  the builder assigns a unique one ("D000", "D001", ...). */
	char name[5];
	uint32_t uid; /**< _UID; unique among the devices with the same _HID */
	uint32_t n_io;
	struct {
		uint16_t base, len; /**< len 1-255, base + len <= 0x10000 */
	} io[ACPI_MAX_RES];
	uint32_t n_mmio;
	struct {
		uint64_t base, len; /**< below 4 GiB (Memory32Fixed), len > 0 */
	} mmio[ACPI_MAX_RES];
	uint32_t n_irq;
	struct {
		uint32_t gsi;
		uint8_t level, active_low; /**< 0: edge, active high */
	} irq[ACPI_MAX_RES];
};

/** True for an EISA id ("PNP0501") or an ACPI id ("LNRO0005"): what a _HID may be here. */
bool acpi_hid_valid(const char *hid);

struct acpi_machine {
	uint32_t n_vcpus; /**< local APIC ids and ACPI processor UIDs 0..n-1 (1-255) */
	uint64_t lapic_base; /**< 0xfee00000 */
	uint64_t ioapic_base; /**< 0xfec00000 */
	uint8_t ioapic_id; /**< n_vcpus is fine */
	/** Sleep control register = pm_port, sleep status = pm_port + 1, reset register =
	 *  pm_port + 2 (all SystemIO, 8-bit). 1-0xFFFD. */
	uint16_t pm_port;
	uint8_t reset_value; /**< written to the reset register */
	const struct acpi_dev_desc *devs;
	size_t n_devs;
	/** Where the 16-byte VM generation ID is (8-byte aligned, within one page, outside the
	 *  tables); 0: no VGEN and no GED0 in the DSDT. */
	uint64_t vmgenid_gpa;
	/** The GED's interrupt (an edge, active high) that announces a new ID: a GSI no
	 *  described device uses (0-255). */
	uint32_t ged_gsi;
};

/** One table in the buffer: "RSDP", "XSDT", "FACP", "APIC", "DSDT". */
struct acpi_table_ref {
	char sig[5];
	uint32_t offset, length; /**< offset within buf */
};

struct acpi_tables {
	uint64_t rsdp_gpa;
	size_t used; /**< bytes of buf used */
	struct acpi_table_ref table[8];
	size_t n_tables; /**< RSDP, XSDT, FACP, APIC, DSDT in this order */
};

/**
 * Writes RSDP, XSDT, FADT, MADT and DSDT into @p buf (guest-visible at @p gpa, 16-byte
 * aligned). Nothing is written unless all tables fit.
 * @return 0; -ENOSPC when buf is too small; -EINVAL for a bad description (reported via
 *         log_err naming the device); -ENOMEM
 */
int acpi_build(const struct acpi_machine *am, uint8_t *buf, size_t size, uint64_t gpa,
               struct acpi_tables *out);

/**
 * Writes each table as DIR/<sig lowercase>.dat (rsdp.dat, xsdt.dat, facp.dat, apic.dat,
 * dsdt.dat): the input `iasl -d` takes.
 * @return 0 or -errno (reported)
 */
int acpi_write_files(const struct acpi_tables *t, const uint8_t *buf, const char *dir);

#endif
