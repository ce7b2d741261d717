/* SPDX-License-Identifier: Apache-2.0 */
/*
 * streams.h - the adb streams open across one session, as pairs of the
 * host's and the guest's local ids, so that the relay can close them
 * towards the host when the guest link is lost. Bounded by max_streams.
 */
#ifndef RELAY_STREAMS_H
#define RELAY_STREAMS_H

#include <stddef.h>
#include <stdint.h>

/* One direction of a pipelined stream (relay/pipeline.h): the sender's
 * frames as the relay passes them on to the receiver. An OKAY says
 * "ready for the next" (adb treats it so: several may merge into one, and
 * a spare one may come), so these are states, not counts. */
struct stream_pipe {
	uint8_t rbusy;      /* the receiver has a frame it has not OKAYed */
	uint8_t owed;       /* the sender has a frame the relay has not OKAYed */
	uint8_t early;      /* the relay OKAYed one the receiver has not */
	uint8_t clse;       /* the sender's CLSE waits behind the held frame */
	uint8_t slot;       /* the stream holds one of the direction's slots */
	uint8_t off;        /* the sender did not wait: passed through */
	uint8_t *held;      /* a frame the sender sent while the receiver was busy */
	size_t held_len, held_want;
};

struct stream_pair {
	uint32_t host_id;   /* 0 until known (guest-opened, not yet OKAYed) */
	uint32_t guest_id;  /* 0 until known (host-opened, not yet OKAYed) */
	uint8_t pipelined;  /* stop-and-wait, acknowledged by the relay */
	uint8_t live;       /* the OPEN's answer has passed: both ids are known */
	struct stream_pipe dir[2];   /* by enum dir (session.h) */
};

struct stream_table {
	struct stream_pair *v;
	size_t n, cap, max;
};

void streams_init(struct stream_table *t, size_t max);
void streams_free(struct stream_table *t);
/* 0, or -1 when the table is full (or out of memory). The pair starts
 * not pipelined, with nothing held. */
int streams_add(struct stream_table *t, uint32_t host_id, uint32_t guest_id);
/* Index of the pair whose host id (or guest id) matches, or -1. */
long streams_find_host(const struct stream_table *t, uint32_t host_id);
long streams_find_guest(const struct stream_table *t, uint32_t guest_id);
/* Forget a pair (or all): the caller has released what it held. */
void streams_remove_at(struct stream_table *t, size_t i);
void streams_clear(struct stream_table *t);

#endif
