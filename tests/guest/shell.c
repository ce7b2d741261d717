/* SPDX-License-Identifier: Apache-2.0 */
/*
 * shell.c - the shell: and exec: services of adbd-testguest (adb's legacy
 * raw shell, no shell_v2 protocol): /bin/sh -c CMD (or an interactive
 * /bin/sh for an empty shell: command) spawned with libuv. shell: sends
 * stdout and stderr to the stream, exec: stdout only (its stderr goes to
 * our log). Host data goes to the child's stdin; the OKAY goes back only
 * once it is written. Output is read one buffer at a time and not read
 * again until the host acknowledged the WRTE. The stream ends (CLSE) when
 * the output reached EOF and the child has exited; a CLSE from the host
 * kills the child's process group.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "tests/guest/guest.h"

#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SHELL_BUF_MAX (64 * 1024) /* a pipe holds 64 KiB: larger reads never happen */

struct shell {
	struct stream *s;
	int merge_stderr;
	uv_process_t proc;
	uv_pipe_t in;            /* child's stdin */
	uv_pipe_t out;           /* child's stdout (and stderr for shell:) */
	uv_write_t wreq;
	uint8_t *buf;
	size_t bufsize;
	int proc_open, in_open, out_open;   /* handles not yet uv_close()d */
	int exited, out_eof, done, aborted;
	int pid;
};

static void handle_closed(uv_handle_t *h)
{
	struct shell *sh = h->data;

	stream_unref(sh->s);
}

static void close_handle(struct shell *sh, uv_handle_t *h, int *open)
{
	(void)sh;
	if (!*open)
		return;
	*open = 0;
	uv_close(h, handle_closed);
}

static void check_done(struct shell *sh)
{
	if (sh->done || sh->aborted || !sh->exited || !sh->out_eof)
		return;
	sh->done = 1;
	close_handle(sh, (uv_handle_t *)&sh->in, &sh->in_open);
	stream_finish(sh->s);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)suggested;
	struct shell *sh = h->data;

	*buf = uv_buf_init((char *)sh->buf, (unsigned)sh->bufsize);
}

static void read_cb(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
	(void)buf;
	struct shell *sh = h->data;

	if (nread == 0)
		return;
	uv_read_stop(h);
	if (nread > 0) {
		if (sh->aborted || !stream_can_send(sh->s))
			return;
		stream_send(sh->s, sh->buf, (size_t)nread);
		return;
	}
	if (nread != UV_EOF)
		log_info("%s: stream %u: reading child output: %s", stream_peer(sh->s), sh->s->id,
			 uv_strerror((int)nread));
	sh->out_eof = 1;
	close_handle(sh, (uv_handle_t *)&sh->out, &sh->out_open);
	check_done(sh);
}

static void start_reading(struct shell *sh)
{
	int err;

	if (sh->aborted || sh->out_eof || !sh->out_open)
		return;
	err = uv_read_start((uv_stream_t *)&sh->out, alloc_cb, read_cb);
	if (err < 0) {
		log_info("%s: stream %u: reading child output: %s", stream_peer(sh->s), sh->s->id,
			 uv_strerror(err));
		sh->out_eof = 1;
		close_handle(sh, (uv_handle_t *)&sh->out, &sh->out_open);
		check_done(sh);
	}
}

static void exit_cb(uv_process_t *p, int64_t status, int signo)
{
	struct shell *sh = p->data;

	log_debug("%s: stream %u: child %d exited, status %lld signal %d", stream_peer(sh->s),
		  sh->s->id, sh->pid, (long long)status, signo);
	sh->exited = 1;
	close_handle(sh, (uv_handle_t *)&sh->proc, &sh->proc_open);
	/* stdin is of no use any more; pending writes are cancelled */
	close_handle(sh, (uv_handle_t *)&sh->in, &sh->in_open);
	check_done(sh);
}

