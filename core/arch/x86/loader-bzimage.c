/* loader-bzimage.c: Linux bzImage, boot protocol 2.10 or later (Documentation/arch/x86/boot.rst),
 * entered at its 64-bit entry (load address + 0x200) with its setup header in the zero page.
 * Every header value is checked against the file and guest RAM before it is used. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "boot.h"
#include "machine.h"

/* struct setup_header fields, as file offsets (boot.rst "The real-mode kernel header") */
#define HDR_SETUP_SECTS 0x1f1 /* u8: 512-byte setup sectors after the boot sector; 0 means 4 */
#define HDR_BOOT_FLAG 0x1fe /* u16: 0xAA55 */
#define HDR_JUMP_LEN 0x201 /* u8: the header ends at 0x202 + this */
#define HDR_HEADER 0x202 /* u32: "HdrS" */
#define HDR_VERSION 0x206 /* u16: boot protocol, 0x020a is 2.10 */
#define HDR_LOADFLAGS 0x211 /* u8 */
#define HDR_INITRD_ADDR_MAX 0x22c /* u32: highest address an initrd byte may occupy */
#define HDR_KERNEL_ALIGNMENT 0x230 /* u32 */
#define HDR_RELOCATABLE 0x234 /* u8 */
#define HDR_XLOADFLAGS 0x236 /* u16 */
#define HDR_CMDLINE_SIZE 0x238 /* u32: longest command line, without the NUL */
#define HDR_PREF_ADDRESS 0x258 /* u64 */
#define HDR_INIT_SIZE 0x260 /* u32: bytes the kernel needs from its load address */
#define HDR_END_2_10 0x264 /* protocol 2.10's header ends after init_size */

#define HDR_MAGIC 0x53726448u /* "HdrS" */
#define BOOT_FLAG 0xAA55
#define LOADED_HIGH 0x01
#define XLF_KERNEL_64 0x0001
#define MIN_VERSION 0x020a
#define ENTRY_64 0x200 /* 64-bit entry: load address + 0x200 */
#define RELOC_BASE (16ull << 20) /* relocated kernels go at or above 16 MiB */

#define U(x) ((unsigned long long)(x))

static uint16_t get16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return v;
}
static uint32_t get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}
static uint64_t get64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

static int bz_probe(const struct boot_file *f)
{
	return f->size >= HDR_VERSION && get16(f->data + HDR_BOOT_FLAG) == BOOT_FLAG &&
	       get32(f->data + HDR_HEADER) == HDR_MAGIC;
}

/* Does [addr, addr + need) lie in low RAM at or above 1 MiB (clear of the boot area)? */
static int bz_fits(uint64_t addr, uint64_t need, uint64_t top)
{
	return addr >= BOOT_PAYLOAD_MIN && addr <= top && need <= top - addr;
}

