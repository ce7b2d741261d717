/* SPDX-License-Identifier: Apache-2.0 */
/*
 * unix_listen.c - the listening Unix sockets of a device (its vhost-user
 * socket, its hybrid socket): made at a path where an earlier run may have
 * left a socket (that one goes; anything else stays and is an error), with
 * the mode asked for whatever the process umask, appearing at the path
 * only once they accept.
 */
#include "vsock/virtio/vhu_internal.h"
#include "vsock/vsock.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int fail(const char *what, const char *path, int e, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s%s: %s", what, path, strerror(e));
	return uv_translate_sys_error(e);
}

static int remove_stale(const char *what, const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : fail(what, path, errno, err, errlen);
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "%s%s: exists and is not a socket; not replacing it", what,
			 path);
		return UV_EEXIST;
	}
	return unlink(path) == 0 ? 0 : fail(what, path, errno, err, errlen);
}

int vhu_listen_unix(const char *what, const char *path, mode_t mode, int backlog,
		    char *err, size_t errlen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd, e, bound = 0, rc;

	if (strlen(path) >= VSOCK_LISTEN_PATH_MAX) {
		snprintf(err, errlen, "%s%.80s...: socket path too long (%zu bytes, at most %zu)",
			 what, path, strlen(path), VSOCK_LISTEN_PATH_MAX - 1);
		return UV_ENAMETOOLONG;
	}
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s" VSOCK_LISTEN_SUFFIX, path);
	rc = remove_stale(what, path, err, errlen);
	if (rc == 0)
		rc = remove_stale(what, sun.sun_path, err, errlen);
	if (rc != 0)
		return rc;
	/* made under a temporary name, renamed once it accepts with its mode:
	 * a client that sees path can connect, and only as the mode allows */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		bound = 1;
		if (chmod(sun.sun_path, mode) == 0 && listen(fd, backlog) == 0 &&
		    rename(sun.sun_path, path) == 0)
			return fd;
	}
	e = errno;
	if (bound)
		unlink(sun.sun_path);
	if (fd >= 0)
		close(fd);
	return fail(what, path, e, err, errlen);
}
