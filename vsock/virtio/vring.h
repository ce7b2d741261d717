/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vring.h - guest memory as the VMM shares it over vhost-user, and split
 * virtqueues read from it (virtio 1.x, split ring layout): descriptor
 * chains with indirect tables, the used ring, EVENT_IDX notification
 * suppression. Every guest address is checked over its whole extent
 * against one memory region; chains are bounded by the ring size and by
 * VRING_MAX_CHAIN descriptors, every descriptor walked counting (zero-length
 * and indirect ones too); nested indirect tables and writable-before-readable
 * orders are rejected. Pure: no I/O, no allocation (whether an indirect
 * table's pages exist is the caller's hook).
 */
#ifndef VSOCK_VRING_H
#define VSOCK_VRING_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#define GM_MAX_REGIONS 8

struct gm_region {
	uint64_t gpa;         /* guest physical address */
	uint64_t size;
	uint64_t uaddr;       /* the VMM's virtual address of the same memory */
	uint8_t *host;        /* our mapping of gpa */
};

struct guestmem {
	struct gm_region r[GM_MAX_REGIONS];
	unsigned n;
	/* Optional: are the pages of [p, p+len) in the memory now? An
	 * indirect table is read only then: reading a hole of the VMM's file
	 * through the mapping would allocate a page, charged to us. */
	int (*present)(const void *p, size_t len);
};

/* Our pointer to [gpa, gpa+len), or NULL unless it lies in one region. */
void *gm_from_gpa(const struct guestmem *m, uint64_t gpa, uint64_t len);
/* The same for an address in the VMM's address space (ring addresses). */
void *gm_from_uaddr(const struct guestmem *m, uint64_t uaddr, uint64_t len);

#define VRING_DESC_F_NEXT 1
#define VRING_DESC_F_WRITE 2
#define VRING_DESC_F_INDIRECT 4
#define VRING_MAX_IOV 64
/* Descriptors one chain may take, whatever their length: the work of a
 * chain is bounded, and a caller can bound a pass by its steps. */
#define VRING_MAX_CHAIN (2 * VRING_MAX_IOV)

struct vring_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct vring_used_elem {
	uint32_t id;
	uint32_t len;
};

enum vring_status {
	VRING_OK = 0,
	VRING_EMPTY,          /* nothing available */
	VRING_EBADRING,       /* the ring itself is broken: fail the device */
	VRING_EBADCHAIN,      /* this chain is malformed: return it with len 0 */
};

struct vring {
	uint16_t num;                 /* 0: not set up */
	struct vring_desc *desc;
	uint16_t *avail;              /* flags, idx, ring[num], used_event */
	uint16_t *used;               /* flags, idx, then used elements, avail_event */
	uint16_t last_avail;
	uint16_t used_idx;
	uint16_t signalled_used;
	int signalled_valid;
	int event_idx;
};

struct vring_chain {
	uint16_t head;
	struct iovec out[VRING_MAX_IOV];    /* device-readable */
	unsigned nout;
	size_t out_len;
	struct iovec in[VRING_MAX_IOV];     /* device-writable */
	unsigned nin;
	size_t in_len;
	unsigned steps;                     /* descriptors walked, at most VRING_MAX_CHAIN + 1 */
	const char *error;                  /* why a chain was rejected */
};

/* Point a ring at its three areas (VMM addresses, as SET_VRING_ADDR gives
 * them). 0, or -1 if num is not a power of two up to 32768 or an area is
 * not wholly inside guest memory. */
int vring_setup(struct vring *vr, const struct guestmem *m, unsigned num, uint64_t desc_ua,
		uint64_t avail_ua, uint64_t used_ua, int event_idx);
/* Take the next available chain. */
enum vring_status vring_pop(struct vring *vr, const struct guestmem *m, struct vring_chain *ch);
/* Return a chain with `len` bytes written into its writable part. */
void vring_push(struct vring *vr, uint16_t head, uint32_t len);
/* Should the driver be interrupted for what was pushed since the last time? */
int vring_need_notify(struct vring *vr);
/* Ask for a kick when more becomes available (EVENT_IDX: avail_event).
 * Returns whether chains became available meanwhile: then the driver may
 * not kick for them, and the caller must look again. */
int vring_enable_kicks(struct vring *vr);

#endif
