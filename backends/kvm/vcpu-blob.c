/* vcpu-blob.c: a vCPU's state (vcpu-state.h) in and out of its blob, field by field.
 *
 * The blob (blob.h framing, magic "KVCP", version 1), sections in this order:
 *   INFO  vCPU index u32, TSC kHz u32 (0: unknown)
 *   CPID  n u32, n x (function, index, flags, eax, ebx, ecx, edx: u32), as KVM_GET_CPUID2
 *   REGS  rax rbx rcx rdx rsi rdi rsp rbp r8-r15 rip rflags: u64
 *   SREG  cs ds es fs gs ss tr ldt (base u64, limit u32, selector u16, type present dpl db s l
 *         g avl unusable: u8), gdt idt (base u64, limit u16), cr0 cr2 cr3 cr4 cr8 efer
 *         apic_base u64, flags u64 (1: pdptrs valid), pdptrs 4 x u64, interrupt bitmap 4 x u64
 *   XSAV  size u32, the XSAVE area (KVM's uabi layout, standard format) of that many bytes
 *   XCRS  n u32, flags u32, n x (xcr u32, value u64)
 *   DBRG  db0-db3 dr6 dr7 flags: u64
 *   LAPC  the 1024-byte local APIC register page (KVM_GET_LAPIC)
 *   MSRS  n u32, n x (index u32, value u64): MSR_IA32_TSC first, MSR_IA32_TSCDEADLINE last
 *   EVNT  exception (injected nr has_error_code pending: u8, error_code u32), interrupt
 *         (injected nr soft shadow: u8), nmi (injected pending masked pad: u8), sipi_vector
 *         u32, flags u32, smi (smm pending smm_inside_nmi latched_init: u8), triple_fault u8,
 *         exception_has_payload u8, exception_payload u64
 *   MPST  mp_state u32
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vcpu-state.h"

void vstate_free(struct vstate *s)
{
	free(s->cpuid);
	free(s->xsave);
	free(s->msrs);
}

/* ---- encoding -------------------------------------------------------------------------- */

static void put_seg(struct blob_w *w, const struct kvm_segment *g)
{
	bw_u64(w, g->base);
	bw_u32(w, g->limit);
	bw_u16(w, g->selector);
	const uint8_t b[9] = { g->type, g->present, g->dpl, g->db,      g->s,
		               g->l,    g->g,       g->avl, g->unusable };
	bw_bytes(w, b, sizeof(b));
}

