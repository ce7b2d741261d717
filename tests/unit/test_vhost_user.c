/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_vhost_user.c - the vhost-user device against the synthetic driver
 * in child processes: QEMU's set-up sequence, a vsock connection with data
 * both ways through real rings in shared memory (RX buffers of 4 KiB and
 * 64 KiB), and hundreds of VMM connect / set-up / disconnect cycles, some
 * killed in the middle of set-up, with the relay's descriptors and memory
 * back where they started. VHU_CYCLES sets the count (make soak: 2000).
 * One-way flows of VHU_FLOW_MIB (256) MiB each way, with 4 KiB and 64 KiB
 * RX buffers: no credit stall, every byte checked; the RX pages the device
 * fills in holes of guest memory each charged once to the hole budget.
 * The hybrid socket for other host programs: a plain Unix-socket client
 * sends "CONNECT <port>", gets "OK <n>" and an echo; refused ports,
 * malformed commands, clients with no VMM or beyond the limit are closed;
 * the socket moves without disturbing the VMM; the registry opens, moves
 * and closes it as told; no descriptor is left behind.
 * Hostile VMMs, played by the test on the device's own loop: a message
 * dribbled byte by byte is served while the loop runs on; one left
 * unfinished, or replies left unread, drop the VMM; wrong payload sizes,
 * unsealed memory and kick or call descriptors that are no eventfds are
 * refused; a kick that cannot be read fails the device once; the socket
 * path takes only a socket, made 0600 whatever the umask.
 * The message layer: a second VMM is refused; a bad version or a size over
 * 512 drops the VMM at the header; a flood of messages is taken 32 a loop
 * turn; more than 8 descriptors, or descriptors the relay cannot take
 * (MSG_CTRUNC), drop the VMM; descriptors no request adopts are closed;
 * overlapping regions keep every extent inside one region; a memfd grown
 * after SET_MEM_TABLE leaves the mapping as it was.
 * Each request's own rule: unknown requests nacked or ignored, features
 * only as offered, RESET_OWNER dropping everything, ring indices, sizes,
 * bases, enables and addresses, config offsets. Kicks that fire 1024 times
 * with nothing new fail the device; the RX hole budget outlives resets and
 * VMM connections and comes back at 16 MiB an hour; the eventfd guard (the
 * test stands in for preadv2 and timer_settime) ends a kick read without
 * RWF_NOWAIT and a call write whose first expiry came before the call. A
 * relay out of descriptors sheds hybrid clients without spinning.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "relay/sys/sys.h"
#include "tests/vhost/driver.h"
#include "tests/vhost/flow.h"
#include "vsock/virtio/vhu_internal.h"
#include "vsock/virtio/virtio.h"
#include "vsock/vsock.h"
#include "tests/unit/unit.h"

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
	int deliver;         /* flows: take data with vflow_deliver */
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

static char closed_why[128];

static void on_closed(struct vvs_conn *c, const char *why)
{
	snprintf(closed_why, sizeof(closed_why), "%s", why);
	ev.closed++;
	vvs_release(c);
}

/* flows that ask for it take the guest's data straight from its packets */
static size_t on_deliver(struct vvs_conn *c, const uint8_t *p, size_t len)
{
	return ev.deliver ? vflow_deliver(c, p, len) : 0;
}

static const struct vvs_ops ops = { .connected = on_connected, .readable = on_readable,
				    .closed = on_closed, .deliver = on_deliver };

static void on_stopped(struct vhu_device *d)
{
	(void)d;
	stopped = 1;
}

/* the device's problems, in the test log */
static void warn_log(struct vhu_device *d, int warn, const void *cause, const char *msg)
{
	(void)d;
	(void)cause;
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
	echo_test(VVS_MAX_PKT, 1000000);
}
END_TEST

/* ---- one-way flows: no credit stall, no byte lost, any RX buffer size ---- */

static void flow_test(size_t rxbuf, int to_guest, size_t chunk, int deliver)
{
	/* 256 MiB: thousands of ring wraps; under qemu-user (UNIT_EMULATED),
	 * where the device moves a few MiB/s, 64 MiB keeps within the bounds */
	const char *mib = getenv("VHU_FLOW_MIB");
	uint64_t total = (uint64_t)(mib ? atoi(mib) : getenv("UNIT_EMULATED") ? 64 : 256) << 20;
	int status = -1, never = 0;
	char err[128];
	double rate;
	pid_t pid = fork();

	if (pid == 0)
		_exit(vflow_guest(path, GUEST_CID, PORT, rxbuf, to_guest, total, chunk));
	ev.manual = 1;
	ev.deliver = deliver;
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
	fprintf(stderr, "vhost-user: %llu MiB %s, %zu-byte RX buffers%s: %.0f MiB/s\n",
		(unsigned long long)(total >> 20), to_guest ? "host->guest" : "guest->host", rxbuf,
		deliver ? ", delivered" : "", rate);
}

/* The driver never writes its RX area before posting it: 128 pages of
 * holes, which the device fills (VDRV_RX_BYTES of 4 KiB buffers, page
 * aligned). Each comes off the hole budget once, whatever the device
 * learnt of them earlier in the pass: at most the 128, and at least 128
 * less what the budget got back meanwhile (a page every 879 ms). */
START_TEST(one_way_to_guest_4k)
{
	const size_t rx_pages = VDRV_RX_BYTES / 4096, budget = 4096;
	double t0 = now_s();
	size_t spent, refilled;

	ck_assert_uint_eq(dev.hole_pages, budget);
	flow_test(4096, 1, VVS_MAX_PAYLOAD, 0);
	spent = budget - dev.hole_pages;
	refilled = (size_t)((now_s() - t0) / 0.878) + 1;
	ck_assert_msg(spent <= rx_pages && spent + refilled >= rx_pages,
		      "%zu RX pages filled in holes, %zu charged (%zu back since)", rx_pages, spent,
		      refilled);
}
END_TEST

START_TEST(one_way_to_guest_64k)
{
	flow_test(VVS_MAX_PKT, 1, VVS_MAX_PAYLOAD, 0);
}
END_TEST

/* read from the connection's queue (4 KiB) and taken straight from the
 * guest's packets (64 KiB) */
START_TEST(one_way_to_host_4k)
{
	flow_test(4096, 0, 4096 - VVS_HDR_SIZE, 0);
}
END_TEST

START_TEST(one_way_to_host_64k)
{
	flow_test(VVS_MAX_PKT, 0, VVS_MAX_PAYLOAD, 1);
}
END_TEST

/* VMMs that come and go: complete set-ups, and processes killed after
 * any number of set-up messages. Nothing of theirs may stay behind. */
