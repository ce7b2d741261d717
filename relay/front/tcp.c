/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tcp.c - a PC connected over adb's TCP transport: a thin front
 * connection over a libuv TCP handle.
 */
#include "relay/front/front.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>

struct tcp_port {
	struct front_conn base;
	uv_tcp_t tcp;
};

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct front_conn *p = h->data;

	(void)suggested;
	p->on_alloc(p, buf);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct front_conn *p = st->data;

	p->on_read(p, nread, buf);
}

static void tcp_read_start(struct front_conn *p)
{
	struct tcp_port *t = (struct tcp_port *)p;

	uv_read_start((uv_stream_t *)&t->tcp, on_alloc, on_read);
}

static void tcp_read_stop(struct front_conn *p)
{
	struct tcp_port *t = (struct tcp_port *)p;

	uv_read_stop((uv_stream_t *)&t->tcp);
}

static void on_written(uv_write_t *req, int status)
{
	output_batch_done(req->data, status);
}

static int tcp_write(void *ctx, struct output_batch *b)
{
	struct tcp_port *t = ctx;

	b->req.data = b;
	return uv_write(&b->req, (uv_stream_t *)&t->tcp, b->iov, b->niov, on_written);
}

static void on_tcp_closed(uv_handle_t *h)
{
	struct tcp_port *t = h->data;

	if (t->base.on_closed != NULL)
		t->base.on_closed(&t->base);
	free(t);
}

static void tcp_close(struct front_conn *p)
{
	struct tcp_port *t = (struct tcp_port *)p;

	uv_close((uv_handle_t *)&t->tcp, on_tcp_closed);
}

static int tcp_splice_fd(struct front_conn *p)
{
	struct tcp_port *t = (struct tcp_port *)p;
	uv_os_fd_t fd;

	return uv_fileno((uv_handle_t *)&t->tcp, &fd) == 0 ? fd : -1;
}

static const struct front_conn_ops tcp_ops = {
	.read_start = tcp_read_start,
	.read_stop = tcp_read_stop,
	.write = tcp_write,
	.close = tcp_close,
	.splice_fd = tcp_splice_fd,
};

static void peer_name(uv_tcp_t *t, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	int sl = sizeof(ss);
	char addr[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (uv_tcp_getpeername(t, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
			uv_ip6_name(s6, addr, sizeof(addr));
			port = ntohs(s6->sin6_port);
		} else {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
			uv_ip4_name(s4, addr, sizeof(addr));
			port = ntohs(s4->sin_port);
		}
	}
	snprintf(buf, len, "%s:%u", addr, port);
}

static void free_unaccepted(uv_handle_t *h)
{
	free(h->data);
}

int front_conn_tcp_accept(uv_loop_t *loop, uv_stream_t *listener, struct front_conn **out)
{
	struct tcp_port *t = calloc(1, sizeof(*t));
	int rc;

	if (t == NULL)
		return UV_ENOMEM;
	t->base.ops = &tcp_ops;
	uv_tcp_init(loop, &t->tcp);
	t->tcp.data = t;
	rc = uv_accept(listener, (uv_stream_t *)&t->tcp);
	if (rc != 0) {
		uv_close((uv_handle_t *)&t->tcp, free_unaccepted);
		return rc;
	}
	uv_tcp_nodelay(&t->tcp, 1);
	peer_name(&t->tcp, t->base.peer, sizeof(t->base.peer));
	*out = &t->base;
	return 0;
}
