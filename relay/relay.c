/* SPDX-License-Identifier: Apache-2.0 */
/*
 * relay.c - the daemon's state across its life: start the control socket
 * and the routes, bring the routes in line with a new configuration
 * (reload), stop. The contract is in relay.h.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "relay/relay.h"

#include "relay/obs/obs.h"
#include "relay/sys/sys.h"

void relay_init(struct relay *rl, const struct relay_ops *ops)
{
	memset(rl, 0, sizeof(*rl));
	rl->ops = ops;
	config_init(&rl->cfg);
}

int relay_load_config(const struct relay *rl, struct relay_config *cfg, char *err,
		      size_t errlen)
{
	config_init(cfg);
	if (rl->config_path != NULL && config_load(cfg, rl->config_path, err, errlen) != 0)
		return -1;
	if ((rl->have_cli_route && config_add_route(cfg, &rl->cli_route, err, errlen) != 0) ||
	    (rl->control_override != NULL &&
	     config_set_control(cfg, rl->control_override, err, errlen) != 0) ||
	    config_check_sockets(cfg, err, errlen) != 0) {
		config_free(cfg);
		return -1;
	}
	if (cfg->nroutes == 0) {
		snprintf(err, errlen, "no routes");
		config_free(cfg);
		return -1;
	}
	return 0;
}

static struct route *find_route(struct route *list, const char *name)
{
	for (; list; list = list->next)
		if (strcmp(list->cfg.name, name) == 0)
			return list;
	return NULL;
}

static void unlink_route(struct route **list, struct route *r)
{
	struct route **pp;

	for (pp = list; *pp != r; pp = &(*pp)->next)
		;
	*pp = r->next;
}

int relay_apply(struct relay *rl)
{
	const struct relay_ops *ops = rl->ops;
	struct route *old = rl->routes, *kept = NULL, *r, *next, **tail;
	char err[256];
	int failures = 0;
	int held[CONFIG_MAX_ROUTES];

	rl->routes = NULL;
	/* the unchanged routes leave the old list and keep running */
	for (size_t i = 0; i < rl->cfg.nroutes; i++) {
		const struct route_config *rc = &rl->cfg.routes[i];

		r = find_route(old, rc->name);
		if (r != NULL && route_config_equal(&r->cfg, rc)) {
			unlink_route(&old, r);
			r->next = kept;
			kept = r;
		}
	}
	/* virtio devices named by the new configuration outlive the old
	 * routes that held them, so a restarted route keeps its VMM */
	for (size_t i = 0; i < rl->cfg.nroutes; i++)
		held[i] = rl->cfg.routes[i].target.kind == VSOCK_VIRTIO &&
			  ops->device_acquire(rl->loop, &rl->cfg.routes[i].target, err,
					      sizeof(err)) == 0;
	/* their hybrid sockets: the VMM connections are not touched */
	failures += ops->set_hybrid(rl->cfg.hybrid, rl->cfg.nhybrid);
	/* every stop before the first start: a new route may take an old
	 * one's front */
	for (r = old; r; r = next) {
		next = r->next;
		ops->route_stop(r);
	}
	tail = &rl->routes;
	for (size_t i = 0; i < rl->cfg.nroutes; i++) {
		const struct route_config *rc = &rl->cfg.routes[i];

		r = find_route(kept, rc->name);
		if (r != NULL) {
			unlink_route(&kept, r);
			ops->route_keep(r);
		} else if ((r = ops->route_start(rl->loop, rc)) == NULL) {
			log_error("route %s: not started: out of memory", rc->name);
			failures++;
			continue;
		}
		r->next = NULL;
		*tail = r;
		tail = &r->next;
		if (r->state == ROUTE_NOT_STARTED)
			failures++;
	}
	for (size_t i = 0; i < rl->cfg.nroutes; i++)
		if (held[i])
			ops->device_release(&rl->cfg.routes[i].target);
	return failures;
}

int relay_reload(struct relay *rl, char *err, size_t errlen)
{
	struct relay_config next;
	int failures;

	if (errlen > 0)
		err[0] = '\0';
	if (rl->config_path == NULL) {
		log_notice("reload: no configuration file, nothing to do");
		return 0;
	}
	if (relay_load_config(rl, &next, err, errlen) != 0) {
		log_error("configuration: %s", err);
		log_error("reload: keeping the running configuration");
		return -1;
	}
	if (strcmp(next.control_path, rl->cfg.control_path) != 0)
		log_warn("reload: a new control socket path takes effect on restart");
	if (strcmp(next.user, rl->cfg.user) != 0 || strcmp(next.group, rl->cfg.group) != 0)
		log_warn("reload: a new user or group takes effect on restart");
	snprintf(next.control_path, sizeof(next.control_path), "%s", rl->cfg.control_path);
	/* against the control socket that stays */
	if (config_check_sockets(&next, err, errlen) != 0) {
		log_error("configuration: %s", err);
		log_error("reload: keeping the running configuration");
		config_free(&next);
		return -1;
	}
	config_free(&rl->cfg);
	rl->cfg = next;
	log_set_level(rl->cfg.log_level);
	log_set_trace(rl->cfg.trace || log_trace_enabled());
	failures = relay_apply(rl);
	log_notice("reload: %zu route(s) configured, %d failed to start", rl->cfg.nroutes, failures);
	return failures;
}

void relay_route_started(struct relay *rl, struct route *r)
{
	if (r->cfg.target.kind == VSOCK_VIRTIO)
		rl->ops->set_hybrid(rl->cfg.hybrid, rl->cfg.nhybrid);
}

