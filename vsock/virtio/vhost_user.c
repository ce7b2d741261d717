/*
 * vhost_user.c - the vhost-user back end of the relay's virtio-vsock
 * device: the listening socket, one VMM connection, its messages (a
 * dispatch table, each handler owning the descriptors it adopts; every
 * other received descriptor is closed after the message), guest memory
 * mappings, and the two virtqueues moving packets between the guest and
 * the protocol core.
 */
#include "vhost_user.h"
#include "vhu_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

enum {
	VHU_GET_FEATURES = 1, VHU_SET_FEATURES = 2, VHU_SET_OWNER = 3, VHU_RESET_OWNER = 4,
	VHU_SET_MEM_TABLE = 5, VHU_SET_VRING_NUM = 8, VHU_SET_VRING_ADDR = 9,
	VHU_SET_VRING_BASE = 10, VHU_GET_VRING_BASE = 11, VHU_SET_VRING_KICK = 12,
	VHU_SET_VRING_CALL = 13, VHU_SET_VRING_ERR = 14, VHU_GET_PROTOCOL_FEATURES = 15,
	VHU_SET_PROTOCOL_FEATURES = 16, VHU_GET_QUEUE_NUM = 17, VHU_SET_VRING_ENABLE = 18,
	VHU_GET_CONFIG = 24, VHU_SET_CONFIG = 25,
};

#define VHU_VERSION 0x1u
#define VHU_FLAG_REPLY 0x4u
#define VHU_FLAG_NEED_REPLY 0x8u
#define VHU_VRING_NOFD (1u << 8)

#define F_INDIRECT_DESC (1ull << 28)
#define F_EVENT_IDX (1ull << 29)
#define F_PROTOCOL_FEATURES (1ull << 30)
#define F_VERSION_1 (1ull << 32)
#define OFFERED_FEATURES (F_INDIRECT_DESC | F_EVENT_IDX | F_PROTOCOL_FEATURES | F_VERSION_1)
#define PF_REPLY_ACK (1ull << 3)
#define PF_CONFIG (1ull << 9)
#define OFFERED_PROTOCOL (PF_REPLY_ACK | PF_CONFIG)

#define HDR_SIZE 12
#define TX_BUDGET 256          /* packets per kick before yielding */
#define IO_TIMEOUT_MS 1000

void vhu_log(struct vhu_device *d, int warn, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (d->log == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	d->log(d, warn, msg);
}

static void fail_device(struct vhu_device *d, const char *why)
{
	if (d->failed[0] == '\0')
		vhu_log(d, 1, "device failed: %s", why);
	snprintf(d->failed, sizeof(d->failed), "%s", why);
}

/* ---- socket I/O: a whole message or nothing, bounded in time ---- */

static int wait_fd(int fd, short events)
{
	struct pollfd p = { fd, events, 0 };
	int n = poll(&p, 1, IO_TIMEOUT_MS);

	return n == 1 ? 0 : n == 0 ? -ETIMEDOUT : -errno;
}

static int read_full(int fd, void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = read(fd, (uint8_t *)buf + done, len - done);
		if (n > 0) {
			done += (size_t)n;
		} else if (n == 0) {
			return -ECONNRESET;
		} else if (errno == EAGAIN) {
			int rc = wait_fd(fd, POLLIN);
			if (rc != 0)
				return rc;
		} else if (errno != EINTR) {
			return -errno;
		}
	}
	return 0;
}

static int write_full(int fd, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = send(fd, (const uint8_t *)buf + done, len - done, MSG_NOSIGNAL);
		if (n > 0) {
			done += (size_t)n;
		} else if (n < 0 && errno == EAGAIN) {
			int rc = wait_fd(fd, POLLOUT);
			if (rc != 0)
				return rc;
		} else if (n < 0 && errno != EINTR) {
			return -errno;
		}
	}
	return 0;
}

void vhu_close_fds(struct vhu_msg *m)
{
	for (int i = 0; i < m->nfds; i++)
		if (m->fds[i] >= 0)
			close(m->fds[i]);
	m->nfds = 0;
}

