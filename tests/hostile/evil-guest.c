/* SPDX-License-Identifier: Apache-2.0 */
/*
 * evil-guest.c - a hostile guest for tests/hostile/guest-virtio-*.test: it
 * plays the VMM and the guest (the synthetic driver, tests/vhost/driver.h)
 * on a relay's vhost-user socket and attacks the relay's virtio device:
 *
 *   evil-guest SOCK request-flood     ignore every REQUEST until SIGUSR1,
 *                                     then accept and echo
 *   evil-guest SOCK bad-tx-chains N   queue N malformed TX chains
 *   evil-guest SOCK bad-rx-buffers S  keep 120 malformed RX buffers posted
 *                                     for S seconds
 *   evil-guest SOCK credit-lie        accept everything and lie in every
 *                                     credit field: 4 GiB of room, bytes
 *                                     read that never came, data far beyond
 *                                     the credit given
 *   evil-guest SOCK half-close        accept, keep what comes, and answer
 *                                     only once the host says it will send
 *                                     no more (SHUTDOWN with SEND): "got "
 *                                     and the bytes, then SHUTDOWN; each
 *                                     answer held until SIGUSR1
 *
 * It prints READY once the device runs, then a line of counts as they
 * change (request-flood) or once its attack is done (DONE ...), and goes
 * on taking packets until killed.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tests/vhost/driver.h"

static uint8_t buf[VVS_MAX_PAYLOAD];
static volatile sig_atomic_t answering;   /* request-flood: SIGUSR1 came */

