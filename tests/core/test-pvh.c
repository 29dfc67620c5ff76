/* Unit tests of the PVH boot of ELF64 executables carrying a Xen XEN_ELFNOTE_PHYS32_ENTRY note
 * (core/arch/x86/loader-elf.c, core/arch/x86/boot.c): the note parser on hostile notes, the 32-bit
 * entry state and struct hvm_start_info (Xen public/arch-x86/hvm/start_info.h). Also the 64-bit
 * entry of ELF files without the note. No VM is needed: loading only touches RAM. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boot-fixture.h"

#define NOTE_OFF 0x800
#define SEG_OFF 0x1000

static uint8_t image[0x4000];
static struct boot_file file = { .path = "k.elf", .data = image, .size = sizeof(image) };
static size_t note_end;

static Elf64_Ehdr *eh(void)
{
	return (Elf64_Ehdr *)image;
}
static Elf64_Phdr *ph(int i)
{
	return (Elf64_Phdr *)(image + sizeof(Elf64_Ehdr)) + i;
}

/* Appends a note to the PT_NOTE segment (phdr 1), 4-byte aligned. */
static void add_note(const char *name, uint32_t namesz, uint32_t type, const void *desc,
                     uint32_t descsz)
{
	Elf64_Nhdr nh = { .n_namesz = namesz, .n_descsz = descsz, .n_type = type };
	memcpy(image + note_end, &nh, sizeof(nh));
	note_end += sizeof(nh);
	memcpy(image + note_end, name, strlen(name) + 1);
	note_end += (namesz + 3) & ~3u;
	memcpy(image + note_end, desc, descsz);
	note_end += (descsz + 3) & ~3u;
	ph(1)->p_filesz = ph(1)->p_memsz = note_end - NOTE_OFF;
}

static void add_pvh_note32(uint32_t entry)
{
	add_note("Xen", 4, 18, &entry, 4);
}

/* One segment of 0x100 file bytes + 0x100 zeroed at 2 MiB (virtual 0xffffffff80200000), a
 * PT_NOTE segment without notes yet, e_entry inside the segment. */
static void valid_image(void)
{
	memset(image, 0, sizeof(image));
	memcpy(eh()->e_ident, ELFMAG, SELFMAG);
	eh()->e_ident[EI_CLASS] = ELFCLASS64;
	eh()->e_ident[EI_DATA] = ELFDATA2LSB;
	eh()->e_type = ET_EXEC;
	eh()->e_machine = EM_X86_64;
	eh()->e_entry = 0xffffffff80200010ull;
	eh()->e_phoff = sizeof(Elf64_Ehdr);
	eh()->e_phentsize = sizeof(Elf64_Phdr);
	eh()->e_phnum = 2;
	*ph(0) = (Elf64_Phdr){ .p_type = PT_LOAD,
		               .p_offset = SEG_OFF,
		               .p_vaddr = 0xffffffff80200000ull,
		               .p_paddr = 0x200000,
		               .p_filesz = 0x100,
		               .p_memsz = 0x200 };
	*ph(1) = (Elf64_Phdr){ .p_type = PT_NOTE, .p_offset = NOTE_OFF, .p_align = 4 };
	note_end = NOTE_OFF;
	memset(image + SEG_OFF, 0xab, 0x100);
}

static void setup(void)
{
	cr_redirect_stderr();
	tm_setup(128ull << 20);
	valid_image();
}

TestSuite(pvh, .init = setup, .fini = tm_teardown);

static struct boot_result res;

static int load(void)
{
	memset(&res, 0, sizeof(res));
	return boot_loader_elf64.load(&tm, &file, &res);
}

#define assert_refused(needle)                                                                     \
	do {                                                                                       \
		cr_assert_eq(load(), -EINVAL);                                                     \
		const char *e_ = tm_stderr();                                                      \
		cr_assert(strstr(e_, "k.elf: ") && strstr(e_, (needle)), "expected \"%s\" in: %s", \
		          (needle), e_);                                                           \
	} while (0)

static int prepare(struct smol_x86_boot *regs, const char *cmdline, size_t initrd_size)
{
	tm.kernel_path = tm_write_file(image, sizeof(image));
	tm.cmdline = cmdline;
	tm.initrd_path = NULL;
	if (initrd_size) {
		uint8_t *rd = malloc(initrd_size);
		memset(rd, 0x5a, initrd_size);
		tm.initrd_path = tm_write_file(rd, initrd_size);
		free(rd);
	}
	return boot_prepare(&tm, regs);
}

static struct t_start_info start_info(void)
{
	struct t_start_info si;
	memcpy(&si, tm_ram(BOOT_PVH_START_INFO, sizeof(si)), sizeof(si));
	return si;
}

