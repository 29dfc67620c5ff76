/* mptable.h: the Intel MultiProcessor Specification 1.4 tables that describe an x86 machine to a
 * kernel when it has no ACPI tables (`[machine] acpi = off`): the processors, the I/O APIC, and
 * how the ISA interrupt lines reach it. Linux reads them for SMP (Firecracker's guests boot so). */
#ifndef SMOLVM_MPTABLE_H
#define SMOLVM_MPTABLE_H

#include <stddef.h>
#include <stdint.h>

/** Where the core places them: Linux scans 0xF0000-0xFFFFF for the floating pointer. */
#define MPTABLE_GPA 0xF0000ull
#define MPTABLE_MAX_SIZE 0xF000ull

struct mptable_machine {
	uint32_t n_vcpus; /**< local APIC ids 0..n-1, vCPU 0 the boot processor (1-254) */
	uint64_t lapic_base; /**< 0xfee00000 */
	uint64_t ioapic_base; /**< 0xfec00000 */
	uint8_t ioapic_id; /**< must differ from every local APIC id */
	uint32_t n_ioapic_pins; /**< 24 */
};

/**
 * Writes the floating pointer structure and the configuration table into @p buf, which the
 * guest sees at @p gpa (16-byte aligned). ISA IRQ 0 (the PIT) arrives on I/O APIC pin 2, the
 * other ISA IRQs on the pin of their number; pins 16 and up are PCI-style lines (level, low)
 * no bus declares, so kernels leave them to ACPI-less drivers that ask by GSI.
 * @return bytes written, -ENOSPC when @p size is too small (nothing written), -EINVAL for a
 *         bad machine
 */
int mptable_build(const struct mptable_machine *mm, uint8_t *buf, size_t size, uint64_t gpa);

#endif
