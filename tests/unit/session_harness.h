/* SPDX-License-Identifier: Apache-2.0 */
/*
 * session_harness.h - one adb-aware session (relay/session.c) run without
 * the network, shared by test_session.c (check) and fuzz_session.c
 * (libFuzzer). The harness owns the loop, the route (a session_owner whose
 * connect op makes each guest link a socketpair, or holds the connect), the
 * PC (a fake front connection that may hold its write batches) and our end
 * of the current guest link. What the relay sends either way goes to the
 * program's hooks; what they make of it (frames kept, streams checked) is
 * the program's. A broken expectation of the harness itself is a message
 * and abort(): check reports the signal as a failed test, libFuzzer as a
 * crash. It lives in tests/unit/ because it needs relay/'s private headers.
 */
#ifndef TESTS_UNIT_SESSION_HARNESS_H
#define TESTS_UNIT_SESSION_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

#include "relay/session.h"

_Noreturn void harness_failed(const char *what, const char *file, int line);
#define HARNESS_CHECK(c) do { if (!(c)) harness_failed(#c, __FILE__, __LINE__); } while (0)

/* What a program gives the harness. */
struct harness_config {
	const char *name;     /* the route's name; the PC is "<name>-pc" */
	size_t buffer;        /* the route's budget */
	int pipeline;         /* stop-and-wait streams pipelined (relay/pipeline.h) */
	/* bytes the relay sent to the PC, and on the current guest link */
	void (*to_pc)(const uint8_t *p, size_t len);
	void (*to_guest)(const uint8_t *p, size_t len);
	/* a new guest link is made (guest_fd is still the old end or -1) */
	void (*new_link)(void);
};

struct harness_connect;

/* The route: what the session told its owner, and the links it asked for. */
struct harness_route {
	struct session_owner owner;
	struct session_stats st;
	struct session *sessions;
	unsigned nsessions;
	int session_gone;                /* detached: the session is freed */
	enum guest_state guest;
	unsigned guest_reports;
	char last_error[160];
	unsigned errors;
	unsigned connects, links;        /* connects asked for, links made */
	int hold_connects;               /* connects wait until released */
	unsigned stale_asked;            /* host_stale calls */
	int stale_drop;                  /* host_stale's answer: the front drops it */
	struct harness_connect *held;    /* the connect that waits */
};

/* The PC: a front connection; its writes are done at once unless held. */
struct harness_pc {
	struct front_conn base;
	int reading, holding, closed;    /* holding: batches wait for release */
	struct output_batch *held[512];
	unsigned nheld;
	size_t held_bytes;
	uv_timer_t closer;               /* the close completes on the loop */
};

extern struct harness_route route;
extern struct harness_pc pc;
extern int guest_fd;                 /* our end of the current guest link, or -1 */

/* Init the loop, route and PC and start the session on them. */
int harness_start(const struct harness_config *cfg);
/* Close the session if it is still there (it is gone after some turns). */
void harness_close(const char *reason);
/* Hang up the guest, run the loop dry and close it: uv_loop_close()'s result. */
int harness_finish(void);

/* Run the loop n times without waiting, draining the guest link each time. */
void harness_turn(unsigned n);

/* Give the session bytes from the PC while it reads: how many it took. */
size_t harness_pc_send(const uint8_t *p, size_t len);
/* Complete the held PC batches with status. */
void harness_pc_release(int status);

/* Write to the guest link: write()'s result, or -1 when there is none. */
ssize_t harness_guest_write(const uint8_t *p, size_t len);
/* Read what the relay sent on the guest link, for to_guest. */
void harness_guest_drain(void);
/* The guest closes its end, if it has one. */
void harness_guest_hang_up(void);
/* Stop holding connects; a held one goes through now. */
void harness_release_connect(void);

#endif
