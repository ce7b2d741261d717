/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vconn.c - a vsock connection of the relay's own virtio device handed to
 * its caller in place of a socket (vsock.h, struct vsock_vconn): the
 * connection's owner callbacks (vhu_connect), the guest's data delivered
 * from its packets into the caller's buffers, writes into the device, and
 * what must wait for the loop (an idle handle per connection): `writable`,
 * data the device queued while the caller did not read, the end of the
 * stream. Owns the idle handle and, until close, the device's connection.
 */
#include "vsock/vsock_internal.h"
#include "vsock/virtio/virtio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct vsock_vconn {
	uv_idle_t idle;                   /* runs pump() while work waits */
	struct vvs_conn *c;               /* NULL once closed or detached */
	struct vhu_device *dev;
	struct vsock_vconn *next;         /* every connection, for detach_all */
	const struct vsock_vconn_cbs *cbs;
	void *ctx;
	void (*done)(void *data, int status);   /* while connecting */
	void *done_data;
	unsigned connected : 1, reading : 1, want_writable : 1;
	unsigned ended : 1;               /* the guest or its device is gone */
	unsigned eof_told : 1, closing : 1;
};

static struct vsock_vconn *all;
/* Inside a delivery (the device is working on the guest's TX ring): writes
 * wait for the loop. */
static int delivering;

static void pump(uv_idle_t *h);

static void schedule(struct vsock_vconn *vc)
{
	if (!vc->closing)
		uv_idle_start(&vc->idle, pump);
}

static void unlink_vc(struct vsock_vconn *vc)
{
	for (struct vsock_vconn **pp = &all; *pp; pp = &(*pp)->next)
		if (*pp == vc) {
			*pp = vc->next;
			return;
		}
}

/* ---- the device's callbacks for this connection ---- */

static void on_connected(struct vvs_conn *c, int status)
{
	struct vsock_vconn *vc = c->data;
	void (*done)(void *, int);

	if (vc == NULL || vc->done == NULL)
		return;
	done = vc->done;
	vc->done = NULL;
	vc->connected = status == 0;
	done(vc->done_data, status);
}

static void on_readable(struct vvs_conn *c)
{
	struct vsock_vconn *vc = c->data;

	if (vc != NULL && vc->reading)
		schedule(vc);
}

static void on_writable(struct vvs_conn *c)
{
	struct vsock_vconn *vc = c->data;

	if (vc == NULL)
		return;
	vc->want_writable = 1;
	schedule(vc);
}

/* The guest reset the connection, or the device forgot it (VMM gone): what
 * it sent before still goes to the reader, then the end. */
static void on_closed(struct vvs_conn *c, const char *why)
{
	struct vsock_vconn *vc = c->data;

	(void)why;
	if (vc == NULL) {
		vvs_release(c);
		return;
	}
	if (vc->done != NULL) {
		on_connected(c, -ECONNRESET);
		return;
	}
	vc->ended = 1;
	vc->want_writable = 1;     /* a writer waiting learns of it */
	schedule(vc);
}

/* Data of the guest's packet, while nothing is queued before it: straight
 * into the reader's buffers, as far as it reads. The rest the device
 * queues within its credit; `readable` then says so. */
static size_t on_deliver(struct vvs_conn *c, const uint8_t *p, size_t len)
{
	struct vsock_vconn *vc = c->data;
	size_t taken = 0;

	if (vc == NULL || vc->cbs == NULL)
		return 0;
	delivering = 1;
	while (taken < len && vc->reading && !vc->closing) {
		uv_buf_t buf = uv_buf_init(NULL, 0);
		size_t n;

		vc->cbs->alloc(vc->ctx, &buf);
		if (buf.base == NULL || buf.len == 0) {
			vc->cbs->read(vc->ctx, UV_ENOBUFS, &buf);
			break;
		}
		n = len - taken < buf.len ? len - taken : buf.len;
		memcpy(buf.base, p + taken, n);
		taken += n;
		vc->cbs->read(vc->ctx, (ssize_t)n, &buf);
	}
	delivering = 0;
	/* closed meanwhile: the connection is released, the rest is dropped */
	return vc->closing ? len : taken;
}

static const struct vvs_ops conn_ops = {
	.connected = on_connected, .readable = on_readable, .writable = on_writable,
	.closed = on_closed, .deliver = on_deliver,
};

/* ---- from the loop ---- */

