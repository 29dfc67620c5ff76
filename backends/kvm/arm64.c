/* arm64.c: the KVM backend's aarch64 part (kvm.so on an aarch64 host). A VM with a 40-bit
 * guest-physical space, vCPUs of KVM's preferred target with PSCI 0.2 (every vCPU but the
 * boot CPU powered off until the guest's PSCI CPU_ON), the in-kernel GICv3 at the addresses
 * the core chose (vm_ready), interrupt lines as SPIs, the boot CPU's entry state through
 * KVM_SET_ONE_REG, a register dump. What every arch shares (RAM slots, kvm_run, the run loop
 * with PSCI SYSTEM_OFF/SYSTEM_RESET as system events, kicks, ioeventfd, irqfd) is in kvm.c.
 * Per Linux's Documentation/virt/kvm/api.rst and devices/arm-vgic-v3.rst. No snapshots yet:
 * the snapshot ops stay NULL, so the core refuses to snapshot an arm64 machine up front. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kvm.h"

/* The guest-physical address bits the core's arm64 layout reaches (devices up to 1 TiB). */
#define A64_IPA_BITS 40
/* GICv3 geometry (arm-vgic-v3.rst): a 64 KiB distributor, 128 KiB of redistributor per vCPU,
 * both 64 KiB aligned; NR_IRQS counts the 32 private interrupts, in steps of 32, at most 1023. */
#define GICD_SIZE 0x10000ull
#define GICR_PER_VCPU 0x20000ull
#define GIC_ALIGN 0x10000ull
#define GIC_PRIVATE_IRQS 32u
#define GIC_NR_IRQS_MAX 992u
/* Linux's booting.rst entry state: EL1 with SP_EL1 (EL1h), D, A, I and F masked. */
#define A64_BOOT_PSTATE (PSR_MODE_EL1h | PSR_D_BIT | PSR_A_BIT | PSR_I_BIT | PSR_F_BIT)

/* KVM_{GET,SET}_ONE_REG ids of the core registers (struct kvm_regs, in 32-bit words). */
#define CORE_REG(off) (KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | ((off) / 4))
#define CORE_X(n) CORE_REG(offsetof(struct kvm_regs, regs.regs) + (n) * sizeof(uint64_t))
#define CORE_SP CORE_REG(offsetof(struct kvm_regs, regs.sp))
#define CORE_PC CORE_REG(offsetof(struct kvm_regs, regs.pc))
#define CORE_PSTATE CORE_REG(offsetof(struct kvm_regs, regs.pstate))
#define CORE_SP_EL1 CORE_REG(offsetof(struct kvm_regs, sp_el1))
#define CORE_ELR_EL1 CORE_REG(offsetof(struct kvm_regs, elr_el1))
#define CORE_SPSR_EL1 CORE_REG(offsetof(struct kvm_regs, spsr) + KVM_SPSR_EL1 * sizeof(uint64_t))
#define SYS_ESR_EL1 ARM64_SYS_REG(3, 0, 5, 2, 0)
#define SYS_FAR_EL1 ARM64_SYS_REG(3, 0, 6, 0, 0)

static int get_reg(struct smol_vcpu *v, uint64_t id, uint64_t *val)
{
	struct kvm_one_reg r = { .id = id, .addr = (uintptr_t)val };
	return ioctl(v->fd, KVM_GET_ONE_REG, &r) < 0 ? -errno : 0;
}

static int set_reg(struct smol_vcpu *v, uint64_t id, uint64_t val, const char *name)
{
	struct kvm_one_reg r = { .id = id, .addr = (uintptr_t)&val };
	if (ioctl(v->fd, KVM_SET_ONE_REG, &r) < 0) {
		int e = errno;
		LOG(v->vm, SMOL_LOG_ERROR, "vCPU %u: KVM_SET_ONE_REG %s: %s", v->index, name,
		    strerror(e));
		return -e;
	}
	return 0;
}

