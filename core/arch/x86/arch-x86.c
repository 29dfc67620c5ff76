/* arch-x86.c: the x86_64 machine: RAM below the 32-bit MMIO hole and above 4 GiB, the
 * in-kernel PIC, PIT, I/O APIC and local APICs, ACPI (or MP) tables, the bzImage and PVH/ELF
 * loaders, the power-management ports and the VM generation ID (platform.c). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "acpi.h"
#include "arch.h"
#include "boot.h"
#include "bus.h"
#include "layout.h"
#include "log.h"
#include "machine.h"
#include "mptable.h"
#include "platform.h"

/* What the in-kernel irqchip and PIT own: no device may map over them. */
static void reserve_platform(struct machine *m)
{
	static const struct {
		bool pio;
		uint64_t base, len;
		const char *what;
	} fixed[] = {
		{ true, 0x20, 2, "the in-kernel PIC" },
		{ true, 0xa0, 2, "the in-kernel PIC" },
		{ true, 0x40, 4, "the in-kernel PIT" },
		{ true, 0x4d0, 2, "the in-kernel PIC (ELCR)" },
		{ true, 0x61, 1, "the in-kernel PIT (speaker port)" },
		{ false, 0xfffbc000, 0x4000, "KVM's TSS and identity map" },
		{ false, 0xfec00000, 0x1000, "the in-kernel IOAPIC" },
		{ false, 0xfee00000, 0x1000, "the local APICs" },
	};
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		bus_add(fixed[i].pio ? &m->pio : &m->mmio, fixed[i].base, fixed[i].len, NULL, NULL,
		        NULL, fixed[i].what, NULL);
	m->irq_reserved[0] = "the in-kernel PIT";
	m->irq_reserved[2] = "the PIC cascade";
}

static void x86_configure(struct machine *m)
{
	platform_configure(m);
	reserve_platform(m);
}

static int x86_load_payload(struct machine *m, struct arch_boot *boot)
{
	boot->arch = SMOL_ARCH_X86_64;
	if (platform_build_tables(m, NULL) < 0)
		return -EINVAL;
	return boot_prepare(m, &boot->u.x86) < 0 ? -EINVAL : 0;
}

static void x86_print_layout(const struct machine *m, const struct arch_boot *boot)
{
	const struct smol_x86_boot *regs = &boot->u.x86;
	if (!m->acpi) {
		printf("firmware tables: MP table at 0x%llx (acpi = off)\n",
		       (unsigned long long)MPTABLE_GPA);
		if (m->cmdline_extra)
			printf("  the devices add to the command line: %s\n", m->cmdline_extra);
	} else {
		printf("firmware tables: ACPI, RSDP at 0x%llx; %u processor%s, %zu device%s in the "
		       "DSDT\n",
		       (unsigned long long)m->acpi_rsdp_gpa, m->n_vcpus, m->n_vcpus == 1 ? "" : "s",
		       m->n_descs, m->n_descs == 1 ? "" : "s");
		for (size_t i = 0; i < m->n_descs; i++) {
			const struct acpi_dev_desc *a = &m->descs[i];
			printf("  %-9s _UID %u", a->hid, a->uid);
			for (uint32_t j = 0; j < a->n_io; j++)
				printf("  ports 0x%x-0x%x", a->io[j].base,
				       a->io[j].base + a->io[j].len - 1);
			for (uint32_t j = 0; j < a->n_mmio; j++)
				printf("  mmio 0x%llx-0x%llx", (unsigned long long)a->mmio[j].base,
				       (unsigned long long)(a->mmio[j].base + a->mmio[j].len - 1));
			for (uint32_t j = 0; j < a->n_irq; j++)
				printf("  irq %u (%s, active %s)", a->irq[j].gsi,
				       a->irq[j].level ? "level" : "edge",
				       a->irq[j].active_low ? "low" : "high");
			printf("\n");
		}
		platform_print_layout(m);
	}
	if (regs->long_mode)
		printf("entry: 0x%llx (64-bit), boot_params at 0x%llx\n",
		       (unsigned long long)regs->rip, (unsigned long long)regs->rsi);
	else
		printf("entry: 0x%llx (32-bit PVH), hvm_start_info at 0x%llx\n",
		       (unsigned long long)regs->rip, (unsigned long long)regs->rbx);
}

static int x86_write_acpi(struct machine *m, const char *dir)
{
	struct acpi_tables t;
	if (!m->acpi) {
		log_err("%s: [machine] acpi = off: there are no ACPI tables", m->cfg->path);
		return -EINVAL;
	}
	int r = mem_alloc(&m->mem);
	if (r < 0) {
		log_err("cannot allocate guest RAM: %s", strerror(-r));
		return r == -EINVAL ? -ENOMEM : r;
	}
	if (platform_build_tables(m, &t) < 0)
		return -EINVAL;
	if (mkdir(dir, 0777) < 0 && errno != EEXIST) {
		log_err("cannot create %s: %s", dir, strerror(errno));
		return -EIO;
	}
	r = acpi_write_files(&t, mem_gpa_ptr(&m->mem, ACPI_TABLES_GPA, ACPI_TABLES_SIZE), dir);
	if (r == 0)
		printf("%s: %zu ACPI tables written to %s\n", m->cfg->path, t.n_tables, dir);
	return r < 0 ? -EIO : 0;
}

const struct arch_ops arch_x86_64 = {
	.name = "x86_64",
	.tag = SMOL_ARCH_X86_64,
	.n_irqs = X86_IRQS,
	.irq_auto_first = 5, /* above the ISA devices' customary lines (PIT 0, keyboard 1, COMs) */
	.mmio_auto_lo = 0xd0000000, /* above low RAM's 3 GiB, below the I/O APIC */
	.mmio_auto_hi = 0xfec00000,
	.desc_mmio_limit = 1ull << 32, /* the DSDT's Memory32Fixed */
	.mem_layout = mem_layout_x86,
	.configure = x86_configure,
	.load_payload = x86_load_payload,
	.print_layout = x86_print_layout,
	.restored = platform_vmgenid_change,
	.write_acpi = x86_write_acpi,
};
