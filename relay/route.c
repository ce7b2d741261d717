/* SPDX-License-Identifier: Apache-2.0 */
/*
 * route.c - a route's front listener, its sessions, the idle probe that
 * keeps the guest's state known while no PC is connected (probe.h does the
 * probing; the route runs one at a time, keeps the last result and turns it
 * into the guest's state), the route's state transitions (each logged
 * once, with the reason), and starting: a route that cannot start yet is
 * kept, not started, and tries again with backoff (a TCP front whose
 * address is on no interface yet: every ROUTE_ADDR_POLL_MS).
 */
#include "relay/route.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay/obs/obs.h"
#include "relay/session.h"
#include "relay/sys/sys.h"

/* the observers keep the route names its sessions give them */
_Static_assert(OBS_ROUTE_NAME_MAX == ROUTE_NAME_MAX, "obs.h and conf.h disagree on route names");

const char *guest_state_name(enum guest_state st)
{
	switch (st) {
	case GUEST_UNKNOWN:    return "unknown";
	case GUEST_DOWN:       return "down";
	case GUEST_CONNECTING: return "connecting";
	case GUEST_UP:         return "up";
	}
	return "?";
}

const char *route_state_name(enum route_state st)
{
	switch (st) {
	case ROUTE_STARTED:     return "started";
	case ROUTE_WAITING:     return "waiting";
	case ROUTE_NOT_STARTED: return "not started";
	}
	return "?";
}

const char *front_state_name(enum front_state st)
{
	switch (st) {
	case FRONT_DOWN:      return "down";
	case FRONT_LISTENING: return "listening";
	case FRONT_READY:     return "ready";
	case FRONT_ONLINE:    return "online";
	}
	return "?";
}

int front_serving(enum front_state st)
{
	return st != FRONT_DOWN;
}

static void (*changed_cb)(void);

void route_set_changed_cb(void (*cb)(void))
{
	changed_cb = cb;
}

static void route_changed(void)
{
	if (changed_cb != NULL)
		changed_cb();
}

static void set_front(struct route *r, enum front_state st)
{
	r->front = st;
	r->front_since = clock_mono_ms();
	route_changed();
}

static void route_set_guest(struct route *r, enum guest_state st, const char *reason)
{
	snprintf(r->guest_reason, sizeof(r->guest_reason), "%s", reason);
	if (st == r->guest)
		return;
	/* a guest can bounce its link at will: rate-limited */
	if (st == GUEST_UP)
		log_limited(LOG_LVL_NOTICE, r->cfg.name, "guest up",
			    "route %s: guest up: %s", r->cfg.name, reason);
	else if (st == GUEST_DOWN && r->guest_was_up)
		log_limited(LOG_LVL_WARN, r->cfg.name, "guest down",
			    "route %s: guest down: %s", r->cfg.name, reason);
	else if (st == GUEST_DOWN)  /* not up yet, as at boot before the VM starts */
		log_limited(LOG_LVL_INFO, r->cfg.name, "guest not up",
			    "route %s: guest not up yet: %s", r->cfg.name, reason);
	if (st == GUEST_UP)
		r->guest_was_up = 1;
	r->guest = st;
	r->guest_since = clock_mono_ms();
	route_changed();
}

/* fmt is also log_limited()'s key: one rate per message */
static void route_verror(struct route *r, const char *fmt, va_list ap)
{
	vsnprintf(r->last_error, sizeof(r->last_error), fmt, ap);
	r->last_error_at = clock_mono_ms();
	log_limited(LOG_LVL_WARN, r->cfg.name, fmt, "route %s: %s", r->cfg.name, r->last_error);
}

