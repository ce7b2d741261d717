/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_memory.c - what adbd-relay holds with many routes: its resident
 * memory with 64 routes idle, with an adb transport connected on each,
 * at the peak of 64 concurrent 8 MiB pushes (each route's guest a thread
 * here that reads as fast as it can), and once every client has gone, set
 * against the bound README.md documents (2 x buffer + 420 KiB per
 * connection). Prints figures; never passes or fails on them.
 *
 *   bench_memory [--json FILE] RELAY_BINARY [ROUTES [MIB_PER_PUSH]]
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "adbproto/adbproto.h"
#include "tests/bench/bench.h"

#define ROUTES_MAX 256
#define PAYLOAD (64 * 1024)
#define BUFFER_KIB 1024          /* the relay's default buffer */
#define PER_CONN_SLACK_KIB 420   /* README: 2 x buffer plus about 420 KiB */

struct peer {
	int listen_fd, port;
	char path[128];
	size_t total;                 /* payload bytes to push */
	int fd;                       /* the PC's connection */
	pthread_t guest, pc;
};

static struct peer peers[ROUTES_MAX];
static pid_t relay_pid;

/* The guest: one connection from the relay; answer CNXN and OPEN, then
 * read every frame until the host's CLSE. */
static void *guest_main(void *arg)
{
	struct peer *p = arg;
	static const char banner[] = "device::ro.product.name=bench;features=";
	uint8_t *buf = malloc(ADB_MAX_PAYLOAD);
	int c = accept(p->listen_fd, NULL, NULL);

	if (c < 0)
		bench_die("guest accept");
	bench_recv_frame(c, buf, ADB_MAX_PAYLOAD);
	bench_send_frame(c, ADB_CMD_CNXN, ADB_VERSION, ADB_MAX_PAYLOAD, banner, sizeof(banner));
	bench_recv_frame(c, buf, ADB_MAX_PAYLOAD);
	bench_send_frame(c, ADB_CMD_OKAY, 1, 1, NULL, 0);
	for (;;) {
		struct adb_header h = bench_recv_frame(c, buf, ADB_MAX_PAYLOAD);

		if (h.command == ADB_CMD_CLSE)
			break;
	}
	close(c);
	free(buf);
	return NULL;
}

static int port_taken(int port, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (peers[i].port == port)
			return 1;
	return 0;
}

static void pc_connect(struct peer *p)
{
	static const char banner[] = "host::features=";
	uint8_t buf[4096];

	p->fd = bench_connect_tcp(p->port);
	bench_send_frame(p->fd, ADB_CMD_CNXN, ADB_VERSION, ADB_MAX_PAYLOAD, banner, sizeof(banner));
	bench_recv_frame(p->fd, buf, sizeof(buf));
	bench_send_frame(p->fd, ADB_CMD_OPEN, 1, 0, "bench:\0", 7);
	bench_recv_frame(p->fd, buf, sizeof(buf));
}

static void *pc_push(void *arg)
{
	struct peer *p = arg;
	uint8_t *buf = calloc(1, PAYLOAD);

	bench_stream_frames(p->fd, PAYLOAD, p->total, buf);
	bench_send_frame(p->fd, ADB_CMD_CLSE, 1, 1, NULL, 0);
	free(buf);
	return NULL;
}

/* VmRSS or VmHWM of the relay, KiB */
static long relay_kib(const char *field)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)relay_pid);
	f = fopen(path, "r");
	if (f == NULL)
		bench_die(path);
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, strlen(field)) == 0)
			kib = strtol(line + strlen(field) + 1, NULL, 10);
	fclose(f);
	return kib;
}

