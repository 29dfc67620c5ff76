/*
 * Unit tests of uart-16550.so, driven through the fake host (no core, no KVM). Register
 * values and rules follow the NS PC16550D datasheet.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "fake-host.h"

#define BASE 0x3f8
#define IRQ 4

enum {
	RBR = 0,
	THR = 0,
	DLL = 0,
	IER = 1,
	DLM = 1,
	IIR = 2,
	FCR = 2,
	LCR = 3,
	MCR = 4,
	LSR = 5,
	MSR = 6,
	SCR = 7
};

#define IIR_NONE 0x01
#define IIR_MSI 0x00
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_RLSI 0x06
#define IIR_CTI 0x0c
#define IIR_FIFO 0xc0
#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define LSR_DR 0x01
#define LSR_OE 0x02
#define LSR_BI 0x10
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define LSR_RXFERR 0x80

static const struct smol_plugin_desc *plugin;
static struct smol_dev *dev;
static char tmpdir[64];

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
	strcpy(tmpdir, "/tmp/uart-test-XXXXXX");
	cr_assert(mkdtemp(tmpdir));
	fake_cfg_dir(tmpdir);
}

static void teardown(void)
{
	char cmd[128];

	fake_host_fini();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", tmpdir);
}

TestSuite(uart, .init = setup, .fini = teardown);

/* Creates a UART from key/value pairs ending in NULL; output and input default to none. */
static int create(uint32_t flags, ...)
{
	const char *k;
	va_list ap;

	dev = fake_dev_new("com1");
	fake_cfg_set(dev, "output", "none");
	fake_cfg_set(dev, "input", "none");
	va_start(ap, flags);
	while ((k = va_arg(ap, const char *)))
		fake_cfg_set(dev, k, va_arg(ap, const char *));
	va_end(ap);
	return fake_dev_create(dev, plugin, flags);
}

static void create_ok(void)
{
	cr_assert_eq(create(0, NULL), 0, "%s", fake_log());
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

static size_t read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	ssize_t n;

	cr_assert(fd >= 0, "cannot open %s", path);
	n = read(fd, buf, len);
	close(fd);
	cr_assert(n >= 0);
	return (size_t)n;
}

/* ---- descriptor and configuration ---------------------------------------------------- */

Test(uart, descriptor)
{
	cr_assert_str_eq(plugin->name, "uart-16550");
	cr_assert_eq(plugin->kind, SMOL_KIND_DEVICE);
	cr_assert_eq(plugin->abi_major, SMOL_ABI_MAJOR);
	cr_assert_eq(plugin->struct_size, sizeof(struct smol_plugin_desc));
	const struct smol_device_ops *ops = plugin->ops;
	cr_assert(ops->create && ops->destroy && ops->reset && ops->describe);
	cr_assert(ops->save && ops->load, "snapshots: tests/unit/test-uart-snap.c");
	cr_assert_null(ops->pause, "no threads to pause");
	cr_assert_null(ops->resume);
}

Test(uart, defaults_map_com1_and_claim_irq4)
{
	dev = fake_dev_new("com1");
	cr_assert_eq(fake_dev_create(dev, plugin, SMOL_CREATE_CHECK_ONLY), 0, "%s", fake_log());
	for (unsigned p = BASE; p < BASE + 8; p++)
		cr_assert(fake_pio_mapped((uint16_t)p));
	cr_assert_not(fake_pio_mapped(BASE - 1));
	cr_assert_not(fake_pio_mapped(BASE + 8));
	cr_assert(fake_irq_claimed(IRQ));
	cr_assert_eq(fake_cfg_errors(), 0);
}

Test(uart, every_key_is_read)
{
	cr_assert_eq(create(SMOL_CREATE_CHECK_ONLY, "port", "0x2f8", "irq", "3", NULL), 0);
	cr_assert_null(fake_cfg_unread(dev));
	cr_assert(fake_cfg_was_read(dev, "port") && fake_cfg_was_read(dev, "irq"));
	cr_assert(fake_cfg_was_read(dev, "output") && fake_cfg_was_read(dev, "input"));
	cr_assert(fake_pio_mapped(0x2f8) && fake_pio_mapped(0x2ff));
	cr_assert(fake_irq_claimed(3));
}

Test(uart, unknown_key_is_left_unread)
{
	cr_assert_eq(create(0, "baud", "9600", NULL), 0);
	cr_assert_str_eq(fake_cfg_unread(dev), "baud");
}

Test(uart, highest_port_fits)
{
	cr_assert_eq(create(0, "port", "0xfff8", NULL), 0, "%s", fake_log());
	cr_assert(fake_pio_mapped(0xffff));
}

static void expect_cfg_error(const char *key, const char *value, const char *about)
{
	cr_assert_eq(create(0, key, value, NULL), -EINVAL, "%s = %s accepted", key, value);
	cr_assert(fake_cfg_error_about(about), "no error about %s for %s = '%s'", about, key,
	          value);
	cr_assert_eq(fake_maps(), 0, "nothing stays mapped after a failed create");
}

