/*
 * Unit tests of uart-16550.so's output side through the fake host: an output that does not
 * read never blocks the transmitting thread, the transmitter looks busy (LSR.THRE/TEMT) while
 * the host buffer is full and raises THR empty when it drains, nothing is lost on a slow
 * reader, and outputs that would block or make no sense are refused at once.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fake-host.h"

#define BASE 0x3f8
enum { THR = 0, IER = 1, IIR = 2, MCR = 4, LSR = 5 };
#define IER_ETBEI 0x02
#define IIR_THRI 0x02
#define MCR_OUT2 0x08
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

static const struct smol_plugin_desc *plugin;
static struct smol_dev *dev;
static char tmpdir[64];
static char fifo[128];

static void setup(void)
{
	const char *so = getenv("UART_16550_SO");

	signal(SIGPIPE, SIG_IGN); /* as smolvm's main() does: a gone reader is EPIPE */
	fake_host_init();
	plugin = fake_plugin_open(so ? so : UART_16550_SO);
	cr_assert(plugin, "cannot load the plugin: %s", fake_log());
	strcpy(tmpdir, "/tmp/uart-out-XXXXXX");
	cr_assert(mkdtemp(tmpdir));
	fake_cfg_dir(tmpdir);
	snprintf(fifo, sizeof(fifo), "%s/fifo", tmpdir);
	cr_assert_eq(mkfifo(fifo, 0600), 0);
}

static void teardown(void)
{
	char cmd[128];

	fake_host_fini();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmpdir);
}

TestSuite(uart_out, .init = setup, .fini = teardown, .timeout = 20);

static int create_with_output(const char *output)
{
	dev = fake_dev_new("com1");
	fake_cfg_set(dev, "output", output);
	fake_cfg_set(dev, "input", "none");
	return fake_dev_create(dev, plugin, 0);
}

static uint8_t rd(unsigned reg)
{
	return (uint8_t)fake_pio_read(BASE + reg, 1);
}

static void wr(unsigned reg, uint8_t v)
{
	fake_pio_write(BASE + reg, 1, v);
}

/* The fd the UART watches for output room, or -1. */
static int out_watch(void)
{
	for (int fd = 3; fd < 1024; fd++)
		if (fake_fd_watched(fd) && fake_fd_events(fd) == SMOL_FD_OUT)
			return fd;
	return -1;
}

/* Opens the FIFO's reading end (non-blocking), with a one-page pipe. */
static int open_reader(void)
{
	int r = open(fifo, O_RDONLY | O_NONBLOCK);

	cr_assert_geq(r, 0, "cannot open the FIFO: %s", strerror(errno));
	return r;
}

/* Writes like a polling driver: THR while LSR says THRE, up to @max bytes; the count. */
static size_t write_while_ready(uint8_t first, size_t max)
{
	size_t n = 0;

	while (n < max && (rd(LSR) & LSR_THRE))
		wr(THR, (uint8_t)(first + n++));
	return n;
}

Test(uart_out, stalled_reader_never_blocks_and_loses_nothing)
{
	int rfd = open_reader();

	cr_assert_eq(create_with_output(fifo), 0, "%s", fake_log());
	cr_assert_eq(fcntl(rfd, F_SETPIPE_SZ, 4096), 4096);
	wr(MCR, MCR_OUT2);
	wr(IER, IER_ETBEI);
	cr_assert_eq(rd(IIR) & 0x0f, IIR_THRI);

	/* nobody reads: the pipe fills, then the host buffer, and the transmitter turns busy */
	size_t sent = write_while_ready(0, 1 << 20);
	cr_assert_lt(sent, 1 << 20, "THRE never cleared: the output did not fill");
	cr_assert_geq(sent, 4096, "only %zu bytes before THRE cleared", sent);
	uint8_t lsr = rd(LSR);
	cr_assert_eq(lsr & (LSR_THRE | LSR_TEMT), 0, "LSR 0x%02x with the buffer full", lsr);
	cr_assert_neq(rd(IIR) & 0x0f, IIR_THRI, "THR empty raised while busy");
	cr_assert_eq(fake_irq_level(4), 0, "the IRQ line is up while the transmitter is busy");
	int wfd = out_watch();
	cr_assert_geq(wfd, 0, "the UART does not wait for output room");

	/* the reader reads: each room the loop offers drains the buffer, then THR empty */
	uint8_t *got = malloc(sent);
	size_t have = 0;
	for (int round = 0; round < 100000 && have < sent; round++) {
		ssize_t n = read(rfd, got + have, sent - have);
		if (n > 0)
			have += (size_t)n;
		if (out_watch() >= 0)
			fake_fd_fire(wfd, SMOL_FD_OUT);
	}
	cr_assert_eq(have, sent, "read %zu of %zu bytes", have, sent);
	for (size_t i = 0; i < sent; i++)
		cr_assert_eq(got[i], (uint8_t)i, "byte %zu is 0x%02x, wanted 0x%02x", i, got[i],
		             (uint8_t)i);
	free(got);
	cr_assert_eq(out_watch(), -1, "still watching an empty buffer");
	cr_assert_eq(rd(LSR) & (LSR_THRE | LSR_TEMT), LSR_THRE | LSR_TEMT);
	cr_assert_eq(fake_irq_level(4), 1, "no THR-empty interrupt once the buffer drained");
	cr_assert_eq(rd(IIR) & 0x0f, IIR_THRI);
	fake_dev_destroy(dev);
	cr_assert_not(fake_log_contains("dropped"), "%s", fake_log());
	close(rfd);
}

