/* cpuid.h: the CPUID table each vCPU gets, from what KVM supports (pure: unit-tested). */
#ifndef SMOLVM_KVM_CPUID_H
#define SMOLVM_KVM_CPUID_H

#include <linux/kvm.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The feature words of struct smol_x86_cpu_info (SMOL_X86_CPU_WORDS, in sdk.h's order). */
#define KVM_CPU_WORDS 12

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

/**
 * What a guest given table @p c is shown of its CPU: the vendor (CPUID 0 ebx, edx, ecx), the
 * signature (CPUID 1 eax) and the KVM_CPU_WORDS feature words in smol_x86_cpu_info's order
 * (1 ecx, 1 edx, 7.0 ebx, 7.0 ecx, 7.0 edx, 0x80000001 ecx, 0x80000001 edx, 0xd.1 eax,
 * 0xd.0 eax, 0xd.0 edx, 0x80000007 edx, 0x80000008 ebx), without the bits the kernel and KVM
 * set per vCPU or at run time (kvm_cpuid_runtime_bit). A leaf the table lacks reads as 0.
 */
void kvm_cpuid_info(const struct kvm_cpuid2 *c, char vendor[12], uint32_t *signature,
                    uint32_t words[KVM_CPU_WORDS]);

/** Whether bit @p bit of feature word @p word is one KVM or the kernel sets by itself (APIC ID,
 * hypervisor, OSXSAVE, OSPKE, APIC enabled, MONITOR), which no host comparison looks at. */
bool kvm_cpuid_runtime_bit(unsigned word, unsigned bit);

/**
 * Whether a guest that was given CPUID table @p saved can run where this host gives table
 * @p host: the same vendor, and no feature bit set in @p saved's feature words (see
 * kvm_cpuid_info) that @p host lacks. 0 when it can; -1 with the first difference described
 * in @p why (e.g. "CPUID 0x7.0 ebx bit 5 (the saved guest has it, this host does not)").
 */
int kvm_cpuid_check(const struct kvm_cpuid2 *saved, const struct kvm_cpuid2 *host, char *why,
                    size_t why_len);

#endif