void relay_summary(const struct relay *rl, char *buf, size_t len)
{
	unsigned n = 0, serving = 0, down = 0, not_started = 0, unbound = 0;
	int w;

	for (const struct route *r = rl->routes; r; r = r->next) {
		n++;
		if (r->state != ROUTE_STARTED)
			not_started++;
		else if (r->guest == GUEST_DOWN)
			down++;
		else
			serving++;
		if (r->cfg.front.kind == FRONT_USB && r->usb_open && !r->usb.bound)
			unbound++;
	}
	w = snprintf(buf, len, "%u route%s: %u serving, %u guest down, %u not started", n,
		     n == 1 ? "" : "s", serving, down, not_started);
	if (unbound > 0 && w >= 0 && (size_t)w < len)
		snprintf(buf + w, len - (size_t)w, "; %u USB gadget%s not bound", unbound,
			 unbound == 1 ? "" : "s");
}

void relay_stop(struct relay *rl)
{
	struct route *r, *next;

	for (r = rl->routes; r; r = next) {
		next = r->next;
		rl->ops->route_stop(r);
	}
	rl->routes = NULL;
	if (rl->control != NULL)
		rl->ops->control_stop(rl->control);
	rl->control = NULL;
}

void relay_free(struct relay *rl)
{
	config_free(&rl->cfg);
}

/* ---- the process-wide hooks of route.c and vsock/, wired by relay_start ---- */

static struct relay *the_relay;

static void on_route_started(struct route *r)
{
	if (the_relay != NULL)
		relay_route_started(the_relay, r);
}

/* a VMM can repeat a line at will: each kind of line (cause) is rate-limited
 * per device */
static void virtio_log_line(const char *path, int warn, const void *cause, const char *msg)
{
	log_limited(warn ? LOG_LVL_WARN : LOG_LVL_INFO, path, cause, "virtio %s: %s", path, msg);
}

/* virtio packet trace lines belong to the first route whose target is the
 * device */
static const char *route_of_device(const char *path)
{
	if (the_relay == NULL)
		return NULL;
	for (const struct route *r = the_relay->routes; r; r = r->next)
		if (r->cfg.target.kind == VSOCK_VIRTIO && strcmp(r->cfg.target.path, path) == 0)
			return r->cfg.name;
	return NULL;
}

static int virtio_trace_wanted(const char *path)
{
	const char *route = route_of_device(path);

	return route != NULL && tap_wanted(route);
}

static void virtio_trace_line(const char *path, const char *text)
{
	const char *route = route_of_device(path);

	if (route != NULL)
		tap_line(route, "route=%s virtio %s vsock %s", route, path, text);
}

/* ---- start ---- */

/* The control socket's owner and group, as configured ((uid_t)-1 and
 * (gid_t)-1 where none is). 0 or a uv error. */
static int control_owner_ids(const struct relay_config *cfg, uid_t *uid, gid_t *gid)
{
	char err[160];

	*uid = (uid_t)-1;
	*gid = (gid_t)-1;
	if ((cfg->control_owner[0] != '\0' &&
	     priv_user_id(cfg->control_owner, uid, NULL, err, sizeof(err)) != 0) ||
	    (cfg->control_group[0] != '\0' &&
	     priv_group_id(cfg->control_group, gid, err, sizeof(err)) != 0)) {
		log_error("control socket: %s", err);
		return UV_EINVAL;
	}
	return 0;
}

/* Everything that needs root is open: become the configured user (a no-op
 * when the service manager started the relay as that user already). */
static int become_configured_user(const struct relay_config *cfg)
{
	uid_t uid, ruid, euid, suid;
	gid_t gid, rgid, egid, sgid;
	char err[160];

	if (cfg->user[0] == '\0')
		return 0;
	if (priv_user_id(cfg->user, &uid, &gid, err, sizeof(err)) != 0 ||
	    (cfg->group[0] != '\0' && priv_group_id(cfg->group, &gid, err, sizeof(err)) != 0)) {
		log_error("cannot run as %s: %s", cfg->user, err);
		return -1;
	}
	if (uid != 0 && getresuid(&ruid, &euid, &suid) == 0 && getresgid(&rgid, &egid, &sgid) == 0 &&
	    ruid == uid && euid == uid && suid == uid && rgid == gid && egid == gid && sgid == gid) {
		log_notice("running as user %s already (uid %u, gid %u)", cfg->user, (unsigned)uid,
			   (unsigned)gid);
		return 0;
	}
	if (priv_drop(cfg->user, cfg->group[0] ? cfg->group : NULL, err, sizeof(err)) != 0) {
		log_error("cannot run as %s: %s", cfg->user, err);
		return -1;
	}
	log_notice("running as user %s (uid %u, gid %u)", cfg->user, (unsigned)getuid(),
		   (unsigned)getgid());
	return 0;
}

int relay_start(struct relay *rl, uv_loop_t *loop)
{
	int rc, not_started;
	uid_t uid;
	gid_t gid;

	rl->loop = loop;
	the_relay = rl;
	vsock_virtio_set_log(virtio_log_line);
	vsock_virtio_set_trace(virtio_trace_wanted, virtio_trace_line);
	rl->started_ms = clock_mono_ms();
	rc = control_owner_ids(&rl->cfg, &uid, &gid);
	if (rc == 0)
		rc = rl->ops->control_start(rl, rl->cfg.control_path, rl->cfg.control_mode, uid,
					    gid, &rl->control);
	if (rc != 0) {
		/* both say why themselves */
		relay_stop(rl);
		return -1;
	}
	/* a route that cannot start does not stop the others: it is reported
	 * and retries by itself */
	route_set_started_cb(on_route_started);
	not_started = relay_apply(rl);
	if (become_configured_user(&rl->cfg) != 0) {
		relay_stop(rl);
		return -1;
	}
	return not_started;
}
