/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mdns.h - the relay's own mDNS responder (RFC 6762, DNS-SD RFC 6763): it
 * publishes TCP fronts as "NAME._adb._tcp.local" service instances, so
 * that a PC's adb (`adb mdns services`) finds them. It needs nothing of the
 * host (no avahi): one UDP socket on port 5353, shared with any other
 * responder of the host (SO_REUSEADDR, SO_REUSEPORT), over IPv4 multicast.
 *
 * A published service probes its names (the instance, and the host name
 * "<hostname>-adb.local" its SRV record names), three probes 250 ms apart,
 * then announces itself twice, 1 s apart, and answers queries. On a
 * conflict while probing it takes the next name, "NAME (2)", "NAME (3)",
 * ... (the host "<hostname>-adb-2", ...), at most 15 times in 10 s and 100
 * times in all; a claim on an announced name makes it probe again, and the
 * third in a minute is a conflict. A probe of another host that wins the
 * tie-break (RFC 6762 8.2) defers it 1 s; the third in a row for the same
 * names is a conflict. Claims and probes count on the link they come on
 * only. A goodbye of another host for its records makes it announce them
 * again (RFC 6762 10.1). Withdrawn, it says goodbye (its records with TTL
 * 0).
 *
 * Where: a front bound to an address is published on the interface that
 * holds it (none yet: it waits for it); a front bound to the wildcard
 * address on every interface that is up, multicast-capable and not the
 * loopback. Interfaces and addresses are scanned again every
 * MDNS_RESCAN_MS; a service whose interfaces, or addresses it publishes,
 * changed probes and announces itself again.
 *
 * Every packet is an untrusted peer's: at most MDNS_READS_PER_S read a
 * second (the rest wait in, or overflow, the socket's buffer), at most
 * MDNS_PACKETS_PER_S of them parsed, each source's share bounded by a
 * budget of its own (a source far past it is shut out in the kernel for a
 * while), parsed with strict bounds, logged through the rate limiter.
 */
#ifndef RELAY_MDNS_MDNS_H
#define RELAY_MDNS_MDNS_H

#include <stdint.h>
#include <uv.h>

#define MDNS_INSTANCE_MAX 41     /* a configured NAME: 1-40 bytes and the NUL */
#define MDNS_RESCAN_MS 3000
#define MDNS_PACKETS_PER_S 200   /* parsed, from every source together */
#define MDNS_READS_PER_S 2000    /* read, to be dropped or parsed */

struct mdns_service;

enum mdns_state {
	MDNS_WAITING,           /* no interface to publish on yet */
	MDNS_PROBING,
	MDNS_ANNOUNCING,
	MDNS_ANNOUNCED,
};

/* Publish instance NAME for a TCP front on ADDRESS (numeric, IPv4 or
 * IPv6; a wildcard address for every interface) and PORT; ROUTE names it
 * in log lines. NULL only when out of memory or past MDNS_SERVICES_MAX
 * services (logged). */
struct mdns_service *mdns_publish(uv_loop_t *loop, const char *route, const char *name,
				  const char *address, uint16_t port);
/* Say goodbye and free the service; the responder closes with the last. */
void mdns_withdraw(struct mdns_service *s);

/* The instance name it has now (after any renaming), its state, and the
 * host name its SRV record names ("host-adb.local"). */
const char *mdns_service_name(const struct mdns_service *s);
enum mdns_state mdns_service_state(const struct mdns_service *s);
const char *mdns_state_name(enum mdns_state st);
const char *mdns_host_name(void);
/* Claims on its names (instance or host) and tie-breaks lost since it
 * last probed them through (0 once announcing). Whether its probes are 5 s apart (15 in 10 s: RFC 6762
 * 8.1), while probing. */
unsigned mdns_service_conflicts(const struct mdns_service *s);
int mdns_service_slowed(const struct mdns_service *s);

#endif
