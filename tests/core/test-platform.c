/* Unit tests of the platform's VM generation ID (core/arch/x86/platform.c): the GSI it reserves,
 * the random ID platform_build_tables writes where the DSDT's ADDR points, and
 * platform_vmgenid_change(), which writes a new ID and pulses the GED's line (seen here
 * through a backend whose irq_line records its calls), also on a machine whose RAM did not come
 * from platform_build_tables (a restored one). No VM, no /dev/kvm. */
#define _GNU_SOURCE /* memmem */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acpi.h"
#include "config.h"
#include "log.h"
#include "layout.h"
#include "machine.h"
#include "platform.h"

static struct machine m;
static struct cfg *cfg;

/* The backend's irq_line, recorded. */
static struct {
	uint32_t gsi;
	int level;
} calls[8];
static int n_calls, irq_error;

static int fake_irq_line(struct smol_vm *vm, uint32_t gsi, int level)
{
	(void)vm;
	if (n_calls < 8)
		calls[n_calls] = (typeof(calls[0])){ gsi, level };
	n_calls++;
	return irq_error;
}

static const struct smol_backend_ops fake_be = { .irq_line = fake_irq_line };
static char fake_vm;

/* A machine with RAM (64 MiB) and the platform configured from @p ini. */
static void machine_with(const char *ini)
{
	memset(&m, 0, sizeof(m));
	cr_assert_eq(cfg_load_string(&cfg, "t.ini", ini), 0);
	m.cfg = cfg;
	pthread_mutex_init(&m.irq_lock, NULL);
	bus_init(&m.pio, "pio", 0x10000);
	bus_init(&m.mmio, "mmio", 1ull << 52);
	m.n_vcpus = 1;
	m.ram_size = 64 << 20;
	platform_configure(&m);
	cr_assert_eq(cfg->errors, 0);
	mem_layout_x86(&m.mem, m.ram_size);
	cr_assert_eq(mem_alloc(&m.mem), 0);
	n_calls = irq_error = 0;
}

static void setup(void)
{
	cr_redirect_stderr();
	machine_with("[machine]\n");
}

static void teardown(void)
{
	mem_free(&m.mem);
	cfg_free(cfg);
	log_level = SMOL_LOG_INFO;
}

TestSuite(platform, .init = setup, .fini = teardown);

static char err[8192];
static const char *stderr_text(void)
{
	fflush(stderr);
	size_t n = fread(err, 1, sizeof(err) - 1, cr_get_redirected_stderr());
	err[n] = 0;
	return err;
}

static uint8_t *ram(uint64_t gpa, size_t len)
{
	uint8_t *p = mem_gpa_ptr(&m.mem, gpa, len);
	cr_assert_not_null(p);
	return p;
}

static const uint8_t zero[PLATFORM_VMGENID_SIZE];

Test(platform, acpi_reserves_the_ged_line_and_no_acpi_does_not)
{
	cr_assert(m.acpi);
	cr_assert_not_null(m.irq_reserved[PLATFORM_GED_GSI]);
	cr_assert(strstr(m.irq_reserved[PLATFORM_GED_GSI], "VM generation ID"));
	for (int l = 0; l < X86_IRQS; l++)
		if (l != PLATFORM_GED_GSI)
			cr_assert_null(m.irq_reserved[l], "line %d", l);
	teardown();
	machine_with("[machine]\nacpi = off\n");
	cr_assert_not(m.acpi);
	cr_assert_null(m.irq_reserved[PLATFORM_GED_GSI]);
}

