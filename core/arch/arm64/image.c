/* The arm64 Image header and the placement of kernel, DTB and initrd (see image.h). */
#include "image.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MIB (1ull << 20)
#define GIB (1ull << 30)
/* booting.rst: the initrd lies in a 1 GiB aligned window of up to 32 GiB that also holds the
 * kernel Image. */
#define INITRD_WINDOW (32 * GIB)

static int fail(char *err, size_t errlen, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* The zboot header's compression type: a NUL-terminated name at offset 0x18, up to 0x38. */
static void zboot_type(const uint8_t *data, size_t len, char *out, size_t outlen)
{
	size_t n = 0;

	for (size_t i = 0x18; i < 0x38 && i < len && n + 1 < outlen; i++) {
		if (data[i] == 0)
			break;
		out[n++] = (data[i] >= 0x20 && data[i] < 0x7f) ? (char)data[i] : '?';
	}
	out[n] = 0;
}

static int bad_magic(const uint8_t *data, size_t len, char *err, size_t errlen)
{
	uint32_t m = le32(data + A64_IMAGE_MAGIC_OFFSET);

	if (!memcmp(data,
	            "\x7f"
	            "ELF",
	            4))
		return fail(err, errlen,
		            "not an arm64 Image: an ELF file (a vmlinux?); give the Image "
		            "(arch/arm64/boot/Image, Debian's /boot/vmlinuz)");
	if (len >= 0x206 && !memcmp(data + 0x202, "HdrS", 4))
		return fail(err, errlen, "not an arm64 Image: an x86 bzImage (\"HdrS\" at 0x202)");
	return fail(err, errlen,
	            "not an arm64 Image: magic at offset 0x38 is 0x%08" PRIx32
	            " (bytes %02x %02x %02x %02x), want 0x%08x (\"ARM\\x64\")",
	            m, data[0x38], data[0x39], data[0x3a], data[0x3b], A64_IMAGE_MAGIC);
}

int a64_image_parse(const uint8_t *data, size_t len, struct a64_image *out, char *err,
                    size_t errlen)
{
	char type[40];

	if (!data || !out)
		return fail(err, errlen, "arm64 Image: no data");
	memset(out, 0, sizeof(*out));
	if (len >= 2 && data[0] == 0x1f && data[1] == 0x8b)
		return fail(
		        err, errlen,
		        "compressed Image: decompress it first (a gzip file, 1f 8b at offset 0)");
	if (len >= 8 && data[0] == 'M' && data[1] == 'Z' && !memcmp(data + 4, "zimg", 4)) {
		zboot_type(data, len, type, sizeof(type));
		return fail(
		        err, errlen,
		        "EFI zboot image (\"zimg\" at offset 4, %s-compressed payload): "
		        "compressed Image: decompress it first (its payload at offset 0x%" PRIx32
		        ", 0x%" PRIx32 " bytes)",
		        type[0] ? type : "unknown", len >= 12 ? le32(data + 8) : 0,
		        len >= 16 ? le32(data + 12) : 0);
	}
	if (len < A64_IMAGE_HEADER_SIZE)
		return fail(err, errlen,
		            "arm64 Image: file is %zu bytes, shorter than the %u-byte header", len,
		            A64_IMAGE_HEADER_SIZE);
	if (le32(data + A64_IMAGE_MAGIC_OFFSET) != A64_IMAGE_MAGIC)
		return bad_magic(data, len, err, errlen);

	out->efi_stub = data[0] == 'M' && data[1] == 'Z';
	out->file_size = len;
	out->image_size = le64(data + 0x10);
	if (out->image_size == 0) {
		/* before v3.17: text_offset of unknown endianness, 0x80000 in practice; no
		 * flags (their field was reserved) */
		out->text_offset = A64_IMAGE_OLD_TEXT_OFFSET;
		out->flags = 0;
	} else {
		out->text_offset = le64(data + 0x08);
		out->flags = le64(data + 0x18);
	}
	if (out->flags & 1)
		return fail(err, errlen,
		            "arm64 Image: a big-endian kernel (flags 0x%" PRIx64
		            ", bit 0 set): smolvm runs little-endian kernels only",
		            out->flags);
	if (out->image_size != 0 && out->image_size < A64_IMAGE_HEADER_SIZE)
		return fail(err, errlen,
		            "arm64 Image: image_size 0x%" PRIx64 " is smaller than its own header",
		            out->image_size);
	if (out->text_offset % 4)
		return fail(err, errlen,
		            "arm64 Image: text_offset 0x%" PRIx64
		            " is not a multiple of 4: the entry point would be unaligned",
		            out->text_offset);
	out->page_size = (enum a64_page_size)((out->flags >> 1) & 3);
	out->place_anywhere = (out->flags >> 3) & 1;
	/* An old kernel's BSS size is unknown: the file is all we know it needs; its DTB and
	 * initrd go to the top of RAM, far from it. A file longer than image_size (data
	 * appended after the kernel) is copied whole, so it counts too. */
	out->footprint = out->image_size > len ? out->image_size : len;
	return 0;
}

static uint64_t align_down(uint64_t v, uint64_t a)
{
	return v & ~(a - 1);
}

int a64_image_place(const struct a64_image *img, uint64_t ram_base, uint64_t ram_size,
                    uint64_t initrd_size, uint64_t dtb_size, struct a64_placement *out, char *err,
                    size_t errlen)
{
	uint64_t ram_end = ram_base + ram_size, base, load, end, top, window, dtb;

	if (!img || !out)
		return fail(err, errlen, "arm64 placement: no image");
	memset(out, 0, sizeof(*out));
	if (ram_size == 0 || ram_end < ram_base)
		return fail(err, errlen,
		            "RAM [0x%" PRIx64 " + 0x%" PRIx64 ") is empty or wraps past 2^64",
		            ram_base, ram_size);
	if (dtb_size == 0 || dtb_size > A64_DTB_MAX)
		return fail(err, errlen,
		            "device tree: 0x%" PRIx64 " bytes, want 1 byte to 2 MiB (booting.rst)",
		            dtb_size);

	base = align_down(ram_base + (A64_KERNEL_ALIGN - 1), A64_KERNEL_ALIGN);
	if (base < ram_base || base >= ram_end)
		return fail(err, errlen,
		            "kernel: RAM [0x%" PRIx64 ", 0x%" PRIx64
		            ") holds no 2 MiB aligned base for it",
		            ram_base, ram_end);
	load = base + img->text_offset;
	end = load + img->footprint;
	if (load < base || end < load || end > ram_end)
		return fail(err, errlen,
		            "kernel: 0x%" PRIx64 " bytes at 0x%" PRIx64
		            " (2 MiB aligned base 0x%" PRIx64 " + text_offset 0x%" PRIx64
		            ") do not fit in RAM [0x%" PRIx64 ", 0x%" PRIx64 ")",
		            img->footprint, load, base, img->text_offset, ram_base, ram_end);

	/* the DTB and initrd stay in the 32 GiB window the kernel's base opens */
	window = align_down(base, GIB);
	top = ram_end;
	if (window + INITRD_WINDOW > window && window + INITRD_WINDOW < top)
		top = window + INITRD_WINDOW;
	dtb = top >= dtb_size ? align_down(top - dtb_size, A64_DTB_MAX) : 0;
	if (top < dtb_size || dtb < end)
		return fail(err, errlen,
		            "device tree: 0x%" PRIx64 " bytes do not fit in a 2 MiB block between "
		            "the kernel's end 0x%" PRIx64 " and 0x%" PRIx64 " (RAM [0x%" PRIx64
		            ", 0x%" PRIx64 "))",
		            dtb_size, end, top, ram_base, ram_end);
	out->kernel_base = base;
	out->kernel_load = load;
	out->kernel_end = end;
	out->dtb = dtb;
	if (initrd_size) {
		uint64_t at =
		        dtb >= initrd_size ? align_down(dtb - initrd_size, A64_INITRD_ALIGN) : 0;
		if (dtb < initrd_size || at < end) {
			memset(out, 0, sizeof(*out));
			return fail(err, errlen,
			            "initrd: 0x%" PRIx64
			            " bytes do not fit between the kernel's end "
			            "0x%" PRIx64 " and the device tree at 0x%" PRIx64
			            " (RAM [0x%" PRIx64 ", 0x%" PRIx64 "))",
			            initrd_size, end, dtb, ram_base, ram_end);
		}
		out->initrd = at;
		out->initrd_end = at + initrd_size;
	}
	return 0;
}
