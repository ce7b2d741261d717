/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mdns_internal.h - what the files of relay/mdns/ share, and the unit tests
 * and the fuzz target see: the DNS message codec (wire.c), the record sets
 * and what a responder answers with them (records.c), and the socket with
 * its interfaces (socket.c). Nothing here does I/O but socket.c.
 *
 * Names are kept in wire form, uncompressed: labels with their length
 * bytes, ended by a zero byte, at most MDNS_NAME_MAX bytes in all. They
 * compare without regard to ASCII case.
 */
#ifndef RELAY_MDNS_INTERNAL_H
#define RELAY_MDNS_INTERNAL_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#define MDNS_PORT 5353
#define MDNS_GROUP "224.0.0.251"
#define MDNS_PKT_MAX 1500        /* read and written; larger ones are cut by the read */
#define MDNS_NAME_MAX 255        /* wire form, the final zero included */
#define MDNS_LABEL_MAX 63
#define MDNS_JUMPS_MAX 16        /* compression pointers followed per name */
#define MDNS_RDATA_MAX 256       /* rdata kept of a record read (names expanded) */
#define MDNS_QS_MAX 32           /* questions kept of a packet read */
#define MDNS_RRS_MAX 64          /* records kept of a packet read */
#define MDNS_SERVICES_MAX 64     /* services (routes) published at once */
#define MDNS_SET_MAX (4 * MDNS_SERVICES_MAX + 4 * MDNS_ADDRS_MAX)  /* records we own */
#define MDNS_ADDRS_MAX 4         /* addresses of each family per interface */

#define MDNS_TYPE_A 1
#define MDNS_TYPE_PTR 12
#define MDNS_TYPE_TXT 16
#define MDNS_TYPE_AAAA 28
#define MDNS_TYPE_SRV 33
#define MDNS_TYPE_ANY 255
#define MDNS_CLASS_IN 1
#define MDNS_CLASS_ANY 255
#define MDNS_CLASS_TOP 0x8000    /* QU in a question, cache-flush in a record */
#define MDNS_FLAG_QR 0x8000      /* a response */
#define MDNS_FLAG_OPCODE 0x7800  /* 0 in mDNS (RFC 6762 18.3) */
#define MDNS_FLAG_RCODE 0x000f   /* 0 in mDNS (RFC 6762 18.11) */
#define MDNS_FLAG_AA 0x0400

#define MDNS_TTL_HOST 120        /* RFC 6762 10: records naming a host */
#define MDNS_TTL_OTHER 4500      /* the others: 75 minutes */

/* ---- wire.c: read and write DNS messages ---- */

enum mdns_section { MDNS_AN, MDNS_NS, MDNS_AR };

struct mdns_question {
	uint8_t name[MDNS_NAME_MAX];
	uint16_t type, qclass;       /* qclass without the QU bit */
	int unicast;                 /* QU */
};

struct mdns_rr {
	uint8_t name[MDNS_NAME_MAX];
	uint16_t type, rclass;       /* rclass without the cache-flush bit */
	int flush;
	uint32_t ttl;
	enum mdns_section section;
	uint8_t rdata[MDNS_RDATA_MAX];   /* names in PTR and SRV expanded */
	uint16_t rdlen;
	int rd_long;                 /* longer than MDNS_RDATA_MAX: never ours */
};

/* A message read: its header, and its first questions and records. */
struct mdns_msg {
	uint16_t id, flags;
	uint16_t qdcount, ancount, nscount, arcount;
	struct mdns_question q[MDNS_QS_MAX];
	struct mdns_rr rr[MDNS_RRS_MAX];
	unsigned nq, nrr;
};

/* Read the name at *off of PKT into NAME (wire form, expanded), *off past
 * it. Rejected (-1): a label over 63 bytes or of the reserved kinds, a
 * name over 255 bytes, a pointer that does not point before the place it
 * was read from (so no loop) or past the packet, more than MDNS_JUMPS_MAX
 * pointers, any byte beyond LEN. */
int mdns_read_name(const uint8_t *pkt, size_t len, size_t *off, uint8_t name[MDNS_NAME_MAX]);
/* Read a whole message. 0, or -1 with *why naming the first fault: the
 * counts must fit the packet's size, every question and record must lie
 * inside it, and nothing may follow the last record. */
int mdns_parse(const uint8_t *pkt, size_t len, struct mdns_msg *m, const char **why);

size_t mdns_name_len(const uint8_t *name);
int mdns_name_eq(const uint8_t *a, const uint8_t *b);
/* "a.b.local" (labels without dots or escapes) -> wire form. 0 or -1. */
int mdns_name_from_text(uint8_t name[MDNS_NAME_MAX], const char *text);
/* A label (any bytes but NUL, 1-63 of them) before the wire name SUFFIX. */
int mdns_name_prepend(uint8_t name[MDNS_NAME_MAX], const char *label, const uint8_t *suffix);

/* A message being written; err is set once anything did not fit, and the
 * message is then not to be sent. Names are compressed against the names
 * written before them. */
