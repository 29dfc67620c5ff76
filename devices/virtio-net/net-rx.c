/*
 * virtio-net's receive queue (5.1.6.3, 5.1.6.4): frames from the host side into the guest's
 * receive buffers, run by the worker (worker lock held, dropped around host reads).
 *
 * A frame read from the host waits in rx_buf until buffers take it: with MRG_RXBUF as many
 * chains as it needs (num_buffers in the first one's header), else one chain that holds it
 * whole. When the driver has posted too few buffers, the chains taken go back
 * (virtq_unpop()), the host fd is no longer polled and the frame waits for the driver's next
 * notification; meanwhile the host queues frames (the TAP's queue, the socket's buffer)
 * and drops what does not fit there: the wait is bounded and nothing goes anywhere else.
 * A chain that cannot hold the header, a frame too long for a chain without MRG_RXBUF, a
 * frame needing more chains than the ring has: the frame is dropped and counted, the chains
 * return with length 0 (the driver counts a length error): a hostile driver costs itself
 * its frames.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "net.h"

void net_rx_discard(struct net *n)
{
	n->rx_len = n->rx_off = 0;
	n->rx_held = false;
}

/*
 * A reset: the frames read from the host and not delivered go. On a stream, the start of a
 * frame not read whole stays: the rest of it comes next from the host, and read without its
 * start it would be taken for a length prefix (the stream out of step: garbage frames, or
 * the link down).
 */
void net_rx_reset(struct net *n)
{
	if (!n->stream) {
		net_rx_discard(n);
		return;
	}
	while (n->rx_len - n->rx_off >= NET_LEN_PREFIX) {
		uint32_t flen;

		memcpy(&flen, n->rx_buf + n->rx_off, 4);
		flen = ntohl(flen);
		/* a frame in part stays; a malformed length too: the next read takes the link
		 * down */
		if (flen < NET_ETH_HLEN || flen > NET_MAX_FRAME ||
		    n->rx_len - n->rx_off < NET_LEN_PREFIX + flen)
			break;
		n->rx_off += NET_LEN_PREFIX + flen;
		n->stats.rx_dropped++;
	}
}

/* Polls the host fd for frames, or stops (no room in the guest). Asked each time: the
 * worker drops the watch of a queue it could not serve (virtio-worker.h). */
static void rx_arm(struct net *n, bool on)
{
	if (n->fd < 0)
		return;
	(void)virtio_worker_watch_io(&n->w, NET_RX, n->fd, on ? SMOL_FD_IN : 0);
}

/* A read from the host side, the worker lock released meanwhile. */
static ssize_t rx_read(struct net *n, void *buf, size_t len)
{
	ssize_t k;

	virtio_worker_io_begin(&n->w);
	do
		k = read(n->fd, buf, len);
	while (k < 0 && errno == EINTR);
	virtio_worker_io_end(&n->w);
	return k;
}

/*
 * What the driver may be given (5.1.6.4.1, 5.1.4.1): a frame of the TAP's with a GSO type only
 * when the driver took that offload (one queued before TUNSETOFFLOAD narrowed them is not),
 * and, once the driver took VIRTIO_NET_F_MTU, none without above the MTU plus an Ethernet
 * header and a VLAN tag.
 */
static bool rx_frame_fits(const struct net *n, const uint8_t *hdr, uint32_t len)
{
	uint8_t gso = n->vnet_hdr ? hdr[VIRTIO_NET_HDR_GSO_TYPE] : VIRTIO_NET_HDR_GSO_NONE;
	uint8_t type = gso & (uint8_t)~VIRTIO_NET_HDR_GSO_ECN;

	if (type == VIRTIO_NET_HDR_GSO_NONE)
		return !net_has(n, VIRTIO_NET_F_MTU) || len <= (uint32_t)n->mtu + NET_ETH_HLEN + 4;
	if ((gso & VIRTIO_NET_HDR_GSO_ECN) && !net_has(n, VIRTIO_NET_F_GUEST_ECN))
		return false;
	return (type == VIRTIO_NET_HDR_GSO_TCPV4 && net_has(n, VIRTIO_NET_F_GUEST_TSO4)) ||
	       (type == VIRTIO_NET_HDR_GSO_TCPV6 && net_has(n, VIRTIO_NET_F_GUEST_TSO6));
}

