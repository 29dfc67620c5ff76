/*
 * example-sensor: a temperature sensor on MMIO that raises an interrupt above a threshold, and
 * exports methods the control plane calls while the guest runs (SDK 1.6): a researcher sets
 * the temperature, injects a fault, reads the alarm count, with no socket code of their own:
 *
 *   smolvm run --control /tmp/m.sock configs/sensor.ini &
 *   smolvm ctl /tmp/m.sock methods
 *   smolvm ctl /tmp/m.sock call sensor.set_temperature 42.5
 *
 * Built out of tree against the installed SDK:  make -C plugins/example-sensor
 *
 * Guest interface: a 4 KiB MMIO window at `base` (default: the core picks one), 32-bit
 * little-endian registers, and one level-triggered, active-high interrupt line `irq` (default:
 * the core picks one). The line is high while STATUS & CTRL.IRQ_EN is not 0.
 *   0x00 MAGIC       r   0x504d4554 ("TEMP")
 *   0x04 VERSION     r   1
 *   0x08 TEMP        r   the reading, milli-degrees Celsius (signed): the temperature plus the
 *                        calibration offset; 0x80000000 while a fault is present
 *   0x0c THRESHOLD   rw  milli-degrees Celsius (signed)
 *   0x10 HYSTERESIS  rw  milli-degrees: after an alarm, the reading must fall below
 *                        THRESHOLD - HYSTERESIS before another alarm can latch
 *   0x14 CTRL        rw  bit 0 IRQ_EN
 *   0x18 STATUS      r/w1c  bit 0 ALARM (the reading rose above THRESHOLD), bit 1 FAULT (a
 *                        fault was injected); write 1 to clear a bit
 *   0x1c OFFSET      r   calibration offset, tenths of a degree (signed, -128..127)
 *   0x20 FAULT       r   fault code, 0 when none
 *   0x24 RATE        r   sample rate, Hz
 *   0x28 SERIAL_LO   r   serial number, low 32 bits
 *   0x2c SERIAL_HI   r   serial number, high 32 bits
 *   0x30 ALARMS      r   alarms latched since power-on
 *   0x40-0x5f MODEL  r   model name, NUL-padded ASCII
 * Other offsets read 0 and ignore writes. Accesses of 1, 2 or 8 bytes read the bytes of the
 * 32-bit registers they cover (MODEL is read a byte at a time as well as four).
 *
 * The guest finds it on the command line of a machine without ACPI: the device adds the word
 * example_sensor.device=BASE:IRQ (and an ACPI machine gets a SMOL0001 device in its DSDT).
 *
 * Methods (`smolvm ctl SOCK call sensor.NAME ARGS...`), one of each signature letter:
 *   set_temperature i(d)  °C; -ERANGE outside ±2,000,000 m°C       (d in, i out)
 *   get_temperature d()   °C, the reading without the offset        (d out)
 *   set_threshold i(d)    °C; -ERANGE outside the range
 *   get_threshold d()     °C
 *   set_hysteresis i(h)   milli-degrees; -EINVAL when negative       (h)
 *   set_offset v(b)       tenths of a degree                         (b, v)
 *   inject_fault v(B)     a fault code; 0 clears; a new fault sets STATUS.FAULT   (B)
 *   set_rate i(H)         Hz; -EINVAL for 0                          (H)
 *   set_serial v(L)       the serial number                          (L)
 *   adjust l(l)           adds N milli-degrees; returns the new temperature, m°C  (l)
 *   alarms u()            alarms latched since power-on              (u)
 *   set_model i(s)        the model name; -ENAMETOOLONG past 31 bytes (s)
 *   describe v(S)         one line: the state as the guest would see it (S)
 *
 * Counters (SDK 1.6 stats, `smolvm ctl SOCK stats`): irqs_raised, alarms, faults, and the
 * guest's reads of TEMP.
 *
 * Snapshots (SDK 1.3): version 1, little-endian: le32 temperature, threshold, hysteresis,
 * ctrl, status; u8 offset, fault; le16 rate; le64 serial; le32 alarms; u8 armed; 32 bytes
 * model.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <smolvm/sdk.h>

#include "example-sensor.h"

#define SENSOR_LIMIT_MC 2000000 /* ±2,000 °C in milli-degrees */
#define SENSOR_STATE_VERSION 1

