/* SPDX-License-Identifier: Apache-2.0 */
/*
 * session_harness.c - the loop, the fake route and the fake PC around one
 * session (session_harness.h). Owns every handle it makes: a connect's
 * timer (freed when closed), the PC's close timer, the held PC batches
 * (completed on release or close) and our end of the guest link.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "relay/sys/sys.h"
#include "tests/unit/session_harness.h"

struct harness_route route;
struct harness_pc pc;
int guest_fd = -1;

static uv_loop_t loop;
static const struct harness_config *cfg;
static char target[80];

void harness_failed(const char *what, const char *file, int line)
{
	fprintf(stderr, "check failed: %s (%s:%d)\n", what, file, line);
	abort();
}

/* ---- the route: a session_owner ---- */

static void route_guest_state(void *owner, enum guest_state st, const char *reason)
{
	HARNESS_CHECK(owner == &route);
	HARNESS_CHECK(strlen(reason) < 4096);
	route.guest = st;
	route.guest_reports++;
}

static void route_error(void *owner, const char *fmt, va_list ap)
{
	HARNESS_CHECK(owner == &route);
	vsnprintf(route.last_error, sizeof(route.last_error), fmt, ap);
	route.errors++;
}

static int route_attach(void *owner, struct session *s)
{
	HARNESS_CHECK(owner == &route);
	route.sessions = s;
	route.nsessions++;
	route.st.sessions++;
	return 0;
}

static void route_detach(void *owner, struct session *s)
{
	HARNESS_CHECK(s == route.sessions);
	route.nsessions--;
	route.sessions = NULL;
	route.session_gone = 1;
}

/* ---- the guest's links: one socketpair each ---- */

struct harness_connect {
	uv_timer_t timer;
	vsock_link_cb cb;
	void *data;
};

static void connect_closed(uv_handle_t *h) { free(h->data); }

static void on_connect_timer(uv_timer_t *t)
{
	struct harness_connect *c = t->data;
	int sv[2];

	if (route.hold_connects) {
		route.held = c;
		return;
	}
	HARNESS_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
	cfg->new_link();
	if (guest_fd >= 0)
		close(guest_fd);   /* the relay dropped the old link first */
	guest_fd = sv[0];
	route.links++;
	uv_close((uv_handle_t *)&c->timer, connect_closed);
	c->cb(c->data, sv[1], NULL, 0);
}

static int route_connect(void *owner, vsock_link_cb cb, void *data, struct vsock_connect **out)
{
	struct harness_connect *c = calloc(1, sizeof(*c));

	HARNESS_CHECK(c != NULL);
	route.connects++;
	c->cb = cb;
	c->data = data;
	uv_timer_init(&loop, &c->timer);
	c->timer.data = c;
	uv_timer_start(&c->timer, on_connect_timer, 0, 0);
	*out = (struct vsock_connect *)c;
	return 0;
}

static void route_connect_cancel(void *owner, struct vsock_connect *vc)
{
	struct harness_connect *c = (struct harness_connect *)vc;

	if (route.held == c)
		route.held = NULL;
	uv_close((uv_handle_t *)&c->timer, connect_closed);
}

void harness_release_connect(void)
{
	route.hold_connects = 0;
	if (route.held != NULL) {
		struct harness_connect *c = route.held;

		route.held = NULL;
		on_connect_timer(&c->timer);
	}
}

/* A first PC frame that is not CNXN: the route's front may make the PC
 * drop its transport (USB) or not (TCP), as the program says. */
static int route_host_stale(void *owner, struct session *s)
{
	(void)owner;
	(void)s;
	route.stale_asked++;
	return route.stale_drop;
}

static const struct session_ops route_ops = {
	.connect = route_connect,
	.connect_cancel = route_connect_cancel,
	.guest_state = route_guest_state,
	.error = route_error,
	.attach = route_attach,
	.detach = route_detach,
	.host_stale = route_host_stale,
};

/* ---- the PC ---- */

static void pc_read_start(struct front_conn *p) { pc.reading = 1; }
static void pc_read_stop(struct front_conn *p) { pc.reading = 0; }

