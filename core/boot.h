/* boot.h: loading a payload into guest RAM and choosing the boot CPU's entry state.
 *
 * Loaders are picked by file content (never by name): each has a probe and a load. The ELF64
 * loader is the first; the Linux bzImage and PVH loaders slot into the same table. */
#ifndef SMOLVM_BOOT_H
#define SMOLVM_BOOT_H

#include <stddef.h>
#include <stdint.h>

#include <smolvm/sdk.h>

struct machine;

/* Guest-physical layout of the x86 boot area (the entry contract in README.md). */
#define BOOT_GDT 0x1000ull /**< flat GDT: 0x10 code64, 0x18 data */
#define BOOT_ZERO_PAGE 0x7000ull /**< struct boot_params, rsi at entry */
#define BOOT_PML4 0x9000ull /**< identity map of the first 4 GiB, 2 MiB pages */
#define BOOT_PDPT 0xA000ull
#define BOOT_PD 0xB000ull /**< four page directories, 0xB000-0xEFFF */
#define BOOT_CMDLINE 0x20000ull /**< NUL-terminated command line */
#define BOOT_CMDLINE_MAX 0x10000ull
#define BOOT_STACK_TOP 0x80000ull /**< rsp at entry */
#define BOOT_PAYLOAD_MIN 0x100000ull /**< payloads load at or above 1 MiB */

#define BOOT_CS 0x10
#define BOOT_DS 0x18

/** A file read into memory. */
struct boot_file {
	const char *path;
	uint8_t *data;
	size_t size;
};

/** What a loader produced. */
struct boot_result {
	uint64_t entry; /**< guest-physical entry */
	uint64_t image_lo; /**< lowest byte loaded */
	uint64_t image_hi; /**< one past the highest byte loaded */
	const char *format; /**< "ELF64" ... */
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

/**
 * Loads [boot] kernel (and initrd), writes the boot area (GDT, page tables, zero page with
 * e820 and command line) and fills @p regs with the boot CPU's entry state.
 * @return 0, or -EINVAL after reporting "file: what is wrong"
 */
int boot_prepare(struct machine *m, struct smol_x86_boot *regs);

/** Reads a whole file (up to 2 GiB). 0 or -errno; reports nothing. */
int boot_read_file(const char *path, struct boot_file *f);
void boot_file_free(struct boot_file *f);

/** Appends the machine's e820 map to a zero page; returns the entry count. */
int boot_write_e820(struct machine *m, uint8_t *zero_page);

#endif
