/*
 * Unit tests of pl011.so's snapshots (save/load, state version 1, the format documented in
 * devices/pl011/pl011-snap.c and written out here again by hand), through the fake host: a
 * full state survives a save and a load into a new device byte for byte, load() does not drive
 * the line, a transmitter saved busy raises its interrupt on the restored output, and every
 * kind of corrupt state is refused with a message, leaving the device as it was.
 */
#include "pl011-test.h"

TestSuite(pl011_snap, .init = pl011_setup, .fini = pl011_teardown, .timeout = 30);

/* Offsets in state version 1. */
enum { ST_RSR = 0, ST_LCR_H = 8, ST_CR = 10, ST_FLAGS = 20, ST_TXL = 21, ST_N = 22, ST_FIFO = 23 };
static const struct {
	unsigned off;
	uint16_t mask;
} reg_field[10] = {
	{ 0, 0x000f },  { 2, 0x00ff },  { 4, 0xffff },  { 6, 0x003f },  { 8, 0x00ff },
	{ 10, 0xff87 }, { 12, 0x003f }, { 14, 0x07ff }, { 16, 0x07ff }, { 18, 0x0007 },
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

/* A state by hand: registers as below, @n FIFO entries 'A'.. (the second with FE), @m host
 * input characters 'a'.. ; its length. */
static size_t make_state(uint8_t *b, uint16_t lcr_h, unsigned n, unsigned m)
{
	const uint16_t regs[10] = { 0x8,  0x12,  0x1a,  0x3, lcr_h, 0x0301 | CR_RTS,
		                    0x1a, 0x050, 0x010, 0x5 };
	size_t len = 0;

	for (unsigned i = 0; i < 10; i++, len += 2)
		put16(b + len, regs[i]);
	b[len++] = 0x02; /* flags: the line is high (RIS & IMSC) */
	b[len++] = 0; /* transmit FIFO level */
	b[len++] = (uint8_t)n;
	for (unsigned i = 0; i < n; i++, len += 2)
		put16(b + len, (uint16_t)(('A' + i) | (i == 1 ? DR_FE : 0)));
	put16(b + len, (uint16_t)m);
	len += 2;
	for (unsigned i = 0; i < m; i++, len += 2)
		put16(b + len, (uint16_t)('a' + i % 26));
	return len;
}

static uint8_t *save(size_t *len)
{
	uint8_t *buf = NULL;
	uint32_t version = 0;

	cr_assert_eq(fake_dev_save(dev, &buf, len, &version), 0, "%s", fake_log());
	cr_assert_eq(version, 1);
	return buf;
}

static void new_device(void)
{
	fake_dev_destroy(dev);
	create_ok();
}

Test(pl011_snap, documented_format_loads)
{
	uint8_t b[1024];
	size_t len = make_state(b, LCRH_FEN | LCRH_WLEN8, 3, 2);

	create_ok();
	cr_assert_eq(fake_host.irq_set(dev, IRQ, 1), 0); /* the core restores the line */
	unsigned rises = fake_irq_rises(IRQ);
	cr_assert_eq(fake_dev_load(dev, b, len, 1), 0, "%s", fake_log());
	cr_assert_eq(fake_irq_rises(IRQ), rises);
	cr_assert_eq(fake_irq_level(IRQ), 1);
	cr_assert_eq(rd(RSR), 0x8);
	cr_assert_eq(rd(ILPR), 0x12);
	cr_assert_eq(rd(IBRD), 0x1a);
	cr_assert_eq(rd(FBRD), 0x3);
	cr_assert_eq(rd(LCR_H), LCRH_FEN | LCRH_WLEN8);
	cr_assert_eq(rd(CR), 0x0301 | CR_RTS);
	cr_assert_eq(rd(IFLS), 0x1a);
	cr_assert_eq(rd(IMSC), 0x050);
	cr_assert_eq(rd(RIS), 0x010 | INT_RT, "the host input flowed in, the line went quiet");
	cr_assert_eq(rd(DMACR), 0x5);
	cr_assert_eq(rd(DR), 'A');
	cr_assert_eq(rd(DR), 'B' | DR_FE);
	cr_assert_eq(rd(RSR), 0x8 | RSR_FE);
	cr_assert_eq(rd(DR), 'C');
	cr_assert_eq(rd(DR), 'a', "the host input follows");
	cr_assert_eq(rd(DR), 'b');
	cr_assert(rd(FR) & FR_RXFE);
}

Test(pl011_snap, full_state_round_trip_is_byte_for_byte)
{
	uint8_t b[1024];
	size_t len = make_state(b, LCRH_FEN | LCRH_WLEN8, 32, 200), len2;

	create_ok();
	cr_assert_eq(fake_dev_load(dev, b, len, 1), 0, "%s", fake_log());
	uint8_t *again = save(&len2);
	cr_assert_eq(len2, len);
	cr_assert_eq(memcmp(again, b, len), 0, "save(load(x)) == x");
	free(again);

	new_device();
	cr_assert_eq(fake_dev_load(dev, b, len, 1), 0, "%s", fake_log());
	for (unsigned i = 0; i < 32; i++)
		cr_assert_eq(rd(DR) & 0xff, 'A' + i);
	for (unsigned i = 0; i < 200; i++)
		cr_assert_eq(rd(DR), (uint8_t)('a' + i % 26), "host input %u", i);
	cr_assert(rd(FR) & FR_RXFE);
}

Test(pl011_snap, live_state_survives)
{
	size_t len, len2;

	create_ok();
	loopback_on(true, 0x09);
	wr(ILPR, 0x77);
	wr(IBRD, 0x1234);
	wr(FBRD, 0x21);
	wr(IMSC, INT_RX | INT_OE);
	wr(DMACR, 0x2);
	for (unsigned i = 0; i < 33; i++) /* one lost: OE pending */
		wr(DR, 'A' + i);
	wr(LCR_H, LCRH_WLEN8 | LCRH_FEN | LCRH_BRK); /* a break, lost too */
	cr_assert_eq(fake_irq_level(IRQ), 1);
	uint8_t *buf = save(&len);
	cr_assert_eq(len, ST_FIFO + 2 * 32 + 2);
	cr_assert_eq(buf[ST_FLAGS], 0x03, "OE pending, line high");
	cr_assert_eq(buf[ST_N], 32);

	new_device();
	cr_assert_eq(fake_host.irq_set(dev, IRQ, 1), 0); /* the core restores the line */
	unsigned rises = fake_irq_rises(IRQ);
	cr_assert_eq(fake_dev_load(dev, buf, len, 1), 0, "%s", fake_log());
	cr_assert_eq(fake_irq_rises(IRQ), rises);
	uint8_t *again = save(&len2);
	cr_assert_eq(len2, len);
	cr_assert_eq(memcmp(again, buf, len), 0);
	free(again);
	cr_assert_eq(rd(ILPR), 0x77);
	cr_assert_eq(rd(IBRD), 0x1234);
	cr_assert_eq(rd(FBRD), 0x21);
	cr_assert_eq(rd(RSR), RSR_OE);
	cr_assert(rd(RIS) & INT_OE);
	for (unsigned i = 0; i < 32; i++)
		cr_assert_eq(rd(DR), 'A' + i);
	wr(DR, 'z');
	cr_assert_eq(rd(DR), 'z' | DR_OE, "the pending overrun survived");
	wr(ICR, INT_ALL);
	cr_assert_eq(fake_irq_level(IRQ), 0, "the restored device drives the line it remembers");
	free(buf);
}

Test(pl011_snap, busy_transmitter_raises_tx_on_the_restored_output)
{
	uint8_t b[1024];
	size_t len = make_state(b, LCRH_FEN | LCRH_WLEN8, 0, 0);

	b[ST_TXL] = 32; /* saved with a full transmit FIFO */
	put16(b + 12, 0x02); /* TX trigger 1/2 */
	put16(b + 14, INT_TX); /* IMSC */
	put16(b + 16, 0); /* RIS */
	b[ST_FLAGS] = 0; /* the line low */
	cr_assert_eq(create(0, "output", "out.txt", NULL), 0, "%s", fake_log());
	cr_assert_eq(fake_dev_load(dev, b, len, 1), 0, "%s", fake_log());
	cr_assert_eq(rd(RIS) & INT_TX, 0,
	             "the restored state is the saved one until the loop runs");
	cr_assert(fake_fd_pump(100) >= 1, "the output is watched");
	cr_assert(rd(RIS) & INT_TX, "room on the restored output: drained through the level");
	cr_assert_eq(fake_irq_level(IRQ), 1);
}

/* ---- refusals -------------------------------------------------------------------------- */

static void expect_refused(const uint8_t *b, size_t len, uint32_t version, int err, const char *msg)
{
	int r = fake_dev_load(dev, b, len, version);

	cr_assert_eq(r, err, "%s: load gave %d: %s", msg, r, fake_log());
	cr_assert(fake_log_contains(msg), "no '%s' in: %s", msg, fake_log());
	cr_assert_eq(rd(CR), 0x0300, "%s: the device is left as it was", msg);
	cr_assert(rd(FR) & FR_RXFE);
}

Test(pl011_snap, newer_and_zero_versions_are_refused)
{
	uint8_t b[1024];
	size_t len = make_state(b, LCRH_FEN, 1, 1);

	create_ok();
	expect_refused(b, len, 2, -ENOTSUP, "newer than this plugin's 1");
	expect_refused(b, len, 0, -EINVAL, "state version 0");
}

Test(pl011_snap, every_truncation_and_leftovers_are_refused)
{
	uint8_t b[1024];
	size_t len = make_state(b, LCRH_FEN, 4, 3);

	create_ok();
	for (size_t cut = 0; cut < len; cut++)
		expect_refused(b, cut, 1, -EBADMSG, "state: truncated");
	b[len] = 0;
	expect_refused(b, len + 1, 1, -EBADMSG, "left over");
}

Test(pl011_snap, reserved_bits_in_every_register_are_refused)
{
	static const char *name[10] = { "RSR", "ILPR", "IBRD", "FBRD", "LCR_H",
		                        "CR",  "IFLS", "IMSC", "RIS",  "DMACR" };
	uint8_t b[1024];

	create_ok();
	for (unsigned i = 0; i < 10; i++) {
		if (reg_field[i].mask == 0xffff)
			continue; /* IBRD: all 16 bits are the register's */
		size_t len = make_state(b, LCRH_FEN, 1, 1);
		put16(b + reg_field[i].off, (uint16_t)~reg_field[i].mask);
		char msg[32];
		snprintf(msg, sizeof msg, "state: %s 0x", name[i]);
		expect_refused(b, len, 1, -EINVAL, msg);
	}
}

Test(pl011_snap, bad_counts_levels_and_flags_are_refused)
{
	uint8_t b[1024];
	size_t len;

	create_ok();
	len = make_state(b, LCRH_FEN, 1, 1);
	b[ST_FLAGS] = 0x04;
	expect_refused(b, len, 1, -EINVAL, "flags 0x04");

	len = make_state(b, LCRH_FEN, 1, 1);
	b[ST_FLAGS] = 0x01;
	expect_refused(b, len, 1, -EINVAL,
	               "the line's level 0 does not follow RIS 0x010 & IMSC 0x050");

	len = make_state(b, LCRH_FEN, 1, 1);
	b[ST_TXL] = 33;
	expect_refused(b, len, 1, -EINVAL, "transmit FIFO level 33 exceeds its 32");
	len = make_state(b, 0, 1, 1);
	b[ST_TXL] = 2;
	expect_refused(b, len, 1, -EINVAL, "transmit FIFO level 2 exceeds its 1");

	len = make_state(b, LCRH_FEN, 32, 0);
	b[ST_N] = 33;
	expect_refused(b, len, 1, -EINVAL, "receive FIFO count 33 exceeds its 32");
	len = make_state(b, 0, 2, 0);
	expect_refused(b, len, 1, -EINVAL, "receive FIFO count 2 exceeds its 1");
	len = make_state(b, 0, 255, 0);
	expect_refused(b, len, 1, -EINVAL, "receive FIFO count 255");

	len = make_state(b, LCRH_FEN, 3, 0);
	put16(b + ST_FIFO + 2, 0x1041);
	expect_refused(b, len, 1, -EINVAL, "receive FIFO entry 1 0x1041");

	len = make_state(b, LCRH_FEN, 1, 0);
	put16(b + ST_FIFO + 2, 257);
	expect_refused(b, len, 1, -EINVAL, "host input count 257 exceeds its 256");
	len = make_state(b, LCRH_FEN, 1, 0);
	put16(b + ST_FIFO + 2, 0xffff);
	expect_refused(b, len, 1, -EINVAL, "host input count 65535");

	len = make_state(b, LCRH_FEN, 1, 2);
	put16(b + ST_FIFO + 2 + 2 + 2, 0x0161);
	expect_refused(b, len, 1, -EINVAL, "host input character 1 has error flags 0x01");
}

Test(pl011_snap, random_corruption_never_breaks_it)
{
	uint8_t good[1024], b[1024];
	size_t len = make_state(good, LCRH_FEN | LCRH_WLEN8, 5, 4);
	uint64_t x = 0x243f6a8885a308d3ull;

	create_ok();
	for (int i = 0; i < 5000; i++) {
		memcpy(b, good, len);
		for (int k = 0; k < 3; k++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			b[(x >> 8) % len] ^= (uint8_t)(1u << ((x >> 32) & 7));
		}
		size_t n = len - ((x >> 40) & 1);
		/* the core sets the saved level on the line */
		cr_assert_eq(fake_host.irq_set(dev, IRQ, (b[ST_FLAGS] & 0x02) != 0), 0);
		if (fake_dev_load(dev, b, n, 1) == 0) {
			cr_assert_eq(rd(CR) & 0x78, 0);
			cr_assert_eq(rd(IMSC) & ~INT_ALL, 0);
			for (int r = 0; r < 40 && !(rd(FR) & FR_RXFE); r++)
				cr_assert_eq(rd(DR) & ~0xfffu, 0);
			expect_line();
		}
	}
	cr_assert_eq(fake_irq_misuse(), 0);
}
