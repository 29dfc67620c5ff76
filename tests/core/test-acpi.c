/* Unit tests of the ACPI table builder (core/arch/x86/acpi.c): checksums, lengths, the pointers
 * from RSDP to DSDT, the FADT's and MADT's fields, the DSDT's devices, and refusals (-ENOSPC
 * without writing past the buffer, -EINVAL for bad descriptions). The tables are read back
 * here with a separate decoder, not with the builder's own code. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acpi.h"

#define GPA ACPI_TABLES_GPA
static uint8_t buf[ACPI_TABLES_SIZE];
static struct acpi_dev_desc devs[3];
static struct acpi_machine am;
static struct acpi_tables t;

/* The synthetic machine: 2 vCPUs, a 16550, two virtio-mmio devices (the second level/low). */
static void machine_init(void)
{
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
	devs[2].irq[0].level = 1;
	devs[2].irq[0].active_low = 1;
	am = (struct acpi_machine){ .n_vcpus = 2,
		                    .lapic_base = 0xfee00000,
		                    .ioapic_base = 0xfec00000,
		                    .ioapic_id = 2,
		                    .pm_port = 0x600,
		                    .reset_value = 0x0e,
		                    .devs = devs,
		                    .n_devs = 3 };
	memset(buf, 0, sizeof(buf));
	memset(&t, 0, sizeof(t));
}

static void setup(void)
{
	cr_redirect_stderr();
	machine_init();
}

TestSuite(acpi, .init = setup);

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const uint8_t *p)
{
	return rd16(p) | (uint32_t)rd16(p + 2) << 16;
}

static uint64_t rd64(const uint8_t *p)
{
	return rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	while (n--)
		s = (uint8_t)(s + *p++);
	return s;
}

static const uint8_t *find(const uint8_t *hay, size_t n, const void *needle, size_t m)
{
	for (size_t i = 0; i + m <= n; i++)
		if (memcmp(hay + i, needle, m) == 0)
			return hay + i;
	return NULL;
}

