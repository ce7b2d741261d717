/* SPDX-License-Identifier: Apache-2.0 */
/*
 * streams.c - a small table of open adb streams. Sessions hold a handful
 * of streams, so a linear scan over a compact array is the right tool;
 * removal swaps the last pair in.
 */
#include "relay/streams.h"

#include <stdlib.h>
#include <string.h>

void streams_init(struct stream_table *t, size_t max)
{
	t->v = NULL;
	t->n = t->cap = 0;
	t->max = max;
}

void streams_free(struct stream_table *t)
{
	free(t->v);
	t->v = NULL;
	t->n = t->cap = 0;
}

int streams_add(struct stream_table *t, uint32_t host_id, uint32_t guest_id)
{
	if (t->n == t->max)
		return -1;
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 16;
		if (cap > t->max)
			cap = t->max;
		struct stream_pair *v = realloc(t->v, cap * sizeof(*v));
		if (v == NULL)
			return -1;
		t->v = v;
		t->cap = cap;
	}
	memset(&t->v[t->n], 0, sizeof(t->v[t->n]));
	t->v[t->n].host_id = host_id;
	t->v[t->n].guest_id = guest_id;
	t->n++;
	return 0;
}

long streams_find_host(const struct stream_table *t, uint32_t host_id)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->v[i].host_id == host_id)
			return (long)i;
	return -1;
}

long streams_find_guest(const struct stream_table *t, uint32_t guest_id)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->v[i].guest_id == guest_id)
			return (long)i;
	return -1;
}

void streams_remove_at(struct stream_table *t, size_t i)
{
	t->v[i] = t->v[--t->n];
}

void streams_clear(struct stream_table *t)
{
	t->n = 0;
}
