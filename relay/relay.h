/*
 * relay.h - the adbd-relay daemon: its configuration, its routes, and the
 * operations the control socket and signals invoke on it.
 */
#ifndef RELAY_RELAY_H
#define RELAY_RELAY_H

#include <stdint.h>
#include <uv.h>

#include "conf.h"
#include "route.h"

struct control;

struct relay {
	uv_loop_t *loop;
	struct relay_config cfg;
	const char *config_path;        /* NULL: routes from the command line only */
	struct route_config cli_route;
	int have_cli_route;
	struct route *routes;
	struct control *control;
	uint64_t started_ms;
};

/* Start every route in cfg. Returns how many did not start (each logged
 * with its reason; they retry by themselves). */
int relay_start_routes(struct relay *rl);
/* Re-read the configuration file: unchanged routes stay untouched, changed
 * ones restart, removed ones stop, new ones start. */
void relay_reload(struct relay *rl);
void relay_stop(struct relay *rl);

/* Control-socket replies. */
struct strbuf;
void status_text(const struct relay *rl, struct strbuf *out);
void status_json(const struct relay *rl, struct strbuf *out);
/* Returns 1 if healthy; writes "healthy ..." or "unhealthy: reason" lines. */
int health_check(const struct relay *rl, const char *route, struct strbuf *out);

#endif
