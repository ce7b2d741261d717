/*
 * main.c - the adbd-relay program: command line, configuration, signals
 * (SIGTERM/SIGINT stop, SIGHUP reloads), and the route set across reloads.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "control.h"
#include "log.h"
#include "notify.h"
#include "privdrop.h"
#include "relay.h"
#include "tap.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: adbd-relay [-c FILE] [--front SPEC --target SPEC [--name NAME]] [options]\n"
		"  -c, --config FILE      routes and settings, see adbd-relay.conf(5)\n"
		"  -f, --front SPEC       one route's front: tcp:ADDRESS:PORT\n"
		"  -t, --target SPEC      one route's target: vsock:CID:PORT, hybrid:PATH:PORT, unix:PATH,\n"
		"                         virtio:SOCKET:CID:PORT or tcp:HOST:PORT (HOST numeric or localhost)\n"
		"  -n, --name NAME        that route's name (default: default)\n"
		"  -b, --buffer SIZE      that route's buffer per direction (default 1M)\n"
		"  -s, --control PATH     control socket (default /run/adbd-relay/control.sock)\n"
		"  -l, --log-level LEVEL  error, warn, notice, info (default) or debug\n"
		"      --trace            log one line per adb frame\n"
		"      --syslog           log to syslog instead of stderr\n"
		"      --check            check the configuration and exit\n"
		"  -h, --help             this text\n"
		"  -V, --version          print the version\n");
}

static struct route *find_route(struct route *list, const char *name)
{
	for (; list; list = list->next)
		if (strcmp(list->cfg.name, name) == 0)
			return list;
	return NULL;
}

/* Bring the running routes in line with rl->cfg: an unchanged route stays
 * (one not started tries again now), a changed one is replaced, a removed
 * one stops, a new one starts. Returns how many routes, and hybrid sockets,
 * are not started (each logged with its reason; the routes retry by
 * themselves, except one that could not even be made: out of memory). */
