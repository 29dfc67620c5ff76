/* plugin-elf.h: a plugin file checked before dlopen, from its bytes alone. */
#ifndef SMOLVM_PLUGIN_ELF_H
#define SMOLVM_PLUGIN_ELF_H

#include <stddef.h>
#include <stdint.h>

/**
 * Checks the bytes of a would-be plugin, @p buf of @p len bytes (untrusted: every offset,
 * size and count is bounds-checked): an ELF64 little-endian shared object (ET_DYN) for x86-64
 * or aarch64 whose loading runs none of its own code. Refused: preinit arrays; more than one
 * .init_array or .fini_array entry; an entry, DT_INIT or DT_FINI that is not the toolchain's
 * own (frame_dummy, __do_global_dtors_aux, _init, _fini: see plugin-elf.c for how they are
 * told apart, and what a stripped file can still hide); IFUNC resolvers (IRELATIVE relocations,
 * STT_GNU_IFUNC symbols); a defined __gmon_start__ or
 * _ITM_*TMCloneTable (which _init and frame_dummy call).
 * Pure: no I/O, no allocation, no global state (the fuzz target calls it).
 * @param why    receives what is wrong, without the file name (may be NULL)
 * @return 0 when the file may be dlopened, -ENOEXEC otherwise
 */
int plugin_elf_check(const uint8_t *buf, size_t len, char *why, size_t whylen);

#endif
