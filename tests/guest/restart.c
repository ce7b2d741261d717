/* SPDX-License-Identifier: Apache-2.0 */
/*
 * restart.c - the services of adbd-testguest that restart adbd, answering
 * as AOSP's adbd does (daemon/restart_service.cpp, daemon/services.cpp):
 *
 *   root:        "adbd is already running as root\n" when "root", else
 *                "restarting adbd as root\n" and a restart as root
 *   unroot:      "adbd not running as root\n" when not "root", else
 *                "restarting adbd as non root\n" and a restart unprivileged
 *   tcpip:PORT   "restarting in TCP mode port: PORT\n" and a restart;
 *                "invalid port PORT\n" (no restart) for PORT <= 0; the OPEN
 *                is refused when PORT is no number at all (adbd's sscanf)
 *   usb:         "restarting in USB mode\n" and a restart
 *   reboot:[T]   no output; the device goes down (reboot downtime) and
 *                comes back in the --root state it started in
 *   reconnect    "done", then only this connection is dropped (kick)
 *
 * A text reply is one WRTE followed by the stream's CLSE. This file also
 * owns the emulated restart and the "root" state (g_opt.root): about
 * RESTART_GRACE_MS after the host acknowledged the reply (and our CLSE went
 * out), or RESTART_FALLBACK_MS after the request if it never does, every
 * adb connection and every listener is closed; nothing listens for the
 * downtime (unix:/hybrid: paths stay as dead sockets, see listen.c); then
 * the same --listen specs are opened again (retried every RESTART_RETRY_MS
 * if one fails) and "RESTARTED" is printed on stdout. tcpip: and usb: do
 * not change the listeners. SIGTERM at any point: restart_shutdown().
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "tests/guest/guest.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RESTART_GRACE_MS    100  /* after the reply's CLSE, before going down */
#define RESTART_FALLBACK_MS 1000 /* the host never acknowledged the reply */
#define RESTART_RETRY_MS    250  /* a listener could not be opened again */

/* ---- the restart ---- */

enum restart_state { R_UP, R_ARMED, R_DOWN };

static enum restart_state r_state = R_UP;
static uv_timer_t r_timer;
static int r_timer_inited;
static int r_waiting;          /* replies of the pending restart not yet delivered */
static char r_reason[128];
static unsigned r_downtime_ms;
static int r_new_root;
static unsigned long r_count;

static void restart_timer_cb(uv_timer_t *t);

static void timer_start(uint64_t ms)
{
	if (!r_timer_inited) {
		uv_timer_init(g_loop, &r_timer);
		r_timer_inited = 1;
	}
	uv_timer_start(&r_timer, restart_timer_cb, ms, 0);
}

static void go_down(void)
{
	char why[160];

	r_state = R_DOWN;
	r_count++;
	log_info("restart: %s, down %u ms", r_reason, r_downtime_ms);
	snprintf(why, sizeof(why), "restart (%s)", r_reason);
	listeners_close(1);
	conns_close_all(why);
	g_opt.root = r_new_root;
	timer_start(r_downtime_ms);
}

static void come_up(void)
{
	if (listeners_open_all(1) != 0) {
		log_err("restart: the listeners could not be opened again; retrying in %d ms",
			RESTART_RETRY_MS);
		timer_start(RESTART_RETRY_MS);
		return;
	}
	r_state = R_UP;
	log_info("restart: up again%s (restart %lu)", g_opt.root ? " as root" : "", r_count);
	printf("RESTARTED\n");
	fflush(stdout);
}

static void restart_timer_cb(uv_timer_t *t)
{
	(void)t;
	if (g_shutting_down)
		return;
	if (r_state == R_ARMED)
		go_down();
	else if (r_state == R_DOWN)
		come_up();
}

/*
 * A reply that asks for a restart is about to be sent. `new_root` is the
 * "root" state after it, or -1 to keep what the restart already pending (or
 * the current state) has. While a restart is pending, later requests merge
 * into it (the reasons are listed, the last root state and the longest
 * downtime win) and the restart waits for their replies too.
 */
