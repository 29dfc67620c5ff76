/*
 * virtio-net snapshots (ABI 1.3): pause and resume of the I/O thread, save and load of the
 * device's state. State version 1, all little-endian:
 *
 *   u8   MAC address[6]
 *   le16 MTU
 *   le16 link status as the guest last saw it (VIRTIO_NET_S_LINK_UP or 0)
 *   the virtio-mmio transport (virtio.h: 52 bytes, then 40 for each of the two queues)
 *
 * The host side is not state: the restored device opens its TAP, starts its passt or reaches
 * its socket from its configuration. Frames in flight (one waiting for receive buffers, the
 * rest of one the host had no room for) are not saved: a network loses frames, TCP sends
 * them again. After a load the guest is told the link status of now if it differs (a
 * configuration interrupt), and the TAP's offloads follow what the driver negotiated. A
 * different MAC address or MTU is refused: the guest has them.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "dev-snap.h"
#include "net.h"

#define NET_STATE_VERSION 1
#define NET_STATE_OWN (6 + 2 + 2)
#define NET_STATE_SIZE (NET_STATE_OWN + VIRTIO_MMIO_STATE_HEADER + 2 * VIRTIO_MMIO_STATE_QUEUE)

void net_pause(void *state)
{
	struct net *n = state;

	virtio_worker_pause(&n->w);
}

void net_resume(void *state)
{
	struct net *n = state;

	virtio_worker_resume(&n->w);
}

int net_save(void *state, struct smol_snap_writer *w)
{
	struct net *n = state;
	const struct smol_host *h = n->host;
	uint8_t own[NET_STATE_OWN];
	int r;

	h->snap_set_version(w, NET_STATE_VERSION);
	virtio_worker_lock(&n->w);
	virtio_worker_wait_idle(&n->w); /* the frame in hand (if any) completes first */
	memcpy(own, n->mac, 6);
	dev_le_put(own + 6, n->mtu, 2);
	memcpy(own + 8, n->config + VIRTIO_NET_CFG_STATUS, 2);
	r = h->snap_write(w, own, sizeof(own));
	if (r == 0)
		r = virtio_mmio_save(&n->vm, h, w);
	virtio_worker_unlock(&n->w);
	return r;
}

static int refuse(struct net *n, const char *what, const char *saved, const char *now)
{
	n->host->log(n->dev, SMOL_LOG_ERROR,
	             "snapshot refused: its %s is %s, this device's is %s (the guest keeps the "
	             "one it read: set it in the configuration)",
	             what, saved, now);
	return -EINVAL;
}

static void mac_text(const uint8_t *m, char *out, size_t len)
{
	snprintf(out, len, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
}

int net_load(void *state, struct smol_snap_reader *r)
{
	struct net *n = state;
	const struct smol_host *h = n->host;
	uint8_t own[NET_STATE_OWN];
	uint32_t version;
	uint16_t mtu, link;
	char a[24], b[24];
	int ret = dev_snap_version(h, n->dev, r, NET_STATE_VERSION, &version);

	if (ret)
		return ret;
	if (h->snap_remaining(r) != NET_STATE_SIZE) {
		h->log(n->dev, SMOL_LOG_ERROR,
		       "snapshot refused: the network device's state has %zu bytes, version 1 has "
		       "%u%s",
		       h->snap_remaining(r), (unsigned)NET_STATE_SIZE,
		       h->snap_remaining(r) < NET_STATE_SIZE ? " (truncated)" : "");
		/* a short one is what snap_read() would find (sdk.h): -EBADMSG */
		return h->snap_remaining(r) < NET_STATE_SIZE ? -EBADMSG : -EINVAL;
	}
	ret = h->snap_read(r, own, sizeof(own));
	if (ret)
		return ret;
	if (memcmp(own, n->mac, 6)) {
		mac_text(own, a, sizeof(a));
		mac_text(n->mac, b, sizeof(b));
		return refuse(n, "MAC address", a, b);
	}
	mtu = (uint16_t)dev_le_get(own + 6, 2);
	link = (uint16_t)dev_le_get(own + 8, 2);
	if (mtu != n->mtu) {
		snprintf(a, sizeof(a), "%u", mtu);
		snprintf(b, sizeof(b), "%u", n->mtu);
		return refuse(n, "MTU", a, b);
	}
	if (link & ~VIRTIO_NET_S_LINK_UP) {
		h->log(n->dev, SMOL_LOG_ERROR,
		       "snapshot refused: link status 0x%x has unknown bits", link);
		return -EINVAL;
	}
	virtio_worker_lock(&n->w);
	virtio_worker_wait_idle(&n->w);
	ret = virtio_mmio_load(&n->vm, h, r);
	if (ret == 0) {
		/* the guest saw the link as it was; the host side is what it is now */
		if ((link != 0) != n->link_up)
			net_link_changed(n);
		net_tap_offloads(n);
		/* frames from the host, and what the driver posted before the snapshot */
		virtio_worker_kick(&n->w, NET_RX);
		if (virtio_mmio_queue_pending(&n->vm, NET_TX))
			virtio_worker_kick(&n->w, NET_TX);
	}
	virtio_worker_unlock(&n->w);
	return ret;
}
