/* aml.c: a small AML byte-stream encoder (see aml.h). Grammar references are to ACPI 6.5,
 * chapter 20 (AML encoding) and section 6.4 (resource data types). */
#include "aml.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "le.h"

void aml_init(struct aml *a)
{
	memset(a, 0, sizeof(*a));
}

void aml_free(struct aml *a)
{
	free(a->data);
	aml_init(a);
}

static void aml_fail(struct aml *a, int err)
{
	if (!a->err)
		a->err = err;
}

/* Makes room for @p n more bytes. */
static int aml_reserve(struct aml *a, size_t n)
{
	if (a->err)
		return a->err;
	if (n > SIZE_MAX / 2 - a->len) {
		aml_fail(a, -ENOMEM);
		return a->err;
	}
	if (a->len + n <= a->cap)
		return 0;
	size_t cap = a->cap ? a->cap : 256;
	while (cap < a->len + n)
		cap *= 2;
	uint8_t *p = realloc(a->data, cap);
	if (!p) {
		aml_fail(a, -ENOMEM);
		return a->err;
	}
	a->data = p;
	a->cap = cap;
	return 0;
}

void aml_bytes(struct aml *a, const void *p, size_t n)
{
	if (n == 0 || aml_reserve(a, n))
		return;
	memcpy(a->data + a->len, p, n);
	a->len += n;
}

void aml_byte(struct aml *a, uint8_t b)
{
	aml_bytes(a, &b, 1);
}

/* Inserts @p n bytes at offset @p pos, moving what follows. */
static void aml_insert(struct aml *a, size_t pos, const uint8_t *p, size_t n)
{
	if (aml_reserve(a, n))
		return;
	if (pos > a->len) {
		aml_fail(a, -EINVAL);
		return;
	}
	memmove(a->data + pos + n, a->data + pos, a->len - pos);
	memcpy(a->data + pos, p, n);
	a->len += n;
}

/* PkgLength (20.2.4): the lead byte's bits 7-6 count the bytes that follow (0-3). With none,
 * bits 5-0 hold the length (up to 63); otherwise bits 3-0 hold its low nibble and each
 * following byte the next 8 bits. The length includes the PkgLength bytes themselves. */