/* Read one message and the descriptors riding with its header. */
static int read_msg(int fd, struct vhu_msg *m, const char **why)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(VHU_MAX_FDS * sizeof(int))];
	} ctl;
	struct iovec iov = { m, HDR_SIZE };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl.buf) };
	ssize_t n;

	m->nfds = 0;
	do
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n == 0) {
		*why = "VMM closed the connection";
		return -ECONNRESET;
	}
	if (n < 0) {
		*why = "read failed";
		return -errno;
	}
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		int count = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (int i = 0; i < count; i++) {
			int f;
			memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (m->nfds < VHU_MAX_FDS)
				m->fds[m->nfds++] = f;
			else
				close(f);
		}
	}
	if (mh.msg_flags & MSG_CTRUNC) {
		/* descriptors were lost (fd limit?): nothing can be trusted */
		vhu_close_fds(m);
		*why = "descriptors truncated (MSG_CTRUNC)";
		return -EMSGSIZE;
	}
	if (n < HDR_SIZE && read_full(fd, (uint8_t *)m + n, HDR_SIZE - (size_t)n) != 0) {
		vhu_close_fds(m);
		*why = "truncated header";
		return -EPROTO;
	}
	if ((m->flags & 3u) != VHU_VERSION || m->size > sizeof(m->p)) {
		vhu_close_fds(m);
		*why = m->size > sizeof(m->p) ? "message too large" : "bad version";
		return -EPROTO;
	}
	if (m->size > 0 && read_full(fd, &m->p, m->size) != 0) {
		vhu_close_fds(m);
		*why = "truncated payload";
		return -EPROTO;
	}
	return 0;
}

static int reply(struct vhu_device *d, struct vhu_msg *m, const void *payload, uint32_t size)
{
	uint8_t buf[HDR_SIZE + sizeof(m->p)];
	uint32_t hdr[3] = { m->request, VHU_VERSION | VHU_FLAG_REPLY, size };

	memcpy(buf, hdr, HDR_SIZE);
	memcpy(buf + HDR_SIZE, payload, size);
	return write_full(d->conn_fd, buf, HDR_SIZE + size);
}

static int reply_u64(struct vhu_device *d, struct vhu_msg *m, uint64_t v)
{
	return reply(d, m, &v, sizeof(v));
}

/* ---- queues ---- */

static void on_flush_idle(uv_idle_t *h);

/* Flush on the next loop iteration, not inside whatever asked for it. */
static void schedule_flush(struct vhu_device *d)
{
	if (!d->flush_pending) {
		d->flush_pending = 1;
		uv_idle_start(&d->flush_idle, on_flush_idle);
	}
}

static void notify(struct vhu_queue *q, struct vhu_device *d)
{
	if (q->call_fd >= 0 && vring_need_notify(&q->vr)) {
		eventfd_write(q->call_fd, 1);
		d->st.calls++;
	}
}

static int queue_ready(const struct vhu_queue *q)
{
	return q->enabled && q->vr.num != 0;
}

int vhu_ready(const struct vhu_device *d)
{
	return d->conn_fd >= 0 && d->failed[0] == '\0' && queue_ready(&d->q[0]) &&
	       queue_ready(&d->q[1]);
}

void vhu_process_tx(struct vhu_device *d)
{
	struct vhu_queue *q = &d->q[1];
	struct vring_chain ch;
	int n = 0;

	if (!queue_ready(q) || d->failed[0] != '\0')
		return;     /* a kick before the ring is set up, or a failed device */
	for (;;) {
		enum vring_status st = vring_pop(&q->vr, &d->mem, &ch);
		size_t len = 0;

		if (st == VRING_EMPTY) {
			/* re-arm kicks, then look once more: the guest may have
			 * queued a packet it will not kick for */
			if (!vring_enable_kicks(&q->vr))
				break;
			continue;
		}
		if (st == VRING_EBADRING) {
			fail_device(d, "tx ring: driver made more available than the ring holds");
			return;
		}
		if (st == VRING_OK && (ch.out_len < VVS_HDR_SIZE ||
				       ch.out_len > VVS_MAX_PKT)) {
			st = VRING_EBADCHAIN;
			ch.error = "tx packet of a bad size";
		}
		if (st == VRING_OK && ch.nout <= 2 && ch.out[0].iov_len == VVS_HDR_SIZE) {
			/* the usual split, header then payload: use guest memory as is */
			vvs_input(&d->vvs, ch.out[0].iov_base,
				  ch.nout == 2 ? ch.out[1].iov_base : NULL, ch.out_len - VVS_HDR_SIZE);
		} else if (st == VRING_OK) {
			/* gather header and payload, whatever the descriptor split */
			for (unsigned i = 0; i < ch.nout; i++) {
				memcpy(d->pkt + len, ch.out[i].iov_base, ch.out[i].iov_len);
				len += ch.out[i].iov_len;
			}
			vvs_input(&d->vvs, d->pkt, d->pkt + VVS_HDR_SIZE, len - VVS_HDR_SIZE);
		} else {
			d->st.bad_chains++;
			vhu_log(d, 1, "tx chain %u dropped: %s", ch.head, ch.error);
		}
		vring_push(&q->vr, ch.head, 0);
		if (d->failed[0] != '\0')
			return;
		if (++n == TX_BUDGET) {
			/* let other work run; come back on the next loop turn */
			d->tx_pending = 1;
			schedule_flush(d);
			break;
		}
	}
	notify(q, d);
}

