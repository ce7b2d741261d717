/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz_session.c - libFuzzer target for the adb-aware session, both
 * directions in one process: the input is a script of host bytes, guest
 * bytes, guest hang-ups, a PC that stops and resumes reading, and loop
 * turns. The PC, the route and the guest links are the session harness's
 * (tests/unit/session_harness.h), with the PC's batches held while the
 * input says; the observers are stand-ins that read what they are given.
 * Checked on every input: whatever the relay sends either way parses as
 * adb frames (nothing malformed is forwarded; a link may only end inside a
 * frame when it is lost), what waits for a PC that does not read stays
 * within the route's buffer plus a constant, and the session frees
 * everything it owned (the loop closes clean, sockets and event fds are
 * flat).
 */
#include <dirent.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "adbproto/adbproto.h"
#include "relay/obs/obs.h"
#include "tests/unit/session_harness.h"

#define CHECK(c) HARNESS_CHECK(c)
#define BUDGET (128 * 1024)
#define PENDING_SLACK (256 * 1024)
#define BATCHES_MAX 160

/* ---- stand-ins for the observers ---- */

int tap_wanted(const char *name) { return 1; }

void tap_line(const char *name, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
}

static volatile uint8_t touched;

static void touch(const uint8_t *p, size_t len)
{
	for (size_t i = 0; p != NULL && i < len; i++)
		touched ^= p[i];
}

int capture_wanted(const char *name) { return 1; }
void capture_header(const char *name, uint32_t id, int from_guest,
		    const uint8_t raw[ADB_HEADER_SIZE]) { touch(raw, ADB_HEADER_SIZE); }
void capture_payload(const char *name, uint32_t id, int from_guest, const void *p,
		     size_t len) { touch(p, len); }
void capture_session_end(const char *name, uint32_t id) {}

/* ---- what the relay sends either way parses ---- */

static struct adb_reader pc_view;    /* what the relay sent to the PC */
static struct adb_reader guest_view; /* and on the current guest link */

static void check_stream(struct adb_reader *r, const uint8_t *p, size_t len, const char *to)
{
	struct adb_frame_event fe;
	enum adb_reader_event ev;

	while ((ev = adb_reader_next(r, &p, &len, &fe)) != ADB_EV_NEED_MORE) {
		if (ev == ADB_EV_ERROR)
			fprintf(stderr, "malformed frame to the %s: %s\n", to, adb_strerror(fe.error));
		CHECK(ev != ADB_EV_ERROR);
	}
}

static void to_pc(const uint8_t *p, size_t len) { check_stream(&pc_view, p, len, "PC"); }
static void to_guest(const uint8_t *p, size_t len) { check_stream(&guest_view, p, len, "guest"); }
static void new_link(void) { adb_reader_init(&guest_view, ADB_MAX_PAYLOAD); }

static const struct harness_config harness = {
	.name = "fuzz",
	.buffer = BUDGET,
	.to_pc = to_pc,
	.to_guest = to_guest,
	.new_link = new_link,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- one input ---- */

static void turn(void)
{
	harness_turn(3);
	CHECK(pc.held_bytes <= BUDGET + PENDING_SLACK);
	if (!route.session_gone && route.sessions != NULL) {
		CHECK(route.sessions->to_host.bytes_pending <= BUDGET + PENDING_SLACK);
		CHECK(route.sessions->to_host.in_flight <= BATCHES_MAX);
	}
}

static int fd_debug;

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	CHECK(d != NULL);
	while ((e = readdir(d)) != NULL) {
		char path[300], target[256];
		ssize_t len;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		len = readlink(path, target, sizeof(target) - 1);
		if (len <= 0)
			continue;
		target[len] = '\0';
		/* sockets and event fds are ours and libuv's; libFuzzer's
		 * symbolizer adds pipes of its own */
		if (strncmp(target, "socket:", 7) != 0 && strncmp(target, "anon_inode:", 11) != 0)
			continue;
		if (fd_debug)
			fprintf(stderr, "fd %s -> %s\n", e->d_name, target);
		n++;
	}
	closedir(d);
	return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fds0 = -1;   /* after the first input: libuv keeps a few */
	int steps = 0;

	adb_reader_init(&pc_view, ADB_MAX_PAYLOAD);
	CHECK(harness_start(&harness) == 0);

	while (size >= 3 && !route.session_gone && steps++ < 256) {
		unsigned op = data[0] % 7;
		size_t len = (size_t)data[1] | (size_t)data[2] << 8;

		data += 3;
		size -= 3;
		if (len > size)
			len = size;
		switch (op) {
		case 0: harness_pc_send(data, len); break;
		case 1: harness_guest_write(data, len); break;   /* full or gone: the rest is lost */
		case 2: harness_guest_hang_up(); break;
		case 3: pc.holding = 1; break;
		case 4: pc.holding = 0; harness_pc_release(0); break;
		case 5: pc.base.on_read(&pc.base, UV_EOF, &(uv_buf_t){ NULL, 0 }); break;
		default: break;
		}
		data += len;
		size -= len;
		turn();
	}
	harness_close("end of input");
	for (int i = 0; i < 100 && !route.session_gone; i++)
		turn();
	CHECK(route.session_gone);
	CHECK(harness_finish() == 0);
	if (fds0 < 0)
		fds0 = count_fds();
	if (count_fds() != fds0) {
		fd_debug = 1;
		count_fds();
	}
	CHECK(count_fds() == fds0);
	return 0;
}