static void restart_request(const char *reason, unsigned downtime_ms, int new_root)
{
	if (g_shutting_down || r_state == R_DOWN)
		return;
	if (r_state == R_UP) {
		r_state = R_ARMED;
		r_waiting = 0;
		r_downtime_ms = downtime_ms;
		r_new_root = g_opt.root;
		r_reason[0] = '\0';
	} else if (downtime_ms > r_downtime_ms) {
		r_downtime_ms = downtime_ms;
	}
	if (r_reason[0] == '\0') {
		snprintf(r_reason, sizeof(r_reason), "%s", reason);
	} else {
		size_t n = strlen(r_reason);

		snprintf(r_reason + n, sizeof(r_reason) - n, " + %s", reason);
	}
	if (new_root >= 0)
		r_new_root = new_root;
	r_waiting++;
	timer_start(RESTART_FALLBACK_MS);
}

/* A reply of the pending restart was delivered (or its stream is gone). */
static void restart_reply_done(void)
{
	if (g_shutting_down || r_state != R_ARMED)
		return;
	if (r_waiting > 0)
		r_waiting--;
	if (r_waiting == 0)
		timer_start(RESTART_GRACE_MS);
}

void restart_shutdown(void)
{
	if (r_state != R_UP)
		log_info("restart: %s, given up", r_state == R_DOWN ? "down" : "pending");
	r_state = R_UP;
	if (r_timer_inited && !uv_is_closing((uv_handle_t *)&r_timer)) {
		uv_timer_stop(&r_timer);
		uv_close((uv_handle_t *)&r_timer, NULL);
	}
}

/* ---- the services ---- */

enum rsvc_kind { RS_ROOT, RS_UNROOT, RS_TCPIP, RS_USB, RS_REBOOT, RS_RECONNECT };

struct rsvc {
	enum rsvc_kind kind;
	char reply[64];
	size_t reply_len;
	int restart;             /* this reply is followed by a restart */
	int restart_done;        /* restart_reply_done() called */
	int kicked;              /* reconnect: connection dropped */
};

static struct rsvc *rsvc_new(struct stream *s, enum rsvc_kind kind)
{
	struct rsvc *r = xcalloc(1, sizeof(*r));

	r->kind = kind;
	s->svc = r;
	return r;
}

