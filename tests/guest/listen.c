/* SPDX-License-Identifier: Apache-2.0 */
/*
 * listen.c - the listeners of adbd-testguest: --listen SPEC parsing,
 * unix:PATH, tcp:HOST:PORT, hybrid:PATH (Firecracker/Cloud Hypervisor
 * hybrid vsock, whose "CONNECT <port>\n" command is parsed here), and
 * vsock:PORT (kernel vsock, opened by tests/vm/guest_vsock.c and only inside
 * lab guests; watched with uv_poll). Accepted sockets go to conn.c. The
 * listeners are closed and opened again by a restart (restart.c): while
 * down, a unix:/hybrid: path is left behind as a socket nobody listens on
 * (connect: ECONNREFUSED, as after a killed daemon; libuv would unlink it),
 * replaced when the listener opens again; a TCP port is bound again with
 * SO_REUSEADDR (what libuv sets).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "tests/guest/guest.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

enum listener_kind { L_UNIX, L_TCP, L_HYBRID, L_VSOCK };

struct listener {
	enum listener_kind kind;
	char spec[128];          /* for log lines */
	union {
		uv_handle_t handle;
		uv_stream_t stream;
		uv_tcp_t tcp;
		uv_pipe_t pipe;
		uv_poll_t poll;
	} h;
	int vsock_fd;
	int handle_closing;      /* a failed open closed the handle: it frees l */
	unsigned long accepted;
	struct listener *next;
};

static struct listener *listeners;
static int dead_sockets_left;    /* listeners_close(1) left unix paths behind */

static void listener_closed(uv_handle_t *h);

/* ---- hybrid vsock command ---- */

int hybrid_hs_feed(struct hybrid_hs *hs, char byte, uint32_t *port, const char **why)
{
	static const char prefix[] = "CONNECT ";
	const size_t plen = sizeof(prefix) - 1;

	if (hs->len >= HYBRID_CMD_MAX) {
		*why = "no newline within 32 bytes";
		return -1;
	}
	hs->buf[hs->len++] = byte;
	if (hs->len <= plen) {
		if (byte != prefix[hs->len - 1]) {
			*why = "does not start with \"CONNECT \"";
			return -1;
		}
		return 0;
	}
	if (byte == '\n') {
		size_t digits = hs->len - plen - 1;
		uint64_t v = 0;

		if (digits == 0) {
			*why = "no port number";
			return -1;
		}
		for (size_t i = plen; i < plen + digits; i++)
			v = v * 10 + (uint64_t)(hs->buf[i] - '0');
		if (v > UINT32_MAX) {
			*why = "port number out of range";
			return -1;
		}
		*port = (uint32_t)v;
		return 1;
	}
	if (byte < '0' || byte > '9') {
		*why = "port is not a decimal number";
		return -1;
	}
	if (hs->len - plen > 10) {
		*why = "port number too long";
		return -1;
	}
	return 0;
}

/* ---- accepting ---- */

static void on_connection(uv_stream_t *server, int status)
{
	struct listener *l = server->data;
	enum conn_kind kind = l->kind == L_TCP ? CONN_TCP : CONN_PIPE;
	uv_stream_t *h;
	char peer[160];
	int err;

	if (status < 0) {
		log_err("%s: accept: %s", l->spec, uv_strerror(status));
		return;
	}
	h = conn_handle_alloc(kind);
	err = uv_accept(server, h);
	if (err < 0) {
		log_err("%s: accept: %s", l->spec, uv_strerror(err));
		conn_handle_free(h);
		return;
	}
	l->accepted++;
	if (kind == CONN_TCP) {
		struct sockaddr_storage ss;
		int len = sizeof(ss);
		char ip[INET6_ADDRSTRLEN] = "?";
		int port = 0;

		if (uv_tcp_getpeername((uv_tcp_t *)h, (struct sockaddr *)&ss, &len) == 0) {
			if (ss.ss_family == AF_INET) {
				struct sockaddr_in *a = (struct sockaddr_in *)&ss;
				uv_ip4_name(a, ip, sizeof(ip));
				port = ntohs(a->sin_port);
			} else if (ss.ss_family == AF_INET6) {
				struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
				uv_ip6_name(a, ip, sizeof(ip));
				port = ntohs(a->sin6_port);
			}
		}
		snprintf(peer, sizeof(peer), "%s peer %s:%d", l->spec, ip, port);
		uv_tcp_nodelay((uv_tcp_t *)h, 1); /* small frames (OKAY) must not wait */
	} else {
		snprintf(peer, sizeof(peer), "%s #%lu", l->spec, l->accepted);
	}
	conn_start(h, l->kind == L_HYBRID, peer);
}

