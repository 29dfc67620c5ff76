/* acpi.c: the ACPI tables of an x86 machine (see acpi.h). Layouts are those of ACPI 6.5:
 * RSDP 5.2.5.3, table header 5.2.6, XSDT 5.2.8, FADT 5.2.9 (table 5.9), MADT 5.2.12, Generic
 * Address Structure 5.2.3.2, DSDT 5.2.11.1. */
#include "acpi.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aml.h"
#include "le.h"
#include "log.h"

#define OEM_ID "SMOLVM"
#define OEM_TABLE_ID "SMOLVM  "
#define OEM_REVISION 1
#define CREATOR_ID "SMOL"
#define CREATOR_REVISION 1

#define RSDP_LEN 36
#define HDR_LEN 36
#define XSDT_LEN (HDR_LEN + 2 * 8) /* FACP, APIC */
#define FADT_LEN 276
#define FADT_REVISION 6
#define FADT_MINOR 5 /* ACPI 6.5, errata 0 */
#define MADT_REVISION 6
#define DSDT_REVISION 2 /* 2 and up: 64-bit AML integers */

/* FADT fields (table 5.9) */
#define FADT_DSDT 40
#define FADT_IAPC_BOOT_ARCH 109
#define FADT_FLAGS 112
#define FADT_RESET_REG 116
#define FADT_RESET_VALUE 128
#define FADT_MINOR_VERSION 131
#define FADT_X_DSDT 140
#define FADT_SLEEP_CONTROL_REG 244
#define FADT_SLEEP_STATUS_REG 256
#define FADT_HYPERVISOR_ID 268

#define IAPC_VGA_NOT_PRESENT (1u << 2)
#define IAPC_CMOS_RTC_NOT_PRESENT (1u << 5)
#define FADT_RESET_REG_SUP (1u << 10)
#define FADT_HW_REDUCED_ACPI (1u << 20)

#define GAS_SYSTEM_IO 1
#define GAS_ACCESS_BYTE 1

/* MADT interrupt controller structures (5.2.12.2-5.2.12.7) */
#define MADT_PCAT_COMPAT 1u
#define MADT_LAPIC 0
#define MADT_LAPIC_LEN 8
#define MADT_IOAPIC 1
#define MADT_IOAPIC_LEN 12
#define MADT_ISO 2
#define MADT_ISO_LEN 10
#define MADT_LAPIC_NMI 4
#define MADT_LAPIC_NMI_LEN 6
#define MADT_LEN(n)                                                                                \
	(HDR_LEN + 8 + (n)*MADT_LAPIC_LEN + MADT_IOAPIC_LEN + MADT_ISO_LEN + MADT_LAPIC_NMI_LEN)
#define LAPIC_ENABLED 1u
#define MPS_INTI_EDGE_HIGH 0x0005 /* polarity 01 active high, trigger mode 01 edge */

#define MAX_VCPUS 255 /* 8-bit APIC ids in the Processor Local APIC structure, 0xFF broadcast */
#define CPU_HID "ACPI0007"

#define put16(p, v) le_put(p, v, 2)
#define put32(p, v) le_put(p, v, 4)
#define put64(p, v) le_put(p, v, 8)

/* Sets p[at] so that the @p len bytes at @p p sum to 0 (mod 256). */
static void set_checksum(uint8_t *p, size_t len, size_t at)
{
	uint8_t sum = 0;
	p[at] = 0;
	for (size_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + p[i]);
	p[at] = (uint8_t)-sum;
}

/* The 36-byte System Description Table Header (5.2.6); the checksum is set last. */
static void put_header(uint8_t *t, const char *sig, uint32_t len, uint8_t rev)
{
	memcpy(t, sig, 4);
	put32(t + 4, len);
	t[8] = rev;
	memcpy(t + 10, OEM_ID, 6);
	memcpy(t + 16, OEM_TABLE_ID, 8);
	put32(t + 24, OEM_REVISION);
	memcpy(t + 28, CREATOR_ID, 4);
	put32(t + 32, CREATOR_REVISION);
}

