/*
 * Unit tests of the small stateless devices, debug-exit, i8042 and boot-timer, through the fake
 * host: their guest interface, and their snapshots (state version 1 is zero bytes; load()
 * accepts exactly that, refuses a newer version, version 0 and any byte left over).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fake-host.h"

static const char *so(const char *env, const char *built)
{
	const char *p = getenv(env);
	return p ? p : built;
}

static struct smol_dev *create(const char *env, const char *built, const char *key,
                               const char *value)
{
	const char *path = so(env, built);
	const struct smol_plugin_desc *p = fake_plugin_open(path);
	cr_assert(p, "cannot load %s: %s", path, fake_log());
	cr_assert_eq(p->abi_minor, SMOL_ABI_MINOR);
	struct smol_dev *d = fake_dev_new(p->name);
	if (key)
		fake_cfg_set(d, key, value);
	cr_assert_eq(fake_dev_create(d, p, 0), 0, "%s", fake_log());
	return d;
}

/* Saves @d (zero bytes, version 1), destroys it, creates it again and loads what was saved,
 * after checking every refusal on the new instance. Returns the new instance. */
static struct smol_dev *cycle(struct smol_dev *d, const char *env, const char *built,
                              const char *key, const char *value)
{
	uint8_t *buf, extra[1] = { 0 };
	size_t len;
	uint32_t version;
	cr_assert_eq(fake_dev_save(d, &buf, &len, &version), 0, "%s", fake_log());
	cr_assert_eq(len, 0, "no state");
	cr_assert_eq(version, 1);
	free(buf);
	fake_dev_destroy(d);
	d = create(env, built, key, value);
	cr_assert_eq(fake_dev_load(d, extra, 0, 2), -ENOTSUP);
	cr_assert(fake_log_contains("state version 2 is newer than this plugin's 1"), "%s",
	          fake_log());
	cr_assert_eq(fake_dev_load(d, extra, 0, 0), -EINVAL);
	cr_assert(fake_log_contains("state version 0 does not exist"));
	cr_assert_eq(fake_dev_load(d, extra, 1, 1), -EBADMSG);
	cr_assert(fake_log_contains("state: 1 bytes left over: version 1 has none"));
	cr_assert_eq(fake_dev_load(d, extra, 0, 1), 0, "%s", fake_log());
	return d;
}

TestSuite(small, .init = fake_host_init, .fini = fake_host_fini);

#define DEBUG_EXIT "DEBUG_EXIT_SO", DEBUG_EXIT_SO
#define I8042 "I8042_SO", I8042_SO
#define BOOT_TIMER "BOOT_TIMER_SO", BOOT_TIMER_SO

Test(small, debug_exit_snapshot)
{
	struct smol_dev *d = create(DEBUG_EXIT, "port", "0x501");
	fake_pio_write(0x501, 1, 0x107);
	cr_assert_eq(fake_exit_requests(), 1);
	cr_assert_eq(fake_exit_status(), 7, "the low byte");
	d = cycle(d, DEBUG_EXIT, "port", "0x501");
	cr_assert(fake_pio_mapped(0x504) && !fake_pio_mapped(0x505), "4 ports");
	fake_pio_write(0x503, 1, 42);
	cr_assert_eq(fake_exit_requests(), 2, "the restored device works");
	cr_assert_eq(fake_exit_status(), 42);
}

Test(small, i8042_snapshot)
{
	struct smol_dev *d = create(I8042, NULL, NULL);
	cr_assert_eq(fake_pio_read(0x64, 1), 0x04, "self-test passed, buffers empty");
	d = cycle(d, I8042, NULL, NULL);
	cr_assert_eq(fake_pio_read(0x64, 1), 0x04);
	cr_assert_eq(fake_pio_read(0x60, 1), 0x00);
}

Test(small, boot_timer_snapshot_marks_milestones_as_restored)
{
	struct smol_dev *d = create(BOOT_TIMER, "port", "0x440");
	fake_pio_write(0x440, 1, 1);
	cr_assert(fake_log_contains("milestone 1: "), "%s", fake_log());
	cr_assert(fake_log_contains("since the machine was set up)"), "%s", fake_log());
	cr_assert_not(fake_log_contains("restored"));
	d = cycle(d, BOOT_TIMER, "port", "0x440");
	fake_pio_write(0x440, 1, 2);
	cr_assert(fake_log_contains("milestone 2: "), "%s", fake_log());
	cr_assert(fake_log_contains("since the machine was restored from a snapshot)"), "%s",
	          fake_log());
}

/* A guest in a loop (rep outsb) must not flood the host's log: each label once. */
Test(small, boot_timer_logs_each_milestone_once)
{
	create(BOOT_TIMER, "port", "0x440");
	for (int i = 0; i < 10000; i++)
		fake_pio_write(0x440, 1, (uint64_t)(i % 3));
	const char *log = fake_log();
	unsigned lines = 0;
	for (const char *p = log; (p = strstr(p, "milestone ")); p++)
		lines++;
	cr_assert_eq(lines, 3, "one line per label, got %u:\n%.2000s", lines, log);
}

Test(small, boot_timer_refused_load_leaves_it_fresh)
{
	struct smol_dev *d = create(BOOT_TIMER, NULL, NULL);
	uint8_t junk[4] = { 1, 2, 3, 4 };
	cr_assert_eq(fake_dev_load(d, junk, sizeof(junk), 1), -EBADMSG);
	fake_pio_write(0x440, 1, 3);
	cr_assert_not(fake_log_contains("restored from a snapshot"), "%s", fake_log());
}