void vstate_put(struct blob_w *w, const struct vstate *s)
{
	size_t at = bw_begin(w, BLOB_TAG('I', 'N', 'F', 'O'));
	bw_u32(w, s->index);
	bw_u32(w, s->tsc_khz);
	bw_end(w, at);

	at = bw_begin(w, BLOB_TAG('C', 'P', 'I', 'D'));
	bw_u32(w, s->cpuid->nent);
	for (uint32_t i = 0; i < s->cpuid->nent; i++) {
		const struct kvm_cpuid_entry2 *e = &s->cpuid->entries[i];
		const uint32_t f[7] = { e->function, e->index, e->flags, e->eax,
			                e->ebx,      e->ecx,   e->edx };
		for (unsigned k = 0; k < 7; k++)
			bw_u32(w, f[k]);
	}
	bw_end(w, at);

	const struct kvm_regs *g = &s->regs;
	const uint64_t regs[18] = { g->rax, g->rbx, g->rcx, g->rdx, g->rsi, g->rdi,
		                    g->rsp, g->rbp, g->r8,  g->r9,  g->r10, g->r11,
		                    g->r12, g->r13, g->r14, g->r15, g->rip, g->rflags };
	at = bw_begin(w, BLOB_TAG('R', 'E', 'G', 'S'));
	for (unsigned k = 0; k < 18; k++)
		bw_u64(w, regs[k]);
	bw_end(w, at);

	const struct kvm_sregs2 *sr = &s->sregs;
	at = bw_begin(w, BLOB_TAG('S', 'R', 'E', 'G'));
	const struct kvm_segment *segs[8] = { &sr->cs, &sr->ds, &sr->es, &sr->fs,
		                              &sr->gs, &sr->ss, &sr->tr, &sr->ldt };
	for (unsigned k = 0; k < 8; k++)
		put_seg(w, segs[k]);
	bw_u64(w, sr->gdt.base);
	bw_u16(w, sr->gdt.limit);
	bw_u64(w, sr->idt.base);
	bw_u16(w, sr->idt.limit);
	const uint64_t crs[7] = { sr->cr0, sr->cr2,  sr->cr3,      sr->cr4,
		                  sr->cr8, sr->efer, sr->apic_base };
	for (unsigned k = 0; k < 7; k++)
		bw_u64(w, crs[k]);
	bw_u64(w, sr->flags);
	for (unsigned k = 0; k < 4; k++)
		bw_u64(w, sr->pdptrs[k]);
	for (unsigned k = 0; k < 4; k++)
		bw_u64(w, s->irq_bitmap[k]);
	bw_end(w, at);

	at = bw_begin(w, BLOB_TAG('X', 'S', 'A', 'V'));
	bw_u32(w, s->xsave_size);
	bw_bytes(w, s->xsave, s->xsave_size);
	bw_end(w, at);

	at = bw_begin(w, BLOB_TAG('X', 'C', 'R', 'S'));
	bw_u32(w, s->xcrs.nr_xcrs);
	bw_u32(w, s->xcrs.flags);
	for (uint32_t i = 0; i < s->xcrs.nr_xcrs && i < KVM_MAX_XCRS; i++) {
		bw_u32(w, s->xcrs.xcrs[i].xcr);
		bw_u64(w, s->xcrs.xcrs[i].value);
	}
	bw_end(w, at);

	at = bw_begin(w, BLOB_TAG('D', 'B', 'R', 'G'));
	for (unsigned k = 0; k < 4; k++)
		bw_u64(w, s->dbg.db[k]);
	bw_u64(w, s->dbg.dr6);
	bw_u64(w, s->dbg.dr7);
	bw_u64(w, s->dbg.flags);
	bw_end(w, at);

	at = bw_begin(w, BLOB_TAG('L', 'A', 'P', 'C'));
	bw_bytes(w, s->lapic.regs, sizeof(s->lapic.regs));
	bw_end(w, at);

	at = bw_begin(w, BLOB_TAG('M', 'S', 'R', 'S'));
	bw_u32(w, s->n_msrs);
	for (uint32_t i = 0; i < s->n_msrs; i++) {
		bw_u32(w, s->msrs[i].index);
		bw_u64(w, s->msrs[i].data);
	}
	bw_end(w, at);

	const struct kvm_vcpu_events *ev = &s->ev;
	at = bw_begin(w, BLOB_TAG('E', 'V', 'N', 'T'));
	const uint8_t b1[4] = { ev->exception.injected, ev->exception.nr,
		                ev->exception.has_error_code, ev->exception.pending };
	bw_bytes(w, b1, 4);
	bw_u32(w, ev->exception.error_code);
	const uint8_t b2[8] = { ev->interrupt.injected, ev->interrupt.nr, ev->interrupt.soft,
		                ev->interrupt.shadow,   ev->nmi.injected, ev->nmi.pending,
		                ev->nmi.masked,         ev->nmi.pad };
	bw_bytes(w, b2, 8);
	bw_u32(w, ev->sipi_vector);
	bw_u32(w, ev->flags);
	const uint8_t b3[6] = {
		ev->smi.smm,          ev->smi.pending,          ev->smi.smm_inside_nmi,
		ev->smi.latched_init, ev->triple_fault.pending, ev->exception_has_payload
	};
	bw_bytes(w, b3, 6);
	bw_u64(w, ev->exception_payload);
	bw_end(w, at);

	at = bw_begin(w, BLOB_TAG('M', 'P', 'S', 'T'));
	bw_u32(w, s->mp.mp_state);
	bw_end(w, at);
}

/* ---- decoding: every field checked before anything reaches KVM ------------------------- */

static void get_seg(struct blob_r *r, struct kvm_segment *g)
{
	g->base = br_u64(r);
	g->limit = br_u32(r);
	g->selector = br_u16(r);
	uint8_t b[9];
	br_bytes(r, b, sizeof(b));
	g->type = b[0], g->present = b[1], g->dpl = b[2], g->db = b[3], g->s = b[4];
	g->l = b[5], g->g = b[6], g->avl = b[7], g->unusable = b[8];
}

