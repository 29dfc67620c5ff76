/* Unit tests of the AML encoder (core/arch/x86/aml.c), byte for byte against sequences worked out
 * by hand from the ACPI 6.5 specification (chapter 20, AML encoding; 6.4, resource descriptors). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "aml.h"

static struct aml a;

static void setup(void)
{
	aml_init(&a);
}

static void teardown(void)
{
	aml_free(&a);
}

TestSuite(aml, .init = setup, .fini = teardown);

/* The stream holds exactly @p want and no error. */
static void expect(const uint8_t *want, size_t n)
{
	cr_assert_eq(a.err, 0, "error %d", a.err);
	cr_assert_eq(a.len, n, "length %zu, wanted %zu", a.len, n);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(a.data[i], want[i], "byte %zu is 0x%02x, wanted 0x%02x", i, a.data[i],
		             want[i]);
}

#define EXPECT(...)                                                                                \
	do {                                                                                       \
		static const uint8_t want_[] = { __VA_ARGS__ };                                    \
		expect(want_, sizeof(want_));                                                      \
	} while (0)

Test(aml, integers_pick_the_smallest_encoding)
{
	static const struct {
		uint64_t v;
		uint8_t enc[9];
		size_t n;
	} cases[] = {
		{ 0, { 0x00 }, 1 }, /* ZeroOp */
		{ 1, { 0x01 }, 1 }, /* OneOp */
		{ 2, { 0x0A, 0x02 }, 2 },
		{ 0xFF, { 0x0A, 0xFF }, 2 },
		{ 0x100, { 0x0B, 0x00, 0x01 }, 3 },
		{ 0xFFFF, { 0x0B, 0xFF, 0xFF }, 3 },
		{ 0x10000, { 0x0C, 0x00, 0x00, 0x01, 0x00 }, 5 },
		{ 0xFFFFFFFF, { 0x0C, 0xFF, 0xFF, 0xFF, 0xFF }, 5 },
		{ 0x100000000, { 0x0E, 0, 0, 0, 0, 1, 0, 0, 0 }, 9 },
		{ 0x0123456789ABCDEF, { 0x0E, 0xEF, 0xCD, 0xAB, 0x89, 0x67, 0x45, 0x23, 0x01 }, 9 },
		{ UINT64_MAX - 1, { 0x0E, 0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF }, 9 },
		{ UINT64_MAX, { 0xFF }, 1 }, /* OnesOp: 64-bit in a revision 2 DSDT */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		aml_free(&a);
		aml_integer(&a, cases[i].v);
		expect(cases[i].enc, cases[i].n);
	}
}

Test(aml, names)
{
	aml_namestring(&a, "_S5");
	EXPECT('_', 'S', '5', '_');
	aml_free(&a);
	aml_namestring(&a, "\\_SB");
	EXPECT(0x5C, '_', 'S', 'B', '_');
	aml_free(&a);
	aml_namestring(&a, "\\_SB.PCI0");
	EXPECT(0x5C, 0x2E, '_', 'S', 'B', '_', 'P', 'C', 'I', '0');
	aml_free(&a);
	aml_namestring(&a, "\\_SB.PCI0.ISA");
	EXPECT(0x5C, 0x2F, 3, '_', 'S', 'B', '_', 'P', 'C', 'I', '0', 'I', 'S', 'A', '_');
	aml_free(&a);
	aml_namestring(&a, "^^C0");
	EXPECT(0x5E, 0x5E, 'C', '0', '_', '_');
	aml_free(&a);
	aml_namestring(&a, "\\");
	EXPECT(0x5C, 0x00); /* the root: RootChar NullName */
	cr_assert(aml_nameseg_valid("COM0"));
	cr_assert(aml_nameseg_valid("_"));
	cr_assert(!aml_nameseg_valid("0COM"));
	cr_assert(!aml_nameseg_valid("COM01"));
	cr_assert(!aml_nameseg_valid("com0"));
	cr_assert(!aml_nameseg_valid(""));
	cr_assert(!aml_nameseg_valid("A.B"));
}