/* After dropping a frame the host gave: stop here when someone waits for the worker. */
static bool yield_after_drop(const struct net *n)
{
	return virtio_worker_yield(&n->w);
}

/*
 * The next frame from the host: 1 with @hdr (the virtio_net_hdr to give the guest), @frame and
 * @len; 0 when none is there yet; -1 when the link went down.
 */
static int rx_next_tap(struct net *n, uint8_t *hdr, const uint8_t **frame, uint32_t *len)
{
	while (!n->rx_held) {
		ssize_t k = rx_read(n, n->rx_buf, NET_HDR + NET_MAX_FRAME);

		if (k < 0) {
			if (errno == EAGAIN)
				return 0;
			net_link_down(n, strerror(errno));
			return -1;
		}
		/* a runt, or one the TAP cut to fit (it then says how long it was), or one the
		 * driver cannot take (see rx_frame_fits()) */
		n->rx_len = (uint32_t)k;
		if (k < NET_HDR + NET_ETH_HLEN || k > NET_HDR + NET_MAX_FRAME ||
		    !rx_frame_fits(n, n->rx_buf, n->rx_len - NET_HDR)) {
			n->stats.rx_dropped++;
			if (yield_after_drop(n))
				return 0;
			continue;
		}
		n->rx_held = true;
	}
	memcpy(hdr, n->rx_buf, NET_HDR);
	/* without GUEST_CSUM the driver takes no checksum hints (the TAP computes them all) */
	if (!net_has(n, VIRTIO_NET_F_GUEST_CSUM))
		memset(hdr, 0, NET_HDR);
	*frame = n->rx_buf + NET_HDR;
	*len = n->rx_len - NET_HDR;
	return 1;
}

static int rx_next_stream(struct net *n, uint8_t *hdr, const uint8_t **frame, uint32_t *len)
{
	for (;;) {
		uint32_t have = n->rx_len - n->rx_off, flen;

		if (have >= NET_LEN_PREFIX) {
			memcpy(&flen, n->rx_buf + n->rx_off, 4);
			flen = ntohl(flen);
			if (flen < NET_ETH_HLEN || flen > NET_MAX_FRAME) {
				char why[96];

				snprintf(why, sizeof(why),
				         "the peer sent a frame of %u bytes (%d to %d expected)",
				         flen, NET_ETH_HLEN, NET_MAX_FRAME);
				net_link_down(n, why);
				return -1;
			}
			if (have >= NET_LEN_PREFIX + flen) {
				memset(hdr, 0, NET_HDR);
				if (!rx_frame_fits(n, hdr, flen)) {
					/* above the guest's MTU: not for it */
					n->rx_off += NET_LEN_PREFIX + flen;
					n->stats.rx_dropped++;
					if (yield_after_drop(n))
						return 0;
					continue;
				}
				*frame = n->rx_buf + n->rx_off + NET_LEN_PREFIX;
				*len = flen;
				return 1;
			}
		}
		/* an incomplete frame: move it to the front, read more after it */
		if (n->rx_off) {
			memmove(n->rx_buf, n->rx_buf + n->rx_off, have);
			n->rx_len = have;
			n->rx_off = 0;
		}
		ssize_t k = rx_read(n, n->rx_buf + n->rx_len, NET_STAGE - n->rx_len);

		if (k == 0) {
			net_link_down(n, "the peer closed the connection");
			return -1;
		}
		if (k < 0) {
			if (errno == EAGAIN)
				return 0;
			net_link_down(n, errno == ECONNRESET ? "the peer closed the connection"
			                                     : strerror(errno));
			return -1;
		}
		n->rx_len += (uint32_t)k;
	}
}

/* The frame rx_next_*() returned is done with (delivered or dropped). */
static void rx_consume(struct net *n, uint32_t len)
{
	if (n->stream)
		n->rx_off += NET_LEN_PREFIX + len;
	else
		n->rx_held = false;
}

/* Writes bytes [from, from + k) of header-then-frame at the start of chain @c. */
static int rx_fill(struct virtq *q, const struct virtio_chain *c, const uint8_t *hdr,
                   const uint8_t *frame, uint32_t from, uint32_t k)
{
	uint32_t off = 0;
	int r = 0;

	if (from < NET_HDR) {
		uint32_t m = NET_HDR - from < k ? NET_HDR - from : k;

		r = virtq_write(q, c, 0, hdr + from, m);
		off = m;
		from += m;
		k -= m;
	}
	if (r == 0 && k)
		r = virtq_write(q, c, off, frame + (from - NET_HDR), k);
	return r;
}

