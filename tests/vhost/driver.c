/* SPDX-License-Identifier: Apache-2.0 */
/*
 * driver.c - the synthetic virtio-vsock guest; see driver.h.
 */
#include "tests/vhost/driver.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define GPA_BASE 0x100000ull
#define MEMSIZE (16u << 20)
#define F_PROTOCOL_FEATURES (1ull << 30)
#define F_VERSION_1 (1ull << 32)
#define F_INDIRECT (1ull << 28)
#define F_EVENT_IDX (1ull << 29)
#define PF_REPLY_ACK (1ull << 3)
#define PF_CONFIG (1ull << 9)
#define TX_SLOT (VVS_MAX_PKT)

static int say(const char *what)
{
	fprintf(stderr, "vdrv: %s: %s\n", what, strerror(errno));
	return -1;
}

static int send_msg(struct vdrv *v, uint32_t req, uint32_t flags, const void *p, uint32_t size,
		    const int *fds, int nfds)
{
	uint8_t buf[12 + 512];
	uint32_t hdr[3] = { req, 1u | flags, size };
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(8 * sizeof(int))];
	} ctl;
	struct iovec iov = { buf, 12 + size };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	memcpy(buf, hdr, 12);
	if (size > 0)
		memcpy(buf + 12, p, size);
	if (nfds > 0) {
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.b;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(c), fds, nfds * sizeof(int));
	}
	return sendmsg(v->sock, &mh, MSG_NOSIGNAL) == (ssize_t)(12 + size) ? 0 : say("sendmsg");
}

static int recv_reply(struct vdrv *v, uint32_t req, void *p, uint32_t size)
{
	uint32_t hdr[3];

	if (recv(v->sock, hdr, 12, MSG_WAITALL) != 12)
		return say("reply header");
	if (hdr[0] != req || !(hdr[1] & 4) || hdr[2] != size) {
		fprintf(stderr, "vdrv: bad reply to %u: %u %#x %u\n", req, hdr[0], hdr[1], hdr[2]);
		return -1;
	}
	return recv(v->sock, p, size, MSG_WAITALL) == (ssize_t)size ? 0 : say("reply payload");
}

static int get_u64(struct vdrv *v, uint32_t req, uint64_t *out)
{
	return send_msg(v, req, 0, NULL, 0, NULL, 0) == 0 ? recv_reply(v, req, out, 8) : -1;
}

/* A request acknowledged with REPLY_ACK. */
static int acked(struct vdrv *v, uint32_t req, const void *p, uint32_t size, const int *fds,
		 int nfds)
{
	uint64_t status = 1;

	if (send_msg(v, req, 8, p, size, fds, nfds) != 0 || recv_reply(v, req, &status, 8) != 0)
		return -1;
	if (status != 0) {
		fprintf(stderr, "vdrv: request %u refused\n", req);
		return -1;
	}
	return 0;
}

static void layout(struct vdrv *v)
{
	/* rings at the start, then RX buffers, then TX slots */
	for (int i = 0; i < 2; i++) {
		struct vdrv_ring *r = &v->q[i];

		r->desc_off = (uint64_t)i * 0x4000;
		r->avail_off = r->desc_off + 0x1000;
		r->used_off = r->desc_off + 0x2000;
		r->desc = (struct vring_desc *)(v->mem + r->desc_off);
		r->avail = (uint16_t *)(v->mem + r->avail_off);
		r->used = (uint16_t *)(v->mem + r->used_off);
	}
	v->nrx = (unsigned)(VDRV_RX_BYTES / v->rxbuf);
	if (v->nrx > VDRV_NUM)
		v->nrx = VDRV_NUM;
	if (v->nrx < 4)
		v->nrx = 4;
	v->rx_data_off = 0x10000;
	v->tx_data_off = v->rx_data_off + (uint64_t)v->nrx * v->rxbuf;
	for (unsigned i = 0; i < VDRV_TX_SLOTS; i++)
		v->tx_free[i] = (uint16_t)(VDRV_TX_SLOTS - 1 - i);
	v->ntx_free = VDRV_TX_SLOTS;
}

/* virtio's vring_need_event(): has idx passed event since old? */
static int need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

/* Make new avail entries visible and kick only if the device asked for it
 * (EVENT_IDX: avail_event, after the used elements), as Linux does. */
