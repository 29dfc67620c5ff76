/* The SDK header must compile cleanly as C11 with -Wall -Wextra -Wpedantic -Werror. */
#include <smolvm/sdk.h>

static int create(const struct smol_host *h, struct smol_dev *d, uint32_t f, void **state)
{
	(void)h;
	(void)d;
	(void)f;
	*state = 0;
	return 0;
}
static void destroy(void *s)
{
	(void)s;
}
static const struct smol_device_ops ops = { .struct_size = sizeof(struct smol_device_ops),
	                                    .create = create,
	                                    .destroy = destroy };

SMOL_PLUGIN(SMOL_KIND_DEVICE, "header-check-c", "C header check", &ops);

int main(void)
{
	return smol_plugin.abi_major == SMOL_ABI_MAJOR && smol_plugin.ops == &ops ? 0 : 1;
}
