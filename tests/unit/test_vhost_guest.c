/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_vhost_guest.c - the virtio device against a hostile guest on real
 * rings (the synthetic driver in a child process) and hostile hybrid
 * clients, on a real loop with the device's own deadline timer: a REQUEST
 * the guest never answers fails the connect with ETIMEDOUT and an RST; 300
 * relay streams that hang up while connecting each free their slot (RST to
 * the guest) and a later connect works; malformed RX buffers, also at the
 * head of the ring when data goes straight into guest buffers, all come
 * back empty and counted while the data still arrives whole; clients that
 * send no CONNECT line are closed after VHU_HYBRID_COMMAND_MS.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "relay/sys/sys.h"
#include "tests/vhost/driver.h"
#include "vsock/virtio/virtio.h"
#include "tests/unit/unit.h"

#define GUEST_CID 3
#define SILENT_PORT 5555      /* the guest never answers REQUESTs to it */
#define OPEN_PORT 5556        /* it accepts these */
#define FLOOD 300

static uv_loop_t loop;
static struct vhu_device dev;
static char dir[64], path[128];
static int stopped;
static char logbuf[4096];
static struct {
	int connected, status, closed;
	double at;
} ev;

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void on_connected(struct vvs_conn *c, int status)
{
	ev.connected++;
	ev.status = status;
	ev.at = now_s();
	if (status != 0)
		vvs_release(c);
}

static void on_closed(struct vvs_conn *c, const char *why)
{
	(void)why;
	ev.closed++;
	vvs_release(c);
}

static const struct vvs_ops plain_ops = { .connected = on_connected, .closed = on_closed };

static void capture_log(struct vhu_device *d, int warn, const void *cause, const char *msg)
{
	size_t len = strlen(logbuf);

	(void)d;
	(void)warn;
	(void)cause;
	snprintf(logbuf + len, sizeof(logbuf) - len, "%s\n", msg);
}

static void on_stopped(struct vhu_device *d)
{
	(void)d;
	stopped = 1;
}

static void start(const struct vvs_ops *ops)
{
	char err[128];

	memset(&ev, 0, sizeof(ev));
	logbuf[0] = '\0';
	snprintf(dir, sizeof(dir), "/tmp/test-vhg.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/vhost.sock", dir);
	uv_loop_init(&loop);
	ck_assert_int_eq(vhu_start(&dev, &loop, path, GUEST_CID, ops, NULL, err, sizeof(err)), 0);
	dev.log = capture_log;
}

static void stop(void)
{
	stopped = 0;
	vhu_stop(&dev, on_stopped);
	for (double end = now_s() + 10; !stopped; ) {
		ck_assert(now_s() < end);
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(200);
	}
	ck_assert_int_eq(uv_loop_close(&loop), 0);
	rmdir(dir);
}

/* Run the loop until *flag, or the child exits (then *status is set). */
static int run_until(const int *flag, pid_t child, int *status, double secs)
{
	for (double end = now_s() + secs; now_s() < end; ) {
		uv_run(&loop, UV_RUN_NOWAIT);
		if (flag != NULL && *flag)
			return 0;
		if (child > 0 && waitpid(child, status, WNOHANG) == child)
			return 0;
		usleep(200);
	}
	return -1;
}

static void wait_ready(void)
{
	for (double end = now_s() + 10; !vhu_ready(&dev); ) {
		ck_assert(now_s() < end);
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(200);
	}
}

static void reap(pid_t pid)
{
	int status = -1;

	ck_assert_int_eq(run_until(NULL, pid, &status, 20), 0);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
}

/* ---- the guest ---- */

static int reply(struct vdrv *v, const struct vvs_hdr *to, uint16_t op, uint32_t fwd_cnt)
{
	struct vvs_hdr r = { .src_cid = GUEST_CID, .dst_cid = VVS_HOST_CID,
			     .src_port = to->dst_port, .dst_port = to->src_port,
			     .type = VVS_TYPE_STREAM, .op = op, .buf_alloc = VVS_BUF,
			     .fwd_cnt = fwd_cnt };

	return vdrv_send(v, &r, NULL, 0);
}

/* Never answers REQUESTs to SILENT_PORT; accepts OPEN_PORT. Exits 0 once
 * it has seen `resets` RSTs on the silent port and then, if `accept` is
 * set, one accepted connection closed by the host. */
