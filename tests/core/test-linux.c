/* Loads Debian's real kernel, as the test nest caches it: the bzImage (vmlinuz) through the
 * bzImage loader and the ELF vmlinux through PVH, and checks the result against the files' own
 * bytes, read here independently of the loaders.
 *
 * The kernel folder is $SMOLVM_TEST_KERNEL_DIR, else the newest nest kit under
 * ${SMOLVM_CACHE:-${XDG_CACHE_HOME:-~/.cache}/smolvm}/nest/ (tests/nest/mkkit makes it). Without
 * one the whole test exits 77, which meson reports as SKIP, and says why: it never passes as if
 * it had checked. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <elf.h>
#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "boot-fixture.h"
#include "cache-dir.h"

#define MIB (1ull << 20)

static char kdir[4096];
static char vmlinuz[4200], vmlinux[4200], initrd[4200];
static struct boot_file bz, elf;

static int is_file(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int kit_has_kernels(const char *dir)
{
	char a[4200], b[4200];
	snprintf(a, sizeof(a), "%s/vmlinuz", dir);
	snprintf(b, sizeof(b), "%s/vmlinux", dir);
	return is_file(a) && is_file(b);
}

/* Finds the kernel folder: 0; -1 when there is none (the reason in @p why); -2 when
 * SMOLVM_TEST_KERNEL_DIR names a folder without the kernels (an error, not a skip). */
static int find_kernel_dir(char *why, size_t len)
{
	const char *env = getenv("SMOLVM_TEST_KERNEL_DIR");
	if (env && *env) {
		if (!kit_has_kernels(env)) {
			snprintf(why, len, "SMOLVM_TEST_KERNEL_DIR=%s has no vmlinuz and vmlinux",
			         env);
			return -2;
		}
		snprintf(kdir, sizeof(kdir), "%s", env);
		return 0;
	}
	char cache[4096], pattern[4200];
	smolvm_cache_dir(cache, sizeof(cache));
	snprintf(pattern, sizeof(pattern), "%s/nest/*/", cache);
	glob_t g;
	time_t newest = 0;
	kdir[0] = 0;
	if (glob(pattern, 0, NULL, &g) == 0) {
		for (size_t i = 0; i < g.gl_pathc; i++) {
			struct stat st;
			if (kit_has_kernels(g.gl_pathv[i]) && stat(g.gl_pathv[i], &st) == 0 &&
			    st.st_mtime >= newest) {
				newest = st.st_mtime;
				snprintf(kdir, sizeof(kdir), "%s", g.gl_pathv[i]);
			}
		}
		globfree(&g);
	}
	if (!kdir[0]) {
		snprintf(
		        why, len,
		        "no Debian kernel: neither SMOLVM_TEST_KERNEL_DIR nor %s holds vmlinuz and "
		        "vmlinux (tests/nest/mkkit caches them)",
		        pattern);
		return -1;
	}
	return 0;
}

static void setup(void)
{
	char why[4400];
	cr_redirect_stderr();
	int r = find_kernel_dir(why, sizeof(why));
	if (r == -2)
		cr_assert_fail("%s", why);
	if (r < 0)
		cr_skip_test("%s", why);
	snprintf(vmlinuz, sizeof(vmlinuz), "%s/vmlinuz", kdir);
	snprintf(vmlinux, sizeof(vmlinux), "%s/vmlinux", kdir);
	snprintf(initrd, sizeof(initrd), "%s/initrd.gz", kdir);
	cr_log_info("kernel folder: %s", kdir);
	tm_setup(256 * MIB);
}

static void teardown(void)
{
	boot_file_free(&bz);
	boot_file_free(&elf);
	tm_teardown();
}

TestSuite(debian_kernel, .init = setup, .fini = teardown);

/* An initrd: the nest's own when the kit has one, else a made-up one. */
static void use_initrd(void)
{
	if (is_file(initrd)) {
		tm.initrd_path = initrd;
		return;
	}
	static uint8_t rd[300000];
	memset(rd, 0x42, sizeof(rd));
	tm.initrd_path = tm_write_file(rd, sizeof(rd));
}

static uint64_t file_size(const char *p)
{
	struct stat st;
	cr_assert_eq(stat(p, &st), 0, "%s", p);
	return (uint64_t)st.st_size;
}

