/*
 * snap-selftest: state that must survive a snapshot and its restore. The payload sets up
 * guest-visible state, asks for a snapshot through the snapshot-port device (one byte to port
 * 0xf5), and checks after that instruction (in the same run with `then = continue`, and in
 * every restore of the file) that the state is what it left:
 *
 *   memory  2 MiB of a xorshift pattern, and a page of zeros whose last byte is not zero
 *   uart    COM1 with FIFOs on, SCR, MCR (OUT2), IER = THRE: a THR-empty interrupt is pending
 *           (IIR 0xc2) and still pending after the snapshot; the divisor and LCR
 *   lapic   the local APIC enabled, its timer periodic (masked) and counting: TMCCT still
 *           moves, TMICT, the LVT and the divide register as written
 *   tsc     never behind its value before the snapshot
 *   disk    a virtio-blk disk (the first virtio_mmio.device= on the command line): four reads
 *           notified just before the snapshot, four writes published but not notified;
 *           after it all eight complete with S_OK and the right data. In a restored run the
 *           writes are not notified again: a device must serve what its restored ring holds.
 *
 * It then prints the input line it finds on COM1 within a second ("snap-selftest: input:
 * ..."), so a test can check that console input given to a restore reaches the guest. Reading
 * port 0xf5 gives how many times the machine was restored; it is printed.
 *
 * Exit codes: 0 all passed; 30 setup, 31 memory, 32 uart, 33 lapic, 34 tsc, 35 disk.
 */
#include "virtio.h"

#define SNAP_PORT 0xf5

#define EXIT_SETUP 30
#define EXIT_MEMORY 31
#define EXIT_UART 32
#define EXIT_LAPIC 33
#define EXIT_TSC 34
#define EXIT_DISK 35

#define LAPIC_BASE 0xfee00000ull
#define LAPIC_SVR 0xf0
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_TMICT 0x380
#define LAPIC_TMCCT 0x390
#define LAPIC_TDCR 0x3e0
#define LVT_MASKED (1u << 16)
#define LVT_PERIODIC (1u << 17)
#define TIMER_VECTOR 0x40u
#define TIMER_COUNT 0x40000000u

#define PATTERN_WORDS (2u << 20) / 8u
#define QUEUE_DEPTH 8
#define READS 4
#define WRITES 4
#define WRITE_FIRST 100

static uint64_t pattern[PATTERN_WORDS];
static uint8_t sparse_page[4096] __attribute__((aligned(4096)));
static uint8_t rbuf[READS][512], wbuf[WRITES][512];
static struct virtio_blk disk;
static int status;

static void fail(int code, const char *fmt, ...) GUEST_PRINTF(2, 3);
static void fail(int code, const char *fmt, ...)
{
	va_list ap;
	printf("snap-selftest: FAIL (%d): ", code);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!status)
		status = code;
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static uint32_t lapic_read(uint32_t reg)
{
	return mmio_read32(LAPIC_BASE + reg);
}

static void lapic_write(uint32_t reg, uint32_t v)
{
	mmio_write32(LAPIC_BASE + reg, v);
}

static void fill_sector(uint8_t *buf, uint64_t sector, char tag)
{
	for (unsigned i = 0; i < 512; i++)
		buf[i] = (uint8_t)((sector * 131 + i * 7) ^ (uint8_t)tag);
}

/* ---- before -------------------------------------------------------------- */

static void setup_memory(void)
{
	uint64_t s = 0x5eed5eed5eedull;
	for (unsigned i = 0; i < PATTERN_WORDS; i++)
		pattern[i] = xorshift(&s);
	sparse_page[4095] = 0x77;
}

static void setup_uart(void)
{
	outb(COM1_BASE + UART_FCR, 0x07); /* FIFOs on, both reset */
	outb(COM1_BASE + UART_SCR, 0xa5);
	outb(COM1_BASE + UART_MCR, UART_MCR_DTR | UART_MCR_RTS | UART_MCR_OUT2);
	outb(COM1_BASE + UART_IER, UART_IER_ETBEI); /* THR empty: an interrupt pending now */
}

static void setup_lapic(void)
{
	lapic_write(LAPIC_SVR, lapic_read(LAPIC_SVR) | 0x100 | 0xff);
	lapic_write(LAPIC_TDCR, 0xb); /* divide by 1 */
	lapic_write(LAPIC_LVT_TIMER, LVT_MASKED | LVT_PERIODIC | TIMER_VECTOR);
	lapic_write(LAPIC_TMICT, TIMER_COUNT);
}

