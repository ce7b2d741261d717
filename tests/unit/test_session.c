/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_session.c - the adb-aware session without the network or a route:
 * the PC, the route and the guest links are the session harness's
 * (tests/unit/session_harness.h): each guest link a socketpair, or a
 * connect held, for a guest that does not answer yet. Checks guest loss
 * (CLSE for every open stream, OPENs refused while down, the PC's
 * connection kept), CNXN replay and which new-link CNXNs reach the PC,
 * guest OPENs refused unless to a reverse forward's local end, and stream
 * tracking (stale frames dropped and counted; delayed_ack windows, lies
 * included, passed on uninterpreted), and pipelined stop-and-wait streams
 * (one frame beyond the receiver's OKAY, CLSE after the held frame, guest
 * loss with frames held, delayed_ack and `pipeline off` untouched, senders
 * that do not wait, the slots that bound what is held). STLS from either
 * side ends the session; a first PC frame that is not CNXN is dropped, or
 * ends the session when the front makes the PC drop its transport; OPENs
 * past max-streams get CLSE; a PC that never reads stops the relay
 * reading the guest at `buffer`.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adbproto/adbproto.h"
#include "relay/session.h"
#include "tests/unit/session_harness.h"
#include "tests/unit/unit.h"

#define HOST_BANNER "host::features=shell_v2,cmd"
#define BANNER_A "device::ro.product.name=vm;ro.product.model=m;ro.product.device=vm;features="
#define BANNER_B "device::ro.product.name=other;ro.product.model=m;ro.product.device=other;features="
#define HOST_ID 7
#define GUEST_ID 11

/* ---- what each side received ---- */

struct seen {
	uint32_t cmd, arg0, arg1;
	uint8_t payload[ADB_HANDSHAKE_MAX];
	size_t len;
};

struct view {
	struct adb_reader rd;
	struct seen f[64];
	unsigned n;           /* frames whole */
	struct seen cur;
};

static void view_init(struct view *v)
{
	memset(v, 0, sizeof(*v));
	adb_reader_init(&v->rd, ADB_MAX_PAYLOAD);
}

static void view_feed(struct view *v, const uint8_t *p, size_t len)
{
	struct adb_frame_event fe;
	enum adb_reader_event ev;

	while ((ev = adb_reader_next(&v->rd, &p, &len, &fe)) != ADB_EV_NEED_MORE) {
		ck_assert_int_ne(ev, ADB_EV_ERROR);
		if (ev == ADB_EV_HEADER) {
			memset(&v->cur, 0, sizeof(v->cur));
			v->cur.cmd = fe.header.command;
			v->cur.arg0 = fe.header.arg0;
			v->cur.arg1 = fe.header.arg1;
		} else if (ev == ADB_EV_PAYLOAD) {
			size_t n = fe.len;

			if (v->cur.len + n > sizeof(v->cur.payload))
				n = sizeof(v->cur.payload) - v->cur.len;
			memcpy(v->cur.payload + v->cur.len, fe.data, n);
			v->cur.len += n;
		} else if (ev == ADB_EV_END) {
			ck_assert_uint_lt(v->n, 64);
			v->f[v->n++] = v->cur;
		}
	}
}

static unsigned count(const struct view *v, uint32_t cmd)
{
	unsigned n = 0;

	for (unsigned i = 0; i < v->n; i++)
		n += v->f[i].cmd == cmd;
	return n;
}

static const struct seen *last(const struct view *v, uint32_t cmd)
{
	for (unsigned i = v->n; i-- > 0;)
		if (v->f[i].cmd == cmd)
			return &v->f[i];
	return NULL;
}

/* ---- the harness, its bytes kept in views ---- */

static struct view pc_view;     /* what the relay sent to the PC */
static struct view guest_view;  /* what the relay sent on the current link */

static size_t pc_bytes;          /* all the relay sent to the PC */
static int pc_bytes_only;        /* more frames than a view keeps: count them */

static void to_pc(const uint8_t *p, size_t len)
{
	pc_bytes += len;
	if (!pc_bytes_only)
		view_feed(&pc_view, p, len);
}
static void to_guest(const uint8_t *p, size_t len) { view_feed(&guest_view, p, len); }

/* A new link comes only after the test hung up the old one. */
static void new_link(void)
{
	ck_assert_int_eq(guest_fd, -1);
	view_init(&guest_view);
}

static const struct harness_config harness = {
	.name = "test",
	.buffer = 256 * 1024,
	.to_pc = to_pc,
	.to_guest = to_guest,
	.new_link = new_link,
};

static void guest_hang_up(void)
{
	ck_assert_int_ge(guest_fd, 0);
	harness_guest_hang_up();
}

/* ---- frames and turns ---- */

static size_t frame(uint8_t *out, uint32_t cmd, uint32_t arg0, uint32_t arg1, const char *payload)
{
	size_t len = payload ? strlen(payload) : 0;
	struct adb_header h;

	adb_header_init(&h, cmd, arg0, arg1, (uint32_t)len, len ? adb_checksum(0, payload, len) : 0);
	adb_header_encode(&h, out);
	if (len > 0)
		memcpy(out + ADB_HEADER_SIZE, payload, len);
	return ADB_HEADER_SIZE + len;
}

static void turn(void)
{
	harness_turn(5);
}

/* Run the loop until cond holds (at most about a second). */
#define SPIN_UNTIL(cond) do { \
		for (int spin_ = 0; spin_ < 1000 && !(cond); spin_++) { \
			turn(); \
			usleep(1000); \
		} \
		ck_assert_msg((cond), "timed out waiting for %s", #cond); \
	} while (0)

static void pc_send(uint32_t cmd, uint32_t arg0, uint32_t arg1, const char *payload)
{
	uint8_t buf[ADB_HEADER_SIZE + 2 * ADB_HANDSHAKE_MAX];
	size_t len = frame(buf, cmd, arg0, arg1, payload);

	ck_assert(pc.reading);
	ck_assert_uint_eq(harness_pc_send(buf, len), len);
	turn();
}

static void guest_send(uint32_t cmd, uint32_t arg0, uint32_t arg1, const char *payload)
{
	uint8_t buf[ADB_HEADER_SIZE + ADB_HANDSHAKE_MAX];
	size_t len = frame(buf, cmd, arg0, arg1, payload);

	ck_assert_int_ge(guest_fd, 0);
	ck_assert_int_eq(harness_guest_write(buf, len), (ssize_t)len);
	turn();
}

/* ---- the fixture ---- */

static void setup(void)
{
	view_init(&pc_view);
	ck_assert_int_eq(harness_start(&harness), 0);
	ck_assert_uint_eq(route.nsessions, 1);
}

static void teardown(void)
{
	harness_close("end of test");
	SPIN_UNTIL(route.session_gone);
	ck_assert_int_eq(harness_finish(), 0);
}

/* The PC connects; the first link answers with banner at max payload mp. */
static void first_link(const char *banner, uint32_t mp)
{
	pc_send(ADB_CMD_CNXN, ADB_VERSION, ADB_MAX_PAYLOAD, HOST_BANNER);
	SPIN_UNTIL(route.links == 1 && count(&guest_view, ADB_CMD_CNXN) == 1);
	guest_send(ADB_CMD_CNXN, ADB_VERSION, mp, banner);
	SPIN_UNTIL(count(&pc_view, ADB_CMD_CNXN) == 1);
	ck_assert_int_eq(route.guest, GUEST_UP);
}

/* A stream the PC opened, answered by the guest. */
static void open_stream(void)
{
	unsigned okays = count(&pc_view, ADB_CMD_OKAY);

	pc_send(ADB_CMD_OPEN, HOST_ID, 0, "shell:true");
	SPIN_UNTIL(count(&guest_view, ADB_CMD_OPEN) == 1);
	guest_send(ADB_CMD_OKAY, GUEST_ID, HOST_ID, NULL);
	SPIN_UNTIL(count(&pc_view, ADB_CMD_OKAY) == okays + 1);
}

/* The guest dies; the relay closes the stream towards the PC and makes a
 * new link, on which it replays the PC's CNXN. */
static void restart(void)
{
	unsigned n = route.links, clse = count(&pc_view, ADB_CMD_CLSE);

	guest_hang_up();
	SPIN_UNTIL(route.links == n + 1 && count(&guest_view, ADB_CMD_CNXN) == 1);
	ck_assert_uint_eq(count(&pc_view, ADB_CMD_CLSE), clse + 1);   /* the one open stream */
	ck_assert_uint_eq(last(&guest_view, ADB_CMD_CNXN)->len, strlen(HOST_BANNER));
}

/* Is the session online towards the guest? A PC OPEN reaches it. */
static int guest_gets_open(void)
{
	unsigned opens = count(&guest_view, ADB_CMD_OPEN);

	pc_send(ADB_CMD_OPEN, HOST_ID + 1, 0, "shell:echo");
	for (int i = 0; i < 200 && count(&guest_view, ADB_CMD_OPEN) == opens; i++) {
		turn();
		usleep(1000);
	}
	return count(&guest_view, ADB_CMD_OPEN) == opens + 1;
}

START_TEST(same_cnxn_absorbed)
{
	unsigned frames_to_pc;

	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	open_stream();
	restart();
	ck_assert_int_ne(route.guest, GUEST_UP);
	frames_to_pc = pc_view.n;
	guest_send(ADB_CMD_CNXN, ADB_VERSION, ADB_MAX_PAYLOAD, BANNER_A);
	SPIN_UNTIL(route.guest == GUEST_UP);
	turn();
	ck_assert_uint_eq(count(&pc_view, ADB_CMD_CNXN), 1);
	ck_assert_uint_eq(pc_view.n, frames_to_pc);   /* the PC sees nothing */
	ck_assert_uint_eq(route.st.reconnects, 1);
	ck_assert(guest_gets_open());
	/* and once more: a third link the same */
	guest_send(ADB_CMD_OKAY, GUEST_ID, HOST_ID + 1, NULL);
	restart();
	guest_send(ADB_CMD_CNXN, ADB_VERSION, ADB_MAX_PAYLOAD, BANNER_A);
	SPIN_UNTIL(route.guest == GUEST_UP);
	turn();
	ck_assert_uint_eq(count(&pc_view, ADB_CMD_CNXN), 1);
	ck_assert_uint_eq(route.st.reconnects, 2);
}
END_TEST