Test(aml, bad_names_are_sticky_errors)
{
	static const char *const bad[] = {
		"", "abc", "1ABC", "ABCDE", "_SB.", "_SB..X", "A-B", "^"
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		aml_free(&a);
		aml_namestring(&a, bad[i]);
		cr_assert_eq(a.err, -EINVAL, "\"%s\" was accepted", bad[i]);
		size_t len = a.len;
		aml_integer(&a, 5); /* later calls do nothing */
		aml_end(&a, 0);
		cr_assert_eq(a.len, len);
		cr_assert_eq(a.err, -EINVAL);
	}
}

Test(aml, string)
{
	aml_string(&a, "ACPI0007");
	EXPECT(0x0D, 'A', 'C', 'P', 'I', '0', '0', '0', '7', 0x00);
	aml_free(&a);
	aml_string(&a, "\x80");
	cr_assert_eq(a.err, -EINVAL);
}

Test(aml, eisaid)
{
	uint32_t v;
	/* 'P' 16, 'N' 14, 'P' 16: 0 10000 01110 10000 = 0x41D0; then 0x05, 0x01 */
	aml_eisaid(&a, "PNP0501");
	EXPECT(0x0C, 0x41, 0xD0, 0x05, 0x01);
	aml_free(&a);
	aml_eisaid(&a, "PNP0A03");
	EXPECT(0x0C, 0x41, 0xD0, 0x0A, 0x03);
	cr_assert_eq(aml_eisaid_value("PNP0501", &v), 0);
	cr_assert_eq(v, 0x0105D041);
	cr_assert_eq(aml_eisaid_value("ABC0000", &v), 0); /* 00001 00010 00011 */
	cr_assert_eq(v, 0x00004304);
	cr_assert_eq(aml_eisaid_value("ZZZFFFF", &v), 0); /* 11010 11010 11010 */
	cr_assert_eq(v, 0xFFFF5A6B);
	static const char *const bad[] = { "pnp0501", "PNP050G", "PNP0a03", "PNP05011",
		                           "PNP050",  "P1P0501", "" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(aml_eisaid_value(bad[i], &v), -EINVAL, "\"%s\" was accepted", bad[i]);
		aml_free(&a);
		aml_eisaid(&a, bad[i]);
		cr_assert_eq(a.err, -EINVAL);
		cr_assert_eq(a.len, 0);
	}
}

Test(aml, name_hid_eisaid)
{
	aml_name(&a, "_HID");
	aml_eisaid(&a, "PNP0501");
	EXPECT(0x08, '_', 'H', 'I', 'D', 0x0C, 0x41, 0xD0, 0x05, 0x01);
}

Test(aml, s5_package)
{
	aml_name(&a, "_S5");
	size_t p = aml_package_begin(&a, 4);
	aml_integer(&a, 5);
	aml_integer(&a, 0);
	aml_integer(&a, 0);
	aml_integer(&a, 0);
	aml_end(&a, p);
	/* NumElements + 0A 05 + 3 x ZeroOp = 6 bytes, PkgLength 7 */
	EXPECT(0x08, '_', 'S', '5', '_', 0x12, 0x07, 0x04, 0x0A, 0x05, 0x00, 0x00, 0x00);
}

Test(aml, package_of_more_than_255_is_refused)
{
	aml_package_begin(&a, 256);
	cr_assert_eq(a.err, -EINVAL);
}

