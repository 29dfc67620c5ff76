/* The arm64 Linux `Image` (Documentation/arch/arm64/booting.rst): its 64-byte header, and where
 * the kernel, its device tree and its initrd go in guest RAM. Pure functions on bytes and
 * numbers: the caller reads the file and copies.
 *
 *   0x00 code0, code1 (u32 each; "MZ" at 0 when the kernel carries an EFI stub)
 *   0x08 text_offset (u64 LE)    0x10 image_size (u64 LE)    0x18 flags (u64 LE)
 *   0x20 res2, res3, res4        0x38 magic "ARM\x64" (0x644d5241 LE)    0x3c res5 (PE offset)
 */
#ifndef SMOLVM_ARCH_ARM64_IMAGE_H
#define SMOLVM_ARCH_ARM64_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define A64_IMAGE_HEADER_SIZE 64u
#define A64_IMAGE_MAGIC 0x644d5241u /* "ARM\x64" at offset 0x38 */
#define A64_IMAGE_MAGIC_OFFSET 0x38u
/* Kernels before v3.17 leave image_size 0: their text_offset is 0x80000 (booting.rst). */
#define A64_IMAGE_OLD_TEXT_OFFSET 0x80000ull
#define A64_KERNEL_ALIGN (2ull << 20) /* the Image's base: 2 MiB aligned */
#define A64_DTB_MAX (2ull << 20) /* a DTB is at most 2 MiB and in one 2 MiB block */
#define A64_INITRD_ALIGN 0x10000ull /* 64 KiB: whole pages for any page size */

enum a64_page_size {
	A64_PAGE_UNSPECIFIED = 0,
	A64_PAGE_4K = 1,
	A64_PAGE_16K = 2,
	A64_PAGE_64K = 3,
};

struct a64_image {
	uint64_t text_offset; /**< the header's, or 0x80000 for an old kernel (image_size 0) */
	uint64_t image_size; /**< the header's (0 for a kernel before v3.17) */
	/** bytes the kernel occupies from its load address: image_size, or the file's length
	 * when that is larger (an old kernel: its BSS size is not known, see a64_image_place) */
	uint64_t footprint;
	uint64_t flags; /**< the header's flags (0 for an old kernel, where they are undefined) */
	enum a64_page_size page_size; /**< flags bits 1-2 */
	bool place_anywhere; /**< flags bit 3: the 2 MiB base may be anywhere in RAM */
	bool efi_stub; /**< "MZ" at offset 0: the kernel has an EFI stub (ignored here) */
	size_t file_size; /**< the bytes to copy to the load address */
};

/**
 * Reads the header of the Image in @p data (@p len bytes: the whole file) into @p out.
 * Refuses, with -EINVAL and a message in @p err: a file shorter than the header, a gzip file
 * (a compressed Image), an EFI zboot image, a bad magic (naming what was found: an ELF
 * vmlinux, an x86 bzImage, or the bytes), a big-endian kernel (flags bit 0), a text_offset
 * that leaves the entry point unaligned (not a multiple of 4), a non-zero image_size smaller
 * than the header. Whether it fits in RAM is a64_image_place's question.
 */
int a64_image_parse(const uint8_t *data, size_t len, struct a64_image *out, char *err,
                    size_t errlen);

struct a64_placement {
	uint64_t kernel_base; /**< the 2 MiB aligned base */
	uint64_t kernel_load; /**< kernel_base + text_offset: file byte 0 goes here; the entry */
	uint64_t kernel_end; /**< kernel_load + footprint */
	uint64_t dtb; /**< where the DTB goes (8-byte, indeed 2 MiB aligned) */
	uint64_t initrd, initrd_end; /**< [initrd, initrd_end); both 0 without an initrd */
};

/**
 * Places @p img in RAM [@p ram_base, @p ram_base + @p ram_size): the kernel at the lowest
 * 2 MiB aligned base + text_offset (booting.rst: as low as possible unless flags bit 3, and
 * low is as good as anywhere), the DTB (@p dtb_size bytes, 1..2 MiB: pass the size reserved
 * for it, which may be larger than the blob) at the start of the highest 2 MiB block that
 * holds it, and the initrd (@p initrd_size bytes, 0 for none) right below the DTB, 64 KiB
 * aligned. The DTB and initrd stay inside the 1 GiB aligned 32 GiB window that starts at the
 * kernel's base (booting.rst's rule for the initrd). Returns 0, or -EINVAL with a message
 * saying which does not fit and the numbers.
 */
int a64_image_place(const struct a64_image *img, uint64_t ram_base, uint64_t ram_size,
                    uint64_t initrd_size, uint64_t dtb_size, struct a64_placement *out, char *err,
                    size_t errlen);

#endif
