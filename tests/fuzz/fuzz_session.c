/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_session.c - libFuzzer target for the adb-aware session, both
 * directions in one process: the input is a script of host bytes, guest
 * bytes, guest hang-ups, a PC that stops and resumes reading, and loop
 * turns. The PC is a fake front connection in this file, the route a
 * session_owner whose connect op makes each guest link a socketpair, the
 * observers stand-ins that read what they are given. Checked on every
 * input: whatever the relay sends either way parses as adb frames (nothing
 * malformed is forwarded; a link may only end inside a frame when it is
 * lost), what waits for a PC that does not read stays within the route's
 * buffer plus a constant, and the session frees everything it owned (the
 * loop closes clean, sockets and event fds are flat).
 */
#include <assert.h>
#include <dirent.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "adbproto/adbproto.h"
#include "relay/obs/obs.h"
#include "relay/session.h"
#include "relay/sys/sys.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (%s:%d)\n", #c, \
				__FILE__, __LINE__); abort(); } } while (0)
#define BUDGET (128 * 1024)
#define PENDING_SLACK (256 * 1024)
#define BATCHES_MAX 160

static uv_loop_t loop;
static int session_gone;

/* ---- the route: a session_owner ---- */

static struct {
	struct session_owner owner;
	struct session_stats st;
	struct session *sessions;
	unsigned nsessions;
	enum guest_state guest;
	char last_error[160];
} route;

static void route_guest_state(void *owner, enum guest_state st, const char *reason)
{
	CHECK(strlen(reason) < 4096);
	route.guest = st;
}

static void route_error(void *owner, const char *fmt, va_list ap)
{
	vsnprintf(route.last_error, sizeof(route.last_error), fmt, ap);
}

static int route_attach(void *owner, struct session *s)
{
	route.sessions = s;
	route.nsessions++;
	route.st.sessions++;
	return 0;
}

static void route_detach(void *owner, struct session *s)
{
	route.nsessions--;
	route.sessions = NULL;
	session_gone = 1;
}

/* ---- stand-ins for the observers ---- */

int tap_wanted(const char *name) { return 1; }

void tap_line(const char *name, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
}

static volatile uint8_t touched;

static void touch(const uint8_t *p, size_t len)
{
	for (size_t i = 0; p != NULL && i < len; i++)
		touched ^= p[i];
}

int capture_wanted(const char *name) { return 1; }
void capture_header(const char *name, uint32_t id, int from_guest,
		    const uint8_t raw[ADB_HEADER_SIZE]) { touch(raw, ADB_HEADER_SIZE); }
void capture_payload(const char *name, uint32_t id, int from_guest, const void *p,
		     size_t len) { touch(p, len); }
void capture_session_end(const char *name, uint32_t id) {}

struct vsock_connect {
	uv_timer_t timer;
	vsock_connect_cb cb;
	void *data;
};

static int guest_fd = -1;            /* our end of the current guest link */
static struct adb_reader guest_view; /* what the relay sent on it */

static void connect_closed(uv_handle_t *h) { free(h->data); }

static void on_connect_timer(uv_timer_t *t)
{
	struct vsock_connect *c = t->data;
	int sv[2];

	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
	if (guest_fd >= 0)
		close(guest_fd);
	guest_fd = sv[0];
	adb_reader_init(&guest_view, ADB_MAX_PAYLOAD);
	uv_close((uv_handle_t *)&c->timer, connect_closed);
	c->cb(c->data, sv[1], 0);
}

static int route_connect(void *owner, vsock_connect_cb cb, void *data, struct vsock_connect **out)
{
	struct vsock_connect *c = calloc(1, sizeof(*c));

	CHECK(c != NULL);
	c->cb = cb;
	c->data = data;
	uv_timer_init(&loop, &c->timer);
	c->timer.data = c;
	uv_timer_start(&c->timer, on_connect_timer, 0, 0);
	*out = c;
	return 0;
}

static void route_connect_cancel(void *owner, struct vsock_connect *c)
{
	uv_close((uv_handle_t *)&c->timer, connect_closed);
}

static const struct session_ops route_ops = {
	.connect = route_connect,
	.connect_cancel = route_connect_cancel,
	.guest_state = route_guest_state,
	.error = route_error,
	.attach = route_attach,
	.detach = route_detach,
};

/* ---- the PC: a front connection whose writes we check and may hold ---- */

struct fake_pc {
	struct front_conn base;
	int reading, holding, closed;
	struct output_batch *held[512];
	unsigned nheld;
	size_t held_bytes;
	struct adb_reader view;       /* what the relay sent to the PC */
	uv_timer_t closer;
};

static struct fake_pc pc;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_stream(struct adb_reader *r, const uint8_t *p, size_t len, const char *to)
{
	struct adb_frame_event fe;
	enum adb_reader_event ev;

	while ((ev = adb_reader_next(r, &p, &len, &fe)) != ADB_EV_NEED_MORE) {
		if (ev == ADB_EV_ERROR)
			fprintf(stderr, "malformed frame to the %s: %s\n", to, adb_strerror(fe.error));
		CHECK(ev != ADB_EV_ERROR);
	}
}

static void pc_read_start(struct front_conn *p) { pc.reading = 1; }
static void pc_read_stop(struct front_conn *p) { pc.reading = 0; }

