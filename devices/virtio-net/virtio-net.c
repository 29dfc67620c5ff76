/*
 * virtio-net: a virtio network device (DeviceID 1) over virtio-mmio, wired to the host
 * through a TAP device, passt (a user-mode network stack in its own process), or a UNIX
 * stream socket (another machine, a test). This file holds the plugin: configuration, the
 * config space, the MMIO window, the interrupt line and the description; the host side is in
 * net-backend.c, the queues in net-rx.c and net-tx.c, snapshots in net-snap.c.
 *
 * Keys:
 *   backend   tap | passt | socket (required)
 *   tap       tap: the interface (an existing one; created when missing and allowed to)
 *   socket    socket: the UNIX socket to connect to, or to listen on with listen = on
 *   listen    socket: bool, default off: wait for one peer on `socket`
 *   passt     passt: the program (default: passt on PATH)
 *   forward   passt: a port forward PROTO:HOSTPORT:GUESTPORT (tcp or udp), repeatable
 *   mac       the guest's address, default derived from the machine's and device's names
 *   mtu       the MTU told to the guest (VIRTIO_NET_F_MTU), 68..65535, default 1500
 *   base      MMIO base of the 0x200-byte window (default: chosen by the core)
 *   irq       interrupt line (default: the first free line from 5 up), edge-triggered
 *
 * Features: MAC, STATUS (link up while the host side is there), MTU, MRG_RXBUF, EVENT_IDX,
 * INDIRECT_DESC; with a TAP (IFF_VNET_HDR) also the checksum and TSO offloads both ways: the
 * guest's TSO frames go to the TAP whole, the host's to the guest whole (TUNSETOFFLOAD
 * follows what the driver accepted). Queues: receiveq1 and transmitq1, served by the
 * device's I/O thread (devices/virtio/virtio-worker.h) off the vCPU threads.
 */
#define _GNU_SOURCE
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "net.h"

/* ---- virtio transport glue ------------------------------------------------------------ */

static void *net_gpa(void *opaque, uint64_t gpa, uint64_t len)
{
	struct net *n = opaque;

	return n->host->gpa_ptr(n->dev, gpa, len);
}

/* Edge-triggered, as the description says: a pulse per interrupt, nothing on the ACK. */
static void net_irq(void *opaque, int level)
{
	struct net *n = opaque;

	if (level)
		virtio_dev_pulse(n->host, n->dev, n->irq_fd, n->irq);
}

static void net_notify(void *opaque, unsigned index)
{
	struct net *n = opaque;

	virtio_worker_notify(&n->w, index);
}

static bool net_serve(void *opaque, unsigned index)
{
	struct net *n = opaque;

	return index == NET_RX ? net_rx_serve(n) : net_tx_serve(n);
}

static void net_config_read(void *opaque, uint32_t off, void *buf, unsigned len)
{
	struct net *n = opaque;

	memcpy(buf, n->config + off, len); /* bounds checked by the transport */
}

static void net_vlog(void *opaque, int level, const char *msg)
{
	struct net *n = opaque;

	virtio_dev_log(n->host, n->dev, level, msg);
}

/* Transport reset (Status 0, or the machine's): what waits in either direction goes. */
static void net_transport_reset(void *opaque)
{
	struct net *n = opaque;

	net_rx_reset(n);
	net_tx_reset(n);
	(void)virtio_worker_watch_io(&n->w, NET_RX, -1, 0);
	(void)virtio_worker_watch_io(&n->w, NET_TX, -1, 0);
	net_tap_offloads(n);
}

static const struct virtio_mmio_ops net_virtio_ops = {
	.gpa_ptr = net_gpa,
	.irq = net_irq,
	.queue_notify = net_notify,
	.reset = net_transport_reset,
	.config_read = net_config_read,
	.log = net_vlog,
};

static uint64_t net_mmio_read(void *opaque, uint64_t off, unsigned size)
{
	struct net *n = opaque;

	virtio_worker_lock(&n->w);
	uint64_t v = virtio_mmio_read(&n->vm, off, size);
	virtio_worker_unlock(&n->w);
	return v;
}

