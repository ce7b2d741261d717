/* SPDX-License-Identifier: Apache-2.0 */
/*
 * records.c - the records the responder owns (per service: PTR, SRV, TXT;
 * the host's A and AAAA) and what it says with them (RFC 6762, 6763):
 * probes, announcements and goodbyes, answers to queries with known-answer
 * suppression, conflicts with another responder's records and the
 * tie-break of simultaneous probes, the renamed instance. Pure: no I/O.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay/mdns/mdns_internal.h"

const uint8_t mdns_adb_service[] = "\x04_adb\x04_tcp\x05local";
static const uint8_t services_name[] = "\x09_services\x07_dns-sd\x04_udp\x05local";

#define LEGACY_TTL_MAX 10        /* RFC 6762 6.7 */

static struct mdns_record *add(struct mdns_set *set, const uint8_t *name, uint16_t type,
			       int unique, uint32_t ttl, int group)
{
	struct mdns_record *r;

	if (set->n == MDNS_SET_MAX)
		return NULL;
	r = &set->r[set->n];
	memset(r, 0, sizeof(*r));
	memcpy(r->name, name, mdns_name_len(name));
	r->type = type;
	r->unique = unique;
	r->ttl = ttl;
	r->group = group;
	return r;
}

static int has(const struct mdns_set *set, const struct mdns_record *r)
{
	for (unsigned i = 0; i < set->n; i++) {
		const struct mdns_record *o = &set->r[i];
		if (o != r && o->type == r->type && o->rdlen == r->rdlen &&
		    mdns_name_eq(o->name, r->name) && memcmp(o->rdata, r->rdata, r->rdlen) == 0)
			return 1;
	}
	return 0;
}

/* Keep the record just made at the end of SET unless it is there already. */
static void keep_once(struct mdns_set *set)
{
	if (!has(set, &set->r[set->n]))
		set->n++;
}

int mdns_set_add_service(struct mdns_set *set, int group, const char *instance,
			 const uint8_t *host, uint16_t port)
{
	uint8_t inst[MDNS_NAME_MAX];
	struct mdns_record *r;
	size_t hl = mdns_name_len(host), il;

	if (mdns_name_prepend(inst, instance, mdns_adb_service) != 0 || set->n + 4 > MDNS_SET_MAX ||
	    6 + hl > MDNS_RDATA_MAX)
		return -1;
	il = mdns_name_len(inst);
	r = add(set, services_name, MDNS_TYPE_PTR, 0, MDNS_TTL_OTHER, -1);
	memcpy(r->rdata, mdns_adb_service, sizeof(mdns_adb_service));
	r->rdlen = sizeof(mdns_adb_service);
	keep_once(set);
	r = add(set, mdns_adb_service, MDNS_TYPE_PTR, 0, MDNS_TTL_OTHER, group);
	memcpy(r->rdata, inst, il);
	r->rdlen = (uint16_t)il;
	set->n++;
	r = add(set, inst, MDNS_TYPE_SRV, 1, MDNS_TTL_HOST, group);
	r->rdata[4] = (uint8_t)(port >> 8);   /* priority 0, weight 0 */
	r->rdata[5] = (uint8_t)port;
	memcpy(r->rdata + 6, host, hl);
	r->rdlen = (uint16_t)(6 + hl);
	set->n++;
	r = add(set, inst, MDNS_TYPE_TXT, 1, MDNS_TTL_OTHER, group);
	r->rdlen = 1;                         /* one empty string */
	set->n++;
	return 0;
}

int mdns_set_add_host(struct mdns_set *set, const uint8_t *host, const struct mdns_addrs *addrs)
{
	struct mdns_record *r;

	for (unsigned i = 0; i < addrs->n4 + addrs->n6; i++) {
		int v4 = i < addrs->n4;
		r = add(set, host, v4 ? MDNS_TYPE_A : MDNS_TYPE_AAAA, 1, MDNS_TTL_HOST, -1);
		if (r == NULL)
			return -1;
		r->rdlen = v4 ? 4 : 16;
		memcpy(r->rdata, v4 ? (const void *)&addrs->v4[i] : (const void *)&addrs->v6[i - addrs->n4],
		       r->rdlen);
		keep_once(set);
	}
	return 0;
}

int mdns_record_eq(const struct mdns_record *r, const struct mdns_rr *rr)
{
	size_t fixed = r->type == MDNS_TYPE_SRV ? 6 : 0;

	if (rr->rd_long || r->type != rr->type || rr->rclass != MDNS_CLASS_IN ||
	    r->rdlen != rr->rdlen || !mdns_name_eq(r->name, rr->name))
		return 0;
	if (r->type == MDNS_TYPE_PTR || r->type == MDNS_TYPE_SRV)
		return memcmp(r->rdata, rr->rdata, fixed) == 0 &&
		       mdns_name_eq(r->rdata + fixed, rr->rdata + fixed);
	return memcmp(r->rdata, rr->rdata, r->rdlen) == 0;
}

