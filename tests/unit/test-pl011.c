/*
 * Unit tests of pl011.so's register model, driven through the fake host (no core, no KVM):
 * configuration, every register's power-on value, read/write bits and reserved bits, the ID
 * registers, access widths, the FIFOs, trigger levels, interrupts, loopback, errors, break.
 * Register values and rules follow ARM's PL011 TRM r1p5. The host side (output, input,
 * terminal) is tested in test-pl011-host.c, snapshots in test-pl011-snap.c.
 */
#include "pl011-test.h"

TestSuite(pl011, .init = pl011_setup, .fini = pl011_teardown, .timeout = 30);

/* ---- descriptor and configuration ---------------------------------------------------- */

Test(pl011, descriptor)
{
	cr_assert_str_eq(plugin->name, "pl011");
	cr_assert_eq(plugin->kind, SMOL_KIND_DEVICE);
}

Test(pl011, maps_4k_and_claims_its_line)
{
	create_ok();
	cr_assert(fake_mmio_mapped(BASE));
	cr_assert(fake_mmio_mapped(BASE + 0xfff));
	cr_assert_not(fake_mmio_mapped(BASE + 0x1000));
	cr_assert(fake_irq_claimed(IRQ));
	cr_assert_eq(fake_cfg_unread(dev), NULL, "every key is read");
	cr_assert_str_eq(fake_dev_describe(dev),
	                 "device ARMH0011\nmmio 0x9000000 0x1000\nirq 33 1\n"
	                 "compatible arm,pl011\ncompatible arm,primecell\n"
	                 "clock uartclk 24000000\nclock apb_pclk 24000000\nconsole\n");
}

Test(pl011, without_base_and_irq_the_host_chooses)
{
	dev = fake_dev_new("serial0");
	fake_cfg_set(dev, "output", "none");
	fake_cfg_set(dev, "input", "none");
	cr_assert_eq(fake_dev_create(dev, plugin, 0), 0, "%s", fake_log());
	cr_assert(fake_mmio_mapped(FAKE_MMIO_AUTO_BASE));
	cr_assert(fake_irq_claimed(5), "the first free line from 5 up");
	cr_assert_str_eq(fake_dev_describe(dev),
	                 "device ARMH0011\nmmio 0xd0000000 0x1000\nirq 5 1\n"
	                 "compatible arm,pl011\ncompatible arm,primecell\n"
	                 "clock uartclk 24000000\nclock apb_pclk 24000000\nconsole\n");
	fake_mmio_write(FAKE_MMIO_AUTO_BASE + LCR_H, 4, LCRH_FEN);
	fake_mmio_write(FAKE_MMIO_AUTO_BASE + CR, 4, CR_ON | CR_LBE);
	fake_mmio_write(FAKE_MMIO_AUTO_BASE + IMSC, 4, INT_RT);
	fake_mmio_write(FAKE_MMIO_AUTO_BASE + DR, 4, 'k');
	cr_assert_eq(fake_irq_level(5), 1, "the chosen line is the one driven");
}

static void expect_cfg_error(const char *key, const char *value, const char *about)
{
	cr_assert_neq(create(0, key, value, NULL), 0, "%s = %s accepted", key, value);
	cr_assert(fake_cfg_error_about(about), "no error about %s: %s", about, fake_log());
}

Test(pl011, unaligned_base)
{
	expect_cfg_error("base", "0x09000800", "base");
}

Test(pl011, base_at_the_top)
{
	expect_cfg_error("base", "0xfffffffffffff000", "base");
}

Test(pl011, malformed_base)
{
	expect_cfg_error("base", "uart", "base");
}

Test(pl011, irq_above_32_bits)
{
	expect_cfg_error("irq", "0x100000000", "irq");
}

Test(pl011, every_bad_key_is_reported)
{
	cr_assert_neq(create(0, "base", "0x123", "irq", "0x100000000", "output", "stdin", NULL), 0);
	cr_assert(fake_cfg_error_about("base"), "%s", fake_log());
	cr_assert(fake_cfg_error_about("irq"), "%s", fake_log());
	cr_assert(fake_cfg_error_about("output"), "%s", fake_log());
}

Test(pl011, stdin_is_not_an_output)
{
	expect_cfg_error("output", "stdin", "output");
}