struct sensor {
	const struct smol_host *host;
	struct smol_dev *dev;
	uint64_t base;
	uint32_t irq;
	int level; /* the line as last set */
	/* state the guest sees */
	int32_t temp_mc, threshold_mc;
	uint32_t hysteresis_mc, ctrl, status;
	int8_t offset_dc;
	uint8_t fault;
	uint16_t rate_hz;
	uint64_t serial;
	uint32_t alarms;
	bool armed; /* an alarm may latch (the reading fell below threshold - hysteresis) */
	char model[SENSOR_MODEL_LEN];
	/* counters */
	uint64_t irqs_raised, faults, temp_reads;
};

static int32_t reading(const struct sensor *s)
{
	int64_t r = (int64_t)s->temp_mc + (int64_t)s->offset_dc * 100;
	return (int32_t)(r > SENSOR_LIMIT_MC    ? SENSOR_LIMIT_MC
	                 : r < -SENSOR_LIMIT_MC ? -SENSOR_LIMIT_MC
	                                        : r);
}

/* The line follows STATUS & IRQ_EN. */
static void update_irq(struct sensor *s)
{
	int level = (s->ctrl & CTRL_IRQ_EN) && s->status;
	if (level == s->level)
		return;
	s->level = level;
	if (level)
		s->irqs_raised++;
	s->host->irq_set(s->dev, s->irq, level);
}

/* Latches an alarm when the reading rose above the threshold, re-arms below it minus the
 * hysteresis. */
static void evaluate(struct sensor *s)
{
	if (!s->fault) {
		int64_t r = reading(s);
		if (s->armed && r > s->threshold_mc) {
			s->armed = false;
			s->status |= STATUS_ALARM;
			s->alarms++;
		} else if (!s->armed && r < (int64_t)s->threshold_mc - s->hysteresis_mc) {
			s->armed = true;
		}
	}
	update_irq(s);
}

static uint32_t reg_read(const struct sensor *s, uint64_t off)
{
	switch (off) {
	case REG_MAGIC: return SENSOR_MAGIC;
	case REG_VERSION: return SENSOR_VERSION;
	case REG_TEMP: return s->fault ? SENSOR_INVALID : (uint32_t)reading(s);
	case REG_THRESHOLD: return (uint32_t)s->threshold_mc;
	case REG_HYSTERESIS: return s->hysteresis_mc;
	case REG_CTRL: return s->ctrl;
	case REG_STATUS: return s->status;
	case REG_OFFSET: return (uint32_t)(int32_t)s->offset_dc;
	case REG_FAULT: return s->fault;
	case REG_RATE: return s->rate_hz;
	case REG_SERIAL_LO: return (uint32_t)s->serial;
	case REG_SERIAL_HI: return (uint32_t)(s->serial >> 32);
	case REG_ALARMS: return s->alarms;
	}
	if (off >= REG_MODEL && off < REG_MODEL + SENSOR_MODEL_LEN) {
		uint32_t v;
		memcpy(&v, s->model + (off - REG_MODEL), 4); /* little-endian host */
		return v;
	}
	return 0;
}

static uint64_t sensor_read(void *opaque, uint64_t offset, unsigned size)
{
	struct sensor *s = opaque;
	uint64_t v = 0;
	/* the bytes of the aligned registers the access covers (the core keeps it inside the
	 * window: offset + size <= SENSOR_WINDOW) */
	for (unsigned k = 0; k < size; k++) {
		uint64_t at = offset + k;
		uint32_t r = reg_read(s, at & ~3ull);
		v |= (uint64_t)((r >> (8 * (at & 3))) & 0xff) << (8 * k);
	}
	if (offset < REG_TEMP + 4 && offset + size > REG_TEMP)
		s->temp_reads++;
	return v;
}

