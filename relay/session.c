/* SPDX-License-Identifier: Apache-2.0 */
/*
 * session.c - the adb-aware session: one PC connection relayed to one
 * guest link, frame by frame, cut-through.
 *
 * Host -> guest: every frame is decided at its header (forward to the
 * current link, drop, or answer with CLSE) and its payload follows that
 * decision, so a new guest link always starts at a frame boundary with the
 * replayed host CNXN. The guest link is made once the host's CNXN is in
 * (a TCP PC has HOST_CNXN_TIMEOUT_MS to send it).
 * Guest -> host: a frame is held until whole (the guest is told a max
 * payload its pool can hold), passes the shield, and goes out in one
 * piece; when the link is lost a frame cut short is dropped, never made
 * up, every open stream is closed towards the host and the relay
 * reconnects with backoff, leaving the PC's transport registered.
 * The new link's CNXN goes on to the PC only if it differs from the one
 * the PC has (guest_cnxn_pass): adb's host treats a device CNXN on an
 * online transport as a reconnect, closing every stream and dropping the
 * transport's forwards, which a guest that came back the same need not
 * cost it. A changed guest (another build, features or max payload) is
 * passed on, and adb's own rule applies.
 */
#include "relay/session.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "relay/obs/obs.h"
#include "relay/sys/sys.h"

#define SYNTH_PENDING_MAX (64 * 1024)
/* Frames the shield may refuse on one guest link before the relay drops
 * it: a guest that floods refused frames costs CPU, not only memory. */
#define GUEST_REFUSED_MAX 1000
#define G2H_STALE (-1)
#define G2H_BEHIND (-2)   /* a CLSE that waits behind a held frame */
/* Bytes of full reads of the host in one loop turn, then the turn ends:
 * what libuv's own limit, 32 reads, comes to with 64 KiB buffers. */
#define HOST_TURN_BYTES (2u * 1024 * 1024)
/* A host WRTE's payload is spliced when this much of it is still to come
 * (measured on this 2-core machine, CPU per MiB of read and write against
 * splice in and out, TCP to AF_UNIX: splice costs 0.85 of a copy at 4 KiB,
 * 0.75 at 16 KiB, 0.4 at 1 MiB; with the header read alone it pays from
 * about 16 KiB). */
#define SPLICE_MIN (32 * 1024)
/* ... and at most this much per read readiness, so the other side and the
 * other sessions get their turn. */
#define SPLICE_MAX (256 * 1024)