void vhu_flush(struct vhu_device *d)
{
	struct vhu_queue *q = &d->q[0];
	struct vring_chain ch;
	int pushed = 0;

	if (!queue_ready(q) || d->failed[0] != '\0')
		return;
	while (d->failed[0] == '\0') {
		enum vring_status st = vring_pop(&q->vr, &d->mem, &ch);
		size_t n, cap, done = 0;

		if (st == VRING_EMPTY) {
			if (!vring_enable_kicks(&q->vr))
				break;
			continue;       /* buffers came while we re-armed kicks */
		}
		if (st == VRING_EBADRING) {
			fail_device(d, "rx ring: driver made more available than the ring holds");
			return;
		}
		if (st == VRING_OK && (ch.nout > 0 || ch.in_len < VVS_HDR_SIZE)) {
			st = VRING_EBADCHAIN;
			ch.error = "rx buffer not writable or shorter than a header";
		}
		if (st != VRING_OK) {
			d->st.bad_chains++;
			vhu_log(d, 1, "rx chain %u dropped: %s", ch.head, ch.error);
			vring_push(&q->vr, ch.head, 0);
			pushed++;
			continue;
		}
		cap = ch.in_len < VVS_MAX_PKT ? ch.in_len : VVS_MAX_PKT;
		if (ch.nin == 1) {
			/* one buffer, as Linux posts them: write the packet in place */
			n = vvs_output(&d->vvs, ch.in[0].iov_base, cap);
		} else {
			n = vvs_output(&d->vvs, d->pkt, cap);
			for (unsigned i = 0; i < ch.nin && done < n; i++) {
				size_t k = ch.in[i].iov_len < n - done ? ch.in[i].iov_len : n - done;
				memcpy(ch.in[i].iov_base, d->pkt + done, k);
				done += k;
			}
		}
		if (n == 0) {
			q->vr.last_avail--;   /* keep the buffer for later */
			break;
		}
		vring_push(&q->vr, ch.head, (uint32_t)n);
		pushed++;
	}
	if (pushed || d->rx_unsignalled)
		notify(q, d);
	d->rx_unsignalled = 0;
}

/* The protocol core's direct path: one RX buffer of the usual shape (a
 * single writable descriptor), or NULL and the ring untouched, for
 * vhu_flush() to deal with whatever else is there. */
static uint8_t *core_rx_buffer(struct vvs_device *v, size_t *cap)
{
	struct vhu_device *d = v->data;
	struct vhu_queue *q = &d->q[0];
	struct vring_chain ch;

	if (!queue_ready(q) || d->failed[0] != '\0')
		return NULL;
	if (vring_pop(&q->vr, &d->mem, &ch) != VRING_OK)
		return NULL;       /* EMPTY, or left for vhu_flush to report */
	if (ch.nin != 1 || ch.nout > 0 || ch.in_len <= VVS_HDR_SIZE) {
		q->vr.last_avail--;
		return NULL;
	}
	d->rx_head = ch.head;
	*cap = ch.in_len < VVS_MAX_PKT ? ch.in_len : VVS_MAX_PKT;
	return ch.in[0].iov_base;
}

/* The call for buffers used this way goes out on the next loop turn, one
 * for all of them. */
