/* Unit tests of the bzImage loader (core/arch/x86/loader-bzimage.c) and the zero page boot_prepare
 * writes for it, on synthetic images whose setup header is filled field by field here (offsets from
 * Documentation/arch/x86/boot.rst). No VM is needed: loading only touches RAM. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boot-fixture.h"

#define RAM (64ull << 20)
#define MIB (1ull << 20)

/* struct setup_header, file offsets */
#define H_SETUP_SECTS 0x1f1
#define H_BOOT_FLAG 0x1fe
#define H_JUMP 0x200
#define H_HEADER 0x202
#define H_VERSION 0x206
#define H_TYPE_OF_LOADER 0x210
#define H_LOADFLAGS 0x211
#define H_INITRD_ADDR_MAX 0x22c
#define H_KERNEL_ALIGNMENT 0x230
#define H_RELOCATABLE 0x234
#define H_XLOADFLAGS 0x236
#define H_CMDLINE_SIZE 0x238
#define H_PREF_ADDRESS 0x258
#define H_INIT_SIZE 0x260
#define H_END 0x26c /* 0x202 + 0x6a, the jump byte of protocol 2.15 kernels */

static uint8_t *img;
static size_t img_size;
static struct boot_file file;

/* A valid 2.15 bzImage: 4 setup sectors (setup_sects 4), a 64 KiB protected-mode kernel with
 * init_size 4 MiB, relocatable, 2 MiB alignment, pref_address 16 MiB. Every other header byte
 * holds a pattern so the zero-page copy can be checked byte for byte. */
static void make_image(unsigned setup_sects, size_t kernel_size)
{
	free(img);
	img_size = ((setup_sects ? setup_sects : 4) + 1) * 512 + kernel_size;
	img = calloc(1, img_size);
	cr_assert_not_null(img);
	for (unsigned i = H_SETUP_SECTS; i < H_END; i++)
		img[i] = (uint8_t)(i * 7 + 3);
	img[H_SETUP_SECTS] = (uint8_t)setup_sects;
	t_put16(img + H_BOOT_FLAG, 0xAA55);
	img[H_JUMP] = 0xeb;
	img[H_JUMP + 1] = H_END - 0x202;
	memcpy(img + H_HEADER, "HdrS", 4);
	t_put16(img + H_VERSION, 0x020f);
	img[H_TYPE_OF_LOADER] = 0;
	img[H_LOADFLAGS] = 0x01; /* LOADED_HIGH */
	t_put32(img + H_INITRD_ADDR_MAX, 0x7fffffff);
	t_put32(img + H_KERNEL_ALIGNMENT, 0x200000);
	img[H_RELOCATABLE] = 1;
	t_put16(img + H_XLOADFLAGS, 0x0003); /* XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G */
	t_put32(img + H_CMDLINE_SIZE, 2047);
	t_put64(img + H_PREF_ADDRESS, 16 * MIB);
	t_put32(img + H_INIT_SIZE, 4 * MIB);
	size_t pm = img_size - kernel_size;
	for (size_t i = 0; i < kernel_size; i++)
		img[pm + i] = (uint8_t)(i ^ (i >> 8));
	file = (struct boot_file){ .path = "k.bz", .data = img, .size = img_size };
}

static void setup(void)
{
	cr_redirect_stderr();
	tm_setup(RAM);
	make_image(4, 0x10000);
}

static void teardown(void)
{
	tm_teardown();
	free(img);
	img = NULL;
}

TestSuite(bzimage, .init = setup, .fini = teardown);

static struct boot_result res;

static int load(void)
{
	memset(&res, 0, sizeof(res));
	return boot_loader_bzimage.load(&tm, &file, &res);
}

#define assert_refused(needle)                                                                     \
	do {                                                                                       \
		cr_assert_eq(load(), -EINVAL);                                                     \
		const char *e_ = tm_stderr();                                                      \
		cr_assert(strstr(e_, "k.bz: ") && strstr(e_, (needle)), "expected \"%s\" in: %s",  \
		          (needle), e_);                                                           \
	} while (0)

/* boot_prepare on the image (written to a file), with an optional initrd. */
static int prepare(struct smol_x86_boot *regs, const char *cmdline, size_t initrd_size)
{
	tm.kernel_path = tm_write_file(img, img_size);
	tm.cmdline = cmdline;
	tm.initrd_path = NULL;
	if (initrd_size) {
		uint8_t *rd = malloc(initrd_size);
		for (size_t i = 0; i < initrd_size; i++)
			rd[i] = (uint8_t)(i * 13 + 1);
		tm.initrd_path = tm_write_file(rd, initrd_size);
		free(rd);
	}
	return boot_prepare(&tm, regs);
}

