/* cache-dir.h: smolvm's cache folder as tests/nest/mkkit and mkkit-arm64 choose it
 * ($SMOLVM_CACHE, else $XDG_CACHE_HOME/smolvm, else ~/.cache/smolvm), for the tests that look
 * for a nest kit's kernel there. */
#ifndef SMOLVM_TESTS_CACHE_DIR_H
#define SMOLVM_TESTS_CACHE_DIR_H

#include <stdio.h>
#include <stdlib.h>

static inline void smolvm_cache_dir(char *out, size_t len)
{
	if (getenv("SMOLVM_CACHE"))
		snprintf(out, len, "%s", getenv("SMOLVM_CACHE"));
	else if (getenv("XDG_CACHE_HOME"))
		snprintf(out, len, "%s/smolvm", getenv("XDG_CACHE_HOME"));
	else
		snprintf(out, len, "%s/.cache/smolvm", getenv("HOME") ? getenv("HOME") : "");
}

#endif