#define HAS(hay, n, ...)                                                                           \
	do {                                                                                       \
		static const uint8_t want_[] = { __VA_ARGS__ };                                    \
		cr_assert(find((hay), (n), want_, sizeof(want_)), "missing: %s", #__VA_ARGS__);    \
	} while (0)

/* The table a guest-physical address points to, checked: inside the buffer, its signature,
 * its length inside the buffer, its checksum. */
static const uint8_t *table_at(uint64_t gpa, const char *sig)
{
	cr_assert(gpa >= GPA && gpa - GPA + 36 <= t.used, "%s at 0x%llx is outside", sig,
	          (unsigned long long)gpa);
	const uint8_t *p = buf + (gpa - GPA);
	cr_assert_arr_eq(p, sig, 4, "wanted %s at 0x%llx", sig, (unsigned long long)gpa);
	uint32_t len = rd32(p + 4);
	cr_assert(len >= 36 && gpa - GPA + len <= t.used);
	cr_assert_eq(sum(p, len), 0, "%s checksum", sig);
	return p;
}

static void build(void)
{
	cr_assert_eq(acpi_build(&am, buf, sizeof(buf), GPA, &t), 0);
}

Test(acpi, checksums_lengths_and_order)
{
	static const char *const sigs[] = { "RSDP", "XSDT", "FACP", "APIC", "DSDT" };
	static const uint32_t lens[] = { 36, 36 + 16, 276, 44 + 2 * 8 + 12 + 10 + 6, 0 };
	build();
	cr_assert_eq(t.rsdp_gpa, GPA);
	cr_assert_eq(t.n_tables, 5);
	for (size_t i = 0; i < 5; i++) {
		const struct acpi_table_ref *r = &t.table[i];
		const uint8_t *p = buf + r->offset;
		cr_assert_str_eq(r->sig, sigs[i]);
		cr_assert_eq(r->offset % 16, 0, "%s is not 16-byte aligned", r->sig);
		cr_assert(r->offset + r->length <= t.used);
		if (i > 0)
			cr_assert(r->offset >= t.table[i - 1].offset + t.table[i - 1].length);
		if (lens[i])
			cr_assert_eq(r->length, lens[i], "%s length %u", r->sig, r->length);
		if (i == 0) {
			cr_assert_arr_eq(p, "RSD PTR ", 8);
			cr_assert_eq(sum(p, 20), 0, "RSDP checksum");
			cr_assert_eq(sum(p, 36), 0, "RSDP extended checksum");
			cr_assert_eq(p[15], 2);
			cr_assert_eq(rd32(p + 20), 36);
			cr_assert_arr_eq(p + 9, "SMOLVM", 6);
			continue;
		}
		cr_assert_arr_eq(p, sigs[i], 4);
		cr_assert_eq(rd32(p + 4), r->length);
		cr_assert_eq(sum(p, r->length), 0, "%s checksum", r->sig);
		cr_assert_arr_eq(p + 10, "SMOLVM", 6);
		cr_assert_arr_eq(p + 16, "SMOLVM  ", 8);
		/* OEM revision, creator id and revision: the same in every table */
		cr_assert_arr_eq(p + 24, buf + t.table[1].offset + 24, 12);
	}
	cr_assert_eq(t.used, t.table[4].offset + t.table[4].length);
	cr_assert_eq(buf[t.table[1].offset + 8], 1); /* XSDT revision */
	cr_assert_eq(buf[t.table[4].offset + 8], 2); /* DSDT revision: 64-bit integers */
}

Test(acpi, a_16_byte_scan_finds_the_rsdp_and_it_leads_to_every_table)
{
	const uint8_t *rsdp = NULL;
	build();
	for (size_t off = 0; off + 36 <= sizeof(buf); off += 16) {
		if (memcmp(buf + off, "RSD PTR ", 8) || sum(buf + off, 20))
			continue;
		cr_assert_null(rsdp, "a second RSDP at 0x%zx", off);
		rsdp = buf + off;
	}
	cr_assert_not_null(rsdp);
	cr_assert_eq(GPA + (uint64_t)(rsdp - buf), t.rsdp_gpa);
	cr_assert_eq(rd32(rsdp + 16), 0); /* no RSDT */

	const uint8_t *xsdt = table_at(rd64(rsdp + 24), "XSDT");
	cr_assert_eq(rd32(xsdt + 4), 36 + 2 * 8);
	const uint8_t *facp = table_at(rd64(xsdt + 36), "FACP");
	table_at(rd64(xsdt + 44), "APIC");
	const uint8_t *dsdt = table_at(rd64(facp + 140), "DSDT"); /* X_DSDT */
	cr_assert_eq(rd32(facp + 40), (uint32_t)(GPA + (uint64_t)(dsdt - buf))); /* DSDT */
}

static void assert_gas_io8(const uint8_t *g, uint64_t port)
{
	cr_assert_eq(g[0], 1, "address space: SystemIO");
	cr_assert_eq(g[1], 8, "bit width");
	cr_assert_eq(g[2], 0, "bit offset");
	cr_assert_eq(g[3], 1, "access size: byte");
	cr_assert_eq(rd64(g + 4), port);
}

Test(acpi, fadt)
{
	build();
	const uint8_t *f = buf + t.table[2].offset;
	cr_assert_eq(rd32(f + 4), 276);
	cr_assert_eq(f[8], 6, "FADT revision");
	cr_assert_eq(f[131], 5, "FADT minor version: ACPI 6.5");
	cr_assert_eq(rd32(f + 36), 0, "FIRMWARE_CTRL");
	cr_assert_eq(rd64(f + 132), 0, "X_FIRMWARE_CTRL");
	cr_assert_eq(rd16(f + 46), 0, "SCI_INT");
	cr_assert_eq(rd16(f + 109), (1 << 2) | (1 << 5), "IAPC_BOOT_ARCH: no VGA, no CMOS RTC");
	cr_assert_eq(rd32(f + 112), (1u << 10) | (1u << 20), "RESET_REG_SUP | HW_REDUCED_ACPI");
	assert_gas_io8(f + 116, 0x602); /* RESET_REG */
	cr_assert_eq(f[128], 0x0e, "RESET_VALUE");
	assert_gas_io8(f + 244, 0x600); /* SLEEP_CONTROL_REG */
	assert_gas_io8(f + 256, 0x601); /* SLEEP_STATUS_REG */
	cr_assert_arr_eq(f + 268, "SMOLVM\0\0", 8, "hypervisor vendor identity");
	cr_assert_eq(rd64(f + 140), GPA + t.table[4].offset);
	/* the legacy fixed-hardware blocks stay empty */
	for (size_t i = 48; i < 109; i++)
		cr_assert_eq(f[i], 0, "byte %zu", i);
	for (size_t i = 148; i < 244; i++)
		cr_assert_eq(f[i], 0, "byte %zu", i);
	cr_assert_eq(ACPI_SLEEP_CTL_S5, 0x34);
}

/* Walks the MADT of @p n vCPUs and checks every structure. */
static void check_madt(uint32_t n)
{
	const uint8_t *m = buf + t.table[3].offset;
	uint32_t len = rd32(m + 4), lapics = 0, ioapics = 0, isos = 0, nmis = 0;

	cr_assert_eq(m[8], 6, "MADT revision");
	cr_assert_eq(rd32(m + 36), 0xfee00000);
	cr_assert_eq(rd32(m + 40), 1, "PCAT_COMPAT");
	for (uint32_t off = 44; off < len; off += m[off + 1]) {
		const uint8_t *e = m + off;
		cr_assert(e[1] >= 2 && off + e[1] <= len, "structure at %u overruns", off);
		switch (e[0]) {
		case 0:
			cr_assert_eq(e[1], 8);
			cr_assert_eq(e[2], lapics, "processor UID");
			cr_assert_eq(e[3], lapics, "APIC id");
			cr_assert_eq(rd32(e + 4), 1, "enabled");
			lapics++;
			break;
		case 1:
			cr_assert_eq(e[1], 12);
			cr_assert_eq(e[2], am.ioapic_id);
			cr_assert_eq(rd32(e + 4), 0xfec00000);
			cr_assert_eq(rd32(e + 8), 0, "GSI base");
			ioapics++;
			break;
		case 2:
			cr_assert_eq(e[1], 10);
			cr_assert_eq(e[2], 0, "bus ISA");
			cr_assert_eq(e[3], 0, "IRQ 0");
			cr_assert_eq(rd32(e + 4), 2, "GSI 2");
			cr_assert_eq(rd16(e + 8), 0x5, "edge, active high");
			isos++;
			break;
		case 4:
			cr_assert_eq(e[1], 6);
			cr_assert_eq(e[2], 0xff, "all processors");
			cr_assert_eq(e[5], 1, "LINT1");
			nmis++;
			break;
		default: cr_assert_fail("unexpected MADT structure type %u", e[0]);
		}
	}
	cr_assert_eq(lapics, n);
	cr_assert_eq(ioapics, 1);
	cr_assert_eq(isos, 1);
	cr_assert_eq(nmis, 1);
}

Test(acpi, madt)
{
	build();
	check_madt(2);
}

/* Devices in a DSDT: every DeviceOp with its PkgLength decoded here. */
struct found {
	char name[5];
	const uint8_t *body; /* after the name */
	size_t len;
};

static size_t pkglen(const uint8_t *p, size_t *value)
{
	size_t k = p[0] >> 6;
	if (k == 0) {
		*value = p[0] & 0x3F;
		return 1;
	}
	*value = p[0] & 0x0F;
	for (size_t i = 1; i <= k; i++)
		*value |= (size_t)p[i] << (4 + 8 * (i - 1));
	return k + 1;
}

static size_t find_devices(const uint8_t *aml, size_t n, struct found *out, size_t max)
{
	size_t count = 0;
	for (size_t i = 0; i + 7 < n; i++) {
		if (aml[i] != 0x5B || aml[i + 1] != 0x82)
			continue;
		size_t v, k = pkglen(aml + i + 2, &v);
		cr_assert(i + 2 + v <= n, "device at %zu runs past the table", i);
		cr_assert(count < max);
		memcpy(out[count].name, aml + i + 2 + k, 4);
		out[count].name[4] = 0;
		out[count].body = aml + i + 2 + k + 4;
		out[count].len = v - k - 4;
		count++;
	}
	return count;
}

Test(acpi, dsdt_devices)
{
	struct found d[8];
	build();
	const uint8_t *dsdt = buf + t.table[4].offset;
	size_t len = t.table[4].length;
	const uint8_t *aml = dsdt + 36;

	/* Scope (\_SB) spans everything up to \_S5 */
	cr_assert_eq(aml[0], 0x10);
	size_t v, k = pkglen(aml + 1, &v);
	cr_assert_arr_eq(aml + 1 + k, "\\_SB_", 5);
	const uint8_t s5[] = { 0x08, '_', 'S', '5', '_', 0x12, 0x07, 0x04, 0x0A, 0x05, 0, 0, 0 };
	cr_assert_eq(36 + 1 + v + sizeof(s5), len, "\\_S5 follows \\_SB and ends the table");
	cr_assert_arr_eq(aml + 1 + v, s5, sizeof(s5));

	cr_assert_eq(find_devices(aml, len - 36, d, 8), 5);
	static const char *const names[] = { "C000", "C001", "COM0", "D000", "D001" };
	for (int i = 0; i < 5; i++)
		cr_assert_str_eq(d[i].name, names[i]);
	for (int c = 0; c < 2; c++) {
		HAS(d[c].body, d[c].len, 0x08, '_', 'H', 'I', 'D', 0x0D, 'A', 'C', 'P', 'I', '0',
		    '0', '0', '7', 0);
		const uint8_t uid[] = { 0x08, '_', 'U', 'I', 'D', c == 0 ? 0x00 : 0x01 };
		cr_assert(find(d[c].body, d[c].len, uid, sizeof(uid)), "C00%d _UID", c);
	}
	HAS(d[2].body, d[2].len, 0x08, '_', 'H', 'I', 'D', 0x0C, 0x41, 0xD0, 0x05, 0x01);
	HAS(d[2].body, d[2].len, 0x08, '_', 'U', 'I', 'D', 0x00);
	HAS(d[2].body, d[2].len, 0x08, '_', 'C', 'R', 'S', 0x11, 22, 0x0A, 19, /* Buffer */
	    0x47, 0x01, 0xF8, 0x03, 0xF8, 0x03, 0x01, 0x08, /* IO (Decode16, 0x3f8, 8) */
	    0x89, 0x06, 0x00, 0x03, 0x01, 0x04, 0x00, 0x00, 0x00, /* Interrupt edge high {4} */
	    0x79, 0x00);
	for (int i = 3; i < 5; i++) {
		HAS(d[i].body, d[i].len, 0x08, '_', 'H', 'I', 'D', 0x0D, 'L', 'N', 'R', 'O', '0',
		    '0', '0', '5', 0);
		const uint8_t uid[] = { 0x08, '_', 'U', 'I', 'D', i == 3 ? 0x00 : 0x01 };
		cr_assert(find(d[i].body, d[i].len, uid, sizeof(uid)));
	}
	HAS(d[3].body, d[3].len, 0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xD0, 0x00, 0x02, 0, 0,
	    0x89, 0x06, 0x00, 0x03, 0x01, 0x05, 0x00, 0x00, 0x00, 0x79, 0x00);
	/* level (bit 1 clear), active low (bit 2) */
	HAS(d[4].body, d[4].len, 0x86, 0x09, 0x00, 0x01, 0x00, 0x02, 0x00, 0xD0, 0x00, 0x02, 0, 0,
	    0x89, 0x06, 0x00, 0x05, 0x01, 0x06, 0x00, 0x00, 0x00, 0x79, 0x00);
}

Test(acpi, many_vcpus_and_a_dsdt_past_4_kib)
{
	am.n_vcpus = 255;
	am.ioapic_id = 0; /* any 8-bit id; the MADT does not check it against the vCPUs' */
	build();
	check_madt(255);
	struct found *d = calloc(300, sizeof(*d));
	cr_assert(d);
	const uint8_t *aml = buf + t.table[4].offset + 36;
	size_t len = t.table[4].length - 36;
	cr_assert_gt(len, 4096);
	cr_assert_eq(aml[1] >> 6, 2, "\\_SB's PkgLength takes 3 bytes");
	cr_assert_eq(find_devices(aml, len, d, 300), 255 + 3);
	cr_assert_str_eq(d[254].name, "C0FE");
	HAS(d[254].body, d[254].len, 0x08, '_', 'U', 'I', 'D', 0x0A, 0xFE);
	cr_assert_str_eq(d[255].name, "COM0");
	free(d);
}

Test(acpi, names_are_padded_and_assigned_around_taken_ones)
{
	strcpy(devs[0].name, "D0");
	strcpy(devs[1].name, "D000");
	struct found d[8];
	build();
	cr_assert_eq(find_devices(buf + t.table[4].offset + 36, t.table[4].length - 36, d, 8), 5);
	cr_assert_str_eq(d[2].name, "D0__");
	cr_assert_str_eq(d[3].name, "D000");
	cr_assert_str_eq(d[4].name, "D001");
}

Test(acpi, tables_above_4_gib_leave_the_32_bit_dsdt_field_0)
{
	uint64_t gpa = 0x100000000ull;
	cr_assert_eq(acpi_build(&am, buf, sizeof(buf), gpa, &t), 0);
	const uint8_t *f = buf + t.table[2].offset;
	cr_assert_eq(rd32(f + 40), 0);
	cr_assert_eq(rd64(f + 140), gpa + t.table[4].offset);
	cr_assert_eq(sum(f, 276), 0);
}

/* The platform's VGEN and GED0 (acpi.h), byte for byte what iasl 20200925 compiles (-oa) from
 * the ASL in acpi.h with the ID at 0xFE000 and the GED on GSI 23. */
Test(acpi, vmgenid_and_ged_devices)
{
	/* the bodies after the devices' names (sizeof - 1: without the literal's own NUL) */
	static const char vgen[] = "\x08_HID\x0DSMOL0001\0"
	                           "\x08_CID\x0DVM_GEN_COUNTER\0"
	                           "\x08_DDN\x0DVM_GEN_COUNTER\0"
	                           "\x14\x10"
	                           "ADDR\x00" /* Method (ADDR, 0, NotSerialized) */
	                           "\xA4\x12\x08\x02" /* Return (Package (2) { */
	                           "\x0C\x00\xE0\x0F\x00\x00"; /* 0x000FE000, Zero }) */
	static const char ged[] = "\x08_HID\x0D"
	                          "ACPI0013\0"
	                          "\x08_UID\x00"
	                          "\x08_CRS\x11\x0E\x0A\x0B" /* Buffer (11) */
	                          "\x89\x06\x00\x03\x01\x17\x00\x00\x00" /* Interrupt {23} */
	                          "\x79\x00" /* End Tag */
	                          "\x14\x19_EVT\x01" /* Method (_EVT, 1, NotSerialized) */
	                          "\xA0\x12\x93\x68\x0A\x17" /* If ((Arg0 == 0x17)) */
	                          "\x86\\\x2E_SB_VGEN\x0A\x80"; /* Notify (\\_SB.VGEN, 0x80) */
	struct found d[8];
	am.vmgenid_gpa = 0xFE000;
	am.ged_gsi = 23;
	build();
	const uint8_t *aml = buf + t.table[4].offset + 36;
	cr_assert_eq(find_devices(aml, t.table[4].length - 36, d, 8), 7);
	cr_assert_str_eq(d[5].name, "VGEN");
	cr_assert_str_eq(d[6].name, "GED0");
	cr_assert_eq(d[5].len, sizeof(vgen) - 1);
	cr_assert_arr_eq(d[5].body, vgen, sizeof(vgen) - 1);
	cr_assert_eq(d[6].len, sizeof(ged) - 1);
	cr_assert_arr_eq(d[6].body, ged, sizeof(ged) - 1);
}

Test(acpi, vmgenid_above_4_gib_is_two_halves)
{
	struct found d[8];
	am.vmgenid_gpa = 0x123456FF0ull;
	am.ged_gsi = 9;
	build();
	cr_assert_eq(find_devices(buf + t.table[4].offset + 36, t.table[4].length - 36, d, 8), 7);
	/* Package (2) { 0x23456FF0, One } */
	HAS(d[5].body, d[5].len, 0xA4, 0x12, 0x08, 0x02, 0x0C, 0xF0, 0x6F, 0x45, 0x23, 0x01);
	/* Interrupt {9}, If (Arg0 == 9) */
	HAS(d[6].body, d[6].len, 0x89, 0x06, 0x00, 0x03, 0x01, 0x09, 0x00, 0x00, 0x00, 0x79, 0x00);
	HAS(d[6].body, d[6].len, 0xA0, 0x12, 0x93, 0x68, 0x0A, 0x09, 0x86);
}

Test(acpi, platform_names_and_ids_are_free_without_the_vmgenid)
{
	strcpy(devs[0].name, "VGEN");
	strcpy(devs[1].hid, "SMOL0001");
	strcpy(devs[2].hid, "ACPI0013");
	devs[2].uid = 0;
	devs[2].irq[0].gsi = 23;
	build();
	/* with them, another GED (ACPI0013, _UID 1) is fine */
	machine_init();
	am.vmgenid_gpa = 0xFE000;
	am.ged_gsi = 23;
	strcpy(devs[2].hid, "ACPI0013");
	build();
}

#define GUARD 256

Test(acpi, enospc_writes_nothing)
{
	build();
	size_t need = t.used;
	const size_t sizes[] = { 0, 1, 36, 100, need / 2, need - 1, need };
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint8_t *b = malloc(sizes[i] + GUARD);
		cr_assert(b);
		memset(b, 0xA5, sizes[i] + GUARD);
		int r = acpi_build(&am, b, sizes[i], GPA, &t);
		if (sizes[i] < need) {
			cr_assert_eq(r, -ENOSPC, "size %zu: %d", sizes[i], r);
			for (size_t j = 0; j < sizes[i] + GUARD; j++)
				cr_assert_eq(b[j], 0xA5, "size %zu: byte %zu written", sizes[i], j);
		} else {
			cr_assert_eq(r, 0);
			cr_assert_eq(memcmp(b, buf, need), 0);
			for (size_t j = need; j < need + GUARD; j++)
				cr_assert_eq(b[j], 0xA5, "byte %zu past the end written", j);
		}
		free(b);
	}
}

