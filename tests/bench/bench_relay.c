/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_relay.c - adb WRTE streams through adbd-relay, measured side by
 * side in one run against the same traffic sent directly to the guest
 * socket, through socat (a plain byte relay), and against memcpy
 * bandwidth: throughput per payload size and direction (the median of
 * ROUNDS runs each), and the round-trip time of small frames (a WRTE the
 * guest answers with one of its own), whose percentiles give the latency
 * the relay adds. The streams send without waiting (their OPEN names a
 * delayed_ack window larger than the run, so the relay passes them as
 * they are); the round trips are stop-and-wait as adb without
 * delayed_ack: each WRTE is OKAYed, and timed to the echo. CPU time per
 * MiB of the process in the middle, and of the ends (the PC's and the
 * guest's threads), whose sum shows work the middle only moved to its
 * reader. Prints ratios; never passes or fails on numbers.
 *
 *   bench_relay [--json FILE] [--dat FILE] [--only h2g|g2h|rtt] [--base RELAY_BINARY]
 *               RELAY_BINARY [MIB_PER_RUN]
 *
 * --json writes every figure for scripts; --dat the throughput table for
 * gnuplot (tests/bench/chart.gp); --base runs a second relay binary (an
 * earlier build) alike, interleaved, for a before-and-after ratio.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "adbproto/adbproto.h"
#include "tests/bench/bench.h"

#define ROUNDS 3
#define RTT_FRAMES 20000     /* round trips per latency run */
#define RTT_PAYLOAD 64

enum direction { TO_GUEST, TO_HOST, PING_PONG };

struct run {
	const char *guest_path;
	enum direction dir;
	size_t payload;
	size_t total;            /* bytes, or round trips for PING_PONG */
	double *rtt_us;          /* PING_PONG: one sample per round trip */
	double cpu_s;            /* out: CPU time of the process in the middle */
	double pc_cpu_s;         /* out: CPU time of the PC's thread, streaming */
	double guest_cpu_s;      /* out: CPU time of the guest's thread, streaming */
	int listen_fd;           /* the guest's, listening before anyone connects */
};

/* What a device may send in one frame: as adbd, no more than the host's
 * CNXN allowed (the relay tells its guest less than the PC does). */
static size_t device_payload(size_t wanted, const struct adb_header *host_cnxn)
{
	return wanted < host_cnxn->arg1 ? wanted : host_cnxn->arg1;
}

/* The guest: accept one connection, answer CNXN, then stream or sink. */
static void *guest_main(void *arg)
{
	struct run *r = arg;
	uint8_t *buf = malloc(ADB_MAX_PAYLOAD);
	int l = r->listen_fd, c;
	static const char banner[] = "device::ro.product.name=bench;features=";
	struct adb_header cnxn;

	c = accept(l, NULL, NULL);
	if (c < 0)
		bench_die("guest accept");
	cnxn = bench_recv_frame(c, buf, ADB_MAX_PAYLOAD); /* the host's */
	bench_send_frame(c, ADB_CMD_CNXN, ADB_VERSION, ADB_MAX_PAYLOAD, banner, sizeof(banner));
	bench_recv_frame(c, buf, ADB_MAX_PAYLOAD); /* OPEN */
	bench_send_frame(c, ADB_CMD_OKAY, 1, 1, NULL, 0);
	r->guest_cpu_s = -bench_thread_cpu_s();
	if (r->dir == TO_GUEST)
		bench_sink_frames(c, r->total, buf, ADB_MAX_PAYLOAD);
	else if (r->dir == TO_HOST)
		bench_stream_frames(c, device_payload(r->payload, &cnxn), r->total, buf);
	else
		for (size_t i = 0; i < r->total; i++) {
			struct adb_header h = bench_recv_frame(c, buf, ADB_MAX_PAYLOAD);

			/* stop-and-wait, as adbd without delayed_ack: OKAY
			 * the PC's WRTE, echo it, wait for the PC's OKAY */
			bench_send_frame(c, ADB_CMD_OKAY, 1, 1, NULL, 0);
			bench_send_frame(c, ADB_CMD_WRTE, 1, 1, buf, h.data_length);
			bench_recv_frame(c, buf, ADB_MAX_PAYLOAD);
		}
	bench_recv_frame(c, buf, ADB_MAX_PAYLOAD); /* the host's CLSE: all data read */
	r->guest_cpu_s += bench_thread_cpu_s();
	close(c);
	close(l);
	free(buf);
	return NULL;
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
	r->listen_fd = bench_listen_unix(r->guest_path);
	pthread_create(&guest, NULL, guest_main, r);
	fd = connect_fn(arg);
	bench_send_frame(fd, ADB_CMD_CNXN, ADB_VERSION, ADB_MAX_PAYLOAD, banner, sizeof(banner));
	bench_recv_frame(fd, buf, ADB_MAX_PAYLOAD);
	/* the streams send without waiting for OKAYs, as delayed_ack with a
	 * window larger than the run; the round trips are stop-and-wait */
	bench_send_frame(fd, ADB_CMD_OPEN, 1, r->dir == PING_PONG ? 0 : 0x7fffffff, "bench:\0", 7);
	bench_recv_frame(fd, buf, ADB_MAX_PAYLOAD);
	t0 = bench_now_s();
	r->pc_cpu_s = -bench_thread_cpu_s();
	if (r->dir == TO_GUEST)
		bench_stream_frames(fd, r->payload, r->total, buf);
	else if (r->dir == TO_HOST)
		bench_sink_frames(fd, r->total, buf, ADB_MAX_PAYLOAD);
	else
		for (size_t i = 0; i < r->total; i++) {
			double s0 = bench_now_s();
			int okay = 0, echo = 0;

			bench_send_frame(fd, ADB_CMD_WRTE, 1, 1, buf, r->payload);
			while (!okay || !echo) {
				struct adb_header h = bench_recv_frame(fd, buf, ADB_MAX_PAYLOAD);

				okay |= h.command == ADB_CMD_OKAY;
				if (h.command == ADB_CMD_WRTE && !echo) {
					echo = 1;
					r->rtt_us[i] = (bench_now_s() - s0) * 1e6;
				}
			}
			bench_send_frame(fd, ADB_CMD_OKAY, 1, 1, NULL, 0);
		}
	bench_send_frame(fd, ADB_CMD_CLSE, 1, 1, NULL, 0);
	r->pc_cpu_s += bench_thread_cpu_s();
	pthread_join(guest, NULL); /* the guest has read everything */
	t1 = bench_now_s();
	close(fd);
	free(buf);
	return (double)r->total / (t1 - t0) / 1e6;
}

static char guest_path[100];
static int front_port;

static int via_direct(void *arg) { return bench_connect_unix(guest_path); }
static int via_front(void *arg) { return bench_connect_tcp(front_port); }

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
	t0 = bench_now_s();
	for (size_t done = 0; done < total; done += payload) {
		memcpy(b + off, a + off, payload);
		__asm__ __volatile__("" : : "r"(b) : "memory");
		off = (off + payload) % span;
	}
	t1 = bench_now_s();
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
	front_port = bench_free_port();
	snprintf(conf, sizeof(conf), "%s/relay.conf", dir);
	snprintf(control, sizeof(control), "%s/control.sock", dir);
	f = fopen(conf, "w");
	if (f == NULL)
		bench_die("relay.conf");
	fprintf(f, "probe-interval 0\nroute bench {\n front tcp:127.0.0.1:%d\n target unix:%s\n}\n",
		front_port, guest_path);
	fclose(f);
	char *argv[] = { (char *)relay, "-c", conf, "-s", control, "-l", "error", NULL };
	pid = bench_spawn(argv);
	mbps = measure(r, via_front, NULL);
	r->cpu_s = bench_stop(pid);
	return mbps;
}

