/*
 * virtio-net's transmit queue (5.1.6.2): the guest's frames to the host side, run by the
 * worker (worker lock held, dropped around host writes).
 *
 * A chain is a virtio_net_hdr then the frame. To a TAP both go as they are (writev straight
 * from guest memory: the kernel checks the header and does the checksum and segmentation
 * the guest left to it); to a stream a 4-byte big-endian length goes first, and a header
 * asking for offloads (never negotiated there) drops the frame. When the host has no room
 * (EAGAIN, or part of a frame written to a stream), the frame is copied aside,
 * the chain completes, and the queue waits until the host fd is writable: backpressure the
 * driver sees as a full ring, never a busy loop. A frame too short for an Ethernet header or
 * longer than the largest TSO frame (a TAP) or the MTU (a stream) is dropped and counted.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net.h"

static int tx_room_fd(const struct net *n);

void net_tx_discard(struct net *n)
{
	n->tx_pending_len = n->tx_pending_off = 0;
}

/* A reset: a frame waiting for room goes, unless part of it went to a stream already: the
 * peer reads its length and then that many bytes, so the rest of it goes first (sent when
 * the queue is next served: DRIVER_OK kicks it), or the stream is out of step. */
void net_tx_reset(struct net *n)
{
	if (!n->stream || n->tx_pending_off == 0)
		net_tx_discard(n);
}

