/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bulk.c - bulk transfers of a FunctionFS function with Linux AIO: reads
 * and writes are submitted with io_submit, completions signal an eventfd
 * watched by the loop. OUT: up to USB_OUT_XFERS reads into buffers lent
 * by the owner, delivered in submission order. IN: USB_IN_XFERS bounce
 * buffers the caller fills and commits, completed in order.
 */
#include "usb/usb.h"
#include "usb/usb_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static usb_log_fn log_fn;

void usb_set_log(usb_log_fn fn)
{
	log_fn = fn;
}

void usb_log(struct usb_function *f, int warn, const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	if (log_fn == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_fn(f, warn, fmt, msg);
}

static int sys_io_setup(unsigned n, aio_context_t *ctx)
{
	return (int)syscall(SYS_io_setup, n, ctx);
}

static int sys_io_destroy(aio_context_t ctx)
{
	return (int)syscall(SYS_io_destroy, ctx);
}

static int sys_io_submit(aio_context_t ctx, long n, struct iocb **cbs)
{
	return (int)syscall(SYS_io_submit, ctx, n, cbs);
}

static int sys_io_cancel(aio_context_t ctx, struct iocb *cb, struct io_event *ev)
{
	return (int)syscall(SYS_io_cancel, ctx, cb, ev);
}

static int sys_io_getevents(aio_context_t ctx, long min, long max, struct io_event *ev,
			    struct timespec *ts)
{
	return (int)syscall(SYS_io_getevents, ctx, min, max, ev, ts);
}

static int submit(struct usb_function *f, struct usb_xfer *x, int fd, int op, void *buf, size_t len)
{
	struct iocb *cbs[1] = { &x->cb };

	memset(&x->cb, 0, sizeof(x->cb));
	x->cb.aio_data = (uint64_t)(uintptr_t)x;
	x->cb.aio_lio_opcode = (uint16_t)op;
	x->cb.aio_fildes = (uint32_t)fd;
	x->cb.aio_buf = (uint64_t)(uintptr_t)buf;
	x->cb.aio_nbytes = len;
	x->cb.aio_flags = IOCB_FLAG_RESFD;
	x->cb.aio_resfd = (uint32_t)f->evfd;
	if (sys_io_submit(f->aio, 1, cbs) != 1)
		return -errno;
	x->busy = 1;
	return 0;
}

/* ---- OUT ---- */

static void pump_reads(struct usb_function *f)
{
	while (f->reading && f->state == USB_ONLINE && f->out_inflight < USB_OUT_XFERS) {
		struct usb_xfer *x = &f->out[(f->out_next + f->out_inflight) % USB_OUT_XFERS];
		int rc;

		f->on_alloc(f, &x->buf);
		if (x->buf.base == NULL || x->buf.len == 0)
			return;          /* the owner is out of buffers */
		rc = submit(f, x, f->ep_out, IOCB_CMD_PREAD, x->buf.base, x->buf.len);
		if (rc != 0) {
			uv_buf_t b = x->buf;

			x->buf = uv_buf_init(NULL, 0);
			f->on_read(f, rc == -EAGAIN ? UV_ECANCELED : rc, &b);
			return;
		}
		f->out_inflight++;
	}
}

static void read_done(struct usb_function *f, struct usb_xfer *x, long res)
{
	x->busy = 0;
	x->res = res;
	/* deliver completed reads in submission order */
	while (f->out_inflight > 0) {
		struct usb_xfer *h = &f->out[f->out_next];
		long r;

		if (h->busy)
			break;
		r = h->res;
		uv_buf_t b = h->buf;
		h->buf = uv_buf_init(NULL, 0);
		f->out_next = (f->out_next + 1) % USB_OUT_XFERS;
		f->out_inflight--;
		f->st.out_xfers++;
		/* 0: a zero-length packet (the host ends a payload that fills
		 * whole packets with one): nothing to deliver but the buffer */
		if (r == -EPIPE || r == -ESHUTDOWN || r == -ECONNRESET || r == -ECANCELED) {
			f->on_read(f, r == -EPIPE ? UV_EPIPE : UV_ECANCELED, &b);
		} else {
			/* the session ends on it: say which transfer, for the field */
			if (r < 0)
				usb_log(f, 1, "OUT transfer of %zu bytes failed: %s", b.len,
					strerror((int)-r));
			f->on_read(f, r, &b);
		}
	}
}

int usb_read_start(struct usb_function *f, usb_alloc_cb alloc, usb_read_cb read)
{
	if (f->state != USB_ONLINE)
		return UV_ENOTCONN;
	f->on_alloc = alloc;
	f->on_read = read;
	f->reading = 1;
	pump_reads(f);
	return 0;
}

void usb_read_stop(struct usb_function *f)
{
	f->reading = 0;
}

/* ---- IN ---- */

void usb_in_set_cb(struct usb_function *f, usb_in_cb cb)
{
	f->on_in = cb;
}

uint8_t *usb_in_claim(struct usb_function *f)
{
	if (f->state != USB_ONLINE || f->in_inflight == USB_IN_XFERS || f->drop != USB_DROP_NONE)
		return NULL;
	return f->in[(f->in_next + f->in_inflight) % USB_IN_XFERS].bounce;
}

int usb_in_commit(struct usb_function *f, size_t len)
{
	struct usb_xfer *x = &f->in[(f->in_next + f->in_inflight) % USB_IN_XFERS];
	int rc;

	if (f->state != USB_ONLINE || f->in_inflight == USB_IN_XFERS)
		return UV_ENOTCONN;
	if (len == 0 || len > USB_XFER_MAX)
		return UV_EINVAL;
	x->len = len;
	rc = submit(f, x, f->ep_in, IOCB_CMD_PWRITE, x->bounce, len);
	if (rc != 0)
		return rc == -EAGAIN ? UV_ENOTCONN : rc;
	f->in_inflight++;
	return 0;
}

static void write_done(struct usb_function *f, struct usb_xfer *x, long res)
{
	int status = 0;

	x->busy = 0;
	f->in_next = (f->in_next + 1) % USB_IN_XFERS;
	f->in_inflight--;
	f->st.in_xfers++;
	if (res == -ESHUTDOWN || res == -ECONNRESET || res == -ECANCELED)
		status = UV_ECANCELED;
	else if (res < 0)
		status = (int)res;
	else if ((size_t)res != x->len)
		status = UV_EIO;
	/* the session ends on it: say which transfer, for the field */
	if (status != 0 && status != UV_ECANCELED)
		usb_log(f, 1, "IN transfer of %zu bytes ended after %ld: %s", x->len,
			res < 0 ? 0 : res, res < 0 ? strerror((int)-res) : "short");
	if (f->on_in != NULL)
		f->on_in(f, status);
}

/* ---- completions and cancellation ---- */

static void reap(struct usb_function *f)
{
	struct io_event ev[USB_OUT_XFERS + USB_IN_XFERS];
	struct timespec zero = { 0, 0 };
	int n;

	while ((n = sys_io_getevents(f->aio, 0, (long)(sizeof(ev) / sizeof(ev[0])), ev, &zero)) > 0) {
		for (int i = 0; i < n; i++) {
			struct usb_xfer *x = (struct usb_xfer *)(uintptr_t)ev[i].data;

			if (x >= f->out && x < f->out + USB_OUT_XFERS)
				read_done(f, x, (long)ev[i].res);
			else
				write_done(f, x, (long)ev[i].res);
		}
	}
	pump_reads(f);
}

static void on_aio(uv_poll_t *p, int status, int events)
{
	struct usb_function *f = p->data;
	uint64_t count;

	(void)status;
	(void)events;
	if (read(f->evfd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		usb_log(f, 1, "eventfd read: %s", strerror(errno));
	reap(f);
}

static void usb_cancel_in(struct usb_function *f)
{
	struct io_event ev;

	for (unsigned i = 0; i < USB_IN_XFERS; i++)
		if (f->in[i].busy)
			sys_io_cancel(f->aio, &f->in[i].cb, &ev);
}

void usb_cancel_all(struct usb_function *f)
{
	struct io_event ev;

	f->reading = 0;
	for (unsigned i = 0; i < USB_OUT_XFERS; i++)
		if (f->out[i].busy)
			sys_io_cancel(f->aio, &f->out[i].cb, &ev);
	usb_cancel_in(f);
}

int usb_idle(const struct usb_function *f)
{
	return f->out_inflight == 0 && f->in_inflight == 0;
}

int usb_bulk_init(struct usb_function *f)
{
	f->aio = 0;
	if (sys_io_setup(USB_OUT_XFERS + USB_IN_XFERS, &f->aio) != 0)
		return -errno;
	f->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (f->evfd < 0) {
		int e = -errno;
		sys_io_destroy(f->aio);
		return e;
	}
	for (unsigned i = 0; i < USB_IN_XFERS; i++) {
		f->in[i].bounce = malloc(USB_XFER_MAX);
		if (f->in[i].bounce == NULL) {
			usb_bulk_destroy(f);
			return -ENOMEM;
		}
	}
	uv_poll_init(f->loop, &f->aio_poll, f->evfd);
	f->aio_poll.data = f;
	uv_poll_start(&f->aio_poll, UV_READABLE, on_aio);
	f->handles_open++;
	return 0;
}

void usb_bulk_destroy(struct usb_function *f)
{
	struct timespec second = { 1, 0 };

	usb_cancel_all(f);
	/* hand back what is still in flight before the context goes */
	while (f->out_inflight + f->in_inflight > 0) {
		struct io_event ev;

		if (sys_io_getevents(f->aio, 1, 1, &ev, &second) != 1)
			break;
		struct usb_xfer *x = (struct usb_xfer *)(uintptr_t)ev.data;
		if (x >= f->out && x < f->out + USB_OUT_XFERS)
			read_done(f, x, (long)ev.res);
		else
			write_done(f, x, (long)ev.res);
	}
	sys_io_destroy(f->aio);
	if (f->evfd >= 0)
		close(f->evfd);
	f->evfd = -1;
	for (unsigned i = 0; i < USB_IN_XFERS; i++) {
		free(f->in[i].bounce);
		f->in[i].bounce = NULL;
	}
}
