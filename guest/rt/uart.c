/*
 * Polled COM1 (16550 at I/O port 0x3f8) console and the debug-exit port.
 */
#include "guest.h"

/*
 * Bounded waits: a missing or wedged UART must not hang the guest. After one
 * timeout the console stops waiting altogether (each poll may be a VM exit).
 */
#define UART_SPIN_LIMIT 100000u
static bool uart_stuck;

static inline uint8_t com1_in(unsigned reg)
{
	return inb((uint16_t)(COM1_BASE + reg));
}

static inline void com1_out(unsigned reg, uint8_t v)
{
	outb((uint16_t)(COM1_BASE + reg), v);
}

void uart_init(void)
{
	com1_out(UART_IER, 0x00);
	com1_out(UART_LCR, UART_LCR_DLAB);
	com1_out(UART_DLL, 0x01); /* divisor 1: 115200 baud */
	com1_out(UART_DLM, 0x00);
	com1_out(UART_LCR, UART_LCR_8N1);
	com1_out(UART_MCR, UART_MCR_DTR | UART_MCR_RTS);
}

static void uart_wait(uint8_t lsr_bit)
{
	if (uart_stuck)
		return;
	for (unsigned i = 0; i < UART_SPIN_LIMIT; i++) {
		if (com1_in(UART_LSR) & lsr_bit)
			return;
		cpu_relax();
	}
	uart_stuck = true;
}

void uart_flush(void)
{
	uart_wait(UART_LSR_TEMT);
}

static void uart_tx(char c)
{
	uart_wait(UART_LSR_THRE);
	com1_out(UART_THR, (uint8_t)c);
}

void putc(char c)
{
	if (c == '\n')
		uart_tx('\r');
	uart_tx(c);
}

void uart_write(const char *s)
{
	while (*s)
		putc(*s++);
}

int puts(const char *s)
{
	uart_write(s);
	putc('\n');
	return 0;
}

void guest_halt(void)
{
	for (;;)
		__asm__ volatile("cli; hlt" ::: "memory");
}

void guest_exit(uint8_t code)
{
	uart_flush();
	outb(GUEST_EXIT_PORT, code);
	guest_halt();
}