static void sensor_write(void *opaque, uint64_t offset, unsigned size, uint64_t value)
{
	struct sensor *s = opaque;
	if (size != 4)
		return; /* registers take 32-bit writes only */
	uint32_t v = (uint32_t)value;
	switch (offset) {
	case REG_THRESHOLD:
		s->threshold_mc = (int32_t)v < -SENSOR_LIMIT_MC  ? -SENSOR_LIMIT_MC
		                  : (int32_t)v > SENSOR_LIMIT_MC ? SENSOR_LIMIT_MC
		                                                 : (int32_t)v;
		break;
	case REG_HYSTERESIS: s->hysteresis_mc = v > SENSOR_LIMIT_MC ? SENSOR_LIMIT_MC : v; break;
	case REG_CTRL: s->ctrl = v & CTRL_IRQ_EN; break;
	case REG_STATUS: s->status &= ~v; break;
	default: return;
	}
	evaluate(s);
}

static const struct smol_io_ops sensor_io = { .read = sensor_read, .write = sensor_write };

static void sensor_reset(void *state)
{
	struct sensor *s = state;
	s->temp_mc = 21500;
	s->threshold_mc = 80000;
	s->hysteresis_mc = 2000;
	s->ctrl = s->status = 0;
	s->offset_dc = 0;
	s->fault = 0;
	s->rate_hz = 10;
	s->alarms = 0;
	s->armed = true;
	update_irq(s);
}

static int sensor_create(const struct smol_host *host, struct smol_dev *dev, uint32_t flags,
                         void **state)
{
	uint64_t base, irq, serial;
	const char *model;
	(void)flags;
	if (host->cfg_u64(dev, "base", SMOL_ADDR_AUTO, &base) < 0 ||
	    host->cfg_u64(dev, "irq", SMOL_IRQ_AUTO, &irq) < 0 ||
	    host->cfg_u64(dev, "serial", 0x5e75000000000001ull, &serial) < 0 ||
	    host->cfg_str(dev, "model", "smol-therm 1", &model) < 0)
		return -EINVAL;
	if (base != SMOL_ADDR_AUTO &&
	    (base % SENSOR_WINDOW || base > (1ull << 32) - SENSOR_WINDOW)) {
		host->cfg_error(dev, "base",
		                "0x%llx: the 4 KiB window must be 4 KiB-aligned, below 4 GiB",
		                (unsigned long long)base);
		return -EINVAL;
	}
	if (irq > SMOL_IRQ_AUTO) {
		host->cfg_error(dev, "irq", "%llu is not an interrupt line",
		                (unsigned long long)irq);
		return -EINVAL;
	}
	if (strlen(model) >= SENSOR_MODEL_LEN) {
		host->cfg_error(dev, "model", "at most %d bytes", SENSOR_MODEL_LEN - 1);
		return -EINVAL;
	}
	struct sensor *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	*state = s;
	s->host = host;
	s->dev = dev;
	s->serial = serial;
	memcpy(s->model, model, strlen(model));
	int r = host->map_mmio(dev, base, SENSOR_WINDOW, &sensor_io, s, &s->base);
	if (r < 0) {
		if (r != -EEXIST) /* the core reports overlaps itself */
			host->cfg_error(dev, "base", "cannot map the window: %s", strerror(-r));
		return -EINVAL;
	}
	r = host->irq_claim(dev, (uint32_t)irq); /* the core reports a refusal */
	if (r < 0)
		return -EINVAL;
	s->irq = irq == SMOL_IRQ_AUTO ? (uint32_t)r : (uint32_t)irq;
	sensor_reset(s);
	return 0;
}

static void sensor_destroy(void *state)
{
	free(state);
}

