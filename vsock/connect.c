/* SPDX-License-Identifier: Apache-2.0 */
/*
 * connect.c - one asynchronous connection attempt to a target: non-blocking
 * connect, the transport's optional check of the connected socket and its
 * optional line handshake (read one byte at a time so no stream byte is
 * consumed), a deadline, cancellation; or, for a caller that takes them
 * and a virtio target, a device connection (vconn.c) the guest accepts.
 * The attempt owns its socket or device connection until it hands it to
 * the callback.
 */
#include "vsock/vsock_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define REPLY_MAX 32

enum connect_phase { PH_CONNECTING, PH_HELLO, PH_REPLY, PH_DONE };

struct vsock_connect {
	uv_poll_t poll;
	uv_timer_t timer;
	const struct vsock_transport *tp;
	struct vsock_target target;
	vsock_connect_cb cb;
	vsock_link_cb lcb;        /* instead of cb: the caller takes a vconn too */
	void *data;
	int fd;
	struct vsock_vconn *vc;   /* a device connection being made */
	int status;       /* result decided at start, reported from the loop */
	int immediate;
	int polling;
	int cancelled;
	int handles_open;
	enum connect_phase phase;
	char hello[REPLY_MAX];
	size_t hello_len, hello_sent;
	char reply[REPLY_MAX];
	size_t reply_len;
};

const struct vsock_transport *vsock_transport_for(enum vsock_kind kind)
{
	switch (kind) {
	case VSOCK_KERNEL: return &vsock_transport_kernel;
	case VSOCK_HYBRID: return &vsock_transport_hybrid;
	case VSOCK_UNIX:   return &vsock_transport_unix;
	case VSOCK_VIRTIO: return &vsock_transport_virtio;
	case VSOCK_TCP:    return &vsock_transport_tcp;
	}
	return NULL;
}

static void on_handle_closed(uv_handle_t *h)
{
	struct vsock_connect *c = h->data;

	if (--c->handles_open == 0)
		free(c);
}

/* Release the handles; report the result unless cancelled. */
static void finish(struct vsock_connect *c, int status)
{
	int fd = c->fd;
	struct vsock_vconn *vc = c->vc;

	c->phase = PH_DONE;
	c->fd = -1;
	c->vc = NULL;
	if (vc != NULL && (status != 0 || c->cancelled)) {
		vsock_vconn_close(vc);
		vc = NULL;
	}
	uv_close((uv_handle_t *)&c->timer, on_handle_closed);
	if (c->polling)
		uv_close((uv_handle_t *)&c->poll, on_handle_closed);
	else
		c->handles_open--;
	if (status != 0 && fd >= 0) {
		close(fd);
		fd = -1;
	}
	if (c->cancelled) {
		if (fd >= 0)
			close(fd);
	} else if (c->lcb != NULL) {
		c->lcb(c->data, status == 0 ? fd : -1, vc, status);
	} else {
		c->cb(c->data, status == 0 ? fd : -1, status);
	}
}

/* The guest answered the device connection's REQUEST (or not). */
static void on_vconn_done(void *data, int status)
{
	struct vsock_connect *c = data;

	if (c->phase != PH_DONE)
		finish(c, status);
}

static int poll_for(struct vsock_connect *c, int events);

static int send_hello(struct vsock_connect *c)
{
	while (c->hello_sent < c->hello_len) {
		ssize_t n = send(c->fd, c->hello + c->hello_sent,
				 c->hello_len - c->hello_sent, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return poll_for(c, UV_WRITABLE);
			return -errno;
		}
		c->hello_sent += (size_t)n;
	}
	c->phase = PH_REPLY;
	return poll_for(c, UV_READABLE);
}

/* Returns 1 when the reply line is complete and accepted, 0 for more. */
static int read_reply(struct vsock_connect *c)
{
	for (;;) {
		char ch;
		ssize_t n = recv(c->fd, &ch, 1, 0);

		if (n == 0)
			return -ECONNRESET;
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		if (ch == '\n')
			return c->tp->check_reply(c->reply, c->reply_len) == 0 ? 1 : -ECONNREFUSED;
		if (c->reply_len == REPLY_MAX - 1)
			return -EPROTO;
		c->reply[c->reply_len++] = ch;
	}
}

