/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_relay.c - throughput of adb WRTE streams through adbd-relay,
 * measured side by side in one run against the same traffic sent directly
 * to the guest socket, through socat (a plain byte relay), and against
 * memcpy bandwidth. Prints ratios; never passes or fails on numbers.
 *
 *   bench_relay RELAY_BINARY [MIB_PER_RUN]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "adbproto/adbproto.h"

enum direction { TO_GUEST, TO_HOST };

struct run {
	const char *guest_path;
	enum direction dir;
	size_t payload;
	size_t total;
	int host_fd;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "bench_relay: %s: %s\n", what, strerror(errno));
	exit(2);
}

static void write_all(int fd, const void *p, size_t len)
{
	const char *c = p;

	while (len > 0) {
		ssize_t n = write(fd, c, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("write");
		}
		c += n;
		len -= (size_t)n;
	}
}

static void read_all(int fd, void *p, size_t len)
{
	char *c = p;

	while (len > 0) {
		ssize_t n = read(fd, c, len);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			errno = n == 0 ? ECONNRESET : errno;
			die("read");
		}
		c += n;
		len -= (size_t)n;
	}
}

static void send_frame(int fd, uint32_t cmd, uint32_t a0, uint32_t a1, const void *p, size_t len)
{
	struct adb_header h;
	uint8_t raw[ADB_HEADER_SIZE];

	adb_header_init(&h, cmd, a0, a1, (uint32_t)len, 0);
	adb_header_encode(&h, raw);
	write_all(fd, raw, sizeof(raw));
	if (len)
		write_all(fd, p, len);
}

/* Read one frame; payload into buf (cap bytes), returns the header. */
static struct adb_header recv_frame(int fd, uint8_t *buf, size_t cap)
{
	uint8_t raw[ADB_HEADER_SIZE];
	struct adb_header h;

	read_all(fd, raw, sizeof(raw));
	adb_header_decode(raw, &h);
	if (adb_header_validate(&h, ADB_MAX_PAYLOAD) != ADB_OK || h.data_length > cap) {
		fprintf(stderr, "bench_relay: bad frame\n");
		exit(2);
	}
	read_all(fd, buf, h.data_length);
	return h;
}

static void stream_frames(int fd, size_t payload, size_t total, uint8_t *buf)
{
	for (size_t sent = 0; sent < total; sent += payload)
		send_frame(fd, ADB_CMD_WRTE, 1, 1, buf, payload);
}

/* What a device may send in one frame: as adbd, no more than the host's
 * CNXN allowed (the relay tells its guest less than the PC does). */
static size_t device_payload(size_t wanted, const struct adb_header *host_cnxn)
{
	return wanted < host_cnxn->arg1 ? wanted : host_cnxn->arg1;
}

static void sink_frames(int fd, size_t total, uint8_t *buf, size_t cap)
{
	size_t got = 0;

	while (got < total) {
		struct adb_header h = recv_frame(fd, buf, cap);
		got += h.data_length;
	}
}

/* The guest: accept one connection, answer CNXN, then stream or sink. */
static void *guest_main(void *arg)
{
	struct run *r = arg;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	uint8_t *buf = malloc(ADB_MAX_PAYLOAD);
	int l = socket(AF_UNIX, SOCK_STREAM, 0), c;
	static const char banner[] = "device::ro.product.name=bench;features=";
	struct adb_header cnxn;

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", r->guest_path);
	unlink(r->guest_path);
	if (bind(l, (struct sockaddr *)&sun, sizeof(sun)) != 0 || listen(l, 1) != 0)
		die("guest listen");
	c = accept(l, NULL, NULL);
	if (c < 0)
		die("guest accept");
	cnxn = recv_frame(c, buf, ADB_MAX_PAYLOAD); /* the host's */
	send_frame(c, ADB_CMD_CNXN, ADB_VERSION, ADB_MAX_PAYLOAD, banner, sizeof(banner));
	recv_frame(c, buf, ADB_MAX_PAYLOAD); /* OPEN */
	send_frame(c, ADB_CMD_OKAY, 1, 1, NULL, 0);
	if (r->dir == TO_GUEST)
		sink_frames(c, r->total, buf, ADB_MAX_PAYLOAD);
	else
		stream_frames(c, device_payload(r->payload, &cnxn), r->total, buf);
	recv_frame(c, buf, ADB_MAX_PAYLOAD); /* the host's CLSE: all data read */
	close(c);
	close(l);
	free(buf);
	return NULL;
}

static int connect_tcp(int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int one = 1;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (int tries = 0; tries < 200; tries++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0) {
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			return fd;
		}
		close(fd);
		usleep(20000);
	}
	die("connect front");
	return -1;
}

static int connect_unix(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	for (int tries = 0; tries < 200; tries++) {
		int fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0)
			return fd;
		close(fd);
		usleep(20000);
	}
	die("connect guest");
	return -1;
}

/* One measured transfer; returns MB/s (1e6 bytes). connect_fn reaches the
 * guest through whatever sits in between. */
