/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_streams.c - the session's stream table: host and guest ids paired,
 * found either way, bounded by its maximum.
 */
#include <check.h>

#include "relay/streams.h"
#include "tests/unit/unit.h"

START_TEST(streams_track_pairs)
{
	struct stream_table t;

	streams_init(&t, 3);
	ck_assert_int_eq(streams_add(&t, 1, 0), 0);
	ck_assert_int_eq(streams_add(&t, 2, 20), 0);
	ck_assert_int_eq(streams_add(&t, 0, 30), 0);
	ck_assert_int_eq(streams_add(&t, 4, 0), -1); /* max reached */
	ck_assert_int_eq(streams_find_host(&t, 2), 1);
	ck_assert_int_eq(streams_find_guest(&t, 30), 2);
	ck_assert_int_eq(streams_find_host(&t, 9), -1);
	streams_remove_at(&t, 0);
	ck_assert_uint_eq(t.n, 2);
	ck_assert_int_eq(streams_find_host(&t, 1), -1);
	ck_assert_int_ge(streams_find_guest(&t, 30), 0);
	ck_assert_int_eq(streams_add(&t, 5, 0), 0);
	streams_clear(&t);
	ck_assert_uint_eq(t.n, 0);
	streams_free(&t);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("streams");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, streams_track_pairs);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