static void vsock_poll_cb(uv_poll_t *p, int status, int events)
{
	(void)events;
	struct listener *l = p->data;

	if (status < 0) {
		log_err("%s: poll: %s", l->spec, uv_strerror(status));
		return;
	}
	for (int i = 0; i < 64; i++) {
		uint32_t cid = 0, port = 0;
		char peer[160];
		uv_stream_t *h;
		int fd, err;

		fd = lab_vsock_accept(l->vsock_fd, &cid, &port);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
				log_err("%s: accept: %s", l->spec, strerror(errno));
			return;
		}
		h = conn_handle_alloc(CONN_PIPE);
		err = uv_pipe_open((uv_pipe_t *)h, fd);
		if (err < 0) {
			log_err("%s: uv_pipe_open: %s", l->spec, uv_strerror(err));
			close(fd);
			conn_handle_free(h);
			continue;
		}
		l->accepted++;
		snprintf(peer, sizeof(peer), "%s peer cid %u port %u", l->spec, cid, port);
		conn_start(h, 0, peer);
	}
}

/* ---- opening ---- */

static int parse_u32(const char *s, uint32_t max, uint32_t *out)
{
	char *end;
	unsigned long long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end != '\0' || v > max)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* After a bind with result `err`: listen, or log and close. */
static int start_listening(struct listener *l, int err)
{
	if (err == 0)
		err = uv_listen(&l->h.stream, 128, on_connection);
	if (err < 0) {
		log_err("%s: %s", l->spec, uv_strerror(err));
		l->handle_closing = 1;
		uv_close(&l->h.handle, listener_closed);
		return -1;
	}
	return 0;
}

static int open_unix(struct listener *l, const char *path)
{
	struct stat st;

	if (path[0] == '\0' || strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		log_err("%s: bad socket path (empty or too long)", l->spec);
		return -1;
	}
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			log_err("%s: %s exists and is not a socket", l->spec, path);
			return -1;
		}
		if (unlink(path) != 0) {
			log_err("%s: cannot remove stale socket: %s", l->spec, strerror(errno));
			return -1;
		}
	}
	uv_pipe_init(g_loop, &l->h.pipe, 0);
	l->h.handle.data = l;
	return start_listening(l, uv_pipe_bind(&l->h.pipe, path));
}

static int open_tcp(struct listener *l, const char *hostport)
{
	char host[64];
	const char *colon = strrchr(hostport, ':');
	struct sockaddr_storage ss;
	uint32_t port;
	size_t hlen;
	int len;

	if (colon == NULL || parse_u32(colon + 1, 65535, &port) != 0) {
		log_err("%s: expected tcp:HOST:PORT", l->spec);
		return -1;
	}
	hlen = (size_t)(colon - hostport);
	if (hlen >= 2 && hostport[0] == '[' && hostport[hlen - 1] == ']') {
		hostport++;
		hlen -= 2;
	}
	if (hlen == 0 || hlen >= sizeof(host)) {
		log_err("%s: bad host", l->spec);
		return -1;
	}
	memcpy(host, hostport, hlen);
	host[hlen] = '\0';
	memset(&ss, 0, sizeof(ss));
	if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)&ss) != 0 &&
	    uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)&ss) != 0) {
		log_err("%s: host must be a numeric IPv4 or [IPv6] address", l->spec);
		return -1;
	}
	uv_tcp_init(g_loop, &l->h.tcp);
	l->h.handle.data = l;
	if (start_listening(l, uv_tcp_bind(&l->h.tcp, (struct sockaddr *)&ss, 0)) != 0)
		return -1;
	len = sizeof(ss);
	if (uv_tcp_getsockname(&l->h.tcp, (struct sockaddr *)&ss, &len) == 0) {
		int p = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
						 : ntohs(((struct sockaddr_in *)&ss)->sin_port);
		log_info("%s: listening on port %d", l->spec, p);
	}
	return 0;
}

