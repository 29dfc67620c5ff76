/* vcpu.h: one thread per vCPU, running the backend and dispatching its exits to the buses. */
#ifndef SMOLVM_VCPU_H
#define SMOLVM_VCPU_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <smolvm/sdk.h>

struct machine;
struct smol_vcpu;

struct vcpu {
	struct machine *m;
	uint32_t index;
	struct smol_vcpu *bv; /**< the backend's vCPU */
	pthread_t thread;
	bool started;
	bool parked; /**< waiting in machine_pause's park (run_lock) */
	uint64_t exits;
	/** Exits by enum smol_exit_reason (0: none of them; past SMOL_EXIT_UNKNOWN counts as it);
	 * written by the vCPU's thread alone, read atomically by `ctl stats`. */
	uint64_t exit_reasons[SMOL_EXIT_UNKNOWN + 1];
};

/** Starts the vCPU's thread. 0 or -errno. */
int vcpu_start(struct vcpu *v);
/** Handles one exit (exposed for tests). Returns false when the run must end. */
struct smol_exit;
bool vcpu_handle_exit(struct vcpu *v, struct smol_exit *e);

#endif
