/* SPDX-License-Identifier: Apache-2.0 */
/*
 * target.c - parsing, formatting and comparing target specs (vsock, hybrid,
 * unix, virtio, tcp).
 */
#include "vsock/vsock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int parse_u32(const char *s, uint32_t *out)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* The reason, after the spec; an overlong spec is cut so the reason shows. */
static int fail(char *err, size_t errlen, const char *spec, const char *why)
{
	size_t n = strnlen(spec, VSOCK_SPEC_MAX + 1);
	int cut = n > VSOCK_SPEC_MAX;

	snprintf(err, errlen, "bad target '%.*s%s': %s", cut ? VSOCK_SPEC_MAX : (int)n, spec,
		 cut ? "..." : "", why);
	return -EINVAL;
}

static int parse_path(const char *path, size_t len, struct vsock_target *t)
{
	if (len == 0 || len >= VSOCK_PATH_MAX)
		return -1;
	memcpy(t->path, path, len);
	t->path[len] = '\0';
	return 0;
}

static int parse_kernel(const char *spec, const char *rest, struct vsock_target *t,
			char *err, size_t errlen)
{
	char cid[16];
	const char *colon = strchr(rest, ':');

	if (colon == NULL || (size_t)(colon - rest) >= sizeof(cid))
		return fail(err, errlen, spec, "expected vsock:CID:PORT");
	memcpy(cid, rest, (size_t)(colon - rest));
	cid[colon - rest] = '\0';
	if (parse_u32(cid, &t->cid) != 0 || parse_u32(colon + 1, &t->port) != 0)
		return fail(err, errlen, spec, "CID and PORT must be decimal numbers");
	/* 0 hypervisor, 1 local (loopback is allowed), 2 host, -1 any */
	if (t->cid == 0 || t->cid == 2 || t->cid == UINT32_MAX)
		return fail(err, errlen, spec, "CID 0, 2 and 4294967295 are reserved");
	return 0;
}

static int parse_hybrid(const char *spec, const char *rest, struct vsock_target *t,
			char *err, size_t errlen)
{
	const char *colon = strrchr(rest, ':');

	if (colon == NULL)
		return fail(err, errlen, spec, "expected hybrid:PATH:PORT");
	if (parse_path(rest, (size_t)(colon - rest), t) != 0)
		return fail(err, errlen, spec, "socket path empty or too long");
	if (parse_u32(colon + 1, &t->port) != 0)
		return fail(err, errlen, spec, "PORT must be a decimal number");
	return 0;
}

static int parse_virtio(const char *spec, const char *rest, struct vsock_target *t,
			char *err, size_t errlen)
{
	const char *port = strrchr(rest, ':');
	const char *cid = port;
	char num[16];

	while (cid != NULL && cid > rest && cid[-1] != ':')
		cid--;
	if (port == NULL || cid == NULL || cid == rest || cid - 1 == rest)
		return fail(err, errlen, spec, "expected virtio:PATH:CID:PORT");
	if ((size_t)(cid - 1 - rest) >= VSOCK_LISTEN_PATH_MAX ||
	    parse_path(rest, (size_t)(cid - 1 - rest), t) != 0)
		return fail(err, errlen, spec, "socket path empty or too long (at most 103 bytes)");
	_Static_assert(VSOCK_LISTEN_PATH_MAX == 104, "the message above says 103");
	if ((size_t)(port - cid) >= sizeof(num))
		return fail(err, errlen, spec, "CID and PORT must be decimal numbers");
	memcpy(num, cid, (size_t)(port - cid));
	num[port - cid] = '\0';
	if (parse_u32(num, &t->cid) != 0 || parse_u32(port + 1, &t->port) != 0)
		return fail(err, errlen, spec, "CID and PORT must be decimal numbers");
	if (t->cid <= 2 || t->cid == UINT32_MAX)
		return fail(err, errlen, spec, "a guest CID must be 3 or more");
	return 0;
}

/* HOST of a tcp target, len bytes at host, to inet_ntop's form in t->host:
 * an IPv6 address when it was in brackets, else IPv4 or "localhost". No
 * name is resolved (a resolver may block, and reloads parse in the loop). */
static int parse_tcp_host(const char *spec, const char *host, size_t len, int bracketed,
			  struct vsock_target *t, char *err, size_t errlen)
{
	char text[VSOCK_HOST_MAX];
	unsigned char bin[16];
	int af = bracketed ? AF_INET6 : AF_INET;