static void net_mmio_write(void *opaque, uint64_t off, unsigned size, uint64_t value)
{
	struct net *n = opaque;

	virtio_worker_lock(&n->w);
	/* a reset or a queue switched off: the frame in flight (only) ends first */
	if (off == VIRTIO_MMIO_STATUS || off == VIRTIO_MMIO_QUEUE_READY)
		virtio_worker_wait_idle(&n->w);
	virtio_mmio_write(&n->vm, off, size, value);
	if (off == VIRTIO_MMIO_STATUS && (n->vm.status & VIRTIO_STATUS_DRIVER_OK)) {
		/* the driver is ready: the TAP may hand it what it accepted, and frames may
		 * come (the driver kicks receiveq once it has posted buffers) */
		net_tap_offloads(n);
		virtio_worker_kick(&n->w, NET_RX);
		if (n->tx_pending_len) /* the rest of a frame sent in part before a reset */
			virtio_worker_kick(&n->w, NET_TX);
	}
	virtio_worker_unlock(&n->w);
}

static const struct smol_io_ops net_mmio_ops = {
	.read = net_mmio_read,
	.write = net_mmio_write,
};

/* ---- configuration -------------------------------------------------------------------- */

void net_link_changed(struct net *n)
{
	uint16_t st = htole16(n->link_up ? VIRTIO_NET_S_LINK_UP : 0);

	memcpy(n->config + VIRTIO_NET_CFG_STATUS, &st, 2);
	virtio_mmio_config_changed(&n->vm);
}

static void net_fill_config(struct net *n)
{
	uint16_t v;

	memset(n->config, 0, sizeof(n->config));
	memcpy(n->config + VIRTIO_NET_CFG_MAC, n->mac, 6);
	v = htole16(n->link_up ? VIRTIO_NET_S_LINK_UP : 0);
	memcpy(n->config + VIRTIO_NET_CFG_STATUS, &v, 2);
	v = htole16(1);
	memcpy(n->config + VIRTIO_NET_CFG_MAX_PAIRS, &v, 2);
	v = htole16(n->mtu);
	memcpy(n->config + VIRTIO_NET_CFG_MTU, &v, 2);
}

static uint64_t net_features(const struct net *n)
{
	uint64_t f = (1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_EVENT_IDX) |
	             (1ull << VIRTIO_F_INDIRECT_DESC) | (1ull << VIRTIO_NET_F_MAC) |
	             (1ull << VIRTIO_NET_F_STATUS) | (1ull << VIRTIO_NET_F_MTU) |
	             (1ull << VIRTIO_NET_F_MRG_RXBUF);

	if (n->kind == NET_TAP) /* frames with a virtio_net_hdr both ways: the TAP's offloads */
		f |= (1ull << VIRTIO_NET_F_CSUM) | (1ull << VIRTIO_NET_F_GUEST_CSUM) |
		     (1ull << VIRTIO_NET_F_GUEST_TSO4) | (1ull << VIRTIO_NET_F_GUEST_TSO6) |
		     (1ull << VIRTIO_NET_F_GUEST_ECN) | (1ull << VIRTIO_NET_F_HOST_TSO4) |
		     (1ull << VIRTIO_NET_F_HOST_TSO6) | (1ull << VIRTIO_NET_F_HOST_ECN);
	return f;
}

/* FNV-1a, 64 bits: a stable hash of the names for the default MAC address. */
static uint64_t fnv1a(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 0x100000001b3ull;
	return h;
}

static int net_parse_mac(struct net *n, const char *text)
{
	unsigned b[6];
	char end;

	if (!text) {
		/* a locally administered unicast address, the same in every run */
		const char *dev = n->host->abi_minor >= 4 ? n->host->dev_name(n->dev) : "net";
		const char *machine = n->host->abi_minor >= 4 ? n->host->machine_name(n->dev) : "";
		uint64_t h = fnv1a(fnv1a(fnv1a(0xcbf29ce484222325ull, machine), "/"), dev);

		for (int i = 0; i < 6; i++)
			n->mac[i] = (uint8_t)(h >> (8 * i));
		n->mac[0] = (uint8_t)((n->mac[0] & 0xfc) | 0x02);
		return 0;
	}
	if (sscanf(text, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
	           &end) != 6 ||
	    strlen(text) != 17) {
		n->host->cfg_error(n->dev, "mac", "'%s' is not an address like 52:54:00:12:34:56",
		                   text);
		return -EINVAL;
	}
	if (b[0] & 1) {
		n->host->cfg_error(n->dev, "mac", "%s is a multicast address", text);
		return -EINVAL;
	}
	for (int i = 0; i < 6; i++)
		n->mac[i] = (uint8_t)b[i];
	return 0;
}

