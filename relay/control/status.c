/* SPDX-License-Identifier: Apache-2.0 */
/*
 * status.c - what `adbd-relayctl status` and `health` print: per-route
 * front and guest state with the time since the last change, a route
 * that is not started with its reason and its next attempt, the idle
 * probe's last result, counters, and the process's open descriptors and
 * resident memory.
 */
#include "relay/control/status.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "relay/control/strbuf.h"
#include "relay/mdns/mdns.h"
#include "relay/relay.h"
#include "relay/sys/sys.h"
#include "usb/usb.h"
#include "vsock/vsock.h"

static double ago_s(uint64_t since)
{
	uint64_t now = clock_mono_ms();

	return since && now > since ? (double)(now - since) / 1000.0 : 0.0;
}

static void probe_text(const struct route *r, struct strbuf *out)
{
	const struct probe_result *p = &r->probe_last;

	if (r->cfg.probe_interval_ms == 0) {
		strbuf_printf(out, "  probe   off\n");
		return;
	}
	strbuf_printf(out, "  probe   %s every %u ms, %llu run, %llu failed",
		      probe_mode_name(r->cfg.probe_mode), r->cfg.probe_interval_ms,
		      (unsigned long long)r->probes, (unsigned long long)r->probe_failures);
	if (r->probe_last_at == 0)
		strbuf_printf(out, "\n");
	else if (p->ok)
		strbuf_printf(out, "; last %.1f s ago: ok in %.1f ms: %s\n",
			      ago_s(r->probe_last_at), p->rtt_ms, p->detail);
	else
		strbuf_printf(out, "; last %.1f s ago: failed: %s\n", ago_s(r->probe_last_at),
			      p->detail);
}

static double until_s(uint64_t when)
{
	uint64_t now = clock_mono_ms();

	return when > now ? (double)(when - now) / 1000.0 : 0.0;
}

/* "not started for 12 s (3 attempts): REASON; next attempt in 4 s", or
 * for a front whose address is on no interface yet "waiting for its
 * address for 12 s (12 attempts): REASON (retrying every 1 s)" */
static void not_started_text(const struct route *r, struct strbuf *out)
{
	if (r->waiting_for_address) {
		strbuf_printf(out, "waiting for its address for %.0f s (%u attempts): %s "
			      "(retrying every %u s)", ago_s(r->start_failed_since),
			      r->start_attempts, r->start_error, ROUTE_ADDR_POLL_MS / 1000);
		return;
	}
	strbuf_printf(out, "not started for %.0f s (%u attempts): %s; next attempt in %.0f s",
		      ago_s(r->start_failed_since), r->start_attempts, r->start_error,
		      until_s(r->retry_at));
}

static void front_text(const struct route *r, struct strbuf *out)
{
	char front[96];

	front_spec_format(&r->cfg.front, front, sizeof(front));
	strbuf_printf(out, "  front   %s ", front);
	if (r->state == ROUTE_NOT_STARTED)
		not_started_text(r, out);
	else if (r->state == ROUTE_WAITING)
		strbuf_printf(out, "waiting for %.0f s for its previous USB function to close",
			      ago_s(r->front_since));
	else
		strbuf_printf(out, "%s for %.0f s, %u client(s)", front_state_name(r->front),
			      ago_s(r->front_since), r->nsessions);
	strbuf_printf(out, "\n");
}

/* the instance it publishes now (renamed after a conflict), on which host,
 * and the claims on its names since it was last announced */
static void mdns_text(const struct route *r, struct strbuf *out)
{
	unsigned n;

	if (r->cfg.mdns[0] == '\0')
		return;
	if (r->mdns == NULL) {
		strbuf_printf(out, "  mdns    \"%s._adb._tcp.local\": not published (the route has not started)\n",
			      r->cfg.mdns);
		return;
	}
	strbuf_printf(out, "  mdns    \"%s._adb._tcp.local\" on %s: %s",
		      mdns_service_name(r->mdns), mdns_host_name(),
		      mdns_state_name(mdns_service_state(r->mdns)));
	n = mdns_service_conflicts(r->mdns);
	if (n > 0)
		strbuf_printf(out, " (conflicts %u%s)", n,
			      mdns_service_slowed(r->mdns) ? ", one probe every 5 s" : "");
	strbuf_printf(out, "\n");
}

