/* platform.h: the x86 platform the core itself provides: the ACPI tables (built from the
 * devices' descriptions) and the power-management ports behind the FADT's sleep and reset
 * registers, through which a guest powers off and reboots. */
#ifndef SMOLVM_PLATFORM_H
#define SMOLVM_PLATFORM_H

#include <stddef.h>
#include <stdint.h>

struct machine;
struct acpi_tables;

/** The power-management ports: sleep control, sleep status, reset. */
#define PLATFORM_PM_PORT 0x600
#define PLATFORM_PM_PORTS 3
/** The value the guest writes to the reset register. */
#define PLATFORM_RESET_VALUE 0x01
/** The real-mode reset vector (F000:FFF0): the "BIOS" reboot path lands here. */
#define PLATFORM_RESET_VECTOR 0xFFFF0ull

/** Where the 16-byte VM generation ID lives with ACPI on: its own page of the BIOS area
 * (0xA0000-0xFFFFF, reserved in the e820 map), between the ACPI tables (0xE0000-0xFDFFF) and
 * the reset vector's page. Fixed, like the GSI below: a restored machine's RAM holds the DSDT
 * that names both. */
#define PLATFORM_VMGENID_GPA 0xFE000ull
#define PLATFORM_VMGENID_SIZE 16
/** The Generic Event Device's line (ACPI on): reserved, so no device claims it and SMOL_IRQ_AUTO
 * (which counts up from 5) reaches it last; a GSI above the 16 ISA ones, which legacy devices
 * expect at fixed numbers. */
#define PLATFORM_GED_GSI 23

/** Reads `[machine] acpi`, maps the power-management ports and, with ACPI, reserves
 * PLATFORM_GED_GSI. */
void platform_configure(struct machine *m);

/**
 * Builds the ACPI tables into guest RAM at ACPI_TABLES_GPA, a random VM generation ID at
 * PLATFORM_VMGENID_GPA (the DSDT's VGEN device points there), and at the real-mode reset vector
 * a few instructions that write the reset register (see platform.c); with ACPI off, the MP
 * table at MPTABLE_GPA instead (the BIOS area Linux scans for the
 * RSDP, reserved in the e820 map) (RAM must exist) and sets
 * m->acpi_rsdp_gpa (0 without ACPI). @p out (may be NULL) receives where
 * each table is. 0, or -EINVAL after reporting why.
 */
int platform_build_tables(struct machine *m, struct acpi_tables *out);

/**
 * Gives the guest a new VM generation ID: writes 16 fresh random bytes (never the current ID)
 * at PLATFORM_VMGENID_GPA and pulses PLATFORM_GED_GSI (1 then 0: an edge), so that the guest's
 * GED runs _EVT, which notifies VGEN (0x80); Linux then rereads the ID and reseeds its RNG.
 * Logs the old and the new ID at debug level (-v). For a restored machine: call it once guest
 * RAM, the irqchip and every vCPU's state are loaded, before the vCPUs run (a vCPU state loaded
 * afterwards would drop the interrupt the pulse left pending in a local APIC). Needs RAM
 * (mem_alloc); without a VM only the line's level is recorded. A machine with `acpi = off` has no
 * generation ID: 0, nothing done.
 * @return 0; -EFAULT when the ID's page is not guest RAM; -EIO when no random bytes could be
 *         had; the backend's error from raising the line (each reported)
 */
int platform_vmgenid_change(struct machine *m);

/** Copies the current VM generation ID out of guest RAM (as the guest may have left it) into
 * @p id. 0, -ENODEV with `acpi = off`, or -EFAULT when RAM is not allocated. */
int platform_vmgenid_read(const struct machine *m, uint8_t id[PLATFORM_VMGENID_SIZE]);

/** Formats @p id as 32 lowercase hex digits into @p out. */
void platform_vmgenid_format(const uint8_t id[PLATFORM_VMGENID_SIZE], char out[33]);

/** Prints the platform's own devices for `smolvm check` (after the DSDT's devices): with ACPI,
 * the VM generation ID's address and the GED's line; nothing without. */
void platform_print_layout(const struct machine *m);

#endif