static void core_rx_commit(struct vvs_device *v, size_t len)
{
	struct vhu_device *d = v->data;

	vring_push(&d->q[0].vr, d->rx_head, (uint32_t)len);
	d->rx_unsignalled = 1;
	schedule_flush(d);
}

/* ---- watched descriptors: one heap handle per watch, freed on close ---- */

struct watch {
	uv_poll_t poll;
	struct vhu_device *dev;
};

static uv_poll_t *watch_start(struct vhu_device *d, int fd, uv_poll_cb cb, void *ctx)
{
	struct watch *w = malloc(sizeof(*w));

	if (w == NULL)
		return NULL;
	w->dev = d;
	if (uv_poll_init(d->loop, &w->poll, fd) != 0) {
		free(w);
		return NULL;
	}
	w->poll.data = ctx;
	uv_poll_start(&w->poll, UV_READABLE, cb);
	d->handles_open++;
	return &w->poll;
}

static void handle_gone(struct vhu_device *d)
{
	if (--d->handles_open == 0 && d->on_closed != NULL)
		d->on_closed(d);
}

static void watch_closed(uv_handle_t *h)
{
	struct watch *w = (struct watch *)h;
	struct vhu_device *d = w->dev;

	free(w);
	handle_gone(d);
}

static void watch_stop(uv_poll_t **w)
{
	if (*w != NULL)
		uv_close((uv_handle_t *)*w, watch_closed);
	*w = NULL;
}

static void on_kick(uv_poll_t *p, int status, int events)
{
	struct vhu_queue *q = p->data;
	struct vhu_device *d = q->dev;
	eventfd_t v;

	(void)status;
	(void)events;
	if (eventfd_read(q->kick_fd, &v) != 0 && errno != EAGAIN)
		return;
	d->st.kicks++;
	if (q->index == 1)
		vhu_process_tx(d);
	vhu_flush(d);
}

static void stop_kicks(struct vhu_queue *q)
{
	watch_stop(&q->kick_watch);
}

static void start_kicks(struct vhu_queue *q)
{
	if (q->kick_watch == NULL && q->kick_fd >= 0)
		q->kick_watch = watch_start(q->dev, q->kick_fd, on_kick, q);
}

static int setup_ring(struct vhu_device *d, struct vhu_queue *q)
{
	if (q->num == 0 || q->desc_ua == 0)
		return 0;      /* not all known yet */
	if (vring_setup(&q->vr, &d->mem, q->num, q->desc_ua, q->avail_ua, q->used_ua,
			(d->features & F_EVENT_IDX) != 0) != 0)
		return -1;
	q->vr.last_avail = q->base;
	return 0;
}

static void reset_queue(struct vhu_queue *q)
{
	stop_kicks(q);
	if (q->kick_fd >= 0)
		close(q->kick_fd);
	if (q->call_fd >= 0)
		close(q->call_fd);
	q->kick_fd = q->call_fd = -1;
	memset(&q->vr, 0, sizeof(q->vr));
	q->num = 0;
	q->base = 0;
	q->desc_ua = q->avail_ua = q->used_ua = 0;
	q->enabled = 0;
}

static void unmap_memory(struct vhu_device *d)
{
	for (unsigned i = 0; i < d->mem.n; i++)
		munmap(d->maps[i], d->map_len[i]);
	memset(&d->mem, 0, sizeof(d->mem));
	memset(d->maps, 0, sizeof(d->maps));
}

/* Everything the VMM gave us goes back: rings, eventfds, mappings, and
 * every vsock connection is reset. */
static void reset_device(struct vhu_device *d, const char *why)
{
	for (int i = 0; i < VHU_NQUEUES; i++)
		reset_queue(&d->q[i]);
	unmap_memory(d);
	vvs_device_reset(&d->vvs, why);
	d->features = d->protocol_features = 0;
	d->owner = 0;
	d->rx_unsignalled = 0;
	d->failed[0] = '\0';
}


/* ---- message handlers: 0 ok (acked if asked), 1 replied, <0 error ---- */

static struct vhu_queue *queue_of(struct vhu_device *d, uint32_t index)
{
	return index < VHU_NQUEUES ? &d->q[index] : NULL;
}

