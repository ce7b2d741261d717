/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_pcap.c - the pcap writer for relayed adb traffic: file header
 * layout, handshake and close, IPv4 and TCP checksums, sequence and ack
 * numbers, segments cut along adb messages whatever the input chunks,
 * oversize writes split, bad input recorded raw, output bounds kept, and
 * tshark's adb dissector decoding a whole session (tshark is required).
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adbproto/adbproto.h"
#include "relay/obs/pcap.h"
#include "tests/unit/unit.h"

#define TSHARK_ARGS "-d tcp.port==5555,adb"

static const struct timeval ts0 = { 1700000000, 123456 };

/* ---- building captures ---- */

struct capture {
	uint8_t *buf;
	size_t len, cap;
};

static void cap_append(struct capture *c, const uint8_t *p, size_t n)
{
	if (c->len + n > c->cap) {
		c->cap = (c->len + n) * 2;
		c->buf = realloc(c->buf, c->cap);
		if (!c->buf)
			ck_abort_msg("out of memory");
	}
	memcpy(c->buf + c->len, p, n);
	c->len += n;
}

/* Record one chunk the way a caller does: drain a PCAP_RECORD_MAX buffer
 * until the writer took all of it. */
static void feed(struct capture *c, struct pcap_flow *f, int from_guest,
		 const uint8_t *p, size_t len)
{
	static uint8_t out[PCAP_RECORD_MAX];

	while (len) {
		size_t used = 0, n;

		n = pcap_flow_data(f, from_guest, &ts0, p, len, &used, out, sizeof(out));
		if (used == 0 || used > len || n > sizeof(out))
			ck_abort_msg("took %zu of %zu bytes, wrote %zu", used, len, n);
		cap_append(c, out, n);
		p += used;
		len -= used;
	}
}

static void open_flow(struct capture *c, struct pcap_flow *f, uint32_t id)
{
	uint8_t out[PCAP_OPEN_LEN];

	pcap_flow_init(f, id);
	ck_assert_uint_eq(pcap_flow_open(f, &ts0, out), PCAP_OPEN_LEN);
	cap_append(c, out, PCAP_OPEN_LEN);
}

static void close_flow(struct capture *c, struct pcap_flow *f)
{
	uint8_t out[PCAP_CLOSE_MAX];
	size_t n = pcap_flow_close(f, &ts0, out);

	ck_assert_uint_le(n, PCAP_CLOSE_MAX);
	cap_append(c, out, n);
}

/* An adb message with a string payload (may be empty); an OPEN's
 * service name carries its NUL, as adb sends it. */
static size_t frame(uint8_t *out, uint32_t cmd, uint32_t arg0, uint32_t arg1, const char *s)
{
	size_t n = strlen(s) + (cmd == ADB_CMD_OPEN);
	struct adb_header h;

	adb_header_init(&h, cmd, arg0, arg1, (uint32_t)n, adb_checksum(0, s, n));
	adb_header_encode(&h, out);
	memcpy(out + ADB_HEADER_SIZE, s, n);
	return ADB_HEADER_SIZE + n;
}

/* ---- reading captures back ---- */

static uint32_t get_be(const uint8_t *p, int n)
{
	uint32_t v = 0;

	while (n--)
		v = v << 8 | *p++;
	return v;
}