START_TEST(vmm_cycles_leave_nothing_behind)
{
	int cycles = getenv("VHU_CYCLES") ? atoi(getenv("VHU_CYCLES")) : 200;
	int fds0 = 0, fds1, idle_handles = dev.handles_open;
	long held0 = 0, held1;

	for (int i = 0; i < cycles + 20; i++) {
		int status;
		pid_t pid;

		if (i == 20) {        /* warmed up: measure from here */
			fds0 = procstat_open_fds();
			held0 = unit_held_kib();
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
		for (double end = now_s() + 5; dev.conn != NULL || dev.handles_open > idle_handles; ) {
			ck_assert_msg(now_s() < end, "cycle %d: VMM not dropped", i);
			uv_run(&loop, UV_RUN_NOWAIT);
			usleep(100);
		}
	}
	fds1 = procstat_open_fds();
	held1 = unit_held_kib();
	ck_assert_int_eq(fds1, fds0);
	ck_assert_int_lt(held1 - held0, 1024);
	ck_assert_uint_eq(dev.st.connects, (uint64_t)cycles + 20);
	ck_assert_uint_eq(dev.st.disconnects, (uint64_t)cycles + 20);
	fprintf(stderr, "vhost-user: %d VMM cycles: fds %d -> %d, memory held %ld -> %ld KiB\n",
		cycles, fds0, fds1, held0, held1);
}
END_TEST

/* ---- the hybrid socket for other host programs ---- */

#define OTHER_PORT 6000

static char logbuf[16384];

static void capture_log(struct vhu_device *d, int warn, const void *cause, const char *msg)
{
	size_t len = strlen(logbuf);

	(void)d;
	(void)warn;
	(void)cause;
	snprintf(logbuf + len, sizeof(logbuf) - len, "%s\n", msg);
}

static void capture_path_log(const char *p, int warn, const void *cause, const char *msg)
{
	(void)p;
	capture_log(NULL, warn, cause, msg);
}

/* A guest that listens on PORT only (requests for other ports get RST),
 * echoes, and exits once the host has shut down `conns` connections. */
static int guest_hybrid(int conns)
{
	static uint8_t buf[VVS_MAX_PAYLOAD];
	struct vdrv v;
	struct vvs_hdr h, r;
	uint32_t fwd = 0;

	if (vdrv_open(&v, path, 4096) != 0)
		return 10;
	while (conns > 0) {
		if (vdrv_recv(&v, &h, buf, sizeof(buf), 10000) <= 0) {
			fprintf(stderr, "guest: receive failed\n");
			return 12;
		}
		r = (struct vvs_hdr){ .src_cid = GUEST_CID, .dst_cid = VVS_HOST_CID,
				      .src_port = h.dst_port, .dst_port = h.src_port,
				      .type = VVS_TYPE_STREAM, .buf_alloc = VVS_BUF };
		if (h.op == VVS_OP_REQUEST) {
			fwd = 0;
			r.op = h.dst_port == PORT ? VVS_OP_RESPONSE : VVS_OP_RST;
		} else if (h.op == VVS_OP_RW) {
			fwd += h.len;
			r.op = VVS_OP_RW;
			r.fwd_cnt = fwd;
		} else if (h.op == VVS_OP_SHUTDOWN) {
			r.op = VVS_OP_RST;
			conns--;
		} else {
			continue;
		}
		if (vdrv_send(&v, &r, buf, r.op == VVS_OP_RW ? h.len : 0) != 0)
			return 13;
	}
	vdrv_close(&v);
	return 0;
}

/* A plain client of the hybrid socket at P, non-blocking. */
static int client_open(const char *p)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	ck_assert_int_ge(fd, 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", p);
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
	return fd;
}

static void client_send(int fd, const char *text)
{
	ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
}

/* Run the loop until the device closes FD, which must get no bytes. */
static void expect_closed(int fd, const char *why)
{
	char ch;

	for (double end = now_s() + 10;;) {
		ssize_t n = read(fd, &ch, 1);

		ck_assert_msg(n != 1, "%s: got a byte", why);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			break;
		ck_assert_msg(now_s() < end, "%s: not closed", why);
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(200);
	}
	close(fd);
}

/* "CONNECT PORT" on a new client of P, and the "OK <n>" line back. */
static int client_connect(const char *p)
{
	char line[32];
	size_t len = 0;
	int fd = client_open(p);

	client_send(fd, "CONNECT 5555\n");
	for (double end = now_s() + 10; len == 0 || line[len - 1] != '\n'; ) {
		ssize_t n = read(fd, line + len, 1);   /* the line only, not the data after */

		ck_assert_msg(n != 0, "closed before OK");
		if (n > 0)
			len++;
		ck_assert(len < sizeof(line) && now_s() < end);
		uv_run(&loop, UV_RUN_NOWAIT);
	}
	line[len] = '\0';
	ck_assert_msg(strncmp(line, "OK ", 3) == 0 && line[3] >= '1' && line[3] <= '9',
		      "reply '%s'", line);
	return fd;
}

/* TOTAL bytes through the guest and back. */
static void client_echo(int fd, size_t total)
{
	uint8_t *out = malloc(total), *in = malloc(total);
	size_t sent = 0, got = 0;

	for (size_t i = 0; i < total; i++)
		out[i] = (uint8_t)(i * 7 + i / 251);
	for (double end = now_s() + 20; got < total; ) {
		ssize_t n;

		ck_assert_msg(now_s() < end, "echoed %zu of %zu bytes", got, total);
		if (sent < total && (n = write(fd, out + sent, total - sent)) > 0)
			sent += (size_t)n;
		if ((n = read(fd, in + got, total - got)) > 0)
			got += (size_t)n;
		ck_assert_msg(n != 0, "closed after %zu bytes", got);
		uv_run(&loop, UV_RUN_NOWAIT);
	}
	ck_assert_mem_eq(in, out, total);
	free(out);
	free(in);
}

static void run_until_clients(unsigned n)
{
	for (double end = now_s() + 10; vhu_hybrid_clients(&dev) != n; ) {
		ck_assert_msg(now_s() < end, "%u clients, want %u", vhu_hybrid_clients(&dev), n);
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(200);
	}
}

static int is_socket(const char *p)
{
	struct stat st;

	return lstat(p, &st) == 0 && S_ISSOCK(st.st_mode);
}

START_TEST(hybrid_socket_for_other_programs)
{
	char err[128], hpath[100], hpath2[100], plain[100];
	int fds0, fds1, status = -1, fd, many[VHU_HYBRID_MAX_CLIENTS];
	struct stat st;
	pid_t pid;

	logbuf[0] = '\0';
	snprintf(dir, sizeof(dir), "/tmp/test-vhu.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/vhost.sock", dir);
	snprintf(hpath, sizeof(hpath), "%s/hybrid.sock", dir);
	snprintf(hpath2, sizeof(hpath2), "%s/hybrid2.sock", dir);
	snprintf(plain, sizeof(plain), "%s/plain", dir);
	uv_loop_init(&loop);
	fds0 = procstat_open_fds();
	ck_assert_int_eq(vhu_start(&dev, &loop, path, GUEST_CID, &vhu_hybrid_ops, NULL, err,
				   sizeof(err)), 0);
	dev.log = capture_log;

	/* a file that is not a socket stays; a stale socket is replaced */
	fd = open(plain, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	close(fd);
	ck_assert_int_eq(vhu_hybrid_listen(&dev, plain, err, sizeof(err)), UV_EEXIST);
	ck_assert_ptr_nonnull(strstr(err, "not a socket"));
	ck_assert_int_eq(access(plain, F_OK), 0);
	{                            /* a socket an earlier run left */
		struct sockaddr_un sun = { .sun_family = AF_UNIX };
		int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", hpath);
		ck_assert_int_eq(bind(s, (struct sockaddr *)&sun, sizeof(sun)), 0);
		close(s);
	}
	ck_assert_int_eq(vhu_hybrid_listen(&dev, hpath, err, sizeof(err)), 0);
	ck_assert_str_eq(vhu_hybrid_listen_path(&dev), hpath);
	ck_assert_int_eq(vhu_hybrid_listen(&dev, hpath2, err, sizeof(err)), UV_EBUSY);
	ck_assert_int_eq(lstat(hpath, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_int_eq(st.st_mode & 0777, 0660);

	/* no VMM yet */
	expect_closed(client_open(hpath), "client without a VMM");
	ck_assert_ptr_nonnull(strstr(logbuf, "hybrid client refused: no VMM attached"));

	pid = fork();
	if (pid == 0)
		_exit(guest_hybrid(2));
	for (double end = now_s() + 10; !vhu_ready(&dev); ) {
		ck_assert(now_s() < end);
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(200);
	}

	/* data both ways through the guest */
	fd = client_connect(hpath);
	client_echo(fd, 300000);
	close(fd);

	/* refused by the guest, malformed, too long */
	fd = client_open(hpath);
	client_send(fd, "CONNECT 6000\n");
	expect_closed(fd, "CONNECT to a closed port");
	ck_assert_ptr_nonnull(strstr(logbuf, "hybrid client refused: guest port 6000 refused"));
	fd = client_open(hpath);
	client_send(fd, "HELLO 5555\n");
	expect_closed(fd, "malformed command");
	ck_assert_ptr_nonnull(strstr(logbuf, "hybrid client refused: malformed command"));
	fd = client_open(hpath);
	client_send(fd, "CONNECT 5555555555555555555555555555555555\n");
	expect_closed(fd, "command too long");
	ck_assert_ptr_nonnull(strstr(logbuf, "hybrid client refused: command too long"));

	/* at most VHU_HYBRID_MAX_CLIENTS at once */
	for (int i = 0; i < VHU_HYBRID_MAX_CLIENTS; i++) {
		many[i] = client_open(hpath);
		run_until_clients((unsigned)i + 1);   /* accepted: the backlog stays short */
	}
	expect_closed(client_open(hpath), "client beyond the limit");
	ck_assert_ptr_nonnull(strstr(logbuf, "clients already"));

	/* the socket moves; its clients go, the VMM stays */
	vhu_hybrid_unlisten(&dev);
	ck_assert(!is_socket(hpath));
	for (int i = 0; i < VHU_HYBRID_MAX_CLIENTS; i++)
		expect_closed(many[i], "client of a closed socket");
	ck_assert_int_eq(vhu_hybrid_listen(&dev, hpath2, err, sizeof(err)), 0);
	ck_assert(vhu_ready(&dev));
	ck_assert_uint_eq(dev.st.connects, 1);
	fd = client_connect(hpath2);
	client_echo(fd, 100000);
	close(fd);

	ck_assert_int_eq(run_until(NULL, pid, &status, 20), 0);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert_uint_eq(dev.st.bad_chains, 0);

	stopped = 0;
	vhu_stop(&dev, on_stopped);
	ck_assert_int_eq(run_until(&stopped, 0, NULL, 10), 0);
	ck_assert(!is_socket(hpath2));
	fds1 = procstat_open_fds();
	ck_assert_int_eq(fds1, fds0);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
	unlink(plain);
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

/* ---- a relay out of descriptors and a flood of hybrid clients ---- */

#define SHED_CLIENTS 40

/* A flood of clients, one at a time (a connect waits while the backlog
 * is full): each must be closed without a byte. 0 when all were. */
static int hybrid_flood(const char *p)
{
	for (int i = 0; i < SHED_CLIENTS; i++) {
		struct sockaddr_un sun = { .sun_family = AF_UNIX };
		struct timeval tv = { 5, 0 };
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		char ch;

		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", p);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0)
			return 10;
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (send(fd, "CONNECT 5555\n", 13, MSG_NOSIGNAL) != 13 && errno != EPIPE &&
		    errno != ECONNRESET)
			return 11;
		if (read(fd, &ch, 1) != 0 && errno != ECONNRESET)
			return 12;           /* a byte, or not closed within 5 s */
		close(fd);
	}
	return 0;
}

static unsigned shed_ticks;

static void on_shed_tick(uv_timer_t *t)
{
	(void)t;
	shed_ticks++;
}

/* The relay at its descriptor limit: each waiting hybrid client is taken
 * with the spare descriptor and closed, so the listener does not stay
 * readable (a loop turn for each client or tick, no spinning); once
 * descriptors are free again, clients are served. */
START_TEST(hybrid_clients_shed_when_out_of_descriptors)
{
	char err[128], hpath[100];
	struct rlimit old, low;
	struct rusage ru0, ru1;
	uv_timer_t tick;
	int status = -1, flood_status = -1, fd, probe;
	unsigned turns = 0;
	pid_t guest, flood;
	double t0, cpu;

	logbuf[0] = '\0';
	snprintf(dir, sizeof(dir), "/tmp/test-vhu.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/vhost.sock", dir);
	snprintf(hpath, sizeof(hpath), "%s/hybrid.sock", dir);
	uv_loop_init(&loop);
	ck_assert_int_eq(vhu_start(&dev, &loop, path, GUEST_CID, &vhu_hybrid_ops, NULL, err,
				   sizeof(err)), 0);
	dev.log = capture_log;
	ck_assert_int_eq(vhu_hybrid_listen(&dev, hpath, err, sizeof(err)), 0);
	guest = fork();
	if (guest == 0)
		_exit(guest_hybrid(1));
	for (double end = now_s() + 10; !vhu_ready(&dev); ) {
		ck_assert(now_s() < end);
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(200);
	}
	uv_timer_init(&loop, &tick);
	uv_timer_start(&tick, on_shed_tick, 10, 10);

	/* no descriptor left below the limit but the listener's spare */
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
	probe = dup(0);
	ck_assert_int_ge(probe, 0);
	close(probe);
	low = old;
	low.rlim_cur = (rlim_t)probe;
	flood = fork();
	if (flood == 0)
		_exit(hybrid_flood(hpath));
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
	getrusage(RUSAGE_SELF, &ru0);
	t0 = now_s();
	shed_ticks = 0;
	while (waitpid(flood, &flood_status, WNOHANG) != flood) {
		ck_assert_msg(now_s() < t0 + 30, "flood not over");
		uv_run(&loop, UV_RUN_ONCE);
		turns++;
	}
	getrusage(RUSAGE_SELF, &ru1);
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
	cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec -
		       ru0.ru_stime.tv_sec) +
	      (ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec -
	       ru0.ru_stime.tv_usec) / 1e6;
	fprintf(stderr, "vhost-user: %d clients shed in %.2f s: %u loop turns, %u ticks, "
		"%.0f%% of a CPU\n", SHED_CLIENTS, now_s() - t0, turns, shed_ticks,
		100 * cpu / (now_s() - t0));
	/* a turn takes a client or a tick (or the flood's exit): no spinning */
	ck_assert_uint_le(turns, 2 * SHED_CLIENTS + shed_ticks + 20);
	ck_assert(WIFEXITED(flood_status));
	ck_assert_int_eq(WEXITSTATUS(flood_status), 0);
	ck_assert_ptr_nonnull(strstr(logbuf, "hybrid client refused: Too many open files"));
	ck_assert_uint_eq(vhu_hybrid_clients(&dev), 0);

	/* descriptors free again: served */
	fd = client_connect(hpath);
	client_echo(fd, 10000);
	close(fd);
	ck_assert_int_eq(run_until(NULL, guest, &status, 20), 0);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	uv_close((uv_handle_t *)&tick, NULL);
	stopped = 0;
	vhu_stop(&dev, on_stopped);
	ck_assert_int_eq(run_until(&stopped, 0, NULL, 10), 0);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

/* The registry (transport_virtio.c) opens, moves and closes a device's
 * hybrid socket as the configuration says, and release removes it. */
START_TEST(hybrid_socket_follows_configuration)
{
	struct vsock_target t = { .kind = VSOCK_VIRTIO, .cid = GUEST_CID, .port = PORT };
	struct vsock_virtio_hybrid h;
	char err[128], old[160];
	int fds0;

	logbuf[0] = '\0';
	snprintf(dir, sizeof(dir), "/tmp/test-vhu.XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(t.path, sizeof(t.path), "%s/vhost.sock", dir);
	snprintf(h.socket, sizeof(h.socket), "%s", t.path);
	snprintf(h.path, sizeof(h.path), "%s/a.sock", dir);
	snprintf(old, sizeof(old), "%s", h.path);
	uv_loop_init(&loop);
	vsock_virtio_set_log(capture_path_log);
	fds0 = procstat_open_fds();
	ck_assert_int_eq(vsock_virtio_acquire(&loop, &t, err, sizeof(err)), 0);
	ck_assert_int_eq(vsock_virtio_set_hybrid(&h, 1), 0);
	ck_assert(is_socket(h.path));
	ck_assert_int_eq(vsock_virtio_set_hybrid(&h, 1), 0);     /* unchanged: kept */
	ck_assert(is_socket(h.path));
	snprintf(h.path, sizeof(h.path), "%s/b.sock", dir);
	ck_assert_int_eq(vsock_virtio_set_hybrid(&h, 1), 0);     /* moved */
	ck_assert(is_socket(h.path));
	ck_assert(is_socket(t.path));                            /* the device stays */
	ck_assert(!is_socket(old));
	ck_assert_int_eq(vsock_virtio_set_hybrid(NULL, 0), 0);   /* removed */
	ck_assert(!is_socket(h.path));
	ck_assert_int_eq(vsock_virtio_set_hybrid(&h, 1), 0);
	snprintf(h.path, sizeof(h.path), "%s/no/such/dir.sock", dir);
	ck_assert_int_eq(vsock_virtio_set_hybrid(&h, 1), 1);     /* logged, counted */
	ck_assert_ptr_nonnull(strstr(logbuf, "no/such/dir.sock: bind: No such file or directory"));
	snprintf(h.path, sizeof(h.path), "%s/b.sock", dir);
	ck_assert_int_eq(vsock_virtio_set_hybrid(&h, 1), 0);
	vsock_virtio_release(&t);
	uv_run(&loop, UV_RUN_DEFAULT);
	ck_assert(!is_socket(h.path));
	ck_assert(!is_socket(t.path));
	ck_assert_int_eq(procstat_open_fds(), fds0);
	ck_assert_int_eq(uv_loop_close(&loop), 0);
	ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

/* ---- hostile VMMs: played by the test itself, byte by byte if need be ---- */

#define REQ_GET_FEATURES 1
#define REQ_SET_FEATURES 2
#define REQ_SET_OWNER 3
#define REQ_RESET_OWNER 4
#define REQ_SET_MEM_TABLE 5
#define REQ_SET_VRING_NUM 8
#define REQ_SET_VRING_ADDR 9
#define REQ_SET_VRING_BASE 10
#define REQ_GET_VRING_BASE 11
#define REQ_SET_VRING_KICK 12
#define REQ_SET_VRING_CALL 13
#define REQ_GET_PROTOCOL_FEATURES 15
#define REQ_SET_PROTOCOL_FEATURES 16
#define REQ_SET_VRING_ENABLE 18
#define REQ_GET_CONFIG 24
#define REQ_SET_CONFIG 25
#define NEED_REPLY 0x8u
#define PF_REPLY_ACK (1ull << 3)
#define MAX_GAP_MS 500        /* the loop may not stall longer (a busy machine included) */

/* A 10 ms timer on the device's loop and the longest gap between ticks:
 * how long the loop was kept from other work. */
static struct {
	uv_timer_t t;
	uint64_t last, max_gap;
} tick;

static void on_tick(uv_timer_t *t)
{
	uint64_t now = uv_hrtime();

	(void)t;
	if (tick.last != 0 && now - tick.last > tick.max_gap)
		tick.max_gap = now - tick.last;
	tick.last = now;
}

static void ticker_start(void)
{
	memset(&tick, 0, sizeof(tick));
	uv_timer_init(&loop, &tick.t);
	uv_timer_start(&tick.t, on_tick, 10, 10);
}

/* The longest stall in ms; the ticker stops. */
static double ticker_stop(void)
{
	uv_close((uv_handle_t *)&tick.t, NULL);
	return (double)tick.max_gap / 1e6;
}

static void run_for(double secs)
{
	for (double end = now_s() + secs; now_s() < end; ) {
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(200);
	}
}

/* Send LEN bytes of a message, the descriptors with the first. */
static void vmm_write(int fd, const void *buf, size_t len, const int *fds, int nfds)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(4 * sizeof(int))];
	} ctl;
	struct iovec iov = { (void *)buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (nfds > 0) {
		memset(&ctl, 0, sizeof(ctl));
		mh.msg_control = ctl.b;
		mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
		CMSG_FIRSTHDR(&mh)->cmsg_level = SOL_SOCKET;
		CMSG_FIRSTHDR(&mh)->cmsg_type = SCM_RIGHTS;
		CMSG_FIRSTHDR(&mh)->cmsg_len = CMSG_LEN(nfds * sizeof(int));
		memcpy(CMSG_DATA(CMSG_FIRSTHDR(&mh)), fds, nfds * sizeof(int));
	}
	ck_assert_int_eq(sendmsg(fd, &mh, MSG_NOSIGNAL), (ssize_t)len);
}

/* A message in BUF: header, then SIZE bytes of P. Its length. */
static size_t vmm_msg(uint8_t *buf, uint32_t req, uint32_t flags, const void *p, uint32_t size)
{
	uint32_t hdr[3] = { req, 1u | flags, size };

	memcpy(buf, hdr, 12);
	if (size > 0)
		memcpy(buf + 12, p, size);
	return 12 + size;
}

static void vmm_send(int fd, uint32_t req, uint32_t flags, const void *p, uint32_t size,
		     const int *fds, int nfds)
{
	uint8_t buf[12 + 512];

	vmm_write(fd, buf, vmm_msg(buf, req, flags, p, size), fds, nfds);
}

/* Run the loop until LEN bytes came: 0, or -1 if the device closed first. */
static int vmm_read(int fd, void *buf, size_t len)
{
	size_t got = 0;

	for (double end = now_s() + 5; got < len; ) {
		ssize_t n = read(fd, (uint8_t *)buf + got, len - got);

		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return -1;
		if (n > 0)
			got += (size_t)n;
		ck_assert_msg(now_s() < end, "no reply from the device");
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(200);
	}
	return 0;
}

/* The u64 reply to REQ, or -1 when the device closed the connection. */
static int64_t vmm_u64(int fd, uint32_t req)
{
	struct { uint32_t req, flags, size; uint64_t v; } __attribute__((packed)) r;

	if (vmm_read(fd, &r, sizeof(r)) != 0)
		return -1;
	ck_assert_uint_eq(r.req, req);
	ck_assert_uint_eq(r.flags, 1u | 4u);
	ck_assert_uint_eq(r.size, 8);
	return (int64_t)r.v;
}

/* REQ with need_reply: 0 done, 1 refused, -1 connection closed. */
static int64_t vmm_acked(int fd, uint32_t req, const void *p, uint32_t size, const int *fds,
			 int nfds)
{
	vmm_send(fd, req, NEED_REPLY, p, size, fds, nfds);
	return vmm_u64(fd, req);
}

/* Connected, owner, REPLY_ACK negotiated; the device's log in logbuf. */
static int vmm_ready(void)
{
	uint64_t pf = PF_REPLY_ACK;
	int fd = client_open(path);

	dev.log = capture_log;
	logbuf[0] = '\0';
	for (double end = now_s() + 5; dev.conn == NULL; ) {
		ck_assert_msg(now_s() < end, "VMM not accepted");
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(200);
	}
	vmm_send(fd, REQ_SET_OWNER, 0, NULL, 0, NULL, 0);
	vmm_send(fd, REQ_GET_PROTOCOL_FEATURES, 0, NULL, 0, NULL, 0);
	ck_assert_int_ge(vmm_u64(fd, REQ_GET_PROTOCOL_FEATURES), 0);
	ck_assert_int_eq(vmm_acked(fd, REQ_SET_PROTOCOL_FEATURES, &pf, 8, NULL, 0), 0);
	return fd;
}

/* Run the loop until the device drops the VMM: seconds it took. */
static double until_dropped(double secs)
{
	double start = now_s();

	while (dev.conn != NULL) {
		ck_assert_msg(now_s() < start + secs, "VMM not dropped within %.1f s", secs);
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(200);
	}
	return now_s() - start;
}

/* A VMM sending one byte at a time, 50 ms apart, a descriptor with the
 * first: served, and the loop keeps running meanwhile. */
START_TEST(dribbling_vmm_is_served_without_blocking)
{
	uint64_t idx = 0;
	uint8_t buf[64];
	int fd = vmm_ready(), efd = eventfd(0, EFD_CLOEXEC);
	size_t len;
	double gap;

	ticker_start();
	len = vmm_msg(buf, REQ_SET_VRING_KICK, NEED_REPLY, &idx, 8);
	for (size_t i = 0; i < len; i++) {
		vmm_write(fd, buf + i, 1, &efd, i == 0);
		run_for(0.05);
	}
	ck_assert_int_eq(vmm_u64(fd, REQ_SET_VRING_KICK), 0);
	ck_assert_int_ge(dev.q[0].kick_fd, 0);
	len = vmm_msg(buf, REQ_GET_FEATURES, 0, NULL, 0);
	for (size_t i = 0; i < len; i++) {
		vmm_write(fd, buf + i, 1, NULL, 0);
		run_for(0.05);
	}
	ck_assert_int_gt(vmm_u64(fd, REQ_GET_FEATURES), 0);
	gap = ticker_stop();
	fprintf(stderr, "vhost-user: dribbled messages served, loop stalled %.1f ms at most\n",
		gap);
	ck_assert_msg(gap < MAX_GAP_MS, "the loop stalled %.0f ms", gap);
	ck_assert_ptr_nonnull(dev.conn);
	close(efd);
	close(fd);
}
END_TEST

/* Idle between messages is fine; a message begun and not finished within
 * its deadline drops the VMM, and the descriptor that came with it goes. */
START_TEST(unfinished_message_drops_the_vmm)
{
	uint64_t idx = 0;
	uint8_t buf[64];
	int fd = vmm_ready(), efd, fds0;
	double took, gap;

	run_for(VHU_MSG_DEADLINE_MS / 1000.0 + 0.5);
	ck_assert_ptr_nonnull(dev.conn);
	fds0 = procstat_open_fds();
	efd = eventfd(0, EFD_CLOEXEC);
	ticker_start();
	vmm_write(fd, buf, vmm_msg(buf, REQ_SET_VRING_CALL, 0, &idx, 8) - 3, &efd, 1);
	close(efd);
	took = until_dropped(5);
	gap = ticker_stop();
	fprintf(stderr, "vhost-user: unfinished message: VMM dropped after %.2f s, loop stalled "
		"%.1f ms at most\n", took, gap);
	ck_assert_msg(took > VHU_MSG_DEADLINE_MS / 1000.0 - 0.1 && took < 3.5,
		      "dropped after %.2f s", took);
	ck_assert_msg(gap < MAX_GAP_MS, "the loop stalled %.0f ms", gap);
	ck_assert_ptr_nonnull(strstr(logbuf, "message not complete"));
	expect_closed(fd, "VMM with a late message");
	run_for(0.05);
	ck_assert_int_eq(procstat_open_fds(), fds0 - 2);   /* and both ends of the socket */
}
END_TEST

/* A VMM that never reads its replies: they queue up to VHU_OUT_MAX, then
 * the VMM goes, and the loop never waits for it. */
START_TEST(vmm_not_reading_replies_is_dropped)
{
	uint8_t buf[12 * 64];
	int fd = vmm_ready();
	size_t len = 0;
	double gap;

	for (int i = 0; i < 64; i++)
		len += vmm_msg(buf + len, REQ_GET_FEATURES, 0, NULL, 0);
	ticker_start();
	for (double end = now_s() + 10; dev.conn != NULL; ) {
		ck_assert_msg(now_s() < end, "VMM not dropped");
		if (send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
			ck_assert_int_eq(errno, EAGAIN);
		uv_run(&loop, UV_RUN_NOWAIT);
	}
	gap = ticker_stop();
	ck_assert_msg(gap < MAX_GAP_MS, "the loop stalled %.0f ms", gap);
	ck_assert_ptr_nonnull(strstr(logbuf, "does not read its replies"));
	close(fd);
}
END_TEST

/* Payloads of the wrong size for their request drop the VMM, whatever was
 * asked; no handler sees stale bytes. */
START_TEST(wrong_request_sizes_are_refused)
{
	static const struct { uint32_t req, size; const char *why; } bad[] = {
		{ REQ_SET_VRING_ADDR, 8, "SET_VRING_ADDR refused: 8 bytes of payload, not 40" },
		{ REQ_SET_VRING_NUM, 4, "SET_VRING_NUM refused: 4 bytes of payload, not 8" },
		{ REQ_SET_FEATURES, 16, "SET_FEATURES refused: 16 bytes of payload, not 8" },
		{ REQ_SET_OWNER, 8, "SET_OWNER refused: 8 bytes of payload, not 0" },
		{ REQ_SET_VRING_KICK, 4, "SET_VRING_KICK refused: 4 bytes of payload, not 8" },
		{ REQ_SET_MEM_TABLE, 8 + 32, "SET_MEM_TABLE refused: 40 bytes for 2 regions" },
		{ REQ_GET_CONFIG, 12, "GET_CONFIG refused: 12 bytes for 8 of config" },
	};
	uint8_t payload[64];

	memset(payload, 0, sizeof(payload));
	payload[0] = 2;     /* nregions for SET_MEM_TABLE */
	payload[4] = 8;     /* config size for GET_CONFIG */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int fd = vmm_ready();

		ck_assert_int_eq(vmm_acked(fd, bad[i].req, payload, bad[i].size, NULL, 0), -1);
		ck_assert_msg(strstr(logbuf, bad[i].why) != NULL, "log: %s", logbuf);
		ck_assert_ptr_nonnull(strstr(logbuf, "VMM disconnected: malformed request"));
		until_dropped(1);
		close(fd);
	}
	ck_assert_uint_eq(dev.st.bad_messages, sizeof(bad) / sizeof(bad[0]));
}
END_TEST

/* Guest memory SIZE bytes long, sealed with SEALS (0: none). */
static int guest_memfd(uint64_t size, int seals)
{
	int fd = memfd_create("test-guest", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
	if (seals != 0)
		ck_assert_int_eq(fcntl(fd, F_ADD_SEALS, seals), 0);
	return fd;
}

static int64_t set_mem_table(int fd, int memfd, uint64_t size)
{
	struct { uint32_t n, pad; uint64_t gpa, size, uaddr, off; } mt = {
		1, 0, 0x100000, size, 0x7f0000000000ull, 0 };

	return vmm_acked(fd, REQ_SET_MEM_TABLE, &mt, sizeof(mt), &memfd, 1);
}

/* Memory that could shrink under the device's mapping (SIGBUS on the next
 * touch) is refused with the fix in the log; sealed memory is taken. */
START_TEST(unsealed_memory_is_refused)
{
	int fd = vmm_ready(), plain = guest_memfd(1 << 20, 0);
	int grow_only = guest_memfd(1 << 20, F_SEAL_GROW);
	int sealed = guest_memfd(1 << 20, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);

	ck_assert_int_eq(set_mem_table(fd, plain, 1 << 20), 1);
	ck_assert_ptr_nonnull(strstr(logbuf, "SET_MEM_TABLE refused: region 0 is not sealed "
				     "against shrinking (F_SEAL_SHRINK)"));
	ck_assert_ptr_nonnull(strstr(logbuf, "memory-backend-memfd"));
	ck_assert_uint_eq(dev.mem.n, 0);
	ck_assert_int_eq(set_mem_table(fd, grow_only, 1 << 20), 1);
	ck_assert_int_eq(set_mem_table(fd, sealed, 2 << 20), 1);    /* larger than its file */
	ck_assert_ptr_nonnull(strstr(logbuf, "region 0 needs a file of 2097152 bytes"));
	ck_assert_int_eq(set_mem_table(fd, sealed, 1 << 20), 0);
	ck_assert_uint_eq(dev.mem.n, 1);
	ck_assert_ptr_nonnull(dev.conn);
	close(plain);
	close(grow_only);
	close(sealed);
	close(fd);
}
END_TEST

/* The synthetic guest's memory is sealed: it cannot shrink it after
 * SET_MEM_TABLE, and the kicks that follow find all of it mapped. */
static int guest_tries_to_shrink(void)
{
	struct vdrv v;
	struct vvs_hdr h = { .src_cid = GUEST_CID, .dst_cid = VVS_HOST_CID, .src_port = 1234,
			     .dst_port = 7777, .type = VVS_TYPE_STREAM, .op = VVS_OP_REQUEST,
			     .buf_alloc = VVS_BUF };
	uint8_t buf[64];

	if (vdrv_open(&v, path, 4096) != 0)
		return 10;
	if (ftruncate(v.memfd, 0) == 0 || errno != EPERM) {
		fprintf(stderr, "guest: memory shrunk (or %s)\n", strerror(errno));
		return 11;
	}
	if (vdrv_send(&v, &h, NULL, 0) != 0 || vdrv_recv(&v, &h, buf, sizeof(buf), 5000) != 1)
		return 12;
	if (h.op != VVS_OP_RST)
		return 13;
	vdrv_close(&v);
	return 0;
}

START_TEST(sealed_memory_cannot_shrink)
{
	int status = -1;
	pid_t pid = fork();

	if (pid == 0)
		_exit(guest_tries_to_shrink());
	ck_assert_int_eq(run_until(NULL, pid, &status, 20), 0);
	ck_assert(WIFEXITED(status));
	ck_assert_int_eq(WEXITSTATUS(status), 0);
	ck_assert_str_eq(dev.failed, "");
}
END_TEST

/* Kick and call descriptors must be eventfds: a socket, a pipe, a file
 * are refused (a socket whose peer went would read EOF forever). */
START_TEST(kick_fd_must_be_an_eventfd)
{
	int fd = vmm_ready(), sv[2], pv[2], efd = eventfd(0, EFD_CLOEXEC);
	uint64_t idx = 1;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	close(sv[1]);
	ck_assert_int_eq(pipe2(pv, O_CLOEXEC), 0);
	ck_assert_int_eq(vmm_acked(fd, REQ_SET_VRING_KICK, &idx, 8, &sv[0], 1), 1);
	ck_assert_ptr_nonnull(strstr(logbuf, "SET_VRING_KICK refused: ring 1: not an eventfd "
				     "(socket:["));
	ck_assert_int_eq(dev.q[1].kick_fd, -1);
	ck_assert_int_eq(vmm_acked(fd, REQ_SET_VRING_CALL, &idx, 8, &pv[0], 1), 1);
	ck_assert_ptr_nonnull(strstr(logbuf, "not an eventfd (pipe:["));
	ck_assert_int_eq(dev.q[1].call_fd, -1);
	ck_assert_int_eq(vmm_acked(fd, REQ_SET_VRING_KICK, &idx, 8, &efd, 1), 0);
	ck_assert_int_ge(dev.q[1].kick_fd, 0);
	ck_assert_ptr_nonnull(dev.conn);
	close(sv[0]);
	close(pv[0]);
	close(pv[1]);
	close(efd);
	close(fd);
}
END_TEST

/* A kick descriptor that cannot be read (here the device's copy is made a
 * socket whose peer has gone, behind its back) fails the device once and
 * is no longer watched: no busy loop. */
START_TEST(kick_read_error_fails_the_device)
{
	int fd = vmm_ready(), sv[2], efd = eventfd(0, EFD_CLOEXEC);
	uint64_t idx = 1;

	ck_assert_int_eq(vmm_acked(fd, REQ_SET_VRING_KICK, &idx, 8, &efd, 1), 0);
	ck_assert_ptr_nonnull(dev.q[1].kick_watch);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	close(sv[1]);
	ck_assert_int_ge(dup2(sv[0], dev.q[1].kick_fd), 0);
	close(sv[0]);
	ck_assert_int_eq(eventfd_write(efd, 1), 0);
	for (double end = now_s() + 5; dev.failed[0] == '\0'; ) {
		ck_assert_msg(now_s() < end, "device not failed");
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(200);
	}
	ck_assert_str_eq(dev.failed, "kick of ring 1 unreadable: short read");
	ck_assert_ptr_null(dev.q[1].kick_watch);
	ck_assert_int_eq(dev.q[1].kick_fd, -1);
	ck_assert_ptr_nonnull(strstr(logbuf, "device failed: kick of ring 1 unreadable"));
	close(efd);         /* its last reference: the kernel forgets the old watch */
	ck_assert_ptr_nonnull(dev.conn);
	close(fd);
}
END_TEST

static void on_stopped_other(struct vhu_device *d)
{
	*(int *)d->data_owner = 1;
}
/* Guest memory past what a 32-bit relay can map is refused with the reason,
 * never mapped truncated; a 64-bit relay maps it (a sparse file: no pages). */
START_TEST(memory_past_the_address_space_is_refused)
{
	uint64_t six_gib = 6ull << 30;
	int fd = vmm_ready(), big = guest_memfd(six_gib, F_SEAL_SHRINK | F_SEAL_GROW);

	if (sizeof(size_t) < 8) {
		ck_assert_int_eq(set_mem_table(fd, big, six_gib), 1);
		ck_assert_ptr_nonnull(strstr(logbuf, "region 0: 6442450944 bytes cannot be mapped "
					     "by a 32-bit process"));
		ck_assert_uint_eq(dev.mem.n, 0);
	} else {
		ck_assert_int_eq(set_mem_table(fd, big, six_gib), 0);
		ck_assert_uint_eq(dev.mem.n, 1);
		ck_assert_uint_eq(dev.mem.r[0].size, six_gib);
	}
	close(big);
	close(fd);
}
END_TEST

/* vhu_start refuses a path too long for a Unix socket, saying so; replaces
 * only a socket at its path, and makes it 0600 whatever the umask. */
START_TEST(socket_path_is_checked)
{
	static struct vhu_device other;
	char p[160], err[256], longp[201];
	int fd, done = 0;
	struct stat st;
	mode_t old;

	memset(longp, 'x', sizeof(longp) - 1);
	longp[0] = '/';
	longp[sizeof(longp) - 1] = '\0';
	ck_assert_int_eq(vhu_start(&other, &loop, longp, 4, &ops, &done, err, sizeof(err)),
			 UV_ENAMETOOLONG);
	ck_assert_msg(strstr(err, "socket path too long (200 bytes, at most 103)") != NULL, "%s", err);
	ck_assert_msg(strlen(err) < 160, "%s", err);   /* the path is cut short in the message */

	snprintf(p, sizeof(p), "%s/other.sock", dir);
	fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	ck_assert_int_eq(write(fd, "keep", 4), 4);
	close(fd);
	ck_assert_int_eq(vhu_start(&other, &loop, p, 4, &ops, &done, err, sizeof(err)), UV_EEXIST);
	ck_assert_msg(strstr(err, p) != NULL && strstr(err, "not a socket") != NULL, "%s", err);
	ck_assert_int_eq(lstat(p, &st), 0);
	ck_assert(S_ISREG(st.st_mode) && st.st_size == 4);
	ck_assert_int_eq(unlink(p), 0);

	old = umask(0);
	ck_assert_int_eq(vhu_start(&other, &loop, p, 4, &ops, &done, err, sizeof(err)), 0);
	umask(old);
	ck_assert_int_eq(lstat(p, &st), 0);
	ck_assert(S_ISSOCK(st.st_mode));
	ck_assert_int_eq(st.st_mode & 07777, 0600);
	vhu_stop(&other, on_stopped_other);
	ck_assert_int_eq(run_until(&done, 0, NULL, 5), 0);
	ck_assert_int_eq(access(p, F_OK), -1);
}
END_TEST

static int bind_unix(int type, const char *where)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", where);
	ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	return fd;
}

/* A listener removes its path only while the path is still its socket;
 * at the temporary name, only a socket that refuses is removed. */
START_TEST(listener_removes_only_its_own)
{
	struct vhu_listen_id id;
	char p[160], tmp[170], err[256];
	struct stat st;
	int fd, other, gram;

	snprintf(p, sizeof(p), "%s/own.sock", dir);
	snprintf(tmp, sizeof(tmp), "%s" VHU_LISTEN_SUFFIX, p);
	/* a socket of another kind at the temporary name is somebody's */
	gram = bind_unix(SOCK_DGRAM, tmp);
	ck_assert_int_eq(vhu_listen_unix("", p, 0600, (uid_t)-1, (gid_t)-1, 4, &id, err,
					 sizeof(err)), UV_EADDRINUSE);
	ck_assert_msg(strstr(err, "another program listens there") != NULL, "%s", err);
	ck_assert_int_eq(lstat(tmp, &st), 0);
	close(gram);
	/* a stale one goes */
	fd = vhu_listen_unix("", p, 0600, (uid_t)-1, (gid_t)-1, 4, &id, err, sizeof(err));
	ck_assert_msg(fd >= 0, "%s", err);
	ck_assert_int_eq(access(tmp, F_OK), -1);
	/* somebody else's socket took the path since: it stays */
	ck_assert_int_eq(unlink(p), 0);
	other = bind_unix(SOCK_STREAM, p);
	vhu_unlink_listener(p, &id);
	ck_assert_int_eq(lstat(p, &st), 0);
	close(other);
	ck_assert_int_eq(unlink(p), 0);
	close(fd);
	/* its own goes */
	fd = vhu_listen_unix("", p, 0600, (uid_t)-1, (gid_t)-1, 4, &id, err, sizeof(err));
	ck_assert_msg(fd >= 0, "%s", err);
	vhu_unlink_listener(p, &id);
	ck_assert_int_eq(access(p, F_OK), -1);
	close(fd);
}
END_TEST

/* ---- the message layer: connections, headers, descriptors ---- */

#define REQ_SET_VRING_BASE 10
#define REQ_SET_VRING_ERR 14

/* Send LEN bytes with NFDS (up to 16) descriptors. */
static void vmm_write_many(int fd, const void *buf, size_t len, const int *fds, int nfds)
{
	union {
		struct cmsghdr h;
		char b[CMSG_SPACE(16 * sizeof(int))];
	} ctl;
	struct iovec iov = { (void *)buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	ck_assert_int_le(nfds, 16);
	memset(&ctl, 0, sizeof(ctl));
	mh.msg_control = ctl.b;
	mh.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
	CMSG_FIRSTHDR(&mh)->cmsg_level = SOL_SOCKET;
	CMSG_FIRSTHDR(&mh)->cmsg_type = SCM_RIGHTS;
	CMSG_FIRSTHDR(&mh)->cmsg_len = CMSG_LEN(nfds * sizeof(int));
	memcpy(CMSG_DATA(CMSG_FIRSTHDR(&mh)), fds, nfds * sizeof(int));
	ck_assert_int_eq(sendmsg(fd, &mh, MSG_NOSIGNAL), (ssize_t)len);
}

static void eventfds(int *fds, int n)
{
	for (int i = 0; i < n; i++) {
		fds[i] = eventfd(0, EFD_CLOEXEC);
		ck_assert_int_ge(fds[i], 0);
	}
}

static void close_all(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

/* A second VMM is closed at once while one is attached; the first one
 * keeps the device and is served. */
START_TEST(second_vmm_connection_is_refused)
{
	int fd = vmm_ready(), fd2;

	ck_assert_uint_eq(dev.st.connects, 1);
	for (int i = 0; i < 3; i++) {
		fd2 = client_open(path);
		expect_closed(fd2, "second VMM");
	}
	ck_assert_ptr_nonnull(strstr(logbuf, "second VMM connection refused"));
	ck_assert_uint_eq(dev.st.connects, 1);
	ck_assert_ptr_nonnull(dev.conn);
	vmm_send(fd, REQ_GET_FEATURES, 0, NULL, 0, NULL, 0);
	ck_assert_int_gt(vmm_u64(fd, REQ_GET_FEATURES), 0);
	close(fd);
}
END_TEST

/* A header whose version bits are not 1, or whose size is over the largest
 * payload (512), drops the VMM as soon as the header is in: the payload is
 * never waited for. 512 bytes are read whole (an unknown request: ignored). */
START_TEST(bad_headers_drop_the_vmm)
{
	static const struct { uint32_t flags, size; const char *why; } bad[] = {
		{ 0, 0, "VMM disconnected: bad version" },
		{ 2, 0, "VMM disconnected: bad version" },
		{ 3 | NEED_REPLY, 8, "VMM disconnected: bad version" },
		{ 1, 513, "VMM disconnected: message too large" },
		{ 1, 0xffffffffu, "VMM disconnected: message too large" },
	};
	static uint8_t big[12 + 512];
	uint32_t *hdr = (uint32_t *)big;
	int fd;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		double took;

		fd = vmm_ready();
		hdr[0] = REQ_GET_FEATURES;
		hdr[1] = bad[i].flags;
		hdr[2] = bad[i].size;
		vmm_write(fd, big, 12, NULL, 0);          /* the header alone */
		took = until_dropped(1);
		ck_assert_msg(took < 0.5, "dropped after %.2f s", took);
		ck_assert_msg(strstr(logbuf, bad[i].why) != NULL, "log: %s", logbuf);
		expect_closed(fd, "VMM with a bad header");
	}
	fd = vmm_ready();
	hdr[0] = 99;                                  /* no such request */
	hdr[1] = 1;
	hdr[2] = 512;
	memset(big + 12, 0xa5, 512);
	vmm_write(fd, big, sizeof(big), NULL, 0);
	vmm_send(fd, REQ_GET_FEATURES, 0, NULL, 0, NULL, 0);
	ck_assert_int_gt(vmm_u64(fd, REQ_GET_FEATURES), 0);
	ck_assert_ptr_nonnull(strstr(logbuf, "unsupported vhost-user request 99"));
	ck_assert_ptr_nonnull(dev.conn);
	close(fd);
}
END_TEST

/* A socket full of whole messages is taken MSGS_PER_PASS (32) at a time:
 * each turn of the loop handles at most 32 (then the loop's other handles
 * run), and 2000 of them take at least 2000 / 32 turns. */
START_TEST(message_flood_is_served_in_passes)
{
	struct { uint32_t index, num; } st = { 0, 0 };
	static uint8_t buf[2000 * 20];
	size_t len = 0, off = 0;
	uint64_t m0, before, most = 0;
	int fd = vmm_ready(), turns = 0;
	double gap;

	for (int i = 0; i < 2000; i++)
		len += vmm_msg(buf + len, REQ_SET_VRING_BASE, 0, &st, sizeof(st));
	m0 = dev.st.messages;
	ticker_start();
	for (double end = now_s() + 20; dev.st.messages - m0 < 2000; turns++) {
		ck_assert_msg(now_s() < end, "flood not served: %llu of 2000",
			      (unsigned long long)(dev.st.messages - m0));
		if (off < len) {
			ssize_t n = send(fd, buf + off, len - off, MSG_DONTWAIT | MSG_NOSIGNAL);

			if (n > 0)
				off += (size_t)n;
		}
		before = dev.st.messages;
		uv_run(&loop, UV_RUN_NOWAIT);
		if (dev.st.messages - before > most)
			most = dev.st.messages - before;
	}
	gap = ticker_stop();
	fprintf(stderr, "vhost-user: 2000 messages in %d loop turns, at most %llu a turn, "
		"loop stalled %.1f ms at most\n", turns, (unsigned long long)most, gap);
	ck_assert_uint_eq(most, 32);
	ck_assert_int_ge(turns, 2000 / 32);
	ck_assert_msg(gap < MAX_GAP_MS, "the loop stalled %.0f ms", gap);
	ck_assert_ptr_nonnull(dev.conn);
	close(fd);
}
END_TEST

/* More than 8 descriptors in one message drop the VMM, and none is kept:
 * 12 at once overflow the control buffer (MSG_CTRUNC); 5 with each of the
 * first two bytes make 10 for one message. */
START_TEST(too_many_descriptors_drop_the_vmm)
{
	uint8_t buf[64];
	size_t len;
	int efd[12], fd, fds0;

	/* qemu-user (UNIT_EMULATED) translates SCM_RIGHTS itself, with room
	 * for more descriptors than the relay's control buffer: the kernel's
	 * MSG_CTRUNC never reaches the relay there */
	if (getenv("UNIT_EMULATED") != NULL)
		return;
	for (int round = 0; round < 2; round++) {
		fd = vmm_ready();
		fds0 = procstat_open_fds();
		eventfds(efd, 12);
		len = vmm_msg(buf, REQ_GET_FEATURES, 0, NULL, 0);
		if (round == 0) {
			vmm_write_many(fd, buf, len, efd, 12);
		} else {
			vmm_write_many(fd, buf, 1, efd, 5);
			vmm_write_many(fd, buf + 1, 1, efd + 5, 5);
		}
		close_all(efd, 12);
		until_dropped(2);
		ck_assert_msg(strstr(logbuf, round == 0 ? "descriptors truncated (MSG_CTRUNC)"
					 : "more descriptors than a message may carry") != NULL,
			      "log: %s", logbuf);
		expect_closed(fd, "VMM with too many descriptors");
		run_for(0.05);
		ck_assert_int_eq(procstat_open_fds(), fds0 - 2);   /* and both ends of the socket */
	}
}
END_TEST

/* Descriptors the relay cannot take (it is out of descriptors: the kernel
 * sets MSG_CTRUNC) drop the VMM; nothing of that message is acted on. */
START_TEST(truncated_descriptors_drop_the_vmm)
{
	struct rlimit old, low;
	uint64_t idx = 1;
	uint8_t buf[64];
	int fd = vmm_ready(), efd = eventfd(0, EFD_CLOEXEC), probe;

	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &old), 0);
	probe = dup(0);             /* the lowest free number: no new one below the limit */
	ck_assert_int_ge(probe, 0);
	close(probe);
	low = old;
	low.rlim_cur = (rlim_t)probe;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &low), 0);
	vmm_write(fd, buf, vmm_msg(buf, REQ_SET_VRING_KICK, NEED_REPLY, &idx, 8), &efd, 1);
	for (double end = now_s() + 2; dev.conn != NULL && now_s() < end; ) {
		uv_run(&loop, UV_RUN_NOWAIT);
		usleep(200);
	}
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &old), 0);
	ck_assert_ptr_null(dev.conn);
	ck_assert_ptr_nonnull(strstr(logbuf, "descriptors truncated (MSG_CTRUNC)"));
	ck_assert_int_eq(dev.q[1].kick_fd, -1);      /* the request was not handled */
	close(efd);
	close(fd);
}
END_TEST

