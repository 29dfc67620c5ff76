/*
 * fuzz-uart: the 16550 UART model (devices/uart-16550) through the fake host: register reads
 * and writes of every width at every port, bytes arriving on its input, resets and restores.
 *
 * Input: a sequence of operations, each one byte and its operands:
 *   op & 3 == 0  read,  width 1 << (op >> 2 & 3), at port offset op >> 4 & 7
 *   op & 3 == 1  write, the same, then the value (width bytes, little-endian)
 *   op & 3 == 2  (op >> 2) + 1 bytes that arrive on the input (a pipe), then the event loop
 *   op & 3 == 3  op >> 2 & 3: 0 the event loop turns, 1 a machine reset, 2 a restore, 3 a
 *                restore of state changed by the input (fuzz-dev.h)
 * An access running past the 8 ports is not made: the core's bus never gives one to a
 * device (core/bus.c).
 *
 * Checked: no sanitizer report; the device only drives its own interrupt line; a restore
 * gives back the state that was saved.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <unistd.h>

#include "fuzz-dev.h"

#define PORT 0x3f8
#define IRQ 4

static int pipe_rd = -1, pipe_wr = -1;
static char input_path[64];
static struct fuzz_cfg cfg = {
	"com1", { "port", "0x3f8", "irq", "4", "output", "none", "input", input_path, NULL }
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int p[2];

	(void)argc;
	(void)argv;
	if (pipe2(p, O_NONBLOCK | O_CLOEXEC) < 0) {
		perror("fuzz-uart: pipe");
		abort();
	}
	pipe_rd = p[0];
	pipe_wr = p[1];
	snprintf(input_path, sizeof(input_path), "/proc/self/fd/%d", pipe_rd);
	return 0;
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
		unsigned width = 1u << (op >> 2 & 3), off = op >> 4 & 7;

		switch (op & 3) {
		case 0:
			if (off + width <= 8)
				(void)fake_pio_read(PORT + off, width);
			break;
		case 1: {
			uint64_t v = in_le(&in, width);
			if (off + width <= 8)
				fake_pio_write(PORT + off, width, v);
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
				break;
			}
		}
	}
	if (fake_irq_misuse()) {
		fprintf(stderr, "fuzz-uart: the UART drove a line it did not claim\n%s",
		        fake_log());
		abort();
	}
	fake_host_fini();
	while (read(pipe_rd, buf, sizeof(buf)) > 0)
		; /* what the device left unread must not reach the next input */
	return 0;
}
