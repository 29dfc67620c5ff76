/* kvm.c: the KVM backend (kvm.so), x86_64. A VM with the in-kernel irqchip (PIC + IOAPIC +
 * local APICs) and PIT, RAM slots from the core's memfd mapping, one kvm_run per vCPU, CPUID
 * from KVM_GET_SUPPORTED_CPUID with per-vCPU APIC IDs, exits normalised into smol_exit.
 * Snapshot state lives in vm-state.c and vcpu-state.c. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cpuid.h"
#include "kvm.h"

/* The signal vcpu_kick sends to interrupt KVM_RUN. */
#define KICK_SIGNAL SIGUSR1

/* Where Intel's VMX needs its TSS and identity page table: just below the 4 GiB BIOS area. */
#define KVM_TSS_ADDR 0xfffbd000u
#define KVM_IDENTITY_MAP_ADDR 0xfffbc000u

static void kick_handler(int sig)
{
	(void)sig; /* only there to interrupt KVM_RUN with EINTR */
}

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
	struct smol_vm *vm = calloc(1, sizeof(*vm));
	int e;

	if (!vm)
		return -ENOMEM;
	vm->host = host;
	vm->vm_fd = -1;
	vm->n_vcpus = cfg->n_vcpus;
	vm->kvm_fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm_fd < 0) {
		e = errno;
		LOG(vm, SMOL_LOG_ERROR, "hardware virtualization is not available: /dev/kvm: %s",
		    strerror(e));
		free(vm);
		return -e;
	}
	int api = ioctl(vm->kvm_fd, KVM_GET_API_VERSION, 0);
	if (api != KVM_API_VERSION) {
		LOG(vm, SMOL_LOG_ERROR, "/dev/kvm speaks KVM API %d, smolvm needs %d", api,
		    KVM_API_VERSION);
		e = EINVAL;
		goto err;
	}
	static const struct {
		int cap;
		const char *name;
	} need[] = {
		{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
		{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP" },
		{ KVM_CAP_PIT2, "KVM_CAP_PIT2" },
		{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" },
		{ KVM_CAP_EXT_CPUID, "KVM_CAP_EXT_CPUID" },
	};
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		if (ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, need[i].cap) <= 0) {
			LOG(vm, SMOL_LOG_ERROR, "/dev/kvm lacks %s", need[i].name);
			e = ENOTSUP;
			goto err;
		}
	}
	int max_vcpus = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_MAX_VCPUS);
	if (max_vcpus > 0 && cfg->n_vcpus > (uint32_t)max_vcpus) {
		LOG(vm, SMOL_LOG_ERROR, "KVM allows at most %d vCPUs, the machine asks for %u",
		    max_vcpus, cfg->n_vcpus);
		e = EINVAL;
		goto err;
	}
	vm->run_size = ioctl(vm->kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vm->run_size <= 0) {
		e = errno;
		LOG(vm, SMOL_LOG_ERROR, "KVM_GET_VCPU_MMAP_SIZE: %s", strerror(e));
		goto err;
	}
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
	struct sigaction sa = { .sa_handler = kick_handler };
	sigemptyset(&sa.sa_mask);
	sigaction(KICK_SIGNAL, &sa, NULL); /* no SA_RESTART: KVM_RUN returns EINTR */
	*out = vm;
	return 0;
err:
	if (vm->vm_fd >= 0)
		close(vm->vm_fd);
	close(vm->kvm_fd);
	free(vm->cpuid);
	free(vm);
	return -e;
}

static void kvm_vm_destroy(struct smol_vm *vm)
{
	if (!vm)
		return;
	/* the handler lives in this plugin, which the core may unload next */
	signal(KICK_SIGNAL, SIG_IGN);
	close(vm->vm_fd);
	close(vm->kvm_fd);
	free(vm->cpuid);
	free(vm->given);
	free(vm->msrs);
	free(vm);
}

static int kvm_mem_add(struct smol_vm *vm, uint32_t slot, uint64_t gpa, uint64_t size, void *hva)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uintptr_t)hva,
	};
	if (ioctl(vm->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0) {
		int e = errno;
		LOG(vm, SMOL_LOG_ERROR, "KVM_SET_USER_MEMORY_REGION slot %u at 0x%llx: %s", slot,
		    (unsigned long long)gpa, strerror(e));
		return -e;
	}
	return 0;
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
	struct smol_vcpu *v = calloc(1, sizeof(*v));
	int e;
	if (!v)
		return -ENOMEM;
	v->vm = vm;
	v->index = index;
	v->fd = ioctl(vm->vm_fd, KVM_CREATE_VCPU, (unsigned long)index);
	if (v->fd < 0) {
		e = errno;
		LOG(vm, SMOL_LOG_ERROR, "KVM_CREATE_VCPU %u: %s", index, strerror(e));
		free(v);
		return -e;
	}
	v->run = mmap(NULL, (size_t)vm->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		e = errno;
		LOG(vm, SMOL_LOG_ERROR, "mmap of vCPU %u's kvm_run: %s", index, strerror(e));
		close(v->fd);
		free(v);
		return -e;
	}
	int r = set_cpuid(v);
	if (r < 0) {
		munmap(v->run, (size_t)vm->run_size);
		close(v->fd);
		free(v);
		return r;
	}
	*out = v;
	return 0;
}