/* Generic Address Structure (5.2.3.2): an 8-bit register in SystemIO space. */
static void put_gas_io8(uint8_t *p, uint16_t port)
{
	p[0] = GAS_SYSTEM_IO;
	p[1] = 8; /* register bit width */
	p[2] = 0; /* register bit offset */
	p[3] = GAS_ACCESS_BYTE;
	put64(p + 4, port);
}

enum hid_kind { HID_BAD, HID_EISA, HID_ACPI };

static bool upper_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

/* ACPI 6.5, 6.1.5: "AAA####" (PNP id) or "NNNN####" (ACPI id), # a hex digit. */
static enum hid_kind hid_kind(const char *hid, size_t cap)
{
	size_t len = strnlen(hid, cap);
	uint32_t v;

	if (len == 7 && aml_eisaid_value(hid, &v) == 0)
		return HID_EISA;
	if (len != 8)
		return HID_BAD;
	for (int i = 0; i < 4; i++)
		if (!((hid[i] >= 'A' && hid[i] <= 'Z') || (hid[i] >= '0' && hid[i] <= '9')))
			return HID_BAD;
	for (int i = 4; i < 8; i++)
		if (!upper_hex(hid[i]))
			return HID_BAD;
	return HID_ACPI;
}

bool acpi_hid_valid(const char *hid)
{
	return hid_kind(hid, 16) != HID_BAD;
}

/* Reports a problem with device @p i of the description, named by what identifies it. */
static int dev_error(size_t i, const struct acpi_dev_desc *d, const char *fmt, ...)
        SMOL_PRINTF(3, 4);
static int dev_error(size_t i, const struct acpi_dev_desc *d, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_err("acpi: device %zu (_HID \"%.*s\", _UID %u%s%.*s): %s", i, (int)sizeof(d->hid),
	        d->hid, d->uid, d->name[0] ? ", name " : "", (int)sizeof(d->name), d->name, why);
	return -EINVAL;
}

/* Checks device @p i's identity and resources (not its name). */
static int check_dev(const struct acpi_machine *am, size_t i)
{
	const struct acpi_dev_desc *d = &am->devs[i];

	if (hid_kind(d->hid, sizeof(d->hid)) == HID_BAD)
		return dev_error(i, d,
		                 "_HID is neither an EISA id (3 uppercase letters and 4 "
		                 "uppercase hex digits, \"PNP0501\") nor an ACPI id (4 "
		                 "uppercase letters or digits and 4 hex digits, \"LNRO0005\")");
	if (strncmp(d->hid, CPU_HID, sizeof(d->hid)) == 0 && d->uid < am->n_vcpus)
		return dev_error(i, d, "_HID and _UID are those of vCPU %u's processor device",
		                 d->uid);
	for (size_t j = 0; j < i; j++)
		if (strncmp(d->hid, am->devs[j].hid, sizeof(d->hid)) == 0 &&
		    d->uid == am->devs[j].uid)
			return dev_error(i, d, "device %zu has the same _HID and _UID", j);
	if (am->vmgenid_gpa && strncmp(d->hid, ACPI_VMGENID_HID, sizeof(d->hid)) == 0)
		return dev_error(i, d, "_HID is the platform's VM generation ID device's (%s)",
		                 ACPI_VMGENID_NAME);
	if (am->vmgenid_gpa && strncmp(d->hid, ACPI_GED_HID, sizeof(d->hid)) == 0 &&
	    d->uid == ACPI_GED_UID)
		return dev_error(i, d,
		                 "_HID and _UID are the platform's generic event device's (%s)",
		                 ACPI_GED_NAME);
	if (d->n_io > ACPI_MAX_RES || d->n_mmio > ACPI_MAX_RES || d->n_irq > ACPI_MAX_RES)
		return dev_error(i, d, "%u I/O, %u MMIO and %u IRQ resources: at most %d of each",
		                 d->n_io, d->n_mmio, d->n_irq, ACPI_MAX_RES);
	for (uint32_t k = 0; k < d->n_io; k++) {
		uint32_t base = d->io[k].base, len = d->io[k].len;
		if (len == 0 || len > 0xFF)
			return dev_error(i, d,
			                 "I/O ports 0x%x+%u: the IO descriptor holds 1-255 ports",
			                 base, len);
		if (base + len > 0x10000)
			return dev_error(i, d, "I/O ports 0x%x+%u end past port 0xffff", base, len);
	}
	for (uint32_t k = 0; k < d->n_irq; k++)
		if (am->vmgenid_gpa && d->irq[k].gsi == am->ged_gsi)
			return dev_error(i, d, "GSI %u is the platform's generic event device's",
			                 am->ged_gsi);
	for (uint32_t k = 0; k < d->n_mmio; k++) {
		uint64_t base = d->mmio[k].base, len = d->mmio[k].len;
		if (len == 0)
			return dev_error(i, d, "MMIO range at 0x%llx is empty",
			                 (unsigned long long)base);
		if (base > 1ull << 32 || len > (1ull << 32) - base || len > UINT32_MAX)
			return dev_error(i, d,
			                 "MMIO range 0x%llx+0x%llx ends above 4 GiB: only "
			                 "Memory32Fixed is described",
			                 (unsigned long long)base, (unsigned long long)len);
	}
	return 0;
}

