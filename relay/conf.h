/* SPDX-License-Identifier: Apache-2.0 */
/*
 * conf.h - adbd-relay's configuration: global settings and routes, as read
 * from adbd-relay.conf(5) or built from the command line, and the checks
 * every route must pass before it may start.
 */
#ifndef RELAY_CONF_H
#define RELAY_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "relay/mdns/mdns.h"
#include "relay/probe.h"
#include "relay/restart.h"
#include "relay/sys/sys.h"
#include "vsock/vsock.h"

#define ROUTE_NAME_MAX 32          /* including the NUL */
#define CONFIG_MAX_ROUTES 64
#define CONFIG_FILE_MAX (64 * 1024)
#define CONTROL_PATH_MAX VSOCK_LISTEN_PATH_MAX
#define CONFIG_ID_MAX 64           /* user and group names */

enum front_kind { FRONT_TCP, FRONT_USB };

struct front_spec {
	enum front_kind kind;
	char host[46];             /* TCP: numeric IPv4 or IPv6 address */
	uint16_t port;
	char path[108];            /* USB: the FunctionFS mount point */
};

struct route_config {
	char name[ROUTE_NAME_MAX];
	struct front_spec front;
	struct vsock_target target;
	int has_front, has_target;
	size_t buffer;             /* bytes of buffering per direction */
	unsigned reconnect_min_ms, reconnect_max_ms;
	unsigned connect_timeout_ms;
	unsigned max_clients;      /* adb front connections at once */
	unsigned max_streams;      /* open adb streams per session */
	unsigned probe_interval_ms; /* idle guest probe, 0 = off */
	enum probe_mode probe_mode; /* what that probe checks */
	enum guest_restart guest_restart; /* what the PC sees of a guest restart */
	unsigned open_wait_ms;     /* how long a PC's OPEN waits for a guest that is down */
	int pipeline;              /* stop-and-wait streams pipelined (relay/pipeline.h) */
	char mdns[MDNS_INSTANCE_MAX]; /* published as "NAME._adb._tcp.local"; "" = not */
};

struct relay_config {
	char control_path[CONTROL_PATH_MAX];
	mode_t control_mode;
	char control_owner[CONFIG_ID_MAX];   /* user name or number, "" = leave */
	char control_group[CONFIG_ID_MAX];
	char user[CONFIG_ID_MAX];            /* run as, once started ("" = stay) */
	char group[CONFIG_ID_MAX];
	enum log_level log_level;
	int trace;
	struct route_config defaults;   /* top-level route options */
	struct route_config *routes;
	size_t nroutes;
	/* "virtio-hybrid SOCKET PATH": the device on SOCKET also takes hybrid
	 * clients on PATH; SOCKET is a virtio target of a route in the file */
	struct vsock_virtio_hybrid hybrid[CONFIG_MAX_ROUTES];
	size_t nhybrid;
};

void config_init(struct relay_config *cfg);
void config_free(struct relay_config *cfg);
/* A route called NAME with the configured defaults and no front or target. */
void config_route_defaults(const struct relay_config *cfg, struct route_config *rc,
			   const char *name);
/* Parse TEXT (named SOURCE in errors, "file:line: reason"). 0 or -1. */
int config_parse(struct relay_config *cfg, const char *text, const char *source,
		 char *err, size_t errlen);
int config_load(struct relay_config *cfg, const char *path, char *err, size_t errlen);
/* The control socket at PATH instead of the file's (--control): absolute
 * and short enough. 0 or -1 with ERR set. */
int config_set_control(struct relay_config *cfg, const char *path, char *err, size_t errlen);
/* No two listening sockets (the control socket, the virtio devices', the
 * virtio-hybrid ones) at one path, nor one at another's temporary name
 * (PATH VSOCK_LISTEN_SUFFIX). 0 or -1 with ERR set. */
int config_check_sockets(const struct relay_config *cfg, char *err, size_t errlen);
/* Check RC against the routes already in CFG and append it. 0 or -1. */
int config_add_route(struct relay_config *cfg, const struct route_config *rc,
		     char *err, size_t errlen);

/* "64K", "1M", "4096" -> bytes; "250ms", "3s", "0" -> ms. 0 or -1. */
int config_parse_size(const char *s, size_t *out);
int config_parse_duration(const char *s, unsigned *out_ms);

/* "tcp:127.0.0.1:5555", "tcp:[::1]:5555", "usb:/dev/usb-ffs/adb".
 * 0 or -EINVAL with ERR set. */
int front_spec_parse(const char *spec, struct front_spec *f, char *err, size_t errlen);
void front_spec_format(const struct front_spec *f, char *buf, size_t len);

int route_config_equal(const struct route_config *a, const struct route_config *b);

#endif
