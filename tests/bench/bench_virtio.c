/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench_virtio.c - throughput of the relay's virtio-vsock device, measured
 * against the synthetic guest driver (a separate process, its own shared
 * memory and rings, vhost-user as QEMU speaks it): host-to-guest and
 * guest-to-host, with 4 KiB and 64 KiB writes (each guest RX buffer holds
 * one write and its header; the guest keeps 512 KiB of them posted, as
 * Linux does with 128 of 4 KiB), each as a ratio to memcpy bandwidth. This VM's memcpy figure moves from run to run,
 * so every flow runs ROUNDS times, each right after its own memcpy
 * measurement, and the medians are printed.
 *
 *   bench_virtio [--json FILE] [MIB [h2g|g2h [4k|64k]]]
 *   bench_virtio [--json FILE] --relay RELAY_BINARY [--base RELAY_BINARY]
 *                [--guest VHOST_ADBGUEST] [MIB]
 *
 * (default: 256 MiB per flow, all four flows; a direction and a write size
 * pick one, for profiling; --json writes the figures for scripts)
 *
 * --relay measures the relay itself through a virtio: target instead: adb
 * WRTE streams of 64 KiB (and host->guest once more of 256 KiB, what adb
 * 34's push sends) from a TCP front through the relay and its device
 * to the synthetic adb guest (tests/vhost/adbguest.c; RX buffers of 4 KiB
 * as Linux posts them, and of a whole 64 KiB packet), both ways, each run
 * a relay process of its own; the
 * relay's CPU time (user and system) per MiB moved, and the throughput.
 * --base runs another relay binary (an earlier build) alike, interleaved
 * round by round, for a before-and-after ratio. Prints figures; never
 * passes or fails on them.
 *
 * The device and the guest are pinned to two different CPUs, as a VMM's
 * vCPU thread and the relay run: left to the scheduler, the two busy
 * processes sometimes share one CPU for a whole run, which measured a
 * quarter of the throughput (0.15 of memcpy against 0.6 at 4 KiB).
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "tests/bench/bench.h"
#include "tests/vhost/flow.h"

#define GUEST_CID 3
#define PORT 5555
#define ROUNDS 5

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* memcpy bandwidth over buffers larger than the caches, MiB/s */
static double memcpy_rate(void)
{
	size_t size = 64u << 20;
	char *a = malloc(size), *b = malloc(size);
	double t0, best = 0;

	memset(a, 1, size);
	memset(b, 2, size);
	for (int round = 0; round < 5; round++) {
		t0 = now_s();
		memcpy(b, a, size);
		double rate = 64.0 / (now_s() - t0);
		if (rate > best)
			best = rate;
		a[round] ^= b[size - 1 - round];   /* keep the copies observable */
	}
	free(a);
	free(b);
	return best;
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof(v[0]), by_value);
	return v[n / 2];
}

/* The first two CPUs this process may run on: the device's and the
 * guest's; -1 for the guest's when there is only one. */
static int cpu_device = -1, cpu_guest = -1;

static void pick_cpus(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return;
	for (int c = 0; c < CPU_SETSIZE && cpu_guest < 0; c++)
		if (CPU_ISSET(c, &set)) {
			if (cpu_device < 0)
				cpu_device = c;
			else
				cpu_guest = c;
		}
}

static void pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	if (sched_setaffinity(0, sizeof(set), &set) != 0)
		perror("bench_virtio: sched_setaffinity");
}

/* One flow of `total` bytes, written `wsize` bytes at a time by whichever
 * side sends; the guest's RX buffers take one such write and its header. */
