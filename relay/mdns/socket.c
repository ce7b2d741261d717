/* SPDX-License-Identifier: Apache-2.0 */
/*
 * socket.c - the mDNS responder's I/O with the system: the UDP socket on
 * port 5353 (shared with the host's other responders), its multicast
 * memberships, non-blocking sends out of one chosen interface, reads that
 * tell the interface a packet came in on, the socket filter that shuts
 * sources out, and the scan of the interfaces and their addresses.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "relay/mdns/mdns_internal.h"

static struct mdns_iface *iface_slot(struct mdns_iface *out, unsigned *n, unsigned max,
				     const char *name)
{
	for (unsigned i = 0; i < *n; i++)
		if (strcmp(out[i].name, name) == 0)
			return &out[i];
	if (*n == max || strlen(name) >= sizeof(out[0].name))
		return NULL;
	memset(&out[*n], 0, sizeof(out[0]));
	out[*n].index = if_nametoindex(name);
	strcpy(out[*n].name, name);
	return out[*n].index == 0 ? NULL : &out[(*n)++];
}

int mdns_scan_ifaces(struct mdns_iface *out, unsigned max)
{
	struct ifaddrs *list, *a;
	unsigned n = 0;

	if (getifaddrs(&list) != 0)
		return -1;
	for (a = list; a; a = a->ifa_next) {
		struct mdns_iface *f;
		struct mdns_addrs *ad;

		if (a->ifa_addr == NULL || !(a->ifa_flags & IFF_UP) ||
		    !(a->ifa_flags & IFF_MULTICAST) || (a->ifa_flags & IFF_LOOPBACK) ||
		    (a->ifa_addr->sa_family != AF_INET && a->ifa_addr->sa_family != AF_INET6))
			continue;
		f = iface_slot(out, &n, max, a->ifa_name);
		if (f == NULL)
			continue;
		ad = &f->addrs;
		if (a->ifa_addr->sa_family == AF_INET && ad->n4 < MDNS_ADDRS_MAX) {
			if (a->ifa_netmask != NULL)
				f->mask4[ad->n4] = ((struct sockaddr_in *)a->ifa_netmask)->sin_addr;
			ad->v4[ad->n4++] = ((struct sockaddr_in *)a->ifa_addr)->sin_addr;
		}
		else if (a->ifa_addr->sa_family == AF_INET6 && ad->n6 < MDNS_ADDRS_MAX)
			ad->v6[ad->n6++] = ((struct sockaddr_in6 *)a->ifa_addr)->sin6_addr;
	}
	freeifaddrs(list);
	return (int)n;
}

int mdns_socket_open(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(MDNS_PORT) };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	int one = 1, ttl = 255, e;
	unsigned char mttl = 255, loop = 1;

	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one)) != 0 ||
	    setsockopt(fd, IPPROTO_IP, IP_TTL, &ttl, sizeof(ttl)) != 0 ||
	    setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &mttl, sizeof(mttl)) != 0 ||
	    setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof(loop)) != 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		e = errno;
		close(fd);
		return -e;
	}
	return fd;
}

int mdns_socket_join(int fd, unsigned ifindex, int join)
{
	struct ip_mreqn mr = { .imr_ifindex = (int)ifindex };

	inet_pton(AF_INET, MDNS_GROUP, &mr.imr_multiaddr);
	if (setsockopt(fd, IPPROTO_IP, join ? IP_ADD_MEMBERSHIP : IP_DROP_MEMBERSHIP, &mr,
		       sizeof(mr)) != 0)
		return -errno;
	return 0;
}

int mdns_socket_send(int fd, unsigned ifindex, const struct sockaddr_in *to, const uint8_t *buf,
		     size_t len)
{
	struct sockaddr_in group = { .sin_family = AF_INET, .sin_port = htons(MDNS_PORT) };
	union {
		char buf[CMSG_SPACE(sizeof(struct in_pktinfo))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
	};
	struct cmsghdr *c;
	struct in_pktinfo *pi;

	inet_pton(AF_INET, MDNS_GROUP, &group.sin_addr);
	msg.msg_name = (void *)(to ? to : &group);
	msg.msg_namelen = sizeof(group);
	memset(&ctl, 0, sizeof(ctl));
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = IPPROTO_IP;
	c->cmsg_type = IP_PKTINFO;
	c->cmsg_len = CMSG_LEN(sizeof(*pi));
	pi = (struct in_pktinfo *)CMSG_DATA(c);
	pi->ipi_ifindex = (int)ifindex;   /* out of this interface */
	if (sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		return -errno;
	return 0;
}

/* A classic BPF program: load the IPv4 source address (the network
 * header's bytes 12-15, host order), compare it with each shut one,
 * drop (return 0) on a match, else keep the whole packet. */
int mdns_socket_shut(int fd, const struct in_addr *addrs, unsigned n)
{
	struct sock_filter prog[MDNS_SHUT_MAX + 3];
	struct sock_fprog fp = { .filter = prog };
	unsigned k = 0;

	if (n > MDNS_SHUT_MAX)
		return -EINVAL;
	if (n > 0)
		prog[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, SKF_NET_OFF + 12);
	for (unsigned i = 0; i < n; i++)   /* to the drop at n + 2 from here, 1 + i */
		prog[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
							 ntohl(addrs[i].s_addr), (uint8_t)(n - i), 0);
	prog[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0xffffffffu);
	if (n > 0)
		prog[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, 0);
	fp.len = (unsigned short)k;
	if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_FILTER, &fp, sizeof(fp)) != 0)
		return -errno;
	return 0;
}

long mdns_socket_recv(int fd, uint8_t *buf, size_t cap, struct sockaddr_in *from,
		      unsigned *ifindex)
{
	union {
		char buf[CMSG_SPACE(sizeof(struct in_pktinfo))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = { .iov_base = buf, .iov_len = cap };
	struct msghdr msg = {
		.msg_name = from, .msg_namelen = sizeof(*from),
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
	};
	ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_TRUNC);

	if (n < 0)
		return -errno;
	*ifindex = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO)
			*ifindex = (unsigned)((struct in_pktinfo *)CMSG_DATA(c))->ipi_ifindex;
	return n;
}
