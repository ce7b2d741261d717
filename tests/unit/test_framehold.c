/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_framehold.c - a frame held until whole: the largest payload fits
 * the pool it is read into, slices of one buffer merge, the whole frame
 * goes to the output as one batch, a frame cut short gives its buffers
 * back.
 */
#include <check.h>
#include <string.h>

#include "relay/datapath/datapath.h"
#include "relay/framehold.h"
#include "tests/unit/unit.h"

START_TEST(framehold_fits_its_pool)
{
	/* a frame of the largest payload allowed never needs more buffers of
	 * a pool_reader than the pool has */
	for (unsigned limit = 2; limit <= 40; limit++) {
		uint32_t max = framehold_max_payload(limit);
		size_t fill = BUFPOOL_CHUNK - BUFPOOL_MIN_READ;
		size_t worst = 2 + (ADB_HEADER_SIZE + (size_t)max - 2) / (fill + 1);

		ck_assert_uint_ge(max, ADB_MAX_PAYLOAD_V1);
		ck_assert_uint_le(max, 256 * 1024);
		ck_assert_uint_eq(max % ADB_MAX_PAYLOAD_V1, 0);
		ck_assert_uint_le(worst, limit);
		ck_assert_uint_le(worst, FRAMEHOLD_SLICES);
	}
	ck_assert_uint_eq(framehold_max_payload(16), 256 * 1024);
}
END_TEST

static void header_of(uint32_t cmd, uint32_t len, uint8_t raw[ADB_HEADER_SIZE])
{
	struct adb_header h;

	adb_header_init(&h, cmd, 1, 2, len, 0);
	adb_header_encode(&h, raw);
}

static void done_nothing(struct output *o, int status, size_t bytes, int synth) {}

static int sink_keep(void *ctx, struct output_batch *b)
{
	struct output_batch **last = ctx;

	*last = b;
	return 0;
}

START_TEST(framehold_merges_and_releases_whole)
{
	struct bufpool p;
	struct frame_hold f;
	struct output o;
	struct output_batch *sent = NULL;
	struct poolbuf *a, *b;
	uint8_t raw[ADB_HEADER_SIZE];

	memset(&f, 0, sizeof(f));
	bufpool_init(&p, 4 * BUFPOOL_CHUNK, BUFPOOL_CHUNK);
	a = bufpool_get(&p);
	b = bufpool_get(&p);
	memset(a->data, 'a', BUFPOOL_CHUNK);
	memset(b->data, 'b', BUFPOOL_CHUNK);
	header_of(ADB_CMD_WRTE, 300, raw);
	framehold_begin(&f, raw);
	ck_assert_int_eq(framehold_add(&f, a, a->data + 10, 100), 0);
	ck_assert_int_eq(framehold_add(&f, a, a->data + 110, 100), 0);   /* merged */
	ck_assert_int_eq(framehold_add(&f, b, b->data, 100), 0);
	ck_assert_uint_eq(f.n, 2);
	ck_assert_uint_eq(f.len, 300);
	ck_assert_uint_eq(a->refs, 2);
	{
		uint8_t copy[250];

		ck_assert_uint_eq(framehold_copy(&f, copy, sizeof(copy)), 250);
		ck_assert_int_eq(copy[199], 'a');
		ck_assert_int_eq(copy[200], 'b');
	}
	output_init(&o, done_nothing, NULL);
	output_attach(&o, sink_keep, &sent);
	ck_assert_int_eq(framehold_release(&f, &o), 0);
	ck_assert(!f.active);
	ck_assert_int_eq(output_flush(&o), 0);
	ck_assert_ptr_nonnull(sent);
	ck_assert_uint_eq(sent->niov, 3);
	ck_assert_uint_eq(sent->bytes, ADB_HEADER_SIZE + 300);
	ck_assert_mem_eq(sent->iov[0].base, raw, ADB_HEADER_SIZE);
	ck_assert_uint_eq(sent->iov[1].len, 200);
	/* output_has_room counts what waits to be written */
	ck_assert(!output_has_room(&o, 300));
	ck_assert(output_has_room(&o, 400));

	/* a frame cut short: dropped, its buffers back */
	framehold_begin(&f, raw);
	ck_assert_int_eq(framehold_add(&f, b, b->data + 100, 50), 0);
	ck_assert_uint_eq(framehold_drop(&f), 50);
	ck_assert_uint_eq(b->refs, 2);   /* ours, the sent batch's */
	output_batch_done(sent, 0);
	ck_assert_uint_eq(b->refs, 1);
	ck_assert(output_has_room(&o, 1));
	output_detach(&o);
	output_destroy(&o);
	poolbuf_unref(a);
	poolbuf_unref(b);
	bufpool_destroy(&p);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("framehold");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, framehold_fits_its_pool);
	tcase_add_test(tc, framehold_merges_and_releases_whole);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
