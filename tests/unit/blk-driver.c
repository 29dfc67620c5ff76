/* The virtio-blk tests' driver: see blk-driver.h. */
#define _GNU_SOURCE
#include <endian.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "blk-driver.h"
#include "check.h"
#include "ring-desc.h"

static char tmpdir[64];

const struct smol_plugin_desc *plugin;
struct smol_dev *dev;
uint16_t avail_idx;
uint64_t base = BASE;
uint8_t *ram;

static const char *so_path(void)
{
	const char *p = getenv("VIRTIO_BLK_SO");

	return p ? p : VIRTIO_BLK_SO;
}

void blk_setup(void)
{
	fake_host_init();
	plugin = fake_plugin_open(so_path());
	cr_assert(plugin, "cannot load %s: %s", so_path(), fake_log());
	strcpy(tmpdir, "/tmp/blk-test-XXXXXX");
	cr_assert(mkdtemp(tmpdir));
	fake_cfg_dir(tmpdir);
	ram = fake_ram();
	avail_idx = 0;
	base = BASE;
}

void blk_teardown(void)
{
	char cmd[128];

	fake_host_fini();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmpdir);
}

char *tmp_path(const char *name)
{
	static char buf[128];

	snprintf(buf, sizeof(buf), "%s/%s", tmpdir, name);
	return buf;
}

/* An image of DISK_SIZE bytes: byte i is (i / 512 + i) & 0xff, fully allocated. */
void make_image(const char *name)
{
	uint8_t *buf = malloc(DISK_SIZE);
	int fd = open(tmp_path(name), O_WRONLY | O_CREAT | O_TRUNC, 0644);

	cr_assert(buf && fd >= 0);
	for (unsigned i = 0; i < DISK_SIZE; i++)
		buf[i] = (uint8_t)(i / 512 + i);
	cr_assert_eq(write(fd, buf, DISK_SIZE), DISK_SIZE);
	close(fd);
	free(buf);
}

void read_image(const char *name, uint64_t off, void *buf, size_t len)
{
	int fd = open(tmp_path(name), O_RDONLY);

	cr_assert(fd >= 0);
	cr_assert_eq(pread(fd, buf, len, (off_t)off), (ssize_t)len);
	close(fd);
}

/* Creates a disk from key/value pairs ending in NULL. */
int create_dev(const char *name, ...)
{
	const char *k;
	va_list ap;

	dev = fake_dev_new(name);
	va_start(ap, name);
	while ((k = va_arg(ap, const char *)))
		fake_cfg_set(dev, k, va_arg(ap, const char *));
	va_end(ap);
	return fake_dev_create(dev, plugin, 0);
}

uint32_t rd(uint64_t off)
{
	return (uint32_t)fake_mmio_read(base + off, 4);
}

void wr(uint64_t off, uint32_t v)
{
	fake_mmio_write(base + off, 4, v);
}

uint64_t device_features(void)
{
	wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	uint64_t f = (uint64_t)rd(VIRTIO_MMIO_DEVICE_FEATURES) << 32;
	wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	return f | rd(VIRTIO_MMIO_DEVICE_FEATURES);
}

/* What Linux's virtio_mmio + virtio_blk do, accepting every feature offered. */
void driver_up(void)
{
	uint64_t f;

	cr_assert_eq(rd(VIRTIO_MMIO_MAGIC_VALUE), 0x74726976);
	cr_assert_eq(rd(VIRTIO_MMIO_VERSION), 2);
	cr_assert_eq(rd(VIRTIO_MMIO_DEVICE_ID), 2);
	wr(VIRTIO_MMIO_STATUS, 0);
	wr(VIRTIO_MMIO_STATUS, 1);
	wr(VIRTIO_MMIO_STATUS, 3);
	f = device_features();
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)f);
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)(f >> 32));
	wr(VIRTIO_MMIO_STATUS, 0xb);
	cr_assert_eq(rd(VIRTIO_MMIO_STATUS), 0xb);
	wr(VIRTIO_MMIO_QUEUE_SEL, 0);
	cr_assert_eq(rd(VIRTIO_MMIO_QUEUE_NUM_MAX), 256);
	wr(VIRTIO_MMIO_QUEUE_NUM, QSIZE);
	wr(VIRTIO_MMIO_QUEUE_DESC_LOW, DESC);
	wr(VIRTIO_MMIO_QUEUE_DESC_HIGH, 0);
	wr(VIRTIO_MMIO_QUEUE_DRIVER_LOW, AVAIL);
	wr(VIRTIO_MMIO_QUEUE_DRIVER_HIGH, 0);
	wr(VIRTIO_MMIO_QUEUE_DEVICE_LOW, USED);
	wr(VIRTIO_MMIO_QUEUE_DEVICE_HIGH, 0);
	wr(VIRTIO_MMIO_QUEUE_READY, 1);
	wr(VIRTIO_MMIO_STATUS, 0xf);
	cr_assert_eq(rd(VIRTIO_MMIO_STATUS), 0xf, "%s", fake_log());
}

