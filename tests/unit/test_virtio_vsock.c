/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_virtio_vsock.c - the virtio-vsock protocol engine against a scripted
 * guest: header codec and trace line, connect / refuse, RST rules, CID
 * filtering, host-to-guest data coalesced into 4 KiB and 64 KiB receive
 * buffers (queued, and written straight in from several pieces at once),
 * the guest's credit respected, one-way guest-to-host flows that
 * never stall (credit updates unasked), credit overrun, CREDIT_REQUEST,
 * shutdown and close timeout, duplicate REQUEST, device reset, and memory
 * returned when queues drain. A hostile guest: REQUESTs it never answers
 * (300, more than the table holds) time out and free their slots, also
 * when it takes no packets at all; a released connection it gives no
 * credit is reset after the close timeout; lies in every credit field
 * never make the device hold more than VVS_BUF each way per connection,
 * and a closed connection holds nothing. A guest thread rewriting a
 * packet's header (length, type, op) while the device takes it: the header
 * is decoded once, so no more than the packet's bytes are ever taken.
 */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vsock/virtio/virtio_vsock.h"
#include "tests/unit/unit.h"

#define GUEST_CID 3
#define ADB_PORT 5555

static struct vvs_device dev;
static struct {
	int connected, connect_status, readable, writable, closed, output;
	char why[64];
	struct vvs_conn *last;
	int release_in_closed;
	int release_on_failure;        /* a refused or timed-out connect */
} ev;

static void on_connected(struct vvs_conn *c, int status)
{
	ev.connected++;
	ev.connect_status = status;
	ev.last = c;
	if (status != 0 && ev.release_on_failure)
		vvs_release(c);
}

static void on_readable(struct vvs_conn *c)
{
	(void)c;
	ev.readable++;
}

static void on_writable(struct vvs_conn *c)
{
	(void)c;
	ev.writable++;
}

static void on_closed(struct vvs_conn *c, const char *why)
{
	ev.closed++;
	snprintf(ev.why, sizeof(ev.why), "%s", why);
	if (ev.release_in_closed)
		vvs_release(c);
}

static void on_output(struct vvs_device *d)
{
	(void)d;
	ev.output++;
}

/* The ring layer's direct path, off unless a test sets rx.cap: RX buffers
 * of rx.cap bytes, the payloads written into them appended to rx.got. */
static struct {
	size_t cap, got, pkts, full;   /* full: packets that filled their buffer */
	uint8_t buf[VVS_MAX_PKT], data[1u << 18];
} rx;

static uint8_t *on_rx_buffer(struct vvs_device *d, size_t *cap, int first)
{
	(void)d;
	(void)first;
	*cap = rx.cap;
	return rx.cap > 0 ? rx.buf : NULL;
}

static void on_rx_commit(struct vvs_device *d, size_t len)
{
	struct vvs_hdr h;

	(void)d;
	vvs_hdr_decode(rx.buf, &h);
	ck_assert_uint_eq(h.op, VVS_OP_RW);
	ck_assert_uint_eq(h.len, len - VVS_HDR_SIZE);
	ck_assert_uint_le(rx.got + h.len, sizeof(rx.data));
	memcpy(rx.data + rx.got, rx.buf + VVS_HDR_SIZE, h.len);
	rx.got += h.len;
	rx.pkts++;
	rx.full += len == rx.cap;
}

static const struct vvs_ops ops = {
	.connected = on_connected, .readable = on_readable, .writable = on_writable,
	.closed = on_closed, .output = on_output,
	.rx_buffer = on_rx_buffer, .rx_commit = on_rx_commit,
};

static void setup(void)
{
	memset(&ev, 0, sizeof(ev));
	rx.cap = rx.got = rx.pkts = rx.full = 0;
	vvs_device_init(&dev, GUEST_CID, &ops, NULL);
}

static void teardown(void)
{
	ev.release_in_closed = 1;
	vvs_device_reset(&dev, "test over");
	ck_assert_uint_eq(dev.nconns, 0);
}

/* ---- the scripted guest ---- */

static void guest_send(uint64_t src_cid, uint32_t src_port, uint32_t dst_port, uint16_t op,
		       uint32_t flags, const void *data, uint32_t len, uint32_t buf_alloc,
		       uint32_t fwd_cnt)
{
	struct vvs_hdr h = {
		.src_cid = src_cid, .dst_cid = VVS_HOST_CID, .src_port = src_port,
		.dst_port = dst_port, .len = len, .type = VVS_TYPE_STREAM, .op = op,
		.flags = flags, .buf_alloc = buf_alloc, .fwd_cnt = fwd_cnt,
	};
	uint8_t raw[VVS_HDR_SIZE];

	vvs_hdr_encode(&h, raw);
	vvs_input(&dev, raw, data, len);
}

static void send_op(struct vvs_conn *c, uint16_t op, uint32_t flags, uint32_t buf_alloc,
		    uint32_t fwd_cnt)
{
	guest_send(GUEST_CID, c->guest_port, c->host_port, op, flags, NULL, 0, buf_alloc, fwd_cnt);
}

