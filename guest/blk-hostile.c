/*
 * blk-hostile: submits malformed virtqueue requests to virtio-blk disk 0 and
 * checks that the device survives them (virtio 1.2, 2.7 split virtqueues).
 *
 * For each hostile request the device may complete it with an error status,
 * leave it unused, or set DEVICE_NEEDS_RESET; the payload waits with a
 * timeout (1 s), reports what happened, resets and re-initialises the device
 * when needed (3.1), and checks with a valid read that the device still
 * serves. Finally a valid write + flush + read must succeed and match.
 *
 * Disk 0: the first virtio_mmio.device= word on the command line, else the
 * first virtio-blk device without VIRTIO_BLK_F_RO found by scanning the QEMU
 * microvm window. It must hold at least 64 sectors.
 *
 * Hostile requests that write go to sector 32 (OUT, read from memory the
 * device must refuse); hostile requests whose descriptors are otherwise valid
 * are IN requests into the payload's own buffers, so nothing the device
 * might accept changes the disk. The only valid write is sectors 16..23,
 * filled like blk-selftest's pattern: each sector s starts with the 32 ASCII
 * bytes "blk-hostile sector %012llu\n" and holds (s ^ j) & 0xff at each
 * offset j in [32, 512).
 *
 * Cases (name: what the device may do):
 *   outside-ram        OUT, data at 0xfff00000000: error, unused or NEEDS_RESET
 *   past-ram-top       OUT, data at the first byte after the highest RAM range
 *   straddle-ram-top   OUT, 512 bytes starting 256 bytes below the top of RAM
 *   loop               header desc 0 -> data desc 1 -> desc 0
 *   long-loop          desc 0 -> 1 -> ... -> queue size - 1 -> 0
 *   next-out-of-range  a chain whose last NEXT points at index = queue size
 *   len-overflow       OUT, data lengths 0xffffffff + 1024 (sum wraps 32 bits)
 *   avail-far-ahead    avail->idx moved queue size + 7 past the last request
 *   indirect-long      (INDIRECT_DESC) IN, an indirect table of queue size + 2
 *                      valid descriptors: a chain longer than the queue; the
 *                      device may also accept it (S_OK allowed)
 *   indirect-nested    (INDIRECT_DESC) IN, an indirect descriptor inside an
 *                      indirect table (S_OK allowed: the spec forbids only
 *                      the driver from doing it)
 *
 * Command line:
 *   blk-hostile.strict   a malformed request completed with S_OK fails (12)
 *
 * QEMU 7.2's virtio-blk-device (microvm) completes the three bad-address OUT
 * requests with S_OK (it reads through a bounce buffer and writes what it got
 * to sector 32), sets NEEDS_RESET on the others, accepts indirect-long.
 *
 * Exit codes (the code of the FIRST failure; 0 = pass):
 *    0  the device refused or ignored every hostile request it had to, and
 *       the final valid request succeeded with matching data
 *   10  discovery  no virtio-blk disk 0 (or smaller than 64 sectors)
 *   11  init       the 3.1 handshake failed on disk 0
 *   12  accepted   with blk-hostile.strict only: a hostile request that cannot
 *                  be valid completed with S_OK (without strict: a warning)
 *   13  reset      reset + re-initialisation failed after a hostile request
 *   14  dead       the device no longer serves a valid read after a hostile
 *                  request, even after a reset
 *   15  final      the final valid write, flush or read failed
 *   16  mismatch   the final read-back differs from what was written
 */
#include "virtio.h"

#define EXIT_DISCOVERY 10
#define EXIT_INIT 11
#define EXIT_ACCEPTED 12
#define EXIT_RESET 13
#define EXIT_DEAD 14
#define EXIT_FINAL 15
#define EXIT_MISMATCH 16

#define SECTOR VIRTIO_BLK_SECTOR
#define SCRATCH_SECTOR 32
#define FINAL_SECTOR 16
#define FINAL_COUNT 8
#define HOSTILE_TIMEOUT_US 1000000

static struct virtio_blk disk;
static struct virtio_blk_req_hdr hdr __attribute__((aligned(64)));
static volatile uint8_t status __attribute__((aligned(64)));
static uint8_t buf[(VIRTQ_MAX + 8) * SECTOR] __attribute__((aligned(4096)));
static uint8_t check[FINAL_COUNT * SECTOR] __attribute__((aligned(4096)));
static struct virtq_desc itable[VIRTQ_MAX + 8] __attribute__((aligned(16)));
static struct virtq_desc itable2[4] __attribute__((aligned(16)));
static int first_fail;
static bool strict;