START_TEST(changed_banner_passed_on)
{
	const struct seen *c;

	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	open_stream();
	restart();
	guest_send(ADB_CMD_CNXN, ADB_VERSION, ADB_MAX_PAYLOAD, BANNER_B);
	SPIN_UNTIL(count(&pc_view, ADB_CMD_CNXN) == 2);
	c = last(&pc_view, ADB_CMD_CNXN);
	ck_assert_uint_eq(c->len, strlen(BANNER_B));
	ck_assert(memcmp(c->payload, BANNER_B, c->len) == 0);
	ck_assert_uint_eq(route.st.reconnects, 1);
	ck_assert(guest_gets_open());
	/* the PC now has B: B again on the next link is absorbed */
	guest_send(ADB_CMD_OKAY, GUEST_ID, HOST_ID + 1, NULL);
	restart();
	guest_send(ADB_CMD_CNXN, ADB_VERSION, ADB_MAX_PAYLOAD, BANNER_B);
	SPIN_UNTIL(route.guest == GUEST_UP);
	turn();
	ck_assert_uint_eq(count(&pc_view, ADB_CMD_CNXN), 2);
}
END_TEST

START_TEST(max_payload_compared_after_clamp)
{
	first_link(BANNER_A, 1);              /* presented to the PC as 4096 */
	ck_assert_uint_eq(last(&pc_view, ADB_CMD_CNXN)->arg1, ADB_MAX_PAYLOAD_V1);
	open_stream();
	restart();
	guest_send(ADB_CMD_CNXN, ADB_VERSION, ADB_MAX_PAYLOAD_V1, BANNER_A);
	SPIN_UNTIL(route.guest == GUEST_UP);
	turn();
	ck_assert_uint_eq(count(&pc_view, ADB_CMD_CNXN), 1);
	open_stream();
	restart();
	guest_send(ADB_CMD_CNXN, ADB_VERSION, 16 * 1024, BANNER_A);
	SPIN_UNTIL(count(&pc_view, ADB_CMD_CNXN) == 2);
	ck_assert_uint_eq(last(&pc_view, ADB_CMD_CNXN)->arg1, 16 * 1024);
}
END_TEST

START_TEST(version_compared)
{
	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	open_stream();
	restart();
	guest_send(ADB_CMD_CNXN, ADB_VERSION_MIN, ADB_MAX_PAYLOAD, BANNER_A);
	SPIN_UNTIL(count(&pc_view, ADB_CMD_CNXN) == 2);
	ck_assert_uint_eq(last(&pc_view, ADB_CMD_CNXN)->arg0, ADB_VERSION_MIN);
}
END_TEST

START_TEST(host_cnxn_is_owed_an_answer)
{
	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	open_stream();
	/* the link goes down and the PC starts over meanwhile */
	guest_hang_up();
	pc_send(ADB_CMD_CNXN, ADB_VERSION, ADB_MAX_PAYLOAD, HOST_BANNER);
	SPIN_UNTIL(route.links == 2 && count(&guest_view, ADB_CMD_CNXN) == 1);
	guest_send(ADB_CMD_CNXN, ADB_VERSION, ADB_MAX_PAYLOAD, BANNER_A);
	SPIN_UNTIL(count(&pc_view, ADB_CMD_CNXN) == 2);
}
END_TEST

START_TEST(cnxn_after_auth_passed_on)
{
	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	open_stream();
	restart();
	guest_send(ADB_CMD_AUTH, 1, 0, "01234567890123456789");
	SPIN_UNTIL(count(&pc_view, ADB_CMD_AUTH) == 1);
	guest_send(ADB_CMD_CNXN, ADB_VERSION, ADB_MAX_PAYLOAD, BANNER_A);
	SPIN_UNTIL(count(&pc_view, ADB_CMD_CNXN) == 2);
}
END_TEST

START_TEST(repeat_on_one_link_passed_on)
{
	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	guest_send(ADB_CMD_CNXN, ADB_VERSION, ADB_MAX_PAYLOAD, BANNER_A);
	SPIN_UNTIL(count(&pc_view, ADB_CMD_CNXN) == 2);
}
END_TEST

START_TEST(cnxn_cut_short_then_same)
{
	uint8_t buf[ADB_HEADER_SIZE + 128];
	size_t len;

	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	open_stream();
	restart();
	/* half a CNXN, then the link is lost: not online, nothing to the PC */
	len = frame(buf, ADB_CMD_CNXN, ADB_VERSION, ADB_MAX_PAYLOAD, BANNER_A);
	ck_assert_int_eq(write(guest_fd, buf, len - 10), (ssize_t)(len - 10));
	turn();
	ck_assert_int_ne(route.guest, GUEST_UP);
	guest_hang_up();
	SPIN_UNTIL(route.links == 3 && count(&guest_view, ADB_CMD_CNXN) == 1);
	ck_assert_uint_eq(route.st.cut_frames, 1);
	guest_send(ADB_CMD_CNXN, ADB_VERSION, ADB_MAX_PAYLOAD, BANNER_A);
	SPIN_UNTIL(route.guest == GUEST_UP);
	turn();
	ck_assert_uint_eq(count(&pc_view, ADB_CMD_CNXN), 1);
}
END_TEST

/* ---- helpers for the tests below ---- */

static struct session *sess(void)
{
	ck_assert_ptr_nonnull(route.sessions);
	return route.sessions;
}

/* The i-th frame of cmd in v. */
static const struct seen *nth(const struct view *v, uint32_t cmd, unsigned i)
{
	for (unsigned k = 0; k < v->n; k++)
		if (v->f[k].cmd == cmd && i-- == 0)
			return &v->f[k];
	return NULL;
}

static int has_frame(const struct view *v, uint32_t cmd, uint32_t arg0, uint32_t arg1)
{
	for (unsigned k = 0; k < v->n; k++)
		if (v->f[k].cmd == cmd && v->f[k].arg0 == arg0 && v->f[k].arg1 == arg1)
			return 1;
	return 0;
}

/* The PC opens host_id, the guest answers with guest_id. */
static void open_pair(uint32_t host_id, uint32_t guest_id, const char *service)
{
	unsigned opens = count(&guest_view, ADB_CMD_OPEN), okays = count(&pc_view, ADB_CMD_OKAY);

	pc_send(ADB_CMD_OPEN, host_id, 0, service);
	SPIN_UNTIL(count(&guest_view, ADB_CMD_OPEN) == opens + 1);
	guest_send(ADB_CMD_OKAY, guest_id, host_id, NULL);
	SPIN_UNTIL(count(&pc_view, ADB_CMD_OKAY) == okays + 1);
	ck_assert(has_frame(&pc_view, ADB_CMD_OKAY, guest_id, host_id));
}

/* Let the loop run a while: nothing more is expected to happen. */
static void settle(void)
{
	for (int i = 0; i < 20; i++) {
		turn();
		usleep(500);
	}
}

/* ---- guest loss ---- */

START_TEST(guest_loss_closes_every_stream)
{
	unsigned clse;

	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	open_pair(HOST_ID, GUEST_ID, "shell:a");
	open_pair(HOST_ID + 1, GUEST_ID + 1, "shell:b");
	pc_send(ADB_CMD_OPEN, HOST_ID + 2, 0, "shell:c");    /* not answered yet */
	SPIN_UNTIL(count(&guest_view, ADB_CMD_OPEN) == 3);
	ck_assert_uint_eq(sess()->streams.n, 3);
	clse = count(&pc_view, ADB_CMD_CLSE);
	ck_assert_uint_eq(clse, 0);

	route.hold_connects = 1;
	guest_hang_up();
	SPIN_UNTIL(route.guest == GUEST_DOWN && route.held != NULL);
	settle();
	/* one CLSE per stream, as the guest would have sent it */
	ck_assert_uint_eq(count(&pc_view, ADB_CMD_CLSE), 3);
	ck_assert(has_frame(&pc_view, ADB_CMD_CLSE, GUEST_ID, HOST_ID));
	ck_assert(has_frame(&pc_view, ADB_CMD_CLSE, GUEST_ID + 1, HOST_ID + 1));
	ck_assert(has_frame(&pc_view, ADB_CMD_CLSE, 0, HOST_ID + 2));
	ck_assert_uint_eq(sess()->streams.n, 0);
	/* the PC's connection stays; the loss is the route's error */
	ck_assert(!pc.closed);
	ck_assert(!route.session_gone);
	ck_assert(pc.reading);
	ck_assert_ptr_nonnull(strstr(route.last_error, "guest link lost"));
	ck_assert_uint_eq(count(&pc_view, ADB_CMD_CNXN), 1);

	/* the next link is online again for the same PC */
	harness_release_connect();
	SPIN_UNTIL(route.links == 2 && count(&guest_view, ADB_CMD_CNXN) == 1);
	guest_send(ADB_CMD_CNXN, ADB_VERSION, ADB_MAX_PAYLOAD, BANNER_A);
	SPIN_UNTIL(route.guest == GUEST_UP);
	ck_assert(guest_gets_open());
	ck_assert_uint_eq(count(&pc_view, ADB_CMD_CLSE), 3);  /* no more of them */
}
END_TEST

