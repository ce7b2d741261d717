/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_mdns.c - libFuzzer target for the mDNS responder's codec and
 * records (relay/mdns/wire.c, records.c): the input is a packet a network
 * peer sent (the first two bytes are its source port) to 48 services, held in a buffer of
 * its exact size so that any read outside it is caught. Oracles, not only
 * crashes: every name read from any offset is well formed (labels of 1-63
 * bytes, 255 bytes at most, ended); an answer to the packet is at most
 * 1500 bytes, a response, and a packet our own parser accepts whole, with
 * its records ours; conflict and tie-break checks end.
 */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay/mdns/mdns_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)

static const uint8_t host[] = "\x07vm-fuzz\x05local";
static struct mdns_set set;
static struct mdns_msg in, out_msg;

static void make_set(void)
{
	struct mdns_addrs a = { .n4 = 1, .n6 = 1 };

	if (set.n != 0)
		return;
	inet_pton(AF_INET, "10.0.0.7", &a.v4[0]);
	inet_pton(AF_INET6, "fe80::7", &a.v6[0]);
	CHECK(mdns_set_add_service(&set, 0, "tv", host, 5555) == 0);
	CHECK(mdns_set_add_service(&set, 1, "tv (2)", host, 5556) == 0);
	CHECK(mdns_set_add_host(&set, host, &a) == 0);
	/* enough services that an answer to "_adb._tcp.local PTR" overflows a
	 * packet: the rest must be left out */
	for (int i = 2; i < 48; i++) {
		char name[48];
		snprintf(name, sizeof(name), "service-%02d-with-a-long-name-to-fill", i);
		CHECK(mdns_set_add_service(&set, i, name, host, (uint16_t)(5555 + i)) == 0);
	}
	set.r[1].recent = 1;
}

static void check_name(const uint8_t *name)
{
	size_t n = 0;

	while (name[n] != 0) {
		CHECK(name[n] <= MDNS_LABEL_MAX);
		n += 1 + (size_t)name[n];
		CHECK(n < MDNS_NAME_MAX);
	}
}

static int ours(const struct mdns_rr *rr)
{
	for (unsigned i = 0; i < set.n; i++)
		if (mdns_record_eq(&set.r[i], rr))
			return 1;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t name[MDNS_NAME_MAX], out[MDNS_PKT_MAX];
	uint16_t port;
	uint64_t groups;
	const char *why;
	uint8_t *pkt;
	size_t len, off;
	int uni, shared;

	if (size < 2 || size > MDNS_PKT_MAX + 2)
		return 0;
	make_set();
	port = (uint16_t)(data[0] << 8 | data[1]);
	size -= 2;
	pkt = malloc(size ? size : 1);
	CHECK(pkt != NULL);
	memcpy(pkt, data + 2, size);
	for (size_t i = 0; i < size; i++) {
		off = i;
		if (mdns_read_name(pkt, size, &off, name) == 0) {
			check_name(name);
			CHECK(off > i && off <= size);
		}
	}
	if (mdns_parse(pkt, size, &in, &why) == 0) {
		for (unsigned i = 0; i < in.nq; i++)
			check_name(in.q[i].name);
		for (unsigned i = 0; i < in.nrr; i++) {
			check_name(in.rr[i].name);
			CHECK(in.rr[i].rdlen <= MDNS_RDATA_MAX);
		}
		len = mdns_answer(&set, &in, port, out, sizeof(out), &uni, &groups, &shared);
		if (len > 0) {
			CHECK(len <= MDNS_PKT_MAX);
			CHECK(mdns_parse(out, len, &out_msg, &why) == 0);
			CHECK(out_msg.flags & MDNS_FLAG_QR);
			CHECK(out_msg.ancount > 0);
			CHECK(uni || groups != 0 || shared);
			for (unsigned i = 0; i < out_msg.nrr; i++)
				CHECK(ours(&out_msg.rr[i]));
		}
		(void)mdns_conflict(&set, &in, set.r[2].name);
		(void)mdns_conflict(&set, &in, host);
		(void)mdns_tiebreak(&set, &in, set.r[2].name);
	}
	free(pkt);
	return 0;
}
