/*
 * kvm-smoke: the test nest's own test, and the raw-ioctl floor later benchmarks compare with.
 *
 * Creates a VM with an in-kernel irqchip and PIT, checks the capabilities smolvm relies on
 * (KVM_CAP_USER_MEMORY, KVM_CAP_IRQFD, KVM_CAP_IOEVENTFD), and runs a real-mode guest that
 * writes 1000 bytes to port 0x10 (each one exit to this program), one byte to port 0x12
 * (an ioeventfd: no exit, the eventfd fires instead) and then signals its end on port 0x11.
 * (With an in-kernel irqchip HLT is handled in the kernel, so the end must be a port write.)
 * Every exit is checked: port, direction, size and the byte the guest wrote. Prints the time
 * per userspace exit. Exit status 0 when all checks pass, 1 otherwise.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define SMOKE_NAME "kvm-smoke"
#include "smoke-check.h"

#define GUEST_MEM (1u << 20)
#define CODE_ADDR 0x1000u
#define PORT_DATA 0x10
#define PORT_DONE 0x11
#define PORT_EVENT 0x12
#define N_WRITES 1000

/* Real mode, loaded at 0000:1000. */
static const uint8_t guest_code[] = {
	0xb9, 0xe8, 0x03, /* mov cx, 1000 */
	0xba, 0x10, 0x00, /* mov dx, PORT_DATA */
	0x30, 0xc0, /* xor al, al */
	0xee, /* 8: out dx, al */
	0xfe, 0xc0, /* inc al */
	0x49, /* dec cx */
	0x75, 0xfa, /* jnz 8 */
	0xba, 0x12, 0x00, /* mov dx, PORT_EVENT */
	0xee, /* out dx, al (ioeventfd) */
	0xba, 0x11, 0x00, /* mov dx, PORT_DONE */
	0xee, /* out dx, al */
	0xf4, /* hlt */
	0xeb, 0xfd, /* jmp hlt */
};

int main(void)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		fprintf(stderr, "kvm-smoke: /dev/kvm: %s (run through tests/nest/run)\n",
		        strerror(errno));
		return 1;
	}
	int api = ioctl(kvm, KVM_GET_API_VERSION, 0);
	check(api == KVM_API_VERSION, "KVM_GET_API_VERSION is 12");
	check(ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY) > 0, "KVM_CAP_USER_MEMORY");
	check(ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_IRQFD) > 0, "KVM_CAP_IRQFD");
	check(ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_IOEVENTFD) > 0, "KVM_CAP_IOEVENTFD");

	double t_create = now_ns();
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0) {
		fprintf(stderr, "kvm-smoke: KVM_CREATE_VM: %s\n", strerror(errno));
		return 1;
	}
	check(xioctl(vm, KVM_CREATE_IRQCHIP, NULL, "KVM_CREATE_IRQCHIP") == 0, "in-kernel irqchip");
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	check(xioctl(vm, KVM_CREATE_PIT2, &pit, "KVM_CREATE_PIT2") == 0, "in-kernel PIT");

	uint8_t *mem = mmap(NULL, GUEST_MEM, PROT_READ | PROT_WRITE,
	                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (mem == MAP_FAILED) {
		perror("kvm-smoke: mmap guest memory");
		return 1;
	}
	memcpy(mem + CODE_ADDR, guest_code, sizeof(guest_code));
	struct kvm_userspace_memory_region region = {
		.slot = 0,
		.guest_phys_addr = 0,
		.memory_size = GUEST_MEM,
		.userspace_addr = (uintptr_t)mem,
	};
	if (xioctl(vm, KVM_SET_USER_MEMORY_REGION, &region, "KVM_SET_USER_MEMORY_REGION") < 0)
		return 1;

	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct kvm_ioeventfd ioev = {
		.addr = PORT_EVENT, .len = 1, .fd = efd, .flags = KVM_IOEVENTFD_FLAG_PIO
	};
	check(efd >= 0 && xioctl(vm, KVM_IOEVENTFD, &ioev, "KVM_IOEVENTFD") == 0,
	      "ioeventfd registered on port 0x12");

	int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0) {
		fprintf(stderr, "kvm-smoke: KVM_CREATE_VCPU: %s\n", strerror(errno));
		return 1;
	}
	int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	struct kvm_run *run =
	        mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED) {
		perror("kvm-smoke: mmap kvm_run");
		return 1;
	}
	struct kvm_sregs sregs;
	if (xioctl(vcpu, KVM_GET_SREGS, &sregs, "KVM_GET_SREGS") < 0)
		return 1;
	sregs.cs.base = 0;
	sregs.cs.selector = 0;
	if (xioctl(vcpu, KVM_SET_SREGS, &sregs, "KVM_SET_SREGS") < 0)
		return 1;
	struct kvm_regs regs = { .rip = CODE_ADDR, .rflags = 0x2 };
	if (xioctl(vcpu, KVM_SET_REGS, &regs, "KVM_SET_REGS") < 0)
		return 1;
	double t_ready = now_ns();

	unsigned writes = 0, bad = 0, exits = 0;
	int done = 0;
	double t_first = 0, t_last = 0;
	while (!done) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			fprintf(stderr, "kvm-smoke: KVM_RUN: %s\n", strerror(errno));
			return 1;
		}
		exits++;
		if (run->exit_reason != KVM_EXIT_IO) {
			struct kvm_regs r;
			ioctl(vcpu, KVM_GET_REGS, &r);
			fprintf(stderr, "kvm-smoke: unexpected exit reason %u at rip=0x%llx\n",
			        run->exit_reason, (unsigned long long)r.rip);
			return 1;
		}
		uint8_t val = *((uint8_t *)run + run->io.data_offset);
		int out1 = run->io.direction == KVM_EXIT_IO_OUT && run->io.size == 1 &&
		           run->io.count == 1;
		if (run->io.port == PORT_DATA) {
			if (!out1 || val != (uint8_t)writes)
				bad++;
			if (writes == 0)
				t_first = now_ns();
			writes++;
		} else if (run->io.port == PORT_DONE) {
			t_last = now_ns();
			done = 1;
		} else {
			fprintf(stderr, "kvm-smoke: unexpected port 0x%x\n", run->io.port);
			bad++;
			done = 1;
		}
	}
	uint64_t events = 0;
	ssize_t n = read(efd, &events, sizeof(events));
	check(writes == N_WRITES, "1000 port writes reached userspace");
	check(bad == 0, "each exit had the port, size, direction and byte the guest wrote");
	check(exits == N_WRITES + 1, "the ioeventfd write did not exit to userspace");
	check(n == (ssize_t)sizeof(events) && events == 1, "the ioeventfd fired once");
	if (writes > 1)
		printf("kvm-smoke: VM setup %.2f ms; %.2f us per port-I/O exit (%u exits)\n",
		       (t_ready - t_create) / 1e6, (t_last - t_first) / 1e3 / writes, writes);
	printf("kvm-smoke: %s\n", failures ? "FAILED" : "passed");
	return failures ? 1 : 0;
}