START_TEST(opens_refused_while_down)
{
	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	route.hold_connects = 1;
	guest_hang_up();
	SPIN_UNTIL(route.guest == GUEST_DOWN && route.held != NULL);

	/* no guest link at all: CLSE at once */
	pc_send(ADB_CMD_OPEN, 20, 0, "shell:down");
	SPIN_UNTIL(count(&pc_view, ADB_CMD_CLSE) == 1);
	ck_assert(has_frame(&pc_view, ADB_CMD_CLSE, 0, 20));
	ck_assert_uint_eq(route.st.refused_opens, 1);

	/* a link, but the guest has not answered the CNXN yet: the same */
	harness_release_connect();
	SPIN_UNTIL(route.links == 2 && count(&guest_view, ADB_CMD_CNXN) == 1);
	ck_assert_int_eq(route.guest, GUEST_CONNECTING);
	pc_send(ADB_CMD_OPEN, 21, 0, "shell:connecting");
	SPIN_UNTIL(count(&pc_view, ADB_CMD_CLSE) == 2);
	ck_assert(has_frame(&pc_view, ADB_CMD_CLSE, 0, 21));
	ck_assert_uint_eq(route.st.refused_opens, 2);
	settle();
	ck_assert_uint_eq(count(&guest_view, ADB_CMD_OPEN), 0);   /* none reached it */
	ck_assert_uint_eq(sess()->streams.n, 0);
	ck_assert(!pc.closed);

	/* online: OPENs go through again */
	guest_send(ADB_CMD_CNXN, ADB_VERSION, ADB_MAX_PAYLOAD, BANNER_A);
	SPIN_UNTIL(route.guest == GUEST_UP);
	ck_assert(guest_gets_open());
	ck_assert_uint_eq(route.st.refused_opens, 2);
}
END_TEST

START_TEST(no_guest_link_before_host_cnxn)
{
	pc_send(ADB_CMD_OPEN, 20, 0, "shell:early");
	SPIN_UNTIL(count(&pc_view, ADB_CMD_CLSE) == 1);
	ck_assert(has_frame(&pc_view, ADB_CMD_CLSE, 0, 20));
	ck_assert_uint_eq(route.st.refused_opens, 1);
	settle();
	ck_assert_uint_eq(route.connects, 0);
	pc_send(ADB_CMD_CNXN, ADB_VERSION, ADB_MAX_PAYLOAD, HOST_BANNER);
	SPIN_UNTIL(route.links == 1);
	ck_assert_uint_eq(route.connects, 1);
}
END_TEST

/* ---- restarts the PC asked for (guest-restart) ---- */

/* The PC opens host_id to service; the guest answers it with reply and
 * closes it, as adbd's root:, unroot:, tcpip: and usb: do. */
static void service_replies(uint32_t host_id, const char *service, const char *reply)
{
	open_pair(host_id, host_id + 100, service);
	if (reply != NULL)
		guest_send(ADB_CMD_WRTE, host_id + 100, host_id, reply);
	guest_send(ADB_CMD_CLSE, host_id + 100, host_id, NULL);
	SPIN_UNTIL(has_frame(&pc_view, ADB_CMD_CLSE, host_id + 100, host_id));
}

/* The guest goes away: did the PC see it (its connection ended) or not
 * (a new link, the PC's connection kept)? */
static int restart_seen_by_pc(void)
{
	unsigned n = route.links;

	guest_hang_up();
	for (int i = 0; i < 1000 && !pc.closed && route.links == n; i++) {
		turn();
		usleep(1000);
	}
	ck_assert_msg(pc.closed || route.links == n + 1, "neither closed nor reconnected");
	return pc.closed;
}

START_TEST(root_restart_is_shown)
{
	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	service_replies(30, "root:", "restarting adbd as root\n");
	ck_assert(restart_seen_by_pc());
	ck_assert_uint_eq(route.st.restarts_shown, 1);
	SPIN_UNTIL(route.session_gone);
}
END_TEST

/* "adbd is already running as root" restarts nothing: a loss after it is
 * one nobody asked for */
START_TEST(root_without_restart_is_hidden)
{
	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	service_replies(30, "root:", "adbd is already running as root\n");
	service_replies(31, "unroot:", "adbd not running as root\n");
	service_replies(32, "tcpip:0", "invalid port 0\n");
	ck_assert(!restart_seen_by_pc());
	ck_assert_uint_eq(route.st.restarts_shown, 0);
}
END_TEST

START_TEST(unroot_tcpip_usb_restarts_are_shown)
{
	static const char *const asks[][2] = {
		{ "unroot:", "restarting adbd as non root\n" },
		{ "tcpip:5555", "restarting in TCP mode port: 5555\n" },
		{ "usb:", "restarting in USB mode\n" },
	};

	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	service_replies(30, asks[_i][0], asks[_i][1]);
	ck_assert(restart_seen_by_pc());
	ck_assert_uint_eq(route.st.restarts_shown, 1);
}
END_TEST

/* reboot:, remount: and reconnect ask by being opened: the guest may go
 * before it answers at all */
START_TEST(reboot_is_shown_at_open)
{
	static const char *const asks[] = { "reboot:", "reboot:bootloader", "remount:", "reconnect" };

	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	pc_send(ADB_CMD_OPEN, 30, 0, asks[_i]);
	SPIN_UNTIL(count(&guest_view, ADB_CMD_OPEN) == 1);
	ck_assert(restart_seen_by_pc());
	ck_assert_uint_eq(route.st.restarts_shown, 1);
}
END_TEST

/* a service that merely starts like one asks nothing */
START_TEST(lookalike_services_ask_nothing)
{
	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	pc_send(ADB_CMD_OPEN, 30, 0, "reconnect-offline");
	pc_send(ADB_CMD_OPEN, 31, 0, "shell:reboot:");
	pc_send(ADB_CMD_OPEN, 32, 0, "rootx:");
	SPIN_UNTIL(count(&guest_view, ADB_CMD_OPEN) == 3);
	ck_assert(!restart_seen_by_pc());
}
END_TEST

START_TEST(show_shows_every_restart)
{
	route.owner.guest_restart = GUEST_RESTART_SHOW;
	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	open_stream();
	ck_assert(restart_seen_by_pc());
	ck_assert_uint_eq(route.st.restarts_shown, 1);
}
END_TEST

START_TEST(hide_hides_asked_restarts)
{
	route.owner.guest_restart = GUEST_RESTART_HIDE;
	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	service_replies(30, "root:", "restarting adbd as root\n");
	ck_assert(!restart_seen_by_pc());
	ck_assert_uint_eq(route.st.restarts_shown, 0);
	ck_assert(!pc.closed);
}
END_TEST

/* adbd on its wireless-debugging port answers CNXN with STLS, and TLS
 * records follow: refused on purpose, one reason the status shows */
START_TEST(guest_stls_refused)
{
	pc_send(ADB_CMD_CNXN, ADB_VERSION, ADB_MAX_PAYLOAD, HOST_BANNER);
	SPIN_UNTIL(route.links == 1 && count(&guest_view, ADB_CMD_CNXN) == 1);
	guest_send(ADB_CMD_STLS, 0x01000000, 0, NULL);
	SPIN_UNTIL(route.session_gone);
	ck_assert_int_eq(route.guest, GUEST_DOWN);
	ck_assert_ptr_nonnull(strstr(route.last_error, "the guest asked for TLS (wireless debugging port?)"));
	ck_assert_ptr_nonnull(strstr(route.last_error, "tcp:5555 or vsock:5555"));
	ck_assert_uint_eq(count(&pc_view, ADB_CMD_STLS), 0);
}
END_TEST

/* STLS from the PC is out of protocol (adb's host sends it only in answer
 * to a device's, and the relay passes none): the session ends with the
 * reason, nothing of it or the TLS after it reaches the guest. */
START_TEST(pc_stls_closes_the_session)
{
	static const uint8_t tls_hello[] = { 0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00, 0x00 };
	unsigned errors;

	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	errors = route.errors;
	pc_send(ADB_CMD_STLS, 0x01000000, 0, NULL);
	harness_pc_send(tls_hello, sizeof(tls_hello));
	SPIN_UNTIL(route.session_gone);
	ck_assert_uint_eq(count(&guest_view, ADB_CMD_STLS), 0);
	ck_assert_uint_eq(route.errors, errors + 1);
	ck_assert_uint_eq(route.st.errors, 1);
	ck_assert_ptr_nonnull(strstr(route.last_error, "the PC asked for TLS, which the relay does "
				     "not pass"));
	ck_assert(pc.closed);
}
END_TEST

/* A first PC frame that is not CNXN (a USB host that kept its transport
 * from an ended session): the front is asked once to make the PC drop it;
 * when it does (USB), the session ends at that frame's end, nothing goes
 * to the guest. */
START_TEST(stale_first_frame_ends_the_session)
{
	route.stale_drop = 1;
	pc_send(ADB_CMD_OPEN, 7, 0, "shell:");
	SPIN_UNTIL(route.session_gone);
	ck_assert_uint_eq(route.stale_asked, 1);
	ck_assert_uint_eq(route.links, 0);
	ck_assert_uint_eq(count(&guest_view, ADB_CMD_OPEN), 0);
	ck_assert(pc.closed);
}
END_TEST

/* When the front cannot make the PC drop it (TCP), the stale frames are
 * dropped and the session waits for a CNXN; the front is asked once. */
START_TEST(stale_first_frames_dropped_until_cnxn)
{
	route.stale_drop = 0;
	pc_send(ADB_CMD_WRTE, 7, 9, "data");
	pc_send(ADB_CMD_OKAY, 7, 9, NULL);
	ck_assert_uint_eq(route.stale_asked, 1);
	ck_assert_uint_eq(route.st.stale_dropped, 2);
	ck_assert(!route.session_gone);
	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	ck_assert_uint_eq(count(&guest_view, ADB_CMD_WRTE), 0);
	ck_assert_uint_eq(count(&guest_view, ADB_CMD_OKAY), 0);
	ck_assert_uint_eq(route.stale_asked, 1);
}
END_TEST

/* ---- a PC that does not read ---- */

/* A PC whose writes never complete (a USB host that never reads IN, a TCP
 * peer with a full window): once `buffer` bytes wait for it, the relay
 * stops reading the guest, whose socket fills; when the PC reads again,
 * the rest follows, every byte. */
