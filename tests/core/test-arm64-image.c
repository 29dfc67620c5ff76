/* The arm64 Image loader (core/arch/arm64/image.c): the header's refusals with their messages,
 * the placement rules, and Debian's own arm64 kernel.
 *
 * Debian's Image is $SMOLVM_TEST_ARM64_IMAGE, else the vmlinuz of the newest arm64 nest kit
 * (${SMOLVM_CACHE:-${XDG_CACHE_HOME:-~/.cache}/smolvm}/nest/ *arm64* /vmlinuz); without one that
 * test is skipped and says why. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "arch/arm64/image.h"
#include "cache-dir.h"

#define MIB (1ull << 20)
#define GIB (1ull << 30)

static char err[512];

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* a minimal Image: the header and @p len - 64 bytes of "code" */
static uint8_t *image(size_t len, uint64_t text_offset, uint64_t image_size, uint64_t flags)
{
	static uint8_t buf[1 << 20];
	cr_assert(len <= sizeof(buf) && len >= 64);
	memset(buf, 0xa5, len);
	memset(buf, 0, 64);
	buf[0] = 0x00; /* code0: b stext */
	buf[3] = 0x14;
	put64(buf + 0x08, text_offset);
	put64(buf + 0x10, image_size);
	put64(buf + 0x18, flags);
	memcpy(buf + 0x38, "ARM\x64", 4);
	return buf;
}

static void refused(const uint8_t *d, size_t len, const char *msg)
{
	struct a64_image img;
	err[0] = 0;
	int rc = a64_image_parse(d, len, &img, err, sizeof(err));
	cr_assert_eq(rc, -EINVAL, "rc %d (%s)", rc, err);
	cr_assert(strstr(err, msg), "message \"%s\" does not say \"%s\"", err, msg);
}

static struct a64_image parsed(const uint8_t *d, size_t len)
{
	struct a64_image img;
	err[0] = 0;
	cr_assert_eq(a64_image_parse(d, len, &img, err, sizeof(err)), 0, "%s", err);
	return img;
}

Test(arm64_image, header_fields)
{
	uint8_t *d = image(4096, 0x80000, 0x1234000, 0xa);
	struct a64_image img = parsed(d, 4096);
	cr_assert_eq(img.text_offset, 0x80000);
	cr_assert_eq(img.image_size, 0x1234000);
	cr_assert_eq(img.footprint, 0x1234000);
	cr_assert_eq(img.flags, 0xa);
	cr_assert_eq(img.page_size, A64_PAGE_4K);
	cr_assert(img.place_anywhere);
	cr_assert(!img.efi_stub);
	cr_assert_eq(img.file_size, 4096);

	d = image(4096, 0, 0x10000, 3 << 1);
	d[0] = 'M';
	d[1] = 'Z';
	img = parsed(d, 4096);
	cr_assert(img.efi_stub);
	cr_assert_eq(img.page_size, A64_PAGE_64K);
	cr_assert(!img.place_anywhere);
	cr_assert_eq(img.text_offset, 0);
	cr_assert_eq(parsed(image(64, 0, 64, 2 << 1), 64).page_size, A64_PAGE_16K);
	cr_assert_eq(parsed(image(64, 0, 64, 0), 64).page_size, A64_PAGE_UNSPECIFIED);

	/* a file longer than image_size is copied whole: its footprint is the file */
	img = parsed(image(8192, 0, 4096, 2), 8192);
	cr_assert_eq(img.footprint, 8192);
}

Test(arm64_image, old_kernel_without_image_size)
{
	/* before v3.17: image_size 0, text_offset 0x80000 whatever the field says, flags
	 * undefined (a set bit 0 is not taken for big-endian) */
	uint8_t *d = image(100000, 0x1234, 0, 0x1);
	struct a64_image img = parsed(d, 100000);
	cr_assert_eq(img.text_offset, 0x80000);
	cr_assert_eq(img.image_size, 0);
	cr_assert_eq(img.flags, 0);
	cr_assert_eq(img.footprint, 100000);
	cr_assert_eq(img.page_size, A64_PAGE_UNSPECIFIED);
}

