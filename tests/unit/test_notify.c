/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_notify.c - the systemd readiness protocol's environment, which the
 * service manager sets: NOTIFY_SOCKET must be an absolute path or an
 * abstract name that fits a Unix socket address, or nothing is sent (a
 * relative name is never resolved against the working directory);
 * WATCHDOG_USEC starts a watchdog only with NOTIFY_SOCKET set, a value
 * that parses whole and of 2 ms or more, and WATCHDOG_PID, when set,
 * naming this process (another process's watchdog, or garbage: none).
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "relay/sys/sys.h"
#include "tests/unit/unit.h"

static char dir[64];

/* A datagram socket bound at PATH ('@': abstract), non-blocking. */
static int listener(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	ck_assert_int_ge(fd, 0);
	memcpy(sun.sun_path, path, strlen(path));
	if (path[0] == '@')
		sun.sun_path[0] = '\0';
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, len), 0);
	return fd;
}

/* What came to FD: the datagram, or "" when nothing did. */
static const char *received(int fd)
{
	static char buf[64];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, 0);

	if (n < 0) {
		ck_assert_int_eq(errno, EAGAIN);
		n = 0;
	}
	buf[n] = '\0';
	return buf;
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test-notify.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

static void teardown(void)
{
	char p[128];

	snprintf(p, sizeof(p), "%s/notify.sock", dir);
	unlink(p);
	rmdir(dir);
}

START_TEST(notify_socket_must_be_absolute_and_fit)
{
	char abs[128], abstract[64], longp[160];
	int fd, afd;

	snprintf(abs, sizeof(abs), "%s/notify.sock", dir);
	fd = listener(abs);
	ck_assert_int_eq(notify_send("READY=1"), 0);          /* unset: nothing, no error */
	setenv("NOTIFY_SOCKET", "", 1);
	ck_assert_int_eq(notify_send("READY=1"), 0);
	ck_assert_str_eq(received(fd), "");

	/* relative: refused, though the working directory holds that socket */
	ck_assert_int_eq(chdir(dir), 0);
	setenv("NOTIFY_SOCKET", "notify.sock", 1);
	ck_assert_int_eq(notify_send("READY=1"), -EINVAL);
	setenv("NOTIFY_SOCKET", "./notify.sock", 1);
	ck_assert_int_eq(notify_send("READY=1"), -EINVAL);
	ck_assert_str_eq(received(fd), "");

	/* too long for sun_path (108 bytes, its NUL included): refused, not cut */
	memset(longp, 'x', sizeof(longp));
	snprintf(longp, sizeof(longp), "%s/", dir);
	longp[strlen(longp)] = 'x';
	longp[108] = '\0';
	setenv("NOTIFY_SOCKET", longp, 1);
	ck_assert_int_eq(notify_send("READY=1"), -EINVAL);
	longp[0] = '@';
	setenv("NOTIFY_SOCKET", longp, 1);
	ck_assert_int_eq(notify_send("READY=1"), -EINVAL);
	ck_assert_str_eq(received(fd), "");

	/* no socket there: the error, nothing else */
	snprintf(longp, sizeof(longp), "%s/none.sock", dir);
	setenv("NOTIFY_SOCKET", longp, 1);
	ck_assert_int_eq(notify_send("READY=1"), -ENOENT);

	setenv("NOTIFY_SOCKET", abs, 1);
	ck_assert_int_eq(notify_send("READY=1"), 0);
	ck_assert_str_eq(received(fd), "READY=1");
	snprintf(abstract, sizeof(abstract), "@test-notify-%ld", (long)getpid());
	afd = listener(abstract);
	setenv("NOTIFY_SOCKET", abstract, 1);
	ck_assert_int_eq(notify_send("STOPPING=1"), 0);
	ck_assert_str_eq(received(afd), "STOPPING=1");
	close(afd);
	close(fd);
}
END_TEST

/* notify_watchdog_start with the environment as given: its interval in
 * ms (0: no watchdog), and whether its timer runs. */
static uint64_t watchdog(const char *usec, const char *pid, int *active)
{
	uv_loop_t loop;
	uv_timer_t t;
	uint64_t ms;

	if (usec != NULL)
		setenv("WATCHDOG_USEC", usec, 1);
	else
		unsetenv("WATCHDOG_USEC");
	if (pid != NULL)
		setenv("WATCHDOG_PID", pid, 1);
	else
		unsetenv("WATCHDOG_PID");
	uv_loop_init(&loop);
	ms = notify_watchdog_start(&loop, &t);
	*active = uv_is_active((uv_handle_t *)&t);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
	return ms;
}

START_TEST(watchdog_only_for_this_process)
{
	char me[32], parent[32], me_junk[40], me_space[40];
	int active;

	snprintf(me, sizeof(me), "%ld", (long)getpid());
	snprintf(parent, sizeof(parent), "%ld", (long)getppid());
	snprintf(me_junk, sizeof(me_junk), "%ldx", (long)getpid());
	snprintf(me_space, sizeof(me_space), "%ld 1", (long)getpid());
	setenv("NOTIFY_SOCKET", "/run/systemd/notify", 1);

	ck_assert_uint_eq(watchdog("400000", me, &active), 400);
	ck_assert(active);
	ck_assert_uint_eq(watchdog("400000", NULL, &active), 400);    /* no pid: ours */
	ck_assert(active);

	ck_assert_uint_eq(watchdog("400000", "1", &active), 0);       /* another process's */
	ck_assert(!active);
	ck_assert_uint_eq(watchdog("400000", parent, &active), 0);
	ck_assert(!active);
	ck_assert_uint_eq(watchdog("400000", "", &active), 0);        /* garbage */
	ck_assert(!active);
	ck_assert_uint_eq(watchdog("400000", "abc", &active), 0);
	ck_assert(!active);
	ck_assert_uint_eq(watchdog("400000", me_junk, &active), 0);
	ck_assert(!active);
	ck_assert_uint_eq(watchdog("400000", me_space, &active), 0);
	ck_assert(!active);

	ck_assert_uint_eq(watchdog("400000x", me, &active), 0);       /* the interval */
	ck_assert(!active);
	ck_assert_uint_eq(watchdog("", me, &active), 0);
	ck_assert(!active);
	ck_assert_uint_eq(watchdog("1999", me, &active), 0);          /* under 2 ms */
	ck_assert(!active);
	ck_assert_uint_eq(watchdog(NULL, me, &active), 0);
	ck_assert(!active);

	unsetenv("NOTIFY_SOCKET");                                     /* nowhere to send */
	ck_assert_uint_eq(watchdog("400000", me, &active), 0);
	ck_assert(!active);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("notify");
	TCase *tc = tcase_create("environment");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, notify_socket_must_be_absolute_and_fit);
	tcase_add_test(tc, watchdog_only_for_this_process);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
