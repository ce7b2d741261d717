/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_hybrid.c - libFuzzer target for the hybrid bridge (hybrid.c) and
 * the protocol core (device.c) together, with the device's real rings in
 * between. Each input gets a device with a VMM attached (a socketpair)
 * and two 64-entry rings in a sealed memfd that this file also maps, so
 * that it plays the guest in the same process. The input is a list of
 * operations, one byte each with its arguments after it:
 *   client: open (the relay's or a hybrid-socket client), write bytes,
 *   write a CONNECT line, shut down its side, close, read what came;
 *   guest: send a packet (a header from the input, fixed up at will to
 *   the guest's CID, a live connection's ports and the payload's length;
 *   the payload from the input or one byte repeated),
 *   answer every REQUEST it has seen, post RX buffers (some malformed),
 *   take what the device wrote; the loop: run it, or expire deadlines at a
 *   time jumped ahead.
 * Checked on the way: used lengths within the buffers posted, ids the
 * guest gave, every connection's queues within VVS_BUF. After each input
 * (clients closed, VMM dropped) the process holds the descriptors it held
 * before, and no stream or connection is left.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vsock/virtio/vhu_internal.h"
#include "vsock/virtio/virtio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)

#define GUEST_CID 3
#define NUM 64                       /* ring size */
#define SLOT 0x2000                  /* bytes per RX buffer or TX packet */
#define GPA 0x100000ull
#define UADDR 0x40000000ull          /* the "VMM's" address of guest memory */
#define RING_OFF(q) ((uint64_t)(q) * 0x1000)
#define RX_OFF 0x10000ull
#define TX_OFF (RX_OFF + NUM * SLOT)
#define MEMSIZE (TX_OFF + NUM * SLOT)
#define MAX_CLIENTS 4
#define MAX_REQUESTS 16

struct ring {
	struct vring_desc *desc;
	uint16_t *avail, *used;
	uint16_t avail_idx, last_used;
	uint32_t posted[NUM];            /* bytes given with a posted id, 0: free */
};

static uv_loop_t loop;
static struct vhu_device dev;
static int started, memfd;
static uint8_t *mem;
static struct ring rings[2];
static int clients[MAX_CLIENTS];
static int idle_handles;             /* the device's own, with no VMM */
struct request {
	uint32_t host_port, guest_port;
};
static struct request requests[MAX_REQUESTS];
static unsigned nrequests;

/* the input, read from the front; zeros once it runs out */
static const uint8_t *in;
static size_t in_left;

static uint8_t u8(void)
{
	if (in_left == 0)
		return 0;
	in_left--;
	return *in++;
}

static uint32_t u32(void)
{
	return u8() | (uint32_t)u8() << 8 | (uint32_t)u8() << 16 | (uint32_t)u8() << 24;
}

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

static void quiet_log(struct vhu_device *d, int warn, const void *cause, const char *msg)
{
	(void)d;
	(void)warn;
	CHECK(cause != NULL && msg != NULL);
}

static void start(void)
{
	char path[64], err[128];

	snprintf(path, sizeof(path), "/tmp/fuzz-hybrid-%d.sock", (int)getpid());
	uv_loop_init(&loop);
	CHECK(vhu_start(&dev, &loop, path, GUEST_CID, &vhu_hybrid_ops, NULL, err, sizeof(err)) == 0);
	dev.log = quiet_log;
	idle_handles = dev.handles_open;
	memfd = memfd_create("fuzz-hybrid", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	CHECK(memfd >= 0 && ftruncate(memfd, MEMSIZE) == 0);
	CHECK(fcntl(memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) == 0);
	mem = mmap(NULL, MEMSIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	CHECK(mem != MAP_FAILED);
	for (int q = 0; q < 2; q++) {
		rings[q].desc = (struct vring_desc *)(mem + RING_OFF(q));
		rings[q].avail = (uint16_t *)(mem + RING_OFF(q) + 0x400);
		rings[q].used = (uint16_t *)(mem + RING_OFF(q) + 0x800);
	}
	started = 1;
}

/* ---- the VMM's part: one message as QEMU would send it ---- */

static void message(uint32_t request, const void *payload, uint32_t len, int fd)
{
	struct vhu_msg m;

	memset(&m, 0, sizeof(m));
	m.request = request;
	m.flags = VHU_VERSION;
	m.size = len;
	memcpy(&m.p, payload, len);
	if (fd >= 0)
		m.fds[m.nfds++] = fd;
	CHECK(vhu_message(&dev, &m) == NULL);
	vhu_close_fds(&m);
}

static void attach_vmm(void)
{
	uint64_t features = 1ull << 32;   /* VERSION_1 only: rings start with their kick */
	struct { uint32_t n, pad; uint64_t gpa, size, uaddr, off; } mt = {
		1, 0, GPA, MEMSIZE, UADDR, 0 };

	memset(mem, 0, TX_OFF);           /* fresh rings */
	memset(rings[0].posted, 0, sizeof(rings[0].posted));
	memset(rings[1].posted, 0, sizeof(rings[1].posted));
	rings[0].avail_idx = rings[0].last_used = rings[1].avail_idx = rings[1].last_used = 0;
	message(2 /* SET_FEATURES */, &features, 8, -1);
	message(5 /* SET_MEM_TABLE */, &mt, sizeof(mt), dup(memfd));
	for (uint32_t q = 0; q < 2; q++) {
		struct { uint32_t index, num; } st = { q, NUM }, base = { q, 0 }, en = { q, 1 };
		struct { uint32_t index, flags; uint64_t desc, used, avail, log; } addr = {
			q, 0, UADDR + RING_OFF(q), UADDR + RING_OFF(q) + 0x800,
			UADDR + RING_OFF(q) + 0x400, 0 };
		uint64_t idx = q;

		message(8 /* SET_VRING_NUM */, &st, 8, -1);
		message(10 /* SET_VRING_BASE */, &base, 8, -1);
		message(9 /* SET_VRING_ADDR */, &addr, sizeof(addr), -1);
		message(12 /* SET_VRING_KICK */, &idx, 8, eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
		message(13 /* SET_VRING_CALL */, &idx, 8, eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
		message(18 /* SET_VRING_ENABLE */, &en, 8, -1);
	}
	CHECK(vhu_ready(&dev));
}

/* ---- the guest's part ---- */

static int free_id(const struct ring *r, unsigned from, unsigned step)
{
	for (unsigned id = from; id < NUM; id += step)
		if (r->posted[id] == 0)
			return (int)id;
	return -1;
}

static void make_available(struct ring *r, uint16_t id)
{
	r->avail[2 + r->avail_idx % NUM] = id;
	r->avail_idx++;
	__atomic_store_n(&r->avail[1], r->avail_idx, __ATOMIC_RELEASE);
}

/* Take the used ring's news: check it, free the ids, note REQUESTs. */
static void reap(int q)
{
	struct ring *r = &rings[q];
	uint16_t used = __atomic_load_n(&r->used[1], __ATOMIC_ACQUIRE);

	CHECK((uint16_t)(used - r->last_used) <= NUM);
	while (r->last_used != used) {
		const struct vring_used_elem *e =
			(const struct vring_used_elem *)(r->used + 2) + r->last_used % NUM;
		uint32_t id = e->id, len = e->len;

		r->last_used++;
		CHECK(id < NUM && r->posted[id] != 0);
		if (q == 0) {
			CHECK(len <= r->posted[id] && (len == 0 || len >= VVS_HDR_SIZE));
			if (len >= VVS_HDR_SIZE) {
				struct vvs_hdr h;

				vvs_hdr_decode(mem + RX_OFF + id * SLOT, &h);
				CHECK(h.len == len - VVS_HDR_SIZE && h.src_cid == VVS_HOST_CID &&
				      h.dst_cid == GUEST_CID);
				if (h.op == VVS_OP_REQUEST && nrequests < MAX_REQUESTS)
					requests[nrequests++] = (struct request){ h.src_port,
										  h.dst_port };
			}
		} else {
			CHECK(len == 0 && id % 2 == 0);
			r->posted[id + 1] = 0;
		}
		r->posted[id] = 0;
	}
}

/* A packet on the TX ring, as header and payload descriptors, or one. */
static void guest_send(const struct vvs_hdr *h, const uint8_t *payload, size_t len, int split)
{
	struct ring *r = &rings[1];
	int id = free_id(r, 0, 2);
	uint8_t *p;
	uint64_t gpa;

	if (id < 0)
		return;
	p = mem + TX_OFF + (uint64_t)id * SLOT;
	gpa = GPA + TX_OFF + (uint64_t)id * SLOT;
	vvs_hdr_encode(h, p);
	if (len > 0)
		memcpy(p + VVS_HDR_SIZE, payload, len);
	if (split && len > 0) {
		r->desc[id] = (struct vring_desc){ gpa, VVS_HDR_SIZE, VRING_DESC_F_NEXT,
						   (uint16_t)(id + 1) };
		r->desc[id + 1] = (struct vring_desc){ gpa + VVS_HDR_SIZE, (uint32_t)len, 0, 0 };
	} else {
		r->desc[id] = (struct vring_desc){ gpa, (uint32_t)(VVS_HDR_SIZE + len), 0, 0 };
	}
	r->posted[id] = r->posted[id + 1] = 1;
	make_available(r, (uint16_t)id);
	vhu_process_tx(&dev);
	reap(1);
}

static void op_packet(void)
{
	static uint8_t payload[SLOT - VVS_HDR_SIZE];
	uint8_t raw[VVS_HDR_SIZE], fix = u8();
	struct vvs_hdr h;
	size_t len = (u8() | (size_t)u8() << 8) % sizeof(payload);

	for (size_t i = 0; i < sizeof(raw); i++)
		raw[i] = u8();
	for (size_t i = 0; i < len; i++)   /* from the input, or bulk of one byte */
		payload[i] = (fix & 64) ? raw[2] : u8();
	vvs_hdr_decode(raw, &h);
	if (fix & 1) {
		h.src_cid = GUEST_CID;
		h.dst_cid = VVS_HOST_CID;
	}
	if ((fix & 2) && dev.vvs.nconns > 0) {
		const struct vvs_conn *c = dev.vvs.conns[raw[0] % dev.vvs.nconns];

		h.src_port = c->guest_port;
		h.dst_port = c->host_port;
	}
	if (fix & 4)
		h.len = (uint32_t)len;
	if (fix & 8)
		h.type = VVS_TYPE_STREAM;
	if (fix & 16)
		h.op = (uint16_t)(1 + raw[1] % 7);
	guest_send(&h, payload, len, fix & 32);
}

static void op_accept_all(void)
{
	uint32_t buf_alloc = u32();

	for (unsigned i = 0; i < nrequests; i++) {
		struct vvs_hdr h = { .src_cid = GUEST_CID, .dst_cid = VVS_HOST_CID,
				     .src_port = requests[i].guest_port,
				     .dst_port = requests[i].host_port, .type = VVS_TYPE_STREAM,
				     .op = VVS_OP_RESPONSE, .buf_alloc = buf_alloc };

		guest_send(&h, NULL, 0, 0);
	}
	nrequests = 0;
}

static void op_post_rx(void)
{
	struct ring *r = &rings[0];
	unsigned n = u8() % 16;

	for (unsigned i = 0; i < n; i++) {
		uint8_t how = u8();
		uint32_t len = (u8() | (uint32_t)u8() << 8) % (SLOT + 1);
		int id = free_id(r, 0, 1);
		uint64_t gpa;

		if (id < 0)
			break;
		gpa = GPA + RX_OFF + (uint64_t)id * SLOT;
		switch (how % 8) {
		case 0:                   /* readable: wrong direction */
			r->desc[id] = (struct vring_desc){ gpa, len, 0, 0 };
			break;
		case 1:                   /* outside guest memory */
			r->desc[id] = (struct vring_desc){ GPA + MEMSIZE, len, VRING_DESC_F_WRITE, 0 };
			break;
		case 2:                   /* a chain onto itself */
			r->desc[id] = (struct vring_desc){ gpa, len, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT,
							   (uint16_t)id };
			break;
		default:                  /* of the size asked, maybe shorter than a header */
			r->desc[id] = (struct vring_desc){ gpa, len, VRING_DESC_F_WRITE, 0 };
			break;
		}
		r->posted[id] = len > 0 ? len : 1;
		make_available(r, (uint16_t)id);
	}
	vhu_flush(&dev);
	reap(0);
}

/* ---- clients ---- */

static void op_client_open(void)
{
	uint8_t which = u8();
	int i = which % MAX_CLIENTS, sv[2];

	if (clients[i] >= 0)
		return;
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
	if (which & 0x80)
		CHECK(vhu_hybrid_serve_client(&dev, sv[1]) == 0);
	else
		CHECK(vhu_hybrid_serve(&dev, sv[1]) == 0);
	clients[i] = sv[0];
}

static void client_write(int i, const void *p, size_t len)
{
	if (clients[i] >= 0 && len > 0)
		(void)!send(clients[i], p, len, MSG_NOSIGNAL);
}

static void op_client_bytes(void)
{
	uint8_t buf[256];
	int i = u8() % MAX_CLIENTS;
	size_t len = u8();

	for (size_t k = 0; k < len; k++)
		buf[k] = u8();
	client_write(i, buf, len);
}

static void op_client_connect(void)
{
	static const uint32_t ports[] = { 5555, 5556, 0, 0xffffffffu };
	char line[32];
	int i = u8() % MAX_CLIENTS;
	uint8_t pick = u8();
	uint32_t port = pick < 4 ? ports[pick] : u32();

	client_write(i, line, (size_t)snprintf(line, sizeof(line), "CONNECT %u\n", port));
}

static void op_client_end(int shut)
{
	int i = u8() % MAX_CLIENTS;

	if (clients[i] < 0)
		return;
	if (shut) {
		shutdown(clients[i], SHUT_WR);
		return;
	}
	close(clients[i]);
	clients[i] = -1;
}

static void op_client_read(void)
{
	char sink[4096];
	int i = u8() % MAX_CLIENTS, n = 0;

	while (clients[i] >= 0 && read(clients[i], sink, sizeof(sink)) > 0 && ++n < 64)
		;
}

static void check_queues(void)
{
	CHECK(dev.vvs.nconns <= VVS_MAX_CONNS);
	for (unsigned i = 0; i < dev.vvs.nconns; i++)
		CHECK(dev.vvs.conns[i]->rx.len <= VVS_BUF && dev.vvs.conns[i]->tx.len <= VVS_BUF);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int sv[2], before, ops = 0;

	if (!started)
		start();
	uv_run(&loop, UV_RUN_NOWAIT);
	before = open_fds();
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
	CHECK(vhu_conn_open(&dev, sv[0]) == 0);
	attach_vmm();
	for (int i = 0; i < MAX_CLIENTS; i++)
		clients[i] = -1;
	nrequests = 0;
	in = data;
	in_left = size;
	while (in_left > 0 && ops++ < 2000) {
		switch (u8() % 12) {
		case 0: op_client_open(); break;
		case 1: op_client_bytes(); break;
		case 2: op_client_connect(); break;
		case 3: op_client_end(1); break;
		case 4: op_client_end(0); break;
		case 5: op_client_read(); break;
		case 6: op_packet(); break;
		case 7: op_accept_all(); break;
		case 8: op_post_rx(); break;
		case 9: reap(0); break;
		case 10: uv_run(&loop, UV_RUN_NOWAIT); break;
		case 11: vvs_expire(&dev.vvs, uv_now(&loop) + (uint64_t)u8() * 1000); break;
		}
		check_queues();
	}
	for (int i = 0; i < MAX_CLIENTS; i++)
		if (clients[i] >= 0)
			close(clients[i]);
	vhu_drop_vmm(&dev, "fuzz input done");
	vhu_hybrid_close_all(&dev);
	close(sv[1]);
	for (int i = 0; i < 10 && dev.handles_open > idle_handles; i++)
		uv_run(&loop, UV_RUN_NOWAIT);
	CHECK(dev.streams == NULL && dev.vvs.nconns == 0);
	CHECK(open_fds() == before);
	return 0;
}
