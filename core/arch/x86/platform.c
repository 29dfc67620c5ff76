/* platform.c: ACPI tables for the machine and the power-management ports they point at.
 *
 * The FADT describes a hardware-reduced platform: a guest powers off by writing
 * (SLP_TYP << 2) | SLP_EN to the sleep control register with the sleep type of \_S5, and
 * reboots by writing the reset value to the reset register. Both end the run (or restart the
 * machine, `on_reboot = restart`).
 *
 * Linux on a hardware-reduced ACPI machine reboots through EFI (reboot_init: "ACPI Hardware
 * Reduced bit is set" -> BOOT_EFI); without EFI it falls back to the BIOS: real mode, a jump to
 * F000:FFF0. smolvm's "BIOS" there is five instructions that write the reset register, so that
 * path reboots too, without a reboot= option on the command line.
 *
 * With ACPI, the DSDT also describes a VM generation ID (16 random bytes in a page of the BIOS
 * area) and a Generic Event Device on a GSI the platform keeps for itself: after a snapshot is
 * restored, platform_vmgenid_change() writes a new ID and pulses that line; the guest's GED
 * runs _EVT, which notifies the ID's device, and Linux reseeds its RNG from the new ID. */
#include "platform.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "acpi.h"
#include "config.h"
#include "layout.h"
#include "log.h"
#include "machine.h"
#include "mptable.h"

_Static_assert(ACPI_TABLES_GPA + ACPI_TABLES_SIZE <= PLATFORM_VMGENID_GPA &&
                       PLATFORM_VMGENID_GPA % 0x1000 == 0 &&
                       PLATFORM_VMGENID_GPA + 0x1000 <= (PLATFORM_RESET_VECTOR & ~0xFFFull),
               "the VM generation ID has a page of its own between the ACPI tables and the "
               "reset vector's page");
_Static_assert(ACPI_TABLES_SIZE == 120 * 1024, "the -ENOSPC message says 120 KiB");
_Static_assert(PLATFORM_VMGENID_SIZE == ACPI_VMGENID_SIZE, "one size of VM generation ID");
_Static_assert(PLATFORM_GED_GSI < X86_IRQS, "the GED's line is an I/O APIC pin");

#define PM_SLEEP_CONTROL 0
#define PM_SLEEP_STATUS 1
#define PM_RESET 2
#define SLP_TYP(v) (((v)&ACPI_SLP_TYP_MASK) >> ACPI_SLP_TYP_SHIFT)

static uint64_t pm_read(void *opaque, uint64_t offset, unsigned size)
{
	(void)opaque;
	(void)size;
	/* the sleep status register's WAK_STS (bit 7) is never set: the machine never sleeps */
	(void)offset;
	return 0;
}

static void pm_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct machine *m = opaque;
	(void)size;
	switch (offset) {
	case PM_SLEEP_CONTROL:
		if (!(value & ACPI_SLP_EN))
			return;
		if (SLP_TYP(value) == ACPI_S5_SLP_TYP) {
			log_debug("the guest powered off (ACPI S5)");
			machine_request_exit(m, STATUS_OK);
		} else {
			log_debug("the guest asked for sleep type %u, which this machine lacks",
			          (unsigned)SLP_TYP(value));
		}
		return;
	case PM_RESET:
		if ((value & 0xff) == PLATFORM_RESET_VALUE) {
			log_debug("the guest reset the machine (ACPI reset register)");
			machine_request_reset(m);
		}
		return;
	default: return;
	}
}

static const struct smol_io_ops pm_ops = { .read = pm_read, .write = pm_write };

/* At F000:FFF0, in real mode: mov al, RESET_VALUE; mov dx, PM_PORT + 2; out dx, al; then hlt
 * forever (a guest that masked the reset in some other way stays parked, not running junk). */
