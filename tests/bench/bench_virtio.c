/*
 * bench_virtio.c - throughput of the relay's virtio-vsock device, measured
 * against the synthetic guest driver (a separate process, its own shared
 * memory and rings, vhost-user as QEMU speaks it): host-to-guest and
 * guest-to-host, with 4 KiB and 64 KiB writes (RX buffers of the same
 * size), each printed as a ratio to memcpy bandwidth measured in this run.
 *
 *   bench_virtio [MIB]     (default 256 MiB per flow)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "flow.h"

#define GUEST_CID 3
#define PORT 5555

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
		size_t payload = wsize - VVS_HDR_SIZE < VVS_MAX_PAYLOAD ? wsize - VVS_HDR_SIZE
									 : VVS_MAX_PAYLOAD;
		_exit(vflow_guest(path, GUEST_CID, PORT, wsize, to_guest, total,
				  to_guest ? VVS_MAX_PAYLOAD : payload));
	}
	for (double end = now_s() + 10; !vhu_ready(&dev) && now_s() < end; )
		uv_run(&loop, UV_RUN_NOWAIT);
	rate = vflow_host(&loop, &dev, PORT, to_guest, total,
			  to_guest ? wsize : VVS_MAX_PAYLOAD, err, sizeof(err));
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
	uint64_t total = (uint64_t)(argc > 1 ? atoi(argv[1]) : 256) << 20;
	char dir[] = "/tmp/bench-virtio.XXXXXX", path[64];
	double mem = memcpy_rate();

	if (mkdtemp(dir) == NULL)
		return 1;
	vflow_verify = 0;   /* the unit test checks the bytes; here only speed */
	snprintf(path, sizeof(path), "%s/vhost.sock", dir);
	printf("virtio-vsock device, synthetic guest, %llu MiB per flow; memcpy %.0f MiB/s\n",
	       (unsigned long long)(total >> 20), mem);
	printf("%-14s %-8s %12s %10s\n", "direction", "writes", "MiB/s", "/memcpy");
	for (int to_guest = 1; to_guest >= 0; to_guest--) {
		for (int big = 0; big < 2; big++) {
			size_t wsize = big ? VVS_HDR_SIZE + VVS_MAX_PAYLOAD : 4096;
			double rate = one_flow(path, to_guest, wsize, total);

			printf("%-14s %-8s %12.0f %10.2f\n", to_guest ? "host->guest" : "guest->host",
			       big ? "64 KiB" : "4 KiB", rate, rate / mem);
		}
	}
	rmdir(dir);
	return 0;
}
