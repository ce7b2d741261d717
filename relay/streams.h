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

struct stream_pair {
	uint32_t host_id;   /* 0 until known (guest-opened, not yet OKAYed) */
	uint32_t guest_id;  /* 0 until known (host-opened, not yet OKAYed) */
};

struct stream_table {
	struct stream_pair *v;
	size_t n, cap, max;
};

void streams_init(struct stream_table *t, size_t max);
void streams_free(struct stream_table *t);
/* 0, or -1 when the table is full (or out of memory). */
int streams_add(struct stream_table *t, uint32_t host_id, uint32_t guest_id);
/* Index of the pair whose host id (or guest id) matches, or -1. */
long streams_find_host(const struct stream_table *t, uint32_t host_id);
long streams_find_guest(const struct stream_table *t, uint32_t guest_id);
void streams_remove_at(struct stream_table *t, size_t i);
void streams_clear(struct stream_table *t);

#endif