static int setup_disk(void)
{
	struct virtio_mmio_loc locs[VIRTIO_MAX_DEVICES];
	bool scanned;
	uint8_t st;
	int n = virtio_mmio_find(locs, VIRTIO_MAX_DEVICES, &scanned);
	if (n < 1) {
		fail(EXIT_SETUP, "no virtio-mmio disk on the command line");
		return -1;
	}
	int rc = vblk_init(&disk, locs[0].base);
	if (rc) {
		fail(EXIT_SETUP, "disk init: %s (%s)", virtio_strerror(rc), disk.dev.err);
		return -1;
	}
	for (unsigned i = 0; i < READS; i++) {
		fill_sector(wbuf[0], i, 'r');
		rc = vblk_write(&disk, i, wbuf[0], 512, &st);
		if (rc || st != VIRTIO_BLK_S_OK) {
			fail(EXIT_SETUP, "writing sector %u: %s, status %u", i, virtio_strerror(rc),
			     st);
			return -1;
		}
	}
	rc = vblk_queue_setup(&disk, QUEUE_DEPTH);
	if (rc) {
		fail(EXIT_SETUP, "queue setup: %s (%s)", virtio_strerror(rc), disk.dev.err);
		return -1;
	}
	/* four reads, notified: the device may be serving them when the snapshot comes */
	for (unsigned i = 0; i < READS; i++) {
		struct vblk_seg seg = { rbuf[i], 512 };
		memset(rbuf[i], 0, 512);
		if (vblk_queue_start(&disk, i, VIRTIO_BLK_T_IN, i, &seg, 1))
			return fail(EXIT_SETUP, "queue read %u: %s", i, disk.dev.err), -1;
	}
	virtq_kick(&disk.dev);
	/* four writes, published without a notification */
	for (unsigned i = 0; i < WRITES; i++) {
		struct vblk_seg seg = { wbuf[i], 512 };
		fill_sector(wbuf[i], WRITE_FIRST + i, 'w');
		if (vblk_queue_start(&disk, READS + i, VIRTIO_BLK_T_OUT, WRITE_FIRST + i, &seg, 1))
			return fail(EXIT_SETUP, "queue write %u: %s", i, disk.dev.err), -1;
	}
	virtq_publish(&disk.dev);
	return 0;
}

/* ---- after --------------------------------------------------------------- */

static void check_memory(void)
{
	uint64_t s = 0x5eed5eed5eedull;
	for (unsigned i = 0; i < PATTERN_WORDS; i++) {
		uint64_t want = xorshift(&s);
		if (pattern[i] != want) {
			fail(EXIT_MEMORY, "pattern word %u is 0x%llx, wanted 0x%llx", i,
			     (unsigned long long)pattern[i], (unsigned long long)want);
			return;
		}
	}
	for (unsigned i = 0; i < 4095; i++)
		if (sparse_page[i]) {
			fail(EXIT_MEMORY, "sparse page byte %u is 0x%x", i, sparse_page[i]);
			return;
		}
	if (sparse_page[4095] != 0x77)
		fail(EXIT_MEMORY, "the sparse page's last byte is 0x%x, wanted 0x77",
		     sparse_page[4095]);
}

/* Run first after the snapshot: nothing may write THR before IIR is read. */
static void check_uart(uint8_t iir)
{
	uint8_t ier = inb(COM1_BASE + UART_IER), mcr = inb(COM1_BASE + UART_MCR);
	uint8_t scr = inb(COM1_BASE + UART_SCR), lcr = inb(COM1_BASE + UART_LCR);
	outb(COM1_BASE + UART_LCR, lcr | UART_LCR_DLAB);
	uint16_t div = (uint16_t)(inb(COM1_BASE + UART_DLL) | inb(COM1_BASE + UART_DLM) << 8);
	outb(COM1_BASE + UART_LCR, lcr);
	if ((iir & 0xcf) != (UART_IIR_FIFO | UART_IIR_THRI))
		fail(EXIT_UART, "IIR 0x%02x: wanted 0xc2 (FIFOs on, THR-empty interrupt pending)",
		     iir);
	if (ier != UART_IER_ETBEI || scr != 0xa5 || lcr != UART_LCR_8N1 ||
	    mcr != (UART_MCR_DTR | UART_MCR_RTS | UART_MCR_OUT2) || div != 1)
		fail(EXIT_UART, "IER 0x%02x SCR 0x%02x LCR 0x%02x MCR 0x%02x divisor %u changed",
		     ier, scr, lcr, mcr, div);
}

static void check_lapic(void)
{
	uint32_t lvt = lapic_read(LAPIC_LVT_TIMER), icr = lapic_read(LAPIC_TMICT);
	uint32_t tdcr = lapic_read(LAPIC_TDCR), svr = lapic_read(LAPIC_SVR);
	if ((lvt & (LVT_MASKED | LVT_PERIODIC | 0xff)) !=
	            (LVT_MASKED | LVT_PERIODIC | TIMER_VECTOR) ||
	    icr != TIMER_COUNT || (tdcr & 0xb) != 0xb || !(svr & 0x100)) {
		fail(EXIT_LAPIC, "LVT timer 0x%x, TMICT 0x%x, TDCR 0x%x, SVR 0x%x changed", lvt,
		     icr, tdcr, svr);
		return;
	}
	uint32_t c0 = lapic_read(LAPIC_TMCCT);
	uint64_t t0 = rdtsc();
	while (rdtsc() - t0 < 2000000)
		cpu_relax();
	uint32_t c1 = lapic_read(LAPIC_TMCCT);
	if (c0 == 0 || c0 == c1)
		fail(EXIT_LAPIC, "the LAPIC timer stands still (TMCCT 0x%x then 0x%x)", c0, c1);
}