/* Descriptors sent with requests that take none (GET_FEATURES), with
 * SET_VRING_ERR (never used) or more than a request takes (SET_MEM_TABLE
 * of one region with three) are closed after the message: the relay holds
 * none of them, and the VMM is kept where the request is fine. */
START_TEST(unwanted_descriptors_are_closed)
{
	uint64_t idx = 0;
	struct { uint32_t n, pad; uint64_t gpa, size, uaddr, off; } mt = {
		1, 0, 0x100000, 1 << 20, 0x7f0000000000ull, 0 };
	int fd = vmm_ready(), efd[8], fds0 = procstat_open_fds(), mem[3];
	uint8_t buf[64];

	eventfds(efd, 8);
	vmm_write_many(fd, buf, vmm_msg(buf, REQ_GET_FEATURES, 0, NULL, 0), efd, 8);
	ck_assert_int_gt(vmm_u64(fd, REQ_GET_FEATURES), 0);
	ck_assert_int_eq(vmm_acked(fd, REQ_SET_VRING_ERR, &idx, 8, efd, 1), 0);
	idx = 1;
	ck_assert_int_eq(vmm_acked(fd, REQ_SET_VRING_ERR, &idx, 8, efd + 1, 1), 0);
	close_all(efd, 8);
	run_for(0.05);
	ck_assert_int_eq(procstat_open_fds(), fds0);
	for (int i = 0; i < 3; i++)
		mem[i] = guest_memfd(1 << 20, F_SEAL_SHRINK | F_SEAL_GROW);
	ck_assert_int_eq(vmm_acked(fd, REQ_SET_MEM_TABLE, &mt, sizeof(mt), mem, 3), 1);
	ck_assert_ptr_nonnull(strstr(logbuf, "SET_MEM_TABLE refused: 1 regions with 3 descriptors"));
	ck_assert_uint_eq(dev.mem.n, 0);
	close_all(mem, 3);
	run_for(0.05);
	ck_assert_int_eq(procstat_open_fds(), fds0);
	ck_assert_ptr_nonnull(dev.conn);
	close(fd);
}
END_TEST

