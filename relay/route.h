/* SPDX-License-Identifier: Apache-2.0 */
/*
 * route.h - one route: a front (a TCP listener for adb, or a FunctionFS
 * USB function) tied to one guest target. Owns the front, its sessions,
 * the idle guest probe, and the per-route state and counters reported by
 * the control socket.
 *
 * Routes start independently: one whose front (or virtio device) cannot be
 * had yet is kept, not started, with its reason, and tries again by itself
 * (ROUTE_RETRY_MIN_MS doubling to ROUTE_RETRY_MAX_MS); the others serve. A
 * TCP front whose address is on no interface yet (a USB network gadget's,
 * before its UDC is bound and the address given) waits for it: tried every
 * ROUTE_ADDR_POLL_MS, without backoff, so it listens within that of the
 * address appearing.
 */
#ifndef RELAY_ROUTE_H
#define RELAY_ROUTE_H

#include <stdint.h>
#include <uv.h>

#include "relay/conf.h"
#include "relay/mdns/mdns.h"
#include "relay/probe.h"
#include "relay/session.h"
#include "usb/usb.h"

/* TCP: DOWN or LISTENING. USB: DOWN, READY (descriptors written, the gadget
 * may be bound, no host yet) or ONLINE (a host enabled the function). */
enum front_state { FRONT_DOWN, FRONT_LISTENING, FRONT_READY, FRONT_ONLINE };
/* STARTED: the front serves. WAITING: a USB route whose mount its previous
 * self (before a reload) still holds; it opens it once that is let go.
 * NOT_STARTED: the last attempt failed (start_error says why); the next
 * one is on retry_timer. */
enum route_state { ROUTE_STARTED, ROUTE_WAITING, ROUTE_NOT_STARTED };

#define ROUTE_RETRY_MIN_MS 1000
#define ROUTE_RETRY_MAX_MS 30000
#define ROUTE_ADDR_POLL_MS 1000

struct route {
	uv_loop_t *loop;
	struct route_config cfg;
	struct route *next;
	struct session_owner owner;     /* what its sessions are given */
	char target_spec[VSOCK_SPEC_MAX]; /* cfg.target, formatted */

	enum route_state state;
	char start_error[160];          /* why the last attempt failed */
	unsigned start_attempts;        /* failed attempts since the last start */
	int waiting_for_address;        /* the last failed: its address is on no interface */
	uint64_t start_failed_since;    /* ms, monotonic: the first of them */
	unsigned retry_ms;              /* the delay before the next attempt */
	uint64_t retry_at;              /* ms, monotonic: the next attempt */
	uv_timer_t retry_timer;
	int virtio_held;                /* the virtio device is acquired */

	uv_tcp_t listener;              /* TCP front, while listener_open */
	struct mdns_service *mdns;      /* the front published (cfg.mdns), while started */
	int listener_open;
	struct usb_function usb;        /* USB front: open for the route's life */
	int usb_open;                   /* usb is open (not waiting to open it) */
	struct route *usb_next;         /* in route.c's list of closing or waiting */
	uv_timer_t usb_restart;         /* next USB session, after a failed one */
	enum front_state front;
	uint64_t front_since;           /* ms, monotonic */
	struct session *sessions;
	unsigned nsessions;

	uv_timer_t probe_timer;
	struct probe *probe;            /* the probe in flight, if any */
	struct probe_result probe_last; /* the last one that ended */
	uint64_t probe_last_at;         /* ms, monotonic; 0 = none yet */
	uint64_t probes, probe_failures;
	enum guest_state guest;
	int guest_was_up;               /* the guest has been up since the route started */
	uint64_t guest_since;
	char guest_reason[PROBE_DETAIL_MAX + 32];

	char last_error[160];
	uint64_t last_error_at;
	struct session_stats st;        /* the sessions' counters */

	int stopping;
	int handles_open;
};

/* Create a route and start it (virtio device, front, probe). A route that
 * cannot start is returned all the same, NOT_STARTED, its reason logged,
 * retrying by itself. NULL only when out of memory. */
struct route *route_start(uv_loop_t *loop, const struct route_config *cfg);
/* A NOT_STARTED route tries again now, its backoff begun anew (a reload). */
void route_retry_now(struct route *r);
/* Called when a route starts on a retry, after route_start returned. */
void route_set_started_cb(void (*cb)(struct route *r));
/* Called when anything relay_summary() counts may have changed: a route
 * started or failed to, its front, its guest, its USB gadget bound or not. */
void route_set_changed_cb(void (*cb)(void));
/* Close everything; the route frees itself when its last handle closes. */
void route_stop(struct route *r);

unsigned route_open_streams(const struct route *r);

const char *guest_state_name(enum guest_state st);
const char *route_state_name(enum route_state st);
const char *front_state_name(enum front_state st);
/* Is the front doing its job (listening, or a USB function ready/online)? */
int front_serving(enum front_state st);

#endif
