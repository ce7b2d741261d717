/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_usb_function.c - a FunctionFS adb function (usb/function.c,
 * usb/bulk.c) on fake endpoint files: ep0 a FIFO the test writes events
 * into (and reads descriptors from), ep1 a FIFO, ep2 a regular file.
 * SETUP requests of any kind and length: IN ones take nothing from ep0
 * (the reply is empty), OUT ones take at most 256 bytes of their data;
 * floods of ENABLE, DISABLE, BIND, UNBIND and unknown events are counted,
 * keep the state right, and log with a fixed cause per kind (what the
 * relay rate-limits on), so that 20000 events make a handful of lines;
 * at most 8 IN transfers are in flight, a host that does not take them
 * holds no more.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/usb/ch9.h>
#include <linux/usb/functionfs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "relay/sys/sys.h"
#include "usb/usb.h"
#include "tests/unit/unit.h"

static uv_loop_t loop;
static struct usb_function fn;
static char dir[64];
static int ep0;                      /* the test's end of the ep0 FIFO */
static int closed;
static struct {
	unsigned online, offline, reports;   /* transitions, and every report */
	enum usb_state prev;
	unsigned lines, warnings;
	const void *causes[16];
	unsigned ncauses;
} ev;

static void on_state(struct usb_function *f, enum usb_state st, const char *why)
{
	(void)f;
	(void)why;
	ev.reports++;
	if (st == USB_ONLINE && ev.prev != USB_ONLINE)
		ev.online++;
	else if (st == USB_READY && ev.prev == USB_ONLINE)
		ev.offline++;
	ev.prev = st;
}

/* As the relay's route does (route.c: usb_log_line): rate-limited, the
 * cause being the line's format. */
static void on_log(struct usb_function *f, int warn, const void *cause, const char *msg)
{
	unsigned i;

	ev.lines++;
	ev.warnings += warn != 0;
	for (i = 0; i < ev.ncauses && ev.causes[i] != cause; i++)
		;
	if (i == ev.ncauses && ev.ncauses < 16)
		ev.causes[ev.ncauses++] = cause;
	log_limited(warn ? LOG_LVL_WARN : LOG_LVL_INFO, f->name, cause, "usb: %s", msg);
}

static void make_file(const char *name, int fifo)
{
	char p[128];

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	if (fifo)
		ck_assert_int_eq(mkfifo(p, 0600), 0);
	else
		ck_assert_int_eq(close(open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0600)), 0);
}