/* An eventfd in semaphore mode gives 1 a read and stays readable: as a
 * kick it would fire every loop turn for 2^64 of them. Refused as kick and
 * as call (the kernel says so in fdinfo from Linux 6.5 on). */
START_TEST(semaphore_eventfds_are_refused)
{
	uint64_t idx = 1;
	int fd = vmm_ready(), sem = eventfd(0, EFD_CLOEXEC | EFD_SEMAPHORE);
	int fds0 = procstat_open_fds();

	ck_assert_int_ne(vmm_acked(fd, REQ_SET_VRING_KICK, &idx, 8, &sem, 1), 0);
	ck_assert_ptr_nonnull(strstr(logbuf, "ring 1: a semaphore eventfd"));
	ck_assert_int_lt(dev.q[1].kick_fd, 0);
	ck_assert_int_ne(vmm_acked(fd, REQ_SET_VRING_CALL, &idx, 8, &sem, 1), 0);
	ck_assert_int_lt(dev.q[1].call_fd, 0);
	close(sem);
	run_for(0.05);
	ck_assert_int_eq(procstat_open_fds(), fds0 - 1);
	ck_assert_ptr_nonnull(dev.conn);
	close(fd);
}
END_TEST

/* Regions may overlap (in guest physical and VMM addresses alike): taken,
 * and every extent the device translates lies whole inside one region's
 * mapping, whichever region it comes from. */
