/*
 * bufpool.h - a bounded pool of fixed-size, reference-counted read buffers.
 * One pool per direction of a session: while it is used up the session does
 * not read the side that fills it.
 */
#ifndef RELAY_BUFPOOL_H
#define RELAY_BUFPOOL_H

#include <stddef.h>
#include <stdint.h>

#define BUFPOOL_CHUNK (64 * 1024)

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

#endif
