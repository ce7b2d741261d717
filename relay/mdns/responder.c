/* SPDX-License-Identifier: Apache-2.0 */
/*
 * responder.c - the mDNS responder of the process: its services and their
 * state machine (probe, announce, answer, conflict and renaming, goodbye),
 * the host name, the interfaces each service is published on, and the
 * intake of packets under its budgets (intake.c: each source's and the
 * global one; sources far past theirs shut out by the socket's filter).
 * It owns the socket (socket.c) and its
 * handles while any service is published: the first mdns_publish() opens
 * them, the last mdns_withdraw() closes them. The contract is in mdns.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "relay/mdns/mdns.h"
#include "relay/mdns/mdns_internal.h"
#include "relay/sys/sys.h"

#define PROBES 3
#define PROBE_GAP_MS 250
#define ANNOUNCEMENTS 2
#define ANNOUNCE_GAP_MS 1000
#define LOST_TIEBREAK_MS 1000        /* RFC 6762 8.2 */
#define TIEBREAKS_LOST_MAX 3         /* lost in a row while probing a name: a conflict */
#define CLAIMS_ANNOUNCED_MAX 3       /* claims on a name probed through, in a minute: */
#define CLAIMS_WINDOW_MS 60000       /* renamed */
#define PROBE_BURST 15               /* RFC 6762 8.1: 15 conflicts in 10 s, */
#define PROBE_BURST_WINDOW_MS 10000
#define PROBE_SLOW_MS 5000           /* then one probe every 5 s */
#define MULTICAST_GAP_MS 1000        /* a record multicast at most once a second, */
#define PROBE_ANSWER_GAP_MS 250      /* in answer to a probe every 250 ms (RFC 6762 6) */
#define RESCUE_MS 250                /* a goodbye for our records: multicast again so soon */
#define RENAMES_MAX 100              /* "NAME (100)", "HOST-adb-100": then no further */
#define PACKETS_PER_TURN 16
#define HOST_BASE_MAX 40

/* events counted in a window from the first */
struct burst {
	uint64_t start;
	unsigned n;
};

struct mdns_service {
	struct mdns_service *next;
	char route[32];
	char base[MDNS_INSTANCE_MAX];
	char name[MDNS_LABEL_MAX + 1];   /* base, or "base (N)" after conflicts */
	unsigned renames;                /* N: 1 is the base name */
	int slot;                        /* its group in record sets */
	int v6, any;
	struct in_addr a4;
	struct in6_addr a6;
	uint16_t port;
	enum mdns_state state;
	unsigned step;                   /* probes or announcements sent */
	uv_timer_t timer;
	uint32_t ifmask;                 /* interface slots it is published on */
	uint64_t last_mc[MDNS_IFACES_MAX];
	struct burst probes, renames_burst;
	struct burst claims;             /* claims on its instance name while not probing */
	unsigned conflicts;              /* claims and lost tie-breaks since it last probed through */
	unsigned lost;                   /* tie-breaks lost in a row while probing these names */
	int slowed;                      /* its probes 5 s apart (PROBE_BURST in the window) */
};

static struct {
	uv_loop_t *loop;
	int fd;
	uv_poll_t poll;
	uv_timer_t scan, resume, rescue;
	int handles;                     /* open: poll, scan, resume, rescue */
	int closing;
	struct mdns_iface ifaces[MDNS_IFACES_MAX];   /* index 0: an empty slot */
	unsigned joined[MDNS_IFACES_MAX];            /* ifindex joined per slot */
	struct mdns_service *services;
	uint64_t slots;                  /* the services' slots in use */
	char host_base[HOST_BASE_MAX + 1];
	unsigned host_renames;
	struct burst host_renames_burst;
	struct burst host_claims;        /* claims on the host name while none was probing */
	uint8_t host[MDNS_NAME_MAX];
	char host_text[MDNS_LABEL_MAX + 8];
	uint64_t host_last_mc[MDNS_IFACES_MAX];
	uint64_t rescue_groups[MDNS_IFACES_MAX];   /* said goodbye for by another: to multicast, */
	uint32_t rescue_host;                        /* and the host's records on these slots */
	uint64_t second;
	unsigned reads;                  /* packets read in this second */
	struct mdns_intake intake;
} R = { .fd = -1 };

/* one packet at a time: the packet read, its parse, a set of records, the
 * packet written (the event loop is single-threaded) */
static uint8_t rx[MDNS_PKT_MAX + 1], tx[MDNS_PKT_MAX];
static struct mdns_msg msg;
static struct mdns_set set;

static void on_service_timer(uv_timer_t *t);
static void responder_up(uv_loop_t *loop);

const char *mdns_state_name(enum mdns_state st)
{
	switch (st) {
	case MDNS_WAITING: return "waiting for an interface";
	case MDNS_PROBING: return "probing";
	case MDNS_ANNOUNCING: return "announcing";
	case MDNS_ANNOUNCED: return "announced";
	}
	return "?";
}

const char *mdns_service_name(const struct mdns_service *s)
{
	return s->name;
}

enum mdns_state mdns_service_state(const struct mdns_service *s)
{
	return s->state;
}

