/* SPDX-License-Identifier: Apache-2.0 */
/*
 * framehold.c - an adb frame held until whole. See framehold.h.
 */
#include "relay/framehold.h"

#include <string.h>

#define HOLD_MAX_PAYLOAD (256u * 1024u)

uint32_t framehold_max_payload(unsigned pool_limit)
{
	/* a pool_reader fills every buffer but the first and the last with
	 * more than CHUNK - MIN_READ bytes, so a frame of n bytes spans at
	 * most 2 + n / (CHUNK - MIN_READ) buffers */
	const size_t fill = BUFPOOL_CHUNK - BUFPOOL_MIN_READ;
	size_t bytes, payload;

	if (pool_limit < 2)
		return ADB_MAX_PAYLOAD_V1;
	bytes = (size_t)(pool_limit - 1) * fill;
	if (pool_limit - 1 > FRAMEHOLD_SLICES - 1)
		bytes = (FRAMEHOLD_SLICES - 1) * fill;
	payload = bytes - ADB_HEADER_SIZE;
	payload &= ~(size_t)(ADB_MAX_PAYLOAD_V1 - 1);
	if (payload > HOLD_MAX_PAYLOAD)
		payload = HOLD_MAX_PAYLOAD;
	return payload < ADB_MAX_PAYLOAD_V1 ? ADB_MAX_PAYLOAD_V1 : (uint32_t)payload;
}

void framehold_begin(struct frame_hold *f, const uint8_t header[ADB_HEADER_SIZE])
{
	framehold_drop(f);
	memcpy(f->header, header, ADB_HEADER_SIZE);
	f->active = 1;
}

int framehold_add(struct frame_hold *f, struct poolbuf *b, const uint8_t *p, size_t len)
{
	struct frame_slice *last = f->n ? &f->s[f->n - 1] : NULL;

	if (last != NULL && last->buf == b && last->p + last->len == p) {
		last->len += len;
	} else {
		if (f->n == FRAMEHOLD_SLICES)
			return -1;
		poolbuf_ref(b);
		f->s[f->n++] = (struct frame_slice){ b, p, len };
	}
	f->len += len;
	return 0;
}

int framehold_release(struct frame_hold *f, struct output *o)
{
	int rc = output_header(o, f->header, 0);

	for (unsigned i = 0; rc == 0 && i < f->n; i++)
		rc = output_slice(o, f->s[i].buf, f->s[i].p, f->s[i].len);
	framehold_drop(f);
	return rc;
}

size_t framehold_drop(struct frame_hold *f)
{
	size_t held = f->len;

	for (unsigned i = 0; i < f->n; i++)
		poolbuf_unref(f->s[i].buf);
	f->n = 0;
	f->len = 0;
	f->active = 0;
	return held;
}

size_t framehold_copy(const struct frame_hold *f, uint8_t *dst, size_t max)
{
	size_t o = 0;

	for (unsigned i = 0; i < f->n && o < max; i++) {
		size_t n = f->s[i].len < max - o ? f->s[i].len : max - o;

		memcpy(dst + o, f->s[i].p, n);
		o += n;
	}
	return o;
}
