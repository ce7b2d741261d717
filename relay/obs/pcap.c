/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pcap.c - the pcap writer for relayed adb traffic: file and record
 * headers, the made-up IPv4/TCP packets with their checksums, and cutting
 * each direction's byte stream into segments along adb messages.
 */
#include <string.h>

#include "relay/obs/pcap.h"

#define IPV4_HDR_LEN 20
#define TCP_HDR_LEN  20

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_PSH 0x08
#define TCP_ACK 0x10

#define TCP_WINDOW 65535u
#define IP_TTL     64
#define IP_PROTO_TCP 6

/* initial sequence numbers; any fixed values do */
#define PC_ISN    0x10000000u
#define GUEST_ISN 0x20000000u

enum { FROM_PC = 0, FROM_GUEST = 1 };

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void put_be16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	put_be16(p, (uint16_t)(v >> 16));
	put_be16(p + 2, (uint16_t)v);
}

/* Internet checksum (RFC 1071): add 16-bit big-endian words to sum. */
static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffffu) + (sum >> 16);
	return (uint16_t)~sum;
}

size_t pcap_file_header(uint8_t out[PCAP_FILE_HEADER_LEN])
{
	put_le32(out, 0xa1b2c3d4u);          /* microsecond timestamps */
	out[4] = 2; out[5] = 0;              /* version 2.4 */
	out[6] = 4; out[7] = 0;
	put_le32(out + 8, 0);                /* thiszone */
	put_le32(out + 12, 0);               /* sigfigs */
	put_le32(out + 16, PCAP_SNAPLEN);
	put_le32(out + 20, PCAP_LINKTYPE_RAW);
	return PCAP_FILE_HEADER_LEN;
}

void pcap_flow_init(struct pcap_flow *f, uint32_t session_id)
{
	memset(f, 0, sizeof(*f));
	f->pc_port = (uint16_t)(PCAP_PC_PORT_BASE + session_id % PCAP_PC_PORTS);
	f->dir[FROM_PC].seq = PC_ISN;
	f->dir[FROM_GUEST].seq = GUEST_ISN;
}

static void put_ipv4(struct pcap_flow *f, int from, size_t tcp_len, uint8_t *ip)
{
	uint32_t src = from == FROM_PC ? PCAP_PC_ADDR : PCAP_GUEST_ADDR;
	uint32_t dst = from == FROM_PC ? PCAP_GUEST_ADDR : PCAP_PC_ADDR;

	ip[0] = 0x45;                        /* version 4, 5 words */
	ip[1] = 0;
	put_be16(ip + 2, (uint16_t)(IPV4_HDR_LEN + tcp_len));
	put_be16(ip + 4, f->ip_id++);
	put_be16(ip + 6, 0x4000);            /* don't fragment */
	ip[8] = IP_TTL;
	ip[9] = IP_PROTO_TCP;
	put_be16(ip + 10, 0);
	put_be32(ip + 12, src);
	put_be32(ip + 16, dst);
	put_be16(ip + 10, csum_fold(csum_add(0, ip, IPV4_HDR_LEN)));
}

/* TCP header and checksum over the segment already in tcp[] (header
 * space, then len payload bytes), with the IPv4 pseudo header. */
static void put_tcp(struct pcap_flow *f, int from, uint8_t flags, size_t len, uint8_t *tcp)
{
	const uint8_t *ip = tcp - IPV4_HDR_LEN;
	uint16_t pc = f->pc_port;
	uint32_t ack = flags & TCP_ACK ? f->dir[!from].seq : 0;
	uint32_t sum;

	put_be16(tcp, (uint16_t)(from == FROM_PC ? pc : PCAP_GUEST_PORT));
	put_be16(tcp + 2, (uint16_t)(from == FROM_PC ? PCAP_GUEST_PORT : pc));
	put_be32(tcp + 4, f->dir[from].seq);
	put_be32(tcp + 8, ack);
	tcp[12] = (TCP_HDR_LEN / 4) << 4;
	tcp[13] = flags;
	put_be16(tcp + 14, TCP_WINDOW);
	put_be16(tcp + 16, 0);
	put_be16(tcp + 18, 0);

	sum = csum_add(0, ip + 12, 8);       /* source and destination */
	sum += IP_PROTO_TCP + (uint32_t)(TCP_HDR_LEN + len);
	sum = csum_add(sum, tcp, TCP_HDR_LEN + len);
	put_be16(tcp + 16, csum_fold(sum));
}

/*
 * One packet from `from` whose payload is a then b (either may be empty),
 * written at out, which has room for PCAP_PKT_OVERHEAD + alen + blen.
 * Advances that direction's sequence number. Returns the bytes written.
 */
static size_t put_packet(struct pcap_flow *f, int from, const struct timeval *ts,
			 uint8_t flags, const uint8_t *a, size_t alen,
			 const uint8_t *b, size_t blen, uint8_t *out)
{
	size_t len = alen + blen;
	size_t pkt = IPV4_HDR_LEN + TCP_HDR_LEN + len;
	uint8_t *ip = out + 16, *tcp = ip + IPV4_HDR_LEN;

	put_le32(out, (uint32_t)ts->tv_sec);
	put_le32(out + 4, (uint32_t)ts->tv_usec);
	put_le32(out + 8, (uint32_t)pkt);
	put_le32(out + 12, (uint32_t)pkt);
	if (alen)
		memcpy(tcp + TCP_HDR_LEN, a, alen);
	if (blen)
		memcpy(tcp + TCP_HDR_LEN + alen, b, blen);
	put_ipv4(f, from, TCP_HDR_LEN + len, ip);
	put_tcp(f, from, flags, len, tcp);
	f->dir[from].seq += (uint32_t)len + ((flags & (TCP_SYN | TCP_FIN)) ? 1 : 0);
	return 16 + pkt;
}

