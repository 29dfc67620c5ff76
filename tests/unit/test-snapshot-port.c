/*
 * Unit tests of snapshot-port.so through the fake host: a guest write asks for one snapshot per
 * byte, a read counts the restores (its state, which load() increments), configuration errors,
 * and the refusal of a core older than ABI 1.3.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fake-host.h"

static const struct smol_plugin_desc *plugin;

static void setup(void)
{
	const char *path = getenv("SNAPSHOT_PORT_SO");
	if (!path)
		path = SNAPSHOT_PORT_SO;
	fake_host_init();
	plugin = fake_plugin_open(path);
	cr_assert(plugin, "cannot load %s: %s", path, fake_log());
}

TestSuite(snapshot_port, .init = setup, .fini = fake_host_fini);

static struct smol_dev *create(const char *port)
{
	struct smol_dev *d = fake_dev_new("snap");
	if (port)
		fake_cfg_set(d, "port", port);
	cr_assert_eq(fake_dev_create(d, plugin, 0), 0, "%s", fake_log());
	return d;
}

/* Saves @d, destroys it, creates a new one from the same configuration and loads the state. */
static struct smol_dev *restore(struct smol_dev *d, uint32_t expect_saved)
{
	uint8_t *buf;
	size_t len;
	uint32_t version;
	cr_assert_eq(fake_dev_save(d, &buf, &len, &version), 0, "%s", fake_log());
	cr_assert_eq(version, 1);
	cr_assert_eq(len, 4);
	uint32_t saved = buf[0] | buf[1] << 8 | buf[2] << 16 | (uint32_t)buf[3] << 24;
	cr_assert_eq(saved, expect_saved, "u32 LE restore count");
	fake_dev_destroy(d);
	d = create(NULL);
	cr_assert_eq(fake_dev_load(d, buf, len, version), 0, "%s", fake_log());
	free(buf);
	return d;
}

static int load_count(struct smol_dev *d, uint32_t count)
{
	uint8_t b[4] = { (uint8_t)count, (uint8_t)(count >> 8), (uint8_t)(count >> 16),
		         (uint8_t)(count >> 24) };
	return fake_dev_load(d, b, sizeof(b), 1);
}

Test(snapshot_port, descriptor)
{
	const struct smol_device_ops *ops = plugin->ops;
	cr_assert_str_eq(plugin->name, "snapshot-port");
	cr_assert_eq(plugin->kind, SMOL_KIND_DEVICE);
	cr_assert_geq(plugin->abi_minor, 3, "needs ABI 1.3 or later");
	cr_assert(ops->create && ops->destroy && ops->save && ops->load);
	cr_assert_null(ops->describe, "a debug port, like debug-exit: nothing for ACPI");
}

Test(snapshot_port, one_port_at_0xf5)
{
	create(NULL);
	cr_assert(fake_pio_mapped(0xf5));
	cr_assert_not(fake_pio_mapped(0xf4));
	cr_assert_not(fake_pio_mapped(0xf6));
	cr_assert_eq(fake_maps(), 1);
}

Test(snapshot_port, each_byte_written_asks_once)
{
	create(NULL);
	cr_assert_eq(fake_snapshot_requests(), 0);
	fake_pio_write(0xf5, 1, 0);
	cr_assert_eq(fake_snapshot_requests(), 1);
	fake_pio_write(0xf5, 1, 0xff);
	cr_assert_eq(fake_snapshot_requests(), 2, "any byte");
	for (int i = 0; i < 5; i++)
		fake_pio_write(0xf5, 1, (uint64_t)i);
	cr_assert_eq(fake_snapshot_requests(), 7);
	(void)fake_pio_read(0xf5, 1);
	fake_pio_write(0xf6, 1, 0);
	cr_assert_eq(fake_snapshot_requests(), 7, "reads and other ports ask nothing");
}

Test(snapshot_port, read_counts_restores)
{
	struct smol_dev *d = create(NULL);
	cr_assert_eq(fake_pio_read(0xf5, 1), 0, "never restored");
	d = restore(d, 0);
	cr_assert_eq(fake_pio_read(0xf5, 1), 1);
	cr_assert_eq(fake_pio_read(0xf5, 1), 1, "reading changes nothing");
	d = restore(d, 1);
	cr_assert_eq(fake_pio_read(0xf5, 1), 2);
	fake_pio_write(0xf5, 1, 0);
	cr_assert_eq(fake_snapshot_requests(), 1, "the restored port still asks");
	fake_dev_reset(d);
	cr_assert_eq(fake_pio_read(0xf5, 1), 2, "a reset is not a restore: the count stays");
}