static void on_usr1(int sig)
{
	(void)sig;
	answering = 1;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int answer(struct vdrv *v, const struct vvs_hdr *to, uint16_t op, uint32_t buf_alloc,
		  uint32_t fwd_cnt, const void *data, size_t len)
{
	struct vvs_hdr r = { .src_cid = v->guest_cid, .dst_cid = VVS_HOST_CID,
			     .src_port = to->dst_port, .dst_port = to->src_port,
			     .type = VVS_TYPE_STREAM, .op = op, .buf_alloc = buf_alloc,
			     .fwd_cnt = fwd_cnt };

	return vdrv_send(v, &r, data, len);
}

/* Take what the device sends, forever; RSTs for whatever it opens. */
static int idle(struct vdrv *v)
{
	struct vvs_hdr h;

	for (;;) {
		int rc = vdrv_recv(v, &h, buf, sizeof(buf), 1000);

		if (rc < 0)
			return 1;
		if (rc == 1 && h.op == VVS_OP_REQUEST && answer(v, &h, VVS_OP_RST, 0, 0, NULL, 0))
			return 1;
	}
}

static int request_flood(struct vdrv *v)
{
	unsigned requests = 0, rsts = 0;
	uint32_t fwd = 0;
	struct vvs_hdr h;

	for (;;) {
		int rc = vdrv_recv(v, &h, buf, sizeof(buf), 1000), ok = 0;

		if (rc < 0)
			return 1;
		if (rc == 0)
			continue;
		switch (h.op) {
		case VVS_OP_REQUEST:
			printf("requests=%u rsts=%u\n", ++requests, rsts);
			fwd = 0;
			ok = !answering || answer(v, &h, VVS_OP_RESPONSE, VVS_BUF, 0, NULL, 0) == 0;
			break;
		case VVS_OP_RST:
			printf("requests=%u rsts=%u\n", requests, ++rsts);
			ok = 1;
			break;
		case VVS_OP_RW:       /* an echo, consumed at once */
			fwd += h.len;
			ok = answer(v, &h, VVS_OP_RW, VVS_BUF, fwd, buf, h.len) == 0;
			break;
		case VVS_OP_SHUTDOWN:
			ok = answer(v, &h, VVS_OP_RST, 0, 0, NULL, 0) == 0;
			break;
		default:
			ok = 1;
			break;
		}
		fflush(stdout);
		if (!ok)
			return 1;
	}
}

static int bad_tx_chains(struct vdrv *v, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (vdrv_send_bad(v, (enum vdrv_bad)(i % VDRV_BAD_KINDS)) != 0)
			return 1;
	printf("DONE bad_tx=%u\n", n);
	fflush(stdout);
	return idle(v);
}

/* Post every spare descriptor as a malformed RX buffer, behind the good
 * ones; data for no connection makes the device use the good ones (RSTs)
 * and reach the rest. Wait for all to come back, again, for `secs` s. */
static int bad_rx_buffers(struct vdrv *v, double secs)
{
	unsigned spare = VDRV_NUM - v->nrx, rounds = 0;
	struct vvs_hdr h, stray = { .src_cid = v->guest_cid, .dst_cid = VVS_HOST_CID,
				    .src_port = 1, .dst_port = 1, .type = VVS_TYPE_STREAM,
				    .op = VVS_OP_RW };

	for (double end = now_s() + secs; now_s() < end; rounds++) {
		uint64_t want = v->rx_bad_back + spare;

		for (unsigned i = 0; i < spare; i++)
			vdrv_post_bad_rx(v, (uint16_t)(v->nrx + i), (enum vdrv_bad)(i % VDRV_BAD_KINDS));
		for (unsigned i = 0; i < v->nrx; i++)
			if (vdrv_send(v, &stray, "x", 1) != 0)
				return 1;
		for (double stuck = now_s() + 5; v->rx_bad_back < want; ) {
			if (now_s() > stuck) {
				fprintf(stderr, "evil-guest: %llu of %llu malformed RX buffers back\n",
					(unsigned long long)v->rx_bad_back, (unsigned long long)want);
				return 1;
			}
			if (vdrv_recv(v, &h, buf, sizeof(buf), 1) < 0)
				return 1;
		}
	}
	printf("DONE bad_rx=%llu rounds=%u\n", (unsigned long long)v->rx_bad_back, rounds);
	fflush(stdout);
	return idle(v);
}

/* A lie for a credit field, from a short list of the worst ones. */
static uint32_t lie(uint32_t near)
{
	static const uint32_t lies[] = { 0, 1, VVS_BUF, 0x7fffffffu, 0xffffffffu };
	unsigned pick = (unsigned)rand() % 7;

	return pick < 5 ? lies[pick] : near + (uint32_t)rand();
}

static int credit_lie(struct vdrv *v)
{
	uint32_t got = 0;
	struct vvs_hdr h;

	memset(buf, 'x', sizeof(buf));
	for (;;) {
		int rc = vdrv_recv(v, &h, buf, sizeof(buf), 1000), fail = 0;

		if (rc < 0)
			return 1;
		if (rc == 0)
			continue;
		switch (h.op) {
		case VVS_OP_REQUEST:
			fail = answer(v, &h, VVS_OP_RESPONSE, 0xffffffffu, lie(0), NULL, 0);
			break;
		case VVS_OP_RW:
			/* claim to have read what never came, then send 5 x 64 KiB
			 * against the 256 KiB of credit it was given */
			got += h.len;
			fail = answer(v, &h, VVS_OP_CREDIT_UPDATE, lie(got), lie(got), NULL, 0);
			for (int i = 0; i < 5 && !fail; i++)
				fail = answer(v, &h, VVS_OP_RW, lie(got), lie(got), buf, sizeof(buf));
			break;
		case VVS_OP_SHUTDOWN:
			fail = answer(v, &h, VVS_OP_RST, 0, 0, NULL, 0);
			break;
		}
		if (fail)
			return 1;
	}
}

/* half-close: a connection the host opened, what it sent (the first 200
 * bytes), and whether the answer went */
struct hc_conn {
	uint32_t host_port, guest_port, got;
	int state;                       /* 0 free, 1 open, 2 answer owed, 3 answered */
	char data[200];
};

static struct hc_conn *hc_find(struct hc_conn *t, size_t n, uint32_t host_port, uint32_t guest_port)
{
	for (size_t i = 0; i < n; i++)
		if (t[i].state != 0 && t[i].host_port == host_port && t[i].guest_port == guest_port)
			return &t[i];
	return NULL;
}

/* "got " and what came, then SHUTDOWN: the guest is done too */
static int hc_answer(struct vdrv *v, struct hc_conn *k)
{
	struct vvs_hdr to = { .src_port = k->host_port, .dst_port = k->guest_port };
	struct vvs_hdr bye = { .src_cid = v->guest_cid, .dst_cid = VVS_HOST_CID,
			       .src_port = k->guest_port, .dst_port = k->host_port,
			       .type = VVS_TYPE_STREAM, .op = VVS_OP_SHUTDOWN,
			       .flags = VVS_SHUTDOWN_RCV | VVS_SHUTDOWN_SEND,
			       .buf_alloc = VVS_BUF, .fwd_cnt = k->got };
	char msg[sizeof(k->data) + 4];
	size_t len = k->got < sizeof(k->data) ? k->got : sizeof(k->data);

	memcpy(msg, "got ", 4);
	memcpy(msg + 4, k->data, len);
	k->state = 3;
	if (answer(v, &to, VVS_OP_RW, VVS_BUF, k->got, msg, 4 + len) != 0)
		return -1;
	return vdrv_send(v, &bye, NULL, 0);
}

static int half_close(struct vdrv *v)
{
	static struct hc_conn t[256];
	unsigned answered = 0, owed = 0;
	struct vvs_hdr h;

	for (;;) {
		int rc = vdrv_recv(v, &h, buf, sizeof(buf), 100), fail = 0;
		struct hc_conn *k;

		if (rc < 0)
			return 1;
		if (answering && owed > 0) {     /* SIGUSR1: the held answers go */
			for (size_t i = 0; i < 256 && !fail; i++)
				if (t[i].state == 2) {
					fail = hc_answer(v, &t[i]) != 0;
					owed--;
					answered++;
				}
			printf("answered=%u owed=%u\n", answered, owed);
		}
		if (rc == 0 || fail) {
			fflush(stdout);
			if (fail)
				return 1;
			continue;
		}
		k = hc_find(t, 256, h.src_port, h.dst_port);
		switch (h.op) {
		case VVS_OP_REQUEST:
			k = NULL;
			for (size_t i = 0; i < 256 && k == NULL; i++)
				if (t[i].state == 0)
					k = &t[i];
			if (k == NULL) {
				fail = answer(v, &h, VVS_OP_RST, 0, 0, NULL, 0);
				break;
			}
			memset(k, 0, sizeof(*k));
			k->host_port = h.src_port;
			k->guest_port = h.dst_port;
			k->state = 1;
			fail = answer(v, &h, VVS_OP_RESPONSE, VVS_BUF, 0, NULL, 0);
			break;
		case VVS_OP_RW:
			if (k == NULL)
				break;
			for (uint32_t i = 0; i < h.len && k->got + i < sizeof(k->data); i++)
				k->data[k->got + i] = (char)buf[i];
			k->got += h.len;
			break;
		case VVS_OP_SHUTDOWN:
			if (k == NULL)
				break;
			if (k->state == 3) {         /* after our answer: done */
				fail = answer(v, &h, VVS_OP_RST, 0, 0, NULL, 0);
				k->state = 0;
			} else if (k->state == 1 && (h.flags & VVS_SHUTDOWN_SEND)) {
				k->state = 2;
				owed++;
				printf("answered=%u owed=%u\n", answered, owed);
			}
			break;
		case VVS_OP_RST:
			if (k != NULL && k->state == 2)
				owed--;
			if (k != NULL)
				k->state = 0;
			break;
		}
		fflush(stdout);
		if (fail)
			return 1;
	}
}

int main(int argc, char **argv)
{
	const char *mode = argc > 2 ? argv[2] : "";
	long n = argc > 3 ? strtol(argv[3], NULL, 10) : 0;
	struct sigaction sa = { .sa_handler = on_usr1 };
	struct vdrv v;

	if (argc < 3) {
		fprintf(stderr, "usage: evil-guest SOCK request-flood | bad-tx-chains N | "
				"bad-rx-buffers SECONDS | credit-lie | half-close\n");
		return 2;
	}
	sigaction(SIGUSR1, &sa, NULL);
	srand(1);
	/* large RX buffers leave descriptors for malformed ones */
	if (vdrv_open(&v, argv[1], strcmp(mode, "bad-rx-buffers") == 0 ? VVS_MAX_PKT : 4096) != 0)
		return 1;
	printf("READY cid=%llu\n", (unsigned long long)v.guest_cid);
	fflush(stdout);
	if (strcmp(mode, "request-flood") == 0)
		return request_flood(&v);
	if (strcmp(mode, "bad-tx-chains") == 0)
		return bad_tx_chains(&v, (unsigned)n);
	if (strcmp(mode, "bad-rx-buffers") == 0)
		return bad_rx_buffers(&v, (double)n);
	if (strcmp(mode, "credit-lie") == 0)
		return credit_lie(&v);
	if (strcmp(mode, "half-close") == 0)
		return half_close(&v);
	fprintf(stderr, "evil-guest: no mode %s\n", mode);
	return 2;
}