size_t pcap_flow_open(struct pcap_flow *f, const struct timeval *ts,
		      uint8_t out[PCAP_OPEN_LEN])
{
	size_t n = 0;

	n += put_packet(f, FROM_PC, ts, TCP_SYN, NULL, 0, NULL, 0, out + n);
	n += put_packet(f, FROM_GUEST, ts, TCP_SYN | TCP_ACK, NULL, 0, NULL, 0, out + n);
	n += put_packet(f, FROM_PC, ts, TCP_ACK, NULL, 0, NULL, 0, out + n);
	return n;
}

static size_t min3(size_t a, size_t b, size_t c)
{
	size_t m = a < b ? a : b;

	return m < c ? m : c;
}

/* Payload of the current message (or raw bytes): one segment of what the
 * input, the message, the segment limit and the room allow. */
static size_t data_payload(struct pcap_flow *f, int from, const struct timeval *ts,
			   const uint8_t *in, size_t len, size_t *took,
			   uint8_t *out, size_t room)
{
	struct pcap_dir *d = &f->dir[from];
	size_t n = min3(len, PCAP_SEG_MAX, room - PCAP_PKT_OVERHEAD);

	if (!d->raw && n > d->payload_left)
		n = d->payload_left;
	if (n == 0)
		return 0;
	if (!d->raw)
		d->payload_left -= (uint32_t)n;
	*took = n;
	return put_packet(f, from, ts, TCP_PSH | TCP_ACK, in, n, NULL, 0, out);
}

/* At a message boundary: gather the 24 header bytes; once whole, the
 * header starts a segment with as much of its payload as fits. A header
 * that is not adb turns the direction raw. */
static size_t data_header(struct pcap_flow *f, int from, const struct timeval *ts,
			  const uint8_t *in, size_t len, size_t *took,
			  uint8_t *out, size_t room)
{
	struct pcap_dir *d = &f->dir[from];
	size_t need = ADB_HEADER_SIZE - d->hdr_have, n = 0;
	struct adb_header h;

	if (len < need) {
		memcpy(d->hdr + d->hdr_have, in, len);
		d->hdr_have += (uint8_t)len;
		*took = len;
		return 0;
	}
	if (room < PCAP_PKT_OVERHEAD + ADB_HEADER_SIZE)
		return 0;
	memcpy(d->hdr + d->hdr_have, in, need);
	d->hdr_have = 0;
	adb_header_decode(d->hdr, &h);
	if (adb_header_validate(&h, ADB_MAX_PAYLOAD) != ADB_OK) {
		d->raw = 1;
	} else {
		n = min3(len - need, h.data_length, PCAP_SEG_MAX - ADB_HEADER_SIZE);
		if (n > room - PCAP_PKT_OVERHEAD - ADB_HEADER_SIZE)
			n = room - PCAP_PKT_OVERHEAD - ADB_HEADER_SIZE;
		d->payload_left = h.data_length - (uint32_t)n;
	}
	*took = need + n;
	return put_packet(f, from, ts, TCP_PSH | TCP_ACK, d->hdr, ADB_HEADER_SIZE,
			  in + need, n, out);
}

size_t pcap_flow_data(struct pcap_flow *f, int from_guest, const struct timeval *ts,
		      const void *p, size_t len, size_t *used, uint8_t *out, size_t cap)
{
	int from = from_guest ? FROM_GUEST : FROM_PC;
	struct pcap_dir *d = &f->dir[from];
	const uint8_t *in = p;
	size_t done = 0, wrote = 0;

	while (done < len) {
		size_t room = cap - wrote, took = 0;

		if (d->raw || d->payload_left) {
			if (room <= PCAP_PKT_OVERHEAD)
				break;
			wrote += data_payload(f, from, ts, in + done, len - done, &took,
					      out + wrote, room);
		} else {
			wrote += data_header(f, from, ts, in + done, len - done, &took,
					     out + wrote, room);
		}
		if (took == 0)
			break;
		done += took;
	}
	*used = done;
	return wrote;
}

size_t pcap_flow_close(struct pcap_flow *f, const struct timeval *ts,
		       uint8_t out[PCAP_CLOSE_MAX])
{
	size_t n = 0;
	int from;

	for (from = FROM_PC; from <= FROM_GUEST; from++) {
		struct pcap_dir *d = &f->dir[from];

		if (d->hdr_have)
			n += put_packet(f, from, ts, TCP_PSH | TCP_ACK, d->hdr, d->hdr_have,
					NULL, 0, out + n);
		d->hdr_have = 0;
	}
	n += put_packet(f, FROM_PC, ts, TCP_FIN | TCP_ACK, NULL, 0, NULL, 0, out + n);
	n += put_packet(f, FROM_GUEST, ts, TCP_FIN | TCP_ACK, NULL, 0, NULL, 0, out + n);
	n += put_packet(f, FROM_PC, ts, TCP_ACK, NULL, 0, NULL, 0, out + n);
	return n;
}
