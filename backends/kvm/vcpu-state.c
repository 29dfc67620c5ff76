/* vcpu-state.c: a vCPU's whole state (vcpu_save, vcpu_load; the blob is vcpu-blob.c's), and
 * telling the guest it was paused (vcpu_was_paused: KVM_KVMCLOCK_CTRL).
 *
 * Restore order (each step needs the ones before it): CPUID (CR4, XSAVE and MSR checks look at
 * it), the TSC frequency, sregs (the APIC base: xAPIC/x2APIC mode), regs, XSAVE, XCRs, debug
 * registers, the LAPIC (before the MSRs: a TSC deadline written while the LAPIC is not in
 * TSC-deadline mode is dropped), the MSRs (the TSC before TSC_DEADLINE), vCPU events, MP state.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "cpuid.h"
#include "kvm.h"
#include "vcpu-state.h"

static int vio(struct smol_vcpu *v, unsigned long req, void *arg, const char *name)
{
	if (ioctl(v->fd, req, arg) < 0) {
		int e = errno;
		LOG(v->vm, SMOL_LOG_ERROR, "vCPU %u: %s: %s", v->index, name, strerror(e));
		return -e;
	}
	return 0;
}
#define VIO(v, req, arg) vio((v), (req), (arg), #req)

static bool has_cap(struct smol_vm *vm, int cap)
{
	return ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, cap) > 0;
}

/* The XSAVE buffer this VM's KVM reads and writes: KVM_CAP_XSAVE2's size when larger. */
static uint32_t host_xsave_size(struct smol_vm *vm)
{
	int n = ioctl(vm->vm_fd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
	return n > (int)sizeof(struct kvm_xsave) ? (uint32_t)n : (uint32_t)sizeof(struct kvm_xsave);
}

/*
 * KVM_GET_MSRS or KVM_SET_MSRS over @p n entries in batches KVM accepts: the number done
 * (fewer than @p n: entry [done] failed), or -errno.
 */
static int msr_io(struct smol_vcpu *v, unsigned long req, struct kvm_msr_entry *e, uint32_t n)
{
	uint64_t raw[(sizeof(struct kvm_msrs) + MSR_BATCH * sizeof(struct kvm_msr_entry)) / 8];
	struct kvm_msrs *m = (struct kvm_msrs *)raw;
	uint32_t done = 0;
	while (done < n) {
		uint32_t k = n - done < MSR_BATCH ? n - done : MSR_BATCH;
		memset(m, 0, sizeof(*m));
		m->nmsrs = k;
		memcpy(m->entries, e + done, k * sizeof(*e));
		int r = ioctl(v->fd, req, m);
		if (r < 0)
			return -errno;
		memcpy(e + done, m->entries, (size_t)r * sizeof(*e));
		done += (uint32_t)r;
		if ((uint32_t)r < k)
			break;
	}
	return (int)done;
}

/* Once per VM: the MSRs KVM lists that this vCPU can read, TSC first, TSC deadline last. */
static int probe_msrs(struct smol_vcpu *v)
{
	struct smol_vm *vm = v->vm;
	if (vm->msrs)
		return 0;
	struct kvm_msr_list head = { .nmsrs = 0 };
	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, &head) < 0 && errno != E2BIG) {
		int e = errno;
		LOG(vm, SMOL_LOG_ERROR, "KVM_GET_MSR_INDEX_LIST: %s", strerror(e));
		return -e;
	}
	uint32_t n = head.nmsrs < MAX_MSRS ? head.nmsrs : MAX_MSRS;
	struct kvm_msr_list *list = calloc(1, sizeof(*list) + n * sizeof(list->indices[0]));
	uint32_t *cand = malloc((n + 2) * sizeof(*cand));
	struct kvm_msr_entry *e = calloc(n + 2, sizeof(*e));
	int r = -ENOMEM;
	if (!list || !cand || !e)
		goto out;
	list->nmsrs = n;
	if (ioctl(vm->kvm_fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
		r = -errno;
		LOG(vm, SMOL_LOG_ERROR, "KVM_GET_MSR_INDEX_LIST (%u MSRs): %s", n, strerror(-r));
		goto out;
	}
	uint32_t k = 0;
	cand[k++] = MSR_IA32_TSC;
	for (uint32_t i = 0; i < list->nmsrs && i < n; i++)
		if (list->indices[i] != MSR_IA32_TSC && list->indices[i] != MSR_IA32_TSCDEADLINE)
			cand[k++] = list->indices[i];
	cand[k++] = MSR_IA32_TSCDEADLINE;
	/* KVM_GET_MSRS stops at the first MSR it cannot read: drop it and go on after it */
	uint32_t kept = 0, pos = 0;
	while (pos < k) {
		for (uint32_t j = pos; j < k; j++)
			e[j - pos] = (struct kvm_msr_entry){ .index = cand[j] };
		r = msr_io(v, KVM_GET_MSRS, e, k - pos);
		if (r < 0) {
			LOG(vm, SMOL_LOG_ERROR, "vCPU %u: KVM_GET_MSRS: %s", v->index,
			    strerror(-r));
			goto out;
		}
		for (uint32_t j = 0; j < (uint32_t)r; j++)
			cand[kept++] = cand[pos + j];
		pos += (uint32_t)r;
		if (pos < k) {
			LOG(vm, SMOL_LOG_DEBUG, "MSR 0x%x is listed but not readable: not saved",
			    cand[pos]);
			pos++;
		}
	}
	if (kept == 0 || cand[0] != MSR_IA32_TSC) {
		LOG(vm, SMOL_LOG_ERROR, "vCPU %u: KVM cannot read MSR_IA32_TSC", v->index);
		r = -ENOTSUP;
		goto out;
	}
	vm->msrs = cand;
	vm->n_msrs = kept;
	cand = NULL;
	r = 0;
out:
	free(list);
	free(cand);
	free(e);
	return r;
}

