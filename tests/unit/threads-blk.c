/*
 * virtio-blk with its I/O thread (the fake host takes the ioeventfd), on an image file in a
 * temporary folder, driven by the test's threads as vCPUs: requests checked on disk and in
 * the used ring while registers are read and written, resets and QueueReady 0 against a
 * request in flight and against a stream of them, pause and a snapshot restored into a new
 * device, destroy with requests in flight.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "blk-driver.h"
#include "threads.h"

#define SECTORS (DISK_SIZE / 512)

static uint32_t used_id(uint16_t i)
{
	uint32_t id;

	memcpy(&id, ram + USED + 4 + 8 * (i % QSIZE), 4);
	return le32toh(id);
}

static void expect_on_disk(uint64_t sector, uint32_t len, uint8_t seed, const char *what)
{
	uint8_t *want = malloc(len), *got = malloc(len);

	CHECK(want && got);
	fill(want, len, seed);
	read_image("disk.img", sector * 512, got, len);
	CHECK(!memcmp(got, want, len), "%s: sector %llu does not hold what was written", what,
	      (unsigned long long)sector);
	free(want);
	free(got);
}

/* A write then a read back through the queue, checked on disk and in guest RAM. */
static void write_and_read_back(uint64_t sector, uint8_t seed)
{
	uint16_t u = used_now();
	uint8_t want[4096];

	fill(ram + TDATA(0), 4096, seed);
	tput(0, T_OUT, sector, 4096, false);
	tpublish();
	tkick();
	CHECK(wait_used((uint16_t)(u + 1), TIMEOUT_MS), "the write was not served");
	CHECK_EQ(ram[STATUS], S_OK);
	expect_on_disk(sector, 4096, seed, "write");
	memset(ram + TDATA(1), 0, 4096);
	tput(1, T_IN, sector, 4096, true);
	tpublish();
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0); /* the ioeventfd takes it */
	CHECK(wait_used((uint16_t)(u + 2), TIMEOUT_MS), "the read was not served");
	CHECK_EQ(ram[STATUS + 1], S_OK);
	CHECK_EQ(used_len((uint16_t)(u + 1)), 4096 + 1);
	fill(want, sizeof(want), seed);
	CHECK(!memcmp(ram + TDATA(1), want, sizeof(want)), "the read back differs");
}

/* The driver starts over after a reset: fresh rings. */
static void restart_driver(void)
{
	memset(ram + AVAIL, 0, 0x1000);
	memset(ram + USED, 0, 0x1000);
	avail_idx = 0;
	driver_up();
}

/* ---- a stream of writes on one vCPU, registers on another --------------------------- */

#define STREAM 150
#define SEED(k) ((uint8_t)(0x30 + 13 * (k)))

static void feed_writes(void *arg)
{
	(void)arg;
	for (unsigned k = 0; k < STREAM; k++) {
		unsigned slot = k % TSLOTS;

		/* at most TSLOTS - 1 in flight: the slot's previous request has completed */
		for (long end = now_ms() + TIMEOUT_MS;
		     (uint16_t)(avail_idx - used_now()) >= TSLOTS;)
			CHECK_LT(now_ms(), end, "request %u: the device stopped serving", k);
		if (k >= TSLOTS) {
			CHECK_EQ(ram[STATUS + slot], S_OK, "request %u", k - TSLOTS);
			CHECK_EQ(used_id((uint16_t)(k - TSLOTS)), 3 * slot, "used[%u].id",
			         k - TSLOTS);
			CHECK_EQ(used_len((uint16_t)(k - TSLOTS)), 1, "used[%u].len", k - TSLOTS);
		}
		fill(ram + TDATA(slot), 4096, SEED(k));
		tput(slot, T_OUT, 8 * k, 4096, false);
		tpublish();
		if (k % 2)
			tkick();
		else
			wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	}
}