static char err[4096];
static const char *stderr_text(void)
{
	fflush(stderr);
	size_t n = fread(err, 1, sizeof(err) - 1, cr_get_redirected_stderr());
	err[n] = 0;
	return err;
}

/* The build is refused with -EINVAL, leaves the buffer alone and says @p needle. */
static void refused(const char *needle)
{
	memset(buf, 0xA5, sizeof(buf));
	cr_assert_eq(acpi_build(&am, buf, sizeof(buf), GPA, &t), -EINVAL);
	for (size_t j = 0; j < 64; j++)
		cr_assert_eq(buf[j], 0xA5);
	const char *e = stderr_text();
	cr_assert(strstr(e, needle), "expected \"%s\" in: %s", needle, e);
}

Test(acpi, bad_eisa_hid)
{
	strcpy(devs[0].hid, "PNP05X1");
	refused("acpi: device 0 (_HID \"PNP05X1\", _UID 0, name COM0): _HID is neither an EISA id");
}

Test(acpi, bad_acpi_hid)
{
	strcpy(devs[2].hid, "lnro0005");
	refused("device 2 (_HID \"lnro0005\", _UID 1): _HID is neither");
}

Test(acpi, unterminated_hid)
{
	memset(devs[1].hid, 'A', sizeof(devs[1].hid));
	refused("device 1 (_HID \"AAAAAAAAAAAAAAAA\", _UID 0): _HID is neither");
}

