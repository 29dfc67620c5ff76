/*
 * Unit tests of virtio-blk.so, driven through the fake host (no core, no KVM) by a small
 * virtio-mmio driver written here: the handshake, requests on a 16-entry queue in the fake
 * guest RAM, and the image file checked on disk.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "blk-driver.h"

TestSuite(blk, .init = blk_setup, .fini = blk_teardown);

static uint32_t last_used_len;

/* Makes chain @head available, kicks the queue, expects it completed; returns the status. */
static uint8_t kick(uint16_t head)
{
	uint16_t used_before = get16(USED + 2), v;
	uint32_t len;

	v = htole16(head);
	memcpy(ram + AVAIL + 4 + 2 * (avail_idx % QSIZE), &v, 2);
	avail_idx++;
	v = htole16(avail_idx);
	memcpy(ram + AVAIL + 2, &v, 2);
	v = htole16(used_before); /* used_event: interrupt on the next completion */
	memcpy(ram + AVAIL + 4 + 2 * QSIZE, &v, 2);
	ram[STATUS] = 0xee;
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	cr_assert_eq(get16(USED + 2), (uint16_t)(used_before + 1), "request not completed: %s",
	             fake_log());
	memcpy(&len, ram + USED + 8 + 8 * (used_before % QSIZE), 4);
	last_used_len = le32toh(len);
	return ram[STATUS];
}

