/* virtio-net: state shared by the plugin (virtio-net.c), its host side (net-backend.c), the
 * queues (net-rx.c, net-tx.c) and snapshots (net-snap.c). */
#ifndef SMOLVM_VIRTIO_NET_H
#define SMOLVM_VIRTIO_NET_H

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <smolvm/sdk.h>

#include "virtio-dev.h"
#include "virtio-worker.h"
#include "virtio.h"

#define NET_WINDOW VIRTIO_MMIO_WINDOW
#define NET_QUEUE_SIZE 256
#define NET_RX 0 /* receiveq1 */
#define NET_TX 1 /* transmitq1 */
#define NET_CONFIG_SIZE 12 /* mac, status, max_virtqueue_pairs, mtu */
#define NET_HDR VIRTIO_NET_HDR_SIZE
#define NET_ETH_HLEN 14
/* The largest frame: a TSO frame of 64 KiB of IP with an Ethernet header and a VLAN tag. */
#define NET_MAX_FRAME (65535 + NET_ETH_HLEN + 4)
#define NET_MTU_DEFAULT 1500
#define NET_MTU_MIN 68
/* Frames per queue turn before the other queue gets its go. */
#define NET_BUDGET 64
/* Stream backends (passt, socket): each frame preceded by its 4-byte big-endian length. */
#define NET_LEN_PREFIX 4
#define NET_STAGE (4 * (NET_LEN_PREFIX + NET_MAX_FRAME)) /* receive staging buffer */

enum net_kind { NET_TAP, NET_PASST, NET_SOCKET };

struct net_stats {
	uint64_t rx_frames, rx_bytes;
	uint64_t rx_largest, tx_largest; /* frame bytes: above the MTU, TSO is at work */
	uint64_t rx_dropped; /* no buffer could take the frame: too short, malformed, ring full */
	uint64_t rx_waits; /* a frame waited for the guest's receive buffers */
	uint64_t tx_frames, tx_bytes;
	uint64_t tx_dropped; /* malformed (too short or long, offloads not negotiated), link down */
	uint64_t tx_errors; /* the host refused the frame */
	uint64_t tx_stalls; /* the host side was full: the queue waited for it */
};

struct net {
	const struct smol_host *host;
	struct smol_dev *dev;
	struct virtio_mmio vm;
	struct virtio_worker w;
	uint64_t base;
	uint32_t irq;
	int irq_fd; /* irqfd on the interrupt line (ABI 1.2), -1 without */

	/* configuration */
	enum net_kind kind;
	uint8_t mac[6];
	uint16_t mtu;
	uint8_t config[NET_CONFIG_SIZE];
	char tap_name[IFNAMSIZ];
	char *sock_path; /* socket: the peer's socket or ours (listen); passt: passt's */
	bool listen; /* socket: wait for a peer instead of connecting */
	char *passt_exe;
	char **passt_argv; /* what passt is started with */
	char *run_dir; /* passt: the folder of its socket (removed with it) */
	pid_t passt_pid;

	/* the host side; fd -1: the link is down */
	int fd; /* the TAP, or the connected stream socket */
	int tx_fd; /* a dup of fd, polled for room while a frame waits to be sent */
	int listen_fd; /* socket, listen = on: the listening socket (on the event loop) */
	bool vnet_hdr; /* TAP with IFF_VNET_HDR: frames carry a virtio_net_hdr; offloads */
	bool stream; /* frames carry a length prefix (passt, socket) */
	bool link_up;
	unsigned tun_offloads; /* TUN_F_* set on the TAP */

	/* receive: a frame read from the host and not yet delivered waits here */
	uint8_t *rx_buf; /* TAP: one frame with its header; stream: NET_STAGE bytes */
	uint32_t rx_len; /* bytes in rx_buf */
	uint32_t rx_off; /* stream: where the next frame's length prefix starts */
	bool rx_held; /* TAP: rx_buf holds a frame of rx_len bytes */
	struct virtio_chain chain, rx_first;
	uint16_t rx_heads[NET_QUEUE_SIZE];
	uint32_t rx_lens[NET_QUEUE_SIZE];

	/* transmit: a frame the host side had no room for, tx_pending_off bytes of it sent */
	uint8_t *tx_pending;
	uint32_t tx_pending_len, tx_pending_off;
	struct iovec iov[NET_QUEUE_SIZE + 2];

	struct net_stats stats;
	bool warned_tx_error;
};

/* The negotiated feature @bit (virtio_mmio_has_feature). */
static inline bool net_has(const struct net *n, unsigned bit)
{
	return virtio_mmio_has_feature(&n->vm, bit);
}

/* Host side (net-backend.c). */
int net_backend_configure(struct net *n, const char *kind, bool check_only);
int net_backend_start(struct net *n);
void net_backend_stop(struct net *n);
/* The link goes down (the peer left, the host refused): worker lock held. */
void net_link_down(struct net *n, const char *why);
/* A connected host fd: the link comes up. Worker lock held. */
void net_link_attach(struct net *n, int fd);
/* TAP offloads for what the driver negotiated (DRIVER_OK) or none (reset). */
void net_tap_offloads(struct net *n);

/* Queues (net-rx.c, net-tx.c): the worker's serve callbacks, worker lock held. */
bool net_rx_serve(struct net *n);
bool net_tx_serve(struct net *n);
/* Drops what waits in either direction (link down). */
void net_rx_discard(struct net *n);
void net_tx_discard(struct net *n);
/* The same for a device reset, the host side staying: on a stream, a frame read or sent in
 * part is kept (net-rx.c, net-tx.c). */
void net_rx_reset(struct net *n);
void net_tx_reset(struct net *n);

/* Snapshots (net-snap.c): the device ops save, load, pause and resume (ABI 1.3). */
int net_save(void *state, struct smol_snap_writer *w);
int net_load(void *state, struct smol_snap_reader *r);
void net_pause(void *state);
void net_resume(void *state);

/* The config space's status field followed link_up: tell the driver. Worker lock held. */
void net_link_changed(struct net *n);

#endif