START_TEST(pc_that_never_reads_stops_guest_reading)
{
	static uint8_t buf[ADB_HEADER_SIZE + 4096];
	static char payload[4097];
	size_t len, off = 0, written = 0, start;
	unsigned again = 0;

	memset(payload, 'd', 4096);
	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	open_stream();
	pc.holding = 1;
	pc_bytes_only = 1;
	start = pc_bytes;
	len = frame(buf, ADB_CMD_WRTE, GUEST_ID, HOST_ID, payload);
	while (again < 50 && written < (64u << 20)) {
		ssize_t n = harness_guest_write(buf + off, len - off);

		if (n <= 0) {          /* the guest's socket is full: the relay stopped reading */
			again++;
			turn();
			continue;
		}
		again = 0;
		written += (size_t)n;
		off = (off + (size_t)n) % len;
	}
	fprintf(stderr, "session: a PC that does not read: the guest wrote %zu bytes, %zu wait "
		"for the PC\n", written, pc.held_bytes);
	ck_assert_uint_lt(written, 64u << 20);
	ck_assert_uint_le(pc.held_bytes, harness.buffer + 2 * len);
	ck_assert_uint_le(sess()->to_host.bytes_pending, harness.buffer + 2 * len);
	ck_assert(!pc.closed);
	/* the PC reads again */
	pc.holding = 0;
	harness_pc_release(0);
	for (unsigned i = 0; i < 1000 && pc_bytes - start < written - off; i++) {
		ssize_t n = off > 0 ? harness_guest_write(buf + off, len - off) : 0;

		if (n > 0) {
			written += (size_t)n;
			off = (off + (size_t)n) % len;
		}
		turn();
	}
	pc_bytes_only = 0;
	ck_assert_uint_eq(off, 0);
	ck_assert_uint_eq(pc_bytes - start, written);
}
END_TEST

/* OPENs past max-streams are answered with CLSE at once and never reach
 * the guest; their log line goes through the limiter (5 a window). */
START_TEST(opens_past_max_streams_refused)
{
	unsigned long long suppressed;

	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	sess()->streams.max = 8;
	log_set_level(LOG_LVL_WARN);
	suppressed = log_suppressed_total();
	for (uint32_t i = 0; i < 40; i++)
		pc_send(ADB_CMD_OPEN, 1000 + i, 0, "shell:x");
	SPIN_UNTIL(count(&guest_view, ADB_CMD_OPEN) == 8 && count(&pc_view, ADB_CMD_CLSE) == 32);
	settle();
	ck_assert_uint_eq(count(&guest_view, ADB_CMD_OPEN), 8);
	for (uint32_t i = 0; i < 40; i++) {
		ck_assert(has_frame(&guest_view, ADB_CMD_OPEN, 1000 + i, 0) == (i < 8));
		ck_assert(has_frame(&pc_view, ADB_CMD_CLSE, 0, 1000 + i) == (i >= 8));
	}
	ck_assert_uint_eq(route.st.refused_opens, 32);
	ck_assert_uint_eq(sess()->streams.n, 8);
	ck_assert_uint_ge(log_suppressed_total() - suppressed, 32 - 5);
	log_set_level(LOG_LVL_ERROR);
	ck_assert(!pc.closed);
}
END_TEST

/* ---- OPENs while the guest is down (open-wait) ---- */

/* The guest went down under a kept transport; the next link is held. */
static void guest_down_link_held(void)
{
	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	route.hold_connects = 1;
	guest_hang_up();
	SPIN_UNTIL(route.guest == GUEST_DOWN && route.held != NULL);
}

/* The guest comes back with banner. */
static void guest_back(const char *banner)
{
	harness_release_connect();
	SPIN_UNTIL(count(&guest_view, ADB_CMD_CNXN) == 1);
	guest_send(ADB_CMD_CNXN, ADB_VERSION, ADB_MAX_PAYLOAD, banner);
	SPIN_UNTIL(route.guest == GUEST_UP);
	settle();
}

START_TEST(open_waits_for_the_guest)
{
	const struct seen *o;

	route.owner.open_wait_ms = 2000;
	guest_down_link_held();
	pc_send(ADB_CMD_OPEN, 40, 0, "shell:later");
	pc_send(ADB_CMD_OPEN, 41, 0, "shell:and later");
	settle();
	ck_assert_uint_eq(count(&pc_view, ADB_CMD_CLSE), 0);
	ck_assert_uint_eq(route.st.opens_held, 2);
	guest_back(BANNER_A);
	/* both reach the guest, in order, and the streams are the PC's */
	ck_assert_uint_eq(count(&guest_view, ADB_CMD_OPEN), 2);
	o = nth(&guest_view, ADB_CMD_OPEN, 0);
	ck_assert_uint_eq(o->arg0, 40);
	ck_assert_uint_eq(o->len, strlen("shell:later"));
	ck_assert(memcmp(o->payload, "shell:later", o->len) == 0);
	ck_assert_uint_eq(nth(&guest_view, ADB_CMD_OPEN, 1)->arg0, 41);
	guest_send(ADB_CMD_OKAY, 140, 40, NULL);
	SPIN_UNTIL(has_frame(&pc_view, ADB_CMD_OKAY, 140, 40));
	ck_assert_uint_eq(count(&pc_view, ADB_CMD_CLSE), 0);
	ck_assert_uint_eq(route.st.refused_opens, 0);
}
END_TEST

START_TEST(open_wait_runs_out)
{
	route.owner.open_wait_ms = 50;
	guest_down_link_held();
	pc_send(ADB_CMD_OPEN, 40, 0, "shell:later");
	settle();
	SPIN_UNTIL(has_frame(&pc_view, ADB_CMD_CLSE, 0, 40));
	ck_assert_uint_eq(route.st.refused_opens, 1);
	guest_back(BANNER_A);
	ck_assert_uint_eq(count(&guest_view, ADB_CMD_OPEN), 0);
}
END_TEST

/* the PC gives up (CLSE) before the guest is back: the guest never sees it */
START_TEST(held_open_closed_by_the_pc)
{
	route.owner.open_wait_ms = 2000;
	guest_down_link_held();
	pc_send(ADB_CMD_OPEN, 40, 0, "shell:later");
	pc_send(ADB_CMD_CLSE, 40, 0, NULL);
	guest_back(BANNER_A);
	ck_assert_uint_eq(count(&guest_view, ADB_CMD_OPEN), 0);
	ck_assert_uint_eq(count(&guest_view, ADB_CMD_CLSE), 0);
	ck_assert(guest_gets_open());
}
END_TEST

/* a guest that comes back changed is passed on: the PC drops its
 * streams, so the held OPENs are not sent */
START_TEST(held_open_dropped_for_a_changed_guest)
{
	route.owner.open_wait_ms = 2000;
	guest_down_link_held();
	pc_send(ADB_CMD_OPEN, 40, 0, "shell:later");
	guest_back(BANNER_B);
	ck_assert_uint_eq(count(&guest_view, ADB_CMD_OPEN), 0);
	ck_assert_uint_eq(count(&pc_view, ADB_CMD_CNXN), 2);
}
END_TEST

/* the held OPEN goes (its time runs out, or the guest comes back changed)
 * while its service is still arriving: the rest of it is dropped, the
 * session goes on (the relay crashed here once) */
static void open_split_around(int changed_guest)
{
	uint8_t buf[ADB_HEADER_SIZE + 64];
	size_t len = frame(buf, ADB_CMD_OPEN, 40, 0, "shell:split in two");

	route.owner.open_wait_ms = changed_guest ? 2000 : 50;
	guest_down_link_held();
	ck_assert_uint_eq(harness_pc_send(buf, ADB_HEADER_SIZE + 5), ADB_HEADER_SIZE + 5);
	turn();
	if (changed_guest) {
		guest_back(BANNER_B);
	} else {
		SPIN_UNTIL(has_frame(&pc_view, ADB_CMD_CLSE, 0, 40));
	}
	ck_assert_uint_eq(sess()->held.n, 0);
	ck_assert_uint_eq(harness_pc_send(buf + ADB_HEADER_SIZE + 5, len - ADB_HEADER_SIZE - 5),
			  len - ADB_HEADER_SIZE - 5);
	settle();
	ck_assert(!pc.closed);
	if (!changed_guest)
		guest_back(BANNER_A);
	ck_assert_uint_eq(count(&guest_view, ADB_CMD_OPEN), 0);
	ck_assert(guest_gets_open());
}

START_TEST(held_open_expires_mid_payload)
{
	open_split_around(0);
}
END_TEST

START_TEST(held_open_cleared_mid_payload)
{
	open_split_around(1);
}
END_TEST

/* bounded: OPENHOLD_MAX wait, the next is refused at once; so is an OPEN
 * whose service is longer than OPENHOLD_PAYLOAD_MAX */
START_TEST(open_wait_is_bounded)
{
	char big[OPENHOLD_PAYLOAD_MAX + 8];

	route.owner.open_wait_ms = 2000;
	guest_down_link_held();
	for (uint32_t i = 0; i < OPENHOLD_MAX; i++)
		pc_send(ADB_CMD_OPEN, 40 + i, 0, "shell:later");
	settle();
	ck_assert_uint_eq(count(&pc_view, ADB_CMD_CLSE), 0);
	pc_send(ADB_CMD_OPEN, 90, 0, "shell:one too many");
	SPIN_UNTIL(has_frame(&pc_view, ADB_CMD_CLSE, 0, 90));
	pc_send(ADB_CMD_CLSE, 40, 0, NULL);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	memcpy(big, "shell:", 6);
	pc_send(ADB_CMD_OPEN, 91, 0, big);
	SPIN_UNTIL(has_frame(&pc_view, ADB_CMD_CLSE, 0, 91));
	ck_assert_uint_eq(route.st.opens_held, OPENHOLD_MAX);
	guest_back(BANNER_A);
	ck_assert_uint_eq(count(&guest_view, ADB_CMD_OPEN), OPENHOLD_MAX - 1);
}
END_TEST

/* ---- CNXN replay ---- */

