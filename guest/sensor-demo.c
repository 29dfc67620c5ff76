/*
 * sensor-demo: the guest side of plugins/example-sensor, driven from the host through
 * `smolvm ctl SOCK call sensor.METHOD ...` while it runs (tests/kvm/ctl-test). It finds the
 * sensor through the example_sensor.device=BASE:IRQ word of its command line, routes that
 * line through the I/O APIC (level-triggered, active high) to an interrupt handler of its own,
 * enables the sensor's interrupt and waits for two of them:
 *   1. a fault the host injects: STATUS.FAULT, with FAULT and TEMP (invalid) as read in the
 *      handler;
 *   2. an alarm (the reading above THRESHOLD): every register, as read in the handler.
 * Each is printed on one line the host compares with what it set. The handler clears STATUS
 * (write 1 to clear: the line drops) before its EOI.
 * Exit codes: 0 both seen; 30 no sensor on the command line; 31 wrong magic; 32 no interrupt
 * within 60 s; 33 the interrupt came with an unexpected status.
 */
#include "guest.h"
#include "virtio.h" /* tsc_khz, rdtsc */

#include "../plugins/example-sensor/example-sensor.h"

#define VECTOR 0x40
#define LAPIC 0xfee00000ull
#define LAPIC_TPR 0x80
#define LAPIC_EOI 0xb0
#define LAPIC_SVR 0xf0
#define LAPIC_LVT_LINT0 0x350
#define LAPIC_LVT_LINT1 0x360
#define IOAPIC 0xfec00000ull
#define WAIT_S 60

static uint64_t base;

/* What the handler saw, one record per interrupt. */
struct seen {
	uint32_t status, temp, threshold, hysteresis, offset, fault, rate, alarms;
	uint64_t serial;
	char model[SENSOR_MODEL_LEN + 1];
};
static struct seen seen[4];
static volatile unsigned n_irqs;

static uint32_t reg(unsigned off)
{
	return mmio_read32(base + off);
}

/* Called by the stub below with interrupts off, on the interrupted stack. */
void sensor_irq(void);
void sensor_irq(void)
{
	uint32_t status = reg(REG_STATUS);
	if (n_irqs < 4) {
		struct seen *s = &seen[n_irqs];
		s->status = status;
		s->temp = reg(REG_TEMP);
		s->threshold = reg(REG_THRESHOLD);
		s->hysteresis = reg(REG_HYSTERESIS);
		s->offset = reg(REG_OFFSET);
		s->fault = reg(REG_FAULT);
		s->rate = reg(REG_RATE);
		s->alarms = reg(REG_ALARMS);
		s->serial = reg(REG_SERIAL_LO) | (uint64_t)reg(REG_SERIAL_HI) << 32;
		for (unsigned k = 0; k < SENSOR_MODEL_LEN; k += 4) {
			uint32_t v = reg(REG_MODEL + k);
			memcpy(s->model + k, &v, 4);
		}
		s->model[SENSOR_MODEL_LEN] = '\0';
	}
	mmio_write32(base + REG_STATUS, status); /* the line drops */
	n_irqs++;
	mmio_write32(LAPIC + LAPIC_EOI, 0);
}

/* Saves the registers the C ABI lets sensor_irq clobber; 9 pushes on the 40-byte frame leave
 * the stack 16-byte aligned for the call. */
__asm__(".pushsection .text\n"
        ".globl sensor_stub\n"
        "sensor_stub:\n"
        "pushq %rax\n pushq %rcx\n pushq %rdx\n pushq %rsi\n pushq %rdi\n"
        "pushq %r8\n pushq %r9\n pushq %r10\n pushq %r11\n"
        "cld\n"
        "call sensor_irq\n"
        "popq %r11\n popq %r10\n popq %r9\n popq %r8\n"
        "popq %rdi\n popq %rsi\n popq %rdx\n popq %rcx\n popq %rax\n"
        "iretq\n"
        ".globl spurious_stub\n"
        "spurious_stub:\n" /* the LAPIC's spurious vector: no EOI */
        "iretq\n"
        ".popsection\n");
extern const char sensor_stub[], spurious_stub[];

static struct idt_gate idt[256] __attribute__((aligned(16)));

static void ioapic_write(uint32_t index, uint32_t v)
{
	mmio_write32(IOAPIC, index);
	mmio_write32(IOAPIC + 0x10, v);
}