void create_up(const char *image, ...)
{
	const char *k;
	va_list ap;

	dev = fake_dev_new("vda");
	fake_cfg_set(dev, "path", image);
	va_start(ap, image);
	while ((k = va_arg(ap, const char *)))
		fake_cfg_set(dev, k, va_arg(ap, const char *));
	va_end(ap);
	cr_assert_eq(fake_dev_create(dev, plugin, 0), 0, "%s", fake_log());
	driver_up();
}

void desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	put_desc(ram + DESC + 16 * i, addr, len, flags, next);
}

uint16_t get16(uint64_t gpa)
{
	uint16_t v;

	memcpy(&v, ram + gpa, 2);
	return le16toh(v);
}

void fill(uint8_t *p, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

int kick_fd = -1;

void create_threaded(void)
{
	fake_ioeventfd_accept(true);
	create_up("disk.img", NULL);
	kick_fd = fake_ioeventfd_fd(base + VIRTIO_MMIO_QUEUE_NOTIFY);
	cr_assert_geq(kick_fd, 0, "no ioeventfd on QueueNotify: %s", fake_log());
	cr_assert(fake_log_contains("served by the disk's I/O thread"), "%s", fake_log());
}

uint16_t used_now(void)
{
	return le16toh(__atomic_load_n((uint16_t *)(ram + USED + 2), __ATOMIC_ACQUIRE));
}

/* Chain @slot into the avail ring (not yet published). */
void tput(unsigned slot, uint32_t type, uint64_t sector, uint32_t len, bool in)
{
	uint64_t hdr = HDR + 32ull * slot;
	uint32_t t = htole32(type);
	uint64_t sec = htole64(sector);
	uint16_t head = (uint16_t)(3 * slot), v = htole16(head);

	memcpy(ram + hdr, &t, 4);
	memset(ram + hdr + 4, 0, 4);
	memcpy(ram + hdr + 8, &sec, 8);
	ram[STATUS + slot] = 0xee;
	desc(head, hdr, 16, VIRTQ_DESC_F_NEXT, len ? head + 1 : head + 2);
	desc(head + 1, TDATA(slot), len, VIRTQ_DESC_F_NEXT | (in ? VIRTQ_DESC_F_WRITE : 0),
	     head + 2);
	desc(head + 2, STATUS + slot, 1, VIRTQ_DESC_F_WRITE, 0);
	memcpy(ram + AVAIL + 4 + 2 * (avail_idx % QSIZE), &v, 2);
	avail_idx++;
}

/* Makes what tput() queued visible (used_event: interrupt on the next completion). */
void tpublish(void)
{
	__atomic_store_n((uint16_t *)(ram + AVAIL + 4 + 2 * QSIZE), htole16(used_now()),
	                 __ATOMIC_RELAXED);
	__atomic_store_n((uint16_t *)(ram + AVAIL + 2), htole16(avail_idx), __ATOMIC_RELEASE);
}

void tkick(void)
{
	uint64_t one = 1;

	cr_assert_eq(write(kick_fd, &one, sizeof(one)), (ssize_t)sizeof(one));
}

void sleep_us(long us)
{
	struct timespec ts = { us / 1000000, (us % 1000000) * 1000 };

	nanosleep(&ts, NULL);
}

/* Until the used index reaches @target (wrapping), at most @ms milliseconds. */
bool wait_used(uint16_t target, int ms)
{
	for (long waited = 0; waited < ms * 1000L; waited += 200) {
		if ((int16_t)(used_now() - target) >= 0)
			return true;
		sleep_us(200);
	}
	return (int16_t)(used_now() - target) >= 0;
}

uint32_t used_len(uint16_t i)
{
	uint32_t len;

	memcpy(&len, ram + USED + 8 + 8 * (i % QSIZE), 4);
	return le32toh(len);
}

/*
 * Four FLUSH requests sharing one 32-byte header buffer: the ring walk looks it up whole,
 * the request reads its first 16 bytes, so fake_gpa_hold(HDR, 16) holds the I/O thread
 * inside the first request, with the transport lock released.
 */
void four_flushes_held(void)
{
	uint32_t t = htole32(T_FLUSH);

	memset(ram + HDR, 0, 32);
	memcpy(ram + HDR, &t, 4);
	for (unsigned i = 0; i < 4; i++) {
		uint16_t head = (uint16_t)(2 * i), v = htole16(head);

		ram[STATUS + i] = 0xee;
		desc(head, HDR, 32, VIRTQ_DESC_F_NEXT, head + 1);
		desc(head + 1, STATUS + i, 1, VIRTQ_DESC_F_WRITE, 0);
		memcpy(ram + AVAIL + 4 + 2 * (avail_idx % QSIZE), &v, 2);
		avail_idx++;
	}
	fake_gpa_hold(HDR, 16);
	tpublish();
	tkick();
	cr_assert(fake_gpa_wait_held(TIMEOUT_MS), "the I/O thread never took a request: %s",
	          fake_log());
}