START_TEST(host_cnxn_replayed_on_new_link)
{
	struct seen first;
	const struct seen *again;

	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	first = *last(&guest_view, ADB_CMD_CNXN);
	ck_assert_uint_eq(first.arg0, ADB_VERSION);
	/* the guest is told a max payload its pool holds, not the PC's */
	ck_assert_uint_lt(first.arg1, ADB_MAX_PAYLOAD);
	ck_assert_uint_eq(first.len, strlen(HOST_BANNER));
	ck_assert(memcmp(first.payload, HOST_BANNER, first.len) == 0);
	open_stream();
	restart();
	/* the PC sent nothing: the relay replays what it cached, once */
	ck_assert_uint_eq(count(&guest_view, ADB_CMD_CNXN), 1);
	again = last(&guest_view, ADB_CMD_CNXN);
	ck_assert_uint_eq(again->arg0, first.arg0);
	ck_assert_uint_eq(again->arg1, first.arg1);
	ck_assert_uint_eq(again->len, first.len);
	ck_assert(memcmp(again->payload, first.payload, first.len) == 0);
	/* the replayed CNXN is the first frame of the new link */
	ck_assert_uint_eq(guest_view.f[0].cmd, ADB_CMD_CNXN);
}
END_TEST

/* The guest, online, floods AUTH frames (past the rate, refused) until
 * the relay cuts the link: the ms from the cut to the next link. */
static unsigned cut_then_next_link(void)
{
	unsigned links = route.links;
	uint64_t cut = 0;

	/* timed from before the frame that gets the link cut: the relay's
	 * backoff counts from its loop's time, which may be older than the
	 * moment the cut is seen here */
	for (int i = 0; i < 1100 && route.guest == GUEST_UP; i++) {
		cut = uv_hrtime();
		guest_send(ADB_CMD_AUTH, 1, 0, "token");
	}
	ck_assert_int_ne(route.guest, GUEST_UP);
	guest_hang_up();   /* our end of the link the relay cut */
	SPIN_UNTIL(route.links == links + 1);
	return (unsigned)((uv_hrtime() - cut) / 1000000);
}

/* A guest cut for refused frames does not set the pace of its reconnects:
 * each cut doubles the next delay, as failed connects do. */
START_TEST(guest_cut_backs_off)
{
	unsigned waited = 0;

	route.owner.reconnect_min_ms = 10;
	route.owner.reconnect_max_ms = 1000;
	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	for (int cut = 1; cut <= 3; cut++) {
		if (cut > 1) {
			guest_send(ADB_CMD_CNXN, ADB_VERSION, ADB_MAX_PAYLOAD, BANNER_A);
			SPIN_UNTIL(route.guest == GUEST_UP);
		}
		waited = cut_then_next_link();
	}
	/* 3 cuts: 10 ms x 2^3, jittered over its upper half (without: 5-10 ms) */
	ck_assert_uint_ge(waited, 40);
	ck_assert_uint_ge(route.st.guest_refused, 3 * 1000);
}
END_TEST

/* ---- what the guest may open on the PC ---- */

START_TEST(guest_open_refused_without_reverse)
{
	unsigned pc_frames;

	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	pc_frames = pc_view.n;
	guest_send(ADB_CMD_OPEN, 21, 0, "tcp:7000");
	SPIN_UNTIL(count(&guest_view, ADB_CMD_CLSE) == 1);
	ck_assert(has_frame(&guest_view, ADB_CMD_CLSE, 0, 21));
	settle();
	ck_assert_uint_eq(count(&pc_view, ADB_CMD_OPEN), 0);
	ck_assert_uint_eq(pc_view.n, pc_frames);
	ck_assert_uint_eq(route.st.guest_refused, 1);
	ck_assert_uint_eq(sess()->streams.n, 0);
	ck_assert_int_eq(route.guest, GUEST_UP);   /* the link stays */
}
END_TEST

START_TEST(guest_open_to_reverse_local_passes)
{
	const struct seen *o;

	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	/* adb reverse tcp:6000 tcp:7000: the PC asks the guest's adbd */
	open_pair(HOST_ID, GUEST_ID, "reverse:forward:tcp:6000;tcp:7000");
	guest_send(ADB_CMD_OPEN, 21, 0, "tcp:7000");
	SPIN_UNTIL(count(&pc_view, ADB_CMD_OPEN) == 1);
	o = last(&pc_view, ADB_CMD_OPEN);
	ck_assert_uint_eq(o->arg0, 21);
	ck_assert_uint_eq(o->len, strlen("tcp:7000"));
	ck_assert(memcmp(o->payload, "tcp:7000", o->len) == 0);
	ck_assert_uint_eq(route.st.guest_refused, 0);
	ck_assert_uint_eq(count(&guest_view, ADB_CMD_CLSE), 0);
	/* the PC answers; the stream is tracked both ways */
	pc_send(ADB_CMD_OKAY, 30, 21, NULL);
	SPIN_UNTIL(has_frame(&guest_view, ADB_CMD_OKAY, 30, 21));
	guest_send(ADB_CMD_WRTE, 21, 30, "data");
	SPIN_UNTIL(has_frame(&pc_view, ADB_CMD_WRTE, 21, 30));
	/* another local end is not the PC's: refused */
	guest_send(ADB_CMD_OPEN, 22, 0, "tcp:7001");
	SPIN_UNTIL(has_frame(&guest_view, ADB_CMD_CLSE, 0, 22));
	ck_assert_uint_eq(count(&pc_view, ADB_CMD_OPEN), 1);
	ck_assert_uint_eq(route.st.guest_refused, 1);
}
END_TEST

/* ---- stream tracking ---- */

START_TEST(stream_pairs_tracked)
{
	unsigned g_clse;

	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	pc_send(ADB_CMD_OPEN, HOST_ID, 0, "shell:cat");
	SPIN_UNTIL(count(&guest_view, ADB_CMD_OPEN) == 1);
	ck_assert_uint_eq(sess()->streams.n, 1);
	guest_send(ADB_CMD_OKAY, GUEST_ID, HOST_ID, NULL);
	SPIN_UNTIL(has_frame(&pc_view, ADB_CMD_OKAY, GUEST_ID, HOST_ID));
	guest_send(ADB_CMD_WRTE, GUEST_ID, HOST_ID, "out");
	SPIN_UNTIL(has_frame(&pc_view, ADB_CMD_WRTE, GUEST_ID, HOST_ID));
	pc_send(ADB_CMD_WRTE, HOST_ID, GUEST_ID, "in");
	SPIN_UNTIL(has_frame(&guest_view, ADB_CMD_WRTE, HOST_ID, GUEST_ID));
	/* the PC closes: forwarded, the pair forgotten */
	pc_send(ADB_CMD_CLSE, HOST_ID, GUEST_ID, NULL);
	SPIN_UNTIL(has_frame(&guest_view, ADB_CMD_CLSE, HOST_ID, GUEST_ID));
	ck_assert_uint_eq(sess()->streams.n, 0);
	ck_assert_uint_eq(route.st.stale_dropped, 0);
	/* the guest's answering CLSE is for a stream the PC no longer has */
	guest_send(ADB_CMD_CLSE, GUEST_ID, HOST_ID, NULL);
	settle();
	ck_assert_uint_eq(count(&pc_view, ADB_CMD_CLSE), 0);
	ck_assert_uint_eq(route.st.stale_dropped, 1);

	/* a second pair, closed by the guest this time */
	open_pair(HOST_ID + 1, GUEST_ID + 1, "shell:true");
	ck_assert_uint_eq(sess()->streams.n, 1);
	guest_send(ADB_CMD_CLSE, GUEST_ID + 1, HOST_ID + 1, NULL);
	SPIN_UNTIL(has_frame(&pc_view, ADB_CMD_CLSE, GUEST_ID + 1, HOST_ID + 1));
	ck_assert_uint_eq(sess()->streams.n, 0);
	/* and the PC's late WRTE to it goes nowhere */
	g_clse = count(&guest_view, ADB_CMD_WRTE);
	pc_send(ADB_CMD_WRTE, HOST_ID + 1, GUEST_ID + 1, "late");
	settle();
	ck_assert_uint_eq(count(&guest_view, ADB_CMD_WRTE), g_clse);
	ck_assert_uint_eq(route.st.stale_dropped, 2);
}
END_TEST

START_TEST(stale_guest_frames_dropped)
{
	unsigned pc_frames;

	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	open_pair(HOST_ID, GUEST_ID, "shell:cat");
	pc_frames = pc_view.n;
	/* streams the PC never had */
	guest_send(ADB_CMD_WRTE, GUEST_ID, 99, "nobody");
	guest_send(ADB_CMD_OKAY, 50, 98, NULL);
	guest_send(ADB_CMD_CLSE, 51, 97, NULL);
	settle();
	ck_assert_uint_eq(pc_view.n, pc_frames);
	ck_assert_uint_eq(route.st.stale_dropped, 3);
	/* the real stream still flows, and frames in between are whole */
	guest_send(ADB_CMD_WRTE, GUEST_ID, HOST_ID, "still");
	SPIN_UNTIL(pc_view.n == pc_frames + 1);
	ck_assert(has_frame(&pc_view, ADB_CMD_WRTE, GUEST_ID, HOST_ID));
	ck_assert_uint_eq(last(&pc_view, ADB_CMD_WRTE)->len, strlen("still"));
	ck_assert_uint_eq(nth(&pc_view, ADB_CMD_WRTE, 0)->arg1, HOST_ID);
	ck_assert_uint_eq(route.st.frames[DIR_TO_HOST], 1 + 1 + 1);  /* CNXN, OKAY, WRTE */
	ck_assert_uint_eq(route.st.stale_dropped, 3);
	ck_assert_uint_eq(sess()->streams.n, 1);
}
END_TEST

/* delayed_ack: the PC's OPEN names its window in arg1, the guest's OKAY
 * carries its window as a 4-byte payload. The relay interprets neither: a
 * guest that lies (a window of 2^32 - 1, then 0, then more data than it
 * said) has its frames passed on as they came, each one a frame like any
 * other, and the relay's reading stays bounded by `buffer`. */
