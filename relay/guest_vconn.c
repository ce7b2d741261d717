/* SPDX-License-Identifier: Apache-2.0 */
/*
 * guest_vconn.c - a guest link on a connection of the relay's own virtio
 * device (guest_conn.h, vsock.h's struct vsock_vconn): the guest's data
 * lands in the session's pooled buffers straight from its packets, and the
 * session's batches go into the device as far as the guest's credit takes
 * them, in order, each finished once all of it is in. Owns the device
 * connection and the batches it was given until they are finished.
 */
#include "relay/guest_conn.h"

#include <stdlib.h>

struct guest_vconn {
	struct guest_conn g;            /* first: the ops get it */
	struct vsock_vconn *vc;
	struct output_batch *head, *tail;   /* given, not yet all written */
	unsigned iov;                   /* head's iov being written ... */
	size_t off;                     /* ... and how much of it is in */
	int pumping;
};

static void on_alloc(void *ctx, uv_buf_t *buf)
{
	struct guest_vconn *gv = ctx;

	gv->g.on_alloc(&gv->g, buf);
}

static void on_read(void *ctx, ssize_t nread, const uv_buf_t *buf)
{
	struct guest_vconn *gv = ctx;

	gv->g.on_read(&gv->g, nread, buf);
}

/* Finish every batch still held with status (an error, or cancelled). */
static void fail_all(struct guest_vconn *gv, int status)
{
	while (gv->head != NULL) {
		struct output_batch *b = gv->head;

		gv->head = b->next;
		if (gv->head == NULL)
			gv->tail = NULL;
		gv->iov = 0;
		gv->off = 0;
		output_batch_done(b, status);
	}
}

/* Write the rest of the head batch, all its pieces in one call (the
 * device fills each RX buffer from as many as fit): bytes taken, or an
 * error. */
static ssize_t write_head(struct guest_vconn *gv)
{
	const struct output_batch *b = gv->head;
	struct iovec v[OUTPUT_IOV];
	unsigned n = 0;

	for (unsigned i = gv->iov; i < b->niov; i++)
		v[n++] = (struct iovec){ b->iov[i].base, b->iov[i].len };
	v[0].iov_base = (char *)v[0].iov_base + gv->off;
	v[0].iov_len -= gv->off;
	return vsock_vconn_writev(gv->vc, v, n);
}

/* Write what the device takes now, in order. An error finishes the
 * batches only from the loop (`writable`), never inside the session's own
 * call to write: as a socket's write callback would. */
static void pump(struct guest_vconn *gv, int from_loop)
{
	if (gv->pumping)
		return;
	gv->pumping = 1;
	while (gv->head != NULL) {
		struct output_batch *b = gv->head;
		ssize_t n = write_head(gv);

		if (n < 0) {
			if (from_loop)
				fail_all(gv, (int)n);
			break;
		}
		/* step over what was taken */
		for (size_t left = (size_t)n; gv->iov < b->niov; gv->iov++, gv->off = 0) {
			size_t k = b->iov[gv->iov].len - gv->off;

			if (left < k) {
				gv->off += left;
				break;
			}
			left -= k;
		}
		if (gv->iov < b->niov)
			break;                   /* `writable` brings the rest */
		gv->iov = 0;
		gv->head = b->next;
		if (gv->head == NULL)
			gv->tail = NULL;
		output_batch_done(b, 0);
	}
	gv->pumping = 0;
}

static void on_writable(void *ctx)
{
	pump(ctx, 1);
}

static void on_closed(void *ctx)
{
	struct guest_vconn *gv = ctx;

	fail_all(gv, UV_ECANCELED);
	if (gv->g.on_closed != NULL)
		gv->g.on_closed(&gv->g);
	free(gv);
}

static const struct vsock_vconn_cbs vconn_cbs = {
	.alloc = on_alloc, .read = on_read, .writable = on_writable, .closed = on_closed,
};

static void read_start(struct guest_conn *g)
{
	vsock_vconn_read_start(((struct guest_vconn *)g)->vc);
}

static void read_stop(struct guest_conn *g)
{
	vsock_vconn_read_stop(((struct guest_vconn *)g)->vc);
}

static int write_batch(void *ctx, struct output_batch *b)
{
	struct guest_vconn *gv = ctx;

	b->next = NULL;
	if (gv->tail != NULL)
		gv->tail->next = b;
	else
		gv->head = b;
	gv->tail = b;
	pump(gv, 0);
	return 0;
}

static void close_vconn(struct guest_conn *g)
{
	vsock_vconn_close(((struct guest_vconn *)g)->vc);
}

static const struct guest_conn_ops vconn_ops = {
	.read_start = read_start, .read_stop = read_stop, .write = write_batch,
	.close = close_vconn,
};

int guest_conn_vconn_open(struct vsock_vconn *vc, struct guest_conn **out)
{
	struct guest_vconn *gv = calloc(1, sizeof(*gv));

	if (gv == NULL) {
		vsock_vconn_close(vc);
		return UV_ENOMEM;
	}
	gv->g.ops = &vconn_ops;
	gv->vc = vc;
	vsock_vconn_attach(vc, &vconn_cbs, gv);
	*out = &gv->g;
	return 0;
}
