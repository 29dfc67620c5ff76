/*
 * fuzz-virtio-blk: virtio-blk (devices/virtio-blk) with the virtio library's transport and
 * virtqueue (devices/virtio) through the fake host: the guest's register accesses, its rings
 * and requests, and guest RAM rewritten under the device between notifications. Requests are
 * served in the QueueNotify handler (no ioeventfd: one thread, reproducible).
 *
 * Input: byte 0 configures the disk (bit 0 read-only, bit 1 block_size 4096, bit 2 no driver
 * handshake: the input brings the device up itself); then operations, one byte and operands:
 *   op & 7 == 0  MMIO read,  width 1 << (op >> 3 & 3), at the 2 bytes' offset & 0x1ff
 *   op & 7 == 1  MMIO write, the same, then the value
 *   op & 7 == 2  descriptor (index, address, length, flags, next), a 16-byte table entry
 *   op & 7 == 3  a head into the avail ring, avail idx published
 *   op & 7 == 4  QueueNotify
 *   op & 7 == 5  (op >> 3) + 1 bytes written into guest RAM at a 19-bit offset (rings,
 *                tables, headers, buffers: everything below 512 KiB)
 *   op & 7 == 6  a well-formed request: type, sector, data length, published and notified
 *   op & 7 == 7  op >> 3 & 3: 0 a machine reset, 1 a restore, 2 a restore of changed state,
 *                3 the driver's handshake again
 * Accesses past the 0x200-byte window are not made (the core's bus never gives one).
 *
 * Checked: no sanitizer report, the device only drives its own interrupt line, and a restore
 * gives back the state that was saved.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <fcntl.h>
#include <unistd.h>

#include "fuzz-dev.h"
#include "virtio-dev.h"
#include "virtio.h"

#define BASE FAKE_MMIO_AUTO_BASE
#define QSIZE 16
#define DESC 0x1000
#define AVAIL 0x2000
#define USED 0x3000
#define HDR 0x10000
#define DATA 0x20000
#define STATUS 0x40000
#define WINDOW 0x80000
#define DISK_SIZE (64u << 10)

static char dir[] = "/tmp/fuzz-virtio-blk-XXXXXX";
static char disk_path[64];
static int disk_fd = -1;
static uint8_t image[DISK_SIZE];
static uint16_t avail_idx;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (!mkdtemp(dir)) {
		perror("fuzz-virtio-blk: mkdtemp");
		abort();
	}
	snprintf(disk_path, sizeof(disk_path), "%s/disk.img", dir);
	disk_fd = open(disk_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (disk_fd < 0) {
		perror("fuzz-virtio-blk: disk image");
		abort();
	}
	for (unsigned i = 0; i < DISK_SIZE; i++)
		image[i] = (uint8_t)(i / 512 + i);
	return 0;
}

static void wr32(uint64_t off, uint32_t v)
{
	fake_mmio_write(BASE + off, 4, v);
}

static uint32_t rd32(uint64_t off)
{
	return (uint32_t)fake_mmio_read(BASE + off, 4);
}

/* What Linux's virtio_mmio + virtio_blk do, accepting every feature offered. */
static void handshake(void)
{
	wr32(VIRTIO_MMIO_STATUS, 0);
	wr32(VIRTIO_MMIO_STATUS, 1);
	wr32(VIRTIO_MMIO_STATUS, 3);
	for (uint32_t sel = 0; sel < 2; sel++) {
		wr32(VIRTIO_MMIO_DEVICE_FEATURES_SEL, sel);
		uint32_t f = rd32(VIRTIO_MMIO_DEVICE_FEATURES);
		wr32(VIRTIO_MMIO_DRIVER_FEATURES_SEL, sel);
		wr32(VIRTIO_MMIO_DRIVER_FEATURES, f);
	}
	wr32(VIRTIO_MMIO_STATUS, 0xb);
	wr32(VIRTIO_MMIO_QUEUE_SEL, 0);
	wr32(VIRTIO_MMIO_QUEUE_NUM, QSIZE);
	wr32(VIRTIO_MMIO_QUEUE_DESC_LOW, DESC);
	wr32(VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
	wr32(VIRTIO_MMIO_QUEUE_DRIVER_LOW, AVAIL);
	wr32(VIRTIO_MMIO_QUEUE_DRIVER_HIGH, 0);
	wr32(VIRTIO_MMIO_QUEUE_DEVICE_LOW, USED);
	wr32(VIRTIO_MMIO_QUEUE_DEVICE_HIGH, 0);
	wr32(VIRTIO_MMIO_QUEUE_READY, 1);
	wr32(VIRTIO_MMIO_STATUS, 0xf);
	avail_idx = le16toh(*(uint16_t *)(fake_ram() + AVAIL + 2));
}

static void put_le(uint64_t gpa, uint64_t v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++)
		fake_ram()[gpa + i] = (uint8_t)(v >> (8 * i));
}