Test(platform, the_tables_point_at_a_random_id)
{
	struct acpi_tables t;
	uint8_t first[PLATFORM_VMGENID_SIZE], id[PLATFORM_VMGENID_SIZE];

	memset(ram(PLATFORM_VMGENID_GPA, 0x1000), 0xA5, 0x1000);
	cr_assert_eq(platform_build_tables(&m, &t), 0);
	cr_assert_eq(platform_vmgenid_read(&m, first), 0);
	cr_assert_arr_neq(first, zero, sizeof(first));
	cr_assert_arr_eq(ram(PLATFORM_VMGENID_GPA, 16), first, 16);
	/* the rest of its page is cleared */
	const uint8_t *page = ram(PLATFORM_VMGENID_GPA, 0x1000);
	for (size_t i = PLATFORM_VMGENID_SIZE; i < 0x1000; i++)
		cr_assert_eq(page[i], 0, "byte %zu of the ID's page", i);
	/* the tables end before it; the DSDT's ADDR returns it */
	cr_assert_leq(ACPI_TABLES_GPA + t.used, PLATFORM_VMGENID_GPA);
	const uint8_t *dsdt = ram(ACPI_TABLES_GPA + t.table[4].offset, t.table[4].length);
	static const uint8_t addr[] = { 'A',  'D',  'D',  'R',  0x00, 0xA4, 0x12, 0x08,
		                        0x02, 0x0C, 0x00, 0xE0, 0x0F, 0x00, 0x00 };
	cr_assert(memmem(dsdt, t.table[4].length, addr, sizeof(addr)), "no ADDR of 0xFE000");
	static const uint8_t gsi[] = { 0x89, 0x06, 0x00, 0x03, 0x01, PLATFORM_GED_GSI, 0, 0, 0 };
	cr_assert(memmem(dsdt, t.table[4].length, gsi, sizeof(gsi)), "no edge interrupt 23");
	/* another boot, another ID */
	cr_assert_eq(platform_build_tables(&m, &t), 0);
	cr_assert_eq(platform_vmgenid_read(&m, id), 0);
	cr_assert_arr_neq(id, first, sizeof(id));
}

Test(platform, change_writes_a_new_id_then_pulses_the_ged_line)
{
	uint8_t before[PLATFORM_VMGENID_SIZE], after[PLATFORM_VMGENID_SIZE];

	cr_assert_eq(platform_build_tables(&m, NULL), 0);
	m.be = &fake_be;
	m.vm = (struct smol_vm *)&fake_vm;
	cr_assert_eq(platform_vmgenid_read(&m, before), 0);
	cr_assert_eq(platform_vmgenid_change(&m), 0);
	cr_assert_eq(platform_vmgenid_read(&m, after), 0);
	cr_assert_arr_neq(after, before, sizeof(after));
	cr_assert_arr_eq(ram(PLATFORM_VMGENID_GPA, 16), after, 16);
	cr_assert_eq(n_calls, 2);
	cr_assert_eq(calls[0].gsi, PLATFORM_GED_GSI);
	cr_assert_eq(calls[0].level, 1);
	cr_assert_eq(calls[1].gsi, PLATFORM_GED_GSI);
	cr_assert_eq(calls[1].level, 0);
	cr_assert_eq(m.irq_level[PLATFORM_GED_GSI], 0);
	/* and again: each change is an edge of its own */
	memcpy(before, after, sizeof(before));
	cr_assert_eq(platform_vmgenid_change(&m), 0);
	cr_assert_eq(platform_vmgenid_read(&m, after), 0);
	cr_assert_arr_neq(after, before, sizeof(after));
	cr_assert_eq(n_calls, 4);
	cr_assert_eq(calls[2].level, 1);
	cr_assert_eq(calls[3].level, 0);
}

/* A restored machine: RAM holds the snapshot's ID and tables; nothing is rebuilt. */
Test(platform, change_on_a_restored_machine_logs_both_ids_with_v)
{
	static const uint8_t saved[PLATFORM_VMGENID_SIZE] = { 0x00, 0x11, 0x22, 0x33, 0x44, 0x55,
		                                              0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb,
		                                              0xcc, 0xdd, 0xee, 0xff };
	uint8_t id[PLATFORM_VMGENID_SIZE];
	char hex[33], want[128];

	memcpy(ram(PLATFORM_VMGENID_GPA, 16), saved, 16);
	m.be = &fake_be;
	m.vm = (struct smol_vm *)&fake_vm;
	log_level = SMOL_LOG_DEBUG;
	cr_assert_eq(platform_vmgenid_change(&m), 0);
	cr_assert_eq(platform_vmgenid_read(&m, id), 0);
	cr_assert_arr_neq(id, saved, sizeof(id));
	cr_assert_eq(n_calls, 2);
	platform_vmgenid_format(id, hex);
	snprintf(want, sizeof(want),
	         "VM generation ID 00112233445566778899aabbccddeeff -> %s (notified on GSI 23)",
	         hex);
	const char *e = stderr_text();
	cr_assert(strstr(e, want), "expected \"%s\" in: %s", want, e);
}