/* Pull one packet the device owes the guest into a buffer of cap bytes. */
static size_t pull(size_t cap, struct vvs_hdr *h, uint8_t *payload)
{
	static uint8_t buf[VVS_MAX_PKT];
	size_t n = vvs_output(&dev, buf, cap);

	if (n == 0)
		return 0;
	ck_assert_uint_ge(n, VVS_HDR_SIZE);
	ck_assert_uint_le(n, cap);
	vvs_hdr_decode(buf, h);
	ck_assert_uint_eq(h->len, n - VVS_HDR_SIZE);
	ck_assert_uint_eq(h->src_cid, VVS_HOST_CID);
	ck_assert_uint_eq(h->dst_cid, GUEST_CID);
	if (payload)
		memcpy(payload, buf + VVS_HDR_SIZE, h->len);
	return n;
}

static struct vvs_conn *connect_ok(uint32_t guest_buf_alloc)
{
	struct vvs_hdr h;
	struct vvs_conn *c = vvs_connect(&dev, ADB_PORT, NULL);

	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(pull(4096, &h, NULL), VVS_HDR_SIZE);
	ck_assert_uint_eq(h.op, VVS_OP_REQUEST);
	ck_assert_uint_eq(h.dst_port, ADB_PORT);
	ck_assert_uint_eq(h.buf_alloc, VVS_BUF);
	send_op(c, VVS_OP_RESPONSE, 0, guest_buf_alloc, 0);
	ck_assert_int_eq(ev.connected, 1);
	ck_assert_int_eq(ev.connect_status, 0);
	ck_assert_int_eq(c->state, VVS_CONNECTED);
	return c;
}

/* ---- tests ---- */

START_TEST(header_codec_and_trace)
{
	struct vvs_hdr h = { 2, 1000, 2844408420u, 5555, 50, 1, VVS_OP_RW, 0, 262144, 7336588 }, d;
	uint8_t raw[VVS_HDR_SIZE];
	char line[160];

	vvs_hdr_encode(&h, raw);
	ck_assert_uint_eq(raw[0], 2);
	ck_assert_uint_eq(raw[8], 0xe8);   /* 1000 = 0x3e8, little endian */
	ck_assert_uint_eq(raw[9], 0x03);
	ck_assert_uint_eq(raw[30], VVS_OP_RW);
	vvs_hdr_decode(raw, &d);
	ck_assert(d.src_cid == h.src_cid && d.dst_cid == h.dst_cid && d.src_port == h.src_port &&
		  d.dst_port == h.dst_port && d.len == h.len && d.type == h.type && d.op == h.op &&
		  d.flags == h.flags && d.buf_alloc == h.buf_alloc && d.fwd_cnt == h.fwd_cnt);
	vvs_hdr_format(&h, line, sizeof(line));
	ck_assert_str_eq(line, "2:2844408420 -> 1000:5555 len=50 type=STREAM op=RW flags=0x0 "
			       "buf_alloc=262144 fwd_cnt=7336588");
}
END_TEST

START_TEST(connect_refused)
{
	struct vvs_hdr h;
	struct vvs_conn *c = vvs_connect(&dev, ADB_PORT, NULL);

	ck_assert_uint_eq(pull(4096, &h, NULL), VVS_HDR_SIZE);
	send_op(c, VVS_OP_RST, 0, 0, 0);
	ck_assert_int_eq(ev.connected, 1);
	ck_assert_int_eq(ev.connect_status, -ECONNREFUSED);
	ck_assert(vvs_eof(c));
	vvs_release(c);
	ck_assert_uint_eq(dev.nconns, 0);
	ck_assert_uint_eq(pull(4096, &h, NULL), 0);   /* nothing answers an RST */
}
END_TEST

START_TEST(rst_rules_and_cid_filter)
{
	struct vvs_hdr h;

	/* data for no connection: RST back, to the sender's port */
	guest_send(GUEST_CID, 1234, 4321, VVS_OP_RW, 0, "x", 1, VVS_BUF, 0);
	ck_assert_uint_eq(pull(4096, &h, NULL), VVS_HDR_SIZE);
	ck_assert_uint_eq(h.op, VVS_OP_RST);
	ck_assert_uint_eq(h.dst_port, 1234);
	ck_assert_uint_eq(h.src_port, 4321);
	/* a guest REQUEST to the host: nobody listens, RST */
	guest_send(GUEST_CID, 1235, 9999, VVS_OP_REQUEST, 0, NULL, 0, VVS_BUF, 0);
	ck_assert_uint_eq(pull(4096, &h, NULL), VVS_HDR_SIZE);
	ck_assert_uint_eq(h.op, VVS_OP_RST);
	/* never an RST for an RST */
	guest_send(GUEST_CID, 1234, 4321, VVS_OP_RST, 0, NULL, 0, 0, 0);
	ck_assert_uint_eq(pull(4096, &h, NULL), 0);
	/* another CID, or not to the host: dropped without a word */
	guest_send(7, 1234, 4321, VVS_OP_RW, 0, "x", 1, VVS_BUF, 0);
	ck_assert_uint_eq(pull(4096, &h, NULL), 0);
	ck_assert_uint_eq(dev.st.bad_cid, 1);
	ck_assert_uint_eq(dev.st.rst_sent, 2);
	ck_assert_uint_eq(dev.st.no_conn, 3);
}
END_TEST