static void setup_interrupts(uint32_t line)
{
	idt[VECTOR] = idt_gate(sensor_stub);
	idt[0xff] = idt_gate(spurious_stub);
	idt_load(idt, 256);
	/* the 8259s stay out of it: every line masked */
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
	mmio_write32(LAPIC + LAPIC_LVT_LINT0, 1u << 16);
	mmio_write32(LAPIC + LAPIC_LVT_LINT1, 1u << 16);
	mmio_write32(LAPIC + LAPIC_TPR, 0);
	mmio_write32(LAPIC + LAPIC_SVR, 0x100 | 0xff); /* enabled, spurious vector 0xff */
	/* pin = GSI: fixed delivery, physical destination APIC 0, active high, level */
	ioapic_write(0x11 + 2 * line, 0);
	ioapic_write(0x10 + 2 * line, VECTOR | 1u << 15);
}

/* Waits with interrupts on for interrupt number @want (1-based); false after WAIT_S. */
static bool wait_irq(unsigned want, uint64_t khz)
{
	uint64_t end = rdtsc() + khz * 1000 * WAIT_S;
	__asm__ volatile("sti");
	while (n_irqs < want && rdtsc() < end)
		cpu_relax();
	__asm__ volatile("cli");
	return n_irqs >= want;
}

static uint64_t parse_hex(const char **p)
{
	uint64_t v = 0;
	if ((*p)[0] == '0' && ((*p)[1] == 'x' || (*p)[1] == 'X'))
		*p += 2;
	for (;; (*p)++) {
		char c = **p;
		unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
		             : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
		             : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
		                                    : 16u;
		if (d == 16)
			return v;
		v = v * 16 + d;
	}
}

static uint64_t parse_dec(const char **p)
{
	uint64_t v = 0;
	while (**p >= '0' && **p <= '9')
		v = v * 10 + (uint64_t)(*(*p)++ - '0');
	return v;
}

int guest_main(const struct boot_info *bi)
{
	(void)bi;
	char word[64];
	if (guest_cmdline_get("example_sensor.device", word, sizeof(word)) < 0) {
		printf("sensor-demo: no example_sensor.device= on the command line\n");
		return 30;
	}
	const char *p = word;
	base = parse_hex(&p);
	uint32_t line = *p == ':' ? (p++, (uint32_t)parse_dec(&p)) : 0;
	if (!base || *p || line > 23) {
		printf("sensor-demo: cannot read '%s'\n", word);
		return 30;
	}
	if (reg(REG_MAGIC) != SENSOR_MAGIC) {
		printf("sensor-demo: 0x%llx: magic 0x%08x\n", (unsigned long long)base,
		       reg(REG_MAGIC));
		return 31;
	}
	const char *src;
	uint64_t khz = tsc_khz(&src);
	setup_interrupts(line);
	mmio_write32(base + REG_CTRL, CTRL_IRQ_EN);
	printf("sensor-demo: sensor at 0x%llx, line %u: %d mC, threshold %d mC\n",
	       (unsigned long long)base, line, (int32_t)reg(REG_TEMP), (int32_t)reg(REG_THRESHOLD));
	printf("sensor-demo: ready for a fault\n");
	if (!wait_irq(1, khz)) {
		printf("sensor-demo: no interrupt in %d s\n", WAIT_S);
		return 32;
	}
	struct seen *s = &seen[0];
	printf("sensor-demo: interrupt 1: status 0x%x fault %u temp 0x%08x\n", s->status, s->fault,
	       s->temp);
	if (s->status != STATUS_FAULT)
		return 33;
	printf("sensor-demo: ready for an alarm\n");
	if (!wait_irq(2, khz)) {
		printf("sensor-demo: no interrupt in %d s\n", WAIT_S);
		return 32;
	}
	s = &seen[1];
	printf("sensor-demo: interrupt 2: status 0x%x temp %d threshold %d hysteresis %u offset %d "
	       "fault %u rate %u serial 0x%016llx alarms %u model '%s'\n",
	       s->status, (int32_t)s->temp, (int32_t)s->threshold, s->hysteresis,
	       (int32_t)s->offset, s->fault, s->rate, (unsigned long long)s->serial, s->alarms,
	       s->model);
	if (s->status != STATUS_ALARM)
		return 33;
	printf("sensor-demo: line low after the handler: status 0x%x, %u interrupts\n",
	       reg(REG_STATUS), n_irqs);
	return 0;
}