Test(uart, bad_port)
{
	expect_cfg_error("port", "0xfff9", "port");
}

Test(uart, port_above_16_bits)
{
	expect_cfg_error("port", "0x103f8", "port");
}

Test(uart, malformed_port)
{
	expect_cfg_error("port", "com1", "port");
	cr_assert_null(fake_cfg_unread(dev), "every key was read although port failed");
}

Test(uart, every_bad_key_is_reported)
{
	cr_assert_eq(create(0, "port", "0xfffff", "output", "", "input", "stdout", NULL), -EINVAL);
	cr_assert(fake_cfg_error_about("port"));
	cr_assert(fake_cfg_error_about("output") && fake_cfg_error_about("input"));
}

Test(uart, irq_above_32_bits)
{
	expect_cfg_error("irq", "0x100000004", "irq");
}

Test(uart, irq_the_core_refuses)
{
	/* the fake host has 64 lines: claiming line 100 fails, the UART says which key */
	cr_assert_eq(create(0, "irq", "100", NULL), -EINVAL);
	cr_assert(fake_cfg_error_about("irq"));
}

Test(uart, empty_output)
{
	expect_cfg_error("output", "", "output");
}

Test(uart, stdin_is_not_an_output)
{
	expect_cfg_error("output", "stdin", "output");
}

Test(uart, stdout_is_not_an_input)
{
	expect_cfg_error("input", "stdout", "input");
}

Test(uart, output_in_missing_folder)
{
	expect_cfg_error("output", "no/such/dir/out.txt", "output");
}

Test(uart, missing_input_file)
{
	expect_cfg_error("input", "no-such-file", "input");
}

Test(uart, port_overlap)
{
	struct smol_dev *other;

	create_ok();
	other = fake_dev_new("com1b");
	fake_cfg_set(other, "port", "0x3fc");
	fake_cfg_set(other, "irq", "3");
	fake_cfg_set(other, "output", "none");
	fake_cfg_set(other, "input", "none");
	cr_assert_eq(fake_dev_create(other, plugin, 0), -EEXIST);
}

Test(uart, check_only_opens_nothing)
{
	int master = posix_openpt(O_RDWR | O_NOCTTY);
	struct termios before, after;
	struct stat st;
	int slave;

	cr_assert(master >= 0 && grantpt(master) == 0 && unlockpt(master) == 0);
	slave = open(ptsname(master), O_RDWR | O_NOCTTY);
	cr_assert(slave >= 0);
	cr_assert_eq(tcgetattr(slave, &before), 0);
	cr_assert_eq(
	        create(SMOL_CREATE_CHECK_ONLY, "output", "out.txt", "input", ptsname(master), NULL),
	        0, "%s", fake_log());
	cr_assert_neq(stat(tmp_path("out.txt"), &st), 0, "CHECK_ONLY created the output file");
	cr_assert_eq(tcgetattr(slave, &after), 0);
	cr_assert_eq(after.c_lflag, before.c_lflag, "CHECK_ONLY touched the terminal");
	cr_assert_eq(after.c_iflag, before.c_iflag);
	cr_assert(fake_pio_mapped(BASE) && fake_irq_claimed(IRQ));
	fake_dev_destroy(dev);
	cr_assert_eq(fake_dev_leaked_watches(dev), 0);
	close(slave);
	close(master);
}

/* ---- registers ----------------------------------------------------------------------- */

static void expect_power_on_values(void)
{
	cr_assert_eq(rd(IER), 0x00);
	cr_assert_eq(rd(IIR), 0x01);
	cr_assert_eq(rd(LCR), 0x00);
	cr_assert_eq(rd(MCR), 0x00);
	cr_assert_eq(rd(LSR), 0x60);
	cr_assert_eq(rd(MSR), 0x00);
	cr_assert_eq(rd(SCR), 0x00);
	wr(LCR, 0x80);
	cr_assert_eq(rd(DLL), 0x01, "divisor 1 (115200 baud) at power-on");
	cr_assert_eq(rd(DLM), 0x00);
	wr(LCR, 0x00);
	cr_assert_eq(fake_irq_level(IRQ), 0);
}

Test(uart, power_on_values)
{
	create_ok();
	expect_power_on_values();
}

Test(uart, reset_restores_power_on_values)
{
	create_ok();
	wr(LCR, 0x80);
	wr(DLL, 0x0c);
	wr(DLM, 0x01);
	wr(LCR, 0x1b);
	wr(FCR, 0xc7);
	wr(MCR, MCR_OUT2 | MCR_DTR);
	wr(IER, 0x0f);
	wr(SCR, 0x5a);
	wr(THR, 'x');
	cr_assert_eq(fake_irq_level(IRQ), 1);
	fake_dev_reset(dev);
	cr_assert_eq(fake_irq_level(IRQ), 0, "reset lowers the IRQ line");
	expect_power_on_values();
	wr(FCR, 0x01);
	cr_assert_eq(rd(IIR), 0xc1, "FIFOs were disabled by reset");
}