static int bz_load(struct machine *m, const struct boot_file *f, struct boot_result *out)
{
	if (!bz_probe(f) || f->size < HDR_VERSION + 2)
		return boot_fail(f, "not a kernel (no bzImage setup header)");
	const uint8_t *d = f->data;
	uint16_t version = get16(d + HDR_VERSION);
	if (version < MIN_VERSION)
		return boot_fail(f, "boot protocol %u.%02u is too old (need 2.10)", version >> 8,
		                 version & 0xff);

	/* the protected-mode kernel follows the boot sector and the setup sectors */
	unsigned sects = d[HDR_SETUP_SECTS] ? d[HDR_SETUP_SECTS] : 4;
	uint64_t setup_size = (uint64_t)(sects + 1) * 512;
	if (setup_size >= f->size)
		return boot_fail(
		        f,
		        "setup_sects %u puts the protected-mode kernel at 0x%llx, past the "
		        "end of the file (%zu bytes)",
		        d[HDR_SETUP_SECTS], U(setup_size), f->size);
	/* from here the whole header (< 0x290 <= setup_size) lies inside the file */
	uint64_t hdr_end = 0x202 + (uint64_t)d[HDR_JUMP_LEN];
	if (hdr_end < HDR_END_2_10)
		return boot_fail(f,
		                 "setup header ends at 0x%llx (byte 0x201), before init_size: too "
		                 "short for boot protocol %u.%02u",
		                 U(hdr_end), version >> 8, version & 0xff);
	if (hdr_end > BOOT_SETUP_HDR + BOOT_SETUP_HDR_MAX)
		hdr_end = BOOT_SETUP_HDR + BOOT_SETUP_HDR_MAX;

	uint8_t loadflags = d[HDR_LOADFLAGS];
	if (!(loadflags & LOADED_HIGH))
		return boot_fail(f,
		                 "loadflags 0x%02x lacks LOADED_HIGH: a zImage loaded at 0x10000 "
		                 "is not supported",
		                 loadflags);
	uint16_t xloadflags = get16(d + HDR_XLOADFLAGS);
	if (!(xloadflags & XLF_KERNEL_64))
		return boot_fail(f, "not a 64-bit kernel (xloadflags 0x%04x lacks XLF_KERNEL_64)",
		                 xloadflags);

	int relocatable = d[HDR_RELOCATABLE] != 0;
	uint32_t align = get32(d + HDR_KERNEL_ALIGNMENT);
	uint64_t pref = get64(d + HDR_PREF_ADDRESS);
	uint32_t init_size = get32(d + HDR_INIT_SIZE);
	uint64_t kernel_size = f->size - setup_size;
	uint64_t need = init_size > kernel_size ? init_size : kernel_size;
	uint64_t top = mem_low_top(&m->mem);

	if (relocatable && (align == 0 || (align & (align - 1))))
		return boot_fail(f, "kernel_alignment 0x%x is not a power of two", align);
	uint64_t mask = relocatable ? (uint64_t)align - 1 : 0;

	/* pref_address when it fits (a relocatable kernel also wants it aligned), else the first
	 * kernel_alignment boundary at or above 16 MiB */
	uint64_t load = pref;
	const char *why = "pref_address";
	if (!bz_fits(pref, need, top) || (pref & mask)) {
		if (!relocatable && pref < BOOT_PAYLOAD_MIN)
			return boot_fail(
			        f,
			        "pref_address 0x%llx lies in the boot area below 1 MiB and "
			        "the kernel is not relocatable",
			        U(pref));
		if (relocatable) {
			load = (RELOC_BASE + mask) & ~mask;
			why = "relocated";
		}
		if (!relocatable || !bz_fits(load, need, top))
			return boot_fail(
			        f,
			        "kernel needs init_size 0x%llx bytes at 0x%llx (%s%s): does "
			        "not fit in %llu MiB of RAM (low RAM ends at 0x%llx)",
			        U(need), U(load), why, relocatable ? "" : ", not relocatable",
			        U(m->ram_size >> 20), U(top));
	}

	uint8_t *dst = mem_gpa_ptr(&m->mem, load, need);
	if (!dst)
		return boot_fail(f, "kernel at 0x%llx-0x%llx is outside guest RAM", U(load),
		                 U(load + need - 1));
	memcpy(dst, d + setup_size, kernel_size);
	memset(dst + kernel_size, 0, need - kernel_size);

	out->entry = load + ENTRY_64;
	out->entry_kind = BOOT_ENTRY_64;
	out->image_lo = load;
	out->image_hi = load + need;
	out->format = "bzImage";
	out->setup_len = (uint32_t)(hdr_end - BOOT_SETUP_HDR);
	memcpy(out->setup, d + BOOT_SETUP_HDR, out->setup_len);
	uint32_t cmdline_size = get32(d + HDR_CMDLINE_SIZE);
	out->cmdline_max = cmdline_size < BOOT_CMDLINE_MAX - 1 ? cmdline_size
	                                                       : (uint32_t)(BOOT_CMDLINE_MAX - 1);
	out->initrd_end = (uint64_t)get32(d + HDR_INITRD_ADDR_MAX) + 1;
	return 0;
}

const struct boot_loader boot_loader_bzimage = {
	.name = "bzImage",
	.probe = bz_probe,
	.load = bz_load,
};