Test(pl011, stdout_is_not_an_input)
{
	expect_cfg_error("input", "stdout", "input");
}

Test(pl011, overlap_is_refused)
{
	create_ok();
	struct smol_dev *other = fake_dev_new("serial1");
	fake_cfg_set(other, "base", "0x09000000");
	fake_cfg_set(other, "irq", "34");
	fake_cfg_set(other, "output", "none");
	fake_cfg_set(other, "input", "none");
	cr_assert_eq(fake_dev_create(other, plugin, 0), -EEXIST);
}

Test(pl011, check_only_opens_nothing)
{
	cr_assert_eq(create(SMOL_CREATE_CHECK_ONLY, "output", "out.txt", NULL), 0, "%s",
	             fake_log());
	cr_assert_eq(access(tmp_path("out.txt"), F_OK), -1, "check created the output");
}

/* ---- power-on values, read/write and reserved bits ------------------------------------- */

static void expect_power_on_values(void)
{
	cr_assert_eq(rd(DR), 0, "an empty FIFO reads 0");
	cr_assert_eq(rd(RSR), 0);
	cr_assert_eq(rd(FR), FR_TXFE | FR_RXFE, "FR 0x%x", rd(FR));
	cr_assert_eq(rd(ILPR), 0);
	cr_assert_eq(rd(IBRD), 0);
	cr_assert_eq(rd(FBRD), 0);
	cr_assert_eq(rd(LCR_H), 0);
	cr_assert_eq(rd(CR), 0x0300, "TXE and RXE set, UARTEN clear");
	cr_assert_eq(rd(IFLS), 0x12, "both trigger levels at 1/2");
	cr_assert_eq(rd(IMSC), 0);
	cr_assert_eq(rd(RIS), 0);
	cr_assert_eq(rd(MIS), 0);
	cr_assert_eq(rd(ICR), 0, "write-only");
	cr_assert_eq(rd(DMACR), 0);
	cr_assert_eq(fake_irq_level(IRQ), 0);
}

Test(pl011, power_on_values)
{
	create_ok();
	expect_power_on_values();
}

Test(pl011, reset_restores_power_on_values)
{
	create_ok();
	loopback_on(true, 0x00);
	wr(ILPR, 0x12);
	wr(IBRD, 0x34);
	wr(FBRD, 0x05);
	wr(IMSC, INT_ALL);
	wr(DMACR, 0x7);
	wr(DR, 'x');
	wr(DR, 'y');
	cr_assert_eq(fake_irq_level(IRQ), 1);
	fake_dev_reset(dev);
	expect_power_on_values();
}

static void expect_rw(unsigned off, uint32_t mask)
{
	wr(off, 0xffffffff);
	cr_assert_eq(rd(off), mask, "register 0x%03x: 0x%x, not 0x%x", off, rd(off), mask);
	wr(off, 0);
	cr_assert_eq(rd(off), 0, "register 0x%03x clears", off);
}

Test(pl011, read_write_bits)
{
	create_ok();
	expect_rw(ILPR, 0xff);
	expect_rw(IBRD, 0xffff);
	expect_rw(FBRD, 0x3f);
	expect_rw(LCR_H, 0xff);
	expect_rw(CR, 0xff87); /* bits 3-6 reserved */
	expect_rw(IFLS, 0x3f);
	expect_rw(IMSC, 0x7ff);
	expect_rw(DMACR, 0x7);
	for (uint32_t v = 0; v < 0x40; v += 0x9) {
		wr(IFLS, v);
		cr_assert_eq(rd(IFLS), v, "IFLS keeps reserved selects as written");
	}
}

Test(pl011, read_only_registers_ignore_writes)
{
	create_ok();
	wr(FR, 0xffff);
	wr(RIS, 0xffff);
	wr(MIS, 0xffff);
	for (unsigned off = 0xfe0; off < 0x1000; off += 4)
		wr(off, 0xff);
	expect_power_on_values();
	cr_assert_eq(rd(0xfe0), 0x11);
}