/* Only inside lab guests (see tests/vm/guest_vsock.c). */
static int open_vsock(struct listener *l, const char *portstr)
{
	char why[128];
	uint32_t port;
	int fd, err;

	if (parse_u32(portstr, UINT32_MAX, &port) != 0) {
		log_err("%s: expected vsock:PORT", l->spec);
		return -1;
	}
	fd = lab_vsock_listen(port, why, sizeof(why));
	if (fd < 0) {
		log_err("%s: %s", l->spec, why);
		return -1;
	}
	err = uv_poll_init(g_loop, &l->h.poll, fd);
	if (err == 0) {
		l->h.handle.data = l;
		err = uv_poll_start(&l->h.poll, UV_READABLE, vsock_poll_cb);
		if (err < 0) {
			l->handle_closing = 1; /* vsock_fd is still -1: closed below */
			uv_close(&l->h.handle, listener_closed);
		}
	}
	if (err < 0) {
		log_err("%s: uv_poll: %s", l->spec, uv_strerror(err));
		close(fd);
		return -1;
	}
	l->vsock_fd = fd;
	return 0;
}

int listener_open(const char *spec)
{
	struct listener *l = xcalloc(1, sizeof(*l));
	int rc;

	snprintf(l->spec, sizeof(l->spec), "%s", spec);
	l->vsock_fd = -1;
	if (strncmp(spec, "unix:", 5) == 0) {
		l->kind = L_UNIX;
		rc = open_unix(l, spec + 5);
	} else if (strncmp(spec, "hybrid:", 7) == 0) {
		l->kind = L_HYBRID;
		rc = open_unix(l, spec + 7);
	} else if (strncmp(spec, "tcp:", 4) == 0) {
		l->kind = L_TCP;
		rc = open_tcp(l, spec + 4);
	} else if (strncmp(spec, "vsock:", 6) == 0) {
		l->kind = L_VSOCK;
		rc = open_vsock(l, spec + 6);
	} else {
		log_err("--listen %s: expected unix:PATH, tcp:HOST:PORT, hybrid:PATH or vsock:PORT", spec);
		rc = -1;
	}
	if (rc != 0) {
		/* a handle that was initialised is closing and frees l */
		if (!l->handle_closing)
			free(l);
		return -1;
	}
	l->next = listeners;
	listeners = l;
	log_debug("%s: listening", l->spec);
	return 0;
}

static void listener_closed(uv_handle_t *h)
{
	struct listener *l = h->data;

	if (l->vsock_fd >= 0)
		close(l->vsock_fd);
	free(l);
}

int listeners_open_all(int restarting)
{
	for (int i = 0; i < g_opt.nlisten; i++) {
		if (listener_open(g_opt.listen[i]) != 0) {
			listeners_close(restarting);
			return -1;
		}
	}
	return 0;
}

/* A socket file at `path` that nobody listens on: bound, never listened,
 * closed. */
static void leave_dead_socket(const char *spec, const char *path)
{
	struct sockaddr_un a;
	int fd;

	memset(&a, 0, sizeof(a));
	a.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(a.sun_path))
		return;
	strcpy(a.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		log_debug("%s: dead socket: %s", spec, strerror(errno));
		return;
	}
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
		log_debug("%s: dead socket: %s", spec, strerror(errno));
	else
		dead_sockets_left = 1;
	close(fd);
}

static const char *unix_path(const char *spec)
{
	if (strncmp(spec, "unix:", 5) == 0)
		return spec + 5;
	if (strncmp(spec, "hybrid:", 7) == 0)
		return spec + 7;
	return NULL;
}

void listeners_close(int restarting)
{
	struct listener *l = listeners, *next;

	listeners = NULL;
	for (; l != NULL; l = next) {
		next = l->next;
		if (l->kind == L_VSOCK)
			uv_poll_stop(&l->h.poll);
		uv_close(&l->h.handle, listener_closed); /* unlinks a unix path */
		if (restarting && (l->kind == L_UNIX || l->kind == L_HYBRID))
			leave_dead_socket(l->spec, unix_path(l->spec));
	}
	if (!restarting && dead_sockets_left) {
		/* shut down while down for a restart: remove what we left */
		for (int i = 0; i < g_opt.nlisten; i++) {
			const char *path = unix_path(g_opt.listen[i]);
			struct stat st;

			if (path != NULL && lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
				unlink(path);
		}
		dead_sockets_left = 0;
	}
}