static struct kvm_cpuid2 *get_cpuid(struct smol_vcpu *v)
{
	for (uint32_t n = 64; n <= MAX_CPUID; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + n * sizeof(c->entries[0]));
		if (!c)
			return NULL;
		c->nent = n;
		if (ioctl(v->fd, KVM_GET_CPUID2, c) == 0)
			return c;
		int e = errno;
		free(c);
		if (e != E2BIG) {
			LOG(v->vm, SMOL_LOG_ERROR, "vCPU %u: KVM_GET_CPUID2: %s", v->index,
			    strerror(e));
			return NULL;
		}
	}
	LOG(v->vm, SMOL_LOG_ERROR, "vCPU %u: KVM_GET_CPUID2: more than %u entries", v->index,
	    MAX_CPUID);
	return NULL;
}

/* struct kvm_sregs and kvm_sregs2 share their first fields. */
#define SREGS_COMMON(to, from)                                                                     \
	do {                                                                                       \
		(to)->cs = (from)->cs, (to)->ds = (from)->ds, (to)->es = (from)->es;               \
		(to)->fs = (from)->fs, (to)->gs = (from)->gs, (to)->ss = (from)->ss;               \
		(to)->tr = (from)->tr, (to)->ldt = (from)->ldt;                                    \
		(to)->gdt = (from)->gdt, (to)->idt = (from)->idt;                                  \
		(to)->cr0 = (from)->cr0, (to)->cr2 = (from)->cr2, (to)->cr3 = (from)->cr3;         \
		(to)->cr4 = (from)->cr4, (to)->cr8 = (from)->cr8, (to)->efer = (from)->efer;       \
		(to)->apic_base = (from)->apic_base;                                               \
	} while (0)

static int get_state(struct smol_vcpu *v, struct vstate *s)
{
	struct smol_vm *vm = v->vm;
	int r, khz = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);
	s->index = v->index;
	s->tsc_khz = khz > 0 ? (uint32_t)khz : 0;
	s->cpuid = get_cpuid(v);
	if (!s->cpuid)
		return -ENOMEM;
	if ((r = VIO(v, KVM_GET_REGS, &s->regs)))
		return r;
	if (has_cap(vm, KVM_CAP_SREGS2)) {
		if ((r = VIO(v, KVM_GET_SREGS2, &s->sregs)))
			return r;
	} else {
		struct kvm_sregs o;
		if ((r = VIO(v, KVM_GET_SREGS, &o)))
			return r;
		SREGS_COMMON(&s->sregs, &o);
		memcpy(s->irq_bitmap, o.interrupt_bitmap, sizeof(s->irq_bitmap));
	}
	s->xsave_size = host_xsave_size(vm);
	s->xsave = calloc(1, s->xsave_size);
	if (!s->xsave)
		return -ENOMEM;
	if (s->xsave_size > sizeof(struct kvm_xsave))
		r = VIO(v, KVM_GET_XSAVE2, s->xsave);
	else
		r = VIO(v, KVM_GET_XSAVE, s->xsave);
	if (r || (r = VIO(v, KVM_GET_XCRS, &s->xcrs)) || (r = VIO(v, KVM_GET_DEBUGREGS, &s->dbg)) ||
	    (r = VIO(v, KVM_GET_LAPIC, &s->lapic)))
		return r;
	if ((r = probe_msrs(v)))
		return r;
	s->n_msrs = vm->n_msrs;
	s->msrs = calloc(s->n_msrs, sizeof(*s->msrs));
	if (!s->msrs)
		return -ENOMEM;
	for (uint32_t i = 0; i < s->n_msrs; i++)
		s->msrs[i].index = vm->msrs[i];
	r = msr_io(v, KVM_GET_MSRS, s->msrs, s->n_msrs);
	if (r != (int)s->n_msrs) {
		LOG(vm, SMOL_LOG_ERROR, "vCPU %u: KVM_GET_MSRS: %s", v->index,
		    r < 0 ? strerror(-r) : "an MSR it read before is unreadable now");
		return r < 0 ? r : -EIO;
	}
	if ((r = VIO(v, KVM_GET_VCPU_EVENTS, &s->ev)) || (r = VIO(v, KVM_GET_MP_STATE, &s->mp)))
		return r;
	return 0;
}

