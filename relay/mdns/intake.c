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
 * Budgets: every entry of the table in budget together, and the shared
 * one, take less than the global budget (5 a second each: 32 x 5 + 5 =
 * 165 < 200), so sources that keep to their budgets cannot use it up;
 * and their bursts (10 each) at once cannot either: past 160 taken in a
 * second (200 - MDNS_PACKETS_RESERVE) only a source's first
 * MDNS_SOURCE_PER_S packets of that second are taken, so a querier that
 * asks now and then is heard while the table's bursts come at once.
 *
 * Eviction: a new source takes a free entry, or else the entry of the
 * source with the most packets dropped in its second (2 at least):
 * sources past their budgets cannot hold the table against a new querier
 * (review 2 of the responder, finding 1); or else one whose bucket is
 * full again (idle for MDNS_SOURCE_BURST / MDNS_SOURCE_PER_S s at most: a
 * full bucket is what a new entry starts with, so forgetting it gives no
 * one more budget; and a querier that asks every few seconds keeps its
 * entry while others drop). An entry taken from a source past its budget
 * starts with one packet, and none for a source with drops of its own in
 * hist[], so sources evicting one another gain nothing by it; the evicted
 * source's count of drops goes to hist[], and back to its next entry.
 * With every entry in budget, a new source shares the "others" bucket,
 * its drops counted in hist[] as well.
 *
 * Shutting out: a source with more than MDNS_SHUT_DROPS packets dropped
 * in a second (a second from its first drop; taking a token does not
 * clear the count, so a steady flood just past the refill is caught as
 * well as a burst), with an entry or without, goes into shut[], the
 * socket's filter; with shut[] full it takes the place of the one whose
 * time is up first, so every flooder is filtered, the oldest let go a
 * little early. Its entry is released while it is shut out: it sends
 * nothing that reaches us.
 */
#include <string.h>

#include "relay/mdns/mdns.h"
#include "relay/mdns/mdns_internal.h"

#define FULL ((uint32_t)MDNS_SOURCE_BURST * 1000u)   /* tokens in 1/1000 packet */

_Static_assert((MDNS_SOURCES_MAX + 1) * MDNS_SOURCE_PER_S < MDNS_PACKETS_PER_S,
	       "sources in budget must not use up the global budget");

static void refill(struct mdns_source *e, uint64_t now)
{
	uint64_t t = e->tokens + (now - e->last) * MDNS_SOURCE_PER_S;

	e->tokens = t > FULL ? FULL : (uint32_t)t;
	e->last = now;
}

/* E's drops in the second from its first, 0 once that is over */
static unsigned drops_now(const struct mdns_source *e, uint64_t now)
{
	return now - e->drop_start < 1000 ? e->drops : 0;
}

/* One more packet of E dropped: 1 when that makes more than
 * MDNS_SHUT_DROPS in the second from its first */
static int dropped(struct mdns_source *e, uint64_t now)
{
	if (drops_now(e, now) == 0) {
		e->drop_start = now;
		e->drops = 0;
	}
	return ++e->drops > MDNS_SHUT_DROPS;
}

/* SRC's count of drops in hist[], or NULL */
static struct mdns_source *hist_find(struct mdns_intake *in, struct in_addr src)
{
	for (unsigned i = 0; i < MDNS_HIST_MAX; i++)
		if (in->hist[i].used && in->hist[i].addr.s_addr == src.s_addr)
			return &in->hist[i];
	return NULL;
}

/* SRC's count in hist[], or a fresh one in place of a free slot or else
 * of the one with the fewest drops now */
static struct mdns_source *hist_slot(struct mdns_intake *in, struct in_addr src, uint64_t now)
{
	struct mdns_source *h = hist_find(in, src), *least = NULL;

	if (h != NULL)
		return h;
	for (unsigned i = 0; i < MDNS_HIST_MAX; i++) {
		h = &in->hist[i];
		if (least == NULL ||
		    (least->used && (!h->used || drops_now(h, now) < drops_now(least, now))))
			least = h;
	}
	memset(least, 0, sizeof(*least));
	least->used = 1;
	least->addr = src;
	return least;
}

