/* aml.h: a small encoder of ACPI Machine Language (ACPI 6.5, chapter 20), enough for the DSDT
 * of a VMM: names, scopes, devices, named integers/strings/packages, simple methods and
 * resource templates.
 *
 * Errors are sticky: the first failure (bad name, bad EISA id, out of memory, a package too
 * long to encode) is kept in `err` and every later call does nothing, so a caller emits a
 * whole table and checks `err` once at the end.
 *
 * Objects with a PkgLength (Scope, Device, Method, Package, Buffer) are written as a begin/end
 * pair: begin returns a mark, end measures the body written since and inserts the PkgLength in
 * front of it in its smallest form (1 to 4 bytes). Pairs nest. */
#ifndef SMOLVM_AML_H
#define SMOLVM_AML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** A growable AML byte stream. Zero-initialised (or aml_init) it is empty and valid. */
struct aml {
	uint8_t *data;
	size_t len, cap;
	int err; /**< 0, or the first error (negative errno): later calls do nothing */
};

/* Opcodes (ACPI 6.5, 20.2) */
#define AML_ZERO 0x00
#define AML_ONE 0x01
#define AML_NAME_OP 0x08
#define AML_BYTE_PREFIX 0x0A
#define AML_WORD_PREFIX 0x0B
#define AML_DWORD_PREFIX 0x0C
#define AML_STRING_PREFIX 0x0D
#define AML_QWORD_PREFIX 0x0E
#define AML_SCOPE_OP 0x10
#define AML_BUFFER_OP 0x11
#define AML_PACKAGE_OP 0x12
#define AML_METHOD_OP 0x14
#define AML_DUAL_NAME_PREFIX 0x2E
#define AML_MULTI_NAME_PREFIX 0x2F
#define AML_EXT_OP_PREFIX 0x5B
#define AML_DEVICE_OP 0x82 /**< after AML_EXT_OP_PREFIX */
#define AML_ROOT_CHAR 0x5C
#define AML_PARENT_PREFIX 0x5E
#define AML_ARG0_OP 0x68 /**< Arg0; Arg1-Arg6 follow (0x69-0x6E) */
#define AML_NOTIFY_OP 0x86
#define AML_LEQUAL_OP 0x93
#define AML_IF_OP 0xA0
#define AML_RETURN_OP 0xA4
#define AML_ONES_OP 0xFF

/** Largest PkgLength value: 28 bits (the 4-byte form). */
#define AML_PKGLEN_MAX 0x0FFFFFFFu

void aml_init(struct aml *a);
/** Frees the stream's memory; the stream is empty and valid again. */
void aml_free(struct aml *a);

/** Appends raw bytes. */
void aml_bytes(struct aml *a, const void *p, size_t n);
void aml_byte(struct aml *a, uint8_t b);

/**
 * Encodes the PkgLength of a body of @p body bytes: the value counts the PkgLength bytes
 * themselves, and the smallest form that holds it is chosen (1 byte up to 63, 2 bytes up to
 * 0xFFF, 3 up to 0xFFFFF, 4 up to 0xFFFFFFF).
 * @return the number of bytes written to @p out (1-4), or -E2BIG
 */
int aml_pkglen_encode(size_t body, uint8_t out[4]);

/**
 * Marks where a PkgLength goes (after the opcode the caller just emitted).
 * @return the mark to give aml_end()
 */
size_t aml_pkg_begin(struct aml *a);
/** Ends the object begun at @p mark: inserts its PkgLength in front of the body. */
void aml_end(struct aml *a, size_t mark);

/**
 * A NameString: an optional root '\' or parent '^' prefixes, then zero or more NameSegs
 * separated by '.'. Each NameSeg is 1-4 characters, [A-Z_] then [A-Z0-9_], padded with '_'
 * ("COM" is "COM_"). "\_SB.COM0", "_S5", "^FOO", "\" (the root: a NullName follows).
 */
