/* hello.S: a bare-metal aarch64 payload for smolvm's arm64 machines (tests/nest/arm64-hello),
 * a flat arm64 Image (Linux's Documentation/arch/arm64/booting.rst header: text_offset 0,
 * image_size set, little-endian, magic "ARM\x64" at 0x38). Entered at EL1 with the MMU off, it
 * writes "hello\n" to the PL011 data register at 0x9000000 and ends with PSCI PSCI_FN through
 * hvc #0 (SMCCC: function ID in w0): SYSTEM_OFF (0x84000008) or SYSTEM_RESET (0x84000009).
 * Position independent: it runs wherever the loader put it. If the PSCI call returns, it writes
 * "psci returned\n" and waits for interrupts forever (the host then times out). */
#ifndef PSCI_FN
#define PSCI_FN 0x84000008
#endif
#define PL011_DR 0x09000000

	.section .text, "ax"
	.globl	_start
_start:
	b	entry			/* code0 */
	.long	0			/* code1 */
	.quad	0			/* text_offset */
	.quad	image_end - _start	/* image_size */
	.quad	0			/* flags: little-endian, page size unspecified, 2 MiB base */
	.quad	0, 0, 0			/* res2-res4 */
	.ascii	"ARM\x64"		/* magic */
	.long	0			/* res5: no PE header */

entry:
	mov	x19, x0			/* the device tree, unused */
	movz	x1, #(PL011_DR >> 16), lsl #16
	adr	x2, msg
	bl	puts
	movz	x0, #(PSCI_FN & 0xffff)
	movk	x0, #(PSCI_FN >> 16), lsl #16
	hvc	#0
	adr	x2, returned
	bl	puts
1:	wfi
	b	1b

/* Writes the NUL-terminated string at x2 to the PL011 at x1, one 32-bit store per byte. */
puts:
	ldrb	w3, [x2], #1
	cbz	w3, 2f
	str	w3, [x1]
	b	puts
2:	ret

msg:	.asciz	"hello\n"
returned: .asciz "psci returned\n"
	.balign	8
image_end:
	.section .note.GNU-stack, "", %progbits