	if (len == 0)
		return fail(err, errlen, spec, "HOST is empty");
	if (len >= sizeof(text))
		return fail(err, errlen, spec, "HOST is too long");
	memcpy(text, host, len);
	text[len] = '\0';
	if (!bracketed && strcasecmp(text, "localhost") == 0)
		snprintf(text, sizeof(text), "127.0.0.1");
	if (inet_pton(af, text, bin) != 1)
		return fail(err, errlen, spec, bracketed ?
			    "not an IPv6 address between the brackets (zone ids are not supported)" :
			    "HOST is not a numeric IPv4 address, [IPv6] or localhost "
			    "(host names are not resolved)");
	if (inet_ntop(af, bin, t->host, sizeof(t->host)) == NULL)
		return fail(err, errlen, spec, "HOST cannot be formatted");
	return 0;
}

static int parse_tcp(const char *spec, const char *rest, struct vsock_target *t,
		     char *err, size_t errlen)
{
	const char *host = rest, *colon;
	size_t len;
	int bracketed = rest[0] == '[';
	int rc;

	if (bracketed) {
		const char *rb = strchr(rest, ']');

		if (rb == NULL)
			return fail(err, errlen, spec, "'[' without ']' in tcp:[IPv6]:PORT");
		host = rest + 1;
		len = (size_t)(rb - host);
		colon = rb + 1;
	} else {
		colon = strchr(rest, ':');
		if (colon != NULL && strchr(colon + 1, ':') != NULL)
			return fail(err, errlen, spec,
				    "an IPv6 address goes in brackets, as in tcp:[::1]:5555");
		len = colon != NULL ? (size_t)(colon - rest) : 0;
	}
	if (colon == NULL || *colon != ':')
		return fail(err, errlen, spec, "expected tcp:HOST:PORT");
	rc = parse_tcp_host(spec, host, len, bracketed, t, err, errlen);
	if (rc != 0)
		return rc;
	if (parse_u32(colon + 1, &t->port) != 0 || t->port == 0 || t->port > 65535)
		return fail(err, errlen, spec, "PORT must be a number from 1 to 65535");
	return 0;
}

int vsock_target_parse(const char *spec, struct vsock_target *t,
		       char *err, size_t errlen)
{
	memset(t, 0, sizeof(*t));
	if (strncmp(spec, "vsock:", 6) == 0) {
		t->kind = VSOCK_KERNEL;
		return parse_kernel(spec, spec + 6, t, err, errlen);
	}
	if (strncmp(spec, "hybrid:", 7) == 0) {
		t->kind = VSOCK_HYBRID;
		return parse_hybrid(spec, spec + 7, t, err, errlen);
	}
	if (strncmp(spec, "unix:", 5) == 0) {
		t->kind = VSOCK_UNIX;
		if (parse_path(spec + 5, strlen(spec + 5), t) != 0)
			return fail(err, errlen, spec, "socket path empty or too long");
		return 0;
	}
	if (strncmp(spec, "virtio:", 7) == 0) {
		t->kind = VSOCK_VIRTIO;
		return parse_virtio(spec, spec + 7, t, err, errlen);
	}
	if (strncmp(spec, "tcp:", 4) == 0) {
		t->kind = VSOCK_TCP;
		return parse_tcp(spec, spec + 4, t, err, errlen);
	}
	return fail(err, errlen, spec,
		    "expected vsock:CID:PORT, hybrid:PATH:PORT, unix:PATH, virtio:PATH:CID:PORT "
		    "or tcp:HOST:PORT");
}

void vsock_target_format(const struct vsock_target *t, char *buf, size_t len)
{
	switch (t->kind) {
	case VSOCK_KERNEL:
		snprintf(buf, len, "vsock:%u:%u", t->cid, t->port);
		break;
	case VSOCK_HYBRID:
		snprintf(buf, len, "hybrid:%s:%u", t->path, t->port);
		break;
	case VSOCK_UNIX:
		snprintf(buf, len, "unix:%s", t->path);
		break;
	case VSOCK_VIRTIO:
		snprintf(buf, len, "virtio:%s:%u:%u", t->path, t->cid, t->port);
		break;
	case VSOCK_TCP:
		if (strchr(t->host, ':') != NULL)
			snprintf(buf, len, "tcp:[%s]:%u", t->host, t->port);
		else
			snprintf(buf, len, "tcp:%s:%u", t->host, t->port);
		break;
	}
}

int vsock_target_equal(const struct vsock_target *a, const struct vsock_target *b)
{
	return a->kind == b->kind && a->cid == b->cid && a->port == b->port &&
	       strcmp(a->path, b->path) == 0 && strcmp(a->host, b->host) == 0;
}
