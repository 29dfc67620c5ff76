/* kvm-smoke-arm64-guest.S: the guest code of kvm-smoke-arm64, position independent, copied
 * to SMOKE_RAM_BASE and entered there at EL1 with the MMU off. It stores 0..N-1 to
 * SMOKE_MMIO_DATA (one MMIO exit each), stores N to the ioeventfd address (no exit), and
 * ends with PSCI SYSTEM_OFF through hvc #0. It only reaches the wfi loop if SYSTEM_OFF
 * returned (the host then sees no system event and fails). */
#include "kvm-smoke-arm64.h"

	.section .rodata, "a"
	.balign 4
	.globl smoke_guest_start
	.globl smoke_guest_end
smoke_guest_start:
	movz	x1, #(SMOKE_MMIO_DATA >> 16), lsl #16
	add	x4, x1, #SMOKE_MMIO_EVENT_OFF
	movz	w3, #0
	movz	w2, #SMOKE_N_WRITES
1:	str	w3, [x1]
	add	w3, w3, #1
	subs	w2, w2, #1
	b.ne	1b
	str	w3, [x4]
	movz	x0, #(SMOKE_PSCI_SYSTEM_OFF & 0xffff)
	movk	x0, #(SMOKE_PSCI_SYSTEM_OFF >> 16), lsl #16
	hvc	#0
2:	wfi
	b	2b
smoke_guest_end:
	.section .note.GNU-stack, "", %progbits