void status_text(const struct relay *rl, struct strbuf *out)
{
	strbuf_printf(out, "adbd-relay pid %d, up %.0f s, %d open fds, rss %ld KiB\n",
		      (int)getpid(), ago_s(rl->started_ms), procstat_open_fds(),
		      procstat_rss_kib());
	for (const struct route *r = rl->routes; r; r = r->next) {
		char tgt[VSOCK_SPEC_MAX];

		vsock_target_format(&r->cfg.target, tgt, sizeof(tgt));
		strbuf_printf(out, "route %s\n", r->cfg.name);
		front_text(r, out);
		mdns_text(r, out);
		strbuf_printf(out, "  guest   %s %s for %.0f s (%s)\n", tgt,
			      guest_state_name(r->guest), ago_s(r->guest_since), r->guest_reason);
		probe_text(r, out);
		strbuf_printf(out, "  to guest %llu frames %llu bytes, to host %llu frames %llu bytes\n",
			      (unsigned long long)r->st.frames[DIR_TO_GUEST],
			      (unsigned long long)r->st.bytes[DIR_TO_GUEST],
			      (unsigned long long)r->st.frames[DIR_TO_HOST],
			      (unsigned long long)r->st.bytes[DIR_TO_HOST]);
		strbuf_printf(out, "  streams %u open, reconnects %llu, errors %llu, refused opens %llu, stale dropped %llu, guest paused %llu\n",
			      route_open_streams(r), (unsigned long long)r->st.reconnects,
			      (unsigned long long)r->st.errors,
			      (unsigned long long)r->st.refused_opens,
			      (unsigned long long)r->st.stale_dropped,
			      (unsigned long long)r->st.guest_paused);
		strbuf_printf(out, "  guest restarts shown to the PC %llu (guest-restart %s), OPENs held %llu (open-wait %u ms)\n",
			      (unsigned long long)r->st.restarts_shown,
			      guest_restart_name(r->cfg.guest_restart),
			      (unsigned long long)r->st.opens_held, r->cfg.open_wait_ms);
		strbuf_printf(out, "  pipeline %s: WRTEs acknowledged by the relay %llu, of them lost with a guest link %llu\n",
			      r->cfg.pipeline ? "on" : "off",
			      (unsigned long long)r->st.acked_early,
			      (unsigned long long)r->st.acked_lost);
		strbuf_printf(out, "  payload bytes to the guest spliced (not copied) %llu\n",
			      (unsigned long long)r->st.spliced);
		if (r->last_error[0])
			strbuf_printf(out, "  last error %.0f s ago: %s\n", ago_s(r->last_error_at),
				      r->last_error);
	}
}

static void json_u64(struct strbuf *out, const char *key, uint64_t v)
{
	strbuf_printf(out, ",\"%s\":%llu", key, (unsigned long long)v);
}

/* "mdns":null, or {"instance": the name it has now, "host", "state"} (state
 * "not published" while the route has not started), "conflicts" (claims on
 * its names since it was last announced), "slowed" (probes 5 s apart) */
static void json_mdns(const struct route *r, struct strbuf *out)
{
	if (r->cfg.mdns[0] == '\0') {
		strbuf_printf(out, ",\"mdns\":null");
		return;
	}
	strbuf_printf(out, ",\"mdns\":{\"instance\":");
	strbuf_json_str(out, r->mdns ? mdns_service_name(r->mdns) : r->cfg.mdns);
	strbuf_printf(out, ",\"host\":");
	strbuf_json_str(out, r->mdns ? mdns_host_name() : "");
	strbuf_printf(out, ",\"state\":");
	strbuf_json_str(out, r->mdns ? mdns_state_name(mdns_service_state(r->mdns)) : "not published");
	strbuf_printf(out, ",\"conflicts\":%u,\"slowed\":%s}", r->mdns ? mdns_service_conflicts(r->mdns) : 0,
		      r->mdns && mdns_service_slowed(r->mdns) ? "true" : "false");
}

