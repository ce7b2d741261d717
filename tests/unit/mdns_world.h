/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mdns_world.h - the world the mDNS responder (relay/mdns/responder.c)
 * sees, made up for test_mdns.c: the monotonic clock, the host's
 * interfaces and the socket on port 5353. mdns_world.c defines
 * clock_mono_ms() and the functions of relay/mdns/socket.c, so the linker
 * takes them instead of the library's clock.o and socket.o (the program
 * fails to link, "multiple definition", if anything pulls those in). The
 * socket is one end of a datagram socketpair: the loop polls it as it
 * would the real one, and each packet a test injects carries the
 * interface it "came in on". Nothing is sent to the network: what the
 * responder sends is counted per interface, the last packet kept.
 */
#ifndef TESTS_UNIT_MDNS_WORLD_H
#define TESTS_UNIT_MDNS_WORLD_H

#include <stddef.h>
#include <stdint.h>

#include "relay/mdns/mdns_internal.h"

/* what clock_mono_ms() says; tests move it */
extern uint64_t world_now_ms;

/* The interfaces mdns_scan_ifaces() finds: index IFINDEX, named NAME,
 * holding IPv4 address ADDR ("a.b.c.d/prefix"). At most MDNS_IFACES_MAX. */
void world_add_iface(unsigned ifindex, const char *name, const char *addr);
/* One more address ("a.b.c.d/prefix") on interface IFINDEX. */
void world_add_addr(unsigned ifindex, const char *addr);
/* One more IPv6 address on interface IFINDEX. */
void world_add_addr6(unsigned ifindex, const char *addr);
/* When set, what the responder multicasts comes back to it, as the
 * kernel's IP_MULTICAST_LOOP does: from the interface's first address,
 * port 5353, on that interface. Cleared by world_end(). */
extern int world_loopback;
/* Whether the responder has joined the group on IFINDEX. */
int world_joined(unsigned ifindex);

/* A packet from FROM_ADDR:FROM_PORT arriving on interface IFINDEX; as
 * the kernel would, dropped when its source is shut out
 * (mdns_socket_shut(): counted in world_filtered) or when the socket's
 * buffer is full (the socketpair's queue, 10 or so packets:
 * world_overflowed). */
void world_inject(unsigned ifindex, const char *from_addr, uint16_t from_port,
		  const uint8_t *pkt, size_t len);

/* Our end of the socket closed, the interfaces and counts forgotten:
 * after the responder closed its own. */
void world_end(void);

/* Packets sent out of IFINDEX (0: out of any), and the last one sent. */
unsigned world_sent(unsigned ifindex);
extern uint8_t world_last_sent[MDNS_PKT_MAX];
extern size_t world_last_len;
/* Unicast packets sent to ADDR. */
unsigned world_sent_to(const char *addr);
extern unsigned world_filtered, world_overflowed;

#endif