#define MDNS_COMPRESS_MAX 64
struct mdns_writer {
	uint8_t *buf;
	size_t cap, len;
	int err;
	uint16_t counts[4];          /* qd, an, ns, ar */
	uint16_t names[MDNS_COMPRESS_MAX];   /* offsets of labels written */
	unsigned nnames;
};

/* Our records, in the form they are written and compared. */
struct mdns_record {
	uint8_t name[MDNS_NAME_MAX];
	uint16_t type;
	int unique;                  /* cache-flush when sent in a response */
	uint32_t ttl;
	uint8_t rdata[MDNS_RDATA_MAX];   /* names in PTR and SRV expanded */
	uint16_t rdlen;
	int group;                   /* the service it belongs to (0-63); -1 shared */
	int recent;                  /* multicast here less than a second ago */
};

void mdns_writer_init(struct mdns_writer *w, uint8_t *buf, size_t cap, uint16_t id,
		      uint16_t flags);
void mdns_write_question(struct mdns_writer *w, const uint8_t *name, uint16_t type, int unicast);
/* TTL overrides the record's own; flush is left out when NO_FLUSH. */
void mdns_write_record(struct mdns_writer *w, enum mdns_section s, const struct mdns_record *r,
		       uint32_t ttl, int no_flush);
/* The same, or nothing at all when it does not fit (-1): later records may. */
int mdns_write_record_fit(struct mdns_writer *w, enum mdns_section s, const struct mdns_record *r,
			  uint32_t ttl, int no_flush);
/* The counts written into the header: the message's length, or 0 when
 * something did not fit. */
size_t mdns_writer_finish(struct mdns_writer *w);

/* ---- records.c: what we own, and what we answer with it ---- */

struct mdns_addrs {
	struct in_addr v4[MDNS_ADDRS_MAX];
	struct in6_addr v6[MDNS_ADDRS_MAX];
	unsigned n4, n6;
};

struct mdns_set {
	struct mdns_record r[MDNS_SET_MAX];
	unsigned n;
};

/* "_adb._tcp.local" */
extern const uint8_t mdns_adb_service[];

/* Add a service's records to SET: the two PTRs, SRV and TXT of instance
 * INSTANCE on HOST (wire form), port PORT, in group GROUP. 0 or -1 (full,
 * or the name too long). */
int mdns_set_add_service(struct mdns_set *set, int group, const char *instance,
			 const uint8_t *host, uint16_t port);
/* Add HOST's A and AAAA records for ADDRS (once: addresses already in the
 * set are not added again), shared by every group (-1). 0 or -1 when full. */
int mdns_set_add_host(struct mdns_set *set, const uint8_t *host, const struct mdns_addrs *addrs);
int mdns_record_eq(const struct mdns_record *r, const struct mdns_rr *rr);

/* A probe for GROUP's unique names and HOST: questions of type ANY (QM),
 * the proposed records in the authority section. Length or 0. */
size_t mdns_probe(const struct mdns_set *set, int group, const uint8_t *host, uint8_t *out,
		  size_t cap);
/* An unsolicited response with every record of GROUP (none when -2; and
 * the host's, when WITH_HOST), each with TTL, or its own TTL when TTL is -1 (0: the
 * goodbye). Length or 0. */
size_t mdns_announce(const struct mdns_set *set, int group, int with_host, long ttl,
		     uint8_t *out, size_t cap);

/* The answer to query Q (read from a packet that came from port SRC_PORT)
 * out of SET: matched by name, type (or ANY) and class (IN or ANY), less
 * the known answers whose TTL is at least half ours; the other records of
 * each answered group and the host's addresses as additional records.
 * *UNICAST says where it goes: 1 to the sender only (a QU question or a
 * legacy query, not from port 5353: then the ID and questions are echoed,
 * TTLs at most 10 s, no cache-flush), 0 to the group; a multicast answer
 * leaves out records marked recent. It sets bit G of *GROUPS for each
 * group G it holds records of, and *SHARED when it holds shared ones.
 * Records that do not fit are left out. Length, or 0 when there is
 * nothing to say. */
size_t mdns_answer(const struct mdns_set *set, const struct mdns_msg *q, uint16_t src_port,
		   uint8_t *out, size_t cap, int *unicast, uint64_t *groups, int *shared);
/* Does response M claim NAME with a record SET does not have (a record of
 * NAME whose type SET holds for NAME, with other data)? */
int mdns_conflict(const struct mdns_set *set, const struct mdns_msg *m, const uint8_t *name);
/* Is M a probe of ours: does it propose records (authority section), all
 * of them in SET? Our own probes come back to us (multicast loopback), and
 * one front's probe must not lose the tie-break to another's. */
int mdns_probe_ours(const struct mdns_set *set, const struct mdns_msg *m);
/* Simultaneous probes (RFC 6762 8.2): compare our records of NAME with
 * the authority records of probe M for NAME: <0 we lose, 0 same (or M
 * has none), >0 we win. */
