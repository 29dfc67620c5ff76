/* boot-fixture.c: see boot-fixture.h. */
#include "boot-fixture.h"

#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct machine tm;
static struct cfg tm_cfg = { .path = "t.ini" };
static char *tm_files[8];
static int tm_n_files;
static char err[8192];

void tm_setup(uint64_t ram)
{
	memset(&tm, 0, sizeof(tm));
	tm.cfg = &tm_cfg;
	tm.ram_size = ram;
	mem_layout_x86(&tm.mem, ram);
	cr_assert_eq(mem_alloc(&tm.mem), 0, "cannot allocate %llu MiB",
	             (unsigned long long)(ram >> 20));
}

void tm_teardown(void)
{
	mem_free(&tm.mem);
	for (int i = 0; i < tm_n_files; i++) {
		unlink(tm_files[i]);
		free(tm_files[i]);
	}
	tm_n_files = 0;
}

char *tm_write_file(const void *data, size_t size)
{
	cr_assert_lt(tm_n_files, 8);
	const char *dir = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char *path = malloc(strlen(dir) + 32);
	cr_assert_not_null(path);
	sprintf(path, "%s/smolvm-boot-XXXXXX", dir);
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0, "mkstemp %s", path);
	cr_assert_eq(write(fd, data, size), (ssize_t)size);
	close(fd);
	tm_files[tm_n_files++] = path;
	return path;
}

const char *tm_stderr(void)
{
	fflush(stderr);
	size_t n = fread(err, 1, sizeof(err) - 1, cr_get_redirected_stderr());
	err[n] = 0;
	return err;
}

uint16_t t_get16(const uint8_t *p)
{
	uint16_t v;
	memcpy(&v, p, 2);
	return v;
}
uint32_t t_get32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}
uint64_t t_get64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}
void t_put16(uint8_t *p, uint16_t v)
{
	memcpy(p, &v, 2);
}
void t_put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}
void t_put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8);
}

uint8_t *tm_ram(uint64_t gpa, uint64_t len)
{
	uint8_t *p = mem_gpa_ptr(&tm.mem, gpa, len);
	cr_assert_not_null(p, "0x%llx + 0x%llx is not RAM", (unsigned long long)gpa,
	                   (unsigned long long)len);
	return p;
}

void tm_assert_memory_map(const struct t_start_info *si)
{
	/* what the guest must see, written out from the machine's layout (core/memory.c) */
	uint64_t low = tm.ram_size < 0xC0000000ull ? tm.ram_size : 0xC0000000ull;
	struct t_memmap_entry want[4] = {
		{ 0, 0xA0000, 1, 0 },
		{ 0xA0000, 0x60000, 2, 0 },
		{ 0x100000, low - 0x100000, 1, 0 },
		{ 0x100000000ull, tm.ram_size - low, 1, 0 },
	};
	unsigned n = tm.ram_size > low ? 4 : 3;

	const uint8_t *zp = tm_ram(BOOT_ZERO_PAGE, 0x1000);
	cr_assert_eq(zp[T_ZP_E820_ENTRIES], n, "e820_entries %u, wanted %u", zp[T_ZP_E820_ENTRIES],
	             n);
	for (unsigned i = 0; i < n; i++) {
		const uint8_t *e = zp + T_ZP_E820_TABLE + i * 20;
		cr_assert_eq(t_get64(e), want[i].addr, "e820[%u].addr", i);
		cr_assert_eq(t_get64(e + 8), want[i].size, "e820[%u].size", i);
		cr_assert_eq(t_get32(e + 16), want[i].type, "e820[%u].type", i);
	}
	if (!si)
		return;
	cr_assert_eq(si->memmap_entries, n, "memmap_entries %u, wanted %u", si->memmap_entries, n);
	const struct t_memmap_entry *mm =
	        (const void *)tm_ram(si->memmap_paddr, n * sizeof(struct t_memmap_entry));
	for (unsigned i = 0; i < n; i++) {
		cr_assert_eq(mm[i].addr, want[i].addr, "memmap[%u].addr", i);
		cr_assert_eq(mm[i].size, want[i].size, "memmap[%u].size", i);
		cr_assert_eq(mm[i].type, want[i].type, "memmap[%u].type", i);
		cr_assert_eq(mm[i].reserved, 0, "memmap[%u].reserved", i);
	}
}
