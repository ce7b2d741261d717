/* SPDX-License-Identifier: Apache-2.0 */
/*
 * relayctl.c - adbd-relayctl: asks a running adbd-relay over its control
 * socket for status or health, follows its live trace, or captures a
 * route's adb traffic as pcap. Exit status: 0 ok / healthy, 1 unhealthy,
 * 2 usage or connection error.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "relay/ctl/capture.h"

#define DEFAULT_CONTROL "/run/adbd-relay/control.sock"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: adbd-relayctl [-s SOCKET] status [--json]\n"
		"       adbd-relayctl [-s SOCKET] health [ROUTE]\n"
		"       adbd-relayctl [-s SOCKET] trace [ROUTE] [--count N]\n"
		"       adbd-relayctl [-s SOCKET] capture ROUTE FILE [--count N] [--seconds S]\n"
		"  -s, --control SOCKET   control socket (default " DEFAULT_CONTROL ")\n"
		"  -n, --count N          trace: stop after N lines; capture: after N packets\n"
		"  -t, --seconds S        capture: stop after S seconds\n"
		"  FILE - is standard output\n");
}

static int connect_control(const char *path)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sun.sun_path)) {
		fprintf(stderr, "adbd-relayctl: socket path too long\n");
		return -1;
	}
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		fprintf(stderr, "adbd-relayctl: cannot reach adbd-relay at %s: %s\n", path,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Connect and send one request line; -1 (reported) on failure. */
static int open_request(const char *path, const char *req)
{
	int fd = connect_control(path);

	if (fd >= 0 && (write_all(fd, req, strlen(req)) != 0 || write_all(fd, "\n", 1) != 0)) {
		fprintf(stderr, "adbd-relayctl: write: %s\n", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* Send one request; copy the reply to stdout; return its first word. */
static int request(const char *path, const char *req, char *first, size_t flen)
{
	char buf[4096];
	size_t have = 0;
	int fd = open_request(path, req);
	ssize_t n;

	if (fd < 0)
		return -1;
	first[0] = '\0';
	while ((n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "adbd-relayctl: read: %s\n", strerror(errno));
			close(fd);
			return -1;
		}
		if (have < flen - 1) {
			size_t take = (size_t)n < flen - 1 - have ? (size_t)n : flen - 1 - have;
			memcpy(first + have, buf, take);
			have += take;
			first[have] = '\0';
		}
		fwrite(buf, 1, (size_t)n, stdout);
	}
	close(fd);
	if (have == 0) {
		fprintf(stderr, "adbd-relayctl: %s closed without a reply: not adbd-relay's "
			"control socket?\n", path);
		return -1;
	}
	first[strcspn(first, " \n:")] = '\0';
	return 0;
}

/* Copy the relay's trace lines to stdout until it hangs up, or `count`
 * lines (0: no limit). An "error:" first line is an error. */
static int follow_trace(const char *path, const char *req, unsigned long count)
{
	FILE *in;
	char line[1024];
	unsigned long n = 0;
	int fd = open_request(path, req);

	if (fd < 0)
		return 2;
	if ((in = fdopen(fd, "r")) == NULL) {
		fprintf(stderr, "adbd-relayctl: %s\n", strerror(errno));
		close(fd);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((count == 0 || n < count) && fgets(line, sizeof(line), in) != NULL) {
		if (n == 0 && strncmp(line, "error:", 6) == 0) {
			fputs(line, stderr);
			fclose(in);
			return 2;
		}
		fputs(line, stdout);
		n++;
	}
	fclose(in);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "control", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "count", required_argument, NULL, 'n' },
		{ "seconds", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = getenv("ADBD_RELAY_CONTROL");
	char req[256], first[64];
	int c, json = 0;
	unsigned long count = 0, seconds = 0;

	/* a peer that hangs up is an error to report, not a way to die */
	signal(SIGPIPE, SIG_IGN);
	char *end;

	if (path == NULL)
		path = DEFAULT_CONTROL;
	/* GNU getopt permutes, so options may follow the command too */
	while ((c = getopt_long(argc, argv, "s:n:t:h", opts, NULL)) != -1) {
		switch (c) {
		case 's': path = optarg; break;
		case 'n':
			count = strtoul(optarg, &end, 10);
			if (*end != '\0' || count == 0) {
				usage(stderr);
				return 2;
			}
			break;
		case 't':
			seconds = strtoul(optarg, &end, 10);
			if (*end != '\0' || seconds == 0) {
				usage(stderr);
				return 2;
			}
			break;
		case 'j': json = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[optind], "status") == 0 && optind + 1 == argc) {
		snprintf(req, sizeof(req), "%s", json ? "status json" : "status");
	} else if (strcmp(argv[optind], "health") == 0 && optind + 2 >= argc) {
		if (optind + 1 < argc)
			snprintf(req, sizeof(req), "health %s", argv[optind + 1]);
		else
			snprintf(req, sizeof(req), "health");
	} else if (strcmp(argv[optind], "trace") == 0 && optind + 2 >= argc) {
		if (optind + 1 < argc)
			snprintf(req, sizeof(req), "trace %s", argv[optind + 1]);
		else
			snprintf(req, sizeof(req), "trace");
		return follow_trace(path, req, count);
	} else if (strcmp(argv[optind], "capture") == 0 && optind + 3 == argc) {
		int fd;

		snprintf(req, sizeof(req), "capture %s", argv[optind + 1]);
		fd = open_request(path, req);
		return fd < 0 ? 2 : capture_to_file(fd, argv[optind + 2], count, seconds);
	} else {
		usage(stderr);
		return 2;
	}
	if (request(path, req, first, sizeof(first)) != 0)
		return 2;
	if (strncmp(req, "health", 6) == 0)
		return strcmp(first, "healthy") == 0 ? 0 : 1;
	return strcmp(first, "error") == 0 ? 2 : 0;
}
