/* The KVM backend's per-vCPU CPUID (backends/kvm/cpuid.c): topology leaves agree with the
 * vCPU count and index, the paravirtual leaves pass through, the timing leaf appears; what a
 * guest is shown (smol_x86_cpu_info's words) and whether a saved guest's CPUID fits a host. */
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

/* A table with every leaf smol_x86_cpu_info reads, each register a distinct pattern. */
static struct kvm_cpuid2 *feature_table(void)
{
	struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + 16 * sizeof(c->entries[0]));
	const uint32_t sig = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
	struct kvm_cpuid_entry2 e[] = {
		{ .function = 0,
		  .eax = 0xd,
		  .ebx = 0x68747541,
		  .edx = 0x69746e65,
		  .ecx = 0x444d4163 },
		{ .function = 1,
		  .eax = 0x00a20f12,
		  .ebx = 0x01020800,
		  .ecx = 0xfed83203 | 0x88000008u,
		  .edx = 0x178bfbff },
		{ .function = 7,
		  .index = 0,
		  .flags = sig,
		  .ebx = 0x219c97a9,
		  .ecx = 0x0040069c,
		  .edx = 0x00000010 },
		{ .function = 0xd, .index = 0, .flags = sig, .eax = 0x207, .edx = 0x1 },
		{ .function = 0xd, .index = 1, .flags = sig, .eax = 0xf },
		{ .function = 0x80000001, .ecx = 0x75c237ff, .edx = 0x2fd3fbff },
		{ .function = 0x80000007, .edx = 0x100 },
		{ .function = 0x80000008, .eax = 0x3030, .ebx = 0x111ef657 },
	};
	memcpy(c->entries, e, sizeof(e));
	c->nent = sizeof(e) / sizeof(e[0]);
	return c;
}

static struct kvm_cpuid_entry2 *mleaf(struct kvm_cpuid2 *c, uint32_t fn, uint32_t i)
{
	return (struct kvm_cpuid_entry2 *)leaf(c, fn, i);
}

Test(kvm_cpuid, info_words_in_sdk_order_without_runtime_bits)
{
	struct kvm_cpuid2 *c = feature_table();
	char vendor[12];
	uint32_t sig, w[KVM_CPU_WORDS];
	kvm_cpuid_info(c, vendor, &sig, w);
	cr_assert_arr_eq(vendor, "AuthenticAMD", 12);
	cr_assert_eq(sig, 0x00a20f12);
	/* 1.ecx: MONITOR (3), OSXSAVE (27) and hypervisor (31) dropped; 1.edx: APIC (9) */
	cr_assert_eq(w[0], 0x76d83203u & ~(1u << 3));
	cr_assert_eq(w[1], 0x178bfbff & ~(1u << 9));
	cr_assert_eq(w[2], 0x219c97a9);
	cr_assert_eq(w[3], 0x0040069c & ~(1u << 4),
	             "OSPKE (7.0 ecx bit 4) dropped, RDPID (22) kept");
	cr_assert_eq(w[4], 0x10);
	cr_assert_eq(w[5], 0x75c237ff);
	cr_assert_eq(w[6], 0x2fd3fbff);
	cr_assert_eq(w[7], 0xf, "0xd.1 eax");
	cr_assert_eq(w[8], 0x207, "0xd.0 eax");
	cr_assert_eq(w[9], 0x1, "0xd.0 edx");
	cr_assert_eq(w[10], 0x100);
	cr_assert_eq(w[11], 0x111ef657);
	cr_assert(kvm_cpuid_runtime_bit(0, 27) && kvm_cpuid_runtime_bit(3, 4) &&
	          !kvm_cpuid_runtime_bit(3, 22));
	cr_assert_not(kvm_cpuid_runtime_bit(0, 24) || kvm_cpuid_runtime_bit(12, 0));
	/* a leaf the table lacks reads as zero */
	c->nent = 2;
	kvm_cpuid_info(c, vendor, &sig, w);
	cr_assert_eq(w[2] | w[8] | w[11], 0);
	free(c);
}