static int set_mem_table(struct vhu_device *d, struct vhu_msg *m)
{
	uint32_t n = m->p.mem.nregions;

	if (m->size < 8 + n * 32u || n == 0 || n > GM_MAX_REGIONS || (int)n != m->nfds)
		return -EINVAL;
	for (int i = 0; i < VHU_NQUEUES; i++)
		memset(&d->q[i].vr, 0, sizeof(d->q[i].vr));   /* re-translated below */
	unmap_memory(d);
	for (uint32_t i = 0; i < n; i++) {
		uint64_t size = m->p.mem.r[i].size, off = m->p.mem.r[i].offset;
		struct stat sb;
		void *p;

		if (size == 0 || off > UINT64_MAX - size)
			goto bad;
		/* memory past the end of the file would fault (SIGBUS) on first
		 * touch: the region must be backed by a file that large */
		if (fstat(m->fds[i], &sb) != 0 || !S_ISREG(sb.st_mode) ||
		    size + off > (uint64_t)sb.st_size)
			goto bad;
		p = mmap(NULL, size + off, PROT_READ | PROT_WRITE, MAP_SHARED, m->fds[i], 0);
		if (p == MAP_FAILED)
			goto bad;
		d->maps[i] = p;
		d->map_len[i] = size + off;
		d->mem.r[i] = (struct gm_region){ m->p.mem.r[i].gpa, size, m->p.mem.r[i].uaddr,
						  (uint8_t *)p + off };
		d->mem.n = i + 1;
	}
	vhu_close_fds(m);       /* the mappings keep the memory */
	for (int i = 0; i < VHU_NQUEUES; i++)
		if (setup_ring(d, &d->q[i]) != 0)
			return -EINVAL;
	return 0;
bad:
	unmap_memory(d);
	return -EINVAL;
}

static int set_vring_fd(struct vhu_device *d, struct vhu_msg *m, int kick)
{
	struct vhu_queue *q = queue_of(d, (uint32_t)(m->p.u64 & 0xff));
	int fd = -1;

	if (q == NULL)
		return -EINVAL;
	if (!(m->p.u64 & VHU_VRING_NOFD)) {
		if (m->nfds != 1)
			return -EINVAL;
		fd = m->fds[0];
		m->fds[0] = -1;     /* adopted */
	}
	if (kick) {
		stop_kicks(q);
		if (q->kick_fd >= 0)
			close(q->kick_fd);
		q->kick_fd = fd;
		/* without protocol features a ring starts when its kick fd comes */
		if (!(d->features & F_PROTOCOL_FEATURES))
			q->enabled = 1;
		start_kicks(q);
	} else {
		if (q->call_fd >= 0)
			close(q->call_fd);
		q->call_fd = fd;
	}
	return 0;
}

