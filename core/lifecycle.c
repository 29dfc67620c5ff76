/* lifecycle.c: pausing and resuming a running machine. A pause sets a sticky flag and kicks
 * every vCPU; each one completes the port/MMIO exit it may be in the middle of (vcpu_park) and
 * waits; then devices that run threads are paused. A resume undoes it in reverse and tells the
 * guest it was stopped. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stddef.h>
#include <string.h>
#include <time.h>

#include "device.h"
#include "log.h"
#include "machine.h"
#include "snapshot.h"
#include "vcpu.h"

/* How long a pause waits for the vCPUs (one may be stuck in a device handler). */
#define PAUSE_TIMEOUT_MS 10000

static uint32_t started_vcpus(const struct machine *m)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < m->n_vcpus; i++)
		n += m->vcpus[i].started;
	return n;
}

/* Lets parked vCPUs go, unless a snapshot-port's request still waits to be served: its vCPU
 * must stay where it asked until snapshot_serve_request has taken the snapshot. */
static void release_vcpus(struct machine *m)
{
	pthread_mutex_lock(&m->run_lock);
	if (!__atomic_load_n(&m->snap_requested, __ATOMIC_SEQ_CST))
		__atomic_store_n(&m->pause_req, 0, __ATOMIC_SEQ_CST);
	pthread_cond_broadcast(&m->run_cond);
	pthread_mutex_unlock(&m->run_lock);
}

static uint64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

int machine_pause(struct machine *m)
{
	if (!m->running || machine_stopping(m))
		return -EINVAL;
	if (m->pause_depth++)
		return 0;
	__atomic_store_n(&m->pause_req, 1, __ATOMIC_SEQ_CST);
	uint32_t want = started_vcpus(m);
	uint64_t deadline = now_ms() + PAUSE_TIMEOUT_MS;
	pthread_mutex_lock(&m->run_lock);
	while (m->n_parked < want && !machine_stopping(m) && now_ms() < deadline) {
		/* a kick is sticky (immediate_exit); repeat it anyway for a thread that was in a
		 * device handler when the last one came */
		for (uint32_t i = 0; i < m->n_vcpus; i++)
			if (m->vcpus[i].started && !m->vcpus[i].parked)
				m->be->vcpu_kick(m->vcpus[i].bv);
		struct timespec ts; /* run_cond waits on CLOCK_MONOTONIC (machine_configure) */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += 50 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&m->run_cond, &m->run_lock, &ts);
	}
	bool all = m->n_parked == want;
	pthread_mutex_unlock(&m->run_lock);
	if (!all || machine_stopping(m)) {
		if (!machine_stopping(m))
			log_err("pause: %u of %u vCPUs did not stop within %d s (blocked in a "
			        "device?)",
			        want - m->n_parked, want, PAUSE_TIMEOUT_MS / 1000);
		m->pause_depth--;
		release_vcpus(m);
		return machine_stopping(m) ? -EINVAL : -ETIMEDOUT;
	}
	for (size_t i = 0; i < m->n_devs; i++) {
		struct smol_dev *d = m->devs[i];
		if (DEV_HAS_OP_1_3(d, pause)) {
			dev_lock(d);
			d->ops->pause(d->state);
			dev_unlock(d);
		}
	}
	log_debug("machine paused: %u vCPUs stopped", want);
	return 0;
}

int machine_resume(struct machine *m)
{
	if (!m->pause_depth)
		return -EINVAL;
	if (--m->pause_depth)
		return 0;
	for (size_t i = m->n_devs; i-- > 0;) {
		struct smol_dev *d = m->devs[i];
		if (DEV_HAS_OP_1_3(d, resume)) {
			dev_lock(d);
			d->ops->resume(d->state);
			dev_unlock(d);
		}
	}
	machine_tell_paused(m);
	release_vcpus(m);
	log_debug("machine resumed");
	return 0;
}

void machine_release_request(struct machine *m)
{
	if (!m->pause_depth)
		release_vcpus(m);
}

void machine_end_paused(struct machine *m)
{
	/* the run is ending (stopping is set): the vCPUs leave their loops without entering the
	 * guest, and devices stay paused (a disk takes no request after the snapshot) */
	m->pause_depth = 0;
	release_vcpus(m);
}

bool machine_paused(const struct machine *m)
{
	return m->pause_depth > 0;
}

uint64_t machine_uptime_ms(const struct machine *m)
{
	struct timespec now;
	if (!m->started_ns)
		return 0;
	clock_gettime(CLOCK_MONOTONIC, &now);
	uint64_t ns = (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec;
	return (ns - m->started_ns) / 1000000ull;
}

void machine_tell_paused(struct machine *m)
{
	if (BACKEND_HAS_OP(m, vcpu_was_paused))
		for (uint32_t i = 0; i < m->n_vcpus; i++)
			m->be->vcpu_was_paused(m->vcpus[i].bv);
}