/* "probe":{...}: the last result's fields are null until one has ended */
static void json_probe(const struct route *r, struct strbuf *out)
{
	const struct probe_result *p = &r->probe_last;
	uint64_t now = clock_mono_ms();

	strbuf_printf(out, ",\"probe\":{\"mode\":\"%s\"", probe_mode_name(r->cfg.probe_mode));
	json_u64(out, "interval_ms", r->cfg.probe_interval_ms);
	json_u64(out, "count", r->probes);
	json_u64(out, "failures", r->probe_failures);
	if (r->probe_last_at == 0) {
		strbuf_printf(out, ",\"ok\":null,\"rtt_ms\":null,\"age_ms\":null,\"at_ms\":null,"
			      "\"detail\":null}");
		return;
	}
	strbuf_printf(out, ",\"ok\":%s", p->ok ? "true" : "false");
	if (p->ok)
		strbuf_printf(out, ",\"rtt_ms\":%.3f", p->rtt_ms);
	else
		strbuf_printf(out, ",\"rtt_ms\":null");
	json_u64(out, "age_ms", now > r->probe_last_at ? now - r->probe_last_at : 0);
	json_u64(out, "at_ms", clock_wall_ms(r->probe_last_at));
	strbuf_printf(out, ",\"detail\":");
	strbuf_json_str(out, p->detail);
	strbuf_printf(out, "}");
}

static void json_route(const struct route *r, struct strbuf *out)
{
	char front[96], tgt[VSOCK_SPEC_MAX];

	front_spec_format(&r->cfg.front, front, sizeof(front));
	vsock_target_format(&r->cfg.target, tgt, sizeof(tgt));
	strbuf_printf(out, "{\"name\":");
	strbuf_json_str(out, r->cfg.name);
	/* "state" and why it is not started; the next attempt in ms from now */
	strbuf_printf(out, ",\"state\":\"%s\",\"start_error\":", route_state_name(r->state));
	strbuf_json_str(out, r->start_error);
	json_u64(out, "start_attempts", r->start_attempts);
	strbuf_printf(out, ",\"waiting_for_address\":%s",
		      r->state == ROUTE_NOT_STARTED && r->waiting_for_address ? "true" : "false");
	if (r->state == ROUTE_NOT_STARTED) {
		json_u64(out, "start_failed_since_ms", clock_wall_ms(r->start_failed_since));
		json_u64(out, "next_attempt_in_ms", (uint64_t)(until_s(r->retry_at) * 1000.0));
	} else {
		strbuf_printf(out, ",\"start_failed_since_ms\":null,\"next_attempt_in_ms\":null");
	}
	strbuf_printf(out, ",\"front\":");
	strbuf_json_str(out, front);
	strbuf_printf(out, ",\"front_state\":\"%s\",\"front_since_ms\":%llu",
		      front_state_name(r->front), (unsigned long long)clock_wall_ms(r->front_since));
	strbuf_printf(out, ",\"target\":");
	strbuf_json_str(out, tgt);
	strbuf_printf(out, ",\"guest_state\":\"%s\",\"guest_since_ms\":%llu,\"guest_reason\":",
		      guest_state_name(r->guest),
		      (unsigned long long)clock_wall_ms(r->guest_since));
	strbuf_json_str(out, r->guest_reason);
	json_u64(out, "clients", r->nsessions);
	json_u64(out, "open_streams", route_open_streams(r));
	json_u64(out, "frames_to_guest", r->st.frames[DIR_TO_GUEST]);
	json_u64(out, "bytes_to_guest", r->st.bytes[DIR_TO_GUEST]);
	json_u64(out, "frames_to_host", r->st.frames[DIR_TO_HOST]);
	json_u64(out, "bytes_to_host", r->st.bytes[DIR_TO_HOST]);
	json_u64(out, "sessions_total", r->st.sessions);
	json_u64(out, "reconnects", r->st.reconnects);
	json_u64(out, "errors", r->st.errors);
	json_u64(out, "refused_opens", r->st.refused_opens);
	json_u64(out, "stale_dropped", r->st.stale_dropped);
	json_u64(out, "cut_frames", r->st.cut_frames);
	json_u64(out, "guest_refused", r->st.guest_refused);
	json_u64(out, "guest_paused", r->st.guest_paused);
	json_u64(out, "opens_held", r->st.opens_held);
	json_u64(out, "restarts_shown", r->st.restarts_shown);
	strbuf_printf(out, ",\"pipeline\":%s", r->cfg.pipeline ? "true" : "false");
	json_u64(out, "acked_early", r->st.acked_early);
	json_u64(out, "acked_lost", r->st.acked_lost);
	json_u64(out, "spliced_to_guest", r->st.spliced);
	strbuf_printf(out, ",\"guest_restart\":");
	strbuf_json_str(out, guest_restart_name(r->cfg.guest_restart));
	json_u64(out, "open_wait_ms", r->cfg.open_wait_ms);
	strbuf_printf(out, ",\"last_error\":");
	strbuf_json_str(out, r->last_error);
	json_u64(out, "last_error_ms", clock_wall_ms(r->last_error_at));
	json_probe(r, out);
	json_mdns(r, out);
	if (r->cfg.front.kind == FRONT_USB) {
		const struct usb_stats *u = &r->usb.st;

		strbuf_printf(out, ",\"usb\":{\"state\":\"%s\"", usb_state_name(r->usb.state));
		json_u64(out, "binds", u->binds);
		json_u64(out, "unbinds", u->unbinds);
		json_u64(out, "enables", u->enables);
		json_u64(out, "disables", u->disables);
		json_u64(out, "setups", u->setups);
		json_u64(out, "halts", u->halts);
		json_u64(out, "drops", u->drops);
		json_u64(out, "out_transfers", u->out_xfers);
		json_u64(out, "in_transfers", u->in_xfers);
		strbuf_printf(out, "}");
	}
	strbuf_printf(out, "}");
}

