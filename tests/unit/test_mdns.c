/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_mdns.c - the mDNS responder's codec and records (relay/mdns/wire.c,
 * records.c): records encoded and read back, name compression written and
 * read (loops, forward and out-of-range pointers, long labels and names
 * rejected), query matching (ANY, case, class, QU, legacy queries),
 * known-answer suppression, conflicts and the renaming sequence,
 * simultaneous-probe tie-break, the goodbye's TTLs. And the responder
 * itself (responder.c) in a made-up world (mdns_world.c: clock,
 * interfaces, socket): probing slowed to one every 5 s after 15 conflicts
 * in 10 s, packets on an interface it does not publish on not read, and
 * its own probes, looped back, not taken for another host's, and packets
 * from off the link neither answered nor believed; an announced host name
 * probed again on a claim, renames bounded; a flooding source does not
 * starve another querier (each source's budget, intake.c), the table of
 * sources bounded and not to be emptied by an attacker, nor held by 33
 * addresses each a little past its budget; a probe that wins the
 * tie-break again and again renames the service. Review 3 of the
 * responder: claims at each announcement rename it (and its "published"
 * lines are limited), probes are answered 250 ms after a multicast,
 * addresses of the other family leave a front alone, goodbyes and short
 * TTLs for our records are answered, names are each link's own. Those
 * wait for real probes: a tcase of their own, with a longer timeout.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "relay/mdns/mdns.h"
#include "relay/mdns/mdns_internal.h"
#include "tests/unit/mdns_world.h"
#include "tests/unit/unit.h"

static const uint8_t host[] = "\x07vm-test\x05local";
static uint8_t pkt[MDNS_PKT_MAX];
static struct mdns_msg m;
static struct mdns_set set;

/* a set with service "tv" (group 0) on port 5555 at 10.0.0.7 */
static void make_set(void)
{
	struct mdns_addrs a = { .n4 = 1 };

	inet_pton(AF_INET, "10.0.0.7", &a.v4[0]);
	set.n = 0;
	ck_assert_int_eq(mdns_set_add_service(&set, 0, "tv", host, 5555), 0);
	ck_assert_int_eq(mdns_set_add_host(&set, host, &a), 0);
}

static void parse_ok(size_t len)
{
	const char *why = NULL;

	ck_assert_uint_gt(len, 0);
	ck_assert_msg(mdns_parse(pkt, len, &m, &why) == 0, "parse: %s", why);
}

static const struct mdns_rr *find_rr(uint16_t type)
{
	for (unsigned i = 0; i < m.nrr; i++)
		if (m.rr[i].type == type)
			return &m.rr[i];
	return NULL;
}

static uint8_t inst[MDNS_NAME_MAX];

START_TEST(records_encoded)
{
	const struct mdns_rr *srv, *a, *txt;
	unsigned ptrs = 0;

	make_set();
	ck_assert_uint_eq(set.n, 5);          /* 2 PTR, SRV, TXT, A */
	parse_ok(mdns_announce(&set, 0, 1, -1, pkt, sizeof(pkt)));
	ck_assert_uint_eq(m.flags, MDNS_FLAG_QR | MDNS_FLAG_AA);
	ck_assert_uint_eq(m.ancount, 5);
	for (unsigned i = 0; i < m.nrr; i++)
		ptrs += m.rr[i].type == MDNS_TYPE_PTR;
	ck_assert_uint_eq(ptrs, 2);
	ck_assert_int_eq(mdns_name_from_text(inst, "tv._adb._tcp.local"), 0);
	srv = find_rr(MDNS_TYPE_SRV);
	ck_assert_ptr_nonnull(srv);
	ck_assert(mdns_name_eq(srv->name, inst));
	ck_assert_int_eq(srv->flush, 1);
	ck_assert_uint_eq(srv->ttl, MDNS_TTL_HOST);
	ck_assert_uint_eq(srv->rdata[4] << 8 | srv->rdata[5], 5555);
	ck_assert(mdns_name_eq(srv->rdata + 6, host));
	txt = find_rr(MDNS_TYPE_TXT);
	ck_assert_uint_eq(txt->rdlen, 1);
	ck_assert_uint_eq(txt->rdata[0], 0);
	a = find_rr(MDNS_TYPE_A);
	ck_assert_uint_eq(a->rdlen, 4);
	ck_assert_mem_eq(a->rdata, "\x0a\x00\x00\x07", 4);
	ck_assert(mdns_name_eq(a->name, host));
	for (unsigned i = 0; i < m.nrr; i++)   /* PTRs shared, the rest ours alone */
		ck_assert_int_eq(m.rr[i].flush, m.rr[i].type != MDNS_TYPE_PTR);
	/* a second service adds its own PTR, SRV and TXT, and the shared PTR once */
	ck_assert_int_eq(mdns_set_add_service(&set, 1, "tv2", host, 5556), 0);
	ck_assert_uint_eq(set.n, 8);
}
END_TEST

START_TEST(compression_written_and_read)
{
	struct mdns_writer w;
	struct mdns_record r = { .type = MDNS_TYPE_PTR, .ttl = 10, .group = 0 };
	uint8_t name[MDNS_NAME_MAX];
	size_t len, off, ptrs = 0;

	make_set();
	mdns_writer_init(&w, pkt, sizeof(pkt), 0, MDNS_FLAG_QR);
	memcpy(r.name, mdns_adb_service, mdns_name_len(mdns_adb_service));
	mdns_name_from_text(r.rdata, "tv._adb._tcp.local");
	r.rdlen = (uint16_t)mdns_name_len(r.rdata);
	mdns_write_record(&w, MDNS_AN, &r, 10, 0);
	len = mdns_writer_finish(&w);
	/* "_adb._tcp.local" once in full; the rdata is "tv" and a pointer */
	ck_assert_uint_eq(len, 12 + mdns_name_len(mdns_adb_service) + 10 + 1 + 2 + 2);
	for (size_t i = 12; i + 1 < len; i++)
		ptrs += pkt[i] == 0xc0 && pkt[i + 1] == 12;
	ck_assert_uint_eq(ptrs, 1);
	parse_ok(len);
	ck_assert(mdns_name_eq(m.rr[0].rdata, r.rdata));
	/* reading: a pointer to itself, forward, past the end, a loop of two */
	static const uint8_t self[] = { 0xc0, 0x00 };
	static const uint8_t fwd[] = { 0xc0, 0x02, 0x00 };
	static const uint8_t past[] = { 0x01, 'a', 0xc0, 0x40 };
	static const uint8_t two[] = { 0x01, 'a', 0xc0, 0x04, 0x01, 'b', 0xc0, 0x00 };
	off = 0;
	ck_assert_int_eq(mdns_read_name(self, sizeof(self), &off, name), -1);
	off = 0;
	ck_assert_int_eq(mdns_read_name(fwd, sizeof(fwd), &off, name), -1);
	off = 0;
	ck_assert_int_eq(mdns_read_name(past, sizeof(past), &off, name), -1);
	off = 0;
	ck_assert_int_eq(mdns_read_name(two, sizeof(two), &off, name), -1);
	off = 4;                                 /* "b" then back to "a", then on to "b": loop */
	ck_assert_int_eq(mdns_read_name(two, sizeof(two), &off, name), -1);
	/* a backwards pointer is fine, and off ends after it */
	static const uint8_t back[] = { 0x01, 'a', 0x00, 0x01, 'b', 0xc0, 0x00 };
	off = 3;
	ck_assert_int_eq(mdns_read_name(back, sizeof(back), &off, name), 0);
	ck_assert_uint_eq(off, 7);
	ck_assert_mem_eq(name, "\x01" "b\x01" "a", 5);
}
END_TEST

START_TEST(names_bounded)
{
	uint8_t buf[600], name[MDNS_NAME_MAX];
	size_t off = 0, n = 0;

	/* a label of 64 bytes; the reserved kinds 0x40 and 0x80 */
	memset(buf, 'a', sizeof(buf));
	buf[0] = 64;
	buf[65] = 0;
	ck_assert_int_eq(mdns_read_name(buf, 66, &off, name), -1);
	buf[0] = 0x40;
	off = 0;
	ck_assert_int_eq(mdns_read_name(buf, 66, &off, name), -1);
	buf[0] = 0x80;
	off = 0;
	ck_assert_int_eq(mdns_read_name(buf, 66, &off, name), -1);
	/* 4 labels of 63: 257 bytes, over 255 */
	for (int i = 0; i < 4; i++, n += 64)
		buf[n] = 63;
	buf[n] = 0;
	off = 0;
	ck_assert_int_eq(mdns_read_name(buf, n + 1, &off, name), -1);
	/* a name cut by the end of the packet */
	off = 0;
	ck_assert_int_eq(mdns_read_name(buf, 30, &off, name), -1);
	/* a chain of 17 backwards pointers */
	buf[0] = 0;
	for (int i = 1; i <= 17; i++) {
		buf[2 * i - 1] = 0xc0;
		buf[2 * i] = (uint8_t)(i == 1 ? 0 : 2 * i - 3);
	}
	off = 33;
	ck_assert_int_eq(mdns_read_name(buf, 35, &off, name), -1);
	off = 31;                                /* 16 of them: allowed */
	ck_assert_int_eq(mdns_read_name(buf, 35, &off, name), 0);
}
END_TEST

START_TEST(counts_bounded)
{
	static const uint8_t big[12] = { 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0 };
	static const uint8_t trail[13] = { 0 };
	const char *why;

	ck_assert_int_eq(mdns_parse(big, sizeof(big), &m, &why), -1);
	ck_assert_str_eq(why, "counts larger than the packet");
	ck_assert_int_eq(mdns_parse(trail, sizeof(trail), &m, &why), -1);
	ck_assert_int_eq(mdns_parse(trail, 11, &m, &why), -1);
	ck_assert_int_eq(mdns_parse(trail, 12, &m, &why), 0);
}
END_TEST

/* a query for TEXT / TYPE, with the known answers of KNOWN (TTL KTTL) */
static size_t query(const char *text, uint16_t type, int qu, int known_group, uint32_t kttl)
{
	struct mdns_writer w;
	uint8_t name[MDNS_NAME_MAX];

	mdns_name_from_text(name, text);
	mdns_writer_init(&w, pkt, sizeof(pkt), 0x1234, 0);
	mdns_write_question(&w, name, type, qu);
	for (unsigned i = 0; i < set.n && known_group >= 0; i++)
		if (set.r[i].type == MDNS_TYPE_PTR && set.r[i].group == known_group)
			mdns_write_record(&w, MDNS_AN, &set.r[i], kttl, 1);
	return mdns_writer_finish(&w);
}

static size_t answer(size_t qlen, uint16_t port, int *unicast)
{
	static struct mdns_msg q;
	static uint8_t out[MDNS_PKT_MAX];
	const char *why;
	uint64_t groups;
	size_t len;
	int shared;

	ck_assert_int_eq(mdns_parse(pkt, qlen, &q, &why), 0);
	len = mdns_answer(&set, &q, port, out, sizeof(out), unicast, &groups, &shared);
	if (len > 0) {
		memcpy(pkt, out, len);
		parse_ok(len);
	}
	return len;
}

START_TEST(query_matching)
{
	size_t len;
	int uni;

	make_set();
	/* ANY, in capitals: SRV and TXT answer, the PTR, and A as additional */
	ck_assert_uint_gt(answer(query("TV._ADB._tcp.LOCAL", MDNS_TYPE_ANY, 0, -1, 0), 5353, &uni), 0);
	ck_assert_int_eq(uni, 0);
	ck_assert_uint_eq(m.ancount, 2);
	ck_assert_uint_eq(m.arcount, 2);
	ck_assert_uint_eq(m.id, 0);
	ck_assert_uint_eq(m.qdcount, 0);
	/* a type we do not have, a name we do not have */
	ck_assert_uint_eq(answer(query("tv._adb._tcp.local", MDNS_TYPE_A, 0, -1, 0), 5353, &uni), 0);
	ck_assert_uint_eq(answer(query("tx._adb._tcp.local", MDNS_TYPE_ANY, 0, -1, 0), 5353, &uni), 0);
	/* the service type: one PTR, the instance's records as additional */
	ck_assert_uint_gt(answer(query("_adb._tcp.local", MDNS_TYPE_PTR, 1, -1, 0), 5353, &uni), 0);
	ck_assert_int_eq(uni, 1);                /* QU */
	ck_assert_uint_eq(m.ancount, 1);
	ck_assert_uint_eq(m.arcount, 3);         /* SRV, TXT, A */
	ck_assert_uint_eq(m.rr[0].ttl, MDNS_TTL_OTHER);
	/* DNS-SD's enumeration */
	ck_assert_uint_gt(answer(query("_services._dns-sd._udp.local", MDNS_TYPE_PTR, 0, -1, 0),
				 5353, &uni), 0);
	ck_assert(mdns_name_eq(m.rr[0].rdata, mdns_adb_service));
	/* a legacy query (not from 5353): unicast, ID and question echoed,
	 * TTL at most 10 s, no cache-flush */
	ck_assert_uint_gt(answer(query("tv._adb._tcp.local", MDNS_TYPE_SRV, 0, -1, 0), 40000, &uni), 0);
	ck_assert_int_eq(uni, 1);
	ck_assert_uint_eq(m.id, 0x1234);
	ck_assert_uint_eq(m.qdcount, 1);
	for (unsigned i = 0; i < m.nrr; i++) {
		ck_assert_uint_le(m.rr[i].ttl, 10);
		ck_assert_int_eq(m.rr[i].flush, 0);
	}
	/* responses are not queries */
	len = query("tv._adb._tcp.local", MDNS_TYPE_ANY, 0, -1, 0);
	pkt[2] = 0x84;
	ck_assert_uint_eq(answer(len, 5353, &uni), 0);
}
END_TEST

START_TEST(known_answer_suppression)
{
	int uni;

	make_set();
	/* the querier has our PTR with more than half its TTL: nothing */
	ck_assert_uint_eq(answer(query("_adb._tcp.local", MDNS_TYPE_PTR, 0, 0, MDNS_TTL_OTHER / 2),
				 5353, &uni), 0);
	/* with less than half: answered again */
	ck_assert_uint_gt(answer(query("_adb._tcp.local", MDNS_TYPE_PTR, 0, 0, MDNS_TTL_OTHER / 2 - 1),
				 5353, &uni), 0);
	ck_assert_uint_eq(m.ancount, 1);
	/* a record multicast less than a second ago is not multicast again,
	 * but a QU question gets it */
	for (unsigned i = 0; i < set.n; i++)
		set.r[i].recent = 1;
	ck_assert_uint_eq(answer(query("_adb._tcp.local", MDNS_TYPE_PTR, 0, -1, 0), 5353, &uni), 0);
	ck_assert_uint_gt(answer(query("_adb._tcp.local", MDNS_TYPE_PTR, 1, -1, 0), 5353, &uni), 0);
}
END_TEST

/* a response holding our SRV with port PORT (and TTL) */
static void srv_response(uint16_t port, uint32_t ttl)
{
	struct mdns_set other = { .n = 0 };
	struct mdns_writer w;

	mdns_set_add_service(&other, 0, "tv", host, port);
	mdns_writer_init(&w, pkt, sizeof(pkt), 0, MDNS_FLAG_QR | MDNS_FLAG_AA);
	for (unsigned i = 0; i < other.n; i++)
		if (other.r[i].type == MDNS_TYPE_SRV)
			mdns_write_record(&w, MDNS_AN, &other.r[i], ttl, 0);
	parse_ok(mdns_writer_finish(&w));
}

START_TEST(conflicts_and_renaming)
{
	char name[64];

	make_set();
	mdns_name_from_text(inst, "tv._adb._tcp.local");
	srv_response(5555, 120);
	ck_assert_int_eq(mdns_conflict(&set, &m, inst), 0);   /* our own, looped back */
	srv_response(6000, 120);
	ck_assert_int_eq(mdns_conflict(&set, &m, inst), 1);
	ck_assert_int_eq(mdns_conflict(&set, &m, host), 0);   /* another name */
	srv_response(6000, 0);
	ck_assert_int_eq(mdns_conflict(&set, &m, inst), 0);   /* a goodbye claims nothing */
	mdns_instance_name(name, sizeof(name), "tv", 1);
	ck_assert_str_eq(name, "tv");
	mdns_instance_name(name, sizeof(name), "tv", 2);
	ck_assert_str_eq(name, "tv (2)");
	mdns_instance_name(name, sizeof(name), "tv", 3);
	ck_assert_str_eq(name, "tv (3)");
	/* the renamed instance is a label of its own, spaces and all */
	set.n = 0;
	ck_assert_int_eq(mdns_set_add_service(&set, 0, name, host, 5555), 0);
	ck_assert_mem_eq(set.r[2].name, "\x06tv (3)\x04_adb", 11);
}
END_TEST

START_TEST(tiebreak)
{
	struct mdns_writer w;
	struct mdns_set other = { .n = 0 };

	make_set();
	mdns_name_from_text(inst, "tv._adb._tcp.local");
	/* our own probe: the same records */
	parse_ok(mdns_probe(&set, 0, host, pkt, sizeof(pkt)));
	ck_assert_uint_eq(m.qdcount, 2);
	ck_assert(!m.q[0].unicast);              /* QM: the defence comes by multicast */
	ck_assert(!m.q[1].unicast);
	ck_assert_uint_eq(m.q[0].type, MDNS_TYPE_ANY);
	ck_assert_int_eq(mdns_tiebreak(&set, &m, inst), 0);
	/* a probe for port 6000 (greater) wins, for 5000 loses */
	mdns_set_add_service(&other, 0, "tv", host, 6000);
	parse_ok(mdns_probe(&other, 0, host, pkt, sizeof(pkt)));
	ck_assert_int_lt(mdns_tiebreak(&set, &m, inst), 0);
	other.n = 0;
	mdns_set_add_service(&other, 0, "tv", host, 5000);
	parse_ok(mdns_probe(&other, 0, host, pkt, sizeof(pkt)));
	ck_assert_int_gt(mdns_tiebreak(&set, &m, inst), 0);
	/* a query without authority records is no probe */
	mdns_writer_init(&w, pkt, sizeof(pkt), 0, 0);
	mdns_write_question(&w, inst, MDNS_TYPE_ANY, 1);
	parse_ok(mdns_writer_finish(&w));
	ck_assert_int_eq(mdns_tiebreak(&set, &m, inst), 0);
}
END_TEST

START_TEST(goodbye)
{
	make_set();
	ck_assert_int_eq(mdns_set_add_service(&set, 1, "other", host, 5556), 0);
	/* the service's records, without the host's and the shared ones */
	parse_ok(mdns_announce(&set, 0, 0, 0, pkt, sizeof(pkt)));
	ck_assert_uint_eq(m.ancount, 3);          /* PTR, SRV, TXT */
	for (unsigned i = 0; i < m.nrr; i++)
		ck_assert_uint_eq(m.rr[i].ttl, 0);
	/* the last service: every record */
	parse_ok(mdns_announce(&set, 0, 1, 0, pkt, sizeof(pkt)));
	ck_assert_uint_eq(m.ancount, 5);
	for (unsigned i = 0; i < m.nrr; i++)
		ck_assert_uint_eq(m.rr[i].ttl, 0);
}
END_TEST

START_TEST(answers_fit)
{
	struct mdns_addrs a = { .n4 = 1 };
	struct mdns_msg q;
	uint8_t out[MDNS_PKT_MAX];
	const char *why;
	char name[48];
	uint64_t groups;
	int uni, shared;
	size_t len;

	/* 64 services: the PTR answer is cut to what fits, and valid */
	set.n = 0;
	inet_pton(AF_INET, "10.0.0.7", &a.v4[0]);
	for (int i = 0; i < MDNS_SERVICES_MAX; i++) {
		snprintf(name, sizeof(name), "service-%02d-xxxxxxxxxxxxxxxxxxxxxxxx", i);
		ck_assert_int_eq(mdns_set_add_service(&set, i, name, host, 5555), 0);
	}
	ck_assert_int_eq(mdns_set_add_host(&set, host, &a), 0);
	len = query("_adb._tcp.local", MDNS_TYPE_PTR, 0, -1, 0);
	ck_assert_int_eq(mdns_parse(pkt, len, &q, &why), 0);
	len = mdns_answer(&set, &q, 5353, out, sizeof(out), &uni, &groups, &shared);
	ck_assert_uint_gt(len, 0);
	ck_assert_uint_le(len, MDNS_PKT_MAX);
	memcpy(pkt, out, len);
	parse_ok(len);
	ck_assert_uint_gt(m.ancount, 10);
	ck_assert_uint_lt(m.ancount, MDNS_SERVICES_MAX);
}
END_TEST

/* ---- the responder, in a made-up world (mdns_world.c) ---- */

#define PROBE_GAP_MS 250              /* responder.c: a probe's random delay is below */

static uv_loop_t loop;
static uv_timer_t *found_timer;

static void find_timer(uv_handle_t *h, void *service)
{
	if (h->type == UV_TIMER && h->data == service)
		found_timer = (uv_timer_t *)h;
}

/* How long, in the loop's time, until S's next probe: its timer is the
 * timer handle whose data is S (responder.c). */
static uint64_t next_probe_in(struct mdns_service *s)
{
	ck_assert_int_eq(mdns_service_state(s), MDNS_PROBING);
	found_timer = NULL;
	uv_walk(&loop, find_timer, s);
	ck_assert_ptr_nonnull(found_timer);
	ck_assert(uv_is_active((uv_handle_t *)found_timer));
	return uv_timer_get_due_in(found_timer);
}

/* "tv" on port 5555 for a front on ADDRESS, after the responder's first
 * scan: its socket open, its interfaces found, probing begun. */
static struct mdns_service *publish_on(const char *address)
{
	struct mdns_service *s;

	ck_assert_int_eq(uv_loop_init(&loop), 0);
	s = mdns_publish(&loop, "r1", "tv", address, 5555);
	ck_assert_ptr_nonnull(s);
	uv_run(&loop, UV_RUN_NOWAIT);
	ck_assert_int_eq(mdns_service_state(s), MDNS_PROBING);
	return s;
}

static void withdraw(struct mdns_service *s)
{
	mdns_withdraw(s);
	uv_run(&loop, UV_RUN_DEFAULT);        /* every handle closed */
	ck_assert_int_eq(uv_loop_close(&loop), 0);
	world_end();
}

/* a response arriving on IFINDEX from FROM that claims S's instance name
 * (its SRV with another port) */
static void inject_claim_from(struct mdns_service *s, unsigned ifindex, const char *from)
{
	struct mdns_set other = { .n = 0 };
	size_t len;

	ck_assert_int_eq(mdns_set_add_service(&other, 0, mdns_service_name(s), host, 6000), 0);
	len = mdns_announce(&other, 0, 0, -1, pkt, sizeof(pkt));
	ck_assert_uint_gt(len, 0);
	world_inject(ifindex, from, MDNS_PORT, pkt, len);
}

/* the next of 32 on-link peers 10.0.0.100-131, in turn: claims in
 * numbers stay within each peer's budget (intake.c) */
static const char *next_peer(void)
{
	static char addr[INET_ADDRSTRLEN];
	static unsigned n;

	snprintf(addr, sizeof(addr), "10.0.0.%u", 100 + n++ % 32);
	return addr;
}

static void inject_claim(struct mdns_service *s, unsigned ifindex)
{
	inject_claim_from(s, ifindex, next_peer());
}

/* a query for "_adb._tcp.local" PTR from FROM:PORT arriving on IFINDEX,
 * QU when QU */
static void inject_query_port(unsigned ifindex, const char *from, uint16_t port, int qu)
{
	size_t len = query("_adb._tcp.local", MDNS_TYPE_PTR, qu, -1, 0);

	ck_assert_uint_gt(len, 0);
	world_inject(ifindex, from, port, pkt, len);
}

static void inject_query(unsigned ifindex, const char *from)
{
	inject_query_port(ifindex, from, MDNS_PORT, 0);
}

/* RFC 6762 6, 18.3, 18.11: a claim from a port other than 5353, or with
 * an opcode or a response code other than 0, is no claim; the same claim
 * from port 5353 with both 0 is one */
START_TEST(responses_that_are_not_mdns_are_ignored)
{
	static const uint16_t flags[] = { 0x0800, 0x2800, 0x0001, 0x0003 };
	struct mdns_set other = { .n = 0 };
	struct mdns_service *s;
	size_t len;

	world_add_iface(7, "pub0", "10.0.0.7/24");
	s = publish_on("0.0.0.0");
	while (mdns_service_state(s) == MDNS_PROBING)
		uv_run(&loop, UV_RUN_ONCE);
	ck_assert_int_eq(mdns_set_add_service(&other, 0, mdns_service_name(s), host, 6000), 0);
	len = mdns_announce(&other, 0, 0, -1, pkt, sizeof(pkt));
	ck_assert_uint_gt(len, 0);
	world_inject(7, next_peer(), 5354, pkt, len);
	uv_run(&loop, UV_RUN_NOWAIT);
	for (unsigned i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		uint16_t f = (uint16_t)(pkt[2] << 8 | pkt[3]);

		f = (uint16_t)((f & ~(MDNS_FLAG_OPCODE | MDNS_FLAG_RCODE)) | flags[i]);
		pkt[2] = (uint8_t)(f >> 8);
		pkt[3] = (uint8_t)f;
		world_inject(7, next_peer(), MDNS_PORT, pkt, len);
		uv_run(&loop, UV_RUN_NOWAIT);
	}
	ck_assert_int_ne(mdns_service_state(s), MDNS_PROBING);
	ck_assert_uint_eq(mdns_service_conflicts(s), 0);
	inject_claim(s, 7);
	uv_run(&loop, UV_RUN_NOWAIT);
	ck_assert_int_eq(mdns_service_state(s), MDNS_PROBING);
	ck_assert_uint_eq(mdns_service_conflicts(s), 1);
	withdraw(s);
}
END_TEST

START_TEST(probing_slows_down_after_15_conflicts)
{
	struct mdns_service *s;
	char name[MDNS_LABEL_MAX + 1];
	uint64_t due;

	world_add_iface(7, "pub0", "10.0.0.7/24");
	s = publish_on("0.0.0.0");            /* its first probe: 1 of 15 in 10 s */
	ck_assert(world_joined(7));
	ck_assert_uint_lt(next_probe_in(s), PROBE_GAP_MS);
	/* 14 conflicts at once: each next name probed at once */
	for (unsigned n = 2; n <= 15; n++) {
		inject_claim(s, 7);
		uv_run(&loop, UV_RUN_NOWAIT);
		mdns_instance_name(name, sizeof(name), "tv", n);
		ck_assert_str_eq(mdns_service_name(s), name);
		ck_assert_uint_lt(next_probe_in(s), PROBE_GAP_MS);
	}
	/* the 15th conflict in 10 s: the next probe waits 5 s */
	inject_claim(s, 7);
	uv_run(&loop, UV_RUN_NOWAIT);
	ck_assert_str_eq(mdns_service_name(s), "tv (16)");
	due = next_probe_in(s);
	ck_assert_uint_ge(due, 5000);
	ck_assert_uint_lt(due, 5000 + PROBE_GAP_MS);
	/* and so does each one after it in those 10 s, and the name is kept:
	 * 15 renames in 10 s at most */
	world_now_ms += 9999;
	inject_claim(s, 7);
	uv_run(&loop, UV_RUN_NOWAIT);
	ck_assert_str_eq(mdns_service_name(s), "tv (16)");
	due = next_probe_in(s);
	ck_assert_uint_ge(due, 5000);
	ck_assert_uint_lt(due, 5000 + PROBE_GAP_MS);
	/* 10 s after the first probe a new count begins: the normal pace */
	world_now_ms += 1;
	inject_claim(s, 7);
	uv_run(&loop, UV_RUN_NOWAIT);
	ck_assert_str_eq(mdns_service_name(s), "tv (17)");
	ck_assert_uint_lt(next_probe_in(s), PROBE_GAP_MS);
	withdraw(s);
}
END_TEST

START_TEST(other_interfaces_are_not_read)
{
	struct mdns_service *s;
	unsigned sent;

	world_add_iface(7, "pub0", "10.0.0.7/24");
	world_add_iface(9, "other0", "10.0.1.9/24");
	s = publish_on("10.0.0.7");           /* published on pub0 alone */
	ck_assert(world_joined(7));
	ck_assert(!world_joined(9));
	while (mdns_service_state(s) == MDNS_PROBING)   /* ~1 s of the loop's timers */
		uv_run(&loop, UV_RUN_ONCE);
	ck_assert_uint_eq(world_sent(9), 0);
	world_now_ms += 1000;                 /* our records no longer "recent" */
	sent = world_sent(0);
	/* on other0: a query for our service, a response claiming our name;
	 * then the same query on pub0. One turn reads all three. */
	inject_query(9, "10.0.1.50");
	inject_claim_from(s, 9, "10.0.1.99");
	inject_query(7, "10.0.0.50");
	uv_run(&loop, UV_RUN_NOWAIT);
	/* pub0's query answered, other0's neither answered nor believed */
	ck_assert_uint_eq(world_sent(0), sent + 1);
	ck_assert_uint_eq(world_sent(9), 0);
	memcpy(pkt, world_last_sent, world_last_len);
	parse_ok(world_last_len);
	ck_assert_uint_eq(m.flags & MDNS_FLAG_QR, MDNS_FLAG_QR);
	ck_assert_uint_ge(m.ancount, 1);
	ck_assert_uint_eq(m.rr[0].type, MDNS_TYPE_PTR);
	ck_assert_str_eq(mdns_service_name(s), "tv");
	ck_assert_int_ne(mdns_service_state(s), MDNS_PROBING);
	/* the same claim on pub0 is believed: probing again */
	inject_claim(s, 7);
	uv_run(&loop, UV_RUN_NOWAIT);
	ck_assert_int_eq(mdns_service_state(s), MDNS_PROBING);
	withdraw(s);
}
END_TEST

/* Two fronts on two addresses of one interface, a wildcard one beside
 * them, the relay hearing its own probes (multicast loopback): none loses
 * the tie-break to the others or to itself, all are announced. A lost
 * tie-break would put the next probe 1 s away. */
START_TEST(own_probes_are_no_opponents)
{
	struct mdns_service *b, *c, *w;

	world_add_iface(7, "pub0", "10.0.0.1/24");
	world_add_addr(7, "10.0.0.3/24");
	world_loopback = 1;
	ck_assert_int_eq(uv_loop_init(&loop), 0);
	b = mdns_publish(&loop, "b", "bee", "10.0.0.3", 6530);
	c = mdns_publish(&loop, "c", "cee", "10.0.0.1", 6531);
	w = mdns_publish(&loop, "w", "wee", "0.0.0.0", 6532);
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_nonnull(c);
	ck_assert_ptr_nonnull(w);
	while (mdns_service_state(b) == MDNS_PROBING || mdns_service_state(c) == MDNS_PROBING ||
	       mdns_service_state(w) == MDNS_PROBING || mdns_service_state(b) == MDNS_WAITING) {
		uv_run(&loop, UV_RUN_ONCE);
		if (mdns_service_state(b) == MDNS_PROBING)
			ck_assert_uint_le(next_probe_in(b), PROBE_GAP_MS);
		if (mdns_service_state(c) == MDNS_PROBING)
			ck_assert_uint_le(next_probe_in(c), PROBE_GAP_MS);
		if (mdns_service_state(w) == MDNS_PROBING)
			ck_assert_uint_le(next_probe_in(w), PROBE_GAP_MS);
	}
	ck_assert_str_eq(mdns_service_name(b), "bee");
	ck_assert_str_eq(mdns_service_name(c), "cee");
	ck_assert_str_eq(mdns_service_name(w), "wee");
	mdns_withdraw(b);
	mdns_withdraw(c);
	withdraw(w);
}
END_TEST

/* RFC 6762 11: off-link sources (spoofed, or routed in) get no answer,
 * legacy, QU or multicast, and are not believed; on-link ones are. */
START_TEST(off_link_packets_are_dropped)
{
	struct mdns_service *s;
	unsigned sent;

	world_add_iface(7, "pub0", "10.0.0.7/24");
	world_add_addr(7, "192.168.5.1/28");
	s = publish_on("0.0.0.0");
	while (mdns_service_state(s) == MDNS_PROBING)
		uv_run(&loop, UV_RUN_ONCE);
	world_now_ms += 1000;                 /* our records no longer "recent" */
	sent = world_sent(7);
	inject_query_port(7, "192.0.2.1", 40000, 0);   /* legacy, off-link */
	inject_query_port(7, "10.0.1.5", 5353, 1);     /* QU, off-link */
	inject_query_port(7, "192.168.5.16", 5353, 0); /* just past the /28 */
	inject_claim_from(s, 7, "203.0.113.9");
	uv_run(&loop, UV_RUN_NOWAIT);
	ck_assert_uint_eq(world_sent(7), sent);
	ck_assert_int_ne(mdns_service_state(s), MDNS_PROBING);
	/* on the link, in either subnet or link-local: answered */
	inject_query_port(7, "10.0.0.200", 40000, 0);
	inject_query_port(7, "192.168.5.14", 5353, 1);
	inject_query_port(7, "169.254.3.4", 5353, 1);
	uv_run(&loop, UV_RUN_NOWAIT);
	ck_assert_uint_eq(world_sent(7), sent + 3);
	inject_claim_from(s, 7, "10.0.0.99");
	uv_run(&loop, UV_RUN_NOWAIT);
	ck_assert_int_eq(mdns_service_state(s), MDNS_PROBING);
	withdraw(s);
}
END_TEST

/* a response arriving on IFINDEX from FROM that claims the host name
 * (its A record with another address) */
static void inject_host_claim_from(unsigned ifindex, const char *from)
{
	struct mdns_set other = { .n = 0 };
	struct mdns_addrs a = { .n4 = 1 };
	uint8_t name[MDNS_NAME_MAX];
	size_t len;

	ck_assert_int_eq(mdns_name_from_text(name, mdns_host_name()), 0);
	inet_pton(AF_INET, "10.0.0.66", &a.v4[0]);
	ck_assert_int_eq(mdns_set_add_host(&other, name, &a), 0);
	len = mdns_announce(&other, 0, 1, -1, pkt, sizeof(pkt));
	ck_assert_uint_gt(len, 0);
	world_inject(ifindex, from, MDNS_PORT, pkt, len);
}

/* the same from an on-link peer of pub0 */
static void inject_host_claim(unsigned ifindex)
{
	inject_host_claim_from(ifindex, next_peer());
}

/* RFC 6762 9: a claim on an announced host name makes the services probe
 * again, it does not rename; a claim while probing does. */
START_TEST(announced_host_name_probes_again)
{
	struct mdns_service *s;
	char first[MDNS_LABEL_MAX + 8];

	world_add_iface(7, "pub0", "10.0.0.7/24");
	s = publish_on("0.0.0.0");
	while (mdns_service_state(s) == MDNS_PROBING)   /* announcing: probed */
		uv_run(&loop, UV_RUN_ONCE);
	snprintf(first, sizeof(first), "%s", mdns_host_name());
	/* one claim and the instance too, in one packet: probing again, names kept */
	inject_host_claim(7);
	inject_claim(s, 7);
	uv_run(&loop, UV_RUN_NOWAIT);
	ck_assert_int_eq(mdns_service_state(s), MDNS_PROBING);
	ck_assert_str_eq(mdns_host_name(), first);
	/* the holder's answer to the probe: the next host name */
	inject_host_claim(7);
	uv_run(&loop, UV_RUN_NOWAIT);
	ck_assert_str_ne(mdns_host_name(), first);
	ck_assert_ptr_nonnull(strstr(mdns_host_name(), "-adb-2.local"));
	withdraw(s);
}
END_TEST

/* A flood of claims while probing: 15 renames in 10 s, then the name is
 * kept; 100 renames in all, then never another. The host name too. */
START_TEST(renames_bounded)
{
	struct mdns_service *s;
	char name[MDNS_LABEL_MAX + 1];

	world_add_iface(7, "pub0", "10.0.0.7/24");
	s = publish_on("0.0.0.0");
	for (unsigned i = 0; i < 150; i++) {  /* 300 claims in 3 s (under 200 read a second) */
		inject_claim(s, 7);
		inject_host_claim(7);
		uv_run(&loop, UV_RUN_NOWAIT);
		world_now_ms += 20;
	}
	ck_assert_str_eq(mdns_service_name(s), "tv (16)");
	ck_assert_ptr_nonnull(strstr(mdns_host_name(), "-adb-16.local"));
	ck_assert_uint_ge(next_probe_in(s), 5000);
	/* window after window: 100 at most */
	for (unsigned i = 0; i < 2000; i++) {
		world_now_ms += 1000;
		inject_claim(s, 7);
		inject_host_claim(7);
		uv_run(&loop, UV_RUN_NOWAIT);
	}
	mdns_instance_name(name, sizeof(name), "tv", 100);
	ck_assert_str_eq(mdns_service_name(s), name);
	ck_assert_ptr_nonnull(strstr(mdns_host_name(), "-adb-100.local"));
	ck_assert_int_eq(mdns_service_state(s), MDNS_PROBING);
	withdraw(s);
}
END_TEST

/* Lines the process writes to stderr while FN runs. */
static unsigned stderr_lines(void (*fn)(struct mdns_service *), struct mdns_service *s)
{
	FILE *f = tmpfile();
	int saved = dup(2);
	unsigned lines = 0;
	int c;

	ck_assert_ptr_nonnull(f);
	ck_assert_int_ge(saved, 0);
	ck_assert_int_ge(dup2(fileno(f), 2), 0);
	fn(s);
	fflush(stderr);
	ck_assert_int_ge(dup2(saved, 2), 0);
	close(saved);
	rewind(f);
	while ((c = fgetc(f)) != EOF)
		lines += c == '\n';
	fclose(f);
	return lines;
}

/* a claim on S's name every 100 ms for 60 s: more than one for each of
 * its probes */
static void claims_for_a_minute(struct mdns_service *s)
{
	for (unsigned i = 0; i < 600; i++) {
		inject_claim(s, 7);
		uv_run(&loop, UV_RUN_NOWAIT);
		world_now_ms += 100;
	}
}

/* Review 25, F4: a host that claims the relay's name again and again keeps
 * it probing, at no cost it can grow: 15 renames in 10 s, then one probe
 * every 5 s; every claim counted and the state shown (conflicts N,
 * slowed), the log lines within the rate limiter's 5 a cause in 10 s (2
 * causes: the conflict, the slowing); once the claims stop it is announced
 * and the count starts again. */
START_TEST(endless_claims_keep_probing_at_a_bounded_cost)
{
	struct mdns_service *s;
	unsigned lines;

	world_add_iface(7, "pub0", "10.0.0.7/24");
	s = publish_on("0.0.0.0");
	lines = stderr_lines(claims_for_a_minute, s);
	ck_assert_int_eq(mdns_service_state(s), MDNS_PROBING);
	ck_assert_uint_eq(mdns_service_conflicts(s), 600);
	ck_assert(mdns_service_slowed(s));
	ck_assert_uint_ge(next_probe_in(s), 5000);
	ck_assert_msg(lines <= 2 * 5 * (60 / 10 + 1), "%u log lines for 600 claims", lines);
	ck_assert_uint_gt(lines, 2);
	/* the claims stop: 10 s later its probes go at the normal pace again */
	world_now_ms += 10000;
	inject_claim(s, 7);
	uv_run(&loop, UV_RUN_NOWAIT);
	ck_assert(!mdns_service_slowed(s));
	ck_assert_uint_eq(mdns_service_conflicts(s), 601);
	while (mdns_service_state(s) == MDNS_PROBING)
		uv_run(&loop, UV_RUN_ONCE);
	ck_assert_uint_eq(mdns_service_conflicts(s), 0);
	withdraw(s);
}
END_TEST

/* a probe arriving on interface 7 from 10.0.0.98 for instance NAME whose
 * records (its SRV to port 6000, above our 5555) win the tie-break */
static void inject_winning_probe(const char *name)
{
	struct mdns_set other = { .n = 0 };
	size_t len;

	ck_assert_int_eq(mdns_set_add_service(&other, 0, name, host, 6000), 0);
	len = mdns_probe(&other, 0, host, pkt, sizeof(pkt));
	ck_assert_uint_gt(len, 0);
	world_inject(7, "10.0.0.98", MDNS_PORT, pkt, len);
}

static int follow_name;                  /* the attacker probes for our name of the moment */

/* such a probe every 0.9 s for 60 s: each one before our probing (1 s
 * deferred, then 3 probes) can end */
static void winning_probes_for_a_minute(struct mdns_service *s)
{
	for (unsigned i = 0; i < 67; i++) {
		inject_winning_probe(follow_name ? mdns_service_name(s) : "tv");
		uv_run(&loop, UV_RUN_NOWAIT);
		world_now_ms += 900;
	}
}

/* Review 2 of the responder, finding 2: one claim, then a probe every
 * 0.9 s whose tie-break ours loses. Each loss defers our probing by 1 s,
 * so it never ends; each is counted as a conflict and logged (rate-
 * limited), and the third in a row for the same name is a conflict: the
 * service takes the next name and is published. A host that follows
 * every name renames it within may_rename()'s bounds. */
START_TEST(lost_tiebreaks_rename)
{
	struct mdns_service *s;
	unsigned lines;

	world_add_iface(7, "pub0", "10.0.0.7/24");
	s = publish_on("0.0.0.0");
	while (mdns_service_state(s) == MDNS_PROBING)
		uv_run(&loop, UV_RUN_ONCE);
	inject_claim(s, 7);                   /* announced: probing again */
	uv_run(&loop, UV_RUN_NOWAIT);
	ck_assert_int_eq(mdns_service_state(s), MDNS_PROBING);
	ck_assert_uint_eq(mdns_service_conflicts(s), 1);
	/* two lost tie-breaks: deferred 1 s each time, counted */
	for (unsigned i = 0; i < 2; i++) {
		inject_winning_probe("tv");
		uv_run(&loop, UV_RUN_NOWAIT);
		ck_assert_uint_ge(next_probe_in(s), 1000);
		world_now_ms += 900;
	}
	ck_assert_str_eq(mdns_service_name(s), "tv");
	ck_assert_uint_eq(mdns_service_conflicts(s), 3);
	/* the probes go on for a minute: renamed once, at the third */
	lines = stderr_lines(winning_probes_for_a_minute, s);
	ck_assert_str_eq(mdns_service_name(s), "tv (2)");
	ck_assert_uint_eq(mdns_service_conflicts(s), 4);
	ck_assert_msg(lines <= 5, "%u log lines", lines);
	ck_assert_uint_lt(next_probe_in(s), PROBE_GAP_MS);
	while (mdns_service_state(s) == MDNS_PROBING)
		uv_run(&loop, UV_RUN_ONCE);
	ck_assert_str_eq(mdns_service_name(s), "tv (2)");
	ck_assert_uint_eq(mdns_service_conflicts(s), 0);
	/* one that follows every name: a rename every third probe, 22 in the
	 * minute (under 15 in 10 s), every loss counted, the log bounded */
	world_now_ms += 10000;
	inject_claim(s, 7);
	uv_run(&loop, UV_RUN_NOWAIT);
	follow_name = 1;
	lines = stderr_lines(winning_probes_for_a_minute, s);
	follow_name = 0;
	ck_assert_str_eq(mdns_service_name(s), "tv (24)");
	ck_assert_uint_eq(mdns_service_conflicts(s), 1 + 67);
	ck_assert_msg(lines <= 2 * 5 * (60 / 10 + 1), "%u log lines for 67 probes", lines);
	withdraw(s);
}
END_TEST

/* Lines of what FN writes to stderr that hold NEEDLE, in *LINES. */
static unsigned stderr_holding(void (*fn)(struct mdns_service *), struct mdns_service *s,
			       const char *needle)
{
	FILE *f = tmpfile();
	int saved = dup(2);
	unsigned n = 0;
	char line[1024];

	ck_assert_ptr_nonnull(f);
	ck_assert_int_ge(saved, 0);
	ck_assert_int_ge(dup2(fileno(f), 2), 0);
	fn(s);
	fflush(stderr);
	ck_assert_int_ge(dup2(saved, 2), 0);
	close(saved);
	rewind(f);
	while (fgets(line, sizeof(line), f) != NULL)
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

static int claim_host;                   /* the attacker claims the host name, not the instance */

/* A responder that claims the name again each time S is announced, never
 * answering its probes: 7 times, each once S has probed through, 15 s
 * apart. */
static void claims_at_each_announcement(struct mdns_service *s)
{
	for (unsigned i = 0; i < 7; i++) {
		while (mdns_service_state(s) == MDNS_PROBING)
			uv_run(&loop, UV_RUN_ONCE);
		if (claim_host)
			inject_host_claim(7);
		else
			inject_claim_from(s, 7, "10.0.0.98");
		uv_run(&loop, UV_RUN_NOWAIT);
		ck_assert_int_eq(mdns_service_state(s), MDNS_PROBING);
		world_now_ms += 15000;
	}
}

/* Review 3 of the responder, finding 1: a claim on an announced name
 * makes it probe again (RFC 6762 9); a responder that claims it again at
 * each announcement, without ever answering a probe, kept it probing,
 * unanswered, 97% of the time, the name never given up, a "published"
 * line logged each time. The third claim on a probed-through name in a
 * minute is a conflict while probing: renamed (within the rename bounds),
 * the instance name as the host name; the "published" line goes through
 * the rate limiter. Without the rule: "tv" after 7 claims, 7 lines (with
 * a window of 10 s, as the other bursts': "tv"). */
START_TEST(claims_after_each_announcement_rename)
{
	struct mdns_service *s;
	char first[MDNS_LABEL_MAX + 8];
	unsigned published;

	world_add_iface(7, "pub0", "10.0.0.7/24");
	s = publish_on("0.0.0.0");
	snprintf(first, sizeof(first), "%s", mdns_host_name());
	/* one that follows the name: renamed at the 3rd and the 6th claim */
	published = stderr_holding(claims_at_each_announcement, s, "published as");
	ck_assert_str_eq(mdns_service_name(s), "tv (3)");
	ck_assert_str_eq(mdns_host_name(), first);
	ck_assert_msg(published <= 5, "%u \"published\" lines", published);
	ck_assert_uint_ge(published, 5);
	/* the host name: likewise */
	world_now_ms += 10000;
	claim_host = 1;
	claims_at_each_announcement(s);
	claim_host = 0;
	ck_assert_ptr_nonnull(strstr(mdns_host_name(), "-adb-3.local"));
	ck_assert_str_eq(mdns_service_name(s), "tv (3)");
	withdraw(s);
}
END_TEST

/* Review 3 of the responder, finding 2: a record multicast less than a
 * second ago is not multicast again (RFC 6762 6), but a probe for it is
 * answered once a quarter second has passed: another host probes three
 * times in 750 ms and takes the name if none is answered. Any QM query
 * (or an announcement) kept the relay's names from being defended. */
START_TEST(probes_are_answered_within_the_second)
{
	struct mdns_service *s;
	struct mdns_set other = { .n = 0 };
	uint8_t probe[MDNS_PKT_MAX];
	size_t len;
	unsigned sent;

	world_add_iface(7, "pub0", "10.0.0.7/24");
	s = publish_on("0.0.0.0");
	while (mdns_service_state(s) == MDNS_PROBING)   /* its first announcement now */
		uv_run(&loop, UV_RUN_ONCE);
	ck_assert_int_eq(mdns_service_state(s), MDNS_ANNOUNCING);
	/* 100 ms later, a query: not answered (multicast 100 ms ago), nor a probe */
	world_now_ms += 100;
	sent = world_sent(7);
	inject_query(7, "10.0.0.50");
	ck_assert_int_eq(mdns_set_add_service(&other, 0, "tv", host, 6000), 0);
	len = mdns_probe(&other, 0, host, probe, sizeof(probe));
	ck_assert_uint_gt(len, 0);
	world_inject(7, "10.0.0.98", MDNS_PORT, probe, len);
	uv_run(&loop, UV_RUN_NOWAIT);
	ck_assert_uint_eq(world_sent(7), sent);
	/* at 300 ms: the query still not, the probe answered by multicast */
	world_now_ms += 200;
	inject_query(7, "10.0.0.50");
	uv_run(&loop, UV_RUN_NOWAIT);
	ck_assert_uint_eq(world_sent(7), sent);
	world_inject(7, "10.0.0.98", MDNS_PORT, probe, len);
	uv_run(&loop, UV_RUN_NOWAIT);
	ck_assert_uint_eq(world_sent(7), sent + 1);
	ck_assert_uint_eq(world_sent_to("10.0.0.98"), 0);
	memcpy(pkt, world_last_sent, world_last_len);
	parse_ok(world_last_len);
	ck_assert_ptr_nonnull(find_rr(MDNS_TYPE_SRV));
	withdraw(s);
}
END_TEST

/* Review 3 of the responder, finding 3: an interface's addresses change
 * (a peer's router advertisements add IPv6 addresses at will): only the
 * services whose own addresses there changed probe again; an IPv4 front
 * stays announced when an IPv6 address comes, and probes again when an
 * IPv4 address does. (A second front, on an address not there, makes the
 * responder scan at once.) */
START_TEST(other_families_addresses_leave_a_front_alone)
{
	struct mdns_service *s, *s2, *s3;

	world_add_iface(7, "pub0", "10.0.0.7/24");
	s = publish_on("0.0.0.0");
	while (mdns_service_state(s) == MDNS_PROBING)
		uv_run(&loop, UV_RUN_ONCE);
	world_add_addr6(7, "2001:db8::7");
	s2 = mdns_publish(&loop, "r2", "tv2", "10.9.9.9", 5556);
	ck_assert_ptr_nonnull(s2);
	ck_assert_int_eq(mdns_service_state(s2), MDNS_WAITING);
	ck_assert_int_eq(mdns_service_state(s), MDNS_ANNOUNCING);
	world_add_addr(7, "10.0.1.7/24");
	s3 = mdns_publish(&loop, "r3", "tv3", "10.9.9.10", 5557);
	ck_assert_ptr_nonnull(s3);
	ck_assert_int_eq(mdns_service_state(s), MDNS_PROBING);
	mdns_withdraw(s3);
	mdns_withdraw(s2);
	withdraw(s);
}
END_TEST

/* a copy with TTL (0: a goodbye) from 10.0.0.98 on interface 7 of
 * instance NAME's records on port PORT: ours when it names our port (5555) */
static void inject_ttl(const char *name, uint16_t port, long ttl)
{
	struct mdns_set other = { .n = 0 };
	uint8_t ours[MDNS_NAME_MAX];
	size_t len;

	ck_assert_int_eq(mdns_name_from_text(ours, mdns_host_name()), 0);
	ck_assert_int_eq(mdns_set_add_service(&other, 0, name, ours, port), 0);
	len = mdns_announce(&other, 0, 0, ttl, pkt, sizeof(pkt));
	ck_assert_uint_gt(len, 0);
	world_inject(7, "10.0.0.98", MDNS_PORT, pkt, len);
}

static void inject_goodbye(const char *name, uint16_t port)
{
	inject_ttl(name, port, 0);
}

/* a goodbye from 10.0.0.98 on interface 7 for our host's 10.0.0.7 */
static void inject_host_goodbye(void)
{
	struct mdns_set other = { .n = 0 };
	struct mdns_addrs a = { .n4 = 1 };
	uint8_t name[MDNS_NAME_MAX];
	size_t len;

	ck_assert_int_eq(mdns_name_from_text(name, mdns_host_name()), 0);
	inet_pton(AF_INET, "10.0.0.7", &a.v4[0]);
	ck_assert_int_eq(mdns_set_add_host(&other, name, &a), 0);
	len = mdns_announce(&other, 0, 1, 0, pkt, sizeof(pkt));
	ck_assert_uint_gt(len, 0);
	world_inject(7, "10.0.0.98", MDNS_PORT, pkt, len);
}

/* Review 3 of the responder, finding 4: a goodbye for our records from
 * another host (a lie, or a cooperating responder leaving) has every
 * cache drop them in a second (RFC 6762 10.1): the relay multicasts them
 * again within it (6.6), 250 ms later, once for the goodbyes of that
 * time; the host's records alone for a goodbye of the host's address;
 * likewise a copy with less than half our TTL (6.6), not one with ours;
 * a goodbye for another's records, or another instance, is not answered.
 * Without the rule nothing is sent. */
START_TEST(goodbyes_for_our_records_are_answered)
{
	struct mdns_service *s;
	unsigned sent;

	world_add_iface(7, "pub0", "10.0.0.7/24");
	s = publish_on("0.0.0.0");
	while (mdns_service_state(s) != MDNS_ANNOUNCED)
		uv_run(&loop, UV_RUN_ONCE);
	/* not ours: another port, another instance */
	sent = world_sent(7);
	inject_goodbye("tv", 6000);
	inject_goodbye("radio", 5555);
	uv_run(&loop, UV_RUN_NOWAIT);
	ck_assert_uint_eq(world_sent(7), sent);
	/* ours, three times: one announcement, 250 ms later */
	world_now_ms += 2000;
	for (int i = 0; i < 3; i++)
		inject_goodbye("tv", 5555);
	uv_run(&loop, UV_RUN_NOWAIT);
	ck_assert_uint_eq(world_sent(7), sent);
	uv_run(&loop, UV_RUN_ONCE);            /* the rescue's timer */
	ck_assert_uint_eq(world_sent(7), sent + 1);
	memcpy(pkt, world_last_sent, world_last_len);
	parse_ok(world_last_len);
	ck_assert_uint_eq(m.flags & MDNS_FLAG_QR, MDNS_FLAG_QR);
	ck_assert_ptr_nonnull(find_rr(MDNS_TYPE_SRV));
	ck_assert_uint_gt(find_rr(MDNS_TYPE_SRV)->ttl, 0);
	ck_assert_int_eq(mdns_service_state(s), MDNS_ANNOUNCED);
	/* the host's address: it alone, again */
	world_now_ms += 2000;
	inject_host_goodbye();
	uv_run(&loop, UV_RUN_NOWAIT);
	ck_assert_uint_eq(world_sent(7), sent + 1);
	uv_run(&loop, UV_RUN_ONCE);
	ck_assert_uint_eq(world_sent(7), sent + 2);
	memcpy(pkt, world_last_sent, world_last_len);
	parse_ok(world_last_len);
	ck_assert_ptr_nonnull(find_rr(MDNS_TYPE_A));
	ck_assert_uint_gt(find_rr(MDNS_TYPE_A)->ttl, 0);
	ck_assert_ptr_null(find_rr(MDNS_TYPE_SRV));
	/* our records with 60 s (at least half our TTLs? the SRV's 120, not
	 * the TXT's 4500): announced again; with their own TTLs: nothing */
	world_now_ms += 2000;
	inject_ttl("tv", 5555, -1);
	uv_run(&loop, UV_RUN_NOWAIT);
	uv_run(&loop, UV_RUN_ONCE);            /* the scan's timer, no rescue's */
	ck_assert_uint_eq(world_sent(7), sent + 2);
	inject_ttl("tv", 5555, 60);
	uv_run(&loop, UV_RUN_NOWAIT);
	uv_run(&loop, UV_RUN_ONCE);
	ck_assert_uint_eq(world_sent(7), sent + 3);
	withdraw(s);
}
END_TEST

/* a probe from FROM on IFINDEX for instance "tv" whose records (its SRV to
 * port 6000, above our 5555) win the tie-break */
static void inject_winning_probe_on(unsigned ifindex, const char *from)
{
	struct mdns_set other = { .n = 0 };
	size_t len;

	ck_assert_int_eq(mdns_set_add_service(&other, 0, "tv", host, 6000), 0);
	len = mdns_probe(&other, 0, host, pkt, sizeof(pkt));
	ck_assert_uint_gt(len, 0);
	world_inject(ifindex, from, MDNS_PORT, pkt, len);
}

/* Review 3 of the responder, finding 5: names are the link's (RFC 6762).
 * "tv" on pub0 (10.0.0.7), "guest" on guest0 (10.0.1.7): a claim on
 * "tv" from a peer on guest0 leaves it announced, and while it probes a
 * probe for "tv" on guest0 does not defer it; the same on pub0 do. Before,
 * the claim made it probe again and three such probes renamed it. A claim
 * on the host name (one for every link) on guest0 makes guest probe again,
 * not tv (before: every service). */
START_TEST(names_are_the_links)
{
	struct mdns_service *s, *g;

	world_add_iface(7, "pub0", "10.0.0.7/24");
	world_add_iface(8, "guest0", "10.0.1.7/24");
	s = publish_on("10.0.0.7");
	g = mdns_publish(&loop, "r2", "guest", "10.0.1.7", 5556);
	ck_assert_ptr_nonnull(g);
	ck_assert(world_joined(7) && world_joined(8));
	while (mdns_service_state(s) == MDNS_PROBING || mdns_service_state(g) == MDNS_PROBING)
		uv_run(&loop, UV_RUN_ONCE);
	inject_claim_from(s, 8, "10.0.1.98");
	uv_run(&loop, UV_RUN_NOWAIT);
	ck_assert_int_ne(mdns_service_state(s), MDNS_PROBING);
	ck_assert_uint_eq(mdns_service_conflicts(s), 0);
	/* the host name, one for every link, claimed on guest0: guest probes
	 * it again, tv is left alone */
	inject_host_claim_from(8, "10.0.1.98");
	uv_run(&loop, UV_RUN_NOWAIT);
	ck_assert_int_eq(mdns_service_state(g), MDNS_PROBING);
	ck_assert_int_ne(mdns_service_state(s), MDNS_PROBING);
	ck_assert_uint_eq(mdns_service_conflicts(s), 0);
	inject_claim_from(s, 7, "10.0.0.98");
	uv_run(&loop, UV_RUN_NOWAIT);
	ck_assert_int_eq(mdns_service_state(s), MDNS_PROBING);
	ck_assert_uint_lt(next_probe_in(s), PROBE_GAP_MS);
	for (int i = 0; i < 3; i++) {
		inject_winning_probe_on(8, "10.0.1.98");
		uv_run(&loop, UV_RUN_NOWAIT);
		ck_assert_uint_lt(next_probe_in(s), PROBE_GAP_MS);
	}
	ck_assert_str_eq(mdns_service_name(s), "tv");
	ck_assert_uint_eq(mdns_service_conflicts(s), 1);
	inject_winning_probe_on(7, "10.0.0.98");
	uv_run(&loop, UV_RUN_NOWAIT);
	ck_assert_uint_ge(next_probe_in(s), 1000);
	ck_assert_uint_eq(mdns_service_conflicts(s), 2);
	mdns_withdraw(g);
	withdraw(s);
}
END_TEST

/* Review 25, F7: a source flooding the port (2000 legacy queries a
 * second) while another querier asks five times a second: the querier gets
 * every answer; the flooder its budget's worth, then it is shut out (the
 * made-up socket's filter drops its packets). Without the per-source
 * budget the flood uses up the 200 a second and the querier gets 9 of 15. */
START_TEST(a_flood_does_not_starve_other_queriers)
{
	struct mdns_service *s;

	world_add_iface(7, "pub0", "10.0.0.7/24");
	s = publish_on("0.0.0.0");
	while (mdns_service_state(s) == MDNS_PROBING)
		uv_run(&loop, UV_RUN_ONCE);
	for (unsigned ms = 0; ms < 3000; ms++) {
		if (ms % 200 == 0)
			inject_query_port(7, "10.0.0.50", 40000, 0);
		inject_query_port(7, "10.0.0.66", 40001, 0);
		inject_query_port(7, "10.0.0.66", 40001, 0);
		uv_run(&loop, UV_RUN_NOWAIT);
		world_now_ms++;
	}
	ck_assert_uint_eq(world_sent_to("10.0.0.50"), 15);
	/* its burst (40) and, while shut, nothing */
	ck_assert_uint_le(world_sent_to("10.0.0.66"), MDNS_SOURCE_BURST + 2);
	ck_assert_uint_gt(world_filtered, 5000);
	withdraw(s);
}
END_TEST

/* Lines written while the 33 addresses attack (the_table_held_by_many). */
static void many_sources_for_4_s(struct mdns_service *s)
{
	char src[32];

	(void)s;
	for (unsigned ms = 0; ms < 6000; ms++) {
		/* 10.0.0.100-131, one packet each every 40-47 ms (21-25 a second) */
		for (unsigned i = 0; i < 32; i++) {
			if ((ms + i) % (40 + i % 8) != 0)
				continue;
			snprintf(src, sizeof(src), "10.0.0.%u", 100 + i);
			inject_query_port(7, src, 40001, 0);
		}
		if (ms % 20 == 0)             /* 10.0.0.140: 50 a second */
			inject_query_port(7, "10.0.0.140", 40001, 0);
		if (ms % 200 == 100)          /* a querier: 5 a second */
			inject_query_port(7, "10.0.0.50", 40000, 0);
		if (ms % 2500 == 700)         /* another: one every 2.5 s */
			inject_query_port(7, "10.0.0.51", 40000, 0);
		uv_run(&loop, UV_RUN_NOWAIT);
		world_now_ms++;
	}
}

/* Review 2 of the responder, finding 1: 32 on-link addresses each a
 * little past its budget (21-25 packets a second) and one more flooding
 * at 50 a second. Before, they held every entry of the table (none full,
 * so none evicted, none far enough past its budget to be shut out), the
 * 33rd used up the budget the others share and the 32 the global one:
 * the querier got 0-2 answers of 20. Now an entry past its budget is
 * evicted for a new source (the one with the most drops), the 32 in
 * budget take 160 a second of the 200, and the querier is answered but
 * for its first query (its entry starts empty). */
START_TEST(the_table_held_by_many)
{
	struct mdns_service *s;
	unsigned lines;

	world_add_iface(7, "pub0", "10.0.0.7/24");
	s = publish_on("0.0.0.0");
	while (mdns_service_state(s) == MDNS_PROBING)
		uv_run(&loop, UV_RUN_ONCE);
	lines = stderr_lines(many_sources_for_4_s, s);
	ck_assert_msg(world_sent_to("10.0.0.50") >= 27, "%u answers of 30",
		      world_sent_to("10.0.0.50"));
	ck_assert_msg(world_sent_to("10.0.0.51") == 3, "%u answers of 3",
		      world_sent_to("10.0.0.51"));
	ck_assert_uint_eq(world_overflowed, 0);
	ck_assert_msg(lines <= 10, "%u log lines", lines);
	withdraw(s);
}
END_TEST

static enum mdns_verdict admit(struct mdns_intake *in, const char *src, int own, uint64_t now)
{
	struct in_addr a;

	ck_assert_int_eq(inet_pton(AF_INET, src, &a), 1);
	return mdns_intake_admit(in, a, own, now);
}

/* The table of sources is bounded, and no one empties it: a source still
 * drawing on its budget keeps its entry (its empty budget) whatever the
 * number of other sources; sources without an entry share one budget; a
 * source with more than 80 packets dropped in a second is shut out for
 * 10 s, its entry released, never an address of the host's own, whether
 * it floods in bursts or steadily just past its refill; with shut[] full
 * a flooder more takes the place of the one whose time is up first; 200
 * packets a second from everyone together. */
START_TEST(source_budgets_bounded)
{
	static struct mdns_intake in;
	uint64_t now = 5000000;
	char src[32];
	unsigned taken = 0;

	memset(&in, 0, sizeof(in));
	for (unsigned i = 0; i < MDNS_SOURCE_BURST; i++)
		ck_assert_int_eq(admit(&in, "10.0.0.66", 0, now), MDNS_TAKE);
	ck_assert_int_eq(admit(&in, "10.0.0.66", 0, now), MDNS_DROP);
	/* 1000 other sources at once: 31 entries and the shared budget's 40 */
	for (unsigned i = 0; i < 1000; i++) {
		snprintf(src, sizeof(src), "10.1.%u.%u", i / 250, i % 250 + 1);
		taken += admit(&in, src, 0, now) == MDNS_TAKE;
	}
	ck_assert_uint_eq(taken, MDNS_SOURCES_MAX - 1 + MDNS_SOURCE_BURST);
	/* the flooder still has nothing: its entry was not taken from it */
	ck_assert_int_eq(admit(&in, "10.0.0.66", 0, now), MDNS_DROP);
	/* 50 ms later it has one packet again, and the others theirs */
	now += 1000 / MDNS_SOURCE_PER_S;
	ck_assert_int_eq(admit(&in, "10.0.0.66", 0, now), MDNS_TAKE);
	ck_assert_int_eq(admit(&in, "10.0.0.66", 0, now), MDNS_DROP);
	/* more than MDNS_SHUT_DROPS dropped in a second (3 so far, a token
	 * taken in between): shut out, once, its entry released */
	for (unsigned i = 3; i < MDNS_SHUT_DROPS; i++)
		ck_assert_int_eq(admit(&in, "10.0.0.66", 0, now), MDNS_DROP);
	ck_assert_int_eq(admit(&in, "10.0.0.66", 0, now), MDNS_SHUT);
	ck_assert_int_eq(admit(&in, "10.0.0.66", 0, now), MDNS_DROP);
	ck_assert_uint_eq(in.nshut, 1);
	for (unsigned i = 0; i < MDNS_SOURCES_MAX; i++)
		ck_assert(!in.src[i].used || in.src[i].addr.s_addr != inet_addr("10.0.0.66"));
	ck_assert_int_eq(mdns_intake_expire(&in, now + MDNS_SHUT_MS - 1), 0);
	ck_assert_int_eq(mdns_intake_expire(&in, now + MDNS_SHUT_MS), 1);
	ck_assert_uint_eq(in.nshut, 0);
	/* an address of the host's own is never shut out */
	for (unsigned i = 0; i < 10 * MDNS_SOURCE_BURST; i++)
		ck_assert_int_ne(admit(&in, "10.0.0.7", 1, now), MDNS_SHUT);
	/* a steady flood just past the refill, one packet every 5 ms: shut
	 * out within its first second (a token taken now and then does not
	 * clear its count of drops) */
	memset(&in, 0, sizeof(in));
	now += 10000;
	for (unsigned t = 0; t <= 1000 && in.nshut == 0; t += 5)
		admit(&in, "10.0.0.67", 0, now + t);
	ck_assert_uint_eq(in.nshut, 1);
	/* shut[] full: one flooder more takes the place of the one whose
	 * time is up first; every one of them is filtered */
	memset(&in, 0, sizeof(in));
	for (unsigned i = 0; i <= MDNS_SHUT_MAX; i++) {
		enum mdns_verdict v = MDNS_TAKE;

		snprintf(src, sizeof(src), "10.3.0.%u", i + 1);
		for (unsigned k = 0; k < 10 * MDNS_SHUT_DROPS && v != MDNS_SHUT; k++)
			v = admit(&in, src, 0, now + i);
		ck_assert_int_eq(v, MDNS_SHUT);
	}
	ck_assert_uint_eq(in.nshut, MDNS_SHUT_MAX);
	for (unsigned i = 0; i < MDNS_SHUT_MAX; i++)
		ck_assert_uint_ne(in.shut[i].addr.s_addr, inet_addr("10.3.0.1"));
	ck_assert_int_eq(admit(&in, "10.3.0.2", 0, now + 100), MDNS_DROP);
	now += 20000;
	/* the global budget: 32 sources, each its burst of 10 at once, in a
	 * fresh table: 160 taken, their first 5 each; the last 40 kept for
	 * the first 5 of others (here the shared budget's, without an entry) */
	memset(&in, 0, sizeof(in));
	taken = 0;
	now += 10000;
	for (unsigned i = 0; i < MDNS_SOURCES_MAX * MDNS_SOURCE_BURST; i++) {
		snprintf(src, sizeof(src), "10.2.0.%u", i % MDNS_SOURCES_MAX + 1);
		taken += admit(&in, src, 0, now) == MDNS_TAKE;
	}
	ck_assert_uint_eq(taken, MDNS_PACKETS_PER_S - MDNS_PACKETS_RESERVE);
	for (unsigned i = 0; i < MDNS_SOURCE_PER_S; i++)
		ck_assert_int_eq(admit(&in, "10.2.1.1", 0, now), MDNS_TAKE);
	ck_assert_int_eq(admit(&in, "10.2.1.1", 0, now), MDNS_DROP);
	/* a table of 31 sources past their budgets and one idle for 2.5 s
	 * (its bucket full again): a new source takes the entry of one past
	 * its budget, the idle one keeps its own */
	memset(&in, 0, sizeof(in));
	now += 10000;
	admit(&in, "10.4.0.1", 0, now);
	for (unsigned t = 0; t <= 2500; t += 500)
		for (unsigned i = 2; i <= MDNS_SOURCES_MAX; i++)
			for (unsigned k = 0; k < 5; k++) {
				snprintf(src, sizeof(src), "10.4.0.%u", i);
				admit(&in, src, 0, now + t);
			}
	ck_assert_int_eq(admit(&in, "10.4.1.1", 0, now + 2500), MDNS_TAKE);
	ck_assert_int_eq(admit(&in, "10.4.1.1", 0, now + 2500), MDNS_DROP);   /* one packet */
	taken = 0;
	for (unsigned i = 0; i < MDNS_SOURCES_MAX; i++)
		taken += in.src[i].addr.s_addr == inet_addr("10.4.0.1");
	ck_assert_uint_eq(taken, 1);
	/* 32 sources in budget hold the table: a flooder without an entry
	 * uses up the shared budget (told: crowded), and past 80 drops in a
	 * second it is shut out too */
	memset(&in, 0, sizeof(in));
	now += 10000;
	for (unsigned i = 1; i <= MDNS_SOURCES_MAX; i++) {
		snprintf(src, sizeof(src), "10.5.0.%u", i);
		ck_assert_int_eq(admit(&in, src, 0, now), MDNS_TAKE);
	}
	for (unsigned i = 0; i < MDNS_SOURCE_BURST; i++)
		ck_assert_int_eq(admit(&in, "10.5.1.1", 0, now), MDNS_TAKE);
	for (unsigned i = 0; i < MDNS_SHUT_DROPS; i++)
		ck_assert_int_eq(admit(&in, "10.5.1.1", 0, now), MDNS_CROWDED);
	ck_assert_int_eq(admit(&in, "10.5.1.1", 0, now), MDNS_SHUT);
	ck_assert_uint_eq(in.nshut, 1);
	/* every source in budget together: less than the global budget */
	ck_assert_uint_lt((MDNS_SOURCES_MAX + 1) * MDNS_SOURCE_PER_S, MDNS_PACKETS_PER_S);
}
END_TEST

static Suite *mdns_suite(void)
{
	Suite *s = suite_create("mdns");
	TCase *tc = tcase_create("core"), *slow;

	tcase_add_test(tc, records_encoded);
	tcase_add_test(tc, compression_written_and_read);
	tcase_add_test(tc, names_bounded);
	tcase_add_test(tc, counts_bounded);
	tcase_add_test(tc, query_matching);
	tcase_add_test(tc, known_answer_suppression);
	tcase_add_test(tc, conflicts_and_renaming);
	tcase_add_test(tc, tiebreak);
	tcase_add_test(tc, goodbye);
	tcase_add_test(tc, answers_fit);
	tcase_add_test(tc, probing_slows_down_after_15_conflicts);
	tcase_add_test(tc, other_interfaces_are_not_read);
	tcase_add_test(tc, own_probes_are_no_opponents);
	tcase_add_test(tc, off_link_packets_are_dropped);
	tcase_add_test(tc, announced_host_name_probes_again);
	tcase_add_test(tc, renames_bounded);
	tcase_add_test(tc, a_flood_does_not_starve_other_queriers);
	tcase_add_test(tc, endless_claims_keep_probing_at_a_bounded_cost);
	tcase_add_test(tc, lost_tiebreaks_rename);
	tcase_add_test(tc, source_budgets_bounded);
	tcase_add_test(tc, the_table_held_by_many);
	tcase_add_test(tc, responses_that_are_not_mdns_are_ignored);
	suite_add_tcase(s, tc);
	/* tests that wait for probes in real time (a second each) */
	slow = tcase_create("probed through");
	tcase_set_timeout(slow, 60);
	tcase_add_test(slow, claims_after_each_announcement_rename);
	tcase_add_test(slow, probes_are_answered_within_the_second);
	tcase_add_test(slow, other_families_addresses_leave_a_front_alone);
	tcase_add_test(slow, goodbyes_for_our_records_are_answered);
	tcase_add_test(slow, names_are_the_links);
	suite_add_tcase(s, slow);
	return s;
}

int main(void)
{
	return unit_run(mdns_suite());
}
