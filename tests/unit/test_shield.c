/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_shield.c - what a guest may send the PC (shield.c) and how peer
 * text and repeated warnings reach the log (log.c).
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "relay/shield.h"
#include "relay/sys/sys.h"
#include "tests/unit/unit.h"

#define S(str) (const uint8_t *)(str), sizeof(str)   /* with the NUL, as an OPEN */

START_TEST(guest_opens_only_where_reversed)
{
	struct shield sh;

	shield_init(&sh);
	ck_assert_int_eq(shield_guest_open(&sh, S("tcp:7000"), 0), SHIELD_NOT_REVERSED);
	shield_host_open(&sh, S("reverse:forward:tcp:6000;tcp:7000"));
	shield_host_open(&sh, S("reverse:forward:norebind:localabstract:x;tcp:7001"));
	ck_assert_int_eq(shield_guest_open(&sh, S("tcp:7000"), 0), SHIELD_PASS);
	ck_assert_int_eq(shield_guest_open(&sh, S("tcp:7001"), 0), SHIELD_PASS);
	ck_assert_int_eq(shield_guest_open(&sh, S("tcp:6000"), 0), SHIELD_NOT_REVERSED);
	ck_assert_int_eq(shield_guest_open(&sh, S("tcp:70001"), 0), SHIELD_NOT_REVERSED);
	/* rebinding moves the local end; norebind on a taken remote does not */
	shield_host_open(&sh, S("reverse:forward:tcp:6000;tcp:8000"));
	shield_host_open(&sh, S("reverse:forward:norebind:localabstract:x;tcp:9000"));
	ck_assert_int_eq(shield_guest_open(&sh, S("tcp:7000"), 0), SHIELD_NOT_REVERSED);
	ck_assert_int_eq(shield_guest_open(&sh, S("tcp:8000"), 0), SHIELD_PASS);
	ck_assert_int_eq(shield_guest_open(&sh, S("tcp:9000"), 0), SHIELD_NOT_REVERSED);
	shield_host_open(&sh, S("reverse:killforward:tcp:6000"));
	ck_assert_int_eq(shield_guest_open(&sh, S("tcp:8000"), 0), SHIELD_NOT_REVERSED);
	ck_assert_int_eq(shield_guest_open(&sh, S("tcp:7001"), 0), SHIELD_PASS);
	shield_host_open(&sh, S("reverse:killforward-all"));
	ck_assert_int_eq(shield_guest_open(&sh, S("tcp:7001"), 0), SHIELD_NOT_REVERSED);
	/* other services and malformed forwards teach nothing */
	shield_host_open(&sh, S("shell:reverse:forward:a;b"));
	shield_host_open(&sh, S("reverse:forward:no-semicolon"));
	ck_assert_uint_eq(sh.nfwd, 0);
}
END_TEST

START_TEST(guest_opens_are_bounded)
{
	struct shield sh;
	unsigned passed = 0;

	shield_init(&sh);
	shield_host_open(&sh, S("reverse:forward:tcp:1;tcp:2"));
	for (int i = 0; i < 100; i++)
		passed += shield_guest_open(&sh, S("tcp:2"), 0) == SHIELD_PASS;
	ck_assert_uint_eq(passed, SHIELD_OPENS_PENDING);
	ck_assert_int_eq(shield_guest_open(&sh, S("tcp:2"), 0), SHIELD_TOO_MANY);
	/* answered ones make room, up to the burst of the rate */
	for (int i = 0; i < 1000; i++) {
		enum shield_verdict v;

		shield_open_answered(&sh);
		v = shield_guest_open(&sh, S("tcp:2"), 0);
		if (v != SHIELD_PASS) {
			ck_assert_int_eq(v, SHIELD_TOO_FAST);
			break;
		}
		passed++;
	}
	ck_assert_uint_eq(passed, SHIELD_OPEN_BURST);
	/* a second later the rate allows SHIELD_OPEN_RATE more */
	shield_streams_gone(&sh);
	for (int i = 0; i < SHIELD_OPEN_RATE + 5; i++) {
		if (shield_guest_open(&sh, S("tcp:2"), 1000) == SHIELD_PASS)
			passed++;
		shield_open_answered(&sh);
	}
	ck_assert_uint_eq(passed, SHIELD_OPEN_BURST + SHIELD_OPEN_RATE);
}
END_TEST