Test(uart, scr_holds_any_byte)
{
	create_ok();
	for (unsigned v = 0; v < 256; v++) {
		wr(SCR, (uint8_t)v);
		cr_assert_eq(rd(SCR), v);
	}
	cr_assert_eq(rd(LSR), 0x60, "SCR touches nothing else");
}

Test(uart, lcr_reads_back)
{
	create_ok();
	for (unsigned v = 0; v < 256; v++) {
		wr(LCR, (uint8_t)v);
		cr_assert_eq(rd(LCR), v);
	}
}

Test(uart, ier_keeps_low_four_bits)
{
	create_ok();
	wr(IER, 0xff);
	cr_assert_eq(rd(IER), 0x0f);
	wr(IER, 0xa5);
	cr_assert_eq(rd(IER), 0x05);
}

Test(uart, mcr_keeps_low_five_bits)
{
	create_ok();
	wr(MCR, 0xff);
	cr_assert_eq(rd(MCR), 0x1f);
	wr(MCR, 0xe3);
	cr_assert_eq(rd(MCR), 0x03);
}

Test(uart, lsr_and_msr_ignore_writes)
{
	create_ok();
	wr(LSR, 0x1f);
	wr(MSR, 0xff);
	cr_assert_eq(rd(LSR), 0x60);
	cr_assert_eq(rd(MSR), 0x00);
}

Test(uart, dlab_shows_divisor_latch)
{
	create_ok();
	wr(IER, 0x05);
	wr(MCR, MCR_LOOP);
	wr(THR, 'q'); /* waits in RBR */
	wr(LCR, 0x83);
	wr(DLL, 0x0c);
	wr(DLM, 0x02);
	cr_assert_eq(rd(DLL), 0x0c);
	cr_assert_eq(rd(DLM), 0x02);
	cr_assert_eq(rd(LSR) & LSR_DR, LSR_DR, "reading DLL did not read RBR");
	wr(LCR, 0x03);
	cr_assert_eq(rd(IER), 0x05, "writing DLM did not write IER");
	cr_assert_eq(rd(RBR), 'q', "writing DLL did not transmit");
	cr_assert_eq(rd(LSR) & LSR_DR, 0, "only one character");
	wr(LCR, 0x80);
	cr_assert_eq(rd(DLL), 0x0c, "divisor latch is kept");
	cr_assert_eq(rd(DLM), 0x02);
	wr(LCR, 0x00);
}

Test(uart, wide_accesses_use_the_low_byte)
{
	create_ok();
	fake_pio_write(BASE + SCR, 2, 0x1234);
	cr_assert_eq(rd(SCR), 0x34);
	cr_assert_eq(fake_pio_read(BASE + SCR, 2), 0x0034);
	cr_assert_eq(fake_pio_read(BASE + SCR, 4), 0x00000034);
	cr_assert_eq(fake_pio_read(BASE + LSR, 4), 0x60);
	fake_pio_write(BASE + IER, 4, 0xffffff03);
	cr_assert_eq(rd(IER), 0x03);
}

/* ---- interrupts ---------------------------------------------------------------------- */

Test(uart, iir_priorities)
{
	create_ok();
	wr(FCR, 0x01); /* FIFO, trigger 1 */
	wr(MCR, MCR_LOOP | MCR_RTS); /* CTS rises: DCTS */
	wr(IER, 0x0f); /* THR empty pending too */
	for (int i = 0; i < 17; i++) /* 16 in the FIFO, the 17th overruns */
		wr(THR, (uint8_t)('a' + i));
	cr_assert_eq(rd(IIR), IIR_FIFO | IIR_RLSI);
	cr_assert_eq(rd(LSR), LSR_OE | LSR_DR | LSR_THRE | LSR_TEMT);
	cr_assert_eq(rd(IIR), IIR_FIFO | IIR_RDI, "LSR read cleared the line status");
	for (int i = 0; i < 16; i++)
		cr_assert_eq(rd(RBR), 'a' + i);
	cr_assert_eq(rd(IIR), IIR_FIFO | IIR_THRI, "draining cleared RDA");
	cr_assert_eq(rd(IIR), IIR_FIFO | IIR_MSI, "the IIR read cleared THR empty");
	cr_assert_eq(rd(MSR), 0x10 | 0x01, "CTS and DCTS");
	cr_assert_eq(rd(IIR), IIR_FIFO | IIR_NONE, "the MSR read cleared modem status");
}

Test(uart, iir_sources_need_their_ier_bit)
{
	create_ok();
	wr(FCR, 0x01);
	wr(MCR, MCR_LOOP | MCR_DTR);
	for (int i = 0; i < 17; i++)
		wr(THR, 'z');
	cr_assert_eq(rd(IIR), 0xc1, "nothing enabled: nothing pending");
	wr(IER, 0x08);
	cr_assert_eq(rd(IIR), 0xc0);
	wr(IER, 0x01);
	cr_assert_eq(rd(IIR), 0xc4);
	wr(IER, 0x04);
	cr_assert_eq(rd(IIR), 0xc6);
}

