/* SPDX-License-Identifier: Apache-2.0 */
/*
 * relay.h - the adbd-relay daemon: its configuration, its routes, its
 * control socket, and the three things done to them: start, reload, stop.
 * main.c only parses arguments, handles signals and runs the loop; the
 * control socket and its status replies (relay/control/) only read the
 * state.
 *
 * The contract:
 * - rl->routes mirrors rl->cfg.routes, in the same order: one route per
 *   configured route, except one that could not even be made (out of
 *   memory), which is missing and counted as not started.
 * - Applying a configuration (start, reload) keeps every running route
 *   whose name and whole route_config are the same (route_config_equal):
 *   its listener, sessions and counters are not touched; if it had not
 *   started it tries again now (ops->route_keep). Every other running route
 *   stops and every other configured route starts. Nothing is updated in
 *   place: a route whose buffer, limits, probe, front or target changed is
 *   stopped and started anew, as is a renamed one. All the stops come
 *   before the first start, so a new route may take the front an old one
 *   held. The virtio devices the new configuration names are held across
 *   (acquired before the stops, released after the starts), so a restarted
 *   route keeps its VMM; the hybrid sockets become exactly cfg.hybrid.
 * - A reload whose file does not load (or has no routes) changes nothing:
 *   the running configuration, routes, log level and control socket stay,
 *   the reason is logged and returned. A good file replaces rl->cfg, but
 *   the control socket keeps its path (the running one stays in rl->cfg)
 *   and the process its user and group; a change to either is warned
 *   about ("takes effect on restart"). The log level becomes the file's
 *   (the command line's --log-level does not outlive a reload); trace,
 *   once on, stays on. Reloading the same file again keeps every route.
 * - Stop closes every route and the control socket; rl->routes and
 *   rl->control are NULL after. rl->cfg stays until relay_free().
 *
 * The route, virtio device and control socket operations go through
 * rl->ops: main.c's (route.c, vsock/, control.c) in the daemon,
 * fakes in tests/unit/test_reload.c. One relay per process may be started:
 * relay_start() wires route.c's and vsock/'s global hooks to it.
 */
#ifndef RELAY_RELAY_H
#define RELAY_RELAY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "relay/conf.h"
#include "relay/route.h"

struct control;
struct relay;

struct relay_ops {
	/* A route made and started (route_start): NULL only when out of memory. */
	struct route *(*route_start)(uv_loop_t *loop, const struct route_config *cfg);
	/* The route closes and frees itself (route_stop). */
	void (*route_stop)(struct route *r);
	/* An unchanged route kept across a reload: one not started tries again
	 * now (route_retry_now). */
	void (*route_keep)(struct route *r);
	/* Hold or let go a virtio device (vsock_virtio_acquire, _release). */
	int (*device_acquire)(uv_loop_t *loop, const struct vsock_target *t, char *err,
			      size_t errlen);
	void (*device_release)(const struct vsock_target *t);
	/* Give the devices exactly these hybrid sockets: how many failed
	 * (vsock_virtio_set_hybrid). */
	int (*set_hybrid)(const struct vsock_virtio_hybrid *h, size_t n);
	/* The control socket (control_start, control_stop). */
	int (*control_start)(struct relay *rl, const char *path, mode_t mode, uid_t uid,
			     gid_t gid, struct control **out);
	void (*control_stop)(struct control *c);
};

struct relay {
	const struct relay_ops *ops;
	uv_loop_t *loop;
	struct relay_config cfg;
	const char *config_path;        /* NULL: routes from the command line only */
	struct route_config cli_route;
	int have_cli_route;             /* cli_route is added to every configuration */
	const char *control_override;   /* --control: replaces the file's, NULL if none */
	struct route *routes;
	struct control *control;
	uint64_t started_ms;
};

/* An empty relay using OPS. */
void relay_init(struct relay *rl, const struct relay_ops *ops);
/* Read the configuration into CFG: rl->config_path, if any, then the
 * command line's route and control socket. 0, or -1 with ERR set (CFG then
 * holds nothing). */
int relay_load_config(const struct relay *rl, struct relay_config *cfg, char *err,
		      size_t errlen);
/* Start rl->cfg on LOOP: the control socket (owned as configured), every
 * route, then become the configured user. Returns how many routes and
 * hybrid sockets did not start (each logged; they retry by themselves), or
 * -1: the relay cannot run (logged) and is stopped already; run the loop
 * so its handles close, then relay_free(). */
int relay_start(struct relay *rl, uv_loop_t *loop);
/* Bring the running routes in line with rl->cfg (see above). Returns how
 * many routes and hybrid sockets did not start. */
int relay_apply(struct relay *rl);
/* Re-read the configuration file and apply it. -1 if it was rejected
 * (ERR says why; nothing changed), else as relay_apply(). Without a
 * configuration file there is nothing to re-read: 0. */
int relay_reload(struct relay *rl, char *err, size_t errlen);
/* A route that started on a retry (route.c's started callback): a virtio
 * route's device may be new, and its hybrid socket with it. */
void relay_route_started(struct relay *rl, struct route *r);
/* One short line for the service manager (STATUS=): "3 routes: 2 serving,
 * 1 guest down, 0 not started", and "; 1 USB gadget not bound" when a USB
 * front's gadget is not bound to a UDC. A route serves when it started and
 * its guest is not known to be down. */
void relay_summary(const struct relay *rl, char *buf, size_t len);
void relay_stop(struct relay *rl);
/* Free rl->cfg, once stopped and the loop has closed the routes. */
void relay_free(struct relay *rl);

#endif
