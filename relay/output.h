/*
 * output.h - ordered output to one side of a session: adb headers (copied,
 * 24 bytes each) and payload slices of pooled read buffers (referenced,
 * never copied), gathered into batches. A batch goes to a sink in one
 * call: uv_write on a socket, or the USB front's transfer framer. Batches
 * are recycled; a steady stream allocates nothing.
 */
#ifndef RELAY_OUTPUT_H
#define RELAY_OUTPUT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "adbproto.h"
#include "bufpool.h"

#define OUTPUT_IOV 64
#define OUTPUT_BUFS 4
/* Batches submitted and not yet written, past which the side that feeds an
 * output is not read: header-only frames cost batch memory, not pool
 * buffers, so this bounds them. */
#define OUTPUT_MAX_BATCHES 32

struct output;
struct output_batch;

/* A sink takes a batch and calls output_batch_done() once it is written
 * (or failed); returns 0 or a uv error if it cannot take it at all. */
typedef int (*output_write_fn)(void *ctx, struct output_batch *b);

/* Called when a batch completes: status 0, or the uv_write error. */
typedef void (*output_done_cb)(struct output *o, int status, size_t bytes, int synth);

struct output_batch {
	uv_write_t req;
	struct output_batch *next;
	struct output *out;
	struct poolbuf *bufs[OUTPUT_BUFS];  /* read buffers the slices point into */
	void *owned;                        /* heap payload freed on completion */
	unsigned niov, nhdr, nbufs;
	size_t bytes;
	int synth;                          /* frames the relay made up itself */
	uv_buf_t iov[OUTPUT_IOV];
	uint8_t hdr[OUTPUT_IOV][ADB_HEADER_SIZE];
};

struct output {
	output_write_fn write;       /* NULL while the sink is not usable */
	void *ctx;
	struct output_batch *open;   /* being filled */
	struct output_batch *free_list;
	unsigned in_flight;          /* batches submitted, not yet completed */
	size_t bytes_pending;        /* bytes submitted, not yet completed */
	size_t synth_pending;
	output_done_cb done;
	void *data;
};

void output_init(struct output *o, output_done_cb done, void *data);
/* Free recycled batches; none may be in flight. */
void output_destroy(struct output *o);
void output_attach(struct output *o, output_write_fn write, void *ctx);
void output_attach_stream(struct output *o, uv_stream_t *dst);
/* Forget the sink (it is closing); pending batches complete cancelled. */
void output_detach(struct output *o);
/* A sink finished a batch: status 0 or a uv error. */
void output_batch_done(struct output_batch *b, int status);

/* Queue a header; synth marks frames the relay generated. -1: no socket. */
int output_header(struct output *o, const uint8_t hdr[ADB_HEADER_SIZE], int synth);
int output_frame(struct output *o, const struct adb_header *h, int synth);
/* Queue a slice of a pooled buffer (referenced until written). */
int output_slice(struct output *o, struct poolbuf *b, const uint8_t *p, size_t len);
/* Queue bytes the batch takes ownership of (freed after the write). */
int output_owned(struct output *o, void *p, size_t len);
/* Submit what is queued. Returns 0 or a uv error (the socket failed). */
int output_flush(struct output *o);
/* May the side that feeds o be read on: fewer than budget bytes and fewer
 * than OUTPUT_MAX_BATCHES batches waiting to be written? */
int output_has_room(const struct output *o, size_t budget);

#endif