/* Let the relay's loop settle (accepts, CNXN answers, closes) before a reading. */
static void settle(void)
{
	usleep(300 * 1000);
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/bench_memory.XXXXXX", conf[160], control[160];
	const char *json = NULL;
	long idle, connected, peak, after;
	unsigned routes;
	size_t mib;
	int a = 1;
	FILE *f;

	bench_name = "bench_memory";
	if (a + 1 < argc && strcmp(argv[a], "--json") == 0) {
		json = argv[a + 1];
		a += 2;
	}
	if (a >= argc) {
		fprintf(stderr, "usage: bench_memory [--json FILE] RELAY_BINARY [ROUTES [MIB_PER_PUSH]]\n");
		return 2;
	}
	routes = a + 1 < argc ? (unsigned)strtoul(argv[a + 1], NULL, 10) : 64;
	mib = a + 2 < argc ? strtoul(argv[a + 2], NULL, 10) : 8;
	if (routes == 0 || routes > ROUTES_MAX)
		routes = 64;
	signal(SIGPIPE, SIG_IGN);
	if (mkdtemp(dir) == NULL)
		bench_die("mkdtemp");
	snprintf(conf, sizeof(conf), "%s/relay.conf", dir);
	snprintf(control, sizeof(control), "%s/control.sock", dir);
	f = fopen(conf, "w");
	if (f == NULL)
		bench_die(conf);
	fprintf(f, "probe-interval 0\nlog-level error\n");
	for (unsigned i = 0; i < routes; i++) {
		struct peer *p = &peers[i];

		snprintf(p->path, sizeof(p->path), "%s/g%u.sock", dir, i);
		p->listen_fd = bench_listen_unix(p->path);
		do   /* a port the kernel gave back may come again: each route its own */
			p->port = bench_free_port();
		while (port_taken(p->port, i));
		p->total = mib << 20;
		fprintf(f, "route r%u {\n front tcp:127.0.0.1:%d\n target unix:%s\n}\n", i, p->port,
			p->path);
	}
	fclose(f);
	char *rargv[] = { argv[a], "-c", conf, "-s", control, NULL };
	relay_pid = bench_spawn(rargv);
	for (unsigned i = 0; i < routes; i++)   /* every front listens */
		close(bench_connect_tcp(peers[i].port));
	settle();
	idle = relay_kib("VmRSS");
	for (unsigned i = 0; i < routes; i++) {
		pthread_create(&peers[i].guest, NULL, guest_main, &peers[i]);
		pc_connect(&peers[i]);
	}
	settle();
	connected = relay_kib("VmRSS");
	for (unsigned i = 0; i < routes; i++)
		pthread_create(&peers[i].pc, NULL, pc_push, &peers[i]);
	for (unsigned i = 0; i < routes; i++) {
		pthread_join(peers[i].pc, NULL);
		pthread_join(peers[i].guest, NULL);
	}
	peak = relay_kib("VmHWM");
	for (unsigned i = 0; i < routes; i++) {
		close(peers[i].fd);
		close(peers[i].listen_fd);
		unlink(peers[i].path);
	}
	settle();
	after = relay_kib("VmRSS");
	bench_stop(relay_pid);

	long bound = idle + (long)routes * (2 * BUFFER_KIB + PER_CONN_SLACK_KIB);
	printf("adbd-relay with %u routes, %u concurrent %zu MiB pushes of %d KiB frames; KiB resident\n",
	       routes, routes, mib, PAYLOAD / 1024);
	printf("%-22s %9s\n", "when", "KiB");
	printf("%-22s %9ld\n", "idle", idle);
	printf("%-22s %9ld\n", "transports connected", connected);
	printf("%-22s %9ld   (documented bound %ld)\n", "peak of the pushes", peak, bound);
	printf("%-22s %9ld   (%.2f x idle)\n", "every client gone", after, (double)after / (double)idle);
	if (json) {
		f = fopen(json, "w");
		if (f == NULL)
			bench_die(json);
		fprintf(f, "{\"bench\":\"memory\",\"routes\":%u,\"mib_per_push\":%zu,\"idle_kib\":%ld,"
			"\"connected_kib\":%ld,\"peak_kib\":%ld,\"bound_kib\":%ld,\"after_kib\":%ld,"
			"\"after_per_idle\":%.2f}\n", routes, mib, idle, connected, peak, bound, after,
			(double)after / (double)idle);
		fclose(f);
	}
	unlink(conf);
	unlink(control);
	rmdir(dir);
	return 0;
}