int vhu_handle(struct vhu_device *d, struct vhu_msg *m)
{
	struct vhu_queue *q;

	switch (m->request) {
	case VHU_GET_FEATURES:
		return reply_u64(d, m, OFFERED_FEATURES) ?: 1;
	case VHU_SET_FEATURES:
		if (m->size < 8 || (m->p.u64 & ~OFFERED_FEATURES))
			return -EINVAL;
		d->features = m->p.u64;
		return 0;
	case VHU_SET_OWNER:
		d->owner = 1;
		return 0;
	case VHU_RESET_OWNER:
		reset_device(d, "VMM reset the device");
		return 0;
	case VHU_GET_PROTOCOL_FEATURES:
		return reply_u64(d, m, OFFERED_PROTOCOL) ?: 1;
	case VHU_SET_PROTOCOL_FEATURES:
		if (m->size < 8)
			return -EINVAL;
		d->protocol_features = m->p.u64 & OFFERED_PROTOCOL;
		return 0;
	case VHU_GET_QUEUE_NUM:
		return reply_u64(d, m, VHU_NQUEUES) ?: 1;
	case VHU_SET_MEM_TABLE:
		return set_mem_table(d, m);
	case VHU_SET_VRING_NUM:
		if ((q = queue_of(d, m->p.state.index)) == NULL || m->p.state.num == 0 ||
		    m->p.state.num > 32768 || (m->p.state.num & (m->p.state.num - 1)))
			return -EINVAL;
		q->num = m->p.state.num;
		return 0;
	case VHU_SET_VRING_BASE:
		if ((q = queue_of(d, m->p.state.index)) == NULL || m->p.state.num > 0xffff)
			return -EINVAL;
		q->base = (uint16_t)m->p.state.num;
		q->vr.last_avail = q->base;
		return 0;
	case VHU_SET_VRING_ADDR:
		if ((q = queue_of(d, m->p.addr.index)) == NULL)
			return -EINVAL;
		q->desc_ua = m->p.addr.desc;
		q->avail_ua = m->p.addr.avail;
		q->used_ua = m->p.addr.used;
		return setup_ring(d, q) == 0 ? 0 : -EINVAL;
	case VHU_GET_VRING_BASE: {
		struct { uint32_t index, num; } st;

		if ((q = queue_of(d, m->p.state.index)) == NULL)
			return -EINVAL;
		/* the ring stops here, as the spec says */
		q->enabled = 0;
		stop_kicks(q);
		st.index = m->p.state.index;
		st.num = q->vr.last_avail;
		q->base = q->vr.last_avail;
		/* both rings stopped: the guest reset its device (reboot, driver
		 * reload) and forgot every connection; so do we */
		if (!d->q[0].enabled && !d->q[1].enabled && d->vvs.nconns > 0)
			vvs_device_reset(&d->vvs, "guest reset its vsock device");
		return reply(d, m, &st, sizeof(st)) ?: 1;
	}
	case VHU_SET_VRING_KICK:
		return set_vring_fd(d, m, 1);
	case VHU_SET_VRING_CALL:
		return set_vring_fd(d, m, 0);
	case VHU_SET_VRING_ERR:
		return 0;           /* its fd, if any, is closed with the message */
	case VHU_SET_VRING_ENABLE:
		if ((q = queue_of(d, m->p.state.index)) == NULL)
			return -EINVAL;
		q->enabled = m->p.state.num != 0;
		if (q->enabled) {
			start_kicks(q);
			schedule_flush(d);
		}
		return 0;
	case VHU_GET_CONFIG: {
		uint8_t space[8];
		uint32_t off = m->p.config.offset, size = m->p.config.size;

		if (m->size < 12 || size > sizeof(m->p.config.data) || off > sizeof(space) ||
		    size > sizeof(space) - off)
			return -EINVAL;
		for (int i = 0; i < 8; i++)
			space[i] = (uint8_t)(d->vvs.guest_cid >> (8 * i));
		memcpy(m->p.config.data, space + off, size);
		return reply(d, m, &m->p.config, 12 + size) ?: 1;
	}
	case VHU_SET_CONFIG:
		return 0;           /* guest_cid is ours to decide */
	default:
		vhu_log(d, 1, "unsupported vhost-user request %u", m->request);
		return -ENOTSUP;
	}
}

/* ---- the VMM connection ---- */

void vhu_drop_vmm(struct vhu_device *d, const char *why)
{
	if (d->conn_fd < 0)
		return;
	vhu_log(d, 0, "VMM disconnected: %s", why);
	d->st.disconnects++;
	reset_device(d, "VMM disconnected");
	watch_stop(&d->conn_watch);
	close(d->conn_fd);
	d->conn_fd = -1;
}

static void on_vmm(uv_poll_t *p, int status, int events)
{
	struct vhu_device *d = p->data;
	struct vhu_msg m;
	const char *why = "";
	int rc;

	(void)events;
	if (status < 0) {
		vhu_drop_vmm(d, uv_strerror(status));
		return;
	}
	if (read_msg(d->conn_fd, &m, &why) != 0) {
		vhu_drop_vmm(d, why);
		return;
	}
	d->st.messages++;
	rc = vhu_handle(d, &m);
	vhu_close_fds(&m);
	if (rc < 0) {
		d->st.bad_messages++;
		vhu_log(d, 1, "vhost-user request %u rejected: %s", m.request, strerror(-rc));
	}
	if (rc <= 0 && (m.flags & VHU_FLAG_NEED_REPLY) && (d->protocol_features & PF_REPLY_ACK)) {
		if (reply_u64(d, &m, rc == 0 ? 0 : 1) != 0)
			vhu_drop_vmm(d, "cannot reply");
	} else if (rc < 0 && rc != -ENOTSUP) {
		vhu_drop_vmm(d, "malformed request");
	}
}

