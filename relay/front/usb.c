/* SPDX-License-Identifier: Apache-2.0 */
/*
 * usb.c - a PC connected over USB: a front connection over a FunctionFS
 * function for one online period (ENABLE to DISABLE). Outgoing batches are
 * re-framed for USB: the frame reader walks them, every adb header goes out
 * as a transfer of its own, every payload as transfers of up to 16 KiB
 * that end with the payload, so the host's 24-byte header read and its
 * payload read each see exactly their bytes. Batches are copied into the
 * function's bounce buffers and complete as soon as they are copied.
 */
#include "relay/front/front.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adbproto/adbproto.h"
#include "relay/sys/sys.h"
#include "usb/usb.h"

struct usb_port {
	struct front_conn base;
	struct usb_function *f;
	int closing;

	/* outgoing: queued batches and where the framer stands in the head */
	struct output_batch *q_head, *q_tail;
	unsigned iov_i;
	size_t iov_off;
	struct adb_reader framer;
	/* work taken from the framer, not yet in a transfer */
	int pend_header;
	uint8_t header[ADB_HEADER_SIZE];
	const uint8_t *pend;
	size_t pend_len;
	int pend_end;
	/* the transfer being filled */
	uint8_t *cur;
	size_t cur_len;
};

static struct usb_port *port_of(struct usb_function *f)
{
	return f->io_data;
}

static void finish_close(struct usb_port *u)
{
	u->f->io_data = NULL;
	if (u->base.on_closed != NULL)
		u->base.on_closed(&u->base);
	free(u);
}

static int check_closed(struct usb_port *u)
{
	if (u->closing && usb_idle(u->f)) {
		finish_close(u);
		return 1;
	}
	return 0;
}

static void fail(struct usb_port *u, int status)
{
	if (!u->closing && u->base.on_read != NULL)
		u->base.on_read(&u->base, status, &(uv_buf_t){ NULL, 0 });
}

/* ---- PC -> relay ---- */

static void on_usb_alloc(struct usb_function *f, uv_buf_t *buf)
{
	struct usb_port *u = port_of(f);

	u->base.on_alloc(&u->base, buf);
}

static void on_usb_read(struct usb_function *f, ssize_t nread, const uv_buf_t *buf)
{
	struct usb_port *u = port_of(f);

	if (nread == UV_EPIPE) {
		/* the host cleared a halt (adb server restart): read again */
		f->st.halts++;
		nread = 0;
	} else if (nread == UV_ECANCELED) {
		nread = 0;   /* going offline: only hand the buffer back */
	}
	u->base.on_read(&u->base, nread, buf);
	check_closed(u);
}

static void usb_port_read_start(struct front_conn *p)
{
	struct usb_port *u = (struct usb_port *)p;

	if (usb_read_start(u->f, on_usb_alloc, on_usb_read) != 0)
		fail(u, UV_ENOTCONN);
}

static void usb_port_read_stop(struct front_conn *p)
{
	usb_read_stop(((struct usb_port *)p)->f);
}

/* ---- relay -> PC ---- */

static int commit(struct usb_port *u)
{
	int rc = usb_in_commit(u->f, u->cur_len);

	u->cur = NULL;
	u->cur_len = 0;
	return rc;
}

/* Move pending work into transfers; 0 when it is all out, 1 when the
 * function has no free transfer, or a uv error. */
static int drain_pending(struct usb_port *u)
{
	int rc;

	if (u->pend_header) {
		uint8_t *buf = u->cur ? u->cur : usb_in_claim(u->f);

		if (buf == NULL)
			return 1;
		memcpy(buf, u->header, ADB_HEADER_SIZE);
		u->cur = buf;
		u->cur_len = ADB_HEADER_SIZE;
		u->pend_header = 0;
		if ((rc = commit(u)) != 0)
			return rc;
	}
	while (u->pend_len > 0) {
		size_t n;

		if (u->cur == NULL && (u->cur = usb_in_claim(u->f)) == NULL)
			return 1;
		n = USB_XFER_MAX - u->cur_len;
		if (n > u->pend_len)
			n = u->pend_len;
		memcpy(u->cur + u->cur_len, u->pend, n);
		u->cur_len += n;
		u->pend += n;
		u->pend_len -= n;
		if (u->cur_len == USB_XFER_MAX && (rc = commit(u)) != 0)
			return rc;
	}
	if (u->pend_end) {
		u->pend_end = 0;
		if (u->cur_len > 0 && (rc = commit(u)) != 0)
			return rc;
	}
	return 0;
}