static bool get_info_cpuid(struct blob_r *r, struct vstate *s)
{
	struct blob_r c;
	if (!br_section(r, BLOB_TAG('I', 'N', 'F', 'O'), &c))
		return false;
	s->index = br_u32(&c);
	s->tsc_khz = br_u32(&c);
	if (!br_done(&c) || !br_section(r, BLOB_TAG('C', 'P', 'I', 'D'), &c))
		return false;
	uint32_t n = br_u32(&c);
	if (c.bad || n == 0 || n > MAX_CPUID || (uint64_t)n * 28 != br_left(&c)) {
		br_fail(&c, "%u CPUID entries in %zu bytes (1 to %u entries of 28 bytes)", n,
		        br_left(&c), MAX_CPUID);
		return false;
	}
	s->cpuid = calloc(1, sizeof(*s->cpuid) + n * sizeof(s->cpuid->entries[0]));
	if (!s->cpuid) {
		br_fail(&c, "out of memory");
		return false;
	}
	s->cpuid->nent = n;
	for (uint32_t i = 0; i < n; i++) {
		struct kvm_cpuid_entry2 *e = &s->cpuid->entries[i];
		e->function = br_u32(&c), e->index = br_u32(&c), e->flags = br_u32(&c);
		e->eax = br_u32(&c), e->ebx = br_u32(&c), e->ecx = br_u32(&c), e->edx = br_u32(&c);
	}
	return br_done(&c);
}

static bool get_regs(struct blob_r *r, struct vstate *s)
{
	struct blob_r c;
	if (!br_section(r, BLOB_TAG('R', 'E', 'G', 'S'), &c))
		return false;
	struct kvm_regs *g = &s->regs;
	__u64 *regs[18] = { &g->rax, &g->rbx, &g->rcx, &g->rdx, &g->rsi, &g->rdi,
		            &g->rsp, &g->rbp, &g->r8,  &g->r9,  &g->r10, &g->r11,
		            &g->r12, &g->r13, &g->r14, &g->r15, &g->rip, &g->rflags };
	for (unsigned k = 0; k < 18; k++)
		*regs[k] = br_u64(&c);
	if (!br_done(&c) || !br_section(r, BLOB_TAG('S', 'R', 'E', 'G'), &c))
		return false;
	struct kvm_sregs2 *sr = &s->sregs;
	struct kvm_segment *segs[8] = { &sr->cs, &sr->ds, &sr->es, &sr->fs,
		                        &sr->gs, &sr->ss, &sr->tr, &sr->ldt };
	for (unsigned k = 0; k < 8; k++)
		get_seg(&c, segs[k]);
	sr->gdt.base = br_u64(&c);
	sr->gdt.limit = br_u16(&c);
	sr->idt.base = br_u64(&c);
	sr->idt.limit = br_u16(&c);
	__u64 *crs[7] = { &sr->cr0, &sr->cr2,  &sr->cr3,      &sr->cr4,
		          &sr->cr8, &sr->efer, &sr->apic_base };
	for (unsigned k = 0; k < 7; k++)
		*crs[k] = br_u64(&c);
	sr->flags = br_u64(&c);
	for (unsigned k = 0; k < 4; k++)
		sr->pdptrs[k] = br_u64(&c);
	for (unsigned k = 0; k < 4; k++)
		s->irq_bitmap[k] = br_u64(&c);
	if (!c.bad && (sr->flags & ~(uint64_t)KVM_SREGS2_FLAGS_PDPTRS_VALID)) {
		br_fail(&c, "unknown flags 0x%llx", (unsigned long long)sr->flags);
		return false;
	}
	return br_done(&c);
}

static bool get_fpu_debug(struct blob_r *r, struct vstate *s)
{
	struct blob_r c;
	if (!br_section(r, BLOB_TAG('X', 'S', 'A', 'V'), &c))
		return false;
	s->xsave_size = br_u32(&c);
	if (c.bad || s->xsave_size < MIN_XSAVE || s->xsave_size > MAX_XSAVE ||
	    s->xsave_size != br_left(&c)) {
		br_fail(&c, "an XSAVE area of %u bytes in %zu (%u to %u)", s->xsave_size,
		        br_left(&c), MIN_XSAVE, MAX_XSAVE);
		return false;
	}
	s->xsave = malloc(s->xsave_size);
	if (!s->xsave) {
		br_fail(&c, "out of memory");
		return false;
	}
	br_bytes(&c, s->xsave, s->xsave_size);
	if (!br_done(&c) || !br_section(r, BLOB_TAG('X', 'C', 'R', 'S'), &c))
		return false;
	s->xcrs.nr_xcrs = br_u32(&c);
	s->xcrs.flags = br_u32(&c);
	if (c.bad || s->xcrs.nr_xcrs > KVM_MAX_XCRS ||
	    (uint64_t)s->xcrs.nr_xcrs * 12 != br_left(&c)) {
		br_fail(&c, "%u XCRs in %zu bytes (at most %u of 12 bytes)", s->xcrs.nr_xcrs,
		        br_left(&c), KVM_MAX_XCRS);
		return false;
	}
	for (uint32_t i = 0; i < s->xcrs.nr_xcrs; i++) {
		s->xcrs.xcrs[i].xcr = br_u32(&c);
		s->xcrs.xcrs[i].value = br_u64(&c);
	}
	if (!br_done(&c) || !br_section(r, BLOB_TAG('D', 'B', 'R', 'G'), &c))
		return false;
	for (unsigned k = 0; k < 4; k++)
		s->dbg.db[k] = br_u64(&c);
	s->dbg.dr6 = br_u64(&c);
	s->dbg.dr7 = br_u64(&c);
	s->dbg.flags = br_u64(&c);
	if (!br_done(&c) || !br_section(r, BLOB_TAG('L', 'A', 'P', 'C'), &c))
		return false;
	br_bytes(&c, s->lapic.regs, sizeof(s->lapic.regs));
	return br_done(&c);
}

