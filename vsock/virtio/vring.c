/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vring.c - guest memory translation and split virtqueues; see vring.h.
 * Ring indices are read with acquire and published with release ordering,
 * the same discipline as the Linux and QEMU implementations.
 */
#include "vsock/virtio/vring.h"

#include <string.h>

/* ---- guest memory ---- */

static void *region_ptr(const struct gm_region *r, uint64_t base, uint64_t addr, uint64_t len)
{
	if (len == 0 || addr < base || addr - base >= r->size || len > r->size - (addr - base))
		return NULL;
	return r->host + (addr - base);
}

void *gm_from_gpa(const struct guestmem *m, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < m->n; i++) {
		void *p = region_ptr(&m->r[i], m->r[i].gpa, gpa, len);
		if (p != NULL)
			return p;
	}
	return NULL;
}

void *gm_from_uaddr(const struct guestmem *m, uint64_t uaddr, uint64_t len)
{
	for (unsigned i = 0; i < m->n; i++) {
		void *p = region_ptr(&m->r[i], m->r[i].uaddr, uaddr, len);
		if (p != NULL)
			return p;
	}
	return NULL;
}

/* ---- ring fields ---- */

static uint16_t load_acquire16(const uint16_t *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void store_release16(uint16_t *p, uint16_t v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

#define AVAIL_IDX(vr) (&(vr)->avail[1])
#define AVAIL_RING(vr, i) ((vr)->avail[2 + (i)])
#define USED_EVENT(vr) (&(vr)->avail[2 + (vr)->num])
#define USED_IDX(vr) (&(vr)->used[1])
#define USED_ELEMS(vr) ((struct vring_used_elem *)((vr)->used + 2))
#define AVAIL_EVENT(vr) ((uint16_t *)(USED_ELEMS(vr) + (vr)->num))

int vring_setup(struct vring *vr, const struct guestmem *m, unsigned num, uint64_t desc_ua,
		uint64_t avail_ua, uint64_t used_ua, int event_idx)
{
	memset(vr, 0, sizeof(*vr));
	if (num == 0 || num > 32768 || (num & (num - 1)) != 0)
		return -1;
	vr->desc = gm_from_uaddr(m, desc_ua, 16ull * num);
	vr->avail = gm_from_uaddr(m, avail_ua, 6 + 2ull * num);
	vr->used = gm_from_uaddr(m, used_ua, 6 + 8ull * num);
	if (vr->desc == NULL || vr->avail == NULL || vr->used == NULL ||
	    ((uintptr_t)vr->desc & 15) || ((uintptr_t)vr->avail & 1) || ((uintptr_t)vr->used & 3)) {
		memset(vr, 0, sizeof(*vr));
		return -1;
	}
	vr->num = (uint16_t)num;
	vr->event_idx = event_idx;
	vr->used_idx = __atomic_load_n(USED_IDX(vr), __ATOMIC_RELAXED);
	return 0;
}

/* ---- chains ---- */

static enum vring_status bad(struct vring_chain *ch, const char *why)
{
	ch->error = why;
	return VRING_EBADCHAIN;
}

static enum vring_status add_segment(const struct guestmem *m, struct vring_chain *ch,
				     const struct vring_desc *d)
{
	void *p;

	if (d->len == 0)
		return VRING_OK;
	p = gm_from_gpa(m, d->addr, d->len);
	if (p == NULL)
		return bad(ch, "descriptor outside guest memory");
	if (d->flags & VRING_DESC_F_WRITE) {
		if (ch->nin == VRING_MAX_IOV)
			return bad(ch, "too many segments");
		ch->in[ch->nin++] = (struct iovec){ p, d->len };
		ch->in_len += d->len;
	} else {
		if (ch->nin > 0)
			return bad(ch, "readable descriptor after a writable one");
		if (ch->nout == VRING_MAX_IOV)
			return bad(ch, "too many segments");
		ch->out[ch->nout++] = (struct iovec){ p, d->len };
		ch->out_len += d->len;
	}
	return VRING_OK;
}

_Static_assert(VRING_MAX_CHAIN == 128, "the message below says 128");

/* Walk a table of `count` descriptors from `first`; at most `count` steps
 * in it, and VRING_MAX_CHAIN in the whole chain. */
static enum vring_status walk(const struct guestmem *m, const struct vring_desc *table,
			      unsigned count, unsigned first, int indirect, struct vring_chain *ch)
{
	unsigned i = first, steps = 0;
	enum vring_status st;

	for (;;) {
		struct vring_desc d;

		if (i >= count)
			return bad(ch, "descriptor index out of range");
		if (++steps > count)
			return bad(ch, "descriptor chain loops");
		if (++ch->steps > VRING_MAX_CHAIN)
			return bad(ch, "descriptor chain longer than 128 descriptors");
		memcpy(&d, &table[i], sizeof(d));
		if (d.flags & VRING_DESC_F_INDIRECT) {
			const struct vring_desc *it;

			if (indirect)
				return bad(ch, "nested indirect table");
			if (d.flags & VRING_DESC_F_NEXT)
				return bad(ch, "indirect descriptor with NEXT");
			if (d.len == 0 || d.len % sizeof(struct vring_desc) != 0 ||
			    d.len / sizeof(struct vring_desc) > 32768)
				return bad(ch, "indirect table of a bad size");
			it = gm_from_gpa(m, d.addr, d.len);
			if (it == NULL)
				return bad(ch, "indirect table outside guest memory");
			if (m->present != NULL && !m->present(it, d.len))
				return bad(ch, "indirect table in a hole of guest memory");
			return walk(m, it, d.len / sizeof(struct vring_desc), 0, 1, ch);
		}
		if ((st = add_segment(m, ch, &d)) != VRING_OK)
			return st;
		if (!(d.flags & VRING_DESC_F_NEXT))
			return VRING_OK;
		i = d.next;
	}
}

enum vring_status vring_pop(struct vring *vr, const struct guestmem *m, struct vring_chain *ch)
{
	uint16_t avail_idx, head;

	if (vr->num == 0)
		return VRING_EMPTY;
	avail_idx = load_acquire16(AVAIL_IDX(vr));
	if (avail_idx == vr->last_avail)
		return VRING_EMPTY;
	if ((uint16_t)(avail_idx - vr->last_avail) > vr->num)
		return VRING_EBADRING;   /* the driver claims more than the ring holds */
	head = AVAIL_RING(vr, vr->last_avail % vr->num);
	vr->last_avail++;
	ch->nout = ch->nin = 0;
	ch->out_len = ch->in_len = 0;
	ch->steps = 0;
	ch->error = NULL;
	ch->head = head;
	if (head >= vr->num)
		return VRING_EBADRING;
	return walk(m, vr->desc, vr->num, head, 0, ch);
}

void vring_push(struct vring *vr, uint16_t head, uint32_t len)
{
	struct vring_used_elem *e = &USED_ELEMS(vr)[vr->used_idx % vr->num];

	e->id = head;
	e->len = len;
	vr->used_idx++;
	store_release16(USED_IDX(vr), vr->used_idx);
}

int vring_need_notify(struct vring *vr)
{
	uint16_t old = vr->signalled_used, new = vr->used_idx;
	int valid = vr->signalled_valid;

	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	vr->signalled_used = new;
	vr->signalled_valid = 1;
	if (!vr->event_idx)
		return !(load_acquire16(&vr->avail[0]) & 1);   /* VRING_AVAIL_F_NO_INTERRUPT */
	if (!valid)
		return 1;
	/* virtio's vring_need_event(): did we pass used_event since `old`? */
	uint16_t event = load_acquire16(USED_EVENT(vr));
	return (uint16_t)(new - event - 1) < (uint16_t)(new - old);
}

int vring_enable_kicks(struct vring *vr)
{
	if (vr->num == 0)
		return 0;
	if (vr->event_idx)
		store_release16(AVAIL_EVENT(vr), vr->last_avail);
	else
		store_release16(&vr->used[0], 0);   /* clear VRING_USED_F_NO_NOTIFY */
	/* the store must be visible before we look at avail->idx again */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return load_acquire16(AVAIL_IDX(vr)) != vr->last_avail;
}
