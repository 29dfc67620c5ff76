/*
 * Unit tests of uart-16550.so's snapshots (save/load, state version 1), through the fake host:
 * a programmed UART with data, errors and interrupts pending is saved, destroyed, created again
 * from its configuration and loaded; then everything the guest can see must be as it was.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fake-host.h"

#define BASE 0x3f8
#define IRQ 4

enum { RBR = 0, THR = 0, DLL = 0, IER = 1, DLM = 1, IIR = 2, FCR = 2, LCR = 3 };
enum { MCR = 4, LSR = 5, MSR = 6, SCR = 7 };
enum { LSR_DR = 0x01, LSR_OE = 0x02, LSR_BI = 0x10, LSR_THRE = 0x20, LSR_TEMT = 0x40 };
#define LSR_RXFERR 0x80
#define LSR_IDLE (LSR_THRE | LSR_TEMT)
enum { MCR_DTR = 0x01, MCR_RTS = 0x02, MCR_OUT1 = 0x04, MCR_OUT2 = 0x08, MCR_LOOP = 0x10 };

/* Offsets in state version 1 (devices/uart-16550/uart-snap.c). */
enum { ST_IER = 0, ST_MCR = 2, ST_MSR = 3, ST_FCR = 7, ST_LSR = 8, ST_FLAGS = 10, ST_NRX = 11 };

static const struct smol_plugin_desc *plugin;
static struct smol_dev *dev;
static char tmpdir[64];
static int pty_master = -1;

static const char *so_path(void)
{
	const char *p = getenv("UART_16550_SO");

	return p ? p : UART_16550_SO;
}

static void setup(void)
{
	fake_host_init();
	plugin = fake_plugin_open(so_path());
	cr_assert(plugin, "cannot load %s: %s", so_path(), fake_log());
	strcpy(tmpdir, "/tmp/uart-snap-XXXXXX");
	cr_assert(mkdtemp(tmpdir));
	fake_cfg_dir(tmpdir);
}

static void teardown(void)
{
	char cmd[128];

	fake_host_fini();
	if (pty_master >= 0)
		close(pty_master);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmpdir);
}

TestSuite(uart_snap, .init = setup, .fini = teardown);

/* A new UART named com1 (a restore creates the device again under the same name), from
 * key/value pairs ending in NULL; output and input default to none. */
static struct smol_dev *create(const char *k, ...)
{
	va_list ap;

	dev = fake_dev_new("com1");
	fake_cfg_set(dev, "output", "none");
	fake_cfg_set(dev, "input", "none");
	va_start(ap, k);
	for (; k; k = va_arg(ap, const char *))
		fake_cfg_set(dev, k, va_arg(ap, const char *));
	va_end(ap);
	cr_assert_eq(fake_dev_create(dev, plugin, 0), 0, "%s", fake_log());
	return dev;
}

static uint8_t rd(unsigned reg)
{
	return (uint8_t)fake_pio_read(BASE + reg, 1);
}

static void wr(unsigned reg, uint8_t v)
{
	fake_pio_write(BASE + reg, 1, v);
}