Test(pl011, reserved_offsets_read_zero_and_ignore_writes)
{
	static const unsigned reserved[] = { 0x008, 0x00c, 0x010, 0x014, 0x01c, 0x04c, 0x07c,
		                             0x080, 0x08c, 0x400, 0xfcc, 0xfd0, 0xfdc };

	create_ok();
	for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++) {
		wr(reserved[i], 0xffffffff);
		cr_assert_eq(rd(reserved[i]), 0, "offset 0x%03x", reserved[i]);
	}
	expect_power_on_values();
}

Test(pl011, ecr_write_clears_rsr)
{
	create_ok();
	loopback_on(false, 0x12);
	wr(DR, 'a');
	wr(DR, 'b'); /* the holding register is full: overrun */
	cr_assert_eq(rd(RSR), RSR_OE);
	wr(ECR, 0x1234);
	cr_assert_eq(rd(RSR), 0);
	cr_assert_eq(rd(DR), 'a', "ECR leaves the data alone");
}

/* ---- identification -------------------------------------------------------------------- */

Test(pl011, id_registers)
{
	static const uint8_t id[8] = { 0x11, 0x10, 0x34, 0x00, 0x0d, 0xf0, 0x05, 0xb1 };
	uint32_t periphid = 0, cellid = 0;

	create_ok();
	for (unsigned i = 0; i < 8; i++)
		cr_assert_eq(rd(0xfe0 + 4 * i), id[i], "ID register 0x%03x", 0xfe0 + 4 * i);
	/* as Linux's AMBA bus reads them: the low byte of each word */
	for (unsigned i = 0; i < 4; i++) {
		periphid |= (rd(0xfe0 + 4 * i) & 0xff) << (8 * i);
		cellid |= (rd(0xff0 + 4 * i) & 0xff) << (8 * i);
	}
	cr_assert_eq(cellid, 0xb105f00d);
	cr_assert_eq(periphid & 0x000fffff, 0x00041011, "amba-pl011's ARM entry matches");
	cr_assert_eq((periphid >> 20) & 0xf, 3, "revision 3 (r1p5): Linux uses 32-entry FIFOs");
}

/* ---- access widths --------------------------------------------------------------------- */

Test(pl011, narrow_and_wide_accesses)
{
	create_ok();
	cr_assert_eq(fake_mmio_read(BASE + CR, 2), 0x0300, "16-bit, as Linux's driver reads");
	cr_assert_eq(fake_mmio_read(BASE + CR, 1), 0x00);
	cr_assert_eq(fake_mmio_read(BASE + CR + 1, 1), 0x03, "a byte inside the word");
	cr_assert_eq(fake_mmio_read(BASE + FR, 1), FR_TXFE | FR_RXFE);
	cr_assert_eq(fake_mmio_read(BASE + CR, 8), 0x0300, "8 bytes: the word, zero above");
	fake_mmio_write(BASE + IBRD, 2, 0xabcd);
	cr_assert_eq(rd(IBRD), 0xabcd);
	fake_mmio_write(BASE + IBRD + 1, 1, 0x11);
	cr_assert_eq(rd(IBRD), 0xabcd, "writes inside a word are ignored");
	fake_mmio_write(BASE + IBRD, 1, 0x22);
	cr_assert_eq(rd(IBRD), 0x0022, "no byte strobes: the other bits are written as 0");

	loopback_on(true, 0x12);
	fake_mmio_write(BASE + DR, 1, 'q'); /* earlycon's byte write */
	cr_assert_eq(fake_mmio_read(BASE + DR + 1, 1), 0, "a read inside DR peeks");
	cr_assert_eq(rd(FR) & FR_RXFE, 0, "and leaves the character");
	cr_assert_eq(fake_mmio_read(BASE + DR, 2), 'q');
	cr_assert(rd(FR) & FR_RXFE);
}

/* ---- FIFOs ----------------------------------------------------------------------------- */

Test(pl011, fifo_fills_and_drains_at_32)
{
	create_ok();
	loopback_on(true, 0x24); /* RX 7/8, TX 1/2 */
	for (unsigned i = 0; i < 32; i++) {
		cr_assert_eq(rd(FR) & FR_RXFF, 0, "full after %u", i);
		wr(DR, 'A' + i);
		cr_assert_eq(rd(FR) & FR_RXFE, 0);
	}
	cr_assert(rd(FR) & FR_RXFF, "32 characters fill it");
	for (unsigned i = 0; i < 32; i++) {
		cr_assert_eq(rd(FR) & FR_RXFE, 0, "empty after %u", i);
		cr_assert_eq(rd(DR), 'A' + i, "in order");
		cr_assert_eq(rd(FR) & FR_RXFF, 0);
	}
	cr_assert(rd(FR) & FR_RXFE);
	cr_assert_eq(rd(RSR), 0, "no error");
}

