/* SPDX-License-Identifier: Apache-2.0 */
/*
 * framehold.h - one adb frame held until it is whole: its header and the
 * slices of pooled read buffers that hold its payload (referenced, never
 * copied; slices that follow each other in one buffer are merged). A whole
 * frame goes to an output in one piece; a frame its sender cut short is
 * dropped, so the receiver never gets bytes the sender did not send.
 */
#ifndef RELAY_FRAMEHOLD_H
#define RELAY_FRAMEHOLD_H

#include <stddef.h>
#include <stdint.h>

#include "adbproto/adbproto.h"
#include "relay/datapath/datapath.h"

#define FRAMEHOLD_SLICES 16

struct frame_slice {
	struct poolbuf *buf;
	const uint8_t *p;
	size_t len;
};

struct frame_hold {
	uint8_t header[ADB_HEADER_SIZE];
	int active;                  /* a frame is being held */
	size_t len;                  /* payload bytes held */
	unsigned n;
	struct frame_slice s[FRAMEHOLD_SLICES];
};

/* The largest payload a frame may have so that holding it whole never
 * needs more than pool_limit buffers of a pool_reader, a multiple of 4 KiB
 * between 4 KiB and 256 KiB. */
uint32_t framehold_max_payload(unsigned pool_limit);

void framehold_begin(struct frame_hold *f, const uint8_t header[ADB_HEADER_SIZE]);
/* Add payload bytes read into b. 0, or -1 when the frame is in too many
 * pieces (it cannot be, with framehold_max_payload and a pool_reader). */
int framehold_add(struct frame_hold *f, struct poolbuf *b, const uint8_t *p, size_t len);
/* Queue the whole frame on o and let it go. 0, or -1 (o has no sink). */
int framehold_release(struct frame_hold *f, struct output *o);
/* Forget the frame; returns the payload bytes that were held. */
size_t framehold_drop(struct frame_hold *f);
/* Copy up to max payload bytes out; returns how many. */
size_t framehold_copy(const struct frame_hold *f, uint8_t *dst, size_t max);

#endif