static int guest_silent(int resets, int accept)
{
	static uint8_t buf[VVS_MAX_PAYLOAD];
	struct vdrv v;
	struct vvs_hdr h;
	int seen = 0, accepted = !accept;

	if (vdrv_open(&v, path, 4096) != 0)
		return 10;
	while (seen < resets || !accepted) {
		if (vdrv_recv(&v, &h, buf, sizeof(buf), 10000) <= 0) {
			fprintf(stderr, "guest: %d of %d RSTs, then nothing\n", seen, resets);
			return 11;
		}
		if (h.dst_port == SILENT_PORT) {
			seen += h.op == VVS_OP_RST;
		} else if (h.op == VVS_OP_REQUEST) {
			if (reply(&v, &h, VVS_OP_RESPONSE, 0) != 0)
				return 12;
		} else if (h.op == VVS_OP_SHUTDOWN) {
			accepted = reply(&v, &h, VVS_OP_RST, 0) == 0;
		}
	}
	vdrv_close(&v);
	return 0;
}

#define BAD_RX 16
#define RX_TOTAL (2u << 20)

/* Accepts one connection, then posts BAD_RX malformed RX buffers behind
 * its good ones, and receives RX_TOTAL bytes, crediting them as it goes.
 * Exits 0 if every malformed buffer came back. */
static int guest_bad_rx(void)
{
	static uint8_t buf[VVS_MAX_PAYLOAD];
	struct vdrv v;
	struct vvs_hdr h;
	uint32_t got = 0;

	if (vdrv_open(&v, path, VVS_MAX_PKT) != 0)   /* 8 buffers: descriptors to spare */
		return 10;
	if (vdrv_recv(&v, &h, buf, sizeof(buf), 10000) != 1 || h.op != VVS_OP_REQUEST)
		return 11;
	for (uint16_t i = 0; i < BAD_RX; i++)
		vdrv_post_bad_rx(&v, (uint16_t)(v.nrx + i), (enum vdrv_bad)(i % VDRV_BAD_KINDS));
	if (reply(&v, &h, VVS_OP_RESPONSE, 0) != 0)
		return 12;
	while (got < RX_TOTAL || v.rx_bad_back < BAD_RX) {
		int rc = vdrv_recv(&v, &h, buf, sizeof(buf), 10000);

		if (rc <= 0) {
			fprintf(stderr, "guest: %u bytes, %llu of %d bad buffers back\n", got,
				(unsigned long long)v.rx_bad_back, BAD_RX);
			return 13;
		}
		if (h.op != VVS_OP_RW)
			continue;
		for (uint32_t i = 0; i < h.len; i++)
			if (buf[i] != (uint8_t)(got + i))
				return 14;
		got += h.len;
		if (reply(&v, &h, VVS_OP_CREDIT_UPDATE, got) != 0)
			return 15;
	}
	vdrv_close(&v);
	return 0;
}

/* ---- tests ---- */

/* The device's own timer, on the loop: no answer to REQUEST within the
 * connect timeout fails the connect and resets the guest's side. */
START_TEST(connect_timeout_fires_on_the_loop)
{
	pid_t pid;
	double t0;

	start(&plain_ops);
	dev.vvs.connect_timeout_ms = 300;
	pid = fork();
	if (pid == 0)
		_exit(guest_silent(1, 0));
	wait_ready();
	t0 = now_s();
	ck_assert_ptr_nonnull(vvs_connect(&dev.vvs, SILENT_PORT, NULL));
	ck_assert_int_eq(run_until(&ev.connected, 0, NULL, 5), 0);
	ck_assert_int_eq(ev.status, -ETIMEDOUT);
	ck_assert(ev.at - t0 >= 0.3 && ev.at - t0 < 0.3 + 2.0 * VHU_EXPIRE_TICK_MS / 1000);
	ck_assert_uint_eq(dev.vvs.st.connect_timeouts, 1);
	reap(pid);                               /* it saw the RST */
	ck_assert_uint_eq(dev.vvs.nconns, 0);
	stop();
}
END_TEST

/* The relay's connect gives up (its socket closes) before the guest
 * answered: the device notices, resets the guest's side and frees the
 * slot, FLOOD times; then a connect to a port the guest serves works. */