Test(acpi, mmio_above_4_gib)
{
	devs[1].mmio[0].base = 0xffffff00;
	refused("device 1 (_HID \"LNRO0005\", _UID 0): MMIO range 0xffffff00+0x200 ends above 4 "
	        "GiB");
}

Test(acpi, duplicate_name)
{
	strcpy(devs[2].name, "COM0");
	refused("device 2 (_HID \"LNRO0005\", _UID 1, name COM0): name COM0 is already taken by "
	        "device 0");
}

Test(acpi, name_of_a_processor)
{
	strcpy(devs[0].name, "C001");
	refused("name C001 is already taken by vCPU 1");
}

Test(acpi, duplicate_hid_and_uid)
{
	devs[2].uid = 0;
	refused("device 2 (_HID \"LNRO0005\", _UID 0): device 1 has the same _HID and _UID");
}

Test(acpi, vmgenid_refusals_say_why)
{
	am.vmgenid_gpa = 0xFE000;
	am.ged_gsi = 23;
	devs[1].irq[0].gsi = 23;
	refused("device 1 (_HID \"LNRO0005\", _UID 0): GSI 23 is the platform's generic event "
	        "device's");
	machine_init();
	am.vmgenid_gpa = 0xFE000;
	strcpy(devs[2].name, "GED0");
	refused("name GED0 is the platform's own device's");
	machine_init();
	am.vmgenid_gpa = GPA + 0x200;
	refused("acpi: the VM generation ID at 0xe0200 lies inside the tables (0xe0000-0x");
	machine_init();
	am.vmgenid_gpa = 0xFEFF8;
	refused("acpi: VM generation ID at 0xfeff8: it must be 8-byte aligned and not cross a "
	        "page");
}

