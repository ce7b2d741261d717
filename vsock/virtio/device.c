/* SPDX-License-Identifier: Apache-2.0 */
/*
 * device.c - the virtio-vsock protocol engine of one guest: connection
 * table, state machine (REQUEST/RESPONSE, RW, SHUTDOWN, RST, credit), and
 * the queue of what is owed to the guest, served one RX buffer at a time.
 * Rules follow Linux's virtio_transport_common.c: RST for packets that
 * match no connection but never for an RST, duplicate REQUESTs dropped,
 * packets from any CID but the guest's dropped and counted, credit that is
 * the real free space, CREDIT_UPDATE sent unasked as the owner drains.
 * Deadlines (virtio_vsock.h) are kept as the time each wait began and
 * checked by vvs_expire(); a closed connection keeps no queued data.
 */
#include "vsock/virtio/virtio_vsock.h"
#include "vsock/virtio/vvs_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* Tell the guest about freed space once its view of it drops below
 * CREDIT_LOW, in steps of at least CREDIT_STEP unless everything was read. */
#define CREDIT_LOW (64 * 1024)
#define CREDIT_STEP (32 * 1024)
#define FIRST_PORT 49152u

static void (*trace_fn)(const struct vvs_device *d, const struct vvs_hdr *h);

void vvs_set_trace(void (*fn)(const struct vvs_device *d, const struct vvs_hdr *h))
{
	trace_fn = fn;
}

