/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vhu_internal.h - the vhost-user back end's message layer, shared by
 * vhost_user.c, the VMM connection (vhu_conn.c) and the fuzz target: one
 * decoded message with the descriptors that came with it, the handler
 * that acts on it, and the connection that reads messages and queues
 * replies.
 */
#ifndef VSOCK_VHU_INTERNAL_H
#define VSOCK_VHU_INTERNAL_H

#include <sys/types.h>

#include "vsock/virtio/vhost_user.h"

#define VHU_HDR_SIZE 12                /* request, flags, size */
#define VHU_VERSION 0x1u
#define VHU_FLAG_REPLY 0x4u
#define VHU_MSG_DEADLINE_MS 2000       /* from a message's first byte to its last */
#define VHU_OUT_MAX (64 * 1024)        /* replies queued for a VMM that does not read */

struct vhu_msg {
	uint32_t request, flags, size;
	union {
		uint64_t u64;
		struct { uint32_t index, num; } state;
		struct { uint32_t index, flags; uint64_t desc, used, avail, log; } addr;
		struct {
			uint32_t nregions, padding;
			struct { uint64_t gpa, size, uaddr, offset; } r[GM_MAX_REGIONS];
		} mem;
		struct { uint32_t offset, size, flags; uint8_t data[256]; } config;
		uint8_t raw[512];
	} p;
	int fds[VHU_MAX_FDS];
	int nfds;
};

/* vmmfd.c: the eventfds a VMM handed over, never waited for. Add 1 to
 * a call eventfd: 0; -EAGAIN when its counter is full (the guest has its
 * interrupt pending anyway); -ETIMEDOUT when the write would have waited
 * (the VMM cleared O_NONBLOCK and filled the counter: stop using it).
 * Take a kick eventfd's count: 0 (taken, or none there), -ETIMEDOUT as
 * above, or -errno. */
int vmmfd_signal(int fd);
int vmmfd_take(int fd);

/* Act on one message: 0 done (acked if asked), 1 replied, <0 rejected
 * (-EPROTO: malformed, the VMM goes). Descriptors the handler adopts are
 * set to -1 in m->fds. */
int vhu_handle(struct vhu_device *d, struct vhu_msg *m);
/* A whole message from the VMM: handle it, ack it if asked. NULL, or why
 * the VMM must go. The caller closes the descriptors left in m. */
const char *vhu_message(struct vhu_device *d, struct vhu_msg *m);
/* Close the descriptors of a message nobody adopted. */
void vhu_close_fds(struct vhu_msg *m);
/* Forget the VMM: rings, eventfds, mappings, vsock connections. */
void vhu_drop_vmm(struct vhu_device *d, const char *why);
/* Take what the guest has queued on the tx ring. */
void vhu_process_tx(struct vhu_device *d);
/* One of the device's handles has closed. */
void vhu_handle_gone(struct vhu_device *d);

/* The VMM's socket (vhu_conn.c). Open adopts FD as d->conn (0, or -errno
 * with FD closed); messages go to vhu_message() as they complete, without
 * blocking the loop; a message not complete VHU_MSG_DEADLINE_MS after its
 * first byte, a read error or end of file drops the VMM. */
int vhu_conn_open(struct vhu_device *d, int fd);
/* Close the socket and every descriptor of a message half read; the
 * memory goes when its handles have closed. */
void vhu_conn_close(struct vhu_conn *c);
/* Queue one reply and write what the socket takes now; the rest goes when
 * it is writable. More than VHU_OUT_MAX waiting drops the VMM. */
void vhu_conn_send(struct vhu_conn *c, uint32_t request, const void *payload, uint32_t size);


#endif