/* Host -> guest: 200000 bytes through RX buffers of `cap` bytes each. */
static void host_to_guest(size_t cap)
{
	static uint8_t in[200000], out[200000 + VVS_MAX_PAYLOAD];
	struct vvs_conn *c = connect_ok(VVS_BUF);
	struct vvs_hdr h;
	size_t got = 0, pkts = 0;

	for (size_t i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(i * 7 + i / 251);
	ck_assert_uint_eq(vvs_write(c, in, sizeof(in)), sizeof(in));
	while (pull(cap, &h, out + got) > 0) {
		ck_assert_uint_eq(h.op, VVS_OP_RW);
		/* coalesced: every packet but the last fills its buffer */
		if (got + h.len < sizeof(in))
			ck_assert_uint_eq(h.len, cap - VVS_HDR_SIZE < VVS_MAX_PAYLOAD
						 ? cap - VVS_HDR_SIZE : VVS_MAX_PAYLOAD);
		got += h.len;
		pkts++;
	}
	ck_assert_uint_eq(got, sizeof(in));
	ck_assert_mem_eq(out, in, sizeof(in));
	ck_assert_uint_eq(c->tx.len, 0);
	ck_assert_ptr_null(c->tx.chunk[0]);   /* drained queues give memory back */
	vvs_release(c);
}

START_TEST(host_to_guest_4k_buffers)
{
	host_to_guest(4096);
}
END_TEST

START_TEST(host_to_guest_64k_buffers)
{
	host_to_guest(VVS_MAX_PKT);
}
END_TEST

/* Straight into RX buffers, a write of pieces as adb frames come (a
 * header, its payload, the next header...): each buffer takes bytes of as
 * many pieces as fit, so every packet but the last fills its buffer. */
static void writev_to_guest(size_t cap)
{
	static uint8_t payload[2][65536], want[2 * (24 + 65536)];
	uint8_t hdr[2][24];
	struct iovec v[4];
	struct vvs_conn *c = connect_ok(VVS_BUF);
	size_t total = 0;

	for (int f = 0; f < 2; f++) {
		memset(hdr[f], 0xa0 + f, sizeof(hdr[f]));
		for (size_t i = 0; i < sizeof(payload[f]); i++)
			payload[f][i] = (uint8_t)(i * 13 + f);
		v[2 * f] = (struct iovec){ hdr[f], sizeof(hdr[f]) };
		v[2 * f + 1] = (struct iovec){ payload[f], sizeof(payload[f]) };
		memcpy(want + total, hdr[f], sizeof(hdr[f]));
		memcpy(want + total + sizeof(hdr[f]), payload[f], sizeof(payload[f]));
		total += sizeof(hdr[f]) + sizeof(payload[f]);
	}
	rx.cap = cap;
	ck_assert_uint_eq(vvs_writev(c, v, 4), total);
	ck_assert_uint_eq(rx.got, total);
	ck_assert_mem_eq(rx.data, want, total);
	ck_assert_uint_eq(rx.full, rx.pkts - 1);
	ck_assert_uint_eq(c->tx.len, 0);     /* nothing queued */
	rx.cap = 0;
	vvs_release(c);
}

START_TEST(writev_fills_4k_buffers)
{
	writev_to_guest(4096);
}
END_TEST

START_TEST(writev_fills_64k_buffers)
{
	writev_to_guest(VVS_MAX_PKT);
}
END_TEST

/* The device takes from its owner only what the guest's credit covers:
 * the rest waits with the owner, who hears `writable` when credit returns. */
START_TEST(guest_credit_respected)
{
	static uint8_t data[30000];
	struct vvs_conn *c = connect_ok(10000);
	struct vvs_hdr h;
	size_t got = 0;

	ck_assert_uint_eq(vvs_write(c, data, sizeof(data)), 10000);
	ck_assert_uint_eq(vvs_write_room(c), 0);
	while (pull(4096, &h, NULL) > 0)
		got += h.len;
	ck_assert_uint_eq(got, 10000);                /* no more than the guest's buffer */
	ck_assert_int_eq(ev.writable, 0);
	send_op(c, VVS_OP_CREDIT_UPDATE, 0, 10000, 1000);   /* less than a quarter back */
	ck_assert_int_eq(ev.writable, 0);
	ck_assert_uint_eq(vvs_write_room(c), 1000);
	send_op(c, VVS_OP_CREDIT_UPDATE, 0, 10000, 10000);
	ck_assert_int_eq(ev.writable, 1);
	ck_assert_uint_eq(vvs_write(c, data + 10000, 20000), 10000);
	while (pull(4096, &h, NULL) > 0)
		got += h.len;
	ck_assert_uint_eq(got, 20000);
}
END_TEST

/* Guest -> host, 4 MiB one way: the guest sends only within the credit it
 * was told; the owner reads; the device must keep the credit coming. */
START_TEST(one_way_guest_to_host_never_stalls)
{
	static uint8_t chunk[4096 - VVS_HDR_SIZE], sink[VVS_BUF];
	struct vvs_conn *c = connect_ok(VVS_BUF);
	uint32_t peer_buf = VVS_BUF, peer_fwd = 0, tx_cnt = 0;
	const uint32_t total = 4u << 20;
	uint64_t received = 0;
	struct vvs_hdr h;
	int rounds = 0;

	while (received < total) {
		ck_assert_int_lt(++rounds, 100000);
		/* the guest sends what its credit allows */
		uint32_t credit = peer_buf - (tx_cnt - peer_fwd);
		uint32_t n = credit < sizeof(chunk) ? credit : sizeof(chunk);
		if (n > total - tx_cnt)
			n = total - tx_cnt;
		if (n > 0) {
			guest_send(GUEST_CID, c->guest_port, c->host_port, VVS_OP_RW, 0, chunk, n,
				   VVS_BUF, 0);
			tx_cnt += n;
		}
		/* the owner drains a little at a time */
		received += vvs_read(c, sink, 3000);
		/* whatever the device owes the guest reaches it */
		while (pull(4096, &h, NULL) > 0) {
			peer_buf = h.buf_alloc;
			peer_fwd = h.fwd_cnt;
		}
		ck_assert(n > 0 || vvs_readable(c) > 0 || received == total);
	}
	ck_assert_int_eq(c->state, VVS_CONNECTED);
	ck_assert_uint_eq(dev.st.credit_overrun, 0);
	ck_assert_uint_gt(dev.st.credit_updates_sent, 0);
	/* far fewer updates than packets: they are batched */
	ck_assert_uint_lt(dev.st.credit_updates_sent, total / sizeof(chunk) / 4);
}
END_TEST

START_TEST(credit_overrun_resets)
{
	static uint8_t big[VVS_MAX_PAYLOAD];
	struct vvs_conn *c = connect_ok(VVS_BUF);
	struct vvs_hdr h;

	for (int i = 0; i < VVS_CHUNKS; i++)
		guest_send(GUEST_CID, c->guest_port, c->host_port, VVS_OP_RW, 0, big, sizeof(big),
			   VVS_BUF, 0);
	ck_assert_int_eq(ev.closed, 0);
	guest_send(GUEST_CID, c->guest_port, c->host_port, VVS_OP_RW, 0, big, 1, VVS_BUF, 0);
	ck_assert_int_eq(ev.closed, 1);
	ck_assert_str_eq(ev.why, "guest sent more than its credit");
	ck_assert_uint_eq(dev.st.credit_overrun, 1);
	ck_assert_uint_eq(pull(4096, &h, NULL), VVS_HDR_SIZE);
	ck_assert_uint_eq(h.op, VVS_OP_RST);
	vvs_release(c);
	ck_assert_uint_eq(dev.nconns, 0);
}
END_TEST

START_TEST(credit_request_answered_and_dup_request_dropped)
{
	struct vvs_conn *c = connect_ok(VVS_BUF);
	struct vvs_hdr h;

	send_op(c, VVS_OP_CREDIT_REQUEST, 0, VVS_BUF, 0);
	ck_assert_uint_eq(pull(4096, &h, NULL), VVS_HDR_SIZE);
	ck_assert_uint_eq(h.op, VVS_OP_CREDIT_UPDATE);
	ck_assert_uint_eq(h.buf_alloc, VVS_BUF);
	send_op(c, VVS_OP_REQUEST, 0, VVS_BUF, 0);
	ck_assert_uint_eq(pull(4096, &h, NULL), 0);
	ck_assert_uint_eq(dev.st.dup_request, 1);
	ck_assert_int_eq(c->state, VVS_CONNECTED);
}
END_TEST

START_TEST(shutdown_both_ways)
{
	struct vvs_conn *c = connect_ok(VVS_BUF);
	struct vvs_hdr h;
	char buf[16];

	guest_send(GUEST_CID, c->guest_port, c->host_port, VVS_OP_RW, 0, "bye", 3, VVS_BUF, 0);
	send_op(c, VVS_OP_SHUTDOWN, VVS_SHUTDOWN_SEND, VVS_BUF, 0);
	ck_assert(!vvs_eof(c));                       /* data first */
	ck_assert_uint_eq(vvs_read(c, buf, sizeof(buf)), 3);
	ck_assert(vvs_eof(c));
	ck_assert_uint_eq(vvs_write(c, "last", 4), 4);
	vvs_release(c);
	ck_assert_uint_eq(pull(4096, &h, NULL), VVS_HDR_SIZE + 4);   /* data before SHUTDOWN */
	ck_assert_uint_eq(h.op, VVS_OP_RW);
	ck_assert_uint_eq(pull(4096, &h, NULL), VVS_HDR_SIZE);
	ck_assert_uint_eq(h.op, VVS_OP_SHUTDOWN);
	ck_assert_uint_eq(h.flags, VVS_SHUTDOWN_RCV | VVS_SHUTDOWN_SEND);
	send_op(c, VVS_OP_RST, 0, VVS_BUF, 0);        /* Linux answers with RST */
	ck_assert_uint_eq(dev.nconns, 0);
}
END_TEST

/* The owner's peer half-closed (issue 23): "will not send" goes after the
 * queued data, nothing more is taken from the owner, and the guest's
 * answer still comes until the guest too is done. */
START_TEST(half_close_keeps_receiving)
{
	struct vvs_conn *c = connect_ok(VVS_BUF);
	struct vvs_hdr h;
	char buf[16];

	ck_assert_uint_eq(vvs_write(c, "ask", 3), 3);
	vvs_shutdown_send(c);
	ck_assert_uint_eq(vvs_write_room(c), 0);
	ck_assert_uint_eq(vvs_write(c, "more", 4), 0);
	ck_assert_uint_eq(pull(4096, &h, NULL), VVS_HDR_SIZE + 3);   /* data first */
	ck_assert_uint_eq(h.op, VVS_OP_RW);
	ck_assert_uint_eq(pull(4096, &h, NULL), VVS_HDR_SIZE);
	ck_assert_uint_eq(h.op, VVS_OP_SHUTDOWN);
	ck_assert_uint_eq(h.flags, VVS_SHUTDOWN_SEND);
	ck_assert_uint_eq(pull(4096, &h, NULL), 0);
	ck_assert_int_eq(c->state, VVS_CONNECTED);
	guest_send(GUEST_CID, c->guest_port, c->host_port, VVS_OP_RW, 0, "answer", 6, VVS_BUF, 3);
	ck_assert_int_eq(ev.readable, 1);
	ck_assert_uint_eq(vvs_read(c, buf, sizeof(buf)), 6);
	ck_assert(memcmp(buf, "answer", 6) == 0);
	send_op(c, VVS_OP_SHUTDOWN, VVS_SHUTDOWN_RCV | VVS_SHUTDOWN_SEND, VVS_BUF, 3);
	ck_assert(vvs_eof(c));
	ck_assert_int_eq(ev.closed, 0);
	vvs_release(c);
	ck_assert_uint_eq(pull(4096, &h, NULL), VVS_HDR_SIZE);
	ck_assert_uint_eq(h.op, VVS_OP_SHUTDOWN);
	ck_assert_uint_eq(h.flags, VVS_SHUTDOWN_RCV | VVS_SHUTDOWN_SEND);
	send_op(c, VVS_OP_RST, 0, VVS_BUF, 3);
	ck_assert_uint_eq(dev.nconns, 0);
}
END_TEST

START_TEST(unanswered_shutdown_times_out)
{
	struct vvs_conn *c = connect_ok(VVS_BUF);
	struct vvs_hdr h;

	vvs_expire(&dev, 1000);
	vvs_release(c);
	ck_assert_uint_eq(pull(4096, &h, NULL), VVS_HDR_SIZE);
	ck_assert_uint_eq(h.op, VVS_OP_SHUTDOWN);
	vvs_expire(&dev, 1000 + VVS_CLOSE_TIMEOUT_MS - 1);
	ck_assert_uint_eq(pull(4096, &h, NULL), 0);
	vvs_expire(&dev, 1000 + VVS_CLOSE_TIMEOUT_MS);
	ck_assert_uint_eq(pull(4096, &h, NULL), VVS_HDR_SIZE);
	ck_assert_uint_eq(h.op, VVS_OP_RST);
	ck_assert_uint_eq(dev.nconns, 0);
	ck_assert_uint_eq(dev.st.close_timeouts, 1);
}
END_TEST

START_TEST(malformed_length_resets)
{
	struct vvs_conn *c = connect_ok(VVS_BUF);
	struct vvs_hdr h = {
		.src_cid = GUEST_CID, .dst_cid = VVS_HOST_CID, .src_port = c->guest_port,
		.dst_port = c->host_port, .len = 100, .type = VVS_TYPE_STREAM, .op = VVS_OP_RW,
	};
	uint8_t raw[VVS_HDR_SIZE];

	vvs_hdr_encode(&h, raw);
	vvs_input(&dev, raw, (const uint8_t *)"short", 5);   /* header says 100 */
	ck_assert_int_eq(ev.closed, 1);
	ck_assert_str_eq(ev.why, "malformed packet from the guest");
	ck_assert_uint_eq(dev.st.bad_len, 1);
}
END_TEST

/* A packet whose type is not STREAM, or whose op is none of the seven,
 * resets its connection: RST to the guest, the owner told, nothing of it
 * delivered; one for no connection gets an RST alone. */
START_TEST(bad_type_or_op_resets)
{
	static const struct { uint16_t type, op; const char *why; } bad[] = {
		{ 2, VVS_OP_RW, "malformed packet from the guest" },            /* SEQPACKET */
		{ 0xffff, VVS_OP_CREDIT_UPDATE, "malformed packet from the guest" },
		{ VVS_TYPE_STREAM, 0, "invalid op from the guest" },            /* INVALID */
		{ VVS_TYPE_STREAM, 8, "invalid op from the guest" },
		{ VVS_TYPE_STREAM, 0xffff, "invalid op from the guest" },
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct vvs_conn *c;
		struct vvs_hdr h = { .src_cid = GUEST_CID, .dst_cid = VVS_HOST_CID, .len = 1,
				     .type = bad[i].type, .op = bad[i].op, .buf_alloc = VVS_BUF };
		uint8_t raw[VVS_HDR_SIZE];

		memset(&ev, 0, sizeof(ev));
		c = connect_ok(VVS_BUF);
		h.src_port = c->guest_port;
		h.dst_port = c->host_port;
		vvs_hdr_encode(&h, raw);
		vvs_input(&dev, raw, (const uint8_t *)"x", 1);
		ck_assert_int_eq(ev.closed, 1);
		ck_assert_str_eq(ev.why, bad[i].why);
		ck_assert_int_eq(ev.readable, 0);
		ck_assert_uint_eq(vvs_readable(c), 0);
		ck_assert_uint_eq(pull(4096, &h, NULL), VVS_HDR_SIZE);
		ck_assert_uint_eq(h.op, VVS_OP_RST);
		ck_assert_uint_eq(h.dst_port, c->guest_port);
		vvs_release(c);
		ck_assert_uint_eq(pull(4096, &h, NULL), 0);
	}
	ck_assert_uint_eq(dev.st.bad_type, 2);
	ck_assert_uint_eq(dev.st.bad_op, 3);
	ck_assert_uint_eq(dev.nconns, 0);
}
END_TEST

/* Data on a connection the guest has not accepted (RW before RESPONSE)
 * resets it: nothing delivered, RST to the guest. */
START_TEST(rw_before_response_resets)
{
	struct vvs_conn *c = vvs_connect(&dev, ADB_PORT, NULL);
	struct vvs_hdr h;

	ck_assert_ptr_nonnull(c);
	ck_assert_uint_eq(pull(4096, &h, NULL), VVS_HDR_SIZE);
	ck_assert_uint_eq(h.op, VVS_OP_REQUEST);
	guest_send(GUEST_CID, c->guest_port, c->host_port, VVS_OP_RW, 0, "early", 5, VVS_BUF, 0);
	ck_assert_int_eq(ev.closed, 1);
	ck_assert_str_eq(ev.why, "data before the connection was established");
	ck_assert_int_eq(ev.readable, 0);
	ck_assert_int_eq(ev.connect_status, 0);
	ck_assert_int_eq(ev.connected, 0);
	ck_assert_uint_eq(vvs_readable(c), 0);
	ck_assert_uint_eq(dev.st.early_data, 1);
	ck_assert_uint_eq(dev.st.rx_bytes, 0);
	ck_assert_uint_eq(pull(4096, &h, NULL), VVS_HDR_SIZE);
	ck_assert_uint_eq(h.op, VVS_OP_RST);
	/* a RESPONSE after that does not bring it back */
	send_op(c, VVS_OP_RESPONSE, 0, VVS_BUF, 0);
	ck_assert_int_eq(ev.connected, 0);
	ck_assert_int_eq(c->state, VVS_CLOSED);
	vvs_release(c);
}
END_TEST

START_TEST(device_reset_closes_everything)
{
	struct vvs_conn *a = connect_ok(VVS_BUF);
	struct vvs_conn *b = vvs_connect(&dev, ADB_PORT, NULL);

	ck_assert_ptr_nonnull(b);
	ck_assert_uint_ne(a->host_port, b->host_port);
	ck_assert_uint_eq(vvs_write(a, "pending", 7), 7);
	ev.release_in_closed = 1;
	vvs_device_reset(&dev, "VMM disconnected");
	ck_assert_int_eq(ev.closed, 2);
	ck_assert_str_eq(ev.why, "VMM disconnected");
	ck_assert_uint_eq(dev.nconns, 0);
	ck_assert_ptr_null(dev.out_head);
}
END_TEST

/* ---- a hostile guest ---- */

/* Open the whole table (and more): the REQUESTs the guest gets go
 * unanswered. Returns how many connects the device took. */
static unsigned fill_table(unsigned attempts)
{
	unsigned taken = 0;

	for (unsigned i = 0; i < attempts; i++)
		taken += vvs_connect(&dev, ADB_PORT, NULL) != NULL;
	return taken;
}

START_TEST(unanswered_requests_time_out)
{
	struct vvs_hdr h;
	unsigned rsts = 0, requests = 0;

	ev.release_on_failure = 1;
	vvs_expire(&dev, 1000);
	ck_assert_uint_eq(fill_table(300), VVS_MAX_CONNS);
	while (pull(4096, &h, NULL) > 0)       /* the guest reads them, answers none */
		requests += h.op == VVS_OP_REQUEST;
	ck_assert_uint_eq(requests, VVS_MAX_CONNS);
	vvs_expire(&dev, 1000 + VVS_CONNECT_TIMEOUT_MS - 1);
	ck_assert_int_eq(ev.connected, 0);
	ck_assert_ptr_null(vvs_connect(&dev, ADB_PORT, NULL));
	vvs_expire(&dev, 1000 + VVS_CONNECT_TIMEOUT_MS);
	ck_assert_int_eq(ev.connected, VVS_MAX_CONNS);
	ck_assert_int_eq(ev.connect_status, -ETIMEDOUT);
	ck_assert_uint_eq(dev.st.connect_timeouts, VVS_MAX_CONNS);
	while (pull(4096, &h, NULL) > 0)       /* every one reset towards the guest */
		rsts += h.op == VVS_OP_RST;
	ck_assert_uint_eq(rsts, VVS_MAX_CONNS);
	ck_assert_uint_eq(dev.nconns, 0);
	ev.connected = 0;
	connect_ok(VVS_BUF);                   /* the guest answers again: it works */
}
END_TEST

/* The guest posts no RX buffers: neither the REQUESTs nor the RSTs go out;
 * the slots come back all the same, the RSTs wait in the bounded queue. */
START_TEST(slots_free_when_the_guest_takes_nothing)
{
	struct vvs_hdr h;

	ev.release_on_failure = 1;
	ck_assert_uint_eq(fill_table(300), VVS_MAX_CONNS);
	vvs_expire(&dev, VVS_CONNECT_TIMEOUT_MS);
	ck_assert_int_eq(ev.connected, VVS_MAX_CONNS);
	ck_assert_uint_eq(dev.nconns, VVS_MAX_CONNS);   /* their RSTs are owed */
	vvs_expire(&dev, VVS_CONNECT_TIMEOUT_MS + VVS_CLOSE_TIMEOUT_MS);
	ck_assert_uint_eq(dev.nconns, 0);
	ck_assert_uint_eq(dev.nrsts, sizeof(dev.rsts) / sizeof(dev.rsts[0]));
	ck_assert_uint_eq(dev.st.rst_dropped, VVS_MAX_CONNS - dev.nrsts);
	ck_assert_uint_eq(fill_table(1), 1);
	ck_assert_uint_eq(pull(4096, &h, NULL), VVS_HDR_SIZE);
	ck_assert_uint_eq(h.op, VVS_OP_RST);     /* the queued RSTs first */
}
END_TEST

/* Released with data the guest never takes (no credit): no SHUTDOWN can go
 * out, and the connection is reset after the close timeout. Progress
 * starts the wait again. */
START_TEST(released_without_progress_times_out)
{
	static uint8_t data[3000];
	struct vvs_conn *c = connect_ok(1000);
	struct vvs_hdr h;

	vvs_expire(&dev, 1000);
	ck_assert_uint_eq(vvs_write(c, data, sizeof(data)), 1000);
	ck_assert_uint_eq(pull(4096, &h, NULL), VVS_HDR_SIZE + 1000);
	ck_assert_uint_eq(vvs_write(c, data, sizeof(data)), 0);
	send_op(c, VVS_OP_CREDIT_UPDATE, 0, 1000, 500);      /* 500 read */
	ck_assert_uint_eq(vvs_write(c, data, sizeof(data)), 500);
	vvs_release(c);
	vvs_expire(&dev, 1000 + VVS_CLOSE_TIMEOUT_MS - 1);
	ck_assert_uint_eq(pull(4096, &h, NULL), VVS_HDR_SIZE + 500);   /* progress */
	send_op(c, VVS_OP_CREDIT_UPDATE, 0, 0, 1000);        /* and no credit since */
	vvs_expire(&dev, 1000 + 2 * VVS_CLOSE_TIMEOUT_MS - 2);
	ck_assert_uint_eq(dev.st.close_timeouts, 0);
	vvs_expire(&dev, 1000 + 2 * VVS_CLOSE_TIMEOUT_MS - 1);
	ck_assert_uint_eq(dev.st.close_timeouts, 1);
	ck_assert_uint_eq(pull(4096, &h, NULL), VVS_HDR_SIZE);
	ck_assert_uint_eq(h.op, VVS_OP_RST);
	ck_assert_uint_eq(dev.nconns, 0);
}
END_TEST

static unsigned chunks_held(const struct vvs_conn *c)
{
	unsigned n = 0;

	for (int i = 0; i < VVS_CHUNKS; i++)
		n += (c->rx.chunk[i] != NULL) + (c->tx.chunk[i] != NULL);
	return n;
}

static uint32_t rnd_state = 12345;

static uint32_t rnd(void)
{
	rnd_state = rnd_state * 1103515245u + 12345u;
	return rnd_state >> 8;
}

/* Whatever the guest writes into buf_alloc, fwd_cnt and len, and however it
 * ignores the credit we give: per connection at most VVS_BUF bytes each
 * way, VVS_CHUNKS chunks each; a connection reset holds none. */
START_TEST(credit_lies_hold_no_more_than_the_window)
{
	static uint8_t data[VVS_MAX_PAYLOAD];
	static const uint32_t lies[] = { 0, 1, 4096, VVS_BUF, VVS_BUF + 1, 0x7fffffffu,
					 0xfffffff0u, 0xffffffffu };
	unsigned resets = 0;

	for (int round = 0; round < 200; round++) {
		struct vvs_conn *c = connect_ok(lies[rnd() % 8]);
		struct vvs_hdr h;

		for (int i = 0; i < 50 && c->state == VVS_CONNECTED; i++) {
			uint32_t len = rnd() % (VVS_MAX_PAYLOAD + 1);

			switch (rnd() % 4) {
			case 0:         /* credit out of thin air, backwards, wrapping */
				send_op(c, VVS_OP_CREDIT_UPDATE, 0, lies[rnd() % 8],
					c->tx_cnt + lies[rnd() % 8]);
				break;
			case 1:         /* data, within our credit or not */
				guest_send(GUEST_CID, c->guest_port, c->host_port, VVS_OP_RW, 0, data,
					   len, lies[rnd() % 8], rnd());
				break;
			case 2:         /* the owner writes what it may */
				vvs_write(c, data, len);
				break;
			case 3:         /* an RX buffer or two */
				pull(rnd() % 2 ? 4096 : VVS_MAX_PKT, &h, NULL);
				break;
			}
			ck_assert_uint_le(c->rx.len, VVS_BUF);
			ck_assert_uint_le(c->tx.len, VVS_BUF);
			ck_assert_uint_le(chunks_held(c), 2 * VVS_CHUNKS);
		}
		if (c->state == VVS_CLOSED) {   /* reset: only what the owner may still read */
			ck_assert_uint_eq(c->tx.len, 0);
			for (int i = 0; i < VVS_CHUNKS; i++)
				ck_assert_ptr_null(c->tx.chunk[i]);
			resets++;
		}
		vvs_release(c);
		while (pull(4096, &h, NULL) > 0)
			;
		vvs_device_reset(&dev, "next round");
		ev.connected = 0;
	}
	ck_assert_uint_gt(resets, 0);
	ck_assert_uint_gt(dev.st.credit_overrun, 0);
}
END_TEST

/* ---- a guest that rewrites a header while the device reads it ---- */

#define HDR_RACE_PKTS 200000

static uint8_t race_raw[VVS_HDR_SIZE];
static int race_stop, race_started;

/* Flip the length between the packet's (1) and 65535, the op between RW
 * and CREDIT_UPDATE, the type between STREAM and 2. */
static void *header_scribbler(void *arg)
{
	uint32_t x = 0x2545f491u;

	(void)arg;
	__atomic_store_n(&race_started, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&race_stop, __ATOMIC_RELAXED)) {
		volatile uint8_t *r = race_raw;

		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		r[24] = (x & 1) ? 1 : 0xff;
		r[25] = (x & 1) ? 0 : 0xff;
		r[30] = (x & 2) ? VVS_OP_RW : VVS_OP_CREDIT_UPDATE;
		r[28] = (x & 12) ? VVS_TYPE_STREAM : 2;
	}
	return NULL;
}