static int sensor_describe(void *state, struct smol_describe *d)
{
	struct sensor *s = state;
	char words[64];
	snprintf(words, sizeof(words), "example_sensor.device=0x%llx:%u",
	         (unsigned long long)s->base, s->irq);
	int r = s->host->desc_device(d, "SMOL0001");
	if (r == 0)
		r = s->host->desc_mmio(d, s->base, SENSOR_WINDOW);
	if (r == 0)
		r = s->host->desc_irq(d, s->irq, SMOL_IRQ_LEVEL);
	if (r == 0)
		r = s->host->desc_cmdline(d, words);
	if (r == 0)
		r = s->host->desc_compatible(d, "smolvm,example-sensor");
	return r;
}

/* ---- methods: called under the device's lock, like the MMIO handlers ------------------ */

/* °C to milli-degrees, or -ERANGE */
static int to_mc(double c, int32_t *out)
{
	double mc = c * 1000.0;
	if (!isfinite(mc) || mc > SENSOR_LIMIT_MC || mc < -SENSOR_LIMIT_MC)
		return -ERANGE;
	*out = (int32_t)lround(mc);
	return 0;
}

static int32_t m_set_temperature(void *state, double c)
{
	struct sensor *s = state;
	int r = to_mc(c, &s->temp_mc);
	if (r == 0)
		evaluate(s);
	return r;
}

static double m_get_temperature(void *state)
{
	return ((struct sensor *)state)->temp_mc / 1000.0;
}

static int32_t m_set_threshold(void *state, double c)
{
	struct sensor *s = state;
	int r = to_mc(c, &s->threshold_mc);
	if (r == 0)
		evaluate(s);
	return r;
}

static double m_get_threshold(void *state)
{
	return ((struct sensor *)state)->threshold_mc / 1000.0;
}

static int32_t m_set_hysteresis(void *state, int16_t mc)
{
	struct sensor *s = state;
	if (mc < 0)
		return -EINVAL;
	s->hysteresis_mc = (uint32_t)mc;
	evaluate(s);
	return 0;
}

static void m_set_offset(void *state, int8_t dc)
{
	struct sensor *s = state;
	s->offset_dc = dc;
	evaluate(s);
}

static void m_inject_fault(void *state, uint8_t code)
{
	struct sensor *s = state;
	if (code && code != s->fault) {
		s->status |= STATUS_FAULT;
		s->faults++;
	}
	s->fault = code;
	evaluate(s);
}

static int32_t m_set_rate(void *state, uint16_t hz)
{
	if (hz == 0)
		return -EINVAL;
	((struct sensor *)state)->rate_hz = hz;
	return 0;
}

static void m_set_serial(void *state, uint64_t serial)
{
	((struct sensor *)state)->serial = serial;
}

static int64_t m_adjust(void *state, int64_t mc)
{
	struct sensor *s = state;
	int64_t t = (int64_t)s->temp_mc;
	/* clamped, without overflowing on any int64_t */
	if (mc > SENSOR_LIMIT_MC - t)
		t = SENSOR_LIMIT_MC;
	else if (mc < -SENSOR_LIMIT_MC - t)
		t = -SENSOR_LIMIT_MC;
	else
		t += mc;
	s->temp_mc = (int32_t)t;
	evaluate(s);
	return t;
}

static uint32_t m_alarms(void *state)
{
	return ((struct sensor *)state)->alarms;
}

static int32_t m_set_model(void *state, const char *model)
{
	struct sensor *s = state;
	size_t n = strlen(model);
	if (n >= SENSOR_MODEL_LEN)
		return -ENAMETOOLONG;
	memset(s->model, 0, sizeof(s->model));
	memcpy(s->model, model, n);
	return 0;
}

static void m_describe(void *state, char *buf, size_t len)
{
	struct sensor *s = state;
	snprintf(buf, len,
	         "%s #%016llx: %.3f C (offset %+.1f), threshold %.3f C, hysteresis %u mC, "
	         "%u Hz, fault %u, status 0x%x, ctrl 0x%x, alarms %u",
	         s->model, (unsigned long long)s->serial, reading(s) / 1000.0, s->offset_dc / 10.0,
	         s->threshold_mc / 1000.0, s->hysteresis_mc, s->rate_hz, s->fault, s->status,
	         s->ctrl, s->alarms);
}

