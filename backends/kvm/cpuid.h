/* cpuid.h: the CPUID table each vCPU gets, from what KVM supports (pure: unit-tested). */
#ifndef SMOLVM_KVM_CPUID_H
#define SMOLVM_KVM_CPUID_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stdint.h>

/**
 * vCPU @p index of @p n_vcpus: KVM's supported table with this vCPU's APIC ID, the hypervisor
 * bit, a topology of n_vcpus cores in one package with one thread each (leaves 1, 4, 0xB,
 * 0x80000001, 0x80000008, 0x8000001E), and, when @p tsc_khz is known, the TSC and APIC-bus
 * frequencies in the hypervisor timing leaf 0x40000010, and the TSC-deadline timer when
 * @p tsc_deadline (KVM_CAP_TSC_DEADLINE_TIMER: KVM emulates it in its local APIC but never
 * lists it as supported, api.rst, KVM_GET_SUPPORTED_CPUID). The KVM paravirtual leaves
 * (0x40000000-0x40000001: kvm-clock and friends) pass through as KVM reports them.
 * @return a malloc'd table, or NULL when out of memory
 */
struct kvm_cpuid2 *kvm_cpuid_for_vcpu(const struct kvm_cpuid2 *supported, uint32_t index,
                                      uint32_t n_vcpus, uint32_t tsc_khz, bool tsc_deadline);

#endif