START_TEST(overlapping_regions_keep_extents_whole)
{
	struct {
		uint32_t n, pad;
		struct { uint64_t gpa, size, uaddr, off; } r[2];
	} mt = { 2, 0, { { 0x100000, 64 << 10, 0x7f0000000000ull, 0 },
			 { 0x100000, 1 << 20, 0x7f0000000000ull, 0 } } };
	static const struct { uint64_t off, len; } ext[] = {
		{ 0, 16 }, { (64 << 10) - 8, 8 }, { (64 << 10) - 8, 16 }, { 0x8000, 0x10000 },
		{ 0, 1 << 20 }, { (1 << 20) - 1, 1 }, { (1 << 20) - 1, 2 }, { 1 << 20, 1 },
	};
	int fd = vmm_ready(), mem[2];

	mem[0] = guest_memfd(64 << 10, F_SEAL_SHRINK | F_SEAL_GROW);
	mem[1] = guest_memfd(1 << 20, F_SEAL_SHRINK | F_SEAL_GROW);
	ck_assert_int_eq(vmm_acked(fd, REQ_SET_MEM_TABLE, &mt, sizeof(mt), mem, 2), 0);
	ck_assert_uint_eq(dev.mem.n, 2);
	for (size_t i = 0; i < sizeof(ext) / sizeof(ext[0]); i++) {
		uint8_t *p[2] = { gm_from_gpa(&dev.mem, 0x100000 + ext[i].off, ext[i].len),
				  gm_from_uaddr(&dev.mem, 0x7f0000000000ull + ext[i].off,
						ext[i].len) };
		int inside = ext[i].off + ext[i].len <= (1u << 20);

		for (int k = 0; k < 2; k++) {
			int whole = 0;

			ck_assert_msg((p[k] != NULL) == inside, "extent %zu: %p", i, (void *)p[k]);
			for (unsigned r = 0; p[k] != NULL && r < dev.mem.n; r++)
				whole |= p[k] >= dev.mem.r[r].host &&
					 p[k] + ext[i].len <= dev.mem.r[r].host + dev.mem.r[r].size;
			ck_assert_msg(p[k] == NULL || whole, "extent %zu spans regions", i);
		}
	}
	close_all(mem, 2);
	close(fd);
}
END_TEST

