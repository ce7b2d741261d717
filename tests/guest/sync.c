/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sync.c - the sync: service of adbd-testguest: adb's legacy file sync
 * protocol (what adb push/pull/ls use against a device without the
 * stat_v2, ls_v2 and sendrecv_v2 features), following adbd's
 * file_sync_service.cpp: STAT (lstat, v1), LIST, SEND, RECV, QUIT.
 *
 * Requests may straddle WRTE boundaries anywhere, so input is parsed by a
 * byte-level state machine. Replies are collected in one bounded output
 * buffer and sent one WRTE at a time; while the buffer is full (long LIST,
 * RECV) no more input is consumed, so the host's WRTE is not acknowledged
 * and the host waits. File I/O is plain blocking I/O on local files.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "tests/guest/guest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SYNC_DATA_MAX   (64 * 1024)
#define SYNC_PATH_MAX   1024
#define SYNC_WRTE_MAX   (256 * 1024)  /* largest WRTE we build from the buffer */
#define REPLY_RESERVE   2048          /* room for any one small reply (FAIL etc) */
#define FAIL_MSG_MAX    1024

#define MKID(a, b, c, d) ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | \
			  (uint32_t)(d) << 24)
#define ID_STAT MKID('S', 'T', 'A', 'T')
#define ID_LIST MKID('L', 'I', 'S', 'T')
#define ID_SEND MKID('S', 'E', 'N', 'D')
#define ID_RECV MKID('R', 'E', 'C', 'V')
#define ID_DENT MKID('D', 'E', 'N', 'T')
#define ID_DONE MKID('D', 'O', 'N', 'E')
#define ID_DATA MKID('D', 'A', 'T', 'A')
#define ID_OKAY MKID('O', 'K', 'A', 'Y')
#define ID_FAIL MKID('F', 'A', 'I', 'L')
#define ID_QUIT MKID('Q', 'U', 'I', 'T')

enum sync_state {
	SS_REQ_HDR,     /* 8-byte request header */
	SS_REQ_PATH,    /* its path */
	SS_SEND_HDR,    /* 8-byte DATA/DONE header of a SEND */
	SS_SEND_DATA,   /* DATA bytes */
	SS_LISTING,     /* producing DENTs */
	SS_RECVING,     /* producing DATA chunks */
};

struct sync {
	struct stream *s;
	enum sync_state st;
	uint8_t hdr[8];
	size_t hdr_have;
	uint32_t req_id, req_len;
	char path[SYNC_PATH_MAX + 1];
	size_t path_have;
	int finishing;           /* close the stream once the output is sent */

	/* input: the current host WRTE payload */
	const uint8_t *in;
	size_t inlen, inpos;
	int have_input;

	/* output */
	uint8_t *out;
	size_t outcap, outlen, sent;
	size_t wrte_max;

	/* SEND */
	int fd;                  /* SEND target or RECV source */
	char *send_path;
	int send_failed;         /* FAIL sent: discard DATA until DONE, then close */
	int send_link;           /* mode says symlink: data is the target */
	char link_target[SYNC_PATH_MAX + 1];
	size_t link_len;
	uint32_t data_left;
	mode_t send_mode;

	/* LIST */
	DIR *dir;
	char dir_path[SYNC_PATH_MAX + 1];
};

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static const char *id_name(uint32_t id, char buf[5])
{
	for (int i = 0; i < 4; i++) {
		char ch = (char)(id >> (8 * i));

		buf[i] = ch >= 0x20 && ch < 0x7f ? ch : '?';
	}
	buf[4] = '\0';
	return buf;
}

static size_t out_free(const struct sync *y)
{
	return y->outcap - y->outlen;
}

static void out_append(struct sync *y, const void *p, size_t n)
{
	if (n > out_free(y)) {
		log_err("sync: internal error: output buffer overflow");
		abort();
	}
	memcpy(y->out + y->outlen, p, n);
	y->outlen += n;
}

static void out_msg(struct sync *y, uint32_t id, uint32_t a, uint32_t b, uint32_t c)
{
	uint8_t m[16];

	put_le32(m, id);
	put_le32(m + 4, a);
	put_le32(m + 8, b);
	put_le32(m + 12, c);
	out_append(y, m, 16);
}

static void out_status(struct sync *y, uint32_t id, uint32_t v)
{
	uint8_t m[8];

	put_le32(m, id);
	put_le32(m + 4, v);
	out_append(y, m, 8);
}

