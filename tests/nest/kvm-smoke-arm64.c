/*
 * kvm-smoke-arm64: the arm64 test nest's own test (NEST_ARCH=arm64 tests/nest/run
 * build-arm64/tests/nest/kvm-smoke-arm64), with raw ioctls only.
 *
 * Creates a VM with one vCPU initialised through KVM_ARM_PREFERRED_TARGET and
 * KVM_ARM_VCPU_INIT (PSCI 0.2), then an in-kernel GICv3 (KVM_CREATE_DEVICE, distributor and
 * redistributor addresses, KVM_DEV_ARM_VGIC_CTRL_INIT once the vCPU exists). Checks that an
 * irqfd reaches the GIC (SPI 32 goes pending, read back through the distributor's registers),
 * then runs the guest code of kvm-smoke-arm64-guest.S at EL1 with the MMU off: 1000 MMIO
 * stores (each exit is checked: KVM_EXIT_MMIO, address, write, 4 bytes, the value the guest
 * stored), one store to an ioeventfd address (no exit: the eventfd fires), and PSCI
 * SYSTEM_OFF through hvc #0 (KVM_EXIT_SYSTEM_EVENT of type SHUTDOWN). Prints every check and
 * the time per MMIO exit. Exit status 0 when all checks hold, 1 otherwise.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "kvm-smoke-arm64.h"

#define SMOKE_NAME "kvm-smoke-arm64"
#include "smoke-check.h"

#if !defined(__aarch64__)
#error "kvm-smoke-arm64 drives arm64 KVM: build it for aarch64 (make build-arm64)"
#endif

extern const uint8_t smoke_guest_start[], smoke_guest_end[];

/* PSTATE at entry: EL1 with SP_EL1 (EL1h), debug, SError, IRQ and FIQ masked. */
#define PSTATE_EL1H_DAIF 0x3c5
/* GICv3 distributor registers (offsets from its base), read and written through the device. */
#define GICD_ISPENDR1 0x204 /* pending bits of INTIDs 32-63 */
#define GICD_ICFGR2 0xc08 /* trigger modes of INTIDs 32-47, 2 bits each (bit 1: edge) */
#define SMOKE_NR_IRQS 128 /* SGIs, PPIs and 96 SPIs */
#define SMOKE_GSI 0 /* irqfd GSI n is SPI n: INTID 32 + n */

static int set_core_reg(int vcpu, uint64_t offset_u32, uint64_t value, const char *name)
{
	struct kvm_one_reg reg = {
		.id = KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | offset_u32,
		.addr = (uintptr_t)&value,
	};
	return xioctl(vcpu, KVM_SET_ONE_REG, &reg, name);
}

static int gic_attr(int gic, int set, uint32_t group, uint64_t attr, void *val, const char *name)
{
	struct kvm_device_attr a = { .group = group, .attr = attr, .addr = (uintptr_t)val };
	return xioctl(gic, set ? KVM_SET_DEVICE_ATTR : KVM_GET_DEVICE_ATTR, &a, name);
}

/* The in-kernel GICv3, created after the vCPU and initialised. Returns its fd or -1. */
static int create_gic(int vm)
{
	struct kvm_create_device dev = { .type = KVM_DEV_TYPE_ARM_VGIC_V3 };
	if (xioctl(vm, KVM_CREATE_DEVICE, &dev, "KVM_CREATE_DEVICE (VGIC_V3)") < 0)
		return -1;
	int gic = (int)dev.fd;
	uint64_t dist = SMOKE_GICD_BASE, redist = SMOKE_GICR_BASE;
	uint32_t nr_irqs = SMOKE_NR_IRQS;
	if (gic_attr(gic, 1, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, &dist,
	             "GICv3 distributor address") < 0 ||
	    gic_attr(gic, 1, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST, &redist,
	             "GICv3 redistributor address") < 0 ||
	    gic_attr(gic, 1, KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, &nr_irqs, "GICv3 NR_IRQS") < 0 ||
	    gic_attr(gic, 1, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT, NULL,
	             "KVM_DEV_ARM_VGIC_CTRL_INIT") < 0) {
		close(gic);
		return -1;
	}
	return gic;
}