Test(pvh, note_selects_pvh_entry)
{
	add_note("Xen", 4, 6, "linux", 6); /* other Xen notes come first in vmlinux */
	add_pvh_note32(0x200040);
	cr_assert_eq(load(), 0, "%s", tm_stderr());
	cr_assert_eq(res.entry_kind, BOOT_ENTRY_PVH);
	cr_assert_eq(res.entry, 0x200040);
	cr_assert_str_eq(res.format, "ELF64 (PVH)");
	cr_assert_eq(res.image_lo, 0x200000);
	cr_assert_eq(res.image_hi, 0x200200);
}

Test(pvh, note_with_64_bit_value)
{
	uint64_t entry = 0x2000f0;
	add_note("Xen", 4, 18, &entry, 8);
	cr_assert_eq(load(), 0, "%s", tm_stderr());
	cr_assert_eq(res.entry, 0x2000f0);
}

Test(pvh, eight_byte_aligned_notes)
{
	/* p_align 8: descriptor and next note at 8-byte boundaries of the segment; a first note
	 * with a 5-byte name puts the second one's descriptor after 4 bytes of padding */
	ph(1)->p_align = 8;
	Elf64_Nhdr nh = { .n_namesz = 5, .n_descsz = 4, .n_type = 1 };
	memcpy(image + NOTE_OFF, &nh, sizeof(nh));
	memcpy(image + NOTE_OFF + 12, "Xen1", 5);
	/* descriptor at 24 (17 rounded up), next note at 32 (28 rounded up) */
	nh = (Elf64_Nhdr){ .n_namesz = 4, .n_descsz = 4, .n_type = 18 };
	uint32_t entry = 0x200010;
	memcpy(image + NOTE_OFF + 32, &nh, sizeof(nh));
	memcpy(image + NOTE_OFF + 32 + 12, "Xen", 4);
	memcpy(image + NOTE_OFF + 32 + 16, &entry, 4); /* 44 + 4 = 48 is 8-aligned */
	ph(1)->p_filesz = 32 + 16 + 8;
	cr_assert_eq(load(), 0, "%s", tm_stderr());
	cr_assert_eq(res.entry, 0x200010);
}

Test(pvh, other_notes_keep_the_64_bit_entry)
{
	uint32_t v = 0x200040;
	add_note("GNU", 4, 18, &v, 4); /* type 18 of another owner */
	add_note("Xen", 4, 17, &v, 4); /* another Xen note */
	add_note("Xe", 3, 18, &v, 4); /* a shorter name */
	cr_assert_eq(load(), 0, "%s", tm_stderr());
	cr_assert_eq(res.entry_kind, BOOT_ENTRY_64);
	cr_assert_eq(res.entry, 0x200010);
}

Test(pvh, e_entry_not_needed_with_the_note)
{
	/* vmlinux: e_entry is a physical address no segment's p_vaddr covers */
	eh()->e_entry = 0x1000000;
	add_pvh_note32(0x200000);
	cr_assert_eq(load(), 0, "%s", tm_stderr());
	cr_assert_eq(res.entry, 0x200000);
}

Test(pvh, hostile_notes)
{
	uint32_t v = 0x200040;
	add_note("Xen", 4, 18, &v, 2);
	assert_refused("PVH note (Xen XEN_ELFNOTE_PHYS32_ENTRY) has n_descsz 2, expected 4 or 8");

	valid_image();
	add_pvh_note32(0x200040);
	((Elf64_Nhdr *)(image + NOTE_OFF))->n_descsz = 0xfffffff0u;
	assert_refused("note at 0x800 (n_namesz 4, n_descsz 4294967280) runs past the segment");

	valid_image();
	add_pvh_note32(0x200040);
	((Elf64_Nhdr *)(image + NOTE_OFF))->n_namesz = 0xffffffffu; /* aligns up past 4 GiB */
	assert_refused("runs past the segment");

	valid_image();
	add_pvh_note32(0x200040);
	ph(1)->p_filesz = 8; /* half a note header */
	assert_refused("note segment 1: truncated note header at 0x800");

	valid_image();
	add_pvh_note32(0x200040);
	ph(1)->p_filesz = 18; /* the descriptor is cut off */
	assert_refused("runs past the segment");

	valid_image();
	add_pvh_note32(0x200040);
	ph(1)->p_offset = sizeof(image) - 4;
	assert_refused("note segment 1: bytes at 0x3ffc run past the file");

	valid_image();
	add_pvh_note32(0x200040);
	ph(1)->p_offset = UINT64_MAX - 2;
	assert_refused("run past the file");

	valid_image();
	add_pvh_note32(0x200040);
	ph(1)->p_filesz = UINT64_MAX;
	assert_refused("run past the file");
}