unsigned mdns_service_conflicts(const struct mdns_service *s)
{
	return s->conflicts;
}

int mdns_service_slowed(const struct mdns_service *s)
{
	return s->state == MDNS_PROBING && s->slowed;
}

const char *mdns_host_name(void)
{
	return R.host_text;
}

/* ---- names ---- */

static void set_host_name(void)
{
	char label[MDNS_LABEL_MAX + 1];

	if (R.host_renames <= 1)
		snprintf(label, sizeof(label), "%s-adb", R.host_base);
	else
		snprintf(label, sizeof(label), "%s-adb-%u", R.host_base, R.host_renames);
	mdns_name_prepend(R.host, label, (const uint8_t *)"\x05local");
	snprintf(R.host_text, sizeof(R.host_text), "%s.local", label);
}

/* "<hostname>-adb.local": the machine's name up to its first dot, letters,
 * digits and '-' only; a name of its own, so it never contests the one
 * the host's own responder (avahi) holds */
static void host_init(void)
{
	char h[256];
	size_t n = 0;

	if (gethostname(h, sizeof(h)) != 0)
		h[0] = '\0';
	h[sizeof(h) - 1] = '\0';
	for (const char *p = h; *p && *p != '.' && n < HOST_BASE_MAX; p++)
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || *p == '-')
			R.host_base[n++] = *p;
	R.host_base[n] = '\0';
	if (n == 0)
		snprintf(R.host_base, sizeof(R.host_base), "adbd-relay");
	R.host_renames = 1;
	memset(&R.host_renames_burst, 0, sizeof(R.host_renames_burst));
	memset(&R.host_claims, 0, sizeof(R.host_claims));
	set_host_name();
}

/* ---- record sets ---- */

static int holds(const struct mdns_iface *f, const struct mdns_service *s)
{
	for (unsigned i = 0; !s->v6 && i < f->addrs.n4; i++)
		if (memcmp(&f->addrs.v4[i], &s->a4, sizeof(s->a4)) == 0)
			return 1;
	for (unsigned i = 0; s->v6 && i < f->addrs.n6; i++)
		if (memcmp(&f->addrs.v6[i], &s->a6, sizeof(s->a6)) == 0)
			return 1;
	return 0;
}

/* The addresses of F a client reaches S on: a wildcard IPv4 front listens
 * on every IPv4 address, an IPv6 one (dual-stack) on every address. */
static void service_addrs(const struct mdns_service *s, const struct mdns_iface *f,
			  struct mdns_addrs *out)
{
	memset(out, 0, sizeof(*out));
	if (s->any) {
		*out = f->addrs;
		if (!s->v6)
			out->n6 = 0;
	} else if (holds(f, s) && s->v6) {
		out->v6[out->n6++] = s->a6;
	} else if (holds(f, s)) {
		out->v4[out->n4++] = s->a4;
	}
}

/* The records of the services published on interface SLOT (every slot
 * when -1) that are at least in state MIN, and ALSO whatever its state;
 * on a slot, those multicast there less than GAP_MS ago marked recent. */
static void build_set_gap(int slot, enum mdns_state min, const struct mdns_service *also,
			  uint64_t gap_ms)
{
	uint64_t now = clock_mono_ms();
	struct mdns_addrs a;

	set.n = 0;
	for (const struct mdns_service *s = R.services; s; s = s->next) {
		unsigned first = set.n;

		if ((s->state < min && s != also) || s->state == MDNS_WAITING ||
		    (slot >= 0 && !(s->ifmask & (1u << slot))))
			continue;
		if (mdns_set_add_service(&set, s->slot, s->name, R.host, s->port) != 0)
			continue;
		for (unsigned i = first; slot >= 0 && i < set.n; i++)
			set.r[i].recent = set.r[i].group >= 0 && now - s->last_mc[slot] < gap_ms;
		for (int i = 0; i < MDNS_IFACES_MAX; i++) {
			if ((slot >= 0 && i != slot) || !(s->ifmask & (1u << i)))
				continue;
			service_addrs(s, &R.ifaces[i], &a);
			mdns_set_add_host(&set, R.host, &a);
		}
	}
	for (unsigned i = 0; slot >= 0 && i < set.n; i++)
		if (set.r[i].group < 0)
			set.r[i].recent = now - R.host_last_mc[slot] < gap_ms;
}

static void build_set(int slot, enum mdns_state min, const struct mdns_service *also)
{
	build_set_gap(slot, min, also, MULTICAST_GAP_MS);
}

static void sent_multicast(int slot, uint64_t groups, int shared)
{
	uint64_t now = clock_mono_ms();

	for (struct mdns_service *s = R.services; s; s = s->next)
		if (groups & (1ull << s->slot))
			s->last_mc[slot] = now;
	if (shared)
		R.host_last_mc[slot] = now;
}

static void send_on(int slot, const struct sockaddr_in *to, size_t len)
{
	static const char send_cause;
	int rc;

	if (len == 0 || R.fd < 0)
		return;
	rc = mdns_socket_send(R.fd, R.ifaces[slot].index, to, tx, len);
	if (rc != 0)
		log_limited(LOG_LVL_WARN, "mdns", &send_cause, "mdns: cannot send on %s: %s",
			    R.ifaces[slot].name, strerror(-rc));
}