/* A NameSeg of a letter and 3 hex digits ("C01F"), @p v below 0x1000. */
static void hex_name(char out[5], char lead, size_t v)
{
	static const char hex[] = "0123456789ABCDEF";
	out[0] = lead;
	out[1] = hex[(v >> 8) & 0xF];
	out[2] = hex[(v >> 4) & 0xF];
	out[3] = hex[v & 0xF];
	out[4] = '\0';
}

/* Fills names[0..n_vcpus-1] with the processor devices' names and names[n_vcpus + i] with
 * device i's, each 4 characters padded with '_', all distinct. */
static int assign_names(const struct acpi_machine *am, char (*names)[5])
{
	size_t n = am->n_vcpus, next_auto = 0;

	for (uint32_t c = 0; c < am->n_vcpus; c++)
		hex_name(names[c], 'C', c);
	for (size_t i = 0; i < am->n_devs; i++) {
		const struct acpi_dev_desc *d = &am->devs[i];
		char *nm = names[n + i];
		nm[0] = '\0';
		if (!d->name[0])
			continue;
		if (strnlen(d->name, sizeof(d->name)) == sizeof(d->name) ||
		    !aml_nameseg_valid(d->name) || d->name[0] == '_')
			return dev_error(i, d,
			                 "name \"%.*s\" is not an ACPI NameSeg (1-4 of A-Z, 0-9, "
			                 "'_', not starting with a digit or '_')",
			                 (int)sizeof(d->name), d->name);
		memset(nm, '_', 4);
		memcpy(nm, d->name, strlen(d->name));
		nm[4] = '\0';
		for (size_t j = 0; j < n + i; j++)
			if (strcmp(nm, names[j]) == 0)
				return dev_error(i, d, "name %s is already taken by %s %zu", nm,
				                 j < n ? "vCPU" : "device", j < n ? j : j - n);
		if (am->vmgenid_gpa &&
		    (strcmp(nm, ACPI_VMGENID_NAME) == 0 || strcmp(nm, ACPI_GED_NAME) == 0))
			return dev_error(i, d, "name %s is the platform's own device's", nm);
	}
	for (size_t i = 0; i < am->n_devs; i++) {
		char *nm = names[n + i];
		bool taken = true;
		if (nm[0])
			continue;
		while (taken) {
			if (next_auto > 0xFFF)
				return dev_error(i, &am->devs[i], "no free device name is left");
			hex_name(nm, 'D', next_auto++);
			taken = false;
			for (size_t j = 0; j < n + am->n_devs && !taken; j++)
				taken = j != n + i && strcmp(nm, names[j]) == 0;
		}
	}
	return 0;
}

