/*
 * vhu_internal.h - the vhost-user back end's message layer, shared with
 * its fuzz target: one decoded message with the descriptors that came
 * with it, and the handler that acts on it.
 */
#ifndef VSOCK_VHU_INTERNAL_H
#define VSOCK_VHU_INTERNAL_H

#include "vhost_user.h"

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

/* Act on one message: 0 done (acked if asked), 1 replied, <0 rejected.
 * Descriptors the handler adopts are set to -1 in m->fds. */
int vhu_handle(struct vhu_device *d, struct vhu_msg *m);
/* Close the descriptors of a message nobody adopted. */
void vhu_close_fds(struct vhu_msg *m);
/* Forget the VMM: rings, eventfds, mappings, vsock connections. */
void vhu_drop_vmm(struct vhu_device *d, const char *why);
/* Take what the guest has queued on the tx ring. */
void vhu_process_tx(struct vhu_device *d);

#endif
