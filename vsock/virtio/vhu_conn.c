/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vhu_conn.c - the VMM's vhost-user socket, served without ever blocking
 * the loop: messages are assembled from whatever the socket has (header,
 * payload, and descriptors, which ride with the first bytes of the
 * message they belong to), each complete within VHU_MSG_DEADLINE_MS of its
 * first byte (a VMM idle between messages is fine); a reply goes out at
 * once, and what the socket does not take is queued (at most VHU_OUT_MAX
 * bytes, on the heap only while it waits) until it does. Any breach
 * (end of file, truncated descriptors, a bad header, a late message, a
 * VMM that does not read its replies) drops the VMM and nothing else.
 * Every descriptor received belongs to the message being read until the
 * message is handed over, and is closed if the connection goes first.
 */
#include "vsock/virtio/vhu_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MSGS_PER_PASS 32       /* then let other work run */

struct vhu_conn {
	struct vhu_device *dev;
	int fd;
	uv_poll_t poll;
	uv_timer_t deadline;       /* runs while a message is half read */
	int handles;               /* poll and deadline, until both closed */
	int events;                /* what poll watches */
	int closing;
	const char *error;         /* set: the VMM goes at the end of this pass */
	struct vhu_msg in;         /* the message being read, zeroed before */
	size_t got;                /* bytes of it, header included */
	uint8_t *out;              /* replies not written yet, NULL when none */
	size_t out_off, out_len, out_cap;
};

static void fail(struct vhu_conn *c, const char *why)
{
	if (c->error == NULL)
		c->error = why;
}

/* Keep the descriptors of one control message; 0 or -1 (c->error set). */
static int adopt_fds(struct vhu_conn *c, struct msghdr *mh)
{
	struct vhu_msg *m = &c->in;

	for (struct cmsghdr *h = CMSG_FIRSTHDR(mh); h; h = CMSG_NXTHDR(mh, h)) {
		int count;

		if (h->cmsg_level != SOL_SOCKET || h->cmsg_type != SCM_RIGHTS)
			continue;
		count = (int)((h->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (int i = 0; i < count; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(h) + i * sizeof(int), sizeof(int));
			if (m->nfds < VHU_MAX_FDS) {
				m->fds[m->nfds++] = fd;
			} else {
				close(fd);
				fail(c, "more descriptors than a message may carry");
			}
		}
	}
	if (mh->msg_flags & MSG_CTRUNC)   /* lost descriptors (fd limit?): trust nothing */
		fail(c, "descriptors truncated (MSG_CTRUNC)");
	return c->error == NULL ? 0 : -1;
}

/* Up to LEN bytes of the message into BUF: bytes read, 0 when the socket
 * has nothing now, -1 when the VMM must go (c->error set). */
static ssize_t read_part(struct vhu_conn *c, void *buf, size_t len)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(VHU_MAX_FDS * sizeof(int))];
	} ctl;
	struct iovec iov = { buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl.buf) };
	ssize_t n;

	do
		n = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	if (n < 0) {
		fail(c, "read failed");
		return -1;
	}
	if (adopt_fds(c, &mh) != 0)
		return -1;
	if (n == 0) {
		fail(c, c->got > 0 ? "VMM closed the connection in a message"
				   : "VMM closed the connection");
		return -1;
	}
	return n;
}

/* Read what the socket has of the current message: 1 complete, 0 not
 * yet, -1 the VMM must go. Never past the message's end, so descriptors
 * sent with the next one stay with it. */
static int read_message(struct vhu_conn *c)
{
	struct vhu_msg *m = &c->in;

	for (;;) {
		uint8_t *dst;
		size_t want;
		ssize_t n;

		if (c->got < VHU_HDR_SIZE) {
			dst = (uint8_t *)m + c->got;
			want = VHU_HDR_SIZE - c->got;
		} else {
			dst = m->p.raw + (c->got - VHU_HDR_SIZE);
			want = VHU_HDR_SIZE + m->size - c->got;
			if (want == 0)
				return 1;
		}
		n = read_part(c, dst, want);
		if (n <= 0)
			return (int)n;
		c->got += (size_t)n;
		if (c->got == VHU_HDR_SIZE && (m->flags & 3u) != VHU_VERSION) {
			fail(c, "bad version");
			return -1;
		}
		if (c->got == VHU_HDR_SIZE && m->size > sizeof(m->p)) {
			fail(c, "message too large");
			return -1;
		}
	}
}

static void on_deadline(uv_timer_t *t)
{
	struct vhu_conn *c = t->data;

	vhu_drop_vmm(c->dev, "message not complete 2 s after its first byte");
}

/* Hand over complete messages, at most MSGS_PER_PASS; the deadline runs
 * while one is half read. */
static void read_messages(struct vhu_conn *c)
{
	for (int i = 0; i < MSGS_PER_PASS && c->error == NULL && !c->closing; i++) {
		struct vhu_msg m;
		const char *why;

		if (read_message(c) != 1)
			break;
		m = c->in;
		memset(&c->in, 0, sizeof(c->in));
		c->got = 0;
		uv_timer_stop(&c->deadline);
		why = vhu_message(c->dev, &m);
		vhu_close_fds(&m);
		if (why != NULL)
			fail(c, why);
	}
	if (c->got > 0 && !c->closing && !uv_is_active((uv_handle_t *)&c->deadline))
		uv_timer_start(&c->deadline, on_deadline, VHU_MSG_DEADLINE_MS, 0);
}

