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

static const struct smol_plugin_desc *last_plugin; /* create()'s */

static struct smol_dev *create(const char *env, const char *built)
{
	const char *path = getenv(env) ? getenv(env) : built;
	const struct smol_plugin_desc *p = last_plugin = fake_plugin_open(path);
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

/* ---- example-sensor: registers, the alarm interrupt, methods, counters, snapshots */

#define SENSOR "EXAMPLE_SENSOR_SO", EXAMPLE_SENSOR_SO
#define S_BASE FAKE_MMIO_AUTO_BASE

static const struct smol_method *method(struct smol_dev *d, const char *name)
{
	(void)d;
	const struct smol_device_ops *ops = last_plugin->ops;
	for (uint32_t k = 0; k < ops->n_methods; k++)
		if (strcmp(ops->methods[k].name, name) == 0)
			return &ops->methods[k];
	cr_assert_fail("no method %s", name);
	return NULL;
}

/* Calls a method by name with its C type (the core does it through libffi). */
#define CALL(d, name, type, ...) ((type)method(d, name)->fn)(fake_dev_state(d), __VA_ARGS__)
#define CALL0(d, name, type) ((type)method(d, name)->fn)(fake_dev_state(d))

static uint32_t sreg(unsigned off)
{
	return (uint32_t)fake_mmio_read(S_BASE + off, 4);
}

struct stat_query {
	const char *want;
	uint64_t v;
	int seen;
};

static void stat_put(void *ctx, const char *n, uint64_t v)
{
	struct stat_query *q = ctx;
	if (strcmp(n, q->want) == 0)
		q->v = v, q->seen++;
}

static uint64_t sensor_stat(struct smol_dev *d, const char *name)
{
	struct stat_query q = { name, 0, 0 };
	fake_dev_stats(d, stat_put, &q);
	cr_assert_eq(q.seen, 1, "counter %s", name);
	return q.v;
}

Test(examples, sensor_alarm_interrupt_and_methods)
{
	struct smol_dev *d = create(SENSOR);
	cr_assert(fake_mmio_mapped(S_BASE));
	uint32_t line = 0;
	while (line < FAKE_IRQ_LINES && !fake_irq_claimed(line))
		line++;
	cr_assert_lt(line, FAKE_IRQ_LINES, "no line claimed");
	cr_assert_eq(sreg(0x00), 0x504d4554);
	cr_assert_eq(sreg(0x08), 21500);
	cr_assert_eq(sreg(0x0c), 80000);
	cr_assert_eq(fake_mmio_read(S_BASE + 0x40, 1), 's', "the model, a byte at a time");
	cr_assert_eq(sreg(0x44), 0x6568742d, "\"-the\"");

	/* above the threshold with the interrupt off: latched, the line stays low */
	cr_assert_eq(CALL(d, "set_threshold", int32_t(*)(void *, double), 30.0), 0);
	cr_assert_eq(CALL(d, "set_temperature", int32_t(*)(void *, double), 30.5), 0);
	cr_assert_eq(sreg(0x18), 1);
	cr_assert_eq(fake_irq_level(line), 0);
	fake_mmio_write(S_BASE + 0x14, 4, 1); /* IRQ_EN */
	cr_assert_eq(fake_irq_level(line), 1);
	fake_mmio_write(S_BASE + 0x18, 4, 1); /* W1C */
	cr_assert_eq(fake_irq_level(line), 0);
	/* no second alarm before the reading falls below threshold - hysteresis (2 degrees) */
	cr_assert_eq(CALL(d, "adjust", int64_t(*)(void *, int64_t), -1500), 29000);
	cr_assert_eq(CALL(d, "adjust", int64_t(*)(void *, int64_t), 2000), 31000);
	cr_assert_eq(sreg(0x18), 0);
	cr_assert_eq(CALL(d, "adjust", int64_t(*)(void *, int64_t), -3000), 28000);
	cr_assert_eq(CALL(d, "adjust", int64_t(*)(void *, int64_t), 2001), 30001);
	cr_assert_eq(sreg(0x18), 0, "28.000 is not below 30 - 2: still disarmed");
	cr_assert_eq(CALL(d, "adjust", int64_t(*)(void *, int64_t), -2002), 27999);
	cr_assert_eq(CALL(d, "adjust", int64_t(*)(void *, int64_t), 2002), 30001);
	cr_assert_eq(sreg(0x18), 1);
	cr_assert_eq(fake_irq_level(line), 1);
	cr_assert_eq(CALL0(d, "alarms", uint32_t(*)(void *)), 2);
	cr_assert_eq(sreg(0x30), 2);
	fake_mmio_write(S_BASE + 0x18, 4, 1);

	/* the offset shifts the reading; a fault hides it and raises STATUS.FAULT */
	CALL(d, "set_offset", void (*)(void *, int8_t), -5);
	cr_assert_eq((int32_t)sreg(0x08), 29501);
	cr_assert_eq((int32_t)sreg(0x1c), -5);
	CALL(d, "inject_fault", void (*)(void *, uint8_t), 7);
	cr_assert_eq(sreg(0x20), 7);
	cr_assert_eq(sreg(0x08), 0x80000000u);
	cr_assert_eq(sreg(0x18), 2);
	cr_assert_eq(fake_irq_level(line), 1);
	CALL(d, "inject_fault", void (*)(void *, uint8_t), 0);
	fake_mmio_write(S_BASE + 0x18, 4, 2);
	cr_assert_eq(fake_irq_level(line), 0);

	/* refusals change nothing */
	cr_assert_eq(CALL(d, "set_temperature", int32_t(*)(void *, double), 1e9), -ERANGE);
	cr_assert_eq(CALL(d, "set_hysteresis", int32_t(*)(void *, int16_t), -1), -EINVAL);
	cr_assert_eq(CALL(d, "set_rate", int32_t(*)(void *, uint16_t), 0), -EINVAL);
	cr_assert_eq(CALL(d, "set_model", int32_t(*)(void *, const char *),
	                  "a model name of more than thirty-one bytes"),
	             -ENAMETOOLONG);
	cr_assert_eq(sreg(0x08), 29501);
	cr_assert_eq(CALL(d, "set_rate", int32_t(*)(void *, uint16_t), 50), 0);
	cr_assert_eq(sreg(0x24), 50);
	CALL(d, "set_serial", void (*)(void *, uint64_t), 0x0123456789abcdefull);
	cr_assert_eq(sreg(0x28), 0x89abcdef);
	cr_assert_eq(sreg(0x2c), 0x01234567);
	cr_assert_eq(CALL(d, "set_model", int32_t(*)(void *, const char *), "t9"), 0);
	cr_assert_eq(sreg(0x40), 0x3974);
	char line_buf[256];
	CALL(d, "describe", void (*)(void *, char *, size_t), line_buf, sizeof(line_buf));
	cr_assert(strstr(line_buf, "t9 #0123456789abcdef: 29.501 C (offset -0.5)"), "%s", line_buf);
	/* an 8-byte read covers two registers; TEMP counts once per access */
	uint64_t before = sensor_stat(d, "temp_reads");
	cr_assert_eq(fake_mmio_read(S_BASE + 0x08, 8), 29501 | (uint64_t)30000 << 32);
	cr_assert_eq(sensor_stat(d, "temp_reads"), before + 1);
	cr_assert_eq(sensor_stat(d, "alarms"), 2);
	cr_assert_eq(sensor_stat(d, "faults"), 1);
	cr_assert_eq(sensor_stat(d, "irqs_raised"), 3);
	cr_assert_eq(fake_irq_misuse(), 0);
}

Test(examples, sensor_state_survives)
{
	struct smol_dev *d = create(SENSOR);
	fake_mmio_write(S_BASE + 0x14, 4, 1);
	CALL(d, "set_serial", void (*)(void *, uint64_t), 42);
	CALL(d, "set_offset", void (*)(void *, int8_t), 3);
	cr_assert_eq(CALL(d, "set_temperature", int32_t(*)(void *, double), 99.25), 0);
	cr_assert_eq(sreg(0x18), 1);
	d = restore(d, SENSOR, 4 * 5 + 1 + 1 + 2 + 8 + 4 + 1 + 32);
	cr_assert_eq(sreg(0x08), 99550);
	cr_assert_eq(sreg(0x18), 1);
	cr_assert_eq(sreg(0x14), 1);
	cr_assert_eq(sreg(0x28), 42);
	cr_assert_eq(sreg(0x30), 1);
	cr_assert_eq(fake_mmio_read(S_BASE + 0x40, 4), 0x6c6f6d73, "\"smol\"");
}
