/*
 * tap.h - live observers of the relayed traffic: `adbd-relayctl trace`
 * subscribers get one text line per adb frame and per virtio-vsock packet
 * of the routes they asked for, and so does the trace log (--trace, the
 * `trace` directive). A subscriber is a control-socket connection with a
 * bounded queue of unsent lines: a reader that falls behind loses lines,
 * counted and told in the stream, and never slows the relay down.
 */
#ifndef RELAY_TAP_H
#define RELAY_TAP_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

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

#endif