static void route_error(struct route *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void route_error(struct route *r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	route_verror(r, fmt, ap);
	va_end(ap);
}

unsigned route_open_streams(const struct route *r)
{
	unsigned n = 0;

	for (const struct session *s = r->sessions; s; s = s->next)
		n += (unsigned)s->streams.n;
	return n;
}

static void on_route_handle_closed(uv_handle_t *h)
{
	struct route *r = h->data;

	if (--r->handles_open == 0)
		free(r);
}

/* ---- the idle probe: is the guest reachable while nobody is connected? ---- */

#define PROBE_ADB_TIMEOUT_MAX_MS 5000

static void on_probe_result(void *data, const struct probe_result *res)
{
	struct route *r = data;
	char why[PROBE_DETAIL_MAX + 16];

	r->probe = NULL;
	r->probe_last = *res;
	r->probe_last_at = clock_mono_ms();
	r->probes++;
	if (!res->ok)
		r->probe_failures++;
	if (res->ok)
		log_debug("route %s: %s probe ok in %.1f ms: %s", r->cfg.name,
			  probe_mode_name(r->cfg.probe_mode), res->rtt_ms, res->detail);
	else
		log_debug("route %s: %s probe failed: %s", r->cfg.name,
			  probe_mode_name(r->cfg.probe_mode), res->detail);
	if (r->nsessions > 0)
		return; /* a session's link knows better */
	if (r->cfg.probe_mode == PROBE_ADB)
		snprintf(why, sizeof(why), "adb probe: %s", res->detail);
	else if (res->ok)
		snprintf(why, sizeof(why), "probe connected");  /* as it always said */
	else
		snprintf(why, sizeof(why), "probe: %s", res->detail);
	route_set_guest(r, res->ok ? GUEST_UP : GUEST_DOWN, why);
}

static void on_probe_timer(uv_timer_t *t)
{
	struct route *r = t->data;
	struct probe_params pp = {
		.mode = r->cfg.probe_mode,
		.connect_timeout_ms = r->cfg.connect_timeout_ms,
		.timeout_ms = r->cfg.probe_interval_ms < PROBE_ADB_TIMEOUT_MAX_MS
				      ? r->cfg.probe_interval_ms : PROBE_ADB_TIMEOUT_MAX_MS,
	};
	int rc;

	if (r->nsessions > 0 || r->probe != NULL)
		return;
	rc = probe_start(r->loop, &r->cfg.target, &pp, on_probe_result, r, &r->probe);
	if (rc != 0) {
		r->probe = NULL;
		route_error(r, "cannot start the guest probe: %s", strerror(-rc));
	}
}

/* A session has the guest link now, or the route stops. */
static void idle_probe_cancel(struct route *r)
{
	if (r->probe == NULL)
		return;
	probe_cancel(r->probe);
	r->probe = NULL;
}

/* ---- the USB front: a session per online period ---- */

static void on_usb_restart(uv_timer_t *t);

static void usb_session_start(struct route *r)
{
	struct front_conn *host;
	char peer[48];
	int rc;

	if (r->stopping || r->usb.state != USB_ONLINE || r->nsessions > 0)
		return;
	/* a host being made to drop its transport: its next one's CNXN is
	 * for the next session, which reads once the drop is done */
	if (usb_dropping(&r->usb)) {
		uv_timer_start(&r->usb_restart, on_usb_restart, 50, 0);
		return;
	}
	snprintf(peer, sizeof(peer), "usb:%s", r->usb.name);
	rc = front_conn_usb_open(&r->usb, peer, &host);
	if (rc == 0)
		rc = session_start(&r->owner, host);
	if (rc != 0)
		route_error(r, "cannot start USB session: %s", uv_strerror(rc));
}

static void on_usb_restart(uv_timer_t *t)
{
	usb_session_start(t->data);
}

static void on_usb_state(struct usb_function *f, enum usb_state st, const char *why)
{
	struct route *r = f->data;

	/* a USB host can enable and disable the function at will */
	log_limited(LOG_LVL_NOTICE, r->cfg.name, "usb state", "route %s: usb %s: %s", r->cfg.name,
		    usb_state_name(st), why);
	route_changed();        /* bound or unbound, if nothing else */
	if (st == USB_ONLINE) {
		set_front(r, FRONT_ONLINE);
		idle_probe_cancel(r);
		/* the previous online period's session may still be draining;
		 * session_detach() starts the next one then */
		usb_session_start(r);
	} else if (st == USB_READY) {
		set_front(r, FRONT_READY);
		for (struct session *s = r->sessions; s; s = s->next)
			session_close(s, why);
	}
}

/* a USB host can repeat some lines at will (bad setup requests): each kind
 * (cause) is rate-limited per function */
static void usb_log_line(struct usb_function *f, int warn, const void *cause, const char *msg)
{
	log_limited(warn ? LOG_LVL_WARN : LOG_LVL_INFO, f->name, cause, "route %s: usb: %s", f->name,
		    msg);
}

/*
 * A route restarted by a reload gets the FunctionFS its old self still
 * holds: the old function's endpoints close only after its handles have,
 * and until then the mount takes no new descriptors. So the new route
 * waits, front down, until no stopped route holds its mount any more.
 */
static struct route *usb_closing;   /* stopped, function still closing */
static struct route *usb_waiting;   /* started, waiting for one of those */

static void usb_list_remove(struct route **head, struct route *r)
{
	for (struct route **pp = head; *pp; pp = &(*pp)->usb_next)
		if (*pp == r) {
			*pp = r->usb_next;
			return;
		}
}

static int usb_mount_closing(const char *path)
{
	for (const struct route *c = usb_closing; c; c = c->usb_next)
		if (strcmp(c->cfg.front.path, path) == 0)
			return 1;
	return 0;
}

static void route_attempt(struct route *r);

/* Start the waiting routes of a mount that is free now. */
static void usb_open_waiting(const char *path)
{
	struct route **pp = &usb_waiting;

	while (*pp != NULL) {
		struct route *w = *pp;

		if (strcmp(w->cfg.front.path, path) != 0 || usb_mount_closing(path)) {
			pp = &w->usb_next;
			continue;
		}
		*pp = w->usb_next;
		route_attempt(w);
	}
}

static void on_usb_closed(struct usb_function *f)
{
	struct route *r = f->data;
	char path[sizeof(r->cfg.front.path)];

	usb_list_remove(&usb_closing, r);
	snprintf(path, sizeof(path), "%s", r->cfg.front.path);
	if (--r->handles_open == 0)
		free(r);
	usb_open_waiting(path);
}

/* ---- what the sessions ask of their route (struct session_ops) ---- */

static int session_connect(void *owner, vsock_link_cb cb, void *data, struct vsock_connect **out)
{
	struct route *r = owner;

	return vsock_link_start(r->loop, &r->cfg.target, r->cfg.connect_timeout_ms, cb, data, out);
}

static void session_connect_cancel(void *owner, struct vsock_connect *c)
{
	vsock_connect_cancel(c);
}

static void session_guest_state(void *owner, enum guest_state st, const char *reason)
{
	route_set_guest(owner, st, reason);
}

static void session_error(void *owner, const char *fmt, va_list ap)
{
	route_verror(owner, fmt, ap);
}

static int session_attach(void *owner, struct session *s)
{
	struct route *r = owner;

	s->next = r->sessions;
	if (r->sessions)
		r->sessions->prev = s;
	r->sessions = s;
	r->nsessions++;
	r->st.sessions++;
	if (r->nsessions > r->cfg.max_clients) {
		log_limited(LOG_LVL_WARN, r->cfg.name, "max-clients",
			    "route %s: peer %s refused: %u clients (max-clients)", r->cfg.name, s->peer,
			    r->cfg.max_clients);
		return -1;
	}
	return 0;
}

static void session_detach(void *owner, struct session *s)
{
	struct route *r = owner;

	if (s->prev)
		s->prev->next = s->next;
	else
		r->sessions = s->next;
	if (s->next)
		s->next->prev = s->prev;
	r->nsessions--;
	if (r->stopping) {
		if (--r->handles_open == 0)
			free(r);
		return;
	}
	/* a USB session that failed while the host still has us: start over */
	if (r->cfg.front.kind == FRONT_USB && r->usb.state == USB_ONLINE)
		uv_timer_start(&r->usb_restart, on_usb_restart, 100, 0);
}

/* The PC is to see its guest restart: a TCP PC sees its connection end
 * (the session closes it); a USB host is made to drop its transport, as it
 * does when a real adbd closes FunctionFS, and finds the device again. */
static void session_restart_shown(void *owner, struct session *s)
{
	struct route *r = owner;

	(void)s;
	if (r->cfg.front.kind == FRONT_USB && r->usb_open)
		usb_drop_host(&r->usb);
}

/* A USB host that kept its transport while its session ended (a session
 * that failed, a drop the UDC did not take) sends frames no session knows:
 * it is made to drop that transport, and comes back with a CNXN. */
static int session_host_stale(void *owner, struct session *s)
{
	struct route *r = owner;

	if (r->cfg.front.kind != FRONT_USB || !r->usb_open || usb_drop_host(&r->usb) != 0)
		return 0;
	log_limited(LOG_LVL_NOTICE, r->cfg.name, "stale host",
		    "route %s: peer %s: the host's first frame is not its CNXN: it kept a "
		    "transport from before; making it drop that one", r->cfg.name, s->peer);
	return 1;
}

static const struct session_ops route_session_ops = {
	.connect = session_connect,
	.connect_cancel = session_connect_cancel,
	.guest_state = session_guest_state,
	.error = session_error,
	.attach = session_attach,
	.detach = session_detach,
	.restart_shown = session_restart_shown,
	.host_stale = session_host_stale,
};

/* ---- the front ---- */

static void on_connection(uv_stream_t *listener, int status)
{
	struct route *r = listener->data;
	struct front_conn *host;
	int rc;

	if (status != 0) {
		route_error(r, "accept failed: %s", uv_strerror(status));
		return;
	}
	idle_probe_cancel(r);
	rc = front_conn_tcp_accept(r->loop, listener, &host);
	if (rc == 0)
		rc = session_start(&r->owner, host);
	if (rc != 0)
		route_error(r, "cannot start session: %s", uv_strerror(rc));
}

static int front_usb_open(struct route *r, char *err, size_t errlen)
{
	char why[128];
	int rc;

	usb_set_log(usb_log_line);
	rc = usb_function_open(&r->usb, r->loop, r->cfg.front.path, r->cfg.name, on_usb_state,
			       r, why, sizeof(why));
	if (rc != 0) {
		snprintf(err, errlen, "cannot open the USB function: %s", why);
		return rc;
	}
	r->usb_open = 1;
	r->handles_open++;  /* the function, released by on_usb_closed */
	return 0;
}

static void on_listener_closed(uv_handle_t *h)
{
	struct route *r = h->data;

	r->listener_open = 0;
	on_route_handle_closed(h);
}

/* A fresh listener each time: a socket that failed to bind or listen is
 * closed, not tried again. */
static int front_listen(struct route *r, char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	const struct front_spec *f = &r->cfg.front;
	char spec[96];
	int rc;

	front_spec_format(f, spec, sizeof(spec));
	if (r->listener_open) {
		snprintf(err, errlen, "cannot listen on %s: the last listener is still closing", spec);
		return UV_EBUSY;
	}
	uv_tcp_init(r->loop, &r->listener);
	r->listener.data = r;
	r->listener_open = 1;
	r->handles_open++;  /* released by on_listener_closed */
	if (strchr(f->host, ':') != NULL)
		rc = uv_ip6_addr(f->host, f->port, (struct sockaddr_in6 *)&ss);
	else
		rc = uv_ip4_addr(f->host, f->port, (struct sockaddr_in *)&ss);
	if (rc == 0)
		rc = uv_tcp_bind(&r->listener, (struct sockaddr *)&ss, 0);
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&r->listener, 16, on_connection);
	if (rc == UV_EADDRNOTAVAIL) {
		snprintf(err, errlen, "cannot listen on %s: the address is not on any interface",
			 spec);
		uv_close((uv_handle_t *)&r->listener, on_listener_closed);
		return rc;
	}
	if (rc != 0) {
		snprintf(err, errlen, "cannot listen on %s: %s", spec, uv_strerror(rc));
		uv_close((uv_handle_t *)&r->listener, on_listener_closed);
		return rc;
	}
	set_front(r, FRONT_LISTENING);
	return 0;
}