Test(bzimage, probe_by_content)
{
	cr_assert(boot_loader_bzimage.probe(&file));
	cr_assert_not(boot_loader_elf64.probe(&file));
	img[H_HEADER] = 'X';
	cr_assert_not(boot_loader_bzimage.probe(&file));
	make_image(4, 0x10000);
	t_put16(img + H_BOOT_FLAG, 0);
	cr_assert_not(boot_loader_bzimage.probe(&file));
	make_image(4, 0x10000); /* the magic is cut off */
	file.size = 0x205;
	cr_assert_not(boot_loader_bzimage.probe(&file));
}

Test(bzimage, loads_at_pref_address)
{
	cr_assert_eq(load(), 0);
	cr_assert_eq(res.image_lo, 16 * MIB);
	cr_assert_eq(res.image_hi, 20 * MIB, "image_hi is load + init_size");
	cr_assert_eq(res.entry, 16 * MIB + 0x200);
	cr_assert_eq(res.entry_kind, BOOT_ENTRY_64);
	cr_assert_str_eq(res.format, "bzImage");
	cr_assert_eq(memcmp(tm_ram(16 * MIB, 0x10000), img + 5 * 512, 0x10000), 0);
	cr_assert_eq(res.setup_len, H_END - 0x1f1);
	cr_assert_eq(memcmp(res.setup, img + 0x1f1, res.setup_len), 0);
	cr_assert_eq(res.cmdline_max, 2047);
	cr_assert_eq(res.initrd_end, 0x80000000ull);
}

Test(bzimage, setup_sects_zero_means_four)
{
	make_image(0, 0x1000);
	cr_assert_eq(load(), 0);
	cr_assert_eq(memcmp(tm_ram(16 * MIB, 0x1000), img + 5 * 512, 0x1000), 0);
}

Test(bzimage, relocated_when_pref_address_does_not_fit)
{
	/* 56 MiB + 16 MiB runs past 64 MiB: the first 32 MiB boundary at or above 16 MiB */
	t_put64(img + H_PREF_ADDRESS, 56 * MIB);
	t_put32(img + H_INIT_SIZE, 16 * MIB);
	t_put32(img + H_KERNEL_ALIGNMENT, 32 * MIB);
	cr_assert_eq(load(), 0);
	cr_assert_eq(res.image_lo, 32 * MIB);
	cr_assert_eq(res.entry, 32 * MIB + 0x200);
	cr_assert_eq(memcmp(tm_ram(32 * MIB, 0x10000), img + 5 * 512, 0x10000), 0);
}

Test(bzimage, relocated_when_pref_address_is_unaligned_or_low)
{
	t_put64(img + H_PREF_ADDRESS, 17 * MIB); /* not a 2 MiB boundary */
	cr_assert_eq(load(), 0);
	cr_assert_eq(res.image_lo, 16 * MIB);
	t_put64(img + H_PREF_ADDRESS, 0x7000); /* the zero page */
	cr_assert_eq(load(), 0);
	cr_assert_eq(res.image_lo, 16 * MIB);
}

Test(bzimage, non_power_of_two_alignment)
{
	t_put64(img + H_PREF_ADDRESS, 60 * MIB);
	t_put32(img + H_KERNEL_ALIGNMENT, 0x300000);
	assert_refused("kernel_alignment 0x300000 is not a power of two");
	make_image(4, 0x10000);
	t_put32(img + H_KERNEL_ALIGNMENT, 0);
	assert_refused("kernel_alignment 0x0 is not a power of two");
}

Test(bzimage, not_relocatable_and_does_not_fit)
{
	img[H_RELOCATABLE] = 0;
	t_put64(img + H_PREF_ADDRESS, 62 * MIB);
	assert_refused("kernel needs init_size 0x400000 bytes at 0x3e00000 (pref_address, not "
	               "relocatable): does not fit in 64 MiB of RAM");
	make_image(4, 0x10000);
	img[H_RELOCATABLE] = 0;
	t_put64(img + H_PREF_ADDRESS, 0x10000);
	assert_refused("pref_address 0x10000 lies in the boot area below 1 MiB");
}

Test(bzimage, not_relocatable_loads_at_pref_address)
{
	img[H_RELOCATABLE] = 0;
	t_put64(img + H_PREF_ADDRESS, 0x1100000); /* unaligned does not matter without relocation */
	cr_assert_eq(load(), 0);
	cr_assert_eq(res.image_lo, 0x1100000);
}

