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

/** Reads `[machine] acpi` and `on_reboot` and maps the power-management ports. */
void platform_configure(struct machine *m);

/**
 * Builds the ACPI tables into guest RAM at ACPI_TABLES_GPA, and at the real-mode reset vector
 * a few instructions that write the reset register (see platform.c); with ACPI off, the MP
 * table at MPTABLE_GPA instead (the BIOS area Linux scans for the
 * RSDP, reserved in the e820 map) (RAM must exist) and sets
 * m->acpi_rsdp_gpa (0 without ACPI). @p out (may be NULL) receives where
 * each table is. 0, or -EINVAL after reporting why.
 */
int platform_build_tables(struct machine *m, struct acpi_tables *out);

#endif