/* One try at what the route needs before it serves: its virtio device,
 * then its front. 0 (started, or WAITING for its USB mount), or a uv
 * error with err set. */
static int start_front(struct route *r, char *err, size_t errlen)
{
	int rc;

	if (r->cfg.target.kind == VSOCK_VIRTIO && !r->virtio_held) {
		char why[128];

		rc = vsock_virtio_acquire(r->loop, &r->cfg.target, why, sizeof(why));
		if (rc != 0) {
			snprintf(err, errlen, "cannot serve the virtio device: %s", why);
			return rc;
		}
		r->virtio_held = 1;  /* kept until the route stops */
	}
	if (r->cfg.front.kind == FRONT_USB && usb_mount_closing(r->cfg.front.path)) {
		r->state = ROUTE_WAITING;
		r->usb_next = usb_waiting;
		usb_waiting = r;
		return 0;
	}
	if (r->cfg.front.kind == FRONT_USB)
		return front_usb_open(r, err, errlen);
	return front_listen(r, err, errlen);
}

static void (*started_cb)(struct route *r);

void route_set_started_cb(void (*cb)(struct route *r))
{
	started_cb = cb;
}

static void on_retry(uv_timer_t *t)
{
	struct route *r = t->data;

	route_attempt(r);
	if (r->state == ROUTE_STARTED && started_cb != NULL)
		started_cb(r);
}