static void set_reply(struct rsvc *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void set_reply(struct rsvc *r, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(r->reply, sizeof(r->reply), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	r->reply_len = (size_t)n < sizeof(r->reply) ? (size_t)n : sizeof(r->reply) - 1;
}

static void request(struct rsvc *r, const char *reason, unsigned downtime_ms, int new_root)
{
	r->restart = 1;
	restart_request(reason, downtime_ms, new_root);
}

static int root_start(struct stream *s, const char *arg)
{
	struct rsvc *r = rsvc_new(s, RS_ROOT);

	(void)arg;
	if (g_opt.root) {
		set_reply(r, "adbd is already running as root\n");
		return 0;
	}
	set_reply(r, "restarting adbd as root\n");
	request(r, "root: as root", g_opt.restart_downtime_ms, 1);
	return 0;
}

static int unroot_start(struct stream *s, const char *arg)
{
	struct rsvc *r = rsvc_new(s, RS_UNROOT);

	(void)arg;
	if (!g_opt.root) {
		set_reply(r, "adbd not running as root\n");
		return 0;
	}
	set_reply(r, "restarting adbd as non root\n");
	request(r, "unroot: as non root", g_opt.restart_downtime_ms, 0);
	return 0;
}

/* adbd: sscanf(arg, "%d", &port) != 1 refuses the OPEN. Leading white space
 * and a sign are taken, anything after the digits is ignored; a value
 * beyond int is clamped here. 0, or -1 when there is no number at all. */
static int parse_port(const char *arg, int *port)
{
	const char *p = arg;
	char *end;
	long v;

	while (isspace((unsigned char)*p))
		p++;
	errno = 0;
	v = strtol(p, &end, 10);
	if (end == p)
		return -1;
	if (v > INT_MAX || (errno == ERANGE && v > 0))
		v = INT_MAX;
	else if (v < INT_MIN || (errno == ERANGE && v < 0))
		v = INT_MIN;
	*port = (int)v;
	return 0;
}

static int tcpip_start(struct stream *s, const char *arg)
{
	struct rsvc *r;
	char reason[48];
	int port;

	if (parse_port(arg, &port) != 0) {
		log_info("%s: tcpip:%.40s: no port number, refused", stream_peer(s), arg);
		return -1; /* stream_unref() follows, then release with svc NULL */
	}
	r = rsvc_new(s, RS_TCPIP);
	if (port <= 0) {
		set_reply(r, "invalid port %d\n", port);
		return 0;
	}
	set_reply(r, "restarting in TCP mode port: %d\n", port);
	snprintf(reason, sizeof(reason), "tcpip: port %d", port);
	request(r, reason, g_opt.restart_downtime_ms, -1);
	return 0;
}

static int usb_start(struct stream *s, const char *arg)
{
	struct rsvc *r = rsvc_new(s, RS_USB);

	(void)arg;
	set_reply(r, "restarting in USB mode\n");
	request(r, "usb:", g_opt.restart_downtime_ms, -1);
	return 0;
}

static int reboot_start(struct stream *s, const char *arg)
{
	struct rsvc *r = rsvc_new(s, RS_REBOOT);
	char reason[64];
	size_t n = 0;

	/* adbd runs "/system/bin/reboot TARGET": no output, the device goes
	 * down before the command could end */
	n = (size_t)snprintf(reason, sizeof(reason), "reboot:");
	for (const char *p = arg; *p != '\0' && n < sizeof(reason) - 4; p++)
		reason[n++] = (*p >= 0x20 && *p < 0x7f) ? *p : '?';
	if (*arg != '\0' && n == sizeof(reason) - 4)
		reason[n++] = '.', reason[n++] = '.', reason[n++] = '.';
	reason[n] = '\0';
	request(r, reason, g_opt.reboot_downtime_ms, g_opt.root_at_boot);
	return 0;
}

static int reconnect_start(struct stream *s, const char *arg)
{
	struct rsvc *r = rsvc_new(s, RS_RECONNECT);

	(void)arg;
	set_reply(r, "done");
	return 0;
}

static void mark_done(struct rsvc *r)
{
	if (!r->restart || r->restart_done)
		return;
	r->restart_done = 1;
	restart_reply_done();
}

static void kick(struct stream *s, struct rsvc *r)
{
	if (r->kicked)
		return;
	r->kicked = 1;
	log_info("%s: reconnect: dropping the connection", stream_peer(s));
	stream_kick(s, "reconnect (kick)");
}

static void rsvc_started(struct stream *s)
{
	struct rsvc *r = s->svc;

	if (r->reply_len > 0)
		stream_send(s, (const uint8_t *)r->reply, r->reply_len);
	switch (r->kind) {
	case RS_REBOOT:
		mark_done(r); /* the OKAY is out: nothing else comes */
		break;
	case RS_RECONNECT:
		break;        /* kick once the host has "done" */
	default:
		stream_finish(s); /* CLSE once the host acknowledged the reply */
		break;
	}
}

static void rsvc_data(struct stream *s, const uint8_t *buf, size_t len)
{
	(void)buf;
	(void)len;
	stream_consumed(s); /* adbd's service threads read nothing: dropped */
}

/* Only reconnect gets here: the others finish, or send nothing. */
static void rsvc_ready(struct stream *s)
{
	struct rsvc *r = s->svc;

	if (r->kind == RS_RECONNECT)
		kick(s, r);
}

static void rsvc_abort(struct stream *s)
{
	struct rsvc *r = s->svc;

	if (r == NULL)
		return;
	/* CLSE sent after the host's OKAY, closed by the host, or the
	 * connection is gone: the restart goes ahead in every case, as the
	 * property was set before adbd wrote the reply */
	mark_done(r);
	if (r->kind == RS_RECONNECT)
		kick(s, r);
}

static void rsvc_release(struct stream *s)
{
	free(s->svc);
	s->svc = NULL;
}

#define RSVC_OPS(var, svc_name, start_fn)  \
	const struct service_ops var = {   \
		.name = svc_name,          \
		.start = start_fn,         \
		.started = rsvc_started,   \
		.data = rsvc_data,         \
		.ready = rsvc_ready,       \
		.abort = rsvc_abort,       \
		.release = rsvc_release,   \
	}

RSVC_OPS(root_service, "root", root_start);
RSVC_OPS(unroot_service, "unroot", unroot_start);
RSVC_OPS(tcpip_service, "tcpip", tcpip_start);
RSVC_OPS(usb_service, "usb", usb_start);
RSVC_OPS(reboot_service, "reboot", reboot_start);
RSVC_OPS(reconnect_service, "reconnect", reconnect_start);
