/*
 * kvm-state-guest.S: the guest of tests/nest/kvm-state.c, copied to guest-physical LOAD.
 *
 * The boot CPU starts at LOAD + 0x100 in flat 32-bit protected mode (vcpu_set_x86_boot). It
 * fills the IDT, and with 2 CPUs (the word at NCPUS) starts the second one with INIT and SIPI
 * at LOAD (real mode, switched to protected mode here). Then each CPU, by its APIC ID: sets
 * its TSC to 2^40, enables kvmclock (its pvclock area at PVCLOCK + 64 * id), software-enables
 * its local APIC and starts a timer: CPU 0 the TSC-deadline timer (vector 0x40, re-armed
 * PERIOD_TSC cycles ahead by each tick), CPU 1 the periodic LAPIC timer (vector 0x41); each
 * tick adds one to the CPU's counter at TICKS + 4 * id and EOIs. The CPU then loops
 * reporting, with 32-bit port writes: 0x10 a sequence number (esi, +1 per round), 0x11 its
 * tick count, 0x12 and 0x13 the low and high halves of rdtsc, read inside a consistent copy
 * of its pvclock area left at PVSNAP + 64 * id.
 */
#define LOAD 0x1000
#define A(x) ((x) - guest_start + LOAD)
#define IDT 0x3000
#define TICKS 0x4000
#define NCPUS 0x4100
#define PVCLOCK 0x5000
#define PVSNAP 0x6000 /* each report's copy of the pvclock area */
#define APIC 0xfee00000
#define PERIOD_TSC 20000000
#define PERIOD_APIC 10000000 /* bus cycles: KVM's APIC bus runs at 1 GHz, so 10 ms */
#define MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01
#define MSR_TSC 0x10
#define MSR_TSC_DEADLINE 0x6e0
#define GATE(v, handler)                                                                           \
	movl $(0x00080000 + A(handler)), IDT + 8 * (v);                                            \
	movl $0x8e00, IDT + 8 * (v) + 4

	.section .rodata.kvm_state_guest, "a"
	.globl kvm_state_guest, kvm_state_guest_end
kvm_state_guest:
guest_start:
	/* offset 0: the second CPU's SIPI entry (vector LOAD >> 12): real mode, cs = LOAD >> 4 */
	.code16
	cli
	xorw %ax, %ax
	movw %ax, %ds
	lgdtl A(gdtr)
	movl %cr0, %eax
	orl $1, %eax
	movl %eax, %cr0
	ljmpl $0x08, $A(ap32)

	.org 0x40
gdt:
	.quad 0
	.quad 0x00cf9a000000ffff /* 0x08: code, flat 4 GiB, 32-bit */
	.quad 0x00cf92000000ffff /* 0x10: data, flat 4 GiB */
gdtr:
	.word 23
	.long A(gdt)
idtr:
	.word 256 * 8 - 1
	.long IDT

	.code32
	.org 0x80
ap32:
	movw $0x10, %ax
	movw %ax, %ds
	movw %ax, %es
	movw %ax, %ss
	movw %ax, %fs
	movw %ax, %gs
	jmp common

	.org 0x100
bsp_entry:
	GATE(0x40, deadline_irq)
	GATE(0x41, periodic_irq)
	GATE(0xff, spurious_irq)
	cmpl $2, NCPUS
	jb common
	movl $0x1ff, APIC + 0xf0 /* software-enable the LAPIC, spurious vector 0xff */
	movl $(1 << 24), APIC + 0x310 /* to APIC ID 1 */
	movl $0xc500, APIC + 0x300 /* INIT, level, assert */
	movl $(1 << 24), APIC + 0x310
	movl $0x8500, APIC + 0x300 /* INIT, level, deassert */
	movl $(1 << 24), APIC + 0x310
	movl $(0x4600 + (LOAD >> 12)), APIC + 0x300 /* SIPI */

common:
	movl APIC + 0x20, %ebp
	shrl $24, %ebp /* this CPU's APIC ID */
	movl %ebp, %esp
	shll $12, %esp
	addl $0x9000, %esp
	lidt A(idtr)
	/* a TSC of 2^40 (minutes of uptime): a deadline restored before the TSC would land
	 * minutes ahead (Firecracker #4099) */
	xorl %eax, %eax
	movl $0x100, %edx
	movl $MSR_TSC, %ecx
	wrmsr
	movl %ebp, %eax
	shll $6, %eax
	addl $(PVCLOCK + 1), %eax /* bit 0: enable */
	xorl %edx, %edx
	movl $MSR_KVM_SYSTEM_TIME_NEW, %ecx
	wrmsr
	movl $0x1ff, APIC + 0xf0 /* software-enable the LAPIC, spurious vector 0xff */
	testl %ebp, %ebp
	jnz 1f
	movl $0x40040, APIC + 0x320 /* LVT timer: TSC-deadline mode, vector 0x40 */
	rdtsc
	addl $PERIOD_TSC, %eax
	adcl $0, %edx
	movl $MSR_TSC_DEADLINE, %ecx
	wrmsr
	jmp 2f
1:	movl $0xb, APIC + 0x3e0 /* divide by 1 */
	movl $0x20041, APIC + 0x320 /* LVT timer: periodic, vector 0x41 */
	movl $PERIOD_APIC, APIC + 0x380
2:	leal TICKS(, %ebp, 4), %ebx
	xorl %esi, %esi
	sti
report:
	incl %esi
	movw $0x10, %dx
	movl %esi, %eax
	outl %eax, %dx
	movw $0x11, %dx
	movl (%ebx), %eax
	outl %eax, %dx
	/* rdtsc inside a copy of the pvclock area, as a kvmclock read does: version even and
	 * the same before and after, so the host computes the kvmclock this CPU saw */
	movl %ebp, %edi
	shll $6, %edi
	addl $PVCLOCK, %edi
3:	movl (%edi), %ecx
	testl $1, %ecx
	jnz 3b
	movl %ecx, PVSNAP - PVCLOCK(%edi)
	.irp off, 4, 8, 12, 16, 20, 24, 28
	movl \off(%edi), %eax
	movl %eax, PVSNAP - PVCLOCK + \off(%edi)
	.endr
	lfence
	rdtsc
	lfence
	cmpl (%edi), %ecx
	jne 3b
	movl %edx, %edi
	movw $0x12, %dx
	outl %eax, %dx
	movl %edi, %eax
	movw $0x13, %dx
	outl %eax, %dx
	jmp report

deadline_irq:
	pushl %eax
	pushl %ecx
	pushl %edx
	incl TICKS
	rdtsc
	addl $PERIOD_TSC, %eax
	adcl $0, %edx
	movl $MSR_TSC_DEADLINE, %ecx
	wrmsr
	movl $0, APIC + 0xb0 /* EOI */
	popl %edx
	popl %ecx
	popl %eax
	iret

periodic_irq:
	incl TICKS + 4
	movl $0, APIC + 0xb0
	iret

spurious_irq:
	iret
kvm_state_guest_end:

	.section .note.GNU-stack, "", @progbits
