/*
 * Unit tests of pl011.so's host side, the one it shares with uart-16550 (devices/serial),
 * through the fake host: output in order and at once, backpressure from an output that does
 * not read shown as FR.TXFF/BUSY and drained without loss, the transmit interrupt's trigger
 * levels as the transmit FIFO fills and drains, input from files, pipes and a terminal (with
 * its escape keys and break) reaching DR with the receive interrupts.
 */
#include "pl011-test.h"

#include <sys/stat.h>

TestSuite(pl011_host, .init = pl011_setup, .fini = pl011_teardown, .timeout = 30);

/* ---- output ---------------------------------------------------------------------------- */

Test(pl011_host, output_file_gets_each_byte_at_once_in_order)
{
	char buf[64];
	int fd;

	cr_assert_eq(create(0, "output", "out.txt", NULL), 0, "%s", fake_log());
	wr(LCR_H, LCRH_WLEN8 | LCRH_FEN);
	wr(CR, CR_ON);
	for (const char *p = "hello, pl011\n"; *p; p++) {
		wr(DR, (uint8_t)*p);
		cr_assert_eq(rd(FR) & (FR_TXFE | FR_BUSY | FR_TXFF), FR_TXFE);
	}
	fd = open(tmp_path("out.txt"), O_RDONLY);
	cr_assert(fd >= 0);
	cr_assert_eq(read(fd, buf, sizeof buf), 13);
	cr_assert_eq(memcmp(buf, "hello, pl011\n", 13), 0);
	close(fd);
}

Test(pl011_host, earlycon_writes_before_the_uart_is_enabled)
{
	char buf[8];
	int fd;

	cr_assert_eq(create(0, "output", "out.txt", NULL), 0, "%s", fake_log());
	fake_mmio_write(BASE + DR, 1, 'E'); /* CR at its power-on value */
	wr(CR, 0);
	wr(DR, 'F');
	fd = open(tmp_path("out.txt"), O_RDONLY);
	cr_assert_eq(read(fd, buf, sizeof buf), 2);
	cr_assert_eq(memcmp(buf, "EF", 2), 0);
	close(fd);
}

Test(pl011_host, loopback_data_does_not_reach_the_output)
{
	struct stat st;

	cr_assert_eq(create(0, "output", "out.txt", NULL), 0, "%s", fake_log());
	loopback_on(true, 0x12);
	wr(DR, 'x');
	cr_assert_eq(stat(tmp_path("out.txt"), &st), 0);
	cr_assert_eq(st.st_size, 0);
	cr_assert_eq(rd(DR), 'x');
}

Test(pl011_host, word_length_does_not_cut_the_output)
{
	char c;
	int fd;

	cr_assert_eq(create(0, "output", "out.txt", NULL), 0, "%s", fake_log());
	wr(LCR_H, 0x40); /* 7 bits */
	wr(DR, 0xc1);
	fd = open(tmp_path("out.txt"), O_RDONLY);
	cr_assert_eq(read(fd, &c, 1), 1);
	cr_assert_eq((uint8_t)c, 0xc1, "the host gets the byte written");
	close(fd);
}

/* A FIFO output whose reader has a one-page pipe and reads only when told. */
static int reader = -1;

static void create_on_stalled_fifo(void)
{
	cr_assert_eq(mkfifo(tmp_path("out.fifo"), 0600), 0);
	reader = open(tmp_path("out.fifo"), O_RDONLY | O_NONBLOCK);
	cr_assert(reader >= 0);
	cr_assert_eq(create(0, "output", "out.fifo", NULL), 0, "%s", fake_log());
	cr_assert_eq(fcntl(reader, F_SETPIPE_SZ, 4096), 4096);
}

/* Reads what the pipe holds into @buf (at most @cap), then lets the device refill it. */
static size_t drain(uint8_t *buf, size_t cap)
{
	size_t got = 0;
	ssize_t n;

	while (got < cap && (n = read(reader, buf + got, cap - got)) > 0)
		got += (size_t)n;
	int fd = watched_fd(SMOL_FD_OUT);
	if (fd >= 0)
		cr_assert_eq(fake_fd_fire(fd, SMOL_FD_OUT), 0);
	return got;
}