static void on_listener(uv_poll_t *p, int status, int events)
{
	struct vhu_device *d = p->data;
	int fd;

	(void)status;
	(void)events;
	fd = accept4(d->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (d->conn_fd >= 0) {
		vhu_log(d, 1, "second VMM connection refused");
		close(fd);
		return;
	}
	d->conn_watch = watch_start(d, fd, on_vmm, d);
	if (d->conn_watch == NULL) {
		close(fd);
		return;
	}
	d->conn_fd = fd;
	d->st.connects++;
	vhu_log(d, 0, "VMM connected");
}

/* ---- the protocol core's callbacks: ours, then the owner's ---- */

static void on_flush_idle(uv_idle_t *h)
{
	struct vhu_device *d = h->data;

	uv_idle_stop(h);
	d->flush_pending = 0;
	if (d->tx_pending) {
		d->tx_pending = 0;
		vhu_process_tx(d);
	}
	vhu_flush(d);
}

static void core_output(struct vvs_device *v)
{
	schedule_flush(v->data);
}

#define FORWARD(name, ...) \
	do { \
		struct vhu_device *d_ = c->dev->data; \
		if (d_->user_ops->name != NULL) \
			d_->user_ops->name(__VA_ARGS__); \
	} while (0)

static void core_connected(struct vvs_conn *c, int status) { FORWARD(connected, c, status); }
static void core_readable(struct vvs_conn *c) { FORWARD(readable, c); }
static void core_writable(struct vvs_conn *c) { FORWARD(writable, c); }
static void core_closed(struct vvs_conn *c, const char *why) { FORWARD(closed, c, why); }

static size_t core_deliver(struct vvs_conn *c, const uint8_t *p, size_t len)
{
	struct vhu_device *d = c->dev->data;

	return d->user_ops->deliver != NULL ? d->user_ops->deliver(c, p, len) : 0;
}

static const struct vvs_ops core_ops = {
	.connected = core_connected, .readable = core_readable, .writable = core_writable,
	.closed = core_closed, .output = core_output, .deliver = core_deliver,
	.rx_buffer = core_rx_buffer, .rx_commit = core_rx_commit,
};

/* ---- life cycle ---- */

int vhu_start(struct vhu_device *d, uv_loop_t *loop, const char *path, uint64_t guest_cid,
	      const struct vvs_ops *ops, void *data, char *err, size_t errlen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd;

	memset(d, 0, sizeof(*d));
	d->loop = loop;
	d->conn_fd = d->listen_fd = -1;
	d->user_ops = ops;
	for (int i = 0; i < VHU_NQUEUES; i++) {
		d->q[i].dev = d;
		d->q[i].index = i;
		d->q[i].kick_fd = d->q[i].call_fd = -1;
	}
	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "%s: socket path too long", path);
		return UV_ENAMETOOLONG;
	}
	snprintf(d->path, sizeof(d->path), "%s", path);
	memcpy(sun.sun_path, path, strlen(path));
	d->pkt = malloc(VVS_MAX_PKT);
	if (d->pkt == NULL) {
		snprintf(err, errlen, "out of memory");
		return UV_ENOMEM;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0)
		unlink(path);   /* a stale socket of an earlier run */
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 || listen(fd, 4) != 0) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", path, strerror(e));
		if (fd >= 0)
			close(fd);
		free(d->pkt);
		return uv_translate_sys_error(e);
	}
	d->listen_fd = fd;
	d->listen_watch = watch_start(d, fd, on_listener, d);
	uv_idle_init(loop, &d->flush_idle);
	d->flush_idle.data = d;
	d->handles_open++;
	vvs_device_init(&d->vvs, guest_cid, &core_ops, d);
	d->vvs.data = d;
	d->data_owner = data;
	return 0;
}

static void idle_closed(uv_handle_t *h)
{
	handle_gone(h->data);
}

void vhu_stop(struct vhu_device *d, void (*on_closed)(struct vhu_device *d))
{
	d->on_closed = on_closed;
	vhu_hybrid_close_all(d);
	vhu_drop_vmm(d, "relay stopping");
	vvs_device_reset(&d->vvs, "relay stopping");
	watch_stop(&d->listen_watch);
	close(d->listen_fd);
	d->listen_fd = -1;
	unlink(d->path);
	uv_close((uv_handle_t *)&d->flush_idle, idle_closed);
	free(d->pkt);
	d->pkt = NULL;
}
