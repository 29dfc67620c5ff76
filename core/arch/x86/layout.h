/* layout.h: where x86 guest RAM lies: below the 32-bit MMIO hole, the rest above 4 GiB. */
#ifndef SMOLVM_X86_LAYOUT_H
#define SMOLVM_X86_LAYOUT_H

#include <stdint.h>

struct guest_mem;

#define X86_MMIO_HOLE_START 0xC0000000ull /**< 3 GiB */
#define X86_HIGH_RAM_START 0x100000000ull /**< 4 GiB */
/** Interrupt lines devices may claim: the in-kernel I/O APIC's pins (GSIs 0-23). */
#define X86_IRQS 24

/** Computes the x86 layout for @p size bytes of RAM, without allocating. */
void mem_layout_x86(struct guest_mem *m, uint64_t size);

#endif