static void check_disk(bool restored)
{
	struct virtio_dev *d = &disk.dev;
	uint8_t st;
	if (!restored) /* a restored device must find the writes in its ring by itself */
		virtio_write(d, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	bool done[QUEUE_DEPTH] = { false };
	for (unsigned n = 0; n < QUEUE_DEPTH; n++) {
		unsigned slot;
		int rc = vblk_queue_reap(&disk, &slot, &st);
		if (rc) {
			fail(EXIT_DISK, "request %u of %u after the snapshot: %s (%s)", n + 1,
			     QUEUE_DEPTH, virtio_strerror(rc), d->err);
			return;
		}
		if (done[slot] || st != VIRTIO_BLK_S_OK) {
			fail(EXIT_DISK, "slot %u: status %u%s", slot, st,
			     done[slot] ? ", completed twice" : "");
			return;
		}
		done[slot] = true;
	}
	for (unsigned i = 0; i < READS; i++) {
		uint8_t want[512];
		fill_sector(want, i, 'r');
		if (memcmp(rbuf[i], want, 512) != 0)
			fail(EXIT_DISK, "the read of sector %u returned other data", i);
	}
	/* read the written sectors back (queued, as the driver now is) */
	for (unsigned i = 0; i < WRITES; i++) {
		struct vblk_seg seg = { rbuf[i], 512 };
		memset(rbuf[i], 0, 512);
		if (vblk_queue_start(&disk, i, VIRTIO_BLK_T_IN, WRITE_FIRST + i, &seg, 1))
			return fail(EXIT_DISK, "queue read-back %u: %s", i, d->err);
	}
	virtq_kick(d);
	for (unsigned n = 0; n < WRITES; n++) {
		unsigned slot;
		int rc = vblk_queue_reap(&disk, &slot, &st);
		if (rc || st != VIRTIO_BLK_S_OK) {
			fail(EXIT_DISK, "read-back %u: %s, status %u (%s)", n, virtio_strerror(rc),
			     st, d->err);
			return;
		}
	}
	for (unsigned i = 0; i < WRITES; i++) {
		uint8_t want[512];
		fill_sector(want, WRITE_FIRST + i, 'w');
		if (memcmp(rbuf[i], want, 512) != 0)
			fail(EXIT_DISK, "sector %u does not hold what the queued write wrote",
			     WRITE_FIRST + i);
	}
	uint8_t dev_status = virtio_get_status(d);
	if (!(dev_status & VIRTIO_STATUS_DRIVER_OK) || (dev_status & VIRTIO_STATUS_NEEDS_RESET))
		fail(EXIT_DISK, "device status 0x%x after the snapshot", dev_status);
}

static void echo_input(void)
{
	char line[128];
	unsigned n = 0;
	uint64_t t0 = rdtsc(), limit = tsc_khz(NULL) * 1000; /* one second */
	while (n < sizeof(line) - 1 && rdtsc() - t0 < limit) {
		if (!(inb(COM1_BASE + UART_LSR) & UART_LSR_DR)) {
			cpu_relax();
			continue;
		}
		char c = (char)inb(COM1_BASE + UART_RBR);
		if (c == '\n' || c == '\r')
			break;
		line[n++] = c;
	}
	line[n] = 0;
	if (n)
		printf("snap-selftest: input: %s\n", line);
	else
		printf("snap-selftest: no input\n");
}

int guest_main(const struct boot_info *bi)
{
	(void)bi;
	uart_init();
	printf("snap-selftest: setting up\n");
	tsc_khz(NULL); /* calibrated before, not in the middle of a check */
	setup_memory();
	setup_lapic();
	if (setup_disk() < 0)
		return status;
	setup_uart();
	printf("snap-selftest: requesting a snapshot\n");
	uint64_t tsc_before = rdtsc();
	outb(SNAP_PORT, 1);
	/* here again after every restore, as after the request in this run */
	uint8_t iir = inb(COM1_BASE + UART_IIR);
	uint64_t tsc_after = rdtsc();
	uint8_t restores = inb(SNAP_PORT);
	check_uart(iir);
	printf("snap-selftest: resumed (restores: %u)\n", restores);
	if (tsc_after < tsc_before)
		fail(EXIT_TSC, "the TSC went back from %llu to %llu",
		     (unsigned long long)tsc_before, (unsigned long long)tsc_after);
	check_memory();
	check_lapic();
	check_disk(restores > 0);
	echo_input();
	printf("snap-selftest: %s\n", status ? "FAIL" : "PASS");
	return status;
}
