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
 *
 * Shutting out: a source with more than MDNS_SHUT_DROPS packets dropped
 * in a second (a second from its first drop; taking a token does not
 * clear the count, so a steady flood just past the refill is caught as
 * well as a burst) goes into shut[], the socket's filter; with shut[]
 * full it takes the place of the one whose time is up first, so every
 * flooder is filtered, the oldest let go a little early. Its entry is
 * released while it is shut out: it sends nothing that reaches us.
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
		if (e->tokens == FULL)
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

/* One more packet of E dropped: 1 when that makes more than
 * MDNS_SHUT_DROPS in the second from its first */
static int dropped(struct mdns_source *e, uint64_t now)
{
	if (e->drops == 0 || now - e->drop_start >= 1000) {
		e->drop_start = now;
		e->drops = 0;
	}
	return ++e->drops > MDNS_SHUT_DROPS;
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
	if (is_shut(in, src))            /* read before the filter took it */
		return MDNS_DROP;
	e = entry_of(in, src, now);
	refill(e, now);
	if (e->tokens < 1000) {
		if (!dropped(e, now) || e == &in->others || own)
			return MDNS_DROP;
		shut(in, src, now);
		memset(e, 0, sizeof(*e));   /* its entry free for another source */
		return MDNS_SHUT;
	}
	e->tokens -= 1000;
	if (in->taken >= MDNS_PACKETS_PER_S)
		return MDNS_DROP;
	in->taken++;
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
