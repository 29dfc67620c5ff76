/*
 * floor: the raw-ioctl floor for `make bench`. The least a KVM VMM must do to run a guest-kit
 * payload (the same ELF file smolvm and QEMU boot): open /dev/kvm, create a VM with the
 * in-kernel irqchip and PIT (as smolvm does), map RAM, load the PT_LOAD segments, build a GDT,
 * identity page tables and a zero page with e820 and command line, enter in 64-bit mode, and
 * serve three ports: COM1's THR (to stdout), COM1's LSR (always "transmitter empty"), and the
 * debug-exit port, whose byte becomes the exit status. No plugins, no config, no threads.
 *
 * usage: floor PAYLOAD.elf [MEMORY_MIB [CMDLINE]]   (CMDLINE: "floor" unless given)
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GDT 0x1000
#define ZERO_PAGE 0x7000
#define PML4 0x9000
#define PDPT 0xA000
#define PD 0xB000
#define CMDLINE 0x20000

static int die(const char *what)
{
	fprintf(stderr, "floor: %s: %s\n", what, strerror(errno));
	return 1;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: floor PAYLOAD.elf [MEMORY_MIB [CMDLINE]]\n");
		return 2;
	}
	uint64_t mem_size = (argc > 2 ? strtoull(argv[2], NULL, 0) : 128) << 20;
	int fd = open(argv[1], O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0)
		return die(argv[1]);
	uint8_t *elf = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (elf == MAP_FAILED)
		return die("mmap payload");

	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		return die("/dev/kvm");
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0 || ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0)
		return die("create VM");
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	if (ioctl(vm, KVM_CREATE_PIT2, &pit) < 0)
		return die("KVM_CREATE_PIT2");
	uint8_t *ram = mmap(NULL, mem_size, PROT_READ | PROT_WRITE,
	                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (ram == MAP_FAILED)
		return die("mmap RAM");
	struct kvm_userspace_memory_region region = { .slot = 0,
		                                      .guest_phys_addr = 0,
		                                      .memory_size = mem_size,
		                                      .userspace_addr = (uintptr_t)ram };
	if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
		return die("KVM_SET_USER_MEMORY_REGION");

	/* the payload (trusted here: this is a benchmark harness, not the VMM) */
	Elf64_Ehdr *eh = (Elf64_Ehdr *)elf;
	uint64_t entry = eh->e_entry;
	for (int i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr *ph = (Elf64_Phdr *)(elf + eh->e_phoff + (size_t)i * sizeof(*ph));
		if (ph->p_type != PT_LOAD)
			continue;
		if (ph->p_paddr + ph->p_memsz > mem_size)
			return die("segment beyond RAM");
		memcpy(ram + ph->p_paddr, elf + ph->p_offset, ph->p_filesz);
		if (eh->e_entry >= ph->p_vaddr && eh->e_entry < ph->p_vaddr + ph->p_memsz)
			entry = ph->p_paddr + (eh->e_entry - ph->p_vaddr);
	}

	uint64_t *gdt = (uint64_t *)(ram + GDT);
	gdt[2] = 0x00af9b000000ffffull;
	gdt[3] = 0x00cf93000000ffffull;
	uint64_t *pml4 = (uint64_t *)(ram + PML4), *pdpt = (uint64_t *)(ram + PDPT);
	uint64_t *pd = (uint64_t *)(ram + PD);
	pml4[0] = PDPT | 3;
	for (uint64_t g = 0; g < 4; g++) {
		pdpt[g] = (PD + g * 0x1000) | 3;
		for (uint64_t i = 0; i < 512; i++)
			pd[g * 512 + i] = (g << 30) | (i << 21) | 0x83;
	}
	uint8_t *zp = ram + ZERO_PAGE;
	const char *cmdline = argc > 3 ? argv[3] : "floor";
	if (strlen(cmdline) >= 4096) {
		errno = E2BIG;
		return die("the command line");
	}
	strcpy((char *)ram + CMDLINE, cmdline);
	*(uint32_t *)(zp + 0x228) = CMDLINE;
	*(uint32_t *)(zp + 0x202) = 0x53726448;
	struct {
		uint64_t addr, size;
		uint32_t type;
	} __attribute__((packed))
	e820[2] = { { 0, 0xA0000, 1 }, { 0x100000, mem_size - 0x100000, 1 } };
	memcpy(zp + 0x2d0, e820, sizeof(e820));
	zp[0x1e8] = 2;

	int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
	int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (vcpu < 0 || run_size <= 0)
		return die("create vCPU");
	struct kvm_run *run =
	        mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
	if (run == MAP_FAILED)
		return die("mmap kvm_run");
	struct kvm_cpuid2 *cpuid = calloc(1, sizeof(*cpuid) + 256 * sizeof(cpuid->entries[0]));
	cpuid->nent = 256;
	if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, cpuid) < 0 ||
	    ioctl(vcpu, KVM_SET_CPUID2, cpuid) < 0)
		return die("CPUID");

	struct kvm_sregs sregs;
	if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
		return die("KVM_GET_SREGS");
	struct kvm_segment code = { .base = 0,
		                    .limit = 0xffffffff,
		                    .selector = 0x10,
		                    .type = 11,
		                    .present = 1,
		                    .s = 1,
		                    .l = 1,
		                    .g = 1 };
	struct kvm_segment data = { .base = 0,
		                    .limit = 0xffffffff,
		                    .selector = 0x18,
		                    .type = 3,
		                    .present = 1,
		                    .s = 1,
		                    .db = 1,
		                    .g = 1 };
	sregs.cs = code;
	sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
	sregs.gdt.base = GDT;
	sregs.gdt.limit = 31;
	sregs.cr0 = 0x80010033;
	sregs.cr3 = PML4;
	sregs.cr4 = 0x620;
	sregs.efer = 0x500;
	struct kvm_regs regs = { .rip = entry, .rsp = 0x80000, .rsi = ZERO_PAGE, .rflags = 2 };
	if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0 || ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
		return die("set registers");

	for (;;) {
		if (ioctl(vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR)
				continue;
			return die("KVM_RUN");
		}
		if (run->exit_reason != KVM_EXIT_IO) {
			fprintf(stderr, "floor: unexpected exit %u\n", run->exit_reason);
			return 1;
		}
		uint8_t *data_p = (uint8_t *)run + run->io.data_offset;
		if (run->io.direction == KVM_EXIT_IO_OUT) {
			if (run->io.port == 0x3f8) {
				if (write(1, data_p, 1) < 0)
					return die("write");
			} else if (run->io.port == 0xf4) {
				return data_p[0];
			}
		} else {
			/* LSR: THR empty and idle; everything else reads 0 */
			data_p[0] = run->io.port == 0x3fd ? 0x60 : 0;
		}
	}
}
