/* SPDX-License-Identifier: Apache-2.0 */
/*
 * transport_hybrid.c - the hybrid vsock protocol of Firecracker and Cloud
 * Hypervisor: connect to the VMM's Unix socket, send "CONNECT <port>\n",
 * and expect "OK <host_port>\n" once the guest accepted.
 */
#include "vsock/vsock_internal.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static int hybrid_open(const struct vsock_target *t, int *fd)
{
	return vsock_open_unix_path(t->path, fd);
}

size_t vsock_hybrid_hello(const struct vsock_target *t, char *buf, size_t len)
{
	int n = snprintf(buf, len, "CONNECT %u\n", t->port);

	return n > 0 && (size_t)n < len ? (size_t)n : 0;
}

int vsock_hybrid_check_reply(const char *line, size_t len)
{
	size_t i;

	if (len < 4 || memcmp(line, "OK ", 3) != 0)
		return -ECONNREFUSED;
	for (i = 3; i < len; i++)
		if (line[i] < '0' || line[i] > '9')
			return -EPROTO;
	return 0;
}

const struct vsock_transport vsock_transport_hybrid = {
	.name = "hybrid",
	.open = hybrid_open,
	.hello = vsock_hybrid_hello,
	.check_reply = vsock_hybrid_check_reply,
};
