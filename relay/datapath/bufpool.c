/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bufpool.c - bounded pool of reference-counted buffers of one size (64
 * KiB, or 256 KiB for a pool one read at a time fills). Buffers are
 * allocated on first use and kept for reuse, so a steady stream allocates
 * nothing. Each is a mapping of its own, unmapped when its pool goes, so
 * the memory a transfer used goes back to the system when its session
 * ends (malloc would keep it in the heap for later). The owner destroys a
 * pool only once every buffer came back (after its handles closed, so
 * every pending write has completed). Also the pool readers (see
 * datapath.h).
 */
#include "relay/datapath/datapath.h"

#include <assert.h>
#include <stdlib.h>
#include <sys/mman.h>

/* AddressSanitizer sees overruns of what malloc gave, not of a mapping:
 * a sanitizer build keeps the buffers on the heap. */
#if defined(__SANITIZE_ADDRESS__)
#define POOL_ON_HEAP 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define POOL_ON_HEAP 1
#endif
#endif

static struct poolbuf *poolbuf_map(size_t chunk)
{
#ifdef POOL_ON_HEAP
	return malloc(sizeof(struct poolbuf) + chunk);
#else
	void *m = mmap(NULL, sizeof(struct poolbuf) + chunk, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return m == MAP_FAILED ? NULL : m;
#endif
}

static void poolbuf_unmap(struct poolbuf *b, size_t chunk)
{
#ifdef POOL_ON_HEAP
	(void)chunk;
	free(b);
#else
	munmap(b, sizeof(*b) + chunk);
#endif
}

void bufpool_init(struct bufpool *p, size_t budget_bytes, size_t chunk)
{
	p->free_list = NULL;
	p->in_use = 0;
	p->allocated = 0;
	if (chunk != BUFPOOL_BIG_CHUNK || budget_bytes / chunk < BUFPOOL_MIN_CHUNKS)
		chunk = BUFPOOL_CHUNK;
	p->chunk = chunk;
	p->limit = (unsigned)(budget_bytes / chunk);
	if (p->limit < BUFPOOL_MIN_CHUNKS)
		p->limit = BUFPOOL_MIN_CHUNKS;
}

void bufpool_destroy(struct bufpool *p)
{
	assert(p->in_use == 0);
	while (p->free_list) {
		struct poolbuf *b = p->free_list;
		p->free_list = b->next_free;
		poolbuf_unmap(b, p->chunk);
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
		b = poolbuf_map(p->chunk);
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

/* ---- pool readers ---- */

void pool_reader_init(struct pool_reader *r, struct bufpool *pool)
{
	r->pool = pool;
	r->cur = NULL;
	r->used = 0;
	r->lent = NULL;
}

static int cur_has_room(const struct pool_reader *r)
{
	return r->cur != NULL && r->pool->chunk - r->used >= BUFPOOL_MIN_READ;
}

int pool_reader_has_room(const struct pool_reader *r)
{
	return cur_has_room(r) || !bufpool_empty(r->pool);
}

uint8_t *pool_reader_alloc(struct pool_reader *r, size_t *len)
{
	if (!cur_has_room(r)) {
		pool_reader_reset(r);
		r->cur = bufpool_get(r->pool);
		if (r->cur == NULL) {
			*len = 0;
			return NULL;
		}
	}
	poolbuf_ref(r->cur);
	r->lent = r->cur;
	*len = r->pool->chunk - r->used;
	return r->cur->data + r->used;
}

struct poolbuf *pool_reader_done(struct pool_reader *r, long nread)
{
	struct poolbuf *b = r->lent;

	r->lent = NULL;
	if (b == NULL)
		return NULL;
	if (nread > 0 && b == r->cur) {
		r->used += (size_t)nread;
		/* a full buffer goes back as soon as its slices are done */
		if (!cur_has_room(r))
			pool_reader_reset(r);
	}
	return b;
}

void pool_reader_reset(struct pool_reader *r)
{
	if (r->cur != NULL)
		poolbuf_unref(r->cur);
	r->cur = NULL;
	r->used = 0;
}