static bool get_msrs_events(struct blob_r *r, struct vstate *s)
{
	struct blob_r c;
	if (!br_section(r, BLOB_TAG('M', 'S', 'R', 'S'), &c))
		return false;
	s->n_msrs = br_u32(&c);
	if (c.bad || s->n_msrs > MAX_MSRS || (uint64_t)s->n_msrs * 12 != br_left(&c)) {
		br_fail(&c, "%u MSRs in %zu bytes (at most %u of 12 bytes)", s->n_msrs, br_left(&c),
		        MAX_MSRS);
		return false;
	}
	s->msrs = calloc(s->n_msrs ? s->n_msrs : 1, sizeof(*s->msrs));
	if (!s->msrs) {
		br_fail(&c, "out of memory");
		return false;
	}
	for (uint32_t i = 0; i < s->n_msrs; i++) {
		s->msrs[i].index = br_u32(&c);
		s->msrs[i].data = br_u64(&c);
	}
	if (!br_done(&c) || !br_section(r, BLOB_TAG('E', 'V', 'N', 'T'), &c))
		return false;
	struct kvm_vcpu_events *ev = &s->ev;
	uint8_t b[8];
	br_bytes(&c, b, 4);
	ev->exception.injected = b[0], ev->exception.nr = b[1];
	ev->exception.has_error_code = b[2], ev->exception.pending = b[3];
	ev->exception.error_code = br_u32(&c);
	br_bytes(&c, b, 8);
	ev->interrupt.injected = b[0], ev->interrupt.nr = b[1], ev->interrupt.soft = b[2];
	ev->interrupt.shadow = b[3], ev->nmi.injected = b[4], ev->nmi.pending = b[5];
	ev->nmi.masked = b[6], ev->nmi.pad = b[7];
	ev->sipi_vector = br_u32(&c);
	ev->flags = br_u32(&c);
	br_bytes(&c, b, 6);
	ev->smi.smm = b[0], ev->smi.pending = b[1], ev->smi.smm_inside_nmi = b[2];
	ev->smi.latched_init = b[3], ev->triple_fault.pending = b[4];
	ev->exception_has_payload = b[5];
	ev->exception_payload = br_u64(&c);
	if (!c.bad && (ev->flags & ~EVENT_FLAGS)) {
		br_fail(&c, "unknown event flags 0x%x", ev->flags);
		return false;
	}
	if (!br_done(&c) || !br_section(r, BLOB_TAG('M', 'P', 'S', 'T'), &c))
		return false;
	s->mp.mp_state = br_u32(&c);
	if (!c.bad && s->mp.mp_state > KVM_MP_STATE_AP_RESET_HOLD) {
		br_fail(&c, "unknown MP state %u", s->mp.mp_state);
		return false;
	}
	return br_done(&c);
}

int vstate_decode(const struct smol_backend_host *host, uint32_t index, const void *buf, size_t len,
                  struct vstate *s)
{
	char what[48];
	snprintf(what, sizeof(what), "vCPU %u state", index);
	struct blob_r r;
	int ver = br_open(&r, buf, len, VCPU_MAGIC, VCPU_VERSION, host, what);
	if (ver < 0)
		return ver;
	if (!get_info_cpuid(&r, s) || !get_regs(&r, s) || !get_fpu_debug(&r, s) ||
	    !get_msrs_events(&r, s) || !br_end(&r))
		return -EINVAL;
	if (s->index != index) {
		br_fail(&r, "saved from vCPU %u", s->index);
		return -EINVAL;
	}
	return 0;
}
