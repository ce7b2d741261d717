/* SPDX-License-Identifier: Apache-2.0 */
/*
 * datapath.h - the currency of the data path, the public header of
 * relay/datapath/: bounded pools of reference-counted read buffers that
 * reads land in (bufpool.c), and ordered output batches that write headers
 * and slices of those buffers to one side without copying them (output.c),
 * and a pump that splices payload from socket to socket (splice.c).
 * The session moves bytes with them, and a front connection writes the
 * batches it is given. Nothing here knows of routes or sessions.
 */
#ifndef RELAY_DATAPATH_H
#define RELAY_DATAPATH_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "adbproto/adbproto.h"

/* ---- bufpool.c: a bounded pool of fixed-size, reference-counted read
 * buffers. One pool per direction of a session: while it is used up the
 * session does not read the side that fills it. A pool_reader lends the pool's buffers
 * to reads, one at a time, so that consecutive reads land back to back in
 * one buffer: data that arrives in many small reads spans few buffers.
 */

#define BUFPOOL_CHUNK (64 * 1024)
/* The buffers of a pool that one read at a time fills from a socket: a
 * quarter as many reads (and TCP window updates) per MiB as 64 KiB ones.
 * Only where the budget holds BUFPOOL_MIN_CHUNKS of them. */
#define BUFPOOL_BIG_CHUNK (256 * 1024)
#define BUFPOOL_MIN_CHUNKS 2          /* a pool holds at least this many */
/* A read gets the rest of the current buffer while this much is left. */
#define BUFPOOL_MIN_READ 4096

struct bufpool;

struct poolbuf {
	struct bufpool *pool;
	struct poolbuf *next_free;
	unsigned refs;
	uint8_t data[];              /* pool->chunk bytes */
};

struct bufpool {
	struct poolbuf *free_list;
	unsigned in_use;
	unsigned allocated;
	unsigned limit;              /* buffers, from the byte budget */
	size_t chunk;                /* bytes in each */
};

/* Buffers of chunk bytes (BUFPOOL_CHUNK or BUFPOOL_BIG_CHUNK), as many as
 * budget_bytes holds; BUFPOOL_CHUNK ones where it holds fewer than
 * BUFPOOL_MIN_CHUNKS big ones. */
void bufpool_init(struct bufpool *p, size_t budget_bytes, size_t chunk);
/* Free every buffer; all of them must have come back. */
void bufpool_destroy(struct bufpool *p);
/* A buffer with one reference, or NULL when the budget is used up. */
struct poolbuf *bufpool_get(struct bufpool *p);
int bufpool_empty(const struct bufpool *p);
void poolbuf_ref(struct poolbuf *b);
void poolbuf_unref(struct poolbuf *b);

struct pool_reader {
	struct bufpool *pool;
	struct poolbuf *cur;         /* reads fill it; one reference held */
	size_t used;                 /* bytes of cur already read into */
	struct poolbuf *lent;        /* the buffer of the read in progress */
};

void pool_reader_init(struct pool_reader *r, struct bufpool *pool);
/* Room for the next read: *len bytes at the returned pointer, or NULL
 * when the pool is used up. */
uint8_t *pool_reader_alloc(struct pool_reader *r, size_t *len);
/* The read into that room returned nread bytes (<= 0: none). Returns the
 * buffer that holds them with a reference for the caller, or NULL. */
struct poolbuf *pool_reader_done(struct pool_reader *r, long nread);
/* Can a read get room now? */
int pool_reader_has_room(const struct pool_reader *r);
/* Give back the current buffer (the reader stops or goes away). */
void pool_reader_reset(struct pool_reader *r);

/* ---- output.c: ordered output to one side of a session: adb headers
 * (copied, 24 bytes each) and payload slices of pooled read buffers
 * (referenced, never copied), gathered into batches. A batch goes to a
 * sink in one call: uv_write on a socket, or the USB front's transfer
 * framer. Batches are recycled; a steady stream allocates nothing.
 */

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
/* Queue bytes the batch takes ownership of (freed after the write, or at
 * once when it cannot be queued); synth as for output_header. */
int output_owned(struct output *o, void *p, size_t len, int synth);
/* Submit what is queued. Returns 0 or a uv error (the socket failed). */
int output_flush(struct output *o);
/* May the side that feeds o be read on: fewer than budget bytes and fewer
 * than OUTPUT_MAX_BATCHES batches waiting to be written? */
int output_has_room(const struct output *o, size_t budget);

/* ---- splice.c: payload from one stream socket (TCP, AF_UNIX; never
 * AF_VSOCK) to another through a pipe, never through user space. The
 * pipe is empty between calls: what the destination would not take is
 * read back into the caller's buffer, for its ordinary output.
 */

#define SPLICE_CHUNK BUFPOOL_CHUNK   /* at most this much in the pipe */

struct splice_pump {
	int rd, wr;                  /* the pipe, -1 until first use */
	int failed;                  /* no pipe to be had: copy from now on */
};

struct splice_result {
	size_t in;                   /* bytes taken from the source */
	size_t out;                  /* ... of them written to the destination */
	int in_err;                  /* 0, UV_EOF, or the source's uv error */
	int out_err;                 /* 0, or the destination's uv error */
};

void splice_pump_init(struct splice_pump *sp);
/* Make the pipe if there is none: 0, or -1 (never again for this pump). */
int splice_pump_open(struct splice_pump *sp);
void splice_pump_close(struct splice_pump *sp);
/* Move up to max bytes from in_fd to out_fd, both non-blocking. The
 * in - out bytes the destination did not take are in spill (room for
 * SPLICE_CHUNK bytes) on return; nothing stays in the pipe. */
void splice_pump_move(struct splice_pump *sp, int in_fd, int out_fd, size_t max,
		      uint8_t *spill, struct splice_result *r);

#endif