static double measure(struct run *r, int (*connect_fn)(void *), void *arg)
{
	pthread_t guest;
	uint8_t *buf = malloc(ADB_MAX_PAYLOAD);
	static const char banner[] = "host::features=";
	double t0, t1;
	int fd;

	memset(buf, 0x5a, ADB_MAX_PAYLOAD);
	pthread_create(&guest, NULL, guest_main, r);
	fd = connect_fn(arg);
	send_frame(fd, ADB_CMD_CNXN, ADB_VERSION, ADB_MAX_PAYLOAD, banner, sizeof(banner));
	recv_frame(fd, buf, ADB_MAX_PAYLOAD);
	send_frame(fd, ADB_CMD_OPEN, 1, 0, "bench:\0", 7);
	recv_frame(fd, buf, ADB_MAX_PAYLOAD);
	t0 = now_s();
	if (r->dir == TO_GUEST) {
		stream_frames(fd, r->payload, r->total, buf);
		send_frame(fd, ADB_CMD_CLSE, 1, 1, NULL, 0);
		pthread_join(guest, NULL); /* the guest has read everything */
	} else {
		sink_frames(fd, r->total, buf, ADB_MAX_PAYLOAD);
		send_frame(fd, ADB_CMD_CLSE, 1, 1, NULL, 0);
		pthread_join(guest, NULL);
	}
	t1 = now_s();
	close(fd);
	free(buf);
	return (double)r->total / (t1 - t0) / 1e6;
}

static char guest_path[100];
static int front_port;

static int via_direct(void *arg) { return connect_unix(guest_path); }
static int via_front(void *arg) { return connect_tcp(front_port); }

static int free_port(void)
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

static pid_t spawn(char *const argv[])
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

static void stop(pid_t pid)
{
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

/* memcpy in payload-sized pieces through buffers far larger than the
 * caches, so it measures memory bandwidth as the relay would see it. */
static double memcpy_mbps(size_t payload, size_t total)
{
	const size_t span = 64u << 20;
	char *a = malloc(span), *b = malloc(span);
	double t0, t1;
	size_t off = 0;

	memset(a, 1, span);
	memset(b, 2, span);
	t0 = now_s();
	for (size_t done = 0; done < total; done += payload) {
		memcpy(b + off, a + off, payload);
		__asm__ __volatile__("" : : "r"(b) : "memory");
		off = (off + payload) % span;
	}
	t1 = now_s();
	free(a);
	free(b);
	return (double)total / (t1 - t0) / 1e6;
}

static double relayed(const char *relay, struct run *r, char *dir)
{
	char conf[160], control[160];
	double mbps;
	pid_t pid;
	FILE *f;

	/* no idle probe: the bench guest accepts exactly one connection */
	front_port = free_port();
	snprintf(conf, sizeof(conf), "%s/relay.conf", dir);
	snprintf(control, sizeof(control), "%s/control.sock", dir);
	f = fopen(conf, "w");
	if (f == NULL)
		die("relay.conf");
	fprintf(f, "probe-interval 0\nroute bench {\n front tcp:127.0.0.1:%d\n target unix:%s\n}\n",
		front_port, guest_path);
	fclose(f);
	char *argv[] = { (char *)relay, "-c", conf, "-s", control, "-l", "error", NULL };
	pid = spawn(argv);
	mbps = measure(r, via_front, NULL);
	stop(pid);
	return mbps;
}

static double socat(struct run *r)
{
	char listen_arg[64], connect_arg[160];
	double mbps;
	pid_t pid;

	front_port = free_port();
	snprintf(listen_arg, sizeof(listen_arg), "TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,nodelay",
		 front_port);
	snprintf(connect_arg, sizeof(connect_arg), "UNIX-CONNECT:%s", guest_path);
	char *argv[] = { "socat", "-b", "65536", listen_arg, connect_arg, NULL };
	pid = spawn(argv);
	mbps = measure(r, via_front, NULL);
	stop(pid);
	return mbps;
}

int main(int argc, char **argv)
{
	static const size_t payloads[] = { 4096, 65536, 1024 * 1024 };
	char dir[] = "/tmp/bench_relay.XXXXXX";
	size_t mib = argc > 2 ? strtoul(argv[2], NULL, 10) : 256;

	if (argc < 2) {
		fprintf(stderr, "usage: bench_relay RELAY_BINARY [MIB_PER_RUN]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (mkdtemp(dir) == NULL)
		die("mkdtemp");
	snprintf(guest_path, sizeof(guest_path), "%s/guest.sock", dir);
	printf("adb WRTE streams, %zu MiB per run; MB/s, and ratios measured in this run\n", mib);
	printf("%-12s %7s %9s %9s %9s %9s %12s %12s\n", "direction", "payload", "memcpy",
	       "direct", "socat", "relay", "relay/direct", "relay/socat");
	for (int d = 0; d < 2; d++) {
		for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
			struct run r = { .guest_path = guest_path, .dir = (enum direction)d,
					 .payload = payloads[i], .total = mib << 20 };
			double mc = memcpy_mbps(r.payload, r.total * 4);
			double direct = measure(&r, via_direct, NULL);
			double so = socat(&r);
			double rel = relayed(argv[1], &r, dir);
			printf("%-12s %6zuK %9.0f %9.0f %9.0f %9.0f %12.2f %12.2f\n",
			       d == TO_GUEST ? "host->guest" : "guest->host", r.payload / 1024, mc,
			       direct, so, rel, rel / direct, rel / so);
			fflush(stdout);
		}
	}
	unlink(guest_path);
	char control[160];
	snprintf(control, sizeof(control), "%s/control.sock", dir);
	unlink(control);
	snprintf(control, sizeof(control), "%s/relay.conf", dir);
	unlink(control);
	rmdir(dir);
	return 0;
}