void blk_stream_with_register_traffic(void)
{
	struct bg vcpu1 = { 0 };
	unsigned acks = 0;

	blk_setup();
	make_image("disk.img");
	create_threaded();
	bg_start(&vcpu1, feed_writes, NULL);
	/* vCPU 0: the interrupt handler's accesses, and the config space */
	while (!bg_done(&vcpu1)) {
		uint32_t isr = rd(VIRTIO_MMIO_INTERRUPT_STATUS);

		if (isr) {
			CHECK_EQ(isr, VIRTIO_INT_USED);
			wr(VIRTIO_MMIO_INTERRUPT_ACK, isr);
			acks++;
		}
		CHECK_EQ(rd(VIRTIO_MMIO_STATUS), 0xf);
		CHECK_EQ(rd(VIRTIO_MMIO_CONFIG), SECTORS, "capacity");
		sleep_us(100);
	}
	bg_join(&vcpu1, "the feeder", TIMEOUT_MS);
	CHECK(wait_used(STREAM, TIMEOUT_MS), "the stream was not served: used %u", used_now());
	/* On a loaded host the feeder can finish before this thread polls even once: the
	 * status bit stays set until acknowledged, so an interrupt is still seen here. */
	uint32_t isr = rd(VIRTIO_MMIO_INTERRUPT_STATUS);
	if (isr) {
		CHECK_EQ(isr, VIRTIO_INT_USED);
		wr(VIRTIO_MMIO_INTERRUPT_ACK, isr);
		acks++;
	}
	CHECK_GT(acks, 0, "no interrupt seen");
	CHECK_EQ(fake_irq_misuse(), 0);
	for (unsigned k = STREAM - TSLOTS; k < STREAM; k++)
		CHECK_EQ(ram[STATUS + k % TSLOTS], S_OK, "request %u", k);
	for (unsigned k = 0; k < STREAM; k++)
		expect_on_disk(8 * k, 4096, SEED(k), "a write of the stream");
	write_and_read_back(8 * 3, SEED(3) + 1);
	blk_teardown();
}

/* ---- a reset (vCPU 0) against a stream of requests (vCPU 1) ------------------------ */

struct feeder {
	unsigned submitted;
	int stop; /* atomic */
};

static void feed_mixed(void *arg)
{
	struct feeder *f = arg;

	while (!__atomic_load_n(&f->stop, __ATOMIC_ACQUIRE)) {
		if ((uint16_t)(avail_idx - used_now()) < TSLOTS) {
			unsigned slot = avail_idx % TSLOTS;

			fill(ram + TDATA(slot), 8192, (uint8_t)avail_idx);
			tput(slot, avail_idx & 1 ? T_IN : T_OUT, 16 * slot, 8192, avail_idx & 1);
			tpublish();
			__atomic_add_fetch(&f->submitted, 1, __ATOMIC_RELEASE);
		}
		if (__atomic_load_n(&f->submitted, __ATOMIC_RELAXED) % 3)
			tkick();
		else
			wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
		sleep_us(20);
	}
}

void blk_reset_races_a_stream(void)
{
	uint8_t used[8 + 8 * QSIZE];
	unsigned completed = 0;

	blk_setup();
	make_image("disk.img");
	create_threaded();
	for (unsigned round = 0; round < 12; round++) {
		struct feeder f = { 0 };
		struct bg vcpu1 = { 0 };

		bg_start(&vcpu1, feed_mixed, &f);
		/* The reset races a stream that has started (a loaded host may not run the feeder
		 * for milliseconds); in round 0 it also waits for a completion, so the device is
		 * seen serving at least once whatever the scheduling. */
		for (long end = now_ms() + TIMEOUT_MS;
		     !__atomic_load_n(&f.submitted, __ATOMIC_ACQUIRE) ||
		     (round == 0 && !used_now());)
			CHECK_LT(now_ms(), end, "round %u: nothing submitted or served", round);
		sleep_us(300 + 400 * (round % 5));
		wr(VIRTIO_MMIO_STATUS, 0); /* waits for the request in flight, if any */
		CHECK_EQ(rd(VIRTIO_MMIO_STATUS), 0, "round %u", round);
		memcpy(used, ram + USED, sizeof(used));
		sleep_us(3000);
		CHECK(!memcmp(ram + USED, used, sizeof(used)),
		      "round %u: used ring written after the reset", round);
		__atomic_store_n(&f.stop, 1, __ATOMIC_RELEASE);
		bg_join(&vcpu1, "the feeder", TIMEOUT_MS);
		CHECK(!memcmp(ram + USED, used, sizeof(used)), "round %u", round);
		/* what completed before the reset has a status the device wrote */
		for (uint16_t i = 0; i < used_now() && i + TSLOTS >= used_now(); i++) {
			uint32_t id = used_id(i);

			CHECK(id % 3 == 0 && id / 3 < TSLOTS, "round %u: used[%u].id %u", round, i,
			      id);
		}
		completed += used_now();
		restart_driver();
	}
	CHECK_GT(completed, 0, "no request was ever served");
	write_and_read_back(200, 0x99);
	blk_teardown();
}