Test(kvm_cpuid, check_refuses_only_features_the_host_lacks)
{
	struct kvm_cpuid2 *saved = feature_table(), *host = feature_table();
	char why[160] = "";
	cr_assert_eq(kvm_cpuid_check(saved, host, why, sizeof(why)), 0);
	/* the host has more: fine */
	mleaf(host, 7, 0)->ebx |= 1u << 30;
	cr_assert_eq(kvm_cpuid_check(saved, host, why, sizeof(why)), 0);
	/* OSPKE is the guest's CR4.PKE, not a host feature: a Linux guest that set it restores */
	mleaf(saved, 7, 0)->ecx |= 1u << 4;
	mleaf(host, 7, 0)->ecx &= ~(1u << 4);
	cr_assert_eq(kvm_cpuid_check(saved, host, why, sizeof(why)), 0, "%s", why);
	/* bits KVM sets by itself differ: fine */
	mleaf(host, 1, 0)->ecx &= ~((1u << 27) | (1u << 31) | (1u << 3));
	mleaf(host, 1, 0)->ebx = 0x05000800;
	cr_assert_eq(kvm_cpuid_check(saved, host, why, sizeof(why)), 0);
	/* the saved guest has AVX2 (7.0 ebx bit 5), the host not */
	mleaf(host, 7, 0)->ebx &= ~(1u << 5);
	cr_assert_eq(kvm_cpuid_check(saved, host, why, sizeof(why)), -1);
	cr_assert_str_eq(why, "CPUID 0x7.0 ebx bit 5 (the saved guest has it, this host does not)");
	mleaf(host, 7, 0)->ebx |= 1u << 5;
	/* an XCR0 component (AVX state, 0xd.0 eax bit 2) */
	mleaf(host, 0xd, 0)->eax = 0x3;
	cr_assert_eq(kvm_cpuid_check(saved, host, why, sizeof(why)), -1);
	cr_assert(strstr(why, "0xd.0 eax bit 2"), "%s", why);
	mleaf(host, 0xd, 0)->eax = 0x207;
	/* a leaf the host does not list at all */
	mleaf(host, 0x80000007, 0)->function = 0x80000009;
	cr_assert_eq(kvm_cpuid_check(saved, host, why, sizeof(why)), -1);
	cr_assert(strstr(why, "0x80000007.0 edx bit 8"), "%s", why);
	mleaf(host, 0x80000009, 0)->function = 0x80000007;
	/* another vendor */
	mleaf(host, 0, 0)->ebx = 0x756e6547, mleaf(host, 0, 0)->edx = 0x49656e69;
	mleaf(host, 0, 0)->ecx = 0x6c65746e;
	cr_assert_eq(kvm_cpuid_check(saved, host, why, sizeof(why)), -1);
	cr_assert(strstr(why, "AuthenticAMD") && strstr(why, "GenuineIntel"), "%s", why);
	free(saved);
	free(host);
}

Test(kvm_cpuid, check_between_vcpu_tables)
{
	struct kvm_cpuid2 *s = supported();
	struct kvm_cpuid2 *v0 = kvm_cpuid_for_vcpu(s, 0, 2, 2994000, true);
	struct kvm_cpuid2 *v1 = kvm_cpuid_for_vcpu(s, 1, 2, 1000000, true);
	struct kvm_cpuid2 *nodl = kvm_cpuid_for_vcpu(s, 0, 2, 2994000, false);
	char why[160];
	cr_assert_eq(kvm_cpuid_check(v1, v0, why, sizeof(why)), 0, "APIC ID and TSC kHz differ");
	cr_assert_eq(kvm_cpuid_check(v0, nodl, why, sizeof(why)), -1);
	cr_assert_str_eq(why,
	                 "CPUID 0x1.0 ecx bit 24 (the saved guest has it, this host does not)");
	cr_assert_eq(kvm_cpuid_check(nodl, v0, why, sizeof(why)), 0);
	free(v0);
	free(v1);
	free(nodl);
	free(s);
}