/* ---- the state machine ---- */

/* One more event: how many in the window of WINDOW_MS, this one included. */
static unsigned burst_add(struct burst *b, uint64_t window_ms)
{
	uint64_t now = clock_mono_ms();

	if (b->n == 0 || now - b->start >= window_ms) {
		b->start = now;
		b->n = 0;
	}
	return ++b->n;
}

/* A name may take the next after RENAMES renames: at most PROBE_BURST in
 * the window, RENAMES_MAX in all (a flood of claims renames little). */
static int may_rename(struct burst *b, unsigned renames)
{
	return burst_add(b, PROBE_BURST_WINDOW_MS) <= PROBE_BURST && renames < RENAMES_MAX;
}

static void probe_start(struct mdns_service *s, unsigned delay_ms)
{
	static const char slow_cause;
	int slowed = burst_add(&s->probes, PROBE_BURST_WINDOW_MS) > PROBE_BURST;

	if (slowed && !s->slowed)
		log_limited(LOG_LVL_NOTICE, s->route, &slow_cause,
			    "mdns: route %s: %d probes of \"%s\" in %d s (conflicts %u): one probe every %d s",
			    s->route, PROBE_BURST, s->name, PROBE_BURST_WINDOW_MS / 1000, s->conflicts,
			    PROBE_SLOW_MS / 1000);
	s->slowed = slowed;
	if (slowed)
		delay_ms = PROBE_SLOW_MS;
	s->state = MDNS_PROBING;
	s->step = 0;
	uv_timer_start(&s->timer, on_service_timer, delay_ms + (unsigned)rand() % PROBE_GAP_MS, 0);
}

static void each_iface(const struct mdns_service *s, void (*fn)(const struct mdns_service *, int))
{
	for (int i = 0; i < MDNS_IFACES_MAX; i++)
		if (s->ifmask & (1u << i))
			fn(s, i);
}

static void probe_on(const struct mdns_service *s, int slot)
{
	build_set(slot, MDNS_ANNOUNCING, s);
	send_on(slot, NULL, mdns_probe(&set, s->slot, R.host, tx, sizeof(tx)));
}

static void announce_on(const struct mdns_service *s, int slot)
{
	build_set(slot, MDNS_ANNOUNCING, s);
	send_on(slot, NULL, mdns_announce(&set, s->slot, 1, -1, tx, sizeof(tx)));
	sent_multicast(slot, 1ull << s->slot, 1);
}

/* TTL 0 for the service's records, and for the host's and the shared ones
 * when no other service of ours is on that interface */
static void goodbye_on(const struct mdns_service *s, int slot)
{
	int others = 0;

	for (const struct mdns_service *o = R.services; o; o = o->next)
		others |= o != s && o->state >= MDNS_ANNOUNCING && (o->ifmask & (1u << slot));
	build_set(slot, MDNS_ANNOUNCING, s);
	send_on(slot, NULL, mdns_announce(&set, s->slot, !others, 0, tx, sizeof(tx)));
}

static void on_service_timer(uv_timer_t *t)
{
	static const char published_cause;
	struct mdns_service *s = t->data;

	if (s->state == MDNS_PROBING && s->step < PROBES) {
		each_iface(s, probe_on);
		s->step++;
		uv_timer_start(&s->timer, on_service_timer, PROBE_GAP_MS, 0);
		return;
	}
	if (s->state == MDNS_PROBING) {
		s->state = MDNS_ANNOUNCING;
		s->step = 0;
		s->conflicts = 0;
		s->lost = 0;
		/* a peer's claims and the interfaces' addresses make it come
		 * again: limited */
		log_limited(LOG_LVL_NOTICE, s->route, &published_cause,
			    "mdns: route %s: published as \"%s._adb._tcp.local\" on %s, port %u",
			    s->route, s->name, R.host_text, s->port);
	}
	each_iface(s, announce_on);
	if (++s->step < ANNOUNCEMENTS) {
		uv_timer_start(&s->timer, on_service_timer, ANNOUNCE_GAP_MS, 0);
		return;
	}
	s->state = MDNS_ANNOUNCED;
}

/* Is S published on interface SLOT? Names are the link's (RFC 6762): a
 * packet on one link says nothing of the names on another (review 3 of
 * the responder, finding 5: a peer on one link renamed a front published
 * on another only). */
static int on_slot(const struct mdns_service *s, int slot)
{
	return s->state != MDNS_WAITING && (s->ifmask & (1u << slot));
}

static const char conflict_cause;

/* One more claim on a name that was probed through (announcing or
 * announced, RFC 6762 9: probed again). A holder answers our probe, so
 * a name probed through again and again yet claimed each time is held by
 * a responder that claims without defending (broken, or hostile: claiming
 * each announcement kept the service probing, unanswered, 97% of the
 * time; review 3 of the responder, finding 1): the
 * CLAIMS_ANNOUNCED_MAXth claim in CLAIMS_WINDOW_MS is taken as a conflict
 * while probing, which renames within may_rename()'s bounds (a claim
 * every 20 s or more, not renamed, leaves it unanswered a second in 20). */
