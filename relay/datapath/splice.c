/* SPDX-License-Identifier: Apache-2.0 */
/*
 * splice.c - payload moved from one stream socket to another without
 * passing through user space: splice(2) from the source into a pipe, then
 * from the pipe into the destination. Owns the pipe (two descriptors,
 * made on first use, closed by splice_pump_close). What the destination
 * does not take at once is read back out of the pipe into the caller's
 * buffer before splice_pump_move returns, so the pipe is empty between
 * calls: it holds no memory of its own for long, and the caller queues
 * those bytes through its ordinary output. Never blocks: every splice is
 * SPLICE_F_NONBLOCK on non-blocking descriptors.
 *
 * Only TCP and AF_UNIX stream sockets may be given (kernel vsock has no
 * splice of its own: the kernel would fall back to a copy); the callers
 * check the socket family. See datapath.h.
 */
#include "relay/datapath/datapath.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

void splice_pump_init(struct splice_pump *sp)
{
	sp->rd = sp->wr = -1;
	sp->failed = 0;
}

int splice_pump_open(struct splice_pump *sp)
{
	int p[2];

	if (sp->rd >= 0)
		return 0;
	if (sp->failed || pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) {
		sp->failed = 1;
		return -1;
	}
	/* a pipe smaller than a chunk (pipe-max-size, or a user's pipe
	 * quota) is of no use: copy instead */
	if (fcntl(p[1], F_GETPIPE_SZ) < SPLICE_CHUNK &&
	    fcntl(p[1], F_SETPIPE_SZ, SPLICE_CHUNK) < SPLICE_CHUNK) {
		close(p[0]);
		close(p[1]);
		sp->failed = 1;
		return -1;
	}
	sp->rd = p[0];
	sp->wr = p[1];
	return 0;
}

void splice_pump_close(struct splice_pump *sp)
{
	if (sp->rd >= 0) {
		close(sp->rd);
		close(sp->wr);
	}
	sp->rd = sp->wr = -1;
}

static int uv_err(int e)
{
	return e == EAGAIN || e == EWOULDBLOCK || e == EINTR ? 0 : -e;
}

/* Empty the pipe (n bytes in it) into spill. 0, or -1: it would not. */
static int drain(struct splice_pump *sp, uint8_t *spill, size_t n)
{
	size_t got = 0;

	while (got < n) {
		ssize_t k = read(sp->rd, spill + got, n - got);

		if (k <= 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		got += (size_t)k;
	}
	return 0;
}

void splice_pump_move(struct splice_pump *sp, int in_fd, int out_fd, size_t max,
		      uint8_t *spill, struct splice_result *r)
{
	const unsigned flags = SPLICE_F_MOVE | SPLICE_F_NONBLOCK;

	r->in = r->out = 0;
	r->in_err = r->out_err = 0;
	while (r->in < max) {
		size_t want = max - r->in < SPLICE_CHUNK ? max - r->in : SPLICE_CHUNK;
		ssize_t n = splice(in_fd, NULL, sp->wr, NULL, want, flags);
		size_t piped, out = 0;

		if (n == 0) {
			r->in_err = UV_EOF;
			return;
		}
		if (n < 0) {
			r->in_err = uv_err(errno);
			return;
		}
		piped = (size_t)n;
		r->in += piped;
		while (out < piped) {
			ssize_t k = splice(sp->rd, NULL, out_fd, NULL, piped - out, flags);

			if (k <= 0) {
				r->out_err = k < 0 ? uv_err(errno) : UV_EPIPE;
				break;
			}
			out += (size_t)k;
		}
		r->out += out;
		if (out < piped) {
			/* the destination is full (or failed): the rest goes
			 * the ordinary way, after what went already */
			if (drain(sp, spill, piped - out) != 0) {
				/* bytes lost in a pipe that will not give
				 * them back: the destination misses them */
				r->out_err = UV_EIO;
				splice_pump_close(sp);
				sp->failed = 1;
			}
			return;
		}
	}
}
