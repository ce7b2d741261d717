/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pcap.h - turns the adb byte streams of a route's sessions into a classic
 * pcap file that Wireshark and tshark decode as adb. Owns the made-up
 * network picture and the per-session TCP state; does no I/O: every call
 * fills the caller's buffer and the caller decides where the bytes go.
 * Private to relay/obs/ (capture.c's).
 *
 * File: classic pcap, microsecond timestamps, snaplen PCAP_SNAPLEN, link
 * type LINKTYPE_RAW (101: each packet starts with its IPv4 header).
 *
 * Network picture (QEMU user networking's addresses): each session is one
 * TCP connection from the PC, 10.0.2.2 port PCAP_PC_PORT_BASE + session_id
 * % PCAP_PC_PORTS (32768..60999, Linux's ephemeral range), to the guest,
 * 10.0.2.15 port 5555. A SYN / SYN-ACK / ACK opens it, data segments carry
 * each direction's bytes in order with correct sequence and ack numbers and
 * correct IPv4 and TCP checksums, FINs close it.
 *
 * Segments follow adb messages: Wireshark's adb dissector does not use TCP
 * reassembly, it reads each segment as one message (its 24-byte header and
 * payload) or as the next fragment of the current message's payload. So a
 * segment never holds bytes of two messages, a header is never split (its
 * bytes wait here until all 24 arrived) and a payload longer than a segment
 * continues in fragments. Bytes that stop looking like adb (bad header) are
 * still recorded, cut by size only. The TCP byte stream is always exactly
 * the bytes given.
 *
 * Decode with (adb is only registered "decode as" on TCP; port 5555 is
 * sigcomp by default):
 *   tshark -r FILE.pcap -d tcp.port==5555,adb
 * Fields: adb.command, adb.argument.0, adb.argument.1, adb.data_length,
 * adb.magic (only in a message's first segment), adb.service,
 * adb.connection_info, adb.data_fragment.
 */
#ifndef RELAY_PCAP_H
#define RELAY_PCAP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/time.h>

#include "adbproto/adbproto.h"

#define PCAP_FILE_HEADER_LEN 24
#define PCAP_SNAPLEN         262144u
#define PCAP_LINKTYPE_RAW    101u

#define PCAP_PC_ADDR         0x0a000202u   /* 10.0.2.2 */
#define PCAP_GUEST_ADDR      0x0a00020fu   /* 10.0.2.15 */
#define PCAP_GUEST_PORT      5555u
#define PCAP_PC_PORT_BASE    32768u
#define PCAP_PC_PORTS        28232u

/* one packet: pcap record header, IPv4 header, TCP header, then payload */
#define PCAP_PKT_OVERHEAD    (16 + 20 + 20)
#define PCAP_SEG_MAX         65000u        /* TCP payload bytes per segment */
#define PCAP_RECORD_MAX      (PCAP_PKT_OVERHEAD + PCAP_SEG_MAX)
#define PCAP_OPEN_LEN        (3 * PCAP_PKT_OVERHEAD)
/* at most a waiting partial header per direction, then FIN, FIN, ACK */
#define PCAP_CLOSE_MAX       (2 * (PCAP_PKT_OVERHEAD + ADB_HEADER_SIZE - 1) + \
			      3 * PCAP_PKT_OVERHEAD)

/* one direction of a session */
struct pcap_dir {
	uint32_t seq;                     /* next sequence number to send */
	uint32_t payload_left;            /* of the current message, still to come */
	uint8_t hdr[ADB_HEADER_SIZE];     /* a header that arrived in pieces */
	uint8_t hdr_have;
	uint8_t raw;                      /* not adb any more: cut by size only */
};

struct pcap_flow {
	uint16_t pc_port;
	uint16_t ip_id;
	struct pcap_dir dir[2];           /* [0] PC -> guest, [1] guest -> PC */
};

/* The file header. Returns PCAP_FILE_HEADER_LEN. */
size_t pcap_file_header(uint8_t out[PCAP_FILE_HEADER_LEN]);

void pcap_flow_init(struct pcap_flow *f, uint32_t session_id);

/* The handshake (SYN, SYN-ACK, ACK). Returns PCAP_OPEN_LEN. */
size_t pcap_flow_open(struct pcap_flow *f, const struct timeval *ts,
		      uint8_t out[PCAP_OPEN_LEN]);

/*
 * Record len bytes that went PC -> guest (from_guest 0) or guest -> PC.
 * Writes whole packets into out, never more than cap bytes, and sets *used
 * to how many input bytes it took (recorded, or held while a header is
 * incomplete); the caller passes the rest again with a drained buffer.
 * With cap >= PCAP_RECORD_MAX every call with len > 0 takes at least one
 * byte. Returns the bytes written to out.
 */
size_t pcap_flow_data(struct pcap_flow *f, int from_guest, const struct timeval *ts,
		      const void *p, size_t len, size_t *used, uint8_t *out, size_t cap);

/* End the connection: a held partial header of either direction is
 * recorded as is, then FIN from the PC, FIN from the guest, the last ACK.
 * Returns the bytes written (at most PCAP_CLOSE_MAX). */
size_t pcap_flow_close(struct pcap_flow *f, const struct timeval *ts,
		       uint8_t out[PCAP_CLOSE_MAX]);

#endif /* RELAY_PCAP_H */
