/*
 * test_session_restart.c - a guest restart under one session, driven without
 * the network: the PC is a fake hostport in this file, each guest link a
 * socketpair made by a stand-in for vsock_connect_start() (as in
 * tests/fuzz/fuzz_session.c). Checks which of a new link's guest CNXNs reach
 * the PC: the same CNXN (version, clamped max payload, banner) is absorbed,
 * a changed one is passed on, and so is one after a host CNXN or after AUTH.
 */
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "adbproto.h"
#include "capture.h"
#include "log.h"
#include "route.h"
#include "session.h"
#include "tap.h"
#include "unit.h"

#define HOST_BANNER "host::features=shell_v2,cmd"
#define BANNER_A "device::ro.product.name=vm;ro.product.model=m;ro.product.device=vm;features="
#define BANNER_B "device::ro.product.name=other;ro.product.model=m;ro.product.device=other;features="
#define HOST_ID 7
#define GUEST_ID 11

static uv_loop_t loop;
static struct route route;
static int session_gone;

/* ---- stand-ins for the route, the observers and the vsock transport ---- */

void route_set_guest(struct route *r, enum guest_state st, const char *reason)
{
	r->guest = st;
}

void route_error(struct route *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->last_error, sizeof(r->last_error), fmt, ap);
	va_end(ap);
}

void route_session_gone(struct route *r, struct session *s)
{
	r->nsessions--;
	r->sessions = NULL;
	session_gone = 1;
}

int tap_wanted(const char *name) { return 0; }
void tap_line(const char *name, const char *fmt, ...) {}
int capture_wanted(const char *name) { return 0; }
void capture_header(const char *name, uint32_t id, int from_guest,
		    const uint8_t raw[ADB_HEADER_SIZE]) {}
void capture_payload(const char *name, uint32_t id, int from_guest, const void *p,
		     size_t len) {}
void capture_session_end(const char *name, uint32_t id) {}

struct vsock_connect {
	uv_timer_t timer;
	vsock_connect_cb cb;
	void *data;
};

/* ---- what each side received ---- */

struct seen {
	uint32_t cmd, arg0, arg1;
	uint8_t payload[ADB_HANDSHAKE_MAX];
	size_t len;
};

struct view {
	struct adb_reader rd;
	struct seen f[64];
	unsigned n;           /* frames whole */
	struct seen cur;
};

static void view_init(struct view *v)
{
	memset(v, 0, sizeof(*v));
	adb_reader_init(&v->rd, ADB_MAX_PAYLOAD);
}

static void view_feed(struct view *v, const uint8_t *p, size_t len)
{
	struct adb_frame_event fe;
	enum adb_reader_event ev;

	while ((ev = adb_reader_next(&v->rd, &p, &len, &fe)) != ADB_EV_NEED_MORE) {
		ck_assert_int_ne(ev, ADB_EV_ERROR);
		if (ev == ADB_EV_HEADER) {
			memset(&v->cur, 0, sizeof(v->cur));
			v->cur.cmd = fe.header.command;
			v->cur.arg0 = fe.header.arg0;
			v->cur.arg1 = fe.header.arg1;
		} else if (ev == ADB_EV_PAYLOAD) {
			size_t n = fe.len;

			if (v->cur.len + n > sizeof(v->cur.payload))
				n = sizeof(v->cur.payload) - v->cur.len;
			memcpy(v->cur.payload + v->cur.len, fe.data, n);
			v->cur.len += n;
		} else if (ev == ADB_EV_END) {
			ck_assert_uint_lt(v->n, 64);
			v->f[v->n++] = v->cur;
		}
	}
}

static unsigned count(const struct view *v, uint32_t cmd)
{
	unsigned n = 0;

	for (unsigned i = 0; i < v->n; i++)
		n += v->f[i].cmd == cmd;
	return n;
}

static const struct seen *last(const struct view *v, uint32_t cmd)
{
	for (unsigned i = v->n; i-- > 0;)
		if (v->f[i].cmd == cmd)
			return &v->f[i];
	return NULL;
}