/* An irqfd on SMOKE_GSI, made edge-triggered, must leave SPI 32 + SMOKE_GSI pending. */
static void check_irqfd(int vm, int gic)
{
	uint32_t cfg = 0, pend = 0;
	int ok = gic_attr(gic, 0, KVM_DEV_ARM_VGIC_GRP_DIST_REGS, GICD_ICFGR2, &cfg,
	                  "read GICD_ICFGR2") == 0;
	cfg |= 2u << (2 * SMOKE_GSI);
	ok = ok && gic_attr(gic, 1, KVM_DEV_ARM_VGIC_GRP_DIST_REGS, GICD_ICFGR2, &cfg,
	                    "write GICD_ICFGR2") == 0;
	ok = ok && gic_attr(gic, 0, KVM_DEV_ARM_VGIC_GRP_DIST_REGS, GICD_ISPENDR1, &pend,
	                    "read GICD_ISPENDR1") == 0;
	check(ok && !(pend & (1u << SMOKE_GSI)), "SPI 32 made edge-triggered, not pending yet");

	int efd = eventfd(0, EFD_CLOEXEC);
	struct kvm_irqfd irqfd = { .fd = (uint32_t)efd, .gsi = SMOKE_GSI };
	ok = efd >= 0 && xioctl(vm, KVM_IRQFD, &irqfd, "KVM_IRQFD") == 0;
	check(ok, "irqfd registered on GSI 0 (SPI 32)");
	uint64_t one = 1;
	ok = ok && write(efd, &one, sizeof(one)) == (ssize_t)sizeof(one);
	/* An SPI from an irqfd is injected from a work item: give it up to 2 s. */
	double deadline = now_ns() + 2e9;
	pend = 0;
	while (ok && !(pend & (1u << SMOKE_GSI)) && now_ns() < deadline) {
		ok = gic_attr(gic, 0, KVM_DEV_ARM_VGIC_GRP_DIST_REGS, GICD_ISPENDR1, &pend,
		              "read GICD_ISPENDR1") == 0;
		if (!(pend & (1u << SMOKE_GSI)))
			usleep(1000);
	}
	check(ok && (pend & (1u << SMOKE_GSI)), "the irqfd left SPI 32 pending in the GICv3");
}

/* Runs the guest to its SYSTEM_OFF, checking every exit. */
static void run_guest(int vcpu, struct kvm_run *run, int efd, double t_ready)
{
	unsigned writes = 0, bad = 0, exits = 0, shutdown = 0;
	double t_first = 0, t_last = 0;
	for (;;) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			fprintf(stderr, "kvm-smoke-arm64: KVM_RUN: %s\n", strerror(errno));
			failures++;
			return;
		}
		exits++;
		if (run->exit_reason == KVM_EXIT_SYSTEM_EVENT) {
			shutdown = run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN;
			printf("kvm-smoke-arm64: system event type %u after %u MMIO exits\n",
			       run->system_event.type, writes);
			break;
		}
		if (run->exit_reason != KVM_EXIT_MMIO) {
			fprintf(stderr,
			        "kvm-smoke-arm64: unexpected exit reason %u after %u exits\n",
			        run->exit_reason, exits);
			failures++;
			return;
		}
		uint32_t val = 0;
		memcpy(&val, run->mmio.data, sizeof(val)); /* little-endian guest and host */
		if (run->mmio.phys_addr != SMOKE_MMIO_DATA || !run->mmio.is_write ||
		    run->mmio.len != 4 || val != writes) {
			if (bad++ < 5)
				fprintf(stderr,
				        "kvm-smoke-arm64: MMIO exit %u: addr 0x%llx %s len %u data "
				        "0x%x\n",
				        writes, (unsigned long long)run->mmio.phys_addr,
				        run->mmio.is_write ? "write" : "read", run->mmio.len, val);
		}
		if (writes == 0)
			t_first = now_ns();
		writes++;
		t_last = now_ns();
		if (writes > SMOKE_N_WRITES + 10)
			break; /* the guest runs wild: the checks below fail */
	}
	uint64_t events = 0;
	ssize_t n = read(efd, &events, sizeof(events));
	check(writes == SMOKE_N_WRITES, "1000 MMIO stores reached userspace");
	check(bad == 0, "each MMIO exit had the address, direction, size and value stored");
	check(n == (ssize_t)sizeof(events) && events == 1,
	      "the ioeventfd store fired its eventfd, without an exit");
	check(shutdown, "PSCI SYSTEM_OFF (hvc #0) gave KVM_EXIT_SYSTEM_EVENT, type SHUTDOWN");
	if (writes > 1)
		printf("kvm-smoke-arm64: %.2f us per MMIO exit (%u exits); first entry %.2f ms "
		       "after setup\n",
		       (t_last - t_first) / 1e3 / (writes - 1), writes, (t_first - t_ready) / 1e6);
}