static double socat(struct run *r)
{
	char listen_arg[64], connect_arg[160];
	double mbps;
	pid_t pid;

	front_port = bench_free_port();
	snprintf(listen_arg, sizeof(listen_arg), "TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,nodelay",
		 front_port);
	snprintf(connect_arg, sizeof(connect_arg), "UNIX-CONNECT:%s", guest_path);
	char *argv[] = { "socat", "-b", "65536", listen_arg, connect_arg, NULL };
	pid = bench_spawn(argv);
	mbps = measure(r, via_front, NULL);
	r->cpu_s = bench_stop(pid);
	return mbps;
}

/* VIA_BASE: another relay binary (--base), an earlier build, run alike */
enum via { VIA_DIRECT, VIA_SOCAT, VIA_RELAY, VIA_BASE, VIAS };
static const char *const via_name[VIAS] = { "direct", "socat", "relay", "base" };

static const char *relay_binary, *base_binary;
static int nvias = VIA_BASE;
static char work_dir[] = "/tmp/bench_relay.XXXXXX";

static double one_run(enum via v, struct run *r)
{
	switch (v) {
	case VIA_DIRECT: return measure(r, via_direct, NULL);
	case VIA_SOCAT:  return socat(r);
	case VIA_RELAY:  return relayed(relay_binary, r, work_dir);
	default:         return relayed(base_binary, r, work_dir);
	}
}