/* Interrupts through an irqfd when the backend takes one, queues through the worker. */
static int net_attach_eventfds(struct net *n)
{
	const struct smol_host *h = n->host;

	if (h->abi_minor >= 2) {
		n->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (n->irq_fd >= 0 && h->irqfd(n->dev, n->irq, n->irq_fd) < 0) {
			close(n->irq_fd);
			n->irq_fd = -1;
		}
	}
	if (virtio_worker_attach(&n->w, n->base + VIRTIO_MMIO_QUEUE_NOTIFY))
		return -EINVAL;
	h->log(n->dev, SMOL_LOG_DEBUG, "queue notifications: %s; interrupts: %s",
	       n->w.threaded ? "ioeventfd, served by the device's I/O thread" : "MMIO exits",
	       n->irq_fd >= 0 ? "irqfd" : "irq_pulse");
	return 0;
}

static void net_destroy(void *state)
{
	struct net *n = state;
	const struct net_stats *s = &n->stats;

	if (virtio_worker_stop(&n->w))
		return; /* the thread may still run: keep all it could use */
	n->host->log(n->dev, SMOL_LOG_DEBUG,
	             "received %llu frames (%llu bytes, largest %llu), %llu dropped, %llu waited "
	             "for buffers; sent %llu frames (%llu bytes, largest %llu), %llu dropped, %llu "
	             "refused by the host, %llu stalls",
	             (unsigned long long)s->rx_frames, (unsigned long long)s->rx_bytes,
	             (unsigned long long)s->rx_largest, (unsigned long long)s->rx_dropped,
	             (unsigned long long)s->rx_waits, (unsigned long long)s->tx_frames,
	             (unsigned long long)s->tx_bytes, (unsigned long long)s->tx_largest,
	             (unsigned long long)s->tx_dropped, (unsigned long long)s->tx_errors,
	             (unsigned long long)s->tx_stalls);
	net_backend_stop(n);
	if (n->irq_fd >= 0)
		close(n->irq_fd);
	free(n->rx_buf);
	free(n->tx_pending);
	free(n);
}

/* Reads every key (all errors reported), then the MAC, MTU and window. */
static int net_read_config(struct net *n, uint32_t flags, uint64_t *base, uint64_t *irq)
{
	const struct smol_host *h = n->host;
	const char *kind, *mac;
	uint64_t mtu;

	bool bad = h->cfg_str(n->dev, "backend", NULL, &kind) != 0;
	bad |= h->cfg_str(n->dev, "mac", NULL, &mac) != 0;
	bad |= h->cfg_u64(n->dev, "mtu", NET_MTU_DEFAULT, &mtu) != 0;
	bad |= h->cfg_u64(n->dev, "base", SMOL_ADDR_AUTO, base) != 0;
	bad |= h->cfg_u64(n->dev, "irq", UINT64_MAX, irq) != 0;
	if (!bad && !kind) {
		h->cfg_error(n->dev, "backend", "required: tap, passt or socket");
		bad = true;
	}
	if (!bad && net_backend_configure(n, kind, flags & SMOL_CREATE_CHECK_ONLY))
		bad = true;
	if (net_parse_mac(n, mac))
		bad = true;
	if (mtu < NET_MTU_MIN || mtu > 65535) {
		h->cfg_error(n->dev, "mtu", "%llu: from %d to 65535", (unsigned long long)mtu,
		             NET_MTU_MIN);
		bad = true;
	}
	n->mtu = (uint16_t)mtu;
	if (*base != SMOL_ADDR_AUTO && (*base % NET_WINDOW || *base > (1ull << 32) - NET_WINDOW)) {
		h->cfg_error(n->dev, "base",
		             "0x%llx: the 0x200-byte window must be 0x200-aligned, below 4 GiB",
		             (unsigned long long)*base);
		bad = true;
	}
	return bad ? -EINVAL : 0;
}

