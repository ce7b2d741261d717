/* SPDX-License-Identifier: Apache-2.0 */
/*
 * transport_kernel.c - the kernel's AF_VSOCK stream sockets (host side of
 * vhost-vsock, or vsock_loopback to CID 1).
 */
#include "vsock/vsock_internal.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

static int kernel_open(const struct vsock_target *t, int *fd)
{
	struct sockaddr_vm svm;
	int s;

	memset(&svm, 0, sizeof(svm));
	svm.svm_family = AF_VSOCK;
	svm.svm_cid = t->cid;
	svm.svm_port = t->port;

	s = socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -errno;
	if (connect(s, (struct sockaddr *)&svm, sizeof(svm)) == 0) {
		*fd = s;
		return 0;
	}
	if (errno == EINPROGRESS) {
		*fd = s;
		return -EINPROGRESS;
	}
	int err = -errno;
	close(s);
	return err;
}

const struct vsock_transport vsock_transport_kernel = {
	.name = "vsock",
	.open = kernel_open,
	.hello = NULL,
	.check_reply = NULL,
};
