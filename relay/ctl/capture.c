/* SPDX-License-Identifier: Apache-2.0 */
/*
 * capture.c - `adbd-relayctl capture ROUTE FILE`: writes the pcap stream
 * of a route (relay/obs/obs.h) into a file. Only whole packets are
 * written, so the file is valid whenever the capture stops; the file is
 * created only once the relay has accepted the request.
 */
#include "relay/ctl/capture.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FILE_HEADER_LEN 24
#define RECORD_HEADER_LEN 16
#define PACKET_MAX 262144u                      /* the relay's snaplen */
#define BUF_LEN (RECORD_HEADER_LEN + PACKET_MAX)

static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
	stop_signal = sig;
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static long ms_left(const struct timespec *end)
{
	struct timespec now;
	long ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	ms = (end->tv_sec - now.tv_sec) * 1000 + (end->tv_nsec - now.tv_nsec) / 1000000;
	return ms > 0 ? ms : 0;
}

/* Read more into buf[*have..]: 1 read, 0 the relay hung up, -1 error,
 * -2 stop (signal or time up). */
static int read_more(int fd, uint8_t *buf, size_t *have, const struct timespec *end)
{
	struct pollfd p = { fd, POLLIN, 0 };
	ssize_t n;
	int rc;

	if (stop_signal)
		return -2;
	rc = poll(&p, 1, end != NULL ? (int)ms_left(end) : -1);
	if (rc < 0)
		return errno == EINTR ? -2 : -1;
	if (rc == 0)
		return -2;
	n = read(fd, buf + *have, BUF_LEN - *have);
	if (n < 0)
		return errno == EINTR ? -2 : -1;
	*have += (size_t)n;
	return n > 0;
}

/* The relay's first bytes: the pcap file header, or an error line. */
static int check_start(const uint8_t *buf, size_t have)
{
	if (have >= 6 && memcmp(buf, "error:", 6) == 0) {
		fprintf(stderr, "adbd-relayctl: %.*s", (int)have, (const char *)buf);
		return -1;
	}
	if (have < FILE_HEADER_LEN || get_le32(buf) != 0xa1b2c3d4u) {
		fprintf(stderr, "adbd-relayctl: the relay did not answer with a pcap stream\n");
		return -1;
	}
	return 0;
}

static int open_output(const char *file)
{
	int out;

	if (strcmp(file, "-") == 0)
		return STDOUT_FILENO;
	out = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (out < 0)
		fprintf(stderr, "adbd-relayctl: %s: %s\n", file, strerror(errno));
	return out;
}

/* Write the whole packets at the front of buf; keep the rest. */
static int flush_packets(int out, uint8_t *buf, size_t *have, unsigned long *packets,
			 unsigned long count)
{
	size_t off = 0;

	while ((count == 0 || *packets < count) && *have - off >= RECORD_HEADER_LEN) {
		uint32_t len = get_le32(buf + off + 8);

		if (len > PACKET_MAX) {
			fprintf(stderr, "adbd-relayctl: bad packet length %u in the stream\n", len);
			return -1;
		}
		if (*have - off < RECORD_HEADER_LEN + len)
			break;
		if (write_all(out, buf + off, RECORD_HEADER_LEN + len) != 0) {
			fprintf(stderr, "adbd-relayctl: write: %s\n", strerror(errno));
			return -1;
		}
		off += RECORD_HEADER_LEN + len;
		(*packets)++;
	}
	memmove(buf, buf + off, *have - off);
	*have -= off;
	return 0;
}

int capture_to_file(int fd, const char *file, unsigned long count, unsigned long seconds)
{
	static uint8_t buf[BUF_LEN];
	struct sigaction sa;
	struct timespec end;
	unsigned long packets = 0;
	size_t have = 0;
	int out = -1, rc = 0, status = 2;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;     /* no SA_RESTART: poll returns */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += (time_t)seconds;
	while (have < FILE_HEADER_LEN && (rc = read_more(fd, buf, &have, seconds ? &end : NULL)) > 0)
		if (have >= 6 && memcmp(buf, "error:", 6) == 0 && memchr(buf, '\n', have) != NULL)
			break;
	if (rc == -1)
		fprintf(stderr, "adbd-relayctl: read: %s\n", strerror(errno));
	if (rc == -1 || check_start(buf, have) != 0 || (out = open_output(file)) < 0)
		goto done;
	if (write_all(out, buf, FILE_HEADER_LEN) != 0) {
		fprintf(stderr, "adbd-relayctl: write: %s\n", strerror(errno));
		goto done;
	}
	have -= FILE_HEADER_LEN;
	memmove(buf, buf + FILE_HEADER_LEN, have);
	for (;;) {
		if (flush_packets(out, buf, &have, &packets, count) != 0)
			goto done;
		if (count != 0 && packets >= count)
			break;
		rc = read_more(fd, buf, &have, seconds ? &end : NULL);
		if (rc == -1) {
			fprintf(stderr, "adbd-relayctl: read: %s\n", strerror(errno));
			goto done;
		}
		if (rc <= 0)
			break;      /* hung up, time up or signalled */
	}
	if (rc == 0 && have > 0)
		fprintf(stderr, "adbd-relayctl: the relay hung up inside a packet; %zu bytes dropped\n",
			have);
	fprintf(stderr, "%lu packets captured\n", packets);
	status = 0;
done:
	if (out > STDOUT_FILENO && close(out) != 0) {
		fprintf(stderr, "adbd-relayctl: %s: %s\n", file, strerror(errno));
		status = 2;
	}
	close(fd);
	return status;
}