Test(pl011, fifo_disabled_is_one_deep)
{
	create_ok();
	loopback_on(false, 0x12);
	wr(DR, 'a');
	cr_assert_eq(rd(FR) & (FR_RXFF | FR_RXFE), FR_RXFF, "one character fills it");
	cr_assert_eq(rd(FR) & (FR_TXFE | FR_TXFF), FR_TXFE);
	wr(DR, 'b');
	cr_assert_eq(rd(DR), 'a', "the held character is kept on overrun");
	cr_assert(rd(FR) & FR_RXFE, "'b' was lost");
}

Test(pl011, fifo_enable_change_empties_the_receiver)
{
	create_ok();
	loopback_on(true, 0x12);
	wr(DR, 'a');
	wr(DR, 'b');
	wr(LCR_H, LCRH_WLEN8);
	cr_assert(rd(FR) & FR_RXFE);
	wr(DR, 'c');
	wr(LCR_H, LCRH_WLEN8 | LCRH_FEN);
	cr_assert(rd(FR) & FR_RXFE);
	wr(LCR_H, LCRH_WLEN8 | LCRH_FEN | 0x02); /* other bits: the data stays */
	wr(DR, 'd');
	wr(LCR_H, LCRH_WLEN8 | LCRH_FEN);
	cr_assert_eq(rd(DR), 'd');
}

Test(pl011, word_length_cuts_characters)
{
	static const uint8_t wlen_mask[4] = { 0x1f, 0x3f, 0x7f, 0xff };

	create_ok();
	for (unsigned w = 0; w < 4; w++) {
		wr(LCR_H, LCRH_FEN | w << 5);
		wr(CR, CR_ON | CR_LBE);
		wr(DR, 0xff);
		cr_assert_eq(rd(DR), wlen_mask[w], "WLEN %u", w);
	}
}

/* ---- receive trigger levels and timeout ------------------------------------------------ */

Test(pl011, rx_trigger_levels_for_every_ifls)
{
	create_ok();
	for (uint32_t sel = 0; sel < 8; sel++) {
		unsigned trig = trigger_of[sel];

		fake_dev_reset(dev);
		loopback_on(true, sel << 3);
		wr(IMSC, INT_RX);
		for (unsigned n = 1; n <= 32; n++) {
			wr(DR, (uint8_t)n);
			cr_assert_eq(!!(rd(RIS) & INT_RX), n >= trig, "select %u: %u characters",
			             sel, n);
			expect_line();
		}
		/* reading below the level clears it; reaching it again raises it again */
		for (unsigned left = 32; left >= trig; left--) {
			cr_assert(rd(RIS) & INT_RX, "select %u: %u left", sel, left);
			(void)rd(DR);
		}
		cr_assert_eq(rd(RIS) & INT_RX, 0, "select %u: cleared below the level", sel);
		wr(DR, 'z');
		cr_assert(rd(RIS) & INT_RX, "select %u: back at the level", sel);
		expect_line();
	}
}

Test(pl011, rx_trigger_counts_exactly_at_the_level)
{
	create_ok();
	loopback_on(true, 2 << 3); /* 1/2: 16 */
	for (unsigned n = 0; n < 20; n++)
		wr(DR, 'a' + n);
	cr_assert(rd(RIS) & INT_RX);
	for (unsigned n = 20; n > 16; n--) {
		(void)rd(DR);
		cr_assert(rd(RIS) & INT_RX, "%u left: still at or above 16", n - 1);
	}
	(void)rd(DR);
	cr_assert_eq(rd(RIS) & INT_RX, 0, "15 left");
	wr(ICR, INT_RX);
	wr(DR, 'x');
	cr_assert(rd(RIS) & INT_RX, "16 again");
	wr(ICR, INT_RX);
	wr(DR, 'y');
	cr_assert_eq(rd(RIS) & INT_RX, 0, "17: the level was not crossed, ICR holds");
}