static const char retry_log_cause; /* log_limited()'s key for the retry lines */

static int power_of_two(unsigned n)
{
	return n != 0 && (n & (n - 1)) == 0;
}

/* The attempt failed with rc: log it (the first with its reason, later ones
 * when the reason changes and at attempts 2, 4, 8, ...), try again later:
 * with backoff, or, for an address on no interface yet, every
 * ROUTE_ADDR_POLL_MS (a bind, cheap; the address comes when an interface
 * is configured, and the front should listen soon after). */
static void start_failed(struct route *r, int rc, const char *why)
{
	uint64_t now = clock_mono_ms();
	int changed = strcmp(why, r->start_error) != 0;

	r->waiting_for_address = rc == UV_EADDRNOTAVAIL;
	if (r->start_attempts == 0) {
		r->start_failed_since = now;
		r->retry_ms = ROUTE_RETRY_MIN_MS;
	} else {
		r->retry_ms = r->retry_ms * 2 < ROUTE_RETRY_MAX_MS ? r->retry_ms * 2
								 : ROUTE_RETRY_MAX_MS;
	}
	if (r->waiting_for_address)
		r->retry_ms = ROUTE_ADDR_POLL_MS;
	r->start_attempts++;
	r->state = ROUTE_NOT_STARTED;
	r->retry_at = now + r->retry_ms;
	snprintf(r->start_error, sizeof(r->start_error), "%s", why);
	route_changed();
	if (r->start_attempts == 1) {
		set_front(r, FRONT_DOWN);
		if (r->waiting_for_address)
			log_notice("route %s: not started: %s; waiting for it, trying every %u ms",
				   r->cfg.name, why, r->retry_ms);
		else
			log_error("route %s: not started: %s; trying again in %u s", r->cfg.name,
				  why, r->retry_ms / 1000);
	} else if (changed || power_of_two(r->start_attempts)) {
		log_limited(r->waiting_for_address ? LOG_LVL_NOTICE : LOG_LVL_WARN, r->cfg.name,
			    &retry_log_cause,
			    "route %s: still not started after %u attempts in %.0f s: %s; "
			    "trying again in %u s", r->cfg.name, r->start_attempts,
			    (double)(now - r->start_failed_since) / 1000.0, why, r->retry_ms / 1000);
	}
	uv_timer_start(&r->retry_timer, on_retry, r->retry_ms, 0);
}