static char *tmp_path(const char *name)
{
	static char buf[128];

	snprintf(buf, sizeof(buf), "%s/%s", tmpdir, name);
	return buf;
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static int input_fd(void)
{
	for (int fd = 3; fd < 1024; fd++)
		if (fake_fd_watched(fd))
			return fd;
	return -1;
}

/* Types @len bytes on a fresh pseudo-terminal that is the UART's input. */
static void create_on_pty(void)
{
	pty_master = posix_openpt(O_RDWR | O_NOCTTY);
	cr_assert(pty_master >= 0 && grantpt(pty_master) == 0 && unlockpt(pty_master) == 0);
	create("input", ptsname(pty_master), NULL);
}

static void type(const char *s, size_t len)
{
	cr_assert_eq(write(pty_master, s, len), (ssize_t)len);
	cr_assert_eq(fake_fd_fire_ready(input_fd(), 1000), 0);
}

static uint8_t *save(size_t *len)
{
	uint8_t *buf;
	uint32_t version;

	cr_assert_eq(fake_dev_save(dev, &buf, len, &version), 0, "%s", fake_log());
	cr_assert_eq(version, 1);
	return buf;
}

/* Loads @len bytes of @buf from a copy of exactly that size (so an overread is caught). */
static int load(const uint8_t *buf, size_t len, uint32_t version)
{
	uint8_t *copy = malloc(len ? len : 1);
	int r;

	cr_assert(copy);
	memcpy(copy, buf, len);
	r = fake_dev_load(dev, copy, len, version);
	free(copy);
	return r;
}

/* What the core does on a restore: the line's saved level is set before the guest runs. */
static void core_restores_line(int level)
{
	cr_assert_eq(fake_host.irq_set(dev, IRQ, 0), 0);
	if (level)
		cr_assert_eq(fake_host.irq_set(dev, IRQ, 1), 0);
}

Test(uart_snap, full_state_survives)
{
	static const char typed[] = "0123456789\001bABCDEFGHIJ"; /* Ctrl-A b: a break */
	static const char chars[] = "0123456789\0ABCDEFGHIJ";
	size_t len;

	create_on_pty();
	wr(LCR, 0x80);
	wr(DLL, 0x0c);
	wr(DLM, 0x01);
	wr(LCR, 0x1b);
	wr(FCR, 0x81 | 0x08); /* FIFO on, DMA mode 1, trigger 8 */
	wr(IER, 0x03); /* received data and THR empty */
	wr(MCR, MCR_OUT2 | MCR_RTS | MCR_DTR);
	wr(SCR, 0xa5);
	type(typed, sizeof typed - 1);
	cr_assert_eq(rd(IIR), 0xc4, "16 characters above trigger 8: received data");
	cr_assert_eq(fake_irq_level(IRQ), 1);
	uint8_t *buf = save(&len);
	cr_assert_eq(len, 12 + 2 * 16 + 2 + 2 * 5, "16 in the FIFO, 5 in the host buffer");
	cr_assert_eq(buf[ST_FCR], 0x89);
	cr_assert_eq(buf[ST_FLAGS], 0x01 | 0x04, "THR empty pending, line high, not quiet");
	fake_dev_destroy(dev);

	create(NULL); /* the restored machine has no input: host things may differ */
	core_restores_line(1);
	unsigned rises = fake_irq_rises(IRQ);
	cr_assert_eq(load(buf, len, 1), 0, "%s", fake_log());
	cr_assert_eq(fake_irq_rises(IRQ), rises, "load() does not drive the line");
	cr_assert_eq(fake_irq_level(IRQ), 1);
	cr_assert_eq(rd(LCR), 0x1b);
	cr_assert_eq(rd(IER), 0x03);
	cr_assert_eq(rd(MCR), MCR_OUT2 | MCR_RTS | MCR_DTR);
	cr_assert_eq(rd(MSR), 0x00);
	cr_assert_eq(rd(SCR), 0xa5);
	wr(LCR, 0x9b);
	cr_assert_eq(rd(DLL), 0x0c);
	cr_assert_eq(rd(DLM), 0x01);
	wr(LCR, 0x1b);
	cr_assert_eq(rd(IIR), 0xc4, "received data still pending");
	for (int i = 0; i < 21; i++) {
		uint8_t lsr = LSR_IDLE | LSR_DR;

		if (i < 10)
			lsr |= LSR_RXFERR; /* the break is in the FIFO */
		else if (i == 10)
			lsr |= LSR_RXFERR | LSR_BI; /* the break at the top */
		cr_assert_eq(rd(LSR), lsr, "LSR before character %d", i);
		cr_assert_eq(rd(RBR), (uint8_t)chars[i], "character %d, in order", i);
		cr_assert_eq(fake_irq_level(IRQ), 1, "THR empty is still pending (%d)", i);
	}
	cr_assert_eq(rd(LSR), LSR_IDLE, "the host buffer was restored and drained");
	cr_assert_eq(rd(IIR), 0xc2, "THR empty was pending");
	cr_assert_eq(fake_irq_level(IRQ), 0, "the UART lowers the line it remembers high");
	cr_assert_eq(rd(IIR), 0xc1);
	cr_assert_eq(fake_irq_misuse(), 0);
	free(buf);
}

Test(uart_snap, sticky_errors_loopback_and_16450_mode)
{
	size_t len;

	create(NULL);
	wr(MCR, MCR_LOOP | MCR_OUT1 | MCR_RTS);
	wr(IER, 0x04); /* line status */
	wr(THR, 'x');
	wr(THR, 'y'); /* 16450 mode: replaces 'x', overrun */
	cr_assert_eq(rd(IIR), 0x06);
	cr_assert_eq(fake_irq_level(IRQ), 0, "loopback gates the line");
	uint8_t *buf = save(&len);
	cr_assert_eq(len, 12 + 2 + 2, "one character");
	fake_dev_destroy(dev);

	create(NULL);
	core_restores_line(0);
	cr_assert_eq(load(buf, len, 1), 0, "%s", fake_log());
	cr_assert_eq(rd(IIR), 0x06, "line status interrupt, no FIFO bits");
	cr_assert_eq(rd(MSR), 0x50 | 0x01, "CTS and RI from loopback, CTS's delta kept");
	cr_assert_eq(rd(MSR), 0x50);
	cr_assert_eq(rd(LSR), LSR_IDLE | LSR_DR | LSR_OE);
	cr_assert_eq(rd(IIR), 0x01);
	cr_assert_eq(rd(RBR), 'y');
	cr_assert_eq(rd(RBR), 'y', "an empty RBR reads as the last character");
	cr_assert_eq(fake_irq_rises(IRQ), 0);
	free(buf);
}

Test(uart_snap, last_rbr_and_character_timeout)
{
	size_t len;

	create_on_pty();
	wr(FCR, 0xc1); /* trigger 14 */
	wr(IER, 0x01);
	wr(MCR, MCR_OUT2);
	type("pq", 2);
	cr_assert_eq(rd(RBR), 'p');
	cr_assert_eq(rd(IIR), 0xcc, "one character, quiet line: timeout");
	uint8_t *buf = save(&len);
	fake_dev_destroy(dev);
	create(NULL);
	core_restores_line(1);
	cr_assert_eq(load(buf, len, 1), 0, "%s", fake_log());
	cr_assert_eq(rd(IIR), 0xcc, "the character timeout had run out");
	cr_assert_eq(rd(RBR), 'q');
	cr_assert_eq(fake_irq_level(IRQ), 0);
	cr_assert_eq(rd(RBR), 'q', "last character");
	free(buf);
}

/* Console input already waiting on the host when the restore starts reaches the guest: create()
 * must not read it (load() would then overwrite it), the watch delivers it afterwards. */
Test(uart_snap, waiting_input_reaches_the_restored_guest)
{
	size_t len;

	create(NULL);
	wr(FCR, 0x01);
	uint8_t *buf = save(&len);
	fake_dev_destroy(dev);
	write_file(tmp_path("in.txt"), "ok", 2);
	create("input", "in.txt", NULL);
	cr_assert_eq(load(buf, len, 1), 0, "%s", fake_log());
	cr_assert_eq(rd(LSR) & LSR_DR, 0);
	cr_assert_eq(fake_fd_fire(input_fd(), SMOL_FD_IN), 0);
	cr_assert_eq(rd(RBR), 'o');
	cr_assert_eq(rd(RBR), 'k');
	free(buf);
}

/* A full host buffer is restored as full: a file input is not read until the guest makes room,
 * and nothing is lost. */
Test(uart_snap, full_host_buffer_waits_for_the_guest)
{
	static char data[300];
	size_t len;

	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (char)(i * 13 + 7);
	write_file(tmp_path("in.bin"), data, sizeof data);
	create("input", "in.bin", NULL);
	for (int i = 0; i < 8 && input_fd() >= 0; i++)
		cr_assert_eq(fake_fd_fire(input_fd(), SMOL_FD_IN), 0);
	cr_assert_eq(input_fd(), -1, "the buffer filled up");
	uint8_t *buf = save(&len);
	cr_assert_eq(len, 12 + 2 + 2 + 2 * 256, "1 in RBR, 256 in the host buffer");
	fake_dev_destroy(dev);

	write_file(tmp_path("more.bin"), "!", 1);
	create("input", "more.bin", NULL);
	cr_assert(input_fd() >= 0);
	cr_assert_eq(load(buf, len, 1), 0, "%s", fake_log());
	cr_assert_eq(input_fd(), -1, "a full buffer stops the input");
	for (int i = 0; i < 257; i++)
		cr_assert_eq((char)rd(RBR), data[i], "byte %d", i);
	cr_assert(input_fd() >= 0, "watched again once there was room");
	cr_assert_eq(fake_fd_fire(input_fd(), SMOL_FD_IN), 0);
	cr_assert_eq(rd(RBR), '!');
	free(buf);
}

/* ---- refusals ------------------------------------------------------------------------ */

static uint8_t *saved_busy_uart(size_t *len)
{
	create_on_pty();
	wr(FCR, 0x01);
	type("abcdefghijklmnopqrst", 20); /* 16 in the FIFO, 4 in the host buffer */
	return save(len);
}

Test(uart_snap, newer_version_refused)
{
	size_t len;
	uint8_t *buf = saved_busy_uart(&len);

	cr_assert_eq(load(buf, len, 2), -ENOTSUP);
	cr_assert(fake_log_contains("state version 2 is newer than this plugin's 1"), "%s",
	          fake_log());
	cr_assert_eq(load(buf, len, 0), -EINVAL);
	free(buf);
}

Test(uart_snap, truncated_state_refused)
{
	size_t len;
	uint8_t *buf = saved_busy_uart(&len);

	for (size_t n = 0; n < len; n++)
		cr_assert_eq(load(buf, n, 1), -EBADMSG, "%zu of %zu bytes", n, len);
	cr_assert(fake_log_contains("state: truncated at the registers"));
	cr_assert(fake_log_contains("state: truncated at the host input"));
	cr_assert_eq(load(buf, len, 1), 0, "%s", fake_log());
	free(buf);
}

Test(uart_snap, trailing_bytes_refused)
{
	size_t len;
	uint8_t *buf = saved_busy_uart(&len);
	uint8_t *longer = calloc(1, len + 1);

	memcpy(longer, buf, len);
	cr_assert_eq(load(longer, len + 1, 1), -EBADMSG);
	cr_assert(fake_log_contains("1 bytes left over"), "%s", fake_log());
	free(longer);
	free(buf);
}

/* A failed load leaves the device as create() made it. */
static void expect_refused(const uint8_t *buf, size_t len, const char *why)
{
	cr_assert_eq(load(buf, len, 1), -EINVAL, "accepted: %s", why);
	cr_assert(fake_log_contains(why), "no \"%s\" in: %s", why, fake_log());
	cr_assert_eq(rd(LSR), LSR_IDLE, "untouched after refusing %s", why);
	cr_assert_eq(rd(IER), 0);
}

Test(uart_snap, corrupt_fields_refused)
{
	static const struct {
		size_t off;
		uint8_t value;
		const char *why;
	} bad[] = {
		{ ST_NRX, 17, "receiver count 17 exceeds its 16" },
		{ ST_IER, 0x10, "IER 0x10" },
		{ ST_MCR, 0x20, "MCR 0x20" },
		{ ST_MSR, 0x10, "MSR 0x10: its line bits" },
		{ ST_FCR, 0x03, "FCR 0x03" },
		{ ST_LSR, 0x01, "LSR errors 0x01" },
		{ ST_FLAGS, 0x10, "flags 0x10" },
		{ 12 + 1, LSR_BI, "the top character's error flags 0x10" },
		{ 12 + 3, 0x01, "receiver character 1 has error flags 0x01" },
		{ 12 + 32, 0x01, "host input count 257 exceeds its 256" },
		{ 12 + 32 + 2 + 1, 0x80, "host input character 0 has error flags 0x80" },
	};
	size_t len;
	uint8_t *buf = saved_busy_uart(&len);

	cr_assert_eq(len, 12 + 32 + 2 + 8);
	fake_dev_destroy(dev);
	create(NULL);
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		uint8_t *copy = malloc(len);

		memcpy(copy, buf, len);
		copy[bad[i].off] = bad[i].value;
		if (bad[i].off == 12 + 32) /* the count's high byte too */
			copy[bad[i].off + 1] = 0x01;
		expect_refused(copy, len, bad[i].why);
		free(copy);
	}
	/* 16450 mode holds one character */
	buf[ST_FCR] = 0x00;
	expect_refused(buf, len, "receiver count 16 exceeds its 1");
	free(buf);
}

