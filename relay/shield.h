/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shield.h - what a guest may send the PC's adb server. adb trusts its
 * device: a CNXN announcing a tiny max payload, an OPEN to a destination
 * the PC never set up with `adb reverse`, or a flood of AUTH tokens can
 * abort or stall the PC's server. The shield decides, per session, which
 * guest frames go through: it clamps the announced max payload, lets guest
 * OPENs through only to the local end of a reverse forward the PC asked for
 * (and only so many, so fast), and rate-limits handshake frames. It also
 * budgets what a guest makes the relay take itself rather than pass on
 * (OKAYs the relay answered already, frames of streams that are gone): no
 * PC's reading paces those, so the guest's side is read no faster than
 * SHIELD_TAKEN_RATE. Pure bookkeeping: no I/O.
 */
#ifndef RELAY_SHIELD_H
#define RELAY_SHIELD_H

#include <stddef.h>
#include <stdint.h>

#include "adbproto/adbproto.h"

#define SHIELD_FORWARDS 32            /* reverse forwards tracked per session */
#define SHIELD_ADDR_MAX 128           /* longest remote or local spec kept */
#define SHIELD_OPENS_PENDING 32       /* guest OPENs the PC has not answered */
#define SHIELD_OPEN_RATE 50           /* guest OPENs per second, */
#define SHIELD_OPEN_BURST 100         /*   with this burst */
#define SHIELD_HANDSHAKE_RATE 1       /* guest AUTH and repeated CNXN per second, */
#define SHIELD_HANDSHAKE_BURST 8      /*   with this burst */
/* guest frames the relay takes itself, in bytes a second (a frame costs its
 * payload plus SHIELD_TAKEN_FRAME: 60000 OKAYs a second), with this burst;
 * a legitimate guest takes a few hundred KiB a second at most (one OKAY per
 * PC WRTE on a pipelined stream, what was in flight on a stream the PC
 * closed) */
#define SHIELD_TAKEN_RATE (16u << 20)
#define SHIELD_TAKEN_BURST (16u << 20)
#define SHIELD_TAKEN_FRAME 256

struct shield_bucket {
	double tokens;
	uint64_t last_ms;
	int primed;
};

struct shield_forward {
	char remote[SHIELD_ADDR_MAX];     /* the guest's listener ("tcp:6000") */
	char local[SHIELD_ADDR_MAX];      /* where the PC connects ("tcp:7000") */
};

struct shield {
	struct shield_forward fwd[SHIELD_FORWARDS];
	unsigned nfwd;
	unsigned opens_pending;           /* guest OPENs forwarded, unanswered */
	struct shield_bucket opens, handshakes, taken;
};

enum shield_verdict {
	SHIELD_PASS,
	SHIELD_NOT_REVERSED,   /* OPEN to an address no reverse forward names */
	SHIELD_TOO_MANY,       /* too many guest OPENs unanswered */
	SHIELD_TOO_FAST,       /* over the rate */
};

void shield_init(struct shield *sh);
/* The PC sent OPEN(service): learn "reverse:forward:[norebind:]R;L",
 * "reverse:killforward:R" and "reverse:killforward-all" as adb does. */
void shield_host_open(struct shield *sh, const uint8_t *service, size_t len);
/* May the guest open a stream to dest (the OPEN's payload) now? */
enum shield_verdict shield_guest_open(struct shield *sh, const uint8_t *dest, size_t len,
				      uint64_t now_ms);
/* The PC answered (OKAY or CLSE) a guest OPEN that was let through. */
void shield_open_answered(struct shield *sh);
/* Every stream is gone (the guest link was lost). */
void shield_streams_gone(struct shield *sh);
/* May the guest send a handshake frame (AUTH, or a CNXN past its first)? */
enum shield_verdict shield_guest_handshake(struct shield *sh, uint64_t now_ms);
/* The relay took a guest frame of `payload` bytes itself: 0 while within
 * SHIELD_TAKEN_RATE, else how many ms reading the guest should pause to be
 * within it again. */
unsigned shield_guest_taken(struct shield *sh, uint32_t payload, uint64_t now_ms);
/* The max payload a guest's CNXN may announce to the PC: [4 KiB, 1 MiB]. */
uint32_t shield_max_payload(uint32_t announced);
const char *shield_verdict_name(enum shield_verdict v);

#endif