Test(uart_out, writes_while_busy_are_dropped_and_counted)
{
	int rfd = open_reader();

	cr_assert_eq(create_with_output(fifo), 0, "%s", fake_log());
	size_t sent = write_while_ready(0, 1 << 20);
	cr_assert_lt(sent, 1 << 20);
	for (int i = 0; i < 1000; i++) /* a driver that does not look at THRE */
		wr(THR, 'x');
	cr_assert(fake_log_contains("transmitter is busy"), "%s", fake_log());
	close(rfd); /* the reader leaves: what waits is dropped when the run ends */
	fake_dev_destroy(dev);
	cr_assert(fake_log_contains("bytes the guest sent were dropped"), "%s", fake_log());
}

Test(uart_out, reader_gone_drops_with_a_count_and_stays_ready)
{
	int rfd = open_reader();

	cr_assert_eq(create_with_output(fifo), 0, "%s", fake_log());
	close(rfd);
	for (int i = 0; i < 100000; i++) {
		cr_assert(rd(LSR) & LSR_THRE, "THRE cleared after %d bytes to a gone reader", i);
		wr(THR, 'y');
	}
	cr_assert(fake_log_contains("dropped from now on"), "%s", fake_log());
	fake_dev_destroy(dev);
	cr_assert(fake_log_contains("100000 bytes the guest sent were dropped"), "%s", fake_log());
}

Test(uart_out, fifo_without_reader_is_an_error_not_a_wait)
{
	cr_assert_eq(create_with_output(fifo), -EINVAL);
	cr_assert(fake_cfg_error_about("output"), "%s", fake_log());
	cr_assert(fake_log_contains("no reader"), "%s", fake_log());
}

Test(uart_out, directory_and_device_outputs_are_refused)
{
	cr_assert_eq(create_with_output(tmpdir), -EINVAL);
	cr_assert(fake_cfg_error_about("output"), "%s", fake_log());
	fake_host_fini();
	fake_host_init();
	plugin =
	        fake_plugin_open(getenv("UART_16550_SO") ? getenv("UART_16550_SO") : UART_16550_SO);
	cr_assert_eq(create_with_output("/dev/zero"), -EINVAL);
	cr_assert(fake_log_contains("neither a terminal nor /dev/null"), "%s", fake_log());
}

Test(uart_out, dev_null_and_files_take_everything)
{
	cr_assert_eq(create_with_output("/dev/null"), 0, "%s", fake_log());
	for (int i = 0; i < 200000; i++)
		wr(THR, 'z');
	cr_assert_eq(rd(LSR) & (LSR_THRE | LSR_TEMT), LSR_THRE | LSR_TEMT);
	cr_assert_eq(out_watch(), -1);
	fake_dev_destroy(dev);
	cr_assert_not(fake_log_contains("dropped"), "%s", fake_log());
}

Test(uart_out, restored_busy_transmitter_raises_thr_empty)
{
	int rfd = open_reader();
	uint8_t *state;
	size_t len;
	uint32_t version;

	cr_assert_eq(create_with_output(fifo), 0, "%s", fake_log());
	wr(MCR, MCR_OUT2);
	wr(IER, IER_ETBEI);
	size_t sent = write_while_ready(0, 1 << 20);
	cr_assert_lt(sent, 1 << 20);
	cr_assert_eq(fake_irq_level(4), 0);
	fake_dev_pause(dev);
	cr_assert_eq(fake_dev_save(dev, &state, &len, &version), 0, "%s", fake_log());
	fake_dev_destroy(dev);
	close(rfd);

	/* a new machine, its output a file: the restored transmitter is busy until the event
	 * loop's first turn finds room, then THR empty */
	dev = fake_dev_new("com1");
	fake_cfg_set(dev, "output", "/dev/null");
	fake_cfg_set(dev, "input", "none");
	cr_assert_eq(fake_dev_create(dev, plugin, 0), 0, "%s", fake_log());
	cr_assert_eq(fake_dev_load(dev, state, len, version), 0, "%s", fake_log());
	free(state);
	fake_dev_resume(dev);
	cr_assert_eq(fake_irq_level(4), 0, "THR empty before the loop ran");
	fake_fd_pump(0);
	cr_assert_eq(fake_irq_level(4), 1, "a restored busy transmitter never raised THR empty");
	cr_assert_eq(rd(IIR) & 0x0f, IIR_THRI);
}
