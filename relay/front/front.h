/* SPDX-License-Identifier: Apache-2.0 */
/*
 * front.h - a front connection, the public header of relay/front/: the
 * PC's side of a session, whatever carries it: a TCP connection from
 * `adb connect` (tcp.c), or a FunctionFS function while the USB host has
 * it enabled (usb.c). Reads lend pooled buffers like libuv streams do;
 * writes take output batches (datapath.h) and frame them as the carrier
 * needs; close is asynchronous and ends with on_closed. A TCP front lends
 * its socket for splice(2) too.
 */
#ifndef RELAY_FRONT_H
#define RELAY_FRONT_H

#include <sys/types.h>
#include <uv.h>

#include "relay/datapath/datapath.h"

struct front_conn;
struct usb_function;

typedef void (*front_conn_alloc_cb)(struct front_conn *p, uv_buf_t *buf);
/* nread > 0 bytes, UV_EOF when the PC went away, another uv error. */
typedef void (*front_conn_read_cb)(struct front_conn *p, ssize_t nread, const uv_buf_t *buf);

struct front_conn_ops {
	void (*read_start)(struct front_conn *p);
	void (*read_stop)(struct front_conn *p);
	output_write_fn write;                    /* ctx is the front_conn */
	void (*close)(struct front_conn *p);
	/* The socket payload may be spliced from (datapath.h), or -1; NULL
	 * for a carrier that has none (USB). */
	int (*splice_fd)(struct front_conn *p);
};

struct front_conn {
	const struct front_conn_ops *ops;
	front_conn_alloc_cb on_alloc;
	front_conn_read_cb on_read;
	void (*on_closed)(struct front_conn *p);
	void *data;                               /* the session */
	char peer[64];                            /* for log lines */
};

/* Accept a connection on a listening TCP socket. */
int front_conn_tcp_accept(uv_loop_t *loop, uv_stream_t *listener, struct front_conn **out);
/* Use a FunctionFS function that is online; `peer` names it in logs. */
int front_conn_usb_open(struct usb_function *f, const char *peer, struct front_conn **out);

#endif