Test(pl011, rx_interrupt_without_fifos)
{
	create_ok();
	loopback_on(false, 0x3f);
	wr(IMSC, INT_RX);
	wr(DR, 'a');
	cr_assert(rd(RIS) & INT_RX, "one character raises it");
	cr_assert_eq(fake_irq_level(IRQ), 1);
	cr_assert_eq(rd(DR), 'a');
	cr_assert_eq(rd(RIS) & INT_RX, 0, "one read clears it");
	cr_assert_eq(fake_irq_level(IRQ), 0);
}

Test(pl011, receive_timeout)
{
	create_ok();
	loopback_on(true, 4 << 3); /* 7/8 */
	wr(IMSC, INT_RT);
	wr(DR, 'a');
	wr(DR, 'b');
	cr_assert_eq(rd(RIS) & (INT_RX | INT_RT), INT_RT, "below the level: the timeout");
	cr_assert_eq(fake_irq_level(IRQ), 1);
	cr_assert_eq(rd(DR), 'a');
	cr_assert(rd(RIS) & INT_RT, "data left: still pending");
	cr_assert_eq(rd(DR), 'b');
	cr_assert_eq(rd(RIS) & INT_RT, 0, "read empty: cleared");
	cr_assert_eq(fake_irq_level(IRQ), 0);
	wr(DR, 'c');
	cr_assert(rd(RIS) & INT_RT);
	wr(ICR, INT_RT);
	cr_assert_eq(rd(RIS) & INT_RT, 0, "ICR clears it");
	cr_assert_eq(fake_irq_level(IRQ), 0);
	cr_assert_eq(rd(DR), 'c');
}

/* ---- interrupt registers and the line -------------------------------------------------- */

Test(pl011, imsc_masks_each_source_and_mis_is_ris_and_imsc)
{
	create_ok();
	loopback_on(false, 0x12);
	wr(DR, 'a');
	wr(DR, 'b'); /* RX, RT, OE */
	wr(CR, CR_ON | CR_LBE | CR_RTS | CR_DTR | CR_OUT1 | CR_OUT2); /* modem inputs change */
	wr(LCR_H, LCRH_WLEN8 | LCRH_BRK); /* a break: BE, and it is lost (full): OE */
	uint32_t ris = rd(RIS);
	cr_assert_eq(ris, INT_RX | INT_RT | INT_OE | INT_CTS | INT_DSR | INT_DCD | INT_RI | INT_TX,
	             "RIS 0x%x", ris);
	for (unsigned bit = 0; bit < 11; bit++) {
		wr(IMSC, 1u << bit);
		cr_assert_eq(rd(MIS), ris & (1u << bit), "bit %u", bit);
		cr_assert_eq(fake_irq_level(IRQ), !!(ris & (1u << bit)), "line for bit %u", bit);
	}
	wr(IMSC, 0);
	cr_assert_eq(rd(MIS), 0);
	cr_assert_eq(rd(RIS), ris, "masking does not clear");
	cr_assert_eq(fake_irq_level(IRQ), 0);
	wr(IMSC, INT_ALL);
	cr_assert_eq(rd(MIS), ris);
	cr_assert_eq(fake_irq_level(IRQ), 1);
	for (unsigned bit = 0; bit < 11; bit++) {
		wr(ICR, 1u << bit);
		cr_assert_eq(rd(RIS), ris & ~((2u << bit) - 1), "ICR bit %u clears that bit only",
		             bit);
		expect_line();
	}
	cr_assert_eq(fake_irq_level(IRQ), 0);
	cr_assert_eq(fake_irq_misuse(), 0);
}

Test(pl011, line_is_level_and_not_pulsed)
{
	create_ok();
	loopback_on(true, 0x00);
	wr(IMSC, INT_RX);
	for (unsigned i = 0; i < 8; i++)
		wr(DR, 'a');
	cr_assert_eq(fake_irq_level(IRQ), 1);
	cr_assert_eq(fake_irq_rises(IRQ), 1, "one rise while it stays pending");
	wr(IMSC, 0);
	cr_assert_eq(fake_irq_level(IRQ), 0);
	wr(IMSC, INT_RX);
	cr_assert_eq(fake_irq_level(IRQ), 1, "unmasking a pending interrupt raises the line");
}

