/*
 * crash: prints a line, then triple-faults on purpose (an empty IDT and an int3), so tests can
 * check that smolvm reports the dead vCPU with its registers and a non-zero status.
 */
#include "guest.h"

int guest_main(const struct boot_info *bi)
{
	(void)bi;
	printf("crash: loading an empty IDT and raising #BP\n");
	struct __attribute__((packed)) {
		uint16_t limit;
		uint64_t base;
	} idt = { 0, 0 };
	__asm__ volatile("lidt %0; int3" : : "m"(idt));
	printf("crash: still alive?\n");
	return 99;
}
