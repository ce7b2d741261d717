/* SPDX-License-Identifier: Apache-2.0 */
/*
 * bench.h - what the benchmarks in tests/bench/ share: blocking socket I/O
 * that ends the program on any error (a benchmark has nothing to recover),
 * adb frames over it, the helper processes they start, and percentiles.
 */
#ifndef TESTS_BENCH_H
#define TESTS_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "adbproto/adbproto.h"

extern const char *bench_name;   /* the program's name, for its messages */

double bench_now_s(void);        /* CLOCK_MONOTONIC, seconds */
double bench_thread_cpu_s(void); /* the calling thread's CPU time, seconds */
_Noreturn void bench_die(const char *what);

void bench_write_all(int fd, const void *p, size_t len);
void bench_read_all(int fd, void *p, size_t len);
void bench_send_frame(int fd, uint32_t cmd, uint32_t a0, uint32_t a1, const void *p, size_t len);
/* One frame; its payload into buf (cap bytes at most); the header. */
struct adb_header bench_recv_frame(int fd, uint8_t *buf, size_t cap);
/* WRTE frames of payload bytes until total bytes went out. */
void bench_stream_frames(int fd, size_t payload, size_t total, uint8_t *buf);
/* Frames until total payload bytes came in. */
void bench_sink_frames(int fd, size_t total, uint8_t *buf, size_t cap);

/* Connect, retrying for 4 s while nothing listens yet (TCP: TCP_NODELAY). */
int bench_connect_tcp(int port);
int bench_connect_unix(const char *path);
/* A listening Unix socket at path (whatever was there is removed). */
int bench_listen_unix(const char *path);
/* A free TCP port on 127.0.0.1. */
int bench_free_port(void);

/* Start argv with stderr to /dev/null; stop it with SIGTERM and reap it:
 * the CPU time (user and system) it used, in seconds. */
pid_t bench_spawn(char *const argv[]);
double bench_stop(pid_t pid);

/* The p-th percentile (0..100) of n samples, which it sorts. */
double bench_percentile(double *v, size_t n, double p);

#endif