int main(void)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		fprintf(stderr,
		        "kvm-smoke-arm64: /dev/kvm: %s (run through NEST_ARCH=arm64 "
		        "tests/nest/run)\n",
		        strerror(errno));
		return 1;
	}
	check(ioctl(kvm, KVM_GET_API_VERSION, 0) == KVM_API_VERSION, "KVM_GET_API_VERSION is 12");
	static const struct {
		int cap;
		const char *name;
	} caps[] = {
		{ KVM_CAP_USER_MEMORY, "KVM_CAP_USER_MEMORY" },
		{ KVM_CAP_ONE_REG, "KVM_CAP_ONE_REG" },
		{ KVM_CAP_ARM_PSCI_0_2, "KVM_CAP_ARM_PSCI_0_2" },
		{ KVM_CAP_DEVICE_CTRL, "KVM_CAP_DEVICE_CTRL" },
		{ KVM_CAP_IRQFD, "KVM_CAP_IRQFD" },
		{ KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD" },
	};
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
		check(ioctl(kvm, KVM_CHECK_EXTENSION, caps[i].cap) > 0, caps[i].name);

	double t_create = now_ns();
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0) {
		fprintf(stderr, "kvm-smoke-arm64: KVM_CREATE_VM: %s\n", strerror(errno));
		return 1;
	}
	uint8_t *mem = mmap(NULL, SMOKE_RAM_SIZE, PROT_READ | PROT_WRITE,
	                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED) {
		perror("kvm-smoke-arm64: mmap guest memory");
		return 1;
	}
	size_t code_len = (size_t)(smoke_guest_end - smoke_guest_start);
	memcpy(mem, smoke_guest_start, code_len);
	struct kvm_userspace_memory_region region = {
		.slot = 0,
		.guest_phys_addr = SMOKE_RAM_BASE,
		.memory_size = SMOKE_RAM_SIZE,
		.userspace_addr = (uintptr_t)mem,
	};
	if (xioctl(vm, KVM_SET_USER_MEMORY_REGION, &region, "KVM_SET_USER_MEMORY_REGION") < 0)
		return 1;

	int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0) {
		fprintf(stderr, "kvm-smoke-arm64: KVM_CREATE_VCPU: %s\n", strerror(errno));
		return 1;
	}
	struct kvm_vcpu_init init;
	memset(&init, 0, sizeof(init));
	if (xioctl(vm, KVM_ARM_PREFERRED_TARGET, &init, "KVM_ARM_PREFERRED_TARGET") < 0)
		return 1;
	printf("kvm-smoke-arm64: preferred target %u\n", init.target);
	init.features[0] |= 1u << KVM_ARM_VCPU_PSCI_0_2;
	check(xioctl(vcpu, KVM_ARM_VCPU_INIT, &init, "KVM_ARM_VCPU_INIT") == 0,
	      "KVM_ARM_VCPU_INIT with PSCI 0.2");

	int gic = create_gic(vm);
	check(gic >= 0, "in-kernel GICv3 created, addressed and initialised after the vCPU");
	if (gic < 0)
		return 1;
	check_irqfd(vm, gic);

	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct kvm_ioeventfd ioev = { .addr = SMOKE_MMIO_DATA + SMOKE_MMIO_EVENT_OFF,
		                      .len = 4,
		                      .fd = efd };
	check(efd >= 0 && xioctl(vm, KVM_IOEVENTFD, &ioev, "KVM_IOEVENTFD") == 0,
	      "ioeventfd registered on MMIO 0x09000100");

	int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (run_size < (int)sizeof(struct kvm_run)) {
		fprintf(stderr, "kvm-smoke-arm64: KVM_GET_VCPU_MMAP_SIZE gave %d\n", run_size);
		return 1;
	}
	struct kvm_run *run =
	        mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED) {
		perror("kvm-smoke-arm64: mmap kvm_run");
		return 1;
	}
	if (set_core_reg(vcpu, KVM_REG_ARM_CORE_REG(regs.pc), SMOKE_RAM_BASE, "set PC") < 0 ||
	    set_core_reg(vcpu, KVM_REG_ARM_CORE_REG(regs.pstate), PSTATE_EL1H_DAIF, "set PSTATE") <
	            0)
		return 1;
	double t_ready = now_ns();
	printf("kvm-smoke-arm64: VM, vCPU and GICv3 set up in %.2f ms\n",
	       (t_ready - t_create) / 1e6);

	run_guest(vcpu, run, efd, t_ready);
	printf("kvm-smoke-arm64: %s\n", failures ? "FAILED" : "passed");
	return failures ? 1 : 0;
}