static void desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	uint64_t d = DESC + 16ull * (i % QSIZE);

	put_le(d, addr, 8);
	put_le(d + 8, len, 4);
	put_le(d + 12, flags, 2);
	put_le(d + 14, next, 2);
}

static void publish(uint16_t head)
{
	put_le(AVAIL + 4 + 2ull * (avail_idx % QSIZE), head, 2);
	avail_idx++;
	__atomic_thread_fence(__ATOMIC_RELEASE);
	put_le(AVAIL + 2, avail_idx, 2);
}

/* A request as a driver makes one: header, data (if any), status; in slot 0..4. */
static void request(struct in *in)
{
	static const uint32_t types[8] = { 0, 1, 4, 8, 11, 13, 2, 0xffffffff };
	uint8_t t = in_u8(in);
	unsigned slot = t >> 3 & 3;
	uint32_t type = types[t & 7];
	uint64_t sector = in_le(in, 1);
	uint32_t len = (uint32_t)in_le(in, 2);
	uint64_t hdr = HDR + 32ull * slot, data = DATA + 0x8000ull * slot;
	unsigned d0 = 3 * slot;

	put_le(hdr, type, 4);
	put_le(hdr + 4, 0, 4);
	put_le(hdr + 8, sector, 8);
	if (type == 11 || type == 13) { /* one discard / write-zeroes segment */
		put_le(data, sector, 8);
		put_le(data + 8, len >> 9, 4);
		put_le(data + 12, t >> 5 & 1, 4);
		len = 16;
	}
	len &= 0x7fff;
	bool in_dir = type == 0 || type == 8;
	desc(d0, hdr, 16, 1, d0 + 1);
	if (len) {
		desc(d0 + 1, data, len, 1 | (in_dir ? 2 : 0), d0 + 2);
		desc(d0 + 2, STATUS + slot, 1, 2, 0);
	} else {
		desc(d0 + 1, STATUS + slot, 1, 2, 0);
	}
	publish((uint16_t)d0);
	wr32(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };
	unsigned budget = 12;
	uint8_t flags = in_u8(&in);
	struct fuzz_cfg cfg = { "vda", { "path", disk_path, NULL } };
	unsigned k = 2;

	if (pwrite(disk_fd, image, DISK_SIZE, 0) != DISK_SIZE)
		abort();
	if (flags & 1) {
		cfg.kv[k++] = "readonly";
		cfg.kv[k++] = "true";
	}
	if (flags & 2) {
		cfg.kv[k++] = "block_size";
		cfg.kv[k++] = "4096";
	}
	cfg.kv[k] = NULL;
	fake_host_init();
	struct smol_dev *d = fuzz_dev_create(&cfg);
	avail_idx = 0;
	if (!(flags & 4))
		handshake();
	while (d && in_left(&in)) {
		uint8_t op = in_u8(&in);
		unsigned width = 1u << (op >> 3 & 3);

		switch (op & 7) {
		case 0: fuzz_mmio_op(&in, BASE, VIRTIO_MMIO_WINDOW, width, false); break;
		case 1: fuzz_mmio_op(&in, BASE, VIRTIO_MMIO_WINDOW, width, true); break;
		case 2: {
			unsigned i = in_u8(&in);
			uint8_t sel = in_u8(&in);
			uint64_t addr = sel & 0x80 ? in_le(&in, 8)
			                           : (uint64_t)(sel & 0x7f) << 12 | in_le(&in, 2);
			uint32_t len = (uint32_t)in_le(&in, sel & 0x40 ? 4 : 2);
			uint8_t f = in_u8(&in);
			desc(i, addr, len, f & 7, f >> 3);
			break;
		}
		case 3: publish(in_u8(&in)); break;
		case 4: wr32(VIRTIO_MMIO_QUEUE_NOTIFY, 0); break;
		case 5: {
			uint64_t at = in_le(&in, 3) & (WINDOW - 1);
			uint8_t buf[32];
			size_t n = in_bytes(&in, buf, (op >> 3) + 1u);
			if (at + n > WINDOW)
				n = WINDOW - at;
			memcpy(fake_ram() + at, buf, n);
			break;
		}
		case 6: request(&in); break;
		default:
			switch (op >> 3 & 3) {
			case 0: fake_dev_reset(d); break;
			case 3: handshake(); break;
			default:
				d = fuzz_dev_restore(d, &cfg, &in, (op >> 3 & 3) == 2, &budget);
				break;
			}
		}
	}
	if (fake_irq_misuse()) {
		fprintf(stderr, "fuzz-virtio-blk: the disk drove a line it did not claim\n%s",
		        fake_log());
		abort();
	}
	fake_host_fini();
	return 0;
}
