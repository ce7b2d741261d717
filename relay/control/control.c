/* SPDX-License-Identifier: Apache-2.0 */
/*
 * control.c - the control socket server. Each client sends one request
 * line of at most CONTROL_LINE_MAX bytes and gets one reply within
 * CONTROL_TIMEOUT_MS, or is dropped. At most CONTROL_CLIENTS are served at
 * once; one more makes a client without a complete request line go (of the
 * process that holds the most, the oldest; the new one itself if every
 * other is being answered), so clients that connect and say nothing, or
 * part of a line, cannot lock the others out. A `trace` client instead stays and
 * gets trace lines, a `capture` client a pcap stream (obs.h),
 * until it hangs up or the relay stops; at most CONTROL_SUBSCRIBERS of
 * them, each with a bounded queue, and one that takes nothing of its queue
 * for CONTROL_STALL_MS is dropped.
 */
#include "relay/control/control.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "relay/control/status.h"
#include "relay/control/strbuf.h"
#include "relay/obs/obs.h"
#include "relay/relay.h"
#include "relay/sys/sys.h"
#include "vsock/virtio/virtio.h"

#define CONTROL_LINE_MAX 256
#define CONTROL_CLIENTS 16
#define CONTROL_BACKLOG 64
#define CONTROL_SUBSCRIBERS 8
#define CONTROL_TIMEOUT_MS 5000
#define CONTROL_REPLY_MAX (1024 * 1024)
#define CONTROL_STALL_MS 10000
#define CONTROL_STALL_CHECK_MS 1000

struct ctl_client;

struct control {
	uv_pipe_t listener;
	struct relay *rl;
	char path[108];
	struct vhu_listen_id path_id;    /* path is unlinked only while it is ours */
	unsigned requests;            /* clients waiting for a reply, not closing */
	unsigned subscribers;         /* trace and capture clients, not closing */
	struct ctl_client *list;      /* newest first */
	int stopping;                 /* 1: stopping, 2: listener closed */
};

struct ctl_client {
	struct control *ctl;
	struct ctl_client *prev, *next;
	uv_pipe_t pipe;
	uv_timer_t deadline;          /* the reply's; a subscriber's stall check */
	uv_write_t wr;
	char peer[48];                /* "pid N uid N", for log lines */
	pid_t pid;                    /* the peer's, -1 when unknown */
	char line[CONTROL_LINE_MAX];
	size_t len;
	int complete;                 /* its request line is in: being answered */
	struct strbuf reply;
	int handles;
	struct tap_sub *sub;          /* a trace client's subscription */
	struct capture_sub *cap;      /* a capture client's */
	uint64_t progress;            /* a subscriber's: what its reader took */
	uint64_t stalled_since;       /* loop ms since progress last moved */
};

/* log_limited() keys: the lines a local client can repeat at will */
static const char too_many_cause, timeout_cause, long_line_cause, stall_cause, subscribe_cause;

static void control_free_if_done(struct control *ctl)
{
	if (ctl->stopping == 2 && ctl->list == NULL)
		free(ctl);
}

static void on_listener_closed(uv_handle_t *h)
{
	struct control *ctl = h->data;

	ctl->stopping = 2;
	control_free_if_done(ctl);
}

static void client_closed(uv_handle_t *h)
{
	struct ctl_client *c = h->data;
	struct control *ctl = c->ctl;

	if (--c->handles > 0)
		return;
	if (c->prev)
		c->prev->next = c->next;
	else
		ctl->list = c->next;
	if (c->next)
		c->next->prev = c->prev;
	strbuf_free(&c->reply);
	free(c);
	control_free_if_done(ctl);
}

static int subscribed(const struct ctl_client *c)
{
	return c->sub != NULL || c->cap != NULL;
}

