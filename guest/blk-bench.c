/*
 * blk-bench: virtio-blk throughput through the guest kit's polled driver
 * (completions polled, no interrupts), at queue depth 1 (one request in
 * flight) and at a deeper queue (the next request added as soon as one
 * completes; EVENT_IDX negotiated when offered, so the driver notifies only
 * when the device has run out of requests and asked to hear of the next one).
 *
 * Disk 0 (the first virtio_mmio.device= word, else the first virtio-blk
 * device without VIRTIO_BLK_F_RO found by scanning QEMU microvm's window)
 * is used over its first `range` bytes. Rows, in this order, first all at
 * queue depth 1 (suffix -qd1), then all at depth D (suffix -qdD):
 *   seqwrite-64k   64 KiB writes, sequential, wrapping inside the range
 *   seqread-64k    64 KiB reads, sequential
 *   randwrite-4k   4 KiB writes at 4 KiB-aligned pseudo-random offsets
 *   randread-4k    4 KiB reads at pseudo-random offsets (same generator)
 * Each request in flight has its own 64 KiB buffer.
 *
 * Command line:
 *   blk-bench.requests=N   requests per 4 KiB row (default 2000); the 64 KiB
 *                          rows do N/4 (at least 1)
 *   blk-bench.range=MIB    bytes of the disk used, in MiB (default 64, capped
 *                          at the disk's capacity)
 *   blk-bench.depth=D      the deeper queue, 2..32 (default 32); 1 runs the
 *                          depth-1 rows only
 *
 * Output, one line per row, for a host program to parse:
 *   blk-bench: <row>-qd<depth> <requests> req <seconds> s <req/s> req/s <MB/s> MB/s
 * with seconds to 6 decimals, req/s to 1, MB/s (10^6 bytes) to 2. Time is
 * TSC cycles converted with the TSC frequency, which is printed first as
 *   blk-bench: tsc <kHz> kHz (<source>)
 * When the frequency is unknown the rows read
 *   blk-bench: <row>-qd<depth> <requests> req <cycles> cycles
 * The last line is "blk-bench: done".
 *
 * Exit codes: 0 done; 10 no read-write virtio-blk disk; 11 init failed;
 * 12 disk smaller than 1 MiB; 13 a request failed (driver error or status);
 * 14 the queue cannot hold D requests of 64 KiB.
 */
#include "virtio.h"

#define EXIT_DISCOVERY 10
#define EXIT_INIT 11
#define EXIT_SMALL 12
#define EXIT_REQUEST 13
#define EXIT_DEPTH 14

#define SECTOR VIRTIO_BLK_SECTOR
#define MAX_SEGS 64

static struct virtio_blk disk;
static uint8_t bufs[VBLK_MAX_DEPTH][65536] __attribute__((aligned(4096)));

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

/* Splits len bytes of buf into segments of at most size_max; returns the count. */
static unsigned split(struct vblk_seg *segs, uint8_t *buf, uint32_t len)
{
	unsigned n = 0;
	uint32_t chunk = disk.size_max && disk.size_max < len ? disk.size_max : len;
	for (uint32_t off = 0; off < len && n < MAX_SEGS; off += chunk) {
		segs[n].buf = buf + off;
		segs[n].len = len - off < chunk ? len - off : chunk;
		n++;
	}
	return n;
}

static int request_failed(int rc, uint32_t type, uint64_t sector, uint8_t st)
{
	if (rc) {
		printf("blk-bench: request failed: %s (%s)\n", virtio_strerror(rc), disk.dev.err);
		return -1;
	}
	if (st != VIRTIO_BLK_S_OK) {
		printf("blk-bench: %s of sector %llu: status %u\n",
		       type == VIRTIO_BLK_T_IN ? "read" : "write", (unsigned long long)sector, st);
		return -1;
	}
	return 0;
}

/* One request of len bytes at sector, the only one in flight. */
static int io(uint32_t type, uint64_t sector, uint32_t len)
{
	struct vblk_seg segs[MAX_SEGS];
	unsigned n = split(segs, bufs[0], len);
	uint8_t st = 0;
	int rc = vblk_request(&disk, type, sector, segs, n, &st);
	return request_failed(rc, type, sector, st);
}

static void report(const char *row, uint64_t n, uint32_t size, uint64_t cycles, uint64_t khz)
{
	if (!khz) {
		printf("blk-bench: %s %llu req %llu cycles\n", row, (unsigned long long)n,
		       (unsigned long long)cycles);
		return;
	}
	uint64_t us = tsc_to_us(cycles);
	if (!us)
		us = 1;
	uint64_t rps10 = n * 10000000ull / us; /* req/s x 10 */
	uint64_t mbps100 = n * size * 100ull / us; /* bytes/us = MB/s; x 100 */
	printf("blk-bench: %s %llu req %llu.%06llu s %llu.%llu req/s %llu.%02llu MB/s\n", row,
	       (unsigned long long)n, (unsigned long long)(us / 1000000),
	       (unsigned long long)(us % 1000000), (unsigned long long)(rps10 / 10),
	       (unsigned long long)(rps10 % 10), (unsigned long long)(mbps100 / 100),
	       (unsigned long long)(mbps100 % 100));
}

static uint64_t slot_sector[VBLK_MAX_DEPTH];

struct row {
	const char *name;
	uint32_t type;
	uint32_t size;
	bool random;
};

