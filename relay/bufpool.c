/*
 * bufpool.c - bounded pool of 64 KiB reference-counted buffers. Buffers are
 * allocated on first use and kept for reuse, so a steady stream allocates
 * nothing. The owner destroys a pool only once every buffer came back
 * (after its handles closed, so every pending write has completed).
 */
#include "bufpool.h"

#include <assert.h>
#include <stdlib.h>

void bufpool_init(struct bufpool *p, size_t budget_bytes)
{
	p->free_list = NULL;
	p->in_use = 0;
	p->allocated = 0;
	p->limit = (unsigned)(budget_bytes / BUFPOOL_CHUNK);
	if (p->limit == 0)
		p->limit = 1;
}

void bufpool_destroy(struct bufpool *p)
{
	assert(p->in_use == 0);
	while (p->free_list) {
		struct poolbuf *b = p->free_list;
		p->free_list = b->next_free;
		free(b);
		p->allocated--;
	}
}

int bufpool_empty(const struct bufpool *p)
{
	return p->in_use >= p->limit;
}

struct poolbuf *bufpool_get(struct bufpool *p)
{
	struct poolbuf *b;

	if (p->in_use >= p->limit)
		return NULL;
	b = p->free_list;
	if (b != NULL) {
		p->free_list = b->next_free;
	} else {
		b = malloc(sizeof(*b));
		if (b == NULL)
			return NULL;
		b->pool = p;
		p->allocated++;
	}
	b->refs = 1;
	b->next_free = NULL;
	p->in_use++;
	return b;
}

void poolbuf_ref(struct poolbuf *b)
{
	b->refs++;
}

void poolbuf_unref(struct poolbuf *b)
{
	struct bufpool *p = b->pool;

	if (--b->refs > 0)
		return;
	p->in_use--;
	b->next_free = p->free_list;
	p->free_list = b;
}
