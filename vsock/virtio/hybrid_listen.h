/*
 * hybrid_listen.h - the device's door for other host programs: a Unix
 * socket (mode 0660) on which any program speaks the hybrid vsock protocol
 * of hybrid.c ("CONNECT <port>\n", "OK <n>\n", then bytes) to reach the
 * guest, as it would with Firecracker's or Cloud Hypervisor's socket.
 *
 * At most one listener per device. Its handle counts in the device's
 * handles_open; closing it closes the clients that came through it and
 * removes the socket file; vhu_stop closes it (vhu_hybrid_close_all).
 */
#ifndef VSOCK_HYBRID_LISTEN_H
#define VSOCK_HYBRID_LISTEN_H

#include <stddef.h>

#include "vhost_user.h"

#define VHU_HYBRID_MAX_CLIENTS 64    /* at once; more are accepted and closed */
#define VHU_HYBRID_COMMAND_MS 5000   /* for the CONNECT line, then the stream is closed */

/* Listen for hybrid clients on PATH. A socket file left there is replaced,
 * anything else is an error; so is a listener the device already has.
 * 0 or a uv error with ERR set. */
int vhu_hybrid_listen(struct vhu_device *d, const char *path, char *err, size_t errlen);
/* Close the listener and its clients; nothing when there is none. */
void vhu_hybrid_unlisten(struct vhu_device *d);
/* Where the device listens for hybrid clients, or NULL. */
const char *vhu_hybrid_listen_path(const struct vhu_device *d);

/* hybrid.c for the listener: serve a client that came through it (adopts
 * the fd; its refusals are logged), count them, close them. */
int vhu_hybrid_serve_client(struct vhu_device *d, int fd);
unsigned vhu_hybrid_clients(const struct vhu_device *d);
void vhu_hybrid_close_clients(struct vhu_device *d);

#endif