Test(uart, thr_empty_cleared_by_iir_read_and_thr_write)
{
	create_ok();
	wr(MCR, MCR_OUT2);
	wr(IER, 0x02);
	cr_assert_eq(fake_irq_level(IRQ), 1, "enabling ETBEI with THR empty interrupts");
	cr_assert_eq(fake_irq_rises(IRQ), 1);
	cr_assert_eq(rd(IIR), IIR_THRI);
	cr_assert_eq(fake_irq_level(IRQ), 0, "reading IIR cleared THR empty");
	cr_assert_eq(rd(IIR), IIR_NONE);
	wr(IER, 0x02);
	cr_assert_eq(rd(IIR), IIR_NONE, "ETBEI already set: no new interrupt");
	wr(THR, 'a');
	cr_assert_eq(fake_irq_level(IRQ), 1, "the transmitted byte empties THR again");
	cr_assert_eq(fake_irq_rises(IRQ), 2);
	wr(THR, 'b');
	cr_assert_eq(fake_irq_rises(IRQ), 3, "a THR write clears the pending one: a new edge");
	wr(IER, 0x00);
	cr_assert_eq(fake_irq_level(IRQ), 0);
	wr(IER, 0x02);
	cr_assert_eq(rd(IIR), IIR_THRI, "ETBEI 0 -> 1 raises THR empty again (Linux's THRE test)");
}

Test(uart, rda_follows_trigger_levels)
{
	static const struct {
		uint8_t fcr;
		unsigned level;
	} t[] = { { 0x01, 1 }, { 0x41, 4 }, { 0x81, 8 }, { 0xc1, 14 } };

	create_ok();
	wr(MCR, MCR_LOOP);
	wr(IER, 0x01);
	for (unsigned i = 0; i < 4; i++) {
		wr(FCR, t[i].fcr | 0x02); /* also resets the RX FIFO */
		cr_assert_eq(rd(LSR) & LSR_DR, 0);
		for (unsigned n = 1; n <= 16; n++) {
			wr(THR, (uint8_t)n);
			uint8_t want = n >= t[i].level ? IIR_RDI : IIR_NONE;
			cr_assert_eq(rd(IIR), IIR_FIFO | want, "trigger %u, %u bytes", t[i].level,
			             n);
		}
		/* draining below the trigger level clears it */
		for (unsigned n = 16; n > 0; n--) {
			uint8_t want = n - 1 >= t[i].level ? IIR_RDI : IIR_NONE;
			cr_assert_eq(rd(RBR), (uint8_t)(17 - n));
			cr_assert_eq(rd(IIR), IIR_FIFO | want, "trigger %u, %u left", t[i].level,
			             n - 1);
		}
	}
}

Test(uart, rda_in_16450_mode_is_one_byte)
{
	create_ok();
	wr(MCR, MCR_LOOP);
	wr(IER, 0x01);
	wr(THR, 'k');
	cr_assert_eq(rd(IIR), IIR_RDI);
	cr_assert_eq(rd(RBR), 'k');
	cr_assert_eq(rd(IIR), IIR_NONE);
}

Test(uart, out2_gates_the_irq_line)
{
	create_ok();
	wr(IER, 0x02);
	cr_assert_eq(rd(IER), 0x02);
	cr_assert_eq(fake_irq_level(IRQ), 0, "OUT2 clear: line low although THRI pends");
	wr(MCR, MCR_OUT2);
	cr_assert_eq(fake_irq_level(IRQ), 1);
	wr(MCR, MCR_OUT2 | MCR_LOOP);
	cr_assert_eq(fake_irq_level(IRQ), 0, "loopback forces OUT2 inactive");
	wr(MCR, MCR_OUT2);
	cr_assert_eq(fake_irq_level(IRQ), 1);
	wr(MCR, MCR_DTR | MCR_RTS);
	cr_assert_eq(fake_irq_level(IRQ), 0);
	cr_assert_eq(rd(IIR), IIR_THRI, "the interrupt still shows in IIR");
	cr_assert_eq(fake_irq_misuse(), 0);
}

/* ---- FIFO ---------------------------------------------------------------------------- */

Test(uart, fifo_keeps_order_and_holds_16)
{
	create_ok();
	wr(FCR, 0x01);
	wr(MCR, MCR_LOOP);
	for (int i = 0; i < 16; i++)
		wr(THR, (uint8_t)(0x30 + i));
	cr_assert_eq(rd(LSR), LSR_DR | LSR_THRE | LSR_TEMT, "16 bytes: no overrun");
	wr(THR, 0x99);
	cr_assert_eq(rd(LSR), LSR_OE | LSR_DR | LSR_THRE | LSR_TEMT, "the 17th overruns");
	cr_assert_eq(rd(LSR), LSR_DR | LSR_THRE | LSR_TEMT, "LSR read cleared OE");
	for (int i = 0; i < 16; i++)
		cr_assert_eq(rd(RBR), 0x30 + i, "FIFO content kept, the new byte lost");
	cr_assert_eq(rd(LSR), LSR_THRE | LSR_TEMT);
}

