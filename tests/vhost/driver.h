/* SPDX-License-Identifier: Apache-2.0 */
/*
 * driver.h - a synthetic virtio-vsock guest for tests and benchmarks: it
 * plays QEMU's part of vhost-user (owner, features, config, a sealed memfd
 * as guest memory, two rings with kick and call eventfds) and the guest
 * kernel's part of virtio-vsock (RX buffers of a chosen size, TX packets
 * of a header descriptor and a payload descriptor), or a hostile guest's
 * (malformed chains both ways). Blocking calls: run it in its own process.
 */
#ifndef TESTS_VHOST_DRIVER_H
#define TESTS_VHOST_DRIVER_H

#include <stddef.h>
#include <stdint.h>

#include "vsock/virtio/virtio.h"

#define VDRV_NUM 128          /* ring size, as QEMU gives vhost-user-vsock */
#define VDRV_TX_SLOTS (VDRV_NUM / 2)   /* a TX packet takes two descriptors */
/* RX memory kept posted, as a Linux guest does (128 buffers of 4 KiB): with
 * larger buffers, fewer of them. */
#define VDRV_RX_BYTES (512 * 1024)
#define VDRV_SPIN_US 50       /* busy-poll the used ring before sleeping */

struct vdrv_ring {
	struct vring_desc *desc;
	uint16_t *avail, *used;
	uint64_t desc_off, avail_off, used_off;
	uint16_t avail_idx, last_used;
	int kick, call;
};

struct vdrv {
	int sock;
	int memfd;
	uint8_t *mem;
	size_t memsize;
	uint64_t guest_cid;              /* read from the device's config */
	size_t rxbuf;                    /* bytes per RX buffer */
	unsigned nrx;                    /* RX buffers posted (ids 0..nrx-1) */
	uint64_t rx_data_off, tx_data_off;
	/* Free TX slots, last freed on top: like a guest's allocator, the
	 * driver reuses the memory it touched last. */
	uint16_t tx_free[VDRV_TX_SLOTS];
	unsigned ntx_free;
	struct vdrv_ring q[2];
	uint64_t rx_bad_back;            /* malformed RX buffers the device returned */
};

/* Connect to the device's socket and set everything up as QEMU does, with
 * RX buffers of `rxbuf` bytes. 0, or -1 with a message on stderr. */
int vdrv_open(struct vdrv *v, const char *path, size_t rxbuf);
/* Only the first `steps` set-up messages (for dying mid-setup). */
int vdrv_open_partial(struct vdrv *v, const char *path, int steps);
void vdrv_close(struct vdrv *v);

/* Send one packet (header fields as given; len from `len`). */
int vdrv_send(struct vdrv *v, struct vvs_hdr *h, const void *payload, size_t len);
/* Receive one packet within timeout_ms: 1 got one, 0 timed out, -1 error.
 * Malformed RX buffers (vdrv_post_bad_rx) coming back empty are counted
 * in rx_bad_back on the way. */
int vdrv_recv(struct vdrv *v, struct vvs_hdr *h, uint8_t *payload, size_t cap, int timeout_ms);

/* A hostile guest's chains: a descriptor outside guest memory, one shorter
 * than a packet header, a chain that loops, one of the wrong direction. */
enum vdrv_bad { VDRV_BAD_OUTSIDE, VDRV_BAD_SHORT, VDRV_BAD_LOOP, VDRV_BAD_DIRECTION,
		VDRV_BAD_KINDS };
/* Queue a malformed TX chain (the device must return it). */
int vdrv_send_bad(struct vdrv *v, enum vdrv_bad kind);
/* Post descriptor `id`, one the RX buffers do not use (nrx <= id <
 * VDRV_NUM: open with large RX buffers), as a malformed RX buffer. */
void vdrv_post_bad_rx(struct vdrv *v, uint16_t id, enum vdrv_bad kind);

#endif