static uint32_t peer_credit(const struct vvs_conn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;

	return in_flight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

static int has_output(const struct vvs_conn *c)
{
	if (c->need_rst || c->need_request || c->need_credit_update)
		return 1;
	if (c->state == VVS_CONNECTED && c->tx.len > 0 && peer_credit(c) > 0)
		return 1;
	return (c->need_shutdown || c->need_shutdown_send) && c->tx.len == 0;
}

static void enqueue(struct vvs_conn *c)
{
	struct vvs_device *d = c->dev;

	c->queued = 1;
	c->next_out = NULL;
	if (d->out_tail)
		d->out_tail->next_out = c;
	else
		d->out_head = c;
	d->out_tail = c;
}

static void schedule(struct vvs_conn *c)
{
	if (c->queued || !has_output(c))
		return;
	enqueue(c);
	if (c->dev->ops->output != NULL)
		c->dev->ops->output(c->dev);
}

static void unlink_out(struct vvs_conn *c)
{
	struct vvs_device *d = c->dev;
	struct vvs_conn *prev = NULL;

	if (!c->queued)
		return;
	for (struct vvs_conn *i = d->out_head; i; prev = i, i = i->next_out) {
		if (i != c)
			continue;
		if (prev)
			prev->next_out = c->next_out;
		else
			d->out_head = c->next_out;
		if (d->out_tail == c)
			d->out_tail = prev;
		break;
	}
	c->queued = 0;
}

static struct vvs_conn *find(struct vvs_device *d, uint32_t host_port, uint32_t guest_port)
{
	for (unsigned i = 0; i < d->nconns; i++)
		if (d->conns[i]->host_port == host_port && d->conns[i]->guest_port == guest_port)
			return d->conns[i];
	return NULL;
}

static void free_conn(struct vvs_conn *c)
{
	struct vvs_device *d = c->dev;

	unlink_out(c);
	for (unsigned i = 0; i < d->nconns; i++) {
		if (d->conns[i] == c) {
			d->conns[i] = d->conns[--d->nconns];
			break;
		}
	}
	vvs_queue_free(&c->rx);
	vvs_queue_free(&c->tx);
	free(c);
}

/* The device's clock: its owner's, or the time vvs_expire() last got. */
static uint64_t now(struct vvs_device *d)
{
	return d->ops->now_ms != NULL ? d->ops->now_ms(d) : d->now_ms;
}

static void queue_rst(struct vvs_device *d, uint32_t host_port, uint32_t guest_port)
{
	if (d->nrsts == sizeof(d->rsts) / sizeof(d->rsts[0])) {
		d->st.rst_dropped++;
		return;
	}
	d->rsts[d->nrsts++] = (struct vvs_rst){ host_port, guest_port };
	if (d->ops->output != NULL)
		d->ops->output(d);
}

/* Closed from our side: nothing more goes out but an RST, nothing queued
 * is kept; the RST's wait for an RX buffer starts now. */
static void close_with_rst(struct vvs_conn *c)
{
	c->state = VVS_CLOSED;
	c->need_request = c->need_shutdown = c->need_credit_update = 0;
	c->need_shutdown_send = 0;
	c->need_rst = 1;
	c->since = now(c->dev);
	vvs_queue_free(&c->tx);
	schedule(c);
}

/* Reset a connection from our side: RST to the guest, `closed` to the owner. */
static void conn_reset(struct vvs_conn *c, const char *why)
{
	int had_owner = !c->released;

	close_with_rst(c);
	if (had_owner && c->dev->ops->closed != NULL)
		c->dev->ops->closed(c, why);
}

/* The guest did not answer our REQUEST in time. */
static void connect_expired(struct vvs_conn *c)
{
	int had_owner = !c->released;

	c->dev->st.connect_timeouts++;
	close_with_rst(c);
	if (had_owner && c->dev->ops->connected != NULL)
		c->dev->ops->connected(c, -ETIMEDOUT);
}

void vvs_device_init(struct vvs_device *d, uint64_t guest_cid, const struct vvs_ops *ops, void *data)
{
	memset(d, 0, sizeof(*d));
	d->guest_cid = guest_cid;
	d->ops = ops;
	d->data = data;
	d->next_port = FIRST_PORT;
	d->connect_timeout_ms = VVS_CONNECT_TIMEOUT_MS;
	d->close_timeout_ms = VVS_CLOSE_TIMEOUT_MS;
}

void vvs_device_reset(struct vvs_device *d, const char *why)
{
	struct vvs_conn *all[VVS_MAX_CONNS];
	unsigned n = d->nconns;

	memcpy(all, d->conns, n * sizeof(all[0]));
	d->out_head = d->out_tail = NULL;
	d->nrsts = 0;
	for (unsigned i = 0; i < n; i++) {
		all[i]->queued = 0;
		all[i]->state = VVS_CLOSED;
		all[i]->need_request = all[i]->need_shutdown = 0;
		all[i]->need_credit_update = all[i]->need_rst = 0;
		all[i]->need_shutdown_send = 0;
	}
	for (unsigned i = 0; i < n; i++) {
		if (all[i]->released)
			free_conn(all[i]);
		else if (d->ops->closed != NULL)
			d->ops->closed(all[i], why);
	}
}

/* ---- the owner's side ---- */

struct vvs_conn *vvs_connect(struct vvs_device *d, uint32_t guest_port, void *data)
{
	struct vvs_conn *c;
	uint32_t port;

	if (d->nconns == VVS_MAX_CONNS)
		return NULL;
	do {
		port = d->next_port;
		d->next_port = d->next_port == 0xffffffffu ? FIRST_PORT : d->next_port + 1;
	} while (find(d, port, guest_port) != NULL);
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->dev = d;
	c->host_port = port;
	c->guest_port = guest_port;
	c->data = data;
	c->state = VVS_CONNECTING;
	c->need_request = 1;
	c->since = now(d);
	d->conns[d->nconns++] = c;
	schedule(c);
	return c;
}

/* The owner's bytes for vvs_writev, and how far into them. */
struct gather {
	const struct iovec *iov;
	unsigned i;
	size_t off;
};

/* Copy the next len bytes (there are that many) to dst, if any, and step
 * over them. */
static void gather_take(struct gather *g, uint8_t *dst, size_t len)
{
	while (len > 0) {
		size_t k = g->iov[g->i].iov_len - g->off;

		if (k > len)
			k = len;
		if (dst != NULL) {
			memcpy(dst, (const uint8_t *)g->iov[g->i].iov_base + g->off, k);
			dst += k;
		}
		g->off += k;
		len -= k;
		if (g->off == g->iov[g->i].iov_len) {
			g->i++;
			g->off = 0;
		}
	}
}

static size_t write_direct(struct vvs_conn *c, struct gather *g, size_t len);

/* What the owner may hand over now: queue space, and once connected no
 * more than the guest's credit still covers, so that data waits in the
 * owner's own buffer (a socket) rather than being copied into ours first. */
static size_t write_room(const struct vvs_conn *c)
{
	size_t room = vvs_queue_room(&c->tx);

	if (c->state == VVS_CONNECTED) {
		uint32_t credit = peer_credit(c);
		size_t covered = credit > c->tx.len ? credit - c->tx.len : 0;

		if (room > covered)
			room = covered;
	}
	return room;
}

/* After a short write, tell the owner once a good step of room is back:
 * a quarter of the smaller of the guest's buffer and ours. */
static void maybe_writable(struct vvs_conn *c)
{
	uint32_t window = c->peer_buf_alloc < VVS_BUF ? c->peer_buf_alloc : VVS_BUF;
	size_t step = window / 4 > 0 ? window / 4 : 1;

	if (!c->tx_full || c->released || c->state != VVS_CONNECTED || write_room(c) < step)
		return;
	c->tx_full = 0;
	if (c->dev->ops->writable != NULL)
		c->dev->ops->writable(c);
}

size_t vvs_writev(struct vvs_conn *c, const struct iovec *iov, unsigned niov)
{
	struct gather g = { iov, 0, 0 };
	size_t room, n, len = 0;

	if (c->released || c->send_done || c->state == VVS_CLOSED || c->state == VVS_CLOSING)
		return 0;
	for (unsigned i = 0; i < niov; i++)
		len += iov[i].iov_len;
	room = write_room(c);
	if (room < len) {
		len = room;
		c->tx_full = 1;
	}
	n = write_direct(c, &g, len);
	while (n < len) {
		size_t k = iov[g.i].iov_len - g.off < len - n ? iov[g.i].iov_len - g.off : len - n;
		size_t got = vvs_queue_push(&c->tx, (const uint8_t *)iov[g.i].iov_base + g.off, k);

		gather_take(&g, NULL, got);
		n += got;
		if (got < k)
			break;
	}
	if (n < len)
		c->tx_full = 1;
	schedule(c);
	return n;
}

size_t vvs_write(struct vvs_conn *c, const void *p, size_t len)
{
	struct iovec v = { (void *)p, len };

	return vvs_writev(c, &v, 1);
}

/* Does the guest, counting what it has sent, think we are nearly full
 * while we have in fact freed a good step of space (or all of it) since we
 * last told it? Then say so without being asked: Linux never asks. */
static void maybe_credit_update(struct vvs_conn *c)
{
	uint32_t received = c->fwd_cnt + (uint32_t)c->rx.len;
	uint32_t guest_view_used = received - c->fwd_cnt_sent;
	uint32_t guest_view_free = guest_view_used >= VVS_BUF ? 0 : VVS_BUF - guest_view_used;
	uint32_t freed = c->fwd_cnt - c->fwd_cnt_sent;

	if (freed > 0 && guest_view_free < CREDIT_LOW && (freed >= CREDIT_STEP || c->rx.len == 0)) {
		c->need_credit_update = 1;
		schedule(c);
	}
}

size_t vvs_write_room(struct vvs_conn *c)
{
	size_t room;

	if (c->released || c->send_done || c->state == VVS_CLOSED || c->state == VVS_CLOSING)
		return 0;
	room = write_room(c);
	if (room == 0)
		c->tx_full = 1;     /* the owner waits: call `writable` later */
	return room;
}

size_t vvs_peek(const struct vvs_conn *c, void *p, size_t cap)
{
	return vvs_queue_peek(&c->rx, p, cap);
}

void vvs_consume(struct vvs_conn *c, size_t n)
{
	vvs_read(c, NULL, n);
}

size_t vvs_read(struct vvs_conn *c, void *p, size_t cap)
{
	size_t n = vvs_queue_pop(&c->rx, p, cap);

	c->fwd_cnt += (uint32_t)n;
	if (n > 0 && c->state != VVS_CLOSED)
		maybe_credit_update(c);
	return n;
}

size_t vvs_readable(const struct vvs_conn *c)
{
	return c->rx.len;
}

int vvs_eof(const struct vvs_conn *c)
{
	return c->rx.len == 0 && (c->state == VVS_CLOSED || (c->peer_shutdown & VVS_SHUTDOWN_SEND));
}

void vvs_shutdown_send(struct vvs_conn *c)
{
	if (c->send_done || c->released || c->state != VVS_CONNECTED)
		return;
	c->send_done = 1;
	c->need_shutdown_send = 1;
	schedule(c);
}

void vvs_release(struct vvs_conn *c)
{
	c->released = 1;
	c->data = NULL;
	/* unread data is dropped by the owner's choice: count it consumed */
	c->fwd_cnt += (uint32_t)c->rx.len;
	vvs_queue_free(&c->rx);
	switch (c->state) {
	case VVS_CLOSED:
		if (!c->need_rst)
			free_conn(c);
		break;
	case VVS_CONNECTING:
		conn_reset(c, "released while connecting");
		break;
	case VVS_CONNECTED:
		c->need_shutdown = 1;        /* says "will not send" too */
		c->need_shutdown_send = 0;
		c->since = now(c->dev);
		schedule(c);
		break;
	case VVS_CLOSING:
		break;
	}
}

/* Act on c's deadline if it passed; c may be gone afterwards. */
static void expire_one(struct vvs_conn *c, uint64_t now_ms)
{
	struct vvs_device *d = c->dev;
	uint64_t waited = now_ms - c->since;

	switch (c->state) {
	case VVS_CONNECTING:
		if (waited >= d->connect_timeout_ms)
			connect_expired(c);
		break;
	case VVS_CONNECTED:
	case VVS_CLOSING:
		if (c->released && waited >= d->close_timeout_ms) {
			d->st.close_timeouts++;
			conn_reset(c, "guest did not close in time");
		}
		break;
	case VVS_CLOSED:
		/* released, its RST still owed: the guest takes no packets, so
		 * the RST waits in the device's queue and the slot is free */
		if (c->released && waited >= d->close_timeout_ms) {
			queue_rst(d, c->host_port, c->guest_port);
			free_conn(c);
		}
		break;
	}
}

void vvs_expire(struct vvs_device *d, uint64_t now_ms)
{
	unsigned i = 0;

	d->now_ms = now_ms;
	/* callbacks may release, free or open connections: look at slot i
	 * again whenever what it held is gone */
	while (i < d->nconns) {
		struct vvs_conn *c = d->conns[i];

		expire_one(c, now_ms);
		if (i < d->nconns && d->conns[i] == c)
			i++;
	}
}

/* ---- packets from the guest ---- */

static void on_rw(struct vvs_conn *c, const uint8_t *payload, size_t len)
{
	if (c->state != VVS_CONNECTED && c->state != VVS_CLOSING) {
		c->dev->st.early_data++;
		conn_reset(c, "data before the connection was established");
		return;
	}
	if (len > vvs_queue_room(&c->rx)) {
		c->dev->st.credit_overrun++;
		conn_reset(c, "guest sent more than its credit");
		return;
	}
	c->dev->st.rx_bytes += len;
	if (c->released) {
		c->fwd_cnt += (uint32_t)len;   /* nobody reads: consumed at once */
		maybe_credit_update(c);
		return;
	}
	if (c->rx.len == 0 && c->dev->ops->deliver != NULL) {
		size_t taken = c->dev->ops->deliver(c, payload, len);

		c->fwd_cnt += (uint32_t)taken;
		maybe_credit_update(c);
		payload += taken;
		len -= taken;
		if (len == 0)
			return;
	}
	if (vvs_queue_push(&c->rx, payload, len) != len) {
		conn_reset(c, "out of memory for received data");
		return;
	}
	if (c->dev->ops->readable != NULL)
		c->dev->ops->readable(c);
}

static void on_rst(struct vvs_conn *c)
{
	enum vvs_state was = c->state;

	c->state = VVS_CLOSED;
	c->need_request = c->need_shutdown = c->need_credit_update = c->need_rst = 0;
	c->need_shutdown_send = 0;
	unlink_out(c);
	vvs_queue_free(&c->tx);
	if (c->released)
		free_conn(c);
	else if (was == VVS_CONNECTING && c->dev->ops->connected != NULL)
		c->dev->ops->connected(c, -ECONNREFUSED);
	else if (c->dev->ops->closed != NULL)
		c->dev->ops->closed(c, "guest reset the connection");
}

static void on_shutdown(struct vvs_conn *c, uint32_t flags)
{
	c->peer_shutdown |= flags & (VVS_SHUTDOWN_RCV | VVS_SHUTDOWN_SEND);
	if (c->state == VVS_CLOSING || c->released) {
		/* both sides are done: finish with RST, as Linux does */
		conn_reset(c, "closed");
		return;
	}
	if ((flags & VVS_SHUTDOWN_SEND) && c->dev->ops->readable != NULL)
		c->dev->ops->readable(c);      /* EOF after what is queued */
}

void vvs_input(struct vvs_device *d, const uint8_t *raw, const uint8_t *payload, size_t len)
{
	struct vvs_hdr h;
	struct vvs_conn *c;

	vvs_hdr_decode(raw, &h);
	d->st.rx_pkts++;
	if (trace_fn != NULL)
		trace_fn(d, &h);
	if (h.src_cid != d->guest_cid || h.dst_cid != VVS_HOST_CID) {
		d->st.bad_cid++;
		return;
	}
	c = find(d, h.dst_port, h.src_port);
	if (h.len != len || h.len > VVS_MAX_PAYLOAD || h.type != VVS_TYPE_STREAM) {
		if (h.type != VVS_TYPE_STREAM)
			d->st.bad_type++;
		else
			d->st.bad_len++;
		if (h.op == VVS_OP_RST)
			return;
		if (c != NULL && c->state != VVS_CLOSED)
			conn_reset(c, "malformed packet from the guest");
		else if (c == NULL)
			queue_rst(d, h.dst_port, h.src_port);
		return;
	}
	if (c == NULL || c->state == VVS_CLOSED) {
		d->st.no_conn++;
		if (c == NULL && h.op != VVS_OP_RST)
			queue_rst(d, h.dst_port, h.src_port);
		return;
	}
	c->peer_buf_alloc = h.buf_alloc;
	c->peer_fwd_cnt = h.fwd_cnt;
	switch (h.op) {
	case VVS_OP_REQUEST:
		d->st.dup_request++;
		break;
	case VVS_OP_RESPONSE:
		if (c->state == VVS_CONNECTING) {
			c->state = VVS_CONNECTED;
			if (!c->released && d->ops->connected != NULL)
				d->ops->connected(c, 0);
		}
		break;
	case VVS_OP_RST:
		on_rst(c);
		return;
	case VVS_OP_SHUTDOWN:
		on_shutdown(c, h.flags);
		return;
	case VVS_OP_RW:
		on_rw(c, payload, len);
		if (c->state == VVS_CLOSED)
			return;
		break;
	case VVS_OP_CREDIT_UPDATE:
		break;
	case VVS_OP_CREDIT_REQUEST:
		c->need_credit_update = 1;
		break;
	default:
		d->st.bad_op++;
		conn_reset(c, "invalid op from the guest");
		return;
	}
	schedule(c);   /* credit may have opened, or a reply is owed */
	maybe_writable(c);
}

/* ---- packets to the guest ---- */

static void base_hdr(const struct vvs_conn *c, struct vvs_hdr *h, uint16_t op)
{
	memset(h, 0, sizeof(*h));
	h->src_cid = VVS_HOST_CID;
	h->dst_cid = c->dev->guest_cid;
	h->src_port = c->host_port;
	h->dst_port = c->guest_port;
	h->type = VVS_TYPE_STREAM;
	h->op = op;
	h->buf_alloc = VVS_BUF;
	h->fwd_cnt = c->fwd_cnt;
}

/* Payload bytes of the next RW packet: what is there, within the guest's
 * credit, the buffer and the largest packet. */
static size_t rw_size(const struct vvs_conn *c, size_t avail, size_t cap)
{
	size_t n = avail;
	uint32_t credit = peer_credit(c);

	if (n > credit)
		n = credit;
	if (n > cap - VVS_HDR_SIZE)
		n = cap - VVS_HDR_SIZE;
	if (n > VVS_MAX_PAYLOAD)
		n = VVS_MAX_PAYLOAD;
	return n;
}

/* Write the header of a packet going out; every packet carries fwd_cnt. */
static void finish_packet(struct vvs_conn *c, const struct vvs_hdr *h, uint8_t *buf)
{
	if (h->op == VVS_OP_RW) {
		c->tx_cnt += h->len;
		c->dev->st.tx_bytes += h->len;
	}
	c->need_credit_update = 0;
	c->fwd_cnt_sent = c->fwd_cnt;
	vvs_hdr_encode(h, buf);
	c->dev->st.tx_pkts++;
	if (trace_fn != NULL)
		trace_fn(c->dev, h);
}

/* Nothing else waits to go out: put the owner's data straight into the
 * guest's RX buffers, as far as its credit and buffers go, each filled
 * from as many of the owner's pieces as fit. */
static size_t write_direct(struct vvs_conn *c, struct gather *g, size_t len)
{
	struct vvs_device *d = c->dev;
	size_t done = 0;

	if (d->ops->rx_buffer == NULL || d->out_head != NULL || d->nrsts > 0 ||
	    c->state != VVS_CONNECTED || c->tx.len > 0)
		return 0;
	while (done < len && peer_credit(c) > 0) {
		struct vvs_hdr h;
		size_t cap;
		uint8_t *buf = d->ops->rx_buffer(d, &cap, done == 0);

		if (buf == NULL)
			break;
		base_hdr(c, &h, VVS_OP_RW);
		h.len = (uint32_t)rw_size(c, len - done, cap);
		gather_take(g, buf + VVS_HDR_SIZE, h.len);
		finish_packet(c, &h, buf);
		d->ops->rx_commit(d, VVS_HDR_SIZE + h.len);
		done += h.len;
	}
	return done;
}

/* The next packet of c into buf; 0 if c owes nothing now. *gone is set
 * when c was freed (its RST went out after its owner released it). */
static size_t emit(struct vvs_conn *c, uint8_t *buf, size_t cap, int *gone)
{
	struct vvs_device *d = c->dev;
	struct vvs_hdr h;
	size_t n = 0;

	*gone = 0;
	if (c->need_rst) {
		base_hdr(c, &h, VVS_OP_RST);
		c->need_rst = 0;
		d->st.rst_sent++;
	} else if (c->need_request) {
		base_hdr(c, &h, VVS_OP_REQUEST);
		c->need_request = 0;
	} else if (c->state == VVS_CONNECTED && c->tx.len > 0 && peer_credit(c) > 0) {
		base_hdr(c, &h, VVS_OP_RW);
		n = vvs_queue_pop(&c->tx, buf + VVS_HDR_SIZE, rw_size(c, c->tx.len, cap));
		h.len = (uint32_t)n;
		if (c->released)
			c->since = now(d);     /* progress: the close deadline starts again */
	} else if (c->need_shutdown && c->tx.len == 0) {
		base_hdr(c, &h, VVS_OP_SHUTDOWN);
		h.flags = VVS_SHUTDOWN_RCV | VVS_SHUTDOWN_SEND;
		c->need_shutdown = 0;
		c->state = VVS_CLOSING;
		c->since = now(d);
	} else if (c->need_shutdown_send && c->tx.len == 0) {
		base_hdr(c, &h, VVS_OP_SHUTDOWN);
		h.flags = VVS_SHUTDOWN_SEND;   /* we still receive */
		c->need_shutdown_send = 0;
	} else if (c->need_credit_update) {
		base_hdr(c, &h, VVS_OP_CREDIT_UPDATE);
		d->st.credit_updates_sent++;
	} else {
		return 0;
	}
	finish_packet(c, &h, buf);
	if (h.op == VVS_OP_RST && c->released) {
		free_conn(c);
		*gone = 1;
	} else if (h.op == VVS_OP_RW) {
		maybe_writable(c);
	}
	return VVS_HDR_SIZE + n;
}

size_t vvs_output(struct vvs_device *d, uint8_t *buf, size_t cap)
{
	struct vvs_conn *c;

	if (cap < VVS_HDR_SIZE)
		return 0;
	if (d->nrsts > 0) {
		struct vvs_rst r = d->rsts[0];
		struct vvs_hdr h = {
			.src_cid = VVS_HOST_CID, .dst_cid = d->guest_cid, .src_port = r.host_port,
			.dst_port = r.guest_port, .type = VVS_TYPE_STREAM, .op = VVS_OP_RST,
		};

		memmove(d->rsts, d->rsts + 1, --d->nrsts * sizeof(d->rsts[0]));
		vvs_hdr_encode(&h, buf);
		d->st.tx_pkts++;
		d->st.rst_sent++;
		if (trace_fn != NULL)
			trace_fn(d, &h);
		return VVS_HDR_SIZE;
	}
	while ((c = d->out_head) != NULL) {
		int gone;
		size_t n;

		d->out_head = c->next_out;
		if (d->out_head == NULL)
			d->out_tail = NULL;
		c->queued = 0;
		n = emit(c, buf, cap, &gone);
		if (!gone && has_output(c) && !c->queued)
			enqueue(c);     /* round robin: to the back of the line */
		if (n > 0)
			return n;
	}
	return 0;
}
