/* vcpu-state.h: a vCPU's state between KVM (vcpu-state.c) and its blob (vcpu-blob.c). */
#ifndef SMOLVM_KVM_VCPU_STATE_H
#define SMOLVM_KVM_VCPU_STATE_H

#include <linux/kvm.h>
#include <stdint.h>

#include "blob.h"

#define VCPU_MAGIC BLOB_TAG('K', 'V', 'C', 'P')
#define VCPU_VERSION 1
#define MAX_CPUID 1024 /* entries; KVM's own limit is lower */
#define MAX_MSRS 4096
#define MIN_XSAVE 576 /* the legacy area and the XSAVE header */
#define MAX_XSAVE (1u << 20)
#define MSR_BATCH 128 /* KVM takes fewer than 256 MSRs per KVM_GET_MSRS/KVM_SET_MSRS */
#define MSR_IA32_TSC 0x10u
#define MSR_IA32_TSCDEADLINE 0x6e0u
#define TSC_TOLERANCE_PPM 250 /* KVM's own: closer rates need no scaling */
#define EVENT_FLAGS 0x3fu /* KVM_VCPUEVENT_VALID_NMI_PENDING .. _TRIPLE_FAULT */

struct vstate {
	uint32_t index, tsc_khz;
	struct kvm_cpuid2 *cpuid;
	struct kvm_regs regs;
	struct kvm_sregs2 sregs;
	uint64_t irq_bitmap[4]; /* struct kvm_sregs' pending interrupt (without KVM_CAP_SREGS2) */
	uint32_t xsave_size;
	uint8_t *xsave;
	struct kvm_xcrs xcrs;
	struct kvm_debugregs dbg;
	struct kvm_lapic_state lapic;
	uint32_t n_msrs;
	struct kvm_msr_entry *msrs;
	struct kvm_vcpu_events ev;
	struct kvm_mp_state mp;
};

/* Writes @p s as the blob's sections (after bw_init). */
void vstate_put(struct blob_w *w, const struct vstate *s);
/* Reads a whole blob into @p s, every field checked (logged through @p host, naming vCPU
 * @p index); 0, -EINVAL or -ENOTSUP (a newer version). vstate_free() it either way. */
int vstate_decode(const struct smol_backend_host *host, uint32_t index, const void *buf, size_t len,
                  struct vstate *s);
void vstate_free(struct vstate *s);

#endif