static void start_done(struct route *r)
{
	char spec[96], tgt[VSOCK_SPEC_MAX], after[48] = "";

	front_spec_format(&r->cfg.front, spec, sizeof(spec));
	vsock_target_format(&r->cfg.target, tgt, sizeof(tgt));
	if (r->state == ROUTE_WAITING) {
		log_notice("route %s: waiting for the route's previous USB function on %s to close, "
			   "target %s", r->cfg.name, r->cfg.front.path, tgt);
		return;
	}
	if (r->start_attempts > 0)
		snprintf(after, sizeof(after), " (after %u failed attempts)", r->start_attempts);
	log_notice("route %s: %s on %s, target %s%s", r->cfg.name,
		   r->cfg.front.kind == FRONT_USB ? "USB function ready" : "listening", spec, tgt,
		   after);
	r->state = ROUTE_STARTED;
	r->start_error[0] = '\0';
	r->start_attempts = 0;
	r->waiting_for_address = 0;
	route_changed();
	if (r->cfg.mdns[0] != '\0' && r->cfg.front.kind == FRONT_TCP)
		r->mdns = mdns_publish(r->loop, r->cfg.name, r->cfg.mdns, r->cfg.front.host,
				       r->cfg.front.port);
	if (r->cfg.probe_interval_ms > 0)
		uv_timer_start(&r->probe_timer, on_probe_timer, 0, r->cfg.probe_interval_ms);
}