/* A request: header, @len data bytes at DATA (device-writable when @in), status. */
static uint8_t request(uint32_t type, uint64_t sector, uint32_t len, bool in)
{
	uint32_t t = htole32(type);
	uint64_t s = htole64(sector);

	memcpy(ram + HDR, &t, 4);
	memset(ram + HDR + 4, 0, 4);
	memcpy(ram + HDR + 8, &s, 8);
	desc(0, HDR, 16, VIRTQ_DESC_F_NEXT, len ? 1 : 2);
	desc(1, DATA, len, VIRTQ_DESC_F_NEXT | (in ? VIRTQ_DESC_F_WRITE : 0), 2);
	desc(2, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
	return kick(0);
}

/* ---- configuration -------------------------------------------------------------------- */

Test(blk, descriptor)
{
	cr_assert_str_eq(plugin->name, "virtio-blk");
	cr_assert_eq(plugin->kind, SMOL_KIND_DEVICE);
	const struct smol_device_ops *ops = plugin->ops;
	cr_assert(ops->create && ops->destroy && ops->reset && ops->describe);
}

Test(blk, defaults_map_a_window_and_claim_irq5)
{
	make_image("disk.img");
	cr_assert_eq(create_dev("vda", "path", "disk.img", NULL), 0, "%s", fake_log());
	cr_assert(fake_mmio_mapped(BASE) && fake_mmio_mapped(BASE + 0x1ff));
	cr_assert_not(fake_mmio_mapped(BASE + 0x200));
	cr_assert(fake_irq_claimed(IRQ));
	cr_assert_eq(fake_cfg_errors(), 0);
}

Test(blk, every_key_is_read)
{
	make_image("disk.img");
	cr_assert_eq(create_dev("vda", "path", "disk.img", "readonly", "on", "serial", "abc",
	                        "cache", "writeback", "base", "0xd0001000", "irq", "9", NULL),
	             0, "%s", fake_log());
	cr_assert_null(fake_cfg_unread(dev));
	cr_assert(fake_mmio_mapped(0xd0001000));
	cr_assert(fake_irq_claimed(9));
}

Test(blk, path_is_required)
{
	cr_assert_eq(create_dev("vda", NULL), -EINVAL);
	cr_assert(fake_cfg_error_about("path"));
}

Test(blk, unopenable_images_are_config_errors)
{
	cr_assert_eq(create_dev("vda", "path", "missing.img", NULL), -EINVAL);
	cr_assert(fake_cfg_error_about("path"));
	cr_assert_eq(create_dev("vdb", "path", ".", "readonly", "on", NULL), -EINVAL);
	cr_assert(strstr(fake_cfg_error_msg(1), "regular file"), "%s", fake_cfg_error_msg(1));
	cr_assert_eq(create_dev("vdc", "path", ".", NULL), -EINVAL);
	cr_assert_eq(fake_cfg_errors(), 3);
}

Test(blk, read_only_file_needs_readonly)
{
	make_image("ro.img");
	cr_assert_eq(chmod(tmp_path("ro.img"), 0444), 0);
	if (access(tmp_path("ro.img"), W_OK) == 0)
		cr_skip_test("running as root: a 0444 file is writable");
	cr_assert_eq(create_dev("vda", "path", "ro.img", NULL), -EINVAL);
	cr_assert(fake_cfg_error_about("path"));
	cr_assert_eq(create_dev("vdb", "path", "ro.img", "readonly", "on", NULL), 0);
}

Test(blk, bad_values_are_config_errors)
{
	make_image("disk.img");
	cr_assert_eq(create_dev("a", "path", "disk.img", "serial", "123456789012345678901", NULL),
	             -EINVAL);
	cr_assert(fake_cfg_error_about("serial"));
	cr_assert_eq(create_dev("b", "path", "disk.img", "cache", "writethrough", NULL), -EINVAL);
	cr_assert(fake_cfg_error_about("cache"));
	cr_assert_eq(create_dev("c", "path", "disk.img", "base", "0xd0000100", NULL), -EINVAL);
	cr_assert(fake_cfg_error_about("base"));
	cr_assert_eq(create_dev("d", "path", "disk.img", "readonly", "maybe", NULL), -EINVAL);
	cr_assert(fake_cfg_error_about("readonly"));
}

Test(blk, two_disks_get_their_own_window_and_line)
{
	make_image("a.img");
	make_image("b.img");
	cr_assert_eq(create_dev("vda", "path", "a.img", NULL), 0, "%s", fake_log());
	cr_assert_eq(create_dev("vdb", "path", "b.img", "readonly", "on", NULL), 0, "%s",
	             fake_log());
	cr_assert(fake_irq_claimed(5) && fake_irq_claimed(6));
	cr_assert(fake_mmio_mapped(BASE) && fake_mmio_mapped(BASE + 0x1000));
	/* each answers with its own features */
	base = BASE;
	cr_assert_eq((device_features() >> F_RO) & 1, 0);
	base = BASE + 0x1000;
	cr_assert_eq((device_features() >> F_RO) & 1, 1);
}

Test(blk, describe_as_lnro0005_with_cmdline)
{
	make_image("a.img");
	make_image("b.img");
	cr_assert_eq(create_dev("vda", "path", "a.img", NULL), 0);
	cr_assert_eq(create_dev("vdb", "path", "b.img", "readonly", "on", "base", "0xd0004000",
	                        "irq", "11", NULL),
	             0);
	cr_assert_str_eq(fake_dev_describe(dev), "device LNRO0005\n"
	                                         "mmio 0xd0004000 0x200\n"
	                                         "irq 11 0\n"
	                                         "cmdline virtio_mmio.device=512@0xd0004000:11\n"
	                                         "compatible virtio,mmio\n");
}

Test(blk, irq_conflict_reported)
{
	make_image("a.img");
	make_image("b.img");
	cr_assert_eq(create_dev("vda", "path", "a.img", "irq", "7", NULL), 0);
	cr_assert_eq(create_dev("vdb", "path", "b.img", "irq", "7", "base", "0xd0002000", NULL),
	             -EINVAL);
	cr_assert(fake_cfg_error_about("irq"));
}

/* ---- guest-visible layout ------------------------------------------------------------- */

Test(blk, features_and_config_space)
{
	uint64_t f;

	make_image("disk.img");
	cr_assert_eq(create_dev("vda", "path", "disk.img", NULL), 0);
	f = device_features();
	cr_assert((f >> VIRTIO_F_VERSION_1) & 1);
	cr_assert((f >> VIRTIO_F_EVENT_IDX) & 1);
	cr_assert((f >> VIRTIO_F_INDIRECT_DESC) & 1);
	cr_assert((f >> F_SEG_MAX) & (f >> F_BLK_SIZE) & (f >> F_FLUSH) & 1);
	cr_assert((f >> F_DISCARD) & (f >> F_WRITE_ZEROES) & 1);
	cr_assert_eq((f >> F_RO) & 1, 0);
	cr_assert_eq(rd(0x100), DISK_SIZE / 512, "capacity low");
	cr_assert_eq(rd(0x104), 0, "capacity high");
	cr_assert_eq(fake_mmio_read(BASE + 0x100, 8), DISK_SIZE / 512);
	cr_assert_eq(rd(0x10c), 254, "seg_max");
	cr_assert_eq(rd(0x114), 512, "blk_size");
	cr_assert_neq(rd(0x124), 0, "max_discard_sectors");
	cr_assert_neq(rd(0x130), 0, "max_write_zeroes_sectors");
}

Test(blk, readonly_features)
{
	uint64_t f;

	make_image("disk.img");
	cr_assert_eq(create_dev("vda", "path", "disk.img", "readonly", "yes", NULL), 0);
	f = device_features();
	cr_assert((f >> F_RO) & 1);
	cr_assert_eq((f >> F_DISCARD) & 1, 0);
	cr_assert_eq((f >> F_WRITE_ZEROES) & 1, 0);
}

/* ---- requests ------------------------------------------------------------------------- */

Test(blk, write_then_read_back)
{
	uint8_t pattern[4096], file[4096];

	make_image("disk.img");
	create_up("disk.img", NULL);
	fill(pattern, sizeof(pattern), 0x31);
	memcpy(ram + DATA, pattern, sizeof(pattern));
	cr_assert_eq(request(T_OUT, 8, sizeof(pattern), false), S_OK);
	cr_assert_eq(last_used_len, 1, "only the status byte written");
	read_image("disk.img", 8 * 512, file, sizeof(file));
	cr_assert_arr_eq(file, pattern, sizeof(pattern));
	memset(ram + DATA, 0, sizeof(pattern));
	cr_assert_eq(request(T_IN, 8, sizeof(pattern), true), S_OK);
	cr_assert_eq(last_used_len, sizeof(pattern) + 1);
	cr_assert_arr_eq(ram + DATA, pattern, sizeof(pattern));
	cr_assert_geq(fake_irq_rises(IRQ), 2);
	cr_assert_eq(rd(VIRTIO_MMIO_INTERRUPT_STATUS) & 1, 1);
}

Test(blk, read_of_the_last_sector_and_past_the_end)
{
	uint8_t file[512];

	make_image("disk.img");
	create_up("disk.img", NULL);
	cr_assert_eq(request(T_IN, DISK_SIZE / 512 - 1, 512, true), S_OK);
	read_image("disk.img", DISK_SIZE - 512, file, 512);
	cr_assert_arr_eq(ram + DATA, file, 512);
	cr_assert_eq(request(T_IN, DISK_SIZE / 512 - 1, 1024, true), S_IOERR);
	cr_assert_eq(request(T_IN, DISK_SIZE / 512, 512, true), S_IOERR);
	cr_assert_eq(request(T_OUT, DISK_SIZE / 512, 512, false), S_IOERR);
	cr_assert_eq(request(T_IN, UINT64_MAX, 512, true), S_IOERR, "sector + len overflows");
	cr_assert_eq(request(T_OUT, UINT64_MAX / 256, 1024, false), S_IOERR);
	cr_assert_eq(request(T_IN, 0, 100, true), S_IOERR, "not whole sectors");
	struct stat st;
	cr_assert_eq(stat(tmp_path("disk.img"), &st), 0);
	cr_assert_eq(st.st_size, DISK_SIZE, "the image did not grow");
}

Test(blk, scattered_buffers)
{
	uint8_t pattern[1536], file[1536];

	make_image("disk.img");
	create_up("disk.img", NULL);
	fill(pattern, sizeof(pattern), 9);
	/* header and first 100 data bytes in one buffer, the rest in two more */
	uint32_t t = htole32(T_OUT);
	uint64_t s = htole64(3);
	memcpy(ram + HDR, &t, 4);
	memset(ram + HDR + 4, 0, 4);
	memcpy(ram + HDR + 8, &s, 8);
	memcpy(ram + HDR + 16, pattern, 100);
	memcpy(ram + DATA, pattern + 100, 1000);
	memcpy(ram + DATA + 0x1000, pattern + 1100, 436);
	desc(4, HDR, 116, VIRTQ_DESC_F_NEXT, 5);
	desc(5, DATA, 1000, VIRTQ_DESC_F_NEXT, 6);
	desc(6, DATA + 0x1000, 436, VIRTQ_DESC_F_NEXT, 7);
	desc(7, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
	cr_assert_eq(kick(4), S_OK);
	read_image("disk.img", 3 * 512, file, sizeof(file));
	cr_assert_arr_eq(file, pattern, sizeof(pattern));
}

Test(blk, flush)
{
	make_image("disk.img");
	create_up("disk.img", NULL);
	cr_assert_eq(request(T_FLUSH, 0, 0, false), S_OK);
	cr_assert_eq(last_used_len, 1);
}

Test(blk, get_id_default_and_explicit)
{
	make_image("a-rather-long-image-name.img");
	create_up("a-rather-long-image-name.img", NULL);
	cr_assert_eq(request(T_GET_ID, 0, 20, true), S_OK);
	cr_assert_eq(last_used_len, 21);
	cr_assert_arr_eq(ram + DATA, "a-rather-long-image-", 20);
}

Test(blk, get_id_explicit_is_nul_padded)
{
	make_image("disk.img");
	create_up("disk.img", "serial", "SN42", NULL);
	memset(ram + DATA, 0xff, 20);
	cr_assert_eq(request(T_GET_ID, 0, 20, true), S_OK);
	cr_assert_arr_eq(ram + DATA, "SN42\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 20);
}

Test(blk, readonly_refuses_writes_and_leaves_the_file)
{
	uint8_t before[DISK_SIZE / 16], after[DISK_SIZE / 16];

	make_image("disk.img");
	read_image("disk.img", 0, before, sizeof(before));
	create_up("disk.img", "readonly", "on", NULL);
	memset(ram + DATA, 0x55, 4096);
	cr_assert_eq(request(T_OUT, 0, 4096, false), S_IOERR);
	cr_assert_eq(request(T_IN, 0, 4096, true), S_OK, "reads still work");
	cr_assert_eq(request(T_FLUSH, 0, 0, false), S_OK);
	/* discard and write zeroes were not offered */
	uint8_t seg[16] = { 0 };
	seg[8] = 8;
	memcpy(ram + DATA, seg, 16);
	cr_assert_eq(request(T_DISCARD, 0, 16, false), S_UNSUPP);
	cr_assert_eq(request(T_WRITE_ZEROES, 0, 16, false), S_UNSUPP);
	read_image("disk.img", 0, after, sizeof(after));
	cr_assert_arr_eq(after, before, sizeof(before));
}

Test(blk, unsupported_types)
{
	make_image("disk.img");
	create_up("disk.img", NULL);
	cr_assert_eq(request(10 /* GET_LIFETIME */, 0, 0, false), S_UNSUPP);
	cr_assert_eq(request(0x1234, 0, 0, false), S_UNSUPP);
}

/* ---- counters (`smolvm ctl stats`) ----------------------------------------------------- */

static struct {
	char name[64];
	uint64_t value;
} stat_seen[64];
static unsigned n_stat_seen;

static void collect(void *ctx, const char *name, uint64_t value)
{
	(void)ctx;
	cr_assert_lt(n_stat_seen, 64);
	snprintf(stat_seen[n_stat_seen].name, sizeof(stat_seen[0].name), "%s", name);
	stat_seen[n_stat_seen++].value = value;
}

/* The device's stats() now; counter @p name of that call. */
static void take_stats(void)
{
	n_stat_seen = 0;
	fake_dev_stats(dev, collect, NULL);
}

static uint64_t stat_of(const char *name)
{
	for (unsigned k = 0; k < n_stat_seen; k++)
		if (strcmp(stat_seen[k].name, name) == 0)
			return stat_seen[k].value;
	cr_assert_fail("no counter %s", name);
	return 0;
}

/* Requests in the latency buckets (one in latency_us.one_in is timed). */
static uint64_t latency_total(void)
{
	uint64_t n = 0;
	for (unsigned k = 0; k < n_stat_seen; k++)
		if (strncmp(stat_seen[k].name, "latency_us.", 11) == 0 &&
		    strcmp(stat_seen[k].name, "latency_us.one_in") != 0)
			n += stat_seen[k].value;
	return n;
}

Test(blk, stats_count_what_the_driver_did)
{
	make_image("disk.img");
	create_up("disk.img", NULL);
	take_stats();
	cr_assert_eq(stat_of("q0.requests"), 0);
	cr_assert_eq(stat_of("q0.notifications"), 0);
	for (int k = 0; k < 3; k++)
		cr_assert_eq(request(T_OUT, 8 * (uint64_t)k, 1024, false), S_OK);
	cr_assert_eq(request(T_IN, 0, 4096, true), S_OK);
	cr_assert_eq(request(T_FLUSH, 0, 0, false), S_OK);
	cr_assert_eq(request(0x1234, 0, 0, false), S_UNSUPP);
	cr_assert_eq(request(T_IN, DISK_SIZE / 512, 512, true), S_IOERR, "past the end");
	take_stats();
	cr_assert_eq(stat_of("q0.requests"), 7);
	cr_assert_eq(stat_of("q0.malformed"), 0);
	cr_assert_eq(stat_of("q0.notifications"), 7, "one QueueNotify write each");
	cr_assert_eq(stat_of("q0.interrupts") + stat_of("q0.suppressed"), 7);
	cr_assert_eq(stat_of("q0.interrupts"), (uint64_t)fake_irq_rises(IRQ));
	cr_assert_eq(stat_of("writes"), 3);
	cr_assert_eq(stat_of("write_bytes"), 3 * 1024);
	cr_assert_eq(stat_of("reads"), 2);
	cr_assert_eq(stat_of("read_bytes"), 4096, "the failed read moved nothing");
	cr_assert_eq(stat_of("flushes"), 1);
	cr_assert_eq(stat_of("unsupported"), 1);
	cr_assert_eq(stat_of("errors"), 2);
	cr_assert_eq(stat_of("latency_us.one_in"), 16);
	cr_assert_eq(latency_total(), 1, "the first of 7 timed");
	/* a malformed chain: a descriptor index out of range */
	desc(0, HDR, 16, VIRTQ_DESC_F_NEXT, QSIZE + 3);
	uint16_t v = htole16(0);
	memcpy(ram + AVAIL + 4 + 2 * (avail_idx % QSIZE), &v, 2);
	avail_idx++;
	v = htole16(avail_idx);
	memcpy(ram + AVAIL + 2, &v, 2);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	take_stats();
	cr_assert_eq(stat_of("q0.malformed"), 1);
	cr_assert_eq(stat_of("q0.requests"), 7);
	cr_assert_eq(stat_of("q0.notifications"), 8);
	for (int k = 0; k < 10; k++)
		cr_assert_eq(request(T_FLUSH, 0, 0, false), S_OK);
	take_stats();
	cr_assert_eq(latency_total(), 2, "the first and the 17th of 17 timed");
}

Test(blk, threaded_stats_count_ioeventfd_notifications)
{
	make_image("disk.img");
	create_threaded();
	for (unsigned i = 0; i < 4; i++) {
		fill(ram + TDATA(i), 4096, (uint8_t)i);
		tput(i, T_OUT, 8 * i, 4096, false);
	}
	tpublish();
	tkick();
	cr_assert(wait_used(4, TIMEOUT_MS), "writes not completed: %s", fake_log());
	for (unsigned i = 0; i < 4; i++)
		tput(i, T_IN, 8 * i, 2048, true);
	tpublish();
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	cr_assert(wait_used(8, TIMEOUT_MS), "reads not completed: %s", fake_log());
	take_stats();
	cr_assert_eq(stat_of("q0.requests"), 8);
	cr_assert_eq(stat_of("q0.notifications"), 2, "two kicks, self-kicks not counted");
	cr_assert_eq(stat_of("writes"), 4);
	cr_assert_eq(stat_of("write_bytes"), 4 * 4096);
	cr_assert_eq(stat_of("reads"), 4);
	cr_assert_eq(stat_of("read_bytes"), 4 * 2048);
	cr_assert_eq(stat_of("errors"), 0);
	cr_assert_eq(latency_total(), 1, "the first of 8 timed");
	cr_assert_geq(stat_of("q0.interrupts"), 1);
}

static void segment(unsigned i, uint64_t sector, uint32_t num, uint32_t flags)
{
	sector = htole64(sector);
	num = htole32(num);
	flags = htole32(flags);
	memcpy(ram + DATA + 16 * i, &sector, 8);
	memcpy(ram + DATA + 16 * i + 8, &num, 4);
	memcpy(ram + DATA + 16 * i + 12, &flags, 4);
}

static blkcnt_t blocks(const char *name)
{
	struct stat st;

	cr_assert_eq(stat(tmp_path(name), &st), 0);
	return st.st_blocks;
}

static bool all_zero(const char *name, uint64_t off, size_t len)
{
	uint8_t *b = malloc(len);
	bool z = true;

	read_image(name, off, b, len);
	for (size_t i = 0; i < len; i++)
		z &= b[i] == 0;
	free(b);
	return z;
}

Test(blk, discard_punches_a_hole)
{
	blkcnt_t before;

	make_image("disk.img");
	before = blocks("disk.img");
	create_up("disk.img", NULL);
	segment(0, 256, 512, 0); /* 256 KiB at 128 KiB */
	cr_assert_eq(request(T_DISCARD, 0, 16, false), S_OK);
	cr_assert_lt(blocks("disk.img"), before, "no blocks freed");
	int fd = open(tmp_path("disk.img"), O_RDONLY);
	cr_assert_eq(lseek(fd, 0, SEEK_HOLE), 128 * 1024);
	close(fd);
	cr_assert(all_zero("disk.img", 128 * 1024, 256 * 1024));
	struct stat st;
	cr_assert_eq(stat(tmp_path("disk.img"), &st), 0);
	cr_assert_eq(st.st_size, DISK_SIZE);
}

Test(blk, discard_checks_every_segment_first)
{
	uint8_t before[4096], after[4096];

	make_image("disk.img");
	read_image("disk.img", 0, before, sizeof(before));
	create_up("disk.img", NULL);
	segment(0, 0, 8, 0);
	segment(1, DISK_SIZE / 512 - 4, 8, 0); /* past the end */
	cr_assert_eq(request(T_DISCARD, 0, 32, false), S_IOERR);
	segment(1, 16, 8, 1); /* unmap is not for discard */
	cr_assert_eq(request(T_DISCARD, 0, 32, false), S_UNSUPP);
	cr_assert_eq(request(T_DISCARD, 0, 20, false), S_IOERR, "not whole segments");
	read_image("disk.img", 0, after, sizeof(after));
	cr_assert_arr_eq(after, before, sizeof(before), "nothing discarded");
}

Test(blk, write_zeroes_with_and_without_unmap)
{
	uint8_t b[512];

	make_image("disk.img");
	create_up("disk.img", NULL);
	segment(0, 10, 4, 0);
	cr_assert_eq(request(T_WRITE_ZEROES, 0, 16, false), S_OK);
	cr_assert(all_zero("disk.img", 10 * 512, 4 * 512));
	read_image("disk.img", 14 * 512, b, 512);
	cr_assert_eq(b[1], (uint8_t)(14 + 1), "the next sector is untouched");
	segment(0, 512, 512, 1 /* unmap */);
	cr_assert_eq(request(T_WRITE_ZEROES, 0, 16, false), S_OK);
	cr_assert(all_zero("disk.img", 256 * 1024, 256 * 1024));
	segment(0, 0, 1, 2); /* unknown flag */
	cr_assert_eq(request(T_WRITE_ZEROES, 0, 16, false), S_UNSUPP);
}

Test(blk, cache_none_reads_and_writes)
{
	uint8_t pattern[8192], file[8192];

	make_image("disk.img");
	create_up("disk.img", "cache", "none", NULL);
	fill(pattern, sizeof(pattern), 0x77);
	memcpy(ram + DATA + 3, pattern, sizeof(pattern)); /* a misaligned guest buffer */
	desc(1, DATA + 3, sizeof(pattern), VIRTQ_DESC_F_NEXT, 2);
	uint32_t t = htole32(T_OUT);
	uint64_t s = htole64(16);
	memcpy(ram + HDR, &t, 4);
	memcpy(ram + HDR + 8, &s, 8);
	desc(0, HDR, 16, VIRTQ_DESC_F_NEXT, 1);
	desc(2, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
	cr_assert_eq(kick(0), S_OK);
	read_image("disk.img", 16 * 512, file, sizeof(file));
	cr_assert_arr_eq(file, pattern, sizeof(pattern));
	memset(ram + DATA, 0, sizeof(pattern));
	cr_assert_eq(request(T_IN, 16, sizeof(pattern), true), S_OK);
	cr_assert_arr_eq(ram + DATA, pattern, sizeof(pattern));
	cr_assert_eq(request(T_FLUSH, 0, 0, false), S_OK);
}

/* The blk_size the device's config space says. */
static uint32_t config_blk_size(void)
{
	return (uint32_t)fake_mmio_read(base + VIRTIO_MMIO_CONFIG + 20, 4);
}

Test(blk, block_size_key)
{
	make_image("disk.img");
	create_up("disk.img", "block_size", "4096", NULL);
	cr_assert(device_features() & (1ull << F_BLK_SIZE));
	cr_assert_eq(config_blk_size(), 4096);
	static const char *const bad[] = { "256", "1000", "131072", "0x3000" };
	static const char *const names[] = { "b0", "b1", "b2", "b3" };
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(create_dev(names[i], "path", "disk.img", "block_size", bad[i], NULL),
		             -EINVAL, "block_size = %s", bad[i]);
		cr_assert(fake_cfg_error_about("block_size"), "block_size = %s", bad[i]);
	}
}

/* With cache = none and no block_size, the guest is told the image's direct-I/O alignment. */
Test(blk, cache_none_block_size_follows_the_image)
{
	uint32_t want = 512;
	struct statx sx;

	make_image("disk.img");
	if (statx(AT_FDCWD, tmp_path("disk.img"), 0, STATX_DIOALIGN, &sx) == 0 &&
	    (sx.stx_mask & STATX_DIOALIGN) && sx.stx_dio_offset_align > 512)
		want = sx.stx_dio_offset_align;
	create_up("disk.img", "cache", "none", NULL);
	cr_assert_eq(config_blk_size(), want);
}

/*
 * Random requests of random sizes at random sectors (512-byte units, most of them not on
 * block boundaries), checked against a model of the image after each: what a guest that
 * ignores blk_size does. With cache = none and 4 KiB or 64 KiB blocks, every partial block
 * is read, modified and written whole; nothing around a request may change.
 */
#define MODEL_SIZE (3u << 20) /* three bounce buffers' worth: requests cross them */

static uint8_t model[MODEL_SIZE], image[MODEL_SIZE];

static void model_image(const char *name)
{
	int fd = open(tmp_path(name), O_WRONLY | O_CREAT | O_TRUNC, 0644);

	cr_assert(fd >= 0);
	for (unsigned i = 0; i < MODEL_SIZE; i++)
		model[i] = (uint8_t)(i / 512 * 13 + i);
	cr_assert_eq(write(fd, model, MODEL_SIZE), MODEL_SIZE);
	close(fd);
}

static uint64_t rnd_state = 88172645463325252ull;
static uint32_t rnd(uint32_t n)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 7;
	rnd_state ^= rnd_state << 17;
	return (uint32_t)(rnd_state % n);
}

static void random_requests_match_the_model(const char *cache, const char *block_size)
{
	model_image("disk.img");
	create_up("disk.img", "cache", cache, "block_size", block_size, NULL);
	cr_assert_eq(config_blk_size(), (uint32_t)strtoul(block_size, NULL, 0));
	for (unsigned round = 0; round < 300; round++) {
		/* mostly short requests, some up to 2.5 MiB */
		uint32_t max = round % 10 == 9 ? MODEL_SIZE / 512 - 1 : 40;
		uint32_t n = 1 + rnd(max), sector = rnd(MODEL_SIZE / 512 - n + 1);
		uint64_t off = (uint64_t)sector * 512;
		unsigned kind = rnd(3);

		if (kind == 0) { /* write */
			fill(ram + DATA, n * 512, (uint8_t)round);
			cr_assert_eq(request(T_OUT, sector, n * 512, false), S_OK, "%s",
			             fake_log());
			memcpy(model + off, ram + DATA, n * 512);
		} else if (kind == 1) { /* read */
			memset(ram + DATA, 0xcc, n * 512);
			cr_assert_eq(request(T_IN, sector, n * 512, true), S_OK, "%s", fake_log());
			cr_assert_eq(last_used_len, n * 512 + 1);
			cr_assert_arr_eq(ram + DATA, model + off, n * 512,
			                 "round %u: read of %u sectors at %u", round, n, sector);
		} else { /* write zeroes, no unmap */
			segment(0, sector, n, 0);
			cr_assert_eq(request(T_WRITE_ZEROES, 0, 16, false), S_OK, "%s", fake_log());
			memset(model + off, 0, n * 512);
		}
	}
	read_image("disk.img", 0, image, MODEL_SIZE);
	for (unsigned i = 0; i < MODEL_SIZE; i++)
		cr_assert_eq(image[i], model[i], "image byte %u is 0x%02x, the model says 0x%02x",
		             i, image[i], model[i]);
}

Test(blk, cache_none_4k_blocks_random_requests)
{
	random_requests_match_the_model("none", "4096");
}

Test(blk, cache_none_64k_blocks_random_requests)
{
	random_requests_match_the_model("none", "65536");
}

Test(blk, cache_writeback_random_requests)
{
	random_requests_match_the_model("writeback", "512");
}

/* ---- hostile guests ------------------------------------------------------------------- */

Test(blk, hostile_chain_fails_alone)
{
	uint8_t pattern[512], file[512];

	make_image("disk.img");
	create_up("disk.img", NULL);
	/* data pointing outside guest RAM: the chain is returned unused */
	desc(0, HDR, 16, VIRTQ_DESC_F_NEXT, 1);
	desc(1, FAKE_RAM_SIZE - 256, 512, VIRTQ_DESC_F_NEXT, 2);
	desc(2, STATUS, 1, VIRTQ_DESC_F_WRITE, 0);
	memset(ram + HDR, 0, 16);
	ram[HDR] = T_OUT;
	kick(0);
	cr_assert_eq(last_used_len, 0);
	cr_assert_eq(ram[STATUS], 0xee, "no status for a chain that was not served");
	/* a loop */
	desc(0, HDR, 16, VIRTQ_DESC_F_NEXT, 1);
	desc(1, DATA, 512, VIRTQ_DESC_F_NEXT, 0);
	kick(0);
	cr_assert_eq(last_used_len, 0);
	/* no status byte at all */
	desc(0, HDR, 16, 0, 0);
	kick(0);
	cr_assert_eq(last_used_len, 0);
	/* a header too short: IOERR */
	desc(0, HDR, 8, VIRTQ_DESC_F_NEXT, 2);
	cr_assert_eq(kick(0), S_IOERR);
	/* and the next valid request succeeds */
	cr_assert_eq(rd(VIRTIO_MMIO_STATUS), 0xf);
	fill(pattern, sizeof(pattern), 3);
	memcpy(ram + DATA, pattern, sizeof(pattern));
	cr_assert_eq(request(T_OUT, 1, 512, false), S_OK);
	read_image("disk.img", 512, file, sizeof(file));
	cr_assert_arr_eq(file, pattern, sizeof(pattern));
}

Test(blk, avail_index_far_ahead_needs_reset)
{
	make_image("disk.img");
	create_up("disk.img", NULL);
	uint16_t v = htole16(QSIZE + 5);
	memcpy(ram + AVAIL + 2, &v, 2);
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	cr_assert(rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	cr_assert(rd(VIRTIO_MMIO_INTERRUPT_STATUS) & VIRTIO_INT_CONFIG);
	/* the driver resets and starts over */
	memset(ram + AVAIL, 0, 0x100);
	memset(ram + USED, 0, 0x1000);
	avail_idx = 0;
	driver_up();
	cr_assert_eq(request(T_FLUSH, 0, 0, false), S_OK);
}

Test(blk, machine_reset_resets_the_transport)
{
	make_image("disk.img");
	create_up("disk.img", NULL);
	fake_dev_reset(dev);
	cr_assert_eq(rd(VIRTIO_MMIO_STATUS), 0);
	cr_assert_eq(rd(VIRTIO_MMIO_QUEUE_READY), 0);
}

/* ---- the I/O thread: the backend takes the ioeventfd (blk-driver.h) ---------------------- */

/* A register write (a second vCPU), a machine reset or destroy, on a thread of its own, to
 * see whether it waits. */
struct bg_access {
	pthread_t thread;
	enum { BG_WRITE, BG_RESET, BG_DESTROY } what;
	uint64_t off;
	uint32_t value;
	int done;
};

static void *bg_access_run(void *opaque)
{
	struct bg_access *a = opaque;

	if (a->what == BG_DESTROY)
		fake_dev_destroy(dev);
	else if (a->what == BG_RESET)
		fake_dev_reset(dev);
	else
		wr(a->off, a->value);
	__atomic_store_n(&a->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void bg_start(struct bg_access *a)
{
	cr_assert_eq(pthread_create(&a->thread, NULL, bg_access_run, a), 0);
}

static bool bg_done(struct bg_access *a)
{
	return __atomic_load_n(&a->done, __ATOMIC_ACQUIRE);
}

static void bg_join(struct bg_access *a, const char *what)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += TIMEOUT_MS / 1000;
	cr_assert_eq(pthread_timedjoin_np(a->thread, NULL, &ts), 0, "%s hangs: %s", what,
	             fake_log());
}

Test(blk, threaded_requests_complete_without_the_handler)
{
	uint8_t file[4096];

	make_image("disk.img");
	create_threaded();
	/* four writes in flight at once, kicked through the eventfd */
	for (unsigned i = 0; i < 4; i++) {
		fill(ram + TDATA(i), 4096, (uint8_t)(0x40 + i));
		tput(i, T_OUT, 8 * i, 4096, false);
	}
	tpublish();
	tkick();
	cr_assert(wait_used(4, TIMEOUT_MS), "writes not completed: used %u: %s", used_now(),
	          fake_log());
	for (unsigned i = 0; i < 4; i++) {
		uint8_t want[4096];

		cr_assert_eq(ram[STATUS + i], S_OK);
		cr_assert_eq(used_len((uint16_t)i), 1);
		fill(want, sizeof(want), (uint8_t)(0x40 + i));
		read_image("disk.img", 8 * 512 * i, file, sizeof(file));
		cr_assert_arr_eq(file, want, sizeof(want));
	}
	/* read them back, kicked by the guest's QueueNotify write (the ioeventfd takes it) */
	for (unsigned i = 0; i < 4; i++) {
		memset(ram + TDATA(i), 0, 4096);
		tput(i, T_IN, 8 * (3 - i), 4096, true);
	}
	tpublish();
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	cr_assert(wait_used(8, TIMEOUT_MS), "reads not completed: used %u: %s", used_now(),
	          fake_log());
	for (unsigned i = 0; i < 4; i++) {
		uint8_t want[4096];

		cr_assert_eq(ram[STATUS + i], S_OK);
		cr_assert_eq(used_len((uint16_t)(4 + i)), 4096 + 1);
		fill(want, sizeof(want), (uint8_t)(0x40 + 3 - i));
		cr_assert_arr_eq(ram + TDATA(i), want, sizeof(want));
	}
	cr_assert_geq(fake_irq_rises(IRQ), 2, "the I/O thread interrupts");
	cr_assert_eq(fake_irq_misuse(), 0);
}

Test(blk, threaded_nothing_served_before_driver_ok)
{
	make_image("disk.img");
	create_threaded();
	wr(VIRTIO_MMIO_STATUS, 0);
	tput(0, T_GET_ID, 0, 20, true);
	tpublish();
	tkick();
	sleep_us(50 * 1000);
	cr_assert_eq(used_now(), 0, "a request served after a reset");
	cr_assert_eq(ram[STATUS], 0xee);
}

/* A reset (Status 0, a machine reset) or QueueReady = 0 while a request is in flight: it
 * waits for that request, and for no other; nothing is completed into the queue once it is
 * done. */
static void write_while_busy(int what, uint64_t off, uint32_t value)
{
	struct bg_access a = { .what = what, .off = off, .value = value };
	uint8_t used[8 + 8 * QSIZE];

	make_image("disk.img");
	create_threaded();
	four_flushes_held();
	/* the transport is free while the request's I/O runs: a register read does not wait */
	cr_assert_eq(rd(VIRTIO_MMIO_STATUS), 0xf);
	bg_start(&a);
	sleep_us(50 * 1000);
	cr_assert_not(bg_done(&a), "the write did not wait for the request in flight");
	cr_assert_eq(used_now(), 0);
	fake_gpa_release();
	bg_join(&a, "the write");
	cr_assert_eq(used_now(), 1, "%u requests completed before it returned (1 was in flight)",
	             used_now());
	cr_assert_eq(ram[STATUS], S_OK);
	for (unsigned i = 1; i < 4; i++)
		cr_assert_eq(ram[STATUS + i], 0xee, "request %u served after the queue went", i);
	/* whatever the guest does now, the old queue is left alone */
	memcpy(used, ram + USED, sizeof(used));
	tkick();
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	sleep_us(50 * 1000);
	cr_assert_arr_eq(ram + USED, used, sizeof(used), "used ring written after the write");
	for (unsigned i = 1; i < 4; i++)
		cr_assert_eq(ram[STATUS + i], 0xee);
}

Test(blk, threaded_reset_waits_for_the_request_in_flight_only)
{
	write_while_busy(BG_WRITE, VIRTIO_MMIO_STATUS, 0);
	cr_assert_eq(rd(VIRTIO_MMIO_STATUS), 0);
	/* the driver starts over and the disk works */
	memset(ram + AVAIL, 0, 0x1000);
	memset(ram + USED, 0, 0x1000);
	avail_idx = 0;
	driver_up();
	tput(0, T_GET_ID, 0, 20, true);
	tpublish();
	tkick();
	cr_assert(wait_used(1, TIMEOUT_MS), "%s", fake_log());
	cr_assert_eq(ram[STATUS], S_OK);
}

Test(blk, threaded_queue_ready_0_waits_for_the_request_in_flight_only)
{
	write_while_busy(BG_WRITE, VIRTIO_MMIO_QUEUE_READY, 0);
	cr_assert_eq(rd(VIRTIO_MMIO_QUEUE_READY), 0);
	cr_assert_eq(rd(VIRTIO_MMIO_STATUS), 0xf);
}

Test(blk, threaded_machine_reset_waits_for_the_request_in_flight_only)
{
	write_while_busy(BG_RESET, 0, 0);
	cr_assert_eq(rd(VIRTIO_MMIO_STATUS), 0);
}

Test(blk, threaded_destroy_while_busy_joins)
{
	struct bg_access a = { .what = BG_DESTROY };

	make_image("disk.img");
	create_threaded();
	four_flushes_held();
	bg_start(&a);
	sleep_us(50 * 1000);
	cr_assert_not(bg_done(&a), "destroy did not wait for the request in flight");
	fake_gpa_release();
	bg_join(&a, "destroy");
	cr_assert_eq(used_now(), 1, "destroy waited for %u requests (1 was in flight)", used_now());
	cr_assert(fake_log_contains("served 1 requests"), "%s", fake_log());
}

/*
 * A guest that keeps queueing and kicking on one vCPU while another resets the device: no
 * crash, no hang, and once the reset is done nothing more lands in the used ring.
 */
struct feeder {
	pthread_t thread;
	int stop;
	unsigned submitted;
};

static void *feeder_run(void *opaque)
{
	struct feeder *f = opaque;
	uint64_t one = 1;

	while (!__atomic_load_n(&f->stop, __ATOMIC_ACQUIRE)) {
		/* at most TSLOTS in flight: a slot is reused once its request is used */
		if ((uint16_t)(avail_idx - used_now()) < TSLOTS) {
			unsigned slot = avail_idx % TSLOTS;

			fill(ram + TDATA(slot), 8192, (uint8_t)avail_idx);
			tput(slot, avail_idx & 1 ? T_IN : T_OUT, 16 * slot, 8192, avail_idx & 1);
			tpublish();
			f->submitted++;
		}
		if (write(kick_fd, &one, sizeof(one)) != (ssize_t)sizeof(one))
			break;
		sleep_us(20);
	}
	return NULL;
}

Test(blk, threaded_reset_races_a_stream_of_requests)
{
	uint8_t used[8 + 8 * QSIZE];
	unsigned completed = 0;

	make_image("disk.img");
	create_threaded();
	for (unsigned round = 0; round < 30; round++) {
		struct feeder f = { 0 };

		cr_assert_eq(pthread_create(&f.thread, NULL, feeder_run, &f), 0);
		sleep_us(200 + 300 * (round % 7));
		wr(VIRTIO_MMIO_STATUS, 0); /* waits for the request in flight, if any */
		memcpy(used, ram + USED, sizeof(used));
		sleep_us(2000);
		cr_assert_arr_eq(ram + USED, used, sizeof(used),
		                 "round %u: used ring written after the reset", round);
		__atomic_store_n(&f.stop, 1, __ATOMIC_RELEASE);
		cr_assert_eq(pthread_join(f.thread, NULL), 0);
		cr_assert_arr_eq(ram + USED, used, sizeof(used));
		completed += used_now();
		/* the driver starts over */
		memset(ram + AVAIL, 0, 0x1000);
		memset(ram + USED, 0, 0x1000);
		avail_idx = 0;
		driver_up();
	}
	cr_assert_gt(completed, 0, "no request was ever served: %s", fake_log());
	tput(0, T_GET_ID, 0, 20, true);
	tpublish();
	tkick();
	cr_assert(wait_used(1, TIMEOUT_MS), "%s", fake_log());
	cr_assert_eq(ram[STATUS], S_OK);
}