/* The socket is connected: check it, then start the hello if any.
 * Returns 1 when done, 0 while the hello runs, or a negative errno. */
static int connected(struct vsock_connect *c)
{
	int rc = c->tp->established != NULL ? c->tp->established(c->fd) : 0;

	if (rc != 0)
		return rc;
	if (c->tp->hello == NULL)
		return 1;
	c->hello_len = c->tp->hello(&c->target, c->hello, sizeof(c->hello));
	c->phase = PH_HELLO;
	rc = send_hello(c);
	return rc < 0 ? rc : 0;
}

static int connect_result(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		return -errno;
	return -err;
}

static void on_poll(uv_poll_t *p, int status, int events)
{
	struct vsock_connect *c = p->data;
	int rc = status;

	if (rc < 0) {
		/* libuv reports any poll error as EBADF: the socket knows why */
		int why = connect_result(c->fd);

		rc = why != 0 ? why : status;
	} else {
		switch (c->phase) {
		case PH_CONNECTING:
			rc = connect_result(c->fd);
			if (rc == 0)
				rc = connected(c);
			break;
		case PH_HELLO:
			rc = send_hello(c);
			break;
		case PH_REPLY:
			rc = read_reply(c);
			break;
		case PH_DONE:
			return;
		}
	}
	(void)events;
	if (rc != 0)
		finish(c, rc > 0 ? 0 : rc);
}

static int poll_for(struct vsock_connect *c, int events)
{
	if (!c->polling) {
		int rc = uv_poll_init(c->timer.loop, &c->poll, c->fd);
		if (rc != 0)
			return rc;
		c->poll.data = c;
		c->polling = 1;
	}
	return uv_poll_start(&c->poll, events, on_poll);
}

static void on_timer(uv_timer_t *t)
{
	struct vsock_connect *c = t->data;

	finish(c, c->immediate ? c->status : -ETIMEDOUT);
}

static int begin(struct vsock_connect *c)
{
	int rc;

	if (c->lcb != NULL && c->target.kind == VSOCK_VIRTIO)
		return vsock_vconn_open(c->timer.loop, &c->target, on_vconn_done, c, &c->vc);
	rc = c->tp->open(&c->target, &c->fd);

	if (rc == -EINPROGRESS)
		return poll_for(c, UV_WRITABLE);
	if (rc != 0)
		return rc;
	rc = connected(c);
	if (rc == 1) {
		/* Report from the loop, never from inside vsock_connect_start. */
		c->immediate = 1;
		c->status = 0;
		return 0;
	}
	return rc;
}

static int start(uv_loop_t *loop, const struct vsock_target *t, unsigned timeout_ms,
		 vsock_connect_cb cb, vsock_link_cb lcb, void *data, struct vsock_connect **out)
{
	struct vsock_connect *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return -ENOMEM;
	c->tp = vsock_transport_for(t->kind);
	c->target = *t;
	c->cb = cb;
	c->lcb = lcb;
	c->data = data;
	c->fd = -1;
	c->handles_open = 2;
	uv_timer_init(loop, &c->timer);
	c->timer.data = c;

	int rc = begin(c);
	if (rc != 0) {
		c->immediate = 1;
		c->status = rc;
	}
	/* Immediate results are reported from the loop, never from here. */
	uv_timer_start(&c->timer, on_timer, c->immediate ? 0 : timeout_ms, 0);
	*out = c;
	return 0;
}

int vsock_connect_start(uv_loop_t *loop, const struct vsock_target *t,
			unsigned timeout_ms, vsock_connect_cb cb, void *data,
			struct vsock_connect **out)
{
	return start(loop, t, timeout_ms, cb, NULL, data, out);
}

int vsock_link_start(uv_loop_t *loop, const struct vsock_target *t, unsigned timeout_ms,
		     vsock_link_cb cb, void *data, struct vsock_connect **out)
{
	return start(loop, t, timeout_ms, NULL, cb, data, out);
}

void vsock_connect_cancel(struct vsock_connect *c)
{
	c->cancelled = 1;
	finish(c, -ECANCELED);
}
