/* x86.c: the KVM backend's x86_64 part (kvm.so on an x86_64 host). A VM with the in-kernel
 * irqchip (PIC + IOAPIC + local APICs) and PIT, CPUID from KVM_GET_SUPPORTED_CPUID with
 * per-vCPU APIC IDs, the x86 boot state and register dump; what every arch shares (RAM slots,
 * kvm_run, the run loop, kicks, ioeventfd, irqfd) is in kvm.c. Snapshot state lives in
 * vm-state.c and vcpu-state.c. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "cpuid.h"
#include "kvm.h"

/* Where Intel's VMX needs its TSS and identity page table: just below the 4 GiB BIOS area. */
#define KVM_TSS_ADDR 0xfffbd000u
#define KVM_IDENTITY_MAP_ADDR 0xfffbc000u

static struct kvm_cpuid2 *get_supported_cpuid(int kvm_fd)
{
	for (int n = 64; n <= 4096; n *= 2) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + (size_t)n * sizeof(c->entries[0]));
		if (!c)
			return NULL;
		c->nent = (uint32_t)n;
		if (ioctl(kvm_fd, KVM_GET_SUPPORTED_CPUID, c) == 0)
			return c;
		free(c);
		if (errno != E2BIG)
			return NULL;
	}
	return NULL;
}

/*
 * The interrupt wiring the ACPI MADT and the MP table describe: ISA IRQ 0 (the PIT, which KVM
 * raises as GSI 0) arrives on I/O APIC pin 2, like a PC's; GSI 2 is the PIC cascade, on no I/O
 * APIC pin; every other GSI n reaches pin n, and GSIs 0-15 the 8259s too. (KVM's default
 * routing sends GSI 0 to pin 0, which no table says.) 0 or an errno.
 */
static int set_gsi_routing(struct smol_vm *vm)
{
	enum { PINS = 24 };
	struct kvm_irq_routing *r =
	        calloc(1, sizeof(*r) + 2 * PINS * sizeof(struct kvm_irq_routing_entry));
	if (!r)
		return ENOMEM;
	uint32_t n = 0;
	for (uint32_t gsi = 0; gsi < PINS; gsi++) {
		if (gsi < 16 && gsi != 2) {
			r->entries[n].gsi = gsi;
			r->entries[n].type = KVM_IRQ_ROUTING_IRQCHIP;
			r->entries[n].u.irqchip.irqchip =
			        gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE;
			r->entries[n++].u.irqchip.pin = gsi % 8;
		}
		if (gsi != 2) {
			r->entries[n].gsi = gsi;
			r->entries[n].type = KVM_IRQ_ROUTING_IRQCHIP;
			r->entries[n].u.irqchip.irqchip = KVM_IRQCHIP_IOAPIC;
			r->entries[n++].u.irqchip.pin = gsi == 0 ? 2 : gsi;
		}
	}
	r->nr = n;
	int e = ioctl(vm->vm_fd, KVM_SET_GSI_ROUTING, r) < 0 ? errno : 0;
	free(r);
	if (e)
		LOG(vm, SMOL_LOG_ERROR, "KVM_SET_GSI_ROUTING: %s", strerror(e));
	return e;
}

