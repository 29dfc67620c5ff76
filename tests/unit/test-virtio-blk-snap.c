/*
 * virtio-blk snapshots and image locks, through the fake host: pause and resume (the I/O
 * thread's and the handler's way), save in the middle of a queue's work, destroy, a new
 * device on the same image, load, and the rest of the work done after it; states refused
 * (newer, truncated, corrupt, another image); OFD locks against a second user of an image.
 * The fake guest RAM stays in place across the "restore", as the snapshot's RAM would.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "blk-driver.h"
#include "dev-snap.h"

TestSuite(blksnap, .init = blk_setup, .fini = blk_teardown);

/* Offsets in state version 1 (see devices/virtio-blk/blk-snap.c and virtio.h). */
#define ST_READONLY 8
#define ST_CONFIG 9
#define ST_VIRTIO 69
#define ST_FEATURES (ST_VIRTIO + 8)
#define ST_DRIVER_FEATURES (ST_VIRTIO + 16)
#define ST_STATUS (ST_VIRTIO + 36)
#define ST_ISR (ST_VIRTIO + 40)
#define ST_NQ (ST_VIRTIO + 48)
#define ST_Q (ST_VIRTIO + 52)
#define ST_SIZE (ST_Q + 40)

static uint8_t *state;
static size_t state_len;

/* The device's kick eventfd on the event loop (no I/O thread): the one fd it watches. */
static int watched_fd(void)
{
	for (int fd = 0; fd < 1024; fd++)
		if (fake_fd_watched(fd))
			return fd;
	cr_assert_fail("the disk watches no fd: %s", fake_log());
	return -1;
}

static void save(void)
{
	uint32_t version = 0;

	free(state);
	state = NULL;
	cr_assert_eq(fake_dev_save(dev, &state, &state_len, &version), 0, "%s", fake_log());
	cr_assert_eq(version, 1);
	cr_assert_eq(state_len, ST_SIZE);
}

/* The disk goes; a new one is made on the same image (@threaded: with its I/O thread), its
 * driver not brought up: load() is to restore all of that. */
static void recreate(bool threaded, const char *readonly)
{
	fake_dev_destroy(dev);
	fake_ioeventfd_accept(threaded);
	cr_assert_eq(create_dev("vda", "path", "disk.img", "readonly", readonly, NULL), 0, "%s",
	             fake_log());
	kick_fd = threaded ? fake_ioeventfd_fd(base + VIRTIO_MMIO_QUEUE_NOTIFY) : -1;
	cr_assert_eq(rd(VIRTIO_MMIO_STATUS), 0);
}

#define put16(p, v) dev_le_put(p, v, 2)
#define put32(p, v) dev_le_put(p, v, 4)
#define put64(p, v) dev_le_put(p, v, 8)
#define get64(p) dev_le_get(p, 8)

/*
 * Two writes done before the snapshot, three requests posted but never notified (a write, a
 * read of the second write, a GET_ID), the interrupt of the first batch not acknowledged.
 * After the restore, the three complete without a new notification, with one interrupt, as
 * used_event asks (at the first of them).
 */