Test(pl011_host, backpressure_shows_as_txff_and_busy_and_loses_nothing)
{
	static uint8_t got[16384];
	size_t sent = 0, n = 0;

	create_on_stalled_fifo();
	wr(LCR_H, LCRH_WLEN8 | LCRH_FEN);
	wr(CR, CR_ON);
	while (!(rd(FR) & FR_TXFF) && sent < sizeof got)
		wr(DR, (uint8_t)(sent++ * 7));
	cr_assert_lt(sent, sizeof got, "TXFF never set");
	cr_assert_geq(sent, 4096 + 4096, "the pipe and the host buffer take %zu", sent);
	cr_assert_eq(rd(FR) & (FR_TXFF | FR_BUSY | FR_TXFE), FR_TXFF | FR_BUSY);
	for (int round = 0; round < 100 && n < sent; round++)
		n += drain(got + n, sizeof got - n);
	n += drain(got + n, sizeof got - n);
	cr_assert_eq(n, sent, "all %zu bytes arrive", sent);
	for (size_t i = 0; i < sent; i++)
		cr_assert_eq(got[i], (uint8_t)(i * 7), "byte %zu in order", i);
	cr_assert_eq(rd(FR) & (FR_TXFF | FR_BUSY | FR_TXFE), FR_TXFE, "idle again");
	cr_assert_eq(watched_fd(SMOL_FD_OUT), -1, "nothing waits: no watch");
}

/* Writes until FR.TXFE clears: the transmit FIFO holds one character. The count written. */
static size_t fill_to_fifo(void)
{
	size_t n = 0;

	while (rd(FR) & FR_TXFE) {
		wr(DR, 'f');
		cr_assert_lt(++n, 20000, "TXFE never cleared");
	}
	return n;
}

Test(pl011_host, tx_trigger_levels_for_every_ifls)
{
	static uint8_t sink[16384];

	create_on_stalled_fifo();
	wr(LCR_H, LCRH_WLEN8 | LCRH_FEN);
	wr(CR, CR_ON);
	wr(IMSC, INT_TX);
	for (uint32_t sel = 0; sel < 8; sel++) {
		unsigned trig = trigger_of[sel];

		wr(IFLS, sel);
		(void)fill_to_fifo();
		cr_assert_eq(rd(RIS) & INT_TX, 0, "select %u: filling from empty is no crossing",
		             sel);
		for (unsigned level = 1; level < 32; level++)
			wr(DR, 'g');
		cr_assert(rd(FR) & FR_TXFF, "select %u: 32 fill the FIFO", sel);
		cr_assert_eq(rd(RIS) & INT_TX, 0);
		cr_assert_eq(fake_irq_level(IRQ), 0);

		/* the host reads: the FIFO drains through the level */
		for (int round = 0; round < 10 && !(rd(FR) & FR_TXFE); round++)
			(void)drain(sink, sizeof sink);
		cr_assert(rd(FR) & FR_TXFE, "select %u: drained", sel);
		cr_assert(rd(RIS) & INT_TX, "select %u: drained through the level", sel);
		cr_assert_eq(fake_irq_level(IRQ), 1);

		/* writing above the level clears it: the pipe is full again, the FIFO fills */
		(void)fill_to_fifo();
		for (unsigned level = 1; level <= trig; level++) {
			cr_assert(rd(RIS) & INT_TX, "select %u: level %u is at or below %u", sel,
			          level, trig);
			wr(DR, 'h');
		}
		cr_assert_eq(rd(RIS) & INT_TX, 0, "select %u: level %u is above %u", sel, trig + 1,
		             trig);
		cr_assert_eq(fake_irq_level(IRQ), 0);

		/* empty it all for the next select */
		for (int round = 0; round < 10 && (rd(FR) & FR_BUSY); round++)
			(void)drain(sink, sizeof sink);
		(void)drain(sink, sizeof sink);
		cr_assert_eq(rd(FR) & FR_BUSY, 0);
		wr(ICR, INT_TX);
	}
}

Test(pl011_host, draining_below_the_fifo_is_no_crossing)
{
	static uint8_t sink[16384];

	create_on_stalled_fifo();
	wr(LCR_H, LCRH_WLEN8 | LCRH_FEN);
	wr(CR, CR_ON);
	wr(IMSC, INT_TX);
	while (!(rd(FR) & FR_BUSY))
		wr(DR, 'a'); /* the pipe is full */
	for (int i = 0; i < 100; i++)
		wr(DR, 'b'); /* the host buffer holds some, short of the FIFO's slots */
	cr_assert_eq(rd(FR) & (FR_BUSY | FR_TXFE), FR_BUSY | FR_TXFE);
	cr_assert_eq(rd(RIS) & INT_TX, 0);
	for (int round = 0; round < 10 && (rd(FR) & FR_BUSY); round++)
		(void)drain(sink, sizeof sink);
	cr_assert_eq(rd(FR) & FR_BUSY, 0, "drained");
	cr_assert_eq(rd(RIS) & INT_TX, 0, "the FIFO never rose above the level");
	cr_assert_eq(fake_irq_level(IRQ), 0);
}