static int apply_routes(struct relay *rl)
{
	struct route *old = rl->routes, *kept = NULL, *r, *next, **tail;
	char err[256];
	int failures = 0;
	int held[CONFIG_MAX_ROUTES];

	rl->routes = NULL;
	for (size_t i = 0; i < rl->cfg.nroutes; i++) {
		const struct route_config *rc = &rl->cfg.routes[i];
		struct route **pp;

		r = find_route(old, rc->name);
		if (r != NULL && route_config_equal(&r->cfg, rc)) {
			/* unlink from old, keep running */
			for (pp = &old; *pp != r; pp = &(*pp)->next)
				;
			*pp = r->next;
			r->next = kept;
			kept = r;
		}
	}
	/* virtio devices named by the new configuration outlive the old
	 * routes that held them, so a restarted route keeps its VMM */
	for (size_t i = 0; i < rl->cfg.nroutes; i++)
		held[i] = rl->cfg.routes[i].target.kind == VSOCK_VIRTIO &&
			  vsock_virtio_acquire(rl->loop, &rl->cfg.routes[i].target, err,
					       sizeof(err)) == 0;
	/* their hybrid sockets: the VMM connections are not touched */
	failures += vsock_virtio_set_hybrid(rl->cfg.hybrid, rl->cfg.nhybrid);
	for (r = old; r; r = next) {
		next = r->next;
		route_stop(r);
	}
	tail = &rl->routes;
	for (size_t i = 0; i < rl->cfg.nroutes; i++) {
		const struct route_config *rc = &rl->cfg.routes[i];

		r = find_route(kept, rc->name);
		if (r != NULL) {
			struct route **pp;
			for (pp = &kept; *pp != r; pp = &(*pp)->next)
				;
			*pp = r->next;
			route_retry_now(r);
		} else if ((r = route_start(rl->loop, rc)) == NULL) {
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
			vsock_virtio_release(&rl->cfg.routes[i].target);
	return failures;
}

static int load_config(struct relay *rl, struct relay_config *cfg)
{
	char err[512];

	config_init(cfg);
	if (rl->config_path != NULL && config_load(cfg, rl->config_path, err, sizeof(err)) != 0) {
		log_error("configuration: %s", err);
		return -1;
	}
	if (rl->have_cli_route && config_add_route(cfg, &rl->cli_route, err, sizeof(err)) != 0) {
		log_error("configuration: %s", err);
		config_free(cfg);
		return -1;
	}
	if (cfg->nroutes == 0) {
		log_error("configuration: no routes");
		config_free(cfg);
		return -1;
	}
	return 0;
}

int relay_start_routes(struct relay *rl)
{
	return apply_routes(rl);
}

void relay_reload(struct relay *rl)
{
	struct relay_config next;

	if (rl->config_path == NULL) {
		log_notice("reload: no configuration file, nothing to do");
		return;
	}
	if (load_config(rl, &next) != 0) {
		log_error("reload: keeping the running configuration");
		return;
	}
	if (strcmp(next.control_path, rl->cfg.control_path) != 0)
		log_warn("reload: a new control socket path takes effect on restart");
	if (strcmp(next.user, rl->cfg.user) != 0 || strcmp(next.group, rl->cfg.group) != 0)
		log_warn("reload: a new user or group takes effect on restart");
	snprintf(next.control_path, sizeof(next.control_path), "%s", rl->cfg.control_path);
	config_free(&rl->cfg);
	rl->cfg = next;
	log_set_level(rl->cfg.log_level);
	log_set_trace(rl->cfg.trace || log_trace_enabled());
	int failures = apply_routes(rl);
	log_notice("reload: %zu route(s) configured, %d failed to start", rl->cfg.nroutes, failures);
}

void relay_stop(struct relay *rl)
{
	struct route *r, *next;

	for (r = rl->routes; r; r = next) {
		next = r->next;
		route_stop(r);
	}
	rl->routes = NULL;
	if (rl->control != NULL)
		control_stop(rl->control);
	rl->control = NULL;
}

static uv_signal_t sig_term, sig_int, sig_hup;
static uv_timer_t watchdog;

/* a VMM can repeat a line at will: each kind of line (cause) is rate-limited
 * per device */
static void virtio_log_line(const char *path, int warn, const void *cause, const char *msg)
{
	log_limited(warn ? LOG_LVL_WARN : LOG_LVL_INFO, path, cause, "virtio %s: %s", path, msg);
}

/* virtio packet trace lines belong to the first route whose target is the
 * device */
static const struct relay *the_relay;

static const char *route_of_device(const char *path)
{
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

/* A route that started on a retry: a virtio route's device may be new, and
 * its hybrid socket with it. */
static void on_route_started(struct route *r)
{
	if (r->cfg.target.kind == VSOCK_VIRTIO)
		vsock_virtio_set_hybrid(the_relay->cfg.hybrid, the_relay->cfg.nhybrid);
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct relay *rl = h->data;

	if (signum == SIGHUP) {
		log_notice("SIGHUP: reloading %s", rl->config_path ? rl->config_path : "(none)");
		notify_send("RELOADING=1");
		relay_reload(rl);
		notify_send("READY=1");
		return;
	}
	log_notice("%s: shutting down", strsignal(signum));
	notify_send("STOPPING=1");
	relay_stop(rl);
	uv_close((uv_handle_t *)&sig_term, NULL);
	uv_close((uv_handle_t *)&sig_int, NULL);
	uv_close((uv_handle_t *)&sig_hup, NULL);
	uv_close((uv_handle_t *)&watchdog, NULL);
}

static void watch_signal(uv_loop_t *loop, uv_signal_t *h, int signum, struct relay *rl)
{
	uv_signal_init(loop, h);
	h->data = rl;
	uv_signal_start(h, on_signal, signum);
}

/* The control socket's owner and group, as configured. 0 or a uv error. */
static int own_control_socket(const struct relay_config *cfg)
{
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;
	char err[160];

	if (cfg->control_owner[0] == '\0' && cfg->control_group[0] == '\0')
		return 0;
	if ((cfg->control_owner[0] != '\0' &&
	     priv_user_id(cfg->control_owner, &uid, NULL, err, sizeof(err)) != 0) ||
	    (cfg->control_group[0] != '\0' &&
	     priv_group_id(cfg->control_group, &gid, err, sizeof(err)) != 0)) {
		log_error("control socket: %s", err);
		return UV_EINVAL;
	}
	if (chown(cfg->control_path, uid, gid) != 0) {
		int e = errno;

		log_error("control socket %s: chown: %s", cfg->control_path, strerror(e));
		return uv_translate_sys_error(e);
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

static int parse_args(int argc, char **argv, struct relay *rl, int *check_only,
		      const char **control, int *use_syslog, const char **level)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "front", required_argument, NULL, 'f' },
		{ "target", required_argument, NULL, 't' },
		{ "name", required_argument, NULL, 'n' },
		{ "buffer", required_argument, NULL, 'b' },
		{ "control", required_argument, NULL, 's' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "trace", no_argument, NULL, 'T' },
		{ "syslog", no_argument, NULL, 'S' },
		{ "check", no_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	const char *front = NULL, *target = NULL, *name = "default", *buffer = NULL;
	char err[256];
	int c;

	while ((c = getopt_long(argc, argv, "c:f:t:n:b:s:l:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'c': rl->config_path = optarg; break;
		case 'f': front = optarg; break;
		case 't': target = optarg; break;
		case 'n': name = optarg; break;
		case 'b': buffer = optarg; break;
		case 's': *control = optarg; break;
		case 'l': *level = optarg; break;
		case 'T': log_set_trace(1); break;
		case 'S': *use_syslog = 1; break;
		case 'k': *check_only = 1; break;
		case 'h': usage(stdout); exit(0);
		case 'V': printf("adbd-relay %s\n", PACKAGE_VERSION); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (optind != argc || (front == NULL) != (target == NULL) ||
	    (front == NULL && rl->config_path == NULL)) {
		usage(stderr);
		return -1;
	}
	if (front == NULL)
		return 0;
	config_init(&rl->cfg);
	config_route_defaults(&rl->cfg, &rl->cli_route, name);
	if (front_spec_parse(front, &rl->cli_route.front, err, sizeof(err)) != 0 ||
	    vsock_target_parse(target, &rl->cli_route.target, err, sizeof(err)) != 0) {
		fprintf(stderr, "adbd-relay: %s\n", err);
		return -1;
	}
	if (buffer != NULL && (config_parse_size(buffer, &rl->cli_route.buffer) != 0 ||
			       rl->cli_route.buffer < 64 * 1024)) {
		fprintf(stderr, "adbd-relay: --buffer takes a size of at least 64K\n");
		return -1;
	}
	rl->cli_route.has_front = rl->cli_route.has_target = 1;
	rl->have_cli_route = 1;
	return 0;
}

int main(int argc, char **argv)
{
	struct relay rl;
	const char *control = NULL, *level = NULL;
	int check_only = 0, use_syslog = 0, not_started, rc;
	enum log_level lvl;

	memset(&rl, 0, sizeof(rl));
	if (parse_args(argc, argv, &rl, &check_only, &control, &use_syslog, &level) != 0)
		return 2;
	log_init("adbd-relay", use_syslog);
	if (load_config(&rl, &rl.cfg) != 0)
		return 2;
	if (level != NULL) {
		if (log_level_parse(level, &lvl) != 0) {
			fprintf(stderr, "adbd-relay: unknown log level '%s'\n", level);
			return 2;
		}
		rl.cfg.log_level = lvl;
	}
	if (control != NULL)
		snprintf(rl.cfg.control_path, sizeof(rl.cfg.control_path), "%s", control);
	if (rl.cfg.group[0] != '\0' && rl.cfg.user[0] == '\0') {
		fprintf(stderr, "adbd-relay: configuration: group needs user\n");
		return 2;
	}
	if (check_only) {
		printf("configuration ok: %zu route(s)\n", rl.cfg.nroutes);
		config_free(&rl.cfg);
		return 0;
	}
	log_set_level(rl.cfg.log_level);
	if (rl.cfg.trace)
		log_set_trace(1);
	signal(SIGPIPE, SIG_IGN);
	srand((unsigned)time(NULL) ^ (unsigned)getpid());

	rl.loop = uv_default_loop();
	vsock_virtio_set_log(virtio_log_line);
	the_relay = &rl;
	vsock_virtio_set_trace(virtio_trace_wanted, virtio_trace_line);
	rl.started_ms = now_ms();
	rc = control_start(&rl, rl.cfg.control_path, rl.cfg.control_mode, &rl.control);
	if (rc == 0)
		rc = own_control_socket(&rl.cfg);
	if (rc != 0) {
		log_error("control socket %s: %s", rl.cfg.control_path, uv_strerror(rc));
		rl.control = NULL;
		relay_stop(&rl);
		uv_run(rl.loop, UV_RUN_DEFAULT);
		return 1;
	}
	/* a route that cannot start does not stop the others: it is reported
	 * and retries by itself */
	route_set_started_cb(on_route_started);
	not_started = relay_start_routes(&rl);
	if (become_configured_user(&rl.cfg) != 0) {
		relay_stop(&rl);
		uv_run(rl.loop, UV_RUN_DEFAULT);
		config_free(&rl.cfg);
		return 1;
	}
	watch_signal(rl.loop, &sig_term, SIGTERM, &rl);
	watch_signal(rl.loop, &sig_int, SIGINT, &rl);
	watch_signal(rl.loop, &sig_hup, SIGHUP, &rl);
	log_notice("started: %zu route(s) configured, %d not started, control %s", rl.cfg.nroutes,
		   not_started, rl.cfg.control_path);
	/* every route has been tried: each that started listens or has its USB
	 * descriptors written, so init may bind gadgets and start clients */
	notify_send("READY=1");
	uint64_t wd_ms = notify_watchdog_start(rl.loop, &watchdog);
	if (wd_ms > 0)
		log_info("watchdog: %" PRIu64 " ms, pinging every %" PRIu64 " ms", wd_ms, wd_ms / 2);
	uv_run(rl.loop, UV_RUN_DEFAULT);
	uv_loop_close(rl.loop);
	config_free(&rl.cfg);
	log_notice("stopped");
	return 0;
}
