/* boot-timer: a port the guest writes to at milestones (its init's first line, say); each write
 * logs the time since the smolvm process started, the way Firecracker's CI measures boot time.
 * Keys: port (default 0x440). The byte written is a label for the milestone, printed with it.
 * Each label is logged once (the first time): a guest writing in a loop (`rep outsb`) must
 * not be able to flood the host's log; the writes not logged are counted, and said at debug
 * level when the machine ends.
 * A Linux init reaches it through /dev/port:
 *   printf '\001' | dd of=/dev/port bs=1 seek=$((0x440)) count=1
 *
 * Snapshots: the times are the host's, not the guest's, so the state is empty (version 1: zero
 * bytes). In a machine restored from a snapshot, a milestone's time counts from the start of the
 * smolvm process that restored it (and from when that process set the machine up): it measures
 * the restore as a user waits for it, which is what a snapshot's cold start is for. The first
 * boot's times are gone; the log line says the machine was restored. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <smolvm/sdk.h>

#include "dev-snap.h"

struct boot_timer {
	const struct smol_host *host;
	struct smol_dev *dev;
	double start_s; /* process start, CLOCK_BOOTTIME seconds (from /proc, 1/HZ resolution) */
	double create_s; /* this device's creation, CLOCK_BOOTTIME seconds */
	int restored; /* loaded from a snapshot: times count from this process, not the first boot
	               */
	uint64_t logged[4]; /* the labels (bytes) logged already: one bit each */
	uint64_t repeats; /* writes of a label logged already */
};

static double boottime_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The process's start time in seconds since boot: field 22 of /proc/self/stat, in clock ticks.
 * The command name (field 2) may hold spaces and parentheses: parse after its last ')'. */
static double process_start(void)
{
	char buf[1024];
	FILE *f = fopen("/proc/self/stat", "re");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	unsigned long long ticks;
	/* after ')': state (3), then fields 4..21, then starttime (22) */
	if (!p || sscanf(p + 1,
	                 " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d "
	                 "%*d %*d %llu",
	                 &ticks) != 1)
		return -1;
	long hz = sysconf(_SC_CLK_TCK);
	return hz > 0 ? (double)ticks / (double)hz : -1;
}

static uint64_t bt_read(void *opaque, uint64_t offset, unsigned size)
{
	(void)opaque;
	(void)offset;
	(void)size;
	return 0;
}

static void bt_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct boot_timer *t = opaque;
	double now = boottime_now();
	const char *how = t->restored ? "restored from a snapshot" : "set up";
	unsigned label = (unsigned)(value & 0xff);
	(void)offset;
	(void)size;
	if (t->logged[label / 64] & (1ull << (label % 64))) {
		t->repeats++;
		return;
	}
	t->logged[label / 64] |= 1ull << (label % 64);
	if (t->start_s >= 0)
		t->host->log(t->dev, SMOL_LOG_INFO,
		             "milestone %u: %.1f ms since smolvm started (%.1f ms since the "
		             "machine was %s)",
		             (unsigned)(value & 0xff), (now - t->start_s) * 1e3,
		             (now - t->create_s) * 1e3, how);
	else
		t->host->log(t->dev, SMOL_LOG_INFO,
		             "milestone %u: %.1f ms since the machine was %s",
		             (unsigned)(value & 0xff), (now - t->create_s) * 1e3, how);
}

static const struct smol_io_ops bt_io = { .read = bt_read, .write = bt_write };

static int bt_create(const struct smol_host *host, struct smol_dev *dev, uint32_t flags,
                     void **state)
{
	uint64_t port;
	(void)flags;
	if (host->cfg_u64(dev, "port", 0x440, &port) < 0)
		return -EINVAL;
	if (port > 0xffff) {
		host->cfg_error(dev, "port", "0x%llx is not an I/O port (0-0xffff)",
		                (unsigned long long)port);
		return -EINVAL;
	}
	struct boot_timer *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->host = host;
	t->dev = dev;
	t->create_s = boottime_now();
	t->start_s = process_start();
	*state = t;
	return host->map_pio(dev, (uint16_t)port, 1, &bt_io, t);
}

static void bt_destroy(void *state)
{
	struct boot_timer *t = state;
	if (t->repeats)
		t->host->log(t->dev, SMOL_LOG_DEBUG,
		             "%llu writes of milestones already logged were not logged again",
		             (unsigned long long)t->repeats);
	free(state);
}

#define BT_STATE_VERSION 1

static int bt_save(void *state, struct smol_snap_writer *w)
{
	struct boot_timer *t = state;
	t->host->snap_set_version(w, BT_STATE_VERSION);
	return 0; /* host times only: nothing the restored machine could use */
}

static int bt_load(void *state, struct smol_snap_reader *r)
{
	struct boot_timer *t = state;
	int ret = dev_snap_load_empty(t->host, t->dev, r, BT_STATE_VERSION);
	if (ret == 0)
		t->restored = 1;
	return ret;
}

static const struct smol_device_ops bt_ops = {
	.struct_size = sizeof(struct smol_device_ops),
	.create = bt_create,
	.destroy = bt_destroy,
	.save = bt_save,
	.load = bt_load,
};

SMOL_PLUGIN(SMOL_KIND_DEVICE, "boot-timer",
            "boot-time milestones: a guest write to the port logs the time since smolvm started",
            &bt_ops);
