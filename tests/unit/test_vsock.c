/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_vsock.c - target specs and the asynchronous connector, driven
 * against Unix-socket servers on a libuv loop: plain unix, the hybrid
 * "CONNECT <port>" handshake with good, refused, garbage, over-long and
 * silent replies, a missing socket, a reset, and cancellation; tcp specs
 * (parse, canonical form, equality, every rejected form) and TCP connects
 * on loopback (127.0.0.1 and ::1: connected and tuned, refused, timed out,
 * cancelled, met itself). (Kernel vsock is exercised only inside the VM lab.)
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "vsock/vsock.h"
#include "tests/unit/unit.h"

struct server {
	uv_pipe_t listener;
	uv_pipe_t conn;
	const char *reply;  /* NULL: say nothing */
	char got[64];
	size_t got_len;
	int accepted;
};

struct result {
	int called;
	int fd;
	int status;
};

static char dir[64];
static char path[128];
static uv_loop_t loop;

static void on_srv_alloc(uv_handle_t *h, size_t s, uv_buf_t *b)
{
	struct server *srv = h->data;

	*b = uv_buf_init(srv->got + srv->got_len, (unsigned)(sizeof(srv->got) - 1 - srv->got_len));
}

static void on_srv_written(uv_write_t *w, int status)
{
	free(w);
}

static void on_srv_read(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
	struct server *srv = st->data;

	if (n <= 0)
		return;
	srv->got_len += (size_t)n;
	if (memchr(srv->got, '\n', srv->got_len) && srv->reply) {
		uv_write_t *w = malloc(sizeof(*w));
		uv_buf_t buf = uv_buf_init((char *)srv->reply, (unsigned)strlen(srv->reply));
		uv_write(w, st, &buf, 1, on_srv_written);
	}
}

static void on_srv_conn(uv_stream_t *l, int status)
{
	struct server *srv = l->data;

	uv_pipe_init(&loop, &srv->conn, 0);
	srv->conn.data = srv;
	uv_accept(l, (uv_stream_t *)&srv->conn);
	srv->accepted = 1;
	uv_read_start((uv_stream_t *)&srv->conn, on_srv_alloc, on_srv_read);
}

static void server_start(struct server *srv, const char *reply)
{
	memset(srv, 0, sizeof(*srv));
	srv->reply = reply;
	uv_pipe_init(&loop, &srv->listener, 0);
	srv->listener.data = srv;
	ck_assert_int_eq(uv_pipe_bind(&srv->listener, path), 0);
	ck_assert_int_eq(uv_listen((uv_stream_t *)&srv->listener, 4, on_srv_conn), 0);
}

