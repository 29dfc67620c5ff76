/* boot-fixture.h: what the boot tests share: a machine with RAM and nothing else (no VM), test
 * images written to temporary files for boot_prepare, the stderr a refusal printed, and the
 * boot-area structures decoded independently of core/arch/x86/boot.c (from boot.rst, zero-page.rst
 * and Xen's start_info.h). */
#ifndef SMOLVM_TEST_BOOT_FIXTURE_H
#define SMOLVM_TEST_BOOT_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "boot.h"
#include "layout.h"
#include "machine.h"

/* zero page (struct boot_params) offsets */
#define T_ZP_ACPI_RSDP 0x070
#define T_ZP_EXT_RAMDISK_IMAGE 0x0c0
#define T_ZP_EXT_RAMDISK_SIZE 0x0c4
#define T_ZP_EXT_CMD_LINE_PTR 0x0c8
#define T_ZP_E820_ENTRIES 0x1e8
#define T_ZP_TYPE_OF_LOADER 0x210
#define T_ZP_RAMDISK_IMAGE 0x218
#define T_ZP_RAMDISK_SIZE 0x21c
#define T_ZP_CMD_LINE_PTR 0x228
#define T_ZP_INITRD_ADDR_MAX 0x22c
#define T_ZP_CMDLINE_SIZE 0x238
#define T_ZP_SETUP_DATA 0x250
#define T_ZP_E820_TABLE 0x2d0

/* struct hvm_start_info (version 1) and its tables */
struct t_start_info {
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
	uint32_t memmap_entries, reserved;
};
struct t_modlist_entry {
	uint64_t paddr, size, cmdline_paddr, reserved;
};
struct t_memmap_entry {
	uint64_t addr, size;
	uint32_t type, reserved;
};
_Static_assert(sizeof(struct t_start_info) == 56, "hvm_start_info is 56 bytes");
_Static_assert(sizeof(struct t_modlist_entry) == 32, "hvm_modlist_entry is 32 bytes");
_Static_assert(sizeof(struct t_memmap_entry) == 24, "hvm_memmap_table_entry is 24 bytes");
#define T_PVH_MAGIC 0x336ec578u

/** The machine under test: cfg path "t.ini", RAM of @p ram bytes, no kernel, no cmdline. */
extern struct machine tm;
void tm_setup(uint64_t ram);
void tm_teardown(void);

/** Writes @p size bytes to a new temporary file; returns its path (freed by tm_teardown). */
char *tm_write_file(const void *data, size_t size);

/** What was printed to the (redirected) stderr so far. */
const char *tm_stderr(void);

uint16_t t_get16(const uint8_t *p);
uint32_t t_get32(const uint8_t *p);
uint64_t t_get64(const uint8_t *p);
void t_put16(uint8_t *p, uint16_t v);
void t_put32(uint8_t *p, uint32_t v);
void t_put64(uint8_t *p, uint64_t v);

/** Host pointer to guest RAM; the test fails when the range is not RAM. */
uint8_t *tm_ram(uint64_t gpa, uint64_t len);

/** Asserts that the zero page's e820 table and the PVH memmap (when @p si is not NULL) both
 * describe the machine's memory: RAM below 640 KiB, the legacy hole reserved, RAM from 1 MiB to
 * the top of low RAM, and RAM above 4 GiB. */
void tm_assert_memory_map(const struct t_start_info *si);

#define assert_has(hay, needle)                                                                    \
	cr_assert(strstr((hay), (needle)), "expected \"%s\" in: %s", (needle), (hay))

#endif