static int claimed_again(struct burst *b)
{
	if (burst_add(b, CLAIMS_WINDOW_MS) < CLAIMS_ANNOUNCED_MAX)
		return 0;
	memset(b, 0, sizeof(*b));
	return 1;
}

/* Another responder holds a name of ours: while probing, take the next
 * name (at most 15 times in 10 s, RENAMES_MAX in all; past that probe the
 * same name again); once announced, probe again (RFC 6762 9), and the
 * holder's answer to the probe decides (the third such claim in a minute:
 * as while probing, claimed_again()). */
static void service_conflict(struct mdns_service *s)
{
	char old[sizeof(s->name)];
	int probing = s->state == MDNS_PROBING || claimed_again(&s->claims);

	s->conflicts++;
	if (!probing || !may_rename(&s->renames_burst, s->renames)) {
		log_limited(LOG_LVL_NOTICE, s->route, &conflict_cause,
			    "mdns: route %s: another responder claims \"%s\": probing again%s",
			    s->route, s->name, probing ? " (too many renames, the name kept)" : "");
		probe_start(s, 0);
		return;
	}
	memcpy(old, s->name, sizeof(old));
	s->renames++;
	s->lost = 0;
	memset(&s->claims, 0, sizeof(s->claims));
	mdns_instance_name(s->name, sizeof(s->name), s->base, s->renames);
	log_limited(LOG_LVL_NOTICE, s->route, &conflict_cause,
		    "mdns: route %s: \"%s\" is taken on the network, now \"%s\"", s->route, old,
		    s->name);
	probe_start(s, 0);
}

/* The host name, the same way: renamed only while a service was probing
 * it when the claim came (PROBING), and within the same bounds, and then
 * every service probes the new name; otherwise the services on SLOT, the
 * link the claim came on, probe again (one there cannot keep the others
 * probing). */
static void host_conflict(int probing, int slot)
{
	char old[sizeof(R.host_text)];

	if (!probing || !may_rename(&R.host_renames_burst, R.host_renames)) {
		log_limited(LOG_LVL_NOTICE, "mdns", &conflict_cause,
			    "mdns: another responder claims host name %s: probing again%s",
			    R.host_text, probing ? " (too many renames, the name kept)" : "");
		for (struct mdns_service *s = R.services; s; s = s->next)
			if (on_slot(s, slot)) {
				s->conflicts++;
				probe_start(s, 0);
			}
		return;
	}
	memcpy(old, R.host_text, sizeof(old));
	R.host_renames++;
	memset(&R.host_claims, 0, sizeof(R.host_claims));
	set_host_name();
	log_limited(LOG_LVL_NOTICE, "mdns", &conflict_cause,
		    "mdns: host name %s is taken on the network, now %s", old, R.host_text);
	for (struct mdns_service *s = R.services; s; s = s->next)
		if (s->state != MDNS_WAITING) {
			s->conflicts++;
			s->lost = 0;
			probe_start(s, 0);
		}
}

/* Another host probes for a name S is probing, with records that win the
 * tie-break (RFC 6762 8.2): S defers, probing again in 1 s. Counted as a
 * conflict; the TIEBREAKS_LOST_MAXth in a row for the same names is
 * taken as one (RFC 6762 9), so a host that probes for the name again and
 * again cannot keep S probing for ever: the name lost is renamed (the
 * host name when HOST, the instance otherwise), within may_rename()'s
 * bounds. 1 when the host name was renamed (every service restarted). */
static int lost_tiebreak(struct mdns_service *s, int host, int slot)
{
	static const char tiebreak_cause;

	if (++s->lost < TIEBREAKS_LOST_MAX) {
		s->conflicts++;
		log_limited(LOG_LVL_NOTICE, s->route, &tiebreak_cause,
			    "mdns: route %s: another host probes for %s and wins the tie-break: probing again in %d s",
			    s->route, host ? R.host_text : s->name, LOST_TIEBREAK_MS / 1000);
		probe_start(s, LOST_TIEBREAK_MS);
		return 0;
	}
	s->lost = 0;
	if (host) {
		host_conflict(1, slot);
		return 1;
	}
	service_conflict(s);
	return 0;
}

/* ---- packets ---- */

static void on_rescue(uv_timer_t *t)
{
	(void)t;
	for (int i = 0; i < MDNS_IFACES_MAX; i++) {
		uint64_t groups = R.rescue_groups[i];
		int host = (R.rescue_host & (1u << i)) != 0;

		R.rescue_groups[i] = 0;
		for (const struct mdns_service *s = R.services; s && groups; s = s->next) {
			if ((groups & (1ull << s->slot)) && s->state >= MDNS_ANNOUNCING &&
			    (s->ifmask & (1u << i))) {
				announce_on(s, i);   /* the host's records with it */
				host = 0;
			}
		}
		if (!host)
			continue;
		build_set(i, MDNS_ANNOUNCING, NULL);   /* no group: the host's records alone */
		if (set.n > 0) {
			send_on(i, NULL, mdns_announce(&set, -2, 1, -1, tx, sizeof(tx)));
			sent_multicast(i, 0, 1);
		}
	}
	R.rescue_host = 0;
}

