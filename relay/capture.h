/*
 * capture.h - `adbd-relayctl capture ROUTE`: the adb traffic of a route's
 * sessions as the PC sees it (what it sent, and what the relay sent it,
 * synthesized frames included), streamed as a pcap file (pcap.h) to
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
#ifndef RELAY_CAPTURE_H
#define RELAY_CAPTURE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "adbproto.h"

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
