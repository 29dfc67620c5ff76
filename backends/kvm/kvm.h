/* kvm.h: what the KVM backend's files share (internal: not installed, not ABI). kvm.c holds
 * what is arch-neutral (opening /dev/kvm, RAM slots, vCPUs and their kvm_run, the run loop,
 * kicks, ioeventfd, irqfd); x86.c and arm64.c each build a VM of their arch and its ops table,
 * and only one of them is built into a kvm.so. */
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
	uint32_t n_vcpus;
#if defined(__x86_64__)
	struct kvm_cpuid2 *cpuid; /* what KVM supports, the base for every vCPU */
	struct kvm_cpuid2 *given; /* the table last given to a vCPU (vm_cpu_info), or NULL */
	/* The MSRs a vCPU of this VM can read, in save order (MSR_IA32_TSC first,
	 * MSR_IA32_TSCDEADLINE last): probed by the first vcpu_save (vcpu-state.c). */
	uint32_t *msrs;
	uint32_t n_msrs;
#elif defined(__aarch64__)
	int gic_fd; /* the GICv3 device, -1 until vm_ready */
	uint32_t n_irqs; /* SPIs the core may use (lines 0 to n_irqs - 1), 0 until vm_ready */
	struct kvm_vcpu_init target; /* KVM_ARM_PREFERRED_TARGET, asked once */
	int target_known;
#endif
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

/* ---- kvm.c: arch-neutral ---------------------------------------------------------------- */

/* A capability a VM of this arch cannot run without. */
struct kvm_need {
	int cap;
	const char *name;
};

/*
 * Opens /dev/kvm for a new VM: the API version, the capabilities @p need (logged by name when
 * missing), the vCPU count @p cfg asks for, the size of kvm_run. *out gets a VM whose vm_fd
 * is -1 (the arch creates it); 0 or a negative errno, logged.
 */
int kvm_vm_open(const struct smol_backend_host *host, const struct smol_vm_config *cfg,
                const struct kvm_need *need, size_t n_need, struct smol_vm **out);
/* Closes the VM's fds and frees it (the arch freed what it added). */
void kvm_vm_close(struct smol_vm *vm);
/* Installs the handler of the signal vcpu_kick sends (no SA_RESTART: KVM_RUN returns EINTR),
 * and removes it before the plugin may be unloaded. */
void kvm_kick_install(void);
void kvm_kick_remove(void);

/* Creates vCPU @p index (KVM_CREATE_VCPU) and maps its kvm_run. 0 or a negative errno. */
int kvm_vcpu_new(struct smol_vm *vm, uint32_t index, struct smol_vcpu **out);

/* The ops every arch shares (see sdk.h). */
int kvm_mem_add(struct smol_vm *vm, uint32_t slot, uint64_t gpa, uint64_t size, void *hva);
void kvm_vcpu_destroy(struct smol_vcpu *v);
int kvm_vcpu_run(struct smol_vcpu *v, struct smol_exit *e);
void kvm_vcpu_kick(struct smol_vcpu *v);
int kvm_ioeventfd(struct smol_vm *vm, uint64_t addr, uint32_t len, int is_pio, uint32_t flags,
                  uint64_t datamatch, int fd);
int kvm_irqfd(struct smol_vm *vm, uint32_t gsi, int fd);

#if defined(__x86_64__)
/* ---- x86 ------------------------------------------------------------------------------- */

/* x86.c: the CPUID table this host gives vCPU @p index (a vCPU's fd for its TSC frequency,
 * or -1); malloc'd, NULL when out of memory. */
struct kvm_cpuid2 *kvm_host_cpuid(struct smol_vm *vm, uint32_t index, int vcpu_fd);
/* x86.c: KVM_SET_CPUID2 on @p v, logged on failure, remembered for vm_cpu_info. 0 or -errno. */
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

#endif