static void dsdt_device(struct aml *a, const struct acpi_dev_desc *d, const char *name)
{
	size_t dev = aml_device_begin(a, name);

	aml_name(a, "_HID");
	if (hid_kind(d->hid, sizeof(d->hid)) == HID_EISA)
		aml_eisaid(a, d->hid);
	else
		aml_string(a, d->hid);
	aml_name(a, "_UID");
	aml_integer(a, d->uid);
	if (d->n_io + d->n_mmio + d->n_irq > 0) {
		aml_name(a, "_CRS");
		size_t res = aml_res_begin(a);
		for (uint32_t k = 0; k < d->n_io; k++)
			aml_res_io(a, d->io[k].base, (uint8_t)d->io[k].len);
		for (uint32_t k = 0; k < d->n_mmio; k++)
			aml_res_mem32_fixed(a, (uint32_t)d->mmio[k].base, (uint32_t)d->mmio[k].len,
			                    true);
		for (uint32_t k = 0; k < d->n_irq; k++)
			aml_res_ext_irq(a, d->irq[k].gsi, d->irq[k].level, d->irq[k].active_low);
		aml_res_end(a, res);
	}
	aml_end(a, dev);
}

/* The VM generation ID's device and the GED that notifies it (the ASL is in acpi.h). */
static void dsdt_vmgenid(struct aml *a, uint64_t gpa, uint32_t gsi)
{
	size_t dev = aml_device_begin(a, ACPI_VMGENID_NAME);
	aml_name(a, "_HID");
	aml_string(a, ACPI_VMGENID_HID);
	aml_name(a, "_CID");
	aml_string(a, ACPI_VMGENID_CID);
	aml_name(a, "_DDN");
	aml_string(a, ACPI_VMGENID_CID);
	size_t m = aml_method_begin(a, "ADDR", 0, false);
	aml_return(a);
	size_t pkg = aml_package_begin(a, 2);
	aml_integer(a, gpa & 0xFFFFFFFF);
	aml_integer(a, gpa >> 32);
	aml_end(a, pkg);
	aml_end(a, m);
	aml_end(a, dev);

	dev = aml_device_begin(a, ACPI_GED_NAME);
	aml_name(a, "_HID");
	aml_string(a, ACPI_GED_HID);
	aml_name(a, "_UID");
	aml_integer(a, ACPI_GED_UID);
	aml_name(a, "_CRS");
	size_t res = aml_res_begin(a);
	/* an edge: the VMM pulses the line, nothing in the guest has to acknowledge it */
	aml_res_ext_irq(a, gsi, false, false);
	aml_res_end(a, res);
	/* Linux's GED driver looks for _Exx/_Lxx first, then _EVT, called with the GSI */
	m = aml_method_begin(a, "_EVT", 1, false);
	size_t cond = aml_if_begin(a);
	aml_lequal(a);
	aml_arg(a, 0);
	aml_integer(a, gsi);
	aml_notify(a, "\\_SB." ACPI_VMGENID_NAME, ACPI_VMGENID_NOTIFY);
	aml_end(a, cond);
	aml_end(a, m);
	aml_end(a, dev);
}

/* The DSDT's definition block: \_SB with the processor devices, the described devices and
 * the platform's (VGEN, GED0), then \_S5. */
static int dsdt_build(const struct acpi_machine *am, char (*names)[5], struct aml *a)
{
	size_t sb = aml_scope_begin(a, "\\_SB");
	for (uint32_t c = 0; c < am->n_vcpus; c++) {
		size_t dev = aml_device_begin(a, names[c]);
		aml_name(a, "_HID");
		aml_string(a, CPU_HID);
		aml_name(a, "_UID");
		aml_integer(a, c);
		aml_end(a, dev);
	}
	for (size_t i = 0; i < am->n_devs; i++)
		dsdt_device(a, &am->devs[i], names[am->n_vcpus + i]);
	if (am->vmgenid_gpa)
		dsdt_vmgenid(a, am->vmgenid_gpa, am->ged_gsi);
	aml_end(a, sb);

	/* Name (_S5, Package (4) { SLP_TYPa, SLP_TYPb, reserved, reserved }) */
	aml_name(a, "_S5");
	size_t pkg = aml_package_begin(a, 4);
	aml_integer(a, ACPI_S5_SLP_TYP);
	aml_integer(a, 0);
	aml_integer(a, 0);
	aml_integer(a, 0);
	aml_end(a, pkg);
	return a->err;
}