Test(bzimage, init_size_too_big_for_ram)
{
	t_put32(img + H_INIT_SIZE, 0xf0000000u);
	assert_refused("kernel needs init_size 0xf0000000 bytes at 0x1000000 (relocated): does not "
	               "fit in 64 MiB of RAM");
	make_image(4, 0x10000);
	t_put32(img + H_INIT_SIZE, 48 * MIB + 1); /* one byte too many at 16 MiB */
	assert_refused("does not fit in 64 MiB of RAM");
	make_image(4, 0x10000);
	t_put32(img + H_INIT_SIZE, 48 * MIB); /* exactly fits */
	cr_assert_eq(load(), 0);
}

Test(bzimage, init_size_below_file_size_uses_file_size)
{
	t_put32(img + H_INIT_SIZE, 0x100);
	cr_assert_eq(load(), 0);
	cr_assert_eq(res.image_hi, 16 * MIB + 0x10000);
}

Test(bzimage, protocol_too_old)
{
	t_put16(img + H_VERSION, 0x0209);
	assert_refused("boot protocol 2.09 is too old (need 2.10)");
	t_put16(img + H_VERSION, 0x0100);
	assert_refused("boot protocol 1.00 is too old (need 2.10)");
}

Test(bzimage, not_64_bit)
{
	t_put16(img + H_XLOADFLAGS, 0x0002);
	assert_refused("not a 64-bit kernel (xloadflags 0x0002 lacks XLF_KERNEL_64)");
}

Test(bzimage, not_loaded_high)
{
	img[H_LOADFLAGS] = 0x80;
	assert_refused("loadflags 0x80 lacks LOADED_HIGH");
}

Test(bzimage, setup_sects_past_the_end)
{
	make_image(4, 0x10000);
	img[H_SETUP_SECTS] = 255; /* 128 KiB of setup in a 66.5 KiB file */
	assert_refused("setup_sects 255 puts the protected-mode kernel at 0x20000, past the end of "
	               "the file");
	make_image(4, 0x10000);
	file.size = 5 * 512; /* setup only, no kernel */
	assert_refused("past the end of the file (2560 bytes)");
}

Test(bzimage, truncated_headers)
{
	/* the probe passes on the magic, the rest of the header is gone */
	file.size = 0x206;
	assert_refused("not a kernel");
	for (size_t n = 0x208; n < 0xa00; n += 0x55) {
		make_image(4, 0x10000);
		file.size = n;
		assert_refused("past the end of the file");
	}
}

Test(bzimage, short_header_length)
{
	img[H_JUMP + 1] = 0x10; /* the header would end at 0x212, before init_size */
	assert_refused("setup header ends at 0x212 (byte 0x201), before init_size");
	make_image(4, 0x10000);
	img[H_JUMP + 1] = 0xff; /* longer than a zero page holds: clamped at 0x290 */
	cr_assert_eq(load(), 0);
	cr_assert_eq(res.setup_len, 0x290 - 0x1f1);
}

/* ---- the zero page boot_prepare writes ------------------------------------------------ */

