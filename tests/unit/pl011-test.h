/*
 * Helpers shared by the pl011.so unit tests (test-pl011*.c): the plugin loaded through the fake
 * host, a scratch folder, register access at the test's base, and the register bits (written
 * out again from the PL011 TRM r1p5 rather than taken from the plugin's header).
 */
#ifndef SMOLVM_TESTS_PL011_TEST_H
#define SMOLVM_TESTS_PL011_TEST_H

#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fake-host.h"

#define BASE 0x09000000ull
#define IRQ 33

enum {
	DR = 0x000,
	RSR = 0x004,
	ECR = 0x004,
	FR = 0x018,
	ILPR = 0x020,
	IBRD = 0x024,
	FBRD = 0x028,
	LCR_H = 0x02c,
	CR = 0x030,
	IFLS = 0x034,
	IMSC = 0x038,
	RIS = 0x03c,
	MIS = 0x040,
	ICR = 0x044,
	DMACR = 0x048,
};
#define DR_FE 0x100
#define DR_PE 0x200
#define DR_BE 0x400
#define DR_OE 0x800
#define RSR_FE 0x1
#define RSR_BE 0x4
#define RSR_OE 0x8
#define FR_CTS 0x001
#define FR_DSR 0x002
#define FR_DCD 0x004
#define FR_BUSY 0x008
#define FR_RXFE 0x010
#define FR_TXFF 0x020
#define FR_RXFF 0x040
#define FR_TXFE 0x080
#define FR_RI 0x100
#define LCRH_BRK 0x01
#define LCRH_FEN 0x10
#define LCRH_WLEN8 0x60
#define CR_UARTEN 0x0001
#define CR_LBE 0x0080
#define CR_TXE 0x0100
#define CR_RXE 0x0200
#define CR_DTR 0x0400
#define CR_RTS 0x0800
#define CR_OUT1 0x1000
#define CR_OUT2 0x2000
#define CR_ON (CR_UARTEN | CR_TXE | CR_RXE)
#define INT_RI 0x001
#define INT_CTS 0x002
#define INT_DCD 0x004
#define INT_DSR 0x008
#define INT_RX 0x010
#define INT_TX 0x020
#define INT_RT 0x040
#define INT_FE 0x080
#define INT_PE 0x100
#define INT_BE 0x200
#define INT_OE 0x400
#define INT_ALL 0x7ff

/* The trigger levels of IFLS's selects 0-7 on a 32-entry FIFO (5-7 are reserved: 1/2). */
__attribute__((unused)) static const unsigned trigger_of[8] = { 4, 8, 16, 24, 28, 16, 16, 16 };

static const struct smol_plugin_desc *plugin;
static struct smol_dev *dev;
static char tmpdir[64];

static inline void pl011_setup(void)
{
	const char *so = getenv("PL011_SO");

	signal(SIGPIPE, SIG_IGN); /* as smolvm's main() does */
	fake_host_init();
	plugin = fake_plugin_open(so ? so : PL011_SO);
	cr_assert(plugin, "cannot load the plugin: %s", fake_log());
	strcpy(tmpdir, "/tmp/pl011-test-XXXXXX");
	cr_assert(mkdtemp(tmpdir));
	fake_cfg_dir(tmpdir);
}

static inline void pl011_teardown(void)
{
	char cmd[128];

	fake_host_fini();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmpdir);
}

/* Creates "serial0" from key/value pairs ending in NULL: base BASE, irq IRQ, output and
 * input none unless given. */
static inline int create_v(uint32_t flags, va_list ap)
{
	const char *k;

	dev = fake_dev_new("serial0");
	fake_cfg_set(dev, "base", "0x09000000");
	fake_cfg_set(dev, "irq", "33");
	fake_cfg_set(dev, "output", "none");
	fake_cfg_set(dev, "input", "none");
	while ((k = va_arg(ap, const char *)))
		fake_cfg_set(dev, k, va_arg(ap, const char *));
	return fake_dev_create(dev, plugin, flags);
}

static inline int create(uint32_t flags, ...)
{
	va_list ap;
	int r;

	va_start(ap, flags);
	r = create_v(flags, ap);
	va_end(ap);
	return r;
}

static inline void create_ok(void)
{
	cr_assert_eq(create(0, NULL), 0, "%s", fake_log());
}

static inline uint32_t rd(unsigned off)
{
	return (uint32_t)fake_mmio_read(BASE + off, 4);
}

static inline void wr(unsigned off, uint32_t v)
{
	fake_mmio_write(BASE + off, 4, v);
}

static inline char *tmp_path(const char *name)
{
	static char buf[128];

	snprintf(buf, sizeof(buf), "%s/%s", tmpdir, name);
	return buf;
}

static inline void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	cr_assert(fd >= 0);
	cr_assert_eq(write(fd, data, len), (ssize_t)len);
	close(fd);
}

/* The fd the device watches for @events, or -1. */
static inline int watched_fd(uint32_t events)
{
	for (int fd = 3; fd < 1024; fd++)
		if (fake_fd_watched(fd) && fake_fd_events(fd) == events)
			return fd;
	return -1;
}

/* UART on, in loopback, FIFOs on or off, the given IFLS. */
static inline void loopback_on(bool fifo, uint32_t ifls)
{
	wr(IFLS, ifls);
	wr(LCR_H, LCRH_WLEN8 | (fifo ? LCRH_FEN : 0));
	wr(CR, CR_ON | CR_LBE);
}

/* The line must follow RIS & IMSC. */
static inline void expect_line(void)
{
	cr_assert_eq(fake_irq_level(IRQ), (rd(RIS) & rd(IMSC)) != 0,
	             "line %d with RIS 0x%x IMSC 0x%x", fake_irq_level(IRQ), rd(RIS), rd(IMSC));
}

#endif