static void snapshot_mid_queue(bool threaded)
{
	uint8_t want[4096], file[4096];
	unsigned rises;

	make_image("disk.img");
	if (threaded)
		create_threaded();
	else
		create_up("disk.img", NULL);
	for (unsigned i = 0; i < 2; i++) {
		fill(ram + TDATA(i), 4096, (uint8_t)(0x10 + i));
		tput(i, T_OUT, 8 * i, 4096, false);
	}
	tpublish(); /* used_event 0: an interrupt at the first completion */
	if (threaded)
		tkick();
	else
		wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	cr_assert(wait_used(2, TIMEOUT_MS), "%s", fake_log());
	cr_assert_eq(fake_irq_rises(IRQ), 1, "used_event 0: one interrupt for two completions");
	cr_assert_eq(rd(VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_INT_USED);

	fill(ram + TDATA(2), 4096, 0x77);
	tput(2, T_OUT, 64, 4096, false);
	memset(ram + TDATA(3), 0, 4096);
	tput(3, T_IN, 8, 4096, true);
	memset(ram + TDATA(4), 0, 64);
	tput(4, T_GET_ID, 0, 20, true);
	tpublish(); /* used_event 2: an interrupt at the third completion */
	sleep_us(20 * 1000);
	cr_assert_eq(used_now(), 2, "served without a notification");

	fake_dev_pause(dev);
	save();
	recreate(threaded, "off");
	rises = fake_irq_rises(IRQ);
	cr_assert_eq(fake_dev_load(dev, state, state_len, 1), 0, "%s", fake_log());
	cr_assert_eq(rd(VIRTIO_MMIO_STATUS), 0xf, "Status survives");
	cr_assert_eq(rd(VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_INT_USED, "InterruptStatus survives");
	if (!threaded)
		cr_assert_eq(fake_fd_fire_ready(watched_fd(), TIMEOUT_MS), 0, "no self-kick");
	cr_assert(wait_used(5, TIMEOUT_MS), "posted requests not served after the restore: %s",
	          fake_log());
	sleep_us(20 * 1000);
	cr_assert_eq(used_now(), 5);

	/* used ring: heads 0, 3, 6, 9, 12 in order, with the bytes written */
	static const uint32_t lens[5] = { 1, 1, 1, 4096 + 1, 20 + 1 };
	for (uint16_t i = 0; i < 5; i++) {
		uint32_t id;

		memcpy(&id, ram + USED + 4 + 8 * i, 4);
		cr_assert_eq(le32toh(id), 3u * i, "used[%u].id", i);
		cr_assert_eq(used_len(i), lens[i], "used[%u].len", i);
		cr_assert_eq(ram[STATUS + i], S_OK, "request %u", i);
	}
	fill(want, sizeof(want), 0x11); /* the second write's, sector 8 */
	cr_assert_arr_eq(ram + TDATA(3), want, sizeof(want), "read after the restore");
	fill(want, sizeof(want), 0x77);
	read_image("disk.img", 64 * 512, file, sizeof(file));
	cr_assert_arr_eq(file, want, sizeof(want), "write after the restore");
	cr_assert_eq(memcmp(ram + TDATA(4), "disk.img", 9), 0);
	cr_assert_eq(fake_irq_rises(IRQ), rises + 2,
	             "two interrupts after the restore: load's (InterruptStatus was set: its "
	             "edge may have been in flight at the snapshot) and used_event 2's");
	cr_assert_eq(fake_irq_misuse(), 0);
	/* the driver goes on as before */
	wr(VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_INT_USED);
	cr_assert_eq(rd(VIRTIO_MMIO_INTERRUPT_STATUS), 0);
	tput(0, T_FLUSH, 0, 0, false);
	tpublish();
	if (threaded)
		tkick();
	else
		wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	cr_assert(wait_used(6, TIMEOUT_MS), "%s", fake_log());
	cr_assert_eq(ram[STATUS], S_OK);
}

Test(blksnap, threaded_snapshot_mid_queue_then_restore)
{
	snapshot_mid_queue(true);
}

Test(blksnap, unthreaded_snapshot_mid_queue_then_restore)
{
	snapshot_mid_queue(false);
}

/* ---- pause and resume ----------------------------------------------------------------- */

struct bg_pause {
	pthread_t thread;
	int done;
};

static void *bg_pause_run(void *opaque)
{
	struct bg_pause *a = opaque;

	fake_dev_pause(dev);
	__atomic_store_n(&a->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

Test(blksnap, threaded_pause_waits_for_the_request_in_flight_and_takes_no_other)
{
	struct bg_pause a = { 0 };
	struct timespec ts;

	make_image("disk.img");
	create_threaded();
	four_flushes_held();
	cr_assert_eq(pthread_create(&a.thread, NULL, bg_pause_run, &a), 0);
	sleep_us(50 * 1000);
	cr_assert_not(__atomic_load_n(&a.done, __ATOMIC_ACQUIRE),
	              "pause returned with a request in flight");
	fake_gpa_release();
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += TIMEOUT_MS / 1000;
	cr_assert_eq(pthread_timedjoin_np(a.thread, NULL, &ts), 0, "pause hangs: %s", fake_log());
	cr_assert_eq(used_now(), 1, "pause returned before the request in flight completed");
	cr_assert_eq(ram[STATUS], S_OK);
	/* kicks while paused (the ioeventfd's, the handler's) wait */
	tkick();
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	sleep_us(50 * 1000);
	cr_assert_eq(used_now(), 1, "a request taken while paused");
	for (unsigned i = 1; i < 4; i++)
		cr_assert_eq(ram[STATUS + i], 0xee);
	/* the state saved while paused holds nothing taken and not completed */
	save();
	fake_dev_resume(dev);
	cr_assert(wait_used(4, TIMEOUT_MS), "not served after resume: %s", fake_log());
	for (unsigned i = 0; i < 4; i++)
		cr_assert_eq(ram[STATUS + i], S_OK);
}

Test(blksnap, threaded_kick_while_paused_is_served_on_resume)
{
	make_image("disk.img");
	create_threaded();
	fake_dev_pause(dev);
	fake_dev_pause(dev); /* twice: one resume undoes it */
	tput(0, T_GET_ID, 0, 20, true);
	tpublish();
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0); /* the ioeventfd takes it */
	sleep_us(50 * 1000);
	cr_assert_eq(used_now(), 0, "served while paused");
	fake_dev_resume(dev);
	cr_assert(wait_used(1, TIMEOUT_MS), "the kick that came while paused was lost: %s",
	          fake_log());
	cr_assert_eq(ram[STATUS], S_OK);
	fake_dev_resume(dev); /* not paused: nothing */
	tput(1, T_GET_ID, 0, 20, true);
	tpublish();
	tkick();
	cr_assert(wait_used(2, TIMEOUT_MS), "%s", fake_log());
}

Test(blksnap, unthreaded_notify_while_paused_is_served_on_resume)
{
	int fd;

	make_image("disk.img");
	create_up("disk.img", NULL);
	fd = watched_fd();
	fake_dev_pause(dev);
	tput(0, T_GET_ID, 0, 20, true);
	tpublish();
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	cr_assert_eq(used_now(), 0, "served while paused");
	cr_assert_eq(fake_fd_fire_ready(fd, 0), -ETIMEDOUT, "a self-kick while paused");
	fake_dev_resume(dev);
	cr_assert_eq(fake_fd_fire_ready(fd, TIMEOUT_MS), 0, "resume did not kick the queue");
	cr_assert_eq(used_now(), 1, "%s", fake_log());
	cr_assert_eq(ram[STATUS], S_OK);
}

Test(blksnap, destroy_while_paused)
{
	make_image("disk.img");
	create_threaded();
	fake_dev_pause(dev);
	tput(0, T_GET_ID, 0, 20, true);
	tpublish();
	tkick(); /* the thread wakes and waits for resume() */
	sleep_us(20 * 1000);
	fake_dev_destroy(dev); /* it leaves without serving */
	cr_assert_eq(used_now(), 0);
	cr_assert(fake_log_contains("served 0 requests"), "%s", fake_log());
}

/* ---- reachable states round-trip ------------------------------------------------------ */

Test(blksnap, fresh_device_round_trips)
{
	make_image("disk.img");
	cr_assert_eq(create_dev("vda", "path", "disk.img", NULL), 0);
	save();
	recreate(false, "off");
	cr_assert_eq(fake_dev_load(dev, state, state_len, 1), 0, "%s", fake_log());
	driver_up(); /* the driver comes up as on a new device */
	tput(0, T_GET_ID, 0, 20, true);
	tpublish();
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	cr_assert_eq(used_now(), 1);
}

/* Mid-negotiation: DRIVER, features written (one never offered: FEATURES_OK would refuse
 * it, but a state where the driver wrote it is one a guest can make), selectors set. */
Test(blksnap, mid_negotiation_round_trips)
{
	make_image("disk.img");
	cr_assert_eq(create_dev("vda", "path", "disk.img", NULL), 0);
	wr(VIRTIO_MMIO_STATUS, 1);
	wr(VIRTIO_MMIO_STATUS, 3);
	wr(VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	wr(VIRTIO_MMIO_DRIVER_FEATURES, 1u << 31);
	wr(VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	wr(VIRTIO_MMIO_QUEUE_SEL, 7);
	save();
	recreate(false, "off");
	cr_assert_eq(fake_dev_load(dev, state, state_len, 1), 0, "%s", fake_log());
	cr_assert_eq(rd(VIRTIO_MMIO_STATUS), 3);
	cr_assert_eq(rd(VIRTIO_MMIO_DEVICE_FEATURES), 1, "DeviceFeaturesSel 1: VERSION_1");
	cr_assert_eq(rd(VIRTIO_MMIO_QUEUE_NUM_MAX), 0, "QueueSel 7: no queue");
	wr(VIRTIO_MMIO_STATUS, 0xb);
	cr_assert_eq(rd(VIRTIO_MMIO_STATUS), 3, "FEATURES_OK with a feature never offered");
}

/* A broken queue (NEEDS_RESET) stays broken, and the driver's reset works. */
Test(blksnap, broken_queue_round_trips)
{
	make_image("disk.img");
	create_up("disk.img", NULL);
	put16(ram + AVAIL + 2, 100); /* more than the queue size ahead */
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	cr_assert(rd(VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_NEEDS_RESET);
	save();
	recreate(false, "off");
	cr_assert_eq(fake_dev_load(dev, state, state_len, 1), 0, "%s", fake_log());
	cr_assert_eq(rd(VIRTIO_MMIO_STATUS), 0xf | VIRTIO_STATUS_NEEDS_RESET);
	cr_assert_eq(rd(VIRTIO_MMIO_INTERRUPT_STATUS), VIRTIO_INT_CONFIG);
	memset(ram + AVAIL, 0, 0x1000);
	memset(ram + USED, 0, 0x1000);
	avail_idx = 0;
	driver_up();
	tput(0, T_GET_ID, 0, 20, true);
	tpublish();
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	cr_assert_eq(used_now(), 1);
}

/* ---- states refused ------------------------------------------------------------------- */

/* A device with its driver up and two requests done, saved; then a fresh one to load into. */
static void saved_busy_device(void)
{
	make_image("disk.img");
	create_up("disk.img", NULL);
	tput(0, T_GET_ID, 0, 20, true);
	tput(1, T_FLUSH, 0, 0, false);
	tpublish();
	wr(VIRTIO_MMIO_QUEUE_NOTIFY, 0);
	cr_assert_eq(used_now(), 2);
	save();
	recreate(false, "off");
}

static void refused(const uint8_t *buf, size_t len, uint32_t version, int want, const char *msg,
                    const char *what)
{
	int r = fake_dev_load(dev, buf, len, version);

	cr_assert_eq(r, want, "%s: load gave %d (%s), not %d: %s", what, r, strerror(-r), want,
	             fake_log());
	if (msg)
		cr_assert(fake_log_contains(msg), "%s: no '%s' in the log: %s", what, msg,
		          fake_log());
	/* nothing changed */
	cr_assert_eq(rd(VIRTIO_MMIO_STATUS), 0, "%s: the device changed", what);
	cr_assert_eq(rd(VIRTIO_MMIO_QUEUE_READY), 0, "%s", what);
}

Test(blksnap, newer_state_version_refused)
{
	saved_busy_device();
	refused(state, state_len, 2, -ENOTSUP, "state version 2", "version 2");
	refused(state, state_len, 0, -EINVAL, "state version 0", "version 0");
}

Test(blksnap, truncated_state_refused_at_every_length)
{
	uint8_t *longer;

	saved_busy_device();
	for (size_t len = 0; len < state_len; len++) {
		uint8_t *copy = malloc(len ? len : 1); /* exact size: ASan sees a read past it */

		memcpy(copy, state, len);
		refused(copy, len, 1, -EBADMSG, "truncated", "truncated");
		free(copy);
	}
	longer = calloc(1, state_len + 1);
	memcpy(longer, state, state_len);
	refused(longer, state_len + 1, 1, -EINVAL, "has 162 bytes, version 1 has 161",
	        "a byte too many");
	free(longer);
	cr_assert_eq(fake_dev_load(dev, state, state_len, 1), 0, "%s", fake_log());
	cr_assert_eq(rd(VIRTIO_MMIO_STATUS), 0xf);
}

struct corruption {
	const char *what, *msg;
	size_t off;
	unsigned size; /* 1, 2, 4 or 8; 0: XOR @value into a byte */
	uint64_t value;
};

static const struct corruption corruptions[] = {
	{ "read-only flag 2", "read-only flag 2", ST_READONLY, 1, 2 },
	{ "config space changed", "config space byte 12", ST_CONFIG + 12, 0, 0x01 },
	{ "blk_size not a power of 2", "blk_size 1536", ST_CONFIG + 20, 4, 1536 },
	{ "transport layout newer", "layout 2 is newer", ST_VIRTIO, 4, 2 },
	{ "another DeviceID", "DeviceID 1 when saved", ST_VIRTIO + 4, 4, 1 },
	{ "offered feature dropped", "feature VIRTIO_F_EVENT_IDX (bit 29) was not offered",
	  ST_FEATURES + 3, 0, 0x20 },
	{ "offered feature added", "VIRTIO_BLK_F_RO (bit 5) was offered", ST_FEATURES, 0, 0x20 },
	{ "unnamed feature", "feature bit 40 was offered", ST_FEATURES + 5, 0, 0x01 },
	{ "accepted feature never offered", "never offered", ST_DRIVER_FEATURES + 2, 0, 0x80 },
	{ "accepted features without VERSION_1", "lack VIRTIO_F_VERSION_1", ST_DRIVER_FEATURES + 4,
	  0, 0x01 },
	{ "unknown Status bit", "unknown bits", ST_STATUS, 4, 0x1f },
	{ "DRIVER_OK without FEATURES_OK", "skips a step", ST_STATUS, 4, 0x7 },
	{ "FEATURES_OK without DRIVER", "skips a step", ST_STATUS, 4, 0xd },
	{ "driver features without DRIVER", "without DRIVER", ST_STATUS, 4, 0x1 },
	{ "unknown InterruptStatus bit", "InterruptStatus 0x5", ST_ISR, 4, 5 },
	{ "two queues", "2 queues when saved, 1 now", ST_NQ, 4, 2 },
	{ "another QueueNumMax", "QueueNumMax 128 when saved", ST_Q, 2, 128 },
	{ "QueueNum not a power of 2", "QueueNum 12 is not", ST_Q + 2, 2, 12 },
	{ "QueueNum past QueueNumMax", "QueueNum 512 is not", ST_Q + 2, 2, 512 },
	{ "ready with QueueNum 0", "ready with QueueNum 0", ST_Q + 2, 2, 0 },
	{ "QueueReady 2", "not booleans", ST_Q + 4, 1, 2 },
	{ "broken 7", "not booleans", ST_Q + 5, 1, 7 },
	{ "descriptors across the end of RAM", "ring outside guest RAM", ST_Q + 6, 8,
	  FAKE_RAM_SIZE - 0x80 },
	{ "avail ring at 2^64 - 2", "ring outside guest RAM", ST_Q + 14, 8, ~1ull },
	{ "used ring misaligned", "misaligned ring", ST_Q + 22, 8, USED + 2 },
	{ "descriptors misaligned", "misaligned ring", ST_Q + 6, 8, DESC + 8 },
	{ "a request taken and not completed", "1 requests taken but not completed", ST_Q + 30, 2,
	  3 },
	{ "used index corrupt", "taken but not completed", ST_Q + 32, 2, 7 },
	{ "interrupt bookkeeping corrupt", "inconsistent", ST_Q + 36, 4, 5 },
};

Test(blksnap, corrupt_states_refused)
{
	uint8_t *c;

	saved_busy_device();
	c = malloc(state_len);
	for (size_t i = 0; i < sizeof(corruptions) / sizeof(corruptions[0]); i++) {
		const struct corruption *k = &corruptions[i];

		memcpy(c, state, state_len);
		cr_assert_lt(k->off + (k->size ? k->size : 1), state_len + 1);
		switch (k->size) {
		case 0: c[k->off] ^= (uint8_t)k->value; break;
		case 1: c[k->off] = (uint8_t)k->value; break;
		case 2: put16(c + k->off, (uint16_t)k->value); break;
		case 4: put32(c + k->off, (uint32_t)k->value); break;
		case 8: put64(c + k->off, k->value); break;
		}
		cr_assert_neq(memcmp(c, state, state_len), 0, "%s: no change", k->what);
		refused(c, state_len, 1, k->off == ST_VIRTIO ? -ENOTSUP : -EINVAL, k->msg, k->what);
	}
	free(c);
	/* the state as saved still loads into the device all those were refused by */
	cr_assert_eq(fake_dev_load(dev, state, state_len, 1), 0, "%s", fake_log());
	cr_assert_eq(rd(VIRTIO_MMIO_STATUS), 0xf);
}

Test(blksnap, image_of_another_size_refused)
{
	char msg[256];

	saved_busy_device();
	fake_dev_destroy(dev);
	cr_assert_eq(truncate(tmp_path("disk.img"), 2 * DISK_SIZE), 0);
	cr_assert_eq(create_dev("vda", "path", "disk.img", NULL), 0, "%s", fake_log());
	snprintf(msg, sizeof(msg),
	         "image '%s' has %u sectors (%u bytes), the snapshot's disk had %u",
	         tmp_path("disk.img"), 2 * DISK_SIZE / 512, 2 * DISK_SIZE, DISK_SIZE / 512);
	refused(state, state_len, 1, -EINVAL, msg, "twice the size");
	cr_assert_eq(get64(state) * 512, DISK_SIZE);
}

Test(blksnap, readonly_change_refused)
{
	char msg[256];

	saved_busy_device();
	recreate(false, "on");
	snprintf(msg, sizeof(msg), "image '%s' is read-only here but was writable",
	         tmp_path("disk.img"));
	refused(state, state_len, 1, -EINVAL, msg, "writable to read-only");
	/* and the other way */
	fake_dev_destroy(dev);
	cr_assert_eq(create_dev("vdb", "path", "disk.img", "readonly", "on", NULL), 0);
	save();
	recreate(false, "off");
	refused(state, state_len, 1, -EINVAL, "is writable here but was read-only",
	        "read-only to writable");
}

/* ---- image locks ---------------------------------------------------------------------- */

/* Another open file description of the image with an OFD lock of @type on all of it. */
static int hold_lock(const char *name, short type)
{
	int fd = open(tmp_path(name), type == F_WRLCK ? O_RDWR : O_RDONLY);
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET };

	cr_assert_geq(fd, 0);
	cr_assert_eq(fcntl(fd, F_OFD_SETLK, &fl), 0, "cannot lock %s: %s", name, strerror(errno));
	return fd;
}

static bool lockable(const char *name, short type)
{
	int fd = open(tmp_path(name), O_RDWR);
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET };
	bool ok;

	cr_assert_geq(fd, 0);
	ok = fcntl(fd, F_OFD_SETLK, &fl) == 0;
	close(fd);
	return ok;
}

static void assert_in_use(const char *what, const char *kind)
{
	char msg[256];

	cr_assert(fake_cfg_error_about("path"), "%s: no error about path: %s", what, fake_log());
	snprintf(msg, sizeof(msg), "image '%s' is in use by another process (%s)",
	         tmp_path("disk.img"), kind);
	for (unsigned i = 0; i < fake_cfg_errors(); i++)
		if (strstr(fake_cfg_error_msg(i), msg) &&
		    strstr(fake_cfg_error_msg(i), "cp --reflink=auto"))
			return;
	cr_assert_fail("%s: no '%s' among the errors: %s", what, msg, fake_log());
}

Test(blksnap, writable_image_locked_by_another_is_refused)
{
	make_image("disk.img");
	int fd = hold_lock("disk.img", F_WRLCK);

	cr_assert_eq(create_dev("vda", "path", "disk.img", NULL), -EINVAL);
	assert_in_use("writable", "locked for writing");
	cr_assert_eq(create_dev("vdb", "path", "disk.img", "readonly", "on", NULL), -EINVAL);
	cr_assert_eq(fake_cfg_errors(), 2);
	close(fd);
	cr_assert_eq(create_dev("vdc", "path", "disk.img", NULL), 0, "%s", fake_log());
}

Test(blksnap, writable_disk_on_an_image_open_read_only_is_refused)
{
	make_image("disk.img");
	int fd = hold_lock("disk.img", F_RDLCK);

	cr_assert_eq(create_dev("vda", "path", "disk.img", NULL), -EINVAL);
	assert_in_use("writable", "open read-only, and this disk is writable");
	cr_assert_eq(create_dev("vdb", "path", "disk.img", "readonly", "on", NULL), 0, "%s",
	             fake_log());
	close(fd);
}

Test(blksnap, the_disk_holds_its_lock_until_destroyed)
{
	struct smol_dev *vda;

	make_image("disk.img");
	cr_assert_eq(create_dev("vda", "path", "disk.img", NULL), 0);
	vda = dev;
	cr_assert_not(lockable("disk.img", F_RDLCK), "a writable disk lets others read");
	cr_assert_eq(
	        create_dev("vdb", "path", "disk.img", "readonly", "on", "base", "0xd0004000", NULL),
	        -EINVAL);
	assert_in_use("a second disk in this process", "locked for writing");
	cr_assert_not(lockable("disk.img", F_RDLCK), "the failed disk took the lock away");
	fake_dev_destroy(vda);
	cr_assert(lockable("disk.img", F_WRLCK), "the lock outlived the disk");
}

Test(blksnap, read_only_disks_share_an_image)
{
	make_image("disk.img");
	cr_assert_eq(create_dev("vda", "path", "disk.img", "readonly", "on", NULL), 0);
	cr_assert_eq(create_dev("vdb", "path", "disk.img", "readonly", "on", NULL), 0, "%s",
	             fake_log());
	cr_assert_not(lockable("disk.img", F_WRLCK), "read-only disks let another write");
	cr_assert(lockable("disk.img", F_RDLCK), "read-only disks keep others from reading");
	cr_assert_eq(create_dev("vdc", "path", "disk.img", NULL), -EINVAL);
	assert_in_use("a writer after readers", "open read-only, and this disk is writable");
}

Test(blksnap, check_only_reports_a_conflict_and_takes_no_lock)
{
	make_image("disk.img");
	dev = fake_dev_new("vda");
	fake_cfg_set(dev, "path", "disk.img");
	cr_assert_eq(fake_dev_create(dev, plugin, SMOL_CREATE_CHECK_ONLY), 0, "%s", fake_log());
	cr_assert(lockable("disk.img", F_WRLCK), "smolvm check took a lock");
	int fd = hold_lock("disk.img", F_WRLCK);
	dev = fake_dev_new("vdb");
	fake_cfg_set(dev, "path", "disk.img");
	fake_cfg_set(dev, "readonly", "on");
	fake_cfg_set(dev, "base", "0xd0004000");
	cr_assert_eq(fake_dev_create(dev, plugin, SMOL_CREATE_CHECK_ONLY), -EINVAL);
	assert_in_use("check", "locked for writing");
	close(fd);
}
