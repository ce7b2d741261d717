/* SPDX-License-Identifier: Apache-2.0 */
/*
 * notify.c - sd_notify without libsystemd: see sys.h.
 */
#include "relay/sys/sys.h"

#include <errno.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int notify_send(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	size_t len;
	socklen_t salen;
	ssize_t n;
	int fd, err = 0;

	if (path == NULL || path[0] == '\0')
		return 0;
	len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sun.sun_path))
		return -EINVAL;
	memcpy(sun.sun_path, path, len);
	if (path[0] == '@')
		sun.sun_path[0] = '\0';
	salen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	n = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sun, salen);
	if (n < 0)
		err = -errno;
	close(fd);
	return err;
}

static void on_watchdog(uv_timer_t *t)
{
	(void)t;
	notify_send("WATCHDOG=1");
}

uint64_t notify_watchdog_start(uv_loop_t *loop, uv_timer_t *timer)
{
	const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	uint64_t ms;
	char *end;

	uv_timer_init(loop, timer);
	if (usec == NULL || getenv("NOTIFY_SOCKET") == NULL)
		return 0;
	if (pid != NULL && (strtoumax(pid, &end, 10) != (uintmax_t)getpid() || end == pid ||
			    *end != '\0'))
		return 0;          /* meant for another process of the service, or garbage */
	ms = strtoumax(usec, &end, 10) / 1000;
	if (*end != '\0' || ms < 2)
		return 0;
	uv_timer_start(timer, on_watchdog, ms / 2, ms / 2);
	return ms;
}
