/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c - the adbd-relay program: the command line, the signals (SIGTERM
 * and SIGINT stop, SIGHUP reloads) and the loop. What they do to the
 * daemon is relay.c's.
 */
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "relay/control/control.h"
#include "relay/relay.h"
#include "relay/sys/sys.h"
#include "vsock/vsock.h"

/* The daemon's relay: the real routes, virtio devices and control socket. */
static const struct relay_ops daemon_ops = {
	.route_start = route_start,
	.route_stop = route_stop,
	.route_keep = route_retry_now,
	.device_acquire = vsock_virtio_acquire,
	.device_release = vsock_virtio_release,
	.set_hybrid = vsock_virtio_set_hybrid,
	.control_start = control_start,
	.control_stop = control_stop,
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: adbd-relay [-c FILE] [--front SPEC --target SPEC [--name NAME]] [options]\n"
		"  -c, --config FILE      routes and settings, see adbd-relay.conf(5)\n"
		"  -f, --front SPEC       one route's front: tcp:ADDRESS:PORT or usb:FUNCTIONFS-DIR\n"
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

static uv_signal_t sig_term, sig_int, sig_hup;
static uv_timer_t watchdog;

/* STATUS= for the service manager: relay_summary()'s line, sent when it
 * changed, at most every STATUS_DELAY_MS however often routes change (a
 * guest can bounce its link at will) */
#define STATUS_DELAY_MS 200
static uv_timer_t status_timer;
static char status_sent[160];

static void send_status(struct relay *rl)
{
	char line[sizeof(status_sent)], msg[sizeof(status_sent) + 8];

	relay_summary(rl, line, sizeof(line));
	if (strcmp(line, status_sent) == 0)
		return;
	memcpy(status_sent, line, sizeof(status_sent));
	snprintf(msg, sizeof(msg), "STATUS=%s", line);
	notify_send(msg);
}

static void on_status_timer(uv_timer_t *t)
{
	send_status(t->data);
}

static void on_routes_changed(void)
{
	if (!uv_is_active((uv_handle_t *)&status_timer))
		uv_timer_start(&status_timer, on_status_timer, STATUS_DELAY_MS, 0);
}

static void status_init(struct relay *rl, uv_loop_t *loop)
{
	uv_timer_init(loop, &status_timer);
	status_timer.data = rl;
	if (getenv("NOTIFY_SOCKET") != NULL)
		route_set_changed_cb(on_routes_changed);
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct relay *rl = h->data;
	char err[512];

	if (signum == SIGHUP) {
		log_notice("SIGHUP: reloading %s", rl->config_path ? rl->config_path : "(none)");
		notify_send("RELOADING=1");
		relay_reload(rl, err, sizeof(err));
		notify_send("READY=1");
		send_status(rl);
		return;
	}
	log_notice("%s: shutting down", strsignal(signum));
	notify_send("STOPPING=1");
	route_set_changed_cb(NULL);
	uv_close((uv_handle_t *)&status_timer, NULL);
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
	char err[512];
	int check_only = 0, use_syslog = 0, not_started;
	enum log_level lvl;

	relay_init(&rl, &daemon_ops);
	if (parse_args(argc, argv, &rl, &check_only, &control, &use_syslog, &level) != 0)
		return 2;
	log_init("adbd-relay", use_syslog);
	rl.control_override = control;
	if (relay_load_config(&rl, &rl.cfg, err, sizeof(err)) != 0) {
		log_error("configuration: %s", err);
		return 2;
	}
	if (level != NULL) {
		if (log_level_parse(level, &lvl) != 0) {
			fprintf(stderr, "adbd-relay: unknown log level '%s'\n", level);
			return 2;
		}
		rl.cfg.log_level = lvl;
	}
	if (rl.cfg.group[0] != '\0' && rl.cfg.user[0] == '\0') {
		fprintf(stderr, "adbd-relay: configuration: group needs user\n");
		return 2;
	}
	if (check_only) {
		printf("configuration ok: %zu route(s)\n", rl.cfg.nroutes);
		relay_free(&rl);
		return 0;
	}
	log_set_level(rl.cfg.log_level);
	if (rl.cfg.trace)
		log_set_trace(1);
	signal(SIGPIPE, SIG_IGN);
	srand((unsigned)time(NULL) ^ (unsigned)getpid());

	status_init(&rl, uv_default_loop());
	not_started = relay_start(&rl, uv_default_loop());
	if (not_started < 0) {
		route_set_changed_cb(NULL);
		uv_close((uv_handle_t *)&status_timer, NULL);
		uv_run(rl.loop, UV_RUN_DEFAULT);
		relay_free(&rl);
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
	send_status(&rl);
	uint64_t wd_ms = notify_watchdog_start(rl.loop, &watchdog);
	if (wd_ms > 0)
		log_info("watchdog: %" PRIu64 " ms, pinging every %" PRIu64 " ms", wd_ms, wd_ms / 2);
	uv_run(rl.loop, UV_RUN_DEFAULT);
	uv_loop_close(rl.loop);
	relay_free(&rl);
	log_notice("stopped");
	return 0;
}