static void route_attempt(struct route *r)
{
	char err[sizeof(r->start_error)];
	int rc;

	r->state = ROUTE_NOT_STARTED;
	rc = start_front(r, err, sizeof(err));
	if (rc != 0)
		start_failed(r, rc, err);
	else
		start_done(r);
}

struct route *route_start(uv_loop_t *loop, const struct route_config *cfg)
{
	struct route *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	r->loop = loop;
	r->cfg = *cfg;
	vsock_target_format(&r->cfg.target, r->target_spec, sizeof(r->target_spec));
	r->owner = (struct session_owner){
		.ops = &route_session_ops,
		.data = r,
		.loop = loop,
		.name = r->cfg.name,
		.target = r->target_spec,
		.buffer = r->cfg.buffer,
		.reconnect_min_ms = r->cfg.reconnect_min_ms,
		.reconnect_max_ms = r->cfg.reconnect_max_ms,
		.max_streams = r->cfg.max_streams,
		.cnxn_deadline = r->cfg.front.kind == FRONT_TCP,
		.guest_restart = r->cfg.guest_restart,
		.open_wait_ms = r->cfg.open_wait_ms,
		.pipeline = r->cfg.pipeline,
		.st = &r->st,
	};
	r->guest = GUEST_UNKNOWN;
	r->guest_since = r->front_since = clock_mono_ms();
	uv_timer_init(loop, &r->probe_timer);
	r->probe_timer.data = r;
	uv_timer_init(loop, &r->usb_restart);
	r->usb_restart.data = r;
	uv_timer_init(loop, &r->retry_timer);
	r->retry_timer.data = r;
	r->handles_open = 3;
	route_attempt(r);
	return r;
}

void route_retry_now(struct route *r)
{
	if (r->state != ROUTE_NOT_STARTED)
		return;
	uv_timer_stop(&r->retry_timer);
	r->start_attempts = 0;
	route_attempt(r);
}

void route_stop(struct route *r)
{
	struct session *s, *next;

	r->stopping = 1;
	r->front = FRONT_DOWN;
	log_notice("route %s: stopping%s", r->cfg.name,
		   r->state == ROUTE_NOT_STARTED ? " (it had not started)" : "");
	idle_probe_cancel(r);
	if (r->mdns != NULL)            /* its goodbye, while the front still listens */
		mdns_withdraw(r->mdns);
	r->mdns = NULL;
	/* each session keeps the route alive until it has freed itself */
	r->handles_open += r->nsessions;
	for (s = r->sessions; s; s = next) {
		next = s->next;
		session_close(s, "route stopped");
	}
	if (r->listener_open && !uv_is_closing((uv_handle_t *)&r->listener))
		uv_close((uv_handle_t *)&r->listener, on_listener_closed);
	uv_close((uv_handle_t *)&r->probe_timer, on_route_handle_closed);
	uv_close((uv_handle_t *)&r->usb_restart, on_route_handle_closed);
	uv_close((uv_handle_t *)&r->retry_timer, on_route_handle_closed);
	if (r->cfg.front.kind == FRONT_USB && r->usb_open) {
		r->usb_next = usb_closing;
		usb_closing = r;
		usb_function_close(&r->usb, on_usb_closed);
	} else if (r->state == ROUTE_WAITING) {
		usb_list_remove(&usb_waiting, r);
	}
	if (r->virtio_held)
		vsock_virtio_release(&r->cfg.target);
}