/* ---- the guest's end: one socketpair per link ---- */

static int guest_fd = -1;
static unsigned links;
static struct view guest_view;       /* what the relay sent on the current link */

static void connect_closed(uv_handle_t *h) { free(h->data); }

static void on_connect_timer(uv_timer_t *t)
{
	struct vsock_connect *c = t->data;
	int sv[2];

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_eq(guest_fd, -1);
	guest_fd = sv[0];
	links++;
	view_init(&guest_view);
	uv_close((uv_handle_t *)&c->timer, connect_closed);
	c->cb(c->data, sv[1], 0);
}

int vsock_connect_start(uv_loop_t *l, const struct vsock_target *t, unsigned timeout_ms,
			vsock_connect_cb cb, void *data, struct vsock_connect **out)
{
	struct vsock_connect *c = calloc(1, sizeof(*c));

	ck_assert_ptr_nonnull(c);
	c->cb = cb;
	c->data = data;
	uv_timer_init(l, &c->timer);
	c->timer.data = c;
	uv_timer_start(&c->timer, on_connect_timer, 0, 0);
	*out = c;
	return 0;
}

void vsock_connect_cancel(struct vsock_connect *c)
{
	uv_close((uv_handle_t *)&c->timer, connect_closed);
}

void vsock_target_format(const struct vsock_target *t, char *buf, size_t len)
{
	snprintf(buf, len, "unix:test");
}

static void guest_drain(void)
{
	uint8_t buf[65536];
	ssize_t n;

	while (guest_fd >= 0 && (n = read(guest_fd, buf, sizeof(buf))) > 0)
		view_feed(&guest_view, buf, (size_t)n);
}

static void guest_hang_up(void)
{
	ck_assert_int_ge(guest_fd, 0);
	close(guest_fd);
	guest_fd = -1;
}

/* ---- the PC ---- */

struct fake_pc {
	struct hostport base;
	int reading, closed;
	struct view view;             /* what the relay sent to the PC */
	uv_timer_t closer;
};

static struct fake_pc pc;

static void pc_read_start(struct hostport *p) { pc.reading = 1; }
static void pc_read_stop(struct hostport *p) { pc.reading = 0; }

static int pc_write(void *ctx, struct output_batch *b)
{
	for (unsigned i = 0; i < b->niov; i++)
		view_feed(&pc.view, (const uint8_t *)b->iov[i].base, b->iov[i].len);
	output_batch_done(b, 0);
	return 0;
}

static void on_closer(uv_timer_t *t)
{
	uv_close((uv_handle_t *)t, NULL);
	pc.base.on_closed(&pc.base);
}

static void pc_close(struct hostport *p)
{
	pc.closed = 1;
	pc.reading = 0;
	uv_timer_init(&loop, &pc.closer);
	uv_timer_start(&pc.closer, on_closer, 0, 0);
}

static const struct hostport_ops pc_ops = {
	.read_start = pc_read_start,
	.read_stop = pc_read_stop,
	.write = pc_write,
	.close = pc_close,
};

/* ---- frames and turns ---- */

static size_t frame(uint8_t *out, uint32_t cmd, uint32_t arg0, uint32_t arg1, const char *payload)
{
	size_t len = payload ? strlen(payload) : 0;
	struct adb_header h;

	adb_header_init(&h, cmd, arg0, arg1, (uint32_t)len, len ? adb_checksum(0, payload, len) : 0);
	adb_header_encode(&h, out);
	if (len > 0)
		memcpy(out + ADB_HEADER_SIZE, payload, len);
	return ADB_HEADER_SIZE + len;
}

static void turn(void)
{
	for (int i = 0; i < 5; i++) {
		uv_run(&loop, UV_RUN_NOWAIT);
		guest_drain();
	}
}

/* Run the loop until cond holds (at most about a second). */
#define SPIN_UNTIL(cond) do { \
		for (int spin_ = 0; spin_ < 1000 && !(cond); spin_++) { \
			turn(); \
			usleep(1000); \
		} \
		ck_assert_msg((cond), "timed out waiting for %s", #cond); \
	} while (0)