START_TEST(delayed_ack_windows_are_not_interpreted)
{
	const struct seen *f;

	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	pc_send(ADB_CMD_OPEN, HOST_ID, 0x7fffffff, "shell:cat");
	SPIN_UNTIL(count(&guest_view, ADB_CMD_OPEN) == 1);
	f = last(&guest_view, ADB_CMD_OPEN);
	ck_assert_uint_eq(f->arg1, 0x7fffffff);                /* the PC's window, as sent */
	guest_send(ADB_CMD_OKAY, GUEST_ID, HOST_ID, "\xff\xff\xff\xff");
	SPIN_UNTIL(count(&pc_view, ADB_CMD_OKAY) == 1);
	f = last(&pc_view, ADB_CMD_OKAY);
	ck_assert_uint_eq(f->len, 4);
	ck_assert_int_eq(memcmp(f->payload, "\xff\xff\xff\xff", 4), 0);
	/* a window of 1 byte, then 3 frames of data past it: all passed on */
	guest_send(ADB_CMD_OKAY, GUEST_ID, HOST_ID, "\x01\x01\x01\x01");
	SPIN_UNTIL(count(&pc_view, ADB_CMD_OKAY) == 2);
	for (int i = 0; i < 3; i++)
		guest_send(ADB_CMD_WRTE, GUEST_ID, HOST_ID, "more than the window");
	SPIN_UNTIL(count(&pc_view, ADB_CMD_WRTE) == 3);
	/* and an OKAY with a payload longer than a window: a frame, passed on */
	guest_send(ADB_CMD_OKAY, GUEST_ID, HOST_ID, "not a window at all");
	SPIN_UNTIL(count(&pc_view, ADB_CMD_OKAY) == 3);
	ck_assert_uint_eq(last(&pc_view, ADB_CMD_OKAY)->len, strlen("not a window at all"));
	ck_assert_uint_eq(sess()->streams.n, 1);
	ck_assert_uint_eq(route.st.stale_dropped, 0);
}
END_TEST

/* ---- pipelined stop-and-wait streams (relay/pipeline.h) ---- */

static const struct harness_config pipelined = {
	.name = "test",
	.buffer = 256 * 1024,
	.pipeline = 1,
	.to_pc = to_pc,
	.to_guest = to_guest,
	.new_link = new_link,
};

static void setup_pipelined(void)
{
	view_init(&pc_view);
	ck_assert_int_eq(harness_start(&pipelined), 0);
	ck_assert_uint_eq(route.nsessions, 1);
}

/* The frames of one command in a view, in order, as "W:a O C" (WRTE with
 * its payload, OKAY, CLSE) for stream frames with these ids. */
static void frames_of(const struct view *v, uint32_t arg0, uint32_t arg1, char *out, size_t size)
{
	size_t n = 0;

	out[0] = '\0';
	for (unsigned k = 0; k < v->n && n + 1 < size; k++) {
		const struct seen *f = &v->f[k];

		if (f->arg0 != arg0 || f->arg1 != arg1)
			continue;
		if (f->cmd == ADB_CMD_WRTE)
			n += (size_t)snprintf(out + n, size - n, "%sW:%.*s", n ? " " : "", (int)f->len,
					      (const char *)f->payload);
		else
			n += (size_t)snprintf(out + n, size - n, "%s%c", n ? " " : "",
					      f->cmd == ADB_CMD_OKAY ? 'O' : f->cmd == ADB_CMD_CLSE ? 'C' : '?');
	}
}

#define ASSERT_FRAMES(v, a0, a1, want) do { \
		char got_[512]; \
		frames_of((v), (a0), (a1), got_, sizeof(got_)); \
		ck_assert_str_eq(got_, (want)); \
	} while (0)

/* PC -> guest: the relay answers a WRTE once the guest has it whole, holds
 * the next until the guest's OKAY for the previous, and absorbs that OKAY. */
START_TEST(pc_frames_one_beyond_the_guests_okay)
{
	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	open_pair(HOST_ID, GUEST_ID, "sync:");
	pc_send(ADB_CMD_WRTE, HOST_ID, GUEST_ID, "a");
	SPIN_UNTIL(count(&pc_view, ADB_CMD_OKAY) == 2);
	ASSERT_FRAMES(&pc_view, GUEST_ID, HOST_ID, "O O");      /* the OPEN's, the relay's */
	ASSERT_FRAMES(&guest_view, HOST_ID, GUEST_ID, "W:a");
	/* the next waits in the relay: the guest has not taken "a" */
	pc_send(ADB_CMD_WRTE, HOST_ID, GUEST_ID, "b");
	settle();
	ASSERT_FRAMES(&guest_view, HOST_ID, GUEST_ID, "W:a");
	ASSERT_FRAMES(&pc_view, GUEST_ID, HOST_ID, "O O");
	/* the guest's OKAY for "a": absorbed, "b" goes and is answered */
	guest_send(ADB_CMD_OKAY, GUEST_ID, HOST_ID, NULL);
	SPIN_UNTIL(count(&guest_view, ADB_CMD_WRTE) == 2);
	ASSERT_FRAMES(&guest_view, HOST_ID, GUEST_ID, "W:a W:b");
	SPIN_UNTIL(count(&pc_view, ADB_CMD_OKAY) == 3);
	/* the OKAY for "b" is absorbed too: the PC got its answer already */
	guest_send(ADB_CMD_OKAY, GUEST_ID, HOST_ID, NULL);
	settle();
	ASSERT_FRAMES(&pc_view, GUEST_ID, HOST_ID, "O O O");
	ck_assert_uint_eq(route.st.acked_early, 2);
	ck_assert_uint_eq(route.st.stale_dropped, 0);
	ck_assert_uint_eq(sess()->pipe_slots[DIR_TO_GUEST], 0);
	/* a stop-and-wait PC goes on as before */
	pc_send(ADB_CMD_WRTE, HOST_ID, GUEST_ID, "c");
	SPIN_UNTIL(count(&pc_view, ADB_CMD_OKAY) == 4);
	ASSERT_FRAMES(&guest_view, HOST_ID, GUEST_ID, "W:a W:b W:c");
}
END_TEST

/* guest -> PC, the same rules the other way. */
START_TEST(guest_frames_one_beyond_the_pcs_okay)
{
	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	open_pair(HOST_ID, GUEST_ID, "shell:cat");
	guest_send(ADB_CMD_WRTE, GUEST_ID, HOST_ID, "1");
	SPIN_UNTIL(count(&guest_view, ADB_CMD_OKAY) == 1);
	ASSERT_FRAMES(&guest_view, HOST_ID, GUEST_ID, "O");
	ASSERT_FRAMES(&pc_view, GUEST_ID, HOST_ID, "O W:1");
	guest_send(ADB_CMD_WRTE, GUEST_ID, HOST_ID, "2");
	settle();
	ASSERT_FRAMES(&pc_view, GUEST_ID, HOST_ID, "O W:1");
	ASSERT_FRAMES(&guest_view, HOST_ID, GUEST_ID, "O");
	pc_send(ADB_CMD_OKAY, HOST_ID, GUEST_ID, NULL);
	SPIN_UNTIL(count(&pc_view, ADB_CMD_WRTE) == 2);
	ASSERT_FRAMES(&pc_view, GUEST_ID, HOST_ID, "O W:1 W:2");
	SPIN_UNTIL(count(&guest_view, ADB_CMD_OKAY) == 2);
	pc_send(ADB_CMD_OKAY, HOST_ID, GUEST_ID, NULL);
	settle();
	ASSERT_FRAMES(&guest_view, HOST_ID, GUEST_ID, "O O");
	ck_assert_uint_eq(route.st.acked_early, 2);
	ck_assert_uint_eq(route.st.frames[DIR_TO_HOST], 1 + 1 + 2);   /* CNXN, OKAY, 2 WRTEs */
	ck_assert_uint_eq(sess()->pipe_slots[DIR_TO_HOST], 0);
}
END_TEST

/* A CLSE the sender sent behind a held WRTE reaches the receiver after it. */
START_TEST(clse_follows_the_held_frame)
{
	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	open_pair(HOST_ID, GUEST_ID, "sync:");
	pc_send(ADB_CMD_WRTE, HOST_ID, GUEST_ID, "a");
	SPIN_UNTIL(count(&pc_view, ADB_CMD_OKAY) == 2);
	pc_send(ADB_CMD_WRTE, HOST_ID, GUEST_ID, "b");
	pc_send(ADB_CMD_CLSE, HOST_ID, GUEST_ID, NULL);
	settle();
	ASSERT_FRAMES(&guest_view, HOST_ID, GUEST_ID, "W:a");
	guest_send(ADB_CMD_OKAY, GUEST_ID, HOST_ID, NULL);
	SPIN_UNTIL(count(&guest_view, ADB_CMD_CLSE) == 1);
	ASSERT_FRAMES(&guest_view, HOST_ID, GUEST_ID, "W:a W:b C");
	ck_assert_uint_eq(sess()->streams.n, 0);

	/* and the guest's, the other way */
	open_pair(HOST_ID + 1, GUEST_ID + 1, "shell:cat");
	guest_send(ADB_CMD_WRTE, GUEST_ID + 1, HOST_ID + 1, "x");
	guest_send(ADB_CMD_WRTE, GUEST_ID + 1, HOST_ID + 1, "y");
	guest_send(ADB_CMD_CLSE, GUEST_ID + 1, HOST_ID + 1, NULL);
	settle();
	ASSERT_FRAMES(&pc_view, GUEST_ID + 1, HOST_ID + 1, "O W:x");
	pc_send(ADB_CMD_OKAY, HOST_ID + 1, GUEST_ID + 1, NULL);
	SPIN_UNTIL(count(&pc_view, ADB_CMD_CLSE) == 1);
	ASSERT_FRAMES(&pc_view, GUEST_ID + 1, HOST_ID + 1, "O W:x W:y C");
	ck_assert_uint_eq(sess()->streams.n, 0);
	ck_assert_uint_eq(sess()->pipe_slots[DIR_TO_HOST] + sess()->pipe_slots[DIR_TO_GUEST], 0);
	ck_assert_uint_eq(route.st.stale_dropped, 0);
}
END_TEST

