/*
 * fuzz-arm64-image: the arm64 Image header parser and the placement of kernel, DTB and initrd
 * (core/arch/arm64/image.c).
 *
 * Input: 5 bytes of setup, then the Image file.
 *   byte 0: bits 0-2 the RAM (one of eight layouts below: aligned or not, tiny, past the
 *           32 GiB initrd window, ending at the top of the address space), bit 3 an initrd,
 *           bits 4-7 the DTB's size (one of sixteen, 0 and 2 MiB + 1 among them)
 *   bytes 1-4: the initrd's size, little-endian, in 4 KiB units, plus one byte (with bit 3)
 *
 * Checked: no sanitizer report; a refusal always says why; an accepted header obeys its own
 * rules; an accepted placement obeys booting.rst's (2 MiB aligned base, everything inside
 * RAM and apart, the DTB 8-byte aligned within one 2 MiB block, the initrd in the kernel's
 * 32 GiB window).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/arm64/image.h"
#include "fuzz-input.h"

#define MIB (1ull << 20)
#define GIB (1ull << 30)

static const struct {
	uint64_t base, size;
} rams[8] = {
	{ 0x40000000, 64 * MIB },
	{ 0x40000000, 512 * MIB },
	{ 0x40100000, 48 * MIB + 0x1000 },
	{ 0, 8 * MIB },
	{ 0x80000000, 64 * GIB },
	{ 0xffffffffff000000ull, 16 * MIB - 0x1000 },
	{ 0x40000001, MIB },
	{ 0x40000000, 2 * GIB },
};

static const uint64_t dtb_sizes[16] = { 1,        8,           0x1000,      0x10000,
	                                0x100000, 2 * MIB,     2 * MIB + 1, 0,
	                                0x1008,   2 * MIB - 8, 0x10003,     0x12345,
	                                4,        0x800,       2 * MIB - 1, 0x30000 };

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz-arm64-image: %s fails (%s:%d)\n", #cond, __FILE__,   \
			        __LINE__);                                                         \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

static void check_placement(const struct a64_image *img, uint64_t base, uint64_t size,
                            uint64_t initrd, uint64_t dtb, const struct a64_placement *p)
{
	uint64_t end = base + size;

	CHECK(p->kernel_base % (2 * MIB) == 0);
	CHECK(p->kernel_base >= base);
	CHECK(p->kernel_load == p->kernel_base + img->text_offset &&
	      p->kernel_load >= p->kernel_base);
	CHECK(p->kernel_end == p->kernel_load + img->footprint && p->kernel_end >= p->kernel_load);
	CHECK(p->kernel_end <= end);
	CHECK(p->dtb % 8 == 0 && p->dtb >= p->kernel_end);
	CHECK(dtb >= 1 && dtb <= A64_DTB_MAX);
	CHECK(p->dtb + dtb <= end && p->dtb + dtb > p->dtb);
	CHECK(p->dtb / (2 * MIB) == (p->dtb + dtb - 1) / (2 * MIB));
	if (initrd) {
		CHECK(p->initrd_end - p->initrd == initrd && p->initrd_end > p->initrd);
		CHECK(p->initrd >= p->kernel_end && p->initrd_end <= p->dtb);
		CHECK(p->initrd % A64_INITRD_ALIGN == 0);
		/* the window, unless it runs past the end of the address space */
		uint64_t window = p->kernel_base & ~(GIB - 1);
		CHECK(window + 32 * GIB < window || p->initrd_end <= window + 32 * GIB);
	} else {
		CHECK(p->initrd == 0 && p->initrd_end == 0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };
	uint8_t setup = in_u8(&in);
	uint64_t units = in_le(&in, 4);
	uint64_t initrd = (setup & 8) ? units * 4096 + 1 : 0;
	uint64_t dtb = dtb_sizes[setup >> 4];
	uint64_t ram_base = rams[setup & 7].base, ram_size = rams[setup & 7].size;
	struct a64_image img;
	struct a64_placement p;
	char err[512];

	err[0] = 0;
	if (a64_image_parse(in.p, in.n, &img, err, sizeof(err)) < 0) {
		CHECK(err[0]);
		return 0;
	}
	CHECK(in.n >= A64_IMAGE_HEADER_SIZE);
	CHECK(img.file_size == in.n);
	CHECK(img.text_offset % 4 == 0);
	CHECK((img.flags & 1) == 0);
	CHECK(img.footprint >= img.file_size && img.footprint >= img.image_size);
	CHECK(img.image_size != 0 || img.text_offset == A64_IMAGE_OLD_TEXT_OFFSET);
	CHECK((unsigned)img.page_size <= 3);

	err[0] = 0;
	if (a64_image_place(&img, ram_base, ram_size, initrd, dtb, &p, err, sizeof(err)) < 0) {
		CHECK(err[0]);
		return 0;
	}
	check_placement(&img, ram_base, ram_size, initrd, dtb, &p);
	return 0;
}