Test(pvh, entry_outside_the_image)
{
	add_pvh_note32(0x400000);
	assert_refused("PVH entry 0x400000 (XEN_ELFNOTE_PHYS32_ENTRY) is not inside any loadable "
	               "segment");
	valid_image();
	uint64_t high = 0x100200000ull;
	add_note("Xen", 4, 18, &high, 8);
	assert_refused("PVH entry 0x100200000 (XEN_ELFNOTE_PHYS32_ENTRY) is not a 32-bit address");
}

Test(pvh, entry_state)
{
	struct smol_x86_boot regs;
	add_pvh_note32(0x200040);
	cr_assert_eq(prepare(&regs, "console=ttyS0", 0), 0, "%s", tm_stderr());
	cr_assert_eq(regs.long_mode, 0);
	cr_assert_eq(regs.cr0, 0x1, "cr0 0x%llx: PE only, paging off",
	             (unsigned long long)regs.cr0);
	cr_assert_eq(regs.cr3, 0);
	cr_assert_eq(regs.cr4, 0);
	cr_assert_eq(regs.efer, 0);
	cr_assert_eq(regs.rip, 0x200040);
	cr_assert_eq(regs.rbx, BOOT_PVH_START_INFO);
	cr_assert_eq(regs.rflags, 0x2, "IF, TF and VM clear");
	cr_assert_eq(regs.cs_selector, 0x08);
	cr_assert_eq(regs.ds_selector, 0x18);
	cr_assert_eq(regs.gdt_base, BOOT_GDT);
	cr_assert_geq(regs.gdt_limit, 0x1f);

	/* the GDT: 0x08 flat 32-bit code; 0x10 64-bit code and 0x18 data where they were */
	const uint8_t *gdt = tm_ram(BOOT_GDT, 32);
	uint64_t cs32 = t_get64(gdt + 8), cs64 = t_get64(gdt + 16), ds = t_get64(gdt + 24);
	cr_assert_eq(cs32 & 0xffff, 0xffff, "limit 15:0");
	cr_assert_eq((cs32 >> 48) & 0xf, 0xf, "limit 19:16");
	cr_assert_eq((cs32 >> 16) & 0xffffff, 0, "base 23:0");
	cr_assert_eq(cs32 >> 56, 0, "base 31:24");
	cr_assert_eq((cs32 >> 40) & 0xff, 0x9b, "present, DPL 0, code, readable");
	cr_assert_eq((cs32 >> 52) & 0xf, 0xc, "G=1, D=1, L=0");
	cr_assert_eq(cs64, 0x00af9b000000ffffull);
	cr_assert_eq(ds, 0x00cf93000000ffffull);
}

Test(pvh, start_info)
{
	struct smol_x86_boot regs;
	add_pvh_note32(0x200040);
	tm.acpi_rsdp_gpa = 0xE0000;
	cr_assert_eq(prepare(&regs, "console=ttyS0 pvh=1", 0x3456), 0, "%s", tm_stderr());

	struct t_start_info si = start_info();
	cr_assert_eq(si.magic, T_PVH_MAGIC);
	cr_assert_eq(si.version, 1);
	cr_assert_eq(si.flags, 0);
	cr_assert_eq(si.reserved, 0);
	cr_assert_eq(si.rsdp_paddr, 0xE0000);
	cr_assert_str_eq((const char *)tm_ram(si.cmdline_paddr, 20), "console=ttyS0 pvh=1");
	tm_assert_memory_map(&si);

	cr_assert_eq(si.nr_modules, 1);
	struct t_modlist_entry mod;
	memcpy(&mod, tm_ram(si.modlist_paddr, sizeof(mod)), sizeof(mod));
	cr_assert_eq(mod.size, 0x3456);
	cr_assert_eq(mod.cmdline_paddr, 0);
	cr_assert_eq(mod.reserved, 0);
	cr_assert_eq(mod.paddr & 0xfff, 0);
	cr_assert_geq(mod.paddr, 0x200200, "initrd above the kernel");
	cr_assert_leq(mod.paddr + mod.size, 128ull << 20, "initrd in RAM");
	const uint8_t *p = tm_ram(mod.paddr, mod.size);
	for (size_t i = 0; i < mod.size; i++)
		cr_assert_eq(p[i], 0x5a);

	/* the zero page agrees (and costs nothing to keep) */
	const uint8_t *zp = tm_ram(BOOT_ZERO_PAGE, 0x1000);
	cr_assert_eq(t_get32(zp + T_ZP_RAMDISK_IMAGE), mod.paddr);
	cr_assert_eq(t_get64(zp + T_ZP_ACPI_RSDP), 0xE0000);
}