/* Gives back the @used chains taken for a frame that is dropped: length 0 each. */
static void rx_return_empty(struct net *n, struct virtq *q, unsigned used)
{
	for (unsigned i = 0; i < used; i++)
		if (virtq_push(q, n->rx_heads[i], 0))
			break;
	n->stats.rx_dropped++;
}

/* 1: delivered; 0: too few buffers (the frame waits); -1: dropped. */
static int rx_deliver(struct net *n, struct virtq *q, uint8_t *hdr, const uint8_t *frame,
                      uint32_t len)
{
	bool mrg = net_has(n, VIRTIO_NET_F_MRG_RXBUF);
	uint32_t total = NET_HDR + len, done = 0;
	uint16_t mark = q->last_avail, nbuf;
	unsigned used = 0;

	while (done < total) {
		int r = used < q->num ? virtq_pop(q, &n->chain) : 0;

		if (r < 0)
			return -1; /* the queue is broken: nothing to give back */
		if (r == 0) {
			if (used == 0)
				return 0;
			if (used < q->num && virtq_unpop(q, mark, used))
				return 0; /* they come back with more */
			/* the whole ring is not enough, or malformed chains lie among ours */
			rx_return_empty(n, q, used);
			return -1;
		}
		struct virtio_chain *c = &n->chain;
		uint32_t room = c->write_len, k = total - done < room ? total - done : room;

		n->rx_heads[used] = c->head;
		n->rx_lens[used] = k;
		used++;
		if ((used == 1 && room < NET_HDR) || (!mrg && room < total) ||
		    rx_fill(q, c, hdr, frame, done, k)) {
			rx_return_empty(n, q, used);
			return -1;
		}
		if (used == 1) { /* num_buffers goes into it once all are taken */
			n->rx_first.head = c->head;
			n->rx_first.nseg = c->nseg;
			n->rx_first.nread = c->nread;
			n->rx_first.read_len = c->read_len;
			n->rx_first.write_len = c->write_len;
			memcpy(n->rx_first.seg, c->seg, c->nseg * sizeof(c->seg[0]));
		}
		done += k;
	}
	nbuf = htole16((uint16_t)used);
	if (virtq_write(q, &n->rx_first, VIRTIO_NET_HDR_NUM_BUFFERS, &nbuf, 2)) {
		rx_return_empty(n, q, used);
		return -1;
	}
	/* all of the frame's buffers at once: the driver takes num_buffers of them as soon as
	 * it sees the first */
	for (unsigned i = 0; i < used; i++)
		if (virtq_fill(q, i, n->rx_heads[i], n->rx_lens[i]))
			return -1;
	if (virtq_flush(q, used))
		return -1;
	n->stats.rx_frames++;
	n->stats.rx_bytes += len;
	if (len > n->stats.rx_largest)
		n->stats.rx_largest = len;
	return 1;
}

bool net_rx_serve(struct net *n)
{
	struct virtq *q = virtio_mmio_queue(&n->vm, NET_RX);
	bool more = false;

	for (unsigned turn = 0; n->fd >= 0 && !virtio_worker_yield(&n->w); turn++) {
		uint8_t hdr[NET_HDR];
		const uint8_t *frame;
		uint32_t len;
		int r;

		if (turn == NET_BUDGET) {
			more = true; /* the transmit queue's turn, then ours again */
			break;
		}
		r = n->stream ? rx_next_stream(n, hdr, &frame, &len)
		              : rx_next_tap(n, hdr, &frame, &len);
		if (r <= 0) {
			rx_arm(n, r == 0); /* nothing there: wait for the host */
			break;
		}
		r = rx_deliver(n, q, hdr, frame, len);
		if (r == 0) {
			/* no room: wait for the driver's buffers, not for the host */
			n->stats.rx_waits++;
			rx_arm(n, false);
			if (virtq_want_more(q))
				continue;
			break;
		}
		rx_consume(n, len);
		if (q->broken)
			break;
	}
	virtq_notify(q);
	/* a waiter (a reset, a pause) took the worker mid-turn: come back (a frame may be held,
	 * or staged, with nothing more to come from the host or the driver) */
	return more || virtio_worker_yield(&n->w);
}
