/* SPDX-License-Identifier: Apache-2.0 */
/*
 * obs.h - observers of the relayed traffic, the public header of
 * relay/obs/: the session reports each frame and each byte as it relays
 * them, and control-socket connections subscribe to a route's traffic as
 * trace lines (tap.c) or as a pcap stream (capture.c, with pcap.c making
 * the packets). Every subscriber has a bounded queue of unsent bytes: a
 * reader that falls behind loses data, counted and told, and never slows
 * the relay down. Observers know routes by name only.
 */
#ifndef RELAY_OBS_H
#define RELAY_OBS_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "adbproto/adbproto.h"

/* The longest route name kept with its NUL, as conf.h's ROUTE_NAME_MAX
 * (session.c checks they agree): a subscription to a longer name is cut
 * to it. */
#define OBS_ROUTE_NAME_MAX 32

/* ---- tap.c: live trace lines. `adbd-relayctl trace` subscribers get one
 * text line per adb frame and per virtio-vsock packet of the routes they
 * asked for, and so does the trace log (--trace, the `trace` directive). A
 * subscriber is a control-socket connection with a bounded queue of unsent
 * lines: a reader that falls behind loses lines, counted and told in the
 * stream.
 */

/* Bytes a subscriber's unsent lines may hold, with their write requests. */
#define TAP_QUEUE_MAX (256 * 1024)

struct tap_sub;

struct tap_counts {
	uint64_t written;                /* lines the stream has taken */
	uint64_t lost;                   /* lines dropped: the reader was too slow */
	size_t queued;                   /* bytes held in unsent lines */
};

/* Send the lines of ROUTE (NULL: every route) to STREAM, which stays the
 * caller's: tap_unsubscribe() before closing it. NULL if out of memory. */
struct tap_sub *tap_subscribe(uv_stream_t *stream, const char *route);
void tap_unsubscribe(struct tap_sub *sub);
void tap_get_counts(const struct tap_sub *sub, struct tap_counts *out);

/* Would a line of ROUTE go anywhere? (Cheap; check before formatting.) */
int tap_wanted(const char *route);
/* One trace line of ROUTE, without the newline. */
void tap_line(const char *route, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- capture.c: `adbd-relayctl capture ROUTE`: the adb traffic of a
 * route's sessions as the PC sees it (what it sent, and what the relay sent
 * it, synthesized frames included), streamed as a pcap file (pcap.h) to
 * control-socket subscribers.
 *
 * Each subscriber keeps its own TCP picture of each session, begun at the
 * first adb header of the session after it subscribed (a message boundary,
 * so every segment decodes) and ended with FINs when the session ends.
 * Its queue of unsent bytes (with their write requests) is bounded by
 * CAPTURE_QUEUE_MAX: packets beyond it are lost and counted, while the TCP
 * sequence numbers still advance, so Wireshark shows the gap as it would in
 * a real capture. The relay never waits for a capture reader.
 */

#define CAPTURE_QUEUE_MAX (4 * 1024 * 1024)   /* held unsent per subscriber */
#define CAPTURE_FLOWS_MAX 1024                 /* sessions followed per subscriber */

struct capture_sub;

struct capture_counts {
	uint64_t written;                /* bytes the stream has taken */
	uint64_t lost;                   /* bytes dropped: the reader was too slow */
	size_t queued;                   /* bytes held unsent, requests included */
};

/* Stream ROUTE's traffic to STREAM, starting with the pcap file header.
 * STREAM stays the caller's: capture_unsubscribe() before closing it.
 * NULL if out of memory. */
struct capture_sub *capture_subscribe(uv_stream_t *stream, const char *route);
void capture_unsubscribe(struct capture_sub *sub);
void capture_get_counts(const struct capture_sub *sub, struct capture_counts *out);

/* Does anybody capture ROUTE? (Cheap; check before the calls below.) */
int capture_wanted(const char *route);

/* One adb header of SESSION, PC -> guest (from_guest 0) or towards the PC. */
void capture_header(const char *route, uint32_t session, int from_guest,
		    const uint8_t raw[ADB_HEADER_SIZE]);
/* Payload bytes following the last header. */
void capture_payload(const char *route, uint32_t session, int from_guest,
		     const void *p, size_t len);
/* SESSION is over: its TCP connections end. */
void capture_session_end(const char *route, uint32_t session);

#endif