static void fail(int code, const char *fmt, ...) GUEST_PRINTF(2, 3);
static void fail(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("blk-hostile: FAIL [%d] ", code);
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	if (!first_fail)
		first_fail = code;
}

static uint64_t ram_top(const struct boot_info *bi)
{
	uint64_t top = 0;
	for (uint32_t i = 0; i < bi->nr_mem; i++)
		if (bi->mem[i].type == E820_RAM && bi->mem[i].addr + bi->mem[i].size > top)
			top = bi->mem[i].addr + bi->mem[i].size;
	return top;
}

static struct virtq_desc D(uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
	return (struct virtq_desc){ addr, len, flags, next };
}

static uint64_t
A(const volatile void *p)
{
	return (uint64_t)(uintptr_t)p;
}

static void set_hdr(uint32_t type)
{
	hdr.type = type;
	hdr.reserved = 0;
	hdr.sector = SCRATCH_SECTOR;
	status = 0xff;
}

/* ---- the cases: each fills the descriptor table (head 0) ---- */

static uint64_t g_top;

static void build_bad_addr(struct virtq_desc *t, uint64_t addr)
{
	set_hdr(VIRTIO_BLK_T_OUT);
	t[0] = D(A(&hdr), sizeof(hdr), VIRTQ_DESC_F_NEXT, 1);
	t[1] = D(addr, SECTOR, VIRTQ_DESC_F_NEXT, 2);
	t[2] = D(A(&status), 1, VIRTQ_DESC_F_WRITE, 0);
}

static void c_outside_ram(struct virtq_desc *t, uint16_t num)
{
	(void)num;
	build_bad_addr(t, 0xfff00000000ull);
}

static void c_past_top(struct virtq_desc *t, uint16_t num)
{
	(void)num;
	build_bad_addr(t, g_top);
}

static void c_straddle_top(struct virtq_desc *t, uint16_t num)
{
	(void)num;
	build_bad_addr(t, g_top - SECTOR / 2);
}

static void c_loop(struct virtq_desc *t, uint16_t num)
{
	(void)num;
	set_hdr(VIRTIO_BLK_T_IN);
	t[0] = D(A(&hdr), sizeof(hdr), VIRTQ_DESC_F_NEXT, 1);
	t[1] = D(A(buf), SECTOR, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 0);
}

static void c_long_loop(struct virtq_desc *t, uint16_t num)
{
	set_hdr(VIRTIO_BLK_T_IN);
	t[0] = D(A(&hdr), sizeof(hdr), VIRTQ_DESC_F_NEXT, 1);
	for (uint16_t i = 1; i < num; i++)
		t[i] = D(A(buf + (size_t)i * SECTOR), SECTOR,
		         VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, (uint16_t)((i + 1) % num));
}

static void c_next_out_of_range(struct virtq_desc *t, uint16_t num)
{
	set_hdr(VIRTIO_BLK_T_IN);
	t[0] = D(A(&hdr), sizeof(hdr), VIRTQ_DESC_F_NEXT, 1);
	t[1] = D(A(buf), SECTOR, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, num);
}

static void c_len_overflow(struct virtq_desc *t, uint16_t num)
{
	(void)num;
	set_hdr(VIRTIO_BLK_T_OUT);
	t[0] = D(A(&hdr), sizeof(hdr), VIRTQ_DESC_F_NEXT, 1);
	t[1] = D(A(buf), 0xffffffffu, VIRTQ_DESC_F_NEXT, 2);
	t[2] = D(A(buf), 1024, VIRTQ_DESC_F_NEXT, 3);
	t[3] = D(A(&status), 1, VIRTQ_DESC_F_WRITE, 0);
}

static void c_indirect_long(struct virtq_desc *t, uint16_t num)
{
	uint16_t n = (uint16_t)(num + 2); /* header + num data + status */
	set_hdr(VIRTIO_BLK_T_IN);
	itable[0] = D(A(&hdr), sizeof(hdr), VIRTQ_DESC_F_NEXT, 1);
	for (uint16_t i = 1; i < n - 1; i++)
		itable[i] = D(A(buf + (size_t)(i - 1) * SECTOR), SECTOR,
		              VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, (uint16_t)(i + 1));
	itable[n - 1] = D(A(&status), 1, VIRTQ_DESC_F_WRITE, 0);
	t[0] = D(A(itable), (uint32_t)(n * sizeof(struct virtq_desc)), VIRTQ_DESC_F_INDIRECT, 0);
}

