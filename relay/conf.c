/* SPDX-License-Identifier: Apache-2.0 */
/*
 * conf.c - the adbd-relay.conf(5) parser and the checks every route must
 * pass, whether it comes from a file or from the command line.
 *
 *   # comment
 *   control /run/adbd-relay/control.sock
 *   log-level info
 *   buffer 1M                      # a route option here sets its default
 *   route android {
 *       front tcp:127.0.0.1:6520
 *       target vsock:3:5555
 *   }
 *   virtio-hybrid /run/vm/vhost.sock /run/vm/hybrid.sock   # anywhere at top level
 */
#include "relay/conf.h"
#include "relay/sys/sys.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_WORDS 4

struct parser {
	struct relay_config *cfg;
	const char *source;
	unsigned line;
	struct route_config *route;  /* inside "route NAME {", else NULL */
	struct route_config cur;
	unsigned hybrid_line[CONFIG_MAX_ROUTES];   /* of each virtio-hybrid */
	char *err;
	size_t errlen;
};

void config_init(struct relay_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	snprintf(cfg->control_path, sizeof(cfg->control_path), "%s",
		 "/run/adbd-relay/control.sock");
	cfg->control_mode = 0600;
	cfg->log_level = LOG_LVL_INFO;
	cfg->defaults.buffer = 1024 * 1024;
	cfg->defaults.reconnect_min_ms = 100;
	cfg->defaults.reconnect_max_ms = 1000;
	cfg->defaults.connect_timeout_ms = 5000;
	cfg->defaults.max_clients = 4;
	cfg->defaults.max_streams = 1024;
	cfg->defaults.probe_interval_ms = 2000;
	cfg->defaults.probe_mode = PROBE_CONNECT;
	cfg->defaults.guest_restart = GUEST_RESTART_REQUESTED;
	cfg->defaults.open_wait_ms = 30000;
	cfg->defaults.pipeline = 1;
}

void config_free(struct relay_config *cfg)
{
	free(cfg->routes);
	cfg->routes = NULL;
	cfg->nroutes = 0;
	cfg->nhybrid = 0;
}

void config_route_defaults(const struct relay_config *cfg, struct route_config *rc,
			   const char *name)
{
	*rc = cfg->defaults;
	rc->has_front = rc->has_target = 0;
	snprintf(rc->name, sizeof(rc->name), "%s", name);
}

