/*
 * blk-bench: virtio-blk throughput through the guest kit's polled driver
 * (queue depth 1: one request in flight, completion polled, no interrupts).
 *
 * Disk 0 (the first virtio_mmio.device= word, else the first virtio-blk
 * device without VIRTIO_BLK_F_RO found by scanning QEMU microvm's window)
 * is used over its first `range` bytes. Rows, in this order:
 *   seqwrite-64k   64 KiB writes, sequential, wrapping inside the range
 *   seqread-64k    64 KiB reads, sequential
 *   randwrite-4k   4 KiB writes at 4 KiB-aligned pseudo-random offsets
 *   randread-4k    4 KiB reads at pseudo-random offsets (same generator)
 *
 * Command line:
 *   blk-bench.requests=N   requests per 4 KiB row (default 2000); the 64 KiB
 *                          rows do N/4 (at least 1)
 *   blk-bench.range=MIB    bytes of the disk used, in MiB (default 64, capped
 *                          at the disk's capacity)
 *
 * Output, one line per row, for a host program to parse:
 *   blk-bench: <row> <requests> req <seconds> s <req/s> req/s <MB/s> MB/s
 * with seconds to 6 decimals, req/s to 1, MB/s (10^6 bytes) to 2. Time is
 * TSC cycles converted with the TSC frequency, which is printed first as
 *   blk-bench: tsc <kHz> kHz (<source>)
 * When the frequency is unknown the rows read
 *   blk-bench: <row> <requests> req <cycles> cycles
 * The last line is "blk-bench: done".
 *
 * Exit codes: 0 done; 10 no read-write virtio-blk disk; 11 init failed;
 * 12 disk smaller than 1 MiB; 13 a request failed (driver error or status).
 */
#include "virtio.h"

#define EXIT_DISCOVERY 10
#define EXIT_INIT 11
#define EXIT_SMALL 12
#define EXIT_REQUEST 13

#define SECTOR VIRTIO_BLK_SECTOR
#define MAX_SEGS 64

static struct virtio_blk disk;
static uint8_t buf[65536] __attribute__((aligned(4096)));

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static uint64_t parse_u64(const char *s, uint64_t dflt)
{
	uint64_t v = 0;
	if (!*s)
		return dflt;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return dflt;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	return v;
}

static uint64_t cmdline_u64(const char *key, uint64_t dflt)
{
	char val[32];
	if (guest_cmdline_get(key, val, sizeof(val)) <= 0)
		return dflt;
	return parse_u64(val, dflt);
}

/* One request of len bytes at sector, split into segments of at most size_max. */
static int io(uint32_t type, uint64_t sector, uint32_t len)
{
	struct vblk_seg segs[MAX_SEGS];
	unsigned n = 0;
	uint32_t chunk = disk.size_max && disk.size_max < len ? disk.size_max : len;
	for (uint32_t off = 0; off < len && n < MAX_SEGS; off += chunk) {
		segs[n].buf = buf + off;
		segs[n].len = len - off < chunk ? len - off : chunk;
		n++;
	}
	uint8_t st;
	int rc = vblk_request(&disk, type, sector, segs, n, &st);
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
		int rc = vblk_init(&disk, locs[i].base);
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
	uint64_t range = cmdline_u64("blk-bench.range", 64) << 20;
	if (range > disk.capacity * SECTOR)
		range = disk.capacity * SECTOR;
	range &= ~(uint64_t)65535;
	if (range < (1u << 20)) {
		printf("blk-bench: disk too small (%llu sectors)\n",
		       (unsigned long long)disk.capacity);
		return EXIT_SMALL;
	}
	uint64_t n4k = cmdline_u64("blk-bench.requests", 2000);
	if (!n4k)
		n4k = 1;
	uint64_t n64k = n4k / 4 ? n4k / 4 : 1;
	printf("blk-bench: disk 0x%llx, range %llu MiB, queue depth 1, size_max %u, seg_max %u\n",
	       (unsigned long long)disk.dev.base, (unsigned long long)(range >> 20), disk.size_max,
	       disk.seg_max);

	for (unsigned i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 31 + 7);

	for (unsigned r = 0; r < ARRAY_SIZE(rows); r++) {
		const struct row *row = &rows[r];
		uint64_t count = row->size == 4096 ? n4k : n64k;
		uint64_t slots = range / row->size;
		rng = 0x9e3779b97f4a7c15ull; /* same offsets for the write and read rows */
		uint64_t t0 = rdtsc();
		for (uint64_t k = 0; k < count; k++) {
			uint64_t slot = row->random ? next_rand() % slots : k % slots;
			if (io(row->type, slot * (row->size / SECTOR), row->size))
				return EXIT_REQUEST;
		}
		report(row->name, count, row->size, rdtsc() - t0, khz);
	}
	printf("blk-bench: done\n");
	return 0;
}