/* Writes @iov to the host, the worker lock released meanwhile: bytes written, or -errno. */
static ssize_t tx_write(struct net *n, const struct iovec *iov, int cnt)
{
	ssize_t k;

	virtio_worker_io_begin(&n->w);
	do {
		if (n->stream) {
			struct msghdr m = { .msg_iov = (struct iovec *)iov,
				            .msg_iovlen = (size_t)cnt };

			k = sendmsg(n->fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
		} else {
			k = writev(n->fd, iov, cnt);
		}
	} while (k < 0 && errno == EINTR);
	virtio_worker_io_end(&n->w);
	return k < 0 ? -errno : k;
}

/* The host refused a frame: a stream is gone; a TAP (down, say) only loses the frame. */
static void tx_failed(struct net *n, int err)
{
	if (n->stream) {
		net_link_down(n, err == -EPIPE || err == -ECONNRESET
		                         ? "the peer closed the connection"
		                         : strerror(-err));
		return;
	}
	n->stats.tx_errors++;
	if (!n->warned_tx_error) {
		n->warned_tx_error = true;
		n->host->log(n->dev, SMOL_LOG_WARN,
		             "TAP %s refused a frame: %s (frames are dropped "
		             "while it does; said once)",
		             n->tap_name, strerror(-err));
	}
}

/* Sends what waits in tx_pending: true when nothing waits any more. */
static bool tx_flush(struct net *n)
{
	struct iovec v = { n->tx_pending + n->tx_pending_off,
		           n->tx_pending_len - n->tx_pending_off };
	ssize_t k = tx_write(n, &v, 1);

	if (k == -EAGAIN || (k >= 0 && (size_t)k < v.iov_len && n->stream)) {
		if (k > 0)
			n->tx_pending_off += (uint32_t)k;
		/* again: after a reset, or a watch the worker dropped (virtio-worker.h) */
		(void)virtio_worker_watch_io(&n->w, NET_TX, tx_room_fd(n), SMOL_FD_OUT);
		return false;
	}
	if (k < 0)
		tx_failed(n, (int)k);
	net_tx_discard(n);
	(void)virtio_worker_watch_io(&n->w, NET_TX, -1, 0);
	return true;
}

/* Copies the frame in @iov into tx_pending, @sent bytes of it sent: the host had no room for
 * the rest. */
static void tx_keep(struct net *n, const struct iovec *iov, int cnt, size_t sent)
{
	uint32_t len = 0;

	for (int i = 0; i < cnt; i++) {
		memcpy(n->tx_pending + len, iov[i].iov_base, iov[i].iov_len);
		len += (uint32_t)iov[i].iov_len;
	}
	n->tx_pending_len = len;
	n->tx_pending_off = (uint32_t)sent;
	n->stats.tx_stalls++;
	(void)virtio_worker_watch_io(&n->w, NET_TX, tx_room_fd(n), SMOL_FD_OUT);
}

/* The guest's header asks only for offloads it negotiated (none on a stream: never offered),
 * and a frame without segmentation fits the MTU (5.1.6.2, 5.1.4). */
static bool tx_header_ok(const struct net *n, const uint8_t *hdr, uint32_t len)
{
	uint8_t gso = hdr[VIRTIO_NET_HDR_GSO_TYPE];
	uint8_t type = gso & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;

	if ((hdr[VIRTIO_NET_HDR_FLAGS] & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
	    !net_has(n, VIRTIO_NET_F_CSUM))
		return false;
	if (type == VIRTIO_NET_HDR_GSO_NONE)
		return !(gso & VIRTIO_NET_HDR_GSO_ECN) &&
		       (!net_has(n, VIRTIO_NET_F_MTU) ||
		        len <= (uint32_t)n->mtu + NET_ETH_HLEN + 4);
	if ((gso & VIRTIO_NET_HDR_GSO_ECN) && !net_has(n, VIRTIO_NET_F_HOST_ECN))
		return false;
	return (type == VIRTIO_NET_HDR_GSO_TCPV4 && net_has(n, VIRTIO_NET_F_HOST_TSO4)) ||
	       (type == VIRTIO_NET_HDR_GSO_TCPV6 && net_has(n, VIRTIO_NET_F_HOST_TSO6));
}

/* The fd polled for room: the dup (the receive side polls the fd itself). */
static int tx_room_fd(const struct net *n)
{
	return n->tx_fd >= 0 ? n->tx_fd : n->fd;
}

/* One chain: sent, kept aside (no room), or dropped. */
static void tx_one(struct net *n, struct virtq *q, const struct virtio_chain *c)
{
	uint32_t max = NET_MAX_FRAME; /* a TSO frame: tx_header_ok() checks the rest */
	uint32_t len = c->read_len - NET_HDR, prefix;
	uint8_t hdr[NET_HDR];
	int cnt;

	if (c->read_len < NET_HDR + NET_ETH_HLEN || len > max || n->fd < 0 ||
	    virtq_read(q, c, 0, hdr, NET_HDR)) {
		n->stats.tx_dropped++;
		return;
	}
	if (!tx_header_ok(n, hdr, len)) {
		n->stats.tx_dropped++;
		return;
	}
	if (n->vnet_hdr) {
		hdr[VIRTIO_NET_HDR_NUM_BUFFERS] = hdr[VIRTIO_NET_HDR_NUM_BUFFERS + 1] = 0;
		n->iov[0] = (struct iovec){ hdr, NET_HDR };
	} else {
		prefix = htonl(len);
		n->iov[0] = (struct iovec){ &prefix, NET_LEN_PREFIX };
	}
	cnt = virtq_iov(q, c, false, NET_HDR, len, n->iov + 1, NET_QUEUE_SIZE + 1);
	if (cnt < 0) {
		n->stats.tx_dropped++;
		return;
	}
	size_t want = n->iov[0].iov_len + len;
	ssize_t k = tx_write(n, n->iov, cnt + 1);

	if (k != (ssize_t)want && k != -EAGAIN && !(k >= 0 && n->stream)) {
		tx_failed(n, k < 0 ? (int)k : -EIO);
		return;
	}
	if (k != (ssize_t)want) /* no room for (the rest of) it */
		tx_keep(n, n->iov, cnt + 1, k > 0 ? (size_t)k : 0);
	n->stats.tx_frames++;
	n->stats.tx_bytes += len;
	if (len > n->stats.tx_largest)
		n->stats.tx_largest = len;
}

bool net_tx_serve(struct net *n)
{
	struct virtq *q = virtio_mmio_queue(&n->vm, NET_TX);

	if (n->tx_pending_len && n->fd >= 0 && !tx_flush(n))
		return false; /* still no room: the host fd wakes us */
	for (unsigned turn = 0; turn < NET_BUDGET && !virtio_worker_yield(&n->w); turn++) {
		if (virtq_pop(q, &n->chain) <= 0)
			break;
		tx_one(n, q, &n->chain);
		if (virtq_push(q, n->chain.head, 0))
			break;
		if (n->tx_pending_len) {
			virtq_notify(q);
			return false;
		}
	}
	virtq_notify(q);
	return virtq_pending(q);
}