Test(arm64_image, refusals)
{
	uint8_t *d = image(4096, 0, 0x100000, 2);
	refused(d, 63, "arm64 Image: file is 63 bytes, shorter than the 64-byte header");
	refused(d, 0, "file is 0 bytes");

	static const uint8_t gz[] = { 0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0, 3 };
	refused(gz, sizeof(gz), "compressed Image: decompress it first (a gzip file");

	d = image(4096, 0, 0x100000, 2);
	memcpy(d, "MZ\0\0zimg", 8);
	put64(d + 8, 0x1000 | (uint64_t)0x2345 << 32);
	memcpy(d + 0x18, "zstd", 5);
	memcpy(d + 0x38, "\xcd\x23\x82\x81", 4); /* LINUX_PE_MAGIC, not ARM\x64 */
	refused(d, 4096, "EFI zboot image (\"zimg\" at offset 4, zstd-compressed payload)");
	refused(d, 4096,
	        "compressed Image: decompress it first (its payload at offset 0x1000, "
	        "0x2345 bytes)");

	d = image(4096, 0, 0x100000, 2);
	memcpy(d + 0x38, "ARM\x65", 4);
	refused(d, 4096,
	        "not an arm64 Image: magic at offset 0x38 is 0x654d5241 (bytes 41 52 4d 65), want "
	        "0x644d5241 (\"ARM\\x64\")");

	d = image(4096, 0, 0x100000, 2);
	memcpy(d,
	       "\x7f"
	       "ELF",
	       4);
	memset(d + 0x38, 0, 4);
	refused(d, 4096, "not an arm64 Image: an ELF file (a vmlinux?)");

	d = image(4096, 0, 0x100000, 2);
	memset(d + 0x38, 0, 4);
	memcpy(d + 0x202, "HdrS", 4);
	refused(d, 4096, "not an arm64 Image: an x86 bzImage (\"HdrS\" at 0x202)");

	refused(image(4096, 0, 0x100000, 0xb), 4096,
	        "arm64 Image: a big-endian kernel (flags 0xb, bit 0 set)");
	refused(image(4096, 0x80002, 0x100000, 2), 4096,
	        "text_offset 0x80002 is not a multiple of 4");
	refused(image(4096, 0, 63, 2), 4096, "image_size 0x3f is smaller than its own header");
}

/* ---- placement --------------------------------------------------------------------- */

static struct a64_placement place_ok(const struct a64_image *img, uint64_t base, uint64_t size,
                                     uint64_t initrd, uint64_t dtb)
{
	struct a64_placement p;
	err[0] = 0;
	cr_assert_eq(a64_image_place(img, base, size, initrd, dtb, &p, err, sizeof(err)), 0, "%s",
	             err);
	/* every rule, whatever the inputs */
	uint64_t end = base + size;
	cr_assert_eq(p.kernel_base % (2 * MIB), 0, "kernel base 0x%lx", p.kernel_base);
	cr_assert_geq(p.kernel_base, base);
	cr_assert_eq(p.kernel_load, p.kernel_base + img->text_offset);
	cr_assert_eq(p.kernel_end, p.kernel_load + img->footprint);
	cr_assert_leq(p.kernel_end, end);
	cr_assert_eq(p.dtb % 8, 0);
	cr_assert_geq(p.dtb, p.kernel_end, "DTB 0x%lx inside the kernel (end 0x%lx)", p.dtb,
	              p.kernel_end);
	cr_assert_leq(p.dtb + dtb, end);
	cr_assert_eq(p.dtb / (2 * MIB), (p.dtb + dtb - 1) / (2 * MIB), "DTB crosses 2 MiB");
	if (initrd) {
		cr_assert_eq(p.initrd_end - p.initrd, initrd);
		cr_assert_geq(p.initrd, p.kernel_end);
		cr_assert_leq(p.initrd_end, p.dtb, "initrd overlaps the DTB");
		cr_assert_eq(p.initrd % A64_INITRD_ALIGN, 0);
		/* one 1 GiB aligned 32 GiB window holds the kernel and the initrd */
		cr_assert_leq(p.initrd_end, (p.kernel_base & ~(GIB - 1)) + 32 * GIB);
	} else {
		cr_assert_eq(p.initrd, 0);
		cr_assert_eq(p.initrd_end, 0);
	}
	return p;
}

