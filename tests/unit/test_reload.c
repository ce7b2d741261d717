/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_reload.c - the daemon's start, reload and stop (relay.c) against
 * fake route, virtio device and control socket operations that record
 * every call: which routes a reload keeps, starts and stops, and in what
 * order; a bad file changes nothing and says why; renames and limit
 * changes restart; global settings; the same file twice is a no-op; stop
 * lets everything go. No socket is made.
 */
#include <check.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "relay/relay.h"
#include "relay/sys/sys.h"
#include "tests/unit/unit.h"

/* ---- the fakes ---- */

static char calls[4096];       /* "start a;stop b;..." */
static int live_routes;        /* made by fake_start, not yet stopped */
static int starts, stops;
static int devices_held;       /* acquired and not released */
static int controls_open;
static char not_started_name[ROUTE_NAME_MAX]; /* fake_start leaves it NOT_STARTED */
static char oom_name[ROUTE_NAME_MAX];         /* fake_start fails for it */
static int keep_starts;        /* fake_keep starts a NOT_STARTED route */
static int hybrid_failures;    /* what fake_set_hybrid returns */
static struct vsock_virtio_hybrid hybrid_now[CONFIG_MAX_ROUTES];
static size_t nhybrid_now;
static char control_marker;

static void record(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void record(const char *fmt, ...)
{
	size_t n = strlen(calls);
	va_list ap;

	if (n > 0 && n < sizeof(calls) - 1)
		calls[n++] = ';';
	va_start(ap, fmt);
	vsnprintf(calls + n, sizeof(calls) - n, fmt, ap);
	va_end(ap);
}

static struct route *fake_start(uv_loop_t *loop, const struct route_config *cfg)
{
	struct route *r;

	(void)loop;
	record("start %s", cfg->name);
	if (strcmp(cfg->name, oom_name) == 0)
		return NULL;
	r = calloc(1, sizeof(*r));
	ck_assert_ptr_nonnull(r);
	r->cfg = *cfg;
	r->state = strcmp(cfg->name, not_started_name) == 0 ? ROUTE_NOT_STARTED : ROUTE_STARTED;
	live_routes++;
	starts++;
	return r;
}

static void fake_stop(struct route *r)
{
	record("stop %s", r->cfg.name);
	live_routes--;
	stops++;
	free(r);
}

static void fake_keep(struct route *r)
{
	record("keep %s", r->cfg.name);
	if (keep_starts && r->state == ROUTE_NOT_STARTED)
		r->state = ROUTE_STARTED;
}

static int fake_acquire(uv_loop_t *loop, const struct vsock_target *t, char *err, size_t len)
{
	(void)loop, (void)err, (void)len;
	record("acquire %s", t->path);
	devices_held++;
	return 0;
}

static void fake_release(const struct vsock_target *t)
{
	record("release %s", t->path);
	devices_held--;
}

static int fake_set_hybrid(const struct vsock_virtio_hybrid *h, size_t n)
{
	record("hybrid %zu", n);
	memcpy(hybrid_now, h, n * sizeof(*h));
	nhybrid_now = n;
	return hybrid_failures;
}

static int control_fails;       /* 1: fake_control_start fails */

static int fake_control_start(struct relay *rl, const char *path, mode_t mode, uid_t uid,
			      gid_t gid, struct control **out)
{
	(void)rl;
	if (uid == (uid_t)-1 && gid == (gid_t)-1)
		record("control-start %s %04o", path, (unsigned)mode);
	else
		record("control-start %s %04o %d:%d", path, (unsigned)mode, (int)uid, (int)gid);
	if (control_fails)
		return UV_EPERM;
	controls_open++;
	*out = (struct control *)&control_marker;
	return 0;
}

static void fake_control_stop(struct control *c)
{
	ck_assert_ptr_eq(c, (struct control *)&control_marker);
	record("control-stop");
	controls_open--;
}

static const struct relay_ops fake_ops = {
	.route_start = fake_start,
	.route_stop = fake_stop,
	.route_keep = fake_keep,
	.device_acquire = fake_acquire,
	.device_release = fake_release,
	.set_hybrid = fake_set_hybrid,
	.control_start = fake_control_start,
	.control_stop = fake_control_stop,
};

/* ---- the relay under test, its file, its log ---- */

static struct relay rl;
static char dir[64], conf_path[96], log_path[96], err[512];

static void setup(void)
{
	int fd;

	snprintf(dir, sizeof(dir), "/tmp/test_reload.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(conf_path, sizeof(conf_path), "%s/relay.conf", dir);
	snprintf(log_path, sizeof(log_path), "%s/log", dir);
	/* the relay's log lines, to read back */
	fd = open(log_path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	fflush(stderr);
	ck_assert_int_eq(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	close(fd);
	log_init("test_reload", 0);
	log_set_level(LOG_LVL_INFO);
	log_set_trace(0);
	calls[0] = '\0';
	live_routes = starts = stops = devices_held = controls_open = 0;
	not_started_name[0] = oom_name[0] = '\0';
	keep_starts = hybrid_failures = 0;
	nhybrid_now = 0;
	relay_init(&rl, &fake_ops);
	rl.config_path = conf_path;
	err[0] = '\0';
}

static void teardown(void)
{
	relay_stop(&rl);
	relay_free(&rl);
	unlink(conf_path);
	unlink(log_path);
	rmdir(dir);
}

static void write_conf(const char *text)
{
	FILE *f = fopen(conf_path, "w");

	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

/* "route NAME { front tcp:127.0.0.1:PORT  target unix:/x  EXTRA }" */
static const char *route_text(const char *name, int port, const char *extra)
{
	static char bufs[8][256];
	static int next;
	char *b = bufs[next++ % 8];

	snprintf(b, sizeof(bufs[0]), "route %s {\n    front tcp:127.0.0.1:%d\n"
		 "    target unix:/run/%s.sock\n%s}\n", name, port, name, extra ? extra : "");
	return b;
}

static const char *log_text(void)
{
	static char text[16384];
	FILE *f;
	size_t n;

	fflush(stderr);
	f = fopen(log_path, "r");
	ck_assert_ptr_nonnull(f);
	n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = '\0';
	fclose(f);
	return text;
}

/* Load the file as main() does and apply it: the running set to reload. */
static int first_start(const char *text)
{
	write_conf(text);
	ck_assert_int_eq(relay_load_config(&rl, &rl.cfg, err, sizeof(err)), 0);
	int rc = relay_apply(&rl);
	calls[0] = '\0';
	starts = stops = 0;
	return rc;
}

static int reload(const char *text)
{
	write_conf(text);
	calls[0] = '\0';
	starts = stops = 0;
	return relay_reload(&rl, err, sizeof(err));
}

static struct route *nth(unsigned i)
{
	struct route *r = rl.routes;

	while (r != NULL && i-- > 0)
		r = r->next;
	return r;
}

static unsigned nrunning(void)
{
	unsigned n = 0;

	for (struct route *r = rl.routes; r; r = r->next)
		n++;
	return n;
}

static void assert_running(const char *names)
{
	char got[512] = "";

	for (struct route *r = rl.routes; r; r = r->next)
		snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%s",
			 got[0] ? " " : "", r->cfg.name);
	ck_assert_str_eq(got, names);
	ck_assert_int_eq(live_routes, (int)nrunning());
}

/* ---- the tests ---- */

/* The first start makes every route, in order, and nothing else. */
START_TEST(first_apply_starts_all)
{
	char text[1024];

	snprintf(text, sizeof(text), "%s%s", route_text("a", 6001, NULL), route_text("b", 6002, NULL));
	write_conf(text);
	ck_assert_int_eq(relay_load_config(&rl, &rl.cfg, err, sizeof(err)), 0);
	ck_assert_int_eq(relay_apply(&rl), 0);
	ck_assert_str_eq(calls, "hybrid 0;start a;start b");
	assert_running("a b");
}
END_TEST

/* Keep a and d, restart b (new target), stop c, start e: exactly those
 * calls, every stop before the first start, the kept routes the same
 * objects, the restarted one built from the new configuration. */
START_TEST(reload_add_remove_change_keep)
{
	char text[2048];
	struct route *a, *d;

	snprintf(text, sizeof(text), "%s%s%s%s", route_text("a", 6001, NULL),
		 route_text("b", 6002, NULL), route_text("c", 6003, NULL),
		 route_text("d", 6004, NULL));
	ck_assert_int_eq(first_start(text), 0);
	a = nth(0), d = nth(3);
	snprintf(text, sizeof(text),
		 "%s"
		 "route b {\n    front tcp:127.0.0.1:6002\n    target unix:/run/b2.sock\n}\n"
		 "%s%s",
		 route_text("a", 6001, NULL), route_text("d", 6004, NULL),
		 route_text("e", 6005, NULL));
	ck_assert_int_eq(reload(text), 0);
	ck_assert_str_eq(calls, "hybrid 0;stop b;stop c;keep a;start b;keep d;start e");
	assert_running("a b d e");
	ck_assert_ptr_eq(nth(0), a);
	ck_assert_ptr_eq(nth(2), d);
	ck_assert_str_eq(nth(1)->cfg.target.path, "/run/b2.sock");
	ck_assert_int_eq(starts, 2);
	ck_assert_int_eq(stops, 2);
	ck_assert_ptr_nonnull(strstr(log_text(), "reload: 4 route(s) configured, 0 failed to start"));
}
END_TEST

/* An unchanged route is never restarted: same object, its sessions and
 * counters as they were, however the file around it changed. */
START_TEST(unchanged_route_keeps_sessions)
{
	char text[1024];
	struct route *a;

	ck_assert_int_eq(first_start(route_text("a", 6001, NULL)), 0);
	a = nth(0);
	a->nsessions = 2;
	a->st.sessions = 7;
	a->st.bytes[DIR_TO_GUEST] = 12345;
	snprintf(text, sizeof(text), "# a comment now\nbuffer 512K\n%s%s",
		 route_text("a", 6001, "    buffer 1M\n"), route_text("b", 6002, NULL));
	ck_assert_int_eq(reload(text), 0);
	ck_assert_str_eq(calls, "hybrid 0;keep a;start b");
	ck_assert_ptr_eq(nth(0), a);
	ck_assert_uint_eq(a->nsessions, 2);
	ck_assert_uint_eq(a->st.sessions, 7);
	ck_assert_uint_eq(a->st.bytes[DIR_TO_GUEST], 12345);
	ck_assert_int_eq(stops, 0);
}
END_TEST

/* A kept route that had not started tries again now; how many did not
 * start is returned. */
START_TEST(kept_route_not_started_retries)
{
	char text[1024];
	struct route *a;

	snprintf(not_started_name, sizeof(not_started_name), "a");
	snprintf(text, sizeof(text), "%s%s", route_text("a", 6001, NULL), route_text("b", 6002, NULL));
	ck_assert_int_eq(first_start(text), 1);
	a = nth(0);
	ck_assert_int_eq(reload(text), 1);          /* still not started */
	ck_assert_str_eq(calls, "hybrid 0;keep a;keep b");
	keep_starts = 1;
	ck_assert_int_eq(reload(text), 0);          /* started on that retry */
	ck_assert_str_eq(calls, "hybrid 0;keep a;keep b");
	ck_assert_ptr_eq(nth(0), a);
	ck_assert_int_eq(a->state, ROUTE_STARTED);
}
END_TEST

/* A route that could not even be made is left out and counted; the next
 * reload makes it. */
START_TEST(route_out_of_memory)
{
	char text[1024];

	snprintf(oom_name, sizeof(oom_name), "b");
	snprintf(text, sizeof(text), "%s%s%s", route_text("a", 6001, NULL),
		 route_text("b", 6002, NULL), route_text("c", 6003, NULL));
	ck_assert_int_eq(first_start(text), 1);
	assert_running("a c");
	ck_assert_ptr_nonnull(strstr(log_text(), "route b: not started: out of memory"));
	oom_name[0] = '\0';
	ck_assert_int_eq(reload(text), 0);
	ck_assert_str_eq(calls, "hybrid 0;keep a;start b;keep c");
	assert_running("a b c");
}
END_TEST

static void assert_untouched(struct route *a, struct route *b)
{
	ck_assert_str_eq(calls, "");
	ck_assert_ptr_eq(nth(0), a);
	ck_assert_ptr_eq(nth(1), b);
	assert_running("a b");
	ck_assert_uint_eq(rl.cfg.nroutes, 2);
	ck_assert_str_eq(rl.cfg.routes[0].name, "a");
	ck_assert_str_eq(rl.cfg.routes[1].name, "b");
	ck_assert_str_eq(rl.cfg.control_path, "/run/adbd-relay/control.sock");
	ck_assert_int_eq(log_get_level(), LOG_LVL_INFO);
}

/* A file that does not load changes nothing (no call at all, the same
 * configuration, routes and log level) and says why, in the return, the
 * error and the log. */
START_TEST(bad_file_keeps_running_set)
{
	char text[1024];
	struct route *a, *b;

	snprintf(text, sizeof(text), "%s%s", route_text("a", 6001, NULL), route_text("b", 6002, NULL));
	ck_assert_int_eq(first_start(text), 0);
	a = nth(0), b = nth(1);

	/* the integration test's broken file */
	ck_assert_int_eq(reload("log-level debug\ncontrol /run/other.sock\nroute broken {\n"), -1);
	ck_assert_ptr_nonnull(strstr(err, "relay.conf:3: route broken is not closed"));
	assert_untouched(a, b);
	const char *log = log_text();
	ck_assert_ptr_nonnull(strstr(log, "configuration: "));
	ck_assert_ptr_nonnull(strstr(log, "relay.conf:3: route broken is not closed"));
	ck_assert_ptr_nonnull(strstr(log, "reload: keeping the running configuration"));

	/* no routes */
	ck_assert_int_eq(reload("log-level debug\n"), -1);
	ck_assert_str_eq(err, "no routes");
	assert_untouched(a, b);

	/* two routes on one front */
	snprintf(text, sizeof(text), "%s%s", route_text("a", 6001, NULL), route_text("c", 6001, NULL));
	ck_assert_int_eq(reload(text), -1);
	ck_assert_ptr_nonnull(strstr(err, "share a front address"));
	assert_untouched(a, b);

	/* the file is gone */
	unlink(conf_path);
	calls[0] = '\0';
	ck_assert_int_eq(relay_reload(&rl, err, sizeof(err)), -1);
	ck_assert_ptr_nonnull(strstr(err, conf_path));
	assert_untouched(a, b);

	/* and a good file after all that still reloads */
	ck_assert_int_eq(reload(route_text("a", 6001, NULL)), 0);
	ck_assert_str_eq(calls, "hybrid 0;stop b;keep a");
	ck_assert_ptr_eq(nth(0), a);
}
END_TEST

/* A renamed route is a new route: the old one stops before the new one,
 * on the same front, starts. */
START_TEST(rename_restarts_on_same_front)
{
	ck_assert_int_eq(first_start(route_text("a", 6001, NULL)), 0);
	nth(0)->nsessions = 1;
	ck_assert_int_eq(reload("route renamed {\n    front tcp:127.0.0.1:6001\n"
				"    target unix:/run/a.sock\n}\n"), 0);
	ck_assert_str_eq(calls, "hybrid 0;stop a;start renamed");
	assert_running("renamed");
	ck_assert_uint_eq(nth(0)->nsessions, 0);
	ck_assert_uint_eq(nth(0)->cfg.front.port, 6001);
}
END_TEST

/* Nothing is updated in place: a change to a route's buffer, limits,
 * timing or probe alone restarts that route with the new values; an
 * unchanged neighbour stays. */
START_TEST(limits_change_restarts)
{
	static const char *const changes[] = {
		"    buffer 2M\n", "    max-clients 9\n", "    max-streams 17\n",
		"    reconnect 10ms 3s\n", "    connect-timeout 9s\n", "    probe-interval 0\n",
		"    probe-mode adb\n",
	};
	char text[1024];

	snprintf(text, sizeof(text), "%s%s", route_text("a", 6001, NULL), route_text("keep", 6002, NULL));
	ck_assert_int_eq(first_start(text), 0);
	struct route *k = nth(1);
	for (size_t i = 0; i < sizeof(changes) / sizeof(changes[0]); i++) {
		snprintf(text, sizeof(text), "%s%s", route_text("a", 6001, changes[i]),
			 route_text("keep", 6002, NULL));
		ck_assert_int_eq(reload(text), 0);
		ck_assert_msg(strcmp(calls, "hybrid 0;stop a;start a;keep keep") == 0,
			      "change %s: calls %s", changes[i], calls);
		ck_assert_ptr_eq(nth(1), k);
		ck_assert(route_config_equal(&nth(0)->cfg, &rl.cfg.routes[0]));
		/* and back to the defaults: restarted again */
		snprintf(text, sizeof(text), "%s%s", route_text("a", 6001, NULL),
			 route_text("keep", 6002, NULL));
		ck_assert_int_eq(reload(text), 0);
		ck_assert_str_eq(calls, "hybrid 0;stop a;start a;keep keep");
	}
	snprintf(text, sizeof(text), "%s%s", route_text("a", 6001, "    buffer 2M\n"),
		 route_text("keep", 6002, NULL));
	ck_assert_int_eq(reload(text), 0);
	ck_assert_uint_eq(nth(0)->cfg.buffer, 2 * 1024 * 1024);
	/* a top-level default that changes a route's value restarts it too */
	snprintf(text, sizeof(text), "max-clients 3\n%s%s", route_text("a", 6001, "    buffer 2M\n"),
		 route_text("keep", 6002, "    max-clients 4\n"));
	ck_assert_int_eq(reload(text), 0);
	ck_assert_str_eq(calls, "hybrid 0;stop a;start a;keep keep");
	ck_assert_uint_eq(nth(0)->cfg.max_clients, 3);
}
END_TEST

/* Global settings: the log level is the file's (and back to the default
 * when the file drops it); trace, once on, stays on; a new control socket
 * path or user is warned about and not taken; none restarts a route or
 * the control socket. */
START_TEST(global_settings)
{
	const char *a = route_text("a", 6001, NULL);
	char text[1024];
	struct route *r;

	ck_assert_int_eq(first_start(a), 0);
	r = nth(0);
	snprintf(text, sizeof(text), "log-level debug\n%s", a);
	ck_assert_int_eq(reload(text), 0);
	ck_assert_int_eq(log_get_level(), LOG_LVL_DEBUG);
	ck_assert_str_eq(calls, "hybrid 0;keep a");
	snprintf(text, sizeof(text), "log-level warn\n%s", a);
	ck_assert_int_eq(reload(text), 0);
	ck_assert_int_eq(log_get_level(), LOG_LVL_WARN);
	ck_assert_int_eq(reload(a), 0);
	ck_assert_int_eq(log_get_level(), LOG_LVL_INFO);

	ck_assert_int_eq(log_trace_enabled(), 0);
	snprintf(text, sizeof(text), "trace on\n%s", a);
	ck_assert_int_eq(reload(text), 0);
	ck_assert_int_eq(log_trace_enabled(), 1);
	ck_assert_int_eq(reload(a), 0);
	ck_assert_int_eq(log_trace_enabled(), 1);

	snprintf(text, sizeof(text), "control /run/elsewhere.sock\ncontrol-mode 0666\n%s", a);
	ck_assert_int_eq(reload(text), 0);
	ck_assert_str_eq(calls, "hybrid 0;keep a");   /* no control-stop, no control-start */
	ck_assert_str_eq(rl.cfg.control_path, "/run/adbd-relay/control.sock");
	ck_assert_ptr_nonnull(strstr(log_text(),
				     "reload: a new control socket path takes effect on restart"));
	ck_assert_ptr_null(strstr(log_text(), "reload: a new user or group"));

	snprintf(text, sizeof(text), "user 0\n%s", a);
	ck_assert_int_eq(reload(text), 0);
	ck_assert_str_eq(calls, "hybrid 0;keep a");
	ck_assert_ptr_nonnull(strstr(log_text(), "reload: a new user or group takes effect on restart"));
	ck_assert_ptr_eq(nth(0), r);
}
END_TEST

/* The same file twice: every route kept, nothing started or stopped, the
 * same objects; the log says so. */
START_TEST(same_file_twice_is_noop)
{
	char text[1024];
	struct route *a, *b;

	snprintf(text, sizeof(text), "buffer 256K\n%s%s", route_text("a", 6001, "    max-clients 2\n"),
		 route_text("b", 6002, NULL));
	ck_assert_int_eq(first_start(text), 0);
	a = nth(0), b = nth(1);
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(reload(text), 0);
		ck_assert_str_eq(calls, "hybrid 0;keep a;keep b");
		ck_assert_int_eq(starts + stops, 0);
		ck_assert_ptr_eq(nth(0), a);
		ck_assert_ptr_eq(nth(1), b);
	}
	ck_assert_ptr_nonnull(strstr(log_text(), "reload: 2 route(s) configured, 0 failed to start"));
}
END_TEST

/* Without a configuration file there is nothing to re-read: the command
 * line's route stays. */
START_TEST(no_file_nothing_to_do)
{
	rl.config_path = NULL;
	config_route_defaults(&rl.cfg, &rl.cli_route, "cli");
	ck_assert_int_eq(front_spec_parse("tcp:127.0.0.1:6009", &rl.cli_route.front, err,
					  sizeof(err)), 0);
	ck_assert_int_eq(vsock_target_parse("unix:/run/x.sock", &rl.cli_route.target, err,
					    sizeof(err)), 0);
	rl.cli_route.has_front = rl.cli_route.has_target = 1;
	rl.have_cli_route = 1;
	ck_assert_int_eq(relay_load_config(&rl, &rl.cfg, err, sizeof(err)), 0);
	ck_assert_int_eq(relay_apply(&rl), 0);
	calls[0] = '\0';
	ck_assert_int_eq(relay_reload(&rl, err, sizeof(err)), 0);
	ck_assert_str_eq(calls, "");
	assert_running("cli");
	ck_assert_ptr_nonnull(strstr(log_text(), "reload: no configuration file, nothing to do"));
}
END_TEST

/* The command line's route is part of every configuration the file
 * reloads into: kept across reloads, and a file route may not take its
 * front. */
START_TEST(cli_route_survives_reload)
{
	config_route_defaults(&rl.cfg, &rl.cli_route, "cli");
	ck_assert_int_eq(front_spec_parse("tcp:127.0.0.1:6009", &rl.cli_route.front, err,
					  sizeof(err)), 0);
	ck_assert_int_eq(vsock_target_parse("unix:/run/x.sock", &rl.cli_route.target, err,
					    sizeof(err)), 0);
	rl.cli_route.has_front = rl.cli_route.has_target = 1;
	rl.have_cli_route = 1;
	ck_assert_int_eq(first_start(route_text("a", 6001, NULL)), 0);
	assert_running("a cli");
	struct route *cli = nth(1);
	ck_assert_int_eq(reload(route_text("b", 6002, NULL)), 0);
	ck_assert_str_eq(calls, "hybrid 0;stop a;start b;keep cli");
	ck_assert_ptr_eq(nth(1), cli);
	ck_assert_int_eq(reload(route_text("c", 6009, NULL)), -1);
	ck_assert_ptr_nonnull(strstr(err, "share a front address"));
	assert_running("b cli");
}
END_TEST

#define VSOCK_SOCK "/run/vm/vhost.sock"
#define VROUTE(port) "route v {\n    front tcp:127.0.0.1:6100\n    target virtio:" VSOCK_SOCK \
	":3:" #port "\n}\n"
#define HYBRID "virtio-hybrid " VSOCK_SOCK " /run/vm/hybrid.sock\n"

/* --control replaces the file's control path at every load: a reload of
 * an unchanged file says nothing of a new path, and no virtio-hybrid
 * socket may take the one the command line named. */
START_TEST(control_override_holds)
{
	char text[1024];

	rl.control_override = "/run/cli/control.sock";
	snprintf(text, sizeof(text), "control /run/file/control.sock\n%s",
		 route_text("a", 6001, NULL));
	ck_assert_int_eq(first_start(text), 0);
	ck_assert_str_eq(rl.cfg.control_path, "/run/cli/control.sock");
	ck_assert_int_eq(reload(text), 0);
	ck_assert_str_eq(rl.cfg.control_path, "/run/cli/control.sock");
	ck_assert_ptr_null(strstr(log_text(), "a new control socket path"));

	snprintf(text, sizeof(text), "virtio-hybrid " VSOCK_SOCK " /run/cli/control.sock\n%s",
		 VROUTE(5555));
	ck_assert_int_eq(reload(text), -1);
	ck_assert_ptr_nonnull(strstr(err, "/run/cli/control.sock is both the control socket and a "
				     "virtio-hybrid socket"));
	assert_running("a");
	/* a file that moves its control path cannot give the running one away */
	rl.control_override = NULL;
	snprintf(text, sizeof(text),
		 "control /run/other.sock\nvirtio-hybrid " VSOCK_SOCK " /run/cli/control.sock\n%s",
		 VROUTE(5555));
	ck_assert_int_eq(reload(text), -1);
	ck_assert_ptr_nonnull(strstr(err, "/run/cli/control.sock is both the control socket"));
	assert_running("a");
	rl.control_override = "run/relative.sock";
	ck_assert_int_eq(reload(route_text("a", 6001, NULL)), -1);
	ck_assert_ptr_nonnull(strstr(err, "--control takes an absolute socket path of at most 103"));
}
END_TEST

/* virtio: the device is held across the restart of its route (acquired
 * before the stop, released after the start), the hybrid sockets follow
 * the file exactly without touching a kept route, and a hybrid socket
 * that fails counts as not started. */
START_TEST(virtio_device_and_hybrid)
{
	ck_assert_int_eq(first_start(HYBRID VROUTE(5555)), 0);
	ck_assert_int_eq(devices_held, 0);
	ck_assert_uint_eq(nhybrid_now, 1);
	struct route *v = nth(0);

	/* the target's port changes: restart, the device held across */
	ck_assert_int_eq(reload(HYBRID VROUTE(5556)), 0);
	ck_assert_str_eq(calls, "acquire " VSOCK_SOCK ";hybrid 1;stop v;start v;release " VSOCK_SOCK);
	ck_assert_int_eq(devices_held, 0);
	v = nth(0);

	/* the hybrid socket goes: the route stays */
	ck_assert_int_eq(reload(VROUTE(5556)), 0);
	ck_assert_str_eq(calls, "acquire " VSOCK_SOCK ";hybrid 0;keep v;release " VSOCK_SOCK);
	ck_assert_uint_eq(nhybrid_now, 0);
	ck_assert_ptr_eq(nth(0), v);

	/* and comes back, on a new path, and fails */
	hybrid_failures = 1;
	ck_assert_int_eq(reload("virtio-hybrid " VSOCK_SOCK " /run/vm/h2.sock\n" VROUTE(5556)), 1);
	ck_assert_uint_eq(nhybrid_now, 1);
	ck_assert_str_eq(hybrid_now[0].path, "/run/vm/h2.sock");
	ck_assert_ptr_eq(nth(0), v);

	/* a non-virtio configuration holds no device */
	hybrid_failures = 0;
	ck_assert_int_eq(reload(route_text("a", 6001, NULL)), 0);
	ck_assert_str_eq(calls, "hybrid 0;stop v;start a");
	ck_assert_int_eq(devices_held, 0);
}
END_TEST

/* A route that starts on a retry: a virtio one re-applies the hybrid
 * sockets (its device may be new), another does not. */
START_TEST(route_started_on_retry)
{
	char text[1024];

	snprintf(text, sizeof(text), "%s%s%s", HYBRID, VROUTE(5555), route_text("a", 6001, NULL));
	ck_assert_int_eq(first_start(text), 0);
	relay_route_started(&rl, nth(1));
	ck_assert_str_eq(calls, "");
	relay_route_started(&rl, nth(0));
	ck_assert_str_eq(calls, "hybrid 1");
}
END_TEST

/* Start opens the control socket with the configured path and mode, then
 * the routes; stop lets every route, device and the socket go, and a
 * second stop does nothing. */
START_TEST(start_then_stop_releases_everything)
{
	char text[1024];

	snprintf(not_started_name, sizeof(not_started_name), "b");
	snprintf(text, sizeof(text), "control %s/c.sock\ncontrol-mode 0660\n%s%s%s%s", dir, HYBRID,
		 VROUTE(5555), route_text("a", 6001, NULL), route_text("b", 6002, NULL));
	write_conf(text);
	ck_assert_int_eq(relay_load_config(&rl, &rl.cfg, err, sizeof(err)), 0);
	ck_assert_int_eq(relay_start(&rl, uv_default_loop()), 1);   /* b did not start */
	char want[512];
	snprintf(want, sizeof(want), "control-start %s/c.sock 0660;acquire " VSOCK_SOCK
		 ";hybrid 1;start v;start a;start b;release " VSOCK_SOCK, dir);
	ck_assert_str_eq(calls, want);
	ck_assert_ptr_eq(rl.loop, uv_default_loop());
	ck_assert_int_eq(controls_open, 1);

	/* a reload in between: c comes, a goes */
	snprintf(text, sizeof(text), "control %s/c.sock\ncontrol-mode 0660\n%s%s%s%s", dir, HYBRID,
		 VROUTE(5555), route_text("b", 6002, NULL), route_text("c", 6003, NULL));
	ck_assert_int_eq(reload(text), 1);
	ck_assert_int_eq(live_routes, 3);

	calls[0] = '\0';
	relay_stop(&rl);
	ck_assert_str_eq(calls, "stop v;stop b;stop c;control-stop");
	ck_assert_int_eq(live_routes, 0);
	ck_assert_int_eq(devices_held, 0);
	ck_assert_int_eq(controls_open, 0);
	ck_assert_ptr_null(rl.routes);
	ck_assert_ptr_null(rl.control);
	calls[0] = '\0';
	relay_stop(&rl);
	ck_assert_str_eq(calls, "");
}
END_TEST

/* The configured owner and group go to control_start, which sets them
 * before the socket appears. When it cannot (here: the fake fails, as a
 * chown would), start fails and no route starts. */
START_TEST(start_control_not_owned)
{
	char text[1024], want[256];

	snprintf(text, sizeof(text), "control %s/c.sock\ncontrol-owner %u\ncontrol-group %u\n%s",
		 dir, (unsigned)getuid(), (unsigned)getgid(), route_text("a", 6001, NULL));
	write_conf(text);
	ck_assert_int_eq(relay_load_config(&rl, &rl.cfg, err, sizeof(err)), 0);
	control_fails = 1;
	ck_assert_int_eq(relay_start(&rl, uv_default_loop()), -1);
	control_fails = 0;
	snprintf(want, sizeof(want), "control-start %s/c.sock 0600 %d:%d", dir, (int)getuid(),
		 (int)getgid());
	ck_assert_str_eq(calls, want);
	ck_assert_int_eq(controls_open, 0);
	ck_assert_int_eq(live_routes, 0);
	ck_assert_ptr_null(rl.control);
}
END_TEST

/* The service manager's line: each route counted once, as not started,
 * guest down or serving (a guest not yet probed serves), and USB fronts
 * whose gadget is not bound named apart. */
START_TEST(summary_counts_routes)
{
	char text[1024], line[160];

	snprintf(not_started_name, sizeof(not_started_name), "c");
	snprintf(text, sizeof(text), "%s%s%s", route_text("a", 6001, NULL),
		 route_text("b", 6002, NULL), route_text("c", 6003, NULL));
	write_conf(text);
	ck_assert_int_eq(relay_load_config(&rl, &rl.cfg, err, sizeof(err)), 0);
	ck_assert_int_eq(relay_apply(&rl), 1);
	relay_summary(&rl, line, sizeof(line));
	ck_assert_str_eq(line, "3 routes: 2 serving, 0 guest down, 1 not started");
	nth(1)->guest = GUEST_DOWN;
	relay_summary(&rl, line, sizeof(line));
	ck_assert_str_eq(line, "3 routes: 1 serving, 1 guest down, 1 not started");
	nth(0)->cfg.front.kind = FRONT_USB;
	nth(0)->usb_open = 1;
	relay_summary(&rl, line, sizeof(line));
	ck_assert_str_eq(line, "3 routes: 1 serving, 1 guest down, 1 not started; "
			       "1 USB gadget not bound");
	nth(0)->usb.bound = 1;
	relay_summary(&rl, line, sizeof(line));
	ck_assert_str_eq(line, "3 routes: 1 serving, 1 guest down, 1 not started");
	nth(0)->cfg.front.kind = FRONT_TCP;
	reload(route_text("a", 6001, NULL));
	relay_summary(&rl, line, sizeof(line));
	ck_assert_str_eq(line, "1 route: 1 serving, 0 guest down, 0 not started");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("reload");
	TCase *tc = tcase_create("reload");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, first_apply_starts_all);
	tcase_add_test(tc, reload_add_remove_change_keep);
	tcase_add_test(tc, unchanged_route_keeps_sessions);
	tcase_add_test(tc, kept_route_not_started_retries);
	tcase_add_test(tc, route_out_of_memory);
	tcase_add_test(tc, bad_file_keeps_running_set);
	tcase_add_test(tc, rename_restarts_on_same_front);
	tcase_add_test(tc, limits_change_restarts);
	tcase_add_test(tc, global_settings);
	tcase_add_test(tc, same_file_twice_is_noop);
	tcase_add_test(tc, no_file_nothing_to_do);
	tcase_add_test(tc, cli_route_survives_reload);
	tcase_add_test(tc, virtio_device_and_hybrid);
	tcase_add_test(tc, route_started_on_retry);
	tcase_add_test(tc, start_then_stop_releases_everything);
	tcase_add_test(tc, start_control_not_owned);
	tcase_add_test(tc, control_override_holds);
	tcase_add_test(tc, summary_counts_routes);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
