/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_strbuf.c - the control socket's reply buffer (relay/control/strbuf.c,
 * capped at 1 MiB by control.c): a status of any size stays within the
 * cap and, when lines were dropped, ends with the truncation mark, however
 * little room the last line left; lines before the mark are whole; a reply
 * that fits is not marked; JSON escaping stays within the cap too.
 */
#include <check.h>
#include <string.h>

#include "relay/control/strbuf.h"
#include "tests/unit/unit.h"

#define REPLY_MAX (1024 * 1024)      /* control.c's CONTROL_REPLY_MAX */
#define MARK "\n(truncated)\n"

static struct strbuf b;

static void teardown(void)
{
	strbuf_free(&b);
}

/* Every line before the mark is one of ours, whole. */
static void check_lines(const char *s, size_t len, size_t line_len)
{
	for (size_t i = 0; i < len; i += line_len) {
		ck_assert_uint_le(i + line_len, len);
		ck_assert_int_eq(s[i + line_len - 1], '\n');
	}
}

static void check_marked(size_t line_len)
{
	size_t n = strlen(MARK);

	ck_assert_int_eq(b.truncated, 1);
	ck_assert_uint_lt(b.len, REPLY_MAX);           /* with its NUL */
	ck_assert_uint_le(b.cap, REPLY_MAX);
	ck_assert_uint_ge(b.len, n);
	ck_assert_mem_eq(b.s + b.len - n, MARK, n);
	ck_assert_int_eq(b.s[b.len], '\0');
	check_lines(b.s, b.len - n, line_len);
}

/* 2 MiB of 100-byte lines: 1 MiB of them, then the mark. */
START_TEST(huge_status_is_capped_and_marked)
{
	char line[101];

	memset(line, 'r', 99);
	line[99] = '\n';
	line[100] = '\0';
	strbuf_init(&b, REPLY_MAX);
	for (int i = 0; i < 2 * REPLY_MAX / 100; i++)
		strbuf_printf(&b, "%s", line);
	strbuf_end(&b, MARK);
	check_marked(100);
	ck_assert_uint_gt(b.len, REPLY_MAX - 200);
}
END_TEST

/* The last line that fit left less room than the mark needs: it gives
 * way, whole, to the mark. */
START_TEST(mark_fits_however_little_room_is_left)
{
	size_t line_len = 4096;
	char line[4097];

	memset(line, 's', line_len - 1);
	line[line_len - 1] = '\n';
	line[line_len] = '\0';
	strbuf_init(&b, REPLY_MAX);
	/* 255 lines of 4 KiB, then one that leaves 4 bytes (with the NUL) */
	for (int i = 0; i < 255; i++)
		strbuf_printf(&b, "%s", line);
	line[line_len - 4 - 1] = '\n';
	line[line_len - 4] = '\0';
	strbuf_printf(&b, "%s", line);
	ck_assert_uint_eq(b.len, REPLY_MAX - 4);
	ck_assert_int_eq(b.truncated, 0);
	strbuf_printf(&b, "one more line\n");
	ck_assert_int_eq(b.truncated, 1);
	strbuf_end(&b, MARK);
	ck_assert_uint_eq(b.len, 255 * line_len + strlen(MARK));
	check_marked(line_len);
}
END_TEST

START_TEST(reply_that_fits_is_not_marked)
{
	strbuf_init(&b, REPLY_MAX);
	strbuf_printf(&b, "route a: up\n");
	strbuf_end(&b, MARK);
	ck_assert_int_eq(b.truncated, 0);
	ck_assert_str_eq(b.s, "route a: up\n");
}
END_TEST

/* JSON strings escaped past the cap: dropped, marked like the rest. */
START_TEST(json_escapes_stay_within_the_cap)
{
	static char s[4096];

	memset(s, '\x01', sizeof(s) - 1);          /* six bytes each escaped */
	strbuf_init(&b, REPLY_MAX);
	for (int i = 0; i < 64; i++) {
		strbuf_json_str(&b, s);
		strbuf_printf(&b, "\n");
	}
	strbuf_end(&b, MARK);
	ck_assert_int_eq(b.truncated, 1);
	ck_assert_uint_lt(b.len, REPLY_MAX);
	ck_assert_mem_eq(b.s + b.len - strlen(MARK), MARK, strlen(MARK));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("strbuf");
	TCase *tc = tcase_create("cap");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_add_test(tc, huge_status_is_capped_and_marked);
	tcase_add_test(tc, mark_fits_however_little_room_is_left);
	tcase_add_test(tc, reply_that_fits_is_not_marked);
	tcase_add_test(tc, json_escapes_stay_within_the_cap);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