static void setup(void)
{
	char err[256], p[128], junk[4096];

	memset(&ev, 0, sizeof(ev));
	log_set_level(LOG_LVL_ERROR);
	snprintf(dir, sizeof(dir), "/tmp/test-usbf.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	make_file("ep0", 1);
	make_file("ep1", 1);
	make_file("ep2", 0);
	snprintf(p, sizeof(p), "%s/ep0", dir);
	ep0 = open(p, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	ck_assert_int_ge(ep0, 0);
	uv_loop_init(&loop);
	usb_set_log(on_log);
	ck_assert_msg(usb_function_open(&fn, &loop, dir, "test", on_state, NULL, err,
					sizeof(err)) == 0, "%s", err);
	while (read(ep0, junk, sizeof(junk)) > 0)     /* descriptors and strings */
		;
	ck_assert_int_eq(fn.state, USB_READY);
}

static void on_closed(struct usb_function *f)
{
	(void)f;
	closed = 1;
}

static void teardown(void)
{
	char p[128];

	closed = 0;
	usb_function_close(&fn, on_closed);
	while (!closed)
		uv_run(&loop, UV_RUN_ONCE);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
	close(ep0);
	usb_set_log(NULL);
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/ep%d", dir, i);
		unlink(p);
	}
	rmdir(dir);
}

/* Run the loop until ep0 is empty (the function read all it wanted). */
static void run_until_taken(void)
{
	for (int i = 0; i < 1000; i++) {
		int n = 0;

		uv_run(&loop, UV_RUN_NOWAIT);
		ck_assert_int_eq(ioctl(ep0, FIONREAD, &n), 0);
		if (n == 0)
			return;
	}
}

static void put_event(uint8_t *buf, size_t *len, uint8_t type, const struct usb_ctrlrequest *req)
{
	struct usb_functionfs_event e;

	memset(&e, 0, sizeof(e));
	e.type = type;
	if (req != NULL)
		e.u.setup = *req;
	memcpy(buf + *len, &e, sizeof(e));
	*len += sizeof(e);
}

/* A SETUP as the fourth event of a read (the function reads four at a
 * time), DATA bytes after it: how many of them the function took. */
static int setup_takes(uint8_t type, uint8_t request, uint16_t wlength, size_t data)
{
	struct usb_ctrlrequest req = { .bRequestType = type, .bRequest = request,
				       .wLength = wlength };
	uint8_t buf[4 * sizeof(struct usb_functionfs_event) + 1024];
	size_t len = 0;
	uint64_t setups = fn.st.setups;
	int left = 0;
	char junk[1024];

	for (int i = 0; i < 3; i++)
		put_event(buf, &len, FUNCTIONFS_SUSPEND, NULL);
	put_event(buf, &len, FUNCTIONFS_SETUP, &req);
	memset(buf + len, 0xa5, data);
	ck_assert_int_eq(write(ep0, buf, len + data), (ssize_t)(len + data));
	for (int i = 0; i < 1000 && fn.st.setups == setups; i++)
		uv_run(&loop, UV_RUN_NOWAIT);
	ck_assert_uint_eq(fn.st.setups, setups + 1);
	ck_assert_int_eq(ioctl(ep0, FIONREAD, &left), 0);
	while (read(ep0, junk, sizeof(junk)) > 0)      /* the rest: not events */
		;
	return (int)data - left;
}

START_TEST(setup_requests_any_kind_any_length)
{
	static const uint8_t types[] = { USB_TYPE_STANDARD, USB_TYPE_CLASS, USB_TYPE_VENDOR,
					 USB_TYPE_RESERVED };
	static const uint16_t lengths[] = { 0, 1, 64, 255, 256, 257, 4096, 65535 };

	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++)
		for (size_t l = 0; l < sizeof(lengths) / sizeof(lengths[0]); l++) {
			uint16_t w = lengths[l];
			size_t data = 300;
			int want = w < 256 ? w : 256;

			/* device to host: an empty reply, nothing of ep0 taken */
			ck_assert_int_eq(setup_takes(USB_DIR_IN | types[t] | USB_RECIP_INTERFACE,
						     (uint8_t)(l * 17), w, data), 0);
			/* host to device: up to 256 bytes of the data stage */
			ck_assert_msg(setup_takes(USB_DIR_OUT | types[t] | USB_RECIP_INTERFACE,
						  (uint8_t)(l * 17 + 1), w, data) == want,
				      "OUT wLength %u", w);
		}
	ck_assert_uint_eq(ev.warnings, 0);
	ck_assert_int_eq(fn.state, USB_READY);
}
END_TEST

/* 20000 events of every kind, unknown ones included: counted, the state
 * follows ENABLE and DISABLE, and the lines they cause come from a few
 * causes, which the relay's limiter holds to 5 lines each. */