/* RFC 6762 10.1, 6.6: a goodbye (TTL 0) for a record of ours, from
 * another host (one that lies, or a cooperating responder going away),
 * makes caches drop it in a second; the owner rescues it by multicasting
 * it within that second. The same for a copy with less than half our TTL
 * (6.6: caches would drop it that much sooner). Each service named so
 * (or the host's records) is announced again on SLOT RESCUE_MS later,
 * once for every goodbye in that time (review 3 of the responder, finding
 * 4: one spoofed goodbye took the service out of every cache on the
 * link). */
static void rescue_goodbyes(int slot)
{
	uint64_t groups = 0;
	int host = 0;

	build_set(slot, MDNS_ANNOUNCING, NULL);
	for (unsigned i = 0; i < msg.nrr; i++) {
		for (unsigned k = 0; k < set.n; k++) {
			const struct mdns_record *r = &set.r[k];

			if (msg.rr[i].ttl >= r->ttl / 2 || !mdns_record_eq(r, &msg.rr[i]))
				continue;
			if (r->group < 0)
				host = 1;
			else
				groups |= 1ull << r->group;
		}
	}
	if (groups == 0 && !host)
		return;
	R.rescue_groups[slot] |= groups;
	if (host)
		R.rescue_host |= 1u << slot;
	if (!uv_is_active((uv_handle_t *)&R.rescue))
		uv_timer_start(&R.rescue, on_rescue, RESCUE_MS, 0);
}

static void on_response(int slot)
{
	int host = 0, probing = 0;

	for (const struct mdns_service *s = R.services; s; s = s->next)
		probing |= on_slot(s, slot) && s->state == MDNS_PROBING;   /* before its conflicts */
	build_set(slot, MDNS_PROBING, NULL);
	for (struct mdns_service *s = R.services; s; s = s->next) {
		uint8_t inst[MDNS_NAME_MAX];

		if (!on_slot(s, slot))
			continue;
		host = 1;
		if (mdns_name_prepend(inst, s->name, mdns_adb_service) == 0 &&
		    mdns_conflict(&set, &msg, inst))
			service_conflict(s);
	}
	if (host && mdns_conflict(&set, &msg, R.host))
		host_conflict(probing || claimed_again(&R.host_claims), slot);
	rescue_goodbyes(slot);
}

/* A probe: a query that proposes records (its authority section). */
static int is_probe(const struct mdns_msg *m)
{
	for (unsigned i = 0; i < m->nrr; i++)
		if (m->rr[i].section == MDNS_NS)
			return 1;
	return 0;
}

static void on_query(int slot, const struct sockaddr_in *from)
{
	uint64_t groups;
	size_t len;
	int unicast, shared, ours;

	/* a probe of another host for one of our names, at the same time; our
	 * own probes (any front's, on any interface) come back looped */
	build_set(-1, MDNS_PROBING, NULL);
	ours = mdns_probe_ours(&set, &msg);
	build_set(slot, MDNS_PROBING, NULL);
	for (struct mdns_service *s = R.services; s && !ours; s = s->next) {
		uint8_t inst[MDNS_NAME_MAX];

		if (s->state != MDNS_PROBING || !on_slot(s, slot) ||
		    mdns_name_prepend(inst, s->name, mdns_adb_service) != 0)
			continue;
		if (mdns_tiebreak(&set, &msg, inst) < 0) {
			lost_tiebreak(s, 0, slot);
		} else if (mdns_tiebreak(&set, &msg, R.host) < 0 && lost_tiebreak(s, 1, slot)) {
			break;           /* the host renamed: every service probes again */
		}
	}
	/* a probe is answered a quarter of a second after the last multicast
	 * of the record, not a second (RFC 6762 6): the prober decides within
	 * 750 ms, and a name left undefended so is taken (review 3 of the
	 * responder, finding 2: any QM query kept it so) */
	build_set_gap(slot, MDNS_ANNOUNCING, NULL,
		      is_probe(&msg) ? PROBE_ANSWER_GAP_MS : MULTICAST_GAP_MS);
	len = mdns_answer(&set, &msg, ntohs(from->sin_port), tx, sizeof(tx), &unicast, &groups,
			  &shared);
	if (len == 0)
		return;
	send_on(slot, unicast ? from : NULL, len);
	if (!unicast)
		sent_multicast(slot, groups, shared);
}

static int slot_of(unsigned ifindex)
{
	for (int i = 0; i < MDNS_IFACES_MAX; i++)
		if (ifindex != 0 && R.ifaces[i].index == ifindex && R.joined[i] == ifindex)
			return i;
	return -1;
}

/* RFC 6762 11: a packet from a source address on the link F is on (in
 * one of its IPv4 subnets, or IPv4 link-local). Anything else, off-link or
 * spoofed, neither gets an answer (sent to whatever the source says) nor
 * is believed. */