/* A region's memfd that the VMM grows after SET_MEM_TABLE changes nothing:
 * the region and its mapping keep their length, rings past it are refused. */
START_TEST(grown_memory_keeps_its_length)
{
	struct { uint32_t index, flags; uint64_t desc, used, avail, log; } addr = {
		0, 0, 0x7f0000000000ull + (1 << 20) + 0x10000, 0x7f0000000000ull + (1 << 20) + 0x12000,
		0x7f0000000000ull + (1 << 20) + 0x11000, 0 };
	struct { uint32_t index, num; } num = { 0, 16 };
	int fd = vmm_ready(), mem = guest_memfd(1 << 20, F_SEAL_SHRINK);

	ck_assert_int_eq(set_mem_table(fd, mem, 1 << 20), 0);
	ck_assert_int_eq(ftruncate(mem, 4 << 20), 0);       /* grown under the relay */
	ck_assert_int_eq(vmm_acked(fd, REQ_SET_VRING_NUM, &num, sizeof(num), NULL, 0), 0);
	ck_assert_int_eq(vmm_acked(fd, REQ_SET_VRING_ADDR, &addr, sizeof(addr), NULL, 0), 1);
	ck_assert_ptr_nonnull(strstr(logbuf, "ring 0 is not in guest memory"));
	ck_assert_uint_eq(dev.mem.r[0].size, 1 << 20);
	ck_assert_uint_eq(dev.map_len[0], 1 << 20);
	ck_assert_ptr_null(gm_from_gpa(&dev.mem, 0x100000 + (1 << 20), 1));
	ck_assert_ptr_nonnull(dev.conn);
	close(mem);
	close(fd);
}
END_TEST

/* ---- each request's own rule ---- */

/* A request the device does not know is nacked when a reply is asked,
 * otherwise ignored: no reply, the VMM stays, the next request is served. */
START_TEST(unknown_requests_are_nacked_or_ignored)
{
	static const uint32_t unknown[] = { 0, 6, 7, 19, 23, 26, 40, 1000, UINT32_MAX };
	uint64_t v = 7;
	int fd = vmm_ready();

	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		ck_assert_int_eq(vmm_acked(fd, unknown[i], &v, 8, NULL, 0), 1);
		vmm_send(fd, unknown[i], 0, &v, 8, NULL, 0);
		vmm_send(fd, REQ_GET_FEATURES, 0, NULL, 0, NULL, 0);
		/* the next reply is GET_FEATURES's: nothing came for the other */
		ck_assert_int_gt(vmm_u64(fd, REQ_GET_FEATURES), 0);
	}
	ck_assert_ptr_nonnull(strstr(logbuf, "unsupported vhost-user request 1000"));
	ck_assert_ptr_nonnull(dev.conn);
	ck_assert_uint_eq(dev.st.bad_messages, 2 * sizeof(unknown) / sizeof(unknown[0]));
	close(fd);
}
END_TEST

/* SET_FEATURES with a bit never offered is refused and changes nothing;
 * the offered ones are taken. SET_PROTOCOL_FEATURES keeps REPLY_ACK and
 * CONFIG of whatever it is given. */
START_TEST(features_only_as_offered)
{
	int fd = vmm_ready();
	uint64_t offered, v, all = ~0ull;

	vmm_send(fd, REQ_GET_FEATURES, 0, NULL, 0, NULL, 0);
	offered = (uint64_t)vmm_u64(fd, REQ_GET_FEATURES);
	ck_assert_uint_eq(offered, (1ull << 28) | (1ull << 29) | (1ull << 30) | (1ull << 32));
	for (int bit = 0; bit < 64; bit++) {
		v = 1ull << bit;
		if (offered & v)
			continue;
		v |= 1ull << 32;
		ck_assert_int_eq(vmm_acked(fd, REQ_SET_FEATURES, &v, 8, NULL, 0), 1);
		ck_assert_uint_eq(dev.features, 0);
	}
	ck_assert_ptr_nonnull(strstr(logbuf, "SET_FEATURES refused: features 0x1 were not offered"));
	ck_assert_int_eq(vmm_acked(fd, REQ_SET_FEATURES, &offered, 8, NULL, 0), 0);
	ck_assert_uint_eq(dev.features, offered);
	ck_assert_int_eq(vmm_acked(fd, REQ_SET_PROTOCOL_FEATURES, &all, 8, NULL, 0), 0);
	ck_assert_uint_eq(dev.protocol_features, (1ull << 3) | (1ull << 9));
	v = (1ull << 3) | (1ull << 0) | (1ull << 5);
	ck_assert_int_eq(vmm_acked(fd, REQ_SET_PROTOCOL_FEATURES, &v, 8, NULL, 0), 0);
	ck_assert_uint_eq(dev.protocol_features, 1ull << 3);
	ck_assert_ptr_nonnull(dev.conn);
	close(fd);
}
END_TEST

static void on_host_connected(struct vvs_conn *c, int status)
{
	(void)c;
	(void)status;
}

#define RING_AT(q, off) (0x10000u + 0x4000u * (q) + (off))   /* in guest memory */
#define VMM_UA 0x7f0000000000ull

/* Both rings of 16 set up in 1 MiB of MEM (desc, avail, used at RING_AT
 * 0, 0x1000, 0x2000), KICK[q] and CALL; the rings start with their kicks
 * (no PROTOCOL_FEATURES among the features). */
static void rings_up(int fd, int mem, const int *kick, int call)
{
	struct { uint32_t index, num; } num = { 0, 16 };
	struct { uint32_t index, flags; uint64_t desc, used, avail, log; } addr;
	uint64_t features = 1ull << 32, idx;

	ck_assert_int_eq(vmm_acked(fd, REQ_SET_FEATURES, &features, 8, NULL, 0), 0);
	ck_assert_int_eq(set_mem_table(fd, mem, 1 << 20), 0);
	for (uint32_t q = 0; q < 2; q++) {
		num.index = q;
		addr = (typeof(addr)){ q, 0, VMM_UA + RING_AT(q, 0), VMM_UA + RING_AT(q, 0x2000),
				       VMM_UA + RING_AT(q, 0x1000), 0 };
		idx = q;
		ck_assert_int_eq(vmm_acked(fd, REQ_SET_VRING_NUM, &num, 8, NULL, 0), 0);
		ck_assert_int_eq(vmm_acked(fd, REQ_SET_VRING_ADDR, &addr, 40, NULL, 0), 0);
		ck_assert_int_eq(vmm_acked(fd, REQ_SET_VRING_KICK, &idx, 8, &kick[q], 1), 0);
		ck_assert_int_eq(vmm_acked(fd, REQ_SET_VRING_CALL, &idx, 8, &call, 1), 0);
		ck_assert_int_eq(dev.q[q].enabled, 1);
	}
}

/* RESET_OWNER at any time drops rings, eventfds, mappings and every vsock
 * connection; the VMM stays connected and may set the device up again. */
START_TEST(reset_owner_drops_everything)
{
	static const struct vvs_ops host_ops = { .connected = on_host_connected,
						 .closed = on_closed };
	uint64_t features = 1ull << 32;
	int fd, mem, kick, call, fds0;

	fds0 = procstat_open_fds();
	fd = vmm_ready();
	mem = guest_memfd(1 << 20, F_SEAL_SHRINK | F_SEAL_GROW);
	kick = eventfd(0, EFD_CLOEXEC);
	call = eventfd(0, EFD_CLOEXEC);
	rings_up(fd, mem, (int[]){ kick, kick }, call);
	ck_assert_ptr_nonnull(vhu_connect(&dev, PORT, &host_ops, NULL));
	ck_assert_ptr_nonnull(vhu_connect(&dev, PORT + 1, &host_ops, NULL));
	ck_assert_uint_eq(dev.vvs.nconns, 2);
	close(mem);
	close(kick);
	close(call);
	/* REPLY_ACK goes with the reset: GET_FEATURES's reply says it is done */
	vmm_send(fd, REQ_RESET_OWNER, NEED_REPLY, NULL, 0, NULL, 0);
	vmm_send(fd, REQ_GET_FEATURES, 0, NULL, 0, NULL, 0);
	ck_assert_int_gt(vmm_u64(fd, REQ_GET_FEATURES), 0);
	ck_assert_uint_eq(dev.mem.n, 0);
	ck_assert_ptr_null(dev.maps[0]);
	for (int q = 0; q < 2; q++) {
		ck_assert_int_eq(dev.q[q].kick_fd, -1);
		ck_assert_int_eq(dev.q[q].call_fd, -1);
		ck_assert_ptr_null(dev.q[q].kick_watch);
		ck_assert_uint_eq(dev.q[q].vr.num, 0);
		ck_assert_uint_eq(dev.q[q].num, 0);
	}
	ck_assert_uint_eq(dev.features, 0);
	ck_assert_uint_eq(dev.protocol_features, 0);
	ck_assert_int_eq(dev.owner, 0);
	ck_assert_uint_eq(dev.vvs.nconns, 0);
	ck_assert_int_eq(ev.closed, 2);
	run_for(0.05);
	/* every descriptor the VMM gave is closed: only the socket's ends */
	ck_assert_int_eq(procstat_open_fds(), fds0 + 2);
	ck_assert_ptr_nonnull(dev.conn);
	/* and the VMM may set it up again */
	vmm_send(fd, REQ_SET_OWNER, 0, NULL, 0, NULL, 0);
	vmm_send(fd, REQ_SET_FEATURES, 0, &features, 8, NULL, 0);
	vmm_send(fd, REQ_GET_FEATURES, 0, NULL, 0, NULL, 0);
	ck_assert_int_gt(vmm_u64(fd, REQ_GET_FEATURES), 0);
	ck_assert_uint_eq(dev.features, features);
	close(fd);
}
END_TEST