static void c_indirect_nested(struct virtq_desc *t, uint16_t num)
{
	(void)num;
	set_hdr(VIRTIO_BLK_T_IN);
	itable2[0] = D(A(&hdr), sizeof(hdr), VIRTQ_DESC_F_NEXT, 1);
	itable2[1] = D(A(buf), SECTOR, VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2);
	itable2[2] = D(A(&status), 1, VIRTQ_DESC_F_WRITE, 0);
	itable[0] = D(A(itable2), 3 * sizeof(struct virtq_desc), VIRTQ_DESC_F_INDIRECT, 0);
	t[0] = D(A(itable), sizeof(struct virtq_desc), VIRTQ_DESC_F_INDIRECT, 0);
}

struct hcase {
	const char *name;
	void (*build)(struct virtq_desc *t, uint16_t num);
	bool ok_allowed; /* S_OK is a legitimate answer */
	bool needs_indirect;
	bool avail_ahead; /* no chain: move avail->idx instead */
};

static const struct hcase cases[] = {
	{ "outside-ram", c_outside_ram, false, false, false },
	{ "past-ram-top", c_past_top, false, false, false },
	{ "straddle-ram-top", c_straddle_top, false, false, false },
	{ "loop", c_loop, false, false, false },
	{ "long-loop", c_long_loop, false, false, false },
	{ "next-out-of-range", c_next_out_of_range, false, false, false },
	{ "len-overflow", c_len_overflow, false, false, false },
	{ "avail-far-ahead", NULL, false, false, true },
	{ "indirect-long", c_indirect_long, true, true, false },
	{ "indirect-nested", c_indirect_nested, true, true, false },
};

/* ---- driving ----------------------------------------------------------------- */

static bool probe_read(void)
{
	uint8_t st;
	int rc = vblk_read(&disk, 0, check, SECTOR, &st);
	return rc == 0 && st == VIRTIO_BLK_S_OK;
}

static bool reinit(const char *why)
{
	int rc = vblk_reinit(&disk);
	if (rc) {
		fail(EXIT_RESET, "reset + re-init after %s: %s (%s)", why, virtio_strerror(rc),
		     disk.dev.err);
		return false;
	}
	printf("blk-hostile:   device reset and re-initialised\n");
	return true;
}

static bool run_case(const struct hcase *c)
{
	struct virtio_dev *d = &disk.dev;
	if (c->needs_indirect && !virtio_has(d, VIRTIO_F_INDIRECT_DESC)) {
		printf("blk-hostile: %-18s skipped (INDIRECT_DESC not offered)\n", c->name);
		return true;
	}
	uint16_t num = d->vq.num;
	bool must_reset = false;
	uint32_t id = 0, len = 0;
	int rc;

	if (c->avail_ahead) {
		virtq_publish_idx(d, (uint16_t)(d->vq.avail_idx + num + 7));
		must_reset = true; /* our ring state no longer matches the device's */
	} else {
		c->build(d->vq.mem->desc, num);
		virtq_submit(d, 0);
	}
	rc = virtq_wait(d, HOSTILE_TIMEOUT_US, &id, &len);
	uint8_t dev_status = virtio_get_status(d);

	printf("blk-hostile: %-18s ", c->name);
	if (rc == -VIRTIO_ENEEDS_RESET) {
		printf("device set NEEDS_RESET (status 0x%02x)\n", dev_status);
		must_reset = true;
	} else if (rc == -VIRTIO_ETIMEDOUT) {
		printf("left unused (no used entry in %u ms, status 0x%02x)\n",
		       HOSTILE_TIMEOUT_US / 1000, dev_status);
		must_reset = true;
	} else if (rc) {
		printf("driver error %s\n", virtio_strerror(rc));
		must_reset = true;
	} else {
		uint8_t st = status;
		printf("completed: used id %u len %u, status byte 0x%02x%s, device status 0x%02x\n",
		       id, len, st, st == VIRTIO_BLK_S_OK ? " (OK!)" : "", dev_status);
		if (dev_status & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED))
			must_reset = true;
		if (id != 0)
			must_reset = true;
		if (st == VIRTIO_BLK_S_OK && !c->avail_ahead && !c->ok_allowed) {
			if (strict)
				fail(EXIT_ACCEPTED,
				     "%s: the device completed a malformed request with S_OK",
				     c->name);
			else
				printf("blk-hostile: warn %s: malformed request completed with "
				       "S_OK (an error with blk-hostile.strict)\n",
				       c->name);
		}
	}

	if (must_reset && !reinit(c->name))
		return false;
	if (probe_read())
		return true;
	printf("blk-hostile:   valid read after %s failed (%s): resetting\n", c->name,
	       disk.dev.err);
	if (!reinit(c->name))
		return false;
	if (probe_read())
		return true;
	fail(EXIT_DEAD, "valid read after %s still fails after a reset (%s)", c->name,
	     disk.dev.err);
	return false;
}