struct cell {
	enum direction dir;
	size_t payload;
	double memcpy_mbps, mbps[VIAS];
	double cpu_us_mib[VIAS];      /* CPU of the process in the middle per MiB */
	double ends_us_mib[VIAS];     /* CPU of the PC's and the guest's threads per MiB */
	double all_us_mib[VIAS];      /* both */
};

/* Throughput: ROUNDS runs of each way, interleaved so that a busy moment
 * of the machine hits all of them alike; the medians. */
static void throughput(struct cell *c, size_t total)
{
	double v[VIAS][ROUNDS], cpu[VIAS][ROUNDS], ends[VIAS][ROUNDS], all[VIAS][ROUNDS], mc[ROUNDS];

	for (int k = 0; k < ROUNDS; k++) {
		struct run r = { .guest_path = guest_path, .dir = c->dir, .payload = c->payload,
				 .total = total };

		mc[k] = memcpy_mbps(c->payload, total * 4);
		for (int w = 0; w < nvias; w++) {
			r.cpu_s = 0;
			v[w][k] = one_run((enum via)w, &r);
			cpu[w][k] = r.cpu_s * 1e6 / (double)(total >> 20);
			ends[w][k] = (r.pc_cpu_s + r.guest_cpu_s) * 1e6 / (double)(total >> 20);
			all[w][k] = cpu[w][k] + ends[w][k];
		}
	}
	c->memcpy_mbps = bench_percentile(mc, ROUNDS, 50);
	for (int w = 0; w < nvias; w++) {
		c->mbps[w] = bench_percentile(v[w], ROUNDS, 50);
		c->cpu_us_mib[w] = bench_percentile(cpu[w], ROUNDS, 50);
		c->ends_us_mib[w] = bench_percentile(ends[w], ROUNDS, 50);
		c->all_us_mib[w] = bench_percentile(all[w], ROUNDS, 50);
	}
}

struct latency {
	double p50[VIAS], p99[VIAS];
};

static void latency(struct latency *l)
{
	double *samples = malloc(RTT_FRAMES * sizeof(double));

	for (int w = 0; w < nvias; w++) {
		struct run r = { .guest_path = guest_path, .dir = PING_PONG,
				 .payload = RTT_PAYLOAD, .total = RTT_FRAMES, .rtt_us = samples };

		one_run((enum via)w, &r);
		l->p50[w] = bench_percentile(samples, RTT_FRAMES, 50);
		l->p99[w] = bench_percentile(samples, RTT_FRAMES, 99);
	}
	free(samples);
}

static const char *dir_name(enum direction d)
{
	return d == TO_GUEST ? "host->guest" : "guest->host";
}

static void write_json(const char *path, const struct cell *c, size_t n, const struct latency *l,
		       size_t mib)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		bench_die(path);
	fprintf(f, "{\"bench\":\"relay\",\"mib_per_run\":%zu,\"rounds\":%d,\"throughput\":[", mib,
		ROUNDS);
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "%s{\"direction\":\"%s\",\"payload\":%zu,\"memcpy_mbps\":%.0f,"
			"\"direct_mbps\":%.0f,\"socat_mbps\":%.0f,\"relay_mbps\":%.0f,"
			"\"relay_per_direct\":%.3f,\"relay_per_socat\":%.3f",
			i ? "," : "", dir_name(c[i].dir), c[i].payload, c[i].memcpy_mbps,
			c[i].mbps[VIA_DIRECT], c[i].mbps[VIA_SOCAT], c[i].mbps[VIA_RELAY],
			c[i].mbps[VIA_RELAY] / c[i].mbps[VIA_DIRECT],
			c[i].mbps[VIA_RELAY] / c[i].mbps[VIA_SOCAT]);
		fprintf(f, ",\"socat_cpu_us_per_mib\":%.0f,\"relay_cpu_us_per_mib\":%.0f",
			c[i].cpu_us_mib[VIA_SOCAT], c[i].cpu_us_mib[VIA_RELAY]);
		if (base_binary)
			fprintf(f, ",\"base_mbps\":%.0f,\"relay_per_base\":%.3f,"
				"\"base_cpu_us_per_mib\":%.0f", c[i].mbps[VIA_BASE],
				c[i].mbps[VIA_RELAY] / c[i].mbps[VIA_BASE], c[i].cpu_us_mib[VIA_BASE]);
		for (int w = 0; w < nvias; w++)
			fprintf(f, ",\"%s_ends_cpu_us_per_mib\":%.0f", via_name[w], c[i].ends_us_mib[w]);
		fprintf(f, "}");
	}
	fprintf(f, "]");
	if (l != NULL) {
		fprintf(f, ",\"latency\":{\"payload\":%d,\"round_trips\":%d", RTT_PAYLOAD, RTT_FRAMES);
		for (int w = 0; w < nvias; w++)
			fprintf(f, ",\"%s_p50_us\":%.1f,\"%s_p99_us\":%.1f", via_name[w], l->p50[w],
				via_name[w], l->p99[w]);
		fprintf(f, ",\"added_p50_us\":%.1f,\"added_p99_us\":%.1f}",
			l->p50[VIA_RELAY] - l->p50[VIA_DIRECT], l->p99[VIA_RELAY] - l->p99[VIA_DIRECT]);
	}
	fprintf(f, "}\n");
	fclose(f);
}