static void place_refused(const struct a64_image *img, uint64_t base, uint64_t size,
                          uint64_t initrd, uint64_t dtb, const char *msg)
{
	struct a64_placement p;
	err[0] = 0;
	int rc = a64_image_place(img, base, size, initrd, dtb, &p, err, sizeof(err));
	cr_assert_eq(rc, -EINVAL, "rc %d (%s)", rc, err);
	cr_assert(strstr(err, msg), "message \"%s\" does not say \"%s\"", err, msg);
}

Test(arm64_image, placement)
{
	struct a64_image img = parsed(image(4096, 0, 20 * MIB, 0xa), 4096);
	struct a64_placement p = place_ok(&img, 0x40000000, 256 * MIB, 8 * MIB, 64 * 1024);
	cr_assert_eq(p.kernel_base, 0x40000000);
	cr_assert_eq(p.kernel_load, 0x40000000);
	cr_assert_eq(p.kernel_end, 0x40000000 + 20 * MIB);
	cr_assert_eq(p.dtb, 0x50000000 - 2 * MIB, "DTB at 0x%lx", p.dtb);
	cr_assert_eq(p.initrd, 0x50000000 - 2 * MIB - 8 * MIB);

	/* text_offset and an unaligned RAM base: the next 2 MiB boundary */
	img = parsed(image(4096, 0x80000, 20 * MIB, 2), 4096);
	p = place_ok(&img, 0x40100000, 64 * MIB, 0, 4096);
	cr_assert_eq(p.kernel_base, 0x40200000);
	cr_assert_eq(p.kernel_load, 0x40280000);

	/* RAM ending off a 2 MiB boundary: the DTB stays inside RAM and inside one block */
	p = place_ok(&img, 0x40000000, 64 * MIB + 0x1000, 12345, 2 * MIB);
	cr_assert_eq(p.dtb, 0x40000000 + 62 * MIB);
	p = place_ok(&img, 0x40000000, 64 * MIB - 0x1000, 77777, 0x1008);
	cr_assert_eq(p.dtb, 0x40000000 + 62 * MIB);

	/* a tight fit: kernel, initrd and DTB end to end */
	img = parsed(image(4096, 0, 4 * MIB, 2), 4096);
	p = place_ok(&img, 0, 8 * MIB, 2 * MIB, 2 * MIB);
	cr_assert_eq(p.initrd, 4 * MIB);
	cr_assert_eq(p.dtb, 6 * MIB);

	/* more than 32 GiB of RAM: the DTB and initrd stay in the kernel's window */
	p = place_ok(&img, 0x40000000, 64 * GIB, 512 * MIB, 64 * 1024);
	cr_assert_eq(p.dtb, 0x40000000 + 32 * GIB - 2 * MIB);

	/* an old kernel: text_offset 0x80000, the file as its size */
	img = parsed(image(300000, 0, 0, 0), 300000);
	p = place_ok(&img, 0x80000000, 16 * MIB, 0, 512);
	cr_assert_eq(p.kernel_load, 0x80080000);
	cr_assert_eq(p.kernel_end, 0x80080000 + 300000);
}