static void client_close(struct ctl_client *c)
{
	if (uv_is_closing((uv_handle_t *)&c->pipe))
		return;
	if (subscribed(c))
		c->ctl->subscribers--;
	else
		c->ctl->requests--;
	if (c->sub != NULL)
		tap_unsubscribe(c->sub);
	if (c->cap != NULL)
		capture_unsubscribe(c->cap);
	c->sub = NULL;
	c->cap = NULL;
	uv_close((uv_handle_t *)&c->pipe, client_closed);
	uv_close((uv_handle_t *)&c->deadline, client_closed);
}

static void on_reply_written(uv_write_t *w, int status)
{
	client_close(w->data);
}

static void execute(struct ctl_client *c, const char *req)
{
	const struct relay *rl = c->ctl->rl;

	if (strcmp(req, "status") == 0)
		status_text(rl, &c->reply);
	else if (strcmp(req, "status json") == 0)
		status_json(rl, &c->reply);
	else if (strcmp(req, "health") == 0)
		health_check(rl, NULL, &c->reply);
	else if (strncmp(req, "health ", 7) == 0)
		health_check(rl, req + 7, &c->reply);
	else
		strbuf_printf(&c->reply, "error: unknown request\n");
	strbuf_end(&c->reply, "\n(truncated)\n");
}

static int route_exists(const struct relay *rl, const char *name)
{
	for (const struct route *r = rl->routes; r; r = r->next)
		if (strcmp(r->cfg.name, name) == 0)
			return 1;
	return 0;
}

/* What a subscriber's reader has taken so far, and what it lost. */
static void sub_progress(const struct ctl_client *c, uint64_t *taken, uint64_t *lost,
			 size_t *queued)
{
	if (c->sub != NULL) {
		struct tap_counts t;

		tap_get_counts(c->sub, &t);
		*taken = t.written;
		*lost = t.lost;
		*queued = t.queued;
	} else {
		struct capture_counts k;

		capture_get_counts(c->cap, &k);
		*taken = k.written;
		*lost = k.lost;
		*queued = k.queued;
	}
}

/* Every CONTROL_STALL_CHECK_MS: a subscriber with unsent data that took
 * none of it for CONTROL_STALL_MS has stopped reading: drop it. */
static void on_stall_check(uv_timer_t *t)
{
	struct ctl_client *c = t->data;
	uint64_t now = uv_now(t->loop), taken, lost;
	size_t queued;

	sub_progress(c, &taken, &lost, &queued);
	if (queued == 0 || taken != c->progress) {
		c->progress = taken;
		c->stalled_since = now;
		return;
	}
	if (now - c->stalled_since < CONTROL_STALL_MS)
		return;
	log_limited(LOG_LVL_WARN, "control", &stall_cause,
		    "control: %s client (%s) took nothing for %u s with %zu bytes queued: dropped, "
		    "%llu %s lost", c->sub ? "trace" : "capture", c->peer, CONTROL_STALL_MS / 1000,
		    queued, (unsigned long long)lost, c->sub ? "lines" : "bytes");
	client_close(c);
}

/* "trace [ROUTE]" or "capture ROUTE": the client stays and gets trace
 * lines or a pcap stream; it is only read from to see it hang up. 1 if it
 * became a subscriber. */
