/*
 * tf-probe: hello.flood's loop (an OUT to the UART, an IN of its LSR, forever, with interrupts
 * disabled) but with an IDT, so an event the vCPU takes is caught instead of triple-faulting.
 * Every vector's handler writes what it found to port 0x80 as 32-bit OUTs (vector, error code,
 * RIP low and high, RFLAGS, CR2 low and high: 7 writes, visible in KVM's kvm_pio tracepoint and
 * in smolvm -v's "unhandled port" lines), then ends the run with status 0x55 through the
 * debug-exit port. tests/nest/tf-loop runs it in the nest to tell an injected event (an NMI, an
 * interrupt, an exception) from a nest that loses the vCPU without any.
 */
#include "guest.h"

/* 256 stubs, 16 bytes apart: push a zero error code where the CPU pushes none, then the
 * vector, and jump to the common handler. */
__asm__(".pushsection .text\n"
        ".balign 16\n"
        "tf_stubs:\n"
        ".set vec, 0\n"
        ".rept 256\n"
        ".balign 16\n"
        ".if (vec == 8) || ((vec >= 10) && (vec <= 14)) || (vec == 17) || (vec == 21) || (vec == "
        "29) || (vec == 30)\n"
        "pushq $vec\n"
        ".else\n"
        "pushq $0\n"
        "pushq $vec\n"
        ".endif\n"
        "jmp tf_common\n"
        ".set vec, vec + 1\n"
        ".endr\n"
        "tf_common:\n"
        "movl (%rsp), %eax\n"
        "outl %eax, $0x80\n" /* vector */
        "movl 8(%rsp), %eax\n"
        "outl %eax, $0x80\n" /* error code */
        "movq 16(%rsp), %rax\n"
        "outl %eax, $0x80\n" /* RIP */
        "shrq $32, %rax\n"
        "outl %eax, $0x80\n"
        "movl 32(%rsp), %eax\n"
        "outl %eax, $0x80\n" /* RFLAGS */
        "movq %cr2, %rax\n"
        "outl %eax, $0x80\n" /* CR2 */
        "shrq $32, %rax\n"
        "outl %eax, $0x80\n"
        "movb $0x55, %al\n"
        "outb %al, $0xf4\n"
        "1: cli\n"
        "hlt\n"
        "jmp 1b\n"
        ".popsection\n");

extern const char tf_stubs[];

static struct idt_gate idt[256] __attribute__((aligned(16)));

int guest_main(const struct boot_info *bi)
{
	(void)bi;
	for (unsigned v = 0; v < 256; v++)
		idt[v] = idt_gate(tf_stubs + 16 * v);
	idt_load(idt, 256);
	printf("tf-probe: IDT loaded, flooding the UART with interrupts disabled\n");
	__asm__ volatile("cli");
	for (;;) {
		outb(COM1_BASE + UART_THR, 'A');
		(void)inb(COM1_BASE + UART_LSR);
	}
}
