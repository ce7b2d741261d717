/* SPDX-License-Identifier: Apache-2.0 */
/*
 * guest_conn.h - a session's guest link, whatever carries it: a stream
 * socket (kernel vsock, hybrid, unix, tcp targets; guest_stream.c) or a
 * connection of the relay's own virtio device (guest_vconn.c), which
 * moves the bytes between the session's buffers and the guest's rings
 * with no socket in between. As struct front_conn on the PC's side: reads
 * lend the session's pooled buffers as libuv streams do (alloc, then read
 * with nread > 0, UV_ENOBUFS when alloc gave no room, UV_EOF once the
 * guest is gone, another uv error), writes take output batches
 * (datapath.h) and finish each with output_batch_done, close is
 * asynchronous (pending batches finish cancelled, then on_closed).
 */
#ifndef RELAY_GUEST_CONN_H
#define RELAY_GUEST_CONN_H

#include <sys/types.h>
#include <uv.h>

#include "relay/datapath/datapath.h"
#include "vsock/vsock.h"

struct guest_conn;

typedef void (*guest_conn_alloc_cb)(struct guest_conn *g, uv_buf_t *buf);
typedef void (*guest_conn_read_cb)(struct guest_conn *g, ssize_t nread, const uv_buf_t *buf);

struct guest_conn_ops {
	void (*read_start)(struct guest_conn *g);
	void (*read_stop)(struct guest_conn *g);
	output_write_fn write;                    /* ctx is the guest_conn */
	void (*close)(struct guest_conn *g);
	/* The socket payload may be spliced into now (datapath.h), or -1:
	 * only a TCP or AF_UNIX socket (never kernel vsock, which has no
	 * splice of its own), and only while nothing written waits in its
	 * queue, so spliced bytes follow what went before. NULL: never
	 * (kernel vsock, the virtio device). */
	int (*splice_fd)(struct guest_conn *g);
};

struct guest_conn {
	const struct guest_conn_ops *ops;
	guest_conn_alloc_cb on_alloc;
	guest_conn_read_cb on_read;
	void (*on_closed)(struct guest_conn *g);
	void *data;                               /* the session */
};

/* Adopt a connected stream socket (closed on failure): 0 or a uv error. */
int guest_conn_stream_open(uv_loop_t *loop, int fd, struct guest_conn **out);
/* Adopt a device connection (closed on failure): 0 or a uv error. */
int guest_conn_vconn_open(struct vsock_vconn *vc, struct guest_conn **out);

#endif