Test(debian_kernel, bzimage_header_and_zero_page)
{
	cr_assert_eq(boot_read_file(vmlinuz, &bz), 0, "%s", vmlinuz);
	const uint8_t *h = bz.data;
	cr_assert_gt(bz.size, 0x1000);
	cr_assert_eq(t_get16(h + 0x1fe), 0xAA55);
	cr_assert_eq(memcmp(h + 0x202, "HdrS", 4), 0);
	uint16_t version = t_get16(h + 0x206);
	cr_log_info("vmlinuz: boot protocol %u.%02u, init_size 0x%x, pref_address 0x%llx",
	            version >> 8, version & 0xff, t_get32(h + 0x260),
	            (unsigned long long)t_get64(h + 0x258));
	cr_assert_geq(version, 0x020a, "boot protocol 2.10 or later");
	cr_assert_eq(h[0x234], 1, "relocatable_kernel");
	cr_assert(t_get16(h + 0x236) & 1, "xloadflags XLF_KERNEL_64");
	cr_assert(h[0x211] & 1, "loadflags LOADED_HIGH");
	cr_assert_eq(t_get64(h + 0x258), 16 * MIB, "pref_address (LOAD_PHYSICAL_ADDR)");

	struct smol_x86_boot regs;
	tm.kernel_path = vmlinuz;
	tm.cmdline = "console=ttyS0 panic=-1";
	tm.acpi_rsdp_gpa = 0xE0000;
	use_initrd();
	cr_assert_eq(boot_prepare(&tm, &regs), 0, "%s", tm_stderr());

	/* loaded at 16 MiB, entered at its 64-bit entry */
	unsigned sects = h[0x1f1] ? h[0x1f1] : 4;
	size_t setup_size = (sects + 1) * 512;
	cr_assert_eq(memcmp(tm_ram(16 * MIB, bz.size - setup_size), h + setup_size,
	                    bz.size - setup_size),
	             0, "the protected-mode kernel at 16 MiB");
	cr_assert_eq(regs.rip, 16 * MIB + 0x200);
	cr_assert_eq(regs.rsi, BOOT_ZERO_PAGE);
	cr_assert_eq(regs.long_mode, 1);

	const uint8_t *zp = tm_ram(BOOT_ZERO_PAGE, 0x1000);
	unsigned end = 0x202 + h[0x201];
	cr_assert_geq(end, 0x264);
	for (unsigned off = 0x1f1; off < end; off++) {
		int written = off == 0x210 || (off >= 0x218 && off < 0x220) ||
		              (off >= 0x228 && off < 0x22c) || (off >= 0x250 && off < 0x258);
		if (!written)
			cr_assert_eq(zp[off], h[off], "zero page byte 0x%x", off);
	}
	cr_assert_eq(zp[T_ZP_TYPE_OF_LOADER], 0xff);
	cr_assert_eq(t_get32(zp + T_ZP_CMD_LINE_PTR), BOOT_CMDLINE);
	cr_assert_str_eq((const char *)tm_ram(BOOT_CMDLINE, 23), "console=ttyS0 panic=-1");
	cr_assert_eq(t_get64(zp + T_ZP_ACPI_RSDP), 0xE0000);
	tm_assert_memory_map(NULL);

	uint64_t rd = t_get32(zp + T_ZP_RAMDISK_IMAGE), rd_size = t_get32(zp + T_ZP_RAMDISK_SIZE);
	cr_assert_eq(rd_size, file_size(tm.initrd_path));
	cr_assert_eq(rd & 0xfff, 0);
	cr_assert_geq(rd, 16 * MIB + t_get32(h + 0x260), "initrd above load + init_size");
	cr_assert_leq(rd + rd_size - 1, t_get32(h + 0x22c), "initrd below initrd_addr_max");
	cr_assert_leq(rd + rd_size, 256 * MIB);
}

Test(debian_kernel, bzimage_needs_init_size)
{
	/* Debian's kernel needs ~64 MiB from 16 MiB: 64 MiB of RAM is too little */
	tm_teardown();
	tm_setup(64 * MIB);
	struct smol_x86_boot regs;
	tm.kernel_path = vmlinuz;
	cr_assert_eq(boot_prepare(&tm, &regs), -EINVAL);
	const char *e = tm_stderr();
	assert_has(e, vmlinuz);
	assert_has(e, "kernel needs init_size 0x");
	assert_has(e, "does not fit in 64 MiB of RAM");
}