static int check_machine(const struct acpi_machine *am, uint64_t gpa)
{
	if (am->n_vcpus < 1 || am->n_vcpus > MAX_VCPUS) {
		log_err("acpi: %u vCPUs: the MADT describes 1-%d local APICs", am->n_vcpus,
		        MAX_VCPUS);
		return -EINVAL;
	}
	if (am->lapic_base > UINT32_MAX || am->ioapic_base > UINT32_MAX) {
		log_err("acpi: local APIC at 0x%llx, I/O APIC at 0x%llx: the MADT holds 32-bit "
		        "addresses",
		        (unsigned long long)am->lapic_base, (unsigned long long)am->ioapic_base);
		return -EINVAL;
	}
	if (am->pm_port == 0 || am->pm_port > 0xFFFD) {
		log_err("acpi: PM port 0x%x: the sleep and reset registers need ports 1-0xffff",
		        am->pm_port);
		return -EINVAL;
	}
	if (gpa % 16) {
		log_err("acpi: tables at 0x%llx: the RSDP must be 16-byte aligned",
		        (unsigned long long)gpa);
		return -EINVAL;
	}
	if (am->vmgenid_gpa &&
	    (am->vmgenid_gpa % 8 || (am->vmgenid_gpa & 0xFFF) + ACPI_VMGENID_SIZE > 0x1000)) {
		log_err("acpi: VM generation ID at 0x%llx: it must be 8-byte aligned and not "
		        "cross a page",
		        (unsigned long long)am->vmgenid_gpa);
		return -EINVAL;
	}
	if (am->vmgenid_gpa && am->ged_gsi > 0xFF) {
		log_err("acpi: generic event device on GSI %u: it must be 0-255", am->ged_gsi);
		return -EINVAL;
	}
	if (am->n_devs && !am->devs) {
		log_err("acpi: %zu devices but no descriptions", am->n_devs);
		return -EINVAL;
	}
	for (size_t i = 0; i < am->n_devs; i++) {
		int r = check_dev(am, i);
		if (r)
			return r;
	}
	return 0;
}

static size_t align16(size_t v)
{
	return (v + 15) & ~(size_t)15;
}

static void write_rsdp(uint8_t *p, uint64_t xsdt)
{
	memcpy(p, "RSD PTR ", 8);
	memcpy(p + 9, OEM_ID, 6);
	p[15] = 2; /* revision: ACPI 2.0+ */
	put32(p + 16, 0); /* RsdtAddress: no RSDT */
	put32(p + 20, RSDP_LEN);
	put64(p + 24, xsdt);
	set_checksum(p, 20, 8); /* first 20 bytes (the ACPI 1.0 part) */
	set_checksum(p, RSDP_LEN, 32); /* extended checksum: the whole structure */
}