int mdns_tiebreak(const struct mdns_set *set, const struct mdns_msg *m, const uint8_t *name);
/* The instance name after N conflicts (RFC 6763 4.1 / RFC 6762 9):
 * "NAME", "NAME (2)", "NAME (3)", ... */
void mdns_instance_name(char *out, size_t len, const char *base, unsigned n);

/* ---- intake.c: how much of each source is heard ---- */

#define MDNS_SOURCES_MAX 32      /* sources with a budget of their own */
#define MDNS_SOURCE_PER_S 5      /* each one's budget: 5 packets a second, */
#define MDNS_SOURCE_BURST 10     /* 10 at once */
#define MDNS_HIST_MAX 8          /* drops counted of sources without an entry */
#define MDNS_PACKETS_RESERVE 40  /* of the global budget, for sources' first 5 a second */
#define MDNS_SHUT_DROPS 80       /* a source with more dropped in a second */
#define MDNS_SHUT_MAX 32         /* is shut out in the kernel (so many at once), */
#define MDNS_SHUT_MS 10000       /* each for 10 s (and up to a rescan more) */

struct mdns_source {
	struct in_addr addr;
	int used;
	uint32_t tokens;             /* 1/1000 packets */
	uint64_t last;               /* when tokens were last refilled */
	unsigned drops;              /* packets dropped in the second from drop_start */
	uint64_t drop_start;
	uint64_t second;             /* taken: packets taken in this second */
	unsigned taken;
};

struct mdns_intake {
	struct mdns_source src[MDNS_SOURCES_MAX];
	struct mdns_source others;   /* shared by sources for which there is no entry */
	struct mdns_source hist[MDNS_HIST_MAX];   /* their drops (no budget) */
	struct { struct in_addr addr; uint64_t until; } shut[MDNS_SHUT_MAX];
	unsigned nshut;
	uint64_t second;
	unsigned taken;              /* packets taken in this second */
};

enum mdns_verdict {
	MDNS_TAKE,                   /* parse it */
	MDNS_DROP,                   /* over its source's budget or the global one */
	MDNS_CROWDED,                /* dropped: no entry free, the shared budget empty */
	MDNS_SHUT,                   /* dropped, and its source added to shut[] */
};

/* A packet from SRC at NOW (ms) under the budgets of IN (zeroed to
 * start): SRC's own (MDNS_SOURCE_PER_S, MDNS_SOURCE_BURST; a new source
 * takes a free or idle entry, else the entry of the source with the most
 * packets dropped (starting with an empty bucket), else shares the
 * "others" budget), then the global MDNS_PACKETS_PER_S, whose last
 * MDNS_PACKETS_RESERVE each second only a source's first
 * MDNS_SOURCE_PER_S packets of that second may take. A source with more than MDNS_SHUT_DROPS packets
 * dropped within a second is shut out for MDNS_SHUT_MS (with shut[] full,
 * in place of the one whose time is up first) and its entry released,
 * unless OWN (an address of the relay's own host: another responder
 * there speaks from it too); packets of a source in shut[] (read before
 * the filter took it) are dropped. */
enum mdns_verdict mdns_intake_admit(struct mdns_intake *in, struct in_addr src, int own,
				    uint64_t now);
/* Drop from shut[] the sources whose time is up: 1 when shut[] changed. */
int mdns_intake_expire(struct mdns_intake *in, uint64_t now);

/* ---- socket.c: the UDP socket on port 5353 and the interfaces ---- */

#define MDNS_IFACES_MAX 16

struct mdns_iface {
	unsigned index;              /* 0: the slot is empty */
	char name[16];
	struct mdns_addrs addrs;
	struct in_addr mask4[MDNS_ADDRS_MAX];   /* the netmask of each addrs.v4 */
};

/* The up, multicast, non-loopback interfaces with their addresses. The
 * count found (at most MAX), or -1 with errno. */
int mdns_scan_ifaces(struct mdns_iface *out, unsigned max);
/* A non-blocking IPv4 UDP socket on port 5353, shared (SO_REUSEADDR,
 * SO_REUSEPORT) with any other responder of the host, multicast TTL 255,
 * looped back to the host's other responders, telling each packet's
 * interface. The fd, or -errno. */
int mdns_socket_open(void);
int mdns_socket_join(int fd, unsigned ifindex, int join);
/* Send without waiting, out of interface IFINDEX, to TO (NULL: the group).
 * 0 or -errno (EAGAIN: dropped). */
int mdns_socket_send(int fd, unsigned ifindex, const struct sockaddr_in *to, const uint8_t *buf,
		     size_t len);
/* Shut the N sources ADDRS out: a socket filter drops their packets in
 * the kernel, before they take room in the socket's buffer (N = 0: none).
 * 0 or -errno. */
int mdns_socket_shut(int fd, const struct in_addr *addrs, unsigned n);
/* Read one packet: its length, its sender and the interface it came in
 * on, or -errno (EAGAIN: none). */
long mdns_socket_recv(int fd, uint8_t *buf, size_t cap, struct sockaddr_in *from,
		      unsigned *ifindex);

#endif