int kvm_vcpu_save(struct smol_vcpu *v, uint32_t arch, void *buf, size_t cap, size_t *len)
{
	if (arch != SMOL_ARCH_X86_64) {
		LOG(v->vm, SMOL_LOG_ERROR, "vCPU %u: state for arch %u asked of the x86_64 backend",
		    v->index, arch);
		return -ENOTSUP;
	}
	struct vstate s;
	memset(&s, 0, sizeof(s));
	int r = get_state(v, &s);
	if (r == 0) {
		struct blob_w w;
		bw_init(&w, buf, cap, VCPU_MAGIC, VCPU_VERSION);
		vstate_put(&w, &s);
		bw_finish(&w);
		*len = w.pos;
		r = w.pos > cap || !buf ? -ENOSPC : 0;
	}
	vstate_free(&s);
	return r;
}

/* ---- applying ---------------------------------------------------------------------------- */

/* Whether this host runs the guest with the TSC rate it was saved with, or can. */
static int set_tsc_khz(struct smol_vcpu *v, uint32_t khz)
{
	int now = ioctl(v->fd, KVM_GET_TSC_KHZ, 0);
	if (khz == 0 || now <= 0)
		return 0;
	uint64_t diff = (uint64_t)(now > (int)khz ? (uint32_t)now - khz : khz - (uint32_t)now);
	if (diff * 1000000 <= (uint64_t)khz * TSC_TOLERANCE_PPM)
		return 0;
	if (!has_cap(v->vm, KVM_CAP_TSC_CONTROL) ||
	    ioctl(v->fd, KVM_SET_TSC_KHZ, (unsigned long)khz) < 0) {
		LOG(v->vm, SMOL_LOG_ERROR,
		    "vCPU %u: the guest's TSC ran at %u kHz, this host's at %d kHz, and KVM cannot "
		    "scale it (KVM_SET_TSC_KHZ: %s)",
		    v->index, khz, now,
		    has_cap(v->vm, KVM_CAP_TSC_CONTROL) ? strerror(errno)
		                                        : "no KVM_CAP_TSC_CONTROL");
		return -ENOTSUP;
	}
	return 0;
}

/* The saved XSAVE area in a buffer of this host's size; NULL (logged) when it does not fit. */
static uint8_t *fit_xsave(struct smol_vcpu *v, const struct vstate *s)
{
	uint32_t host = host_xsave_size(v->vm);
	for (uint32_t i = host; i < s->xsave_size; i++) {
		if (s->xsave[i]) {
			LOG(v->vm, SMOL_LOG_ERROR,
			    "vCPU %u: the saved XSAVE area uses byte %u, this host's KVM holds %u",
			    v->index, i, host);
			return NULL;
		}
	}
	uint8_t *x = calloc(1, host);
	if (x)
		memcpy(x, s->xsave, s->xsave_size < host ? s->xsave_size : host);
	return x;
}

/* MSR_IA32_TSC first and MSR_IA32_TSCDEADLINE last, whatever order the blob had them in. */
static void order_msrs(struct vstate *s)
{
	for (uint32_t i = 0; i < s->n_msrs; i++) {
		if (s->msrs[i].index == MSR_IA32_TSC && i > 0) {
			struct kvm_msr_entry t = s->msrs[i];
			memmove(&s->msrs[1], &s->msrs[0], i * sizeof(t));
			s->msrs[0] = t;
		}
	}
	for (uint32_t i = 0; i + 1 < s->n_msrs; i++) {
		if (s->msrs[i].index == MSR_IA32_TSCDEADLINE) {
			struct kvm_msr_entry t = s->msrs[i];
			memmove(&s->msrs[i], &s->msrs[i + 1], (s->n_msrs - 1 - i) * sizeof(t));
			s->msrs[s->n_msrs - 1] = t;
			break;
		}
	}
}