static int kvm_vm_create(const struct smol_backend_host *host, const struct smol_vm_config *cfg,
                         struct smol_vm **out)
{
	static const struct kvm_need need[] = {
		{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
		{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
		{ KVM_CAP_PIT2, "KVM_CAP_PIT2" },
		{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" },
		{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
	};
	struct smol_vm *vm;
	int e = kvm_vm_open(host, cfg, need, sizeof(need) / sizeof(need[0]), &vm);

	if (e < 0)
		return e;
	vm->cpuid = get_supported_cpuid(vm->kvm_fd);
	if (!vm->cpuid) {
		e = errno ? errno : ENOMEM;
		LOG(vm, SMOL_LOG_ERROR, "KVM_GET_SUPPORTED_CPUID: %s", strerror(e));
		goto err;
	}
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, 0);
	if (vm->vm_fd < 0) {
		e = errno;
		LOG(vm, SMOL_LOG_ERROR, "KVM_CREATE_VM: %s", strerror(e));
		goto err;
	}
	/* needed on Intel VMX (real-mode emulation); harmless elsewhere */
	if (ioctl(vm->vm_fd, KVM_SET_TSS_ADDR, KVM_TSS_ADDR) < 0) {
		e = errno;
		LOG(vm, SMOL_LOG_ERROR, "KVM_SET_TSS_ADDR: %s", strerror(e));
		goto err;
	}
	uint64_t idmap = KVM_IDENTITY_MAP_ADDR;
	if (ioctl(vm->vm_fd, KVM_SET_IDENTITY_MAP_ADDR, &idmap) < 0) {
		e = errno;
		LOG(vm, SMOL_LOG_ERROR, "KVM_SET_IDENTITY_MAP_ADDR: %s", strerror(e));
		goto err;
	}
	if (ioctl(vm->vm_fd, KVM_CREATE_IRQCHIP, 0) < 0) {
		e = errno;
		LOG(vm, SMOL_LOG_ERROR, "KVM_CREATE_IRQCHIP: %s", strerror(e));
		goto err;
	}
	e = set_gsi_routing(vm);
	if (e)
		goto err;
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	if (ioctl(vm->vm_fd, KVM_CREATE_PIT2, &pit) < 0) {
		e = errno;
		LOG(vm, SMOL_LOG_ERROR, "KVM_CREATE_PIT2: %s", strerror(e));
		goto err;
	}
	kvm_kick_install();
	*out = vm;
	return 0;
err:
	free(vm->cpuid);
	kvm_vm_close(vm);
	return -e;
}

static void kvm_vm_destroy(struct smol_vm *vm)
{
	if (!vm)
		return;
	kvm_kick_remove();
	free(vm->cpuid);
	free(vm->given);
	free(vm->msrs);
	kvm_vm_close(vm);
}

struct kvm_cpuid2 *kvm_host_cpuid(struct smol_vm *vm, uint32_t index, int vcpu_fd)
{
	int khz = vcpu_fd >= 0 ? ioctl(vcpu_fd, KVM_GET_TSC_KHZ, 0) : 0;
	bool deadline = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_TSC_DEADLINE_TIMER) > 0;
	return kvm_cpuid_for_vcpu(vm->cpuid, index, vm->n_vcpus, khz > 0 ? (uint32_t)khz : 0,
	                          deadline);
}

int kvm_set_cpuid(struct smol_vcpu *v, const struct kvm_cpuid2 *c)
{
	struct smol_vm *vm = v->vm;
	if (ioctl(v->fd, KVM_SET_CPUID2, c) < 0) {
		int e = errno;
		LOG(vm, SMOL_LOG_ERROR, "vCPU %u: KVM_SET_CPUID2 (%u entries): %s", v->index,
		    c->nent, strerror(e));
		return -e;
	}
	size_t sz = sizeof(*c) + c->nent * sizeof(c->entries[0]);
	struct kvm_cpuid2 *copy = malloc(sz);
	if (copy) {
		memcpy(copy, c, sz);
		free(vm->given);
		vm->given = copy;
	}
	return 0;
}

/* This vCPU's CPUID (cpuid.c), with the TSC frequency KVM runs the guest at. */
static int set_cpuid(struct smol_vcpu *v)
{
	struct kvm_cpuid2 *c = kvm_host_cpuid(v->vm, v->index, v->fd);
	if (!c)
		return -ENOMEM;
	int r = kvm_set_cpuid(v, c);
	free(c);
	return r;
}

static int kvm_vcpu_create(struct smol_vm *vm, uint32_t index, struct smol_vcpu **out)
{
	struct smol_vcpu *v;
	int r = kvm_vcpu_new(vm, index, &v);
	if (r < 0)
		return r;
	r = set_cpuid(v);
	if (r < 0) {
		kvm_vcpu_destroy(v);
		return r;
	}
	*out = v;
	return 0;
}

static void set_seg(struct kvm_segment *s, uint16_t sel, int code, int long_mode)
{
	memset(s, 0, sizeof(*s));
	s->base = 0;
	s->limit = 0xffffffff;
	s->selector = sel;
	s->type = code ? 0xb : 0x3; /* execute/read accessed : read/write accessed */
	s->present = 1;
	s->s = 1;
	s->g = 1;
	s->l = code && long_mode;
	s->db = !(code && long_mode);
}

static int kvm_vcpu_set_x86_boot(struct smol_vcpu *v, const struct smol_x86_boot *b)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_fpu fpu;

	if (ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	set_seg(&sregs.cs, b->cs_selector, 1, b->long_mode);
	set_seg(&sregs.ds, b->ds_selector, 0, b->long_mode);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.gdt.base = b->gdt_base;
	sregs.gdt.limit = b->gdt_limit;
	sregs.cr0 = b->cr0;
	sregs.cr3 = b->cr3;
	sregs.cr4 = b->cr4;
	sregs.efer = b->efer;
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs) < 0)
		return -errno;