static int kvm_vm_create(const struct smol_backend_host *host, const struct smol_vm_config *cfg,
                         struct smol_vm **out)
{
	static const struct kvm_need need[] = {
		{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
		{ KVM_CAP_IRQCHIP, "KVM_CAP_IRQCHIP (an in-kernel GIC)" },
		{ KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT" },
		{ KVM_CAP_ONE_REG, "KVM_CAP_ONE_REG" },
		{ KVM_CAP_ARM_PSCI_0_2, "KVM_CAP_ARM_PSCI_0_2" },
		{ KVM_CAP_DEVICE_CTRL, "KVM_CAP_DEVICE_CTRL" },
	};
	struct smol_vm *vm;
	int e = kvm_vm_open(host, cfg, need, sizeof(need) / sizeof(need[0]), &vm);

	if (e < 0)
		return e;
	vm->gic_fd = -1;
	/* Type 0 means 40 bits; a host that says how many it has gets asked for them explicitly
	 * (hosts with fewer, as some Apple chips under Linux, then fail here with a clear line). */
	unsigned long type = 0;
	int ipa = ioctl(vm->kvm_fd, KVM_CHECK_EXTENSION, KVM_CAP_ARM_VM_IPA_SIZE);
	if (ipa > 0) {
		if (ipa < A64_IPA_BITS) {
			LOG(vm, SMOL_LOG_ERROR,
			    "/dev/kvm offers %d guest-physical address bits, the aarch64 machine "
			    "needs %d",
			    ipa, A64_IPA_BITS);
			e = ENOTSUP;
			goto err;
		}
		type = KVM_VM_TYPE_ARM_IPA_SIZE(A64_IPA_BITS);
	}
	vm->vm_fd = ioctl(vm->kvm_fd, KVM_CREATE_VM, type);
	if (vm->vm_fd < 0) {
		e = errno;
		LOG(vm, SMOL_LOG_ERROR, "KVM_CREATE_VM (%d-bit IPA): %s", A64_IPA_BITS,
		    strerror(e));
		goto err;
	}
	kvm_kick_install();
	*out = vm;
	return 0;
err:
	kvm_vm_close(vm);
	return -e;
}

static void kvm_vm_destroy(struct smol_vm *vm)
{
	if (!vm)
		return;
	kvm_kick_remove();
	if (vm->gic_fd >= 0)
		close(vm->gic_fd);
	kvm_vm_close(vm);
}

static int kvm_vcpu_create(struct smol_vm *vm, uint32_t index, struct smol_vcpu **out)
{
	if (!vm->target_known) {
		if (ioctl(vm->vm_fd, KVM_ARM_PREFERRED_TARGET, &vm->target) < 0) {
			int e = errno;
			LOG(vm, SMOL_LOG_ERROR, "KVM_ARM_PREFERRED_TARGET: %s", strerror(e));
			return -e;
		}
		vm->target_known = 1;
	}
	struct smol_vcpu *v;
	int r = kvm_vcpu_new(vm, index, &v);
	if (r < 0)
		return r;
	struct kvm_vcpu_init init = vm->target;
	init.features[0] |= 1u << KVM_ARM_VCPU_PSCI_0_2;
	if (index > 0) /* the guest starts it: PSCI CPU_ON */
		init.features[0] |= 1u << KVM_ARM_VCPU_POWER_OFF;
	if (ioctl(v->fd, KVM_ARM_VCPU_INIT, &init) < 0) {
		r = -errno;
		LOG(vm, SMOL_LOG_ERROR, "vCPU %u: KVM_ARM_VCPU_INIT (target %u, PSCI 0.2): %s",
		    index, init.target, strerror(-r));
		kvm_vcpu_destroy(v);
		return r;
	}
	*out = v;
	return 0;
}

/* A GICv3 attribute (KVM_SET_DEVICE_ATTR), logged by @p what on failure. */
static int gic_set(struct smol_vm *vm, uint32_t group, uint64_t attr, void *val, const char *what)
{
	struct kvm_device_attr a = { .group = group, .attr = attr, .addr = (uintptr_t)val };
	if (ioctl(vm->gic_fd, KVM_SET_DEVICE_ATTR, &a) < 0) {
		int e = errno;
		LOG(vm, SMOL_LOG_ERROR, "GICv3: %s: %s", what, strerror(e));
		return -e;
	}
	return 0;
}

/* Whether the core's platform can be given to KVM: 0, or -EINVAL after logging why. */
static int check_platform(struct smol_vm *vm, const struct smol_arm64_platform *p, size_t len)
{
	const uint64_t limit = 1ull << A64_IPA_BITS;
	if (!p || len < sizeof(*p) || p->struct_size < sizeof(*p) || p->struct_size > len) {
		LOG(vm, SMOL_LOG_ERROR,
		    "vm_ready: the aarch64 platform is %zu bytes (struct_size %u), want at least "
		    "%zu",
		    p ? len : 0, p ? p->struct_size : 0, sizeof(*p));
		return -EINVAL;
	}
	if (p->n_irqs == 0 || p->n_irqs > GIC_NR_IRQS_MAX - GIC_PRIVATE_IRQS) {
		LOG(vm, SMOL_LOG_ERROR, "vm_ready: %u interrupt lines (want 1 to %u SPIs)",
		    p->n_irqs, GIC_NR_IRQS_MAX - GIC_PRIVATE_IRQS);
		return -EINVAL;
	}
	uint64_t need = (uint64_t)vm->n_vcpus * GICR_PER_VCPU;
	if ((p->gicd_base | p->gicr_base) & (GIC_ALIGN - 1) || p->gicd_base >= limit ||
	    limit - p->gicd_base < GICD_SIZE || p->gicr_base >= limit ||
	    limit - p->gicr_base < need || p->gicr_size < need) {
		LOG(vm, SMOL_LOG_ERROR,
		    "vm_ready: GICv3 distributor at 0x%llx, redistributors at 0x%llx (0x%llx "
		    "bytes): want 64 KiB aligned, below 2^%d, and 0x%llx redistributor bytes for "
		    "%u "
		    "vCPUs",
		    (unsigned long long)p->gicd_base, (unsigned long long)p->gicr_base,
		    (unsigned long long)p->gicr_size, A64_IPA_BITS, (unsigned long long)need,
		    vm->n_vcpus);
		return -EINVAL;
	}
	if (p->gicd_base < p->gicr_base + need && p->gicr_base < p->gicd_base + GICD_SIZE) {
		LOG(vm, SMOL_LOG_ERROR,
		    "vm_ready: the GICv3 distributor at 0x%llx overlaps the redistributors at "
		    "0x%llx",
		    (unsigned long long)p->gicd_base, (unsigned long long)p->gicr_base);
		return -EINVAL;
	}
	return 0;
}

/* Every vCPU exists: the GICv3 (arm-vgic-v3.rst: created after the vCPUs, addressed, sized,
 * then initialised). */
static int kvm_vm_ready(struct smol_vm *vm, uint32_t arch, const void *platform, size_t len)
{
	const struct smol_arm64_platform *p = platform;
	if (arch != SMOL_ARCH_AARCH64) {
		LOG(vm, SMOL_LOG_ERROR,
		    "vm_ready: kvm.so on aarch64 runs aarch64 machines only "
		    "(arch %u)",
		    arch);
		return -ENOTSUP;
	}
	if (vm->gic_fd >= 0) {
		LOG(vm, SMOL_LOG_ERROR, "vm_ready: called twice");
		return -EINVAL;
	}
	int r = check_platform(vm, p, len);
	if (r < 0)
		return r;
	struct kvm_create_device dev = { .type = KVM_DEV_TYPE_ARM_VGIC_V3 };
	if (ioctl(vm->vm_fd, KVM_CREATE_DEVICE, &dev) < 0) {
		r = -errno;
		LOG(vm, SMOL_LOG_ERROR, "KVM_CREATE_DEVICE GICv3: %s", strerror(-r));
		return r;
	}
	vm->gic_fd = (int)dev.fd;
	uint64_t dist = p->gicd_base, redist = p->gicr_base;
	/* NR_IRQS: the private 32 and the SPIs, rounded up to a multiple of 32 */
	uint32_t nr = (GIC_PRIVATE_IRQS + p->n_irqs + 31u) & ~31u;
	r = gic_set(vm, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, &dist,
	            "the distributor's address");
	if (!r)
		r = gic_set(vm, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST, &redist,
		            "the redistributors' address");
	if (!r)
		r = gic_set(vm, KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, &nr, "the number of interrupts");
	if (!r)
		r = gic_set(vm, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT, NULL,
		            "init");
	if (r < 0) {
		close(vm->gic_fd);
		vm->gic_fd = -1;
		return r;
	}
	vm->n_irqs = p->n_irqs;
	return 0;
}

static int kvm_vcpu_set_boot(struct smol_vcpu *v, uint32_t arch, const void *boot, size_t len)
{
	const struct smol_arm64_boot *b = boot;
	if (arch != SMOL_ARCH_AARCH64) {
		LOG(v->vm, SMOL_LOG_ERROR, "vCPU %u: an arch %u boot state on an aarch64 vCPU",
		    v->index, arch);
		return -ENOTSUP;
	}
	if (!b || len < sizeof(*b)) {
		LOG(v->vm, SMOL_LOG_ERROR, "vCPU %u: an aarch64 boot state of %zu bytes (want %zu)",
		    v->index, b ? len : 0, sizeof(*b));
		return -EINVAL;
	}
	if (b->pc & 3) {
		LOG(v->vm, SMOL_LOG_ERROR, "vCPU %u: entry point 0x%llx is not 4-byte aligned",
		    v->index, (unsigned long long)b->pc);
		return -EINVAL;
	}
	static const char *const xname[4] = { "x0", "x1", "x2", "x3" };
	for (unsigned i = 0; i < 4; i++) {
		int r = set_reg(v, CORE_X(i), b->x[i], xname[i]);
		if (r < 0)
			return r;
	}
	int r = set_reg(v, CORE_PSTATE, A64_BOOT_PSTATE, "pstate");
	return r < 0 ? r : set_reg(v, CORE_PC, b->pc, "pc");
}

static int kvm_vcpu_set_x86_boot(struct smol_vcpu *v, const struct smol_x86_boot *b)
{
	(void)b;
	LOG(v->vm, SMOL_LOG_ERROR, "vCPU %u: an x86 boot state on an aarch64 vCPU", v->index);
	return -ENOTSUP;
}

static int kvm_vcpu_dump(struct smol_vcpu *v, char *buf, size_t len)
{
	uint64_t x[31], pc, pstate, sp_el0, sp_el1, elr, spsr;
	int r = 0;
	for (unsigned i = 0; i < 31 && !r; i++)
		r = get_reg(v, CORE_X(i), &x[i]);
	if (!r)
		r = get_reg(v, CORE_PC, &pc);
	if (!r)
		r = get_reg(v, CORE_PSTATE, &pstate);
	if (!r)
		r = get_reg(v, CORE_SP, &sp_el0);
	if (!r)
		r = get_reg(v, CORE_SP_EL1, &sp_el1);
	if (!r)
		r = get_reg(v, CORE_ELR_EL1, &elr);
	if (!r)
		r = get_reg(v, CORE_SPSR_EL1, &spsr);
	if (r < 0)
		return snprintf(buf, len, "  (registers unavailable: %s)\n", strerror(-r));
	size_t n = 0;
	int w = snprintf(buf, len,
	                 "  pc %016llx  pstate %08llx (EL%u%s)  sp_el1 %016llx  sp_el0 %016llx\n"
	                 "  elr_el1 %016llx  spsr_el1 %08llx",
	                 (unsigned long long)pc, (unsigned long long)pstate,
	                 (unsigned)(pstate >> 2) & 3u, (pstate & 1) ? "h" : "t",
	                 (unsigned long long)sp_el1, (unsigned long long)sp_el0,
	                 (unsigned long long)elr, (unsigned long long)spsr);
	uint64_t esr, far;
	if (w > 0 && get_reg(v, SYS_ESR_EL1, &esr) == 0 && get_reg(v, SYS_FAR_EL1, &far) == 0) {
		n = (size_t)w < len ? (size_t)w : len;
		w += snprintf(buf + n, len - n, "  esr_el1 %08llx  far_el1 %016llx",
		              (unsigned long long)esr, (unsigned long long)far);
	}
	for (unsigned i = 0; i < 31 && w > 0; i++) {
		n = (size_t)w < len ? (size_t)w : len;
		w += snprintf(buf + n, len - n, "%sx%-2u %016llx", i % 4 ? "  " : "\n  ", i,
		              (unsigned long long)x[i]);
	}
	if (w > 0) {
		n = (size_t)w < len ? (size_t)w : len;
		w += snprintf(buf + n, len - n, "\n");
	}
	return w;
}

/* Line N is SPI N: INTID 32 + N (KVM_IRQ_LINE's arm64 encoding, api.rst). */
static int kvm_irq_line(struct smol_vm *vm, uint32_t line, int level)
{
	if (!vm->n_irqs)
		return 0; /* before vm_ready there is no GIC yet: the core holds the levels it set
		           * and sets the raised ones again once the machine is ready */
	if (line >= vm->n_irqs) {
		LOG(vm, SMOL_LOG_ERROR, "interrupt line %u: the GIC has SPIs 0 to %u", line,
		    vm->n_irqs - 1);
		return -EINVAL;
	}
	struct kvm_irq_level l = {
		.irq = (uint32_t)KVM_ARM_IRQ_TYPE_SPI << KVM_ARM_IRQ_TYPE_SHIFT |
		       (GIC_PRIVATE_IRQS + line) << KVM_ARM_IRQ_NUM_SHIFT,
		.level = (uint32_t)level,
	};
	return ioctl(vm->vm_fd, KVM_IRQ_LINE, &l) < 0 ? -errno : 0;
}

/* MMIO only: arm64 has no port I/O. */
static int a64_ioeventfd(struct smol_vm *vm, uint64_t addr, uint32_t len, int is_pio,
                         uint32_t flags, uint64_t datamatch, int fd)
{
	if (is_pio) {
		LOG(vm, SMOL_LOG_ERROR, "ioeventfd at port 0x%llx: aarch64 has no port I/O",
		    (unsigned long long)addr);
		return -ENOTSUP;
	}
	return kvm_ioeventfd(vm, addr, len, 0, flags, datamatch, fd);
}

/* With the GIC's default routing (set up by its init), GSI N is SPI N: the line itself. */
static int a64_irqfd(struct smol_vm *vm, uint32_t line, int fd)
{
	if (line >= vm->n_irqs) {
		LOG(vm, SMOL_LOG_ERROR, "irqfd for line %u: the GIC has %u SPIs%s", line,
		    vm->n_irqs, vm->n_irqs ? "" : " (not set up yet)");
		return -EINVAL;
	}
	return kvm_irqfd(vm, line, fd);
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
	.ioeventfd = a64_ioeventfd,
	.irqfd = a64_irqfd,
	/* snapshots (vm_cpu_info, vm_save, vm_load, vcpu_save, vcpu_load): not yet on arm64 */
	.vcpu_set_boot = kvm_vcpu_set_boot,
	.vm_ready = kvm_vm_ready,
};

SMOL_PLUGIN(SMOL_KIND_BACKEND, "kvm", "Linux KVM (aarch64): in-kernel GICv3, PSCI 0.2", &kvm_ops);