/* ---- transmit interrupt without FIFOs (the output takes everything) -------------------- */

Test(pl011, tx_interrupt_without_fifos_follows_each_character)
{
	create_ok();
	wr(CR, CR_ON);
	wr(IMSC, INT_TX);
	cr_assert_eq(rd(RIS) & INT_TX, 0, "nothing sent yet");
	wr(DR, 'a');
	cr_assert(rd(RIS) & INT_TX, "the holding register emptied");
	cr_assert_eq(fake_irq_level(IRQ), 1);
	wr(ICR, INT_TX);
	cr_assert_eq(fake_irq_level(IRQ), 0);
	wr(DR, 'b');
	cr_assert(rd(RIS) & INT_TX);
}

Test(pl011, tx_interrupt_with_fifos_needs_a_crossing)
{
	create_ok();
	wr(LCR_H, LCRH_WLEN8 | LCRH_FEN);
	wr(CR, CR_ON);
	wr(IMSC, INT_TX);
	for (unsigned i = 0; i < 64; i++)
		wr(DR, 'a');
	cr_assert_eq(rd(RIS) & INT_TX, 0, "the FIFO never rose above the level");
	cr_assert_eq(rd(FR) & (FR_TXFE | FR_TXFF | FR_BUSY), FR_TXFE);
}

/* ---- loopback, modem lines, errors, break ---------------------------------------------- */

Test(pl011, loopback_needs_the_receiver_enabled)
{
	create_ok();
	wr(LCR_H, LCRH_FEN | LCRH_WLEN8);
	wr(CR, CR_TXE | CR_RXE | CR_LBE); /* UARTEN clear */
	wr(DR, 'a');
	cr_assert(rd(FR) & FR_RXFE);
	wr(CR, CR_UARTEN | CR_TXE | CR_LBE); /* RXE clear */
	wr(DR, 'b');
	cr_assert(rd(FR) & FR_RXFE);
	wr(CR, CR_ON | CR_LBE);
	wr(DR, 'c');
	cr_assert_eq(rd(DR), 'c');
}

Test(pl011, loopback_modem_lines)
{
	static const struct {
		uint32_t cr, fr, ris;
	} line[4] = {
		{ CR_RTS, FR_CTS, INT_CTS },
		{ CR_DTR, FR_DSR, INT_DSR },
		{ CR_OUT1, FR_DCD, INT_DCD },
		{ CR_OUT2, FR_RI, INT_RI },
	};

	create_ok();
	wr(CR, CR_ON | CR_RTS | CR_DTR | CR_OUT1 | CR_OUT2);
	cr_assert_eq(rd(FR) & (FR_CTS | FR_DSR | FR_DCD | FR_RI), 0, "nothing connected");
	cr_assert_eq(rd(RIS), 0);
	for (int i = 0; i < 4; i++) {
		wr(CR, CR_ON | CR_LBE);
		wr(ICR, INT_ALL);
		wr(CR, CR_ON | CR_LBE | line[i].cr);
		cr_assert_eq(rd(FR) & (FR_CTS | FR_DSR | FR_DCD | FR_RI), line[i].fr, "line %d", i);
		cr_assert_eq(rd(RIS), line[i].ris, "a change raises its interrupt");
		wr(ICR, INT_ALL);
		wr(CR, CR_ON | CR_LBE | line[i].cr);
		cr_assert_eq(rd(RIS), 0, "no change, no interrupt");
		wr(CR, CR_ON | line[i].cr);
		cr_assert_eq(rd(FR) & (FR_CTS | FR_DSR | FR_DCD | FR_RI), 0, "out of loopback");
		cr_assert_eq(rd(RIS), line[i].ris, "falling is a change too");
	}
}

