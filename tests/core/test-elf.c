/* Unit tests of the ELF64 loader (core/arch/x86/loader-elf.c) on hostile and well-formed images,
 * and of the boot area the core writes (core/arch/x86/boot.c). No VM is needed: loading only
 * touches RAM. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <elf.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "boot.h"
#include "layout.h"
#include "machine.h"

static struct machine m;
static uint8_t image[0x4000];
static struct boot_file file = { .path = "k.elf", .data = image, .size = sizeof(image) };

static Elf64_Ehdr *eh(void)
{
	return (Elf64_Ehdr *)image;
}
static Elf64_Phdr *ph(int i)
{
	return (Elf64_Phdr *)(image + sizeof(Elf64_Ehdr)) + i;
}

/* A valid image: one segment of 0x100 file bytes + 0x100 zeroed, at 2 MiB, entry inside. */
static void valid_image(void)
{
	memset(image, 0, sizeof(image));
	memcpy(eh()->e_ident, ELFMAG, SELFMAG);
	eh()->e_ident[EI_CLASS] = ELFCLASS64;
	eh()->e_ident[EI_DATA] = ELFDATA2LSB;
	eh()->e_type = ET_EXEC;
	eh()->e_machine = EM_X86_64;
	eh()->e_entry = 0xffffffff80200010ull; /* virtual, translated through the segment */
	eh()->e_phoff = sizeof(Elf64_Ehdr);
	eh()->e_phentsize = sizeof(Elf64_Phdr);
	eh()->e_phnum = 1;
	*ph(0) = (Elf64_Phdr){ .p_type = PT_LOAD,
		               .p_offset = 0x1000,
		               .p_vaddr = 0xffffffff80200000ull,
		               .p_paddr = 0x200000,
		               .p_filesz = 0x100,
		               .p_memsz = 0x200 };
	memset(image + 0x1000, 0xab, 0x100);
}

static void setup(void)
{
	cr_redirect_stderr();
	memset(&m, 0, sizeof(m));
	m.ram_size = 16 << 20;
	mem_layout_x86(&m.mem, m.ram_size);
	cr_assert_eq(mem_alloc(&m.mem), 0);
	valid_image();
}

static void teardown(void)
{
	mem_free(&m.mem);
}

static char err[2048];
static const char *stderr_text(void)
{
	fflush(stderr);
	size_t n = fread(err, 1, sizeof(err) - 1, cr_get_redirected_stderr());
	err[n] = 0;
	return err;
}

#define assert_refused(needle)                                                                     \
	do {                                                                                       \
		struct boot_result r;                                                              \
		cr_assert_eq(boot_loader_elf64.load(&m, &file, &r), -EINVAL);                      \
		const char *e = stderr_text();                                                     \
		cr_assert(strstr(e, "k.elf: ") && strstr(e, (needle)), "expected \"%s\" in: %s",   \
		          (needle), e);                                                            \
	} while (0)

TestSuite(elf, .init = setup, .fini = teardown);

Test(elf, loads_segments_and_translates_entry)
{
	struct boot_result r;
	uint8_t *ram = mem_gpa_ptr(&m.mem, 0x200000, 0x200);
	memset(ram, 0x55, 0x200);
	cr_assert(boot_loader_elf64.probe(&file));
	cr_assert_eq(boot_loader_elf64.load(&m, &file, &r), 0);
	cr_assert_eq(r.entry, 0x200010);
	cr_assert_eq(r.image_lo, 0x200000);
	cr_assert_eq(r.image_hi, 0x200200);
	cr_assert_eq(ram[0], 0xab);
	cr_assert_eq(ram[0xff], 0xab);
	cr_assert_eq(ram[0x100], 0); /* bss zeroed */
	cr_assert_eq(ram[0x1ff], 0);
}

Test(elf, not_elf)
{
	image[0] = 'M';
	cr_assert_not(boot_loader_elf64.probe(&file));
}

Test(elf, wrong_class_machine_type)
{
	eh()->e_ident[EI_CLASS] = ELFCLASS32;
	assert_refused("not a 64-bit ELF");
	valid_image();
	eh()->e_machine = EM_AARCH64;
	assert_refused("is not x86-64");
	valid_image();
	eh()->e_type = ET_DYN;
	assert_refused("is not ET_EXEC");
}

Test(elf, program_headers_past_the_file)
{
	eh()->e_phoff = sizeof(image) - 10;
	assert_refused("run past the file");
	valid_image();
	eh()->e_phnum = 0xffff;
	assert_refused("run past the file");
	valid_image();
	eh()->e_phoff = UINT64_MAX - 8; /* offset + size overflows */
	assert_refused("run past the file");
}

Test(elf, segment_bytes_past_the_file)
{
	ph(0)->p_offset = sizeof(image) - 0x10;
	assert_refused("run past the file");
	valid_image();
	ph(0)->p_offset = UINT64_MAX;
	assert_refused("run past the file");
}

Test(elf, filesz_above_memsz)
{
	ph(0)->p_filesz = 0x300;
	assert_refused("p_filesz larger than p_memsz");
}

Test(elf, segment_outside_ram)
{
	ph(0)->p_paddr = (16 << 20) - 0x100; /* runs 0x100 past the end of RAM */
	assert_refused("does not fit in guest RAM");
	valid_image();
	ph(0)->p_paddr = 0xfffffffffffff000ull; /* wraps */
	ph(0)->p_memsz = 0x2000;
	assert_refused("overflows");
	valid_image();
	ph(0)->p_memsz = UINT64_MAX;
	ph(0)->p_filesz = 0;
	assert_refused("overflows");
}

Test(elf, segment_in_boot_area)
{
	ph(0)->p_paddr = 0x7000; /* would overwrite the zero page */
	assert_refused("overlaps the boot area below 1 MiB");
}

Test(elf, entry_outside_segments)
{
	eh()->e_entry = 0x400000;
	assert_refused("entry point 0x400000 is not inside any loadable segment");
}

Test(elf, no_load_segments)
{
	ph(0)->p_type = PT_NOTE; /* an empty one: note contents are parsed (test-pvh.c) */
	ph(0)->p_filesz = 0;
	assert_refused("no loadable (PT_LOAD) segments");
}

Test(elf, nothing_written_outside_ram_after_refusal)
{
	/* a refused image must not have touched RAM below its bad segment either */
	eh()->e_phnum = 2;
	*ph(1) = *ph(0);
	ph(1)->p_paddr = 64ull << 20; /* second segment outside RAM */
	uint8_t *ram = mem_gpa_ptr(&m.mem, 0x200000, 1);
	struct boot_result r;
	cr_assert_eq(boot_loader_elf64.load(&m, &file, &r), -EINVAL);
	(void)ram; /* the first segment may be loaded: RAM is the guest's, not outside it */
	cr_assert(strstr(stderr_text(), "segment 1"));
}

Test(elf, segment_above_4g)
{
	/* RAM may reach past 4 GiB, but the entry state only maps the first 4 GiB */
	ph(0)->p_paddr = 0x100000000ull;
	eh()->e_entry = 0xffffffff80200000ull;
	assert_refused("ends above 4 GiB");
}
