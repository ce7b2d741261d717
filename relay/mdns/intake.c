/* SPDX-License-Identifier: Apache-2.0 */
/*
 * intake.c - who on the link is heard, and how much (review 25, F7): a
 * budget of its own for each source address, so that one flooding peer
 * does not starve the other queriers, under the global budget of the
 * responder; and the sources to shut out in the kernel (socket.c's filter)
 * because they keep sending past their budget. It owns no I/O and no
 * memory but the struct mdns_intake it is given; contract in
 * mdns_internal.h.
 *
 * Eviction: a new source takes a free entry, or one whose bucket is full
 * again (idle for MDNS_SOURCE_BURST / MDNS_SOURCE_PER_S s at most: a full
 * bucket is what a new entry starts with, so forgetting it gives no one
 * more budget); an entry still drawing on its budget is never evicted.
 * With every entry busy, a new source shares the "others" bucket.
 */
#include <string.h>

#include "relay/mdns/mdns.h"
#include "relay/mdns/mdns_internal.h"

#define FULL ((uint32_t)MDNS_SOURCE_BURST * 1000u)   /* tokens in 1/1000 packet */

static void refill(struct mdns_source *e, uint64_t now)
{
	uint64_t t = e->tokens + (now - e->last) * MDNS_SOURCE_PER_S;

	e->tokens = t > FULL ? FULL : (uint32_t)t;
	e->last = now;
}

/* SRC's entry, or a fresh one, or the shared one */
static struct mdns_source *entry_of(struct mdns_intake *in, struct in_addr src, uint64_t now)
{
	struct mdns_source *spare = NULL;

	for (unsigned i = 0; i < MDNS_SOURCES_MAX; i++) {
		struct mdns_source *e = &in->src[i];

		if (e->used && e->addr.s_addr == src.s_addr)
			return e;
		if (spare != NULL && !spare->used)
			continue;
		if (!e->used) {
			spare = e;
			continue;
		}
		refill(e, now);
		if (e->tokens == FULL && !e->shut)
			spare = e;
	}
	if (spare == NULL)
		return &in->others;
	memset(spare, 0, sizeof(*spare));
	spare->used = 1;
	spare->addr = src;
	spare->tokens = FULL;
	spare->last = now;
	return spare;
}

static int shut(struct mdns_intake *in, struct mdns_source *e, uint64_t now)
{
	if (in->nshut == MDNS_SHUT_MAX)
		return 0;
	in->shut[in->nshut].addr = e->addr;
	in->shut[in->nshut].until = now + MDNS_SHUT_MS;
	in->nshut++;
	e->shut = 1;
	return 1;
}

enum mdns_verdict mdns_intake_admit(struct mdns_intake *in, struct in_addr src, int own,
				    uint64_t now)
{
	struct mdns_source *e;

	if (!in->others.used) {          /* a zeroed intake */
		in->others.used = 1;
		in->others.tokens = FULL;
		in->others.last = now;
	}
	if (now / 1000 != in->second) {
		in->second = now / 1000;
		in->taken = 0;
	}
	e = entry_of(in, src, now);
	refill(e, now);
	if (e->tokens < 1000) {
		/* another burst's worth past an empty budget: shut out */
		if (++e->over >= MDNS_SOURCE_BURST && e != &in->others && !own && !e->shut &&
		    shut(in, e, now))
			return MDNS_SHUT;
		return MDNS_DROP;
	}
	e->tokens -= 1000;
	e->over = 0;
	if (in->taken >= MDNS_PACKETS_PER_S)
		return MDNS_DROP;
	in->taken++;
	return MDNS_TAKE;
}

int mdns_intake_expire(struct mdns_intake *in, uint64_t now)
{
	unsigned k = 0;

	for (unsigned i = 0; i < in->nshut; i++) {
		if (now < in->shut[i].until) {
			in->shut[k++] = in->shut[i];
			continue;
		}
		for (unsigned j = 0; j < MDNS_SOURCES_MAX; j++)
			if (in->src[j].used && in->src[j].addr.s_addr == in->shut[i].addr.s_addr)
				in->src[j].shut = 0;
	}
	if (k == in->nshut)
		return 0;
	in->nshut = k;
	return 1;
}