static void publish(struct vdrv_ring *r, uint16_t old)
{
	uint16_t avail_event;

	__atomic_store_n(&r->avail[1], r->avail_idx, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	avail_event = __atomic_load_n((uint16_t *)((struct vring_used_elem *)(r->used + 2) + VDRV_NUM),
				      __ATOMIC_ACQUIRE);
	if (need_event(avail_event, r->avail_idx, old))
		eventfd_write(r->kick, 1);
}

static void post_rx(struct vdrv *v, uint16_t id)
{
	struct vdrv_ring *r = &v->q[0];

	r->desc[id] = (struct vring_desc){ GPA_BASE + v->rx_data_off + (uint64_t)id * v->rxbuf,
					   (uint32_t)v->rxbuf, VRING_DESC_F_WRITE, 0 };
	r->avail[2 + r->avail_idx % VDRV_NUM] = id;
	r->avail_idx++;
}

/* Descriptor D made malformed in the way KIND says, WRITE as its proper
 * direction. */
static void bad_desc(struct vring_desc *d, uint16_t id, uint64_t gpa, uint16_t write,
		     enum vdrv_bad kind)
{
	switch (kind) {
	case VDRV_BAD_OUTSIDE:
		*d = (struct vring_desc){ GPA_BASE + MEMSIZE, 4096, write, 0 };
		break;
	case VDRV_BAD_SHORT:
		*d = (struct vring_desc){ gpa, 16, write, 0 };
		break;
	case VDRV_BAD_LOOP:
		*d = (struct vring_desc){ gpa, 16, write | VRING_DESC_F_NEXT, id };
		break;
	default:
		*d = (struct vring_desc){ gpa, 4096, write ^ VRING_DESC_F_WRITE, 0 };
		break;
	}
}

void vdrv_post_bad_rx(struct vdrv *v, uint16_t id, enum vdrv_bad kind)
{
	struct vdrv_ring *r = &v->q[0];

	bad_desc(&r->desc[id], id, GPA_BASE + v->rx_data_off, VRING_DESC_F_WRITE, kind);
	r->avail[2 + r->avail_idx % VDRV_NUM] = id;
	r->avail_idx++;
	publish(r, (uint16_t)(r->avail_idx - 1));
}

static int setup(struct vdrv *v, const char *path, size_t rxbuf, int steps)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	uint64_t features, pf;
	int step = 0;

	memset(v, 0, sizeof(*v));
	v->rxbuf = rxbuf;
	v->memsize = MEMSIZE;
	v->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if (v->sock < 0 || connect(v->sock, (struct sockaddr *)&sun, sizeof(sun)) != 0)
		return say("connect");
#define STEP(x) do { if (steps >= 0 && step++ >= steps) return 0; if ((x) != 0) return -1; } while (0)
	STEP(send_msg(v, 3 /* SET_OWNER */, 0, NULL, 0, NULL, 0));
	STEP(get_u64(v, 1 /* GET_FEATURES */, &features));
	features &= F_VERSION_1 | F_PROTOCOL_FEATURES | F_INDIRECT | F_EVENT_IDX;
	STEP(send_msg(v, 2 /* SET_FEATURES */, 0, &features, 8, NULL, 0));
	STEP(get_u64(v, 15 /* GET_PROTOCOL_FEATURES */, &pf));
	pf &= PF_REPLY_ACK | PF_CONFIG;
	STEP(send_msg(v, 16 /* SET_PROTOCOL_FEATURES */, 0, &pf, 8, NULL, 0));
	struct { uint32_t off, size, flags; uint8_t data[8]; } cfg = { 0, 8, 0, { 0 } };
	STEP(send_msg(v, 24 /* GET_CONFIG */, 0, &cfg, sizeof(cfg), NULL, 0) ?:
	     recv_reply(v, 24, &cfg, sizeof(cfg)));
	memcpy(&v->guest_cid, cfg.data, 8);

	/* sealed, as QEMU's memory-backend-memfd does: the device refuses memory
	 * that could shrink under its mapping */
	v->memfd = memfd_create("vdrv-guest", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (v->memfd < 0 || ftruncate(v->memfd, (off_t)v->memsize) != 0 ||
	    fcntl(v->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0)
		return say("memfd");
	v->mem = mmap(NULL, v->memsize, PROT_READ | PROT_WRITE, MAP_SHARED, v->memfd, 0);
	if (v->mem == MAP_FAILED)
		return say("mmap");
	layout(v);
	struct { uint32_t n, pad; uint64_t gpa, size, uaddr, off; } mt = {
		1, 0, GPA_BASE, v->memsize, (uint64_t)(uintptr_t)v->mem, 0 };
	STEP(acked(v, 5 /* SET_MEM_TABLE */, &mt, sizeof(mt), &v->memfd, 1));
	for (uint32_t i = 0; i < 2; i++) {
		struct vdrv_ring *r = &v->q[i];
		struct { uint32_t index, num; } st = { i, VDRV_NUM }, base = { i, 0 };
		struct { uint32_t index, flags; uint64_t desc, used, avail, log; } addr = {
			i, 0, (uint64_t)(uintptr_t)(v->mem + r->desc_off),
			(uint64_t)(uintptr_t)(v->mem + r->used_off),
			(uint64_t)(uintptr_t)(v->mem + r->avail_off), 0 };
		struct { uint32_t index, num; } en = { i, 1 };
		uint64_t idx = i;

		r->kick = eventfd(0, EFD_CLOEXEC);
		r->call = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		STEP(acked(v, 8 /* SET_VRING_NUM */, &st, 8, NULL, 0));
		STEP(acked(v, 10 /* SET_VRING_BASE */, &base, 8, NULL, 0));
		STEP(acked(v, 9 /* SET_VRING_ADDR */, &addr, sizeof(addr), NULL, 0));
		STEP(acked(v, 12 /* SET_VRING_KICK */, &idx, 8, &r->kick, 1));
		STEP(acked(v, 13 /* SET_VRING_CALL */, &idx, 8, &r->call, 1));
		STEP(acked(v, 18 /* SET_VRING_ENABLE */, &en, 8, NULL, 0));
	}
#undef STEP
	for (uint16_t id = 0; id < v->nrx; id++)
		post_rx(v, id);
	__atomic_store_n(&v->q[0].avail[1], v->q[0].avail_idx, __ATOMIC_RELEASE);
	eventfd_write(v->q[0].kick, 1);
	return 0;
}

int vdrv_open(struct vdrv *v, const char *path, size_t rxbuf)
{
	if (rxbuf <= VVS_HDR_SIZE || rxbuf > VVS_MAX_PKT) {
		fprintf(stderr, "vdrv: RX buffers of %zu bytes\n", rxbuf);
		return -1;
	}
	return setup(v, path, rxbuf, -1);
}

int vdrv_open_partial(struct vdrv *v, const char *path, int steps)
{
	return setup(v, path, 4096, steps);
}

void vdrv_close(struct vdrv *v)
{
	for (int i = 0; i < 2; i++) {
		if (v->q[i].kick > 0)
			close(v->q[i].kick);
		if (v->q[i].call > 0)
			close(v->q[i].call);
	}
	if (v->mem != NULL && v->mem != MAP_FAILED)
		munmap(v->mem, v->memsize);
	if (v->memfd > 0)
		close(v->memfd);
	if (v->sock >= 0)
		close(v->sock);
}

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* Ask for a call at the next used entry (used_event), then wait for it
 * unless the device got there first. Before that, watch the used index
 * for up to VDRV_SPIN_US without asking (busy polling, so that a device
 * that keeps up is measured without the cost of a wake-up per packet). */
static int wait_call(struct vdrv_ring *r, int timeout_ms)
{
	struct pollfd p = { r->call, POLLIN, 0 };
	eventfd_t x;

	if (timeout_ms == 0)
		return 0;
	for (double end = now_us() + VDRV_SPIN_US; now_us() < end; )
		if (r->last_used != __atomic_load_n(&r->used[1], __ATOMIC_ACQUIRE))
			return 1;
	__atomic_store_n(&r->avail[2 + VDRV_NUM], r->last_used, __ATOMIC_RELEASE);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (r->last_used != __atomic_load_n(&r->used[1], __ATOMIC_ACQUIRE))
		return 1;
	if (poll(&p, 1, timeout_ms) <= 0)
		return 0;
	eventfd_read(r->call, &x);
	return 1;
}

/* Reclaim TX slots the device has used (a bad id is the device's error). */
static int reap_tx(struct vdrv *v)
{
	struct vdrv_ring *r = &v->q[1];

	while (r->last_used != __atomic_load_n(&r->used[1], __ATOMIC_ACQUIRE)) {
		const struct vring_used_elem *e =
			(const struct vring_used_elem *)(r->used + 2) + r->last_used % VDRV_NUM;
		uint32_t id = e->id;

		if (id % 2 != 0 || id / 2 >= VDRV_TX_SLOTS || v->ntx_free == VDRV_TX_SLOTS) {
			fprintf(stderr, "vdrv: used TX id %u\n", id);
			return -1;
		}
		v->tx_free[v->ntx_free++] = (uint16_t)(id / 2);
		r->last_used++;
	}
	return 0;
}

int vdrv_send(struct vdrv *v, struct vvs_hdr *h, const void *payload, size_t len)
{
	struct vdrv_ring *r = &v->q[1];
	uint16_t slot, d0, d1;
	uint8_t *p;

	if (reap_tx(v) != 0)
		return -1;
	while (v->ntx_free == 0) {
		if (!wait_call(r, 5000)) {
			fprintf(stderr, "vdrv: TX ring stuck\n");
			return -1;
		}
		if (reap_tx(v) != 0)
			return -1;
	}
	slot = v->tx_free[--v->ntx_free];
	d0 = (uint16_t)(2 * slot);
	d1 = (uint16_t)(d0 + 1);
	p = v->mem + v->tx_data_off + (uint64_t)slot * TX_SLOT;
	h->len = (uint32_t)len;
	vvs_hdr_encode(h, p);
	if (len > 0)
		memcpy(p + VVS_HDR_SIZE, payload, len);
	r->desc[d0] = (struct vring_desc){ GPA_BASE + (uint64_t)(p - v->mem), VVS_HDR_SIZE,
					   len ? VRING_DESC_F_NEXT : 0, d1 };
	r->desc[d1] = (struct vring_desc){ GPA_BASE + (uint64_t)(p - v->mem) + VVS_HDR_SIZE,
					   (uint32_t)len, 0, 0 };
	r->avail[2 + r->avail_idx % VDRV_NUM] = d0;
	r->avail_idx++;
	publish(r, (uint16_t)(r->avail_idx - 1));
	return 0;
}

int vdrv_send_bad(struct vdrv *v, enum vdrv_bad kind)
{
	struct vdrv_ring *r = &v->q[1];
	uint16_t slot, d0;

	if (reap_tx(v) != 0)
		return -1;
	while (v->ntx_free == 0) {
		if (!wait_call(r, 5000)) {
			fprintf(stderr, "vdrv: TX ring stuck\n");
			return -1;
		}
		if (reap_tx(v) != 0)
			return -1;
	}
	slot = v->tx_free[--v->ntx_free];
	d0 = (uint16_t)(2 * slot);
	bad_desc(&r->desc[d0], d0, GPA_BASE + v->tx_data_off + (uint64_t)slot * TX_SLOT, 0, kind);
	r->avail[2 + r->avail_idx % VDRV_NUM] = d0;
	r->avail_idx++;
	publish(r, (uint16_t)(r->avail_idx - 1));
	return 0;
}

int vdrv_recv(struct vdrv *v, struct vvs_hdr *h, uint8_t *payload, size_t cap, int timeout_ms)
{
	struct vdrv_ring *r = &v->q[0];

	for (;;) {
		if (r->last_used != __atomic_load_n(&r->used[1], __ATOMIC_ACQUIRE)) {
			const struct vring_used_elem *e =
				(const struct vring_used_elem *)(r->used + 2) + r->last_used % VDRV_NUM;
			uint16_t id = (uint16_t)e->id;
			uint32_t len = e->len;
			const uint8_t *buf = v->mem + v->rx_data_off + (uint64_t)id * v->rxbuf;

			r->last_used++;
			if (id >= v->nrx && id < VDRV_NUM && len == 0) {
				v->rx_bad_back++;       /* a malformed one, returned */
				continue;
			}
			if (len < VVS_HDR_SIZE || len > v->rxbuf) {
				fprintf(stderr, "vdrv: used length %u\n", len);
				return -1;
			}
			vvs_hdr_decode(buf, h);
			if (h->len != len - VVS_HDR_SIZE || h->len > cap) {
				fprintf(stderr, "vdrv: packet len %u in %u bytes\n", h->len, len);
				return -1;
			}
			memcpy(payload, buf + VVS_HDR_SIZE, h->len);
			post_rx(v, id);
			publish(r, (uint16_t)(r->avail_idx - 1));
			return 1;
		}
		if (!wait_call(r, timeout_ms))
			return 0;
	}
}
