/* SPDX-License-Identifier: Apache-2.0 */
/*
 * queue.c - a connection's byte queue: a ring over VVS_CHUNKS chunks of
 * 64 KiB (no larger allocation), each taken when the ring first reaches
 * it and all given back when the queue empties. Given-back chunks wait in
 * a small spare list shared by every queue (at most SPARE_CHUNKS, the rest
 * are freed): a busy stream empties its queue often, and a malloc/free of
 * 64 KiB each time makes the heap grow and trim, with page faults and TLB
 * flushes, on every round.
 */
#include "vsock/virtio/virtio_vsock.h"
#include "vsock/virtio/vvs_internal.h"

#include <stdlib.h>
#include <string.h>

size_t vvs_queue_room(const struct vvs_queue *q)
{
	return VVS_BUF - q->len;
}

#define SPARE_CHUNKS 16

static uint8_t *spare[SPARE_CHUNKS];
static unsigned nspare;

static uint8_t *chunk_get(void)
{
	return nspare > 0 ? spare[--nspare] : malloc(VVS_CHUNK);
}

static void chunk_put(uint8_t *chunk)
{
	if (chunk == NULL)
		return;
	if (nspare < SPARE_CHUNKS)
		spare[nspare++] = chunk;
	else
		free(chunk);
}

static void release_chunks(struct vvs_queue *q)
{
	for (int i = 0; i < VVS_CHUNKS; i++) {
		chunk_put(q->chunk[i]);
		q->chunk[i] = NULL;
	}
	q->head = 0;
}

void vvs_queue_free(struct vvs_queue *q)
{
	release_chunks(q);
	q->len = 0;
}

size_t vvs_queue_push(struct vvs_queue *q, const uint8_t *p, size_t len)
{
	size_t done = 0;

	if (len > vvs_queue_room(q))
		len = vvs_queue_room(q);
	while (done < len) {
		size_t pos = (q->head + q->len) % VVS_BUF;
		size_t ci = pos / VVS_CHUNK, off = pos % VVS_CHUNK;
		size_t n = VVS_CHUNK - off;

		if (q->chunk[ci] == NULL && (q->chunk[ci] = chunk_get()) == NULL)
			break;
		if (n > len - done)
			n = len - done;
		memcpy(q->chunk[ci] + off, p + done, n);
		done += n;
		q->len += n;
	}
	return done;
}

size_t vvs_queue_peek(const struct vvs_queue *q, uint8_t *p, size_t cap)
{
	size_t done = 0, head = q->head, left = q->len;

	while (done < cap && left > 0) {
		size_t ci = head / VVS_CHUNK, off = head % VVS_CHUNK;
		size_t n = VVS_CHUNK - off;

		if (n > left)
			n = left;
		if (n > cap - done)
			n = cap - done;
		memcpy(p + done, q->chunk[ci] + off, n);
		done += n;
		head = (head + n) % VVS_BUF;
		left -= n;
	}
	return done;
}

size_t vvs_queue_pop(struct vvs_queue *q, uint8_t *p, size_t cap)
{
	size_t done = 0;

	while (done < cap && q->len > 0) {
		size_t ci = q->head / VVS_CHUNK, off = q->head % VVS_CHUNK;
		size_t n = VVS_CHUNK - off;

		if (n > q->len)
			n = q->len;
		if (n > cap - done)
			n = cap - done;
		if (p != NULL)
			memcpy(p + done, q->chunk[ci] + off, n);
		done += n;
		q->head = (q->head + n) % VVS_BUF;
		q->len -= n;
	}
	if (q->len == 0)
		release_chunks(q);
	return done;
}
