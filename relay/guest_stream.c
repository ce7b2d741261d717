/* SPDX-License-Identifier: Apache-2.0 */
/*
 * guest_stream.c - a guest link on a stream socket (guest_conn.h): a libuv
 * pipe over the connected fd, read and written as libuv does, and lent
 * for splice(2) when it is a TCP or AF_UNIX socket. Owns the pipe handle
 * and, through it, the fd.
 */
#include "relay/guest_conn.h"

#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

struct guest_stream {
	struct guest_conn g;        /* first: the ops get it */
	uv_pipe_t pipe;
};

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct guest_stream *gs = h->data;

	(void)suggested;
	gs->g.on_alloc(&gs->g, buf);
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct guest_stream *gs = st->data;

	gs->g.on_read(&gs->g, nread, buf);
}

static void read_start(struct guest_conn *g)
{
	struct guest_stream *gs = (struct guest_stream *)g;

	uv_read_start((uv_stream_t *)&gs->pipe, on_alloc, on_read);
}

static void read_stop(struct guest_conn *g)
{
	struct guest_stream *gs = (struct guest_stream *)g;

	uv_read_stop((uv_stream_t *)&gs->pipe);
}

static void on_written(uv_write_t *req, int status)
{
	output_batch_done(req->data, status);
}

static int write_batch(void *ctx, struct output_batch *b)
{
	struct guest_stream *gs = ctx;

	b->req.data = b;
	return uv_write(&b->req, (uv_stream_t *)&gs->pipe, b->iov, b->niov, on_written);
}

static void on_pipe_closed(uv_handle_t *h)
{
	struct guest_stream *gs = h->data;

	if (gs->g.on_closed != NULL)
		gs->g.on_closed(&gs->g);
	free(gs);
}

static void close_stream(struct guest_conn *g)
{
	struct guest_stream *gs = (struct guest_stream *)g;

	uv_close((uv_handle_t *)&gs->pipe, on_pipe_closed);
}

static int splice_fd(struct guest_conn *g)
{
	struct guest_stream *gs = (struct guest_stream *)g;
	uv_os_fd_t fd;

	if (uv_stream_get_write_queue_size((uv_stream_t *)&gs->pipe) != 0 ||
	    uv_fileno((uv_handle_t *)&gs->pipe, &fd) != 0)
		return -1;
	return fd;
}

static const struct guest_conn_ops stream_ops = {
	.read_start = read_start, .read_stop = read_stop, .write = write_batch,
	.close = close_stream,
};

static const struct guest_conn_ops splice_ops = {
	.read_start = read_start, .read_stop = read_stop, .write = write_batch,
	.close = close_stream, .splice_fd = splice_fd,
};

/* Kernel vsock has no splice of its own (the kernel copies): its payload
 * goes through the session's buffers as it always did. */
static int family_spliceable(int fd)
{
	int family = -1;
	socklen_t len = sizeof(family);

	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &len) != 0)
		return 0;
	return family == AF_UNIX || family == AF_INET || family == AF_INET6;
}

static void free_unopened(uv_handle_t *h)
{
	free(h->data);
}

int guest_conn_stream_open(uv_loop_t *loop, int fd, struct guest_conn **out)
{
	struct guest_stream *gs = calloc(1, sizeof(*gs));
	int rc;

	if (gs == NULL) {
		close(fd);
		return UV_ENOMEM;
	}
	rc = uv_pipe_init(loop, &gs->pipe, 0);
	if (rc != 0) {
		free(gs);
		close(fd);
		return rc;
	}
	gs->pipe.data = gs;
	rc = uv_pipe_open(&gs->pipe, fd);
	if (rc != 0) {
		close(fd);
		uv_close((uv_handle_t *)&gs->pipe, free_unopened);
		return rc;
	}
	gs->g.ops = family_spliceable(fd) ? &splice_ops : &stream_ops;
	*out = &gs->g;
	return 0;
}
