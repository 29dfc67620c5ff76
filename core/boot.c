/* boot.c: the x86 boot area and entry state shared by every loader: flat GDT, identity page
 * tables for the first 4 GiB, a Linux-style zero page with e820 map, command line and initrd. */
#include "boot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "machine.h"

/* struct boot_params offsets (Linux Documentation/arch/x86/zero-page.rst, boot.rst) */
#define ZP_EXT_RAMDISK_IMAGE 0x0c0
#define ZP_EXT_RAMDISK_SIZE 0x0c4
#define ZP_EXT_CMD_LINE_PTR 0x0c8
#define ZP_E820_ENTRIES 0x1e8
#define ZP_BOOT_FLAG 0x1fe
#define ZP_HEADER 0x202
#define ZP_VERSION 0x206
#define ZP_TYPE_OF_LOADER 0x210
#define ZP_RAMDISK_IMAGE 0x218
#define ZP_RAMDISK_SIZE 0x21c
#define ZP_CMD_LINE_PTR 0x228
#define ZP_INITRD_ADDR_MAX 0x22c
#define ZP_CMDLINE_SIZE 0x238
#define ZP_E820_TABLE 0x2d0
#define E820_MAX 128
#define E820_RAM 1
#define E820_RESERVED 2

static const struct boot_loader *const loaders[] = {
	&boot_loader_elf64,
};

static void put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}
static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}
static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

int boot_read_file(const char *path, struct boot_file *f)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	f->path = path;
	f->data = NULL;
	f->size = 0;
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		int e = S_ISREG(st.st_mode) ? errno : EISDIR;
		close(fd);
		return -e;
	}
	if (st.st_size > (off_t)2 << 30) {
		close(fd);
		return -EFBIG;
	}
	f->size = (size_t)st.st_size;
	f->data = malloc(f->size ? f->size : 1);
	if (!f->data) {
		close(fd);
		return -ENOMEM;
	}
	size_t got = 0;
	while (got < f->size) {
		ssize_t n = read(fd, f->data + got, f->size - got);
		if (n <= 0) {
			int e = n < 0 ? errno : EIO;
			close(fd);
			boot_file_free(f);
			return -e;
		}
		got += (size_t)n;
	}
	close(fd);
	return 0;
}

void boot_file_free(struct boot_file *f)
{
	free(f->data);
	f->data = NULL;
	f->size = 0;
}

static int e820_add(uint8_t *zp, int n, uint64_t addr, uint64_t size, uint32_t type)
{
	if (n >= E820_MAX || size == 0)
		return n;
	uint8_t *e = zp + ZP_E820_TABLE + n * 20;
	put64(e, addr);
	put64(e + 8, size);
	put32(e + 16, type);
	return n + 1;
}

int boot_write_e820(struct machine *m, uint8_t *zp)
{
	int n = 0;
	const struct mem_region *low = &m->mem.region[0];
	/* conventional memory, the legacy VGA/BIOS hole, then the rest of low RAM */
	n = e820_add(zp, n, 0, 0xA0000, E820_RAM);
	n = e820_add(zp, n, 0xA0000, 0x60000, E820_RESERVED);
	if (low->size > BOOT_PAYLOAD_MIN)
		n = e820_add(zp, n, BOOT_PAYLOAD_MIN, low->size - BOOT_PAYLOAD_MIN, E820_RAM);
	for (int i = 1; i < m->mem.n_regions; i++)
		n = e820_add(zp, n, m->mem.region[i].gpa, m->mem.region[i].size, E820_RAM);
	zp[ZP_E820_ENTRIES] = (uint8_t)n;
	return n;
}

static void write_gdt_and_page_tables(struct machine *m)
{
	uint64_t *gdt = mem_gpa_ptr(&m->mem, BOOT_GDT, 4 * 8);
	gdt[0] = 0;
	gdt[1] = 0;
	gdt[BOOT_CS / 8] = 0x00af9b000000ffffull; /* 64-bit code, DPL 0 */
	gdt[BOOT_DS / 8] = 0x00cf93000000ffffull; /* flat data, 4 GiB */

	uint64_t *pml4 = mem_gpa_ptr(&m->mem, BOOT_PML4, 0x1000);
	uint64_t *pdpt = mem_gpa_ptr(&m->mem, BOOT_PDPT, 0x1000);
	uint64_t *pd = mem_gpa_ptr(&m->mem, BOOT_PD, 4 * 0x1000);
	memset(pml4, 0, 0x1000);
	memset(pdpt, 0, 0x1000);
	pml4[0] = BOOT_PDPT | 0x3; /* present, writable */
	for (uint64_t g = 0; g < 4; g++) {
		pdpt[g] = (BOOT_PD + g * 0x1000) | 0x3;
		for (uint64_t i = 0; i < 512; i++)
			pd[g * 512 + i] =
			        ((g << 30) | (i << 21)) | 0x83; /* present, writable, 2 MiB */
	}
}

