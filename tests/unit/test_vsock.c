/*
 * test_vsock.c - target specs and the asynchronous connector, driven
 * against Unix-socket servers on a libuv loop: plain unix, the hybrid
 * "CONNECT <port>" handshake with good, refused, garbage, over-long and
 * silent replies, a missing socket, a reset, and cancellation. (Kernel vsock is
 * exercised only inside the VM lab.)
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "vsock.h"
#include "unit.h"

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
	return unit_run(s);
}
