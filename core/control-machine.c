/* control-machine.c: the control socket's view of a running machine (struct control_ops):
 * status, pause and resume, snapshots, the devices and their methods, a method call under the
 * device's lock, and the counters of `smolvm ctl SOCK stats`. Every op runs on the machine's
 * event-loop thread. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "control.h"
#include "device.h"
#include "log.h"
#include "machine.h"
#include "method-sig.h"
#include "snapshot.h"
#include "vcpu.h"

static void mc_status(void *o, struct control_status *st)
{
	struct machine *m = o;
	st->paused = machine_paused(m);
	st->vcpus = m->n_vcpus;
	st->memory = m->ram_size;
	st->uptime_ms = machine_uptime_ms(m);
	st->arch = m->arch;
	st->backend = m->backend_name;
}

static int mc_pause(void *o, char *err, size_t n)
{
	int r = machine_pause(o);
	if (r < 0)
		snprintf(err, n, "%s", machine_stopping(o) ? "the run is ending" : strerror(-r));
	return r;
}

static int mc_resume(void *o, char *err, size_t n)
{
	int r = machine_resume(o);
	if (r < 0)
		snprintf(err, n, "%s", r == -EINVAL ? "the machine is not paused" : strerror(-r));
	return r;
}

static int mc_snapshot(void *o, const char *path, bool stop, char *err, size_t n)
{
	/* with stop, the run ends before the vCPUs are let go: the guest runs no further */
	return snapshot_take(o, path, stop, err, n);
}

static size_t mc_n_devices(void *o)
{
	return ((struct machine *)o)->n_devs;
}

static void mc_device(void *o, size_t i, struct control_device *out)
{
	struct machine *m = o;
	struct smol_dev *d = m->devs[i];
	memset(out, 0, sizeof(*out));
	out->name = d->name;
	out->type = d->plugin->desc->name;
	out->plugin = d->plugin->path;
	for (int k = 0; k < d->n_ranges && out->n_ranges < 16; k++, out->n_ranges++) {
		out->ranges[out->n_ranges].base = d->ranges[k].base;
		out->ranges[out->n_ranges].len = d->ranges[k].len;
		out->ranges[out->n_ranges].pio = d->ranges[k].pio;
	}
	for (int k = 0; k < d->n_irqs && out->n_irqs < 8; k++)
		out->irqs[out->n_irqs++] = d->irqs[k];
	/* methods exist from ABI 1.6 on: an older plugin's slot is reserved, never read */
	if (d->plugin->desc->abi_minor >= 6 && DEV_HAS_OP(d->ops, n_methods) && d->ops->methods) {
		out->methods = d->ops->methods;
		out->n_methods = d->ops->n_methods;
	}
}

/* How long the event loop waits for a device's lock (a call, its counters): a device whose
 * lock a vCPU holds for longer (a reset waiting for a request on a stalled image) gets a
 * "busy" answer instead of freezing the event loop and with it the stop signals. */
#define DEV_LOCK_WAIT_MS 1000

static bool dev_lock_within(struct smol_dev *d, unsigned ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts); /* pthread_mutex_timedlock's clock */
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return pthread_mutex_timedlock(&d->lock, &ts) == 0;
}

static int mc_call(void *o, size_t i, const struct smol_method *meth, const char *const *args,
                   unsigned n, struct method_result *res, char *err, size_t errlen)
{
	struct machine *m = o;
	struct smol_dev *d = m->devs[i];
	if (machine_stopping(m)) {
		snprintf(err, errlen, "the run is ending");
		return -ESHUTDOWN;
	}
	if (!dev_lock_within(d, DEV_LOCK_WAIT_MS)) {
		snprintf(err, errlen,
		         "%s is busy: its lock stayed held for %d ms (a request in flight?)",
		         d->label, DEV_LOCK_WAIT_MS);
		return -EBUSY;
	}
	int r = method_call(meth, d->state, args, n, res, err, errlen);
	dev_unlock(d);
	if (r == 0)
		log_debug("%s: method %s called", d->label, meth->name);
	return r;
}

