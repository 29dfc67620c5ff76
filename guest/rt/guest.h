/*
 * smolvm guest kit: a tiny freestanding runtime for bare-metal x86_64 test
 * payloads (no libc).
 *
 * A payload defines
 *     int guest_main(const struct boot_info *bi);
 * The runtime enters in 64-bit long mode either through smolvm's entry
 * (ELF e_entry, rsi = Linux zero page) or through the PVH note (QEMU microvm
 * and friends), normalises what the loader handed over into a struct
 * boot_info, initialises COM1 and calls guest_main(); its return value
 * (low 8 bits) goes to guest_exit().
 *
 * Everything is single-threaded, polled, interrupts off.
 */
#ifndef SMOLVM_GUEST_H
#define SMOLVM_GUEST_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GUEST_NORETURN __attribute__((noreturn))
#define GUEST_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- port I/O ---------------------------------------------------------- */

static inline void outb(uint16_t port, uint8_t v)
{
	__asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port) : "memory");
}
static inline void outw(uint16_t port, uint16_t v)
{
	__asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port) : "memory");
}
static inline void outl(uint16_t port, uint32_t v)
{
	__asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port) : "memory");
}
static inline uint8_t inb(uint16_t port)
{
	uint8_t v;
	__asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port) : "memory");
	return v;
}
static inline uint16_t inw(uint16_t port)
{
	uint16_t v;
	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port) : "memory");
	return v;
}
static inline uint32_t inl(uint16_t port)
{
	uint32_t v;
	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port) : "memory");
	return v;
}

/* MMIO helpers for later payloads (virtio-mmio etc.). */
static inline uint32_t mmio_read32(uint64_t addr)
{
	return *(volatile uint32_t *)(uintptr_t)addr;
}
static inline void mmio_write32(uint64_t addr, uint32_t v)
{
	*(volatile uint32_t *)(uintptr_t)addr = v;
}

static inline void cpu_relax(void)
{
	__asm__ volatile("pause" ::: "memory");
}

/* ---- interrupts: a 64-bit IDT of the payload's own --------------------------- */

#define GUEST_SEL_CODE64 0x10 /* rt/start.S's 64-bit code segment */

struct idt_gate {
	uint16_t off_lo, sel;
	uint8_t ist, attr;
	uint16_t off_mid;
	uint32_t off_hi, zero;
} __attribute__((packed));

/* A present, DPL 0, 64-bit interrupt gate (interrupts off on entry) to @handler. */
static inline struct idt_gate idt_gate(const void *handler)
{
	uint64_t a = (uint64_t)(uintptr_t)handler;
	return (struct idt_gate){ .off_lo = (uint16_t)a,
		                  .sel = GUEST_SEL_CODE64,
		                  .attr = 0x8e,
		                  .off_mid = (uint16_t)(a >> 16),
		                  .off_hi = (uint32_t)(a >> 32) };
}

/* Loads @n gates at @idt (16-byte aligned, alive as long as interrupts may come). */
static inline void idt_load(const struct idt_gate *idt, size_t n)
{
	struct __attribute__((packed)) {
		uint16_t limit;
		uint64_t base;
	} idtr = { (uint16_t)(n * sizeof(*idt) - 1), (uint64_t)(uintptr_t)idt };
	__asm__ volatile("lidt %0" : : "m"(idtr));
}

/* ---- boot information (rt/boot.c) -------------------------------------- */

enum boot_kind {
	BOOT_KIND_LINUX = 0, /* smolvm: 64-bit entry, Linux zero page */
	BOOT_KIND_PVH = 1, /* PVH: 32-bit entry, hvm_start_info */
};

/* e820 types (same values in the zero page and in the PVH memory map) */
#define E820_RAM 1
#define E820_RESERVED 2
#define E820_ACPI 3
#define E820_NVS 4
#define E820_UNUSABLE 5
#define E820_PMEM 7

#define BOOT_MAX_MEM 128
#define BOOT_CMDLINE_MAX 4096

struct boot_mem {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
};

struct boot_info {
	enum boot_kind kind;
	const char *entry; /* "linux-zero-page" or "pvh" */
	uint64_t info_paddr; /* zero page or hvm_start_info address */
	const char *cmdline; /* never NULL, "" when none; a private copy */
	bool cmdline_truncated;
	uint64_t rsdp_paddr; /* PVH only, 0 otherwise */
	uint32_t nr_mem;
	struct boot_mem mem[BOOT_MAX_MEM];
	const char *warning; /* NULL, or what looked wrong in the boot data */
};

/* Provided by the payload. */
int guest_main(const struct boot_info *bi);

/* Called by rt/start.S with the entry kind and the boot data's address. */
GUEST_NORETURN void guest_boot(uint32_t kind, uint64_t info_paddr);