Test(uart, overrun_in_16450_mode_replaces_rbr)
{
	create_ok();
	wr(MCR, MCR_LOOP);
	wr(THR, 'a');
	cr_assert_eq(rd(LSR), LSR_DR | LSR_THRE | LSR_TEMT);
	wr(THR, 'b');
	cr_assert_eq(rd(LSR), LSR_OE | LSR_DR | LSR_THRE | LSR_TEMT);
	cr_assert_eq(rd(LSR), LSR_DR | LSR_THRE | LSR_TEMT);
	cr_assert_eq(rd(RBR), 'b', "the previous character is destroyed (datasheet, LSR1)");
	cr_assert_eq(rd(LSR), LSR_THRE | LSR_TEMT);
}

Test(uart, overrun_raises_line_status_interrupt)
{
	create_ok();
	wr(MCR, MCR_LOOP);
	wr(IER, 0x04);
	wr(THR, 'a');
	cr_assert_eq(rd(IIR), IIR_NONE);
	wr(THR, 'b');
	cr_assert_eq(rd(IIR), IIR_RLSI);
	cr_assert_eq(rd(IIR), IIR_RLSI, "IIR read does not clear line status");
	(void)rd(LSR);
	cr_assert_eq(rd(IIR), IIR_NONE);
}

Test(uart, fifo_reset_bits)
{
	create_ok();
	wr(FCR, 0x81);
	wr(MCR, MCR_LOOP);
	wr(IER, 0x01);
	for (int i = 0; i < 9; i++)
		wr(THR, (uint8_t)i);
	cr_assert_eq(rd(IIR), 0xc4);
	wr(FCR, 0x85); /* TX reset: nothing to clear, the RX FIFO is kept */
	cr_assert_eq(rd(LSR), LSR_DR | LSR_THRE | LSR_TEMT);
	cr_assert_eq(rd(RBR), 0);
	wr(FCR, 0x83); /* RX reset */
	cr_assert_eq(rd(LSR), LSR_THRE | LSR_TEMT);
	cr_assert_eq(rd(IIR), 0xc1);
	wr(THR, 'n');
	cr_assert_eq(rd(RBR), 'n', "the FIFO works after a reset");
	wr(FCR, 0x82); /* FCR0 clear: the reset bit is not programmed, FIFOs off */
	cr_assert_eq(rd(IIR), 0x01);
}

Test(uart, fifo_mode_change_clears_data)
{
	create_ok();
	wr(MCR, MCR_LOOP);
	wr(THR, 'a');
	wr(FCR, 0x01);
	cr_assert_eq(rd(LSR) & LSR_DR, 0, "16450 -> FIFO clears");
	wr(THR, 'b');
	wr(THR, 'c');
	wr(FCR, 0x00);
	cr_assert_eq(rd(LSR) & LSR_DR, 0, "FIFO -> 16450 clears");
	cr_assert_eq(rd(IIR), 0x01);
}

/* ---- loopback and modem status ------------------------------------------------------- */

Test(uart, loopback_data_does_not_reach_output)
{
	char buf[8];

	cr_assert_eq(create(0, "output", "out.txt", NULL), 0, "%s", fake_log());
	wr(MCR, MCR_LOOP);
	wr(THR, 'L');
	cr_assert_eq(read_file(tmp_path("out.txt"), buf, sizeof(buf)), 0);
	cr_assert_eq(rd(RBR), 'L');
	wr(MCR, 0);
	wr(THR, 'O');
	cr_assert_eq(read_file(tmp_path("out.txt"), buf, sizeof(buf)), 1);
	cr_assert_eq(buf[0], 'O');
	cr_assert_eq(rd(LSR) & LSR_DR, 0, "outside loopback THR does not loop back");
}

Test(uart, loopback_msr_mapping_and_deltas)
{
	create_ok();
	wr(MCR, MCR_LOOP);
	cr_assert_eq(rd(MSR), 0x00);
	wr(MCR, MCR_LOOP | MCR_RTS);
	cr_assert_eq(rd(MSR), 0x11, "RTS -> CTS, DCTS");
	cr_assert_eq(rd(MSR), 0x10, "MSR read cleared DCTS");
	wr(MCR, MCR_LOOP | MCR_RTS | MCR_DTR);
	cr_assert_eq(rd(MSR), 0x32, "DTR -> DSR, DDSR");
	wr(MCR, MCR_LOOP | MCR_RTS | MCR_DTR | MCR_OUT1);
	cr_assert_eq(rd(MSR), 0x70, "OUT1 -> RI; no TERI on the leading edge");
	wr(MCR, MCR_LOOP | MCR_RTS | MCR_DTR);
	cr_assert_eq(rd(MSR), 0x34, "RI falls: TERI");
	wr(MCR, MCR_LOOP | MCR_OUT2);
	cr_assert_eq(rd(MSR), 0x8b, "OUT2 -> DCD, DDCD; CTS and DSR fall: DCTS, DDSR");
	wr(MCR, MCR_OUT2);
	cr_assert_eq(rd(MSR), 0x08, "leaving loopback: no modem inputs, DCD fell");
	wr(MCR, MCR_RTS | MCR_DTR | MCR_OUT1);
	cr_assert_eq(rd(MSR), 0x00, "outside loopback MCR does not reach MSR");
}