/* Damaged states (random bytes flipped in a real one, random lengths and versions): each is
 * refused or loaded, never a crash or an out-of-bounds access (run under ASan too); a state
 * that loads leaves a UART that still works and saves again. */
Test(uart_snap, damaged_states_never_break_it)
{
	uint64_t x = 0x2545f4914f6cdd1dull;
	size_t len, n_loaded = 0;
	uint8_t *good = saved_busy_uart(&len);

	for (int i = 0; i < 20000; i++) {
		uint8_t buf[600];
		size_t n = len;

		memcpy(buf, good, len);
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		for (int k = 0; k < (int)(x & 3) + 1; k++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			buf[(x >> 8) % len] = (uint8_t)(x >> 32);
		}
		if ((x >> 40) % 8 == 0)
			n = (x >> 44) % sizeof buf; /* a length of its own */
		for (size_t k = len; k < n; k++)
			buf[k] = (uint8_t)(x >> (k % 56));
		int r = load(buf, n, (uint32_t)((x >> 60) % 3));
		cr_assert(r == 0 || r == -EINVAL || r == -EBADMSG || r == -ENOTSUP, "load: %d", r);
		if (r)
			continue;
		n_loaded++;
		(void)rd(IIR);
		(void)rd(LSR);
		(void)rd(RBR);
		wr(THR, 'z');
		uint8_t *again;
		size_t again_len;
		uint32_t version;
		cr_assert_eq(fake_dev_save(dev, &again, &again_len, &version), 0);
		free(again);
	}
	cr_assert_gt(n_loaded, 0, "some damaged states are still valid ones");
	cr_assert_eq(fake_irq_misuse(), 0);
	free(good);
}
