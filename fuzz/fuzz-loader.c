/*
 * fuzz-loader: the kernel loaders (core/arch/x86/loader-elf.c, core/arch/x86/loader-bzimage.c) and
 * the boot area boot_prepare() writes around them (core/arch/x86/boot.c), into a guest RAM of a few
 * sizes.
 *
 * Input: 6 bytes of setup, then the kernel file.
 *   byte 0: bits 0-1 the RAM size (1, 4, 20 or 48 MiB), bit 2 an initrd, bit 3 ACPI tables,
 *           bit 4 adds 0xff00 to the command line's length
 *   bytes 1-2: the command line's length (little-endian; past the 64 KiB limit with bit 4)
 *   bytes 3-5: the initrd's length in 4 KiB pages, at most 32 MiB (its bytes do not matter)
 * The kernel and the initrd are memfds named by /proc/self/fd paths, read as smolvm reads
 * [boot] kernel and initrd.
 *
 * Checked: no sanitizer report, and a payload boot_prepare() accepts enters inside guest RAM.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "boot.h"
#include "fuzz-input.h"
#include "layout.h"
#include "machine.h"

static const uint64_t ram_sizes[4] = { 1ull << 20, 4ull << 20, 20ull << 20, 48ull << 20 };
static struct guest_mem rams[4];
static int kernel_fd = -1, initrd_fd = -1;
static char kernel_path[64], initrd_path[64];
static struct cfg *cfg;
static char cmdline[BOOT_CMDLINE_MAX + 16];

static int memfd(const char *name, char *path, size_t len)
{
	int fd = memfd_create(name, MFD_CLOEXEC);

	if (fd < 0) {
		perror("fuzz-loader: memfd_create");
		abort();
	}
	snprintf(path, len, "/proc/self/fd/%d", fd);
	return fd;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	for (int i = 0; i < 4; i++) {
		mem_layout_x86(&rams[i], ram_sizes[i]);
		if (mem_alloc(&rams[i]) < 0) {
			fprintf(stderr, "fuzz-loader: cannot allocate %llu bytes of guest RAM\n",
			        (unsigned long long)ram_sizes[i]);
			abort();
		}
	}
	kernel_fd = memfd("kernel", kernel_path, sizeof(kernel_path));
	initrd_fd = memfd("initrd", initrd_path, sizeof(initrd_path));
	cfg = cfg_new_empty("fuzz.ini", ".");
	memset(cmdline, 'a', sizeof(cmdline) - 1);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };
	struct machine m;
	struct smol_x86_boot regs;

	uint8_t flags = in_u8(&in);
	size_t cmd_len = (size_t)in_le(&in, 2) + (flags & 0x10 ? 0x10000 - 0x100 : 0);
	uint64_t initrd_pages = in_le(&in, 3) & 0x1fff;

	if (ftruncate(kernel_fd, 0) < 0 ||
	    (in.n && pwrite(kernel_fd, in.p, in.n, 0) != (ssize_t)in.n))
		abort();
	memset(&m, 0, sizeof(m));
	m.cfg = cfg;
	m.mem = rams[flags & 3];
	m.ram_size = m.mem.size;
	m.kernel_path = kernel_path;
	if (flags & 4) {
		if (ftruncate(initrd_fd, (off_t)(initrd_pages << 12)) < 0)
			abort();
		m.initrd_path = initrd_path;
	}
	if (flags & 8)
		m.acpi_rsdp_gpa = 0xe0000;
	if (cmd_len > sizeof(cmdline) - 1)
		cmd_len = sizeof(cmdline) - 1;
	cmdline[cmd_len] = 0;
	m.cmdline = cmdline;

	if (boot_prepare(&m, &regs) == 0 && !mem_gpa_ptr(&m.mem, regs.rip, 1)) {
		fprintf(stderr, "fuzz-loader: the payload enters at 0x%llx, outside guest RAM\n",
		        (unsigned long long)regs.rip);
		abort();
	}
	cmdline[cmd_len] = 'a';
	return 0;
}
