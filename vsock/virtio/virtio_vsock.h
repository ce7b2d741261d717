/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio_vsock.h - the virtio-vsock protocol as the device (host) side
 * speaks it to one guest, independent of how packets move: the 44-byte
 * packet header, the connection table and state machine, and credit-based
 * flow control. The virtqueue layer hands in the guest's TX packets
 * (vvs_input) and asks for packets to fill the guest's RX buffers
 * (vvs_output), of whatever size the guest posted.
 *
 * Only stream sockets, and only host-initiated connections (the relay
 * connects to the guest's adbd); a guest REQUEST to the host gets RST.
 * Credit given to the guest is exactly the free receive space, and
 * CREDIT_UPDATE goes out on its own as the owner drains data.
 *
 * What a guest can make the device hold, whatever it writes in its
 * fields: VVS_MAX_CONNS connections (the owner's), each with at most
 * VVS_BUF received bytes (the credit we grant; a byte more is an overrun:
 * RST) and VVS_BUF bytes to send (taken from the owner only as far as the
 * guest's credit covers it), in 64 KiB chunks (the ones to send freed
 * once the connection is closed, the received ones once its owner lets it
 * go); and 64 owed RSTs. Every wait on the guest has a deadline,
 * checked by vvs_expire(): an answer to REQUEST within connect_timeout_ms;
 * after the owner's release, progress (its data taken, SHUTDOWN answered)
 * within close_timeout_ms; an RST owed to a guest that takes no packets
 * moves, once close_timeout_ms old, to the bounded RST queue, so its
 * connection's slot is free again. What the guest gets wrong is counted
 * in vvs_stats.
 */
#ifndef VSOCK_VIRTIO_VSOCK_H
#define VSOCK_VIRTIO_VSOCK_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define VVS_HDR_SIZE 44
#define VVS_HOST_CID 2
#define VVS_MAX_PAYLOAD (64 * 1024)
#define VVS_MAX_PKT (VVS_HDR_SIZE + VVS_MAX_PAYLOAD)
#define VVS_CHUNK (64 * 1024)
#define VVS_CHUNKS 4
#define VVS_BUF (VVS_CHUNK * VVS_CHUNKS)   /* buf_alloc we advertise: 256 KiB */
#define VVS_MAX_CONNS 256

enum vvs_op {
	VVS_OP_INVALID = 0, VVS_OP_REQUEST, VVS_OP_RESPONSE, VVS_OP_RST, VVS_OP_SHUTDOWN,
	VVS_OP_RW, VVS_OP_CREDIT_UPDATE, VVS_OP_CREDIT_REQUEST,
};
#define VVS_TYPE_STREAM 1
#define VVS_SHUTDOWN_RCV 1u
#define VVS_SHUTDOWN_SEND 2u

struct vvs_hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port;
	uint32_t len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
};

void vvs_hdr_encode(const struct vvs_hdr *h, uint8_t out[VVS_HDR_SIZE]);
void vvs_hdr_decode(const uint8_t in[VVS_HDR_SIZE], struct vvs_hdr *h);
/* One line in the style of the kernel's vsock trace events:
 * "3:5555 -> 2:1024 len=50 type=STREAM op=RW flags=0x0 buf_alloc=262144 fwd_cnt=7336588" */
void vvs_hdr_format(const struct vvs_hdr *h, char *buf, size_t len);

/* Packet trace: when set, fn sees every packet of every device, both ways
 * (src_cid tells which), as it is taken from or given to the guest. */
struct vvs_device;
void vvs_set_trace(void (*fn)(const struct vvs_device *d, const struct vvs_hdr *h));

/* A byte queue of VVS_CHUNKS chunks, allocated when first needed and
 * released when empty. */
struct vvs_queue {
	uint8_t *chunk[VVS_CHUNKS];
	size_t head, len;                 /* read offset within the ring, bytes held */
};

enum vvs_state {
	VVS_CONNECTING,   /* REQUEST sent, waiting for RESPONSE */
	VVS_CONNECTED,
	VVS_CLOSING,      /* we sent SHUTDOWN, waiting for the guest's RST/SHUTDOWN */
	VVS_CLOSED,       /* gone from the table once the owner released it */
};

struct vvs_device;

struct vvs_conn {
	struct vvs_device *dev;
	uint32_t host_port, guest_port;
	enum vvs_state state;
	void *data;                        /* the owner's */
	const struct vvs_ops *owner_ops;   /* the owner's own callbacks (vhu_connect),
					    * NULL: the device user's */

	/* guest -> host */
	struct vvs_queue rx;               /* received, not yet taken by the owner */
	uint32_t fwd_cnt;                  /* bytes the owner has taken */
	uint32_t fwd_cnt_sent;             /* fwd_cnt last told to the guest */
	uint32_t peer_shutdown;            /* VVS_SHUTDOWN_* flags from the guest */

	/* host -> guest */
	struct vvs_queue tx;               /* accepted from the owner, not yet sent */
	uint32_t tx_cnt;                   /* bytes sent to the guest */
	uint32_t peer_buf_alloc, peer_fwd_cnt;
	uint64_t since;                    /* ms (the device's clock) the wait on the
					    * guest began: connect, release, the last
					    * progress after it, reset */

	/* control packets owed to the guest, and bookkeeping */
	unsigned need_credit_update : 1, need_request : 1, need_shutdown : 1, need_rst : 1;
	unsigned need_shutdown_send : 1;   /* SHUTDOWN "will not send" owed, after tx */
	unsigned queued : 1, released : 1, tx_full : 1;
	unsigned send_done : 1;            /* the owner will write no more */
	struct vvs_conn *next_out;         /* in the device's output list */
};

/* What the device tells its owner (the relay). Callbacks may call back
 * into the device; `closed` is the last callback of a connection, whose
 * owner must then vvs_release() it (inside the callback or later). */
struct vvs_ops {
	void (*connected)(struct vvs_conn *c, int status);  /* 0, or -ECONNREFUSED */
	void (*readable)(struct vvs_conn *c);               /* rx has data or EOF */
	void (*writable)(struct vvs_conn *c);               /* tx has room again (after a
							       * short vvs_write or no room) */
	void (*closed)(struct vvs_conn *c, const char *why);/* guest reset or closed */
	void (*output)(struct vvs_device *d);               /* packets wait for RX buffers */

	/* Optional, the owner's: take data straight from the guest's packet
	 * while nothing is queued for it; returns the bytes taken (they count
	 * as read), the rest is queued and `readable` follows. It must not
	 * call into the device. */
	size_t (*deliver)(struct vvs_conn *c, const uint8_t *p, size_t len);
	/* Optional, the ring layer's: the guest's next RX buffer as one
	 * writable area of *cap (> VVS_HDR_SIZE) bytes, or NULL; every buffer
	 * given is then returned with rx_commit and the bytes written. With
	 * them, vvs_write puts data straight into guest buffers when nothing
	 * else waits to go out, instead of queueing it. `first` is set for
	 * the first buffer of each write: the ring layer may keep what it
	 * learnt of guest memory from one buffer of a write to the next, and
	 * no longer. */
	uint8_t *(*rx_buffer)(struct vvs_device *d, size_t *cap, int first);
	void (*rx_commit)(struct vvs_device *d, size_t len);
	/* Optional: a monotonic clock in ms, the one vvs_expire() is given;
	 * without it, deadlines start at the time vvs_expire() last got. */
	uint64_t (*now_ms)(struct vvs_device *d);
};

struct vvs_stats {
	uint64_t rx_pkts, tx_pkts, rx_bytes, tx_bytes;
	uint64_t bad_cid, bad_type, bad_op, bad_len, rst_sent, rst_dropped;
	uint64_t credit_overrun, dup_request, credit_updates_sent, close_timeouts;
	uint64_t no_conn;                  /* packets for no connection (RST back) */
	uint64_t early_data;               /* data before the guest's RESPONSE */
	uint64_t connect_timeouts;         /* REQUESTs the guest did not answer */
};

/* An RST owed for a packet that matched no connection. */
struct vvs_rst {
	uint32_t host_port, guest_port;
};

struct vvs_device {
	uint64_t guest_cid;
	const struct vvs_ops *ops;
	void *data;
	struct vvs_conn *conns[VVS_MAX_CONNS];
	unsigned nconns;
	uint32_t next_port;
	struct vvs_conn *out_head, *out_tail;
	struct vvs_rst rsts[64];           /* bounded: beyond, RSTs are dropped and counted */
	unsigned nrsts;
	uint64_t now_ms;                   /* as last given to vvs_expire() */
	uint32_t connect_timeout_ms, close_timeout_ms;   /* the defaults below */
	struct vvs_stats st;
};

void vvs_device_init(struct vvs_device *d, uint64_t guest_cid, const struct vvs_ops *ops, void *data);
/* Forget every connection (VMM gone): owners get `closed`. */
void vvs_device_reset(struct vvs_device *d, const char *why);

/* Open a stream to the guest's port. NULL if the table is full. */
struct vvs_conn *vvs_connect(struct vvs_device *d, uint32_t guest_port, void *data);
/* Take up to len bytes for the guest, straight into its RX buffers when
 * nothing else waits, else into the queue; returns how many were taken.
 * Once connected, only what the guest's credit covers is taken, so data
 * beyond it stays with the owner; after a short write, wait for `writable`. */
size_t vvs_write(struct vvs_conn *c, const void *p, size_t len);
/* vvs_write of the niov pieces in turn, as one: an RX buffer takes bytes
 * of as many pieces as fit. */
size_t vvs_writev(struct vvs_conn *c, const struct iovec *iov, unsigned niov);
/* Room for vvs_write now; after 0, `writable` says when there is again. */
size_t vvs_write_room(struct vvs_conn *c);
/* Take up to cap bytes the guest sent; returns how many. */
size_t vvs_read(struct vvs_conn *c, void *p, size_t cap);
/* Copy up to cap bytes without taking them; vvs_consume() takes n bytes
 * (and gives the guest its credit back). */
size_t vvs_peek(const struct vvs_conn *c, void *p, size_t cap);
void vvs_consume(struct vvs_conn *c, size_t n);
size_t vvs_readable(const struct vvs_conn *c);
/* The guest will send no more and nothing is left to read. */
int vvs_eof(const struct vvs_conn *c);
/* The owner will write no more (its peer half-closed): SHUTDOWN with
 * "will not send" once queued data is out; the guest's data still comes. */
void vvs_shutdown_send(struct vvs_conn *c);
/* The owner is done: SHUTDOWN once queued data is out, then forgotten;
 * no callbacks after this. */
void vvs_release(struct vvs_conn *c);

/* Advance the device's clock and act on the deadlines that passed: a
 * REQUEST unanswered for connect_timeout_ms is reset (RST to the guest,
 * `connected` with -ETIMEDOUT to the owner); a released connection that
 * made no progress for close_timeout_ms is reset (as Linux does 8 s after
 * an unanswered SHUTDOWN). Call it about once a second while the device
 * has connections: a deadline then fires within a second of its time. */
#define VVS_CONNECT_TIMEOUT_MS 8000
#define VVS_CLOSE_TIMEOUT_MS 8000
void vvs_expire(struct vvs_device *d, uint64_t now_ms);

/* One packet from the guest's TX queue: header and payload (the payload
 * may be shorter than hdr->len only if the chain was; that is an error). */
void vvs_input(struct vvs_device *d, const uint8_t *hdr, const uint8_t *payload, size_t len);
/* Fill one guest RX buffer of `cap` bytes (>= VVS_HDR_SIZE) with the next
 * packet: header plus as much data as fits. Returns bytes written, 0 when
 * nothing is owed to the guest. */
size_t vvs_output(struct vvs_device *d, uint8_t *buf, size_t cap);

#endif