static int on_link(const struct mdns_iface *f, struct in_addr a)
{
	if ((ntohl(a.s_addr) & 0xffff0000u) == 0xa9fe0000u)   /* 169.254.0.0/16 */
		return 1;
	for (unsigned i = 0; i < f->addrs.n4; i++) {
		uint32_t mask = f->mask4[i].s_addr != 0 ? f->mask4[i].s_addr : 0xffffffffu;

		if ((a.s_addr & mask) == (f->addrs.v4[i].s_addr & mask))
			return 1;
	}
	return 0;
}

/* Is A one of F's own addresses (the relay's, or another responder's on
 * this host)? */
static int own_addr(const struct mdns_iface *f, struct in_addr a)
{
	for (unsigned i = 0; i < f->addrs.n4; i++)
		if (f->addrs.v4[i].s_addr == a.s_addr)
			return 1;
	return 0;
}

static void shut_sources(void)
{
	static const char filter_cause;
	struct in_addr a[MDNS_SHUT_MAX];
	int rc;

	for (unsigned i = 0; i < R.intake.nshut; i++)
		a[i] = R.intake.shut[i].addr;
	rc = mdns_socket_shut(R.fd, a, R.intake.nshut);
	if (rc != 0)
		log_limited(LOG_LVL_WARN, "mdns", &filter_cause, "mdns: cannot filter sources: %s",
			    strerror(-rc));
}

/* Under the budgets (intake.c): 1 to parse the packet. */
static int admitted(int slot, struct in_addr src)
{
	static const char shut_cause, crowded_cause;
	char addr[INET_ADDRSTRLEN];
	enum mdns_verdict v =
		mdns_intake_admit(&R.intake, src, own_addr(&R.ifaces[slot], src), clock_mono_ms());

	if (v == MDNS_TAKE)
		return 1;
	if (v == MDNS_DROP)
		return 0;
	inet_ntop(AF_INET, &src, addr, sizeof(addr));
	if (v == MDNS_CROWDED) {
		log_limited(LOG_LVL_NOTICE, "mdns", &crowded_cause,
			    "mdns: no entry of %d for %s on %s (none idle, none far past its budget): the budget the others share is used up, dropped",
			    MDNS_SOURCES_MAX, addr, R.ifaces[slot].name);
		return 0;
	}
	log_limited(LOG_LVL_NOTICE, "mdns", &shut_cause,
		    "mdns: %s on %s sends far past its budget (%d packets a second): shut out for %d s",
		    addr, R.ifaces[slot].name, MDNS_SOURCE_PER_S, MDNS_SHUT_MS / 1000);
	shut_sources();
	return 0;
}

static void on_packet(size_t len, const struct sockaddr_in *from, unsigned ifindex)
{
	static const char bad_cause, offlink_cause;
	const char *why = NULL;
	char addr[INET_ADDRSTRLEN] = "?";
	int slot = slot_of(ifindex);

	if (slot < 0)                    /* not an interface we publish on */
		return;
	if (!on_link(&R.ifaces[slot], from->sin_addr)) {
		inet_ntop(AF_INET, &from->sin_addr, addr, sizeof(addr));
		log_limited(LOG_LVL_INFO, "mdns", &offlink_cause,
			    "mdns: dropped a packet from %s on %s: not on the link", addr,
			    R.ifaces[slot].name);
		return;
	}
	if (!admitted(slot, from->sin_addr))
		return;
	if (len > MDNS_PKT_MAX)
		why = "longer than 1500 bytes";
	else if (mdns_parse(rx, len, &msg, &why) == 0)
		why = NULL;
	if (why != NULL) {
		inet_ntop(AF_INET, &from->sin_addr, addr, sizeof(addr));
		log_limited(LOG_LVL_INFO, "mdns", &bad_cause, "mdns: dropped a packet from %s on %s: %s",
			    addr, R.ifaces[slot].name, why);
		return;
	}
	/* silently ignored (RFC 6762): an opcode or a response code other than
	 * 0 (18.3, 18.11), a response not from port 5353 (6: not an mDNS
	 * responder; legacy unicast queries come from any port) */
	if ((msg.flags & (MDNS_FLAG_OPCODE | MDNS_FLAG_RCODE)) != 0)
		return;
	if (msg.flags & MDNS_FLAG_QR) {
		if (ntohs(from->sin_port) == MDNS_PORT)
			on_response(slot);
	} else {
		on_query(slot, from);
	}
}

static void on_readable(uv_poll_t *h, int status, int events);

static void on_resume(uv_timer_t *t)
{
	(void)t;
	if (R.fd >= 0 && !R.closing)
		uv_poll_start(&R.poll, UV_READABLE, on_readable);
}

/* At most PACKETS_PER_TURN a turn and MDNS_READS_PER_S a second: past
 * that the socket is not read until the next second (the kernel drops what
 * its buffer cannot hold). What is read is parsed under the budgets of
 * admitted(). */