static void pc_send(uint32_t cmd, uint32_t arg0, uint32_t arg1, const char *payload)
{
	uint8_t buf[ADB_HEADER_SIZE + ADB_HANDSHAKE_MAX];
	size_t len = frame(buf, cmd, arg0, arg1, payload);
	const uint8_t *p = buf;

	ck_assert(pc.reading);
	while (len > 0) {
		uv_buf_t b;
		size_t n;

		pc.base.on_alloc(&pc.base, &b);
		ck_assert_ptr_nonnull(b.base);
		n = len < b.len ? len : b.len;
		memcpy(b.base, p, n);
		pc.base.on_read(&pc.base, (ssize_t)n, &b);
		p += n;
		len -= n;
	}
	turn();
}

static void guest_send(uint32_t cmd, uint32_t arg0, uint32_t arg1, const char *payload)
{
	uint8_t buf[ADB_HEADER_SIZE + ADB_HANDSHAKE_MAX];
	size_t len = frame(buf, cmd, arg0, arg1, payload);

	ck_assert_int_ge(guest_fd, 0);
	ck_assert_int_eq(write(guest_fd, buf, len), (ssize_t)len);
	turn();
}

/* ---- scenarios ---- */

static void setup(void)
{
	signal(SIGPIPE, SIG_IGN);
	log_set_level(LOG_LVL_ERROR);
	ck_assert_int_eq(uv_loop_init(&loop), 0);
	memset(&route, 0, sizeof(route));
	route.loop = &loop;
	snprintf(route.cfg.name, sizeof(route.cfg.name), "test");
	route.cfg.front.kind = FRONT_TCP;
	route.cfg.buffer = 256 * 1024;
	route.cfg.reconnect_min_ms = 1;
	route.cfg.reconnect_max_ms = 1;
	route.cfg.connect_timeout_ms = 1000;
	route.cfg.max_clients = 4;
	route.cfg.max_streams = 64;
	memset(&pc, 0, sizeof(pc));
	pc.base.ops = &pc_ops;
	snprintf(pc.base.peer, sizeof(pc.base.peer), "test-pc");
	view_init(&pc.view);
	guest_fd = -1;
	links = 0;
	session_gone = 0;
	ck_assert_int_eq(session_start(&route, &pc.base), 0);
}

static void teardown(void)
{
	if (!session_gone && route.sessions != NULL)
		session_close(route.sessions, "end of test");
	SPIN_UNTIL(session_gone);
	if (guest_fd >= 0)
		guest_hang_up();
	uv_run(&loop, UV_RUN_DEFAULT);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
}

/* The PC connects; the first link answers with banner at max payload mp. */
static void first_link(const char *banner, uint32_t mp)
{
	pc_send(ADB_CMD_CNXN, ADB_VERSION, ADB_MAX_PAYLOAD, HOST_BANNER);
	SPIN_UNTIL(links == 1 && count(&guest_view, ADB_CMD_CNXN) == 1);
	guest_send(ADB_CMD_CNXN, ADB_VERSION, mp, banner);
	SPIN_UNTIL(count(&pc.view, ADB_CMD_CNXN) == 1);
	ck_assert_int_eq(route.guest, GUEST_UP);
}

/* A stream the PC opened, answered by the guest. */
static void open_stream(void)
{
	unsigned okays = count(&pc.view, ADB_CMD_OKAY);

	pc_send(ADB_CMD_OPEN, HOST_ID, 0, "shell:true");
	SPIN_UNTIL(count(&guest_view, ADB_CMD_OPEN) == 1);
	guest_send(ADB_CMD_OKAY, GUEST_ID, HOST_ID, NULL);
	SPIN_UNTIL(count(&pc.view, ADB_CMD_OKAY) == okays + 1);
}

/* The guest dies; the relay closes the stream towards the PC and makes a
 * new link, on which it replays the PC's CNXN. */