static void write_fadt(uint8_t *t, const struct acpi_machine *am, uint64_t dsdt)
{
	put_header(t, "FACP", FADT_LEN, FADT_REVISION);
	/* FIRMWARE_CTRL, X_FIRMWARE_CTRL: 0, no FACS when hardware-reduced. */
	if (dsdt <= UINT32_MAX)
		put32(t + FADT_DSDT, (uint32_t)dsdt);
	/* Preferred_PM_Profile 0 (unspecified). SCI_INT, SMI_CMD, the PM1/PM2/PM timer/GPE
	 * blocks: 0, hardware-reduced. */
	put16(t + FADT_IAPC_BOOT_ARCH, IAPC_VGA_NOT_PRESENT | IAPC_CMOS_RTC_NOT_PRESENT);
	put32(t + FADT_FLAGS, FADT_RESET_REG_SUP | FADT_HW_REDUCED_ACPI);
	put_gas_io8(t + FADT_RESET_REG, (uint16_t)(am->pm_port + 2));
	t[FADT_RESET_VALUE] = am->reset_value;
	t[FADT_MINOR_VERSION] = FADT_MINOR;
	put64(t + FADT_X_DSDT, dsdt);
	put_gas_io8(t + FADT_SLEEP_CONTROL_REG, am->pm_port);
	put_gas_io8(t + FADT_SLEEP_STATUS_REG, (uint16_t)(am->pm_port + 1));
	memcpy(t + FADT_HYPERVISOR_ID, OEM_ID, 6); /* "SMOLVM\0\0" */
	set_checksum(t, FADT_LEN, 9);
}

static void write_madt(uint8_t *t, const struct acpi_machine *am)
{
	uint32_t len = MADT_LEN(am->n_vcpus);
	uint8_t *e = t + HDR_LEN + 8;

	put_header(t, "APIC", len, MADT_REVISION);
	put32(t + HDR_LEN, (uint32_t)am->lapic_base);
	put32(t + HDR_LEN + 4, MADT_PCAT_COMPAT);
	for (uint32_t c = 0; c < am->n_vcpus; c++, e += MADT_LAPIC_LEN) {
		e[0] = MADT_LAPIC;
		e[1] = MADT_LAPIC_LEN;
		e[2] = (uint8_t)c; /* ACPI processor UID: the processor device's _UID */
		e[3] = (uint8_t)c; /* APIC id */
		put32(e + 4, LAPIC_ENABLED);
	}
	e[0] = MADT_IOAPIC;
	e[1] = MADT_IOAPIC_LEN;
	e[2] = am->ioapic_id;
	put32(e + 4, (uint32_t)am->ioapic_base);
	put32(e + 8, 0); /* GSI base */
	e += MADT_IOAPIC_LEN;
	/* ISA IRQ 0 (the PIT) is IOAPIC pin 2 under KVM. */
	e[0] = MADT_ISO;
	e[1] = MADT_ISO_LEN;
	e[2] = 0; /* bus: ISA */
	e[3] = 0; /* source: IRQ 0 */
	put32(e + 4, 2);
	put16(e + 8, MPS_INTI_EDGE_HIGH);
	e += MADT_ISO_LEN;
	/* NMI on LINT1 of every processor. */
	e[0] = MADT_LAPIC_NMI;
	e[1] = MADT_LAPIC_NMI_LEN;
	e[2] = 0xFF; /* all processors */
	put16(e + 3, MPS_INTI_EDGE_HIGH);
	e[5] = 1; /* LINT1 */
	set_checksum(t, len, 9);
}

static void add_ref(struct acpi_tables *out, const char *sig, size_t off, size_t len)
{
	struct acpi_table_ref *r = &out->table[out->n_tables++];
	memcpy(r->sig, sig, 5);
	r->offset = (uint32_t)off;
	r->length = (uint32_t)len;
}

int acpi_build(const struct acpi_machine *am, uint8_t *buf, size_t size, uint64_t gpa,
               struct acpi_tables *out)
{
	struct aml a;
	char(*names)[5] = NULL;
	int r;

	aml_init(&a);
	r = check_machine(am, gpa);
	if (r)
		goto out;
	names = calloc(am->n_vcpus + am->n_devs, sizeof(*names));
	if (!names) {
		r = -ENOMEM;
		log_err("acpi: out of memory for %zu device names", am->n_vcpus + am->n_devs);
		goto out;
	}
	r = assign_names(am, names);
	if (r)
		goto out;
	r = dsdt_build(am, names, &a);
	if (r) {
		log_err("acpi: cannot encode the DSDT: %s", strerror(-r));
		goto out;
	}

