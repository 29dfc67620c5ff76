/*
 * snap-bench: the payload of the snapshot table (bench/snap.c). guest_main asks for a snapshot
 * first thing (one byte to the snapshot-port device, port 0xf5); every restore resumes at the
 * next instruction, which writes the marker '@' to COM1's THR (the host timestamps its arrival
 * on smolvm's stdout) and then exits 0 through debug-exit. With `snap-bench.idle` on the
 * command line (read before the snapshot, so it is part of the file) a restore halts with
 * interrupts off after the marker instead of exiting: an idle clone whose memory the host
 * samples before killing it.
 *
 * Under QEMU microvm and the raw floor nothing listens at 0xf5: the write is dropped and the
 * payload runs from its entry straight to the marker and the exit.
 */
#include "guest.h"

#define SNAP_PORT 0xf5
#define MARKER '@'

int guest_main(const struct boot_info *bi)
{
	(void)bi;
	bool idle = guest_cmdline_has("snap-bench.idle");
	outb(SNAP_PORT, 1);
	/* a restore starts here */
	outb(COM1_BASE, MARKER);
	if (idle)
		for (;;)
			__asm__ volatile("cli; hlt" ::: "memory");
	return 0;
}