static void restart(void)
{
	unsigned n = links, clse = count(&pc.view, ADB_CMD_CLSE);

	guest_hang_up();
	SPIN_UNTIL(links == n + 1 && count(&guest_view, ADB_CMD_CNXN) == 1);
	ck_assert_uint_eq(count(&pc.view, ADB_CMD_CLSE), clse + 1);   /* the one open stream */
	ck_assert_uint_eq(last(&guest_view, ADB_CMD_CNXN)->len, strlen(HOST_BANNER));
}

/* Is the session online towards the guest? A PC OPEN reaches it. */
static int guest_gets_open(void)
{
	unsigned opens = count(&guest_view, ADB_CMD_OPEN);

	pc_send(ADB_CMD_OPEN, HOST_ID + 1, 0, "shell:echo");
	for (int i = 0; i < 200 && count(&guest_view, ADB_CMD_OPEN) == opens; i++) {
		turn();
		usleep(1000);
	}
	return count(&guest_view, ADB_CMD_OPEN) == opens + 1;
}

START_TEST(same_cnxn_absorbed)
{
	unsigned frames_to_pc;

	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	open_stream();
	restart();
	ck_assert_int_ne(route.guest, GUEST_UP);
	frames_to_pc = pc.view.n;
	guest_send(ADB_CMD_CNXN, ADB_VERSION, ADB_MAX_PAYLOAD, BANNER_A);
	SPIN_UNTIL(route.guest == GUEST_UP);
	turn();
	ck_assert_uint_eq(count(&pc.view, ADB_CMD_CNXN), 1);
	ck_assert_uint_eq(pc.view.n, frames_to_pc);   /* the PC sees nothing */
	ck_assert_uint_eq(route.st.reconnects, 1);
	ck_assert(guest_gets_open());
	/* and once more: a third link the same */
	guest_send(ADB_CMD_OKAY, GUEST_ID, HOST_ID + 1, NULL);
	restart();
	guest_send(ADB_CMD_CNXN, ADB_VERSION, ADB_MAX_PAYLOAD, BANNER_A);
	SPIN_UNTIL(route.guest == GUEST_UP);
	turn();
	ck_assert_uint_eq(count(&pc.view, ADB_CMD_CNXN), 1);
	ck_assert_uint_eq(route.st.reconnects, 2);
}
END_TEST

START_TEST(changed_banner_passed_on)
{
	const struct seen *c;

	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	open_stream();
	restart();
	guest_send(ADB_CMD_CNXN, ADB_VERSION, ADB_MAX_PAYLOAD, BANNER_B);
	SPIN_UNTIL(count(&pc.view, ADB_CMD_CNXN) == 2);
	c = last(&pc.view, ADB_CMD_CNXN);
	ck_assert_uint_eq(c->len, strlen(BANNER_B));
	ck_assert(memcmp(c->payload, BANNER_B, c->len) == 0);
	ck_assert_uint_eq(route.st.reconnects, 1);
	ck_assert(guest_gets_open());
	/* the PC now has B: B again on the next link is absorbed */
	guest_send(ADB_CMD_OKAY, GUEST_ID, HOST_ID + 1, NULL);
	restart();
	guest_send(ADB_CMD_CNXN, ADB_VERSION, ADB_MAX_PAYLOAD, BANNER_B);
	SPIN_UNTIL(route.guest == GUEST_UP);
	turn();
	ck_assert_uint_eq(count(&pc.view, ADB_CMD_CNXN), 2);
}
END_TEST

START_TEST(max_payload_compared_after_clamp)
{
	first_link(BANNER_A, 1);              /* presented to the PC as 4096 */
	ck_assert_uint_eq(last(&pc.view, ADB_CMD_CNXN)->arg1, ADB_MAX_PAYLOAD_V1);
	open_stream();
	restart();
	guest_send(ADB_CMD_CNXN, ADB_VERSION, ADB_MAX_PAYLOAD_V1, BANNER_A);
	SPIN_UNTIL(route.guest == GUEST_UP);
	turn();
	ck_assert_uint_eq(count(&pc.view, ADB_CMD_CNXN), 1);
	open_stream();
	restart();
	guest_send(ADB_CMD_CNXN, ADB_VERSION, 256 * 1024, BANNER_A);
	SPIN_UNTIL(count(&pc.view, ADB_CMD_CNXN) == 2);
	ck_assert_uint_eq(last(&pc.view, ADB_CMD_CNXN)->arg1, 256 * 1024);
}
END_TEST