static void out_fail(struct sync *y, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_fail(struct sync *y, const char *fmt, ...)
{
	char msg[FAIL_MSG_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof(msg))
		n = sizeof(msg) - 1;
	log_info("%s: sync stream %u: FAIL %s", stream_peer(y->s), y->s->id, msg);
	out_status(y, ID_FAIL, (uint32_t)n);
	out_append(y, msg, (size_t)n);
}

static void close_fd(struct sync *y)
{
	if (y->fd >= 0) {
		close(y->fd);
		y->fd = -1;
	}
}

/* Drop a partly received file (adbd does the same). */
static void send_cleanup(struct sync *y)
{
	close_fd(y);
	if (y->send_path != NULL && !y->send_link)
		unlink(y->send_path);
	free(y->send_path);
	y->send_path = NULL;
}

/* ---- requests ---- */

static void do_stat(struct sync *y)
{
	struct stat st;

	if (lstat(y->path, &st) == 0)
		out_msg(y, ID_STAT, (uint32_t)st.st_mode, (uint32_t)st.st_size,
			(uint32_t)st.st_mtime);
	else
		out_msg(y, ID_STAT, 0, 0, 0);
}

static void do_list(struct sync *y)
{
	y->dir = opendir(y->path);
	if (y->dir == NULL) {
		/* adbd answers an unreadable directory with just DONE */
		uint8_t done[20] = { 'D', 'O', 'N', 'E' };

		out_append(y, done, sizeof(done));
		return;
	}
	snprintf(y->dir_path, sizeof(y->dir_path), "%s", y->path);
	y->st = SS_LISTING;
}

static void do_recv(struct sync *y)
{
	y->fd = open(y->path, O_RDONLY | O_CLOEXEC);
	if (y->fd < 0) {
		out_fail(y, "open failed: %s", strerror(errno));
		y->finishing = 1;
		return;
	}
	y->st = SS_RECVING;
}

static void do_send(struct sync *y)
{
	char *comma = strrchr(y->path, ',');
	unsigned long mode;
	struct stat st;
	int do_unlink;

	if (comma == NULL) {
		out_fail(y, "missing , in ID_SEND");
		y->finishing = 1;
		return;
	}
	*comma = '\0';
	errno = 0;
	mode = strtoul(comma + 1, NULL, 0);
	if (errno != 0) {
		out_fail(y, "bad mode");
		y->finishing = 1;
		return;
	}
	y->send_path = strdup(y->path);
	if (y->send_path == NULL)
		abort();
	y->send_failed = 0;
	y->send_link = S_ISLNK((mode_t)mode);
	y->link_len = 0;
	y->st = SS_SEND_HDR;
	y->hdr_have = 0;

	/* replace regular files and links, leave anything else to open() */
	do_unlink = lstat(y->path, &st) != 0 || S_ISREG(st.st_mode) || S_ISLNK(st.st_mode);
	if (do_unlink)
		unlink(y->path);
	if (y->send_link)
		return;
	mode &= 0777;
	mode |= (mode >> 3) & 0070;
	mode |= (mode >> 3) & 0007;
	y->send_mode = (mode_t)mode;
	y->fd = open(y->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, y->send_mode);
	if (y->fd < 0 && errno == EEXIST)
		y->fd = open(y->path, O_WRONLY | O_CLOEXEC, y->send_mode);
	if (y->fd < 0) {
		out_fail(y, "couldn't create file: %s", strerror(errno));
		y->send_failed = 1;
		free(y->send_path);
		y->send_path = NULL;
	}
}

static void send_done(struct sync *y, uint32_t mtime)
{
	y->st = SS_REQ_HDR;
	y->hdr_have = 0;
	if (y->send_failed) {
		/* the FAIL went out already; adbd closes the stream now */
		send_cleanup(y);
		y->finishing = 1;
		return;
	}
	if (y->send_link) {
		y->link_target[y->link_len] = '\0';
		if (symlink(y->link_target, y->send_path) != 0) {
			out_fail(y, "symlink failed: %s", strerror(errno));
			send_cleanup(y);
			y->finishing = 1;
			return;
		}
	} else {
		struct timespec ts[2] = { { .tv_sec = (time_t)mtime }, { .tv_sec = (time_t)mtime } };

		if (futimens(y->fd, ts) != 0)
			log_debug("sync: futimens %s: %s", y->send_path, strerror(errno));
		if (close(y->fd) != 0) {
			y->fd = -1;
			out_fail(y, "close failed: %s", strerror(errno));
			send_cleanup(y);
			y->finishing = 1;
			return;
		}
		y->fd = -1;
	}
	log_debug("%s: sync stream %u: SEND %s done", stream_peer(y->s), y->s->id, y->send_path);
	free(y->send_path);
	y->send_path = NULL;
	out_status(y, ID_OKAY, 0);
}

static void handle_request(struct sync *y)
{
	char nb[5];

	y->path[y->req_len] = '\0';
	log_debug("%s: sync stream %u: %s \"%s\"", stream_peer(y->s), y->s->id,
		  id_name(y->req_id, nb), y->path);
	y->st = SS_REQ_HDR;
	y->hdr_have = 0;
	switch (y->req_id) {
	case ID_STAT:
		do_stat(y);
		break;
	case ID_LIST:
		do_list(y);
		break;
	case ID_SEND:
		do_send(y);
		break;
	case ID_RECV:
		do_recv(y);
		break;
	case ID_QUIT:
		y->finishing = 1;
		break;
	default:
		out_fail(y, "unknown command %08x", y->req_id);
		y->finishing = 1;
		break;
	}
}

/* ---- output producers ---- */

/* Returns 1 when the listing is complete, 0 when the buffer is full. */
static int list_more(struct sync *y)
{
	while (out_free(y) >= 20 + 256 + 8 && y->outlen < y->wrte_max) {
		char full[2 * SYNC_PATH_MAX + 2];
		struct dirent *de;
		struct stat st;
		size_t nlen;
		uint8_t m[20];

		de = readdir(y->dir);
		if (de == NULL) {
			uint8_t done[20] = { 'D', 'O', 'N', 'E' };

			closedir(y->dir);
			y->dir = NULL;
			out_append(y, done, sizeof(done));
			y->st = SS_REQ_HDR;
			return 1;
		}
		snprintf(full, sizeof(full), "%s/%s", y->dir_path, de->d_name);
		if (lstat(full, &st) != 0)
			continue;
		nlen = strlen(de->d_name);
		if (nlen > 255)
			continue;
		put_le32(m, ID_DENT);
		put_le32(m + 4, (uint32_t)st.st_mode);
		put_le32(m + 8, (uint32_t)st.st_size);
		put_le32(m + 12, (uint32_t)st.st_mtime);
		put_le32(m + 16, (uint32_t)nlen);
		out_append(y, m, sizeof(m));
		out_append(y, de->d_name, nlen);
	}
	return 0;
}

/* Returns 1 when the file is complete, 0 when the buffer is full or the
 * stream is finishing after an error. */
static int recv_more(struct sync *y)
{
	while (out_free(y) >= 8 + SYNC_DATA_MAX && y->outlen < y->wrte_max) {
		ssize_t n = read(y->fd, y->out + y->outlen + 8, SYNC_DATA_MAX);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			out_fail(y, "read failed: %s", strerror(errno));
			close_fd(y);
			y->finishing = 1;
			return 0;
		}
		if (n == 0) {
			close_fd(y);
			out_status(y, ID_DONE, 0);
			y->st = SS_REQ_HDR;
			return 1;
		}
		put_le32(y->out + y->outlen, ID_DATA);
		put_le32(y->out + y->outlen + 4, (uint32_t)n);
		y->outlen += 8 + (size_t)n;
	}
	return 0;
}