static int perr(struct parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int perr(struct parser *p, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	snprintf(p->err, p->errlen, "%s:%u: %s", p->source, p->line, why);
	return -1;
}

/* A decimal number with an optional unit suffix, left in *unit. */
static int parse_number(const char *s, unsigned long long *v, const char **unit)
{
	char *end;

	if (!isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	*v = strtoull(s, &end, 10);
	if (errno != 0)
		return -1;
	*unit = end;
	return 0;
}

int config_parse_size(const char *s, size_t *out)
{
	const char *end;
	unsigned long long v;

	if (parse_number(s, &v, &end) != 0)
		return -1;
	if (strcmp(end, "K") == 0 || strcmp(end, "k") == 0)
		v <<= 10;
	else if (strcmp(end, "M") == 0)
		v <<= 20;
	else if (*end != '\0')
		return -1;
	if (v > (1ull << 40))
		return -1;
	*out = (size_t)v;
	return 0;
}

int config_parse_duration(const char *s, unsigned *out_ms)
{
	const char *end;
	unsigned long long v;

	if (parse_number(s, &v, &end) != 0)
		return -1;
	if (strcmp(end, "s") == 0)
		v *= 1000;
	else if (strcmp(end, "ms") != 0 && !(v == 0 && *end == '\0'))
		return -1;
	if (v > 24ull * 3600 * 1000)
		return -1;
	*out_ms = (unsigned)v;
	return 0;
}

int front_spec_parse(const char *spec, struct front_spec *f, char *err, size_t errlen)
{
	const char *addr, *colon;
	unsigned char bin[16];
	char *end;
	unsigned long port;
	size_t hlen;

	memset(f, 0, sizeof(*f));
	if (strncmp(spec, "usb:", 4) == 0) {
		f->kind = FRONT_USB;
		if (spec[4] != '/' || strlen(spec + 4) >= sizeof(f->path) - 4) {
			snprintf(err, errlen, "bad front '%s': expected usb:/ABSOLUTE/FUNCTIONFS/DIR",
				 spec);
			return -EINVAL;
		}
		snprintf(f->path, sizeof(f->path), "%s", spec + 4);
		return 0;
	}
	if (strncmp(spec, "tcp:", 4) != 0)
		goto bad;
	f->kind = FRONT_TCP;
	addr = spec + 4;
	colon = strrchr(addr, ':');
	if (colon == NULL)
		goto bad;
	hlen = (size_t)(colon - addr);
	if (hlen >= 2 && addr[0] == '[' && addr[hlen - 1] == ']') {
		addr++;
		hlen -= 2;
	}
	if (hlen == 0 || hlen >= sizeof(f->host))
		goto bad;
	memcpy(f->host, addr, hlen);
	f->host[hlen] = '\0';
	if (inet_pton(AF_INET, f->host, bin) != 1 && inet_pton(AF_INET6, f->host, bin) != 1) {
		snprintf(err, errlen, "bad front '%s': '%s' is not a numeric IP address",
			 spec, f->host);
		return -EINVAL;
	}
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || colon[1] == '\0' || port == 0 || port > 65535) {
		snprintf(err, errlen, "bad front '%s': port must be 1-65535", spec);
		return -EINVAL;
	}
	f->port = (uint16_t)port;
	return 0;
bad:
	snprintf(err, errlen, "bad front '%s': expected tcp:ADDRESS:PORT or usb:DIR", spec);
	return -EINVAL;
}

void front_spec_format(const struct front_spec *f, char *buf, size_t len)
{
	if (f->kind == FRONT_USB)
		snprintf(buf, len, "usb:%s", f->path);
	else if (strchr(f->host, ':') != NULL)
		snprintf(buf, len, "tcp:[%s]:%u", f->host, f->port);
	else
		snprintf(buf, len, "tcp:%s:%u", f->host, f->port);
}

static int front_spec_equal(const struct front_spec *a, const struct front_spec *b)
{
	if (a->kind != b->kind)
		return 0;
	if (a->kind == FRONT_USB)
		return strcmp(a->path, b->path) == 0;
	return strcmp(a->host, b->host) == 0 && a->port == b->port;
}

int route_config_equal(const struct route_config *a, const struct route_config *b)
{
	return strcmp(a->name, b->name) == 0 && front_spec_equal(&a->front, &b->front) &&
	       vsock_target_equal(&a->target, &b->target) && a->buffer == b->buffer &&
	       a->reconnect_min_ms == b->reconnect_min_ms &&
	       a->reconnect_max_ms == b->reconnect_max_ms &&
	       a->connect_timeout_ms == b->connect_timeout_ms &&
	       a->max_clients == b->max_clients && a->max_streams == b->max_streams &&
	       a->probe_interval_ms == b->probe_interval_ms && a->probe_mode == b->probe_mode &&
	       a->guest_restart == b->guest_restart && a->open_wait_ms == b->open_wait_ms &&
	       a->pipeline == b->pipeline && strcmp(a->mdns, b->mdns) == 0;
}

static int valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= ROUTE_NAME_MAX)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
			return 0;
	return 1;
}

/* 127.0.0.0/8, ::1, ::ffff:127.0.0.0/104 */
static int loopback(const char *host)
{
	struct in_addr a4;
	struct in6_addr a6;

	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, host, &a6) != 1)
		return 0;
	if (IN6_IS_ADDR_V4MAPPED(&a6))
		return a6.s6_addr[12] == 127;
	return IN6_IS_ADDR_LOOPBACK(&a6);
}

