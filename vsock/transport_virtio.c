/* SPDX-License-Identifier: Apache-2.0 */
/*
 * transport_virtio.c - the relay's own virtio-vsock device as a transport
 * for callers that want a socket (the guest probe, vsock_connect_start): a
 * connection is a socketpair whose far end the device serves with the
 * hybrid protocol, so the connect state machine is the hybrid one (send
 * "CONNECT <port>", expect "OK <n>") and the caller sees a plain stream.
 * A session takes the device's connection itself instead (vconn.c,
 * vsock_link_start), without the socketpair. Also the registry of devices: one per vhost-user socket, shared by every
 * route that names it, and which of them open a hybrid socket to other
 * host programs (vsock/virtio/virtio.h).
 */
#include "vsock/vsock_internal.h"
#include "vsock/virtio/virtio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

_Static_assert(VSOCK_LISTEN_PATH_MAX == VHU_LISTEN_PATH_MAX &&
		       sizeof(VSOCK_LISTEN_SUFFIX) == sizeof(VHU_LISTEN_SUFFIX),
	       "vsock.h and the device agree on the paths they listen at");

struct virtio_entry {
	struct vhu_device dev;
	struct virtio_entry *next;
	unsigned refs;
};

static struct virtio_entry *devices;
static void (*log_fn)(const char *path, int warn, const void *cause, const char *msg);

void vsock_virtio_set_log(void (*log)(const char *path, int warn, const void *cause,
				      const char *msg))
{
	log_fn = log;
}

static int (*trace_wanted)(const char *path);
static void (*trace_line)(const char *path, const char *text);

static void trace_packet(const struct vvs_device *v, const struct vvs_hdr *h)
{
	const struct vhu_device *d = v->data;
	char text[160];

	if (!trace_wanted(d->path))
		return;
	vvs_hdr_format(h, text, sizeof(text));
	trace_line(d->path, text);
}

void vsock_virtio_set_trace(int (*wanted)(const char *path),
			    void (*line)(const char *path, const char *text))
{
	trace_wanted = wanted;
	trace_line = line;
	vvs_set_trace(wanted != NULL && line != NULL ? trace_packet : NULL);
}

static void device_log(struct vhu_device *d, int warn, const void *cause, const char *msg)
{
	if (log_fn != NULL)
		log_fn(d->path, warn, cause, msg);
}

static struct virtio_entry *find(const char *path)
{
	for (struct virtio_entry *e = devices; e; e = e->next)
		if (strcmp(e->dev.path, path) == 0)
			return e;
	return NULL;
}

struct vhu_device *vsock_virtio_device(const char *path)
{
	struct virtio_entry *e = find(path);

	return e != NULL ? &e->dev : NULL;
}

int vsock_virtio_acquire(uv_loop_t *loop, const struct vsock_target *t, char *err, size_t errlen)
{
	struct virtio_entry *e = find(t->path);
	int rc;

	if (e != NULL) {
		if (e->dev.vvs.guest_cid != t->cid) {
			snprintf(err, errlen, "%s already serves guest CID %llu", t->path,
				 (unsigned long long)e->dev.vvs.guest_cid);
			return -EINVAL;
		}
		e->refs++;
		return 0;
	}
	e = calloc(1, sizeof(*e));
	if (e == NULL) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rc = vhu_start(&e->dev, loop, t->path, t->cid, &vhu_hybrid_ops, NULL, err, errlen);
	if (rc != 0) {
		free(e);
		return rc;
	}
	e->dev.log = device_log;
	e->refs = 1;
	e->next = devices;
	devices = e;
	return 0;
}

static void on_device_closed(struct vhu_device *d)
{
	free((struct virtio_entry *)d);   /* dev is the entry's first member */
}

void vsock_virtio_release(const struct vsock_target *t)
{
	struct virtio_entry *e = find(t->path), **pp;

	if (e == NULL || --e->refs > 0)
		return;
	for (pp = &devices; *pp; pp = &(*pp)->next)
		if (*pp == e) {
			*pp = e->next;
			break;
		}
	vsock_vconn_detach_all(&e->dev);
	vhu_stop(&e->dev, on_device_closed);
}

static const char *wanted_path(const struct vhu_device *d, const struct vsock_virtio_hybrid *h,
			       size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(h[i].socket, d->path) == 0)
			return h[i].path;
	return NULL;
}

int vsock_virtio_set_hybrid(const struct vsock_virtio_hybrid *h, size_t n)
{
	struct virtio_entry *e;
	char err[256];
	int failures = 0;

	/* close first, so that a path moving to another device is free */
	for (e = devices; e; e = e->next) {
		const char *have = vhu_hybrid_listen_path(&e->dev);
		const char *want = wanted_path(&e->dev, h, n);

		if (have != NULL && (want == NULL || strcmp(have, want) != 0))
			vhu_hybrid_unlisten(&e->dev);
	}
	for (e = devices; e; e = e->next) {
		const char *want = wanted_path(&e->dev, h, n);

		if (want != NULL && vhu_hybrid_listen_path(&e->dev) == NULL &&
		    vhu_hybrid_listen(&e->dev, want, err, sizeof(err)) != 0) {
			vhu_log(&e->dev, 1, "not listening: %s", err);
			failures++;
		}
	}
	return failures;
}

static int virtio_open(const struct vsock_target *t, int *fd)
{
	struct virtio_entry *e = find(t->path);
	int sv[2], rc;

	if (e == NULL)
		return -ENODEV;
	if (!vhu_ready(&e->dev))
		return -ENOTCONN;          /* no VMM, or its rings are not running */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0)
		return -errno;
	rc = vhu_hybrid_serve(&e->dev, sv[1]);
	if (rc != 0) {
		close(sv[0]);
		return -EIO;
	}
	*fd = sv[0];
	return 0;
}

const struct vsock_transport vsock_transport_virtio = {
	.name = "virtio",
	.open = virtio_open,
	.hello = vsock_hybrid_hello,
	.check_reply = vsock_hybrid_check_reply,
};
