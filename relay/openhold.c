/* SPDX-License-Identifier: Apache-2.0 */
/*
 * openhold.c - OPENs held while the guest is down: see openhold.h.
 */
#include "relay/openhold.h"

#include <stdlib.h>
#include <string.h>

void openhold_init(struct openhold *oh)
{
	memset(oh, 0, sizeof(*oh));
}

int openhold_room(const struct openhold *oh, uint32_t len)
{
	return oh->n < OPENHOLD_MAX && len <= OPENHOLD_PAYLOAD_MAX;
}

int openhold_begin(struct openhold *oh, const uint8_t raw[ADB_HEADER_SIZE], uint32_t host_id,
		   uint32_t payload_len, uint64_t deadline)
{
	struct held_open *h;

	if (!openhold_room(oh, payload_len))
		return -1;
	h = &oh->v[oh->n];
	h->frame = malloc(ADB_HEADER_SIZE + payload_len);
	if (h->frame == NULL)
		return -1;
	memcpy(h->frame, raw, ADB_HEADER_SIZE);
	h->len = ADB_HEADER_SIZE;
	h->want = ADB_HEADER_SIZE + payload_len;
	h->host_id = host_id;
	h->deadline = deadline;
	oh->n++;
	return 0;
}

const struct held_open *openhold_filling(const struct openhold *oh, uint32_t host_id)
{
	const struct held_open *h;

	/* only the last can be filling: OPENs are held one whole frame at a time */
	if (oh->n == 0)
		return NULL;
	h = &oh->v[oh->n - 1];
	return h->host_id == host_id && h->len < h->want ? h : NULL;
}

void openhold_add(struct openhold *oh, uint32_t host_id, const uint8_t *p, size_t len)
{
	struct held_open *h = (struct held_open *)openhold_filling(oh, host_id);

	if (h == NULL)
		return;
	if (len > h->want - h->len)
		len = h->want - h->len;
	memcpy(h->frame + h->len, p, len);
	h->len += len;
}

static void remove_at(struct openhold *oh, unsigned i)
{
	memmove(&oh->v[i], &oh->v[i + 1], (oh->n - i - 1) * sizeof(oh->v[0]));
	oh->n--;
}

int openhold_remove(struct openhold *oh, uint32_t host_id)
{
	for (unsigned i = 0; i < oh->n; i++)
		if (oh->v[i].host_id == host_id) {
			free(oh->v[i].frame);
			remove_at(oh, i);
			return 1;
		}
	return 0;
}

int openhold_take(struct openhold *oh, uint8_t **frame, size_t *len, uint32_t *host_id)
{
	if (oh->n == 0 || oh->v[0].len != oh->v[0].want)
		return 0;
	*frame = oh->v[0].frame;
	*len = oh->v[0].len;
	*host_id = oh->v[0].host_id;
	remove_at(oh, 0);
	return 1;
}

int openhold_expire(struct openhold *oh, uint64_t now, uint32_t *host_id)
{
	for (unsigned i = 0; i < oh->n; i++)
		if (oh->v[i].deadline <= now) {
			*host_id = oh->v[i].host_id;
			free(oh->v[i].frame);
			remove_at(oh, i);
			return 1;
		}
	return 0;
}

uint64_t openhold_next_deadline(const struct openhold *oh)
{
	uint64_t d = 0;

	for (unsigned i = 0; i < oh->n; i++)
		if (d == 0 || oh->v[i].deadline < d)
			d = oh->v[i].deadline;
	return d;
}

void openhold_clear(struct openhold *oh)
{
	for (unsigned i = 0; i < oh->n; i++)
		free(oh->v[i].frame);
	oh->n = 0;
}
