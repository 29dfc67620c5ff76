/*
 * fuzz-pl011: the PL011 UART model (devices/pl011, with the serial host side) through the fake
 * host: register reads and writes of every width anywhere in its 4 KiB, bytes arriving on its
 * input, resets and restores.
 *
 * Input: a sequence of operations, each one byte and its operands:
 *   op & 3 == 0  read,  width 1 << (op >> 2 & 3), at the offset of the next 2 bytes (& 0xfff)
 *   op & 3 == 1  write, the same, then the value (width bytes, little-endian)
 *   op & 3 == 2  (op >> 2) + 1 bytes that arrive on the input (a pipe), then the event loop
 *   op & 3 == 3  op >> 2 & 3: 0 the event loop turns, 1 a machine reset, 2 a restore, 3 a
 *                restore of state changed by the input (fuzz-dev.h)
 * Offsets starting with bit 15 set pick a register word (offset & 0x4c, the registers' span)
 * rather than any byte: most of the 4 KiB reads as 0. An access running past the region is
 * not made: the core's bus never gives one to a device (core/bus.c).
 *
 * Checked: no sanitizer report; the device only drives its own interrupt line, and the line is
 * high exactly when RIS & IMSC is not 0; a restore gives back the state that was saved.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <unistd.h>

#include "fuzz-dev.h"

#define BASE 0x09000000ull
#define IRQ 33

static int pipe_rd = -1, pipe_wr = -1;
static char input_path[64];
static struct fuzz_cfg cfg = { "serial0",
	                       { "base", "0x09000000", "irq", "33", "output", "none", "input",
	                         input_path, NULL } };

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int p[2];

	(void)argc;
	(void)argv;
	if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0) {
		perror("fuzz-pl011: pipe");
		abort();
	}
	pipe_rd = p[0];
	pipe_wr = p[1];
	snprintf(input_path, sizeof(input_path), "/proc/self/fd/%d", pipe_rd);
	return 0;
}

static uint64_t offset(struct in *in)
{
	uint64_t o = in_le(in, 2);

	return (o & 0x8000) ? (o & 0x4c) : (o & 0xfff);
}

/* RIS (0x03c) and IMSC (0x038) reads have no side effects. */
static void check_line(void)
{
	int want = (fake_mmio_read(BASE + 0x03c, 4) & fake_mmio_read(BASE + 0x038, 4)) != 0;

	if (fake_irq_level(IRQ) != want) {
		fprintf(stderr, "fuzz-pl011: the line is %d with RIS & IMSC %s\n%s",
		        fake_irq_level(IRQ), want ? "set" : "clear", fake_log());
		abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };
	unsigned budget = 12;
	uint8_t buf[64];

	fake_host_init();
	struct smol_dev *d = fuzz_dev_create(&cfg);
	while (d && in_left(&in)) {
		uint8_t op = in_u8(&in);
		unsigned width = 1u << (op >> 2 & 3);

		switch (op & 3) {
		case 0: {
			uint64_t off = offset(&in);
			if (off + width <= 0x1000)
				(void)fake_mmio_read(BASE + off, width);
			break;
		}
		case 1: {
			uint64_t off = offset(&in), v = in_le(&in, width);
			if (off + width <= 0x1000)
				fake_mmio_write(BASE + off, width, v);
			break;
		}
		case 2: {
			size_t n = in_bytes(&in, buf, (op >> 2) + 1u);
			if (n && write(pipe_wr, buf, n) < 0)
				break; /* the pipe is full: the guest is not reading */
			(void)fake_fd_pump(0);
			break;
		}
		default:
			switch (op >> 2 & 3) {
			case 0: (void)fake_fd_pump(0); break;
			case 1: fake_dev_reset(d); break;
			default:
				d = fuzz_dev_restore(d, &cfg, &in, (op >> 2 & 3) == 3, &budget);
				if (d) /* the core sets the restored line to its saved level */
					(void)fake_host.irq_set(d, IRQ,
					                        (fake_mmio_read(BASE + 0x03c, 4) &
					                         fake_mmio_read(BASE + 0x038, 4)) !=
					                                0);
				break;
			}
		}
		if (d)
			check_line();
	}
	if (fake_irq_misuse()) {
		fprintf(stderr, "fuzz-pl011: the PL011 drove a line it did not claim\n%s",
		        fake_log());
		abort();
	}
	fake_host_fini();
	while (read(pipe_rd, buf, sizeof(buf)) > 0)
		; /* what the device left unread must not reach the next input */
	return 0;
}
