/*
 * hello: prints a banner, the entry path, the command line and the memory
 * map, then exits with code 0 through the debug-exit port.
 * With "hello.wait" on the command line it spins forever after its last line instead (the
 * streaming test reads that line while the guest is still running, then stops smolvm).
 * With "hello.flood" it writes 'A' to the UART forever, without waiting for THRE (the
 * signal tests: an output nobody reads must not keep smolvm from its signals).
 * With "hello.read=N" it reads N bytes of console input and prints their count and hash.
 */
#include "guest.h"
#include "virtio.h" /* tsc_khz, rdtsc */

static void print_size(uint64_t size)
{
	if (size >= (1ull << 30) && !(size & ((1ull << 30) - 1)))
		printf("%llu GiB", (unsigned long long)(size >> 30));
	else if (size >= (1ull << 20) && !(size & ((1ull << 20) - 1)))
		printf("%llu MiB", (unsigned long long)(size >> 20));
	else if (size >= 1024)
		printf("%llu KiB", (unsigned long long)(size >> 10));
	else
		printf("%llu B", (unsigned long long)size);
}

/* hello.read=N: reads N bytes from COM1 (polled, 30 s at most in all) and prints their count
 * and FNV-1a hash, so a test can check that console input of any size arrives whole. */
static int read_input(uint32_t want)
{
	uint32_t got = 0, hash = 2166136261u;
	const char *src;
	uint64_t end = rdtsc() + tsc_khz(&src) * 1000 * 30;
	while (got < want && rdtsc() < end) {
		if (!(inb(COM1_BASE + UART_LSR) & UART_LSR_DR))
			continue;
		hash = (hash ^ inb(COM1_BASE + UART_RBR)) * 16777619u;
		got++;
	}
	printf("hello: read %u of %u bytes, fnv1a 0x%08x\n", got, want, hash);
	return got == want ? 0 : 1;
}

int guest_main(const struct boot_info *bi)
{
	printf("smolvm guest kit: hello\n");
	printf("entry: %s (boot data at 0x%llx)\n", bi->entry, (unsigned long long)bi->info_paddr);
	printf("cmdline: %s%s\n", bi->cmdline, bi->cmdline_truncated ? " [truncated]" : "");
	if (bi->warning)
		printf("warning: %s\n", bi->warning);

	printf("memory map: %u entries\n", bi->nr_mem);
	uint64_t usable = 0;
	for (uint32_t i = 0; i < bi->nr_mem; i++) {
		const struct boot_mem *m = &bi->mem[i];
		uint64_t last = m->size ? m->addr + m->size - 1 : m->addr;
		printf("  mem: 0x%016llx-0x%016llx size 0x%010llx (", (unsigned long long)m->addr,
		       (unsigned long long)last, (unsigned long long)m->size);
		print_size(m->size);
		const char *name = guest_mem_type_name(m->type);
		printf(") %s", name);
		if (strcmp(name, "unknown") == 0)
			printf(" (type %u)", m->type);
		printf("\n");
		if (m->type == E820_RAM)
			usable += m->size;
	}
	printf("usable RAM: ");
	print_size(usable);
	printf("\n");
	printf("hello: done\n");
	if (guest_cmdline_get("hello.read", NULL, 0) > 0)
		return read_input((uint32_t)guest_cmdline_u64("hello.read", 0));
	if (guest_cmdline_has("hello.flood"))
		for (;;) {
			outb(COM1_BASE + UART_THR, 'A');
			(void)inb(COM1_BASE + UART_LSR);
		}
	if (guest_cmdline_has("hello.wait"))
		for (;;)
			cpu_relax();
	return 0;
}
