/* SPDX-License-Identifier: Apache-2.0 */
/*
 * main.c - adbd-testguest entry point: command line, logging, the event
 * loop, READY on stdout once every listener is up, and a clean exit on
 * SIGTERM/SIGINT (also while down for a restart).
 *
 * adbd-testguest is test equipment: a small adb device daemon that the real
 * adb host client accepts (legacy raw shell, legacy sync, tcp: for
 * `adb forward`, root:/unroot:/tcpip:/usb:/reboot:/reconnect with an
 * emulated restart, no AUTH).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "tests/guest/guest.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct guest_options g_opt = {
	.name = "adbd-testguest",
	.features = "",
	.max_payload = ADB_MAX_PAYLOAD,
	.verbose = 0,
	.restart_downtime_ms = 500,
	.reboot_downtime_ms = 2000,
};
uv_loop_t *g_loop;
int g_shutting_down;

static uv_signal_t sig_term, sig_int;
static uv_timer_t exit_timer;

static void vlog(const char *level, const char *fmt, va_list ap)
{
	char line[1024];
	int n = snprintf(line, sizeof(line), "adbd-testguest[%d]: %s", (int)getpid(), level);

	if (n < 0 || (size_t)n >= sizeof(line))
		n = 0;
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	fprintf(stderr, "%s\n", line);
}

void log_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("error: ", fmt, ap);
	va_end(ap);
}

void log_info(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog("", fmt, ap);
	va_end(ap);
}

void log_debug(const char *fmt, ...)
{
	va_list ap;

	if (!g_opt.verbose)
		return;
	va_start(ap, fmt);
	vlog("debug: ", fmt, ap);
	va_end(ap);
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (p == NULL) {
		log_err("out of memory (%zu bytes)", n);
		abort();
	}
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL) {
		log_err("out of memory (%zu x %zu bytes)", n, size);
		abort();
	}
	return p;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: adbd-testguest --listen SPEC [--listen SPEC ...] [--name NAME]\n"
		"                      [--features LIST] [--max-payload N] [--root]\n"
		"                      [--restart-downtime MS] [--reboot-downtime MS] [-v]\n"
		"  SPEC: unix:PATH          adb over a Unix stream socket\n"
		"        tcp:HOST:PORT      adb over TCP (HOST numeric IPv4 or [IPv6])\n"
		"        hybrid:PATH        Firecracker/Cloud Hypervisor hybrid vsock: Unix socket,\n"
		"                           \"CONNECT <port>\\n\" -> \"OK <n>\\n\", then adb\n"
		"        vsock:PORT         kernel vsock listener, any CID (VM lab guests only)\n"
		"  --name NAME              ro.product.name/device in the banner (default adbd-testguest)\n"
		"  --features LIST          the banner's features= list, comma-separated (default\n"
		"                           none); announced only: the guest implements none of them\n"
		"  --max-payload N          largest payload we offer, 4096..1048576 (default 1048576)\n"
		"  --root                   start \"running as root\" (default: unprivileged); root:\n"
		"                           and unroot: flip this state across a restart, reboot:\n"
		"                           goes back to it (nothing else changes: no real privileges)\n"
		"  --restart-downtime MS    how long a restart by root:, unroot:, tcpip: or usb: stays\n"
		"                           down, 0..600000 (default 500)\n"
		"  --reboot-downtime MS     the same for reboot: (default 2000)\n"
		"  -v, --verbose            debug log and one line per adb frame on stderr\n"
		"Prints READY on stdout once every listener is up; SIGTERM/SIGINT exit 0.\n"
		"Restarts: root:, unroot:, tcpip:PORT and usb: answer as AOSP adbd (one WRTE, then\n"
		"CLSE). When the reply says \"restarting\", and on reboot:[TARGET] (no output),\n"
		"every adb connection and every listener is closed about 100 ms after the reply\n"
		"was acknowledged (at the latest 1 s after it was sent); for the downtime nothing\n"
		"listens (connects are refused; unix:/hybrid: paths stay, as dead sockets); then\n"
		"the same --listen specs are opened again (tcpip: does not move the port) and\n"
		"RESTARTED is printed on stdout. reconnect answers \"done\" and drops only its\n"
		"own connection.\n");
}

static void exit_timer_cb(uv_timer_t *t)
{
	(void)t;
	log_err("shutdown: handles still open after 2 s, stopping the loop");
	uv_stop(g_loop);
}

static void shutdown_now(const char *why)
{
	if (g_shutting_down)
		return;
	g_shutting_down = 1;
	log_info("%s: shutting down", why);
	restart_shutdown();
	listeners_close(0);
	conns_close_all("shutdown");
	uv_close((uv_handle_t *)&sig_term, NULL);
	uv_close((uv_handle_t *)&sig_int, NULL);
	/* children get SIGKILL, so this only fires if something is badly stuck */
	uv_timer_init(g_loop, &exit_timer);
	uv_timer_start(&exit_timer, exit_timer_cb, 2000, 0);
	uv_unref((uv_handle_t *)&exit_timer);
}

