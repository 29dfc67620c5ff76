/* vcpu.c: the vCPU loop. Port and MMIO exits go to the buses; everything that ends a guest
 * (triple fault, internal error, a system event) ends the run with a register dump where the
 * guest died. */
#include "vcpu.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "machine.h"
#include "seccomp-filter.h"
#include "signals.h"

static void dump_and_exit(struct vcpu *v, const char *why, int status)
{
	struct machine *m = v->m;
	char buf[4096] = "";
	if (m->be->vcpu_dump)
		m->be->vcpu_dump(v->bv, buf, sizeof(buf));
	log_err("vCPU %u: %s\n%s", v->index, why, buf);
	machine_request_exit(m, status);
}

bool vcpu_handle_exit(struct vcpu *v, struct smol_exit *e)
{
	struct machine *m = v->m;
	char why[160];
	uint32_t reason = e->reason <= SMOL_EXIT_UNKNOWN ? e->reason : SMOL_EXIT_UNKNOWN;
	/* one writer (this thread): a plain add, stored atomically for the readers */
	__atomic_store_n(&v->exit_reasons[reason], v->exit_reasons[reason] + 1, __ATOMIC_RELAXED);

	switch (e->reason) {
	case SMOL_EXIT_PIO: {
		unsigned size = e->u.pio.size;
		if (size != 1 && size != 2 && size != 4)
			size = 1;
		for (uint32_t i = 0; i < e->u.pio.count; i++)
			if (!bus_access(&m->pio, e->u.pio.port, size, e->u.pio.is_write,
			                e->u.pio.data + (size_t)i * size))
				log_debug("vCPU %u: unhandled port %s 0x%x (%u bytes)", v->index,
				          e->u.pio.is_write ? "write" : "read", e->u.pio.port,
				          size);
		return true;
	}
	case SMOL_EXIT_MMIO:
		if (!bus_access(&m->mmio, e->u.mmio.gpa, e->u.mmio.size, e->u.mmio.is_write,
		                e->u.mmio.data))
			log_debug("vCPU %u: unhandled MMIO %s 0x%llx (%u bytes)", v->index,
			          e->u.mmio.is_write ? "write" : "read",
			          (unsigned long long)e->u.mmio.gpa, e->u.mmio.size);
		return true;
	case SMOL_EXIT_INTR: return true;
	case SMOL_EXIT_HLT:
		dump_and_exit(v, "halted with nothing to wake it (no in-kernel irqchip)",
		              STATUS_ERROR);
		return false;
	case SMOL_EXIT_SHUTDOWN:
		dump_and_exit(v,
		              "the guest shut down the CPU (triple fault; on AMD, KVM resets the "
		              "vCPU before reporting it, so the registers may be its reset state)",
		              STATUS_ERROR);
		return false;
	case SMOL_EXIT_SYSTEM_EVENT:
		switch (e->u.system_event.type) {
		case SMOL_EVENT_SHUTDOWN:
			log_debug("vCPU %u: guest powered off", v->index);
			machine_request_exit(m, STATUS_OK);
			return false;
		case SMOL_EVENT_RESET:
			log_debug("vCPU %u: guest asked for a reset", v->index);
			machine_request_reset(m);
			return false;
		default:
			snprintf(why, sizeof(why), "the guest reported a crash (system event %u)",
			         e->u.system_event.type);
			dump_and_exit(v, why, STATUS_ERROR);
			return false;
		}
	case SMOL_EXIT_INTERNAL_ERROR:
		snprintf(why, sizeof(why),
		         "the hypervisor could not emulate the guest (internal "
		         "error, suberror %u)",
		         e->code);
		dump_and_exit(v, why, STATUS_ERROR);
		return false;
	default:
		snprintf(why, sizeof(why), "unexpected exit (backend reason %u)", e->code);
		dump_and_exit(v, why, STATUS_ERROR);
		return false;
	}
}

/*
 * machine_pause() asked every vCPU to stop. A port or MMIO exit this thread just served is not
 * finished until KVM_RUN is entered again (an IN's value goes to the guest's register, the
 * instruction pointer moves past it): run once more with the kick's immediate_exit set, so the
 * backend completes it and returns without running guest code. Then wait until resumed.
 */
static void vcpu_park(struct vcpu *v)
{
	struct machine *m = v->m;
	struct smol_exit e;

	m->be->vcpu_kick(v->bv); /* sticky: the next vcpu_run returns at once */
	memset(&e, 0, sizeof(e));
	int r = m->be->vcpu_run(v->bv, &e);
	if (r < 0) {
		log_err("vCPU %u: completing its last exit before a pause failed: %s", v->index,
		        strerror(-r));
		machine_request_exit(m, STATUS_ERROR);
		return;
	}
	if (e.reason != SMOL_EXIT_INTR) {
		/* not expected with immediate_exit, but an exit is an exit: serve it (one that ends
		 * the run has ended it), park next time round */
		v->exits++;
		vcpu_handle_exit(v, &e);
		return;
	}
	pthread_mutex_lock(&m->run_lock);
	v->parked = true;
	m->n_parked++;
	pthread_cond_broadcast(&m->run_cond);
	while (__atomic_load_n(&m->pause_req, __ATOMIC_SEQ_CST) && !machine_stopping(m))
		pthread_cond_wait(&m->run_cond, &m->run_lock);
	m->n_parked--;
	v->parked = false;
	pthread_mutex_unlock(&m->run_lock);
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	struct machine *m = v->m;
	struct smol_exit e;

	if (!seccomp_vcpu_enter(v))
		return NULL;
	while (!machine_stopping(m)) {
		if (__atomic_load_n(&m->pause_req, __ATOMIC_SEQ_CST)) {
			vcpu_park(v);
			continue;
		}
		memset(&e, 0, sizeof(e));
		int r = m->be->vcpu_run(v->bv, &e);
		if (r < 0) {
			log_err("vCPU %u: run failed: %s", v->index, strerror(-r));
			machine_request_exit(m, STATUS_ERROR);
			break;
		}
		v->exits++;
		if (!vcpu_handle_exit(v, &e))
			break;
	}
	return NULL;
}

int vcpu_start(struct vcpu *v)
{
	/* the stop signals are the main thread's: a vCPU thread is created with them blocked */
	sigset_t old;
	signals_block_thread(&old);
	int r = pthread_create(&v->thread, NULL, vcpu_thread, v);
	signals_restore_thread(&old);
	if (r)
		return -r;
	v->started = true;
	return 0;
}