#define METHOD(fn, sig, help)                                                                      \
	{                                                                                          \
#fn, (void (*)(void))m_##fn, sig, help                                             \
	}
static const struct smol_method sensor_methods[] = {
	METHOD(set_temperature, "i(d)", "sets the temperature, degrees C (0, or -ERANGE)"),
	METHOD(get_temperature, "d()", "the temperature, degrees C, without the offset"),
	METHOD(set_threshold, "i(d)", "sets the alarm threshold, degrees C (0, or -ERANGE)"),
	METHOD(get_threshold, "d()", "the alarm threshold, degrees C"),
	METHOD(set_hysteresis, "i(h)", "sets the re-arm hysteresis, milli-degrees (>= 0)"),
	METHOD(set_offset, "v(b)", "sets the calibration offset, tenths of a degree"),
	METHOD(inject_fault, "v(B)", "injects fault CODE (0 clears it); raises STATUS.FAULT"),
	METHOD(set_rate, "i(H)", "sets the sample rate, Hz (> 0)"),
	METHOD(set_serial, "v(L)", "sets the serial number"),
	METHOD(adjust, "l(l)", "adds N milli-degrees; returns the new temperature, m-degrees"),
	METHOD(alarms, "u()", "alarms latched since power-on"),
	METHOD(set_model, "i(s)", "sets the model name (at most 31 bytes)"),
	METHOD(describe, "v(S)", "the sensor's state in one line"),
};

static void sensor_stats(void *state, smol_stat_fn *put, void *ctx)
{
	struct sensor *s = state;
	put(ctx, "irqs_raised", s->irqs_raised);
	put(ctx, "alarms", s->alarms);
	put(ctx, "faults", s->faults);
	put(ctx, "temp_reads", s->temp_reads);
}

/* ---- snapshots: fixed-width little-endian fields, never a raw struct ------------------ */

static int put_bytes(struct sensor *s, struct smol_snap_writer *w, uint64_t v, unsigned n)
{
	uint8_t b[8];
	for (unsigned k = 0; k < n; k++)
		b[k] = (uint8_t)(v >> (8 * k));
	return s->host->snap_write(w, b, n);
}

static int get_bytes(struct sensor *s, struct smol_snap_reader *r, uint64_t *v, unsigned n)
{
	uint8_t b[8];
	int ret = s->host->snap_read(r, b, n);
	*v = 0;
	for (unsigned k = 0; ret == 0 && k < n; k++)
		*v |= (uint64_t)b[k] << (8 * k);
	return ret;
}

/* The state's fields, in order, and each one's width in bytes (the layout above, in one
 * place for save and load). The model's 32 bytes follow them. */
enum {
	F_TEMP,
	F_THRESHOLD,
	F_HYSTERESIS,
	F_CTRL,
	F_STATUS,
	F_OFFSET,
	F_FAULT,
	F_RATE,
	F_SERIAL,
	F_ALARMS,
	F_ARMED,
	N_FIELDS
};
static const unsigned field_width[N_FIELDS] = { 4, 4, 4, 4, 4, 1, 1, 2, 8, 4, 1 };

static int sensor_save(void *state, struct smol_snap_writer *w)
{
	struct sensor *s = state;
	const uint64_t v[N_FIELDS] = {
		[F_TEMP] = (uint32_t)s->temp_mc,
		[F_THRESHOLD] = (uint32_t)s->threshold_mc,
		[F_HYSTERESIS] = s->hysteresis_mc,
		[F_CTRL] = s->ctrl,
		[F_STATUS] = s->status,
		[F_OFFSET] = (uint8_t)s->offset_dc,
		[F_FAULT] = s->fault,
		[F_RATE] = s->rate_hz,
		[F_SERIAL] = s->serial,
		[F_ALARMS] = s->alarms,
		[F_ARMED] = s->armed,
	};
	s->host->snap_set_version(w, SENSOR_STATE_VERSION);
	for (unsigned k = 0; k < N_FIELDS; k++) {
		int r = put_bytes(s, w, v[k], field_width[k]);
		if (r)
			return r;
	}
	return s->host->snap_write(w, s->model, sizeof(s->model));
}