Test(uart, modem_status_interrupt)
{
	create_ok();
	wr(IER, 0x08);
	wr(MCR, MCR_LOOP);
	cr_assert_eq(rd(IIR), IIR_NONE);
	wr(MCR, MCR_LOOP | MCR_DTR);
	cr_assert_eq(rd(IIR), IIR_MSI);
	cr_assert_eq(rd(IIR), IIR_MSI, "IIR read does not clear modem status");
	cr_assert_eq(rd(MSR), 0x22);
	cr_assert_eq(rd(IIR), IIR_NONE);
}

/* ---- output -------------------------------------------------------------------------- */

Test(uart, output_file_gets_each_byte_at_once)
{
	const char *msg = "Hello, 16550\r\n";
	char buf[64];

	cr_assert_eq(create(0, "output", "out.txt", NULL), 0, "%s", fake_log());
	cr_assert_eq(read_file(tmp_path("out.txt"), buf, sizeof(buf)), 0, "created empty");
	for (size_t i = 0; msg[i]; i++) {
		wr(THR, (uint8_t)msg[i]);
		cr_assert_eq(read_file(tmp_path("out.txt"), buf, sizeof(buf)), i + 1);
		cr_assert_eq(memcmp(buf, msg, i + 1), 0);
		cr_assert_eq(rd(LSR), LSR_THRE | LSR_TEMT, "transmission is instantaneous");
	}
}

Test(uart, output_file_is_truncated)
{
	char buf[64];

	write_file(tmp_path("out.txt"), "old content", 11);
	cr_assert_eq(create(0, "output", tmp_path("out.txt"), NULL), 0, "%s", fake_log());
	cr_assert_eq(read_file(tmp_path("out.txt"), buf, sizeof(buf)), 0);
	wr(THR, '!');
	cr_assert_eq(read_file(tmp_path("out.txt"), buf, sizeof(buf)), 1);
}

/* ---- input --------------------------------------------------------------------------- */

static int input_fd(void)
{
	/* the plugin's input is the newest fd it opened: find the watched one */
	for (int fd = 3; fd < 1024; fd++)
		if (fake_fd_watched(fd))
			return fd;
	return -1;
}

Test(uart, input_file_reaches_rbr)
{
	char data[40];
	int fd;

	for (int i = 0; i < 40; i++)
		data[i] = (char)('A' + i);
	write_file(tmp_path("in.bin"), data, sizeof(data));
	cr_assert_eq(create(0, "input", "in.bin", NULL), 0, "%s", fake_log());
	fd = input_fd();
	cr_assert(fd >= 0, "input watched");
	cr_assert_eq(fake_fd_events(fd), SMOL_FD_IN);
	wr(FCR, 0xc1);
	wr(IER, 0x01);
	wr(MCR, MCR_OUT2);
	cr_assert_eq(fake_irq_level(IRQ), 0);
	cr_assert_eq(fake_fd_fire(fd, SMOL_FD_IN), 0);
	cr_assert_eq(rd(IIR), 0xc4, "16 bytes: above trigger 14");
	cr_assert_eq(fake_irq_level(IRQ), 1);
	for (int i = 0; i < 40; i++) {
		cr_assert(rd(LSR) & LSR_DR, "byte %d ready", i);
		cr_assert_eq(rd(RBR), data[i]);
	}
	cr_assert_eq(rd(LSR) & (LSR_DR | LSR_OE), 0, "no more data, no overrun");
	cr_assert_eq(fake_irq_level(IRQ), 0);
	cr_assert_eq(fake_fd_fire(fd, SMOL_FD_IN), 0); /* end of file */
	cr_assert_not(fake_fd_watched(fd), "EOF stops the watch");
}

Test(uart, input_backpressure_loses_nothing)
{
	static char data[1000];
	int fd, got = 0;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (char)(i * 7 + 1);
	write_file(tmp_path("in.bin"), data, sizeof(data));
	cr_assert_eq(create(0, "input", "in.bin", NULL), 0, "%s", fake_log());
	fd = input_fd();
	for (int round = 0; round < 100 && got < (int)sizeof(data); round++) {
		fake_fd_fire(fd, SMOL_FD_IN); /* a stopped watch does not fire */
		if (round == 5)
			cr_assert_not(fake_fd_watched(fd), "a full buffer stops the watch");
		if (round < 10)
			continue; /* the guest is slow */
		while (rd(LSR) & LSR_DR)
			cr_assert_eq((char)rd(RBR), data[got++], "byte %d", got);
	}
	cr_assert_eq(got, (int)sizeof(data));
	cr_assert_eq(rd(LSR) & LSR_OE, 0);
}