/* SRC's entry, or a fresh one, or the shared one */
static struct mdns_source *entry_of(struct mdns_intake *in, struct in_addr src, uint64_t now)
{
	struct mdns_source *spare = NULL, *heaviest = NULL, *h, mine = { .used = 0 };

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
		if (e->tokens == FULL)
			spare = e;
		else if (drops_now(e, now) >= 2 &&
			 (heaviest == NULL || drops_now(e, now) > drops_now(heaviest, now)))
			heaviest = e;
	}
	if (spare == NULL && heaviest == NULL)
		return &in->others;
	h = hist_find(in, src);          /* its drops remembered: taken out */
	if (h != NULL) {
		mine = *h;
		memset(h, 0, sizeof(*h));
	}
	if (heaviest != NULL && (spare == NULL || spare->used)) {   /* its drops kept */
		spare = heaviest;
		*hist_slot(in, spare->addr, now) = *spare;
	}
	memset(spare, 0, sizeof(*spare));
	spare->used = 1;
	spare->addr = src;
	/* in place of a source past its budget: one packet, none for one
	 * with drops of its own (evicted, or past the shared budget) */
	spare->tokens = spare != heaviest ? FULL : mine.used ? 0 : 1000;
	spare->last = now;
	spare->drops = mine.drops;
	spare->drop_start = mine.drop_start;
	return spare;
}

static int is_shut(const struct mdns_intake *in, struct in_addr src)
{
	for (unsigned i = 0; i < in->nshut; i++)
		if (in->shut[i].addr.s_addr == src.s_addr)
			return 1;
	return 0;
}

/* SRC into shut[] for MDNS_SHUT_MS; when full, in place of the one whose
 * time is up first */
static void shut(struct mdns_intake *in, struct in_addr src, uint64_t now)
{
	unsigned k = in->nshut;

	if (k == MDNS_SHUT_MAX) {
		k = 0;
		for (unsigned i = 1; i < in->nshut; i++)
			if (in->shut[i].until < in->shut[k].until)
				k = i;
	} else {
		in->nshut++;
	}
	in->shut[k].addr = src;
	in->shut[k].until = now + MDNS_SHUT_MS;
}

enum mdns_verdict mdns_intake_admit(struct mdns_intake *in, struct in_addr src, int own,
				    uint64_t now)
{
	struct mdns_source *e, *count;

	if (!in->others.used) {          /* a zeroed intake */
		in->others.used = 1;
		in->others.tokens = FULL;
		in->others.last = now;
	}
	if (now / 1000 != in->second) {
		in->second = now / 1000;
		in->taken = 0;
	}
	if (is_shut(in, src))            /* read before the filter took it */
		return MDNS_DROP;
	e = entry_of(in, src, now);
	refill(e, now);
	if (e->tokens < 1000) {
		/* the drop counted for SRC: in its entry, or in hist[] */
		count = e == &in->others ? hist_slot(in, src, now) : e;
		if (!dropped(count, now) || own)
			return e == &in->others ? MDNS_CROWDED : MDNS_DROP;
		shut(in, src, now);
		memset(count, 0, sizeof(*count));   /* its entry free for another source */
		return MDNS_SHUT;
	}
	e->tokens -= 1000;
	if (e->second != in->second) {
		e->second = in->second;
		e->taken = 0;
	}
	if (in->taken >= MDNS_PACKETS_PER_S ||
	    (e->taken >= MDNS_SOURCE_PER_S && in->taken >= MDNS_PACKETS_PER_S - MDNS_PACKETS_RESERVE))
		return MDNS_DROP;
	in->taken++;
	e->taken++;
	return MDNS_TAKE;
}

int mdns_intake_expire(struct mdns_intake *in, uint64_t now)
{
	unsigned k = 0;

	for (unsigned i = 0; i < in->nshut; i++)
		if (now < in->shut[i].until)
			in->shut[k++] = in->shut[i];
	if (k == in->nshut)
		return 0;
	in->nshut = k;
	return 1;
}