/* Take the next piece of work from the head batch; 0 when the queue is
 * empty, 1 when there is work, or a uv error. A frame's end is reported
 * as soon as its last byte is taken, so its last transfer goes out now,
 * not when the next frame comes. */
static int next_piece(struct usb_port *u)
{
	for (;;) {
		struct output_batch *b = u->q_head;
		struct adb_frame_event ev;
		const uint8_t *data = NULL;
		size_t left = 0, before;

		if (b == NULL)
			return 0;
		if (u->iov_i < b->niov) {
			data = (const uint8_t *)b->iov[u->iov_i].base + u->iov_off;
			left = b->iov[u->iov_i].len - u->iov_off;
		}
		before = left;
		enum adb_reader_event e = adb_reader_next(&u->framer, &data, &left, &ev);

		if (u->iov_i < b->niov) {
			u->iov_off += before - left;
			if (u->iov_off == b->iov[u->iov_i].len) {
				u->iov_i++;
				u->iov_off = 0;
			}
		}
		switch (e) {
		case ADB_EV_HEADER:
			memcpy(u->header, ev.header_raw, ADB_HEADER_SIZE);
			u->pend_header = 1;
			return 1;
		case ADB_EV_PAYLOAD:
			u->pend = ev.data;
			u->pend_len = ev.len;
			return 1;
		case ADB_EV_END:
			u->pend_end = 1;
			return 1;
		case ADB_EV_ERROR:
			log_error("usb %s: relay produced a bad frame: %s", u->f->name,
				  adb_strerror(ev.error));
			return UV_EPROTO;
		case ADB_EV_NEED_MORE:
			if (u->iov_i == b->niov) {
				/* every byte of the batch is in a transfer or pending */
				u->q_head = b->next;
				if (u->q_head == NULL)
					u->q_tail = NULL;
				u->iov_i = 0;
				u->iov_off = 0;
				output_batch_done(b, 0);
			}
			break;
		}
	}
}

static void pump(struct usb_port *u)
{
	int rc;

	while (!u->closing) {
		rc = drain_pending(u);
		if (rc == 1)
			return;
		if (rc == 0)
			rc = next_piece(u);
		if (rc == 0)
			return;
		if (rc < 0) {
			fail(u, rc);
			return;
		}
	}
}

static void on_usb_in(struct usb_function *f, int status)
{
	struct usb_port *u = port_of(f);

	if (status != 0 && status != UV_ECANCELED)
		fail(u, status);
	if (check_closed(u))
		return;
	pump(u);
}

static int usb_port_write(void *ctx, struct output_batch *b)
{
	struct usb_port *u = ctx;

	if (u->closing)
		return UV_ECANCELED;
	b->next = NULL;
	if (u->q_tail)
		u->q_tail->next = b;
	else
		u->q_head = b;
	u->q_tail = b;
	pump(u);
	return 0;
}

/* ---- lifetime ---- */

static void usb_port_close(struct front_conn *p)
{
	struct usb_port *u = (struct usb_port *)p;
	struct output_batch *b;

	u->closing = 1;
	while ((b = u->q_head) != NULL) {
		u->q_head = b->next;
		output_batch_done(b, UV_ECANCELED);
	}
	u->q_tail = NULL;
	usb_read_stop(u->f);
	usb_cancel_all(u->f);
	check_closed(u);
}

static const struct front_conn_ops usb_ops = {
	.read_start = usb_port_read_start,
	.read_stop = usb_port_read_stop,
	.write = usb_port_write,
	.close = usb_port_close,
};

int front_conn_usb_open(struct usb_function *f, const char *peer, struct front_conn **out)
{
	struct usb_port *u;

	if (f->io_data != NULL)
		return UV_EBUSY;
	u = calloc(1, sizeof(*u));
	if (u == NULL)
		return UV_ENOMEM;
	u->base.ops = &usb_ops;
	snprintf(u->base.peer, sizeof(u->base.peer), "%s", peer);
	u->f = f;
	adb_reader_init(&u->framer, ADB_MAX_PAYLOAD);
	f->io_data = u;
	usb_in_set_cb(f, on_usb_in);
	*out = &u->base;
	return 0;
}