Test(aml, scope_device_method)
{
	size_t s = aml_scope_begin(&a, "\\_SB");
	size_t d = aml_device_begin(&a, "COM0");
	aml_name(&a, "_UID");
	aml_integer(&a, 0);
	size_t m = aml_method_begin(&a, "_STA", 0, false);
	aml_return(&a);
	aml_integer(&a, 0x0F);
	aml_end(&a, m);
	aml_end(&a, d);
	aml_end(&a, s);
	/* Method: name 4 + flags 1 + A4 0A 0F = 8, PkgLength 9; 10 bytes in all.
	 * Device: name 4 + Name(_UID, Zero) 6 + method 10 = 20, PkgLength 21; 23 in all.
	 * Scope: name 5 + device 23 = 28, PkgLength 29. */
	EXPECT(0x10, 29, 0x5C, '_', 'S', 'B', '_', /* Scope (\_SB) */
	       0x5B, 0x82, 21, 'C', 'O', 'M', '0', /* Device (COM0) */
	       0x08, '_', 'U', 'I', 'D', 0x00, /* Name (_UID, Zero) */
	       0x14, 9, '_', 'S', 'T', 'A', 0x00, /* Method (_STA, 0, NotSerialized) */
	       0xA4, 0x0A, 0x0F); /* Return (0x0F) */
}

Test(aml, method_flags)
{
	size_t m = aml_method_begin(&a, "FOO", 3, true);
	aml_end(&a, m);
	EXPECT(0x14, 6, 'F', 'O', 'O', '_', 0x0B);
	aml_free(&a);
	aml_method_begin(&a, "FOO", 8, false);
	cr_assert_eq(a.err, -EINVAL);
}

/* A GED's _EVT: Method (_EVT, 1) { If ((Arg0 == 0x17)) { Notify (\_SB.VGEN, 0x80) } }, the bytes
 * iasl 20200925 compiles from that ASL with -oa. */
Test(aml, if_lequal_arg_notify)
{
	size_t m = aml_method_begin(&a, "_EVT", 1, false);
	size_t i = aml_if_begin(&a);
	aml_lequal(&a);
	aml_arg(&a, 0);
	aml_integer(&a, 23);
	aml_notify(&a, "\\_SB.VGEN", 0x80);
	aml_end(&a, i);
	aml_end(&a, m);
	/* Notify: 86, \ 2E _SB_ VGEN (10), 0A 80: 13 bytes. If: 93 68 0A 17 (4) + 13 = 17,
	 * PkgLength
	 * 18. Method: name 4 + flags 1 + If 19 = 24, PkgLength 25. */
	EXPECT(0x14, 0x19, '_', 'E', 'V', 'T', 0x01, /* Method (_EVT, 1, NotSerialized) */
	       0xA0, 0x12, /* If */
	       0x93, 0x68, 0x0A, 0x17, /* (Arg0 == 0x17) */
	       0x86, 0x5C, 0x2E, '_', 'S', 'B', '_', 'V', 'G', 'E', 'N', 0x0A, 0x80); /* Notify */
}

Test(aml, args_0_to_6)
{
	for (unsigned n = 0; n <= 6; n++)
		aml_arg(&a, n);
	EXPECT(0x68, 0x69, 0x6A, 0x6B, 0x6C, 0x6D, 0x6E);
	aml_arg(&a, 7);
	cr_assert_eq(a.err, -EINVAL);
}

Test(aml, notify_of_a_bad_name_is_an_error)
{
	aml_notify(&a, "\\_SB.TOOLONG", 0x80);
	cr_assert_eq(a.err, -EINVAL);
}