START_TEST(version_compared)
{
	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	open_stream();
	restart();
	guest_send(ADB_CMD_CNXN, ADB_VERSION_MIN, ADB_MAX_PAYLOAD, BANNER_A);
	SPIN_UNTIL(count(&pc.view, ADB_CMD_CNXN) == 2);
	ck_assert_uint_eq(last(&pc.view, ADB_CMD_CNXN)->arg0, ADB_VERSION_MIN);
}
END_TEST

START_TEST(host_cnxn_is_owed_an_answer)
{
	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	open_stream();
	/* the link goes down and the PC starts over meanwhile */
	guest_hang_up();
	pc_send(ADB_CMD_CNXN, ADB_VERSION, ADB_MAX_PAYLOAD, HOST_BANNER);
	SPIN_UNTIL(links == 2 && count(&guest_view, ADB_CMD_CNXN) == 1);
	guest_send(ADB_CMD_CNXN, ADB_VERSION, ADB_MAX_PAYLOAD, BANNER_A);
	SPIN_UNTIL(count(&pc.view, ADB_CMD_CNXN) == 2);
}
END_TEST

START_TEST(cnxn_after_auth_passed_on)
{
	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	open_stream();
	restart();
	guest_send(ADB_CMD_AUTH, 1, 0, "01234567890123456789");
	SPIN_UNTIL(count(&pc.view, ADB_CMD_AUTH) == 1);
	guest_send(ADB_CMD_CNXN, ADB_VERSION, ADB_MAX_PAYLOAD, BANNER_A);
	SPIN_UNTIL(count(&pc.view, ADB_CMD_CNXN) == 2);
}
END_TEST

START_TEST(repeat_on_one_link_passed_on)
{
	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	guest_send(ADB_CMD_CNXN, ADB_VERSION, ADB_MAX_PAYLOAD, BANNER_A);
	SPIN_UNTIL(count(&pc.view, ADB_CMD_CNXN) == 2);
}
END_TEST

START_TEST(cnxn_cut_short_then_same)
{
	uint8_t buf[ADB_HEADER_SIZE + 128];
	size_t len;

	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	open_stream();
	restart();
	/* half a CNXN, then the link is lost: not online, nothing to the PC */
	len = frame(buf, ADB_CMD_CNXN, ADB_VERSION, ADB_MAX_PAYLOAD, BANNER_A);
	ck_assert_int_eq(write(guest_fd, buf, len - 10), (ssize_t)(len - 10));
	turn();
	ck_assert_int_ne(route.guest, GUEST_UP);
	guest_hang_up();
	SPIN_UNTIL(links == 3 && count(&guest_view, ADB_CMD_CNXN) == 1);
	ck_assert_uint_eq(route.st.cut_frames, 1);
	guest_send(ADB_CMD_CNXN, ADB_VERSION, ADB_MAX_PAYLOAD, BANNER_A);
	SPIN_UNTIL(route.guest == GUEST_UP);
	turn();
	ck_assert_uint_eq(count(&pc.view, ADB_CMD_CNXN), 1);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("session_restart");
	TCase *tc = tcase_create("restart");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, same_cnxn_absorbed);
	tcase_add_test(tc, changed_banner_passed_on);
	tcase_add_test(tc, max_payload_compared_after_clamp);
	tcase_add_test(tc, version_compared);
	tcase_add_test(tc, host_cnxn_is_owed_an_answer);
	tcase_add_test(tc, cnxn_after_auth_passed_on);
	tcase_add_test(tc, repeat_on_one_link_passed_on);
	tcase_add_test(tc, cnxn_cut_short_then_same);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(suite());
}
