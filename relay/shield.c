/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shield.c - which guest frames may reach the PC. See shield.h.
 */
#include "relay/shield.h"

#include <string.h>

void shield_init(struct shield *sh)
{
	memset(sh, 0, sizeof(*sh));
}

/* ---- reverse forwards, as adb's host keeps them ---- */

/* The service string up to its NUL (an OPEN's payload ends with one). */
static size_t service_len(const uint8_t *p, size_t len)
{
	const uint8_t *nul = memchr(p, '\0', len);

	return nul ? (size_t)(nul - p) : len;
}

static int consume(const uint8_t **p, size_t *len, const char *prefix)
{
	size_t n = strlen(prefix);

	if (*len < n || memcmp(*p, prefix, n) != 0)
		return 0;
	*p += n;
	*len -= n;
	return 1;
}

static int same(const char *kept, const uint8_t *p, size_t len)
{
	return strlen(kept) == len && memcmp(kept, p, len) == 0;
}

static void forget(struct shield *sh, unsigned i)
{
	sh->fwd[i] = sh->fwd[--sh->nfwd];
}

static void learn(struct shield *sh, const uint8_t *p, size_t len, int norebind)
{
	const uint8_t *semi = memchr(p, ';', len);
	size_t rlen, llen;
	unsigned i;

	if (semi == NULL)
		return;
	rlen = (size_t)(semi - p);
	llen = len - rlen - 1;
	if (rlen >= SHIELD_ADDR_MAX || llen >= SHIELD_ADDR_MAX)
		return;   /* not kept: the guest's OPENs to it are refused */
	for (i = 0; i < sh->nfwd && !same(sh->fwd[i].remote, p, rlen); i++)
		;
	if (i < sh->nfwd && norebind)
		return;   /* adb's guest refuses it; nothing changes */
	if (i == sh->nfwd) {
		if (sh->nfwd == SHIELD_FORWARDS)
			return;
		sh->nfwd++;
	}
	memcpy(sh->fwd[i].remote, p, rlen);
	sh->fwd[i].remote[rlen] = '\0';
	memcpy(sh->fwd[i].local, semi + 1, llen);
	sh->fwd[i].local[llen] = '\0';
}

void shield_host_open(struct shield *sh, const uint8_t *p, size_t len)
{
	len = service_len(p, len);
	if (!consume(&p, &len, "reverse:"))
		return;
	if (consume(&p, &len, "forward:")) {
		int norebind = consume(&p, &len, "norebind:");

		learn(sh, p, len, norebind);
	} else if (consume(&p, &len, "killforward:")) {
		for (unsigned i = 0; i < sh->nfwd; i++)
			if (same(sh->fwd[i].remote, p, len)) {
				forget(sh, i);
				break;
			}
	} else if (len == strlen("killforward-all") && consume(&p, &len, "killforward-all")) {
		sh->nfwd = 0;
	}
}

/* ---- rates ---- */

static void bucket_refill(struct shield_bucket *b, uint64_t now_ms, double rate, double burst)
{
	if (!b->primed) {
		b->tokens = burst;
		b->last_ms = now_ms;
		b->primed = 1;
	}
	if (now_ms > b->last_ms) {
		b->tokens += (double)(now_ms - b->last_ms) * rate / 1000.0;
		if (b->tokens > burst)
			b->tokens = burst;
		b->last_ms = now_ms;
	}
}

static int bucket_take(struct shield_bucket *b, uint64_t now_ms, double rate, double burst)
{
	bucket_refill(b, now_ms, rate, burst);
	if (b->tokens < 1.0)
		return 0;
	b->tokens -= 1.0;
	return 1;
}

enum shield_verdict shield_guest_open(struct shield *sh, const uint8_t *dest, size_t len,
				      uint64_t now_ms)
{
	unsigned i;

	len = service_len(dest, len);
	for (i = 0; i < sh->nfwd && !same(sh->fwd[i].local, dest, len); i++)
		;
	if (i == sh->nfwd)
		return SHIELD_NOT_REVERSED;
	if (sh->opens_pending >= SHIELD_OPENS_PENDING)
		return SHIELD_TOO_MANY;
	if (!bucket_take(&sh->opens, now_ms, SHIELD_OPEN_RATE, SHIELD_OPEN_BURST))
		return SHIELD_TOO_FAST;
	sh->opens_pending++;
	return SHIELD_PASS;
}

void shield_open_answered(struct shield *sh)
{
	if (sh->opens_pending > 0)
		sh->opens_pending--;
}

void shield_streams_gone(struct shield *sh)
{
	sh->opens_pending = 0;
}

enum shield_verdict shield_guest_handshake(struct shield *sh, uint64_t now_ms)
{
	return bucket_take(&sh->handshakes, now_ms, SHIELD_HANDSHAKE_RATE,
			   SHIELD_HANDSHAKE_BURST) ? SHIELD_PASS : SHIELD_TOO_FAST;
}

uint32_t shield_max_payload(uint32_t announced)
{
	if (announced < ADB_MAX_PAYLOAD_V1)
		return ADB_MAX_PAYLOAD_V1;
	return announced > ADB_MAX_PAYLOAD ? ADB_MAX_PAYLOAD : announced;
}

const char *shield_verdict_name(enum shield_verdict v)
{
	switch (v) {
	case SHIELD_PASS: return "passed";
	case SHIELD_NOT_REVERSED: return "no reverse forward names it";
	case SHIELD_TOO_MANY: return "too many guest OPENs unanswered";
	case SHIELD_TOO_FAST: return "over the rate";
	}
	return "?";
}

unsigned shield_guest_taken(struct shield *sh, uint32_t payload, uint64_t now_ms)
{
	struct shield_bucket *b = &sh->taken;

	bucket_refill(b, now_ms, SHIELD_TAKEN_RATE, SHIELD_TAKEN_BURST);
	b->tokens -= (double)payload + SHIELD_TAKEN_FRAME;   /* a debt is paid by waiting */
	if (b->tokens >= 0)
		return 0;
	return (unsigned)(-b->tokens * 1000.0 / SHIELD_TAKEN_RATE) + 1;
}
