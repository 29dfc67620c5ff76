/* boot.c: the x86 boot area and entry state shared by every loader: flat GDT, identity page
 * tables for the first 4 GiB, a Linux-style zero page with e820 map, command line and initrd,
 * and for PVH entries a struct hvm_start_info with memory map and module list. */
#include "boot.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "machine.h"

/* struct boot_params offsets (Linux Documentation/arch/x86/zero-page.rst, boot.rst) */
#define ZP_ACPI_RSDP_ADDR 0x070
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
#define ZP_SETUP_DATA 0x250
#define ZP_E820_TABLE 0x2d0
#define E820_RAM 1
#define E820_RESERVED 2

/* struct hvm_start_info version 1 (Xen public/arch-x86/hvm/start_info.h): offsets */
#define PVH_START_MAGIC 0x336ec578u
#define SI_MAGIC 0x00
#define SI_VERSION 0x04
#define SI_FLAGS 0x08
#define SI_NR_MODULES 0x0c
#define SI_MODLIST_PADDR 0x10
#define SI_CMDLINE_PADDR 0x18
#define SI_RSDP_PADDR 0x20
#define SI_MEMMAP_PADDR 0x28
#define SI_MEMMAP_ENTRIES 0x30
/* struct hvm_modlist_entry: paddr, size, cmdline_paddr, reserved (all 64-bit) */
#define MOD_PADDR 0x00
#define MOD_SIZE 0x08
/* struct hvm_memmap_table_entry: addr, size (64-bit), type, reserved (32-bit) */
#define MEMMAP_ENTRY_SIZE 24

_Static_assert(BOOT_PVH_START_INFO + 0x38 <= BOOT_PVH_MODLIST, "start info overlaps modlist");
_Static_assert(BOOT_PVH_MEMMAP + BOOT_MEMMAP_MAX * MEMMAP_ENTRY_SIZE <= BOOT_ZERO_PAGE,
               "memmap overlaps the zero page");

