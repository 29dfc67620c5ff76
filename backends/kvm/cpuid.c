/* cpuid.c: per-vCPU CPUID. Linux sizes its topology from these leaves; they must agree with the
 * MADT (one local APIC per vCPU, APIC ID = vCPU index) or it warns and may mis-size its maps.
 * The machine is one package of n cores, one thread per core, on Intel and AMD alike.
 * Also what a guest is shown of its CPU (vm_cpu_info) and whether a saved guest's CPUID fits
 * what this host gives (vcpu_load). */
#include "cpuid.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KVM_CPUID_SIGNATURE 0x40000000u
#define HV_TIMING_LEAF 0x40000010u /* EAX: TSC kHz, EBX: APIC bus kHz */
#define KVM_APIC_BUS_KHZ 1000000u /* KVM's local APIC timer runs at 1 GHz */

/* The bits an APIC ID needs for n values: ceil(log2(n)). */
static uint32_t id_bits(uint32_t n)
{
	uint32_t b = 0;
	while ((1u << b) < n)
		b++;
	return b;
}

static struct kvm_cpuid_entry2 *find(struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn && c->entries[i].index == idx)
			return &c->entries[i];
	return NULL;
}

/* The entry for (fn, idx): the existing one, or a new zeroed one at the end. */
static struct kvm_cpuid_entry2 *entry(struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx,
                                      uint32_t flags)
{
	struct kvm_cpuid_entry2 *e = find(c, fn, idx);
	if (e)
		return e;
	e = &c->entries[c->nent++];
	memset(e, 0, sizeof(*e));
	e->function = fn;
	e->index = idx;
	e->flags = flags;
	return e;
}

static uint32_t max_leaf(struct kvm_cpuid2 *c, uint32_t base)
{
	struct kvm_cpuid_entry2 *e = find(c, base, 0);
	return e ? e->eax : 0;
}

struct kvm_cpuid2 *kvm_cpuid_for_vcpu(const struct kvm_cpuid2 *supported, uint32_t index,
                                      uint32_t n_vcpus, uint32_t tsc_khz, bool tsc_deadline)
{
	const uint32_t extra = 8; /* room for leaves KVM did not list */
	size_t sz = sizeof(*supported) + (supported->nent + extra) * sizeof(supported->entries[0]);
	struct kvm_cpuid2 *c = malloc(sz);
	if (!c)
		return NULL;
	memcpy(c, supported, sizeof(*supported) + supported->nent * sizeof(supported->entries[0]));
	uint32_t n = n_vcpus ? n_vcpus : 1;
	uint32_t shift = id_bits(n);
	/* the 0x8000_00xx topology bits are AMD's (and Hygon's); reserved on Intel */
	struct kvm_cpuid_entry2 *l0 = find(c, 0, 0);
	bool amd = l0 && (l0->ebx == 0x68747541 /* "Auth" */ || l0->ebx == 0x6f677948 /* "Hygo" */);

	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		switch (e->function) {
		case 1:
			e->ebx = (e->ebx & 0x0000ffffu) | (index << 24) |
			         ((n > 255 ? 255 : n) << 16);
			e->ecx |= 1u << 31; /* running under a hypervisor */
			if (n > 1)
				e->edx |= 1u << 28; /* HTT: the logical-processor count is valid */
			else
				e->edx &= ~(1u << 28);
			if (tsc_deadline)
				e->ecx |= 1u << 24;
			break;
		case 4: /* deterministic cache parameters: cores per package - 1 in 31:26 */
			if ((e->eax & 0x1f) !=
			    0) /* a cache level, not the terminating null entry */
				e->eax = (e->eax & 0x03ffffffu) | (((n > 64 ? 64 : n) - 1) << 26);
			break;
		case 0x80000001: /* CmpLegacy: more than one core per package (AMD) */
			if (!amd)
				break;
			if (n > 1)
				e->ecx |= 1u << 1;
			else
				e->ecx &= ~(1u << 1);
			break;
		case 0x80000008: /* AMD: ApicIdCoreIdSize 15:12, number of cores - 1 in 7:0 */
			if (amd)
				e->ecx = (e->ecx & ~0xf0ffu) | (shift << 12) | ((n - 1) & 0xff);
			break;
		case 0x8000001e: /* AMD topology extensions: one core per compute unit, node 0 */
			if (!amd)
				break;
			e->eax = index;
			e->ebx = index & 0xff;
			e->ecx = 0;
			e->edx = 0;
			break;
		default: break;
		}
	}

	/* Extended topology (leaf 0xB): SMT level of one thread, core level of n cores. */
	if (max_leaf(c, 0) >= 0xb) {
		const uint32_t sig = KVM_CPUID_FLAG_SIGNIFCANT_INDEX;
		struct kvm_cpuid_entry2 *e = entry(c, 0xb, 0, sig);
		e->eax = 0;
		e->ebx = 1;
		e->ecx = (1u << 8) | 0;
		e->edx = index;
		e = entry(c, 0xb, 1, sig);
		e->eax = shift;
		e->ebx = n;
		e->ecx = (2u << 8) | 1;
		e->edx = index;
		e = entry(c, 0xb, 2, sig);
		e->eax = 0;
		e->ebx = 0;
		e->ecx = 2;
		e->edx = index;
	}
	/* V2 extended topology (leaf 0x1F), if listed: the same two levels. */
	for (uint32_t i = 0; i < c->nent; i++) {
		struct kvm_cpuid_entry2 *e = &c->entries[i];
		if (e->function != 0x1f)
			continue;
		e->edx = index;
		if (e->index == 0) {
			e->eax = 0;
			e->ebx = 1;
			e->ecx = 1u << 8;
		} else if (e->index == 1) {
			e->eax = shift;
			e->ebx = n;
			e->ecx = (2u << 8) | 1;
		} else {
			e->eax = e->ebx = 0;
			e->ecx = e->index & 0xff;
		}
	}
	/* The hypervisor timing leaf, when KVM knows the TSC frequency. */
	struct kvm_cpuid_entry2 *sig = find(c, KVM_CPUID_SIGNATURE, 0);
	if (tsc_khz && sig) {
		if (sig->eax < HV_TIMING_LEAF)
			sig->eax = HV_TIMING_LEAF;
		struct kvm_cpuid_entry2 *t = entry(c, HV_TIMING_LEAF, 0, 0);
		t->eax = tsc_khz;
		t->ebx = KVM_APIC_BUS_KHZ;
		t->ecx = t->edx = 0;
	}
	return c;
}