/* ---- input ---- */

static size_t take(struct sync *y, void *dst, size_t want)
{
	size_t n = y->inlen - y->inpos;

	if (n > want)
		n = want;
	if (dst != NULL)
		memcpy(dst, y->in + y->inpos, n);
	y->inpos += n;
	return n;
}

/* Consume some input; always makes progress. */
static void consume(struct sync *y)
{
	switch (y->st) {
	case SS_REQ_HDR:
		y->hdr_have += take(y, y->hdr + y->hdr_have, 8 - y->hdr_have);
		if (y->hdr_have < 8)
			return;
		y->req_id = get_le32(y->hdr);
		y->req_len = get_le32(y->hdr + 4);
		y->hdr_have = 0;
		if (y->req_len > SYNC_PATH_MAX) {
			out_fail(y, "path too long");
			y->finishing = 1;
			return;
		}
		y->path_have = 0;
		y->st = SS_REQ_PATH;
		if (y->req_len == 0)
			handle_request(y);
		return;
	case SS_REQ_PATH:
		y->path_have += take(y, y->path + y->path_have, y->req_len - y->path_have);
		if (y->path_have == y->req_len)
			handle_request(y);
		return;
	case SS_SEND_HDR: {
		uint32_t id, len;
		char nb[5];

		y->hdr_have += take(y, y->hdr + y->hdr_have, 8 - y->hdr_have);
		if (y->hdr_have < 8)
			return;
		y->hdr_have = 0;
		id = get_le32(y->hdr);
		len = get_le32(y->hdr + 4);
		if (id == ID_DONE) {
			send_done(y, len);
		} else if (id != ID_DATA) {
			out_fail(y, "invalid data message %s", id_name(id, nb));
			send_cleanup(y);
			y->finishing = 1;
		} else if (len > SYNC_DATA_MAX) {
			out_fail(y, "oversize data message");
			send_cleanup(y);
			y->finishing = 1;
		} else if (len > 0) {
			y->data_left = len;
			y->st = SS_SEND_DATA;
		}
		return;
	}
	case SS_SEND_DATA: {
		const uint8_t *p = y->in + y->inpos;
		size_t n = take(y, NULL, y->data_left);

		y->data_left -= (uint32_t)n;
		if (y->data_left == 0)
			y->st = SS_SEND_HDR;
		if (y->send_failed)
			return;
		if (y->send_link) {
			if (y->link_len + n > SYNC_PATH_MAX) {
				out_fail(y, "symlink target too long");
				y->send_failed = 1;
				return;
			}
			memcpy(y->link_target + y->link_len, p, n);
			y->link_len += n;
			return;
		}
		while (n > 0) {
			ssize_t w = write(y->fd, p, n);

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				out_fail(y, "write failed: %s", w < 0 ? strerror(errno) : "no progress");
				send_cleanup(y);
				y->send_failed = 1;
				return;
			}
			p += w;
			n -= (size_t)w;
		}
		return;
	}
	default:
		return;
	}
}