START_TEST(handshakes_are_rate_limited)
{
	struct shield sh;
	int passed = 0;

	shield_init(&sh);
	for (int i = 0; i < 100; i++)
		passed += shield_guest_handshake(&sh, 5000) == SHIELD_PASS;
	ck_assert_int_eq(passed, SHIELD_HANDSHAKE_BURST);
	ck_assert_int_eq(shield_guest_handshake(&sh, 5999), SHIELD_TOO_FAST);
	ck_assert_int_eq(shield_guest_handshake(&sh, 6000), SHIELD_PASS);
}
END_TEST

/* Frames the relay takes itself cost their payload plus SHIELD_TAKEN_FRAME:
 * within the burst nothing pauses; past it, the pause is the time the rate
 * takes to pay the debt; time refills the budget up to the burst only. */
START_TEST(frames_taken_are_budgeted)
{
	struct shield sh;
	const uint32_t okays = SHIELD_TAKEN_BURST / SHIELD_TAKEN_FRAME;
	unsigned pause;

	shield_init(&sh);
	for (uint32_t i = 0; i < okays; i++)
		ck_assert_uint_eq(shield_guest_taken(&sh, 0, 1000), 0);
	/* one more frame of 1 MiB: a debt of 1 MiB + 256, 1/16 s at 16 MiB/s */
	pause = shield_guest_taken(&sh, 1u << 20, 1000);
	ck_assert_uint_ge(pause, 62);
	ck_assert_uint_le(pause, 64);
	/* after the pause the debt is paid: a small frame passes, a second
	 * burst does not (no credit beyond the burst, however long the wait) */
	ck_assert_uint_eq(shield_guest_taken(&sh, 0, 1000 + 64 + 1), 0);
	ck_assert_uint_eq(shield_guest_taken(&sh, SHIELD_TAKEN_BURST - SHIELD_TAKEN_FRAME, 1000000), 0);
	ck_assert_uint_gt(shield_guest_taken(&sh, SHIELD_TAKEN_BURST - SHIELD_TAKEN_FRAME, 1000000), 900);
}
END_TEST

START_TEST(max_payload_is_clamped)
{
	ck_assert_uint_eq(shield_max_payload(0), 4096);
	ck_assert_uint_eq(shield_max_payload(1), 4096);
	ck_assert_uint_eq(shield_max_payload(65536), 65536);
	ck_assert_uint_eq(shield_max_payload(0xffffffffu), 1024 * 1024);
}
END_TEST

START_TEST(peer_text_is_escaped)
{
	char out[64];
	const char evil[] = "dev\n<0>x\r\t\"\\\x1b\xff";

	ck_assert_uint_eq(log_escape(out, sizeof(out), evil, sizeof(evil) - 1),
			  strlen("dev\\n<0>x\\r\\t\\x22\\x5c\\x1b\\xff"));
	ck_assert_str_eq(out, "dev\\n<0>x\\r\\t\\x22\\x5c\\x1b\\xff");
	/* never past the end, never half an escape */
	ck_assert_uint_eq(log_escape(out, 6, "ab\ncd", 5), 5);
	ck_assert_str_eq(out, "ab\\nc");
	ck_assert_uint_eq(log_escape(out, 5, "a\x01", 2), 1);   /* \x01 does not fit */
	ck_assert_str_eq(out, "a");
	ck_assert_uint_eq(log_escape(out, 5, "abcdef", 6), 4);
}
END_TEST