static double one_flow(const char *path, int to_guest, size_t wsize, uint64_t total)
{
	static const struct vvs_ops ops = { .deliver = vflow_deliver };   /* as the relay takes it */
	struct vhu_device dev;
	uv_loop_t loop;
	char err[128];
	double rate;
	int status;
	pid_t pid;

	uv_loop_init(&loop);
	if (vhu_start(&dev, &loop, path, GUEST_CID, &ops, NULL, err, sizeof(err)) != 0) {
		fprintf(stderr, "bench_virtio: %s\n", err);
		exit(1);
	}
	pid = fork();
	if (pid == 0) {
		pin(cpu_guest);
		_exit(vflow_guest(path, GUEST_CID, PORT, VVS_HDR_SIZE + wsize, to_guest, total,
				  wsize));
	}
	for (double end = now_s() + 10; !vhu_ready(&dev) && now_s() < end; )
		uv_run(&loop, UV_RUN_NOWAIT);
	rate = vflow_host(&loop, &dev, PORT, to_guest, total, wsize, err, sizeof(err));
	while (waitpid(pid, &status, WNOHANG) == 0)
		uv_run(&loop, UV_RUN_NOWAIT);
	if (rate < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "bench_virtio: flow failed: %s (guest status %d)\n",
			rate < 0 ? err : "guest", status);
		exit(1);
	}
	vhu_stop(&dev, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
	return rate;
}

/* ---- the relay through a virtio: target (--relay) ---- */

#define RELAY_PAYLOAD (64 * 1024)
/* ... and once more host->guest in WRTEs of 256 KiB, the size adb 34's
 * push sent through the relay (264 WRTEs for 64 MiB) */
#define RELAY_PAYLOAD_BIG (256 * 1024)

/* One transfer of `total` bytes through relay binary `relay`, the guest
 * adbguest behind its device; the relay's CPU seconds in *cpu_s. MB/s. */
static double relay_run(const char *relay, const char *guest, const char *dir, int to_guest,
			size_t rxbuf, size_t payload, uint64_t total, double *cpu_s)
{
	char conf[160], control[160], vhost[160], port_s[16], rxbuf_s[16], service[64];
	uint8_t *buf = malloc(ADB_MAX_PAYLOAD);
	static const char banner[] = "host::features=";
	int front = bench_free_port(), fd;
	double t0, t1;
	pid_t rpid, gpid;
	FILE *f;

	snprintf(conf, sizeof(conf), "%s/relay.conf", dir);
	snprintf(control, sizeof(control), "%s/control.sock", dir);
	snprintf(vhost, sizeof(vhost), "%s/vhost.sock", dir);
	f = fopen(conf, "w");
	if (f == NULL || buf == NULL)
		bench_die("relay.conf");
	fprintf(f, "probe-interval 0\nroute bench {\n front tcp:127.0.0.1:%d\n"
		" target virtio:%s:%d:%d\n}\n", front, vhost, GUEST_CID, PORT);
	fclose(f);
	char *rargv[] = { (char *)relay, "-c", conf, "-s", control, "-l", "error", NULL };
	rpid = bench_spawn(rargv);
	for (int i = 0; i < 400 && access(vhost, F_OK) != 0; i++)
		usleep(10000);
	snprintf(port_s, sizeof(port_s), "%d", PORT);
	snprintf(rxbuf_s, sizeof(rxbuf_s), "%zu", rxbuf);
	char *gargv[] = { (char *)guest, vhost, port_s, rxbuf_s, "quiet", NULL };
	gpid = bench_spawn(gargv);

	memset(buf, 0x5a, ADB_MAX_PAYLOAD);
	fd = bench_connect_tcp(front);
	bench_send_frame(fd, ADB_CMD_CNXN, ADB_VERSION, ADB_MAX_PAYLOAD, banner, sizeof(banner));
	bench_recv_frame(fd, buf, ADB_MAX_PAYLOAD);
	/* a delayed_ack window larger than the run: the relay passes the
	 * stream as it is (bench_relay's streams do the same) */
	if (to_guest)
		snprintf(service, sizeof(service), "sink:%llu", (unsigned long long)total);
	else
		snprintf(service, sizeof(service), "source:%llu:%zu", (unsigned long long)total,
			 payload);
	bench_send_frame(fd, ADB_CMD_OPEN, 1, 0x7fffffff, service, strlen(service) + 1);
	bench_recv_frame(fd, buf, ADB_MAX_PAYLOAD);   /* OKAY */
	t0 = bench_now_s();
	if (to_guest) {
		/* the pattern the guest checks, as it goes */
		for (uint64_t sent = 0; sent < total; sent += payload) {
			for (size_t i = 0; i < payload; i++)
				buf[i] = vflow_pattern(sent + i);
			bench_send_frame(fd, ADB_CMD_WRTE, 1, 1, buf, payload);
		}
		bench_recv_frame(fd, buf, ADB_MAX_PAYLOAD);   /* the guest's CLSE: all in */
	} else {
		bench_sink_frames(fd, total, buf, ADB_MAX_PAYLOAD);
	}
	t1 = bench_now_s();
	bench_send_frame(fd, ADB_CMD_CLSE, 1, 1, NULL, 0);
	close(fd);
	*cpu_s = bench_stop(rpid);
	bench_stop(gpid);
	unlink(conf);
	free(buf);
	return (double)total / (t1 - t0) / 1e6;
}

