/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hybrid_listen.c - the device's hybrid socket for other host programs
 * (hybrid.h): a listening Unix socket watched on the device's loop.
 * Each client goes to hybrid.c unless no VMM is attached or
 * VHU_HYBRID_MAX_CLIENTS are already there; then it is accepted, closed and
 * logged. A spare descriptor is kept so that a process out of descriptors
 * still turns clients away instead of spinning on its listener.
 */
#include "vsock/virtio/hybrid.h"
#include "vsock/virtio/vhu_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define SOCKET_MODE 0660
#define BACKLOG 16

struct vhu_listener {
	uv_poll_t poll;
	struct vhu_device *dev;
	int fd;
	int spare;                 /* closed to accept when out of descriptors */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct vhu_listen_id path_id; /* path is unlinked only while it is ours */
};

/* Out of descriptors: take the waiting client with the spare one and
 * close it, so the listener does not stay readable forever. */
static void shed_client(struct vhu_listener *l, int why)
{
	int fd;

	if (l->spare < 0) {        /* lost it last time: stop rather than spin */
		uv_poll_stop(&l->poll);
		vhu_log(l->dev, 1, "hybrid socket %s: no more clients: %s", l->path,
			       strerror(why));
		return;
	}
	close(l->spare);
	fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
	if (fd >= 0)
		close(fd);
	l->spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
	vhu_log(l->dev, 1, "hybrid client refused: %s", strerror(why));
}

static void on_client(uv_poll_t *p, int status, int events)
{
	struct vhu_listener *l = p->data;
	struct vhu_device *d = l->dev;
	int fd, rc;

	(void)events;
	if (status < 0) {          /* libuv has stopped watching */
		vhu_log(d, 1, "hybrid listener on %s failed: %s", l->path,
			       uv_strerror(status));
		return;
	}
	fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno == EMFILE || errno == ENFILE)
			shed_client(l, errno);
		else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			vhu_log(d, 1, "hybrid accept on %s: %s", l->path, strerror(errno));
		return;
	}
	if (!vhu_ready(d)) {
		vhu_log(d, 0, "hybrid client refused: no VMM attached");
		close(fd);
	} else if (vhu_hybrid_clients(d) >= VHU_HYBRID_MAX_CLIENTS) {
		vhu_log(d, 1, "hybrid client refused: %d clients already",
			       VHU_HYBRID_MAX_CLIENTS);
		close(fd);
	} else if ((rc = vhu_hybrid_serve_client(d, fd)) != 0) {
		vhu_log(d, 1, "hybrid client refused: %s", uv_strerror(rc));
	}
}

int vhu_hybrid_listen(struct vhu_device *d, const char *path, char *err, size_t errlen)
{
	struct vhu_listener *l;
	int fd, rc;

	if (d->hybrid_listener != NULL) {
		snprintf(err, errlen, "hybrid socket %s: the device listens on %s already", path,
			 d->hybrid_listener->path);
		return UV_EBUSY;
	}
	if (path[0] != '/' || strlen(path) >= sizeof(l->path)) {
		snprintf(err, errlen, "hybrid socket %s: not an absolute path that fits a socket",
			 path);
		return UV_EINVAL;
	}
	l = calloc(1, sizeof(*l));
	if (l == NULL) {
		snprintf(err, errlen, "out of memory");
		return UV_ENOMEM;
	}
	l->spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (l->spare < 0) {
		rc = uv_translate_sys_error(errno);
		snprintf(err, errlen, "hybrid socket %s: %s", path, strerror(errno));
		free(l);
		return rc;
	}
	fd = vhu_listen_unix("hybrid socket ", path, SOCKET_MODE, (uid_t)-1, (gid_t)-1,
			     BACKLOG, &l->path_id, err, errlen);
	if (fd < 0) {
		close(l->spare);
		free(l);
		return fd;
	}
	if (uv_poll_init(d->loop, &l->poll, fd) != 0) {
		snprintf(err, errlen, "hybrid socket %s: cannot watch it", path);
		vhu_unlink_listener(path, &l->path_id);
		close(fd);
		close(l->spare);
		free(l);
		return UV_EINVAL;
	}
	l->poll.data = l;
	l->dev = d;
	l->fd = fd;
	snprintf(l->path, sizeof(l->path), "%s", path);
	uv_poll_start(&l->poll, UV_READABLE, on_client);
	d->handles_open++;
	d->hybrid_listener = l;
	d->ext_stop = vhu_hybrid_close_all;
	vhu_log(d, 0, "hybrid clients accepted on %s", path);
	return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
	struct vhu_listener *l = h->data;
	struct vhu_device *d = l->dev;

	close(l->fd);
	if (l->spare >= 0)
		close(l->spare);
	free(l);
	if (--d->handles_open == 0 && d->on_closed != NULL)
		d->on_closed(d);
}

void vhu_hybrid_unlisten(struct vhu_device *d)
{
	struct vhu_listener *l = d->hybrid_listener;

	if (l == NULL)
		return;
	d->hybrid_listener = NULL;
	vhu_hybrid_close_clients(d);
	vhu_unlink_listener(l->path, &l->path_id);
	vhu_log(d, 0, "hybrid socket %s closed", l->path);
	uv_close((uv_handle_t *)&l->poll, on_listener_closed);
}

const char *vhu_hybrid_listen_path(const struct vhu_device *d)
{
	return d->hybrid_listener != NULL ? d->hybrid_listener->path : NULL;
}