Test(platform, without_a_vm_only_the_level_is_kept)
{
	cr_assert_eq(platform_build_tables(&m, NULL), 0);
	cr_assert_eq(platform_vmgenid_change(&m), 0);
	cr_assert_eq(n_calls, 0);
	cr_assert_eq(m.irq_level[PLATFORM_GED_GSI], 0);
}

Test(platform, acpi_off_has_no_id_to_change)
{
	teardown();
	machine_with("[machine]\nacpi = off\n");
	m.be = &fake_be;
	m.vm = (struct smol_vm *)&fake_vm;
	memset(ram(PLATFORM_VMGENID_GPA, 16), 0x5A, 16);
	cr_assert_eq(platform_build_tables(&m, NULL), 0);
	uint8_t id[PLATFORM_VMGENID_SIZE];
	cr_assert_eq(platform_vmgenid_read(&m, id), -ENODEV);
	cr_assert_eq(platform_vmgenid_change(&m), 0);
	cr_assert_eq(n_calls, 0);
	const uint8_t *p = ram(PLATFORM_VMGENID_GPA, 16);
	for (int i = 0; i < 16; i++)
		cr_assert_eq(p[i], 0x5A, "byte %d written", i);
}

Test(platform, a_backend_error_is_reported)
{
	cr_assert_eq(platform_build_tables(&m, NULL), 0);
	m.be = &fake_be;
	m.vm = (struct smol_vm *)&fake_vm;
	irq_error = -EIO;
	cr_assert_eq(platform_vmgenid_change(&m), -EIO);
	cr_assert_eq(n_calls, 2, "the line is still lowered");
	const char *e = stderr_text();
	cr_assert(strstr(e, "cannot notify the guest of its new VM generation ID: GSI 23: "
	                    "Input/output error"),
	          "%s", e);
}

Test(platform, no_ram_is_an_error)
{
	mem_free(&m.mem);
	uint8_t id[PLATFORM_VMGENID_SIZE];
	cr_assert_eq(platform_vmgenid_read(&m, id), -EFAULT);
	cr_assert_eq(platform_vmgenid_change(&m), -EFAULT);
	cr_assert(strstr(stderr_text(),
	                 "cannot change the VM generation ID: 0xfe000 is not guest RAM"));
}

Test(platform, format)
{
	static const uint8_t id[PLATFORM_VMGENID_SIZE] = { 0xde, 0xad, 0xbe, 0xef, 0, 1, 2,  3,
		                                           4,    5,    6,    7,    8, 9, 10, 0xff };
	char hex[33];
	platform_vmgenid_format(id, hex);
	cr_assert_str_eq(hex, "deadbeef000102030405060708090aff");
}

Test(platform, layout_lists_vgen_and_ged0, .init = cr_redirect_stdout)
{
	machine_with("[machine]\n");
	platform_print_layout(&m);
	teardown();
	machine_with("[machine]\nacpi = off\n");
	platform_print_layout(&m); /* nothing */
	fflush(stdout);
	char out[1024];
	size_t n = fread(out, 1, sizeof(out) - 1, cr_get_redirected_stdout());
	out[n] = 0;
	cr_assert_str_eq(out,
	                 "  SMOL0001  _CID VM_GEN_COUNTER  ID 0xfe000-0xfe00f (e820-reserved)  "
	                 "VGEN: the VM generation ID\n"
	                 "  ACPI0013  _UID 0  irq 23 (edge, active high)  GED0: notifies VGEN "
	                 "of a new ID\n");
}