static void kvm_vcpu_destroy(struct smol_vcpu *v)
{
	if (!v)
		return;
	munmap(v->run, (size_t)v->vm->run_size);
	close(v->fd);
	free(v);
}

static int kvm_vcpu_run(struct smol_vcpu *v, struct smol_exit *e)
{
	struct kvm_run *run = v->run;

	if (!v->thread_known) {
		v->thread = pthread_self();
		__atomic_store_n(&v->thread_known, 1, __ATOMIC_RELEASE);
		/* the kick signal must reach this thread */
		sigset_t s;
		sigemptyset(&s);
		sigaddset(&s, KICK_SIGNAL);
		pthread_sigmask(SIG_UNBLOCK, &s, NULL);
	}
	if (ioctl(v->fd, KVM_RUN, 0) < 0) {
		int err = errno;
		if (err == EINTR || err == EAGAIN) {
			run->immediate_exit = 0;
			e->reason = SMOL_EXIT_INTR;
			return 0;
		}
		return -err;
	}
	e->code = run->exit_reason;
	switch (run->exit_reason) {
	case KVM_EXIT_IO:
		e->reason = SMOL_EXIT_PIO;
		e->u.pio.port = run->io.port;
		e->u.pio.size = run->io.size;
		e->u.pio.is_write = run->io.direction == KVM_EXIT_IO_OUT;
		e->u.pio.count = run->io.count;
		e->u.pio.data = (uint8_t *)run + run->io.data_offset;
		/* never let a count point the data past the kvm_run page */
		if (run->io.data_offset >= (uint64_t)v->vm->run_size ||
		    (uint64_t)run->io.count * run->io.size >
		            (uint64_t)v->vm->run_size - run->io.data_offset)
			e->u.pio.count = 0;
		break;
	case KVM_EXIT_MMIO:
		e->reason = SMOL_EXIT_MMIO;
		e->u.mmio.gpa = run->mmio.phys_addr;
		e->u.mmio.size = (uint8_t)(run->mmio.len > 8 ? 8 : run->mmio.len);
		e->u.mmio.is_write = run->mmio.is_write;
		e->u.mmio.data = run->mmio.data;
		break;
	case KVM_EXIT_HLT: e->reason = SMOL_EXIT_HLT; break;
	case KVM_EXIT_SHUTDOWN: e->reason = SMOL_EXIT_SHUTDOWN; break;
	case KVM_EXIT_SYSTEM_EVENT:
		e->reason = SMOL_EXIT_SYSTEM_EVENT;
		switch (run->system_event.type) {
		case KVM_SYSTEM_EVENT_SHUTDOWN: e->u.system_event.type = SMOL_EVENT_SHUTDOWN; break;
		case KVM_SYSTEM_EVENT_RESET: e->u.system_event.type = SMOL_EVENT_RESET; break;
		default: e->u.system_event.type = SMOL_EVENT_CRASH; break;
		}
		break;
	case KVM_EXIT_INTERNAL_ERROR:
		e->reason = SMOL_EXIT_INTERNAL_ERROR;
		e->code = run->internal.suberror;
		break;
	case KVM_EXIT_INTR: e->reason = SMOL_EXIT_INTR; break;
	case KVM_EXIT_FAIL_ENTRY:
		e->reason = SMOL_EXIT_INTERNAL_ERROR;
		e->code = (uint32_t)run->fail_entry.hardware_entry_failure_reason;
		break;
	default: e->reason = SMOL_EXIT_UNKNOWN; break;
	}
	return 0;
}

static void kvm_vcpu_kick(struct smol_vcpu *v)
{
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&v->thread_known, __ATOMIC_ACQUIRE))
		pthread_kill(v->thread, KICK_SIGNAL);
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

static int kvm_ioeventfd(struct smol_vm *vm, uint64_t addr, uint32_t len, int is_pio,
                         uint32_t flags, uint64_t datamatch, int fd)
{
	struct kvm_ioeventfd io = {
		.datamatch = datamatch,
		.addr = addr,
		.len = len,
		.fd = fd,
		.flags = (is_pio ? KVM_IOEVENTFD_FLAG_PIO : 0) |
		         ((flags & SMOL_IOEVENT_DATAMATCH) ? KVM_IOEVENTFD_FLAG_DATAMATCH : 0),
	};
	if (ioctl(vm->vm_fd, KVM_IOEVENTFD, &io) < 0) {
		int e = errno;
		LOG(vm, SMOL_LOG_ERROR, "KVM_IOEVENTFD at 0x%llx: %s", (unsigned long long)addr,
		    strerror(e));
		return -e;
	}
	return 0;
}

static int kvm_irqfd(struct smol_vm *vm, uint32_t gsi, int fd)
{
	struct kvm_irqfd q = { .fd = (uint32_t)fd, .gsi = gsi };
	if (ioctl(vm->vm_fd, KVM_IRQFD, &q) < 0) {
		int e = errno;
		LOG(vm, SMOL_LOG_ERROR, "KVM_IRQFD for GSI %u: %s", gsi, strerror(e));
		return -e;
	}
	return 0;
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