static void signal_cb(uv_signal_t *h, int signum)
{
	(void)h;
	shutdown_now(signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static int parse_max_payload(const char *s, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || end == s || *end != '\0' || v < ADB_MAX_PAYLOAD_V1 || v > ADB_MAX_PAYLOAD)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int parse_ms(const char *s, unsigned *out)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end != '\0' || v > 600000)
		return -1;
	*out = (unsigned)v;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "name", required_argument, NULL, 'n' },
		{ "features", required_argument, NULL, 'F' },
		{ "max-payload", required_argument, NULL, 'm' },
		{ "root", no_argument, NULL, 'R' },
		{ "restart-downtime", required_argument, NULL, 'D' },
		{ "reboot-downtime", required_argument, NULL, 'B' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *specs[32];
	int nspecs = 0;
	int c;

	while ((c = getopt_long(argc, argv, "l:n:F:m:vh", longopts, NULL)) != -1) {
		switch (c) {
		case 'l':
			if (nspecs == (int)(sizeof(specs) / sizeof(specs[0]))) {
				fprintf(stderr, "adbd-testguest: too many --listen options\n");
				return 2;
			}
			specs[nspecs++] = optarg;
			break;
		case 'n':
			if (optarg[0] == '\0' || strlen(optarg) > 200 || strpbrk(optarg, ";:") != NULL) {
				fprintf(stderr, "adbd-testguest: --name must be 1-200 characters without ';' or ':'\n");
				return 2;
			}
			g_opt.name = optarg;
			break;
		case 'F':
			if (strlen(optarg) > 200 ||
			    strspn(optarg, "abcdefghijklmnopqrstuvwxyz0123456789_,") != strlen(optarg)) {
				fprintf(stderr, "adbd-testguest: --features must be at most 200 characters of [a-z0-9_,]\n");
				return 2;
			}
			g_opt.features = optarg;
			break;
		case 'm':
			if (parse_max_payload(optarg, &g_opt.max_payload) != 0) {
				fprintf(stderr, "adbd-testguest: --max-payload must be %u..%u\n",
					ADB_MAX_PAYLOAD_V1, ADB_MAX_PAYLOAD);
				return 2;
			}
			break;
		case 'R':
			g_opt.root_at_boot = 1;
			break;
		case 'D':
		case 'B':
			if (parse_ms(optarg, c == 'D' ? &g_opt.restart_downtime_ms
						      : &g_opt.reboot_downtime_ms) != 0) {
				fprintf(stderr, "adbd-testguest: --%s must be 0..600000 (ms)\n",
					c == 'D' ? "restart-downtime" : "reboot-downtime");
				return 2;
			}
			break;
		case 'v':
			g_opt.verbose = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || nspecs == 0) {
		usage(stderr);
		return 2;
	}

	/* a child that closed its stdin must not kill us */
	signal(SIGPIPE, SIG_IGN);
	g_loop = uv_default_loop();

	g_opt.listen = specs;
	g_opt.nlisten = nspecs;
	g_opt.root = g_opt.root_at_boot;
	if (listeners_open_all(0) != 0)
		return 1;

	uv_signal_init(g_loop, &sig_term);
	uv_signal_start(&sig_term, signal_cb, SIGTERM);
	uv_signal_init(g_loop, &sig_int);
	uv_signal_start(&sig_int, signal_cb, SIGINT);

	printf("READY\n");
	fflush(stdout);

	uv_run(g_loop, UV_RUN_DEFAULT);
	if (g_shutting_down && !uv_is_closing((uv_handle_t *)&exit_timer))
		uv_close((uv_handle_t *)&exit_timer, NULL);
	uv_run(g_loop, UV_RUN_NOWAIT);
	if (uv_loop_close(g_loop) != 0)
		log_debug("event loop closed with handles still open");
	log_info("exit");
	return 0;
}
