/* SPDX-License-Identifier: Apache-2.0 */
/*
 * unix_listen.c - the listening Unix sockets of a device (its vhost-user
 * socket, its hybrid socket): made at a path where an earlier run may have
 * left a socket (that one goes; anything else stays and is an error), with
 * the mode asked for whatever the process umask.
 */
#include "vsock/virtio/vhu_internal.h"

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

	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "%s%.80s...: socket path too long (%zu bytes, at most %zu)",
			 what, path, strlen(path), sizeof(sun.sun_path) - 1);
		return UV_ENAMETOOLONG;
	}
	rc = remove_stale(what, path, err, errlen);
	if (rc != 0)
		return rc;
	memcpy(sun.sun_path, path, strlen(path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
		bound = 1;
		/* before listen: nobody can connect in between */
		if (chmod(path, mode) == 0 && listen(fd, backlog) == 0)
			return fd;
	}
	e = errno;
	if (bound)
		unlink(path);
	if (fd >= 0)
		close(fd);
	return fail(what, path, e, err, errlen);
}
