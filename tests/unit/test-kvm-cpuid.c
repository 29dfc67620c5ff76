/* The KVM backend's per-vCPU CPUID (backends/kvm/cpuid.c): topology leaves agree with the
 * vCPU count and index, the paravirtual leaves pass through, the timing leaf appears. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "cpuid.h"

/* A small "supported" table like KVM's on an AMD host with max basic leaf 0xd. */
static struct kvm_cpuid2 *supported(void)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + 16 * sizeof(c->entries[0]));
	struct kvm_cpuid_entry2 e[] = {
		{ .function = 0, .eax = 0xd, .ebx = 0x68747541 /* AuthenticAMD */ },
		{ .function = 1, .ebx = 0x00000800, .ecx = 0x1, .edx = 0x1 },
		{ .function = 4,
		  .index = 0,
		  .eax = 0x121,
		  .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX },
		{ .function = 4, .index = 1, .eax = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX },
		{ .function = 0xb, .index = 0, .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX },
		{ .function = 0x40000000, .eax = 0x40000001, .ebx = 0x4b4d564b },
		{ .function = 0x40000001, .eax = 0x01007afb },
		{ .function = 0x80000000, .eax = 0x8000001e },
		{ .function = 0x80000001, .ecx = 0x00400000 },
		{ .function = 0x80000008, .eax = 0x3030, .ecx = 0x0000f00f },
		{ .function = 0x8000001e, .eax = 7, .ebx = 0x0107, .ecx = 0x0101 },
	};
	memcpy(c->entries, e, sizeof(e));
	c->nent = sizeof(e) / sizeof(e[0]);
	return c;
}

static const struct kvm_cpuid_entry2 *leaf(const struct kvm_cpuid2 *c, uint32_t fn, uint32_t i)
{
	for (uint32_t k = 0; k < c->nent; k++)
		if (c->entries[k].function == fn && c->entries[k].index == i)
			return &c->entries[k];
	return NULL;
}

Test(kvm_cpuid, apic_id_and_counts_per_vcpu)
{
	struct kvm_cpuid2 *s = supported();
	for (uint32_t idx = 0; idx < 3; idx++) {
		struct kvm_cpuid2 *c = kvm_cpuid_for_vcpu(s, idx, 3, 0, false);
		cr_assert_not_null(c);
		const struct kvm_cpuid_entry2 *l1 = leaf(c, 1, 0);
		cr_assert_eq(l1->ebx >> 24, idx, "initial APIC ID");
		cr_assert_eq((l1->ebx >> 16) & 0xff, 3, "logical processors per package");
		cr_assert_eq(l1->ebx & 0xffff, 0x0800, "the low half of EBX is kept");
		cr_assert(l1->ecx & (1u << 31), "hypervisor bit");
		cr_assert(l1->edx & (1u << 28), "HTT with 3 CPUs");
		cr_assert_not(l1->ecx & (1u << 24), "no TSC deadline unless KVM has it");
		cr_assert_eq(leaf(c, 4, 0)->eax >> 26, 2, "cores per package - 1 in leaf 4");
		cr_assert_eq(leaf(c, 4, 1)->eax, 0, "the null cache entry is left alone");
		/* leaf 0xB: SMT level (1 thread), core level (3 cores, 2 bits), terminator */
		cr_assert_eq(leaf(c, 0xb, 0)->ebx, 1);
		cr_assert_eq(leaf(c, 0xb, 0)->ecx, 0x100);
		cr_assert_eq(leaf(c, 0xb, 1)->eax, 2);
		cr_assert_eq(leaf(c, 0xb, 1)->ebx, 3);
		cr_assert_eq(leaf(c, 0xb, 1)->ecx, 0x201);
		cr_assert_eq(leaf(c, 0xb, 2)->ecx, 2);
		for (uint32_t i = 0; i < 3; i++)
			cr_assert_eq(leaf(c, 0xb, i)->edx, idx, "x2APIC ID in subleaf %u", i);
		/* AMD: cores in 0x80000008, CmpLegacy, TOPOEXT ids */
		cr_assert_eq(leaf(c, 0x80000008, 0)->ecx & 0xff, 2);
		cr_assert_eq((leaf(c, 0x80000008, 0)->ecx >> 12) & 0xf, 2);
		cr_assert(leaf(c, 0x80000001, 0)->ecx & 2);
		cr_assert_eq(leaf(c, 0x8000001e, 0)->eax, idx);
		cr_assert_eq(leaf(c, 0x8000001e, 0)->ebx, idx, "one thread per core");
		free(c);
	}
	free(s);
}

Test(kvm_cpuid, amd_leaves_left_alone_on_intel)
{
	struct kvm_cpuid2 *s = supported();
	s->entries[0].ebx = 0x756e6547; /* "Genu"ineIntel */
	struct kvm_cpuid2 *c = kvm_cpuid_for_vcpu(s, 1, 4, 0, false);
	cr_assert_eq(leaf(c, 0x80000008, 0)->ecx, 0x0000f00f, "reserved on Intel: unchanged");
	cr_assert_not(leaf(c, 0x80000001, 0)->ecx & 2);
	cr_assert_eq(leaf(c, 0x8000001e, 0)->eax, 7);
	cr_assert_eq(leaf(c, 0xb, 1)->ebx, 4, "leaf 0xB is set on both");
	free(c);
	free(s);
}

Test(kvm_cpuid, one_vcpu_has_no_htt_or_cmp_legacy)
{
	struct kvm_cpuid2 *s = supported();
	s->entries[1].edx |= 1u << 28;
	struct kvm_cpuid2 *c = kvm_cpuid_for_vcpu(s, 0, 1, 0, false);
	cr_assert_not(leaf(c, 1, 0)->edx & (1u << 28));
	cr_assert_not(leaf(c, 0x80000001, 0)->ecx & 2);
	cr_assert_eq(leaf(c, 0xb, 1)->ebx, 1);
	cr_assert_eq(leaf(c, 0xb, 1)->eax, 0);
	cr_assert_eq(leaf(c, 0x80000008, 0)->ecx & 0xff, 0);
	free(c);
	free(s);
}

Test(kvm_cpuid, paravirt_leaves_pass_and_timing_leaf_added)
{
	struct kvm_cpuid2 *s = supported();
	struct kvm_cpuid2 *c = kvm_cpuid_for_vcpu(s, 0, 2, 2994000, false);
	cr_assert_eq(leaf(c, 0x40000001, 0)->eax, 0x01007afb, "kvm-clock features unchanged");
	cr_assert_eq(leaf(c, 0x40000000, 0)->ebx, 0x4b4d564b, "KVMKVMKVM signature");
	cr_assert_eq(leaf(c, 0x40000000, 0)->eax, 0x40000010, "max hypervisor leaf");
	cr_assert_eq(leaf(c, 0x40000010, 0)->eax, 2994000, "TSC kHz");
	cr_assert_eq(leaf(c, 0x40000010, 0)->ebx, 1000000, "APIC bus kHz");
	free(c);
	struct kvm_cpuid2 *n = kvm_cpuid_for_vcpu(s, 0, 2, 0, false);
	cr_assert_null(leaf(n, 0x40000010, 0), "no timing leaf without a TSC frequency");
	free(n);
	n = kvm_cpuid_for_vcpu(s, 1, 2, 0, true);
	cr_assert(leaf(n, 1, 0)->ecx & (1u << 24), "TSC deadline when KVM emulates it");
	cr_assert_eq(leaf(n, 0x40000000, 0)->eax, 0x40000001);
	free(n);
	free(s);
}