static void fill_sector(uint8_t *p, uint64_t s)
{
	char head[33];
	snprintf(head, sizeof(head), "blk-hostile sector %012llu\n", (unsigned long long)s);
	memcpy(p, head, 32);
	for (unsigned j = 32; j < SECTOR; j++)
		p[j] = (uint8_t)(s ^ j);
}

static void final_check(void)
{
	uint8_t st;
	for (unsigned i = 0; i < FINAL_COUNT; i++)
		fill_sector(buf + i * SECTOR, FINAL_SECTOR + i);
	int rc = vblk_write(&disk, FINAL_SECTOR, buf, FINAL_COUNT * SECTOR, &st);
	if (rc || st != VIRTIO_BLK_S_OK) {
		fail(EXIT_FINAL, "final write: %s, status %u (%s)", virtio_strerror(rc), st,
		     disk.dev.err);
		return;
	}
	if (disk.flush) {
		rc = vblk_flush(&disk, &st);
		if (rc || st != VIRTIO_BLK_S_OK) {
			fail(EXIT_FINAL, "final flush: %s, status %u", virtio_strerror(rc), st);
			return;
		}
	}
	memset(check, 0, sizeof(check));
	rc = vblk_read(&disk, FINAL_SECTOR, check, FINAL_COUNT * SECTOR, &st);
	if (rc || st != VIRTIO_BLK_S_OK) {
		fail(EXIT_FINAL, "final read: %s, status %u (%s)", virtio_strerror(rc), st,
		     disk.dev.err);
		return;
	}
	if (memcmp(buf, check, FINAL_COUNT * SECTOR) != 0) {
		fail(EXIT_MISMATCH, "final read-back differs from the write");
		return;
	}
	printf("blk-hostile: final write + %sread of sectors %u..%u ok\n",
	       disk.flush ? "flush + " : "", FINAL_SECTOR, FINAL_SECTOR + FINAL_COUNT - 1);
}

int guest_main(const struct boot_info *bi)
{
	strict = guest_cmdline_has("blk-hostile.strict");
	printf("blk-hostile: start%s\n", strict ? " (strict)" : "");
	g_top = ram_top(bi);
	printf("blk-hostile: top of RAM 0x%llx\n", (unsigned long long)g_top);

	struct virtio_mmio_loc locs[VIRTIO_MAX_DEVICES];
	bool scanned;
	int n = virtio_mmio_find(locs, VIRTIO_MAX_DEVICES, &scanned);
	bool found = false;
	for (int i = 0; i < n && !found; i++) {
		int rc = vblk_init(&disk, locs[i].base);
		if (rc) {
			if (rc != -VIRTIO_ENODEV || !scanned) {
				fail(EXIT_INIT, "disk at 0x%llx: %s (%s)",
				     (unsigned long long)locs[i].base, virtio_strerror(rc),
				     disk.dev.err);
				return first_fail;
			}
			continue;
		}
		if (scanned && disk.ro)
			continue;
		found = true;
	}
	if (!found || disk.capacity < 64) {
		fail(EXIT_DISCOVERY, "no read-write virtio-blk disk of at least 64 sectors");
		return first_fail;
	}
	printf("blk-hostile: disk 0 at 0x%llx, capacity %llu sectors, queue %u, features 0x%llx\n",
	       (unsigned long long)disk.dev.base, (unsigned long long)disk.capacity,
	       disk.dev.vq.num, (unsigned long long)disk.dev.features);
	if (!g_top || g_top < SECTOR)
		g_top = 1ull << 32;

	for (unsigned i = 0; i < ARRAY_SIZE(cases); i++)
		if (!run_case(&cases[i]))
			break;
	if (first_fail != EXIT_RESET && first_fail != EXIT_DEAD)
		final_check();

	printf("blk-hostile: %s (exit %d)\n", first_fail ? "FAILED" : "PASSED", first_fail);
	return first_fail;
}
