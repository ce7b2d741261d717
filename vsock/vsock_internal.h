/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vsock_internal.h - helpers shared by the transports inside vsock/.
 */
#ifndef VSOCK_INTERNAL_H
#define VSOCK_INTERNAL_H

#include "vsock/vsock.h"

/* Start a non-blocking connect to a Unix stream socket (see transport open). */
int vsock_open_unix_path(const char *path, int *fd);
/* The hybrid "CONNECT <port>" line and the check of its "OK <n>" reply. */
size_t vsock_hybrid_hello(const struct vsock_target *t, char *buf, size_t len);
int vsock_hybrid_check_reply(const char *line, size_t len);

/* transport_virtio.c: the device serving the vhost-user socket PATH, or
 * NULL. */
struct vhu_device;
struct vhu_device *vsock_virtio_device(const char *path);

/* vconn.c: start a device connection to t's guest port; done(data, status)
 * once the guest answered (0) or not (-ECONNREFUSED, -ETIMEDOUT,
 * -ECONNRESET), unless the connection is closed first. 0, or -ENODEV (no
 * such device), -ENOTCONN (no VMM, or its rings do not run), -EAGAIN (the
 * device's table is full), -ENOMEM. */
int vsock_vconn_open(uv_loop_t *loop, const struct vsock_target *t,
		     void (*done)(void *data, int status), void *data, struct vsock_vconn **out);
/* The device of d stops: every connection of it ends (its reader gets
 * UV_EOF, its writer UV_EPIPE) and lets go of d. */
void vsock_vconn_detach_all(struct vhu_device *d);

#endif