/* One line per payload size: the size, then MB/s of each way and memcpy,
 * one block per direction, for gnuplot. */
static void write_dat(const char *path, const struct cell *c, size_t n)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		bench_die(path);
	for (int d = TO_GUEST; d <= TO_HOST; d++) {
		fprintf(f, "# %s: payload_kib direct socat relay memcpy\n", dir_name((enum direction)d));
		for (size_t i = 0; i < n; i++)
			if (c[i].dir == (enum direction)d)
				fprintf(f, "%zu %.0f %.0f %.0f %.0f\n", c[i].payload / 1024,
					c[i].mbps[VIA_DIRECT], c[i].mbps[VIA_SOCAT],
					c[i].mbps[VIA_RELAY], c[i].memcpy_mbps);
		fprintf(f, "\n\n");
	}
	fclose(f);
}

/* What the middle's CPU leaves out: a splice or a small write saves the
 * middle work that its reader may have to do instead. The ends (the PC's
 * and the guest's threads) beside the middle, and the sum, which is what a
 * machine whose cores the three share pays per MiB. */
static void print_all_cpu(const struct cell *cells, size_t n)
{
	printf("CPU time of the ends (the PC's and the guest's threads) and of everything "
	       "(ends + middle),\nmicroseconds per MiB\n");
	printf("%-12s %7s %7s %7s %7s %7s %7s %7s", "direction", "payload", "direct", "socat",
	       "ends", "relay", "ends", "r/s all");
	printf(base_binary ? " %7s %7s %7s\n" : "\n", "base", "ends", "r/b all");
	for (size_t i = 0; i < n; i++) {
		const struct cell *c = &cells[i];

		printf("%-12s %6zuK %7.0f %7.0f %7.0f %7.0f %7.0f %7.2f", dir_name(c->dir),
		       c->payload / 1024, c->all_us_mib[VIA_DIRECT], c->all_us_mib[VIA_SOCAT],
		       c->ends_us_mib[VIA_SOCAT], c->all_us_mib[VIA_RELAY], c->ends_us_mib[VIA_RELAY],
		       c->all_us_mib[VIA_RELAY] / c->all_us_mib[VIA_SOCAT]);
		if (base_binary)
			printf(" %7.0f %7.0f %7.2f", c->all_us_mib[VIA_BASE], c->ends_us_mib[VIA_BASE],
			       c->all_us_mib[VIA_RELAY] / c->all_us_mib[VIA_BASE]);
		printf("\n");
	}
}