Test(snapshot_port, count_saturates)
{
	struct smol_dev *d = create(NULL);
	cr_assert_eq(load_count(d, 253), 0);
	cr_assert_eq(fake_pio_read(0xf5, 1), 254);
	cr_assert_eq(load_count(d, 254), 0);
	cr_assert_eq(fake_pio_read(0xf5, 1), 255);
	cr_assert_eq(load_count(d, 255), 0);
	cr_assert_eq(fake_pio_read(0xf5, 1), 255, "the guest reads at most 255");
	cr_assert_eq(load_count(d, UINT32_MAX), 0);
	cr_assert_eq(fake_pio_read(0xf5, 1), 255);
	d = restore(d, UINT32_MAX); /* the stored count saturates too */
	cr_assert_eq(fake_pio_read(0xf5, 1), 255);
}

Test(snapshot_port, bad_state_refused)
{
	struct smol_dev *d = create(NULL);
	uint8_t b[5] = { 7, 0, 0, 0, 0 };
	cr_assert_eq(fake_dev_load(d, b, 4, 2), -ENOTSUP);
	cr_assert(fake_log_contains("state version 2 is newer than this plugin's 1"), "%s",
	          fake_log());
	cr_assert_eq(fake_dev_load(d, b, 4, 0), -EINVAL);
	for (size_t n = 0; n < 4; n++)
		cr_assert_eq(fake_dev_load(d, b, n, 1), -EBADMSG, "%zu bytes", n);
	cr_assert_eq(fake_dev_load(d, b, 5, 1), -EBADMSG);
	cr_assert(fake_log_contains("state: 5 bytes, version 1 has 4"), "%s", fake_log());
	cr_assert_eq(fake_pio_read(0xf5, 1), 0, "refused states change nothing");
	cr_assert_eq(fake_dev_load(d, b, 4, 1), 0);
	cr_assert_eq(fake_pio_read(0xf5, 1), 8);
}

Test(snapshot_port, other_port)
{
	create("0x510");
	cr_assert(fake_pio_mapped(0x510));
	cr_assert_not(fake_pio_mapped(0xf5));
	fake_pio_write(0x510, 1, 1);
	cr_assert_eq(fake_snapshot_requests(), 1);
}

static void expect_port_error(const char *value)
{
	struct smol_dev *d = fake_dev_new("snap");
	fake_cfg_set(d, "port", value);
	cr_assert_lt(fake_dev_create(d, plugin, 0), 0, "port = %s accepted", value);
	cr_assert(fake_cfg_error_about("port"), "no error about port = %s: %s", value, fake_log());
	cr_assert_eq(fake_maps(), 0);
}

Test(snapshot_port, bad_port_out_of_range)
{
	expect_port_error("0x10000");
	cr_assert(strstr(fake_cfg_error_msg(0), "0x10000 is not an I/O port"), "%s",
	          fake_cfg_error_msg(0));
}

Test(snapshot_port, bad_port_malformed)
{
	expect_port_error("twelve");
}

Test(snapshot_port, unknown_key_left_unread)
{
	struct smol_dev *d = fake_dev_new("snap");
	fake_cfg_set(d, "ports", "0xf5");
	cr_assert_eq(fake_dev_create(d, plugin, 0), 0, "%s", fake_log());
	cr_assert_str_eq(fake_cfg_unread(d), "ports", "the core reports it");
}

/* A core older than ABI 1.3 has no request_snapshot: refused as a configuration error. */
Test(snapshot_port, older_core_refused)
{
	struct smol_host old = fake_host;
	struct smol_dev *d = fake_dev_new("snap");
	void *state = NULL;
	old.abi_minor = 2;
	old.request_snapshot = NULL;
	const struct smol_device_ops *ops = plugin->ops;
	cr_assert_eq(ops->create(&old, d, 0, &state), -EINVAL);
	if (state)
		ops->destroy(state);
	cr_assert_eq(fake_cfg_errors(), 1);
	cr_assert_str_eq(fake_cfg_error_key(0), "", "about the section");
	cr_assert(strstr(fake_cfg_error_msg(0),
	                 "needs smolvm plugin ABI 1.3 (snapshots); this smolvm speaks 1.2"),
	          "%s", fake_cfg_error_msg(0));
	cr_assert_eq(fake_maps(), 0, "nothing mapped");
}
