/* mptable.c: MP floating pointer + configuration table (Intel MultiProcessor Specification,
 * version 1.4, chapter 4): processor, bus, I/O APIC, I/O interrupt and local interrupt entries,
 * checksums over each structure summing to zero. */
#include "mptable.h"

#include <errno.h>
#include <string.h>

#define MPF_SIZE 16 /* floating pointer structure */
#define MPC_HEADER 44 /* configuration table header */
#define MPC_PROCESSOR 20
#define MPC_ENTRY 8 /* bus, I/O APIC, I/O interrupt, local interrupt */
#define ISA_IRQS 16

enum { ENTRY_PROCESSOR, ENTRY_BUS, ENTRY_IOAPIC, ENTRY_IOINT, ENTRY_LINT };
enum { INT_INT = 0, INT_NMI = 1, INT_EXTINT = 3 };

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static uint8_t checksum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	while (n--)
		s = (uint8_t)(s + *p++);
	return (uint8_t)-s;
}

static uint8_t *interrupt(uint8_t *e, int type, int kind, uint8_t src_irq, uint8_t dst_id,
                          uint8_t dst_pin)
{
	e[0] = (uint8_t)type;
	e[1] = (uint8_t)kind;
	put16(e + 2, 0); /* polarity and trigger conform to the bus (ISA: edge, high) */
	e[4] = 0; /* source bus: ISA, bus 0 */
	e[5] = src_irq;
	e[6] = dst_id;
	e[7] = dst_pin;
	return e + MPC_ENTRY;
}

int mptable_build(const struct mptable_machine *mm, uint8_t *buf, size_t size, uint64_t gpa)
{
	if (mm->n_vcpus < 1 || mm->n_vcpus > 254 || mm->ioapic_id < mm->n_vcpus ||
	    mm->n_ioapic_pins < ISA_IRQS || (gpa & 15) || gpa + size > (1ull << 32))
		return -EINVAL;
	/* processors, one ISA bus, one I/O APIC, 15 ISA interrupts (IRQ 2 is the cascade),
	 * ExtINT on LINT0, NMI on LINT1 */
	size_t n_entries = mm->n_vcpus + 1 + 1 + (ISA_IRQS - 1) + 2;
	size_t table =
	        MPC_HEADER + mm->n_vcpus * MPC_PROCESSOR + (n_entries - mm->n_vcpus) * MPC_ENTRY;
	size_t total = MPF_SIZE + table;
	if (size < total)
		return -ENOSPC;
	memset(buf, 0, total);

	/* floating pointer: "_MP_", the configuration table's address, 16-byte units, rev 1.4 */
	uint8_t *f = buf;
	memcpy(f, "_MP_", 4);
	put32(f + 4, (uint32_t)(gpa + MPF_SIZE));
	f[8] = 1;
	f[9] = 4;
	/* f[11] = 0: a configuration table is present; f[12] bit 7 = 0: no IMCR (virtual wire) */
	f[10] = checksum(f, MPF_SIZE);

	uint8_t *h = buf + MPF_SIZE, *e = h + MPC_HEADER;
	memcpy(h, "PCMP", 4);
	put16(h + 4, (uint16_t)table);
	h[6] = 4;
	memcpy(h + 8, "SMOLVM  ", 8);
	memcpy(h + 16, "SMOLVM      ", 12);
	put16(h + 34, (uint16_t)n_entries);
	put32(h + 36, (uint32_t)mm->lapic_base);

	for (uint32_t i = 0; i < mm->n_vcpus; i++) {
		e[0] = ENTRY_PROCESSOR;
		e[1] = (uint8_t)i; /* local APIC id */
		e[2] = 0x14; /* local APIC version: integrated */
		e[3] = (uint8_t)(1u | (i == 0 ? 2u : 0u)); /* enabled, boot processor */
		put32(e + 4, 0x600); /* signature: family 6 (kernels take CPUID's word over it) */
		put32(e + 8, 0x201); /* features: FPU, APIC */
		e += MPC_PROCESSOR;
	}
	e[0] = ENTRY_BUS;
	e[1] = 0;
	memcpy(e + 2, "ISA   ", 6);
	e += MPC_ENTRY;
	e[0] = ENTRY_IOAPIC;
	e[1] = mm->ioapic_id;
	e[2] = 0x11; /* version */
	e[3] = 1; /* enabled */
	put32(e + 4, (uint32_t)mm->ioapic_base);
	e += MPC_ENTRY;
	for (uint8_t irq = 0; irq < ISA_IRQS; irq++) {
		if (irq == 2)
			continue;
		e = interrupt(e, ENTRY_IOINT, INT_INT, irq, mm->ioapic_id, irq == 0 ? 2 : irq);
	}
	e = interrupt(e, ENTRY_LINT, INT_EXTINT, 0, 0xff, 0); /* every local APIC's LINT0 */
	e = interrupt(e, ENTRY_LINT, INT_NMI, 0, 0xff, 1); /* and LINT1 */
	h[7] = checksum(h, table);
	return (int)total;
}