/* ---- a register write (vCPU 1) while the I/O thread is inside a request ------------ */

enum { BG_WRITE, BG_DESTROY, BG_PAUSE };

struct access {
	int what;
	uint64_t off;
	uint32_t value;
};

static void do_access(void *arg)
{
	struct access *a = arg;

	if (a->what == BG_WRITE)
		wr(a->off, a->value);
	else if (a->what == BG_DESTROY)
		fake_dev_destroy(dev);
	else
		fake_dev_pause(dev);
}

/* Four flushes posted, the I/O thread held inside the first; @a from another thread waits
 * for that one request, and no other is completed. */
static void access_while_busy(struct access *a, const char *what)
{
	struct bg vcpu1 = { 0 };

	make_image("disk.img");
	create_threaded();
	four_flushes_held();
	CHECK_EQ(rd(VIRTIO_MMIO_STATUS), 0xf, "the transport is free during the request's I/O");
	bg_start(&vcpu1, do_access, a);
	sleep_us(50 * 1000);
	CHECK_NOT(bg_done(&vcpu1), "%s did not wait for the request in flight", what);
	CHECK_EQ(used_now(), 0);
	fake_gpa_release();
	bg_join(&vcpu1, what, TIMEOUT_MS);
	CHECK_EQ(used_now(), 1, "%s: %u requests completed before it returned (1 was in flight)",
	         what, used_now());
	CHECK_EQ(ram[STATUS], S_OK);
	for (unsigned i = 1; i < 4; i++)
		CHECK_EQ(ram[STATUS + i], 0xee, "%s: request %u served after", what, i);
}

/* After a reset or QueueReady 0: kicks leave the old queue alone. */
static void old_queue_left_alone(void)
{
	uint8_t used[8 + 8 * QSIZE];

	memcpy(used, ram + USED, sizeof(used));
	tkick();
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	sleep_us(50 * 1000);
	CHECK(!memcmp(ram + USED, used, sizeof(used)), "used ring written after the queue went");
	for (unsigned i = 1; i < 4; i++)
		CHECK_EQ(ram[STATUS + i], 0xee);
}

void blk_reset_waits_for_the_request_in_flight(void)
{
	struct access a = { BG_WRITE, VIRTIO_MMIO_STATUS, 0 };

	blk_setup();
	access_while_busy(&a, "Status 0");
	CHECK_EQ(rd(VIRTIO_MMIO_STATUS), 0);
	old_queue_left_alone();
	restart_driver();
	write_and_read_back(64, 0x42);
	blk_teardown();
}

void blk_queue_ready_0_waits_for_the_request_in_flight(void)
{
	struct access a = { BG_WRITE, VIRTIO_MMIO_QUEUE_READY, 0 };

	blk_setup();
	access_while_busy(&a, "QueueReady 0");
	CHECK_EQ(rd(VIRTIO_MMIO_QUEUE_READY), 0);
	CHECK_EQ(rd(VIRTIO_MMIO_STATUS), 0xf);
	old_queue_left_alone();
	restart_driver();
	write_and_read_back(96, 0x43);
	blk_teardown();
}

