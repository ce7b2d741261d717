/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_vhost_user.c - libFuzzer target for the vhost-user message layer.
 * The input is a sequence of messages (request, flags, size, payload) fed
 * to the handler as a VMM would send them, with a sealed 64 KiB memfd for
 * every region of SET_MEM_TABLE and fresh eventfds for kick and call (a
 * socket when bit 16 of the payload asks, to be refused); replies are
 * queued on a connection over a socketpair; then the rings are worked as
 * on a kick, and the VMM is dropped. After each input the process must hold
 * exactly the descriptors it held before.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "vsock/virtio/vhu_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(x) do { if (!(x)) abort(); } while (0)

static uv_loop_t loop;
static struct vhu_device dev;
static int started;

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

static void start(void)
{
	char path[64], err[128];
	static const struct vvs_ops ops = { 0 };

	snprintf(path, sizeof(path), "/tmp/fuzz-vhu-%d.sock", (int)getpid());
	uv_loop_init(&loop);
	CHECK(vhu_start(&dev, &loop, path, 3, &ops, NULL, err, sizeof(err)) == 0);
	started = 1;
}

static void give_fds(struct vhu_msg *m)
{
	int want = 0;

	if (m->request == 5)                                /* SET_MEM_TABLE */
		want = m->p.mem.nregions <= VHU_MAX_FDS ? (int)m->p.mem.nregions : 1;
	else if (m->request == 12 || m->request == 13)      /* SET_VRING_KICK / CALL */
		want = (m->p.u64 & (1u << 8)) ? 0 : 1;
	for (int i = 0; i < want; i++) {
		int fd, sv[2];

		if (m->request == 5) {
			fd = memfd_create("fuzz-guest", MFD_CLOEXEC | MFD_ALLOW_SEALING);
			CHECK(fd >= 0 && ftruncate(fd, 65536) == 0);
			CHECK(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) == 0);
		} else if (m->p.u64 & (1u << 16)) {      /* a socket, to be refused */
			CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
			close(sv[1]);
			fd = sv[0];
		} else {
			fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		}
		m->fds[m->nfds++] = fd;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int sv[2], before;
	size_t pos = 0;

	if (!started)
		start();
	uv_run(&loop, UV_RUN_NOWAIT);
	before = open_fds();
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
	CHECK(vhu_conn_open(&dev, sv[0]) == 0);
	while (pos + 12 <= size) {
		struct vhu_msg m;

		memset(&m, 0, sizeof(m));
		memcpy(&m, data + pos, 12);
		pos += 12;
		m.size %= sizeof(m.p) + 1;
		if (m.size > size - pos)
			m.size = (uint32_t)(size - pos);
		memcpy(&m.p, data + pos, m.size);
		pos += m.size;
		give_fds(&m);
		vhu_handle(&dev, &m);
		vhu_close_fds(&m);
		/* replies go nowhere: drain them so the socket never fills */
		char sink[4096];
		while (read(sv[1], sink, sizeof(sink)) > 0)
			;
	}
	vhu_process_tx(&dev);
	vhu_flush(&dev);
	vhu_drop_vmm(&dev, "fuzz input done");
	close(sv[1]);
	uv_run(&loop, UV_RUN_NOWAIT);
	CHECK(open_fds() == before);
	return 0;
}
