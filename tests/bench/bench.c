/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench.c - what the benchmarks share (see bench.h): blocking socket I/O
 * that dies on error, adb frames over it, helper processes, percentiles.
 */
#include "tests/bench/bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char *bench_name = "bench";

double bench_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double bench_thread_cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void bench_die(const char *what)
{
	fprintf(stderr, "%s: %s: %s\n", bench_name, what, strerror(errno));
	exit(2);
}

void bench_write_all(int fd, const void *p, size_t len)
{
	const char *c = p;

	while (len > 0) {
		ssize_t n = write(fd, c, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			bench_die("write");
		}
		c += n;
		len -= (size_t)n;
	}
}

void bench_read_all(int fd, void *p, size_t len)
{
	char *c = p;

	while (len > 0) {
		ssize_t n = read(fd, c, len);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			errno = n == 0 ? ECONNRESET : errno;
			bench_die("read");
		}
		c += n;
		len -= (size_t)n;
	}
}

void bench_send_frame(int fd, uint32_t cmd, uint32_t a0, uint32_t a1, const void *p, size_t len)
{
	struct adb_header h;
	uint8_t raw[ADB_HEADER_SIZE];

	adb_header_init(&h, cmd, a0, a1, (uint32_t)len, 0);
	adb_header_encode(&h, raw);
	bench_write_all(fd, raw, sizeof(raw));
	if (len)
		bench_write_all(fd, p, len);
}

/* Read one frame; payload into buf (cap bytes), returns the header. */
struct adb_header bench_recv_frame(int fd, uint8_t *buf, size_t cap)
{
	uint8_t raw[ADB_HEADER_SIZE];
	struct adb_header h;

	bench_read_all(fd, raw, sizeof(raw));
	adb_header_decode(raw, &h);
	if (adb_header_validate(&h, ADB_MAX_PAYLOAD) != ADB_OK || h.data_length > cap) {
		fprintf(stderr, "%s: bad frame\n", bench_name);
		exit(2);
	}
	bench_read_all(fd, buf, h.data_length);
	return h;
}

void bench_stream_frames(int fd, size_t payload, size_t total, uint8_t *buf)
{
	for (size_t sent = 0; sent < total; sent += payload)
		bench_send_frame(fd, ADB_CMD_WRTE, 1, 1, buf, payload);
}

void bench_sink_frames(int fd, size_t total, uint8_t *buf, size_t cap)
{
	size_t got = 0;

	while (got < total) {
		struct adb_header h = bench_recv_frame(fd, buf, cap);
		got += h.data_length;
	}
}

/* Connect a new socket of family to addr, retrying for 4 s while nothing
 * listens there yet. */
static int connect_retry(int family, const struct sockaddr *addr, socklen_t len, const char *what)
{
	for (int tries = 0; tries < 200; tries++) {
		int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd >= 0 && connect(fd, addr, len) == 0)
			return fd;
		if (fd >= 0)
			close(fd);
		usleep(20000);
	}
	bench_die(what);
}

int bench_connect_tcp(int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int one = 1, fd;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = connect_retry(AF_INET, (struct sockaddr *)&sin, sizeof(sin), "connect front");
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

int bench_connect_unix(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	return connect_retry(AF_UNIX, (struct sockaddr *)&sun, sizeof(sun), "connect guest");
}

int bench_listen_unix(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	unlink(path);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 || listen(fd, 64) != 0)
		bench_die(path);
	return fd;
}

int bench_free_port(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(fd, (struct sockaddr *)&sin, sizeof(sin));
	getsockname(fd, (struct sockaddr *)&sin, &len);
	port = ntohs(sin.sin_port);
	close(fd);
	return port;
}

pid_t bench_spawn(char *const argv[])
{
	pid_t pid = fork();

	if (pid == 0) {
		int null = open("/dev/null", 0);
		dup2(null, 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	return pid;
}

double bench_stop(pid_t pid)
{
	struct rusage ru;
	int status;

	kill(pid, SIGTERM);
	if (wait4(pid, &status, 0, &ru) != pid)
		return 0;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The p-th percentile (0..100) of n samples, which it sorts. */
double bench_percentile(double *v, size_t n, double p)
{
	qsort(v, n, sizeof(*v), cmp_double);
	return v[(size_t)((double)(n - 1) * p / 100.0 + 0.5)];
}
