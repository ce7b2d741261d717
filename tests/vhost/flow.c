/* SPDX-License-Identifier: Apache-2.0 */
/*
 * flow.c - one-way flows through the relay's virtio device with the
 * synthetic driver as the guest; see flow.h.
 */
#include "tests/vhost/flow.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

int vflow_verify = 1;

uint8_t vflow_pattern(uint64_t off)
{
	return (uint8_t)(off % 251);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The guest side of a one-way flow of `total` bytes; Linux's credit rules:
 * it never asks for credit, and tells its own freed space only once it is
 * down to its last 64 KiB. */
int vflow_guest(const char *path, uint64_t guest_cid, uint32_t port, size_t rxbuf, int to_guest,
		uint64_t total, size_t chunk)
{
	static uint8_t buf[VVS_MAX_PAYLOAD];
	struct vdrv v;
	struct vvs_hdr h, r;
	uint32_t host_port = 0, fwd = 0, fwd_sent = 0, tx_cnt = 0;
	uint32_t peer_buf = 0, peer_fwd = 0;
	uint64_t done = 0, rw_pkts = 0;
	size_t fill = rxbuf - VVS_HDR_SIZE;   /* payload of a full RX buffer */

	if (vdrv_open(&v, path, rxbuf) != 0)
		return 10;
	for (;;) {
		int rc, waited = 0;
		uint32_t credit = peer_buf - (tx_cnt - peer_fwd);

		if (!to_guest && host_port != 0 && done < total && credit > 0) {
			size_t n = chunk < credit ? chunk : credit;
			if (n > total - done)
				n = (size_t)(total - done);
			for (size_t i = 0; vflow_verify && i < n; i++)
				buf[i] = vflow_pattern(done + i);
			r = (struct vvs_hdr){ .src_cid = guest_cid, .dst_cid = VVS_HOST_CID,
					      .src_port = port, .dst_port = host_port,
					      .type = VVS_TYPE_STREAM, .op = VVS_OP_RW,
					      .buf_alloc = VVS_BUF, .fwd_cnt = fwd };
			if (vdrv_send(&v, &r, buf, n) != 0)
				return 11;
			tx_cnt += (uint32_t)n;
			done += n;
			/* take what the device sent meanwhile, without waiting */
			rc = vdrv_recv(&v, &h, buf, sizeof(buf), 0);
		} else {
			rc = vdrv_recv(&v, &h, buf, sizeof(buf), 10000);
			waited = 1;
		}
		if (rc < 0)
			return 12;
		if (rc == 0 && !waited)
			continue;
		if (rc == 0) {
			fprintf(stderr, "guest: stalled at %llu of %llu bytes (credit %u)\n",
				(unsigned long long)done, (unsigned long long)total, credit);
			return 13;
		}
		peer_buf = h.buf_alloc;
		peer_fwd = h.fwd_cnt;
		r = (struct vvs_hdr){ .src_cid = guest_cid, .dst_cid = VVS_HOST_CID,
				      .src_port = port, .dst_port = h.src_port,
				      .type = VVS_TYPE_STREAM, .buf_alloc = VVS_BUF };
		if (h.op == VVS_OP_REQUEST) {
			host_port = h.src_port;
			r.op = VVS_OP_RESPONSE;
			if (vdrv_send(&v, &r, NULL, 0) != 0)
				return 14;
		} else if (h.op == VVS_OP_RW) {
			for (uint32_t i = 0; vflow_verify && i < h.len; i++)
				if (buf[i] != vflow_pattern(done + i)) {
					fprintf(stderr, "guest: byte %llu wrong\n",
						(unsigned long long)(done + i));
					return 15;
				}
			done += h.len;
			fwd += h.len;
			rw_pkts++;
			if (fwd - fwd_sent > VVS_BUF - 64 * 1024) {
				r.op = VVS_OP_CREDIT_UPDATE;
				r.fwd_cnt = fwd;
				fwd_sent = fwd;
				if (vdrv_send(&v, &r, NULL, 0) != 0)
					return 16;
			}
		} else if (h.op == VVS_OP_SHUTDOWN || h.op == VVS_OP_RST) {
			if (h.op == VVS_OP_SHUTDOWN) {
				r.op = VVS_OP_RST;
				vdrv_send(&v, &r, NULL, 0);
			}
			break;
		}
	}
	vdrv_close(&v);
	if (done != total)
		return 17;
	/* host to guest, the device fills buffers: at most a quarter more
	 * packets than full buffers would take (a write's or the credit's end
	 * may cut one short) */
	if (to_guest && 4 * rw_pkts > 5 * ((total + fill - 1) / fill)) {
		fprintf(stderr, "guest: %llu bytes came in %llu packets (buffers of %zu)\n",
			(unsigned long long)total, (unsigned long long)rw_pkts, rxbuf);
		return 18;
	}
	return 0;
}

/* The receiving host side of the current flow. */
static struct {
	uint8_t buf[VVS_MAX_PAYLOAD];
	uint64_t moved;
	uint64_t bad_at;
	int bad;
} sink;

/* Take n bytes of the flow (from the guest's packet or the queue). */
static void sink_take(const uint8_t *p, size_t n)
{
	for (size_t i = 0; vflow_verify && !sink.bad && i < n; i++)
		if (p[i] != vflow_pattern(sink.moved + i)) {
			sink.bad = 1;
			sink.bad_at = sink.moved + i;
		}
	sink.moved += n;
}

size_t vflow_deliver(struct vvs_conn *c, const uint8_t *p, size_t len)
{
	(void)c;
	if (len > sizeof(sink.buf))
		len = sizeof(sink.buf);
	memcpy(sink.buf, p, len);       /* an owner takes the bytes somewhere */
	sink_take(sink.buf, len);
	return len;
}

double vflow_host(uv_loop_t *loop, struct vhu_device *dev, uint32_t port, int to_guest,
		  uint64_t total, size_t chunk, char *err, size_t errlen)
{
	static uint8_t buf[VVS_MAX_PAYLOAD];
	struct vvs_conn *c = vvs_connect(&dev->vvs, port, NULL);
	uint64_t moved = 0;
	double t0 = now_s();

	memset(&sink, 0, sizeof(sink));
	if (chunk > sizeof(buf))
		chunk = sizeof(buf);
	if (c == NULL) {
		snprintf(err, errlen, "no connection slot");
		return -1;
	}
	while (c->state == VVS_CONNECTING && now_s() < t0 + 10)
		uv_run(loop, UV_RUN_NOWAIT);
	if (c->state != VVS_CONNECTED) {
		snprintf(err, errlen, "the guest did not accept the connection");
		vvs_release(c);
		return -1;
	}
	t0 = now_s();
	while (moved < total) {
		if (now_s() > t0 + 120 || c->state == VVS_CLOSED) {
			snprintf(err, errlen, "moved %llu of %llu bytes%s", (unsigned long long)moved,
				 (unsigned long long)total, c->state == VVS_CLOSED ? ", reset" : "");
			vvs_release(c);
			return -1;
		}
		if (to_guest) {
			size_t n = vvs_write_room(c);

			if (n > chunk)
				n = chunk;
			if (n > total - moved)
				n = (size_t)(total - moved);
			for (size_t i = 0; vflow_verify && i < n; i++)
				buf[i] = vflow_pattern(moved + i);
			n = vvs_write(c, buf, n);
			moved += n;
			if (n > 0)
				continue;   /* a writer with data keeps writing; the loop
					     * runs when the device takes no more */
		} else {
			sink_take(buf, vvs_read(c, buf, sizeof(buf)));
			if (sink.bad) {
				snprintf(err, errlen, "byte %llu wrong", (unsigned long long)sink.bad_at);
				vvs_release(c);
				return -1;
			}
			moved = sink.moved;
		}
		uv_run(loop, UV_RUN_NOWAIT);
	}
	vvs_release(c);
	return (double)(total >> 20) / (now_s() - t0);
}
