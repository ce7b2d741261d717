/* SPDX-License-Identifier: Apache-2.0 */
/*
 * transport_tcp.c - an adbd reachable over IP ("tcp:HOST:PORT"): a
 * non-blocking TCP connect to a numeric address, tuned for adb (small
 * frames: TCP_NODELAY; a guest that vanishes without a reset: keepalive
 * with short timers), and the check that the connection did not meet
 * itself. Owns nothing past open: the socket goes to the connect state
 * machine.
 */
#include "vsock/vsock_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* An idle link is probed after 10 s, every 5 s, and given up after 3
 * unanswered probes: a guest gone without a reset is noticed in about 25 s
 * (the kernel's default is over two hours). The session keeps the PC's
 * transport across the reconnect, so noticing early costs nothing. */
#define TCP_KEEPIDLE_S  10
#define TCP_KEEPINTVL_S 5
#define TCP_KEEPCNT_N   3

static int tcp_sockaddr(const struct vsock_target *t, struct sockaddr_storage *ss,
			socklen_t *len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, t->host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)t->port);
		*len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, t->host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)t->port);
		*len = sizeof(*sin6);
		return 0;
	}
	return -EINVAL; /* not from vsock_target_parse */
}

static int tcp_tune(int s)
{
	static const struct { int level, name, value; } opts[] = {
		{ IPPROTO_TCP, TCP_NODELAY, 1 },
		{ SOL_SOCKET, SO_KEEPALIVE, 1 },
		{ IPPROTO_TCP, TCP_KEEPIDLE, TCP_KEEPIDLE_S },
		{ IPPROTO_TCP, TCP_KEEPINTVL, TCP_KEEPINTVL_S },
		{ IPPROTO_TCP, TCP_KEEPCNT, TCP_KEEPCNT_N },
	};

	for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++)
		if (setsockopt(s, opts[i].level, opts[i].name, &opts[i].value,
			       sizeof(opts[i].value)) != 0)
			return -errno;
	return 0;
}

static int tcp_open(const struct vsock_target *t, int *fd)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int s, rc;

	rc = tcp_sockaddr(t, &ss, &len);
	if (rc != 0)
		return rc;
	s = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
	if (s < 0)
		return -errno;
	rc = tcp_tune(s);
	if (rc == 0 && connect(s, (struct sockaddr *)&ss, len) != 0)
		rc = -errno;
	if (rc == 0 || rc == -EINPROGRESS) {
		*fd = s;
		return rc;
	}
	close(s);
	return rc;
}

/*
 * A connect to a local port nobody listens on can meet itself: when the
 * port is in the ephemeral range the kernel may pick it as the source
 * port, and the simultaneous open succeeds. The relay would then talk adb
 * to itself and hold the port the guest wants to listen on. Such a
 * connection is refused, as the connect should have been.
 */
static int same_endpoint(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	const struct sockaddr_in *a4 = (const void *)a, *b4 = (const void *)b;
	const struct sockaddr_in6 *a6 = (const void *)a, *b6 = (const void *)b;

	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET)
		return a4->sin_port == b4->sin_port && a4->sin_addr.s_addr == b4->sin_addr.s_addr;
	if (a->ss_family == AF_INET6)
		return a6->sin6_port == b6->sin6_port &&
		       memcmp(&a6->sin6_addr, &b6->sin6_addr, sizeof(a6->sin6_addr)) == 0;
	return 0;
}

static int tcp_established(int fd)
{
	struct sockaddr_storage self, peer;
	socklen_t slen = sizeof(self), plen = sizeof(peer);

	if (getsockname(fd, (struct sockaddr *)&self, &slen) != 0 ||
	    getpeername(fd, (struct sockaddr *)&peer, &plen) != 0)
		return -errno;
	return same_endpoint(&self, &peer) ? -ECONNREFUSED : 0;
}

const struct vsock_transport vsock_transport_tcp = {
	.name = "tcp",
	.open = tcp_open,
	.established = tcp_established,
	.hello = NULL,
	.check_reply = NULL,
};