static int subscribe(struct ctl_client *c, const char *req)
{
	int trace = strncmp(req, "trace", 5) == 0 && (req[5] == '\0' || req[5] == ' ');
	int capture = strncmp(req, "capture ", 8) == 0;
	const char *route = trace ? (req[5] == ' ' ? req + 6 : NULL) : req + 8;
	struct control *ctl = c->ctl;

	if (!trace && !capture)
		return 0;
	if (route != NULL && !route_exists(ctl->rl, route)) {
		strbuf_printf(&c->reply, "error: no route named %s\n", route);
		return 0;
	}
	if (ctl->subscribers >= CONTROL_SUBSCRIBERS) {
		strbuf_printf(&c->reply, "error: %u trace and capture clients already\n",
			      CONTROL_SUBSCRIBERS);
		return 0;
	}
	if (trace)
		c->sub = tap_subscribe((uv_stream_t *)&c->pipe, route);
	else
		c->cap = capture_subscribe((uv_stream_t *)&c->pipe, route);
	if (!subscribed(c)) {
		strbuf_printf(&c->reply, "error: out of memory\n");
		return 0;
	}
	ctl->requests--;
	ctl->subscribers++;
	c->len = 0;
	c->stalled_since = uv_now(c->deadline.loop);
	uv_timer_start(&c->deadline, on_stall_check, CONTROL_STALL_CHECK_MS,
		       CONTROL_STALL_CHECK_MS);
	log_limited(LOG_LVL_INFO, "control", &subscribe_cause, "control: %s client for %s (%s)",
		    trace ? "trace" : "capture", route ? route : "every route", c->peer);
	return 1;
}

static void answer(struct ctl_client *c)
{
	uv_buf_t buf;

	c->line[c->len] = '\0';
	if (subscribe(c, c->line))
		return;
	uv_read_stop((uv_stream_t *)&c->pipe);
	if (c->reply.len == 0)
		execute(c, c->line);
	buf = uv_buf_init(c->reply.s ? c->reply.s : "", (unsigned)c->reply.len);
	c->wr.data = c;
	if (uv_write(&c->wr, (uv_stream_t *)&c->pipe, &buf, 1, on_reply_written) != 0)
		client_close(c);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct ctl_client *c = h->data;

	*buf = uv_buf_init(c->line + c->len, (unsigned)(CONTROL_LINE_MAX - 1 - c->len));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct ctl_client *c = st->data;
	char *nl;

	if (nread < 0) {
		client_close(c);
		return;
	}
	if (subscribed(c))
		return;            /* a subscriber has nothing more to say */
	c->len += (size_t)nread;
	nl = memchr(c->line, '\n', c->len);
	if (nl != NULL) {
		c->len = (size_t)(nl - c->line);
		c->complete = 1;
		answer(c);
	} else if (c->len == CONTROL_LINE_MAX - 1) {
		log_limited(LOG_LVL_WARN, "control", &long_line_cause,
			    "control: client (%s): request line longer than %d bytes: closed", c->peer,
			    CONTROL_LINE_MAX - 1);
		client_close(c);
	}
}

static void on_deadline(uv_timer_t *t)
{
	struct ctl_client *c = t->data;

	log_limited(LOG_LVL_WARN, "control", &timeout_cause,
		    "control: client (%s): no request and reply within %d ms: closed", c->peer,
		    CONTROL_TIMEOUT_MS);
	client_close(c);
}

/* Has c sent its whole request line, read or still in its socket? (A
 * client that sent its line right after connecting has, even before the
 * loop has read it.) One byte or a line without its end is not a request:
 * such clients go first when the limit is reached. */
static int has_request(struct ctl_client *c)
{
	char peek[CONTROL_LINE_MAX];
	uv_os_fd_t fd;
	ssize_t n;

	if (c->complete)
		return 1;
	if (uv_fileno((uv_handle_t *)&c->pipe, &fd) != 0)
		return 0;
	n = recv(fd, peek, CONTROL_LINE_MAX - 1 - c->len, MSG_PEEK | MSG_DONTWAIT);
	return n > 0 && memchr(peek, '\n', (size_t)n) != NULL;
}

static int in_service(struct ctl_client *c)
{
	return !subscribed(c) && !uv_is_closing((uv_handle_t *)&c->pipe);
}

static unsigned clients_of(struct control *ctl, pid_t pid)
{
	unsigned n = 0;

	for (struct ctl_client *c = ctl->list; c; c = c->next)
		n += in_service(c) && c->pid == pid;
	return n;
}

/* The client to go for a new one: one without a complete request line,
 * of the process that holds the most clients (a flood of connections that
 * say nothing or part of a line loses its own), the oldest of those; NULL
 * when every client is being answered. */