/* SET_VRING_NUM, SET_VRING_BASE, SET_VRING_ENABLE and SET_VRING_ADDR take
 * ring 0 or 1 only; a size a power of two up to 32768; a base up to
 * 65535; any non-zero enable; addresses whole in guest memory. */
START_TEST(ring_requests_check_their_values)
{
	struct { uint32_t index, num; } st;
	struct { uint32_t index, flags; uint64_t desc, used, avail, log; } addr = {
		0, 0xffffffffu, 0x7f0000000000ull + 0x10000, 0x7f0000000000ull + 0x12000,
		0x7f0000000000ull + 0x11000, 0x1234 };
	static const uint32_t bad_num[] = { 0, 3, 12, 65536, 32769, 0x80000000u };
	static const uint32_t good_num[] = { 1, 2, 256, 32768 };
	int fd = vmm_ready(), mem = guest_memfd(1 << 20, F_SEAL_SHRINK | F_SEAL_GROW);
	uint32_t reqs[] = { REQ_SET_VRING_NUM, REQ_SET_VRING_BASE, REQ_SET_VRING_ENABLE,
			    REQ_GET_VRING_BASE };

	for (size_t r = 0; r < sizeof(reqs) / sizeof(reqs[0]); r++)
		for (uint32_t index = 2; index < 5; index += 2) {
			st = (typeof(st)){ index == 4 ? UINT32_MAX : index, 1 };
			ck_assert_int_eq(vmm_acked(fd, reqs[r], &st, 8, NULL, 0), 1);
		}
	ck_assert_ptr_nonnull(strstr(logbuf, "SET_VRING_NUM refused: no ring 2"));
	ck_assert_ptr_nonnull(strstr(logbuf, "SET_VRING_ENABLE refused: no ring 4294967295"));
	for (size_t i = 0; i < sizeof(bad_num) / sizeof(bad_num[0]); i++) {
		st = (typeof(st)){ 1, bad_num[i] };
		ck_assert_int_eq(vmm_acked(fd, REQ_SET_VRING_NUM, &st, 8, NULL, 0), 1);
		ck_assert_uint_eq(dev.q[1].num, 0);
	}
	for (size_t i = 0; i < sizeof(good_num) / sizeof(good_num[0]); i++) {
		st = (typeof(st)){ 1, good_num[i] };
		ck_assert_int_eq(vmm_acked(fd, REQ_SET_VRING_NUM, &st, 8, NULL, 0), 0);
		ck_assert_uint_eq(dev.q[1].num, good_num[i]);
	}
	st = (typeof(st)){ 1, 65536 };
	ck_assert_int_eq(vmm_acked(fd, REQ_SET_VRING_BASE, &st, 8, NULL, 0), 1);
	ck_assert_ptr_nonnull(strstr(logbuf, "SET_VRING_BASE refused: ring base 65536"));
	ck_assert_uint_eq(dev.q[1].base, 0);
	st = (typeof(st)){ 1, 65535 };
	ck_assert_int_eq(vmm_acked(fd, REQ_SET_VRING_BASE, &st, 8, NULL, 0), 0);
	ck_assert_uint_eq(dev.q[1].base, 65535);
	st = (typeof(st)){ 1, 0x80000000u };
	ck_assert_int_eq(vmm_acked(fd, REQ_SET_VRING_ENABLE, &st, 8, NULL, 0), 0);
	ck_assert_int_eq(dev.q[1].enabled, 1);
	st = (typeof(st)){ 1, 0 };
	ck_assert_int_eq(vmm_acked(fd, REQ_SET_VRING_ENABLE, &st, 8, NULL, 0), 0);
	ck_assert_int_eq(dev.q[1].enabled, 0);
	/* addresses: the handler refuses rings not whole in memory, takes the
	 * rest whatever flags and log address say */
	st = (typeof(st)){ 0, 16 };
	ck_assert_int_eq(vmm_acked(fd, REQ_SET_VRING_NUM, &st, 8, NULL, 0), 0);
	ck_assert_int_eq(set_mem_table(fd, mem, 1 << 20), 0);
	addr.index = 2;
	ck_assert_int_eq(vmm_acked(fd, REQ_SET_VRING_ADDR, &addr, 40, NULL, 0), 1);
	ck_assert_ptr_nonnull(strstr(logbuf, "SET_VRING_ADDR refused: no ring 2"));
	addr.index = 0;
	addr.used = 0x7f0000000000ull + (1 << 20) - 8;          /* straddles the end */
	ck_assert_int_eq(vmm_acked(fd, REQ_SET_VRING_ADDR, &addr, 40, NULL, 0), 1);
	addr.used = 0x7f0000000000ull + 0x12001;                /* misaligned */
	ck_assert_int_eq(vmm_acked(fd, REQ_SET_VRING_ADDR, &addr, 40, NULL, 0), 1);
	addr.used = 0x100000 + 0x12000;                         /* a guest address */
	ck_assert_int_eq(vmm_acked(fd, REQ_SET_VRING_ADDR, &addr, 40, NULL, 0), 1);
	ck_assert_ptr_nonnull(strstr(logbuf, "SET_VRING_ADDR refused: ring 0 is not in guest "
				     "memory"));
	ck_assert_uint_eq(dev.q[0].vr.num, 0);
	addr.used = 0x7f0000000000ull + 0x12000;
	ck_assert_int_eq(vmm_acked(fd, REQ_SET_VRING_ADDR, &addr, 40, NULL, 0), 0);
	ck_assert_uint_eq(dev.q[0].vr.num, 16);
	ck_assert_ptr_eq(dev.q[0].vr.desc, (void *)(dev.mem.r[0].host + 0x10000));
	ck_assert_ptr_nonnull(dev.conn);
	close(mem);
	close(fd);
}
END_TEST

/* GET_CONFIG: what came back, 0 and the bytes, or 1 refused. */
static int get_config(int fd, uint32_t off, uint32_t size, uint8_t *out)
{
	struct { uint32_t off, size, flags; uint8_t data[256]; } cfg = { off, size, 0, { 0 } };
	struct { uint32_t req, flags, size; } h;
	uint8_t body[12 + 256];

	vmm_send(fd, REQ_GET_CONFIG, NEED_REPLY, &cfg, 12 + size, NULL, 0);
	ck_assert_int_eq(vmm_read(fd, &h, sizeof(h)), 0);
	ck_assert_uint_eq(h.req, REQ_GET_CONFIG);
	ck_assert_uint_le(h.size, sizeof(body));
	ck_assert_int_eq(vmm_read(fd, body, h.size), 0);
	if (h.size == 8)
		return body[0] != 0;        /* the ack: refused */
	ck_assert_uint_eq(h.size, 12 + size);
	memcpy(out, body + 12, size);
	return 0;
}

/* GET_CONFIG reads within the 8 bytes of the config space (the guest's
 * CID), whatever offset and size ask; SET_CONFIG changes nothing. */
START_TEST(config_offsets_stay_in_the_space)
{
	static const struct { uint32_t off, size; } bad[] = {
		{ 0, 9 }, { 4, 5 }, { 8, 1 }, { 9, 0 }, { 0xffffffffu, 1 }, { 0xfffffff9u, 8 },
		{ 1, 255 },
	};
	uint8_t got[256];
	struct { uint32_t off, size, flags; uint8_t data[8]; } set = { 0, 8, 0, { 9, 9, 9, 9 } };
	int fd = vmm_ready();

	ck_assert_int_eq(get_config(fd, 0, 8, got), 0);
	ck_assert_uint_eq(got[0], GUEST_CID);
	for (int i = 1; i < 8; i++)
		ck_assert_uint_eq(got[i], 0);
	ck_assert_int_eq(get_config(fd, 0, 1, got), 0);
	ck_assert_uint_eq(got[0], GUEST_CID);
	ck_assert_int_eq(get_config(fd, 4, 4, got), 0);
	ck_assert_int_eq(get_config(fd, 8, 0, got), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(get_config(fd, bad[i].off, bad[i].size, got) == 1,
			      "%u bytes at %u answered", bad[i].size, bad[i].off);
	ck_assert_ptr_nonnull(strstr(logbuf, "GET_CONFIG refused: 1 bytes at 4294967295: the "
				     "config space has 8"));
	ck_assert_int_eq(vmm_acked(fd, REQ_SET_CONFIG, &set, sizeof(set), NULL, 0), 0);
	ck_assert_int_eq(get_config(fd, 0, 8, got), 0);
	ck_assert_uint_eq(got[0], GUEST_CID);
	ck_assert_uint_eq(dev.vvs.guest_cid, GUEST_CID);
	ck_assert_ptr_nonnull(dev.conn);
	close(fd);
}
END_TEST

/* ---- kicks that keep firing, the hole budget, the eventfd guard ---- */

/* Write one kick and run the loop until the device took it. */
static void kick_once(int kick)
{
	uint64_t before = dev.st.kicks;

	ck_assert_int_eq(eventfd_write(kick, 1), 0);
	for (double end = now_s() + 5; dev.st.kicks == before && dev.failed[0] == '\0'; ) {
		ck_assert_msg(now_s() < end, "kick not taken");
		uv_run(&loop, UV_RUN_NOWAIT);
	}
}

/* A kick that fires EMPTY_KICKS_MAX (1024) times in a row with nothing new
 * in its ring (a semaphore eventfd the kernel does not name, a VMM writing
 * kicks in a loop) fails the device and is no longer watched; one with
 * new buffers in between starts the count again. */
START_TEST(empty_kicks_fail_the_device)
{
	static const struct vvs_ops host_ops = { .connected = on_host_connected,
						 .closed = on_closed };
	int fd = vmm_ready(), mem = guest_memfd(1 << 20, F_SEAL_SHRINK | F_SEAL_GROW);
	int kick = eventfd(0, EFD_CLOEXEC), call = eventfd(0, EFD_CLOEXEC);
	int rx_kick = eventfd(0, EFD_CLOEXEC);
	uint8_t *g = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_SHARED, mem, 0);
	uint16_t *tx_avail = (uint16_t *)(g + RING_AT(1, 0x1000));

	ck_assert_ptr_ne(g, MAP_FAILED);
	rings_up(fd, mem, (int[]){ rx_kick, kick }, call);
	ck_assert_ptr_nonnull(vhu_connect(&dev, PORT, &host_ops, NULL));
	for (int i = 0; i < 1000; i++)
		kick_once(kick);
	/* a buffer (a bad chain: the device returns it and goes on) */
	__atomic_store_n(&tx_avail[1], 1, __ATOMIC_RELEASE);
	kick_once(kick);
	ck_assert_uint_eq(dev.st.bad_chains, 1);
	for (int i = 0; i < 1023; i++)
		kick_once(kick);
	ck_assert_str_eq(dev.failed, "");
	ck_assert_ptr_nonnull(dev.q[1].kick_watch);
	kick_once(kick);
	ck_assert_str_eq(dev.failed, "kick of ring 1 fired 1024 times with nothing new");
	ck_assert_ptr_null(dev.q[1].kick_watch);
	ck_assert_int_eq(dev.q[1].kick_fd, -1);
	ck_assert_uint_eq(dev.st.kicks, 1000 + 1 + 1024);
	ck_assert_ptr_nonnull(dev.conn);
	/* its connection ends (on the next loop turn), so that its owner does
	 * not wait on it */
	ck_assert_uint_eq(dev.vvs.nconns, 1);
	ck_assert_int_eq(ev.closed, 0);
	run_for(0.05);
	ck_assert_uint_eq(dev.vvs.nconns, 0);
	ck_assert_int_eq(ev.closed, 1);
	ck_assert_str_eq(closed_why, "kick of ring 1 fired 1024 times with nothing new");
	munmap(g, 1 << 20);
	close(mem);
	close(kick);
	close(rx_kick);
	close(call);
	close(fd);
}
END_TEST

