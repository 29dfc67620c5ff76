/* boot.h: loading a payload into guest RAM and choosing the boot CPU's entry state.
 *
 * Loaders are picked by file content (never by name): each has a probe and a load. ELF64
 * executables enter in 64-bit mode with a zero page, or through PVH (32-bit, hvm_start_info)
 * when they carry a XEN_ELFNOTE_PHYS32_ENTRY note; Linux bzImages enter at their 64-bit entry
 * with their setup header copied into the zero page. */
#ifndef SMOLVM_BOOT_H
#define SMOLVM_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include <smolvm/sdk.h>

#include "bootfile.h"

struct machine;

/* Guest-physical layout of the x86 boot area (the entry contract in README.md). */
#define BOOT_GDT 0x1000ull /**< flat GDT: 0x08 code32, 0x10 code64, 0x18 data */
#define BOOT_PVH_START_INFO 0x5000ull /**< struct hvm_start_info (56 bytes), ebx at PVH entry */
#define BOOT_PVH_MODLIST 0x5040ull /**< one struct hvm_modlist_entry (32 bytes): the initrd */
#define BOOT_PVH_MEMMAP 0x6000ull /**< hvm_memmap_table_entry[BOOT_MEMMAP_MAX], 0x6000-0x6BFF */
#define BOOT_ZERO_PAGE 0x7000ull /**< struct boot_params, rsi at the 64-bit entry */
#define BOOT_PML4 0x9000ull /**< identity map of the first 4 GiB, 2 MiB pages */
#define BOOT_PDPT 0xA000ull
#define BOOT_PD 0xB000ull /**< four page directories, 0xB000-0xEFFF */
#define BOOT_CMDLINE 0x20000ull /**< NUL-terminated command line */
#define BOOT_CMDLINE_MAX 0x10000ull
#define BOOT_STACK_TOP 0x80000ull /**< rsp at entry */
#define BOOT_PAYLOAD_MIN 0x100000ull /**< payloads load at or above 1 MiB */

#define BOOT_CS32 0x08 /**< flat 32-bit code: cs at the PVH entry */
#define BOOT_CS 0x10 /**< 64-bit code: cs at the 64-bit entry */
#define BOOT_DS 0x18 /**< flat data, 4 GiB */

#define BOOT_MEMMAP_MAX 128 /**< e820 entries in a zero page, memmap entries for PVH */

/* Linux struct setup_header: at 0x1f1 in a bzImage and in the zero page (boot.rst). It ends at
 * 0x202 + the byte at 0x201, and never beyond 0x290 (edd_mbr_sig_buffer in the zero page). */
#define BOOT_SETUP_HDR 0x1f1
#define BOOT_SETUP_HDR_MAX (0x290 - BOOT_SETUP_HDR)

/** How the boot CPU enters the payload. */
enum boot_entry {
	BOOT_ENTRY_64 = 0, /**< 64-bit long mode, paging on, zero page in rsi */
	BOOT_ENTRY_PVH, /**< 32-bit protected mode, paging off, hvm_start_info in ebx */
};

/**
 * What a loader produced. boot_prepare sets the defaults (64-bit entry, no setup header,
 * cmdline_max BOOT_CMDLINE_MAX - 1, initrd_end UINT64_MAX) before calling a loader.
 */
struct boot_result {
	uint64_t entry; /**< guest-physical entry */
	uint64_t image_lo; /**< lowest byte loaded */
	uint64_t image_hi; /**< one past the highest byte the kernel uses (an initrd goes above) */
	const char *format; /**< "ELF64", "ELF64 (PVH)", "bzImage" */
	enum boot_entry entry_kind;
	/** Linux setup header bytes for zero page 0x1f1 (bzImage; setup_len 0 for others). */
	uint8_t setup[BOOT_SETUP_HDR_MAX];
	uint32_t setup_len;
	uint32_t cmdline_max; /**< longest command line the kernel takes, without the NUL */
	uint64_t initrd_end; /**< an initrd must end at or below this (initrd_addr_max + 1) */
};

/** A payload format. */
struct boot_loader {
	const char *name;
	/** True when the file is of this format (only looks at bytes, never trusts them). */
	int (*probe)(const struct boot_file *f);
	/** Loads it into guest RAM; reports errors naming the file and the field. */
	int (*load)(struct machine *m, const struct boot_file *f, struct boot_result *out);
};

extern const struct boot_loader boot_loader_elf64;
extern const struct boot_loader boot_loader_bzimage;

/**
 * Loads [boot] kernel (and initrd), writes the boot area (GDT, page tables, zero page with
 * e820, command line and m->acpi_rsdp_gpa; for PVH also hvm_start_info with its memmap and
 * modlist) and fills @p regs with the boot CPU's entry state.
 * @return 0, or -EINVAL after reporting "file: what is wrong"
 */
int boot_prepare(struct machine *m, struct smol_x86_boot *regs);

/** Reports "FILE: message" about a kernel file a loader refuses; returns -EINVAL. */
int boot_fail(const struct boot_file *f, const char *fmt, ...) SMOL_PRINTF(2, 3);

/** One memory-map entry (e820 types: 1 RAM, 2 reserved). */
struct boot_mem_entry {
	uint64_t addr, size;
	uint32_t type;
};

/** The machine's memory map as the guest sees it (at most @p max entries); the count. */
int boot_memmap(const struct machine *m, struct boot_mem_entry *e, int max);

/** Writes the machine's e820 map into a zero page; returns the entry count. */
int boot_write_e820(const struct machine *m, uint8_t *zero_page);

#endif