static void server_stop(struct server *srv)
{
	uv_close((uv_handle_t *)&srv->listener, NULL);
	if (srv->accepted)
		uv_close((uv_handle_t *)&srv->conn, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	unlink(path);
}

static void on_result(void *data, int fd, int status)
{
	struct result *r = data;

	r->called++;
	r->fd = fd;
	r->status = status;
}

static struct result run_connect(const char *spec, unsigned timeout_ms)
{
	struct vsock_target t;
	struct vsock_connect *c;
	struct result r = { 0, -1, 0 };
	char err[256];

	ck_assert_int_eq(vsock_target_parse(spec, &t, err, sizeof(err)), 0);
	ck_assert_int_eq(vsock_connect_start(&loop, &t, timeout_ms, on_result, &r, &c), 0);
	ck_assert_int_eq(r.called, 0); /* never from inside start */
	while (r.called == 0)
		uv_run(&loop, UV_RUN_ONCE);
	uv_run(&loop, UV_RUN_NOWAIT);
	ck_assert_int_eq(r.called, 1);
	return r;
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test_vsock.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/s.sock", dir);
	uv_loop_init(&loop);
}

static void teardown(void)
{
	uv_run(&loop, UV_RUN_DEFAULT);
	ck_assert_int_eq(uv_loop_close(&loop), 0); /* nothing left open */
	rmdir(dir);
}

START_TEST(unix_connects)
{
	struct server srv;
	char spec[160];

	server_start(&srv, NULL);
	snprintf(spec, sizeof(spec), "unix:%s", path);
	struct result r = run_connect(spec, 1000);
	ck_assert_int_eq(r.status, 0);
	ck_assert_int_ge(r.fd, 0);
	close(r.fd);
	server_stop(&srv);
}
END_TEST

START_TEST(missing_socket_fails)
{
	char spec[160];

	snprintf(spec, sizeof(spec), "unix:%s", path);
	struct result r = run_connect(spec, 1000);
	ck_assert_int_eq(r.status, -ENOENT);
	ck_assert_int_eq(r.fd, -1);
}
END_TEST

static const struct {
	const char *reply;
	int status;
} hybrid_cases[] = {
	{ "OK 1073741824\n", 0 },
	{ "OK 5\nextra", 0 },                     /* stream bytes after the line stay unread */
	{ "NO\n", -ECONNREFUSED },
	{ "OK x\n", -ECONNREFUSED },
	{ "OK 123456789012345678901234567890123\n", -EPROTO }, /* over-long line */
	{ "OK", -ECONNRESET },                    /* closed before the newline */
	/* digits without end: refused at 31 bytes, before the peer hangs up */
	{ "OK 1234567890123456789012345678901234567890123456789012345678901234567890", -EPROTO },
	{ NULL, -ETIMEDOUT },                     /* never answers */
};

START_TEST(hybrid_handshake)
{
	struct server srv;
	char spec[160];
	const char *reply = hybrid_cases[_i].reply;
	int close_early = reply && strchr(reply, '\n') == NULL;

	server_start(&srv, reply);
	snprintf(spec, sizeof(spec), "hybrid:%s:5555", path);
	if (close_early) {
		/* reply without newline, then hang up */
		srv.reply = NULL;
		struct vsock_target t;
		struct vsock_connect *c;
		struct result r = { 0, -1, 0 };
		char err[256];
		vsock_target_parse(spec, &t, err, sizeof(err));
		vsock_connect_start(&loop, &t, 2000, on_result, &r, &c);
		while (!srv.accepted || srv.got_len == 0)
			uv_run(&loop, UV_RUN_ONCE);
		uv_write_t *w = malloc(sizeof(*w));
		uv_buf_t b = uv_buf_init((char *)reply, (unsigned)strlen(reply));
		uv_write(w, (uv_stream_t *)&srv.conn, &b, 1, on_srv_written);
		uv_close((uv_handle_t *)&srv.conn, NULL);
		srv.accepted = 0;
		while (r.called == 0)
			uv_run(&loop, UV_RUN_ONCE);
		ck_assert_int_eq(r.status, hybrid_cases[_i].status);
		server_stop(&srv);
		return;
	}
	struct result r = run_connect(spec, 300);
	ck_assert_str_eq(srv.got, "CONNECT 5555\n");
	ck_assert_int_eq(r.status, hybrid_cases[_i].status);
	if (r.status == 0) {
		char rest[16] = { 0 };
		ssize_t n = read(r.fd, rest, sizeof(rest) - 1);
		if (strstr(reply, "extra"))
			ck_assert_str_eq(rest, "extra");
		else
			ck_assert_int_eq(n, -1); /* nothing more, non-blocking */
		close(r.fd);
	} else {
		ck_assert_int_eq(r.fd, -1);
	}
	server_stop(&srv);
}
END_TEST

START_TEST(cancel_closes_quietly)
{
	struct server srv;
	struct vsock_target t;
	struct vsock_connect *c;
	struct result r = { 0, -1, 0 };
	char spec[160], err[256];

	server_start(&srv, NULL);
	snprintf(spec, sizeof(spec), "hybrid:%s:1", path);
	ck_assert_int_eq(vsock_target_parse(spec, &t, err, sizeof(err)), 0);
	ck_assert_int_eq(vsock_connect_start(&loop, &t, 5000, on_result, &r, &c), 0);
	while (srv.got_len == 0)
		uv_run(&loop, UV_RUN_ONCE);
	vsock_connect_cancel(c);
	server_stop(&srv);
	ck_assert_int_eq(r.called, 0);
}
END_TEST

/* The hybrid server takes the connection and drops it with the CONNECT
 * line unread: the kernel resets the connector's socket (a poll error, which
 * libuv reports as EBADF); the result must name the reset itself. */
START_TEST(hybrid_reset_is_named)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct vsock_target t;
	struct vsock_connect *c;
	struct result r = { 0, -1, 0 };
	char spec[160], err[256], peek[16];
	int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0), cfd = -1;

	ck_assert_uint_lt(strlen(path), sizeof(sun.sun_path));
	memcpy(sun.sun_path, path, strlen(path) + 1);
	ck_assert_int_eq(bind(lfd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(listen(lfd, 1), 0);
	snprintf(spec, sizeof(spec), "hybrid:%s:5555", path);
	ck_assert_int_eq(vsock_target_parse(spec, &t, err, sizeof(err)), 0);
	ck_assert_int_eq(vsock_connect_start(&loop, &t, 5000, on_result, &r, &c), 0);
	for (int i = 0; i < 1000 && (cfd < 0 || recv(cfd, peek, sizeof(peek), MSG_PEEK | MSG_DONTWAIT) <= 0); i++) {
		uv_run(&loop, UV_RUN_NOWAIT);
		if (cfd < 0)
			cfd = accept(lfd, NULL, NULL);
		usleep(1000);
	}
	ck_assert_int_ge(cfd, 0);
	close(cfd);                      /* "CONNECT 5555\n" still unread */
	while (r.called == 0)
		uv_run(&loop, UV_RUN_ONCE);
	ck_assert_int_eq(r.status, -ECONNRESET);
	close(lfd);
	unlink(path);
}
END_TEST

/* ---- tcp: specs ---- */

static const struct {
	const char *spec;
	const char *canonical;
} tcp_good[] = {
	{ "tcp:127.0.0.1:5555", "tcp:127.0.0.1:5555" },
	{ "tcp:10.0.2.15:1", "tcp:10.0.2.15:1" },
	{ "tcp:192.168.1.2:65535", "tcp:192.168.1.2:65535" },
	{ "tcp:127.0.0.1:05555", "tcp:127.0.0.1:5555" },
	{ "tcp:localhost:5555", "tcp:127.0.0.1:5555" },
	{ "tcp:LocalHost:5037", "tcp:127.0.0.1:5037" },
	{ "tcp:[::1]:5555", "tcp:[::1]:5555" },
	{ "tcp:[0:0:0:0:0:0:0:1]:5555", "tcp:[::1]:5555" },
	{ "tcp:[FE80::A:0:0:1]:7", "tcp:[fe80::a:0:0:1]:7" },
	{ "tcp:[::ffff:10.1.2.3]:9", "tcp:[::ffff:10.1.2.3]:9" },
	{ "tcp:[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535",
	  "tcp:[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535" },
};

START_TEST(tcp_spec_parses)
{
	struct vsock_target t, back;
	char buf[VSOCK_SPEC_MAX], err[256];

	ck_assert_int_eq(vsock_target_parse(tcp_good[_i].spec, &t, err, sizeof(err)), 0);
	ck_assert_int_eq(t.kind, VSOCK_TCP);
	vsock_target_format(&t, buf, sizeof(buf));
	ck_assert_str_eq(buf, tcp_good[_i].canonical);
	/* the canonical form parses to the same target */
	ck_assert_int_eq(vsock_target_parse(buf, &back, err, sizeof(err)), 0);
	ck_assert(vsock_target_equal(&t, &back));
	ck_assert(vsock_transport_for(t.kind) == &vsock_transport_tcp);
}
END_TEST

static const struct {
	const char *spec;
	const char *why;
} tcp_bad[] = {
	{ "tcp:", "expected tcp:HOST:PORT" },
	{ "tcp:127.0.0.1", "expected tcp:HOST:PORT" },          /* no port */
	{ "tcp:127.0.0.1:", "PORT must be a number from 1 to 65535" },
	{ "tcp:127.0.0.1:0", "PORT must be a number from 1 to 65535" },
	{ "tcp:127.0.0.1:65536", "PORT must be a number from 1 to 65535" },
	{ "tcp:127.0.0.1:4294967301", "PORT must be a number from 1 to 65535" },
	{ "tcp:127.0.0.1:adb", "PORT must be a number from 1 to 65535" },
	{ "tcp:127.0.0.1:55x", "PORT must be a number from 1 to 65535" },
	{ "tcp:127.0.0.1:-1", "PORT must be a number from 1 to 65535" },
	{ "tcp:127.0.0.1:+5", "PORT must be a number from 1 to 65535" },
	{ "tcp:127.0.0.1: 5", "PORT must be a number from 1 to 65535" },
	{ "tcp::5555", "HOST is empty" },
	{ "tcp:[]:5555", "HOST is empty" },
	{ "tcp:[::1:5555", "'[' without ']'" },
	{ "tcp:[::1]5555", "expected tcp:HOST:PORT" },
	{ "tcp:[::1]", "expected tcp:HOST:PORT" },
	{ "tcp:[::1]:", "PORT must be a number from 1 to 65535" },
	{ "tcp:::1:5555", "an IPv6 address goes in brackets" },
	{ "tcp:fe80::1:5555", "an IPv6 address goes in brackets" },
	{ "tcp:[127.0.0.1]:5555", "not an IPv6 address" },
	{ "tcp:[fe80::1%eth0]:5555", "zone ids are not supported" },
	{ "tcp:[localhost]:5555", "not an IPv6 address" },
	{ "tcp:[::g]:5555", "not an IPv6 address" },
	{ "tcp:adb.example.com:5555", "host names are not resolved" },
	{ "tcp:localhost.:5555", "host names are not resolved" },
	{ "tcp:1.2.3:5555", "not a numeric IPv4 address" },
	{ "tcp:256.1.1.1:5555", "not a numeric IPv4 address" },
	{ "tcp:01.2.3.4:5555", "not a numeric IPv4 address" },
	{ "tcp: 127.0.0.1:5555", "not a numeric IPv4 address" },
	{ "tcp:0x7f.0.0.1:5555", "not a numeric IPv4 address" },
	{ "TCP:127.0.0.1:5555", "or tcp:HOST:PORT" },             /* the kind is lower case */
	{ "tcp4:127.0.0.1:5555", "or tcp:HOST:PORT" },
};

START_TEST(tcp_spec_rejected)
{
	struct vsock_target t;
	char err[256] = "";

	ck_assert_int_eq(vsock_target_parse(tcp_bad[_i].spec, &t, err, sizeof(err)), -EINVAL);
	ck_assert_msg(strstr(err, tcp_bad[_i].why) != NULL, "'%s': got '%s', want '%s'",
		      tcp_bad[_i].spec, err, tcp_bad[_i].why);
	ck_assert_msg(strncmp(err, "bad target '", 12) == 0, "'%s': got '%s'", tcp_bad[_i].spec, err);
}
END_TEST

START_TEST(tcp_spec_overlong)
{
	struct vsock_target t;
	char spec[512], err[256] = "";

	/* a host name longer than any address: rejected, nothing overruns */
	memcpy(spec, "tcp:", 4);
	memset(spec + 4, 'a', 300);
	memcpy(spec + 304, ":5555", 6);
	ck_assert_int_eq(vsock_target_parse(spec, &t, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "HOST is too long"));
	ck_assert_ptr_nonnull(strstr(err, "aaa...': "));  /* the spec cut, the reason kept */
	/* in brackets: 46 bytes are one more than the longest IPv6 text */
	snprintf(spec, sizeof(spec), "tcp:[0000:0000:0000:0000:0000:ffff:255.255.255.2555]:1");
	ck_assert_int_eq(vsock_target_parse(spec, &t, err, sizeof(err)), -EINVAL);
	ck_assert_ptr_nonnull(strstr(err, "HOST is too long"));
	/* the longest, 45 bytes, fits */
	snprintf(spec, sizeof(spec), "tcp:[0000:0000:0000:0000:0000:ffff:255.255.255.255]:1");
	ck_assert_int_eq(vsock_target_parse(spec, &t, err, sizeof(err)), 0);
	vsock_target_format(&t, spec, sizeof(spec));
	ck_assert_str_eq(spec, "tcp:[::ffff:255.255.255.255]:1");
	/* a small error buffer truncates, never overruns */
	char tiny[8];
	memset(spec, 'x', sizeof(spec) - 1);
	spec[sizeof(spec) - 1] = '\0';
	memcpy(spec, "tcp:", 4);
	ck_assert_int_eq(vsock_target_parse(spec, &t, tiny, sizeof(tiny)), -EINVAL);
	ck_assert_uint_eq(strlen(tiny), sizeof(tiny) - 1);
}
END_TEST

START_TEST(tcp_spec_equality)
{
	struct vsock_target a, b;
	char err[256];
	static const char *differ[] = {
		"tcp:127.0.0.1:5556", "tcp:127.0.0.2:5555", "tcp:[::1]:5555",
		"tcp:[::ffff:127.0.0.1]:5555", "vsock:3:5555", "unix:/127.0.0.1",
	};

	ck_assert_int_eq(vsock_target_parse("tcp:127.0.0.1:5555", &a, err, sizeof(err)), 0);
	ck_assert_int_eq(vsock_target_parse("tcp:localhost:5555", &b, err, sizeof(err)), 0);
	ck_assert(vsock_target_equal(&a, &b));   /* a reload from one to the other keeps the route */
	for (size_t i = 0; i < sizeof(differ) / sizeof(differ[0]); i++) {
		ck_assert_int_eq(vsock_target_parse(differ[i], &b, err, sizeof(err)), 0);
		ck_assert_msg(!vsock_target_equal(&a, &b), "%s equals tcp:127.0.0.1:5555", differ[i]);
	}
	ck_assert_int_eq(vsock_target_parse("tcp:[::1]:5555", &a, err, sizeof(err)), 0);
	ck_assert_int_eq(vsock_target_parse("tcp:[0::1]:5555", &b, err, sizeof(err)), 0);
	ck_assert(vsock_target_equal(&a, &b));
	ck_assert_int_eq(vsock_target_parse("tcp:[::2]:5555", &b, err, sizeof(err)), 0);
	ck_assert(!vsock_target_equal(&a, &b));
}
END_TEST

/* ---- tcp: connects on loopback ---- */

/* A listening TCP socket on ADDR (AF_INET or AF_INET6 loopback), port
 * chosen by the kernel; backlog as given. Returns the fd, or -errno. */
static int tcp_listener(int af, int backlog, char *spec, size_t len)
{
	struct sockaddr_storage ss = { .ss_family = (sa_family_t)af };
	socklen_t sl = af == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
	int fd = socket(af, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1, port;

	if (fd < 0)
		return -errno;
	if (af == AF_INET)
		((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else
		((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
	if (af == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) != 0 ||
	    (backlog >= 0 && listen(fd, backlog) != 0) ||
	    getsockname(fd, (struct sockaddr *)&ss, &sl) != 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	port = ntohs(af == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
				   : ((struct sockaddr_in6 *)&ss)->sin6_port);
	snprintf(spec, len, af == AF_INET ? "tcp:127.0.0.1:%d" : "tcp:[::1]:%d", port);
	return fd;
}

static int sockopt(int fd, int level, int name)
{
	int v = -1;
	socklen_t l = sizeof(v);

	ck_assert_int_eq(getsockopt(fd, level, name, &v, &l), 0);
	return v;
}

/* Connect through the loop to a listener of family af; the fd handed over
 * is connected to it, non-blocking, close-on-exec and tuned for adb. */
static void tcp_connects(int af)
{
	char spec[64], buf[8] = "";
	int lfd = tcp_listener(af, 4, spec, sizeof(spec));

	if (lfd == -EADDRNOTAVAIL || lfd == -EAFNOSUPPORT) {
		fprintf(stderr, "test_vsock: no %s loopback here (%s): skipped\n",
			af == AF_INET ? "IPv4" : "IPv6", strerror(-lfd));
		return;
	}
	ck_assert_int_ge(lfd, 0);
	struct result r = run_connect(spec, 2000);
	ck_assert_int_eq(r.status, 0);
	ck_assert_int_ge(r.fd, 0);
	ck_assert(fcntl(r.fd, F_GETFL) & O_NONBLOCK);
	ck_assert(fcntl(r.fd, F_GETFD) & FD_CLOEXEC);
	ck_assert_int_eq(sockopt(r.fd, SOL_SOCKET, SO_TYPE), SOCK_STREAM);
	ck_assert_int_eq(sockopt(r.fd, SOL_SOCKET, SO_DOMAIN), af);
	ck_assert_int_ne(sockopt(r.fd, IPPROTO_TCP, TCP_NODELAY), 0);
	ck_assert_int_ne(sockopt(r.fd, SOL_SOCKET, SO_KEEPALIVE), 0);
	ck_assert_int_eq(sockopt(r.fd, IPPROTO_TCP, TCP_KEEPIDLE), 10);
	ck_assert_int_eq(sockopt(r.fd, IPPROTO_TCP, TCP_KEEPINTVL), 5);
	ck_assert_int_eq(sockopt(r.fd, IPPROTO_TCP, TCP_KEEPCNT), 3);
	/* the stream works both ways, and nothing was sent before it */
	int afd = accept(lfd, NULL, NULL);
	ck_assert_int_ge(afd, 0);
	ck_assert_int_eq(recv(afd, buf, sizeof(buf), MSG_DONTWAIT), -1);
	ck_assert_int_eq(write(r.fd, "CNXN", 4), 4);
	ck_assert_int_eq(read(afd, buf, sizeof(buf)), 4);
	ck_assert_int_eq(memcmp(buf, "CNXN", 4), 0);
	ck_assert_int_eq(write(afd, "OKAY", 4), 4);
	for (int i = 0; i < 1000 && read(r.fd, buf, 4) != 4; i++)
		usleep(1000);
	ck_assert_int_eq(memcmp(buf, "OKAY", 4), 0);
	close(afd);
	close(r.fd);
	close(lfd);
}

START_TEST(tcp_connects_ipv4)
{
	tcp_connects(AF_INET);
}
END_TEST

START_TEST(tcp_connects_ipv6)
{
	tcp_connects(AF_INET6);
}
END_TEST

/* A port that is bound but not listening answers a SYN with a reset: the
 * result is -ECONNREFUSED, which route status and logs then name. The
 * socket holds the port so nothing else can take it meanwhile. */
START_TEST(tcp_refused)
{
	char spec[64];
	int bound = tcp_listener(AF_INET, -1, spec, sizeof(spec));

	ck_assert_int_ge(bound, 0);
	struct result r = run_connect(spec, 2000);
	ck_assert_int_eq(r.status, -ECONNREFUSED);
	ck_assert_int_eq(r.fd, -1);
	close(bound);
}
END_TEST

/* A listener with backlog 0 and one connection already queued drops the
 * next SYNs: a connect to it stays in progress. */
static int tcp_full_listener(char *spec, size_t len, int *filler)
{
	struct sockaddr_in sin;
	socklen_t sl = sizeof(sin);
	int lfd = tcp_listener(AF_INET, 0, spec, len);

	ck_assert_int_ge(lfd, 0);
	ck_assert_int_eq(getsockname(lfd, (struct sockaddr *)&sin, &sl), 0);
	*filler = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(*filler, 0);
	ck_assert_int_eq(connect(*filler, (struct sockaddr *)&sin, sl), 0); /* queued, not accepted */
	return lfd;
}

START_TEST(tcp_times_out)
{
	char spec[64];
	int filler, lfd = tcp_full_listener(spec, sizeof(spec), &filler);
	uint64_t t0 = uv_hrtime();

	struct result r = run_connect(spec, 200);
	uint64_t ms = (uv_hrtime() - t0) / 1000000;
	ck_assert_int_eq(r.status, -ETIMEDOUT);
	ck_assert_int_eq(r.fd, -1);
	ck_assert_uint_ge(ms, 150);
	ck_assert_uint_lt(ms, 2000);
	close(filler);
	close(lfd);
}
END_TEST

/* Cancelled while the connect is in progress, and once more after it
 * completed in the kernel but before the loop reported it: no callback,
 * the socket closed (the listener sees the end of the stream), nothing
 * left on the loop (teardown closes it). */
START_TEST(tcp_cancel)
{
	struct vsock_target t;
	struct vsock_connect *c;
	struct result r = { 0, -1, 0 };
	char spec[64], err[256], b;
	int filler, lfd = tcp_full_listener(spec, sizeof(spec), &filler);

	ck_assert_int_eq(vsock_target_parse(spec, &t, err, sizeof(err)), 0);
	ck_assert_int_eq(vsock_connect_start(&loop, &t, 5000, on_result, &r, &c), 0);
	for (int i = 0; i < 20; i++)
		uv_run(&loop, UV_RUN_NOWAIT);
	vsock_connect_cancel(c);
	uv_run(&loop, UV_RUN_DEFAULT);
	ck_assert_int_eq(r.called, 0);
	close(filler);
	close(lfd);

	lfd = tcp_listener(AF_INET, 4, spec, sizeof(spec));
	ck_assert_int_ge(lfd, 0);
	ck_assert_int_eq(vsock_target_parse(spec, &t, err, sizeof(err)), 0);
	ck_assert_int_eq(vsock_connect_start(&loop, &t, 5000, on_result, &r, &c), 0);
	int afd = accept(lfd, NULL, NULL);    /* the kernel completed the connect */
	ck_assert_int_ge(afd, 0);
	vsock_connect_cancel(c);
	uv_run(&loop, UV_RUN_DEFAULT);
	ck_assert_int_eq(r.called, 0);
	ck_assert_int_eq(read(afd, &b, 1), 0); /* closed by the cancel */
	close(afd);
	close(lfd);
}
END_TEST

/* A socket bound to a loopback port and connected to that same port meets
 * itself (simultaneous open); the transport refuses such a connection. */
START_TEST(tcp_self_connect_refused)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sin);
	char spec[64];
	int self = socket(AF_INET, SOCK_STREAM, 0);
	int lfd = tcp_listener(AF_INET, 4, spec, sizeof(spec));

	ck_assert_ptr_nonnull(vsock_transport_tcp.established);
	ck_assert_int_ge(self, 0);
	ck_assert_int_eq(bind(self, (struct sockaddr *)&sin, sl), 0);
	ck_assert_int_eq(getsockname(self, (struct sockaddr *)&sin, &sl), 0);
	ck_assert_int_eq(connect(self, (struct sockaddr *)&sin, sl), 0);
	ck_assert_int_eq(vsock_transport_tcp.established(self), -ECONNREFUSED);
	close(self);

	/* an ordinary connection passes the same check */
	struct result r = run_connect(spec, 2000);
	ck_assert_int_eq(r.status, 0);
	ck_assert_int_eq(vsock_transport_tcp.established(r.fd), 0);
	close(r.fd);
	close(lfd);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vsock");
	TCase *tc = tcase_create("connect");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, unix_connects);
	tcase_add_test(tc, missing_socket_fails);
	tcase_add_loop_test(tc, hybrid_handshake, 0,
			    (int)(sizeof(hybrid_cases) / sizeof(hybrid_cases[0])));
	tcase_add_test(tc, cancel_closes_quietly);
	tcase_add_test(tc, hybrid_reset_is_named);
	suite_add_tcase(s, tc);

	TCase *specs = tcase_create("tcp specs");
	tcase_add_loop_test(specs, tcp_spec_parses, 0,
			    (int)(sizeof(tcp_good) / sizeof(tcp_good[0])));
	tcase_add_loop_test(specs, tcp_spec_rejected, 0,
			    (int)(sizeof(tcp_bad) / sizeof(tcp_bad[0])));
	tcase_add_test(specs, tcp_spec_overlong);
	tcase_add_test(specs, tcp_spec_equality);
	suite_add_tcase(s, specs);

	TCase *tcp = tcase_create("tcp connect");
	tcase_add_checked_fixture(tcp, setup, teardown);
	tcase_add_test(tcp, tcp_connects_ipv4);
	tcase_add_test(tcp, tcp_connects_ipv6);
	tcase_add_test(tcp, tcp_refused);
	tcase_add_test(tcp, tcp_times_out);
	tcase_add_test(tcp, tcp_cancel);
	tcase_add_test(tcp, tcp_self_connect_refused);
	suite_add_tcase(s, tcp);
	return unit_run(s);
}