static int start_common(struct stream *s, const char *cmd, int merge_stderr)
{
	struct shell *sh = xcalloc(1, sizeof(*sh));
	uv_process_options_t opts;
	uv_stdio_container_t stdio[3];
	char *args[4];
	uv_file fds[2];
	int err;

	s->svc = sh;
	sh->s = s;
	sh->merge_stderr = merge_stderr;
	sh->bufsize = stream_max_payload(s) < SHELL_BUF_MAX ? stream_max_payload(s) : SHELL_BUF_MAX;
	sh->buf = xmalloc(sh->bufsize);

	err = uv_pipe(fds, 0, 0);
	if (err < 0) {
		log_err("%s: pipe: %s", stream_peer(s), uv_strerror(err));
		return -1;
	}
	uv_pipe_init(g_loop, &sh->in, 0);
	sh->in.data = sh;
	sh->in_open = 1;
	stream_ref(s);
	uv_pipe_init(g_loop, &sh->out, 0);
	sh->out.data = sh;
	sh->out_open = 1;
	stream_ref(s);

	memset(stdio, 0, sizeof(stdio));
	stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
	stdio[0].data.stream = (uv_stream_t *)&sh->in;
	stdio[1].flags = UV_INHERIT_FD;
	stdio[1].data.fd = fds[1];
	stdio[2].flags = UV_INHERIT_FD;
	stdio[2].data.fd = merge_stderr ? fds[1] : STDERR_FILENO;

	args[0] = "/bin/sh";
	if (cmd[0] == '\0' && merge_stderr) {
		args[1] = NULL; /* interactive shell: commands come from stdin */
	} else {
		args[1] = "-c";
		args[2] = (char *)cmd;
		args[3] = NULL;
	}
	memset(&opts, 0, sizeof(opts));
	opts.file = "/bin/sh";
	opts.args = args;
	opts.exit_cb = exit_cb;
	opts.stdio = stdio;
	opts.stdio_count = 3;
	/* own process group, so a CLSE can kill the whole pipeline */
	opts.flags = UV_PROCESS_DETACHED;

	err = uv_spawn(g_loop, &sh->proc, &opts);
	sh->proc.data = sh;
	close(fds[1]);
	if (err < 0) {
		log_err("%s: spawn /bin/sh: %s", stream_peer(s), uv_strerror(err));
		close(fds[0]);
		sh->proc_open = 1;
		stream_ref(s);
		close_handle(sh, (uv_handle_t *)&sh->proc, &sh->proc_open);
		close_handle(sh, (uv_handle_t *)&sh->in, &sh->in_open);
		close_handle(sh, (uv_handle_t *)&sh->out, &sh->out_open);
		sh->aborted = 1;
		return -1;
	}
	sh->proc_open = 1;
	stream_ref(s);
	sh->pid = sh->proc.pid;
	err = uv_pipe_open(&sh->out, fds[0]);
	if (err < 0) {
		log_err("%s: uv_pipe_open: %s", stream_peer(s), uv_strerror(err));
		close(fds[0]);
		sh->out_eof = 1;
		close_handle(sh, (uv_handle_t *)&sh->out, &sh->out_open);
	}
	log_debug("%s: stream %u: child %d: %s", stream_peer(s), s->id, sh->pid,
		  cmd[0] ? cmd : "(interactive /bin/sh)");
	return 0;
}

static int shell_start(struct stream *s, const char *cmd)
{
	return start_common(s, cmd, 1);
}

static int exec_start(struct stream *s, const char *cmd)
{
	return start_common(s, cmd, 0);
}

static void shell_started(struct stream *s)
{
	struct shell *sh = s->svc;

	start_reading(sh);
	check_done(sh); /* output may have failed already */
}

static void write_cb(uv_write_t *req, int status)
{
	struct shell *sh = (struct shell *)((char *)req - offsetof(struct shell, wreq));

	if (status < 0 && status != UV_ECANCELED)
		log_debug("%s: stream %u: child stdin: %s (data dropped)", stream_peer(sh->s),
			  sh->s->id, uv_strerror(status));
	stream_consumed(sh->s);
}

static void shell_data(struct stream *s, const uint8_t *data, size_t len)
{
	struct shell *sh = s->svc;
	uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
	int err;

	if (!sh->in_open) {
		stream_consumed(s); /* child gone: drop */
		return;
	}
	err = uv_write(&sh->wreq, (uv_stream_t *)&sh->in, &b, 1, write_cb);
	if (err < 0) {
		log_debug("%s: stream %u: child stdin: %s (data dropped)", stream_peer(s), s->id,
			  uv_strerror(err));
		stream_consumed(s);
	}
}

static void shell_ready(struct stream *s)
{
	start_reading(s->svc);
}

static void shell_abort(struct stream *s)
{
	struct shell *sh = s->svc;

	if (sh == NULL || sh->aborted)
		return;
	sh->aborted = 1;
	if (!sh->done && sh->pid > 0) {
		kill(-sh->pid, SIGKILL);
		if (!sh->exited)
			kill(sh->pid, SIGKILL);
	}
	close_handle(sh, (uv_handle_t *)&sh->in, &sh->in_open);
	close_handle(sh, (uv_handle_t *)&sh->out, &sh->out_open);
	/* the process handle closes in exit_cb, once the child is reaped */
}

static void shell_release(struct stream *s)
{
	struct shell *sh = s->svc;

	if (sh == NULL)
		return;
	free(sh->buf);
	free(sh);
	s->svc = NULL;
}

const struct service_ops shell_service = {
	.name = "shell",
	.start = shell_start,
	.started = shell_started,
	.data = shell_data,
	.ready = shell_ready,
	.abort = shell_abort,
	.release = shell_release,
};

const struct service_ops exec_service = {
	.name = "exec",
	.start = exec_start,
	.started = shell_started,
	.data = shell_data,
	.ready = shell_ready,
	.abort = shell_abort,
	.release = shell_release,
};