/* PkgLength forms (20.2.4) at their boundaries: the value counts its own bytes. */
Test(aml, pkglength_encoding)
{
	static const struct {
		size_t body;
		uint8_t enc[4];
		int n;
	} cases[] = {
		{ 0, { 0x01 }, 1 },
		{ 62, { 0x3F }, 1 }, /* 63: the largest 1-byte form */
		{ 63, { 0x41, 0x04 }, 2 }, /* 63 + 2 = 65 = 0x041 */
		{ 64, { 0x42, 0x04 }, 2 }, /* 66 */
		{ 4093, { 0x4F, 0xFF }, 2 }, /* 4095 = 0xFFF: the largest 2-byte form */
		{ 4094, { 0x81, 0x00, 0x01 }, 3 }, /* 4097 = 0x1001 */
		{ 4095, { 0x82, 0x00, 0x01 }, 3 }, /* 4098 */
		{ 4096, { 0x83, 0x00, 0x01 }, 3 }, /* 4099 */
		{ 0xFFFFC, { 0x8F, 0xFF, 0xFF }, 3 }, /* 0xFFFFF: the largest 3-byte form */
		{ 0xFFFFD, { 0xC1, 0x00, 0x00, 0x01 }, 4 }, /* 0x100001 */
		{ 0x0FFFFFFB, { 0xCF, 0xFF, 0xFF, 0xFF }, 4 }, /* 0xFFFFFFF: the largest */
	};
	uint8_t enc[4];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int n = aml_pkglen_encode(cases[i].body, enc);
		cr_assert_eq(n, cases[i].n, "body %zu: %d bytes, wanted %d", cases[i].body, n,
		             cases[i].n);
		cr_assert_arr_eq(enc, cases[i].enc, (size_t)n, "body %zu", cases[i].body);
	}
	cr_assert_eq(aml_pkglen_encode(0x0FFFFFFC, enc), -E2BIG);
}

/* A Scope whose body (name + filler) is @p body bytes: the PkgLength lands in front of it. */
static void scope_of(size_t body, const uint8_t *pkglen, size_t n)
{
	uint8_t *filler = calloc(1, body);
	cr_assert(filler);
	memset(filler, 0xA3, body - 4); /* 0xA3: NoopOp */
	aml_free(&a);
	size_t s = aml_scope_begin(&a, "ABCD");
	aml_bytes(&a, filler, body - 4);
	aml_end(&a, s);
	cr_assert_eq(a.err, 0);
	cr_assert_eq(a.len, 1 + n + body, "body %zu: %zu bytes", body, a.len);
	cr_assert_eq(a.data[0], 0x10);
	cr_assert_arr_eq(a.data + 1, pkglen, n, "body %zu: wrong PkgLength", body);
	cr_assert_arr_eq(a.data + 1 + n, "ABCD", 4);
	cr_assert_eq(a.data[a.len - 1], 0xA3);
	free(filler);
}

Test(aml, pkglength_in_a_stream)
{
	scope_of(62, (const uint8_t[]){ 0x3F }, 1);
	scope_of(63, (const uint8_t[]){ 0x41, 0x04 }, 2);
	scope_of(64, (const uint8_t[]){ 0x42, 0x04 }, 2);
	scope_of(4093, (const uint8_t[]){ 0x4F, 0xFF }, 2);
	scope_of(4094, (const uint8_t[]){ 0x81, 0x00, 0x01 }, 3);
	scope_of(4095, (const uint8_t[]){ 0x82, 0x00, 0x01 }, 3);
	scope_of(4096, (const uint8_t[]){ 0x83, 0x00, 0x01 }, 3);
}

Test(aml, nested_pkglengths_grow_independently)
{
	/* An inner Device whose body needs 2 bytes of PkgLength inside an outer Scope: the
	 * outer one counts the inner's grown size. */
	size_t s = aml_scope_begin(&a, "OUTR");
	size_t d = aml_device_begin(&a, "INNR");
	for (int i = 0; i < 100; i++)
		aml_byte(&a, 0xA3);
	aml_end(&a, d);
	aml_end(&a, s);
	/* Device: body 104, PkgLength 106 = 0x06A -> 4A 06; device = 2 + 2 + 104 = 108.
	 * Scope: body 4 + 108 = 112, PkgLength 114 = 0x072 -> 42 07. */
	cr_assert_eq(a.err, 0);
	cr_assert_eq(a.len, 1 + 2 + 112);
	const uint8_t head[] = { 0x10, 0x42, 0x07, 'O', 'U', 'T', 'R', 0x5B,
		                 0x82, 0x4A, 0x06, 'I', 'N', 'N', 'R', 0xA3 };
	cr_assert_arr_eq(a.data, head, sizeof(head));
}

