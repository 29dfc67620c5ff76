/*
 * Unit tests of the example plugins' snapshots (plugins/example-counter, plugins/example-fnv),
 * built here from their sources against the SDK in the tree (tests/kvm/plugins-build builds
 * them out of tree against the installed one): what the guest sees survives save, destroy,
 * create and load; newer versions and short states are refused.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>

#include "fake-host.h"

static struct smol_dev *create(const char *env, const char *built)
{
	const char *path = getenv(env) ? getenv(env) : built;
	const struct smol_plugin_desc *p = fake_plugin_open(path);
	cr_assert(p, "cannot load %s: %s", path, fake_log());
	struct smol_dev *d = fake_dev_new(p->name);
	cr_assert_eq(fake_dev_create(d, p, 0), 0, "%s", fake_log());
	return d;
}

/* Saves @d, checks the state's size, destroys it and loads the state into a new instance. */
static struct smol_dev *restore(struct smol_dev *d, const char *env, const char *built,
                                size_t expect_len)
{
	uint8_t *buf;
	size_t len;
	uint32_t version;
	cr_assert_eq(fake_dev_save(d, &buf, &len, &version), 0, "%s", fake_log());
	cr_assert_eq(version, 1);
	cr_assert_eq(len, expect_len);
	fake_dev_destroy(d);
	d = create(env, built);
	cr_assert_eq(fake_dev_load(d, buf, len, 2), -ENOTSUP);
	cr_assert(fake_log_contains("state version 2 is newer than this plugin's 1"));
	cr_assert_eq(fake_dev_load(d, buf, len, 0), -EINVAL);
	for (size_t n = 0; n < len; n++)
		cr_assert_eq(fake_dev_load(d, buf, n, 1), -EBADMSG, "%zu of %zu bytes", n, len);
	cr_assert(fake_log_contains("state: truncated"));
	cr_assert_eq(fake_dev_load(d, buf, len, 1), 0, "%s", fake_log());
	free(buf);
	return d;
}

TestSuite(examples, .init = fake_host_init, .fini = fake_host_fini);

#define COUNTER "EXAMPLE_COUNTER_SO", EXAMPLE_COUNTER_SO
#define FNV "EXAMPLE_FNV_SO", EXAMPLE_FNV_SO

Test(examples, counter_value_survives)
{
	struct smol_dev *d = create(COUNTER);
	fake_pio_write(0x510, 4, 0xfffffffe);
	cr_assert_eq(fake_pio_read(0x510, 4), 0xfffffffe);
	d = restore(d, COUNTER, 4);
	cr_assert_eq(fake_pio_read(0x510, 4), 0xffffffff, "counting on where it was");
	cr_assert_eq(fake_pio_read(0x510, 4), 0);
	cr_assert_eq(fake_pio_read(0x514, 4), 0x4c4f4d53);
}

Test(examples, fnv_hash_and_count_survive)
{
	struct smol_dev *d = create(FNV);
	const char *s = "smolvm";
	for (const char *c = s; *c; c++)
		fake_pio_write(0x520, 1, (uint8_t)*c);
	uint32_t hash = (uint32_t)fake_pio_read(0x524, 4);
	cr_assert_neq(hash, 2166136261u);
	d = restore(d, FNV, 8);
	cr_assert_eq(fake_pio_read(0x524, 4), hash);
	cr_assert_eq(fake_pio_read(0x52c, 4), 6);
	/* hashing goes on from the restored state: "smolvm!" equals the hash of all 7 bytes */
	fake_pio_write(0x520, 1, '!');
	uint32_t h = 2166136261u;
	for (const char *c = "smolvm!"; *c; c++)
		h = (h ^ (uint8_t)*c) * 16777619u;
	cr_assert_eq(fake_pio_read(0x524, 4), h);
	cr_assert_eq(fake_pio_read(0x52c, 4), 7);
}