static void write_reset_stub(struct machine *m)
{
	const uint16_t port = PLATFORM_PM_PORT + PM_RESET;
	const uint8_t stub[] = {
		0xb0,      PLATFORM_RESET_VALUE, /* mov al, imm8 */
		0xba,      port & 0xff,
		port >> 8, /* mov dx, imm16 */
		0xee, /* out dx, al */
		0xfa, /* cli */
		0xf4, /* hlt */
		0xeb,      0xfd, /* jmp to the hlt */
	};
	uint8_t *p = mem_gpa_ptr(&m->mem, PLATFORM_RESET_VECTOR, sizeof(stub));
	if (p)
		memcpy(p, stub, sizeof(stub));
}

void platform_configure(struct machine *m)
{
	struct cfg *c = m->cfg;
	struct cfg_section *s = cfg_section(c, CFG_MACHINE, NULL);
	int acpi = 1;

	if (s)
		cfg_get_bool(c, s, "acpi", 1, &acpi);
	m->acpi = acpi;
	if (acpi && !m->irq_reserved[PLATFORM_GED_GSI])
		m->irq_reserved[PLATFORM_GED_GSI] = "the VM generation ID's ACPI event (GED)";
	/* also without ACPI: the reset stub at the reset vector writes the reset register */
	bus_add(&m->pio, PLATFORM_PM_PORT, PLATFORM_PM_PORTS, &pm_ops, m, NULL,
	        "power management (ACPI sleep and reset registers)", NULL);
}

/* Fills @p id with random bytes from the kernel. 0 or -EIO (reported). */
static int random_id(uint8_t id[PLATFORM_VMGENID_SIZE])
{
	size_t got = 0;
	while (got < PLATFORM_VMGENID_SIZE) {
		ssize_t n = getrandom(id + got, PLATFORM_VMGENID_SIZE - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_err("cannot make a VM generation ID: getrandom: %s",
			        n < 0 ? strerror(errno) : "no bytes");
			return -EIO;
		}
		got += (size_t)n;
	}
	return 0;
}

void platform_vmgenid_format(const uint8_t id[PLATFORM_VMGENID_SIZE], char out[33])
{
	static const char hex[] = "0123456789abcdef";
	for (int i = 0; i < PLATFORM_VMGENID_SIZE; i++) {
		out[2 * i] = hex[id[i] >> 4];
		out[2 * i + 1] = hex[id[i] & 0xF];
	}
	out[32] = '\0';
}

static uint8_t *vmgenid_ptr(const struct machine *m)
{
	return mem_gpa_ptr(&m->mem, PLATFORM_VMGENID_GPA, PLATFORM_VMGENID_SIZE);
}

int platform_vmgenid_read(const struct machine *m, uint8_t id[PLATFORM_VMGENID_SIZE])
{
	if (!m->acpi)
		return -ENODEV;
	const uint8_t *p = vmgenid_ptr(m);
	if (!p)
		return -EFAULT;
	memcpy(id, p, PLATFORM_VMGENID_SIZE);
	return 0;
}

int platform_vmgenid_change(struct machine *m)
{
	uint8_t old[PLATFORM_VMGENID_SIZE], id[PLATFORM_VMGENID_SIZE];
	char old_hex[33], new_hex[33];

	if (!m->acpi)
		return 0;
	uint8_t *p = vmgenid_ptr(m);
	if (!p) {
		log_err("cannot change the VM generation ID: 0x%llx is not guest RAM",
		        (unsigned long long)PLATFORM_VMGENID_GPA);
		return -EFAULT;
	}
	memcpy(old, p, sizeof(old));
	/* the guest ignores a notification that leaves the ID as it was */
	do {
		if (random_id(id) < 0)
			return -EIO;
	} while (memcmp(id, old, sizeof(id)) == 0);
	memcpy(p, id, sizeof(id));
	/* the ID is in RAM before the interrupt that makes the guest read it */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	platform_vmgenid_format(old, old_hex);
	platform_vmgenid_format(id, new_hex);
	log_debug("VM generation ID %s -> %s (notified on GSI %u)", old_hex, new_hex,
	          PLATFORM_GED_GSI);
	int r = machine_irq_set(m, PLATFORM_GED_GSI, 1);
	int r0 = machine_irq_set(m, PLATFORM_GED_GSI, 0);
	if (r < 0 || r0 < 0) {
		r = r < 0 ? r : r0;
		log_err("cannot notify the guest of its new VM generation ID: GSI %u: %s",
		        PLATFORM_GED_GSI, strerror(-r));
		return r;
	}
	return 0;
}