Test(bzimage, zero_page)
{
	struct smol_x86_boot regs;
	t_put32(img + H_INITRD_ADDR_MAX, 48 * MIB - 1); /* binding: below the top of RAM */
	tm.acpi_rsdp_gpa = 0xE0000;
	cr_assert_eq(prepare(&regs, "console=ttyS0 root=/dev/vda", 0x5123), 0, "%s", tm_stderr());

	const uint8_t *zp = tm_ram(BOOT_ZERO_PAGE, 0x1000);
	/* the header byte for byte, except the fields a loader writes */
	for (unsigned off = 0x1f1; off < H_END; off++) {
		int written = off == H_TYPE_OF_LOADER || (off >= 0x218 && off < 0x220) ||
		              (off >= 0x228 && off < 0x22c) || (off >= 0x250 && off < 0x258);
		if (!written)
			cr_assert_eq(zp[off], img[off], "zero page byte 0x%x", off);
	}
	for (unsigned off = H_END; off < 0x290; off++)
		cr_assert_eq(zp[off], 0, "past the header: byte 0x%x", off);
	cr_assert_eq(zp[T_ZP_TYPE_OF_LOADER], 0xff);
	cr_assert_eq(t_get64(zp + T_ZP_SETUP_DATA), 0, "no setup_data list");
	cr_assert_eq(t_get32(zp + T_ZP_CMD_LINE_PTR), BOOT_CMDLINE);
	cr_assert_eq(t_get32(zp + T_ZP_EXT_CMD_LINE_PTR), 0);
	cr_assert_str_eq((const char *)tm_ram(BOOT_CMDLINE, 28), "console=ttyS0 root=/dev/vda");
	cr_assert_eq(t_get32(zp + T_ZP_CMDLINE_SIZE), 2047, "the kernel's own cmdline_size");
	cr_assert_eq(t_get64(zp + T_ZP_ACPI_RSDP), 0xE0000);
	tm_assert_memory_map(NULL);

	/* the initrd: page-aligned, below initrd_addr_max, above load + init_size */
	uint64_t rd = t_get32(zp + T_ZP_RAMDISK_IMAGE), rd_size = t_get32(zp + T_ZP_RAMDISK_SIZE);
	cr_assert_eq(t_get32(zp + T_ZP_EXT_RAMDISK_IMAGE), 0);
	cr_assert_eq(t_get32(zp + T_ZP_EXT_RAMDISK_SIZE), 0);
	cr_assert_eq(rd_size, 0x5123);
	cr_assert_eq(rd & 0xfff, 0, "initrd at 0x%llx not page-aligned", (unsigned long long)rd);
	cr_assert_leq(rd + rd_size - 1, 48 * MIB - 1, "initrd ends above initrd_addr_max");
	cr_assert_geq(rd, 20 * MIB, "initrd overlaps the kernel's init_size");
	cr_assert_gt(rd + 0x1000, 48 * MIB - rd_size, "initrd as high as it can go");
	const uint8_t *p = tm_ram(rd, rd_size);
	for (size_t i = 0; i < rd_size; i++)
		cr_assert_eq(p[i], (uint8_t)(i * 13 + 1), "initrd byte %zu", i);

	/* the 64-bit entry */
	cr_assert_eq(regs.rip, 16 * MIB + 0x200);
	cr_assert_eq(regs.rsi, BOOT_ZERO_PAGE);
	cr_assert_eq(regs.long_mode, 1);
	cr_assert_eq(regs.cs_selector, 0x10);
	cr_assert_eq(regs.ds_selector, 0x18);
	cr_assert_eq(regs.cr3, BOOT_PML4);
	cr_assert_eq(regs.efer & 0x500, 0x500);
}

Test(bzimage, zero_page_without_initrd_or_acpi)
{
	struct smol_x86_boot regs;
	cr_assert_eq(prepare(&regs, NULL, 0), 0, "%s", tm_stderr());
	const uint8_t *zp = tm_ram(BOOT_ZERO_PAGE, 0x1000);
	cr_assert_eq(t_get32(zp + T_ZP_RAMDISK_IMAGE), 0);
	cr_assert_eq(t_get32(zp + T_ZP_RAMDISK_SIZE), 0);
	cr_assert_eq(t_get64(zp + T_ZP_ACPI_RSDP), 0);
	cr_assert_eq(*tm_ram(BOOT_CMDLINE, 1), 0, "an empty command line");
}

Test(bzimage, cmdline_longer_than_cmdline_size)
{
	struct smol_x86_boot regs;
	char line[2049];
	t_put32(img + H_CMDLINE_SIZE, 255);
	memset(line, 'a', 256);
	line[256] = 0;
	cr_assert_eq(prepare(&regs, line, 0), -EINVAL);
	const char *e = tm_stderr();
	assert_has(e, "t.ini: [boot] cmdline is 256 bytes, longer than the 255 bytes the kernel");
	assert_has(e, "(its cmdline_size)");
	line[255] = 0; /* exactly cmdline_size fits */
	cr_assert_eq(prepare(&regs, line, 0), 0, "%s", tm_stderr());
}

Test(bzimage, initrd_too_large)
{
	struct smol_x86_boot regs;
	t_put32(img + H_INITRD_ADDR_MAX, 24 * MIB - 1); /* 4 MiB between init_size's end and it */
	cr_assert_eq(prepare(&regs, NULL, 4 * MIB + 1), -EINVAL);
	const char *e = tm_stderr();
	assert_has(e, "initrd too large: 4194305 bytes do not fit between the kernel's end "
	              "(0x1400000) and the kernel's initrd_addr_max (0x17fffff)");
	cr_assert_eq(prepare(&regs, NULL, 4 * MIB), 0, "%s", tm_stderr());
}

Test(bzimage, initrd_below_top_of_ram)
{
	struct smol_x86_boot regs;
	cr_assert_eq(prepare(&regs, NULL, 48 * MIB), -EINVAL); /* 44 MiB free above 20 MiB */
	assert_has(tm_stderr(), "and the last byte of low RAM (0x3ffffff)");
}