static int net_create(const struct smol_host *host, struct smol_dev *dev, uint32_t flags,
                      void **state)
{
	uint64_t base, irq;
	struct net *n;
	int ret;

	n = calloc(1, sizeof(*n));
	if (!n) {
		host->log(dev, SMOL_LOG_ERROR, "cannot allocate the device state");
		return -ENOMEM;
	}
	n->host = host;
	n->dev = dev;
	n->irq_fd = n->fd = n->tx_fd = n->listen_fd = -1;
	virtio_worker_init(&n->w, host, dev, &n->vm, 2, net_serve, n);
	*state = n;

	if (net_read_config(n, flags, &base, &irq))
		return -EINVAL;
	n->rx_buf = malloc(n->stream ? NET_STAGE : NET_HDR + NET_MAX_FRAME);
	n->tx_pending = malloc(NET_LEN_PREFIX + NET_HDR + NET_MAX_FRAME);
	if (!n->rx_buf || !n->tx_pending) {
		host->log(dev, SMOL_LOG_ERROR, "cannot allocate the frame buffers");
		return -ENOMEM;
	}
	net_fill_config(n);
	ret = virtio_mmio_init(&n->vm, &net_virtio_ops, n, VIRTIO_ID_NET, net_features(n), 2,
	                       NET_QUEUE_SIZE, NET_CONFIG_SIZE);
	if (ret) {
		host->log(dev, SMOL_LOG_ERROR, "virtio transport: %s", strerror(-ret));
		return ret;
	}
	ret = host->map_mmio(dev, base, NET_WINDOW, &net_mmio_ops, n, &n->base);
	if (ret) {
		if (ret != -EEXIST) /* the core reports overlaps itself */
			host->cfg_error(dev, "base", "cannot map the MMIO window: %s",
			                strerror(-ret));
		return -EINVAL;
	}
	if (virtio_dev_claim_irq(n->host, n->dev, irq, &n->irq))
		return -EINVAL;
	if (flags & SMOL_CREATE_CHECK_ONLY)
		return 0;
	if (net_attach_eventfds(n))
		return -EINVAL;
	return net_backend_start(n);
}

static void net_reset(void *state)
{
	struct net *n = state;

	virtio_worker_lock(&n->w);
	virtio_worker_wait_idle(&n->w);
	virtio_mmio_reset(&n->vm);
	virtio_worker_unlock(&n->w);
}

static int net_describe(void *state, struct smol_describe *d)
{
	struct net *n = state;

	return virtio_dev_describe(n->host, d, n->base, n->irq);
}

/* The device op stats (ABI 1.6): both queues' counters and the frames' (worker lock). */
static void net_stats(void *state, smol_stat_fn *put, void *ctx)
{
	struct net *n = state;
	virtio_worker_stats(&n->w, put, ctx);
	virtio_worker_lock(&n->w);
	struct net_stats s = n->stats;
	virtio_worker_unlock(&n->w);
	put(ctx, "rx_frames", s.rx_frames);
	put(ctx, "rx_bytes", s.rx_bytes);
	put(ctx, "rx_dropped", s.rx_dropped);
	put(ctx, "rx_waits", s.rx_waits);
	put(ctx, "tx_frames", s.tx_frames);
	put(ctx, "tx_bytes", s.tx_bytes);
	put(ctx, "tx_dropped", s.tx_dropped);
	put(ctx, "tx_errors", s.tx_errors);
	put(ctx, "tx_stalls", s.tx_stalls);
}

static const struct smol_device_ops net_ops = {
	.struct_size = sizeof(struct smol_device_ops),
	.create = net_create,
	.destroy = net_destroy,
	.reset = net_reset,
	.save = net_save,
	.load = net_load,
	.describe = net_describe,
	.pause = net_pause,
	.resume = net_resume,
	.stats = net_stats,
};

SMOL_PLUGIN(SMOL_KIND_DEVICE, "virtio-net",
            "virtio network device (virtio-mmio) on a TAP, passt or a UNIX socket", &net_ops);
