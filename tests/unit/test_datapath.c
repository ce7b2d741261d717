/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_datapath.c - relay/datapath/: the bounded buffer pool and its
 * readers, and ordered batched output over a real socketpair on a libuv
 * loop.
 */
#include <check.h>
#include <fcntl.h>
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

	bufpool_init(&p, 2 * BUFPOOL_CHUNK, BUFPOOL_CHUNK);
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

/* An output on one end of a socketpair, its pool, and what the other end
 * received. */
struct rig {
	uv_loop_t loop;
	uv_pipe_t pipe;
	int peer;                     /* the other end */
	struct output o;
	struct bufpool pool;
	struct sink *k;
	uint8_t *expect;              /* what should arrive, in order */
	size_t elen;
};

static void rig_open(struct rig *r, int sndbuf)
{
	int sv[2];

	memset(r, 0, sizeof(*r));
	r->k = calloc(1, sizeof(*r->k));
	r->expect = malloc(1 << 20);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	if (sndbuf > 0)
		ck_assert_int_eq(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
	r->peer = sv[1];
	uv_loop_init(&r->loop);
	uv_pipe_init(&r->loop, &r->pipe, 0);
	ck_assert_int_eq(uv_pipe_open(&r->pipe, sv[0]), 0);
	bufpool_init(&r->pool, 4 * BUFPOOL_CHUNK, BUFPOOL_CHUNK);
	output_init(&r->o, on_done, r->k);
}

/* A WRTE of len payload bytes from b at off, as the output and the peer see it. */
static void rig_frame(struct rig *r, struct poolbuf *b, uint32_t id, size_t off, size_t len)
{
	struct adb_header h;
	uint8_t raw[ADB_HEADER_SIZE];

	adb_header_init(&h, ADB_CMD_WRTE, id, 2, (uint32_t)len, 0);
	adb_header_encode(&h, raw);
	ck_assert_int_eq(output_frame(&r->o, &h, 0), 0);
	memcpy(r->expect + r->elen, raw, sizeof(raw));
	r->elen += sizeof(raw);
	ck_assert_int_eq(output_slice(&r->o, b, b->data + off, len), 0);
	memcpy(r->expect + r->elen, b->data + off, len);
	r->elen += len;
}

/* Read at the peer and turn the loop until all came and every batch is done. */
static void rig_drain(struct rig *r)
{
	while (r->k->len < r->elen || r->o.in_flight > 0) {
		ssize_t n = recv(r->peer, r->k->got + r->k->len, sizeof(r->k->got) - r->k->len,
				 MSG_DONTWAIT);

		if (n > 0)
			r->k->len += (size_t)n;
		uv_run(&r->loop, UV_RUN_NOWAIT);
	}
	ck_assert_uint_eq(r->k->len, r->elen);
	ck_assert_mem_eq(r->k->got, r->expect, r->elen);
	ck_assert_int_eq(r->k->last_status, 0);
	ck_assert_uint_eq(r->pool.in_use, 0);
	ck_assert_uint_eq(r->o.bytes_pending, 0);
}

static void rig_close(struct rig *r)
{
	output_detach(&r->o);
	output_destroy(&r->o);
	bufpool_destroy(&r->pool);
	uv_close((uv_handle_t *)&r->pipe, NULL);
	uv_run(&r->loop, UV_RUN_DEFAULT);
	uv_loop_close(&r->loop);
	close(r->peer);
	free(r->expect);
	free(r->k);
}

START_TEST(output_keeps_order_and_returns_buffers)
{
	struct rig r;
	uint8_t any[ADB_HEADER_SIZE] = { 0 };

	rig_open(&r, 0);
	ck_assert_int_eq(output_header(&r.o, any, 0), -1); /* detached */
	output_attach_stream(&r.o, (uv_stream_t *)&r.pipe);

	struct poolbuf *b = bufpool_get(&r.pool);
	for (int i = 0; i < 1000; i++)
		b->data[i] = (uint8_t)(i * 7);
	/* 100 frames: more iovs than one batch holds */
	for (int f = 0; f < 100; f++)
		rig_frame(&r, b, (uint32_t)f, (size_t)f * 10, 10);
	char *owned = malloc(3);
	memcpy(owned, "abc", 3);
	ck_assert_int_eq(output_owned(&r.o, owned, 3, 1), 0);
	memcpy(r.expect + r.elen, "abc", 3);
	r.elen += 3;
	ck_assert_int_eq(output_flush(&r.o), 0);
	poolbuf_unref(b);
	ck_assert_uint_eq(r.pool.in_use, 1); /* still referenced by queued writes */
	rig_drain(&r);
	ck_assert_int_ge(r.k->done_calls, 2);
	rig_close(&r);
}
END_TEST

/* A socket that takes part of a batch: the rest is queued, in order, and
 * the buffers it points into stay referenced until it is written. */
START_TEST(output_finishes_a_partial_write)
{
	struct rig r;

	rig_open(&r, 4096);
	output_attach_stream(&r.o, (uv_stream_t *)&r.pipe);
	struct poolbuf *b = bufpool_get(&r.pool);
	for (size_t i = 0; i < BUFPOOL_CHUNK; i++)
		b->data[i] = (uint8_t)(i * 13 + 1);
	/* 8 frames of 8000 bytes: far more than the socket takes at once */
	for (int f = 0; f < 8; f++)
		rig_frame(&r, b, (uint32_t)f, (size_t)f * 8000, 8000);
	ck_assert_int_eq(output_flush(&r.o), 0);
	poolbuf_unref(b);
	ck_assert_uint_eq(r.o.in_flight, 1);        /* the rest waits for the socket */
	ck_assert_uint_eq(r.pool.in_use, 1);        /* and holds the buffer */
	ck_assert_int_eq(r.k->done_calls, 0);
	rig_drain(&r);
	ck_assert_int_eq(r.k->done_calls, 1);
	rig_close(&r);
}
END_TEST

START_TEST(pool_reader_packs_small_reads)
{
	struct bufpool p;
	struct pool_reader r;
	struct poolbuf *first = NULL;
	size_t len;
	uint8_t *room;

	bufpool_init(&p, 2 * BUFPOOL_CHUNK, BUFPOOL_CHUNK);
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

	bufpool_init(&p, BUFPOOL_CHUNK, BUFPOOL_CHUNK);         /* rounded up to two buffers */
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

/* A pool one read at a time fills may take 256 KiB buffers, whole, but
 * only as many as its byte budget holds: where it holds fewer than two the
 * pool keeps to 64 KiB ones, so the bound per connection stays the budget. */
START_TEST(big_buffers_only_within_the_budget)
{
	struct bufpool p;
	struct poolbuf *b;
	size_t len;
	struct pool_reader r;

	bufpool_init(&p, 1024 * 1024, BUFPOOL_BIG_CHUNK);
	ck_assert_uint_eq(p.chunk, BUFPOOL_BIG_CHUNK);
	ck_assert_uint_eq(p.limit, 4);
	b = bufpool_get(&p);
	memset(b->data, 0xa5, p.chunk);              /* all of it is there */
	poolbuf_unref(b);
	pool_reader_init(&r, &p);
	ck_assert_ptr_nonnull(pool_reader_alloc(&r, &len));
	ck_assert_uint_eq(len, BUFPOOL_BIG_CHUNK);
	poolbuf_unref(pool_reader_done(&r, 10));
	pool_reader_reset(&r);
	bufpool_destroy(&p);

	bufpool_init(&p, 2 * BUFPOOL_BIG_CHUNK - 1, BUFPOOL_BIG_CHUNK);
	ck_assert_uint_eq(p.chunk, BUFPOOL_CHUNK);
	ck_assert_uint_eq(p.limit, (2 * BUFPOOL_BIG_CHUNK - 1) / BUFPOOL_CHUNK);
	bufpool_destroy(&p);

	bufpool_init(&p, 64 * 1024 * 1024, BUFPOOL_CHUNK);
	ck_assert_uint_eq(p.chunk, BUFPOOL_CHUNK);
	bufpool_destroy(&p);
}
END_TEST

static void nonblock(int fd)
{
	ck_assert_int_eq(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
}

/* The pump moves bytes in order; what the destination cannot take goes
 * into the spill buffer, right after what it took, and the pipe is left
 * empty; the source's end is UV_EOF. */
START_TEST(splice_pump_spills_what_the_destination_refuses)
{
	enum { N = 3 * SPLICE_CHUNK };
	int src[2], dst[2], sz = 16 * 1024;
	uint8_t *in = malloc(N), *got = malloc(2 * N), *spill = malloc(SPLICE_CHUNK);
	struct splice_pump sp;
	struct splice_result r;
	size_t have = 0, taken = 0, spilled = 0;

	for (size_t i = 0; i < N; i++)
		in[i] = (uint8_t)(i * 7 + i / 251);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, src), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, dst), 0);
	ck_assert_int_eq(setsockopt(src[0], SOL_SOCKET, SO_SNDBUF, &(int){ 4 * N }, sizeof(int)), 0);
	ck_assert_int_eq(setsockopt(dst[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz)), 0);
	nonblock(src[1]);
	nonblock(dst[0]);
	nonblock(dst[1]);
	ck_assert_int_eq(write(src[0], in, N), N);
	close(src[0]);
	splice_pump_init(&sp);
	ck_assert_int_eq(splice_pump_open(&sp), 0);
	while (taken < N) {
		ssize_t n;

		splice_pump_move(&sp, src[1], dst[0], N - taken, spill, &r);
		ck_assert_int_eq(r.out_err, 0);
		ck_assert_int_eq(r.in_err, 0);
		ck_assert_uint_le(r.in - r.out, SPLICE_CHUNK);
		taken += r.in;
		/* the destination's reader takes what was spliced, then the
		 * spill follows it */
		while ((n = read(dst[1], got + have, 2 * N - have)) > 0)
			have += (size_t)n;
		memcpy(got + have, spill, r.in - r.out);
		spilled += r.in - r.out;
		have += r.in - r.out;
		ck_assert_int_eq(read(sp.rd, spill, 1), -1);   /* the pipe is empty */
	}
	ck_assert_uint_eq(have, N);
	ck_assert(memcmp(got, in, N) == 0);
	ck_assert_uint_gt(spilled, 0);
	splice_pump_move(&sp, src[1], dst[0], 100, spill, &r);
	ck_assert_int_eq(r.in_err, UV_EOF);
	ck_assert_uint_eq(r.in, 0);
	splice_pump_close(&sp);
	close(src[1]);
	close(dst[0]);
	close(dst[1]);
	free(in);
	free(got);
	free(spill);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("datapath");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, pool_is_bounded_and_reuses);
	tcase_add_test(tc, output_keeps_order_and_returns_buffers);
	tcase_add_test(tc, output_finishes_a_partial_write);
	tcase_add_test(tc, pool_reader_packs_small_reads);
	tcase_add_test(tc, pool_reader_stops_when_used_up);
	tcase_add_test(tc, big_buffers_only_within_the_budget);
	tcase_add_test(tc, splice_pump_spills_what_the_destination_refuses);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
