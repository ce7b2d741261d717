/* SPDX-License-Identifier: Apache-2.0 */
/*
 * forward.c - the tcp: service of adbd-testguest, what the PC's `adb
 * forward LOCAL tcp:PORT` opens: "tcp:PORT" connects to 127.0.0.1:PORT,
 * "tcp:HOST:PORT" to HOST (numeric IPv4, [IPv6] or localhost). As adbd, the
 * OPEN is answered once the connect is done: OKAY when it succeeded, CLSE
 * when it failed. Then bytes go both ways: a host WRTE is written to the
 * socket and acknowledged (OKAY) once written; the socket is read one
 * buffer at a time, and not read again until the host acknowledged that
 * WRTE. The stream ends (CLSE) at the socket's EOF or error; a CLSE from
 * the host closes the socket.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "tests/guest/guest.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FORWARD_BUF_MAX (64 * 1024)
#define FORWARD_HOST_MAX 64

struct forward {
	struct stream *s;
	uv_tcp_t tcp;
	uv_connect_t creq;
	uv_write_t wreq;
	uint8_t *buf;
	size_t bufsize;
	char dest[FORWARD_HOST_MAX + 16];   /* for log lines */
	int tcp_open;            /* handle not yet uv_close()d */
	int connected, aborted;
};

static void tcp_closed(uv_handle_t *h)
{
	struct forward *f = h->data;

	stream_unref(f->s);
}

static void close_tcp(struct forward *f)
{
	if (!f->tcp_open)
		return;
	f->tcp_open = 0;
	uv_close((uv_handle_t *)&f->tcp, tcp_closed);
}

/* "PORT", "HOST:PORT" or "[V6]:PORT" into an address; 0 or -1. */
static int parse_dest(const char *arg, struct sockaddr_storage *ss)
{
	char host[FORWARD_HOST_MAX];
	const char *colon = strrchr(arg, ':'), *port_s = arg;
	size_t hlen = 0;
	char *end;
	unsigned long port;

	memset(ss, 0, sizeof(*ss));
	strcpy(host, "127.0.0.1");
	if (colon != NULL) {
		const char *h = arg;

		hlen = (size_t)(colon - arg);
		if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
			h++;
			hlen -= 2;
		}
		if (hlen == 0 || hlen >= sizeof(host))
			return -1;
		memcpy(host, h, hlen);
		host[hlen] = '\0';
		if (strcmp(host, "localhost") == 0)
			strcpy(host, "127.0.0.1");
		port_s = colon + 1;
	}
	errno = 0;
	port = strtoul(port_s, &end, 10);
	if (errno || end == port_s || *end != '\0' || port == 0 || port > 65535)
		return -1;
	if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss) != 0 &&
	    uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss) != 0)
		return -1;
	return 0;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)suggested;
	struct forward *f = h->data;

	*buf = uv_buf_init((char *)f->buf, (unsigned)f->bufsize);
}

static void read_cb(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
	(void)buf;
	struct forward *f = h->data;

	if (nread == 0)
		return;
	uv_read_stop(h);
	if (nread > 0) {
		if (f->aborted || !stream_can_send(f->s))
			return;
		stream_send(f->s, f->buf, (size_t)nread);
		return;
	}
	if (nread != UV_EOF)
		log_info("%s: stream %u: %s: %s", stream_peer(f->s), f->s->id, f->dest,
			 uv_strerror((int)nread));
	else
		log_debug("%s: stream %u: %s closed the connection", stream_peer(f->s), f->s->id,
			  f->dest);
	close_tcp(f);
	stream_finish(f->s);
}

static void start_reading(struct forward *f)
{
	int err;

	if (f->aborted || !f->tcp_open)
		return;
	err = uv_read_start((uv_stream_t *)&f->tcp, alloc_cb, read_cb);
	if (err < 0) {
		log_info("%s: stream %u: %s: %s", stream_peer(f->s), f->s->id, f->dest,
			 uv_strerror(err));
		close_tcp(f);
		stream_finish(f->s);
	}
}