Test(pl011, overrun_sets_oe_in_rsr_at_once_and_on_the_next_character)
{
	create_ok();
	loopback_on(true, 0x12);
	wr(IMSC, INT_OE);
	for (unsigned i = 0; i < 32; i++)
		wr(DR, 'A' + i);
	cr_assert_eq(rd(RIS) & INT_OE, 0);
	wr(DR, '!');
	cr_assert(rd(RIS) & INT_OE, "the 33rd character is lost");
	cr_assert_eq(rd(RSR), RSR_OE, "RSR.OE at once");
	cr_assert_eq(fake_irq_level(IRQ), 1);
	wr(DR, '?'); /* lost too */
	cr_assert_eq(rd(DR), 'A', "the FIFO is kept, no OE on its characters");
	wr(DR, 'z'); /* the space lets the next one in */
	for (unsigned i = 1; i < 32; i++)
		cr_assert_eq(rd(DR), 'A' + i);
	cr_assert_eq(rd(DR), 'z' | DR_OE, "the next character in carries OE");
	cr_assert_eq(rd(RSR), RSR_OE);
	wr(ECR, 0);
	wr(DR, 'y');
	cr_assert_eq(rd(DR), 'y', "one character only");
	cr_assert_eq(rd(RSR), 0);
}

Test(pl011, overrun_without_fifos)
{
	create_ok();
	loopback_on(false, 0x12);
	wr(DR, 'a');
	wr(DR, 'b');
	cr_assert(rd(RIS) & INT_OE);
	cr_assert_eq(rd(DR), 'a');
	wr(DR, 'c');
	cr_assert_eq(rd(DR), 'c' | DR_OE);
}

Test(pl011, break_in_loopback)
{
	create_ok();
	loopback_on(true, 0x12);
	wr(IMSC, INT_BE);
	wr(DR, 'a');
	wr(LCR_H, LCRH_WLEN8 | LCRH_FEN | LCRH_BRK);
	cr_assert(rd(RIS) & INT_BE);
	cr_assert_eq(fake_irq_level(IRQ), 1);
	wr(LCR_H, LCRH_WLEN8 | LCRH_FEN | LCRH_BRK); /* held: no second break */
	wr(LCR_H, LCRH_WLEN8 | LCRH_FEN);
	cr_assert_eq(rd(DR), 'a');
	cr_assert_eq(rd(RSR), 0);
	cr_assert_eq(rd(DR), DR_BE, "a break is a NUL with BE");
	cr_assert_eq(rd(RSR), RSR_BE, "RSR has the errors of the character read");
	cr_assert(rd(FR) & FR_RXFE);
	wr(DR, 'b');
	cr_assert_eq(rd(DR), 'b');
	cr_assert_eq(rd(RSR), 0, "a good character clears FE/PE/BE");
	wr(ICR, INT_BE);
	cr_assert_eq(fake_irq_level(IRQ), 0);
}

Test(pl011, break_outside_loopback_sends_nothing)
{
	create_ok();
	wr(LCR_H, LCRH_WLEN8 | LCRH_FEN | LCRH_BRK);
	wr(CR, CR_ON);
	cr_assert(rd(FR) & FR_RXFE);
	cr_assert_eq(rd(RIS), 0);
}

/* ---- a hostile guest ------------------------------------------------------------------- */

Test(pl011, hostile_guest_never_breaks_it)
{
	static const unsigned sizes[] = { 1, 2, 4, 8 };
	uint64_t x = 0x9e3779b97f4a7c15ull;

	write_file(tmp_path("in.bin"), "some input for the hostile guest", 32);
	cr_assert_eq(create(0, "input", "in.bin", "output", "out.txt", NULL), 0, "%s", fake_log());
	int fd = watched_fd(SMOL_FD_IN);
	for (int i = 0; i < 200000; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
		unsigned size = sizes[(x >> 20) & 3];
		uint64_t off = ((x >> 8) & 1) ? (x >> 40) % 0x1000 : ((x >> 40) % 0x50) & ~3ull;
		if (off + size > 0x1000)
			continue; /* the bus only hands in accesses inside the region */
		if ((x >> 24) & 1)
			fake_mmio_write(BASE + off, size, x >> 32);
		else
			(void)fake_mmio_read(BASE + off, size);
		if (fd >= 0 && (i % 1000) == 0)
			(void)fake_fd_fire(fd, SMOL_FD_IN);
		if ((i % 50000) == 0)
			fake_dev_reset(dev);
		expect_line();
		cr_assert_eq(rd(FR) & ~0x1ffu, 0);
		cr_assert_eq(rd(CR) & 0x78, 0, "reserved CR bits stay 0");
	}
	cr_assert_eq(fake_irq_misuse(), 0);
}
