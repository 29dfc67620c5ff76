/* The host-table glue every virtio-mmio device plugin shares (virtio-dev.h). */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "virtio-dev.h"
#include "virtio.h"

int virtio_dev_claim_irq(const struct smol_host *h, struct smol_dev *dev, uint64_t irq,
                         uint32_t *out)
{
	int r;

	if (irq != UINT64_MAX) {
		if (irq >= SMOL_IRQ_AUTO) { /* (SMOL_IRQ_AUTO would ask the core to pick one) */
			h->cfg_error(dev, "irq", "%llu is not an interrupt line",
			             (unsigned long long)irq);
			return -EINVAL;
		}
		if (h->irq_claim(dev, (uint32_t)irq))
			return -EINVAL; /* the core said why (no such line, reserved, taken) */
		*out = (uint32_t)irq;
		return 0;
	}
	r = h->irq_claim(dev, SMOL_IRQ_AUTO); /* the core reports when none is free */
	if (r < 0)
		return -EINVAL;
	*out = (uint32_t)r;
	return 0;
}

void virtio_dev_pulse(const struct smol_host *h, struct smol_dev *dev, int irq_fd, uint32_t line)
{
	uint64_t one = 1;

	if (irq_fd >= 0 && write(irq_fd, &one, sizeof(one)) == (ssize_t)sizeof(one))
		return;
	(void)h->irq_pulse(dev, line);
}

int virtio_dev_describe(const struct smol_host *h, struct smol_describe *d, uint64_t base,
                        uint32_t line)
{
	char words[96];
	int r = h->desc_device(d, "LNRO0005");

	if (r == 0)
		r = h->desc_mmio(d, base, VIRTIO_MMIO_WINDOW);
	if (r == 0)
		r = h->desc_irq(d, line, SMOL_IRQ_EDGE);
	if (r == 0) {
		snprintf(words, sizeof(words), "virtio_mmio.device=512@0x%llx:%u",
		         (unsigned long long)base, line);
		r = h->desc_cmdline(d, words);
	}
	if (r == 0 && h->abi_minor >= 5)
		r = h->desc_compatible(d, "virtio,mmio"); /* a device tree's node (arm64) */
	return r;
}

void virtio_dev_log(const struct smol_host *h, struct smol_dev *dev, int level, const char *msg)
{
	h->log(dev,
	       level == VIRTIO_LOG_STATE        ? SMOL_LOG_ERROR
	       : level == VIRTIO_LOG_GUEST_WARN ? SMOL_LOG_DEBUG
	                                        : SMOL_LOG_WARN,
	       "%s", msg);
}