static void connect_cb(uv_connect_t *req, int status)
{
	struct forward *f = req->data;

	if (f->aborted || status == UV_ECANCELED)
		return;   /* the stream is gone; the handle is closing */
	if (status < 0) {
		log_info("%s: stream %u: connect to %s: %s: OPEN refused", stream_peer(f->s),
			 f->s->id, f->dest, uv_strerror(status));
		close_tcp(f);
		stream_refused(f->s);
		return;
	}
	f->connected = 1;
	uv_tcp_nodelay(&f->tcp, 1);
	log_debug("%s: stream %u: connected to %s", stream_peer(f->s), f->s->id, f->dest);
	stream_opened(f->s);
}

static int forward_start(struct stream *s, const char *arg)
{
	struct forward *f = xcalloc(1, sizeof(*f));
	struct sockaddr_storage ss;
	int err;

	s->svc = f;
	f->s = s;
	snprintf(f->dest, sizeof(f->dest), "tcp:%.*s", FORWARD_HOST_MAX, arg);
	if (parse_dest(arg, &ss) != 0) {
		log_info("%s: bad forward destination \"%s\" (tcp:PORT or tcp:HOST:PORT)",
			 stream_peer(s), f->dest);
		return -1;
	}
	f->bufsize = stream_max_payload(s) < FORWARD_BUF_MAX ? stream_max_payload(s)
							     : FORWARD_BUF_MAX;
	f->buf = xmalloc(f->bufsize);
	uv_tcp_init(g_loop, &f->tcp);
	f->tcp.data = f;
	f->tcp_open = 1;
	stream_ref(s);
	f->creq.data = f;
	err = uv_tcp_connect(&f->creq, &f->tcp, (const struct sockaddr *)&ss, connect_cb);
	if (err < 0) {
		log_info("%s: connect to %s: %s", stream_peer(s), f->dest, uv_strerror(err));
		close_tcp(f);
		f->aborted = 1;
		return -1;
	}
	return STREAM_START_LATER;
}

static void forward_started(struct stream *s)
{
	start_reading(s->svc);
}

static void write_cb(uv_write_t *req, int status)
{
	struct forward *f = (struct forward *)((char *)req - offsetof(struct forward, wreq));

	if (status < 0 && status != UV_ECANCELED) {
		log_info("%s: stream %u: writing to %s: %s", stream_peer(f->s), f->s->id, f->dest,
			 uv_strerror(status));
		close_tcp(f);
		stream_finish(f->s);
		return;
	}
	stream_consumed(f->s);
}

static void forward_data(struct stream *s, const uint8_t *data, size_t len)
{
	struct forward *f = s->svc;
	uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
	int err;

	if (!f->tcp_open) {
		stream_consumed(s);   /* the socket is gone: drop */
		return;
	}
	err = uv_write(&f->wreq, (uv_stream_t *)&f->tcp, &b, 1, write_cb);
	if (err < 0) {
		log_info("%s: stream %u: writing to %s: %s", stream_peer(s), s->id, f->dest,
			 uv_strerror(err));
		close_tcp(f);
		stream_finish(s);
	}
}

static void forward_ready(struct stream *s)
{
	start_reading(s->svc);
}

static void forward_abort(struct stream *s)
{
	struct forward *f = s->svc;

	if (f == NULL || f->aborted)
		return;
	f->aborted = 1;
	close_tcp(f);   /* cancels a connect or write in flight */
}

static void forward_release(struct stream *s)
{
	struct forward *f = s->svc;

	if (f == NULL)
		return;
	free(f->buf);
	free(f);
	s->svc = NULL;
}

const struct service_ops forward_service = {
	.name = "tcp",
	.start = forward_start,
	.started = forward_started,
	.data = forward_data,
	.ready = forward_ready,
	.abort = forward_abort,
	.release = forward_release,
};