static int pc_write(void *ctx, struct output_batch *b)
{
	for (unsigned i = 0; i < b->niov; i++)
		cfg->to_pc((const uint8_t *)b->iov[i].base, b->iov[i].len);
	if (pc.holding || pc.closed) {
		HARNESS_CHECK(pc.nheld < sizeof(pc.held) / sizeof(pc.held[0]));
		pc.held[pc.nheld++] = b;
		pc.held_bytes += b->bytes;
		return 0;
	}
	output_batch_done(b, 0);
	return 0;
}

void harness_pc_release(int status)
{
	unsigned n = pc.nheld;

	pc.nheld = 0;
	pc.held_bytes = 0;
	for (unsigned i = 0; i < n; i++)
		output_batch_done(pc.held[i], status);
}

static void on_closer(uv_timer_t *t)
{
	uv_close((uv_handle_t *)t, NULL);
	harness_pc_release(UV_ECANCELED);
	pc.base.on_closed(&pc.base);
}

static void pc_close(struct front_conn *p)
{
	pc.closed = 1;
	pc.reading = 0;
	uv_timer_init(&loop, &pc.closer);
	uv_timer_start(&pc.closer, on_closer, 0, 0);
}

static const struct front_conn_ops pc_ops = {
	.read_start = pc_read_start,
	.read_stop = pc_read_stop,
	.write = pc_write,
	.close = pc_close,
};

size_t harness_pc_send(const uint8_t *p, size_t len)
{
	size_t sent = 0;

	while (sent < len && pc.reading && !pc.closed) {
		uv_buf_t buf;
		size_t n;

		pc.base.on_alloc(&pc.base, &buf);
		if (buf.base == NULL) {
			pc.base.on_read(&pc.base, UV_ENOBUFS, &buf);
			break;
		}
		n = len - sent < buf.len ? len - sent : buf.len;
		memcpy(buf.base, p + sent, n);
		pc.base.on_read(&pc.base, (ssize_t)n, &buf);
		sent += n;
	}
	return sent;
}

/* ---- the guest's end ---- */

ssize_t harness_guest_write(const uint8_t *p, size_t len)
{
	return guest_fd >= 0 ? write(guest_fd, p, len) : -1;
}

void harness_guest_drain(void)
{
	uint8_t buf[65536];
	ssize_t n;

	while (guest_fd >= 0 && (n = read(guest_fd, buf, sizeof(buf))) > 0)
		cfg->to_guest(buf, (size_t)n);
}

void harness_guest_hang_up(void)
{
	if (guest_fd >= 0)
		close(guest_fd);
	guest_fd = -1;
}

/* ---- the session's life ---- */

int harness_start(const struct harness_config *c)
{
	cfg = c;
	signal(SIGPIPE, SIG_IGN);   /* as the daemon does: a gone peer is EPIPE */
	log_set_level(LOG_LVL_ERROR);
	HARNESS_CHECK(uv_loop_init(&loop) == 0);
	snprintf(target, sizeof(target), "unix:%s", c->name);
	memset(&route, 0, sizeof(route));
	route.owner = (struct session_owner){
		.ops = &route_ops,
		.data = &route,
		.loop = &loop,
		.name = c->name,
		.target = target,
		.buffer = c->buffer,
		.reconnect_min_ms = 1,
		.reconnect_max_ms = 1,
		.max_streams = 64,
		.cnxn_deadline = 1,       /* a TCP front */
		.pipeline = c->pipeline,
		.st = &route.st,
	};
	memset(&pc, 0, sizeof(pc));
	pc.base.ops = &pc_ops;
	snprintf(pc.base.peer, sizeof(pc.base.peer), "%s-pc", c->name);
	guest_fd = -1;
	return session_start(&route.owner, &pc.base);
}

void harness_turn(unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uv_run(&loop, UV_RUN_NOWAIT);
		harness_guest_drain();
	}
}

void harness_close(const char *reason)
{
	if (!route.session_gone && route.sessions != NULL)
		session_close(route.sessions, reason);
}

int harness_finish(void)
{
	harness_guest_hang_up();
	uv_run(&loop, UV_RUN_DEFAULT);
	return uv_loop_close(&loop);
}
