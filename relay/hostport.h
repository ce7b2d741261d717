/*
 * hostport.h - the PC's side of a session, whatever carries it: a TCP
 * connection from `adb connect`, or a FunctionFS function while the USB
 * host has it enabled. Reads lend pooled buffers like libuv streams do;
 * writes take output batches (output.h) and frame them as the carrier
 * needs; close is asynchronous and ends with on_closed.
 */
#ifndef RELAY_HOSTPORT_H
#define RELAY_HOSTPORT_H

#include <sys/types.h>
#include <uv.h>

#include "output.h"

struct hostport;
struct usb_function;

typedef void (*hostport_alloc_cb)(struct hostport *p, uv_buf_t *buf);
/* nread > 0 bytes, UV_EOF when the PC went away, another uv error. */
typedef void (*hostport_read_cb)(struct hostport *p, ssize_t nread, const uv_buf_t *buf);

struct hostport_ops {
	void (*read_start)(struct hostport *p);
	void (*read_stop)(struct hostport *p);
	output_write_fn write;                    /* ctx is the hostport */
	void (*close)(struct hostport *p);
};

struct hostport {
	const struct hostport_ops *ops;
	hostport_alloc_cb on_alloc;
	hostport_read_cb on_read;
	void (*on_closed)(struct hostport *p);
	void *data;                               /* the session */
	char peer[64];                            /* for log lines */
};

/* Accept a connection on a listening TCP socket. */
int hostport_tcp_accept(uv_loop_t *loop, uv_stream_t *listener, struct hostport **out);
/* Use a FunctionFS function that is online; `peer` names it in logs. */
int hostport_usb_open(struct usb_function *f, const char *peer, struct hostport **out);

#endif