static void guest_connect(struct session *s);
static void on_cnxn_deadline(uv_timer_t *t);
static void guest_lost(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void update_reading(struct session *s);
static void release_held_opens(struct session *s);
static void on_open_wait(uv_timer_t *t);

/* ---- what the owner is told ---- */

static void owner_error(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void owner_error(struct session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	s->owner->ops->error(s->owner->data, fmt, ap);
	va_end(ap);
}

static void owner_guest_state(struct session *s, enum guest_state st, const char *reason)
{
	s->owner->ops->guest_state(s->owner->data, st, reason);
}

static void trace_frame(struct session *s, const char *dir, const struct adb_header *h,
			const char *verdict)
{
	if (!tap_wanted(s->owner->name))
		return;
	tap_line(s->owner->name, "route=%s peer=%s adb %s %s arg0=%u arg1=%u len=%u%s%s",
		 s->owner->name, s->peer, dir, adb_command_name(h->command),
		 h->arg0, h->arg1, h->data_length, verdict ? " " : "", verdict ? verdict : "");
}

static uint64_t now(const struct session *s)
{
	return uv_now(s->owner->loop);
}

/* ---- frames the relay makes up ---- */

void session_synth_to_host(struct session *s, uint32_t cmd, uint32_t arg0, uint32_t arg1)
{
	struct adb_header h;

	adb_header_init(&h, cmd, arg0, arg1, 0, 0);
	output_frame(&s->to_host, &h, 1);
	trace_frame(s, "relay->host", &h, "(synthesized)");
	if (capture_wanted(s->owner->name)) {
		uint8_t raw[ADB_HEADER_SIZE];

		adb_header_encode(&h, raw);
		capture_header(s->owner->name, s->id, 1, raw);
	}
}

static void send_clse_to_host(struct session *s, uint32_t guest_id, uint32_t host_id)
{
	session_synth_to_host(s, ADB_CMD_CLSE, guest_id, host_id);
}

static void emit_to_guest(struct session *s, uint32_t cmd, uint32_t arg0, uint32_t arg1)
{
	struct adb_header h;

	adb_header_init(&h, cmd, arg0, arg1, 0, 0);
	output_frame(&s->to_guest, &h, 1);
	trace_frame(s, "relay->guest", &h, "(synthesized)");
}

/* Is a host frame half forwarded to the guest (so nothing may go between)? */
static int host_frame_open(const struct session *s)
{
	return s->h2g_forward && s->h2g_gen == s->link_gen && !adb_reader_at_boundary(&s->host_rd);
}

int session_host_frame_open(const struct session *s)
{
	return host_frame_open(s);
}

int session_synth_to_guest_room(const struct session *s)
{
	return !host_frame_open(s) || s->nguest_synth < GUEST_SYNTH_QUEUE;
}

/* A frame the relay makes up goes to the guest after the host frame
 * being forwarded, if any. */
int session_synth_to_guest(struct session *s, uint32_t cmd, uint32_t arg0, uint32_t arg1)
{
	if (!host_frame_open(s)) {
		emit_to_guest(s, cmd, arg0, arg1);
		return 0;
	}
	if (s->nguest_synth == GUEST_SYNTH_QUEUE)
		return -1;
	s->guest_synth[s->nguest_synth].cmd = cmd;
	s->guest_synth[s->nguest_synth].arg0 = arg0;
	s->guest_synth[s->nguest_synth].arg1 = arg1;
	s->nguest_synth++;
	return 0;
}

/* CLSE towards the guest, for an OPEN of its own that is refused. */
static void send_clse_to_guest(struct session *s, uint32_t guest_id)
{
	session_synth_to_guest(s, ADB_CMD_CLSE, 0, guest_id);
}

static void flush_guest_synth(struct session *s)
{
	for (unsigned i = 0; i < s->nguest_synth; i++)
		emit_to_guest(s, s->guest_synth[i].cmd, s->guest_synth[i].arg0,
			      s->guest_synth[i].arg1);
	s->nguest_synth = 0;
}

/* A whole frame the pipeline held (header and payload in one heap block,
 * which the output frees) goes to the PC, or to the guest. */
void session_frame_to_host(struct session *s, uint8_t *frame, size_t len)
{
	struct adb_header h;

	adb_header_decode(frame, &h);
	trace_frame(s, "guest->host", &h, "(held, pipelined)");
	if (capture_wanted(s->owner->name)) {
		capture_header(s->owner->name, s->id, 1, frame);
		capture_payload(s->owner->name, s->id, 1, frame + ADB_HEADER_SIZE,
				len - ADB_HEADER_SIZE);
	}
	s->owner->st->frames[DIR_TO_HOST]++;
	s->owner->st->bytes[DIR_TO_HOST] += len - ADB_HEADER_SIZE;
	output_owned(&s->to_host, frame, len, 0);
}

void session_frame_to_guest(struct session *s, uint8_t *frame, size_t len)
{
	struct adb_header h;

	adb_header_decode(frame, &h);
	trace_frame(s, "host->guest", &h, "(held, pipelined)");
	s->owner->st->frames[DIR_TO_GUEST]++;
	s->owner->st->bytes[DIR_TO_GUEST] += len - ADB_HEADER_SIZE;
	output_owned(&s->to_guest, frame, len, 0);
}

/* A header's max payload (arg1) replaced. */
static void set_arg1(uint8_t raw[ADB_HEADER_SIZE], uint32_t v)
{
	raw[8] = (uint8_t)v;
	raw[9] = (uint8_t)(v >> 8);
	raw[10] = (uint8_t)(v >> 16);
	raw[11] = (uint8_t)(v >> 24);
}

static void replay_cnxn(struct session *s)
{
	void *copy;

	if (!s->cnxn_complete || s->link != LINK_UP || s->cnxn_sent_gen == s->link_gen)
		return;
	copy = malloc(s->cnxn_len);
	if (copy == NULL) {
		guest_lost(s, "out of memory replaying CNXN");
		return;
	}
	memcpy(copy, s->cnxn, s->cnxn_len);
	if (output_owned(&s->to_guest, copy, s->cnxn_len, 1) != 0 ||
	    output_flush(&s->to_guest) != 0) {
		guest_lost(s, "cannot write to guest");
		return;
	}
	s->cnxn_sent_gen = s->link_gen;
	log_debug("route %s: peer %s: replayed host CNXN on guest link %u",
		  s->owner->name, s->peer, s->links_made);
}

static int guest_ready(const struct session *s)
{
	return s->link == LINK_UP && s->guest_online;
}

/* ---- streams as a field engineer follows them (debug) ---- */

/* One line per stream event at log-level debug, with its service name as
 * the PC sent it (escaped); the PC causes these lines, so they are
 * rate-limited per cause like every other such line. */
static void log_stream(struct session *s, const char *what, uint32_t host_id,
		       const uint8_t *service, size_t len)
{
	char name[HOST_OPEN_KEEP * 4 + 1];
	const uint8_t *nul = memchr(service, '\0', len);

	if (log_get_level() < LOG_LVL_DEBUG)
		return;
	if (nul != NULL)
		len = (size_t)(nul - service);
	log_escape(name, sizeof(name), (const char *)service, len < HOST_OPEN_KEEP ? len : HOST_OPEN_KEEP);
	log_limited(LOG_LVL_DEBUG, s->owner->name, what, "route %s: peer %s: OPEN of stream %u %s: \"%s\"",
		    s->owner->name, s->peer, host_id, what, name);
}

/* ---- restarts the PC asked for ---- */

static void restart_asked(struct session *s, const char *name)
{
	s->restart_asked_ms = now(s) ? now(s) : 1;
	snprintf(s->restart_asked, sizeof(s->restart_asked), "%s", name);
	log_limited(LOG_LVL_INFO, s->owner->name, "restart asked",
		    "route %s: peer %s: the PC asked the guest to restart (%s)", s->owner->name,
		    s->peer, name);
}

/* The PC opened stream HOST_ID to SERVICE on the guest. */
static void host_open_forwarded(struct session *s, uint32_t host_id, const uint8_t *service,
				size_t len)
{
	char name[RESTART_NAME_MAX];

	shield_host_open(&s->shield, service, len);
	log_stream(s, "forwarded", host_id, service, len);
	switch (restart_service_ask(service, len, name)) {
	case RESTART_ASK_NONE:
		break;
	case RESTART_ASK_IF_REPLY:
		s->restart_watch = host_id;
		memcpy(s->restart_watch_name, name, sizeof(name));
		break;
	case RESTART_ASK_AT_OPEN:
		restart_asked(s, name);
		break;
	}
}

/* A guest WRTE on a stream whose reply says whether adbd restarts. */
static void watch_restart_reply(struct session *s, const struct adb_header *h)
{
	uint8_t reply[64];
	size_t n;

	if (s->restart_watch == 0 || h->arg1 != s->restart_watch)
		return;
	n = framehold_copy(&s->g2h, reply, sizeof(reply));
	if (restart_reply_says(reply, n))
		restart_asked(s, s->restart_watch_name);
	s->restart_watch = 0;
}

/* Is this loss of the guest link one the PC is to see? */
static int restart_is_shown(const struct session *s)
{
	switch (s->owner->guest_restart) {
	case GUEST_RESTART_HIDE:
		return 0;
	case GUEST_RESTART_SHOW:
		return 1;
	case GUEST_RESTART_REQUESTED:
		break;
	}
	return s->restart_asked_ms != 0 && now(s) - s->restart_asked_ms <= RESTART_ASK_MS;
}

/* ---- OPENs that wait for the guest ---- */

static void arm_open_wait(struct session *s)
{
	uint64_t next = openhold_next_deadline(&s->held), t = now(s);

	if (next == 0)
		uv_timer_stop(&s->open_wait);
	else
		uv_timer_start(&s->open_wait, on_open_wait, next > t ? next - t : 0, 0);
}

/* The held OPENs whose time is up are answered with CLSE. */
static void on_open_wait(uv_timer_t *t)
{
	struct session *s = t->data;
	uint32_t id;
	unsigned n = 0;

	while (openhold_expire(&s->held, now(s), &id)) {
		s->owner->st->refused_opens++;
		send_clse_to_host(s, 0, id);
		n++;
	}
	if (n > 0)
		log_limited(LOG_LVL_INFO, s->owner->name, "held OPEN refused",
			    "route %s: peer %s: %u OPEN%s refused: the guest was not back within %u ms",
			    s->owner->name, s->peer, n, n == 1 ? "" : "s", s->owner->open_wait_ms);
	if (output_flush(&s->to_host) != 0) {
		session_close(s, "write to host failed");
		return;
	}
	arm_open_wait(s);
	update_reading(s);
}

/* The guest is back as the PC knows it: the held OPENs go to it, in the
 * order the PC sent them (never into the middle of a host frame). */
static void release_held_opens(struct session *s)
{
	uint8_t *frame;
	size_t len;
	uint32_t id;

	if (s->held.n == 0 || !guest_ready(s) || host_frame_open(s))
		return;
	while (openhold_take(&s->held, &frame, &len, &id)) {
		struct adb_header oh;

		if (streams_find_host(&s->streams, id) >= 0 ||
		    streams_add(&s->streams, id, 0) != 0) {
			free(frame);
			s->owner->st->refused_opens++;
			send_clse_to_host(s, 0, id);
			continue;
		}
		adb_header_decode(frame, &oh);
		pipeline_opened(s, s->streams.n - 1, oh.arg1);
		host_open_forwarded(s, id, frame + ADB_HEADER_SIZE, len - ADB_HEADER_SIZE);
		s->owner->st->frames[DIR_TO_GUEST]++;
		s->owner->st->bytes[DIR_TO_GUEST] += len - ADB_HEADER_SIZE;
		if (output_owned(&s->to_guest, frame, len, 1) != 0) {
			guest_lost(s, "out of memory releasing a held OPEN");
			return;
		}
	}
	arm_open_wait(s);
	if (output_flush(&s->to_guest) != 0)
		guest_lost(s, "write to guest failed");
	output_flush(&s->to_host);
}

/* ---- host -> guest ---- */

static void forget_streams(struct session *s)
{
	for (size_t i = 0; i < s->streams.n; i++)
		pipeline_forget(s, i);
	streams_clear(&s->streams);
	shield_streams_gone(&s->shield);
}

/* Decide what happens to a host frame; returns 1 to forward it. */
static int host_frame_verdict(struct session *s, const struct adb_header *h)
{
	struct session_stats *st = s->owner->st;
	const struct session_owner *o = s->owner;
	long i;

	if (h->command != ADB_CMD_CNXN && s->cnxn_len == 0 && !s->stale_told) {
		s->stale_told = 1;
		if (o->ops->host_stale != NULL && o->ops->host_stale(o->data, s))
			s->stale_close = 1;
	}
	switch (h->command) {
	case ADB_CMD_CNXN:
		s->cnxn_len = 0;
		s->cnxn_complete = 0;
		s->restart_watch = 0;
		/* the PC starts over: it is owed the guest's CNXN, and has
		 * forgotten its streams, those it was waiting for too (adbd
		 * closes its own on the CNXN); what the relay held for them goes */
		s->pc_cnxn_len = 0;
		openhold_clear(&s->held);
		forget_streams(s);
		return s->link == LINK_UP;
	case ADB_CMD_AUTH:
		return s->link == LINK_UP;
	case ADB_CMD_OPEN:
		if (!guest_ready(s)) {
			/* a PC whose transport is kept may wait for the guest */
			if (s->owner->open_wait_ms > 0 && s->guest_was_online && s->cnxn_complete &&
			    openhold_room(&s->held, h->data_length)) {
				s->h2g_hold = 1;
				return 0;
			}
			st->refused_opens++;
			send_clse_to_host(s, 0, h->arg0);
			return 0;
		}
		if (h->arg0 == 0 || streams_find_host(&s->streams, h->arg0) >= 0) {
			/* a PC's ids are its own and unique while open */
			st->refused_opens++;
			log_limited(LOG_LVL_WARN, s->owner->name, "OPEN id in use",
				    "route %s: peer %s: OPEN refused: stream id %u is 0 or in use",
				    s->owner->name, s->peer, h->arg0);
			send_clse_to_host(s, 0, h->arg0);
			return 0;
		}
		if (streams_add(&s->streams, h->arg0, 0) != 0) {
			st->refused_opens++;
			log_limited(LOG_LVL_WARN, s->owner->name, "max-streams",
				    "route %s: peer %s: OPEN refused: %zu streams open (max-streams)",
				    s->owner->name, s->peer, s->streams.n);
			send_clse_to_host(s, 0, h->arg0);
			return 0;
		}
		pipeline_opened(s, s->streams.n - 1, h->arg1);
		return 1;
	case ADB_CMD_OKAY:
	case ADB_CMD_WRTE:
	case ADB_CMD_CLSE:
		/* the PC gave up an OPEN that waits for the guest */
		if (h->command == ADB_CMD_CLSE && h->arg1 == 0 && openhold_remove(&s->held, h->arg0))
			return 0;
		if (!guest_ready(s))
			break;
		i = h->arg0 ? streams_find_host(&s->streams, h->arg0) : -1;
		if (i < 0 && h->command != ADB_CMD_WRTE) {
			/* answer to a stream the guest opened: known by guest id only */
			i = streams_find_guest(&s->streams, h->arg1);
			if (i >= 0 && s->streams.v[i].host_id != 0)
				i = -1;
		}
		if (i < 0)
			break;
		if (s->streams.v[i].host_id == 0)
			shield_open_answered(&s->shield);
		if (h->command == ADB_CMD_CLSE) {
			if (pipeline_host_clse(s, (size_t)i))
				return 0;       /* it follows the held frame */
			pipeline_forget(s, (size_t)i);
			streams_remove_at(&s->streams, (size_t)i);
		} else if (s->streams.v[i].host_id == 0) {
			if (h->arg0 == 0 || streams_find_host(&s->streams, h->arg0) >= 0)
				break;  /* an id the PC uses already */
			s->streams.v[i].host_id = h->arg0;
			pipeline_established(s, (size_t)i);
		} else if (h->command == ADB_CMD_OKAY && pipeline_host_okay(s, (size_t)i, h)) {
			return 0;               /* the relay answered the guest already */
		}
		return 1;
	}
	st->stale_dropped++;
	return 0;
}

/* The OPEN in h waits for the guest (its service follows). */
static void hold_open(struct session *s, const struct adb_header *h, const uint8_t *raw)
{
	const struct session_owner *o = s->owner;

	if (openhold_begin(&s->held, raw, h->arg0, h->data_length,
			   now(s) + o->open_wait_ms) != 0) {
		s->h2g_hold = 0;
		o->st->refused_opens++;
		send_clse_to_host(s, 0, h->arg0);
		return;
	}
	o->st->opens_held++;
	if (!uv_is_active((uv_handle_t *)&s->open_wait))
		uv_timer_start(&s->open_wait, on_open_wait, o->open_wait_ms, 0);
}

/* Can payload go from the PC's socket to the guest's by splice? A TCP
 * front, a TCP or AF_UNIX guest socket, and no capture (which sees every
 * payload byte). */
static int splice_route(const struct session *s)
{
	return s->host->ops->splice_fd != NULL && s->guest != NULL &&
	       s->guest->ops->splice_fd != NULL && !capture_wanted(s->owner->name);
}

/* adb's host sends STLS only in answer to a device's, and the relay passes
 * none of the guest's (guest_header): from the PC it is out of protocol,
 * and what follows it is TLS records, not adb frames */
#define PC_STLS_REASON "the PC asked for TLS, which the relay does not pass"

static void host_header(struct session *s, const struct adb_frame_event *fe)
{
	const struct adb_header *h = &fe->header;
	int fwd;
	uint8_t raw[ADB_HEADER_SIZE];

	if (h->command == ADB_CMD_STLS) {
		s->owner->st->errors++;
		owner_error(s, "peer %s: " PC_STLS_REASON, s->peer);
		session_close(s, PC_STLS_REASON);
		return;
	}
	s->h2g_hold = 0;
	fwd = host_frame_verdict(s, h);
	if (s->h2g_hold)
		hold_open(s, h, fe->header_raw);
	if (fwd && h->command == ADB_CMD_WRTE) {
		long i = streams_find_host(&s->streams, h->arg0);

		int v = i >= 0 ? pipeline_host_wrte(s, (size_t)i, fe->header_raw, h) : 0;

		if (v != 0)
			fwd = 0;
		if (v < 0)
			s->owner->st->stale_dropped++;
	}
	memcpy(raw, fe->header_raw, ADB_HEADER_SIZE);
	s->h2g_forward = fwd;
	s->h2g_gen = s->link_gen;
	s->h2g_open_len = 0;
	if (h->command == ADB_CMD_CNXN) {
		/* the guest may send no frame larger than its pool can hold */
		if (h->arg1 > s->guest_max_payload)
			set_arg1(raw, s->guest_max_payload);
		memcpy(s->cnxn, raw, ADB_HEADER_SIZE);
		s->cnxn_len = ADB_HEADER_SIZE;
		if (fwd)
			s->cnxn_sent_gen = s->link_gen;
	}
	trace_frame(s, "host->guest", h,
		    fwd ? NULL : s->h2g_hold ? "(held: the guest is down)" :
		    s->h2g_pipe ? "(held: the guest has not taken the previous one)" :
		    "(not forwarded)");
	if (capture_wanted(s->owner->name))
		capture_header(s->owner->name, s->id, 0, fe->header_raw);
	s->h2g_big = fwd && h->command == ADB_CMD_WRTE && h->data_length >= SPLICE_MIN &&
		     splice_route(s);
	if (!fwd)
		return;
	s->owner->st->frames[DIR_TO_GUEST]++;
	output_header(&s->to_guest, raw, 0);
}

static void host_payload(struct session *s, struct poolbuf *b, const struct adb_frame_event *fe)
{
	if (capture_wanted(s->owner->name))
		capture_payload(s->owner->name, s->id, 0, fe->data, fe->len);
	if (fe->header.command == ADB_CMD_CNXN) {
		memcpy(s->cnxn + s->cnxn_len, fe->data, fe->len);
		s->cnxn_len += fe->len;
	}
	if (s->h2g_hold) {
		openhold_add(&s->held, fe->header.arg0, fe->data, fe->len);
		return;
	}
	if (s->h2g_pipe) {
		pipeline_host_payload(s, fe->data, fe->len);
		return;
	}
	if (!s->h2g_forward || s->h2g_gen != s->link_gen || s->link != LINK_UP)
		return;
	if (fe->header.command == ADB_CMD_OPEN && s->h2g_open_len < sizeof(s->h2g_open)) {
		size_t n = sizeof(s->h2g_open) - s->h2g_open_len;

		n = fe->len < n ? fe->len : n;
		memcpy(s->h2g_open + s->h2g_open_len, fe->data, n);
		s->h2g_open_len += n;
	}
	s->owner->st->bytes[DIR_TO_GUEST] += fe->len;
	output_slice(&s->to_guest, b, fe->data, fe->len);
}

static void host_frame_end(struct session *s, const struct adb_header *h)
{
	if (s->h2g_gen == s->link_gen)
		flush_guest_synth(s);
	if (h->command == ADB_CMD_WRTE)
		pipeline_host_wrte_end(s, h);
	pipeline_host_release(s);
	if (h->command == ADB_CMD_OPEN && s->h2g_hold) {
		const struct held_open *o = s->held.n > 0 ? &s->held.v[s->held.n - 1] : NULL;

		s->h2g_hold = 0;
		/* the OPEN may be gone while its service was arriving: its time
		 * ran out, or a changed guest or the PC's CNXN cleared the hold */
		if (o != NULL && o->host_id == h->arg0 && o->len == o->want)
			log_stream(s, "held", h->arg0, o->frame + ADB_HEADER_SIZE,
				   o->len - ADB_HEADER_SIZE);
	}
	/* OPENs held until the guest was back, and until no host frame was
	 * half way to it */
	release_held_opens(s);
	if (h->command == ADB_CMD_OPEN && s->h2g_forward) {
		host_open_forwarded(s, h->arg0, s->h2g_open, s->h2g_open_len);
		return;
	}
	if (h->command == ADB_CMD_CLSE && h->arg0 == s->restart_watch)
		s->restart_watch = 0;
	if (h->command == ADB_CMD_CLSE && s->h2g_forward)
		log_limited(LOG_LVL_DEBUG, s->owner->name, "host CLSE",
			    "route %s: peer %s: CLSE of stream %u (guest %u) from the PC",
			    s->owner->name, s->peer, h->arg0, h->arg1);
	if (h->command != ADB_CMD_CNXN)
		return;
	s->cnxn_complete = 1;
	if (s->link == LINK_IDLE) {
		uv_timer_stop(&s->backoff);
		guest_connect(s);
		return;
	}
	replay_cnxn(s);
}

static void host_input(struct session *s, struct poolbuf *b, const uint8_t *p, size_t len)
{
	struct adb_frame_event fe;
	enum adb_reader_event ev;

	while ((ev = adb_reader_next(&s->host_rd, &p, &len, &fe)) != ADB_EV_NEED_MORE) {
		switch (ev) {
		case ADB_EV_HEADER:
			host_header(s, &fe);
			break;
		case ADB_EV_PAYLOAD:
			host_payload(s, b, &fe);
			break;
		case ADB_EV_END:
			host_frame_end(s, &fe.header);
			break;
		default:
			s->owner->st->errors++;
			owner_error(s, "peer %s: bad frame from host: %s",
				    s->peer, adb_strerror(fe.error));
			session_close(s, "malformed input from host");
			return;
		}
		if (s->stale_close && ev == ADB_EV_END)
			session_close(s, "the PC kept a transport from before its CNXN");
		if (s->closing)
			return;
	}
	if (s->link == LINK_UP && output_flush(&s->to_guest) != 0)
		guest_lost(s, "write to guest failed");
	output_flush(&s->to_host);
}

/* ---- guest -> host ---- */

/* Is the guest's frame with header h let through? 1: yes (OPENs are
 * decided at the frame's end: their destination is the payload), 0:
 * refused, G2H_STALE: for a stream the PC does not have (it closed it, or
 * it never was), dropped. */
static int guest_header_pass(struct session *s, const struct adb_header *h)
{
	long i;

	switch (h->command) {
	case ADB_CMD_CNXN:
		/* the rate applies to repeats on one link; a link's first CNXN
		 * is decided when whole (guest_cnxn_pass) */
		if (s->guest_online)
			return shield_guest_handshake(&s->shield, now(s)) == SHIELD_PASS;
		return 1;
	case ADB_CMD_AUTH:
		return shield_guest_handshake(&s->shield, now(s)) == SHIELD_PASS;
	case ADB_CMD_OKAY:
		i = streams_find_host(&s->streams, h->arg1);
		if (i >= 0 && s->streams.v[i].guest_id == 0)
			s->streams.v[i].guest_id = h->arg0;
		return i >= 0 ? 1 : G2H_STALE;
	case ADB_CMD_WRTE:
		return streams_find_host(&s->streams, h->arg1) >= 0 ? 1 : G2H_STALE;
	case ADB_CMD_CLSE:
		i = h->arg1 ? streams_find_host(&s->streams, h->arg1)
			    : streams_find_guest(&s->streams, h->arg0);
		if (i < 0)
			return G2H_STALE;
		if (pipeline_guest_clse(s, (size_t)i))
			return G2H_BEHIND;
		pipeline_forget(s, (size_t)i);
		streams_remove_at(&s->streams, (size_t)i);
		return 1;
	}
	return 1;
}

/* The guest asked to open a stream on the PC: only to where the PC set up
 * a reverse forward, only so many and so fast; others get CLSE. */
static int guest_open_pass(struct session *s, const struct adb_header *h)
{
	const struct session_owner *o = s->owner;
	uint8_t dest[SHIELD_ADDR_MAX + 1];
	size_t n = framehold_copy(&s->g2h, dest, sizeof(dest));
	enum shield_verdict v = shield_guest_open(&s->shield, dest, n, now(s));

	if (v == SHIELD_PASS && streams_add(&s->streams, 0, h->arg0) != 0) {
		shield_open_answered(&s->shield);
		v = SHIELD_TOO_MANY;
	} else if (v == SHIELD_PASS) {
		pipeline_opened(s, s->streams.n - 1, h->arg1);
	}
	if (v == SHIELD_PASS)
		return 1;
	o->st->guest_refused++;
	send_clse_to_guest(s, h->arg0);
	log_limited(LOG_LVL_WARN, o->name, "guest OPEN refused",
		    "route %s: peer %s: guest OPEN of \"%.*s\" refused: %s", o->name,
		    s->peer, (int)strnlen((const char *)dest, n), (const char *)dest,
		    shield_verdict_name(v));
	return 0;
}

static void capture_frame(struct session *s)
{
	const struct frame_hold *f = &s->g2h;
	const char *name = s->owner->name;

	capture_header(name, s->id, 1, f->header);
	for (unsigned i = 0; i < f->n; i++)
		capture_payload(name, s->id, 1, f->s[i].p, f->s[i].len);
}

static int same_cnxn(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	struct adb_header ha, hb;

	if (alen != blen || alen < ADB_HEADER_SIZE)
		return 0;
	adb_header_decode(a, &ha);
	adb_header_decode(b, &hb);
	return ha.arg0 == hb.arg0 && ha.arg1 == hb.arg1 && ha.data_length == hb.data_length &&
	       memcmp(a + ADB_HEADER_SIZE, b + ADB_HEADER_SIZE, alen - ADB_HEADER_SIZE) == 0;
}

/* The guest's CNXN is whole (its max payload clamped in the held header).
 * The first on a link brings the session online towards the guest. Returns
 * 1 to pass it on to the PC, 0 when it is the first of a new link and the
 * same as the one the PC has: the PC's transport stays online as it is. */
static int guest_cnxn_pass(struct session *s)
{
	const struct session_owner *o = s->owner;
	uint8_t cnxn[ADB_HEADER_SIZE + ADB_HANDSHAKE_MAX];
	size_t len = ADB_HEADER_SIZE;
	int first = !s->guest_online;

	memcpy(cnxn, s->g2h.header, ADB_HEADER_SIZE);
	len += framehold_copy(&s->g2h, cnxn + ADB_HEADER_SIZE, ADB_HANDSHAKE_MAX);
	if (first) {
		s->guest_online = 1;
		s->guest_was_online = 1;
		s->backoff_attempt = s->links_cut;
		if (s->links_made > 1)
			o->st->reconnects++;
		owner_guest_state(s, GUEST_UP, "guest answered CNXN");
		if (!s->link_auth_sent && same_cnxn(cnxn, len, s->pc_cnxn, s->pc_cnxn_len)) {
			log_debug("route %s: peer %s: guest CNXN on link %u is the one the PC has: "
				  "absorbed, the PC's transport stays as it is", o->name, s->peer,
				  s->links_made);
			release_held_opens(s);
			return 0;
		}
		/* a changed guest: the PC drops its streams, the held ones too */
		openhold_clear(&s->held);
		arm_open_wait(s);
		if (s->pc_cnxn_len > 0) {
			struct adb_header was, is;
			char banner[512];

			adb_header_decode(s->pc_cnxn, &was);
			adb_header_decode(cnxn, &is);
			log_escape(banner, sizeof(banner), (const char *)cnxn + ADB_HEADER_SIZE,
				   len - ADB_HEADER_SIZE);
			log_limited(LOG_LVL_INFO, o->name, "guest CNXN changed",
				    "route %s: peer %s: guest on link %u answered with another CNXN "
				    "(version %#x, max payload %u, banner \"%s\"; the PC had %#x, %u%s): "
				    "passed on, the PC's adb closes every stream and drops its forwards",
				    o->name, s->peer, s->links_made, is.arg0, is.arg1, banner,
				    was.arg0, was.arg1,
				    s->link_auth_sent ? ", and got AUTH on this link" : "");
		}
	}
	memcpy(s->pc_cnxn, cnxn, len);
	s->pc_cnxn_len = len;
	return 1;
}

/* The guest keeps sending frames the relay refuses: its link is cut, and
 * the next ones wait longer, as after failed connects. A guest that answers
 * CNXN and floods again does not get to set the pace of its reconnects. */
static void guest_cut(struct session *s)
{
	guest_lost(s, "guest keeps sending frames the relay refuses (%u on this link)",
		   GUEST_REFUSED_MAX);
	if (s->links_cut < 32)
		s->links_cut++;
	s->backoff_attempt = s->links_cut;
}

static void on_taken_pause(uv_timer_t *t)
{
	struct session *s = t->data;

	s->taken_paused = 0;
	update_reading(s);
}

/* The relay takes the guest's frame itself (no PC reads it): dropped, and
 * charged to the guest's budget (shield.h); over it, the guest is not read
 * for a while. */
static void guest_frame_taken(struct session *s, const struct adb_header *h, const char *why)
{
	unsigned pause = shield_guest_taken(&s->shield, h->data_length, now(s));

	trace_frame(s, "guest->host", h, why);
	framehold_drop(&s->g2h);
	if (pause == 0 || s->taken_paused)
		return;
	s->owner->st->guest_paused++;
	if (!s->taken_told)     /* once a session: the status counts the others */
		log_limited(LOG_LVL_WARN, s->owner->name, "guest taken rate",
			    "route %s: peer %s: the guest sends frames the relay takes itself "
			    "(OKAYs it answered, frames of closed streams) faster than %u KiB/s: "
			    "not read for %u ms (each pause counted: guest_paused)",
			    s->owner->name, s->peer, SHIELD_TAKEN_RATE / 1024, pause);
	s->taken_told = 1;
	s->taken_paused = 1;
	uv_timer_start(&s->taken_pause, on_taken_pause, pause, 0);
	update_reading(s);
}

/* The guest's frame is whole: let it go to the host, or drop it. */
static void guest_frame_end(struct session *s, const struct adb_header *h)
{
	const struct session_owner *o = s->owner;
	int pass = s->g2h_pass;

	if (pass == G2H_STALE) {
		o->st->stale_dropped++;
		guest_frame_taken(s, h, "(no such stream)");
		return;
	}
	if (pass == G2H_BEHIND) {
		guest_frame_taken(s, h, "(follows the held frame)");
		return;
	}
	if (pass && h->command == ADB_CMD_OKAY && pipeline_guest_okay(s, h)) {
		guest_frame_taken(s, h, "(absorbed: the relay answered the PC already)");
		return;
	}
	if (pass && h->command == ADB_CMD_OPEN)
		pass = guest_open_pass(s, h);
	if (pass && h->command == ADB_CMD_CNXN && !guest_cnxn_pass(s)) {
		guest_frame_taken(s, h, "(absorbed: the PC has this CNXN)");
		return;
	}
	if (pass && h->command == ADB_CMD_AUTH)
		s->link_auth_sent = 1;
	if (pass && h->command == ADB_CMD_WRTE) {
		watch_restart_reply(s, h);
		if (pipeline_guest_hold(s, h)) {
			trace_frame(s, "guest->host", h, "(held: the PC has not taken the previous one)");
			return;
		}
	}
	trace_frame(s, "guest->host", h, pass ? NULL : "(refused)");
	if (!pass) {
		if (h->command != ADB_CMD_OPEN) {
			o->st->guest_refused++;
			log_limited(LOG_LVL_WARN, o->name, "guest frame refused",
				    "route %s: peer %s: guest %s refused: over the rate",
				    o->name, s->peer, adb_command_name(h->command));
		}
		framehold_drop(&s->g2h);
		if (++s->link_refused > GUEST_REFUSED_MAX)
			guest_cut(s);
		return;
	}
	if (h->command == ADB_CMD_CLSE && h->arg1 == s->restart_watch)
		s->restart_watch = 0;   /* closed without a reply that asks */
	if (h->command == ADB_CMD_CLSE)
		log_limited(LOG_LVL_DEBUG, o->name, "guest CLSE",
			    "route %s: peer %s: CLSE of stream %u (guest %u) from the guest",
			    o->name, s->peer, h->arg1, h->arg0);
	if (capture_wanted(o->name))
		capture_frame(s);
	o->st->frames[DIR_TO_HOST]++;
	o->st->bytes[DIR_TO_HOST] += s->g2h.len;
	framehold_release(&s->g2h, &s->to_host);
	if (h->command == ADB_CMD_WRTE)
		pipeline_guest_sent(s, h);
}

/* adbd asks for TLS only on its wireless-debugging port; what follows STLS
 * is TLS records, not adb frames, which a frame-parsing relay cannot pass */
#define STLS_REASON "the guest asked for TLS (wireless debugging port?): point the route " \
	"at adbd's tcp:5555 or vsock:5555"

static void guest_header(struct session *s, const struct adb_frame_event *fe)
{
	uint8_t raw[ADB_HEADER_SIZE];

	if (fe->header.command == ADB_CMD_STLS) {
		s->owner->st->errors++;
		owner_error(s, "peer %s: " STLS_REASON, s->peer);
		owner_guest_state(s, GUEST_DOWN, STLS_REASON);
		session_close(s, "the guest asked for TLS");
		return;
	}

	memcpy(raw, fe->header_raw, ADB_HEADER_SIZE);
	/* adb aborts on a device max payload it cannot work with; and the PC
	 * may send no frame larger than the relay holds (pipeline.h), as the
	 * guest may not */
	if (fe->header.command == ADB_CMD_CNXN) {
		uint32_t mp = shield_max_payload(fe->header.arg1);

		set_arg1(raw, mp < s->guest_max_payload ? mp : s->guest_max_payload);
	}
	s->g2h_pass = guest_header_pass(s, &fe->header);
	framehold_begin(&s->g2h, raw);
}

static void guest_input(struct session *s, struct poolbuf *b, const uint8_t *p, size_t len)
{
	struct adb_frame_event fe;
	enum adb_reader_event ev;
	unsigned gen = s->link_gen;

	while ((ev = adb_reader_next(&s->guest_rd, &p, &len, &fe)) != ADB_EV_NEED_MORE) {
		switch (ev) {
		case ADB_EV_HEADER:
			guest_header(s, &fe);
			break;
		case ADB_EV_PAYLOAD:
			if (framehold_add(&s->g2h, b, fe.data, fe.len) != 0)
				guest_lost(s, "guest frame arrived in too many pieces");
			break;
		case ADB_EV_END:
			guest_frame_end(s, &fe.header);
			break;
		default:
			s->owner->st->errors++;
			guest_lost(s, "bad frame from guest: %s", adb_strerror(fe.error));
			break;
		}
		if (s->closing || s->link_gen != gen || s->link != LINK_UP)
			break;
	}
	if (output_flush(&s->to_host) != 0)
		session_close(s, "write to host failed");
	else if (s->link == LINK_UP && output_flush(&s->to_guest) != 0)
		guest_lost(s, "write to guest failed");
}

/* ---- reading, with the per-direction budget ---- */

/* The host side may have several reads in flight (USB transfers): each
 * gets a buffer of its own. The guest side reads one at a time, packed
 * (a held frame then spans few buffers). */
static struct poolbuf *buf_of(const uv_buf_t *buf)
{
	return (struct poolbuf *)((char *)buf->base - offsetof(struct poolbuf, data));
}

enum host_move { H2G_COPY, H2G_SPLICED, H2G_WAIT };

/* The host's socket is readable and the rest of a large WRTE forwarded as
 * it arrives is to come: splice it to the guest (spill: for what the guest
 * does not take at once). Only moves bytes: the read callback that follows
 * (with UV_ENOBUFS, as the buffer is empty) does the rest (host_spliced),
 * as libuv calls it whatever the alloc callback did. H2G_WAIT: bytes
 * written before wait in the guest's queue (it is slower than the PC):
 * the host is not read until they are gone, then the payload is spliced
 * (reading it now would copy it). */
static enum host_move host_splice(struct session *s, struct poolbuf *spill)
{
	uint32_t left = adb_reader_piece_left(&s->host_rd);
	int in_fd, out_fd;

	if (adb_reader_at_boundary(&s->host_rd) || left < SPLICE_MIN || s->closing ||
	    s->link != LINK_UP || !s->h2g_forward || s->h2g_gen != s->link_gen || s->h2g_hold ||
	    s->h2g_pipe || s->host_rd.cur.command != ADB_CMD_WRTE || !splice_route(s) ||
	    s->to_guest.open != NULL)
		return H2G_COPY;
	if (s->h2g_copy_once) {
		s->h2g_copy_once = 0;
		return H2G_COPY;
	}
	in_fd = s->host->ops->splice_fd(s->host);
	if (in_fd < 0 || splice_pump_open(&s->pump) != 0)
		return H2G_COPY;
	out_fd = s->guest->ops->splice_fd(s->guest);
	if (out_fd < 0)
		return H2G_WAIT;
	splice_pump_move(&s->pump, in_fd, out_fd, left < SPLICE_MAX ? left : SPLICE_MAX,
			 spill->data, &s->h2g_sp);
	s->h2g_spill = spill;
	return H2G_SPLICED;
}

/* What host_splice did, told to the reader, the counters and the output. */
static void host_spliced(struct session *s)
{
	const struct splice_result *r = &s->h2g_sp;
	struct poolbuf *spill = s->h2g_spill;

	s->h2g_spill = NULL;
	/* readable, yet splice takes nothing: TCP's splice stops at urgent
	 * data (a PC's MSG_OOB byte) for good, where read() goes past it; the
	 * next read copies, else the loop would call here again and again */
	if (r->in == 0 && r->in_err == 0)
		s->h2g_copy_once = 1;
	adb_reader_skip_payload(&s->host_rd, (uint32_t)r->in);
	s->owner->st->bytes[DIR_TO_GUEST] += r->in;
	s->owner->st->spliced += r->out;
	if (r->out_err != 0)
		guest_lost(s, "write to guest failed: %s", uv_strerror(r->out_err));
	else if (r->in > r->out)
		output_slice(&s->to_guest, spill, spill->data, r->in - r->out);
	poolbuf_unref(spill);
	host_input(s, NULL, NULL, 0);  /* the frame's end, if it came */
	if (r->in_err == UV_EOF)
		session_close(s, "host closed the connection");
	else if (r->in_err != 0)
		session_close(s, uv_strerror(r->in_err));
}

static unsigned host_piece(const struct session *s)
{
	uint32_t n = adb_reader_piece_left(&s->host_rd);

	return n > 0 && n < s->host_pool.chunk ? n : (unsigned)s->host_pool.chunk;
}

/* How much the next read of the host may take: at most 64 KiB past the
 * payload being read. So what is not payload (headers, and the frames the
 * relay answers or drops itself) comes 64 KiB a read at most, as with 64
 * KiB buffers, which bounds what one read can queue (session.h), while a
 * large payload comes in fewer reads (of a 256 KiB WRTE, two). */
static unsigned host_read_len(const struct session *s)
{
	size_t left = adb_reader_piece_left(&s->host_rd);

	if (left < BUFPOOL_CHUNK)
		return BUFPOOL_CHUNK;
	left += BUFPOOL_CHUNK;
	return (unsigned)(left < s->host_pool.chunk ? left : s->host_pool.chunk);
}

static void on_host_alloc(struct front_conn *p, uv_buf_t *buf)
{
	struct session *s = p->data;
	struct poolbuf *b;
	enum host_move m;

	/* libuv reads a socket again and again while reads come back full:
	 * past HOST_TURN_BYTES the turn ends (an empty buffer), and the next
	 * loop turn reads on, so a PC whose frames the relay drops costs the
	 * other routes no more than 32 reads of 64 KiB would. (Not USB: its
	 * reads are transfers in flight, and an empty buffer stops them.) */
	if (s->host_turn >= HOST_TURN_BYTES && p->ops->splice_fd != NULL) {
		s->host_turn = 0;
		*buf = uv_buf_init(NULL, 0);
		return;
	}
	b = bufpool_get(&s->host_pool);
	m = b != NULL ? host_splice(s, b) : H2G_COPY;

	if (m != H2G_COPY) {
		if (m == H2G_WAIT) {
			poolbuf_unref(b);
			s->h2g_wait = 1;
		}
		*buf = uv_buf_init(NULL, 0);
		return;
	}
	/* around a large WRTE reads stop at its end and the next header is
	 * read alone, so that the payloads stay in the kernel for host_splice */
	*buf = b ? uv_buf_init((char *)b->data, s->h2g_big ? host_piece(s) : host_read_len(s))
		 : uv_buf_init(NULL, 0);
}

static void on_guest_alloc(struct guest_conn *g, uv_buf_t *buf)
{
	struct session *s = g->data;
	size_t len;
	uint8_t *p = pool_reader_alloc(&s->guest_reader, &len);

	*buf = uv_buf_init((char *)p, (unsigned)len);
}

static void on_host_read(struct front_conn *p, ssize_t nread, const uv_buf_t *buf)
{
	struct session *s = p->data;
	struct poolbuf *b = buf->base ? buf_of(buf) : NULL;

	if (nread == UV_ENOBUFS && s->h2g_spill != NULL) {
		host_spliced(s);
		update_reading(s);
		return;
	}
	if (nread > 0)
		s->host_turn = (size_t)nread == buf->len ? s->host_turn + (size_t)nread : 0;
	if (nread > 0 && !s->closing)
		host_input(s, b, (const uint8_t *)buf->base, (size_t)nread);
	if (b != NULL)
		poolbuf_unref(b);
	if (nread == UV_EOF)
		session_close(s, "host closed the connection");
	else if (nread < 0 && nread != UV_ENOBUFS)
		session_close(s, uv_strerror((int)nread));
	if (nread == UV_ENOBUFS) {
		p->ops->read_stop(p);
		s->host_reading = 0;
	}
	update_reading(s);
}

static void on_guest_read(struct guest_conn *g, ssize_t nread, const uv_buf_t *buf)
{
	struct session *s = g->data;
	struct poolbuf *b = pool_reader_done(&s->guest_reader, (long)nread);

	if (nread > 0 && !s->closing && s->link == LINK_UP)
		guest_input(s, b, (const uint8_t *)buf->base, (size_t)nread);
	if (b != NULL)
		poolbuf_unref(b);
	if (nread == UV_EOF)
		guest_lost(s, "guest closed the connection");
	else if (nread < 0 && nread != UV_ENOBUFS)
		guest_lost(s, "guest read failed: %s", uv_strerror((int)nread));
	if (nread == UV_ENOBUFS && s->link == LINK_UP) {
		g->ops->read_stop(g);
		s->guest_reading = 0;
	}
	update_reading(s);
}

static void set_guest_reading(struct session *s, int want)
{
	if (want == s->guest_reading)
		return;
	if (want)
		s->guest->ops->read_start(s->guest);
	else
		s->guest->ops->read_stop(s->guest);
	s->guest_reading = want;
}

static void set_host_reading(struct session *s, int want)
{
	if (want == s->host_reading)
		return;
	if (want)
		s->host->ops->read_start(s->host);
	else
		s->host->ops->read_stop(s->host);
	s->host_reading = want;
}

/* Read a side only while its pool has room, the output it feeds has room,
 * and the frames the relay made up in answer to it are few. */
static void update_reading(struct session *s)
{
	size_t budget = s->owner->buffer;

	if (s->closing)
		return;
	if (s->h2g_wait && s->to_guest.in_flight == 0)
		s->h2g_wait = 0;        /* the guest took what was before: splice */
	set_host_reading(s, !s->h2g_wait && !bufpool_empty(&s->host_pool) &&
			    output_has_room(&s->to_guest, budget) &&
			    s->to_host.synth_pending < SYNTH_PENDING_MAX);
	if (s->link == LINK_UP)
		set_guest_reading(s, !s->taken_paused && pool_reader_has_room(&s->guest_reader) &&
				     output_has_room(&s->to_host, budget) &&
				     s->to_guest.synth_pending < SYNTH_PENDING_MAX &&
				     s->nguest_synth < GUEST_SYNTH_QUEUE);
}

static void on_output_done(struct output *o, int status, size_t bytes, int synth)
{
	struct session *s = o->data;

	if (s->closing)
		return;
	if (status != 0 && status != UV_ECANCELED) {
		if (o == &s->to_guest)
			guest_lost(s, "write to guest failed: %s", uv_strerror(status));
		else
			session_close(s, "write to host failed");
		return;
	}
	update_reading(s);
}

/* ---- the guest link: connect, lose, back off ---- */

static unsigned backoff_delay(struct session *s)
{
	const struct session_owner *c = s->owner;
	unsigned long long d = c->reconnect_min_ms;

	for (unsigned i = 0; i < s->backoff_attempt && d < c->reconnect_max_ms; i++)
		d *= 2;
	if (d > c->reconnect_max_ms)
		d = c->reconnect_max_ms;
	if (s->backoff_attempt < 32)
		s->backoff_attempt++;
	/* full jitter over the upper half: spreads many sessions' retries */
	return (unsigned)(d / 2 + (unsigned long long)rand() % (d / 2 + 1));
}

static void on_backoff(uv_timer_t *t)
{
	guest_connect(t->data);
}

static void on_cnxn_deadline(uv_timer_t *t)
{
	struct session *s = t->data;

	s->owner->st->errors++;
	log_limited(LOG_LVL_WARN, s->owner->name, "no CNXN",
		    "route %s: peer %s: no CNXN within %u ms", s->owner->name, s->peer,
		    HOST_CNXN_TIMEOUT_MS);
	session_close(s, "the PC sent no CNXN in time");
}

static void schedule_reconnect(struct session *s)
{
	s->link = LINK_DOWN;
	uv_timer_start(&s->backoff, on_backoff, backoff_delay(s), 0);
}

static void handle_gone(struct session *s);

static void on_guest_closed(struct guest_conn *g)
{
	struct session *s = g->data;

	s->guest = NULL;
	if (s->closing) {
		handle_gone(s);
		return;
	}
	s->handles_open--;
	schedule_reconnect(s);
}

/* Drop a frame the guest cut short (the host never saw its header), then
 * close every stream the host knows on this link, so no adb command waits
 * on a dead guest. */
static void close_streams_towards_host(struct session *s)
{
	unsigned lost;

	if (s->g2h.active) {
		struct adb_header h;
		size_t held;

		adb_header_decode(s->g2h.header, &h);
		held = framehold_drop(&s->g2h);
		s->owner->st->cut_frames++;
		log_limited(LOG_LVL_WARN, s->owner->name, "guest cut a frame",
			    "route %s: peer %s: guest cut a %s frame short at %zu of %u payload bytes: "
			    "dropped, not forwarded", s->owner->name, s->peer,
			    adb_command_name(h.command), held, h.data_length);
	}
	lost = pipeline_guest_lost(s);
	if (lost > 0) {
		s->owner->st->acked_lost += lost;
		log_limited(LOG_LVL_WARN, s->owner->name, "acknowledged frames lost",
			    "route %s: peer %s: %u frame%s the relay acknowledged to the PC "
			    "had no OKAY from the guest when the link was lost: lost with it",
			    s->owner->name, s->peer,
			    lost, lost == 1 ? "" : "s");
	}
	for (size_t i = 0; i < s->streams.n; i++)
		if (s->streams.v[i].host_id != 0)
			send_clse_to_host(s, s->streams.v[i].guest_id, s->streams.v[i].host_id);
	streams_clear(&s->streams);
	shield_streams_gone(&s->shield);
	output_flush(&s->to_host);
}

/* The guest restarted and the PC is to see it, as it would on a direct
 * connection: its connection ends (and a USB host drops its transport). */
static void show_restart(struct session *s)
{
	const struct session_owner *o = s->owner;

	o->st->restarts_shown++;
	owner_guest_state(s, GUEST_DOWN, s->down_reason);
	if (o->guest_restart == GUEST_RESTART_SHOW)
		log_limited(LOG_LVL_NOTICE, o->name, "restart shown",
			    "route %s: peer %s: guest link lost (%s): the PC's connection ends "
			    "too (guest-restart show)", o->name, s->peer, s->down_reason);
	else
		log_limited(LOG_LVL_NOTICE, o->name, "restart shown",
			    "route %s: peer %s: guest link lost (%s) %u ms after the PC asked for "
			    "a restart (%s): the PC's connection ends too, as a direct one would",
			    o->name, s->peer, s->down_reason,
			    (unsigned)(now(s) - s->restart_asked_ms), s->restart_asked);
	if (o->ops->restart_shown != NULL)
		o->ops->restart_shown(o->data, s);
	session_close(s, "the guest restarted (shown to the PC)");
}

static void guest_lost(struct session *s, const char *fmt, ...)
{
	va_list ap;

	if (s->link != LINK_UP || s->closing)
		return;
	va_start(ap, fmt);
	vsnprintf(s->down_reason, sizeof(s->down_reason), fmt, ap);
	va_end(ap);
	if (s->guest_online && restart_is_shown(s)) {
		show_restart(s);
		return;
	}
	s->restart_watch = 0;      /* its stream died with the link */
	owner_error(s, "peer %s: guest link lost: %s", s->peer, s->down_reason);
	owner_guest_state(s, GUEST_DOWN, s->down_reason);

	close_streams_towards_host(s);
	s->link = LINK_CLOSING;
	s->guest_online = 0;
	s->guest_reading = 0;
	s->link_gen++;
	pool_reader_reset(&s->guest_reader);
	output_detach(&s->to_guest);
	s->guest->on_closed = on_guest_closed;
	s->guest->ops->close(s->guest);
}

static void on_guest_connected(void *data, int fd, struct vsock_vconn *vc, int status)
{
	struct session *s = data;
	const struct session_owner *o = s->owner;

	s->connecting = NULL;
	if (status != 0) {
		log_debug("route %s: peer %s: connect to %s failed: %s", o->name, s->peer,
			  o->target, strerror(-status));
		snprintf(s->down_reason, sizeof(s->down_reason), "connect failed: %s",
			 strerror(-status));
		owner_guest_state(s, GUEST_DOWN, s->down_reason);
		schedule_reconnect(s);
		return;
	}
	if ((vc != NULL ? guest_conn_vconn_open(vc, &s->guest)
			: guest_conn_stream_open(o->loop, fd, &s->guest)) != 0) {
		s->guest = NULL;
		owner_error(s, "peer %s: cannot adopt guest link", s->peer);
		schedule_reconnect(s);
		return;
	}
	s->guest->data = s;
	s->guest->on_alloc = on_guest_alloc;
	s->guest->on_read = on_guest_read;
	s->handles_open++;
	s->link = LINK_UP;
	s->link_gen++;
	s->links_made++;
	s->guest_online = 0;
	s->link_auth_sent = 0;
	s->link_refused = 0;
	s->nguest_synth = 0;
	adb_reader_init(&s->guest_rd, s->guest_max_payload);
	output_attach(&s->to_guest, s->guest->ops->write, s->guest);
	log_limited(LOG_LVL_INFO, o->name, "guest link connected",
		    "route %s: peer %s: guest link %u connected", o->name, s->peer,
		    s->links_made);
	owner_guest_state(s, GUEST_CONNECTING, "connected, waiting for the guest's CNXN");
	replay_cnxn(s);
	update_reading(s);
}

static void guest_connect(struct session *s)
{
	const struct session_owner *o = s->owner;

	s->link = LINK_CONNECTING;
	if (o->ops->connect(o->data, on_guest_connected, s, &s->connecting) != 0) {
		s->connecting = NULL;
		schedule_reconnect(s);
	}
}

/* ---- session lifetime ---- */

static void session_free(struct session *s)
{
	openhold_clear(&s->held);
	framehold_drop(&s->g2h);
	for (size_t i = 0; i < s->streams.n; i++)
		pipeline_forget(s, i);
	pool_reader_reset(&s->guest_reader);
	output_destroy(&s->to_host);
	output_destroy(&s->to_guest);
	bufpool_destroy(&s->host_pool);
	bufpool_destroy(&s->guest_pool);
	streams_free(&s->streams);
	splice_pump_close(&s->pump);
	s->owner->ops->detach(s->owner->data, s);
	free(s);
}

static void handle_gone(struct session *s)
{
	if (--s->handles_open == 0)
		session_free(s);
}

static void on_handle_closed(uv_handle_t *h)
{
	handle_gone(h->data);
}

static void on_host_closed(struct front_conn *p)
{
	handle_gone(p->data);
}

static void on_guest_closed_last(struct guest_conn *g)
{
	struct session *s = g->data;

	s->guest = NULL;
	handle_gone(s);
}

void session_close(struct session *s, const char *reason)
{
	if (s->closing)
		return;
	s->closing = 1;
	/* a PC connects and goes at will: each reason (a string of its own) is
	 * a cause of the rate limit */
	log_limited(LOG_LVL_INFO, s->owner->name, reason, "route %s: peer %s: session closed: %s",
		    s->owner->name, s->peer, reason);
	capture_session_end(s->owner->name, s->id);
	if (s->connecting != NULL) {
		s->owner->ops->connect_cancel(s->owner->data, s->connecting);
		s->connecting = NULL;
	}
	output_detach(&s->to_host);
	output_detach(&s->to_guest);
	uv_close((uv_handle_t *)&s->backoff, on_handle_closed);
	uv_close((uv_handle_t *)&s->open_wait, on_handle_closed);
	uv_close((uv_handle_t *)&s->taken_pause, on_handle_closed);
	s->host->on_closed = on_host_closed;
	s->host->ops->close(s->host);
	if (s->guest != NULL && s->link != LINK_CLOSING) {
		s->guest->on_closed = on_guest_closed_last;
		s->guest->ops->close(s->guest);
	}
	/* a guest link already closing reaches handle_gone through
	 * on_guest_closed */
}

int session_start(const struct session_owner *o, struct front_conn *host)
{
	static uint32_t last_id;
	struct session *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		host->on_closed = NULL;
		host->ops->close(host);
		return UV_ENOMEM;
	}
	s->owner = o;
	s->id = ++last_id;
	s->host = host;
	host->data = s;
	host->on_alloc = on_host_alloc;
	host->on_read = on_host_read;
	snprintf(s->peer, sizeof(s->peer), "%s", host->peer);
	uv_timer_init(o->loop, &s->backoff);
	s->backoff.data = s;
	uv_timer_init(o->loop, &s->open_wait);
	s->open_wait.data = s;
	uv_timer_init(o->loop, &s->taken_pause);
	s->taken_pause.data = s;
	openhold_init(&s->held);
	s->handles_open = 4;
	adb_reader_init(&s->host_rd, ADB_MAX_PAYLOAD);
	/* a socket front is read one read at a time, into buffers of its own
	 * (USB keeps several transfers in flight, a buffer each) */
	bufpool_init(&s->host_pool, o->buffer,
		     host->ops->splice_fd != NULL ? BUFPOOL_BIG_CHUNK : BUFPOOL_CHUNK);
	bufpool_init(&s->guest_pool, o->buffer, BUFPOOL_CHUNK);
	pool_reader_init(&s->guest_reader, &s->guest_pool);
	s->guest_max_payload = framehold_max_payload(s->guest_pool.limit);
	shield_init(&s->shield);
	splice_pump_init(&s->pump);
	output_init(&s->to_host, on_output_done, s);
	output_init(&s->to_guest, on_output_done, s);
	output_attach(&s->to_host, host->ops->write, host);
	streams_init(&s->streams, o->max_streams);

	if (o->ops->attach(o->data, s) != 0) {
		session_close(s, "too many clients");
		return 0;
	}
	log_limited(LOG_LVL_INFO, o->name, "peer connected", "route %s: peer %s connected", o->name,
		    s->peer);
	s->link = LINK_IDLE;
	if (o->cnxn_deadline)
		uv_timer_start(&s->backoff, on_cnxn_deadline, HOST_CNXN_TIMEOUT_MS, 0);
	update_reading(s);
	return 0;
}