START_TEST(hangup_while_connecting_frees_the_slot)
{
	char line[32];
	size_t len = 0;
	int fds0, sv[2];
	pid_t pid;

	start(&vhu_hybrid_ops);
	fds0 = procstat_open_fds();
	pid = fork();
	if (pid == 0)
		_exit(guest_silent(FLOOD, 1));
	wait_ready();
	for (int i = 0; i < FLOOD; i++) {
		ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
		ck_assert_int_eq(vhu_hybrid_serve(&dev, sv[1]), 0);
		ck_assert_int_eq(write(sv[0], "CONNECT 5555\n", 13), 13);
		for (double end = now_s() + 5; dev.vvs.nconns != 1; ) {
			ck_assert_msg(now_s() < end, "connect %d: %u connections", i, dev.vvs.nconns);
			uv_run(&loop, UV_RUN_NOWAIT);
		}
		close(sv[0]);
		for (double end = now_s() + 5; dev.vvs.nconns != 0 || dev.streams != NULL; ) {
			ck_assert_msg(now_s() < end, "hang-up %d: slot kept", i);
			uv_run(&loop, UV_RUN_NOWAIT);
		}
	}
	ck_assert_uint_eq(dev.vvs.st.connect_timeouts, 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	ck_assert_int_eq(vhu_hybrid_serve(&dev, sv[1]), 0);
	ck_assert_int_eq(write(sv[0], "CONNECT 5556\n", 13), 13);
	for (double end = now_s() + 5; len == 0 || line[len - 1] != '\n'; ) {
		ssize_t n = read(sv[0], line + len, 1);

		ck_assert_msg(n != 0, "closed before OK");
		len += n > 0;
		ck_assert(len < sizeof(line) && now_s() < end);
		uv_run(&loop, UV_RUN_NOWAIT);
	}
	ck_assert(strncmp(line, "OK ", 3) == 0);
	close(sv[0]);
	reap(pid);                               /* FLOOD RSTs, then the accepted one */
	ck_assert_int_eq(procstat_open_fds(), fds0);
	stop();
}
END_TEST

/* Data goes straight into guest buffers when nothing waits; the buffers at
 * the head of the ring are malformed: each is returned empty, counted, and
 * the data reaches the guest whole in the good ones. */
START_TEST(malformed_rx_buffers_are_returned)
{
	static uint8_t data[RX_TOTAL];
	struct vvs_conn *c;
	size_t sent = 0;
	pid_t pid;
	int status = -1, done = 0;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)i;
	start(&plain_ops);
	pid = fork();
	if (pid == 0)
		_exit(guest_bad_rx());
	wait_ready();
	c = vvs_connect(&dev.vvs, OPEN_PORT, NULL);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(run_until(&ev.connected, 0, NULL, 5), 0);
	ck_assert_int_eq(ev.status, 0);
	for (double end = now_s() + 20; !done; ) {
		ck_assert_msg(now_s() < end, "%zu bytes sent, %llu bad chains", sent,
			      (unsigned long long)dev.st.bad_chains);
		if (sent < sizeof(data))
			sent += vvs_write(c, data + sent, sizeof(data) - sent);
		uv_run(&loop, UV_RUN_NOWAIT);
		done = waitpid(pid, &status, WNOHANG) == pid;
	}
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert_uint_eq(dev.st.bad_chains, BAD_RX);
	ck_assert_ptr_nonnull(strstr(logbuf, "rx chain"));
	ck_assert_int_eq(run_until(&ev.closed, 0, NULL, 5), 0);   /* the VMM went with it */
	stop();
}
END_TEST

/* Clients that say nothing, or half a command, are closed at the deadline;
 * one is logged per client (each through the same format: one cause). */
START_TEST(client_without_connect_line_is_closed)
{
	int a[2], b[2];
	double t0;
	char ch;

	start(&vhu_hybrid_ops);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, a), 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, b), 0);
	t0 = now_s();
	ck_assert_int_eq(vhu_hybrid_serve_client(&dev, a[1]), 0);
	ck_assert_int_eq(vhu_hybrid_serve_client(&dev, b[1]), 0);
	ck_assert_int_eq(write(b[0], "CONN", 4), 4);
	for (double end = t0 + VHU_HYBRID_COMMAND_MS / 1000.0 + 2; dev.streams != NULL; ) {
		ck_assert_msg(now_s() < end, "clients not closed");
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	ck_assert(now_s() - t0 >= VHU_HYBRID_COMMAND_MS / 1000.0 - 0.05);
	ck_assert_int_eq(read(a[0], &ch, 1), 0);
	ck_assert_int_eq(read(b[0], &ch, 1), 0);
	ck_assert_ptr_nonnull(strstr(logbuf, "hybrid client refused: no CONNECT line within 5000 ms"));
	close(a[0]);
	close(b[0]);
	stop();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vhost_guest");
	TCase *tc = tcase_create("hostile");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, connect_timeout_fires_on_the_loop);
	tcase_add_test(tc, hangup_while_connecting_frees_the_slot);
	tcase_add_test(tc, malformed_rx_buffers_are_returned);
	tcase_add_test(tc, client_without_connect_line_is_closed);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