/* an mDNS instance label of our choosing: 1-40 letters, digits, '-', '_' */
static int valid_mdns_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= MDNS_INSTANCE_MAX)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_')
			return 0;
	return 1;
}

static int check_route(const struct relay_config *cfg, const struct route_config *rc,
		       char *why, size_t len)
{
	if (!rc->has_front) {
		snprintf(why, len, "route %s has no front", rc->name);
		return -1;
	}
	if (!rc->has_target) {
		snprintf(why, len, "route %s has no target", rc->name);
		return -1;
	}
	if (rc->mdns[0] != '\0' && rc->front.kind != FRONT_TCP) {
		snprintf(why, len, "route %s: mdns needs a TCP front", rc->name);
		return -1;
	}
	if (rc->mdns[0] != '\0' && loopback(rc->front.host)) {
		snprintf(why, len, "route %s: mdns: front %s is loopback, no one on the network "
			 "can reach it", rc->name, rc->front.host);
		return -1;
	}
	if (rc->reconnect_min_ms > rc->reconnect_max_ms) {
		snprintf(why, len, "route %s: reconnect minimum above maximum", rc->name);
		return -1;
	}
	for (size_t i = 0; i < cfg->nroutes; i++) {
		const struct route_config *o = &cfg->routes[i];
		if (strcmp(o->name, rc->name) == 0) {
			snprintf(why, len, "route %s defined twice", rc->name);
			return -1;
		}
		if (rc->mdns[0] != '\0' && strcasecmp(o->mdns, rc->mdns) == 0) {
			snprintf(why, len, "routes %s and %s publish the same mdns name", o->name,
				 rc->name);
			return -1;
		}
		if (front_spec_equal(&o->front, &rc->front)) {
			snprintf(why, len, "routes %s and %s share a front address", o->name, rc->name);
			return -1;
		}
	}
	if (cfg->nroutes >= CONFIG_MAX_ROUTES) {
		snprintf(why, len, "more than %d routes", CONFIG_MAX_ROUTES);
		return -1;
	}
	return 0;
}

