/* kvm-state.h: what the files of the kvm-state test share. */
#ifndef SMOLVM_TEST_KVM_STATE_H
#define SMOLVM_TEST_KVM_STATE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <smolvm/sdk.h>

extern const struct smol_backend_ops *ops; /* kvm.so's */
extern int errors_logged; /* error lines kvm.so logged so far */

/* Prints "ok: ..." or "FAIL: ..." and counts failures. */
void check(int ok, const char *fmt, ...) SMOL_PRINTF(2, 3);

/* A guest's pvclock area (struct pvclock_vcpu_time_info), as the guest copied it. */
struct pvclock {
	uint32_t version;
	uint64_t tsc_timestamp, system_time;
	uint32_t mul;
	int8_t shift;
	uint8_t flags;
};

/* One vCPU's thread and what its guest reported. */
struct cpu {
	struct smol_vcpu *v;
	uint32_t index;
	const uint8_t *ram; /* the guest's RAM, for the pvclock copy each report leaves there */
	pthread_t thread;
	int stop;
	char error[200]; /* why the thread gave up, or "" */
	/* the reports: ports 0x10..0x13 in turn, checked as they come (across the restore) */
	uint32_t next_port; /* 0 before the first report */
	uint32_t seq, ticks, tsc_lo;
	uint64_t tsc;
	uint32_t rounds; /* complete rounds (all four ports) */
	uint32_t last_ticks; /* of the last complete round: read by main while running */
	uint64_t last_tsc;
	struct pvclock last_pv; /* the pvclock the guest read last_tsc under */
	uint32_t last_seq;
	/* the first complete round after the restore */
	int restored, have_first;
	uint32_t first_ticks, first_seq, first_port;
	uint64_t first_tsc;
	/* the first round whose rdtsc ran after the restore (0x12 written since): its kvmclock */
	int fresh_tsc, have_clock;
	uint64_t clock_tsc;
	struct pvclock clock_pv;
};

struct blob {
	uint8_t *p;
	size_t len;
};

/* kvm-state-corrupt.c: corrupt blobs are refused (with a log line) by a fresh VM and vCPU. */
void check_corrupt_vm(struct smol_vm *vm, struct blob b);
void check_corrupt_vcpu(struct cpu *c, struct blob b);

#endif