static uint32_t get_le32(const uint8_t *p)
{
	return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

struct pkt {
	const uint8_t *ip, *tcp, *data;
	size_t len;                      /* TCP payload */
	uint16_t sport, dport;
	uint32_t seq, ack;
	uint8_t flags;
};

/*
 * The walkers below check plainly and report once: check records every
 * passing assertion, far too slow for each of 150000 packets.
 */

/* One record at *off of a capture without file header; 0 at the end or at
 * a record that does not hold together (then *off stops short of the end). */
static int next_pkt(const struct capture *c, size_t *off, struct pkt *k)
{
	const uint8_t *r = c->buf + *off;
	uint32_t incl;

	if (c->len - *off < PCAP_PKT_OVERHEAD)
		return 0;
	incl = get_le32(r + 8);
	if (incl != get_le32(r + 12) || incl < 40 || 16 + incl > c->len - *off ||
	    get_le32(r) != (uint32_t)ts0.tv_sec || get_le32(r + 4) != (uint32_t)ts0.tv_usec)
		return 0;
	k->ip = r + 16;
	k->tcp = k->ip + 20;
	k->data = k->tcp + 20;
	k->len = incl - 40;
	if (k->ip[0] != 0x45 || get_be(k->ip + 2, 2) != incl)
		return 0;
	k->sport = (uint16_t)get_be(k->tcp, 2);
	k->dport = (uint16_t)get_be(k->tcp + 2, 2);
	k->seq = get_be(k->tcp + 4, 4);
	k->ack = get_be(k->tcp + 8, 4);
	k->flags = k->tcp[13];
	*off += 16 + incl;
	return 1;
}

static uint32_t sum16(uint32_t sum, const uint8_t *p, size_t n)
{
	for (; n > 1; n -= 2, p += 2)
		sum += get_be(p, 2);
	if (n)
		sum += (uint32_t)p[0] << 8;
	return sum;
}

static uint16_t fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* Both checksums verify: the sums over the covered bytes fold to 0xffff. */
static int sums_ok(const struct pkt *k)
{
	uint32_t pseudo = sum16(0, k->ip + 12, 8) + 6 + 20 + (uint32_t)k->len;

	return fold(sum16(0, k->ip, 20)) == 0xffff &&
	       fold(sum16(pseudo, k->tcp, 20 + k->len)) == 0xffff;
}

static int is_from_guest(const struct pkt *k)
{
	return k->sport == PCAP_GUEST_PORT;
}

/* ---- layout, handshake, close ---- */

START_TEST(file_header_layout)
{
	static const uint8_t want[PCAP_FILE_HEADER_LEN] = {
		0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0,
		0x00, 0x00, 0x04, 0x00, 101, 0, 0, 0,
	};
	uint8_t out[PCAP_FILE_HEADER_LEN];

	ck_assert_uint_eq(pcap_file_header(out), PCAP_FILE_HEADER_LEN);
	ck_assert_mem_eq(out, want, sizeof(want));
}
END_TEST

START_TEST(handshake_and_close)
{
	struct capture c = { 0 };
	struct pcap_flow f;
	struct pkt syn, synack, ack, fin1, fin2, last;
	size_t off = 0;

	open_flow(&c, &f, 7);
	close_flow(&c, &f);
	ck_assert(next_pkt(&c, &off, &syn) && next_pkt(&c, &off, &synack) &&
		  next_pkt(&c, &off, &ack) && next_pkt(&c, &off, &fin1) &&
		  next_pkt(&c, &off, &fin2) && next_pkt(&c, &off, &last));
	ck_assert_int_eq(next_pkt(&c, &off, &last), 0);

	ck_assert_uint_eq(syn.sport, PCAP_PC_PORT_BASE + 7);
	ck_assert_uint_eq(syn.dport, PCAP_GUEST_PORT);
	ck_assert_uint_eq(get_be(syn.ip + 12, 4), PCAP_PC_ADDR);
	ck_assert_uint_eq(get_be(syn.ip + 16, 4), PCAP_GUEST_ADDR);
	ck_assert_uint_eq(syn.flags, 0x02);
	ck_assert_uint_eq(synack.flags, 0x12);
	ck_assert_uint_eq(synack.sport, PCAP_GUEST_PORT);
	ck_assert_uint_eq(synack.ack, syn.seq + 1);
	ck_assert_uint_eq(ack.flags, 0x10);
	ck_assert_uint_eq(ack.seq, syn.seq + 1);
	ck_assert_uint_eq(ack.ack, synack.seq + 1);

	ck_assert_uint_eq(fin1.flags, 0x11);
	ck_assert_uint_eq(fin1.seq, syn.seq + 1);
	ck_assert_uint_eq(fin2.flags, 0x11);
	ck_assert_uint_eq(fin2.seq, synack.seq + 1);
	ck_assert_uint_eq(fin2.ack, fin1.seq + 1);
	ck_assert_uint_eq(last.flags, 0x10);
	ck_assert_uint_eq(last.seq, fin1.seq + 1);
	ck_assert_uint_eq(last.ack, fin2.seq + 1);

	off = 0;
	while (next_pkt(&c, &off, &syn))
		ck_assert(sums_ok(&syn));
	ck_assert_uint_eq(off, c.len);
	free(c.buf);
}
END_TEST

START_TEST(session_ids_map_to_ports)
{
	struct pcap_flow f;

	pcap_flow_init(&f, 0);
	ck_assert_uint_eq(f.pc_port, 32768);
	pcap_flow_init(&f, PCAP_PC_PORTS - 1);
	ck_assert_uint_eq(f.pc_port, 60999);
	pcap_flow_init(&f, PCAP_PC_PORTS + 3);
	ck_assert_uint_eq(f.pc_port, 32771);
}
END_TEST

/* ---- data: sequence numbers, segmentation, bounds ---- */

/* A stream of messages with a large WRTE; boundaries[] gets each
 * message's start offset. */
static size_t build_stream(uint8_t *buf, size_t big, size_t *bounds, size_t *nbounds)
{
	struct adb_header h;
	size_t n = 0, i;

	*nbounds = 0;
	bounds[(*nbounds)++] = n;
	n += frame(buf + n, ADB_CMD_OKAY, 1, 2, "");
	bounds[(*nbounds)++] = n;
	n += frame(buf + n, ADB_CMD_WRTE, 1, 2, "hello");
	bounds[(*nbounds)++] = n;
	adb_header_init(&h, ADB_CMD_WRTE, 1, 2, (uint32_t)big, 0);
	adb_header_encode(&h, buf + n);
	n += ADB_HEADER_SIZE;
	for (i = 0; i < big; i++)
		buf[n++] = (uint8_t)(i * 7);
	bounds[(*nbounds)++] = n;
	n += frame(buf + n, ADB_CMD_CLSE, 1, 2, "");
	bounds[(*nbounds)++] = n;
	return n;
}

static int is_bound(const size_t *bounds, size_t nbounds, size_t at)
{
	size_t i;

	for (i = 0; i < nbounds; i++)
		if (bounds[i] == at)
			return 1;
	return 0;
}

/*
 * Walk a one-direction capture: checksums hold, sequence and ack numbers
 * advance by payload length, the payloads rebuild the stream, and no
 * segment crosses a message start or cuts a header. NULL, or what is wrong.
 */
static const char *stream_problem(const struct capture *c, int guest, const uint8_t *stream,
				  size_t len, const size_t *bounds, size_t nbounds)
{
	static char why[128];
	struct pkt k;
	size_t off = 0, at = 0, i;
	uint32_t seq = 0, peer = 0;

	while (next_pkt(c, &off, &k)) {
		if (!sums_ok(&k))
			return "bad checksum";
		if (k.flags & 0x02) {    /* SYN, SYN-ACK */
			if (is_from_guest(&k) == guest)
				seq = k.seq + 1;
			else
				peer = k.seq + 1;
			continue;
		}
		if (is_from_guest(&k) != guest || k.len == 0)
			continue;
		if (k.flags != 0x18 || k.seq != seq || k.ack != peer)
			return "flags, seq or ack wrong";
		if (k.len > PCAP_SEG_MAX || at + k.len > len || memcmp(k.data, stream + at, k.len))
			return "payload is not the stream";
		for (i = at + 1; i < at + k.len; i++)
			if (is_bound(bounds, nbounds, i))
				break;
		if (i < at + k.len ||
		    (is_bound(bounds, nbounds, at) && k.len < ADB_HEADER_SIZE)) {
			snprintf(why, sizeof(why), "segment [%zu,%zu) crosses a message start or "
				 "cuts a header", at, at + k.len);
			return why;
		}
		seq += (uint32_t)k.len;
		at += k.len;
	}
	if (off != c->len)
		return "a record does not hold together";
	return at == len ? NULL : "stream incomplete";
}

static void check_stream(const struct capture *c, int guest, const uint8_t *stream,
			 size_t len, const size_t *bounds, size_t nbounds)
{
	const char *why = stream_problem(c, guest, stream, len, bounds, nbounds);

	ck_assert_msg(why == NULL, "%s", why);
}

/* _i is the direction: 0 PC -> guest, 1 guest -> PC */
START_TEST(segments_follow_messages_any_chunking)
{
	static uint8_t stream[200000];
	/* input chunk sizes; 0 stands for random sizes 1..60 */
	static const size_t chunks[] = { 0, 1, 23, 24, 25, 4096, 70000, 200000 };
	size_t bounds[8], nb, len = build_stream(stream, 150000, bounds, &nb);
	unsigned seed = 1;
	size_t ci;

	for (ci = 0; ci < sizeof(chunks) / sizeof(chunks[0]); ci++) {
		struct capture c = { 0 };
		struct pcap_flow f;
		size_t at = 0;

		open_flow(&c, &f, (uint32_t)ci);
		while (at < len) {
			size_t n = chunks[ci];

			if (n == 0) {
				seed = seed * 1103515245u + 12345u;
				n = 1 + (seed >> 16) % 60;
			}
			if (n > len - at)
				n = len - at;
			feed(&c, &f, _i, stream + at, n);
			at += n;
		}
		close_flow(&c, &f);
		check_stream(&c, _i, stream, len, bounds, nb);
		free(c.buf);
	}
}
END_TEST

/* One call with a message larger than a segment: full segments, then the
 * rest (header included in the first). */
START_TEST(oversize_write_is_split)
{
	static uint8_t stream[200000];
	size_t bounds[8], nb, big_at, big_len, bound = 0, off = 0, nseg = 0;
	struct capture c = { 0 };
	struct pcap_flow f;
	struct pkt k;

	build_stream(stream, 150000, bounds, &nb);
	big_at = bounds[2];
	big_len = bounds[3] - bounds[2];
	ck_assert_uint_eq(big_len, ADB_HEADER_SIZE + 150000);
	open_flow(&c, &f, 1);
	feed(&c, &f, 1, stream + big_at, big_len);
	while (next_pkt(&c, &off, &k)) {
		if (k.len == 0)
			continue;
		ck_assert_uint_eq(k.len, nseg < 2 ? PCAP_SEG_MAX : big_len - 2 * PCAP_SEG_MAX);
		nseg++;
	}
	ck_assert_uint_eq(nseg, 3);
	check_stream(&c, 1, stream + big_at, big_len, &bound, 1);
	free(c.buf);
}
END_TEST

START_TEST(bad_header_recorded_raw)
{
	static uint8_t junk[150000];
	struct capture c = { 0 };
	struct pcap_flow f;
	size_t i, bound = 0;

	for (i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 13 + 1);
	open_flow(&c, &f, 1);
	feed(&c, &f, 0, junk, 10);
	feed(&c, &f, 0, junk + 10, sizeof(junk) - 10);
	ck_assert(f.dir[0].raw);
	check_stream(&c, 0, junk, sizeof(junk), &bound, 1);
	free(c.buf);
}
END_TEST

START_TEST(partial_header_flushed_on_close)
{
	uint8_t msg[64];
	size_t n = frame(msg, ADB_CMD_OPEN, 1, 0, "shell:");
	struct capture c = { 0 };
	struct pcap_flow f;
	size_t bound = 0;

	open_flow(&c, &f, 1);
	feed(&c, &f, 1, msg, n);
	feed(&c, &f, 1, msg, 10);
	ck_assert_uint_eq(f.dir[1].hdr_have, 10);
	close_flow(&c, &f);
	memcpy(msg + n, msg, 10);
	check_stream(&c, 1, msg, n + 10, &bound, 1);
	free(c.buf);
}
END_TEST

/* Output never passes cap; a buffer of PCAP_RECORD_MAX always progresses;
 * a smaller one still loses nothing. */
START_TEST(out_buffer_bounds)
{
	static uint8_t stream[200000];
	static uint8_t out[PCAP_RECORD_MAX + 64];
	static const size_t caps[] = {
		PCAP_PKT_OVERHEAD + ADB_HEADER_SIZE, PCAP_PKT_OVERHEAD + 25, 1000, PCAP_RECORD_MAX - 1,
		PCAP_RECORD_MAX,
	};
	size_t bounds[8], nb, len = build_stream(stream, 150000, bounds, &nb);
	size_t ci;

	for (ci = 0; ci < sizeof(caps) / sizeof(caps[0]); ci++) {
		struct capture c = { 0 };
		struct pcap_flow f;
		size_t at = 0, used, n, cap = caps[ci];

		open_flow(&c, &f, 1);
		while (at < len) {
			memset(out, 0xa5, sizeof(out));
			n = pcap_flow_data(&f, 0, &ts0, stream + at, len - at, &used, out, cap);
			if (n > cap || out[cap] != 0xa5 || used == 0)
				ck_abort_msg("cap %zu: wrote %zu, took %zu", cap, n, used);
			cap_append(&c, out, n);
			at += used;
		}
		check_stream(&c, 0, stream, len, bounds, nb);
		free(c.buf);
	}
}
END_TEST

START_TEST(too_small_buffer_writes_nothing)
{
	uint8_t msg[64], out[PCAP_PKT_OVERHEAD + ADB_HEADER_SIZE];
	size_t n = frame(msg, ADB_CMD_WRTE, 1, 2, "hi"), used;
	struct pcap_flow f;

	pcap_flow_init(&f, 1);
	memset(out, 0xa5, sizeof(out));
	ck_assert_uint_eq(pcap_flow_data(&f, 0, &ts0, msg, n, &used, out, 0), 0);
	ck_assert_uint_eq(used, 0);
	ck_assert_uint_eq(pcap_flow_data(&f, 0, &ts0, msg, n, &used, out,
					 PCAP_PKT_OVERHEAD + ADB_HEADER_SIZE - 1), 0);
	ck_assert_uint_eq(used, 0);
	ck_assert_uint_eq(out[0], 0xa5);
	/* a header still incomplete needs no room: it is held */
	ck_assert_uint_eq(pcap_flow_data(&f, 0, &ts0, msg, 20, &used, out, 0), 0);
	ck_assert_uint_eq(used, 20);
	/* the header completes but its payload does not fit: header alone */
	ck_assert_uint_eq(pcap_flow_data(&f, 0, &ts0, msg + 20, n - 20, &used, out,
					 sizeof(out)), sizeof(out));
	ck_assert_uint_eq(used, 4);
	ck_assert_uint_eq(f.dir[0].payload_left, 2);
}
END_TEST

/* ---- tshark decodes a whole session ---- */

static void write_file(const char *path, const struct capture *c)
{
	uint8_t fh[PCAP_FILE_HEADER_LEN];
	FILE *fp = fopen(path, "wb");

	ck_assert_ptr_nonnull(fp);
	pcap_file_header(fh);
	ck_assert_uint_eq(fwrite(fh, 1, sizeof(fh), fp), sizeof(fh));
	ck_assert_uint_eq(fwrite(c->buf, 1, c->len, fp), c->len);
	ck_assert_int_eq(fclose(fp), 0);
}

/*
 * PC CNXN, guest CNXN, PC OPEN, guest OKAY, guest WRTE, PC OKAY, guest
 * CLSE, PC CLSE: the guest's CNXN split over three calls, OKAY and WRTE
 * (with its payload cut) arriving together, CLSE in the same call as
 * nothing else but split from its header by one byte.
 */
static void build_session(struct capture *c)
{
	uint8_t m[8][128];
	size_t n[8];
	struct pcap_flow f;
	uint8_t okay_wrte[256];
	size_t ow;

	n[0] = frame(m[0], ADB_CMD_CNXN, ADB_VERSION, 256 * 1024, "host::features=shell_v2,cmd");
	n[1] = frame(m[1], ADB_CMD_CNXN, ADB_VERSION, 256 * 1024,
		     "device::ro.product.name=guest;features=shell_v2,cmd");
	n[2] = frame(m[2], ADB_CMD_OPEN, 1, 0, "shell:echo hi");
	n[3] = frame(m[3], ADB_CMD_OKAY, 7, 1, "");
	n[4] = frame(m[4], ADB_CMD_WRTE, 7, 1, "hi\n");
	n[5] = frame(m[5], ADB_CMD_OKAY, 1, 7, "");
	n[6] = frame(m[6], ADB_CMD_CLSE, 7, 1, "");
	n[7] = frame(m[7], ADB_CMD_CLSE, 1, 7, "");

	open_flow(c, &f, 42);
	feed(c, &f, 0, m[0], n[0]);
	feed(c, &f, 1, m[1], 10);
	feed(c, &f, 1, m[1] + 10, 20);
	feed(c, &f, 1, m[1] + 30, n[1] - 30);
	feed(c, &f, 0, m[2], n[2]);
	memcpy(okay_wrte, m[3], n[3]);
	memcpy(okay_wrte + n[3], m[4], n[4]);
	ow = n[3] + n[4];
	feed(c, &f, 1, okay_wrte, ow - 2);
	feed(c, &f, 1, okay_wrte + ow - 2, 2);
	feed(c, &f, 0, m[5], n[5]);
	feed(c, &f, 1, m[6], 23);
	feed(c, &f, 1, m[6] + 23, 1);
	feed(c, &f, 0, m[7], n[7]);
	close_flow(c, &f);
}

/* Run tshark on path with extra arguments; its stdout goes to out. */
static void tshark(const char *path, const char *args, char *out, size_t cap)
{
	char cmd[512];
	FILE *p;
	size_t n;

	snprintf(cmd, sizeof(cmd), "tshark -r '%s' " TSHARK_ARGS " %s", path, args);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	n = fread(out, 1, cap - 1, p);
	out[n] = '\0';
	ck_assert_msg(pclose(p) == 0, "'%s' failed", cmd);
}

START_TEST(tshark_decodes_session)
{
	char path[] = "/tmp/test_pcap-XXXXXX";
	char got[4096];
	struct capture c = { 0 };
	int fd;

	ck_assert_msg(system("tshark -v >/dev/null 2>&1") == 0,
		      "tshark not found: it is part of the test dependencies "
		      "(tests/install-deps.sh installs it)");
	build_session(&c);
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	write_file(path, &c);

	/* each message's first segment has adb.magic; its payload
	 * fragments repeat adb.command without it */
	tshark(path, "-Y adb.magic -T fields -e adb.command", got, sizeof(got));
	ck_assert_str_eq(got,
			 "0x4e584e43\n0x4e584e43\n"       /* CNXN, CNXN */
			 "0x4e45504f\n0x59414b4f\n"       /* OPEN, OKAY */
			 "0x45545257\n0x59414b4f\n"       /* WRTE, OKAY */
			 "0x45534c43\n0x45534c43\n");     /* CLSE, CLSE */
	tshark(path, "-Y adb.service -T fields -e adb.service", got, sizeof(got));
	ck_assert_msg(strstr(got, "shell:echo hi") != NULL, "no service decoded:\n%s", got);
	/* with checksums validated: nothing malformed, no expert warning or
	 * error (SYN and FIN notices are normal), no TCP analysis complaint */
	tshark(path, "-o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE "
	       "-Y '_ws.malformed || _ws.expert.severity >= 0x00600000 || "
	       "tcp.analysis.flags' "
	       "-T fields -e frame.number -e _ws.expert.message", got, sizeof(got));
	ck_assert_msg(got[0] == '\0', "tshark flags problems in %s:\n%s", path, got);
	unlink(path);
	free(c.buf);
}
END_TEST

static Suite *pcap_suite(void)
{
	Suite *s = suite_create("pcap");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, file_header_layout);
	tcase_add_test(tc, handshake_and_close);
	tcase_add_test(tc, session_ids_map_to_ports);
	tcase_add_loop_test(tc, segments_follow_messages_any_chunking, 0, 2);
	tcase_add_test(tc, oversize_write_is_split);
	tcase_add_test(tc, bad_header_recorded_raw);
	tcase_add_test(tc, partial_header_flushed_on_close);
	tcase_add_test(tc, out_buffer_bounds);
	tcase_add_test(tc, too_small_buffer_writes_nothing);
	tcase_add_test(tc, tshark_decodes_session);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return unit_run(pcap_suite());
}