int aml_pkglen_encode(size_t body, uint8_t out[4])
{
	if (body < 0x3F) {
		out[0] = (uint8_t)(body + 1);
		return 1;
	}
	for (unsigned k = 2; k <= 4; k++) {
		uint64_t total = (uint64_t)body + k;
		if (total >= 1ull << (4 + 8 * (k - 1)))
			continue;
		out[0] = (uint8_t)(((k - 1) << 6) | (total & 0x0F));
		for (unsigned i = 1; i < k; i++)
			out[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
		return (int)k;
	}
	return -E2BIG;
}

size_t aml_pkg_begin(struct aml *a)
{
	return a->len;
}

void aml_end(struct aml *a, size_t mark)
{
	uint8_t enc[4];

	if (a->err)
		return;
	if (mark > a->len) {
		aml_fail(a, -EINVAL);
		return;
	}
	int k = aml_pkglen_encode(a->len - mark, enc);
	if (k < 0) {
		aml_fail(a, k);
		return;
	}
	aml_insert(a, mark, enc, (size_t)k);
}

static bool lead_char(char c)
{
	return (c >= 'A' && c <= 'Z') || c == '_';
}

static bool name_char(char c)
{
	return lead_char(c) || (c >= '0' && c <= '9');
}

/* Length of the NameSeg at @p s (ended by NUL or '.'), or 0 if it is not valid. */
static size_t seg_len(const char *s)
{
	size_t n = 0;
	while (s[n] && s[n] != '.') {
		if (n == 4 || !(n == 0 ? lead_char(s[n]) : name_char(s[n])))
			return 0;
		n++;
	}
	return n;
}

bool aml_nameseg_valid(const char *seg)
{
	size_t n = seg_len(seg);
	return n > 0 && seg[n] == '\0';
}

/* NameString (20.2.2): [RootChar | ParentPrefix*] then NullName, a NameSeg, DualNamePrefix
 * and two, or MultiNamePrefix, a count and that many. */
void aml_namestring(struct aml *a, const char *path)
{
	const char *p = path;
	uint8_t segs[255][4];
	unsigned n = 0;

	if (a->err)
		return;
	if (*p == '\\') {
		aml_byte(a, AML_ROOT_CHAR);
		p++;
	} else {
		while (*p == '^') {
			aml_byte(a, AML_PARENT_PREFIX);
			p++;
		}
	}
	while (*p) {
		size_t len = seg_len(p);
		if (len == 0 || n == 255) {
			aml_fail(a, -EINVAL);
			return;
		}
		memset(segs[n], '_', 4);
		memcpy(segs[n], p, len);
		n++;
		p += len;
		if (*p == '.') {
			p++;
			if (!*p) { /* a trailing dot */
				aml_fail(a, -EINVAL);
				return;
			}
		}
	}
	if (n == 0) {
		if (*path != '\\') { /* only the root may stand without a NameSeg */
			aml_fail(a, -EINVAL);
			return;
		}
		aml_byte(a, 0x00); /* NullName */
		return;
	}
	if (n == 2)
		aml_byte(a, AML_DUAL_NAME_PREFIX);
	else if (n > 2) {
		aml_byte(a, AML_MULTI_NAME_PREFIX);
		aml_byte(a, (uint8_t)n);
	}
	aml_bytes(a, segs, 4 * (size_t)n);
}

/* ComputationalData integers (20.2.3): writes the encoding to @p out, returns its length. */
static size_t integer_encode(uint64_t v, uint8_t out[9])
{
	unsigned n;

	if (v == 0 || v == 1 || v == UINT64_MAX) {
		out[0] = v == 0 ? AML_ZERO : v == 1 ? AML_ONE : AML_ONES_OP;
		return 1;
	}
	if (v <= 0xFF) {
		out[0] = AML_BYTE_PREFIX;
		n = 1;
	} else if (v <= 0xFFFF) {
		out[0] = AML_WORD_PREFIX;
		n = 2;
	} else if (v <= 0xFFFFFFFF) {
		out[0] = AML_DWORD_PREFIX;
		n = 4;
	} else {
		out[0] = AML_QWORD_PREFIX;
		n = 8;
	}
	le_put(out + 1, v, n);
	return 1 + n;
}

void aml_integer(struct aml *a, uint64_t v)
{
	uint8_t enc[9];
	aml_bytes(a, enc, integer_encode(v, enc));
}

void aml_string(struct aml *a, const char *s)
{
	for (const char *c = s; *c; c++) {
		if ((unsigned char)*c > 0x7F) {
			aml_fail(a, -EINVAL);
			return;
		}
	}
	aml_byte(a, AML_STRING_PREFIX);
	aml_bytes(a, s, strlen(s) + 1);
}

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int aml_eisaid_value(const char *id, uint32_t *out)
{
	uint8_t b[4];
	unsigned prod = 0;

	if (strlen(id) != 7)
		return -EINVAL;
	for (int i = 0; i < 3; i++)
		if (id[i] < 'A' || id[i] > 'Z')
			return -EINVAL;
	for (int i = 3; i < 7; i++) {
		int d = hex_digit(id[i]);
		if (d < 0)
			return -EINVAL;
		prod = prod << 4 | (unsigned)d;
	}
	unsigned vendor = (unsigned)(id[0] - 0x40) << 10 | (unsigned)(id[1] - 0x40) << 5 |
	                  (unsigned)(id[2] - 0x40);
	b[0] = (uint8_t)(vendor >> 8);
	b[1] = (uint8_t)vendor;
	b[2] = (uint8_t)(prod >> 8);
	b[3] = (uint8_t)prod;
	*out = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
	return 0;
}

void aml_eisaid(struct aml *a, const char *id)
{
	uint8_t enc[5] = { AML_DWORD_PREFIX };
	uint32_t v;
	int r = aml_eisaid_value(id, &v);

	if (r) {
		aml_fail(a, r);
		return;
	}
	le_put(enc + 1, v, 4);
	aml_bytes(a, enc, sizeof(enc));
}

void aml_name(struct aml *a, const char *path)
{
	aml_byte(a, AML_NAME_OP);
	aml_namestring(a, path);
}

size_t aml_scope_begin(struct aml *a, const char *path)
{
	aml_byte(a, AML_SCOPE_OP);
	size_t mark = aml_pkg_begin(a);
	aml_namestring(a, path);
	return mark;
}

size_t aml_device_begin(struct aml *a, const char *name)
{
	aml_byte(a, AML_EXT_OP_PREFIX);
	aml_byte(a, AML_DEVICE_OP);
	size_t mark = aml_pkg_begin(a);
	aml_namestring(a, name);
	return mark;
}

/* MethodFlags (20.2.5.2): bits 2-0 ArgCount, bit 3 SerializeFlag, bits 7-4 SyncLevel. */
size_t aml_method_begin(struct aml *a, const char *name, unsigned nargs, bool serialized)
{
	if (nargs > 7)
		aml_fail(a, -EINVAL);
	aml_byte(a, AML_METHOD_OP);
	size_t mark = aml_pkg_begin(a);
	aml_namestring(a, name);
	aml_byte(a, (uint8_t)(nargs | (serialized ? 0x08 : 0)));
	return mark;
}

size_t aml_package_begin(struct aml *a, unsigned n_elements)
{
	if (n_elements > 255)
		aml_fail(a, -EINVAL); /* would need VarPackageOp */
	aml_byte(a, AML_PACKAGE_OP);
	size_t mark = aml_pkg_begin(a);
	aml_byte(a, (uint8_t)n_elements);
	return mark;
}

void aml_return(struct aml *a)
{
	aml_byte(a, AML_RETURN_OP);
}

/* DefIfElse (20.2.5.3): IfOp PkgLength Predicate TermList; no Else follows here. */
size_t aml_if_begin(struct aml *a)
{
	aml_byte(a, AML_IF_OP);
	return aml_pkg_begin(a);
}

/* DefLEqual (20.2.5.4): LEqualOp Operand Operand. */
void aml_lequal(struct aml *a)
{
	aml_byte(a, AML_LEQUAL_OP);
}

/* ArgObj (20.2.6.1): Arg0Op (0x68) to Arg6Op (0x6E). */
void aml_arg(struct aml *a, unsigned n)
{
	if (n > 6) {
		aml_fail(a, -EINVAL);
		return;
	}
	aml_byte(a, (uint8_t)(AML_ARG0_OP + n));
}

/* DefNotify (20.2.5.3): NotifyOp NotifyObject (a SuperName: here a NameString) NotifyValue (a
 * TermArg: here an integer). */
void aml_notify(struct aml *a, const char *path, uint64_t value)
{
	aml_byte(a, AML_NOTIFY_OP);
	aml_namestring(a, path);
	aml_integer(a, value);
}

/* DefBuffer: BufferOp PkgLength BufferSize ByteList, BufferSize an integer. */
void aml_buffer(struct aml *a, const void *bytes, size_t n)
{
	aml_byte(a, AML_BUFFER_OP);
	size_t mark = aml_pkg_begin(a);
	aml_integer(a, n);
	aml_bytes(a, bytes, n);
	aml_end(a, mark);
}

size_t aml_res_begin(struct aml *a)
{
	aml_byte(a, AML_BUFFER_OP);
	return aml_pkg_begin(a);
}

/* End Tag (6.4.2.9): small item 0xF, length 1: 0x79, then the checksum byte (0: none). */
void aml_res_end(struct aml *a, size_t mark)
{
	static const uint8_t end_tag[] = { 0x79, 0x00 };
	uint8_t enc[9];

	aml_bytes(a, end_tag, sizeof(end_tag));
	if (a->err)
		return;
	if (mark > a->len) {
		aml_fail(a, -EINVAL);
		return;
	}
	aml_insert(a, mark, enc, integer_encode(a->len - mark, enc));
	aml_end(a, mark);
}

/* I/O Port Descriptor (6.4.2.5): small item 0x8, length 7. Information bit 0: 16-bit decode. */
void aml_res_io(struct aml *a, uint16_t base, uint8_t len)
{
	uint8_t d[8] = { 0x47, 0x01 };
	le_put(d + 2, base, 2); /* range minimum base */
	le_put(d + 4, base, 2); /* range maximum base */
	d[6] = 1; /* base alignment */
	d[7] = len; /* range length */
	aml_bytes(a, d, sizeof(d));
}

/* 32-Bit Fixed Memory Range Descriptor (6.4.3.4): large item 0x6, length 9. Information bit 0:
 * 1 read/write, 0 read-only. */
void aml_res_mem32_fixed(struct aml *a, uint32_t base, uint32_t len, bool writable)
{
	uint8_t d[12] = { 0x86, 9, 0, writable ? 0x01 : 0x00 };
	le_put(d + 4, base, 4);
	le_put(d + 8, len, 4);
	aml_bytes(a, d, sizeof(d));
}

/* Extended Interrupt Descriptor (6.4.3.6): large item 0x9, length 6 for one interrupt and no
 * resource source. Flags: bit 0 consumer, bit 1 edge (0: level), bit 2 active low (0: high),
 * bit 3 shared (0: exclusive), bit 4 wake capable. Then the table length and the GSIs. */
void aml_res_ext_irq(struct aml *a, uint32_t gsi, bool level, bool active_low)
{
	uint8_t d[9] = { 0x89, 6, 0 };
	d[3] = (uint8_t)(0x01 | (level ? 0 : 0x02) | (active_low ? 0x04 : 0));
	d[4] = 1;
	le_put(d + 5, gsi, 4);
	aml_bytes(a, d, sizeof(d));
}