Test(pvh, start_info_without_initrd_or_acpi)
{
	struct smol_x86_boot regs;
	add_pvh_note32(0x200040);
	cr_assert_eq(prepare(&regs, NULL, 0), 0, "%s", tm_stderr());
	struct t_start_info si = start_info();
	cr_assert_eq(si.magic, T_PVH_MAGIC);
	cr_assert_eq(si.nr_modules, 0);
	cr_assert_eq(si.modlist_paddr, 0);
	cr_assert_eq(si.rsdp_paddr, 0);
	cr_assert_eq(*tm_ram(si.cmdline_paddr, 1), 0, "an empty command line");
	tm_assert_memory_map(&si);
}

Test(pvh, memmap_with_ram_above_4g)
{
	struct smol_x86_boot regs;
	tm_teardown();
	tm_setup((4ull << 30) + (256ull << 20)); /* 3 GiB low, 1.25 GiB from 4 GiB */
	add_pvh_note32(0x200040);
	cr_assert_eq(prepare(&regs, NULL, 0), 0, "%s", tm_stderr());
	struct t_start_info si = start_info();
	cr_assert_eq(si.memmap_entries, 4);
	tm_assert_memory_map(&si);
}

Test(pvh, boot_area_does_not_overlap)
{
	/* start info, modlist and memmap sit between the GDT and the zero page */
	cr_assert_geq(BOOT_PVH_START_INFO, BOOT_GDT + 32);
	cr_assert_geq(BOOT_PVH_MODLIST, BOOT_PVH_START_INFO + sizeof(struct t_start_info));
	cr_assert_geq(BOOT_PVH_MEMMAP, BOOT_PVH_MODLIST + sizeof(struct t_modlist_entry));
	cr_assert_leq(BOOT_PVH_MEMMAP + BOOT_MEMMAP_MAX * sizeof(struct t_memmap_entry),
	              BOOT_ZERO_PAGE);
	cr_assert_lt(BOOT_ZERO_PAGE + 0x1000, BOOT_PML4 + 1);
}

/* ---- ELF without the note: the 64-bit entry is unchanged -------------------------------- */

Test(pvh, no_note_keeps_64_bit_entry)
{
	struct smol_x86_boot regs;
	tm.acpi_rsdp_gpa = 0xE0000;
	cr_assert_eq(prepare(&regs, "x=1", 0x1000), 0, "%s", tm_stderr());
	cr_assert_eq(regs.long_mode, 1);
	cr_assert_eq(regs.rip, 0x200010);
	cr_assert_eq(regs.rsi, BOOT_ZERO_PAGE);
	cr_assert_eq(regs.rbx, 0);
	cr_assert_eq(regs.cs_selector, 0x10);
	cr_assert_eq(regs.cr0, 0x80010033);
	cr_assert_eq(regs.cr3, BOOT_PML4);
	const uint8_t *zp = tm_ram(BOOT_ZERO_PAGE, 0x1000);
	cr_assert_eq(t_get16(zp + 0x1fe), 0xAA55);
	cr_assert_eq(memcmp(zp + 0x202, "HdrS", 4), 0);
	cr_assert_eq(zp[T_ZP_TYPE_OF_LOADER], 0xff);
	cr_assert_eq(t_get32(zp + T_ZP_CMD_LINE_PTR), BOOT_CMDLINE);
	cr_assert_eq(t_get32(zp + T_ZP_CMDLINE_SIZE), BOOT_CMDLINE_MAX - 1);
	cr_assert_eq(t_get32(zp + T_ZP_RAMDISK_SIZE), 0x1000);
	cr_assert_eq(t_get64(zp + T_ZP_ACPI_RSDP), 0xE0000);
	tm_assert_memory_map(NULL);
	/* no start info is written for a 64-bit entry */
	cr_assert_eq(t_get32(tm_ram(BOOT_PVH_START_INFO, 4)), 0);
}

Test(pvh, cmdline_limit_without_linux_header)
{
	struct smol_x86_boot regs;
	char *line = malloc(BOOT_CMDLINE_MAX + 1);
	memset(line, 'b', BOOT_CMDLINE_MAX);
	line[BOOT_CMDLINE_MAX] = 0;
	cr_assert_eq(prepare(&regs, line, 0), -EINVAL);
	assert_has(tm_stderr(), "t.ini: [boot] cmdline is 65536 bytes; the limit is 65535");
	free(line);
}