/* The guest link is lost while each way holds a frame: the guest's goes to
 * the PC before the stream's CLSE; the PC's frame the relay acknowledged
 * and the guest never did is counted lost. */
START_TEST(guest_loss_with_frames_held)
{
	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	open_pair(HOST_ID, GUEST_ID, "shell:cat");
	pc_send(ADB_CMD_WRTE, HOST_ID, GUEST_ID, "a");
	SPIN_UNTIL(count(&pc_view, ADB_CMD_OKAY) == 2);
	pc_send(ADB_CMD_WRTE, HOST_ID, GUEST_ID, "b");       /* held */
	guest_send(ADB_CMD_WRTE, GUEST_ID, HOST_ID, "1");
	guest_send(ADB_CMD_WRTE, GUEST_ID, HOST_ID, "2");    /* held */
	settle();
	ASSERT_FRAMES(&pc_view, GUEST_ID, HOST_ID, "O O W:1");
	route.hold_connects = 1;
	guest_hang_up();
	SPIN_UNTIL(route.guest == GUEST_DOWN && count(&pc_view, ADB_CMD_CLSE) == 1);
	ASSERT_FRAMES(&pc_view, GUEST_ID, HOST_ID, "O O W:1 W:2 C");
	ck_assert_uint_eq(route.st.acked_lost, 1);
	ck_assert_uint_eq(sess()->streams.n, 0);
	ck_assert_uint_eq(sess()->pipe_slots[DIR_TO_HOST] + sess()->pipe_slots[DIR_TO_GUEST], 0);
	ck_assert(!pc.closed);
}
END_TEST

/* delayed_ack streams (an OPEN with a window) pass untouched, and with
 * `pipeline off` every OKAY is the receiver's. */
START_TEST(okays_pass_without_pipelining)
{
	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	pc_send(ADB_CMD_OPEN, HOST_ID, 32 << 20, "sync:");
	SPIN_UNTIL(count(&guest_view, ADB_CMD_OPEN) == 1);
	guest_send(ADB_CMD_OKAY, GUEST_ID, HOST_ID, "\x00\x00\x00\x02");
	SPIN_UNTIL(count(&pc_view, ADB_CMD_OKAY) == 1);
	pc_send(ADB_CMD_WRTE, HOST_ID, GUEST_ID, "a");
	pc_send(ADB_CMD_WRTE, HOST_ID, GUEST_ID, "b");
	guest_send(ADB_CMD_WRTE, GUEST_ID, HOST_ID, "1");
	guest_send(ADB_CMD_WRTE, GUEST_ID, HOST_ID, "2");
	SPIN_UNTIL(count(&guest_view, ADB_CMD_WRTE) == 2 && count(&pc_view, ADB_CMD_WRTE) == 2);
	settle();
	ASSERT_FRAMES(&pc_view, GUEST_ID, HOST_ID, "O W:1 W:2");
	ASSERT_FRAMES(&guest_view, HOST_ID, GUEST_ID, "W:a W:b");
	guest_send(ADB_CMD_OKAY, GUEST_ID, HOST_ID, "\x02\x00\x00\x00");
	SPIN_UNTIL(count(&pc_view, ADB_CMD_OKAY) == 2);
	ck_assert_uint_eq(route.st.acked_early, 0);

	/* off: a stop-and-wait stream's OKAYs are the receiver's */
	route.owner.pipeline = 0;
	open_pair(HOST_ID + 1, GUEST_ID + 1, "shell:cat");
	pc_send(ADB_CMD_WRTE, HOST_ID + 1, GUEST_ID + 1, "c");
	SPIN_UNTIL(count(&guest_view, ADB_CMD_WRTE) == 3);
	settle();
	ASSERT_FRAMES(&pc_view, GUEST_ID + 1, HOST_ID + 1, "O");
	guest_send(ADB_CMD_OKAY, GUEST_ID + 1, HOST_ID + 1, NULL);
	SPIN_UNTIL(count(&pc_view, ADB_CMD_OKAY) == 4);
	ASSERT_FRAMES(&pc_view, GUEST_ID + 1, HOST_ID + 1, "O O");
	ck_assert_uint_eq(route.st.acked_early, 0);
}
END_TEST

/* A PC that does not wait for the relay's OKAY: its frames reach the guest
 * in order, and that way of the stream passes through, OKAYs included. */
START_TEST(a_sender_that_does_not_wait_is_passed_through)
{
	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	open_pair(HOST_ID, GUEST_ID, "sync:");
	pc_send(ADB_CMD_WRTE, HOST_ID, GUEST_ID, "a");
	pc_send(ADB_CMD_WRTE, HOST_ID, GUEST_ID, "b");
	pc_send(ADB_CMD_WRTE, HOST_ID, GUEST_ID, "c");
	pc_send(ADB_CMD_WRTE, HOST_ID, GUEST_ID, "d");
	SPIN_UNTIL(count(&guest_view, ADB_CMD_WRTE) == 4);
	ASSERT_FRAMES(&guest_view, HOST_ID, GUEST_ID, "W:a W:b W:c W:d");
	ASSERT_FRAMES(&pc_view, GUEST_ID, HOST_ID, "O O");
	for (int k = 0; k < 4; k++)
		guest_send(ADB_CMD_OKAY, GUEST_ID, HOST_ID, NULL);
	SPIN_UNTIL(count(&pc_view, ADB_CMD_OKAY) == 6);
	settle();
	ASSERT_FRAMES(&pc_view, GUEST_ID, HOST_ID, "O O O O O O");
	ck_assert_uint_eq(sess()->pipe_slots[DIR_TO_GUEST], 0);
}
END_TEST

/* An OKAY says "ready", as adb treats it: a PC whose socket was full
 * answers several WRTEs with one OKAY, and may send a spare one. Neither
 * reaches the guest, which gets one OKAY per frame, from the relay; a
 * spare one only tells the relay the PC is ready. */
START_TEST(okays_are_readiness_not_counts)
{
	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	open_pair(HOST_ID, GUEST_ID, "shell:cat");
	guest_send(ADB_CMD_WRTE, GUEST_ID, HOST_ID, "1");
	guest_send(ADB_CMD_WRTE, GUEST_ID, HOST_ID, "2");      /* held */
	SPIN_UNTIL(count(&guest_view, ADB_CMD_OKAY) == 1);
	/* the PC's OKAY and a spare one */
	pc_send(ADB_CMD_OKAY, HOST_ID, GUEST_ID, NULL);
	pc_send(ADB_CMD_OKAY, HOST_ID, GUEST_ID, NULL);
	SPIN_UNTIL(count(&pc_view, ADB_CMD_WRTE) == 2);
	settle();
	ASSERT_FRAMES(&guest_view, HOST_ID, GUEST_ID, "O O");   /* one per frame */
	/* the PC said it is ready: the next frame goes at once */
	guest_send(ADB_CMD_WRTE, GUEST_ID, HOST_ID, "3");
	SPIN_UNTIL(count(&pc_view, ADB_CMD_WRTE) == 3);
	SPIN_UNTIL(count(&guest_view, ADB_CMD_OKAY) == 3);
	guest_send(ADB_CMD_WRTE, GUEST_ID, HOST_ID, "4");      /* held */
	settle();
	ASSERT_FRAMES(&pc_view, GUEST_ID, HOST_ID, "O W:1 W:2 W:3");
	/* one OKAY for the PC's whole backlog lets the held frame go */
	pc_send(ADB_CMD_OKAY, HOST_ID, GUEST_ID, NULL);
	SPIN_UNTIL(count(&pc_view, ADB_CMD_WRTE) == 4);
	SPIN_UNTIL(count(&guest_view, ADB_CMD_OKAY) == 4);
	ASSERT_FRAMES(&pc_view, GUEST_ID, HOST_ID, "O W:1 W:2 W:3 W:4");
	/* the PC's OKAY for "4", and a spare one: the guest hears neither */
	pc_send(ADB_CMD_OKAY, HOST_ID, GUEST_ID, NULL);
	pc_send(ADB_CMD_OKAY, HOST_ID, GUEST_ID, NULL);
	settle();
	ASSERT_FRAMES(&guest_view, HOST_ID, GUEST_ID, "O O O O");
	ck_assert_uint_eq(sess()->streams.v[0].dir[DIR_TO_HOST].off, 0);
	ck_assert_uint_eq(sess()->pipe_slots[DIR_TO_HOST], 0);
	ck_assert_uint_eq(route.st.stale_dropped, 0);
}
END_TEST

/* A PC that sends CNXN again has forgotten its streams (and adbd closes
 * its own): what the relay held for them goes, their slots come back, and
 * the PC's ids are free for new streams, whose OKAYs carry the new guest
 * ids. */
START_TEST(pc_cnxn_forgets_what_streams_held)
{
	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	open_pair(HOST_ID, GUEST_ID, "shell:logcat");
	guest_send(ADB_CMD_WRTE, GUEST_ID, HOST_ID, "1");
	guest_send(ADB_CMD_WRTE, GUEST_ID, HOST_ID, "2");      /* held */
	settle();
	ck_assert_uint_eq(sess()->pipe_slots[DIR_TO_HOST], 1);
	pc_send(ADB_CMD_CNXN, ADB_VERSION, ADB_MAX_PAYLOAD, HOST_BANNER);
	settle();
	ck_assert_uint_eq(sess()->streams.n, 0);
	ck_assert_uint_eq(sess()->pipe_slots[DIR_TO_HOST], 0);
	guest_send(ADB_CMD_CLSE, GUEST_ID, HOST_ID, NULL);      /* adbd closes it */
	guest_send(ADB_CMD_CNXN, ADB_VERSION, ADB_MAX_PAYLOAD, BANNER_A);
	SPIN_UNTIL(count(&pc_view, ADB_CMD_CNXN) == 2);
	/* the same id again, a new guest stream */
	open_pair(HOST_ID, GUEST_ID + 5, "sync:");
	pc_send(ADB_CMD_WRTE, HOST_ID, GUEST_ID + 5, "a");
	SPIN_UNTIL(has_frame(&pc_view, ADB_CMD_OKAY, GUEST_ID + 5, HOST_ID) &&
		   count(&pc_view, ADB_CMD_OKAY) == 3);
	ASSERT_FRAMES(&pc_view, GUEST_ID, HOST_ID, "O W:1");   /* "2" never came */
	ck_assert_uint_eq(count(&pc_view, ADB_CMD_CLSE), 0);
}
END_TEST

