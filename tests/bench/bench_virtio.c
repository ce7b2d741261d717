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
 *
 * (default: 256 MiB per flow, all four flows; a direction and a write size
 * pick one, for profiling; --json writes the figures for scripts)
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

int main(int argc, char **argv)
{
	const char *json_path = NULL;
	FILE *json = NULL;

	if (argc > 2 && strcmp(argv[1], "--json") == 0) {
		json_path = argv[2];
		argc -= 2;
		argv += 2;
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