static void on_readable(uv_poll_t *h, int status, int events)
{
	static const char recv_cause;
	struct sockaddr_in from;
	unsigned ifindex;

	(void)h;
	(void)events;
	if (status < 0)
		return;
	for (int i = 0; i < PACKETS_PER_TURN; i++) {
		uint64_t now = clock_mono_ms();
		long n;

		if (now / 1000 != R.second) {
			R.second = now / 1000;
			R.reads = 0;
		}
		if (R.reads >= MDNS_READS_PER_S) {
			uv_poll_stop(&R.poll);
			uv_timer_start(&R.resume, on_resume, 1000 - now % 1000, 0);
			return;
		}
		n = mdns_socket_recv(R.fd, rx, sizeof(rx), &from, &ifindex);
		if (n == -EAGAIN || n == -EWOULDBLOCK)
			return;
		if (n < 0) {
			log_limited(LOG_LVL_WARN, "mdns", &recv_cause, "mdns: read: %s", strerror((int)-n));
			return;
		}
		R.reads++;
		on_packet((size_t)n, &from, ifindex);
	}
}

/* ---- interfaces ---- */

static uint32_t service_mask(const struct mdns_service *s)
{
	uint32_t m = 0;

	for (int i = 0; i < MDNS_IFACES_MAX; i++) {
		const struct mdns_iface *f = &R.ifaces[i];
		if (f->index != 0 && (s->any ? (s->v6 || f->addrs.n4 > 0) : holds(f, s)))
			m |= 1u << i;
	}
	return m;
}

/* Interfaces kept in their slots; changed: the slots that are new, gone or
 * whose addresses changed. */
static uint32_t take_scan(const struct mdns_iface *found, int n)
{
	struct mdns_iface next[MDNS_IFACES_MAX];
	int used[MDNS_IFACES_MAX] = { 0 };
	uint32_t changed = 0;

	memset(next, 0, sizeof(next));
	for (int i = 0; i < MDNS_IFACES_MAX; i++) {
		for (int k = 0; k < n && R.ifaces[i].index != 0; k++) {
			if (used[k] || found[k].index != R.ifaces[i].index)
				continue;
			next[i] = found[k];
			used[k] = 1;
		}
		if (memcmp(&next[i], &R.ifaces[i], sizeof(next[i])) != 0)
			changed |= 1u << i;
	}
	for (int k = 0; k < n; k++) {
		for (int i = 0; i < MDNS_IFACES_MAX && !used[k]; i++) {
			if (next[i].index != 0 || R.ifaces[i].index != 0)
				continue;
			next[i] = found[k];
			used[k] = 1;
			changed |= 1u << i;
		}
	}
	memcpy(R.ifaces, next, sizeof(next));
	return changed;
}

static void join_used(void)
{
	static const char join_cause;
	uint32_t want = 0;

	for (const struct mdns_service *s = R.services; s; s = s->next)
		want |= s->ifmask;
	for (int i = 0; i < MDNS_IFACES_MAX; i++) {
		unsigned idx = (want & (1u << i)) ? R.ifaces[i].index : 0;
		int rc;

		if (R.joined[i] == idx)
			continue;
		if (R.joined[i] != 0)
			mdns_socket_join(R.fd, R.joined[i], 0);   /* gone already: nothing to drop */
		R.joined[i] = 0;
		if (idx == 0)
			continue;
		rc = mdns_socket_join(R.fd, idx, 1);
		if (rc == 0)
			R.joined[i] = idx;
		else
			log_limited(LOG_LVL_WARN, "mdns", &join_cause, "mdns: cannot join %s on %s: %s",
				    MDNS_GROUP, R.ifaces[i].name, strerror(-rc));
	}
}

static int addrs_eq(const struct mdns_addrs *a, const struct mdns_addrs *b)
{
	return a->n4 == b->n4 && a->n6 == b->n6 &&
	       memcmp(a->v4, b->v4, a->n4 * sizeof(a->v4[0])) == 0 &&
	       memcmp(a->v6, b->v6, a->n6 * sizeof(a->v6[0])) == 0;
}

/* The slots of CHANGED (take_scan()) where what S publishes changed: the
 * interface came or went, or the addresses S has on it. Others' changes
 * (an IPv6 address for an IPv4 front: a peer's router advertisements add
 * them at will) leave S alone (review 3 of the responder, finding 3). */
static uint32_t service_changed(const struct mdns_service *s, const struct mdns_iface *old,
				uint32_t changed)
{
	struct mdns_addrs a, b;
	uint32_t m = 0;

	for (int i = 0; i < MDNS_IFACES_MAX; i++) {
		if (!(changed & (1u << i)))
			continue;
		service_addrs(s, &old[i], &a);
		service_addrs(s, &R.ifaces[i], &b);
		if (old[i].index != R.ifaces[i].index || !addrs_eq(&a, &b))
			m |= 1u << i;
	}
	return m;
}