/* A sender's frames after its own CLSE (which waits behind a held frame)
 * are stale: the receiver gets the held frame and the CLSE, nothing after. */
START_TEST(frames_after_the_senders_clse_are_dropped)
{
	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	open_pair(HOST_ID, GUEST_ID, "sync:");
	pc_send(ADB_CMD_WRTE, HOST_ID, GUEST_ID, "a");
	SPIN_UNTIL(count(&pc_view, ADB_CMD_OKAY) == 2);
	pc_send(ADB_CMD_WRTE, HOST_ID, GUEST_ID, "b");          /* held */
	pc_send(ADB_CMD_CLSE, HOST_ID, GUEST_ID, NULL);
	pc_send(ADB_CMD_WRTE, HOST_ID, GUEST_ID, "c");
	guest_send(ADB_CMD_OKAY, GUEST_ID, HOST_ID, NULL);
	SPIN_UNTIL(count(&guest_view, ADB_CMD_CLSE) == 1);
	settle();
	ASSERT_FRAMES(&guest_view, HOST_ID, GUEST_ID, "W:a W:b C");
	ck_assert_uint_eq(route.st.stale_dropped, 1);

	/* the guest's, the other way */
	open_pair(HOST_ID + 1, GUEST_ID + 1, "shell:cat");
	guest_send(ADB_CMD_WRTE, GUEST_ID + 1, HOST_ID + 1, "x");
	guest_send(ADB_CMD_WRTE, GUEST_ID + 1, HOST_ID + 1, "y");
	guest_send(ADB_CMD_CLSE, GUEST_ID + 1, HOST_ID + 1, NULL);
	guest_send(ADB_CMD_WRTE, GUEST_ID + 1, HOST_ID + 1, "z");
	pc_send(ADB_CMD_OKAY, HOST_ID + 1, GUEST_ID + 1, NULL);
	SPIN_UNTIL(count(&pc_view, ADB_CMD_CLSE) == 1);
	settle();
	ASSERT_FRAMES(&pc_view, GUEST_ID + 1, HOST_ID + 1, "O W:x W:y C");
	ck_assert_uint_eq(sess()->streams.n, 0);
}
END_TEST

/* A PC's stream ids are unique while open: an OPEN with an id in use (or
 * 0) is refused, and the stream that has it goes on. */
START_TEST(open_with_an_id_in_use_is_refused)
{
	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	open_pair(HOST_ID, GUEST_ID, "shell:cat");
	pc_send(ADB_CMD_OPEN, HOST_ID, 0, "shell:other");
	pc_send(ADB_CMD_OPEN, 0, 0, "shell:zero");
	SPIN_UNTIL(count(&pc_view, ADB_CMD_CLSE) == 2);
	ck_assert(has_frame(&pc_view, ADB_CMD_CLSE, 0, HOST_ID));
	ck_assert_uint_eq(count(&guest_view, ADB_CMD_OPEN), 1);
	ck_assert_uint_eq(sess()->streams.n, 1);
	pc_send(ADB_CMD_WRTE, HOST_ID, GUEST_ID, "still");
	SPIN_UNTIL(count(&guest_view, ADB_CMD_WRTE) == 1);
}
END_TEST

/* What a session holds is bounded: streams beyond its slots run
 * stop-and-wait, their OKAYs the receiver's. */
START_TEST(held_frames_are_bounded_by_slots)
{
	unsigned n = (unsigned)(pipelined.buffer / 2 / sess()->guest_max_payload);

	if (n == 0)
		n = 1;          /* one slot, when a frame fits in the buffer */
	first_link(BANNER_A, ADB_MAX_PAYLOAD);
	/* the PC may send no frame larger than a slot holds, as the guest */
	ck_assert_uint_eq(last(&pc_view, ADB_CMD_CNXN)->arg1, sess()->guest_max_payload);
	for (unsigned k = 0; k <= n; k++) {
		open_pair(HOST_ID + k, GUEST_ID + k, "shell:cat");
		guest_send(ADB_CMD_WRTE, GUEST_ID + k, HOST_ID + k, "x");
	}
	SPIN_UNTIL(count(&pc_view, ADB_CMD_WRTE) == n + 1);
	settle();
	ck_assert_uint_eq(count(&guest_view, ADB_CMD_OKAY), n);
	ck_assert_uint_eq(sess()->pipe_slots[DIR_TO_HOST], n);
	/* the last stream's OKAY is the PC's own */
	pc_send(ADB_CMD_OKAY, HOST_ID + n, GUEST_ID + n, NULL);
	SPIN_UNTIL(count(&guest_view, ADB_CMD_OKAY) == n + 1);
	ck_assert(has_frame(&guest_view, ADB_CMD_OKAY, HOST_ID + n, GUEST_ID + n));
	/* a slot comes back when its stream is idle */
	pc_send(ADB_CMD_OKAY, HOST_ID, GUEST_ID, NULL);
	settle();
	ck_assert_uint_eq(sess()->pipe_slots[DIR_TO_HOST], n - 1);
	ck_assert_uint_eq(count(&guest_view, ADB_CMD_OKAY), n + 1);
}
END_TEST

static Suite *suite(void)
{
	Suite *s = suite_create("session");
	TCase *loss = tcase_create("guest_loss");
	TCase *replay = tcase_create("cnxn_replay");
	TCase *restarts = tcase_create("restarts");
	TCase *wait = tcase_create("open_wait");
	TCase *shield = tcase_create("guest_opens");
	TCase *streams = tcase_create("streams");
	TCase *pipe = tcase_create("pipeline");

	tcase_add_checked_fixture(loss, setup, teardown);
	tcase_add_test(loss, guest_loss_closes_every_stream);
	tcase_add_test(loss, opens_refused_while_down);
	tcase_add_test(loss, no_guest_link_before_host_cnxn);
	suite_add_tcase(s, loss);

	tcase_add_checked_fixture(restarts, setup, teardown);
	tcase_add_test(restarts, root_restart_is_shown);
	tcase_add_test(restarts, root_without_restart_is_hidden);
	tcase_add_loop_test(restarts, unroot_tcpip_usb_restarts_are_shown, 0, 3);
	tcase_add_loop_test(restarts, reboot_is_shown_at_open, 0, 4);
	tcase_add_test(restarts, lookalike_services_ask_nothing);
	tcase_add_test(restarts, show_shows_every_restart);
	tcase_add_test(restarts, hide_hides_asked_restarts);
	tcase_add_test(restarts, guest_stls_refused);
	tcase_add_test(restarts, pc_stls_closes_the_session);
	tcase_add_test(restarts, stale_first_frame_ends_the_session);
	tcase_add_test(restarts, stale_first_frames_dropped_until_cnxn);
	tcase_add_test(restarts, pc_that_never_reads_stops_guest_reading);
	tcase_add_test(restarts, opens_past_max_streams_refused);
	suite_add_tcase(s, restarts);

	tcase_add_checked_fixture(wait, setup, teardown);
	tcase_add_test(wait, open_waits_for_the_guest);
	tcase_add_test(wait, open_wait_runs_out);
	tcase_add_test(wait, held_open_closed_by_the_pc);
	tcase_add_test(wait, held_open_dropped_for_a_changed_guest);
	tcase_add_test(wait, open_wait_is_bounded);
	tcase_add_test(wait, held_open_expires_mid_payload);
	tcase_add_test(wait, held_open_cleared_mid_payload);
	suite_add_tcase(s, wait);

	tcase_add_checked_fixture(replay, setup, teardown);
	tcase_add_test(replay, host_cnxn_replayed_on_new_link);
	tcase_add_test(replay, same_cnxn_absorbed);
	tcase_add_test(replay, changed_banner_passed_on);
	tcase_add_test(replay, max_payload_compared_after_clamp);
	tcase_add_test(replay, version_compared);
	tcase_add_test(replay, host_cnxn_is_owed_an_answer);
	tcase_add_test(replay, cnxn_after_auth_passed_on);
	tcase_add_test(replay, repeat_on_one_link_passed_on);
	tcase_add_test(replay, cnxn_cut_short_then_same);
	suite_add_tcase(s, replay);

	tcase_add_checked_fixture(shield, setup, teardown);
	tcase_add_test(shield, guest_open_refused_without_reverse);
	tcase_add_test(shield, guest_open_to_reverse_local_passes);
	tcase_add_test(shield, guest_cut_backs_off);
	suite_add_tcase(s, shield);

	tcase_add_checked_fixture(streams, setup, teardown);
	tcase_add_test(streams, stream_pairs_tracked);
	tcase_add_test(streams, delayed_ack_windows_are_not_interpreted);
	tcase_add_test(streams, stale_guest_frames_dropped);
	suite_add_tcase(s, streams);

	tcase_add_checked_fixture(pipe, setup_pipelined, teardown);
	tcase_add_test(pipe, pc_frames_one_beyond_the_guests_okay);
	tcase_add_test(pipe, guest_frames_one_beyond_the_pcs_okay);
	tcase_add_test(pipe, clse_follows_the_held_frame);
	tcase_add_test(pipe, guest_loss_with_frames_held);
	tcase_add_test(pipe, okays_pass_without_pipelining);
	tcase_add_test(pipe, a_sender_that_does_not_wait_is_passed_through);
	tcase_add_test(pipe, okays_are_readiness_not_counts);
	tcase_add_test(pipe, pc_cnxn_forgets_what_streams_held);
	tcase_add_test(pipe, frames_after_the_senders_clse_are_dropped);
	tcase_add_test(pipe, open_with_an_id_in_use_is_refused);
	tcase_add_test(pipe, held_frames_are_bounded_by_slots);
	suite_add_tcase(s, pipe);
	return s;
}

int main(void)
{
	return unit_run(suite());
}
