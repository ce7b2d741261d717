/* SPDX-License-Identifier: Apache-2.0 */
/*
 * mdns_world.c - a made-up clock, interfaces and socket for the mDNS
 * responder under test; see mdns_world.h. A broken expectation of the
 * world itself is a message and abort(), which check reports as a failed
 * test.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "relay/sys/sys.h"
#include "tests/unit/mdns_world.h"

/* what a test writes to the socketpair ahead of each packet */
struct arrival {
	unsigned ifindex;
	struct sockaddr_in from;
};

uint64_t world_now_ms = 1000000;
int world_loopback;
uint8_t world_last_sent[MDNS_PKT_MAX];
size_t world_last_len;

static struct mdns_iface ifaces[MDNS_IFACES_MAX];
static unsigned nifaces;
static unsigned joined[MDNS_IFACES_MAX];
static unsigned sent[MDNS_IFACES_MAX], sent_total;
static int injector = -1;            /* our end of the socketpair */
static struct in_addr shut[MDNS_SHUT_MAX];
static unsigned nshut;
unsigned world_filtered, world_overflowed;
static struct in_addr unicast_to[64];    /* unicast answers sent, per address */
static unsigned unicast_n[64], nunicast;

static void world_check(int ok, const char *what)
{
	if (ok)
		return;
	fprintf(stderr, "mdns_world: %s\n", what);
	abort();
}

static int iface_at(unsigned ifindex)
{
	for (unsigned i = 0; i < nifaces; i++)
		if (ifaces[i].index == ifindex)
			return (int)i;
	return -1;
}

uint64_t clock_mono_ms(void)
{
	return world_now_ms;
}

void world_add_addr(unsigned ifindex, const char *addr)
{
	int i = iface_at(ifindex);
	char text[INET_ADDRSTRLEN];
	const char *slash = strchr(addr, '/');
	unsigned prefix;
	struct mdns_iface *f;

	world_check(i >= 0 && ifaces[i].addrs.n4 < MDNS_ADDRS_MAX, "no room for an address");
	world_check(slash != NULL && (size_t)(slash - addr) < sizeof(text), "not a.b.c.d/prefix");
	prefix = (unsigned)atoi(slash + 1);
	world_check(prefix >= 1 && prefix <= 32, "prefix not 1-32");
	memcpy(text, addr, (size_t)(slash - addr));
	text[slash - addr] = '\0';
	f = &ifaces[i];
	world_check(inet_pton(AF_INET, text, &f->addrs.v4[f->addrs.n4]) == 1, "not an IPv4 address");
	f->mask4[f->addrs.n4].s_addr = htonl(0xffffffffu << (32 - prefix));
	f->addrs.n4++;
}

void world_add_addr6(unsigned ifindex, const char *addr)
{
	int i = iface_at(ifindex);
	struct mdns_iface *f;

	world_check(i >= 0 && ifaces[i].addrs.n6 < MDNS_ADDRS_MAX, "no room for an address");
	f = &ifaces[i];
	world_check(inet_pton(AF_INET6, addr, &f->addrs.v6[f->addrs.n6]) == 1,
		    "not an IPv6 address");
	f->addrs.n6++;
}

void world_add_iface(unsigned ifindex, const char *name, const char *addr)
{
	struct mdns_iface *f;

	world_check(nifaces < MDNS_IFACES_MAX && ifindex != 0, "too many interfaces");
	f = &ifaces[nifaces++];
	memset(f, 0, sizeof(*f));
	f->index = ifindex;
	snprintf(f->name, sizeof(f->name), "%s", name);
	world_add_addr(ifindex, addr);
}

int world_joined(unsigned ifindex)
{
	int i = iface_at(ifindex);

	return i >= 0 && joined[i];
}

unsigned world_sent(unsigned ifindex)
{
	int i = iface_at(ifindex);

	if (ifindex == 0)
		return sent_total;
	return i >= 0 ? sent[i] : 0;
}

void world_end(void)
{
	if (injector >= 0)
		close(injector);
	injector = -1;
	nifaces = 0;
	memset(joined, 0, sizeof(joined));
	memset(sent, 0, sizeof(sent));
	sent_total = 0;
	world_loopback = 0;
	nshut = 0;
	world_filtered = 0;
	world_overflowed = 0;
	nunicast = 0;
}

static int is_shut(struct in_addr a)
{
	for (unsigned i = 0; i < nshut; i++)
		if (shut[i].s_addr == a.s_addr)
			return 1;
	return 0;
}