void aml_namestring(struct aml *a, const char *path);
/** True if @p seg is a valid NameSeg of 1-4 characters (see aml_namestring). */
bool aml_nameseg_valid(const char *seg);

/** An integer in its smallest encoding: Zero, One, Ones (all 64 bits set), or Byte, Word,
 * DWord, QWord prefix. */
void aml_integer(struct aml *a, uint64_t v);
/** A String: StringPrefix, ASCII characters 0x01-0x7F, NUL. */
void aml_string(struct aml *a, const char *s);

/**
 * Compresses an EISA id ("PNP0501": three uppercase letters and four uppercase hex digits)
 * into the 32-bit value AML stores: letters as 5-bit codes ('A' = 1) packed big-endian into
 * the first two bytes, then the product number's two bytes, high byte first. The value's
 * little-endian bytes are therefore 41 D0 05 01 for "PNP0501".
 * @return 0 or -EINVAL
 */
int aml_eisaid_value(const char *id, uint32_t *out);
/** EISAID("PNP0501"): the compressed id as a DWord integer (always DWordPrefix). */
void aml_eisaid(struct aml *a, const char *id);

/** Name (path, ...): NameOp and the name; the caller emits the object (integer, string,
 * package, resource template) next. */
void aml_name(struct aml *a, const char *path);

/** Scope (path) { ... }: end with aml_end(). */
size_t aml_scope_begin(struct aml *a, const char *path);
/** Device (name) { ... }: end with aml_end(). */
size_t aml_device_begin(struct aml *a, const char *name);
/** Method (name, nargs (0-7), Serialized/NotSerialized) { ... }, sync level 0: end with
 * aml_end(). */
size_t aml_method_begin(struct aml *a, const char *name, unsigned nargs, bool serialized);
/** Package (n) { ... } with 0-255 elements the caller emits next: end with aml_end(). */
size_t aml_package_begin(struct aml *a, unsigned n_elements);
/** Return (...): ReturnOp; the caller emits the returned term next. */
void aml_return(struct aml *a);

/** If (predicate) { ... }: IfOp and its PkgLength; the caller emits the predicate, then the
 * body: end with aml_end(). */
size_t aml_if_begin(struct aml *a);
/** LEqual (x, y), `x == y` in ASL 2.0: LEqualOp; the caller emits both operands next. */
void aml_lequal(struct aml *a);
/** ArgN (0-6): a method's argument. */
void aml_arg(struct aml *a, unsigned n);
/** Notify (path, value): NotifyOp, the object's NameString and the value as an integer. */
void aml_notify(struct aml *a, const char *path, uint64_t value);

/** Buffer (n) { bytes }. */
void aml_buffer(struct aml *a, const void *bytes, size_t n);

/**
 * ResourceTemplate () { ... }: a Buffer whose bytes are resource descriptors (ACPI 6.5, 6.4).
 * The caller adds descriptors with aml_res_*(); aml_res_end() appends the End Tag and sets
 * the Buffer's size. The End Tag's checksum byte is 0, which the spec defines as "checksum
 * not computed, treat as correct" and is what iasl itself emits.
 */
size_t aml_res_begin(struct aml *a);
void aml_res_end(struct aml *a, size_t mark);
/** IO (Decode16, base, base, 1, len): an I/O port descriptor with a fixed base. */
void aml_res_io(struct aml *a, uint16_t base, uint8_t len);
/** Memory32Fixed (ReadWrite or ReadOnly, base, len). */
void aml_res_mem32_fixed(struct aml *a, uint32_t base, uint32_t len, bool writable);
/** Interrupt (ResourceConsumer, Edge or Level, ActiveHigh or ActiveLow, Exclusive) {gsi}: an
 * Extended Interrupt descriptor with one interrupt. */
void aml_res_ext_irq(struct aml *a, uint32_t gsi, bool level, bool active_low);

#endif
