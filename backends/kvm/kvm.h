/* kvm.h: what the KVM backend's files share (internal: not installed, not ABI). */
#ifndef SMOLVM_KVM_KVM_H
#define SMOLVM_KVM_KVM_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include <smolvm/sdk.h>

struct smol_vm {
	const struct smol_backend_host *host;
	int kvm_fd;
	int vm_fd;
	int run_size;
	struct kvm_cpuid2 *cpuid; /* what KVM supports, the base for every vCPU */
	struct kvm_cpuid2 *given; /* the table last given to a vCPU (vm_cpu_info), or NULL */
	uint32_t n_vcpus;
	/* The MSRs a vCPU of this VM can read, in save order (MSR_IA32_TSC first,
	 * MSR_IA32_TSCDEADLINE last): probed by the first vcpu_save (vcpu-state.c). */
	uint32_t *msrs;
	uint32_t n_msrs;
};

struct smol_vcpu {
	struct smol_vm *vm;
	uint32_t index;
	int fd;
	struct kvm_run *run;
	pthread_t thread; /* set on first run, for kicks */
	int thread_known;
};

#define LOG(vm, lvl, ...) (vm)->host->log((lvl), __VA_ARGS__)

/* kvm.c: the CPUID table this host gives vCPU @p index (a vCPU's fd for its TSC frequency,
 * or -1); malloc'd, NULL when out of memory. */
struct kvm_cpuid2 *kvm_host_cpuid(struct smol_vm *vm, uint32_t index, int vcpu_fd);
/* kvm.c: KVM_SET_CPUID2 on @p v, logged on failure, remembered for vm_cpu_info. 0 or -errno. */
int kvm_set_cpuid(struct smol_vcpu *v, const struct kvm_cpuid2 *c);

/* vm-state.c: the VM-wide snapshot ops (see sdk.h) */
int kvm_vm_cpu_info(struct smol_vm *vm, uint32_t arch, void *info, size_t len);
int kvm_vm_save(struct smol_vm *vm, uint32_t arch, void *buf, size_t cap, size_t *len);
int kvm_vm_load(struct smol_vm *vm, uint32_t arch, const void *buf, size_t len);

/* vcpu-state.c: the vCPU snapshot ops (see sdk.h) */
int kvm_vcpu_save(struct smol_vcpu *v, uint32_t arch, void *buf, size_t cap, size_t *len);
int kvm_vcpu_load(struct smol_vcpu *v, uint32_t arch, const void *buf, size_t len);
int kvm_vcpu_was_paused(struct smol_vcpu *v);

#endif