/* ---- what the guest is shown, and whether another host can show it the same ------------ */

enum { EAX, EBX, ECX, EDX };

static const struct {
	uint32_t fn, idx;
	uint8_t reg;
	uint32_t runtime; /* bits KVM or the kernel set per vCPU or at run time */
} cpu_words[KVM_CPU_WORDS] = {
	/* OSXSAVE (27, from CR4), hypervisor (31, ours); MONITOR (3) follows MISC_ENABLE */
	{ 1, 0, ECX, (1u << 3) | (1u << 27) | (1u << 31) },
	{ 1, 0, EDX, 1u << 9 }, /* APIC: follows the APIC base MSR's enable bit */
	{ 7, 0, EBX, 0 },
	{ 7, 0, ECX, 1u << 4 }, /* OSPKE (bit 4): from CR4.PKE */
	{ 7, 0, EDX, 0 },
	{ 0x80000001, 0, ECX, 0 },
	{ 0x80000001, 0, EDX, 0 },
	{ 0xd, 1, EAX, 0 },
	{ 0xd, 0, EAX, 0 },
	{ 0xd, 0, EDX, 0 },
	{ 0x80000007, 0, EDX, 0 },
	{ 0x80000008, 0, EBX, 0 },
};

static const char reg_name[4][4] = { "eax", "ebx", "ecx", "edx" };

static const struct kvm_cpuid_entry2 *cfind(const struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx)
{
	for (uint32_t i = 0; i < c->nent; i++)
		if (c->entries[i].function == fn && c->entries[i].index == idx)
			return &c->entries[i];
	return NULL;
}

static uint32_t reg_of(const struct kvm_cpuid_entry2 *e, unsigned reg)
{
	if (!e)
		return 0;
	switch (reg) {
	case EAX: return e->eax;
	case EBX: return e->ebx;
	case ECX: return e->ecx;
	default: return e->edx;
	}
}

bool kvm_cpuid_runtime_bit(unsigned word, unsigned bit)
{
	return word < KVM_CPU_WORDS && bit < 32 && (cpu_words[word].runtime >> bit) & 1;
}

void kvm_cpuid_info(const struct kvm_cpuid2 *c, char vendor[12], uint32_t *signature,
                    uint32_t words[KVM_CPU_WORDS])
{
	const struct kvm_cpuid_entry2 *l0 = cfind(c, 0, 0);
	uint32_t v[3] = { reg_of(l0, EBX), reg_of(l0, EDX), reg_of(l0, ECX) };
	for (unsigned i = 0; i < 12; i++)
		vendor[i] = (char)(v[i / 4] >> (8 * (i % 4)));
	*signature = reg_of(cfind(c, 1, 0), EAX);
	for (unsigned w = 0; w < KVM_CPU_WORDS; w++)
		words[w] = reg_of(cfind(c, cpu_words[w].fn, cpu_words[w].idx), cpu_words[w].reg) &
		           ~cpu_words[w].runtime;
}

int kvm_cpuid_check(const struct kvm_cpuid2 *saved, const struct kvm_cpuid2 *host, char *why,
                    size_t why_len)
{
	char sv[12], hv[12];
	uint32_t ssig, hsig, sw[KVM_CPU_WORDS], hw[KVM_CPU_WORDS];
	kvm_cpuid_info(saved, sv, &ssig, sw);
	kvm_cpuid_info(host, hv, &hsig, hw);
	if (memcmp(sv, hv, sizeof(sv)) != 0) {
		snprintf(why, why_len, "the saved guest ran on a %.12s CPU, this host is %.12s", sv,
		         hv);
		return -1;
	}
	for (unsigned w = 0; w < KVM_CPU_WORDS; w++) {
		uint32_t missing = sw[w] & ~hw[w];
		if (!missing)
			continue;
		unsigned bit = (unsigned)__builtin_ctz(missing);
		snprintf(why, why_len,
		         "CPUID 0x%x.%u %s bit %u (the saved guest has it, this host does not)",
		         cpu_words[w].fn, cpu_words[w].idx, reg_name[cpu_words[w].reg], bit);
		return -1;
	}
	return 0;
}