	memset(&regs, 0, sizeof(regs));
	regs.rip = b->rip;
	regs.rsp = b->rsp;
	regs.rsi = b->rsi;
	regs.rbx = b->rbx;
	regs.rflags = b->rflags ? b->rflags : 0x2;
	if (ioctl(v->fd, KVM_SET_REGS, &regs) < 0)
		return -errno;

	memset(&fpu, 0, sizeof(fpu));
	fpu.fcw = 0x37f;
	fpu.mxcsr = 0x1f80;
	if (ioctl(v->fd, KVM_SET_FPU, &fpu) < 0)
		return -errno;
	/* XCR0 = x87 only, its power-on value (SDM 13.3), whatever the vCPU ran before. */
	struct kvm_xcrs xcrs = { .nr_xcrs = 1, .xcrs = { { .xcr = 0, .value = 1 } } };
	if (ioctl(v->fd, KVM_SET_XCRS, &xcrs) < 0)
		return -errno;
	return 0;
}

static int kvm_vcpu_dump(struct smol_vcpu *v, char *buf, size_t len)
{
	struct kvm_regs r;
	struct kvm_sregs s;
	if (ioctl(v->fd, KVM_GET_REGS, &r) < 0 || ioctl(v->fd, KVM_GET_SREGS, &s) < 0)
		return snprintf(buf, len, "  (registers unavailable: %s)\n", strerror(errno));
	return snprintf(buf, len,
	                "  rip %016llx  rsp %016llx  rflags %08llx\n"
	                "  rax %016llx  rbx %016llx  rcx %016llx  rdx %016llx\n"
	                "  rsi %016llx  rdi %016llx  rbp %016llx\n"
	                "  r8  %016llx  r9  %016llx  r10 %016llx  r11 %016llx\n"
	                "  r12 %016llx  r13 %016llx  r14 %016llx  r15 %016llx\n"
	                "  cr0 %016llx  cr2 %016llx  cr3 %016llx  cr4 %016llx  efer %llx\n"
	                "  cs %04x (base %llx, l %u, db %u)  ss %04x  ds %04x\n"
	                "  gdt %llx/%x  idt %llx/%x\n",
	                r.rip, r.rsp, r.rflags, r.rax, r.rbx, r.rcx, r.rdx, r.rsi, r.rdi, r.rbp,
	                r.r8, r.r9, r.r10, r.r11, r.r12, r.r13, r.r14, r.r15, s.cr0, s.cr2, s.cr3,
	                s.cr4, s.efer, s.cs.selector, s.cs.base, s.cs.l, s.cs.db, s.ss.selector,
	                s.ds.selector, s.gdt.base, s.gdt.limit, s.idt.base, s.idt.limit);
}

static int kvm_irq_line(struct smol_vm *vm, uint32_t gsi, int level)
{
	struct kvm_irq_level l = { .irq = gsi, .level = (uint32_t)level };
	return ioctl(vm->vm_fd, KVM_IRQ_LINE, &l) < 0 ? -errno : 0;
}

static const struct smol_backend_ops kvm_ops = {
	.struct_size = sizeof(struct smol_backend_ops),
	.vm_create = kvm_vm_create,
	.vm_destroy = kvm_vm_destroy,
	.mem_add = kvm_mem_add,
	.vcpu_create = kvm_vcpu_create,
	.vcpu_destroy = kvm_vcpu_destroy,
	.vcpu_run = kvm_vcpu_run,
	.vcpu_kick = kvm_vcpu_kick,
	.vcpu_set_x86_boot = kvm_vcpu_set_x86_boot,
	.vcpu_dump = kvm_vcpu_dump,
	.irq_line = kvm_irq_line,
	.ioeventfd = kvm_ioeventfd,
	.irqfd = kvm_irqfd,
	.vm_cpu_info = kvm_vm_cpu_info,
	.vm_save = kvm_vm_save,
	.vm_load = kvm_vm_load,
	.vcpu_save = kvm_vcpu_save,
	.vcpu_load = kvm_vcpu_load,
	.vcpu_was_paused = kvm_vcpu_was_paused,
};

SMOL_PLUGIN(SMOL_KIND_BACKEND, "kvm", "Linux KVM (x86_64): in-kernel irqchip and PIT", &kvm_ops);
