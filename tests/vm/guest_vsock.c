/* SPDX-License-Identifier: Apache-2.0 */
/*
 * guest_vsock.c - the part of adbd-testguest that listens on kernel vsock.
 * It belongs to the VM lab: the build machines are VMs whose vsock leads to
 * their own hypervisor, so this code refuses to run unless the lab's /init
 * says it is a throwaway lab guest (LAB_GUEST=1 in the environment).
 */
#include "tests/guest/guest.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/vm_sockets.h>

int lab_vsock_listen(uint32_t port, char *why, size_t len)
{
	const char *lab = getenv("LAB_GUEST");
	struct sockaddr_vm sa;
	int fd;

	if (lab == NULL || strcmp(lab, "1") != 0) {
		snprintf(why, len, "vsock listeners run only inside VM lab guests (LAB_GUEST=1)");
		return -1;
	}
	fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(why, len, "socket: %s", strerror(errno));
		return -1;
	}
	memset(&sa, 0, sizeof(sa));
	sa.svm_family = AF_VSOCK;
	sa.svm_cid = VMADDR_CID_ANY;
	sa.svm_port = port;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 128) != 0) {
		snprintf(why, len, "%s", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

int lab_vsock_accept(int lfd, uint32_t *cid, uint32_t *port)
{
	struct sockaddr_vm sa;
	socklen_t salen = sizeof(sa);
	int fd;

	memset(&sa, 0, sizeof(sa));
	fd = accept4(lfd, (struct sockaddr *)&sa, &salen, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd >= 0) {
		*cid = sa.svm_cid;
		*port = sa.svm_port;
	}
	return fd;
}