Test(uart, input_pipe_and_character_timeout)
{
	int wfd, fd;

	cr_assert_eq(mkfifo(tmp_path("in.fifo"), 0600), 0);
	cr_assert_eq(create(0, "input", "in.fifo", NULL), 0, "%s", fake_log());
	wfd = open(tmp_path("in.fifo"), O_WRONLY);
	cr_assert(wfd >= 0);
	fd = input_fd();
	wr(FCR, 0x81); /* trigger 8 */
	wr(IER, 0x01);
	wr(MCR, MCR_OUT2);
	cr_assert_eq(write(wfd, "abc", 3), 3);
	cr_assert_eq(fake_fd_fire_ready(fd, 1000), 0);
	cr_assert_eq(rd(IIR), 0xcc, "3 bytes below trigger 8, line quiet: character timeout");
	cr_assert_eq(fake_irq_level(IRQ), 1);
	cr_assert_eq(rd(RBR), 'a');
	cr_assert_eq(rd(IIR), 0xcc, "data left: the timeout comes back");
	cr_assert_eq(rd(RBR), 'b');
	cr_assert_eq(rd(RBR), 'c');
	cr_assert_eq(rd(IIR), 0xc1, "an empty FIFO has no timeout");
	cr_assert_eq(fake_irq_level(IRQ), 0);
	cr_assert_eq(write(wfd, "0123456789", 10), 10);
	cr_assert_eq(fake_fd_fire_ready(fd, 1000), 0);
	cr_assert_eq(rd(IIR), 0xc4, "RDA outranks the timeout");
	wr(IER, 0x00);
	cr_assert_eq(fake_irq_level(IRQ), 0);
	close(wfd);
}

Test(uart, input_waits_while_in_loopback)
{
	int wfd, fd;

	cr_assert_eq(mkfifo(tmp_path("in.fifo"), 0600), 0);
	cr_assert_eq(create(0, "input", "in.fifo", NULL), 0, "%s", fake_log());
	wfd = open(tmp_path("in.fifo"), O_WRONLY);
	fd = input_fd();
	wr(MCR, MCR_LOOP);
	cr_assert_eq(write(wfd, "xy", 2), 2);
	cr_assert_eq(fake_fd_fire_ready(fd, 1000), 0);
	cr_assert_eq(rd(LSR) & LSR_DR, 0, "the serial input is disconnected in loopback");
	wr(MCR, 0);
	cr_assert_eq(rd(RBR), 'x');
	cr_assert_eq(rd(RBR), 'y', "16450 mode: refilled from the host buffer after each read");
	cr_assert_eq(rd(LSR) & LSR_DR, 0);
	close(wfd);
}

Test(uart, destroy_stops_the_watch)
{
	write_file(tmp_path("in.bin"), "z", 1);
	cr_assert_eq(create(0, "input", "in.bin", NULL), 0, "%s", fake_log());
	cr_assert(input_fd() >= 0);
	fake_dev_destroy(dev);
	cr_assert_eq(fake_dev_leaked_watches(dev), 0);
}

/* ---- terminal input ------------------------------------------------------------------ */

static int pty_master;

static void create_on_pty(void)
{
	pty_master = posix_openpt(O_RDWR | O_NOCTTY);
	cr_assert(pty_master >= 0 && grantpt(pty_master) == 0 && unlockpt(pty_master) == 0);
	cr_assert_eq(create(0, "input", ptsname(pty_master), NULL), 0, "%s", fake_log());
}

static void type(const char *s)
{
	size_t len = strlen(s) ? strlen(s) : 1; /* "" types a NUL */

	cr_assert_eq(write(pty_master, s, len), (ssize_t)len);
	cr_assert_eq(fake_fd_fire_ready(input_fd(), 1000), 0);
}

Test(uart, terminal_raw_mode_and_restore)
{
	struct termios before, during, after;
	int slave;

	pty_master = posix_openpt(O_RDWR | O_NOCTTY);
	cr_assert(pty_master >= 0 && grantpt(pty_master) == 0 && unlockpt(pty_master) == 0);
	slave = open(ptsname(pty_master), O_RDWR | O_NOCTTY);
	cr_assert_eq(tcgetattr(slave, &before), 0);
	cr_assert(before.c_lflag & ICANON);
	cr_assert_eq(create(0, "input", ptsname(pty_master), NULL), 0, "%s", fake_log());
	cr_assert_eq(tcgetattr(slave, &during), 0);
	cr_assert_eq(during.c_lflag & (ICANON | ECHO | ISIG), 0, "raw mode");
	cr_assert_eq(during.c_iflag & (ICRNL | IXON), 0);
	fake_dev_destroy(dev);
	cr_assert_eq(tcgetattr(slave, &after), 0);
	cr_assert_eq(after.c_lflag, before.c_lflag, "restored on destroy");
	cr_assert_eq(after.c_iflag, before.c_iflag);
	close(slave);
}