/* What the device queued while the reader did not read, then the end. */
static void drain(struct vsock_vconn *vc)
{
	while (vc->reading && !vc->closing && vc->cbs != NULL) {
		uv_buf_t buf = uv_buf_init(NULL, 0);

		if (vc->c != NULL && vvs_readable(vc->c) > 0) {
			vc->cbs->alloc(vc->ctx, &buf);
			if (buf.base == NULL || buf.len == 0) {
				vc->cbs->read(vc->ctx, UV_ENOBUFS, &buf);
				return;
			}
			vc->cbs->read(vc->ctx, (ssize_t)vvs_read(vc->c, buf.base, buf.len), &buf);
			continue;
		}
		if (!vc->eof_told && (vc->ended || vc->c == NULL || vvs_eof(vc->c))) {
			vc->eof_told = 1;
			vc->cbs->read(vc->ctx, UV_EOF, &buf);
		}
		return;
	}
}

static void pump(uv_idle_t *h)
{
	struct vsock_vconn *vc = h->data;

	uv_idle_stop(h);
	if (vc->want_writable && vc->cbs != NULL && !vc->closing) {
		vc->want_writable = 0;
		vc->cbs->writable(vc->ctx);
	}
	drain(vc);
}

/* ---- the caller's side ---- */

int vsock_vconn_open(uv_loop_t *loop, const struct vsock_target *t,
		     void (*done)(void *data, int status), void *data, struct vsock_vconn **out)
{
	struct vhu_device *d = vsock_virtio_device(t->path);
	struct vsock_vconn *vc;

	if (d == NULL)
		return -ENODEV;
	if (!vhu_ready(d))
		return -ENOTCONN;          /* no VMM, or its rings are not running */
	vc = calloc(1, sizeof(*vc));
	if (vc == NULL)
		return -ENOMEM;
	vc->c = vhu_connect(d, t->port, &conn_ops, vc);
	if (vc->c == NULL) {
		free(vc);
		return -EAGAIN;
	}
	uv_idle_init(loop, &vc->idle);
	vc->idle.data = vc;
	vc->dev = d;
	vc->done = done;
	vc->done_data = data;
	vc->next = all;
	all = vc;
	*out = vc;
	return 0;
}

void vsock_vconn_attach(struct vsock_vconn *vc, const struct vsock_vconn_cbs *cbs, void *ctx)
{
	vc->cbs = cbs;
	vc->ctx = ctx;
}

void vsock_vconn_read_start(struct vsock_vconn *vc)
{
	vc->reading = 1;
	schedule(vc);        /* what waits in the device, or the end */
}

void vsock_vconn_read_stop(struct vsock_vconn *vc)
{
	vc->reading = 0;
}

ssize_t vsock_vconn_writev(struct vsock_vconn *vc, const struct iovec *iov, unsigned niov)
{
	if (vc->closing)
		return UV_EPIPE;
	if (vc->ended || vc->c == NULL || vc->c->state == VVS_CLOSED) {
		vc->want_writable = 1;
		schedule(vc);
		return UV_EPIPE;
	}
	if (delivering) {
		vc->want_writable = 1;    /* not inside the device's work on a ring */
		schedule(vc);
		return 0;
	}
	return (ssize_t)vvs_writev(vc->c, iov, niov);
}

static void on_idle_closed(uv_handle_t *h)
{
	struct vsock_vconn *vc = h->data;

	if (vc->cbs != NULL)
		vc->cbs->closed(vc->ctx);
	free(vc);
}

void vsock_vconn_close(struct vsock_vconn *vc)
{
	if (vc->closing)
		return;
	vc->closing = 1;
	vc->done = NULL;
	if (vc->c != NULL) {
		vc->c->data = NULL;
		vvs_release(vc->c);
		vc->c = NULL;
	}
	unlink_vc(vc);
	uv_close((uv_handle_t *)&vc->idle, on_idle_closed);
}

void vsock_vconn_detach_all(struct vhu_device *d)
{
	for (struct vsock_vconn *vc = all; vc; vc = vc->next) {
		if (vc->dev != d || vc->c == NULL)
			continue;
		vc->c->data = NULL;
		vvs_release(vc->c);
		vc->c = NULL;
		vc->dev = NULL;
		if (vc->done != NULL) {
			void (*done)(void *, int) = vc->done;

			vc->done = NULL;
			done(vc->done_data, -ECONNRESET);
			continue;
		}
		vc->ended = 1;
		vc->want_writable = 1;
		schedule(vc);
	}
}
