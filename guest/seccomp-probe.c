/*
 * seccomp-probe: asks the seccomp-probe test device (tests/kvm/seccomp-probe.c, port 0x530)
 * to call execve on the vCPU thread (probe=vcpu) or on its own thread (probe=io), then
 * reports what came back. Under seccomp smolvm ends before that; with seccomp off execve
 * fails with ENOENT (2) and the guest exits 0. probe=none: prints a line and spins (the test
 * looks at the running machine's threads, then stops it).
 */
#include "guest.h"

#define PROBE_PORT 0x530

int guest_main(const struct boot_info *bi)
{
	char what[16];

	(void)bi;
	if (guest_cmdline_get("probe", what, sizeof(what)) < 0)
		memcpy(what, "none", 5);
	if (strcmp(what, "none") == 0) {
		printf("seccomp-probe: running\n");
		for (;;)
			__asm__ volatile("pause");
	}
	uint8_t how = strcmp(what, "vcpu") == 0 ? 1 : 2;
	printf("seccomp-probe: asking for execve on the %s thread\n", what);
	outb(PROBE_PORT, how);
	uint8_t r = 0;
	for (unsigned long spins = 0; spins < 2000000000ul; spins++) {
		r = inb(PROBE_PORT);
		if (r)
			break;
	}
	printf("seccomp-probe: execve came back (%u)\n", r);
	return r == 2 ? 0 : 1; /* ENOENT */
}