static int place_initrd(struct machine *m, uint8_t *zp, uint64_t kernel_end)
{
	struct boot_file f;
	int r = boot_read_file(m->initrd_path, &f);
	if (r < 0) {
		fprintf(stderr, "%s: cannot read initrd: %s\n", m->initrd_path, strerror(-r));
		return -EINVAL;
	}
	/* the highest page-aligned spot below the top of low RAM (and below 4 GiB) */
	uint64_t top = mem_low_top(&m->mem);
	uint64_t addr = f.size <= top ? (top - f.size) & ~0xfffull : 0;
	if (f.size > top || addr < kernel_end) {
		fprintf(stderr,
		        "%s: initrd too large: %zu bytes do not fit between the kernel's end "
		        "(0x%llx) "
		        "and the top of low RAM (0x%llx)\n",
		        m->initrd_path, f.size, (unsigned long long)kernel_end,
		        (unsigned long long)top);
		boot_file_free(&f);
		return -EINVAL;
	}
	memcpy(mem_gpa_ptr(&m->mem, addr, f.size ? f.size : 1), f.data, f.size);
	put32(zp + ZP_RAMDISK_IMAGE, (uint32_t)addr);
	put32(zp + ZP_RAMDISK_SIZE, (uint32_t)f.size);
	put32(zp + ZP_EXT_RAMDISK_IMAGE, (uint32_t)(addr >> 32));
	put32(zp + ZP_EXT_RAMDISK_SIZE, (uint32_t)((uint64_t)f.size >> 32));
	boot_file_free(&f);
	return 0;
}

int boot_prepare(struct machine *m, struct smol_x86_boot *regs)
{
	struct boot_file f;
	struct boot_result res = { 0 };
	int r;

	if (mem_low_top(&m->mem) < 2 * BOOT_PAYLOAD_MIN) {
		fprintf(stderr, "%s: memory %llu KiB is too small (at least 2 MiB)\n", m->cfg->path,
		        (unsigned long long)(m->ram_size >> 10));
		return -EINVAL;
	}
	r = boot_read_file(m->kernel_path, &f);
	if (r < 0) {
		fprintf(stderr, "%s: cannot read kernel: %s\n", m->kernel_path, strerror(-r));
		return -EINVAL;
	}
	const struct boot_loader *ld = NULL;
	for (size_t i = 0; i < sizeof(loaders) / sizeof(loaders[0]); i++)
		if (loaders[i]->probe(&f)) {
			ld = loaders[i];
			break;
		}
	if (!ld) {
		fprintf(stderr, "%s: not a kernel smolvm can boot (not an ELF64 executable)\n",
		        m->kernel_path);
		boot_file_free(&f);
		return -EINVAL;
	}
	r = ld->load(m, &f, &res);
	boot_file_free(&f);
	if (r < 0)
		return -EINVAL;

	write_gdt_and_page_tables(m);

	uint8_t *zp = mem_gpa_ptr(&m->mem, BOOT_ZERO_PAGE, 0x1000);
	memset(zp, 0, 0x1000);
	put16(zp + ZP_BOOT_FLAG, 0xAA55);
	put32(zp + ZP_HEADER, 0x53726448); /* "HdrS" */
	put16(zp + ZP_VERSION, 0x020f);
	zp[ZP_TYPE_OF_LOADER] = 0xff; /* undefined loader */
	put32(zp + ZP_INITRD_ADDR_MAX, 0x7fffffff);
	boot_write_e820(m, zp);

	const char *cmdline = m->cmdline ? m->cmdline : "";
	size_t len = strlen(cmdline);
	if (len >= BOOT_CMDLINE_MAX) {
		fprintf(stderr, "%s: [boot] cmdline is %zu bytes; the limit is %llu\n",
		        m->cfg->path, len, BOOT_CMDLINE_MAX - 1);
		return -EINVAL;
	}
	memcpy(mem_gpa_ptr(&m->mem, BOOT_CMDLINE, len + 1), cmdline, len + 1);
	put32(zp + ZP_CMD_LINE_PTR, (uint32_t)BOOT_CMDLINE);
	put32(zp + ZP_EXT_CMD_LINE_PTR, 0);
	put32(zp + ZP_CMDLINE_SIZE, (uint32_t)(BOOT_CMDLINE_MAX - 1));

	if (m->initrd_path && place_initrd(m, zp, res.image_hi) < 0)
		return -EINVAL;

	memset(regs, 0, sizeof(*regs));
	regs->rip = res.entry;
	regs->rsp = BOOT_STACK_TOP;
	regs->rsi = BOOT_ZERO_PAGE;
	regs->rflags = 0x2;
	regs->cr0 = 0x80010033; /* PG | WP | NE | ET | MP | PE */
	regs->cr3 = BOOT_PML4;
	regs->cr4 = 0x620; /* OSXMMEXCPT | OSFXSR | PAE */
	regs->efer = 0x500; /* LMA | LME */
	regs->gdt_base = BOOT_GDT;
	regs->gdt_limit = 4 * 8 - 1;
	regs->cs_selector = BOOT_CS;
	regs->ds_selector = BOOT_DS;
	regs->long_mode = 1;
	return 0;
}