Test(pl011_host, tx_without_fifos_is_one_deep)
{
	static uint8_t sink[16384];

	create_on_stalled_fifo();
	wr(LCR_H, LCRH_WLEN8);
	wr(CR, CR_ON);
	wr(IMSC, INT_TX);
	wr(DR, 'a');
	cr_assert(rd(RIS) & INT_TX, "sent at once: the holding register is empty");
	while (!(rd(FR) & FR_BUSY))
		wr(DR, 'b'); /* the pipe takes them */
	while (rd(FR) & FR_TXFE) {
		cr_assert(rd(RIS) & INT_TX);
		wr(DR, 'c'); /* the host buffer takes them */
	}
	cr_assert_eq(rd(FR) & (FR_TXFF | FR_TXFE), FR_TXFF, "one waiting character fills it");
	cr_assert_eq(rd(RIS) & INT_TX, 0, "and clears the interrupt");
	for (int round = 0; round < 10 && !(rd(FR) & FR_TXFE); round++)
		(void)drain(sink, sizeof sink);
	cr_assert(rd(RIS) & INT_TX, "emptied by the host");
	cr_assert_eq(fake_irq_level(IRQ), 1);
}

Test(pl011_host, gone_reader_drops_and_never_blocks)
{
	create_on_stalled_fifo();
	wr(CR, CR_ON);
	close(reader);
	for (int i = 0; i < 10000; i++)
		wr(DR, 'x');
	cr_assert_eq(rd(FR) & (FR_TXFF | FR_BUSY), 0, "a gone output takes (drops) everything");
	cr_assert(fake_log_contains("dropped"), "%s", fake_log());
}

/* ---- input ----------------------------------------------------------------------------- */

Test(pl011_host, input_file_reaches_dr_in_order_with_interrupts)
{
	char data[100];

	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (char)('!' + i % 90);
	write_file(tmp_path("in.bin"), data, sizeof data);
	cr_assert_eq(create(0, "input", "in.bin", NULL), 0, "%s", fake_log());
	int fd = watched_fd(SMOL_FD_IN);
	cr_assert(fd >= 0);
	wr(LCR_H, LCRH_WLEN8 | LCRH_FEN);
	wr(IMSC, INT_RX | INT_RT);
	cr_assert_eq(fake_fd_fire(fd, SMOL_FD_IN), 0);
	cr_assert(rd(FR) & FR_RXFE, "UARTEN is clear at power on: the input waits");
	wr(CR, CR_ON);
	cr_assert(rd(FR) & FR_RXFF, "enabling the receiver lets 32 in");
	cr_assert_eq(rd(RIS) & (INT_RX | INT_RT), INT_RX, "at the level, more to come");
	cr_assert_eq(fake_irq_level(IRQ), 1);
	for (size_t i = 0; i < sizeof data; i++) {
		if (rd(FR) & FR_RXFE)
			cr_assert_eq(fake_fd_fire(fd, SMOL_FD_IN), 0);
		cr_assert_eq(rd(DR), (uint8_t)data[i], "character %zu", i);
		expect_line();
	}
	cr_assert(rd(FR) & FR_RXFE);
	cr_assert_eq(rd(RSR), 0, "no overrun: the input waited for room");
	cr_assert_eq(rd(RIS) & (INT_RX | INT_RT | INT_OE), 0);
	cr_assert_eq(fake_irq_level(IRQ), 0);
}

Test(pl011_host, pipe_input_and_receive_timeout)
{
	int wfd, fd;

	cr_assert_eq(mkfifo(tmp_path("in.fifo"), 0600), 0);
	cr_assert_eq(create(0, "input", "in.fifo", NULL), 0, "%s", fake_log());
	wfd = open(tmp_path("in.fifo"), O_WRONLY);
	cr_assert(wfd >= 0);
	fd = watched_fd(SMOL_FD_IN);
	wr(LCR_H, LCRH_WLEN8 | LCRH_FEN);
	wr(CR, CR_ON);
	wr(IMSC, INT_RT);
	cr_assert_eq(write(wfd, "abc", 3), 3);
	cr_assert_eq(fake_fd_fire_ready(fd, 1000), 0);
	cr_assert_eq(rd(RIS) & (INT_RX | INT_RT), INT_RT, "3 below 16, the line quiet");
	cr_assert_eq(fake_irq_level(IRQ), 1);
	cr_assert_eq(rd(DR), 'a');
	cr_assert_eq(rd(DR), 'b');
	cr_assert_eq(rd(DR), 'c');
	cr_assert_eq(fake_irq_level(IRQ), 0, "read empty");
	close(wfd);
}