static int set_state(struct smol_vcpu *v, struct vstate *s)
{
	struct smol_vm *vm = v->vm;
	int r;
	if ((r = kvm_set_cpuid(v, s->cpuid)) || (r = set_tsc_khz(v, s->tsc_khz)))
		return r;
	if (has_cap(vm, KVM_CAP_SREGS2)) {
		r = VIO(v, KVM_SET_SREGS2, &s->sregs);
	} else {
		struct kvm_sregs o;
		memset(&o, 0, sizeof(o));
		SREGS_COMMON(&o, &s->sregs);
		memcpy(o.interrupt_bitmap, s->irq_bitmap, sizeof(o.interrupt_bitmap));
		r = VIO(v, KVM_SET_SREGS, &o);
	}
	if (r || (r = VIO(v, KVM_SET_REGS, &s->regs)))
		return r;
	uint8_t *x = fit_xsave(v, s);
	if (!x)
		return -ENOTSUP;
	r = VIO(v, KVM_SET_XSAVE, x);
	free(x);
	if (r || (r = VIO(v, KVM_SET_XCRS, &s->xcrs)) || (r = VIO(v, KVM_SET_DEBUGREGS, &s->dbg)) ||
	    (r = VIO(v, KVM_SET_LAPIC, &s->lapic)))
		return r;
	order_msrs(s);
	r = msr_io(v, KVM_SET_MSRS, s->msrs, s->n_msrs);
	if (r < 0) {
		LOG(vm, SMOL_LOG_ERROR, "vCPU %u: KVM_SET_MSRS: %s", v->index, strerror(-r));
		return r;
	}
	if ((uint32_t)r < s->n_msrs) {
		LOG(vm, SMOL_LOG_ERROR,
		    "vCPU %u: KVM_SET_MSRS set %d of %u MSRs: MSR 0x%x (value 0x%llx) was refused",
		    v->index, r, s->n_msrs, s->msrs[r].index, (unsigned long long)s->msrs[r].data);
		return -EINVAL;
	}
	s->ev.flags |= KVM_VCPUEVENT_VALID_SIPI_VECTOR;
	if ((r = VIO(v, KVM_SET_VCPU_EVENTS, &s->ev)) || (r = VIO(v, KVM_SET_MP_STATE, &s->mp)))
		return r;
	return 0;
}

int kvm_vcpu_load(struct smol_vcpu *v, uint32_t arch, const void *buf, size_t len)
{
	if (arch != SMOL_ARCH_X86_64) {
		LOG(v->vm, SMOL_LOG_ERROR, "vCPU %u: state for arch %u given to the x86_64 backend",
		    v->index, arch);
		return -ENOTSUP;
	}
	struct vstate s;
	memset(&s, 0, sizeof(s));
	int r = vstate_decode(v->vm->host, v->index, buf, len, &s);
	if (r == 0) {
		char why[160];
		struct kvm_cpuid2 *host = kvm_host_cpuid(v->vm, v->index, v->fd);
		if (!host) {
			r = -ENOMEM;
		} else if (kvm_cpuid_check(s.cpuid, host, why, sizeof(why)) < 0) {
			LOG(v->vm, SMOL_LOG_ERROR, "vCPU %u state: %s", v->index, why);
			r = -ENOTSUP;
		}
		free(host);
	}
	if (r == 0)
		r = set_state(v, &s);
	vstate_free(&s);
	return r;
}

int kvm_vcpu_was_paused(struct smol_vcpu *v)
{
	if (ioctl(v->fd, KVM_KVMCLOCK_CTRL, 0) == 0)
		return 0;
	int e = errno;
	if (e == EINVAL) { /* the guest never enabled kvmclock: nobody to tell */
		LOG(v->vm, SMOL_LOG_DEBUG, "vCPU %u: the guest does not use kvmclock", v->index);
		return 0;
	}
	LOG(v->vm, SMOL_LOG_ERROR, "vCPU %u: KVM_KVMCLOCK_CTRL: %s", v->index, strerror(e));
	return e == ENOTTY ? -ENOTSUP : -e;
}