/* the name of GROUP's SRV record: its instance */
static const uint8_t *instance_of(const struct mdns_set *set, int group)
{
	for (unsigned i = 0; i < set->n; i++)
		if (set->r[i].group == group && set->r[i].type == MDNS_TYPE_SRV)
			return set->r[i].name;
	return NULL;
}

size_t mdns_probe(const struct mdns_set *set, int group, const uint8_t *host, uint8_t *out,
		  size_t cap)
{
	const uint8_t *inst = instance_of(set, group);
	struct mdns_writer w;

	if (inst == NULL)
		return 0;
	mdns_writer_init(&w, out, cap, 0, 0);
	/* QM (RFC 6762 8.1 allows it): the holder's answer comes by multicast,
	 * which every socket on port 5353 of this host receives; a unicast one
	 * goes to one of them, another responder's as likely as ours */
	mdns_write_question(&w, inst, MDNS_TYPE_ANY, 0);
	mdns_write_question(&w, host, MDNS_TYPE_ANY, 0);
	for (unsigned i = 0; i < set->n; i++) {
		const struct mdns_record *r = &set->r[i];
		if (r->unique && (r->group == group || r->group == -1))
			mdns_write_record(&w, MDNS_NS, r, r->ttl, 1);
	}
	return mdns_writer_finish(&w);
}

size_t mdns_announce(const struct mdns_set *set, int group, int with_host, long ttl,
		     uint8_t *out, size_t cap)
{
	struct mdns_writer w;

	mdns_writer_init(&w, out, cap, 0, MDNS_FLAG_QR | MDNS_FLAG_AA);
	for (unsigned i = 0; i < set->n; i++) {
		const struct mdns_record *r = &set->r[i];
		if (r->group == group || (with_host && r->group == -1))
			mdns_write_record(&w, MDNS_AN, r, ttl < 0 ? r->ttl : (uint32_t)ttl, 0);
	}
	return mdns_writer_finish(&w);
}

static int matches(const struct mdns_record *r, const struct mdns_question *q)
{
	return (q->qclass == MDNS_CLASS_IN || q->qclass == MDNS_CLASS_ANY) &&
	       (q->type == r->type || q->type == MDNS_TYPE_ANY) && mdns_name_eq(q->name, r->name);
}

/* A known answer of Q (its answer section) that holds R with at least
 * half R's TTL (RFC 6762 7.1). */
static int known(const struct mdns_msg *q, const struct mdns_record *r)
{
	for (unsigned i = 0; i < q->nrr; i++)
		if (q->rr[i].section == MDNS_AN && q->rr[i].ttl >= r->ttl / 2 &&
		    mdns_record_eq(r, &q->rr[i]))
			return 1;
	return 0;
}

enum pick { NONE, ANSWER, ADDITIONAL };

static void write_picked(struct mdns_writer *w, const struct mdns_set *set, const uint8_t *pick,
			 enum pick which, int legacy, uint64_t *groups, int *shared)
{
	for (unsigned i = 0; i < set->n; i++) {
		const struct mdns_record *r = &set->r[i];
		uint32_t ttl = legacy && r->ttl > LEGACY_TTL_MAX ? LEGACY_TTL_MAX : r->ttl;

		if (pick[i] != which ||
		    mdns_write_record_fit(w, which == ANSWER ? MDNS_AN : MDNS_AR, r, ttl, legacy) != 0)
			continue;
		if (r->group < 0)
			*shared = 1;
		else
			*groups |= 1ull << r->group;
	}
}

size_t mdns_answer(const struct mdns_set *set, const struct mdns_msg *q, uint16_t src_port,
		   uint8_t *out, size_t cap, int *unicast, uint64_t *groups, int *shared)
{
	uint8_t pick[MDNS_SET_MAX] = { 0 };
	int legacy = src_port != MDNS_PORT, any = 0, srv = 0;
	struct mdns_writer w;

	*groups = 0;
	*shared = 0;
	*unicast = legacy;
	if ((q->flags & 0xf800) != 0)        /* a response, or not a standard query */
		return 0;
	for (unsigned k = 0; k < q->nq; k++) {
		for (unsigned i = 0; i < set->n; i++) {
			if (!matches(&set->r[i], &q->q[k]))
				continue;
			*unicast |= q->q[k].unicast;
			pick[i] = ANSWER;
		}
	}
	for (unsigned i = 0; i < set->n; i++) {
		const struct mdns_record *r = &set->r[i];
		if (pick[i] == ANSWER && (known(q, r) || (!*unicast && r->recent)))
			pick[i] = NONE;
		any |= pick[i] == ANSWER;
	}
	if (!any)
		return 0;
	/* the rest of each answered service, and the host's addresses once
	 * an SRV names it */
	for (unsigned i = 0; i < set->n; i++)
		for (unsigned j = 0; j < set->n && pick[i] == NONE; j++)
			if (pick[j] == ANSWER && set->r[j].group >= 0 &&
			    set->r[j].group == set->r[i].group && !known(q, &set->r[i]))
				pick[i] = ADDITIONAL;
	for (unsigned i = 0; i < set->n; i++)
		srv |= pick[i] != NONE && set->r[i].type == MDNS_TYPE_SRV;
	for (unsigned i = 0; i < set->n && srv; i++)
		if (pick[i] == NONE && (set->r[i].type == MDNS_TYPE_A || set->r[i].type == MDNS_TYPE_AAAA))
			pick[i] = ADDITIONAL;
	mdns_writer_init(&w, out, cap, legacy ? q->id : 0, MDNS_FLAG_QR | MDNS_FLAG_AA);
	for (unsigned k = 0; legacy && k < q->nq; k++)
		mdns_write_question(&w, q->q[k].name, q->q[k].type, 0);
	write_picked(&w, set, pick, ANSWER, legacy, groups, shared);
	write_picked(&w, set, pick, ADDITIONAL, legacy, groups, shared);
	if (w.counts[1] == 0)
		return 0;
	return mdns_writer_finish(&w);
}