#define HOLE_PAGES 4096                          /* vhost_user.c's budget */
#define REFILL_MS (3600 * 1000 / HOLE_PAGES)     /* a page back this often */

/* The budget after a refill from AT with PAGES left, as holes_refill
 * computes it on the loop's clock. */
static size_t refilled(size_t pages, uint64_t at)
{
	uint64_t back = (uv_now(&loop) - at) / REFILL_MS;

	return pages + back < HOLE_PAGES ? pages + back : HOLE_PAGES;
}

/* The RX hole budget is the device's: RESET_OWNER and a new VMM
 * connection leave it where it was; it comes back at a page every
 * REFILL_MS (16 MiB an hour), up to 16 MiB. The test moves the budget's
 * last refill back in time instead of waiting. */
START_TEST(hole_budget_survives_reset_and_reconnect)
{
	int mem = guest_memfd(1 << 20, F_SEAL_SHRINK | F_SEAL_GROW);
	int kick = eventfd(0, EFD_CLOEXEC), call = eventfd(0, EFD_CLOEXEC);
	int fd = vmm_ready(), kicks[2] = { kick, kick };
	uint64_t at, pf = PF_REPLY_ACK;

	ck_assert_uint_eq(dev.hole_pages, HOLE_PAGES);
	rings_up(fd, mem, kicks, call);
	dev.hole_pages = 5;                      /* spent by a guest */
	at = dev.hole_refill_at = uv_now(&loop);
	vmm_send(fd, REQ_RESET_OWNER, 0, NULL, 0, NULL, 0);
	vmm_send(fd, REQ_SET_OWNER, 0, NULL, 0, NULL, 0);
	vmm_send(fd, REQ_SET_PROTOCOL_FEATURES, 0, &pf, 8, NULL, 0);
	vmm_send(fd, REQ_GET_FEATURES, 0, NULL, 0, NULL, 0);
	ck_assert_int_gt(vmm_u64(fd, REQ_GET_FEATURES), 0);
	ck_assert_uint_eq(dev.mem.n, 0);
	ck_assert_uint_eq(dev.hole_pages, 5);
	rings_up(fd, mem, kicks, call);
	vhu_flush(&dev);
	ck_assert_uint_eq(dev.hole_pages, refilled(5, at));
	ck_assert_uint_lt(dev.hole_pages, 100);
	/* a new VMM connection */
	close(fd);
	until_dropped(5);
	ck_assert_uint_lt(dev.hole_pages, 100);
	fd = vmm_ready();
	rings_up(fd, mem, kicks, call);
	vhu_flush(&dev);
	ck_assert_uint_eq(dev.hole_pages, refilled(5, at));
	ck_assert_uint_lt(dev.hole_pages, 100);
	/* half an hour: half the budget back; two hours: all of it, no more */
	dev.hole_pages = 0;
	dev.hole_refill_at = uv_now(&loop) - 1800 * 1000;
	vhu_flush(&dev);
	ck_assert_uint_eq(dev.hole_pages, 1800 * 1000 / REFILL_MS);
	ck_assert_uint_eq(dev.hole_refill_at, uv_now(&loop) - 1800 * 1000 +
			  (1800 * 1000 / REFILL_MS) * REFILL_MS);
	dev.hole_refill_at = uv_now(&loop) - 7200 * 1000;
	vhu_flush(&dev);
	ck_assert_uint_eq(dev.hole_pages, HOLE_PAGES);
	close(mem);
	close(kick);
	close(call);
	close(fd);
}
END_TEST

/* The test stands between the device and two libc calls:
 * - preadv2 (the kick read with RWF_NOWAIT): made to fail as on a kernel
 *   before 5.11 (EOPNOTSUPP), after draining the counter as a VMM racing
 *   the relay would, so that the guarded read finds nothing;
 * - timer_settime (the guard's): arming it, the thread is then kept off
 *   the CPU past the first expiry, as a busy machine may do. */
static int no_rwf_nowait, late_after_arming;

ssize_t preadv2(int fd, const struct iovec *iov, int iovcnt, off_t offset, int flags)
{
	static ssize_t (*real)(int, const struct iovec *, int, off_t, int);
	uint64_t v;

	if (no_rwf_nowait && (flags & RWF_NOWAIT)) {
		if (read(fd, &v, sizeof(v)) < 0)    /* the VMM drains it first */
			return -1;
		errno = EOPNOTSUPP;
		return -1;
	}
	if (real == NULL)
		real = (ssize_t (*)(int, const struct iovec *, int, off_t, int))dlsym(RTLD_NEXT, "preadv2");
	return real(fd, iov, iovcnt, offset, flags);
}

int timer_settime(timer_t t, int flags, const struct itimerspec *new, struct itimerspec *old)
{
	static int (*real)(timer_t, int, const struct itimerspec *, struct itimerspec *);
	int rc;

	if (real == NULL)
		real = (int (*)(timer_t, int, const struct itimerspec *, struct itimerspec *))
		       dlsym(RTLD_NEXT, "timer_settime");
	rc = real(t, flags, new, old);
	if (rc == 0 && late_after_arming && (new->it_value.tv_sec || new->it_value.tv_nsec)) {
		struct timespec off_cpu = { 0, 5 * 1000000L }, left;

		/* the expiry comes, its signal is handled, here */
		while (nanosleep(&off_cpu, &left) != 0)
			off_cpu = left;
	}
	return rc;
}

/* Without RWF_NOWAIT (Linux before 5.11) the kick is read under the
 * guard: the VMM cleared O_NONBLOCK and drained the counter between the
 * poll and the read, so the read would wait for ever; it ends within the
 * guard, the device fails and stops watching the kick. */
START_TEST(guarded_kick_read_fails_the_device)
{
	int fd = vmm_ready(), efd = eventfd(0, EFD_CLOEXEC);
	uint64_t idx = 1;
	double t0, took;

	ck_assert_int_eq(vmm_acked(fd, REQ_SET_VRING_KICK, &idx, 8, &efd, 1), 0);
	ck_assert_int_ne(fcntl(dev.q[1].kick_fd, F_GETFL) & O_NONBLOCK, 0);
	ck_assert_int_eq(fcntl(efd, F_SETFL, fcntl(efd, F_GETFL) & ~O_NONBLOCK), 0);
	ck_assert_int_eq(fcntl(dev.q[1].kick_fd, F_GETFL) & O_NONBLOCK, 0);
	ck_assert_int_eq(eventfd_write(efd, 1), 0);
	no_rwf_nowait = 1;
	t0 = now_s();
	for (double end = t0 + 5; dev.failed[0] == '\0'; ) {
		ck_assert_msg(now_s() < end, "device not failed");
		uv_run(&loop, UV_RUN_NOWAIT);
	}
	took = now_s() - t0;
	no_rwf_nowait = 0;
	fprintf(stderr, "vhost-user: guarded kick read failed the device after %.1f ms\n",
		took * 1e3);
	ck_assert_str_eq(dev.failed, "kick of ring 1 unreadable: Connection timed out");
	ck_assert_ptr_null(dev.q[1].kick_watch);
	ck_assert_int_eq(dev.q[1].kick_fd, -1);
	ck_assert_msg(took * 1e3 < MAX_GAP_MS, "the loop waited %.0f ms", took * 1e3);
	ck_assert_ptr_nonnull(dev.conn);
	close(efd);
	close(fd);
}
END_TEST

/* The guard's timer repeats until disarmed: a thread kept off the CPU
 * between arming it and the call (its first expiry spent before the call
 * began) is still interrupted. A write to a blocking eventfd whose counter
 * is full would wait for ever; it ends with -ETIMEDOUT. */
START_TEST(guard_expiry_before_the_call_is_not_the_last)
{
	int efd = eventfd(0, EFD_CLOEXEC);
	uint64_t full = 0xfffffffffffffffeull;
	double t0, took;
	int rc;

	ck_assert_int_eq(write(efd, &full, sizeof(full)), (ssize_t)sizeof(full));
	ck_assert_int_eq(vmmfd_signal(efd), -ETIMEDOUT);      /* guard made, as usual */
	late_after_arming = 1;
	t0 = now_s();
	rc = vmmfd_signal(efd);
	took = now_s() - t0;
	late_after_arming = 0;
	fprintf(stderr, "vhost-user: guarded write, first expiry missed: %d after %.1f ms\n", rc,
		took * 1e3);
	ck_assert_int_eq(rc, -ETIMEDOUT);
	ck_assert_msg(took * 1e3 < MAX_GAP_MS, "the write waited %.0f ms", took * 1e3);
	close(efd);
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
	tc = tcase_create("hybrid");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, hybrid_socket_for_other_programs);
	tcase_add_test(tc, hybrid_socket_follows_configuration);
	tcase_add_test(tc, hybrid_clients_shed_when_out_of_descriptors);
	suite_add_tcase(s, tc);
	tc = tcase_create("hostile");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, dribbling_vmm_is_served_without_blocking);
	tcase_add_test(tc, unfinished_message_drops_the_vmm);
	tcase_add_test(tc, vmm_not_reading_replies_is_dropped);
	tcase_add_test(tc, wrong_request_sizes_are_refused);
	tcase_add_test(tc, unsealed_memory_is_refused);
	tcase_add_test(tc, memory_past_the_address_space_is_refused);
	tcase_add_test(tc, sealed_memory_cannot_shrink);
	tcase_add_test(tc, kick_fd_must_be_an_eventfd);
	tcase_add_test(tc, kick_read_error_fails_the_device);
	tcase_add_test(tc, socket_path_is_checked);
	tcase_add_test(tc, listener_removes_only_its_own);
	tcase_add_test(tc, second_vmm_connection_is_refused);
	tcase_add_test(tc, bad_headers_drop_the_vmm);
	tcase_add_test(tc, message_flood_is_served_in_passes);
	tcase_add_test(tc, too_many_descriptors_drop_the_vmm);
	tcase_add_test(tc, truncated_descriptors_drop_the_vmm);
	tcase_add_test(tc, unwanted_descriptors_are_closed);
	tcase_add_test(tc, semaphore_eventfds_are_refused);
	tcase_add_test(tc, overlapping_regions_keep_extents_whole);
	tcase_add_test(tc, grown_memory_keeps_its_length);
	tcase_add_test(tc, unknown_requests_are_nacked_or_ignored);
	tcase_add_test(tc, features_only_as_offered);
	tcase_add_test(tc, reset_owner_drops_everything);
	tcase_add_test(tc, ring_requests_check_their_values);
	tcase_add_test(tc, config_offsets_stay_in_the_space);
	tcase_add_test(tc, empty_kicks_fail_the_device);
	tcase_add_test(tc, hole_budget_survives_reset_and_reconnect);
	tcase_add_test(tc, guarded_kick_read_fails_the_device);
	tcase_add_test(tc, guard_expiry_before_the_call_is_not_the_last);
	suite_add_tcase(s, tc);
	return unit_run(s);
}
