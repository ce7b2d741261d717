/* SPDX-License-Identifier: Apache-2.0 */
/*
 * openhold.h - the OPENs a PC sent while its guest was down, held (header
 * and service name) until the guest is back or their time is up, so that
 * `adb shell` typed during a guest reboot runs once the guest answers
 * instead of failing at once. Bounded: OPENHOLD_MAX OPENs of at most
 * OPENHOLD_PAYLOAD_MAX bytes of service each. Pure bookkeeping, no I/O:
 * the session decides when to hold, release and refuse.
 */
#ifndef RELAY_OPENHOLD_H
#define RELAY_OPENHOLD_H

#include <stddef.h>
#include <stdint.h>

#include "adbproto/adbproto.h"

#define OPENHOLD_MAX 16
#define OPENHOLD_PAYLOAD_MAX 4096

struct held_open {
	uint32_t host_id;              /* the PC's local id for the stream */
	uint64_t deadline;             /* ms (the loop's clock): refused after */
	uint8_t *frame;                /* header and service, malloc'd */
	size_t len, want;              /* bytes in frame, and when it is whole */
};

struct openhold {
	struct held_open v[OPENHOLD_MAX];
	unsigned n;                    /* the last may still be filling */
};

void openhold_init(struct openhold *oh);
/* Is there room for an OPEN whose service is LEN bytes long? */
int openhold_room(const struct openhold *oh, uint32_t len);
/* Hold the OPEN with header RAW (its payload follows with openhold_add):
 * 0, or -1 (no room, out of memory). */
int openhold_begin(struct openhold *oh, const uint8_t raw[ADB_HEADER_SIZE], uint32_t host_id,
		   uint32_t payload_len, uint64_t deadline);
/* More of the service of the OPEN being filled (HOST_ID, from
 * openhold_begin), never beyond what its header said; nothing if that OPEN
 * is gone already (its time ran out, the hold was cleared). */
void openhold_add(struct openhold *oh, uint32_t host_id, const uint8_t *p, size_t len);
/* The OPEN HOST_ID whose service is still arriving, or NULL if it is gone. */
const struct held_open *openhold_filling(const struct openhold *oh, uint32_t host_id);
/* The PC closed HOST_ID before it was answered: forget it. 1 if held. */
int openhold_remove(struct openhold *oh, uint32_t host_id);
/* The oldest whole OPEN, taken out: 1 with *frame (the caller frees it),
 * *len and *host_id set, or 0. */
int openhold_take(struct openhold *oh, uint8_t **frame, size_t *len, uint32_t *host_id);
/* One OPEN whose deadline is at or before NOW, taken out: 1 with
 * *host_id set, or 0. */
int openhold_expire(struct openhold *oh, uint64_t now, uint32_t *host_id);
/* The earliest deadline, 0 when nothing is held. */
uint64_t openhold_next_deadline(const struct openhold *oh);
/* Drop everything held (the PC started over, the session ends). */
void openhold_clear(struct openhold *oh);

#endif