Test(arm64_image, placement_refusals)
{
	struct a64_image img = parsed(image(4096, 0x80000, 20 * MIB, 2), 4096);
	place_refused(&img, 0x40000000, 16 * MIB, 0, 4096,
	              "kernel: 0x1400000 bytes at 0x40080000 (2 MiB aligned base 0x40000000 + "
	              "text_offset 0x80000) do not fit in RAM [0x40000000, 0x41000000)");
	place_refused(&img, 0x40000000, 22 * MIB, 0, 4096,
	              "device tree: 0x1000 bytes do not fit in a 2 MiB block between the kernel's "
	              "end 0x41480000 and 0x41600000");
	place_refused(&img, 0x40000000, 32 * MIB, 10 * MIB, 4096,
	              "initrd: 0xa00000 bytes do not fit between the kernel's end 0x41480000 and "
	              "the device tree at 0x41e00000 (RAM [0x40000000, 0x42000000))");
	place_refused(&img, 0x40000000, 64 * MIB, 0, 2 * MIB + 1,
	              "device tree: 0x200001 bytes, want 1 byte to 2 MiB");
	place_refused(&img, 0x40000000, 64 * MIB, 0, 0, "device tree: 0x0 bytes");
	place_refused(&img, 0x40000000, 0, 0, 4096, "RAM [0x40000000 + 0x0) is empty");
	place_refused(&img, UINT64_MAX - MIB, 2 * MIB, 0, 4096, "wraps past 2^64");
	place_refused(&img, 0x40000001, MIB, 0, 4096,
	              "kernel: RAM [0x40000001, 0x40100001) holds no 2 MiB aligned base");
	/* an initrd larger than the address of the DTB */
	place_refused(&img, 0x40000000, 64 * MIB, UINT64_MAX, 4096, "initrd: 0xffffffffffffffff");

	/* a text_offset near 2^64: no wrap-around into RAM */
	img = parsed(image(4096, UINT64_MAX - 3, 0x100000, 2), 4096);
	place_refused(&img, 0x40000000, 64 * MIB, 0, 4096, "kernel: 0x100000 bytes at 0x3ffffffc");
	img = parsed(image(4096, 0, UINT64_MAX - 0xfff, 2), 4096);
	place_refused(&img, 0x40000000, 64 * MIB, 0, 4096, "do not fit in RAM");
}

/* ---- Debian's Image ---------------------------------------------------------------- */

static int find_debian_image(char *path, size_t len)
{
	const char *env = getenv("SMOLVM_TEST_ARM64_IMAGE");
	if (env && *env) {
		snprintf(path, len, "%s", env);
		return 0;
	}
	char cache[4096], pattern[4200];
	smolvm_cache_dir(cache, sizeof(cache));
	snprintf(pattern, sizeof(pattern), "%s/nest*/*arm64*/vmlinuz", cache);
	glob_t g;
	time_t newest = 0;
	int found = -1;
	if (glob(pattern, 0, NULL, &g) == 0) {
		for (size_t i = 0; i < g.gl_pathc; i++) {
			struct stat st;
			if (stat(g.gl_pathv[i], &st) == 0 && S_ISREG(st.st_mode) &&
			    st.st_mtime >= newest) {
				newest = st.st_mtime;
				snprintf(path, len, "%s", g.gl_pathv[i]);
				found = 0;
			}
		}
		globfree(&g);
	}
	if (found < 0)
		snprintf(path, len, "%s", pattern);
	return found;
}

Test(arm64_image, debian_image)
{
	char path[4200];
	if (find_debian_image(path, sizeof(path)) < 0)
		cr_skip_test("no Debian arm64 Image: set SMOLVM_TEST_ARM64_IMAGE or make the arm64 "
		             "nest kit (nothing matches %s)",
		             path);
	int fd = open(path, O_RDONLY);
	cr_assert(fd >= 0, "%s: %m", path);
	struct stat st;
	cr_assert_eq(fstat(fd, &st), 0);
	size_t len = (size_t)st.st_size;
	const uint8_t *d = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	cr_assert(d != MAP_FAILED, "mmap %s: %m", path);
	close(fd);

	struct a64_image img = parsed(d, len);
	/* an uncompressed Image with an EFI stub; 4 KiB pages, placeable anywhere (since
	 * v4.6), text_offset 0 (since v5.10) */
	cr_assert(img.efi_stub, "%s: no EFI stub", path);
	cr_assert_eq(img.page_size, A64_PAGE_4K);
	cr_assert(img.place_anywhere);
	cr_assert_eq(img.text_offset, 0);
	cr_assert_geq(img.image_size, len, "%s: image_size 0x%lx < file 0x%zx", path,
	              img.image_size, len);
	cr_assert_eq(img.footprint, img.image_size);

	struct a64_placement p = place_ok(&img, 0x40000000, 512 * MIB, 40 * MIB, 64 * 1024);
	cr_assert_eq(p.kernel_load, 0x40000000);
	/* too little RAM for it: refused with the numbers */
	char want[128];
	snprintf(want, sizeof(want), "kernel: 0x%lx bytes at 0x40000000", img.image_size);
	place_refused(&img, 0x40000000, 32 * MIB, 0, 4096, want);
	munmap((void *)d, len);
}