int config_add_route(struct relay_config *cfg, const struct route_config *rc,
		     char *err, size_t errlen)
{
	struct route_config *n;

	if (check_route(cfg, rc, err, errlen) != 0)
		return -1;
	n = realloc(cfg->routes, (cfg->nroutes + 1) * sizeof(*n));
	if (n == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	cfg->routes = n;
	cfg->routes[cfg->nroutes++] = *rc;
	return 0;
}

/* Options valid both inside a route and at top level (as defaults). */
static int route_option(struct parser *p, struct route_config *rc, char **w, int n)
{
	char why[256];
	size_t size;
	unsigned ms, ms2;
	char *end;
	unsigned long v;

	if (strcmp(w[0], "buffer") == 0) {
		if (n != 2 || config_parse_size(w[1], &size) != 0 ||
		    size < 64 * 1024 || size > 64 * 1024 * 1024)
			return perr(p, "buffer takes one size from 64K to 64M");
		rc->buffer = size;
	} else if (strcmp(w[0], "reconnect") == 0) {
		if (n != 3 || config_parse_duration(w[1], &ms) != 0 ||
		    config_parse_duration(w[2], &ms2) != 0 || ms < 10 || ms2 < ms || ms2 > 600000)
			return perr(p, "reconnect takes MIN MAX durations, 10ms <= MIN <= MAX <= 600s");
		rc->reconnect_min_ms = ms;
		rc->reconnect_max_ms = ms2;
	} else if (strcmp(w[0], "connect-timeout") == 0) {
		if (n != 2 || config_parse_duration(w[1], &ms) != 0 || ms < 10 || ms > 600000)
			return perr(p, "connect-timeout takes a duration from 10ms to 600s");
		rc->connect_timeout_ms = ms;
	} else if (strcmp(w[0], "probe-interval") == 0) {
		if (n != 2 || config_parse_duration(w[1], &ms) != 0 ||
		    (ms != 0 && (ms < 100 || ms > 3600000)))
			return perr(p, "probe-interval takes 0 (off) or a duration from 100ms to 1h");
		rc->probe_interval_ms = ms;
	} else if (strcmp(w[0], "probe-mode") == 0) {
		if (n != 2)
			return perr(p, "probe-mode takes one mode: connect or adb");
		if (probe_mode_parse(w[1], &rc->probe_mode) != 0)
			return perr(p, "probe-mode '%.32s' unknown: connect or adb", w[1]);
	} else if (strcmp(w[0], "guest-restart") == 0) {
		if (n != 2 || guest_restart_parse(w[1], &rc->guest_restart) != 0)
			return perr(p, "guest-restart takes one of requested, show, hide");
	} else if (strcmp(w[0], "pipeline") == 0) {
		if (n != 2 || (strcmp(w[1], "on") != 0 && strcmp(w[1], "off") != 0))
			return perr(p, "pipeline takes on or off");
		rc->pipeline = strcmp(w[1], "on") == 0;
	} else if (strcmp(w[0], "open-wait") == 0) {
		if (n != 2 || config_parse_duration(w[1], &ms) != 0 || ms > 600000)
			return perr(p, "open-wait takes 0 (refuse at once) or a duration up to 600s");
		rc->open_wait_ms = ms;
	} else if (strcmp(w[0], "max-clients") == 0 || strcmp(w[0], "max-streams") == 0) {
		int clients = w[0][4] == 'c';
		unsigned long hi = clients ? 64 : 65536;
		if (n != 2 || !isdigit((unsigned char)w[1][0]))
			return perr(p, "%s takes a number from 1 to %lu", w[0], hi);
		v = strtoul(w[1], &end, 10);
		if (*end != '\0' || v < 1 || v > hi)
			return perr(p, "%s takes a number from 1 to %lu", w[0], hi);
		if (clients)
			rc->max_clients = (unsigned)v;
		else
			rc->max_streams = (unsigned)v;
	} else if (p->route != NULL && strcmp(w[0], "front") == 0) {
		if (n != 2 || front_spec_parse(w[1], &rc->front, why, sizeof(why)) != 0)
			return perr(p, "%s", n != 2 ? "front takes one spec" : why);
		rc->has_front = 1;
	} else if (p->route != NULL && strcmp(w[0], "mdns") == 0) {
		if (n != 2 || !valid_mdns_name(w[1]))
			return perr(p, "mdns takes one name: 1-%d letters, digits, '-' or '_'",
				    MDNS_INSTANCE_MAX - 1);
		snprintf(rc->mdns, sizeof(rc->mdns), "%s", w[1]);
	} else if (p->route != NULL && strcmp(w[0], "target") == 0) {
		if (n != 2 || vsock_target_parse(w[1], &rc->target, why, sizeof(why)) != 0)
			return perr(p, "%s", n != 2 ? "target takes one spec" : why);
		rc->has_target = 1;
	} else {
		return perr(p, "unknown %s '%s'", p->route ? "route option" : "setting", w[0]);
	}
	return 0;
}

/* an absolute path the relay can listen at */
static int socket_path(const char *s)
{
	return s[0] == '/' && strlen(s) < VSOCK_LISTEN_PATH_MAX;
}

/* virtio-hybrid SOCKET PATH, checked against the others; the routes are
 * checked once the whole file is read (check_hybrid). */
static int hybrid_option(struct parser *p, char **w, int n)
{
	struct relay_config *cfg = p->cfg;
	struct vsock_virtio_hybrid *h;

	if (n != 3 || !socket_path(w[1]) || !socket_path(w[2]))
		return perr(p, "virtio-hybrid takes SOCKET PATH, absolute paths under %d bytes",
			    VSOCK_LISTEN_PATH_MAX);
	if (strcmp(w[1], w[2]) == 0)
		return perr(p, "virtio-hybrid: PATH must differ from SOCKET");
	for (size_t i = 0; i < cfg->nhybrid; i++) {
		h = &cfg->hybrid[i];
		if (strcmp(h->socket, w[1]) == 0)
			return perr(p, "virtio-hybrid: %s has one already (line %u)", w[1],
				    p->hybrid_line[i]);
		if (strcmp(h->path, w[2]) == 0)
			return perr(p, "virtio-hybrid: %s is taken (line %u)", w[2], p->hybrid_line[i]);
		if (strcmp(h->path, w[1]) == 0)
			return perr(p, "virtio-hybrid: %s is the PATH of line %u", w[1],
				    p->hybrid_line[i]);
		if (strcmp(h->socket, w[2]) == 0)
			return perr(p, "virtio-hybrid: %s is the SOCKET of line %u", w[2],
				    p->hybrid_line[i]);
	}
	if (cfg->nhybrid == CONFIG_MAX_ROUTES)
		return perr(p, "more than %d virtio-hybrid lines", CONFIG_MAX_ROUTES);
	h = &cfg->hybrid[cfg->nhybrid];
	snprintf(h->socket, sizeof(h->socket), "%s", w[1]);
	snprintf(h->path, sizeof(h->path), "%s", w[2]);
	p->hybrid_line[cfg->nhybrid++] = p->line;
	return 0;
}

/* Every virtio-hybrid names a device some route uses, and no PATH is a
 * socket the relay serves otherwise. Errors carry the directive's line. */
static int check_hybrid(struct parser *p)
{
	const struct relay_config *cfg = p->cfg;

	for (size_t i = 0; i < cfg->nhybrid; i++) {
		const struct vsock_virtio_hybrid *h = &cfg->hybrid[i];
		int used = 0;

		p->line = p->hybrid_line[i];
		for (size_t j = 0; j < cfg->nroutes; j++) {
			const struct vsock_target *t = &cfg->routes[j].target;

			if (t->kind != VSOCK_VIRTIO)
				continue;
			if (strcmp(t->path, h->path) == 0)
				return perr(p, "virtio-hybrid: %s is route %s's vhost-user socket",
					    h->path, cfg->routes[j].name);
			used |= strcmp(t->path, h->socket) == 0;
		}
		if (!used)
			return perr(p, "virtio-hybrid: no route has a virtio target on %s", h->socket);
		if (strcmp(h->path, cfg->control_path) == 0)
			return perr(p, "virtio-hybrid: %s is the control socket", h->path);
	}
	return 0;
}

static int global_option(struct parser *p, char **w, int n)
{
	struct relay_config *cfg = p->cfg;

	if (strcmp(w[0], "control") == 0) {
		if (n != 2 || strlen(w[1]) >= sizeof(cfg->control_path) || w[1][0] != '/')
			return perr(p, "control takes an absolute socket path of at most %d bytes",
				    CONTROL_PATH_MAX - 1);
		snprintf(cfg->control_path, sizeof(cfg->control_path), "%s", w[1]);
	} else if (strcmp(w[0], "control-mode") == 0) {
		char *end;
		unsigned long m = n == 2 ? strtoul(w[1], &end, 8) : 0;
		if (n != 2 || *end != '\0' || m > 0777)
			return perr(p, "control-mode takes an octal mode such as 0600");
		cfg->control_mode = (mode_t)m;
	} else if (strcmp(w[0], "user") == 0 || strcmp(w[0], "control-owner") == 0) {
		char *dst = w[0][0] == 'u' ? cfg->user : cfg->control_owner;
		uid_t uid;
		char why[128];

		if (n != 2 || strlen(w[1]) >= CONFIG_ID_MAX)
			return perr(p, "%s takes one user name or number", w[0]);
		if (priv_user_id(w[1], &uid, NULL, why, sizeof(why)) != 0)
			return perr(p, "%s: %s", w[0], why);
		snprintf(dst, CONFIG_ID_MAX, "%s", w[1]);
	} else if (strcmp(w[0], "group") == 0 || strcmp(w[0], "control-group") == 0) {
		char *dst = w[0][0] == 'g' ? cfg->group : cfg->control_group;
		gid_t gid;
		char why[128];

		if (n != 2 || strlen(w[1]) >= CONFIG_ID_MAX)
			return perr(p, "%s takes one group name or number", w[0]);
		if (priv_group_id(w[1], &gid, why, sizeof(why)) != 0)
			return perr(p, "%s: %s", w[0], why);
		snprintf(dst, CONFIG_ID_MAX, "%s", w[1]);
	} else if (strcmp(w[0], "log-level") == 0) {
		if (n != 2 || log_level_parse(w[1], &cfg->log_level) != 0)
			return perr(p, "log-level takes error, warn, notice, info or debug");
	} else if (strcmp(w[0], "trace") == 0) {
		if (n != 2 || (strcmp(w[1], "on") != 0 && strcmp(w[1], "off") != 0))
			return perr(p, "trace takes on or off");
		cfg->trace = strcmp(w[1], "on") == 0;
	} else if (strcmp(w[0], "virtio-hybrid") == 0) {
		return hybrid_option(p, w, n);
	} else if (strcmp(w[0], "route") == 0) {
		if (n != 3 || strcmp(w[2], "{") != 0)
			return perr(p, "expected 'route NAME {'");
		if (!valid_name(w[1]))
			return perr(p, "route name '%s': 1-31 letters, digits, '-', '_' or '.'", w[1]);
		config_route_defaults(cfg, &p->cur, w[1]);
		p->route = &p->cur;
	} else {
		if (cfg->nroutes > 0)
			return perr(p, "route defaults must come before the first route");
		return route_option(p, &cfg->defaults, w, n);
	}
	return 0;
}

static int split_words(char *line, char **w)
{
	int n = 0;
	char *hash = strchr(line, '#');

	if (hash != NULL)
		*hash = '\0';
	for (char *tok = strtok(line, " \t\r"); tok; tok = strtok(NULL, " \t\r")) {
		if (n == MAX_WORDS)
			return -1;
		w[n++] = tok;
	}
	return n;
}

static int parse_line(struct parser *p, char *line)
{
	char *w[MAX_WORDS];
	char why[256];
	int n = split_words(line, w);

	if (n < 0)
		return perr(p, "too many words");
	if (n == 0)
		return 0;
	if (p->route == NULL)
		return global_option(p, w, n);
	if (n == 1 && strcmp(w[0], "}") == 0) {
		p->route = NULL;
		if (config_add_route(p->cfg, &p->cur, why, sizeof(why)) != 0)
			return perr(p, "%s", why);
		return 0;
	}
	return route_option(p, p->route, w, n);
}

int config_parse(struct relay_config *cfg, const char *text, const char *source,
		 char *err, size_t errlen)
{
	struct parser p = { .cfg = cfg, .source = source, .err = err, .errlen = errlen };
	char line[512];
	const char *s = text;
	int rc = 0;

	while (*s && rc == 0) {
		const char *nl = strchr(s, '\n');
		size_t len = nl ? (size_t)(nl - s) : strlen(s);

		p.line++;
		if (len >= sizeof(line)) {
			rc = perr(&p, "line longer than %zu characters", sizeof(line) - 1);
			break;
		}
		memcpy(line, s, len);
		line[len] = '\0';
		rc = parse_line(&p, line);
		s += len + (nl ? 1 : 0);
	}
	if (rc == 0 && p.route != NULL)
		rc = perr(&p, "route %s is not closed with '}'", p.route->name);
	if (rc == 0)
		rc = check_hybrid(&p);
	if (rc != 0)
		config_free(cfg);
	return rc;
}

int config_load(struct relay_config *cfg, const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	char *text;
	size_t n;
	int rc;

	if (f == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	text = malloc(CONFIG_FILE_MAX + 1);
	if (text == NULL) {
		fclose(f);
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	n = fread(text, 1, CONFIG_FILE_MAX + 1, f);
	if (ferror(f)) {           /* a directory, an I/O error: not an empty file */
		rc = errno;
		fclose(f);
		free(text);
		snprintf(err, errlen, "%s: %s", path, strerror(rc));
		return -1;
	}
	fclose(f);
	if (n > CONFIG_FILE_MAX) {
		free(text);
		snprintf(err, errlen, "%s: larger than %d bytes", path, CONFIG_FILE_MAX);
		return -1;
	}
	text[n] = '\0';
	if (strlen(text) != n) {
		free(text);
		snprintf(err, errlen, "%s: NUL byte in configuration", path);
		return -1;
	}
	rc = config_parse(cfg, text, path, err, errlen);
	free(text);
	return rc;
}

int config_set_control(struct relay_config *cfg, const char *path, char *err, size_t errlen)
{
	if (path[0] != '/' || strlen(path) >= sizeof(cfg->control_path)) {
		snprintf(err, errlen, "--control takes an absolute socket path of at most %d bytes",
			 CONTROL_PATH_MAX - 1);
		return -1;
	}
	snprintf(cfg->control_path, sizeof(cfg->control_path), "%s", path);
	return 0;
}

/* What listens at a path: "the control socket", "route NAME's vhost-user
 * socket", "a virtio-hybrid socket". */
struct listen_path {
	const char *path;
	char what[64];
};

static size_t listen_paths(const struct relay_config *cfg, struct listen_path *out)
{
	size_t n = 0;

	out[n].path = cfg->control_path;
	snprintf(out[n++].what, sizeof(out->what), "the control socket");
	for (size_t i = 0; i < cfg->nroutes; i++) {
		const struct vsock_target *t = &cfg->routes[i].target;
		size_t j;

		if (t->kind != VSOCK_VIRTIO)
			continue;
		for (j = 1; j < n && strcmp(out[j].path, t->path) != 0; j++)
			;
		if (j < n)
			continue;    /* routes on one device share its socket */
		out[n].path = t->path;
		snprintf(out[n++].what, sizeof(out->what), "route %s's vhost-user socket",
			 cfg->routes[i].name);
	}
	for (size_t i = 0; i < cfg->nhybrid; i++) {
		out[n].path = cfg->hybrid[i].path;
		snprintf(out[n++].what, sizeof(out->what), "a virtio-hybrid socket");
	}
	return n;
}

int config_check_sockets(const struct relay_config *cfg, char *err, size_t errlen)
{
	struct listen_path p[1 + 2 * CONFIG_MAX_ROUTES];
	size_t n = listen_paths(cfg, p), sl = strlen(VSOCK_LISTEN_SUFFIX);

	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < n; j++) {
			size_t l = strlen(p[j].path);

			if (i == j)
				continue;
			if (strcmp(p[i].path, p[j].path) == 0) {
				snprintf(err, errlen, "%.*s is both %.63s and %.63s", VSOCK_PATH_MAX,
					 p[i].path, p[i].what, p[j].what);
				return -1;
			}
			if (strlen(p[i].path) == l + sl && strncmp(p[i].path, p[j].path, l) == 0 &&
			    strcmp(p[i].path + l, VSOCK_LISTEN_SUFFIX) == 0) {
				snprintf(err, errlen, "%.*s (%.63s) is where %.63s is made: %.*s%s",
					 VSOCK_PATH_MAX, p[i].path, p[i].what, p[j].what,
					 VSOCK_PATH_MAX, p[j].path, VSOCK_LISTEN_SUFFIX);
				return -1;
			}
		}
	}
	return 0;
}