/* Spoils the synthetic machine in the @p i th way; returns what that is, NULL past the last. */
static const char *spoil(int i)
{
	switch (i) {
	case 0: devs[0].hid[0] = 0; return "empty _HID";
	case 1: strcpy(devs[0].hid, "pnp0501"); return "7 characters, not an EISA id";
	case 2: strcpy(devs[1].hid, "LNRO005"); return "short ACPI id";
	case 3: strcpy(devs[1].hid, "LNRO00050"); return "long ACPI id";
	case 4: strcpy(devs[1].hid, "LNRO000a"); return "lowercase hex digit";
	case 5: strcpy(devs[0].name, "1COM"); return "name starting with a digit";
	case 6: strcpy(devs[0].name, "_COM"); return "name starting with _";
	case 7: strcpy(devs[0].name, "com0"); return "lowercase name";
	case 8: memcpy(devs[0].name, "COM01", 5); return "unterminated name";
	case 9: strcpy(devs[0].hid, "ACPI0007"); return "a processor's _HID and _UID";
	case 10: devs[1].mmio[0].base = 0x100000000ull; return "MMIO at 4 GiB";
	case 11: devs[1].mmio[0].len = UINT64_MAX; return "MMIO length wrapping";
	case 12: devs[1].mmio[0].len = 0; return "empty MMIO range";
	case 13: devs[0].io[0].len = 0; return "no I/O port";
	case 14: devs[0].io[0].len = 256; return "256 I/O ports";
	case 15: devs[0].io[0].base = 0xfffc; return "I/O ports past 0xffff";
	case 16: devs[0].n_io = 5; return "5 I/O ranges";
	case 17: devs[1].n_mmio = 5; return "5 MMIO ranges";
	case 18: devs[0].n_irq = 5; return "5 IRQs";
	case 19: am.n_vcpus = 0; return "no vCPU";
	case 20: am.n_vcpus = 256; return "256 vCPUs";
	case 21: am.pm_port = 0; return "PM port 0";
	case 22: am.pm_port = 0xfffe; return "PM port 0xfffe";
	case 23: am.lapic_base = 0x100000000ull; return "local APIC above 4 GiB";
	case 24: am.ioapic_base = 0x1fec00000ull; return "I/O APIC above 4 GiB";
	case 25: am.devs = NULL; return "devices without descriptions";
	case 26:
		devs[1].mmio[0].base = 0;
		devs[1].mmio[0].len = 1ull << 32;
		return "4 GiB of MMIO (Memory32Fixed's length is 32-bit)";
	case 27: am.vmgenid_gpa = 0xFE004; return "VM generation ID not 8-byte aligned";
	case 28: am.vmgenid_gpa = 0xFEFF8; return "VM generation ID crossing a page";
	case 29: am.vmgenid_gpa = GPA + 0x100; return "VM generation ID inside the tables";
	case 30: am.vmgenid_gpa = GPA - 8; return "VM generation ID overlapping the tables";
	case 31:
		am.vmgenid_gpa = 0xFE000;
		am.ged_gsi = 256;
		return "GED on GSI 256";
	case 32:
		am.vmgenid_gpa = 0xFE000;
		am.ged_gsi = 6;
		return "a device on the GED's GSI";
	case 33:
		am.vmgenid_gpa = 0xFE000;
		strcpy(devs[0].name, "VGEN");
		return "a device named VGEN";
	case 34:
		am.vmgenid_gpa = 0xFE000;
		strcpy(devs[1].name, "GED0");
		return "a device named GED0";
	case 35:
		am.vmgenid_gpa = 0xFE000;
		strcpy(devs[1].hid, "SMOL0001");
		return "a device with the VM generation ID's _HID";
	case 36:
		am.vmgenid_gpa = 0xFE000;
		strcpy(devs[1].hid, "ACPI0013");
		return "a device with the GED's _HID and _UID";
	default: return NULL;
	}
}