static void rescan(void)
{
	static const char scan_cause;
	struct mdns_iface found[MDNS_IFACES_MAX], old[MDNS_IFACES_MAX];
	int n = mdns_scan_ifaces(found, MDNS_IFACES_MAX);
	uint32_t changed;

	if (n < 0) {
		log_limited(LOG_LVL_WARN, "mdns", &scan_cause, "mdns: cannot list interfaces: %s",
			    strerror(errno));
		return;
	}
	memcpy(old, R.ifaces, sizeof(old));
	changed = take_scan(found, n);
	for (struct mdns_service *s = R.services; s; s = s->next) {
		uint32_t m = service_mask(s);

		if (m == s->ifmask && !(m & service_changed(s, old, changed)) &&
		    s->state != MDNS_WAITING)
			continue;
		s->ifmask = m;
		if (m == 0) {
			s->state = MDNS_WAITING;
			uv_timer_stop(&s->timer);
		} else {
			probe_start(s, 0);
		}
	}
	join_used();
}

static void on_scan(uv_timer_t *t)
{
	static const char open_cause;
	int fd;

	(void)t;
	if (R.fd < 0) {
		fd = mdns_socket_open();
		if (fd < 0) {
			log_limited(LOG_LVL_WARN, "mdns", &open_cause,
				    "mdns: cannot open UDP port %d: %s; trying again", MDNS_PORT,
				    strerror(-fd));
			return;
		}
		R.fd = fd;
		uv_poll_init(R.loop, &R.poll, fd);
		R.handles++;
		uv_poll_start(&R.poll, UV_READABLE, on_readable);
	}
	if (mdns_intake_expire(&R.intake, clock_mono_ms()))
		shut_sources();
	rescan();
}

/* ---- the responder's life ---- */

static void on_responder_closed(uv_handle_t *h)
{
	(void)h;
	if (--R.handles > 0)
		return;
	if (R.fd >= 0)
		close(R.fd);
	R.fd = -1;
	R.closing = 0;
	memset(R.ifaces, 0, sizeof(R.ifaces));
	memset(R.joined, 0, sizeof(R.joined));
	memset(&R.intake, 0, sizeof(R.intake));
	memset(R.rescue_groups, 0, sizeof(R.rescue_groups));
	R.rescue_host = 0;
	if (R.services != NULL)          /* published again while closing */
		responder_up(R.loop);
}

static void responder_up(uv_loop_t *loop)
{
	if (R.handles > 0)
		return;                  /* running, or closing: on_responder_closed */
	R.loop = loop;
	host_init();
	uv_timer_init(loop, &R.scan);
	uv_timer_init(loop, &R.resume);
	uv_timer_init(loop, &R.rescue);
	R.handles = 3;
	uv_timer_start(&R.scan, on_scan, 0, MDNS_RESCAN_MS);
}

static void responder_down(void)
{
	R.closing = 1;
	if (R.fd >= 0)
		uv_close((uv_handle_t *)&R.poll, on_responder_closed);
	uv_close((uv_handle_t *)&R.scan, on_responder_closed);
	uv_close((uv_handle_t *)&R.resume, on_responder_closed);
	uv_close((uv_handle_t *)&R.rescue, on_responder_closed);
}

struct mdns_service *mdns_publish(uv_loop_t *loop, const char *route, const char *name,
				  const char *address, uint16_t port)
{
	static const uint8_t zero[16];
	struct mdns_service *s;
	int slot = 0;

	while (slot < MDNS_SERVICES_MAX && (R.slots & (1ull << slot)))
		slot++;
	if (slot == MDNS_SERVICES_MAX || (s = calloc(1, sizeof(*s))) == NULL) {
		log_error("mdns: route %s: cannot publish: %s", route,
			  slot == MDNS_SERVICES_MAX ? "too many services" : "out of memory");
		return NULL;
	}
	snprintf(s->route, sizeof(s->route), "%s", route);
	snprintf(s->base, sizeof(s->base), "%s", name);
	snprintf(s->name, sizeof(s->name), "%s", name);
	s->renames = 1;
	s->slot = slot;
	s->v6 = inet_pton(AF_INET, address, &s->a4) != 1;
	if (s->v6)
		inet_pton(AF_INET6, address, &s->a6);
	s->any = s->v6 ? memcmp(&s->a6, zero, 16) == 0 : s->a4.s_addr == 0;
	s->port = port;
	s->state = MDNS_WAITING;
	uv_timer_init(loop, &s->timer);
	s->timer.data = s;
	R.slots |= 1ull << slot;
	s->next = R.services;
	R.services = s;
	responder_up(loop);
	if (R.fd >= 0 && !R.closing)
		rescan();
	return s;
}

static void on_service_closed(uv_handle_t *h)
{
	free(h->data);
}

void mdns_withdraw(struct mdns_service *s)
{
	struct mdns_service **pp;

	if (s->state >= MDNS_ANNOUNCING)
		each_iface(s, goodbye_on);
	if (s->state != MDNS_WAITING)
		log_notice("mdns: route %s: \"%s\" withdrawn", s->route, s->name);
	for (pp = &R.services; *pp != s; pp = &(*pp)->next)
		;
	*pp = s->next;
	R.slots &= ~(1ull << s->slot);
	uv_close((uv_handle_t *)&s->timer, on_service_closed);
	if (R.services == NULL && !R.closing && R.handles > 0)
		responder_down();
}
