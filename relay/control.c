/*
 * control.c - the control socket server. Each client sends one request
 * line of at most CONTROL_LINE_MAX bytes and gets one reply; at most
 * CONTROL_CLIENTS are served at once, each with a deadline. A `trace`
 * client instead stays, with no deadline, and gets trace lines (tap.h)
 * until it hangs up or the relay stops; so does a `capture` client, which
 * gets a pcap stream (capture.h).
 */
#include "control.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "capture.h"
#include "log.h"
#include "relay.h"
#include "strbuf.h"
#include "tap.h"

#define CONTROL_LINE_MAX 256
#define CONTROL_CLIENTS 16
#define CONTROL_TIMEOUT_MS 5000
#define CONTROL_REPLY_MAX (1024 * 1024)

struct ctl_client;

struct control {
	uv_pipe_t listener;
	struct relay *rl;
	char path[108];
	unsigned clients;
	struct ctl_client *list;
	int stopping;                 /* 1: stopping, 2: listener closed */
};

struct ctl_client {
	struct control *ctl;
	struct ctl_client *prev, *next;
	uv_pipe_t pipe;
	uv_timer_t deadline;
	uv_write_t wr;
	char line[CONTROL_LINE_MAX];
	size_t len;
	struct strbuf reply;
	int handles;
	int answered;
	struct tap_sub *sub;          /* a trace client's subscription */
	struct capture_sub *cap;      /* a capture client's */
};

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
	ctl->clients--;
	strbuf_free(&c->reply);
	free(c);
	control_free_if_done(ctl);
}

static void client_close(struct ctl_client *c)
{
	if (uv_is_closing((uv_handle_t *)&c->pipe))
		return;
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

/* "stall MS": block the loop, so a test can see the watchdog pings stop.
 * Only with ADBD_RELAY_TEST_HOOKS=1 in the relay's environment. */
static int test_stall(const char *req, struct strbuf *out)
{
	const char *hooks = getenv("ADBD_RELAY_TEST_HOOKS");
	unsigned long ms;
	char *end;

	if (strncmp(req, "stall ", 6) != 0 || hooks == NULL || strcmp(hooks, "1") != 0)
		return 0;
	ms = strtoul(req + 6, &end, 10);
	if (*end != '\0' || ms > 10000) {
		strbuf_printf(out, "error: stall takes up to 10000 ms\n");
		return 1;
	}
	log_warn("control: stalling the event loop for %lu ms (test hook)", ms);
	usleep((useconds_t)(ms * 1000));
	strbuf_printf(out, "stalled %lu ms\n", ms);
	return 1;
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
	else if (test_stall(req, &c->reply))
		;
	else
		strbuf_printf(&c->reply, "error: unknown request\n");
	if (c->reply.truncated)
		strbuf_printf(&c->reply, "\n(truncated)\n");
}

static int route_exists(const struct relay *rl, const char *name)
{
	for (const struct route *r = rl->routes; r; r = r->next)
		if (strcmp(r->cfg.name, name) == 0)
			return 1;
	return 0;
}

/* "trace [ROUTE]" or "capture ROUTE": the client stays and gets trace
 * lines or a pcap stream; it is only read from to see it hang up. 1 if it
 * became a subscriber. */
static int subscribe(struct ctl_client *c, const char *req)
{
	int trace = strncmp(req, "trace", 5) == 0 && (req[5] == '\0' || req[5] == ' ');
	int capture = strncmp(req, "capture ", 8) == 0;
	const char *route = trace ? (req[5] == ' ' ? req + 6 : NULL) : req + 8;

	if (!trace && !capture)
		return 0;
	if (route != NULL && !route_exists(c->ctl->rl, route)) {
		strbuf_printf(&c->reply, "error: no route named %s\n", route);
		return 0;
	}
	if (trace)
		c->sub = tap_subscribe((uv_stream_t *)&c->pipe, route);
	else
		c->cap = capture_subscribe((uv_stream_t *)&c->pipe, route);
	if (c->sub == NULL && c->cap == NULL) {
		strbuf_printf(&c->reply, "error: out of memory\n");
		return 0;
	}
	uv_timer_stop(&c->deadline);
	c->len = 0;
	log_info("control: %s client for %s", trace ? "trace" : "capture",
		 route ? route : "every route");
	return 1;
}

static void answer(struct ctl_client *c)
{
	uv_buf_t buf;

	c->answered = 1;
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
	if (c->sub != NULL || c->cap != NULL)
		return;            /* a subscriber has nothing more to say */
	c->len += (size_t)nread;
	nl = memchr(c->line, '\n', c->len);
	if (nl != NULL) {
		c->len = (size_t)(nl - c->line);
		answer(c);
	} else if (c->len == CONTROL_LINE_MAX - 1) {
		log_warn("control: request line too long, closing");
		client_close(c);
	}
}

static void on_deadline(uv_timer_t *t)
{
	struct ctl_client *c = t->data;

	log_warn("control: client timed out");
	client_close(c);
}

static void on_control_connection(uv_stream_t *l, int status)
{
	struct control *ctl = l->data;
	struct ctl_client *c;

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
	ctl->clients++;
	if (uv_accept(l, (uv_stream_t *)&c->pipe) != 0 || ctl->clients > CONTROL_CLIENTS) {
		client_close(c);
		return;
	}
	uv_timer_start(&c->deadline, on_deadline, CONTROL_TIMEOUT_MS, 0);
	uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
}

int control_start(struct relay *rl, const char *path, mode_t mode, struct control **out)
{
	struct control *c = calloc(1, sizeof(*c));
	struct stat st;
	int rc;

	if (c == NULL)
		return UV_ENOMEM;
	c->rl = rl;
	snprintf(c->path, sizeof(c->path), "%s", path);
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	uv_pipe_init(rl->loop, &c->listener, 0);
	c->listener.data = c;
	rc = uv_pipe_bind(&c->listener, path);
	if (rc == 0 && chmod(path, mode) != 0)
		rc = -errno;
	if (rc == 0)
		rc = uv_listen((uv_stream_t *)&c->listener, 8, on_control_connection);
	if (rc != 0) {
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
	unlink(c->path);
	for (struct ctl_client *cl = c->list; cl; cl = cl->next)
		client_close(cl);
	uv_close((uv_handle_t *)&c->listener, on_listener_closed);
}