	size_t xsdt = align16(RSDP_LEN);
	size_t facp = align16(xsdt + XSDT_LEN);
	size_t apic = align16(facp + FADT_LEN);
	size_t madt_len = MADT_LEN(am->n_vcpus);
	size_t dsdt = align16(apic + madt_len);
	size_t dsdt_len = HDR_LEN + a.len;
	size_t used = dsdt + dsdt_len;
	if (used > size) {
		log_err("acpi: the tables need %zu bytes, their buffer holds %zu", used, size);
		r = -ENOSPC;
		goto out;
	}
	if (gpa > UINT64_MAX - used) {
		log_err("acpi: tables at 0x%llx would wrap around", (unsigned long long)gpa);
		r = -EINVAL;
		goto out;
	}
	if (am->vmgenid_gpa && am->vmgenid_gpa < gpa + used &&
	    gpa < am->vmgenid_gpa + ACPI_VMGENID_SIZE) {
		log_err("acpi: the VM generation ID at 0x%llx lies inside the tables "
		        "(0x%llx-0x%llx)",
		        (unsigned long long)am->vmgenid_gpa, (unsigned long long)gpa,
		        (unsigned long long)(gpa + used - 1));
		r = -EINVAL;
		goto out;
	}

	memset(buf, 0, used);
	write_rsdp(buf, gpa + xsdt);
	put_header(buf + xsdt, "XSDT", XSDT_LEN, 1);
	put64(buf + xsdt + HDR_LEN, gpa + facp);
	put64(buf + xsdt + HDR_LEN + 8, gpa + apic);
	set_checksum(buf + xsdt, XSDT_LEN, 9);
	write_fadt(buf + facp, am, gpa + dsdt);
	write_madt(buf + apic, am);
	put_header(buf + dsdt, "DSDT", (uint32_t)dsdt_len, DSDT_REVISION);
	memcpy(buf + dsdt + HDR_LEN, a.data, a.len);
	set_checksum(buf + dsdt, dsdt_len, 9);

	memset(out, 0, sizeof(*out));
	out->rsdp_gpa = gpa;
	out->used = used;
	add_ref(out, "RSDP", 0, RSDP_LEN);
	add_ref(out, "XSDT", xsdt, XSDT_LEN);
	add_ref(out, "FACP", facp, FADT_LEN);
	add_ref(out, "APIC", apic, madt_len);
	add_ref(out, "DSDT", dsdt, dsdt_len);
out:
	free(names);
	aml_free(&a);
	return r;
}

static int write_file(const char *path, const uint8_t *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	int r = 0;

	if (!f) {
		r = -errno;
		log_err("acpi: cannot create %s: %s", path, strerror(-r));
		return r;
	}
	errno = 0;
	if (fwrite(p, 1, n, f) != n)
		r = -(errno ? errno : EIO);
	if (fclose(f) && !r)
		r = -(errno ? errno : EIO);
	if (r)
		log_err("acpi: cannot write %s: %s", path, strerror(-r));
	return r;
}

int acpi_write_files(const struct acpi_tables *t, const uint8_t *buf, const char *dir)
{
	char path[4096], sig[5];

	for (size_t i = 0; i < t->n_tables; i++) {
		const struct acpi_table_ref *ref = &t->table[i];
		if ((size_t)ref->offset + ref->length > t->used) {
			log_err("acpi: table %.4s (0x%x+0x%x) lies outside the %zu bytes built",
			        ref->sig, ref->offset, ref->length, t->used);
			return -EINVAL;
		}
		for (int k = 0; k < 5; k++)
			sig[k] = (char)tolower((unsigned char)ref->sig[k]);
		int n = snprintf(path, sizeof(path), "%s/%.4s.dat", dir, sig);
		if (n < 0 || (size_t)n >= sizeof(path)) {
			log_err("acpi: cannot write the %.4s table into %s: path too long",
			        ref->sig, dir);
			return -ENAMETOOLONG;
		}
		int r = write_file(path, buf + ref->offset, ref->length);
		if (r)
			return r;
	}
	return 0;
}