START_TEST(event_floods_are_counted_and_rate_limited)
{
	static const uint8_t kinds[] = { FUNCTIONFS_BIND, FUNCTIONFS_ENABLE, FUNCTIONFS_DISABLE,
					 FUNCTIONFS_UNBIND, FUNCTIONFS_SUSPEND, FUNCTIONFS_RESUME,
					 99, 200 };
	uint8_t buf[250 * sizeof(struct usb_functionfs_event)];
	unsigned long long suppressed, emitted;
	uint64_t t0 = uv_hrtime(), windows;
	unsigned total = 0;

	log_set_level(LOG_LVL_INFO);         /* the lines reach the limiter */
	suppressed = log_suppressed_total();

	while (total < 20000) {
		size_t len = 0;

		for (int i = 0; i < 250; i++, total++)
			put_event(buf, &len, kinds[total % sizeof(kinds)], NULL);
		ck_assert_int_eq(write(ep0, buf, len), (ssize_t)len);
		run_until_taken();
	}
	ck_assert_uint_eq(fn.st.binds, 2500);
	ck_assert_uint_eq(fn.st.enables, 2500);
	ck_assert_uint_eq(fn.st.disables, 2500);
	ck_assert_uint_eq(fn.st.unbinds, 2500);
	ck_assert_uint_eq(ev.online, 2500);
	ck_assert_uint_eq(ev.offline, 2500);
	ck_assert_int_eq(fn.state, USB_READY);
	ck_assert_int_eq(fn.bound, 0);
	emitted = ev.lines - (log_suppressed_total() - suppressed);
	/* the limiter's windows (10 s) the flood spanned */
	windows = (uv_hrtime() - t0) / 10000000000ull + 1;
	fprintf(stderr, "usb: 20000 events: %u log calls from %u causes, %llu lines written\n",
		ev.lines, ev.ncauses, emitted);
	ck_assert_uint_ge(ev.lines, 5000);                 /* unknown ones and BIND at least */
	ck_assert_uint_le(ev.ncauses, 4);
	ck_assert_uint_le(emitted, 5 * ev.ncauses * (windows + 1));
}
END_TEST

static unsigned in_done;

static void on_in(struct usb_function *f, int status)
{
	(void)f;
	ck_assert_int_eq(status, 0);
	in_done++;
}

/* At most USB_IN_XFERS (8) transfers of 16 KiB in flight: a host that
 * takes none holds 128 KiB of the relay, no more; each one it takes frees
 * its slot. */
START_TEST(in_transfers_are_bounded)
{
	uint8_t buf[sizeof(struct usb_functionfs_event)];
	size_t len = 0;

	put_event(buf, &len, FUNCTIONFS_ENABLE, NULL);
	ck_assert_int_eq(write(ep0, buf, len), (ssize_t)len);
	run_until_taken();
	ck_assert_int_eq(fn.state, USB_ONLINE);
	usb_in_set_cb(&fn, on_in);
	in_done = 0;
	for (int i = 0; i < USB_IN_XFERS; i++) {
		uint8_t *p = usb_in_claim(&fn);

		ck_assert_ptr_nonnull(p);
		memset(p, 'i', USB_XFER_MAX);
		ck_assert_int_eq(usb_in_commit(&fn, USB_XFER_MAX), 0);
	}
	ck_assert_uint_eq(fn.in_inflight, USB_IN_XFERS);
	ck_assert_ptr_null(usb_in_claim(&fn));
	ck_assert_int_eq(usb_in_commit(&fn, USB_XFER_MAX), UV_ENOTCONN);
	ck_assert_int_eq(usb_in_commit(&fn, USB_XFER_MAX + 1), UV_ENOTCONN);
	/* the transfers complete (a regular file takes them): slots come back */
	for (int i = 0; i < 1000 && in_done < USB_IN_XFERS; i++)
		uv_run(&loop, UV_RUN_NOWAIT);
	ck_assert_uint_eq(in_done, USB_IN_XFERS);
	ck_assert_uint_eq(fn.in_inflight, 0);
	ck_assert_ptr_nonnull(usb_in_claim(&fn));
	ck_assert_int_eq(usb_in_commit(&fn, USB_XFER_MAX + 1), UV_EINVAL);
	ck_assert_int_eq(usb_in_commit(&fn, 0), UV_EINVAL);
}
END_TEST

int main(void)
{
	Suite *s;
	TCase *tc;

	/* qemu-user (UNIT_EMULATED) has no Linux AIO (io_setup: ENOSYS), which
	 * the function's bulk endpoints are driven with; on arm64 the function
	 * runs on a real kernel in the lab (vm/arm64-usb-gadget.test) */
	if (getenv("UNIT_EMULATED") != NULL) {
		printf("usb_function: not run under qemu-user (no Linux AIO there)\n");
		return 0;
	}
	s = suite_create("usb_function");
	tc = tcase_create("ep0");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, setup_requests_any_kind_any_length);
	tcase_add_test(tc, event_floods_are_counted_and_rate_limited);
	tcase_add_test(tc, in_transfers_are_bounded);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