/* A snapshot may be damaged or hostile: every field is checked before any is used. */
static int sensor_load(void *state, struct smol_snap_reader *r)
{
	struct sensor *s = state;
	uint32_t version = s->host->snap_version(r);
	uint64_t v[N_FIELDS];
	char model[SENSOR_MODEL_LEN];
	if (version > SENSOR_STATE_VERSION) {
		s->host->log(s->dev, SMOL_LOG_ERROR,
		             "state version %u is newer than this plugin's %u: upgrade the plugin",
		             version, SENSOR_STATE_VERSION);
		return -ENOTSUP;
	}
	if (version < 1) {
		s->host->log(s->dev, SMOL_LOG_ERROR, "state version %u does not exist", version);
		return -EINVAL;
	}
	int ret = 0;
	for (unsigned k = 0; k < N_FIELDS && ret == 0; k++)
		ret = get_bytes(s, r, &v[k], field_width[k]);
	if (ret == 0)
		ret = s->host->snap_read(r, model, sizeof(model));
	if (ret) {
		s->host->log(s->dev, SMOL_LOG_ERROR, "state: truncated");
		return ret;
	}
	int32_t temp = (int32_t)(uint32_t)v[F_TEMP], threshold = (int32_t)(uint32_t)v[F_THRESHOLD];
	if (temp > SENSOR_LIMIT_MC || temp < -SENSOR_LIMIT_MC || threshold > SENSOR_LIMIT_MC ||
	    threshold < -SENSOR_LIMIT_MC || v[F_HYSTERESIS] > SENSOR_LIMIT_MC ||
	    v[F_CTRL] & ~(uint64_t)CTRL_IRQ_EN ||
	    v[F_STATUS] & ~(uint64_t)(STATUS_ALARM | STATUS_FAULT) || v[F_RATE] == 0 ||
	    v[F_ARMED] > 1 || model[SENSOR_MODEL_LEN - 1] != '\0') {
		s->host->log(s->dev, SMOL_LOG_ERROR, "state: a field out of range");
		return -EINVAL;
	}
	s->temp_mc = temp;
	s->threshold_mc = threshold;
	s->hysteresis_mc = (uint32_t)v[F_HYSTERESIS];
	s->ctrl = (uint32_t)v[F_CTRL];
	s->status = (uint32_t)v[F_STATUS];
	s->offset_dc = (int8_t)(uint8_t)v[F_OFFSET];
	s->fault = (uint8_t)v[F_FAULT];
	s->rate_hz = (uint16_t)v[F_RATE];
	s->serial = v[F_SERIAL];
	s->alarms = (uint32_t)v[F_ALARMS];
	s->armed = v[F_ARMED] != 0;
	memcpy(s->model, model, sizeof(model));
	/* the core restores the line's level; keep ours in step with it */
	s->level = (s->ctrl & CTRL_IRQ_EN) && s->status;
	return 0;
}

static const struct smol_device_ops sensor_ops = {
	.struct_size = sizeof(struct smol_device_ops),
	.create = sensor_create,
	.destroy = sensor_destroy,
	.reset = sensor_reset,
	.save = sensor_save,
	.load = sensor_load,
	.describe = sensor_describe,
	.methods = sensor_methods,
	.n_methods = sizeof(sensor_methods) / sizeof(sensor_methods[0]),
	.stats = sensor_stats,
};

SMOL_PLUGIN(SMOL_KIND_DEVICE, "example-sensor",
            "example custom device: a temperature sensor with an alarm interrupt and methods",
            &sensor_ops);
