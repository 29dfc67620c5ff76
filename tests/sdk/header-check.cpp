// The SDK header must compile cleanly as C++17 (vendors write plugins in C++): this file is
// built with -Wall -Wextra -Wpedantic -Werror, and defines a plugin through the macros.
#include <smolvm/sdk.h>

namespace
{
int create(const smol_host *, smol_dev *, uint32_t, void **state)
{
	*state = nullptr;
	return 0;
}
void destroy(void *) {}
#if SMOL_TARGET_ABI_MINOR >= 6
const smol_device_ops ops = { sizeof(smol_device_ops),
	                      create,
	                      destroy,
	                      nullptr,
	                      nullptr,
	                      nullptr,
	                      nullptr,
	                      nullptr,
	                      0,
	                      nullptr,
	                      nullptr,
	                      nullptr,
	                      {} };
#elif SMOL_TARGET_ABI_MINOR >= 3
const smol_device_ops ops = { sizeof(smol_device_ops),
	                      create,
	                      destroy,
	                      nullptr,
	                      nullptr,
	                      nullptr,
	                      nullptr,
	                      nullptr,
	                      0,
	                      nullptr,
	                      nullptr,
	                      {} };
#else
const smol_device_ops ops = {
	sizeof(smol_device_ops), create, destroy, nullptr, nullptr, nullptr, nullptr, nullptr, 0, {}
};
#endif
} // namespace

SMOL_PLUGIN(SMOL_KIND_DEVICE, "header-check-cxx", "C++ header check", &ops);

int main()
{
	return smol_plugin.abi_major == SMOL_ABI_MAJOR &&
	                       smol_plugin.abi_minor == SMOL_TARGET_ABI_MINOR &&
	                       smol_plugin.ops == &ops
	               ? 0
	               : 1;
}
