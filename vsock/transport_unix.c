/* SPDX-License-Identifier: Apache-2.0 */
/*
 * transport_unix.c - Unix stream sockets: the plain "unix" transport and the
 * socket half of the hybrid transport.
 */
#include "vsock/vsock_internal.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int vsock_open_unix_path(const char *path, int *fd)
{
	struct sockaddr_un sun;
	int s;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	strcpy(sun.sun_path, path);

	s = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	if (connect(s, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		*fd = s;
		return 0;
	}
	if (errno == EINPROGRESS || errno == EAGAIN) {
		*fd = s;
		return -EINPROGRESS;
	}
	int err = -errno;
	close(s);
	return err;
}

static int unix_open(const struct vsock_target *t, int *fd)
{
	return vsock_open_unix_path(t->path, fd);
}

const struct vsock_transport vsock_transport_unix = {
	.name = "unix",
	.open = unix_open,
	.hello = NULL,
	.check_reply = NULL,
};
