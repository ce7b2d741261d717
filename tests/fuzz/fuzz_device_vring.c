/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_device_vring.c - vring.c as fuzz_device links it: the device's own
 * source, compiled here with two counters around it and nothing else
 * changed, so that the fuzz target can bound the work the device does per
 * chain and per loop turn without a hook in the device.
 *
 * walk() reads each descriptor with one memcpy of a struct vring_desc, the
 * only memcpy in vring.c: counting those counts descriptor steps. vring_pop
 * is renamed on the way in and wrapped, so that every chain walk is seen
 * with its steps (fuzz_device_chain_walked in fuzz_device.c checks them).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "vsock/virtio/vring.h"

extern unsigned long fuzz_device_desc_steps;
void fuzz_device_chain_walked(unsigned long steps, int status, uint16_t head);

static inline void *fuzz_counted_copy(void *dst, const void *src, size_t n)
{
	fuzz_device_desc_steps++;
	return memcpy(dst, src, n);
}

/* vring.h is in already: the renamed vring_pop needs its own prototype */
enum vring_status fuzz_vring_pop_inner(struct vring *vr, const struct guestmem *m,
				       struct vring_chain *ch);

#define memcpy(dst, src, n) fuzz_counted_copy(dst, src, n)
#define vring_pop fuzz_vring_pop_inner
#include "vsock/virtio/vring.c"
#undef vring_pop
#undef memcpy

enum vring_status vring_pop(struct vring *vr, const struct guestmem *m, struct vring_chain *ch)
{
	unsigned long before = fuzz_device_desc_steps;
	enum vring_status st = fuzz_vring_pop_inner(vr, m, ch);

	if (st != VRING_EMPTY)
		fuzz_device_chain_walked(fuzz_device_desc_steps - before, (int)st, ch->head);
	return st;
}
