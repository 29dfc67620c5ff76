/*
 * fuzz-plugin-elf: the check a plugin file passes before dlopen (core/plugin-elf.c,
 * plugin_elf_check()): the ELF header, program and section headers, the dynamic section,
 * relocation tables, init and fini arrays, symbol tables, all read from untrusted bytes.
 *
 * Input: the file, whole. The check reads an exactly-sized heap copy of it (a read past the
 * end is an ASan report), once with room for the reason and once without (why NULL, and a
 * one-byte buffer).
 *
 * Checked: no sanitizer report; the result is 0 or -ENOEXEC, the same every time (the check is
 * pure); on refusal the reason is a non-empty NUL-terminated string that fits its buffer; on
 * acceptance the reason is left empty; the input bytes are not written.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin-elf.h"

#define WHY_LEN 256

static void bad(const char *what, int r, const char *why)
{
	fprintf(stderr, "fuzz-plugin-elf: %s (result %d, reason \"%s\")\n", what, r, why);
	abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *copy = malloc(size ? size : 1);
	char why[WHY_LEN + 1], tiny[2];

	if (!copy)
		abort();
	memcpy(copy, data, size);
	/* a canary after the reason's buffer: the check writes at most whylen bytes */
	memset(why, 0x5a, sizeof(why));
	int r = plugin_elf_check(copy, size, why, WHY_LEN);

	if (why[WHY_LEN] != 0x5a)
		bad("the reason overflowed its buffer", r, "");
	if (!memchr(why, 0, WHY_LEN))
		bad("the reason is not NUL-terminated", r, "");
	if (r != 0 && r != -ENOEXEC)
		bad("a result other than 0 or -ENOEXEC", r, why);
	if (r == -ENOEXEC && !why[0])
		bad("refused without a reason", r, why);
	if (r == 0 && why[0])
		bad("accepted with a reason", r, why);
	if (memcmp(copy, data, size))
		bad("the file's bytes were written", r, why);

	/* without a reason, or no room for one: the same verdict */
	int r2 = plugin_elf_check(copy, size, NULL, 0);
	if (r2 != r)
		bad("another verdict without a reason buffer", r2, why);
	memset(tiny, 0x5a, sizeof(tiny));
	r2 = plugin_elf_check(copy, size, tiny, 1);
	if (r2 != r || tiny[0] != 0 || tiny[1] != 0x5a)
		bad("another verdict, or a write past it, with a one-byte reason buffer", r2, why);
	free(copy);
	return 0;
}
