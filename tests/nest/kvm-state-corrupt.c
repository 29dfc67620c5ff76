/*
 * kvm-state-corrupt.c: kvm-state's hostile blobs. Each is a good blob from the run before with
 * one thing wrong (the header, a length, a count, a tag, a value, a CPU feature); vm_load and
 * vcpu_load must refuse each with the right error and a log line, before anything reaches
 * KVM: the good blob loads into the same VM and vCPU afterwards.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvm-state.h"

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr32(uint8_t *p, uint32_t v)
{
	for (unsigned i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* Where section @p tag's body starts (after the framing), 0 when the blob lacks it. */
static size_t section(const struct blob *b, const char tag[4], uint32_t *len)
{
	size_t pos = 16;
	while (pos + 8 <= b->len) {
		uint32_t l = rd32(b->p + pos + 4);
		if (memcmp(b->p + pos, tag, 4) == 0) {
			*len = l;
			return pos + 8;
		}
		pos += 8 + (size_t)l;
	}
	*len = 0;
	return 0;
}

struct target {
	struct smol_vm *vm; /* either */
	struct smol_vcpu *vcpu;
	const char *name;
};

static int load(const struct target *t, uint32_t arch, const void *buf, size_t len)
{
	return t->vm ? ops->vm_load(t->vm, arch, buf, len)
	             : ops->vcpu_load(t->vcpu, arch, buf, len);
}

static void expect(const struct target *t, const uint8_t *buf, size_t len, int want,
                   const char *what)
{
	int e0 = errors_logged;
	int r = load(t, SMOL_ARCH_X86_64, buf, len);
	check(r == want && errors_logged > e0, "%s refused: %s: %s (%d), logged", t->name, what,
	      strerror(-r), r);
}

/* What holds for both kinds: the header, the framing, truncation anywhere. */
static void header_cases(const struct target *t, const struct blob *b, uint8_t *x)
{
	int e0 = errors_logged;
	int r = load(t, SMOL_ARCH_AARCH64, b->p, b->len);
	check(r == -ENOTSUP && errors_logged > e0, "%s refused: arch aarch64 asked: %d", t->name,
	      r);
	expect(t, NULL, 0, -EINVAL, "no blob");
	memcpy(x, b->p, b->len);
	x[0] ^= 0x20;
	expect(t, x, b->len, -EINVAL, "wrong magic");
	memcpy(x, b->p, b->len);
	wr32(x + 4, 2);
	expect(t, x, b->len, -ENOTSUP, "version 2");
	wr32(x + 4, 0);
	expect(t, x, b->len, -EINVAL, "version 0");
	memcpy(x, b->p, b->len);
	wr32(x + 8, SMOL_ARCH_AARCH64);
	expect(t, x, b->len, -EINVAL, "arch tag aarch64");
	memcpy(x, b->p, b->len);
	x[b->len] = 0;
	expect(t, x, b->len + 1, -EINVAL, "a byte past the end");
	wr32(x + 12, (uint32_t)(b->len + 1 - 16));
	expect(t, x, b->len + 1, -EINVAL, "a byte after the last section");

	const size_t cuts[] = { 1,  15,         16,         17,         23,        24,
		                40, b->len / 3, b->len / 2, b->len - 9, b->len - 1 };
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		char what[80];
		memcpy(x, b->p, b->len);
		snprintf(what, sizeof(what), "truncated to %zu of %zu bytes", cuts[i], b->len);
		expect(t, x, cuts[i], -EINVAL, what);
		if (cuts[i] < 16)
			continue;
		/* the header agreeing: the cut lands in a section */
		wr32(x + 12, (uint32_t)(cuts[i] - 16));
		snprintf(what, sizeof(what), "truncated to %zu bytes, the header fixed up",
		         cuts[i]);
		expect(t, x, cuts[i], -EINVAL, what);
	}
}

/* Sets the u32 at @p off of section @p tag's body to @p v (off -4: the length) and loads. */
static void poke(const struct target *t, const struct blob *b, uint8_t *x, const char *tag,
                 long off, uint32_t v, int want, const char *what)
{
	uint32_t len;
	size_t at = section(b, tag, &len);
	check(at != 0 && (long)len >= off + 4, "%s blob has section %.4s", t->name, tag);
	if (!at)
		return;
	memcpy(x, b->p, b->len);
	wr32(x + at + off, v);
	expect(t, x, b->len, want, what);
}