/* The PVH entry in vmlinux's notes, found by a plain byte search (not the loader's parser). */
static uint64_t pvh_note_entry(const struct boot_file *f)
{
	static const uint8_t hdr8[] = { 4, 0, 0, 0, 8, 0, 0, 0, 18, 0, 0, 0, 'X', 'e', 'n', 0 };
	static const uint8_t hdr4[] = { 4, 0, 0, 0, 4, 0, 0, 0, 18, 0, 0, 0, 'X', 'e', 'n', 0 };
	for (size_t i = 0; i + 24 <= f->size; i += 4) {
		if (memcmp(f->data + i, hdr8, 16) == 0)
			return t_get64(f->data + i + 16);
		if (memcmp(f->data + i, hdr4, 16) == 0)
			return t_get32(f->data + i + 16);
	}
	cr_assert_fail("no XEN_ELFNOTE_PHYS32_ENTRY note in %s", f->path);
	return 0;
}

/* One past the highest byte of vmlinux's PT_LOAD segments (p_paddr + p_memsz). */
static uint64_t elf_image_end(const struct boot_file *f)
{
	Elf64_Ehdr eh;
	uint64_t end = 0;
	cr_assert_geq(f->size, sizeof(eh));
	memcpy(&eh, f->data, sizeof(eh));
	cr_assert_leq(eh.e_phoff + eh.e_phnum * sizeof(Elf64_Phdr), f->size);
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;
		memcpy(&ph, f->data + eh.e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type == PT_LOAD && ph.p_paddr + ph.p_memsz > end)
			end = ph.p_paddr + ph.p_memsz;
	}
	return end;
}

Test(debian_kernel, vmlinux_pvh_start_info)
{
	cr_assert_eq(boot_read_file(vmlinux, &elf), 0, "%s", vmlinux);
	uint64_t entry = pvh_note_entry(&elf);
	cr_log_info("vmlinux: PVH entry 0x%llx", (unsigned long long)entry);

	struct smol_x86_boot regs;
	tm.kernel_path = vmlinux;
	tm.cmdline = "console=ttyS0 earlyprintk=ttyS0";
	use_initrd();
	cr_assert_eq(boot_prepare(&tm, &regs), 0, "%s", tm_stderr());

	cr_assert_eq(regs.long_mode, 0);
	cr_assert_eq(regs.cr0, 1);
	cr_assert_eq(regs.rip, entry);
	cr_assert_eq(regs.rbx, BOOT_PVH_START_INFO);
	cr_assert_eq(regs.cs_selector, 0x08);

	struct t_start_info si;
	memcpy(&si, tm_ram(BOOT_PVH_START_INFO, sizeof(si)), sizeof(si));
	cr_assert_eq(si.magic, T_PVH_MAGIC);
	cr_assert_eq(si.version, 1);
	cr_assert_eq(si.flags, 0);
	cr_assert_eq(si.rsdp_paddr, 0);
	cr_assert_str_eq((const char *)tm_ram(si.cmdline_paddr, 32),
	                 "console=ttyS0 earlyprintk=ttyS0");
	tm_assert_memory_map(&si);

	cr_assert_eq(si.nr_modules, 1);
	struct t_modlist_entry mod;
	memcpy(&mod, tm_ram(si.modlist_paddr, sizeof(mod)), sizeof(mod));
	struct boot_file rd;
	cr_assert_eq(boot_read_file(tm.initrd_path, &rd), 0);
	cr_assert_eq(mod.size, rd.size);
	cr_assert_eq(memcmp(tm_ram(mod.paddr, mod.size), rd.data, rd.size), 0, "initrd contents");
	boot_file_free(&rd);
	cr_assert_eq(mod.paddr & 0xfff, 0);
	cr_assert_geq(mod.paddr, elf_image_end(&elf), "initrd above the kernel's segments");
}

/* Exits 77 (meson: SKIP) with the reason when there is no kernel, instead of a green run. */
int main(int argc, char *argv[])
{
	char why[4400];
	int r = find_kernel_dir(why, sizeof(why));
	if (r == -2) {
		fprintf(stderr, "FAIL: %s\n", why);
		return 1;
	}
	if (r < 0) {
		fprintf(stderr, "SKIP: %s\n", why);
		return 77;
	}
	struct criterion_test_set *tests = criterion_initialize();
	int result = 0;
	if (criterion_handle_args(argc, argv, true))
		result = !criterion_run_all_tests(tests);
	criterion_finalize(tests);
	return result;
}
