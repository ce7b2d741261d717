/* SPDX-License-Identifier: Apache-2.0 */
/*
 * output.c - batched, ordered writes to one socket. See datapath.h.
 */
#include "relay/datapath/datapath.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

void output_init(struct output *o, output_done_cb done, void *data)
{
	memset(o, 0, sizeof(*o));
	o->done = done;
	o->data = data;
}

static void batch_release(struct output *o, struct output_batch *b)
{
	for (unsigned i = 0; i < b->nbufs; i++)
		poolbuf_unref(b->bufs[i]);
	free(b->owned);
	b->owned = NULL;
	b->nbufs = b->niov = b->nhdr = 0;
	b->bytes = 0;
	b->synth = 0;
	b->next = o->free_list;
	o->free_list = b;
}

void output_destroy(struct output *o)
{
	assert(o->in_flight == 0);
	if (o->open != NULL)
		batch_release(o, o->open);
	o->open = NULL;
	while (o->free_list) {
		struct output_batch *b = o->free_list;
		o->free_list = b->next;
		free(b);
	}
}

void output_attach(struct output *o, output_write_fn write, void *ctx)
{
	o->write = write;
	o->ctx = ctx;
}

static void on_stream_written(uv_write_t *req, int status)
{
	output_batch_done(req->data, status);
}

static int stream_write(void *ctx, struct output_batch *b)
{
	b->req.data = b;
	return uv_write(&b->req, ctx, b->iov, b->niov, on_stream_written);
}

void output_attach_stream(struct output *o, uv_stream_t *dst)
{
	output_attach(o, stream_write, dst);
}

void output_detach(struct output *o)
{
	if (o->open != NULL) {
		batch_release(o, o->open);
		o->open = NULL;
	}
	o->write = NULL;
	o->ctx = NULL;
}

static struct output_batch *batch_get(struct output *o)
{
	struct output_batch *b = o->free_list;

	if (b != NULL) {
		o->free_list = b->next;
	} else {
		b = calloc(1, sizeof(*b));
		if (b == NULL)
			return NULL;
	}
	b->out = o;
	b->next = NULL;
	return b;
}

void output_batch_done(struct output_batch *b, int status)
{
	struct output *o = b->out;
	size_t bytes = b->bytes;
	int synth = b->synth;

	o->in_flight--;
	o->bytes_pending -= bytes;
	if (synth)
		o->synth_pending -= bytes;
	batch_release(o, b);
	o->done(o, status, bytes, synth);
}

int output_flush(struct output *o)
{
	struct output_batch *b = o->open;
	int rc;

	if (b == NULL)
		return 0;
	o->open = NULL;
	if (o->write == NULL || b->niov == 0) {
		batch_release(o, b);
		return 0;
	}
	/* count first: a sink may finish the batch before returning */
	o->in_flight++;
	o->bytes_pending += b->bytes;
	if (b->synth)
		o->synth_pending += b->bytes;
	rc = o->write(o->ctx, b);
	if (rc != 0) {
		o->in_flight--;
		o->bytes_pending -= b->bytes;
		if (b->synth)
			o->synth_pending -= b->bytes;
		batch_release(o, b);
		return rc;
	}
	return 0;
}

int output_has_room(const struct output *o, size_t budget)
{
	return o->bytes_pending < budget && o->in_flight < OUTPUT_MAX_BATCHES;
}

/* The open batch, with room for one more iov (and a header if hdr). */
static struct output_batch *room(struct output *o, int need_buf_slot, struct poolbuf *pb)
{
	struct output_batch *b = o->open;

	if (o->write == NULL)
		return NULL;
	if (b != NULL) {
		int have_buf = 0;
		for (unsigned i = 0; pb && i < b->nbufs; i++)
			have_buf |= b->bufs[i] == pb;
		if (b->niov == OUTPUT_IOV ||
		    (need_buf_slot && !have_buf && b->nbufs == OUTPUT_BUFS) ||
		    (need_buf_slot == 2 && b->owned != NULL)) {
			if (output_flush(o) != 0)
				return NULL;
			b = NULL;
		}
	}
	if (b == NULL) {
		b = batch_get(o);
		o->open = b;
	}
	return b;
}

static void add_iov(struct output_batch *b, const void *p, size_t len)
{
	b->iov[b->niov++] = uv_buf_init((char *)p, (unsigned)len);
	b->bytes += len;
}

int output_header(struct output *o, const uint8_t hdr[ADB_HEADER_SIZE], int synth)
{
	struct output_batch *b = room(o, 0, NULL);

	if (b == NULL)
		return -1;
	memcpy(b->hdr[b->nhdr], hdr, ADB_HEADER_SIZE);
	add_iov(b, b->hdr[b->nhdr], ADB_HEADER_SIZE);
	b->nhdr++;
	b->synth |= synth;
	return 0;
}

int output_frame(struct output *o, const struct adb_header *h, int synth)
{
	uint8_t raw[ADB_HEADER_SIZE];

	adb_header_encode(h, raw);
	return output_header(o, raw, synth);
}

int output_slice(struct output *o, struct poolbuf *pb, const uint8_t *p, size_t len)
{
	struct output_batch *b = room(o, 1, pb);
	unsigned i;

	if (b == NULL)
		return -1;
	for (i = 0; i < b->nbufs && b->bufs[i] != pb; i++)
		;
	if (i == b->nbufs) {
		poolbuf_ref(pb);
		b->bufs[b->nbufs++] = pb;
	}
	add_iov(b, p, len);
	return 0;
}

int output_owned(struct output *o, void *p, size_t len, int synth)
{
	struct output_batch *b = room(o, 2, NULL);

	if (b == NULL) {
		free(p);
		return -1;
	}
	b->owned = p;
	b->synth |= synth;
	add_iov(b, p, len);
	return 0;
}