void platform_print_layout(const struct machine *m)
{
	if (!m->acpi)
		return;
	printf("  %-9s _CID %s  ID 0x%llx-0x%llx (e820-reserved)  %s: the VM generation ID\n",
	       ACPI_VMGENID_HID, ACPI_VMGENID_CID, (unsigned long long)PLATFORM_VMGENID_GPA,
	       (unsigned long long)(PLATFORM_VMGENID_GPA + PLATFORM_VMGENID_SIZE - 1),
	       ACPI_VMGENID_NAME);
	printf("  %-9s _UID %u  irq %u (edge, active high)  %s: notifies %s of a new ID\n",
	       ACPI_GED_HID, ACPI_GED_UID, PLATFORM_GED_GSI, ACPI_GED_NAME, ACPI_VMGENID_NAME);
}

/* Without ACPI, the MP table describes the processors and the I/O APIC. */
static int build_mptable(struct machine *m)
{
	uint8_t *buf = mem_gpa_ptr(&m->mem, MPTABLE_GPA, MPTABLE_MAX_SIZE);
	struct mptable_machine mm = {
		.n_vcpus = m->n_vcpus,
		.lapic_base = 0xfee00000,
		.ioapic_base = 0xfec00000,
		.ioapic_id = (uint8_t)m->n_vcpus,
		.n_ioapic_pins = X86_IRQS,
	};
	int r = buf ? mptable_build(&mm, buf, MPTABLE_MAX_SIZE, MPTABLE_GPA) : -EINVAL;
	if (r < 0) {
		log_err("%s: cannot build the MP table: %s", m->cfg->path, strerror(-r));
		return -EINVAL;
	}
	return 0;
}

int platform_build_tables(struct machine *m, struct acpi_tables *out)
{
	struct acpi_tables t;
	m->acpi_rsdp_gpa = 0;
	write_reset_stub(m);
	if (!m->acpi)
		return build_mptable(m);
	uint8_t *buf = mem_gpa_ptr(&m->mem, ACPI_TABLES_GPA, ACPI_TABLES_SIZE);
	uint8_t *vmgenid = mem_gpa_ptr(&m->mem, PLATFORM_VMGENID_GPA, 0x1000);
	if (!buf || !vmgenid)
		return -EINVAL; /* RAM below 1 MiB always exists (memory >= 2 MiB) */
	memset(vmgenid, 0, 0x1000);
	if (random_id(vmgenid) < 0)
		return -EINVAL;
	struct acpi_machine am = {
		.n_vcpus = m->n_vcpus,
		.lapic_base = 0xfee00000,
		.ioapic_base = 0xfec00000,
		.ioapic_id = (uint8_t)m->n_vcpus,
		.pm_port = PLATFORM_PM_PORT,
		.reset_value = PLATFORM_RESET_VALUE,
		.devs = m->descs,
		.n_devs = m->n_descs,
		.vmgenid_gpa = PLATFORM_VMGENID_GPA,
		.ged_gsi = PLATFORM_GED_GSI,
	};
	int r = acpi_build(&am, buf, ACPI_TABLES_SIZE, ACPI_TABLES_GPA, &t);
	if (r < 0) {
		log_err("%s: cannot build the ACPI tables: %s", m->cfg->path,
		        r == -ENOSPC ? "more than 120 KiB of tables" : strerror(-r));
		return -EINVAL;
	}
	m->acpi_rsdp_gpa = t.rsdp_gpa;
	if (out)
		*out = t;
	return 0;
}
