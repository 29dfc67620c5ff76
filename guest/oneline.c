/*
 * oneline: the benchmark payload. Prints one line and exits 0 (debug-exit). bench/ boots it
 * under smolvm, under the raw-ioctl floor and under QEMU microvm (PVH entry, same file).
 */
#include "guest.h"

int guest_main(const struct boot_info *bi)
{
	(void)bi;
	printf("oneline: hello from the guest\n");
	return 0;
}
