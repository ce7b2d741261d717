/*
 * test_vhost_user.c - the vhost-user device against the synthetic driver
 * in child processes: QEMU's set-up sequence, a vsock connection with data
 * both ways through real rings in shared memory (RX buffers of 4 KiB and
 * 64 KiB), and hundreds of VMM connect / set-up / disconnect cycles, some
 * killed in the middle of set-up, with the relay's descriptors and memory
 * back where they started. VHU_CYCLES sets the count (make soak: 2000).
 * One-way flows of VHU_FLOW_MIB (256) MiB each way, with 4 KiB and 64 KiB
 * RX buffers: no credit stall, every byte checked.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "driver.h"
#include "flow.h"
#include "procstat.h"
#include "vhost_user.h"
#include "unit.h"

#define GUEST_CID 3
#define PORT 5555

static uv_loop_t loop;
static struct vhu_device dev;
static char dir[64], path[128];
static int stopped;
static struct {
	int connected, status, closed;
	struct vvs_conn *c;
	uint8_t *got;
	size_t ngot;
	int manual;          /* the test reads for itself */
} ev;

static void on_connected(struct vvs_conn *c, int status)
{
	ev.connected++;
	ev.status = status;
	ev.c = c;
}

static void on_readable(struct vvs_conn *c)
{
	if (ev.manual)
		return;
	ev.ngot += vvs_read(c, ev.got + ev.ngot, (1u << 20) - ev.ngot);
}

static void on_closed(struct vvs_conn *c, const char *why)
{
	(void)why;
	ev.closed++;
	vvs_release(c);
}

static const struct vvs_ops ops = { .connected = on_connected, .readable = on_readable,
				    .closed = on_closed };

static void on_stopped(struct vhu_device *d)
{
	(void)d;
	stopped = 1;
}

/* the device's problems, in the test log */
static void warn_log(struct vhu_device *d, int warn, const char *msg)
{
	(void)d;
	if (warn)
		fprintf(stderr, "vhost-user: %s\n", msg);
}

static void setup(void)
{
	char err[128];

	memset(&ev, 0, sizeof(ev));
	ev.got = malloc(1u << 20);
	snprintf(dir, sizeof(dir), "/tmp/test-vhu.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/vhost.sock", dir);
	uv_loop_init(&loop);
	ck_assert_int_eq(vhu_start(&dev, &loop, path, GUEST_CID, &ops, NULL, err, sizeof(err)), 0);
	dev.log = warn_log;
}

