/* SPDX-License-Identifier: Apache-2.0 */
/*
 * adbguest.c - a synthetic adb guest behind the relay's virtio device, for
 * the relay bench (bench_virtio --relay) and tests: it plays the VMM and a
 * guest kernel (the synthetic driver, driver.h) on the relay's vhost-user
 * socket, accepts one vsock connection at a time on PORT (Linux's credit
 * rules: buf_alloc 256 KiB, freed space told once down to its last 64 KiB)
 * and speaks just enough adb on it: CNXN answered, then streams, one after
 * the other, whose OPENs name what to do (anything else: CLSE):
 *
 *   sink:N          OKAY, take N payload bytes of WRTEs (the pattern
 *                   checked), then CLSE
 *   source:N:P      OKAY, N bytes of the pattern in WRTEs of P bytes
 *   reset:          RST on the vsock connection (the guest link is lost)
 *   halfclose:      SHUTDOWN "will not send" on it, then take what comes
 *
 *   vhost-adbguest SOCK PORT [RXBUF [quiet]]
 *
 * RXBUF: bytes per RX buffer (default 4096, as Linux). It prints READY
 * once the device runs, a line per connection as it ends (none with
 * "quiet"), and runs until killed (or exits 1 on a wrong byte or a broken
 * device).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adbproto/adbproto.h"
#include "tests/vhost/driver.h"

#define CREDIT_LOW (64 * 1024)

static struct vdrv v;
static uint32_t port, host_port;
static int open_conn;                     /* a connection is open */
static uint32_t fwd, fwd_sent, tx_cnt, peer_buf, peer_fwd;
static uint8_t rxq[VVS_BUF];              /* received, not yet read (the host keeps to credit) */
static size_t rxq_head, rxq_len;
static uint8_t pkt[VVS_MAX_PAYLOAD];
static int quiet;

static void die(const char *what)
{
	fprintf(stderr, "adbguest: %s\n", what);
	exit(1);
}

static void send_op(uint16_t op, uint32_t flags, const void *p, size_t len)
{
	struct vvs_hdr h = { .src_cid = v.guest_cid, .dst_cid = VVS_HOST_CID, .src_port = port,
			     .dst_port = host_port, .type = VVS_TYPE_STREAM, .op = op,
			     .flags = flags, .buf_alloc = VVS_BUF, .fwd_cnt = fwd };

	if (vdrv_send(&v, &h, p, len) != 0)
		die("send");
	fwd_sent = fwd;
}

/* One packet from the device within timeout_ms: 1, or 0 for none. */
static int step(int timeout_ms)
{
	struct vvs_hdr h;
	int rc = vdrv_recv(&v, &h, pkt, sizeof(pkt), timeout_ms);

	if (rc < 0)
		die("recv");
	if (rc == 0)
		return 0;
	if (h.op == VVS_OP_REQUEST) {
		if (open_conn) {          /* one at a time */
			struct vvs_hdr r = { .src_cid = v.guest_cid, .dst_cid = VVS_HOST_CID,
					     .src_port = port, .dst_port = h.src_port,
					     .type = VVS_TYPE_STREAM, .op = VVS_OP_RST };

			if (vdrv_send(&v, &r, NULL, 0) != 0)
				die("send");
			return 1;
		}
		open_conn = 1;
		host_port = h.src_port;
		fwd = fwd_sent = tx_cnt = 0;
		rxq_head = rxq_len = 0;
		peer_buf = h.buf_alloc;
		peer_fwd = h.fwd_cnt;
		send_op(VVS_OP_RESPONSE, 0, NULL, 0);
		return 1;
	}
	if (!open_conn || h.src_port != host_port)
		return 1;
	peer_buf = h.buf_alloc;
	peer_fwd = h.fwd_cnt;
	switch (h.op) {
	case VVS_OP_RW:
		if (h.len > sizeof(rxq) - rxq_len)
			die("the device sent more than its credit");
		for (uint32_t i = 0; i < h.len; i++)
			rxq[(rxq_head + rxq_len + i) % sizeof(rxq)] = pkt[i];
		rxq_len += h.len;
		break;
	case VVS_OP_CREDIT_REQUEST:
		send_op(VVS_OP_CREDIT_UPDATE, 0, NULL, 0);
		break;
	case VVS_OP_SHUTDOWN:
		send_op(VVS_OP_RST, 0, NULL, 0);
		open_conn = 0;
		break;
	case VVS_OP_RST:
		open_conn = 0;
		break;
	default:
		break;
	}
	return 1;
}

/* n bytes of the connection; 0, or -1 when it ended first. Taken as they
 * come, as a reader of a Linux socket does: waiting for all n in the queue
 * first would wait for ever once n is more than the credit left beside
 * the bytes taken and not yet told (a frame of 200000 bytes, 150 KiB
 * taken untold: the host may send 106 KiB). */
static int read_bytes(void *p, size_t n)
{
	uint8_t *out = p;

	while (n > 0) {
		size_t k;

		while (rxq_len == 0) {
			if (!open_conn)
				return -1;
			if (!step(30000))
				die("the host sent nothing for 30 s");
		}
		k = rxq_len < n ? rxq_len : n;
		for (size_t i = 0; i < k; i++)
			out[i] = rxq[(rxq_head + i) % sizeof(rxq)];
		rxq_head = (rxq_head + k) % sizeof(rxq);
		rxq_len -= k;
		fwd += (uint32_t)k;
		if (fwd - fwd_sent > VVS_BUF - CREDIT_LOW)
			send_op(VVS_OP_CREDIT_UPDATE, 0, NULL, 0);
		out += k;
		n -= k;
	}
	return 0;
}

