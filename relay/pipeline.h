/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pipeline.h - stop-and-wait adb streams pipelined across the relay's two
 * hops.
 *
 * Without delayed_ack (an OPEN whose arg1 is 0) the sender of a WRTE waits
 * for the receiver's OKAY before its next. Through the relay each round
 * trip would cross both hops one after the other. On a pipelined stream
 * the relay answers the sender's WRTE with an OKAY of its own once it has
 * passed the frame on whole, holds the sender's next WRTE on that stream
 * (a copy, ADB_HEADER_SIZE + payload bytes) while the receiver is busy
 * with the previous one, and takes the receiver's OKAY itself. So each
 * hop runs while the other does, and per stream and direction at most one
 * frame beyond what the receiver acknowledged is in the relay.
 *
 * An OKAY means "ready for the next frame", as adb treats it: a host whose
 * socket was full sends one OKAY for several WRTEs, and may send a spare
 * one. So the relay keeps states, not counts: the receiver busy or ready,
 * the sender owed an OKAY or not; the receiver's OKAYs on a pipelined
 * stream never go on, and the sender gets one OKAY per frame, from the
 * relay.
 *
 * - Held frames are bounded per session and direction: a stream answers
 *   early only while it holds one of buffer / 2 / (largest frame) slots
 *   (at least one when the largest frame fits in buffer); others run
 *   stop-and-wait through the relay (the sender's OKAY when the receiver
 *   is ready).
 * - Order: a sender's CLSE behind a held WRTE waits for it and follows it.
 *   The receiver's CLSE drops what is held for it (it would not read it).
 * - A sender that does not wait for the relay's OKAY (a WRTE while it is
 *   owed one, or a frame larger than a slot while the receiver is busy)
 *   has the held frame sent on and that direction of its stream passed
 *   through from then on, OKAYs included.
 * - Guest link lost: the guest's held frames, whole, still go to the PC
 *   before the stream's CLSE; a PC frame the relay acknowledged and the
 *   guest never did is lost with the link, counted (acked_lost) and
 *   logged.
 *
 * The functions below are session.c's: s is the session, i a stream's
 * index in s->streams. pipeline.c uses the session_* helpers at the end.
 */
#ifndef RELAY_PIPELINE_H
#define RELAY_PIPELINE_H

#include <stddef.h>
#include <stdint.h>

#include "adbproto/adbproto.h"

struct session;

/* Stream i was opened by an OPEN with this arg1 (0: stop-and-wait). */
void pipeline_opened(struct session *s, size_t i, uint32_t open_arg1);
/* The PC's OKAY answered the guest's OPEN of stream i. (The guest's answer
 * to the PC's OPEN is the first OKAY pipeline_guest_okay sees.) */
void pipeline_established(struct session *s, size_t i);

/* PC -> guest. A WRTE's header: 1 when the frame is held (its payload
 * goes to pipeline_host_payload, not to the guest), -1 when it is to be
 * dropped (the PC closed that stream already), 0 to forward it. */
int pipeline_host_wrte(struct session *s, size_t i, const uint8_t raw[ADB_HEADER_SIZE],
		       const struct adb_header *h);
void pipeline_host_payload(struct session *s, const uint8_t *p, size_t len);
/* A host WRTE ended (held, forwarded or dropped). */
void pipeline_host_wrte_end(struct session *s, const struct adb_header *h);
/* The PC's OKAY on stream i: 1 when the relay takes it. */
int pipeline_host_okay(struct session *s, size_t i, const struct adb_header *h);
/* The PC's CLSE on stream i: 1 when it waits behind a held frame. */
int pipeline_host_clse(struct session *s, size_t i);
/* Held PC frames whose guest OKAY came while a host frame was half sent. */
void pipeline_host_release(struct session *s);

/* guest -> PC. A whole WRTE in s->g2h: 1 when the pipeline took it (held,
 * or dropped: the guest closed that stream already). */
int pipeline_guest_hold(struct session *s, const struct adb_header *h);
/* It went to the PC. */
void pipeline_guest_sent(struct session *s, const struct adb_header *h);
/* The guest's OKAY: 1 when the relay takes it (it tells the PC itself). */
int pipeline_guest_okay(struct session *s, const struct adb_header *h);
/* The guest's CLSE on stream i: 1 when it waits behind a held frame. */
int pipeline_guest_clse(struct session *s, size_t i);

/* Stream i is forgotten: what it holds is freed, its slots given back. */
void pipeline_forget(struct session *s, size_t i);
/* The guest link is lost: held guest frames go to the PC; returns the
 * frames the relay acknowledged to the PC that the guest never did. */
unsigned pipeline_guest_lost(struct session *s);

/* What pipeline.c uses of session.c. */
int session_host_frame_open(const struct session *s);
void session_frame_to_host(struct session *s, uint8_t *frame, size_t len);
void session_frame_to_guest(struct session *s, uint8_t *frame, size_t len);
void session_synth_to_host(struct session *s, uint32_t cmd, uint32_t arg0, uint32_t arg1);
/* A frame the relay makes up for the guest goes now, or after the host
 * frame half sent; 0, or -1 when the queue for those is full. */
int session_synth_to_guest(struct session *s, uint32_t cmd, uint32_t arg0, uint32_t arg1);
/* Would one more fit? */
int session_synth_to_guest_room(const struct session *s);

#endif