/* Run fn with stderr in a pipe; return what was written. */
static size_t capture_stderr(void (*fn)(void), char *buf, size_t len)
{
	int p[2], saved = dup(STDERR_FILENO);
	ssize_t n;

	ck_assert_int_eq(pipe(p), 0);
	fcntl(p[1], F_SETPIPE_SZ, 1 << 20);   /* a flood the limit misses: read, not a hang */
	dup2(p[1], STDERR_FILENO);
	fn();
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(p[1]);
	n = read(p[0], buf, len - 1);
	close(p[0]);
	buf[n > 0 ? n : 0] = '\0';
	return n > 0 ? (size_t)n : 0;
}

static unsigned count(const char *hay, const char *needle)
{
	unsigned n = 0;

	for (const char *p = hay; (p = strstr(p, needle)) != NULL; p++)
		n++;
	return n;
}

static void flood(void)
{
	for (int i = 0; i < 1000; i++)
		log_limited(LOG_LVL_WARN, "route-a", "cause one", "route-a: bad thing %d", i);
	for (int i = 0; i < 3; i++)
		log_limited(LOG_LVL_WARN, "route-b", "cause one", "route-b: bad thing %d", i);
	log_limited(LOG_LVL_WARN, "route-a", "cause two", "route-a: other\nthing");
	log_limited(LOG_LVL_DEBUG, "route-a", "cause three", "route-a: below the level");
}

START_TEST(repeated_warnings_are_limited_per_scope_and_cause)
{
	static char out[65536];
	unsigned long long before = log_suppressed_total();

	log_init("test", 0);
	log_set_level(LOG_LVL_INFO);
	capture_stderr(flood, out, sizeof(out));
	ck_assert_uint_eq(count(out, "route-a: bad thing"), LOG_LIMIT_BURST);
	ck_assert_uint_eq(count(out, "route-b: bad thing"), 3);
	ck_assert_uint_eq(count(out, "route-a: other\\nthing"), 1);   /* escaped, one line */
	ck_assert_uint_eq(count(out, "\n"), LOG_LIMIT_BURST + 3 + 1);
	ck_assert_uint_eq(count(out, "below the level"), 0);
	ck_assert_uint_eq(log_suppressed_total() - before, 1000 - LOG_LIMIT_BURST);
}
END_TEST

/* 200 routes, each with a cause that repeats: twice 10 lines each */
static void flood_many_pairs(void)
{
	char scope[16];

	for (int pass = 0; pass < 2; pass++)
		for (int r = 0; r < 200; r++) {
			snprintf(scope, sizeof(scope), "route-%d", r);
			for (int i = 0; i < 10; i++)
				log_limited(LOG_LVL_WARN, scope, "many", "%s: bad thing", scope);
		}
}

/* More pairs than the limiter keeps: the limit still holds for all of
 * them (evicting a pair still in its window let it start a new burst:
 * 2000 lines here, 5 for every pair on each pass) */
START_TEST(more_pairs_than_slots_stay_limited)
{
	static char out[1 << 20];

	log_init("test", 0);
	log_set_level(LOG_LVL_INFO);
	capture_stderr(flood_many_pairs, out, sizeof(out));
	ck_assert_uint_le(count(out, "\n"), (LOG_LIMIT_PAIRS + 1) * LOG_LIMIT_BURST);
	ck_assert_uint_ge(count(out, "\n"), LOG_LIMIT_PAIRS * LOG_LIMIT_BURST);
	ck_assert_uint_eq(count(out, "route-0: bad thing"), LOG_LIMIT_BURST);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("shield");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, guest_opens_only_where_reversed);
	tcase_add_test(tc, guest_opens_are_bounded);
	tcase_add_test(tc, handshakes_are_rate_limited);
	tcase_add_test(tc, frames_taken_are_budgeted);
	tcase_add_test(tc, max_payload_is_clamped);
	tcase_add_test(tc, peer_text_is_escaped);
	tcase_add_test(tc, repeated_warnings_are_limited_per_scope_and_cause);
	tcase_add_test(tc, more_pairs_than_slots_stay_limited);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