Test(aml, buffer)
{
	aml_buffer(&a, "\x01\x02\x03", 3);
	EXPECT(0x11, 0x06, 0x0A, 0x03, 0x01, 0x02, 0x03);
}

Test(aml, resource_descriptors)
{
	aml_res_io(&a, 0x3F8, 8);
	/* small item 8 length 7; Decode16; min 0x3F8; max 0x3F8; align 1; length 8 */
	EXPECT(0x47, 0x01, 0xF8, 0x03, 0xF8, 0x03, 0x01, 0x08);
	aml_free(&a);
	aml_res_mem32_fixed(&a, 0xD0000000, 0x200, true);
	EXPECT(0x86, 0x09, 0x00, 0x01, 0x00, 0x00, 0x00, 0xD0, 0x00, 0x02, 0x00, 0x00);
	aml_free(&a);
	aml_res_mem32_fixed(&a, 0xFED00000, 0x400, false);
	EXPECT(0x86, 0x09, 0x00, 0x00, 0x00, 0x00, 0xD0, 0xFE, 0x00, 0x04, 0x00, 0x00);
	aml_free(&a);
	/* consumer (bit 0), edge (bit 1), active high, exclusive; one interrupt */
	aml_res_ext_irq(&a, 4, false, false);
	EXPECT(0x89, 0x06, 0x00, 0x03, 0x01, 0x04, 0x00, 0x00, 0x00);
	aml_free(&a);
	/* consumer, level, active low (bit 2) */
	aml_res_ext_irq(&a, 0x12345678, true, true);
	EXPECT(0x89, 0x06, 0x00, 0x05, 0x01, 0x78, 0x56, 0x34, 0x12);
}

Test(aml, resource_template)
{
	aml_name(&a, "_CRS");
	size_t r = aml_res_begin(&a);
	aml_res_io(&a, 0x3F8, 8);
	aml_res_ext_irq(&a, 4, false, false);
	aml_res_end(&a, r);
	/* Buffer: 8 + 9 + End Tag 2 = 19 bytes; BufferSize 0A 13; PkgLength 1 + 2 + 19 = 22 */
	EXPECT(0x08, '_', 'C', 'R', 'S', 0x11, 22, 0x0A, 19, /* Buffer (19) */
	       0x47, 0x01, 0xF8, 0x03, 0xF8, 0x03, 0x01, 0x08, /* IO */
	       0x89, 0x06, 0x00, 0x03, 0x01, 0x04, 0x00, 0x00, 0x00, /* Interrupt */
	       0x79, 0x00); /* End Tag, checksum 0 */
}

Test(aml, empty_resource_template)
{
	size_t r = aml_res_begin(&a);
	aml_res_end(&a, r);
	EXPECT(0x11, 0x05, 0x0A, 0x02, 0x79, 0x00);
}

Test(aml, large_resource_template_has_a_2_byte_pkglength)
{
	size_t r = aml_res_begin(&a);
	for (int i = 0; i < 6; i++) /* 6 x 12 + 2 = 74 bytes */
		aml_res_mem32_fixed(&a, 0x1000u * (unsigned)i, 0x100, true);
	aml_res_end(&a, r);
	/* body 0A 4A + 74 = 76, PkgLength 78 = 0x04E -> 4E 04 */
	cr_assert_eq(a.err, 0);
	cr_assert_eq(a.len, 1 + 2 + 76);
	const uint8_t head[] = { 0x11, 0x4E, 0x04, 0x0A, 74, 0x86 };
	cr_assert_arr_eq(a.data, head, sizeof(head));
	cr_assert_eq(a.data[a.len - 2], 0x79);
}