static int relay_bench(const char *relay, const char *base, const char *guest, uint64_t total,
		       FILE *json)
{
	const char *bin[2] = { relay, base };
	int nbin = base != NULL ? 2 : 1;
	char dir[] = "/tmp/bench-virtio.XXXXXX";
	double mib = (double)(total >> 20);

	if (mkdtemp(dir) == NULL)
		return 1;
	bench_name = "bench_virtio";
	printf("relay through a virtio: target (TCP front, synthetic adb guest), %llu MiB per run,"
	       " median of %d rounds\n", (unsigned long long)(total >> 20), ROUNDS);
	printf("%-12s %-9s %5s %10s %13s%s\n", "direction", "RX bufs", "WRTE", "relay MB/s", "relay us/MiB",
	       base ? "  base MB/s  base us/MiB  relay/base CPU" : "");
	if (json)
		fprintf(json, "{\"bench\":\"virtio-relay\",\"mib_per_run\":%llu,\"rounds\":%d,"
			"\"rows\":[", (unsigned long long)(total >> 20), ROUNDS);
	for (int row = 0; row < 5; row++) {
		int to_guest = row < 2 || row == 4;
		/* as Linux posts them, and large enough for a whole 64 KiB packet */
		size_t rxbuf = row % 2 ? VVS_MAX_PKT : 4096;
		size_t payload = row == 4 ? RELAY_PAYLOAD_BIG : RELAY_PAYLOAD;
		double mbps[2][ROUNDS], cpu[2][ROUNDS], ratio[ROUNDS], m[2], c[2], r = 0;

		for (int k = 0; k < ROUNDS; k++) {
			for (int b = 0; b < nbin; b++) {
				double cpu_s;

				mbps[b][k] = relay_run(bin[b], guest, dir, to_guest, rxbuf, payload,
						       total, &cpu_s);
				cpu[b][k] = cpu_s * 1e6 / mib;
			}
			ratio[k] = base ? cpu[0][k] / cpu[1][k] : 0;
		}
		for (int b = 0; b < nbin; b++) {
			m[b] = median(mbps[b], ROUNDS);
			c[b] = median(cpu[b], ROUNDS);
		}
		if (base)
			r = median(ratio, ROUNDS);
		printf("%-12s %-9s %4zuK %10.0f %13.0f", to_guest ? "host->guest" : "guest->host",
		       rxbuf == 4096 ? "4 KiB" : "64 KiB+44", payload / 1024, m[0], c[0]);
		if (base)
			printf(" %10.0f %12.0f %15.2f", m[1], c[1], r);
		printf("\n");
		if (json) {
			fprintf(json, "%s{\"direction\":\"%s\",\"rx_buffer\":%zu,\"wrte\":%zu,"
				"\"relay_mbps\":%.0f,\"relay_cpu_us_per_mib\":%.0f", row ? "," : "",
				to_guest ? "host->guest" : "guest->host", rxbuf, payload, m[0], c[0]);
			if (base)
				fprintf(json, ",\"base_mbps\":%.0f,\"base_cpu_us_per_mib\":%.0f,"
					"\"relay_per_base_cpu\":%.3f", m[1], c[1], r);
			fprintf(json, "}");
		}
	}
	if (json)
		fprintf(json, "]}\n");
	rmdir(dir);
	return 0;
}