Test(uart, terminal_keys_reach_the_guest)
{
	create_on_pty();
	wr(FCR, 0x01);
	type("hi\r");
	cr_assert_eq(rd(RBR), 'h');
	cr_assert_eq(rd(RBR), 'i');
	cr_assert_eq(rd(RBR), '\r', "no CR -> NL translation in raw mode");
	cr_assert_eq(fake_exit_requests(), 0);
}

Test(uart, ctrl_a_x_ends_the_run)
{
	create_on_pty();
	wr(FCR, 0x01);
	type("a\001");
	cr_assert_eq(fake_exit_requests(), 0);
	type("x");
	cr_assert_eq(fake_exit_requests(), 1);
	cr_assert_eq(fake_exit_status(), 0);
	cr_assert_eq(rd(RBR), 'a');
	cr_assert_eq(rd(LSR) & LSR_DR, 0, "the escape does not reach the guest");
}

Test(uart, ctrl_a_ctrl_a_sends_ctrl_a)
{
	create_on_pty();
	wr(FCR, 0x01);
	type("\001\001\001q");
	cr_assert_eq(rd(RBR), 0x01);
	cr_assert_eq(rd(RBR), 0x01, "Ctrl-A then another key: both reach the guest");
	cr_assert_eq(rd(RBR), 'q');
	cr_assert_eq(rd(LSR) & LSR_DR, 0);
	cr_assert_eq(fake_exit_requests(), 0);
}

Test(uart, break_and_lsr_bit7_in_fifo_mode)
{
	create_on_pty();
	wr(FCR, 0x01);
	wr(IER, 0x04);
	type("a\001bc"); /* 'a', a break (NUL + BI), 'c' */
	cr_assert_eq(rd(IIR), 0xc1, "the break is not at the top yet");
	cr_assert_eq(rd(LSR), LSR_RXFERR | LSR_DR | LSR_THRE | LSR_TEMT, "an error in the FIFO");
	cr_assert_eq(rd(RBR), 'a');
	cr_assert_eq(rd(IIR), 0xc6, "break at the top: line status");
	cr_assert_eq(rd(LSR), LSR_RXFERR | LSR_BI | LSR_DR | LSR_THRE | LSR_TEMT);
	cr_assert_eq(rd(LSR), LSR_DR | LSR_THRE | LSR_TEMT, "no further error: bit 7 cleared");
	cr_assert_eq(rd(RBR), 0x00);
	cr_assert_eq(rd(RBR), 'c');
}

Test(uart, break_in_16450_mode)
{
	create_on_pty();
	type("\001b");
	cr_assert_eq(rd(LSR), LSR_BI | LSR_DR | LSR_THRE | LSR_TEMT, "no bit 7 without FIFOs");
	cr_assert_eq(rd(RBR), 0x00);
	cr_assert_eq(rd(LSR), LSR_THRE | LSR_TEMT);
}

/* ---- a hostile guest ----------------------------------------------------------------- */

Test(uart, hostile_guest_never_breaks_it)
{
	static const unsigned sizes[] = { 1, 2, 4, 8 };
	uint64_t x = 0x9e3779b97f4a7c15ull;

	write_file(tmp_path("in.bin"), "some input for the fuzzer", 25);
	cr_assert_eq(create(0, "input", "in.bin", "output", "out.txt", NULL), 0, "%s", fake_log());
	int fd = input_fd();
	for (int i = 0; i < 200000; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
		uint16_t port = (uint16_t)(BASE - 2 + (x >> 8) % 12);
		unsigned size = sizes[(x >> 20) & 3];
		if ((x >> 24) & 1)
			fake_pio_write(port, size, x >> 32);
		else
			(void)fake_pio_read(port, size);
		if (fd >= 0 && (i % 1000) == 0)
			(void)fake_fd_fire(fd, SMOL_FD_IN);
		if ((i % 50000) == 0)
			fake_dev_reset(dev);
		/* LSR and MCR reads have no side effects on the line: check the OUT2 gate */
		uint8_t mcr = rd(MCR);
		if ((mcr & (MCR_OUT2 | MCR_LOOP)) != MCR_OUT2)
			cr_assert_eq(fake_irq_level(IRQ), 0, "line raised while gated, step %d", i);
		cr_assert_eq(mcr & 0xe0, 0);
	}
	cr_assert_eq(rd(LSR) & (LSR_THRE | LSR_TEMT), LSR_THRE | LSR_TEMT);
	cr_assert_eq(fake_irq_misuse(), 0);
}