START_TEST(header_rewritten_while_read)
{
	static const uint8_t payload[1] = { 'x' };
	struct vvs_conn *c = connect_ok(VVS_BUF);
	struct vvs_hdr h = { .src_cid = GUEST_CID, .dst_cid = VVS_HOST_CID, .len = 1,
			     .type = VVS_TYPE_STREAM, .op = VVS_OP_RW, .buf_alloc = VVS_BUF };
	uint8_t got[4096];
	size_t total = 0;
	unsigned resets = 0;
	pthread_t t;

	h.src_port = c->guest_port;
	h.dst_port = c->host_port;
	vvs_hdr_encode(&h, race_raw);
	race_stop = race_started = 0;
	ck_assert_int_eq(pthread_create(&t, NULL, header_scribbler, NULL), 0);
	while (!__atomic_load_n(&race_started, __ATOMIC_ACQUIRE))
		sched_yield();
	for (unsigned i = 0; i < HDR_RACE_PKTS; i++) {
		size_t n;

		vvs_input(&dev, race_raw, payload, 1);
		while ((n = vvs_read(c, got, sizeof(got))) > 0) {
			for (size_t k = 0; k < n; k++)
				ck_assert_uint_eq(got[k], 'x');
			total += n;
		}
		ck_assert_uint_le(dev.st.rx_bytes, i + 1);
		if (c->state == VVS_CLOSED) {   /* reset as malformed: a new one */
			struct vvs_hdr o;

			resets++;
			vvs_release(c);
			while (pull(4096, &o, NULL) > 0)
				;
			memset(&ev, 0, sizeof(ev));
			c = connect_ok(VVS_BUF);
			/* the scribbler keeps the other bytes as they are */
			for (int k = 0; k < 4; k++) {
				race_raw[16 + k] = (uint8_t)(c->guest_port >> (8 * k));
				race_raw[20 + k] = (uint8_t)(c->host_port >> (8 * k));
			}
		}
		while (pull(4096, &h, NULL) > 0)    /* credit updates, RSTs */
			;
	}
	__atomic_store_n(&race_stop, 1, __ATOMIC_RELAXED);
	pthread_join(t, NULL);
	fprintf(stderr, "virtio_vsock: rewritten headers: %zu bytes taken, %u resets\n", total,
		resets);
	ck_assert_uint_eq(total, dev.st.rx_bytes);
	ck_assert_uint_gt(total, 0);
	ck_assert_uint_gt(resets, 0);
	vvs_release(c);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("virtio_vsock");
	TCase *tc = tcase_create("protocol");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, header_codec_and_trace);
	tcase_add_test(tc, connect_refused);
	tcase_add_test(tc, rst_rules_and_cid_filter);
	tcase_add_test(tc, host_to_guest_4k_buffers);
	tcase_add_test(tc, host_to_guest_64k_buffers);
	tcase_add_test(tc, writev_fills_4k_buffers);
	tcase_add_test(tc, writev_fills_64k_buffers);
	tcase_add_test(tc, guest_credit_respected);
	tcase_add_test(tc, one_way_guest_to_host_never_stalls);
	tcase_add_test(tc, credit_overrun_resets);
	tcase_add_test(tc, credit_request_answered_and_dup_request_dropped);
	tcase_add_test(tc, shutdown_both_ways);
	tcase_add_test(tc, half_close_keeps_receiving);
	tcase_add_test(tc, unanswered_shutdown_times_out);
	tcase_add_test(tc, malformed_length_resets);
	tcase_add_test(tc, device_reset_closes_everything);
	tcase_add_test(tc, bad_type_or_op_resets);
	tcase_add_test(tc, rw_before_response_resets);
	suite_add_tcase(s, tc);
	tc = tcase_create("hostile");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, unanswered_requests_time_out);
	tcase_add_test(tc, slots_free_when_the_guest_takes_nothing);
	tcase_add_test(tc, released_without_progress_times_out);
	tcase_add_test(tc, credit_lies_hold_no_more_than_the_window);
	tcase_add_test(tc, header_rewritten_while_read);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