static void write_bytes(const void *p, size_t n)
{
	const uint8_t *in = p;

	while (n > 0 && open_conn) {
		uint32_t credit = peer_buf - (tx_cnt - peer_fwd);
		size_t k = n < credit ? n : credit;

		if (k == 0) {
			if (!step(30000))
				die("no credit from the host for 30 s");
			continue;
		}
		if (k > VVS_MAX_PAYLOAD)
			k = VVS_MAX_PAYLOAD;
		send_op(VVS_OP_RW, 0, in, k);
		tx_cnt += (uint32_t)k;
		in += k;
		n -= k;
		while (step(0))
			;
	}
}

static void send_frame(uint32_t cmd, uint32_t a0, uint32_t a1, const void *p, size_t len)
{
	struct adb_header h = { .command = cmd, .arg0 = a0, .arg1 = a1,
				.data_length = (uint32_t)len, .magic = cmd ^ 0xffffffffu };
	uint8_t raw[ADB_HEADER_SIZE];

	adb_header_encode(&h, raw);
	write_bytes(raw, sizeof(raw));
	write_bytes(p, len);
}

static uint8_t frame[ADB_MAX_PAYLOAD];

static int recv_frame(struct adb_header *h)
{
	uint8_t raw[ADB_HEADER_SIZE];

	if (read_bytes(raw, sizeof(raw)) != 0)
		return -1;
	adb_header_decode(raw, h);
	if (h->data_length > sizeof(frame))
		die("frame too large");
	return read_bytes(frame, h->data_length);
}

static uint8_t pattern(uint64_t off)
{
	return (uint8_t)(off % 251);
}

/* A stream the host opened (its service in frame): see the head. */
static void stream(uint32_t host_id)
{
	unsigned long long n = 0, got = 0, p = 0;
	struct adb_header h;

	if (sscanf((char *)frame, "sink:%llu", &n) == 1) {
		send_frame(ADB_CMD_OKAY, 1, host_id, NULL, 0);
		while (got < n && recv_frame(&h) == 0) {
			for (uint32_t i = 0; h.command == ADB_CMD_WRTE && i < h.data_length; i++)
				if (frame[i] != pattern(got + i))
					die("a wrong byte from the host");
			if (h.command == ADB_CMD_WRTE)
				got += h.data_length;
		}
		send_frame(ADB_CMD_CLSE, 1, host_id, NULL, 0);
	} else if (sscanf((char *)frame, "source:%llu:%llu", &n, &p) == 2 && p > 0 &&
		   p <= sizeof(frame)) {
		send_frame(ADB_CMD_OKAY, 1, host_id, NULL, 0);
		for (got = 0; got < n && open_conn; got += p) {
			for (unsigned long long i = 0; i < p; i++)
				frame[i] = pattern(got + i);
			send_frame(ADB_CMD_WRTE, 1, host_id, frame, p);
		}
	} else if (strcmp((char *)frame, "reset:") == 0) {
		send_op(VVS_OP_RST, 0, NULL, 0);
		open_conn = 0;
	} else if (strcmp((char *)frame, "halfclose:") == 0) {
		send_op(VVS_OP_SHUTDOWN, VVS_SHUTDOWN_SEND, NULL, 0);
	} else {
		send_frame(ADB_CMD_CLSE, 0, host_id, NULL, 0);
	}
}

/* One connection, from its CNXN to its end: the streams it opens, one
 * after the other. */
static void serve(void)
{
	static const char banner[] = "device::ro.product.name=adbguest;features=";
	struct adb_header h;

	if (recv_frame(&h) != 0 || h.command != ADB_CMD_CNXN)
		return;
	send_frame(ADB_CMD_CNXN, ADB_VERSION, h.arg1, banner, sizeof(banner));
	while (open_conn && recv_frame(&h) == 0) {
		if (h.command != ADB_CMD_OPEN)
			continue;           /* OKAYs, CLSEs, WRTEs of streams done */
		frame[h.data_length ? h.data_length - 1 : 0] = '\0';
		stream(h.arg0);
	}
	/* take what comes until the connection ends */
	while (open_conn) {
		if (!step(60000))
			die("the connection idled for 60 s");
		if (rxq_len > 0)
			read_bytes(frame, rxq_len);
	}
	if (!quiet) {
		printf("END\n");
		fflush(stdout);
	}
}

int main(int argc, char **argv)
{
	size_t rxbuf = argc > 3 ? strtoul(argv[3], NULL, 0) : 4096;

	if (argc < 3) {
		fprintf(stderr, "usage: vhost-adbguest SOCK PORT [RXBUF]\n");
		return 2;
	}
	port = (uint32_t)strtoul(argv[2], NULL, 10);
	quiet = argc > 4 && strcmp(argv[4], "quiet") == 0;
	if (vdrv_open(&v, argv[1], rxbuf) != 0)
		return 1;
	if (!quiet) {
		printf("READY\n");
		fflush(stdout);
	}
	for (;;) {
		if (!open_conn) {
			step(1000);
			continue;
		}
		serve();
	}
}