static void teardown(void)
{
	stopped = 0;
	vhu_stop(&dev, on_stopped);
	while (!stopped)
		uv_run(&loop, UV_RUN_ONCE);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
	rmdir(dir);
	free(ev.got);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Run the loop until *flag (or the child, if any, exits); 0 on time. */
static int run_until(const int *flag, pid_t child, int *child_status, double secs)
{
	double end = now_s() + secs;

	while (now_s() < end) {
		uv_run(&loop, UV_RUN_NOWAIT);
		if (flag != NULL && *flag)
			return 0;
		if (child > 0 && waitpid(child, child_status, WNOHANG) == child)
			return 0;
		usleep(200);
	}
	return -1;
}

/* ---- children ---- */

/* A guest with a stream socket listening on PORT that echoes. */
static int guest_echo(size_t rxbuf)
{
	static uint8_t buf[VVS_MAX_PAYLOAD];
	struct vdrv v;
	struct vvs_hdr h, r;
	uint32_t fwd = 0;

	if (vdrv_open(&v, path, rxbuf) != 0)
		return 10;
	if (v.guest_cid != GUEST_CID) {
		fprintf(stderr, "guest: config says CID %llu\n", (unsigned long long)v.guest_cid);
		return 11;
	}
	for (;;) {
		int rc = vdrv_recv(&v, &h, buf, sizeof(buf), 10000);

		if (rc <= 0) {
			fprintf(stderr, "guest: receive failed (%d)\n", rc);
			return 12;
		}
		r = (struct vvs_hdr){ .src_cid = GUEST_CID, .dst_cid = VVS_HOST_CID,
				      .src_port = PORT, .dst_port = h.src_port,
				      .type = VVS_TYPE_STREAM, .buf_alloc = VVS_BUF };
		if (h.op == VVS_OP_REQUEST) {
			r.op = VVS_OP_RESPONSE;
			r.fwd_cnt = fwd;
			if (vdrv_send(&v, &r, NULL, 0) != 0)
				return 13;
		} else if (h.op == VVS_OP_RW) {
			fwd += h.len;           /* consumed at once */
			r.op = VVS_OP_RW;
			r.fwd_cnt = fwd;
			if (vdrv_send(&v, &r, buf, h.len) != 0)
				return 14;
		} else if (h.op == VVS_OP_SHUTDOWN) {
			r.op = VVS_OP_RST;
			vdrv_send(&v, &r, NULL, 0);
			break;
		}
	}
	vdrv_close(&v);
	return 0;
}

static void echo_test(size_t rxbuf, size_t total)
{
	uint8_t *data = malloc(total);
	int status = -1, connected_flag;
	size_t sent = 0;
	pid_t pid;

	for (size_t i = 0; i < total; i++)
		data[i] = (uint8_t)(i * 13 + i / 4099);
	pid = fork();
	if (pid == 0)
		_exit(guest_echo(rxbuf));
	/* the device is ready once the guest's rx ring is enabled */
	for (double end = now_s() + 10; !(dev.q[0].enabled && dev.q[1].enabled); ) {
		ck_assert(now_s() < end);
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(200);
	}
	struct vvs_conn *c = vvs_connect(&dev.vvs, PORT, NULL);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(run_until(&ev.connected, 0, NULL, 10), 0);
	ck_assert_int_eq(ev.status, 0);
	connected_flag = 0;
	for (double end = now_s() + 30; ev.ngot < total; ) {
		ck_assert_msg(now_s() < end, "echoed %zu of %zu bytes", ev.ngot, total);
		if (sent < total)
			sent += vvs_write(c, data + sent, total - sent);
		uv_run(&loop, UV_RUN_NOWAIT);
		on_readable(c);
	}
	ck_assert_mem_eq(ev.got, data, total);
	vvs_release(c);
	ck_assert_int_eq(run_until(&connected_flag, pid, &status, 10), 0);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert_uint_eq(dev.st.bad_chains, 0);
	free(data);
}

START_TEST(echo_4k_rx_buffers)
{
	echo_test(4096, 300000);
}
END_TEST

START_TEST(echo_64k_rx_buffers)
{
	echo_test(VVS_HDR_SIZE + VVS_MAX_PAYLOAD, 1000000);
}
END_TEST

/* ---- one-way flows: no credit stall, no byte lost, any RX buffer size ---- */

static void flow_test(size_t rxbuf, int to_guest, size_t chunk)
{
	uint64_t total = (uint64_t)(getenv("VHU_FLOW_MIB") ? atoi(getenv("VHU_FLOW_MIB")) : 256) << 20;
	int status = -1, never = 0;
	char err[128];
	double rate;
	pid_t pid = fork();

	if (pid == 0)
		_exit(vflow_guest(path, GUEST_CID, PORT, rxbuf, to_guest, total, chunk));
	ev.manual = 1;
	for (double end = now_s() + 10; !vhu_ready(&dev); ) {
		ck_assert(now_s() < end);
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(200);
	}
	rate = vflow_host(&loop, &dev, PORT, to_guest, total, chunk, err, sizeof(err));
	ck_assert_msg(rate > 0, "%s", err);
	ck_assert_int_eq(run_until(&never, pid, &status, 60), 0);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	fprintf(stderr, "vhost-user: %llu MiB %s, %zu-byte RX buffers: %.0f MiB/s\n",
		(unsigned long long)(total >> 20), to_guest ? "host->guest" : "guest->host", rxbuf, rate);
}

START_TEST(one_way_to_guest_4k)
{
	flow_test(4096, 1, VVS_MAX_PAYLOAD);
}
END_TEST

START_TEST(one_way_to_guest_64k)
{
	flow_test(VVS_HDR_SIZE + VVS_MAX_PAYLOAD, 1, VVS_MAX_PAYLOAD);
}
END_TEST

START_TEST(one_way_to_host_4k)
{
	flow_test(4096, 0, 4096 - VVS_HDR_SIZE);
}
END_TEST

START_TEST(one_way_to_host_64k)
{
	flow_test(VVS_HDR_SIZE + VVS_MAX_PAYLOAD, 0, VVS_MAX_PAYLOAD);
}
END_TEST

/* VMMs that come and go: complete set-ups, and processes killed after
 * any number of set-up messages. Nothing of theirs may stay behind. */
START_TEST(vmm_cycles_leave_nothing_behind)
{
	int cycles = getenv("VHU_CYCLES") ? atoi(getenv("VHU_CYCLES")) : 200;
	int fds0, fds1;
	long rss0, rss1;

	for (int i = 0; i < cycles + 20; i++) {
		int status, gone = 0;
		pid_t pid;

		if (i == 20) {        /* warmed up: measure from here */
			fds0 = procstat_open_fds();
			rss0 = procstat_rss_kib();
		}
		pid = fork();
		if (pid == 0) {
			struct vdrv v;
			int steps = i % 3 == 0 ? -1 : i % 23;   /* full, or cut short */
			int rc = steps < 0 ? vdrv_open(&v, path, 4096) : vdrv_open_partial(&v, path, steps);
			_exit(rc == 0 ? 0 : 20);  /* no clean-up: the kernel closes it all */
		}
		ck_assert_int_eq(run_until(NULL, pid, &status, 10), 0);
		ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "cycle %d: driver failed", i);
		for (double end = now_s() + 5; dev.conn_fd >= 0 || dev.handles_open > 2; ) {
			ck_assert_msg(now_s() < end, "cycle %d: VMM not dropped", i);
			uv_run(&loop, UV_RUN_NOWAIT);
			usleep(100);
		}
		(void)gone;
	}
	fds1 = procstat_open_fds();
	rss1 = procstat_rss_kib();
	ck_assert_int_eq(fds1, fds0);
	ck_assert_int_lt(rss1 - rss0, 1024);
	ck_assert_uint_eq(dev.st.connects, (uint64_t)cycles + 20);
	ck_assert_uint_eq(dev.st.disconnects, (uint64_t)cycles + 20);
	fprintf(stderr, "vhost-user: %d VMM cycles: fds %d -> %d, rss %ld -> %ld KiB\n", cycles,
		fds0, fds1, rss0, rss1);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("vhost_user");
	TCase *tc = tcase_create("device");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, echo_4k_rx_buffers);
	tcase_add_test(tc, echo_64k_rx_buffers);
	tcase_add_test(tc, one_way_to_guest_4k);
	tcase_add_test(tc, one_way_to_guest_64k);
	tcase_add_test(tc, one_way_to_host_4k);
	tcase_add_test(tc, one_way_to_host_64k);
	tcase_add_test(tc, vmm_cycles_leave_nothing_behind);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