static int pc_write(void *ctx, struct output_batch *b)
{
	for (unsigned i = 0; i < b->niov; i++)
		check_stream(&pc.view, (const uint8_t *)b->iov[i].base, b->iov[i].len, "PC");
	if (pc.holding || pc.closed) {
		CHECK(pc.nheld < sizeof(pc.held) / sizeof(pc.held[0]));
		pc.held[pc.nheld++] = b;
		pc.held_bytes += b->bytes;
		return 0;
	}
	output_batch_done(b, 0);
	return 0;
}

static void pc_release(int status)
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
	pc_release(UV_ECANCELED);
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

static void pc_send(const uint8_t *p, size_t len)
{
	while (len > 0 && pc.reading && !pc.closed) {
		uv_buf_t buf;
		size_t n;

		pc.base.on_alloc(&pc.base, &buf);
		if (buf.base == NULL) {
			pc.base.on_read(&pc.base, UV_ENOBUFS, &buf);
			return;
		}
		n = len < buf.len ? len : buf.len;
		memcpy(buf.base, p, n);
		pc.base.on_read(&pc.base, (ssize_t)n, &buf);
		p += n;
		len -= n;
	}
}

/* ---- the guest's end ---- */

static void guest_drain(void)
{
	uint8_t buf[65536];
	ssize_t n;

	while (guest_fd >= 0 && (n = read(guest_fd, buf, sizeof(buf))) > 0) {
		check_stream(&guest_view, buf, (size_t)n, "guest");
	}
}

static void guest_send(const uint8_t *p, size_t len)
{
	if (guest_fd >= 0 && write(guest_fd, p, len) < 0)
		return;   /* full or gone: the rest is lost, as a guest's would be */
}

static void guest_hang_up(void)
{
	if (guest_fd >= 0)
		close(guest_fd);
	guest_fd = -1;
}

/* ---- one input ---- */

static void turn(void)
{
	for (int i = 0; i < 3; i++) {
		uv_run(&loop, UV_RUN_NOWAIT);
		guest_drain();
	}
	CHECK(pc.held_bytes <= BUDGET + PENDING_SLACK);
	if (!session_gone && route.sessions != NULL) {
		CHECK(route.sessions->to_host.bytes_pending <= BUDGET + PENDING_SLACK);
		CHECK(route.sessions->to_host.in_flight <= BATCHES_MAX);
	}
}

static int fd_debug;

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	CHECK(d != NULL);
	while ((e = readdir(d)) != NULL) {
		char path[300], target[256];
		ssize_t len;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		len = readlink(path, target, sizeof(target) - 1);
		if (len <= 0)
			continue;
		target[len] = '\0';
		/* sockets and event fds are ours and libuv's; libFuzzer's
		 * symbolizer adds pipes of its own */
		if (strncmp(target, "socket:", 7) != 0 && strncmp(target, "anon_inode:", 11) != 0)
			continue;
		if (fd_debug)
			fprintf(stderr, "fd %s -> %s\n", e->d_name, target);
		n++;
	}
	closedir(d);
	return n;
}

static void setup_route(void)
{
	memset(&route, 0, sizeof(route));
	route.owner = (struct session_owner){
		.ops = &route_ops,
		.loop = &loop,
		.name = "fuzz",
		.target = "unix:fuzz",
		.buffer = BUDGET,
		.reconnect_min_ms = 1,
		.reconnect_max_ms = 1,
		.max_streams = 64,
		.cnxn_deadline = 1,       /* a TCP front */
		.st = &route.st,
	};
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fds0 = -1;   /* after the first input: libuv keeps a few */
	int steps = 0;

	signal(SIGPIPE, SIG_IGN);   /* as the daemon does: a gone peer is EPIPE */
	log_set_level(LOG_LVL_ERROR);
	CHECK(uv_loop_init(&loop) == 0);
	setup_route();
	memset(&pc, 0, sizeof(pc));
	pc.base.ops = &pc_ops;
	snprintf(pc.base.peer, sizeof(pc.base.peer), "fuzz-pc");
	adb_reader_init(&pc.view, ADB_MAX_PAYLOAD);
	session_gone = 0;
	CHECK(session_start(&route.owner, &pc.base) == 0);

	while (size >= 3 && !session_gone && steps++ < 256) {
		unsigned op = data[0] % 7;
		size_t len = (size_t)data[1] | (size_t)data[2] << 8;

		data += 3;
		size -= 3;
		if (len > size)
			len = size;
		switch (op) {
		case 0: pc_send(data, len); break;
		case 1: guest_send(data, len); break;
		case 2: guest_hang_up(); break;
		case 3: pc.holding = 1; break;
		case 4: pc.holding = 0; pc_release(0); break;
		case 5: pc.base.on_read(&pc.base, UV_EOF, &(uv_buf_t){ NULL, 0 }); break;
		default: break;
		}
		data += len;
		size -= len;
		turn();
	}
	if (!session_gone && route.sessions != NULL)
		session_close(route.sessions, "end of input");
	for (int i = 0; i < 100 && !session_gone; i++)
		turn();
	CHECK(session_gone);
	guest_hang_up();
	uv_run(&loop, UV_RUN_DEFAULT);
	CHECK(uv_loop_close(&loop) == 0);
	if (fds0 < 0)
		fds0 = count_fds();
	if (count_fds() != fds0) {
		fd_debug = 1;
		count_fds();
	}
	CHECK(count_fds() == fds0);
	return 0;
}
