/*
 * stats-probe: a known amount of work for `smolvm ctl SOCK stats` to count (tests/kvm/ctl-test):
 * writes=N single-byte writes to the boot-timer's port (0x440), then reads=M 4 KiB reads and
 * one write from the first virtio-blk disk (each its own request and QueueNotify), then
 * "stats-probe: done", and waits (up to 60 s) for a byte on COM1, which the host sends once it
 * has read the counters. Exit codes: 0 done; 30 no disk; 31 a request failed; 32 no byte came.
 */
#include "guest.h"
#include "virtio.h"

#define BOOT_TIMER_PORT 0x440
#define WAIT_S 60

static uint8_t buf[4096] __attribute__((aligned(4096)));

int guest_main(const struct boot_info *bi)
{
	(void)bi;
	uint32_t writes = (uint32_t)guest_cmdline_u64("writes", 1000),
	         reads = (uint32_t)guest_cmdline_u64("reads", 20);
	struct virtio_mmio_loc locs[4];
	static struct virtio_blk disk;
	bool scanned;
	int n = virtio_mmio_find(locs, 4, &scanned);
	if (n < 1 || vblk_init(&disk, locs[0].base)) {
		printf("stats-probe: no disk\n");
		return 30;
	}
	for (uint32_t k = 0; k < writes; k++)
		outb(BOOT_TIMER_PORT, 7);
	uint8_t status;
	for (uint32_t k = 0; k < reads; k++)
		if (vblk_read(&disk, 8 * k, buf, sizeof(buf), &status) || status) {
			printf("stats-probe: read %u failed\n", k);
			return 31;
		}
	memset(buf, 0x5a, sizeof(buf));
	if (vblk_write(&disk, 0, buf, sizeof(buf), &status) || status) {
		printf("stats-probe: the write failed\n");
		return 31;
	}
	printf("stats-probe: done: %u port writes, %u disk reads, 1 disk write\n", writes, reads);
	const char *src;
	uint64_t end = rdtsc() + tsc_khz(&src) * 1000 * WAIT_S;
	while (!(inb(COM1_BASE + UART_LSR) & UART_LSR_DR))
		if (rdtsc() > end) {
			printf("stats-probe: no byte on COM1 in %d s\n", WAIT_S);
			return 32;
		}
	printf("stats-probe: got '%c', bye\n", inb(COM1_BASE + UART_RBR));
	return 0;
}