static const struct boot_loader *const loaders[] = {
	&boot_loader_elf64,
	&boot_loader_bzimage,
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

int boot_fail(const struct boot_file *f, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: %s\n", f->path, msg);
	return -EINVAL;
}

int boot_memmap(const struct machine *m, struct boot_mem_entry *e, int max)
{
	const struct mem_region *low = &m->mem.region[0];
	struct boot_mem_entry all[3 + MEM_MAX_REGIONS];
	int n = 0;
	/* conventional memory, the legacy VGA/BIOS hole (ACPI tables go at 0xE0000), low RAM */
	all[n++] = (struct boot_mem_entry){ 0, 0xA0000, E820_RAM };
	all[n++] = (struct boot_mem_entry){ 0xA0000, BOOT_PAYLOAD_MIN - 0xA0000, E820_RESERVED };
	if (low->size > BOOT_PAYLOAD_MIN)
		all[n++] = (struct boot_mem_entry){ BOOT_PAYLOAD_MIN, low->size - BOOT_PAYLOAD_MIN,
			                            E820_RAM };
	for (int i = 1; i < m->mem.n_regions; i++)
		all[n++] = (struct boot_mem_entry){ m->mem.region[i].gpa, m->mem.region[i].size,
			                            E820_RAM };
	if (n > max)
		n = max;
	memcpy(e, all, (size_t)n * sizeof(*e));
	return n;
}

int boot_write_e820(const struct machine *m, uint8_t *zp)
{
	struct boot_mem_entry map[BOOT_MEMMAP_MAX];
	int n = boot_memmap(m, map, BOOT_MEMMAP_MAX);
	for (int i = 0; i < n; i++) {
		uint8_t *e = zp + ZP_E820_TABLE + i * 20;
		put64(e, map[i].addr);
		put64(e + 8, map[i].size);
		put32(e + 16, map[i].type);
	}
	zp[ZP_E820_ENTRIES] = (uint8_t)n;
	return n;
}

static void write_gdt_and_page_tables(struct machine *m)
{
	uint64_t *gdt = mem_gpa_ptr(&m->mem, BOOT_GDT, 4 * 8);
	gdt[0] = 0;
	gdt[BOOT_CS32 / 8] = 0x00cf9b000000ffffull; /* flat 32-bit code, 4 GiB, DPL 0 */
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

/* Reads [boot] initrd into the highest page-aligned spot below the top of low RAM and the
 * kernel's limit, above the kernel's end. */
static int load_initrd(struct machine *m, const struct boot_result *res, uint64_t *addr,
                       uint64_t *size)
{
	struct boot_file f;
	int r = boot_read_file(m->initrd_path, &f);
	if (r < 0) {
		fprintf(stderr, "%s: cannot read initrd: %s\n", m->initrd_path,
		        r == -EINVAL ? "not a regular file" : strerror(-r));
		return -EINVAL;
	}
	uint64_t top = mem_low_top(&m->mem);
	const char *limit = "the last byte of low RAM";
	if (res->initrd_end < top) {
		top = res->initrd_end;
		limit = "the kernel's initrd_addr_max";
	}
	uint64_t at = f.size <= top ? (top - f.size) & ~0xfffull : 0;
	uint8_t *dst = f.size ? mem_gpa_ptr(&m->mem, at, f.size) : NULL;
	if (f.size > top || at < res->image_hi || (f.size && !dst)) {
		/* both limits said as the last byte the initrd may use (initrd_addr_max is one) */
		fprintf(stderr,
		        "%s: initrd too large: %zu bytes do not fit between the kernel's end "
		        "(0x%llx) and %s (0x%llx)\n",
		        m->initrd_path, f.size, (unsigned long long)res->image_hi, limit,
		        (unsigned long long)top - 1);
		boot_file_free(&f);
		return -EINVAL;
	}
	if (f.size)
		memcpy(dst, f.data, f.size);
	*addr = at;
	*size = f.size;
	boot_file_free(&f);
	return 0;
}

static void write_zero_page(struct machine *m, const struct boot_result *res, uint64_t initrd,
                            uint64_t initrd_size)
{
	uint8_t *zp = mem_gpa_ptr(&m->mem, BOOT_ZERO_PAGE, 0x1000);
	memset(zp, 0, 0x1000);
	if (res->setup_len) {
		/* a Linux kernel's own setup header, then the fields a loader writes */
		memcpy(zp + BOOT_SETUP_HDR, res->setup, res->setup_len);
		put64(zp + ZP_SETUP_DATA, 0);
	} else {
		put16(zp + ZP_BOOT_FLAG, 0xAA55);
		put32(zp + ZP_HEADER, 0x53726448); /* "HdrS" */
		put16(zp + ZP_VERSION, 0x020f);
		put32(zp + ZP_INITRD_ADDR_MAX, 0x7fffffff);
		put32(zp + ZP_CMDLINE_SIZE, (uint32_t)(BOOT_CMDLINE_MAX - 1));
	}
	zp[ZP_TYPE_OF_LOADER] = 0xff; /* undefined loader */
	put32(zp + ZP_CMD_LINE_PTR, (uint32_t)BOOT_CMDLINE);
	put32(zp + ZP_EXT_CMD_LINE_PTR, 0);
	put32(zp + ZP_RAMDISK_IMAGE, (uint32_t)initrd);
	put32(zp + ZP_RAMDISK_SIZE, (uint32_t)initrd_size);
	put32(zp + ZP_EXT_RAMDISK_IMAGE, (uint32_t)(initrd >> 32));
	put32(zp + ZP_EXT_RAMDISK_SIZE, (uint32_t)(initrd_size >> 32));
	put64(zp + ZP_ACPI_RSDP_ADDR, m->acpi_rsdp_gpa);
	boot_write_e820(m, zp);
}

/* struct hvm_start_info version 1, its one module and its memory map (PVH boot). */
static void write_pvh_start_info(struct machine *m, uint64_t initrd, uint64_t initrd_size)
{
	uint8_t *si = mem_gpa_ptr(&m->mem, BOOT_PVH_START_INFO, 0x2000);
	memset(si, 0, 0x2000); /* 0x5000-0x6FFF: start info, modlist, memmap */
	put32(si + SI_MAGIC, PVH_START_MAGIC);
	put32(si + SI_VERSION, 1);
	put32(si + SI_FLAGS, 0);
	if (initrd_size) {
		uint8_t *mod = si + (BOOT_PVH_MODLIST - BOOT_PVH_START_INFO);
		put64(mod + MOD_PADDR, initrd);
		put64(mod + MOD_SIZE, initrd_size);
		put32(si + SI_NR_MODULES, 1);
		put64(si + SI_MODLIST_PADDR, BOOT_PVH_MODLIST);
	}
	put64(si + SI_CMDLINE_PADDR, BOOT_CMDLINE);
	put64(si + SI_RSDP_PADDR, m->acpi_rsdp_gpa);

	struct boot_mem_entry map[BOOT_MEMMAP_MAX];
	int n = boot_memmap(m, map, BOOT_MEMMAP_MAX);
	uint8_t *mm = si + (BOOT_PVH_MEMMAP - BOOT_PVH_START_INFO);
	for (int i = 0; i < n; i++) {
		put64(mm + i * MEMMAP_ENTRY_SIZE, map[i].addr);
		put64(mm + i * MEMMAP_ENTRY_SIZE + 8, map[i].size);
		put32(mm + i * MEMMAP_ENTRY_SIZE + 16, map[i].type);
	}
	put64(si + SI_MEMMAP_PADDR, BOOT_PVH_MEMMAP);
	put32(si + SI_MEMMAP_ENTRIES, (uint32_t)n);
}

static const struct boot_loader *pick_loader(const struct boot_file *f)
{
	for (size_t i = 0; i < sizeof(loaders) / sizeof(loaders[0]); i++)
		if (loaders[i]->probe(f))
			return loaders[i];
	return NULL;
}

static int check_cmdline(struct machine *m, const struct boot_result *res, size_t len)
{
	if (len <= res->cmdline_max)
		return 0;
	if (res->setup_len)
		fprintf(stderr,
		        "%s: [boot] cmdline is %zu bytes, longer than the %u bytes the kernel %s "
		        "accepts (its cmdline_size)\n",
		        m->cfg->path, len, res->cmdline_max, m->kernel_path);
	else
		fprintf(stderr, "%s: [boot] cmdline is %zu bytes; the limit is %u\n", m->cfg->path,
		        len, res->cmdline_max);
	return -EINVAL;
}

static void set_entry_state(const struct boot_result *res, struct smol_x86_boot *regs)
{
	memset(regs, 0, sizeof(*regs));
	regs->rip = res->entry;
	regs->rsp = BOOT_STACK_TOP;
	regs->rflags = 0x2;
	regs->gdt_base = BOOT_GDT;
	regs->gdt_limit = 4 * 8 - 1;
	regs->ds_selector = BOOT_DS;
	if (res->entry_kind == BOOT_ENTRY_PVH) {
		/* PVH: flat 32-bit protected mode, paging off, everything else clear */
		regs->rbx = BOOT_PVH_START_INFO;
		regs->cr0 = 0x1; /* PE */
		regs->cs_selector = BOOT_CS32;
		regs->long_mode = 0;
		return;
	}
	regs->rsi = BOOT_ZERO_PAGE;
	regs->cr0 = 0x80010033; /* PG | WP | NE | ET | MP | PE */
	regs->cr3 = BOOT_PML4;
	regs->cr4 = 0x620; /* OSXMMEXCPT | OSFXSR | PAE */
	regs->efer = 0x500; /* LMA | LME */
	regs->cs_selector = BOOT_CS;
	regs->long_mode = 1;
}

int boot_prepare(struct machine *m, struct smol_x86_boot *regs)
{
	struct boot_file f;
	struct boot_result res = { .entry_kind = BOOT_ENTRY_64,
		                   .cmdline_max = BOOT_CMDLINE_MAX - 1,
		                   .initrd_end = UINT64_MAX };
	uint64_t initrd = 0, initrd_size = 0;
	int r;

	if (mem_low_top(&m->mem) < 2 * BOOT_PAYLOAD_MIN) {
		fprintf(stderr, "%s: memory %llu KiB is too small (at least 2 MiB)\n", m->cfg->path,
		        (unsigned long long)(m->ram_size >> 10));
		return -EINVAL;
	}
	r = boot_read_file(m->kernel_path, &f);
	if (r < 0) {
		fprintf(stderr, "%s: cannot read kernel: %s\n", m->kernel_path,
		        r == -EINVAL ? "not a regular file" : strerror(-r));
		return -EINVAL;
	}
	const struct boot_loader *ld = pick_loader(&f);
	if (!ld) {
		fprintf(stderr,
		        "%s: not a kernel smolvm can boot (neither an ELF64 executable nor a Linux "
		        "bzImage)\n",
		        m->kernel_path);
		boot_file_free(&f);
		return -EINVAL;
	}
	r = ld->load(m, &f, &res);
	boot_file_free(&f);
	if (r < 0)
		return -EINVAL;

	const char *cmdline = m->cmdline ? m->cmdline : "";
	size_t len = strlen(cmdline);
	if (check_cmdline(m, &res, len) < 0)
		return -EINVAL;
	if (m->initrd_path && load_initrd(m, &res, &initrd, &initrd_size) < 0)
		return -EINVAL;

	write_gdt_and_page_tables(m);
	memcpy(mem_gpa_ptr(&m->mem, BOOT_CMDLINE, len + 1), cmdline, len + 1);
	write_zero_page(m, &res, initrd, initrd_size);
	if (res.entry_kind == BOOT_ENTRY_PVH)
		write_pvh_start_info(m, initrd, initrd_size);
	set_entry_state(&res, regs);
	return 0;
}