Test(acpi, more_bad_descriptions)
{
	const char *what;
	for (int i = 0; machine_init(), (what = spoil(i)) != NULL; i++) {
		memset(buf, 0xA5, 64);
		cr_assert_eq(acpi_build(&am, buf, sizeof(buf), GPA, &t), -EINVAL, "%s accepted",
		             what);
		for (size_t j = 0; j < 64; j++)
			cr_assert_eq(buf[j], 0xA5, "%s: buffer written", what);
	}
	cr_assert_eq(acpi_build(&am, buf, sizeof(buf), GPA + 8, &t), -EINVAL, "unaligned gpa");
}

Test(acpi, write_files)
{
	char dir[] = "/tmp/test-acpi-XXXXXX", path[64];
	static const char *const files[] = { "rsdp", "xsdt", "facp", "apic", "dsdt" };
	uint8_t back[4096];

	build();
	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(acpi_write_files(&t, buf, dir), 0);
	for (size_t i = 0; i < 5; i++) {
		snprintf(path, sizeof(path), "%s/%s.dat", dir, files[i]);
		FILE *f = fopen(path, "rb");
		cr_assert_not_null(f, "%s missing", path);
		size_t n = fread(back, 1, sizeof(back), f);
		fclose(f);
		cr_assert_eq(n, t.table[i].length, "%s: %zu bytes", path, n);
		cr_assert_eq(memcmp(back, buf + t.table[i].offset, n), 0, "%s differs", path);
		unlink(path);
	}
	rmdir(dir);
	cr_assert_eq(acpi_write_files(&t, buf, "/nonexistent/dir"), -ENOENT);
	cr_assert(strstr(stderr_text(), "acpi: cannot create /nonexistent/dir/rsdp.dat: No such"));
}