/* ---- the pump ---- */

static void flush(struct sync *y)
{
	struct stream *s = y->s;

	if (s->closed || y->sent)
		return;
	if (y->outlen > 0) {
		if (stream_can_send(s)) {
			y->sent = y->outlen < y->wrte_max ? y->outlen : y->wrte_max;
			stream_send(s, y->out, y->sent);
		}
		return;
	}
	if (y->finishing)
		stream_finish(s);
}

static void pump(struct sync *y)
{
	struct stream *s = y->s;

	while (!y->finishing && !s->closed) {
		if (y->st == SS_LISTING) {
			if (!list_more(y))
				break;
			continue;
		}
		if (y->st == SS_RECVING) {
			if (!recv_more(y))
				break;
			continue;
		}
		if (!y->have_input)
			break;
		if (y->inpos == y->inlen) {
			y->have_input = 0;
			stream_consumed(s);
			break;
		}
		if (out_free(y) < REPLY_RESERVE)
			break;
		consume(y);
		if (y->inpos == y->inlen) {
			/* all of this WRTE used: acknowledge before any FAIL/CLSE */
			y->have_input = 0;
			stream_consumed(s);
		}
	}
	flush(y);
}

/* ---- service ops ---- */

static int sync_start(struct stream *s, const char *arg)
{
	(void)arg;
	struct sync *y = xcalloc(1, sizeof(*y));
	uint32_t maxp = stream_max_payload(s);

	s->svc = y;
	y->s = s;
	y->fd = -1;
	y->st = SS_REQ_HDR;
	y->wrte_max = maxp < SYNC_WRTE_MAX ? maxp : SYNC_WRTE_MAX;
	y->outcap = y->wrte_max + 8 + SYNC_DATA_MAX + REPLY_RESERVE;
	y->out = xmalloc(y->outcap);
	return 0;
}

static void sync_started(struct stream *s)
{
	(void)s;
}

static void sync_data(struct stream *s, const uint8_t *data, size_t len)
{
	struct sync *y = s->svc;

	y->in = data;
	y->inlen = len;
	y->inpos = 0;
	y->have_input = 1;
	pump(y);
}

static void sync_ready(struct stream *s)
{
	struct sync *y = s->svc;

	memmove(y->out, y->out + y->sent, y->outlen - y->sent);
	y->outlen -= y->sent;
	y->sent = 0;
	pump(y);
}

static void sync_abort(struct stream *s)
{
	struct sync *y = s->svc;

	if (y == NULL)
		return;
	if (y->send_path != NULL)
		log_info("%s: sync stream %u: closed during SEND of %s: removed", stream_peer(s),
			 s->id, y->send_path);
	send_cleanup(y);
	close_fd(y);
	if (y->dir != NULL) {
		closedir(y->dir);
		y->dir = NULL;
	}
	y->have_input = 0;
}

static void sync_release(struct stream *s)
{
	struct sync *y = s->svc;

	if (y == NULL)
		return;
	sync_abort(s);
	free(y->out);
	free(y);
	s->svc = NULL;
}

const struct service_ops sync_service = {
	.name = "sync",
	.start = sync_start,
	.started = sync_started,
	.data = sync_data,
	.ready = sync_ready,
	.abort = sync_abort,
	.release = sync_release,
};