int main(int argc, char **argv)
{
	const char *json_path = NULL, *relay = NULL, *base = NULL;
	const char *guest = "./tests/vhost/vhost-adbguest";
	FILE *json = NULL;

	while (argc > 2 && strncmp(argv[1], "--", 2) == 0) {
		if (strcmp(argv[1], "--json") == 0)
			json_path = argv[2];
		else if (strcmp(argv[1], "--relay") == 0)
			relay = argv[2];
		else if (strcmp(argv[1], "--base") == 0)
			base = argv[2];
		else if (strcmp(argv[1], "--guest") == 0)
			guest = argv[2];
		else
			break;
		argc -= 2;
		argv += 2;
	}
	if (relay != NULL) {
		int rc;

		if (json_path != NULL && (json = fopen(json_path, "w")) == NULL) {
			perror(json_path);
			return 1;
		}
		rc = relay_bench(relay, base, guest,
				 (uint64_t)(argc > 1 ? atoi(argv[1]) : 256) << 20, json);
		if (json)
			fclose(json);
		return rc;
	}
	uint64_t total = (uint64_t)(argc > 1 ? atoi(argv[1]) : 256) << 20;
	const char *only_dir = argc > 2 ? argv[2] : NULL, *only_size = argc > 3 ? argv[3] : NULL;
	char dir[] = "/tmp/bench-virtio.XXXXXX", path[64];
	int flows = 0;

	if (json_path != NULL && (json = fopen(json_path, "w")) == NULL) {
		perror(json_path);
		return 1;
	}
	if (json)
		fprintf(json, "{\"bench\":\"virtio\",\"mib_per_flow\":%llu,\"rounds\":%d,\"flows\":[",
			(unsigned long long)(total >> 20), ROUNDS);

	if (mkdtemp(dir) == NULL)
		return 1;
	vflow_verify = 0;   /* the unit test checks the bytes; here only speed */
	snprintf(path, sizeof(path), "%s/vhost.sock", dir);
	pick_cpus();
	if (cpu_guest < 0)
		cpu_device = -1;   /* one CPU: nothing to pin */
	pin(cpu_device);
	printf("virtio-vsock device, synthetic guest, %llu MiB per flow, median of %d rounds\n",
	       (unsigned long long)(total >> 20), ROUNDS);
	if (cpu_guest < 0)
		printf("(one CPU: the device and the guest share it)\n");
	else
		printf("(the device on CPU %d, the guest on CPU %d)\n", cpu_device, cpu_guest);
	printf("%-14s %-8s %10s %14s %10s\n", "direction", "writes", "MiB/s", "memcpy MiB/s",
	       "/memcpy");
	for (int to_guest = 1; to_guest >= 0; to_guest--) {
		for (int big = 0; big < 2; big++) {
			size_t wsize = big ? VVS_MAX_PAYLOAD : 4096;
			double rate[ROUNDS], mem[ROUNDS], ratio[ROUNDS];

			if ((only_dir && strcmp(only_dir, to_guest ? "h2g" : "g2h") != 0) ||
			    (only_size && strcmp(only_size, big ? "64k" : "4k") != 0))
				continue;
			for (int r = 0; r < ROUNDS; r++) {
				mem[r] = memcpy_rate();
				rate[r] = one_flow(path, to_guest, wsize, total);
				ratio[r] = rate[r] / mem[r];
			}
			printf("%-14s %-8s %10.0f %14.0f %10.2f\n", to_guest ? "host->guest" : "guest->host",
			       big ? "64 KiB" : "4 KiB", median(rate, ROUNDS), median(mem, ROUNDS),
			       median(ratio, ROUNDS));
			if (json)
				fprintf(json, "%s{\"direction\":\"%s\",\"write\":%zu,\"mibps\":%.0f,"
					"\"memcpy_mibps\":%.0f,\"per_memcpy\":%.3f}", flows ? "," : "",
					to_guest ? "host->guest" : "guest->host", wsize,
					median(rate, ROUNDS), median(mem, ROUNDS), median(ratio, ROUNDS));
			flows++;
		}
	}
	if (json) {
		fprintf(json, "]}\n");
		fclose(json);
	}
	rmdir(dir);
	return 0;
}