static void usage(void)
{
	fprintf(stderr, "usage: bench_relay [--json FILE] [--dat FILE] [--only h2g|g2h|rtt] "
		"[--base RELAY_BINARY] RELAY_BINARY [MIB_PER_RUN]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const size_t payloads[] = { 4096, 16384, 65536, 262144, 1024 * 1024 };
	const char *json = NULL, *dat = NULL, *only = NULL;
	struct cell cells[10];
	struct latency lat;
	size_t ncells = 0, mib;
	int a = 1;

	for (; a + 1 < argc && strncmp(argv[a], "--", 2) == 0; a += 2) {
		if (strcmp(argv[a], "--json") == 0)
			json = argv[a + 1];
		else if (strcmp(argv[a], "--dat") == 0)
			dat = argv[a + 1];
		else if (strcmp(argv[a], "--only") == 0)
			only = argv[a + 1];
		else if (strcmp(argv[a], "--base") == 0)
			base_binary = argv[a + 1];
		else
			usage();
	}
	if (a >= argc)
		usage();
	relay_binary = argv[a];
	if (base_binary)
		nvias = VIAS;
	mib = a + 1 < argc ? strtoul(argv[a + 1], NULL, 10) : 256;
	bench_name = "bench_relay";
	signal(SIGPIPE, SIG_IGN);
	if (mkdtemp(work_dir) == NULL)
		bench_die("mkdtemp");
	snprintf(guest_path, sizeof(guest_path), "%s/guest.sock", work_dir);
	printf("adb WRTE streams, %zu MiB per run, median of %d runs; MB/s, and ratios measured in "
	       "this run\n", mib, ROUNDS);
	printf("%-12s %7s %9s %9s %9s %9s %12s %12s", "direction", "payload", "memcpy",
	       "direct", "socat", "relay", "relay/direct", "relay/socat");
	printf(base_binary ? " %9s %11s\n" : "\n", "base", "relay/base");
	for (int d = TO_GUEST; d <= TO_HOST; d++) {
		if (only && strcmp(only, d == TO_GUEST ? "h2g" : "g2h") != 0)
			continue;
		for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
			struct cell *c = &cells[ncells++];

			c->dir = (enum direction)d;
			c->payload = payloads[i];
			throughput(c, mib << 20);
			printf("%-12s %6zuK %9.0f %9.0f %9.0f %9.0f %12.2f %12.2f", dir_name(c->dir),
			       c->payload / 1024, c->memcpy_mbps, c->mbps[VIA_DIRECT],
			       c->mbps[VIA_SOCAT], c->mbps[VIA_RELAY],
			       c->mbps[VIA_RELAY] / c->mbps[VIA_DIRECT],
			       c->mbps[VIA_RELAY] / c->mbps[VIA_SOCAT]);
			if (base_binary)
				printf(" %9.0f %11.2f", c->mbps[VIA_BASE],
				       c->mbps[VIA_RELAY] / c->mbps[VIA_BASE]);
			printf("\n");
			fflush(stdout);
		}
	}
	if (ncells > 0) {
		printf("CPU time of the process in the middle, microseconds per MiB moved (a cost "
		       "that a busy machine's\nnoise moves less than throughput)\n");
		printf("%-12s %7s %9s %9s %12s", "direction", "payload", "socat", "relay", "relay/socat");
		printf(base_binary ? " %9s %11s\n" : "\n", "base", "relay/base");
		for (size_t i = 0; i < ncells; i++) {
			const struct cell *c = &cells[i];

			printf("%-12s %6zuK %9.0f %9.0f %12.2f", dir_name(c->dir), c->payload / 1024,
			       c->cpu_us_mib[VIA_SOCAT], c->cpu_us_mib[VIA_RELAY],
			       c->cpu_us_mib[VIA_RELAY] / c->cpu_us_mib[VIA_SOCAT]);
			if (base_binary)
				printf(" %9.0f %11.2f", c->cpu_us_mib[VIA_BASE],
				       c->cpu_us_mib[VIA_RELAY] / c->cpu_us_mib[VIA_BASE]);
			printf("\n");
		}
	}
	if (ncells > 0)
		print_all_cpu(cells, ncells);
	if (!only || strcmp(only, "rtt") == 0) {
		latency(&lat);
		printf("round trip of a %d-byte WRTE answered by the guest, %d times; microseconds\n",
		       RTT_PAYLOAD, RTT_FRAMES);
		printf("%-8s %9s %9s\n", "way", "p50", "p99");
		for (int w = 0; w < nvias; w++)
			printf("%-8s %9.1f %9.1f\n", via_name[w], lat.p50[w], lat.p99[w]);
		printf("added by the relay (relay - direct): p50 %.1f us, p99 %.1f us; "
		       "relay - socat: p50 %.1f us, p99 %.1f us\n",
		       lat.p50[VIA_RELAY] - lat.p50[VIA_DIRECT], lat.p99[VIA_RELAY] - lat.p99[VIA_DIRECT],
		       lat.p50[VIA_RELAY] - lat.p50[VIA_SOCAT], lat.p99[VIA_RELAY] - lat.p99[VIA_SOCAT]);
	}
	if (json)
		write_json(json, cells, ncells, !only || strcmp(only, "rtt") == 0 ? &lat : NULL, mib);
	if (dat)
		write_dat(dat, cells, ncells);
	unlink(guest_path);
	char path[160];
	snprintf(path, sizeof(path), "%s/control.sock", work_dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/relay.conf", work_dir);
	unlink(path);
	rmdir(work_dir);
	return 0;
}