Test(pl011_host, input_waits_while_in_loopback)
{
	int wfd, fd;

	cr_assert_eq(mkfifo(tmp_path("in.fifo"), 0600), 0);
	cr_assert_eq(create(0, "input", "in.fifo", NULL), 0, "%s", fake_log());
	wfd = open(tmp_path("in.fifo"), O_WRONLY);
	fd = watched_fd(SMOL_FD_IN);
	wr(LCR_H, LCRH_WLEN8);
	wr(CR, CR_ON | CR_LBE);
	cr_assert_eq(write(wfd, "xy", 2), 2);
	cr_assert_eq(fake_fd_fire_ready(fd, 1000), 0);
	cr_assert(rd(FR) & FR_RXFE, "the serial input is disconnected in loopback");
	wr(CR, CR_ON);
	cr_assert_eq(rd(DR), 'x');
	cr_assert_eq(rd(DR), 'y', "without FIFOs: refilled from the host buffer after each read");
	cr_assert(rd(FR) & FR_RXFE);
	close(wfd);
}

Test(pl011_host, destroy_stops_the_watches)
{
	write_file(tmp_path("in.bin"), "z", 1);
	cr_assert_eq(create(0, "input", "in.bin", NULL), 0, "%s", fake_log());
	cr_assert(watched_fd(SMOL_FD_IN) >= 0);
	fake_dev_destroy(dev);
	cr_assert_eq(fake_dev_leaked_watches(dev), 0);
}

/* ---- terminal -------------------------------------------------------------------------- */

static int pty_master = -1;

static void create_on_pty(void)
{
	pty_master = posix_openpt(O_RDWR | O_NOCTTY);
	cr_assert(pty_master >= 0 && grantpt(pty_master) == 0 && unlockpt(pty_master) == 0);
	cr_assert_eq(create(0, "input", ptsname(pty_master), NULL), 0, "%s", fake_log());
	wr(LCR_H, LCRH_WLEN8 | LCRH_FEN);
	wr(CR, CR_ON);
}

static void type(const char *s)
{
	cr_assert_eq(write(pty_master, s, strlen(s)), (ssize_t)strlen(s));
	cr_assert_eq(fake_fd_fire_ready(watched_fd(SMOL_FD_IN), 1000), 0);
}

Test(pl011_host, terminal_break_is_a_nul_with_be)
{
	create_on_pty();
	wr(IMSC, INT_BE);
	type("a\001bc"); /* 'a', Ctrl-A b: a break, 'c' */
	cr_assert(rd(RIS) & INT_BE, "the break raises BE when it arrives");
	cr_assert_eq(fake_irq_level(IRQ), 1);
	cr_assert_eq(rd(DR), 'a');
	cr_assert_eq(rd(DR), DR_BE);
	cr_assert_eq(rd(RSR), RSR_BE);
	cr_assert_eq(rd(DR), 'c');
	cr_assert_eq(rd(RSR), 0);
	cr_assert_eq(fake_exit_requests(), 0);
}

Test(pl011_host, terminal_ctrl_a_x_ends_the_run)
{
	create_on_pty();
	type("q\001\001\001x");
	cr_assert_eq(fake_exit_requests(), 1);
	cr_assert_eq(fake_exit_status(), 0);
	cr_assert_eq(rd(DR), 'q');
	cr_assert_eq(rd(DR), 0x01, "Ctrl-A Ctrl-A sends one Ctrl-A");
	cr_assert(rd(FR) & FR_RXFE, "the escape does not reach the guest");
}

/* ---- one stdin for two UART plugins ---------------------------------------------------- */

Test(pl011_host, stdin_feeds_the_first_uart_of_either_plugin)
{
	const char *so = getenv("UART_16550_SO");
	const struct smol_plugin_desc *u16550 = fake_plugin_open(so ? so : UART_16550_SO);
	int p[2];

	cr_assert(u16550, "%s", fake_log());
	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(dup2(p[0], STDIN_FILENO), STDIN_FILENO);
	struct smol_dev *com1 = fake_dev_new("com1");
	fake_cfg_set(com1, "output", "none");
	fake_cfg_set(com1, "input", "stdin");
	cr_assert_eq(fake_dev_create(com1, u16550, 0), 0, "%s", fake_log());
	cr_assert(fake_fd_watched(STDIN_FILENO));

	cr_assert_eq(create(0, "input", "stdin", NULL), 0, "%s", fake_log());
	cr_assert(fake_log_contains("stdin feeds another serial device already"), "%s", fake_log());
	fake_dev_destroy(dev);
	cr_assert(fake_fd_watched(STDIN_FILENO), "the pl011 leaves the 16550's watch alone");
	cr_assert_eq(write(p[1], "k", 1), 1);
	cr_assert_eq(fake_fd_fire_ready(STDIN_FILENO, 1000), 0);
	cr_assert_eq(fake_pio_read(0x3f8 + 5, 1) & 0x01, 0x01, "the 16550 got it");
	cr_assert_eq(fake_pio_read(0x3f8, 1), 'k');
}