void status_json(const struct relay *rl, struct strbuf *out)
{
	strbuf_printf(out, "{\"pid\":%d,\"uptime_ms\":%llu,\"open_fds\":%d,\"rss_kib\":%ld,\"routes\":[",
		      (int)getpid(), (unsigned long long)(clock_mono_ms() - rl->started_ms),
		      procstat_open_fds(), procstat_rss_kib());
	for (const struct route *r = rl->routes; r; r = r->next) {
		json_route(r, out);
		if (r->next)
			strbuf_printf(out, ",");
	}
	strbuf_printf(out, "]}\n");
}

static int route_healthy(const struct route *r, struct strbuf *out)
{
	if (r->state == ROUTE_NOT_STARTED) {
		strbuf_printf(out, "route %s: ", r->cfg.name);
		not_started_text(r, out);
		strbuf_printf(out, "\n");
		return 0;
	}
	if (!front_serving(r->front)) {
		strbuf_printf(out, "route %s: front %s\n", r->cfg.name, front_state_name(r->front));
		return 0;
	}
	if (r->guest != GUEST_UP) {
		strbuf_printf(out, "route %s: guest %s for %.0f s: %s\n", r->cfg.name,
			      guest_state_name(r->guest), ago_s(r->guest_since), r->guest_reason);
		return 0;
	}
	return 1;
}

int health_check(const struct relay *rl, const char *route, struct strbuf *out)
{
	struct strbuf why;
	int healthy = 1, found = 0;

	strbuf_init(&why, 64 * 1024);
	for (const struct route *r = rl->routes; r; r = r->next) {
		if (route != NULL && strcmp(route, r->cfg.name) != 0)
			continue;
		found = 1;
		healthy &= route_healthy(r, &why);
	}
	if (route != NULL && !found) {
		strbuf_printf(out, "unhealthy: no route named %s\n", route);
		healthy = 0;
	} else if (!found) {
		strbuf_printf(out, "unhealthy: no routes\n");
		healthy = 0;
	} else if (healthy) {
		strbuf_printf(out, "healthy\n");
	} else {
		strbuf_printf(out, "unhealthy\n%s", why.s ? why.s : "");
	}
	strbuf_free(&why);
	return healthy;
}
