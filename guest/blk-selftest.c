/*
 * blk-selftest: drives two virtio-blk disks through the guest kit's polled
 * virtio-mmio driver (rt/virtio.c) and checks them against virtio 1.2
 * (3.1 initialisation, 5.2 block device).
 *
 * Disks: from the command line's virtio_mmio.device= words, in order (disk 0
 * = first, disk 1 = second); without such words the microvm window is scanned
 * and disk 0 is the first disk that does not offer VIRTIO_BLK_F_RO, disk 1 the
 * first that does.
 *   disk 0  read-write, at least 1 MiB: written, flushed, read back
 *   disk 1  read-only (offers VIRTIO_BLK_F_RO): a write must fail with IOERR
 *
 * The pattern (for a host test to check the image of disk 0): every pattern
 * sector s holds at offset 0 the 32 ASCII bytes "blk-selftest sector %011llu\n"
 * (s in decimal, zero-padded), and at each offset j in [32, 512) the byte
 * (s ^ j) & 0xff. The sectors written are printed on the last line before the
 * verdict: "blk-selftest: pattern sectors <s> <s> ...".
 *
 * Command line:
 *   blk-selftest.strict   GET_ID must NUL-pad all 20 bytes (see code 17)
 *
 * Exit codes (the code of the FIRST failing check; 0 = all passed):
 *    0  all checks passed
 *   10  discovery  fewer than two virtio-blk devices found
 *   11  init       the 3.1 handshake failed on disk 0 or disk 1
 *   12  capacity   disk 0 smaller than 1 MiB, or blk_size not a power of 2
 *                  in [512, 64 KiB], or disk 0 offers VIRTIO_BLK_F_RO
 *   13  write      a single-segment write of a pattern sector not S_OK
 *   14  multiseg   a multi-segment (3 segments, 4 KiB) write not S_OK
 *   15  flush      FLUSH offered but not S_OK
 *   16  readback   a read not S_OK, or data differing from the pattern
 *                  (single-segment, multi-segment and one 4 KiB read)
 *   17  get_id     GET_ID not S_OK, or its 20 bytes do not start with a
 *                  printable string (NUL-terminated unless 20 bytes long);
 *                  with blk-selftest.strict also when the bytes after the NUL
 *                  are not NUL (QEMU 7.2 writes only the string and one NUL:
 *                  by default that only warns)
 *   18  readonly   disk 1 does not offer RO, a write to it is not S_IOERR, or
 *                  its sector 0 changed
 *   19  past-end   a read at sector `capacity`, or straddling the end, not
 *                  failing with an error status
 *   20  driver     the driver timed out or the device reported a protocol
 *                  error (used id/len) or NEEDS_RESET during a request
 *   21  queued     disk 0 re-initialised with VIRTIO_F_EVENT_IDX when
 *                  offered: QUEUED single-sector writes (sectors 200..215),
 *                  all in flight at once behind one notification, then read
 *                  back the same way into separate buffers: a status not
 *                  S_OK, a slot completed twice or never, or data differing.
 *                  With EVENT_IDX the second batch is only notified if the
 *                  device asked for it (avail_event): a device that never
 *                  updates avail_event times out here.
 */
#include "virtio.h"

#define EXIT_DISCOVERY 10
#define EXIT_INIT 11
#define EXIT_CAPACITY 12
#define EXIT_WRITE 13
#define EXIT_MULTISEG 14
#define EXIT_FLUSH 15
#define EXIT_READBACK 16
#define EXIT_GET_ID 17
#define EXIT_READONLY 18
#define EXIT_PAST_END 19
#define EXIT_DRIVER 20
#define EXIT_QUEUED 21

#define SECTOR VIRTIO_BLK_SECTOR
#define MULTI_FIRST 64 /* sectors 64..71 are written as one 3-segment request */
#define MULTI_COUNT 8
#define QUEUED_FIRST 200 /* sectors 200..215 are written as queued requests */
#define QUEUED 16
#define MAX_PATTERN 32

static struct virtio_blk disks[VIRTIO_MAX_DEVICES];
static uint8_t buf[4096] __attribute__((aligned(4096)));
static uint8_t expect[4096] __attribute__((aligned(4096)));

