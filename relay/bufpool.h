/*
 * bufpool.h - a bounded pool of fixed-size, reference-counted read buffers.
 * One pool per direction of a session: while it is used up the session does
 * not read the side that fills it. A pool_reader lends the pool's buffers
 * to reads, one at a time, so that consecutive reads land back to back in
 * one buffer: data that arrives in many small reads spans few buffers.
 */
#ifndef RELAY_BUFPOOL_H
#define RELAY_BUFPOOL_H

#include <stddef.h>
#include <stdint.h>

#define BUFPOOL_CHUNK (64 * 1024)
#define BUFPOOL_MIN_CHUNKS 2          /* a pool holds at least this many */
/* A read gets the rest of the current buffer while this much is left. */
#define BUFPOOL_MIN_READ 4096

struct bufpool;

struct poolbuf {
	struct bufpool *pool;
	struct poolbuf *next_free;
	unsigned refs;
	uint8_t data[BUFPOOL_CHUNK];
};

struct bufpool {
	struct poolbuf *free_list;
	unsigned in_use;
	unsigned allocated;
	unsigned limit;              /* buffers, from the byte budget */
};

void bufpool_init(struct bufpool *p, size_t budget_bytes);
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

#endif