/* What the socket takes of LEN bytes now: bytes written. */
static size_t write_some(struct vhu_conn *c, const uint8_t *p, size_t len)
{
	size_t done = 0;

	while (done < len && c->error == NULL) {
		ssize_t n = send(c->fd, p + done, len - done, MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n > 0)
			done += (size_t)n;
		else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		else if (n < 0 && errno != EINTR)
			fail(c, "write failed");
	}
	return done;
}

/* Write queued replies while the socket takes them; the queue's memory
 * goes once it is empty. */
static void write_out(struct vhu_conn *c)
{
	c->out_off += write_some(c, c->out + c->out_off, c->out_len - c->out_off);
	if (c->out_off == c->out_len) {
		free(c->out);
		c->out = NULL;
		c->out_off = c->out_len = c->out_cap = 0;
	}
}

/* Keep LEN bytes behind what waits already: 0, or -1 when that would make
 * more than VHU_OUT_MAX (or no memory). */
static int queue_out(struct vhu_conn *c, const uint8_t *p, size_t len)
{
	size_t waiting = c->out_len - c->out_off, cap = c->out_cap ? c->out_cap : 4096;
	uint8_t *out;

	if (waiting + len > VHU_OUT_MAX)
		return -1;
	if (c->out_off > 0) {
		memmove(c->out, c->out + c->out_off, waiting);
		c->out_off = 0;
		c->out_len = waiting;
	}
	while (cap < waiting + len)
		cap *= 2;          /* 4 KiB doubled stops at VHU_OUT_MAX (64 KiB) */
	if (cap != c->out_cap) {
		out = realloc(c->out, cap);
		if (out == NULL)
			return -1;
		c->out = out;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, p, len);
	c->out_len += len;
	return 0;
}

static void on_poll(uv_poll_t *p, int status, int events);

/* Readable always, writable while replies wait. */
static void watch(struct vhu_conn *c)
{
	int want = UV_READABLE | (c->out_len > c->out_off ? UV_WRITABLE : 0);

	if (want != c->events && !c->closing) {
		c->events = want;
		uv_poll_start(&c->poll, want, on_poll);
	}
}

static void on_poll(uv_poll_t *p, int status, int events)
{
	struct vhu_conn *c = p->data;

	if (status < 0) {
		vhu_drop_vmm(c->dev, uv_strerror(status));
		return;
	}
	if ((events & UV_WRITABLE) && c->out != NULL)
		write_out(c);
	if (events & UV_READABLE)
		read_messages(c);
	if (c->closing)
		return;
	if (c->error != NULL)
		vhu_drop_vmm(c->dev, c->error);
	else
		watch(c);
}

void vhu_conn_send(struct vhu_conn *c, uint32_t request, const void *payload, uint32_t size)
{
	uint32_t hdr[3] = { request, VHU_VERSION | VHU_FLAG_REPLY, size };
	uint8_t msg[VHU_HDR_SIZE + sizeof(c->in.p)];
	size_t len = VHU_HDR_SIZE + size, sent = 0;

	if (c->closing || c->error != NULL)
		return;
	if (size > sizeof(c->in.p)) {
		fail(c, "reply too large");
		return;
	}
	memcpy(msg, hdr, VHU_HDR_SIZE);
	memcpy(msg + VHU_HDR_SIZE, payload, size);
	if (c->out == NULL)         /* nothing waits: straight out */
		sent = write_some(c, msg, len);
	if (sent < len && c->error == NULL && queue_out(c, msg + sent, len - sent) != 0)
		fail(c, "VMM does not read its replies (64 KiB queued)");
	watch(c);
}

static void conn_closed(uv_handle_t *h)
{
	struct vhu_conn *c = h->data;
	struct vhu_device *d = c->dev;

	if (--c->handles > 0)
		return;
	free(c->out);
	free(c);
	vhu_handle_gone(d);
}

int vhu_conn_open(struct vhu_device *d, int fd)
{
	struct vhu_conn *c = malloc(sizeof(*c));

	if (c == NULL) {
		close(fd);
		return -ENOMEM;
	}
	memset(c, 0, sizeof(*c));
	c->dev = d;
	c->fd = fd;
	if (uv_poll_init(d->loop, &c->poll, fd) != 0) {
		close(fd);
		free(c);
		return -EINVAL;
	}
	uv_timer_init(d->loop, &c->deadline);
	c->poll.data = c->deadline.data = c;
	c->handles = 2;
	d->handles_open++;
	d->conn = c;
	watch(c);
	return 0;
}

void vhu_conn_close(struct vhu_conn *c)
{
	c->closing = 1;
	uv_close((uv_handle_t *)&c->poll, conn_closed);
	uv_close((uv_handle_t *)&c->deadline, conn_closed);
	close(c->fd);
	vhu_close_fds(&c->in);
}