static const struct row rows[] = {
	{ "seqwrite-64k", VIRTIO_BLK_T_OUT, 65536, false },
	{ "seqread-64k", VIRTIO_BLK_T_IN, 65536, false },
	{ "randwrite-4k", VIRTIO_BLK_T_OUT, 4096, true },
	{ "randread-4k", VIRTIO_BLK_T_IN, 4096, true },
};

static uint64_t row_sector(const struct row *row, uint64_t k, uint64_t slots)
{
	uint64_t slot = row->random ? next_rand() % slots : k % slots;
	return slot * (row->size / SECTOR);
}

static int run_queued(const struct row *row, uint64_t count, unsigned depth, uint64_t slots)
{
	struct vblk_seg segs[MAX_SEGS];
	uint64_t issued = 0, done = 0;
	unsigned free_slots[VBLK_MAX_DEPTH], nfree = depth;
	for (unsigned i = 0; i < depth; i++)
		free_slots[i] = depth - 1 - i;
	while (done < count) {
		while (nfree && issued < count) {
			unsigned s = free_slots[--nfree];
			uint64_t sector = row_sector(row, issued++, slots);
			unsigned n = split(segs, bufs[s], row->size);
			slot_sector[s] = sector;
			int rc = vblk_queue_start(&disk, s, row->type, sector, segs, n);
			if (rc)
				return request_failed(rc, row->type, sector, 0);
		}
		virtq_kick(&disk.dev);
		unsigned s = 0;
		uint8_t st = 0;
		int rc = vblk_queue_reap(&disk, &s, &st);
		if (request_failed(rc, row->type, rc ? 0 : slot_sector[s], st))
			return -1;
		free_slots[nfree++] = s;
		done++;
	}
	return 0;
}

int guest_main(const struct boot_info *bi)
{
	(void)bi;
	const char *src;
	uint64_t khz = tsc_khz(&src);
	printf("blk-bench: tsc %llu kHz (%s)\n", (unsigned long long)khz, src);

	struct virtio_mmio_loc locs[VIRTIO_MAX_DEVICES];
	bool scanned;
	int n = virtio_mmio_find(locs, VIRTIO_MAX_DEVICES, &scanned);
	bool found = false;
	for (int i = 0; i < n && !found; i++) {
		int rc = vblk_init_features(&disk, locs[i].base, 1ull << VIRTIO_F_EVENT_IDX);
		if (rc) {
			if (rc != -VIRTIO_ENODEV || !scanned) {
				printf("blk-bench: disk at 0x%llx: %s (%s)\n",
				       (unsigned long long)locs[i].base, virtio_strerror(rc),
				       disk.dev.err);
				return EXIT_INIT;
			}
			continue;
		}
		found = !(scanned && disk.ro);
	}
	if (!found || disk.ro) {
		printf("blk-bench: no read-write virtio-blk disk\n");
		return EXIT_DISCOVERY;
	}
	uint64_t range = guest_cmdline_u64("blk-bench.range", 64) << 20;
	if (range > disk.capacity * SECTOR)
		range = disk.capacity * SECTOR;
	range &= ~(uint64_t)65535;
	if (range < (1u << 20)) {
		printf("blk-bench: disk too small (%llu sectors)\n",
		       (unsigned long long)disk.capacity);
		return EXIT_SMALL;
	}
	uint64_t n4k = guest_cmdline_u64("blk-bench.requests", 2000);
	if (!n4k)
		n4k = 1;
	uint64_t n64k = n4k / 4 ? n4k / 4 : 1;
	uint64_t depth = guest_cmdline_u64("blk-bench.depth", VBLK_MAX_DEPTH);
	if (depth < 1 || depth > VBLK_MAX_DEPTH)
		depth = VBLK_MAX_DEPTH;
	printf("blk-bench: disk 0x%llx, range %llu MiB, queue depths 1 and %llu, queue size %u, "
	       "size_max %u, seg_max %u, event_idx %s\n",
	       (unsigned long long)disk.dev.base, (unsigned long long)(range >> 20),
	       (unsigned long long)depth, disk.dev.vq.num, disk.size_max, disk.seg_max,
	       virtio_has(&disk.dev, VIRTIO_F_EVENT_IDX) ? "on" : "off");

	for (unsigned b = 0; b < VBLK_MAX_DEPTH; b++)
		for (unsigned i = 0; i < sizeof(bufs[b]); i++)
			bufs[b][i] = (uint8_t)(i * 31 + 7 + b);

	for (unsigned pass = 0; pass < 2; pass++) {
		unsigned qd = pass == 0 ? 1 : (unsigned)depth;
		if (pass == 1) {
			if (qd == 1)
				break;
			int rc = vblk_queue_setup(&disk, qd);
			if (rc) {
				printf("blk-bench: %s\n", disk.dev.err);
				return EXIT_DEPTH;
			}
		}
		for (unsigned r = 0; r < ARRAY_SIZE(rows); r++) {
			const struct row *row = &rows[r];
			uint64_t count = row->size == 4096 ? n4k : n64k;
			uint64_t slots = range / row->size;
			char name[40];
			snprintf(name, sizeof(name), "%s-qd%u", row->name, qd);
			rng = 0x9e3779b97f4a7c15ull; /* same offsets for the write and read rows */
			uint64_t t0 = rdtsc();
			if (qd == 1) {
				for (uint64_t k = 0; k < count; k++)
					if (io(row->type, row_sector(row, k, slots), row->size))
						return EXIT_REQUEST;
			} else if (run_queued(row, count, qd, slots)) {
				return EXIT_REQUEST;
			}
			report(name, count, row->size, rdtsc() - t0, khz);
		}
	}
	printf("blk-bench: done\n");
	return 0;
}
