/* SPDX-License-Identifier: Apache-2.0 */
/*
 * unix_listen.c - the listening Unix sockets the relay makes at a path
 * (a device's vhost-user socket, its hybrid socket, the relay's control
 * socket). Each is bound at PATH VHU_LISTEN_SUFFIX with its mode (under a
 * umask, not a chmod by name) and owner, made to listen, and renamed to
 * PATH without replacing anything: PATH appears only once it accepts. A
 * socket an earlier run left at either name goes; at the temporary name
 * only one that refuses a connection. Anything else stays and is an error.
 * A listener's path is removed only while it is still that socket.
 */
#include "vsock/virtio/vhost_user.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int fail(const char *what, const char *path, const char *op, int e, char *err,
		size_t errlen)
{
	snprintf(err, errlen, "%s%s: %s%s%s", what, path, op, *op ? ": " : "", strerror(e));
	return uv_translate_sys_error(e);
}

/* Does a process listen on the socket at sun? A full backlog counts. */
static int listening(const struct sockaddr_un *sun)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int live;

	if (fd < 0)
		return 1;        /* cannot tell: leave it */
	/* only a refusal says nobody is there: a socket this process may not
	 * reach, or of another type, is somebody's */
	live = connect(fd, (const struct sockaddr *)sun, sizeof(*sun)) == 0 ||
	       errno != ECONNREFUSED;
	close(fd);
	return live;
}

/* Make room at path: nothing there, or a socket nobody listens on (gone
 * now). check_live: a socket somebody listens on stays, an error. */
static int remove_stale(const char *what, const char *path, int check_live, char *err,
			size_t errlen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat st;

	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : fail(what, path, "", errno, err, errlen);
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "%s%s: exists and is not a socket; not replacing it", what,
			 path);
		return UV_EEXIST;
	}
	memcpy(sun.sun_path, path, strlen(path));
	if (check_live && listening(&sun)) {
		snprintf(err, errlen, "%s%s: another program listens there; not replacing it",
			 what, path);
		return UV_EADDRINUSE;
	}
	return unlink(path) == 0 ? 0 : fail(what, path, "", errno, err, errlen);
}

/* PATH VHU_LISTEN_SUFFIX to path, failing if something appeared at path. */
static int rename_into_place(const char *tmp, const char *path)
{
	if (renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	/* without RENAME_NOREPLACE: a link fails as well where path exists */
	if (link(tmp, path) != 0)
		return -1;
	unlink(tmp);
	return 0;
}

void vhu_unlink_listener(const char *path, const struct vhu_listen_id *id)
{
	struct stat st;

	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == id->dev &&
	    st.st_ino == id->ino)
		unlink(path);
}

/* The bound socket at tmp: owned, listening, at path. NULL, or the call
 * that failed with errno set. */
static const char *make_ready(int fd, const char *tmp, const char *path, uid_t uid, gid_t gid,
			      int backlog, struct vhu_listen_id *id)
{
	struct stat st;

	if (lstat(tmp, &st) != 0)
		return "stat";
	if (!S_ISSOCK(st.st_mode)) {
		errno = EEXIST;          /* swapped for something else */
		return "stat";
	}
	id->dev = st.st_dev;
	id->ino = st.st_ino;
	if ((uid != (uid_t)-1 || gid != (gid_t)-1) && lchown(tmp, uid, gid) != 0)
		return "chown";
	if (listen(fd, backlog) != 0)
		return "listen";
	if (rename_into_place(tmp, path) != 0)
		return "rename";
	return NULL;
}

int vhu_listen_unix(const char *what, const char *path, mode_t mode, uid_t uid, gid_t gid,
		    int backlog, struct vhu_listen_id *id, char *err, size_t errlen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	const char *tmp = sun.sun_path, *op;
	mode_t umask_was;
	int fd, e, rc;

	*id = (struct vhu_listen_id){ 0, 0 };
	if (strlen(path) >= VHU_LISTEN_PATH_MAX) {
		snprintf(err, errlen, "%s%.80s...: socket path too long (%zu bytes, at most %zu)",
			 what, path, strlen(path), VHU_LISTEN_PATH_MAX - 1);
		return UV_ENAMETOOLONG;
	}
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s" VHU_LISTEN_SUFFIX, path);
	rc = remove_stale(what, path, 0, err, errlen);
	if (rc == 0)
		rc = remove_stale(what, tmp, 1, err, errlen);
	if (rc != 0)
		return rc;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail(what, path, "socket", errno, err, errlen);
	umask_was = umask(~mode & 0777);
	rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
	e = errno;
	umask(umask_was);
	if (rc != 0) {
		close(fd);
		return fail(what, path, "bind", e, err, errlen);
	}
	op = make_ready(fd, tmp, path, uid, gid, backlog, id);
	if (op == NULL)
		return fd;
	e = errno;
	vhu_unlink_listener(tmp, id);
	close(fd);
	return fail(what, path, op, e, err, errlen);
}