static uint64_t load(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* Names of the exit reasons, by enum smol_exit_reason ("other" for 0). */
static const char *const exit_names[SMOL_EXIT_UNKNOWN + 1] = {
	[0] = "other",
	[SMOL_EXIT_PIO] = "pio",
	[SMOL_EXIT_MMIO] = "mmio",
	[SMOL_EXIT_HLT] = "hlt",
	[SMOL_EXIT_SHUTDOWN] = "shutdown",
	[SMOL_EXIT_SYSTEM_EVENT] = "system_event",
	[SMOL_EXIT_INTERNAL_ERROR] = "internal_error",
	[SMOL_EXIT_INTR] = "intr",
	[SMOL_EXIT_UNKNOWN] = "unknown",
};

/* What a device's stats() reports goes into its "counters" object, checked: a bad or repeated
 * name, or one past SMOL_STATS_MAX, is dropped and warned about once per device. */
struct stat_sink {
	struct jsonw *w;
	struct smol_dev *dev;
	unsigned n;
	char names[SMOL_STATS_MAX][SMOL_STAT_NAME_MAX + 1];
	bool warned;
};

static bool stat_name_ok(const char *name)
{
	size_t n = 0;
	for (; name[n] && n <= SMOL_STAT_NAME_MAX; n++) {
		char c = name[n];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.'))
			return false;
	}
	return n >= 1 && n <= SMOL_STAT_NAME_MAX;
}

static void stat_put(void *ctx, const char *name, uint64_t value)
{
	struct stat_sink *s = ctx;
	const char *why = NULL;
	if (!name || !stat_name_ok(name))
		why = "a counter name that is not [a-z0-9_.]{1,47}";
	else if (s->n == SMOL_STATS_MAX)
		why = "more than 128 counters (SMOL_STATS_MAX)";
	for (unsigned k = 0; !why && k < s->n; k++)
		if (strcmp(s->names[k], name) == 0)
			why = "a counter name twice";
	if (why) {
		if (!s->warned)
			log_warn("%s: stats() reported %s: dropped", s->dev->label, why);
		s->warned = true;
		return;
	}
	memcpy(s->names[s->n++], name, strlen(name) + 1);
	jsonw_u64(s->w, name, value);
}

void machine_stats(struct machine *m, struct jsonw *w)
{
	static struct stat_sink sink; /* event-loop thread only; 6 KiB kept off its stack */

	jsonw_u64(w, "uptime_ms", machine_uptime_ms(m));
	jsonw_str(w, "state", machine_paused(m) ? "paused" : "running");
	jsonw_arr_begin(w, "vcpus");
	for (uint32_t i = 0; i < m->n_vcpus && m->vcpus; i++) {
		const struct vcpu *v = &m->vcpus[i];
		uint64_t total = 0;
		jsonw_obj_begin(w, NULL);
		jsonw_u64(w, "index", i);
		jsonw_obj_begin(w, "exits");
		for (unsigned r = 0; r <= SMOL_EXIT_UNKNOWN; r++) {
			uint64_t n = load(&v->exit_reasons[r]);
			total += n;
			if (n)
				jsonw_u64(w, exit_names[r], n);
		}
		jsonw_u64(w, "total", total);
		jsonw_obj_end(w);
		jsonw_obj_end(w);
	}
	jsonw_arr_end(w);
	jsonw_arr_begin(w, "devices");
	for (size_t i = 0; i < m->n_devs; i++) {
		struct smol_dev *d = m->devs[i];
		jsonw_obj_begin(w, NULL);
		jsonw_str(w, "name", d->name);
		jsonw_str(w, "type", d->plugin->desc->name);
		jsonw_u64(w, "mmio_reads", load(&d->mmio_reads));
		jsonw_u64(w, "mmio_writes", load(&d->mmio_writes));
		jsonw_u64(w, "pio_reads", load(&d->pio_reads));
		jsonw_u64(w, "pio_writes", load(&d->pio_writes));
		if (DEV_HAS_OP_SINCE(d, 6, stats)) {
			if (dev_lock_within(d, DEV_LOCK_WAIT_MS)) {
				sink.w = w;
				sink.dev = d;
				sink.n = 0;
				sink.warned = false;
				jsonw_obj_begin(w, "counters");
				d->ops->stats(d->state, stat_put, &sink);
				jsonw_obj_end(w);
				dev_unlock(d);
			} else {
				jsonw_bool(w, "busy", true); /* its counters next time */
			}
		}
		jsonw_obj_end(w);
	}
	jsonw_arr_end(w);
	jsonw_obj_begin(w, "unhandled");
	jsonw_u64(w, "mmio", load(&m->mmio.unhandled));
	jsonw_u64(w, "pio", load(&m->pio.unhandled));
	jsonw_obj_end(w);
}

static void mc_stats(void *o, struct jsonw *w)
{
	machine_stats(o, w);
}

static const struct control_ops machine_control_ops = {
	.status = mc_status,
	.pause = mc_pause,
	.resume = mc_resume,
	.snapshot = mc_snapshot,
	.n_devices = mc_n_devices,
	.device = mc_device,
	.call = mc_call,
	.stats = mc_stats,
};

int control_start(struct machine *m)
{
	return control_open(&m->loop, m->control_path, &machine_control_ops, m, &m->control);
}

void control_stop(struct machine *m)
{
	control_close(m->control);
	m->control = NULL;
}