void check_corrupt_vm(struct smol_vm *vm, struct blob b)
{
	struct target t = { .vm = vm, .name = "VM state" };
	uint8_t *x = malloc(b.len + 1);
	header_cases(&t, &b, x);
	uint32_t len;
	size_t info = section(&b, "INFO", &len);
	poke(&t, &b, x, "INFO", 0, rd32(b.p + info) + 1, -EINVAL, "another vCPU count");
	poke(&t, &b, x, "IOAP", -4, 0xfffffff0u, -EINVAL, "an I/O APIC section of 4 GiB");
	poke(&t, &b, x, "IOAP", -4, 8, -EINVAL, "an I/O APIC section of 8 bytes");
	poke(&t, &b, x, "PIT2", 4, 0x20000, -EINVAL, "a PIT count of 0x20000");
	poke(&t, &b, x, "PIC1", -8, rd32((const uint8_t *)"PIC0"), -EINVAL, "PIC0 twice");
	free(x);
}

/* The CPUID entry (function @p fn, index 0) in a vCPU blob: its offset, or 0. */
static size_t cpuid_entry(const struct blob *b, uint32_t fn)
{
	uint32_t len;
	size_t at = section(b, "CPID", &len);
	if (!at)
		return 0;
	uint32_t n = rd32(b->p + at);
	for (uint32_t i = 0; i < n && 4 + 28 * (size_t)(i + 1) <= len; i++) {
		size_t e = at + 4 + 28 * (size_t)i;
		if (rd32(b->p + e) == fn && rd32(b->p + e + 4) == 0)
			return e;
	}
	return 0;
}

void check_corrupt_vcpu(struct cpu *c, struct blob b)
{
	struct target t = { .vcpu = c->v, .name = "vCPU state" };
	uint8_t *x = malloc(b.len + 1);
	header_cases(&t, &b, x);
	poke(&t, &b, x, "INFO", 0, 7, -EINVAL, "saved from vCPU 7");
	poke(&t, &b, x, "CPID", 0, 0xffffffffu, -EINVAL, "4 G CPUID entries");
	poke(&t, &b, x, "CPID", 0, 0, -EINVAL, "no CPUID entries");
	poke(&t, &b, x, "REGS", -8, rd32((const uint8_t *)"RGES"), -EINVAL, "an unknown section");
	poke(&t, &b, x, "XSAV", 0, 0xffffffffu, -EINVAL, "an XSAVE area of 4 GiB");
	poke(&t, &b, x, "XSAV", 0, 100, -EINVAL, "an XSAVE area of 100 bytes");
	poke(&t, &b, x, "XCRS", 0, 17, -EINVAL, "17 XCRs");
	poke(&t, &b, x, "MSRS", 0, 0x7fffffffu, -EINVAL, "2 G MSRs");
	poke(&t, &b, x, "MSRS", 0, 1, -EINVAL, "an MSR count short of the section");
	poke(&t, &b, x, "EVNT", 20, 0x100, -EINVAL, "unknown event flags");
	poke(&t, &b, x, "MPST", 0, 99, -EINVAL, "MP state 99");
	poke(&t, &b, x, "SREG", 8 * 23 + 2 * 10 + 7 * 8, 2, -EINVAL, "unknown sregs flags");

	/* CPU features this host cannot give: refused as such, naming them */
	size_t l1 = cpuid_entry(&b, 1), l0 = cpuid_entry(&b, 0);
	check(l1 && l0, "vCPU state blob has CPUID leaves 0 and 1");
	if (l1) {
		memcpy(x, b.p, b.len);
		wr32(x + l1 + 20, rd32(x + l1 + 20) | 1u << 7); /* 1.ecx EST: KVM never offers it */
		expect(&t, x, b.len, -ENOTSUP, "CPUID 1 ecx bit 7 (EST), which KVM does not offer");
	}
	if (l0) {
		memcpy(x, b.p, b.len);
		wr32(x + l0 + 16, rd32(x + l0 + 16) ^ 0x01010101u); /* vendor, ebx */
		expect(&t, x, b.len, -ENOTSUP, "a guest saved on another vendor's CPU");
	}
	free(x);
}