static struct ctl_client *unready_victim(struct control *ctl)
{
	struct ctl_client *victim = NULL;
	unsigned most = 0;

	for (struct ctl_client *c = ctl->list; c; c = c->next) {   /* newest first */
		unsigned n;

		if (!in_service(c) || has_request(c))
			continue;
		n = clients_of(ctl, c->pid);
		if (n >= most) {
			victim = c;
			most = n;
		}
	}
	return victim;
}

static void peer_name(struct ctl_client *c)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	uv_os_fd_t fd;

	c->pid = -1;
	if (uv_fileno((uv_handle_t *)&c->pipe, &fd) == 0 &&
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
		c->pid = cred.pid;
		snprintf(c->peer, sizeof(c->peer), "pid %d uid %u", (int)cred.pid,
			 (unsigned)cred.uid);
	} else {
		snprintf(c->peer, sizeof(c->peer), "unknown peer");
	}
}

static void on_control_connection(uv_stream_t *l, int status)
{
	struct control *ctl = l->data;
	struct ctl_client *c, *old;

	if (status != 0)
		return;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return;
	c->ctl = ctl;
	uv_pipe_init(l->loop, &c->pipe, 0);
	uv_timer_init(l->loop, &c->deadline);
	c->pipe.data = c->deadline.data = c;
	c->handles = 2;
	strbuf_init(&c->reply, CONTROL_REPLY_MAX);
	c->next = ctl->list;
	if (ctl->list)
		ctl->list->prev = c;
	ctl->list = c;
	ctl->requests++;
	if (uv_accept(l, (uv_stream_t *)&c->pipe) != 0) {
		client_close(c);
		return;
	}
	peer_name(c);
	if (ctl->requests > CONTROL_CLIENTS) {
		old = unready_victim(ctl);
		log_limited(LOG_LVL_WARN, "control", &too_many_cause,
			    "control: %d clients at once: one without a request (%s) closed for a new "
			    "one (%s)", CONTROL_CLIENTS, old ? old->peer : "none: the new one", c->peer);
		if (old == NULL || old == c) {
			client_close(c);
			return;
		}
		client_close(old);
	}
	uv_timer_start(&c->deadline, on_deadline, CONTROL_TIMEOUT_MS, 0);
	uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
}

int control_start(struct relay *rl, const char *path, mode_t mode, uid_t uid, gid_t gid,
		  struct control **out)
{
	struct control *c;
	struct vhu_listen_id id;
	char err[256];
	int fd, rc;

	fd = vhu_listen_unix("control socket ", path, mode, uid, gid, CONTROL_BACKLOG, &id, err,
			     sizeof(err));
	if (fd < 0) {
		log_error("%s", err);
		return fd;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		vhu_unlink_listener(path, &id);
		close(fd);
		return UV_ENOMEM;
	}
	c->rl = rl;
	c->path_id = id;
	snprintf(c->path, sizeof(c->path), "%s", path);
	uv_pipe_init(rl->loop, &c->listener, 0);
	c->listener.data = c;
	/* opened, not bound: libuv knows no name of its own to unlink */
	rc = uv_pipe_open(&c->listener, fd);
	if (rc != 0)
		close(fd);
	else
		rc = uv_listen((uv_stream_t *)&c->listener, CONTROL_BACKLOG, on_control_connection);
	if (rc != 0) {
		log_error("control socket %s: %s", path, uv_strerror(rc));
		vhu_unlink_listener(path, &id);
		c->stopping = 1;
		uv_close((uv_handle_t *)&c->listener, on_listener_closed);
		return rc;
	}
	*out = c;
	return 0;
}

void control_stop(struct control *c)
{
	c->stopping = 1;
	vhu_unlink_listener(c->path, &c->path_id);
	for (struct ctl_client *cl = c->list; cl; cl = cl->next)
		client_close(cl);
	uv_close((uv_handle_t *)&c->listener, on_listener_closed);
}
