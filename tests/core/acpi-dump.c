/* acpi-dump DIR: builds the ACPI tables of a synthetic machine (2 vCPUs, a 16550 at 0x3f8 on
 * IRQ 4, two virtio-mmio devices on IRQs 5 and 6, a VM generation ID at 0xFE000 and its GED on
 * GSI 23) at 0xE0000 and writes them as DIR/<sig>.dat
 * for tests/core/check-iasl to disassemble. Exits 0, or 1 after a message. */
#include <stdio.h>
#include <string.h>

#include "acpi.h"

int main(int argc, char **argv)
{
	static uint8_t buf[ACPI_TABLES_SIZE];
	struct acpi_dev_desc devs[3];
	struct acpi_tables t;

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 1;
	}
	memset(devs, 0, sizeof(devs));
	strcpy(devs[0].hid, "PNP0501");
	strcpy(devs[0].name, "COM0");
	devs[0].n_io = 1;
	devs[0].io[0].base = 0x3f8;
	devs[0].io[0].len = 8;
	devs[0].n_irq = 1;
	devs[0].irq[0].gsi = 4;
	for (int i = 1; i <= 2; i++) {
		strcpy(devs[i].hid, "LNRO0005");
		devs[i].uid = (uint32_t)(i - 1);
		devs[i].n_mmio = 1;
		devs[i].mmio[0].base = 0xd0000000 + 0x200 * (uint64_t)(i - 1);
		devs[i].mmio[0].len = 0x200;
		devs[i].n_irq = 1;
		devs[i].irq[0].gsi = (uint32_t)(4 + i);
	}
	struct acpi_machine am = {
		.n_vcpus = 2,
		.lapic_base = 0xfee00000,
		.ioapic_base = 0xfec00000,
		.ioapic_id = 2,
		.pm_port = 0x600,
		.reset_value = 1,
		.devs = devs,
		.n_devs = 3,
		.vmgenid_gpa = 0xFE000,
		.ged_gsi = 23,
	};
	if (acpi_build(&am, buf, sizeof(buf), ACPI_TABLES_GPA, &t) ||
	    acpi_write_files(&t, buf, argv[1]))
		return 1;
	for (size_t i = 0; i < t.n_tables; i++)
		printf("%s at 0x%llx, %u bytes\n", t.table[i].sig,
		       (unsigned long long)(ACPI_TABLES_GPA + t.table[i].offset),
		       t.table[i].length);
	return 0;
}