static uint8_t qbuf[QUEUED][SECTOR] __attribute__((aligned(4096)));

static int first_fail;
static uint64_t pattern[MAX_PATTERN];
static unsigned npattern;
static bool strict;

static void fail(int code, const char *fmt, ...) GUEST_PRINTF(2, 3);
static void fail(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("blk-selftest: FAIL [%d] ", code);
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	if (!first_fail)
		first_fail = code;
}

static void pass(const char *fmt, ...) GUEST_PRINTF(1, 2);
static void pass(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("blk-selftest: ok   ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
}

static void fill_sector(uint8_t *p, uint64_t s)
{
	char head[33];
	snprintf(head, sizeof(head), "blk-selftest sector %011llu\n", (unsigned long long)s);
	memcpy(p, head, 32);
	for (unsigned j = 32; j < SECTOR; j++)
		p[j] = (uint8_t)(s ^ j);
}

/* Runs a request; a driver-level failure (timeout, NEEDS_RESET) is EXIT_DRIVER. */
static bool req_ok(struct virtio_blk *b, int rc, const char *what)
{
	if (rc == 0)
		return true;
	fail(EXIT_DRIVER, "%s: %s (%s)", what, virtio_strerror(rc), b->dev.err);
	return false;
}

static const char *status_name(uint8_t st)
{
	switch (st) {
	case VIRTIO_BLK_S_OK: return "OK";
	case VIRTIO_BLK_S_IOERR: return "IOERR";
	case VIRTIO_BLK_S_UNSUPP: return "UNSUPP";
	default: return "?";
	}
}

static void note_pattern(uint64_t s)
{
	if (npattern < MAX_PATTERN)
		pattern[npattern++] = s;
}

static void write_single(struct virtio_blk *b, uint64_t s)
{
	uint8_t st;
	fill_sector(buf, s);
	if (!req_ok(b, vblk_write(b, s, buf, SECTOR, &st), "write"))
		return;
	if (st != VIRTIO_BLK_S_OK) {
		fail(EXIT_WRITE, "write sector %llu: status %u (%s)", (unsigned long long)s, st,
		     status_name(st));
		return;
	}
	note_pattern(s);
}

static void check_read(struct virtio_blk *b, uint64_t s, const struct vblk_seg *segs, unsigned nseg,
                       unsigned nsect, const char *how)
{
	uint8_t st;
	memset(buf, 0xa5, sizeof(buf));
	if (!req_ok(b, vblk_request(b, VIRTIO_BLK_T_IN, s, segs, nseg, &st), how))
		return;
	if (st != VIRTIO_BLK_S_OK) {
		fail(EXIT_READBACK, "%s sector %llu: status %u (%s)", how, (unsigned long long)s,
		     st, status_name(st));
		return;
	}
	for (unsigned i = 0; i < nsect; i++)
		fill_sector(expect + i * SECTOR, s + i);
	for (unsigned i = 0; i < nsect * SECTOR; i++)
		if (buf[i] != expect[i]) {
			fail(EXIT_READBACK, "%s sector %llu: byte %u is 0x%02x, want 0x%02x", how,
			     (unsigned long long)(s + i / SECTOR), i % SECTOR, buf[i], expect[i]);
			return;
		}
	pass("%s sector %llu (%u sectors, %u segments) matches", how, (unsigned long long)s, nsect,
	     nseg);
}

/*
 * QUEUED requests of type at sectors QUEUED_FIRST.., all in flight at once: started, one
 * kick, then reaped in whatever order the device completes them. Returns the number of
 * notifications the kick sent (0 or 1), or -1 after a failure.
 */
static int queued_batch(struct virtio_blk *b, uint32_t type, const char *what)
{
	bool done[QUEUED] = { false };
	for (unsigned i = 0; i < QUEUED; i++) {
		struct vblk_seg seg = { qbuf[i], SECTOR };
		if (!req_ok(b, vblk_queue_start(b, i, type, QUEUED_FIRST + i, &seg, 1), what))
			return -1;
	}
	int kicked = virtq_kick(&b->dev) ? 1 : 0;
	for (unsigned n = 0; n < QUEUED; n++) {
		unsigned slot = 0;
		uint8_t st = 0xff;
		if (!req_ok(b, vblk_queue_reap(b, &slot, &st), what))
			return -1;
		if (done[slot]) {
			fail(EXIT_QUEUED, "%s: slot %u completed twice", what, slot);
			return -1;
		}
		done[slot] = true;
		if (st != VIRTIO_BLK_S_OK) {
			fail(EXIT_QUEUED, "%s of sector %u: status %u (%s)", what,
			     QUEUED_FIRST + slot, st, status_name(st));
			return -1;
		}
	}
	return kicked;
}

static void check_queued(struct virtio_blk *b)
{
	int rc = vblk_init_features(b, b->dev.base, 1ull << VIRTIO_F_EVENT_IDX);
	if (rc) {
		fail(EXIT_QUEUED, "re-init with EVENT_IDX: %s (%s)", virtio_strerror(rc),
		     b->dev.err);
		return;
	}
	bool ev = virtio_has(&b->dev, VIRTIO_F_EVENT_IDX);
	if (!req_ok(b, vblk_queue_setup(b, QUEUED), "queue setup"))
		return;
	for (unsigned i = 0; i < QUEUED; i++)
		fill_sector(qbuf[i], QUEUED_FIRST + i);
	int k1 = queued_batch(b, VIRTIO_BLK_T_OUT, "queued write");
	if (k1 < 0)
		return;
	for (unsigned i = 0; i < QUEUED; i++)
		note_pattern(QUEUED_FIRST + i);
	memset(qbuf, 0xa5, sizeof(qbuf));
	int k2 = queued_batch(b, VIRTIO_BLK_T_IN, "queued read");
	if (k2 < 0)
		return;
	for (unsigned i = 0; i < QUEUED; i++) {
		fill_sector(expect, QUEUED_FIRST + i);
		if (memcmp(qbuf[i], expect, SECTOR) != 0) {
			fail(EXIT_QUEUED, "queued read of sector %u: data differs from the pattern",
			     QUEUED_FIRST + i);
			return;
		}
	}
	pass("%u queued writes and reads of sectors %u..%u, EVENT_IDX %s, notifications %d+%d",
	     QUEUED, QUEUED_FIRST, QUEUED_FIRST + QUEUED - 1, ev ? "on" : "off", k1, k2);
}

/* Picks disk 0 and disk 1 among the initialised devices. */
static int pick(int n, bool scanned, struct virtio_blk **d0, struct virtio_blk **d1)
{
	*d0 = *d1 = NULL;
	if (!scanned) {
		if (n >= 2) {
			*d0 = &disks[0];
			*d1 = &disks[1];
		}
	} else {
		for (int i = 0; i < n; i++) {
			if (!disks[i].ro && !*d0)
				*d0 = &disks[i];
			else if (disks[i].ro && !*d1)
				*d1 = &disks[i];
		}
	}
	return *d0 && *d1 ? 0 : -1;
}

int guest_main(const struct boot_info *bi)
{
	(void)bi;
	strict = guest_cmdline_has("blk-selftest.strict");
	const char *src;
	uint64_t khz = tsc_khz(&src);
	printf("blk-selftest: start (TSC %llu kHz from %s)\n", (unsigned long long)khz, src);

	struct virtio_mmio_loc locs[VIRTIO_MAX_DEVICES];
	bool scanned;
	int nloc = virtio_mmio_find(locs, VIRTIO_MAX_DEVICES, &scanned);
	printf("blk-selftest: %d virtio-mmio device(s) %s\n", nloc,
	       scanned ? "found by scanning 0xfeb00000" : "on the command line");

	int n = 0;
	for (int i = 0; i < nloc; i++) {
		struct virtio_blk *b = &disks[n];
		int rc = vblk_init(b, locs[i].base);
		if (rc == -VIRTIO_ENODEV && b->dev.device_id != 0 &&
		    b->dev.device_id != VIRTIO_ID_BLOCK) {
			printf("blk-selftest: 0x%llx: device id %u, not a disk, skipped\n",
			       (unsigned long long)locs[i].base, b->dev.device_id);
			continue;
		}
		if (rc) {
			fail(EXIT_INIT, "disk at 0x%llx: %s (%s)", (unsigned long long)locs[i].base,
			     virtio_strerror(rc), b->dev.err);
			n++;
			continue;
		}
		pass("init 0x%llx: vendor 0x%x features 0x%llx of 0x%llx, queue %u, capacity %llu "
		     "sectors, blk_size %u, seg_max %u, size_max %u%s%s",
		     (unsigned long long)locs[i].base, b->dev.vendor_id,
		     (unsigned long long)b->dev.features,
		     (unsigned long long)b->dev.device_features, b->dev.vq.num,
		     (unsigned long long)b->capacity, b->blk_size, b->seg_max, b->size_max,
		     b->ro ? ", RO" : "", b->flush ? ", FLUSH" : "");
		n++;
	}
	if (first_fail)
		return first_fail;
	struct virtio_blk *d0, *d1;
	if (pick(n, scanned, &d0, &d1)) {
		fail(EXIT_DISCOVERY, "need a read-write and a read-only disk, found %d disk(s)", n);
		return first_fail;
	}
	printf("blk-selftest: disk 0 at 0x%llx, disk 1 at 0x%llx\n",
	       (unsigned long long)d0->dev.base, (unsigned long long)d1->dev.base);

	/* capacity */
	bool pow2 = d0->blk_size && !(d0->blk_size & (d0->blk_size - 1));
	if (d0->capacity < 2048 || d0->capacity > (1ull << 50))
		fail(EXIT_CAPACITY, "disk 0 capacity %llu sectors (want >= 2048)",
		     (unsigned long long)d0->capacity);
	else if (!pow2 || d0->blk_size < 512 || d0->blk_size > 65536)
		fail(EXIT_CAPACITY, "disk 0 blk_size %u", d0->blk_size);
	else if (d0->ro)
		fail(EXIT_CAPACITY, "disk 0 offers VIRTIO_BLK_F_RO");
	else
		pass("disk 0 capacity %llu sectors (%llu KiB)", (unsigned long long)d0->capacity,
		     (unsigned long long)(d0->capacity / 2));
	if (first_fail)
		return first_fail;

	/* single-segment writes */
	uint64_t cap = d0->capacity;
	const uint64_t singles[] = { 0, 1, 7, 100, cap / 2, cap - 1 };
	for (unsigned i = 0; i < ARRAY_SIZE(singles); i++)
		write_single(d0, singles[i]);
	if (!first_fail)
		pass("%u single-sector writes", (unsigned)ARRAY_SIZE(singles));

	/* one multi-segment write: 512 + 1536 + 2048 bytes (fewer segments if seg_max says so) */
	for (unsigned i = 0; i < MULTI_COUNT; i++)
		fill_sector(buf + i * SECTOR, MULTI_FIRST + i);
	struct vblk_seg wsegs[3] = { { buf, 512 }, { buf + 512, 1536 }, { buf + 2048, 2048 } };
	unsigned wn = 3;
	if (d0->seg_max && d0->seg_max < 3) {
		wn = 1;
		wsegs[0].len = 4096;
	}
	uint8_t st;
	if (req_ok(d0, vblk_request(d0, VIRTIO_BLK_T_OUT, MULTI_FIRST, wsegs, wn, &st),
	           "multi-segment write")) {
		if (st != VIRTIO_BLK_S_OK)
			fail(EXIT_MULTISEG, "multi-segment write: status %u (%s)", st,
			     status_name(st));
		else {
			for (unsigned i = 0; i < MULTI_COUNT; i++)
				note_pattern(MULTI_FIRST + i);
			pass("multi-segment write of sectors %u..%u in %u segments", MULTI_FIRST,
			     MULTI_FIRST + MULTI_COUNT - 1, wn);
		}
	}

	/* flush */
	if (d0->flush) {
		if (req_ok(d0, vblk_flush(d0, &st), "flush")) {
			if (st != VIRTIO_BLK_S_OK)
				fail(EXIT_FLUSH, "flush: status %u (%s)", st, status_name(st));
			else
				pass("flush");
		}
	} else {
		printf("blk-selftest: skip flush (VIRTIO_BLK_F_FLUSH not offered)\n");
	}

	/* read back */
	for (unsigned i = 0; i < ARRAY_SIZE(singles); i++) {
		struct vblk_seg s = { buf, SECTOR };
		check_read(d0, singles[i], &s, 1, 1, "read");
	}
	struct vblk_seg rsegs[2] = { { buf, 2048 }, { buf + 2048, 2048 } };
	if (!d0->seg_max || d0->seg_max >= 2)
		check_read(d0, MULTI_FIRST, rsegs, 2, MULTI_COUNT, "multi-segment read");
	struct vblk_seg whole = { buf, 4096 };
	check_read(d0, MULTI_FIRST, &whole, 1, MULTI_COUNT, "4 KiB read");

	/* GET_ID */
	char id[VIRTIO_BLK_ID_BYTES + 1];
	memset(id, 0x5a, sizeof(id));
	if (req_ok(d0, vblk_get_id(d0, id, &st), "get_id")) {
		id[VIRTIO_BLK_ID_BYTES] = '\0';
		size_t len = strnlen(id, VIRTIO_BLK_ID_BYTES);
		bool printable = true, padded = true;
		for (size_t i = 0; i < VIRTIO_BLK_ID_BYTES; i++) {
			if (i < len)
				printable = printable && id[i] >= 0x20 && id[i] < 0x7f;
			else
				padded = padded && id[i] == '\0';
		}
		if (st != VIRTIO_BLK_S_OK || !printable) {
			fail(EXIT_GET_ID, "get_id: status %u (%s), printable %d", st,
			     status_name(st), printable);
		} else if (!padded) {
			/* QEMU 7.2 writes the string and one NUL, not the rest of the 20 bytes */
			if (strict)
				fail(EXIT_GET_ID,
				     "get_id \"%s\": bytes after the NUL not written as NUL", id);
			else
				printf("blk-selftest: warn get_id \"%s\": bytes after the first "
				       "NUL "
				       "left unwritten (not NUL-padded; an error with "
				       "blk-selftest.strict)\n",
				       id);
		} else {
			pass("get_id \"%s\"", id);
		}
	}

	/* read-only disk */
	if (!d1->ro) {
		fail(EXIT_READONLY, "disk 1 does not offer VIRTIO_BLK_F_RO");
	} else {
		static uint8_t before[SECTOR], after[SECTOR];
		uint8_t st2 = 0xff, st3 = 0xff;
		if (req_ok(d1, vblk_read(d1, 0, before, SECTOR, &st), "disk 1 read") &&
		    req_ok(d1, vblk_write(d1, 0, expect, SECTOR, &st2), "disk 1 write") &&
		    req_ok(d1, vblk_read(d1, 0, after, SECTOR, &st3), "disk 1 read")) {
			if (st != VIRTIO_BLK_S_OK || st3 != VIRTIO_BLK_S_OK)
				fail(EXIT_READONLY, "disk 1 read: status %u, %u", st, st3);
			else if (st2 != VIRTIO_BLK_S_IOERR)
				fail(EXIT_READONLY, "disk 1 write: status %u (%s), want IOERR", st2,
				     status_name(st2));
			else if (memcmp(before, after, SECTOR) != 0)
				fail(EXIT_READONLY, "disk 1 sector 0 changed by a refused write");
			else
				pass("disk 1 offers RO, write refused with IOERR, data unchanged");
		}
	}

	/* past the end */
	uint8_t st_end = 0, st_straddle = 0;
	if (req_ok(d0, vblk_read(d0, cap, buf, SECTOR, &st_end), "read past end") &&
	    req_ok(d0, vblk_read(d0, cap - 1, buf, 2 * SECTOR, &st_straddle),
	           "read straddling end")) {
		if (st_end == VIRTIO_BLK_S_OK || st_straddle == VIRTIO_BLK_S_OK)
			fail(EXIT_PAST_END, "read at sector %llu: status %u, across the end: %u",
			     (unsigned long long)cap, st_end, st_straddle);
		else
			pass("reads past the end fail (status %u, %u)", st_end, st_straddle);
	}

	/* several requests in flight (last: it re-initialises disk 0) */
	check_queued(d0);

	printf("blk-selftest: pattern sectors");
	for (unsigned i = 0; i < npattern; i++)
		printf(" %llu", (unsigned long long)pattern[i]);
	printf("\n");
	printf("blk-selftest: %s (exit %d)\n", first_fail ? "FAILED" : "PASSED", first_fail);
	return first_fail;
}