const struct boot_info *guest_boot_info(void);
const char *guest_cmdline(void);
const char *guest_mem_type_name(uint32_t type);

/*
 * Look up "key=value" (or a bare "key") among the space-separated words of
 * the command line. Copies the value (NUL-terminated, truncated to fit) into
 * buf when buf/size allow. Returns the value's full length (0 for a bare
 * key) or -1 when the key is absent.
 */
int guest_cmdline_get(const char *key, char *buf, size_t size);
bool guest_cmdline_has(const char *key);
/* The decimal value of key=VALUE, or @dflt when the key is absent or bare or its value is not
 * all digits. */
uint64_t guest_cmdline_u64(const char *key, uint64_t dflt);

/*
 * Walks the command line's words (split at spaces, tabs and newlines): from
 * *pos (start at guest_cmdline()), returns the next word and its length in
 * *len, with *pos moved past it; NULL after the last word.
 */
const char *guest_cmdline_word(const char **pos, size_t *len);

/* ---- exit -------------------------------------------------------------- */

#define GUEST_EXIT_PORT 0xf4

/*
 * Writes code to the debug-exit port 0xf4 (smolvm exits with `code`, QEMU's
 * isa-debug-exit with (code << 1) | 1), then halts forever.
 */
GUEST_NORETURN void guest_exit(uint8_t code);
GUEST_NORETURN void guest_halt(void);

/* ---- COM1 16550 console (rt/uart.c) ------------------------------------ */

#define COM1_BASE 0x3f8

/* 16550 register offsets and bits (NS PC16550D) */
#define UART_RBR 0 /* DLAB=0, read */
#define UART_THR 0 /* DLAB=0, write */
#define UART_DLL 0 /* DLAB=1 */
#define UART_IER 1 /* DLAB=0 */
#define UART_DLM 1 /* DLAB=1 */
#define UART_IIR 2 /* read */
#define UART_FCR 2 /* write */
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7

#define UART_IER_ERBFI 0x01
#define UART_IER_ETBEI 0x02
#define UART_IER_ELSI 0x04
#define UART_IER_EDSSI 0x08

#define UART_IIR_NO_INT 0x01
#define UART_IIR_ID_MASK 0x0e
#define UART_IIR_MSI 0x00
#define UART_IIR_THRI 0x02
#define UART_IIR_RDI 0x04
#define UART_IIR_RLSI 0x06
#define UART_IIR_CTI 0x0c
#define UART_IIR_FIFO 0xc0

#define UART_FCR_ENABLE 0x01
#define UART_FCR_RCVR_RESET 0x02
#define UART_FCR_XMIT_RESET 0x04

#define UART_LCR_8N1 0x03
#define UART_LCR_DLAB 0x80

#define UART_MCR_DTR 0x01
#define UART_MCR_RTS 0x02
#define UART_MCR_OUT1 0x04
#define UART_MCR_OUT2 0x08
#define UART_MCR_LOOP 0x10

#define UART_LSR_DR 0x01
#define UART_LSR_OE 0x02
#define UART_LSR_PE 0x04
#define UART_LSR_FE 0x08
#define UART_LSR_BI 0x10
#define UART_LSR_THRE 0x20
#define UART_LSR_TEMT 0x40
#define UART_LSR_FIFOERR 0x80

#define UART_MSR_DCTS 0x01
#define UART_MSR_DDSR 0x02
#define UART_MSR_TERI 0x04
#define UART_MSR_DDCD 0x08
#define UART_MSR_CTS 0x10
#define UART_MSR_DSR 0x20
#define UART_MSR_RI 0x40
#define UART_MSR_DCD 0x80

/* 115200 8N1, interrupts off, DTR|RTS; FCR left alone. */
void uart_init(void);
/* Waits (bounded) until the transmitter is completely idle (LSR.TEMT). */
void uart_flush(void);

void putc(char c); /* '\n' -> "\r\n" */
void uart_write(const char *s); /* no newline added */
int puts(const char *s); /* like C: appends '\n' */

/* ---- formatted output (rt/printf.c) ------------------------------------
 * Conversions: %d %i %u %x %X %c %s %p %%, length h hh l ll z, flags '-' '0',
 * width (number or '*'), precision for %s only ('.N' or '.*').
 */
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int snprintf(char *buf, size_t size, const char *fmt, ...) GUEST_PRINTF(3, 4);
int vprintf(const char *fmt, va_list ap);
int printf(const char *fmt, ...) GUEST_PRINTF(1, 2);

/* ---- string.h subset (rt/string.c) ------------------------------------- */

void *memset(void *s, int c, size_t n);
void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
size_t strnlen(const char *s, size_t max);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strchr(const char *s, int c);

#endif
