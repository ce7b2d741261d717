/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_datapath.c - relay/datapath/: the bounded buffer pool and its
 * readers, and ordered batched output over a real socketpair on a libuv
 * loop.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include "relay/datapath/datapath.h"
#include "tests/unit/unit.h"

START_TEST(pool_is_bounded_and_reuses)
{
	struct bufpool p;
	struct poolbuf *a, *b, *c;

	bufpool_init(&p, 2 * BUFPOOL_CHUNK);
	a = bufpool_get(&p);
	b = bufpool_get(&p);
	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert(bufpool_empty(&p));
	ck_assert_ptr_null(bufpool_get(&p));
	poolbuf_ref(a);
	poolbuf_unref(a);
	ck_assert(bufpool_empty(&p)); /* still one reference */
	poolbuf_unref(a);
	ck_assert(!bufpool_empty(&p));
	c = bufpool_get(&p);
	ck_assert_ptr_eq(c, a); /* recycled, not allocated */
	ck_assert_uint_eq(p.allocated, 2);
	poolbuf_unref(b);
	poolbuf_unref(c);
	bufpool_destroy(&p);
	ck_assert_uint_eq(p.allocated, 0);
}
END_TEST

/* ---- output over a socketpair ---- */

struct sink {
	uint8_t got[1 << 20];
	size_t len;
	int done_calls;
	int last_status;
};

static void on_done(struct output *o, int status, size_t bytes, int synth)
{
	struct sink *k = o->data;

	k->done_calls++;
	k->last_status = status;
}

static void drain(int fd, struct sink *k, size_t want)
{
	while (k->len < want) {
		ssize_t n = read(fd, k->got + k->len, sizeof(k->got) - k->len);
		ck_assert_int_gt(n, 0);
		k->len += (size_t)n;
	}
}

START_TEST(output_keeps_order_and_returns_buffers)
{
	uv_loop_t loop;
	uv_pipe_t pipe;
	struct output o;
	struct bufpool pool;
	struct sink *k = calloc(1, sizeof(*k));
	int sv[2];
	uint8_t expect[1 << 16];
	size_t elen = 0;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	uv_loop_init(&loop);
	uv_pipe_init(&loop, &pipe, 0);
	ck_assert_int_eq(uv_pipe_open(&pipe, sv[0]), 0);
	bufpool_init(&pool, 4 * BUFPOOL_CHUNK);
	output_init(&o, on_done, k);
	uint8_t any[ADB_HEADER_SIZE] = { 0 };
	ck_assert_int_eq(output_header(&o, any, 0), -1); /* detached */
	output_attach_stream(&o, (uv_stream_t *)&pipe);

	struct poolbuf *b = bufpool_get(&pool);
	for (int i = 0; i < 1000; i++)
		b->data[i] = (uint8_t)(i * 7);
	/* 100 frames: more iovs than one batch holds */
	for (int f = 0; f < 100; f++) {
		struct adb_header h;
		uint8_t raw[ADB_HEADER_SIZE];

		adb_header_init(&h, ADB_CMD_WRTE, (uint32_t)f, 2, 10, 0);
		adb_header_encode(&h, raw);
		ck_assert_int_eq(output_frame(&o, &h, 0), 0);
		memcpy(expect + elen, raw, sizeof(raw));
		elen += sizeof(raw);
		ck_assert_int_eq(output_slice(&o, b, b->data + f * 10, 10), 0);
		memcpy(expect + elen, b->data + f * 10, 10);
		elen += 10;
	}
	char *owned = malloc(3);
	memcpy(owned, "abc", 3);
	ck_assert_int_eq(output_owned(&o, owned, 3), 0);
	memcpy(expect + elen, "abc", 3);
	elen += 3;
	ck_assert_int_eq(output_flush(&o), 0);
	poolbuf_unref(b);
	ck_assert(pool.in_use == 1); /* still referenced by queued writes */

	drain(sv[1], k, elen);
	uv_run(&loop, UV_RUN_NOWAIT);
	while (o.in_flight > 0)
		uv_run(&loop, UV_RUN_ONCE);
	ck_assert_uint_eq(k->len, elen);
	ck_assert_mem_eq(k->got, expect, elen);
	ck_assert_int_ge(k->done_calls, 2);
	ck_assert_int_eq(k->last_status, 0);
	ck_assert_uint_eq(pool.in_use, 0);
	ck_assert_uint_eq(o.bytes_pending, 0);

	output_detach(&o);
	output_destroy(&o);
	bufpool_destroy(&pool);
	uv_close((uv_handle_t *)&pipe, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	close(sv[1]);
	free(k);
}
END_TEST


START_TEST(pool_reader_packs_small_reads)
{
	struct bufpool p;
	struct pool_reader r;
	struct poolbuf *first = NULL;
	size_t len;
	uint8_t *room;

	bufpool_init(&p, 2 * BUFPOOL_CHUNK);
	pool_reader_init(&r, &p);
	/* 100 reads of 600 bytes land back to back in one buffer */
	for (int i = 0; i < 100; i++) {
		struct poolbuf *b;

		room = pool_reader_alloc(&r, &len);
		ck_assert_ptr_nonnull(room);
		b = pool_reader_done(&r, 600);
		if (first == NULL)
			first = b;
		ck_assert_ptr_eq(b, first);
		ck_assert_ptr_eq(room, b->data + 600 * (size_t)i);
		poolbuf_unref(b);
	}
	ck_assert_uint_eq(p.in_use, 1);
	/* less than BUFPOOL_MIN_READ left: the next read gets a new buffer and
	 * the full one goes back once nothing refers to it */
	room = pool_reader_alloc(&r, &len);
	ck_assert_uint_eq(len, BUFPOOL_CHUNK - 60000);
	poolbuf_unref(pool_reader_done(&r, (long)len - BUFPOOL_MIN_READ + 1));
	ck_assert_uint_eq(p.in_use, 0);
	room = pool_reader_alloc(&r, &len);
	ck_assert_uint_eq(len, BUFPOOL_CHUNK);
	poolbuf_unref(pool_reader_done(&r, 0));   /* nothing read: room kept */
	ck_assert(pool_reader_has_room(&r));
	pool_reader_reset(&r);
	ck_assert_uint_eq(p.in_use, 0);
	bufpool_destroy(&p);
}
END_TEST

START_TEST(pool_reader_stops_when_used_up)
{
	struct bufpool p;
	struct pool_reader r;
	struct poolbuf *held[2];
	size_t len;

	bufpool_init(&p, BUFPOOL_CHUNK);          /* rounded up to two buffers */
	ck_assert_uint_eq(p.limit, BUFPOOL_MIN_CHUNKS);
	pool_reader_init(&r, &p);
	for (int i = 0; i < 2; i++) {
		ck_assert_ptr_nonnull(pool_reader_alloc(&r, &len));
		held[i] = pool_reader_done(&r, (long)len);   /* fills it */
	}
	ck_assert(!pool_reader_has_room(&r));
	ck_assert_ptr_null(pool_reader_alloc(&r, &len));
	ck_assert_ptr_null(pool_reader_done(&r, UV_ENOBUFS));
	poolbuf_unref(held[0]);
	ck_assert(pool_reader_has_room(&r));
	poolbuf_unref(held[1]);
	pool_reader_reset(&r);
	bufpool_destroy(&p);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("datapath");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, pool_is_bounded_and_reuses);
	tcase_add_test(tc, output_keeps_order_and_returns_buffers);
	tcase_add_test(tc, pool_reader_packs_small_reads);
	tcase_add_test(tc, pool_reader_stops_when_used_up);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