unsigned world_sent_to(const char *addr)
{
	struct in_addr a;

	world_check(inet_pton(AF_INET, addr, &a) == 1, "not an IPv4 address");
	for (unsigned i = 0; i < nunicast; i++)
		if (unicast_to[i].s_addr == a.s_addr)
			return unicast_n[i];
	return 0;
}

static void count_unicast(struct in_addr a)
{
	unsigned i = 0;

	while (i < nunicast && unicast_to[i].s_addr != a.s_addr)
		i++;
	world_check(i < 64, "unicast to more than 64 addresses");
	if (i == nunicast) {
		unicast_to[nunicast] = a;
		unicast_n[nunicast++] = 0;
	}
	unicast_n[i]++;
}

void world_inject(unsigned ifindex, const char *from_addr, uint16_t from_port,
		  const uint8_t *pkt, size_t len)
{
	uint8_t buf[sizeof(struct arrival) + MDNS_PKT_MAX];
	struct arrival a = { .ifindex = ifindex };

	world_check(injector >= 0, "no socket open");
	world_check(len <= MDNS_PKT_MAX, "packet too long");
	a.from.sin_family = AF_INET;
	a.from.sin_port = htons(from_port);
	world_check(inet_pton(AF_INET, from_addr, &a.from.sin_addr) == 1, "not an IPv4 address");
	memcpy(buf, &a, sizeof(a));
	memcpy(buf + sizeof(a), pkt, len);
	if (is_shut(a.from.sin_addr)) {      /* the socket's filter */
		world_filtered++;
		return;
	}
	if (send(injector, buf, sizeof(a) + len, 0) == (ssize_t)(sizeof(a) + len))
		return;
	world_check(errno == EAGAIN || errno == EWOULDBLOCK, "cannot inject");
	world_overflowed++;                  /* the socket's buffer is full */
}

static void loop_back(const struct mdns_iface *f, const uint8_t *pkt, size_t len)
{
	char from[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &f->addrs.v4[0], from, sizeof(from));
	world_inject(f->index, from, MDNS_PORT, pkt, len);
}

/* ---- relay/mdns/socket.c's functions ---- */

int mdns_scan_ifaces(struct mdns_iface *out, unsigned max)
{
	unsigned n = nifaces < max ? nifaces : max;

	memcpy(out, ifaces, n * sizeof(*out));
	return (int)n;
}

int mdns_socket_open(void)
{
	int sv[2];

	world_check(injector < 0, "socket opened twice");
	world_check(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0,
		    "socketpair");
	injector = sv[0];
	return sv[1];
}

int mdns_socket_join(int fd, unsigned ifindex, int join)
{
	int i = iface_at(ifindex);

	(void)fd;
	world_check(i >= 0, "join on an interface that was never found");
	joined[i] = join != 0;
	return 0;
}

int mdns_socket_send(int fd, unsigned ifindex, const struct sockaddr_in *to, const uint8_t *buf,
		     size_t len)
{
	int i = iface_at(ifindex);

	(void)fd;
	world_check(i >= 0, "send on an interface that was never found");
	world_check(len <= sizeof(world_last_sent), "sent more than 1500 bytes");
	sent[i]++;
	sent_total++;
	memcpy(world_last_sent, buf, len);
	world_last_len = len;
	if (world_loopback && to == NULL)
		loop_back(&ifaces[i], buf, len);
	if (to != NULL)
		count_unicast(to->sin_addr);
	return 0;
}

int mdns_socket_shut(int fd, const struct in_addr *addrs, unsigned n)
{
	(void)fd;
	world_check(n <= MDNS_SHUT_MAX, "more sources shut than MDNS_SHUT_MAX");
	memcpy(shut, addrs, n * sizeof(*addrs));
	nshut = n;
	return 0;
}

long mdns_socket_recv(int fd, uint8_t *buf, size_t cap, struct sockaddr_in *from,
		      unsigned *ifindex)
{
	uint8_t in[sizeof(struct arrival) + MDNS_PKT_MAX + 1];
	struct arrival a;
	ssize_t n = recv(fd, in, sizeof(in), 0);
	size_t len;

	if (n < 0)
		return -errno;
	world_check((size_t)n >= sizeof(a), "short arrival");
	memcpy(&a, in, sizeof(a));
	len = (size_t)n - sizeof(a);
	memcpy(buf, in + sizeof(a), len < cap ? len : cap);
	*from = a.from;
	*ifindex = a.ifindex;
	return (long)len;
}