int mdns_conflict(const struct mdns_set *set, const struct mdns_msg *m, const uint8_t *name)
{
	if (!(m->flags & MDNS_FLAG_QR))
		return 0;
	for (unsigned i = 0; i < m->nrr; i++) {
		const struct mdns_rr *rr = &m->rr[i];
		int ours_of_type = 0, same = 0;

		if (rr->ttl == 0 || rr->rclass != MDNS_CLASS_IN || !mdns_name_eq(rr->name, name))
			continue;
		for (unsigned k = 0; k < set->n; k++) {
			const struct mdns_record *r = &set->r[k];
			if (!r->unique || r->type != rr->type || !mdns_name_eq(r->name, name))
				continue;
			ours_of_type = 1;
			same |= mdns_record_eq(r, rr);
		}
		if (ours_of_type && !same)
			return 1;
	}
	return 0;
}

int mdns_probe_ours(const struct mdns_set *set, const struct mdns_msg *m)
{
	unsigned proposed = 0;

	for (unsigned i = 0; i < m->nrr; i++) {
		unsigned k = 0;

		if (m->rr[i].section != MDNS_NS)
			continue;
		proposed++;
		while (k < set->n && !mdns_record_eq(&set->r[k], &m->rr[i]))
			k++;
		if (k == set->n)
			return 0;
	}
	return proposed > 0;
}

/* RFC 6762 8.2: class, then type, then rdata bytes, shorter first on a tie */
static int cmp_rr(uint16_t c1, uint16_t t1, const uint8_t *d1, size_t l1, uint16_t c2,
		  uint16_t t2, const uint8_t *d2, size_t l2)
{
	int c;

	if (c1 != c2)
		return c1 < c2 ? -1 : 1;
	if (t1 != t2)
		return t1 < t2 ? -1 : 1;
	c = memcmp(d1, d2, l1 < l2 ? l1 : l2);
	if (c != 0)
		return c < 0 ? -1 : 1;
	return l1 == l2 ? 0 : l1 < l2 ? -1 : 1;
}

static int cmp_ours(const void *a, const void *b)
{
	const struct mdns_record *x = *(const struct mdns_record *const *)a;
	const struct mdns_record *y = *(const struct mdns_record *const *)b;

	return cmp_rr(MDNS_CLASS_IN, x->type, x->rdata, x->rdlen, MDNS_CLASS_IN, y->type,
		      y->rdata, y->rdlen);
}

static int cmp_theirs(const void *a, const void *b)
{
	const struct mdns_rr *x = *(const struct mdns_rr *const *)a;
	const struct mdns_rr *y = *(const struct mdns_rr *const *)b;

	return cmp_rr(x->rclass, x->type, x->rdata, x->rdlen, y->rclass, y->type, y->rdata,
		      y->rdlen);
}

int mdns_tiebreak(const struct mdns_set *set, const struct mdns_msg *m, const uint8_t *name)
{
	const struct mdns_record *ours[MDNS_SET_MAX];
	const struct mdns_rr *theirs[MDNS_RRS_MAX];
	unsigned no = 0, nt = 0;

	for (unsigned i = 0; i < set->n; i++)
		if (set->r[i].unique && mdns_name_eq(set->r[i].name, name))
			ours[no++] = &set->r[i];
	for (unsigned i = 0; i < m->nrr; i++)
		if (m->rr[i].section == MDNS_NS && !m->rr[i].rd_long &&
		    mdns_name_eq(m->rr[i].name, name))
			theirs[nt++] = &m->rr[i];
	if (nt == 0)
		return 0;
	qsort(ours, no, sizeof(ours[0]), cmp_ours);
	qsort(theirs, nt, sizeof(theirs[0]), cmp_theirs);
	for (unsigned i = 0; i < no && i < nt; i++) {
		int c = cmp_rr(MDNS_CLASS_IN, ours[i]->type, ours[i]->rdata, ours[i]->rdlen,
			       theirs[i]->rclass, theirs[i]->type, theirs[i]->rdata,
			       theirs[i]->rdlen);
		if (c != 0)
			return c;
	}
	return no == nt ? 0 : no < nt ? -1 : 1;
}

void mdns_instance_name(char *out, size_t len, const char *base, unsigned n)
{
	if (n <= 1)
		snprintf(out, len, "%s", base);
	else
		snprintf(out, len, "%s (%u)", base, n);
}