/* ---- pause, save, restore into a new device ---------------------------------------- */

void blk_pause_save_restore(void)
{
	struct access a = { .what = BG_PAUSE };
	uint8_t *state = NULL;
	size_t len = 0;
	uint32_t version = 0;

	blk_setup();
	access_while_busy(&a, "pause");
	/* while paused: a write posted and kicked (slot 4: clear of the flushes), not served */
	fill(ram + TDATA(4), 4096, 0x5a);
	tput(4, T_OUT, 100, 4096, false);
	tpublish();
	tkick();
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	sleep_us(50 * 1000);
	CHECK_EQ(used_now(), 1, "a request taken while paused");
	CHECK_EQ(fake_dev_save(dev, &state, &len, &version), 0, "save");
	CHECK_EQ(version, 1);
	/* the disk goes; a new one on the same image, with its I/O thread, takes the state */
	fake_dev_destroy(dev);
	fake_ioeventfd_accept(true);
	CHECK_EQ(create_dev("vda", "path", "disk.img", NULL), 0, "the new disk");
	kick_fd = fake_ioeventfd_fd(base + VIRTIO_MMIO_QUEUE_NOTIFY);
	CHECK_GE(kick_fd, 0);
	CHECK_EQ(fake_dev_load(dev, state, len, version), 0, "load");
	free(state);
	CHECK_EQ(rd(VIRTIO_MMIO_STATUS), 0xf, "Status survives");
	CHECK(wait_used(5, TIMEOUT_MS),
	      "the posted requests were not served after the restore: "
	      "used %u",
	      used_now());
	for (unsigned i = 0; i < 4; i++)
		CHECK_EQ(ram[STATUS + i], S_OK, "flush %u", i);
	CHECK_EQ(ram[STATUS + 4], S_OK, "the write posted while paused");
	CHECK_EQ(used_id(4), 12, "used[4].id");
	expect_on_disk(100, 4096, 0x5a, "the write posted while paused");
	/* pause and resume again on the restored disk, with requests around them */
	fake_dev_pause(dev);
	fake_dev_resume(dev);
	write_and_read_back(300, 0x6b);
	blk_teardown();
}

/* ---- destroy with requests in flight ----------------------------------------------- */

#define BIG (64u << 10)

void blk_destroy_while_busy(void)
{
	struct access a = { .what = BG_DESTROY };

	blk_setup();
	access_while_busy(&a, "destroy");
	CHECK(fake_log_contains("served 1 requests"), "the destroyed disk's count");
	/* a new disk; four 64 KiB writes kicked and the disk destroyed at once: each request
	 * either completed whole (on disk) or was never completed */
	memset(ram + AVAIL, 0, 0x1000);
	memset(ram + USED, 0, 0x1000);
	avail_idx = 0;
	create_threaded();
	for (unsigned i = 0; i < 4; i++) {
		fill(ram + TDATA(i), BIG, (uint8_t)(0x70 + i));
		tput(i, T_OUT, 256 * i, BIG, false);
	}
	tpublish();
	tkick();
	sleep_us(200 * (unsigned)(now_ms() % 5));
	fake_dev_destroy(dev);
	uint16_t n = used_now();
	CHECK_LE(n, 4);
	for (unsigned i = 0; i < 4; i++) {
		if (i >= n) {
			CHECK_EQ(ram[STATUS + i], 0xee, "request %u: a status without a used entry",
			         i);
			continue;
		}
		CHECK(ram[STATUS + i] == S_OK || ram[STATUS + i] == S_IOERR,
		      "request %u: status %u", i, ram[STATUS + i]);
		if (ram[STATUS + i] == S_OK)
			expect_on_disk(256 * i, BIG, (uint8_t)(0x70 + i), "a completed write");
	}
	blk_teardown();
}
