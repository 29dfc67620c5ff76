/* arch.c: the architectures this smolvm runs machines of. */
#include "arch.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

static const struct arch_ops *const arches[] = { &arch_x86_64, &arch_aarch64 };

const struct arch_ops *arch_find(const char *name)
{
	for (size_t i = 0; i < sizeof(arches) / sizeof(arches[0]); i++)
		if (strcmp(arches[i]->name, name) == 0)
			return arches[i];
	return NULL;
}

const struct arch_ops *arch_by_tag(uint32_t tag)
{
	for (size_t i = 0; i < sizeof(arches) / sizeof(arches[0]); i++)
		if (arches[i]->tag == tag)
			return arches[i];
	return NULL;
}

const char *arch_names(void)
{
	static char names[64];
	if (!names[0])
		for (size_t i = 0; i < sizeof(arches) / sizeof(arches[0]); i++)
			snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s",
			         i ? ", " : "", arches[i]->name);
	return names;
}
