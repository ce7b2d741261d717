/* SPDX-License-Identifier: Apache-2.0 */
/*
 * hybrid.c - host programs reach the guest through the relay's virtio
 * device with the hybrid vsock protocol of Firecracker and Cloud
 * Hypervisor: on a stream socket, "CONNECT <port>\n" (read byte by byte,
 * no read-ahead, bounded), then "OK <host port>\n" once the guest accepted,
 * then the bytes of the vsock connection both ways. Flow control is end
 * to end: the socket is read only while the connection has room, and the
 * guest's data is taken (and its credit returned) only as the socket
 * accepts it.
 *
 * A stream is the relay's own (transport_virtio.c) or a client of the
 * device's hybrid socket (hybrid_listen.c); a client's refusals are logged.
 *
 * Deadlines: the CONNECT line must be in within VHU_HYBRID_COMMAND_MS; the
 * guest's answer is the device's (VVS_CONNECT_TIMEOUT_MS). While the
 * stream is not read (connecting, or the guest gives no room) it is still
 * watched for a hang-up: a client gone while connecting is forgotten at
 * once (RST to the guest), one gone while the guest gives no room for its
 * last bytes is closed VVS_CLOSE_TIMEOUT_MS later. A client that only
 * shuts down its sending side (socat, one-shot tools) is half-closed: the
 * guest gets SHUTDOWN "will not send" once what the client sent is out,
 * and the client everything the guest sends, until the guest closes or it
 * too has shut its sending side; it counts against the device's clients
 * (VHU_HYBRID_MAX_CLIENTS) until then.
 */
#include "vsock/virtio/hybrid.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CMD_MAX 32
#define IO_CHUNK (64 * 1024)

enum hs_state { HS_COMMAND, HS_CONNECTING, HS_OPEN };

struct vhu_stream {
	uv_poll_t poll;
	uv_timer_t timer;           /* the CONNECT line's deadline, or a gone client's */
	struct vhu_device *dev;
	struct vhu_stream *next;
	int fd;
	int events;
	int closing;
	int handles;                /* poll and timer, until both are closed */
	int client;                 /* came through the hybrid socket */
	int hup;                    /* its hang-up was seen: no longer watched */
	int half_closed;            /* the client sends no more; the guest is told */
	enum hs_state state;
	struct vvs_conn *c;
	char cmd[CMD_MAX];
	size_t cmd_len;
	char ok[24];
	size_t ok_len, ok_sent;
};

static uint8_t scratch[IO_CHUNK];

static void on_stream_closed(uv_handle_t *h)
{
	struct vhu_stream *s = h->data;
	struct vhu_device *d = s->dev;

	if (--s->handles > 0)
		return;
	close(s->fd);
	free(s);
	if (--d->handles_open == 0 && d->on_closed != NULL)
		d->on_closed(d);
}

static void stream_close(struct vhu_stream *s)
{
	struct vhu_stream **pp;

	if (s->closing)
		return;
	s->closing = 1;
	if (s->c != NULL) {
		s->c->data = NULL;
		vvs_release(s->c);
		s->c = NULL;
	}
	for (pp = &s->dev->streams; *pp; pp = &(*pp)->next)
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	uv_close((uv_handle_t *)&s->poll, on_stream_closed);
	uv_close((uv_handle_t *)&s->timer, on_stream_closed);
}

/* Guest -> socket: the OK line, then whatever the guest sent (no SIGPIPE
 * for a client gone: its error closes the stream). */
static int flush_to_fd(struct vhu_stream *s)
{
	while (s->ok_sent < s->ok_len) {
		ssize_t n = send(s->fd, s->ok + s->ok_sent, s->ok_len - s->ok_sent, MSG_NOSIGNAL);
		if (n < 0)
			return errno == EAGAIN ? 1 : -1;
		s->ok_sent += (size_t)n;
	}
	while (s->c != NULL && vvs_readable(s->c) > 0) {
		size_t len = vvs_peek(s->c, scratch, sizeof(scratch));
		ssize_t n = send(s->fd, scratch, len, MSG_NOSIGNAL);

		if (n < 0)
			return errno == EAGAIN ? 1 : -1;
		vvs_consume(s->c, (size_t)n);
	}
	return 0;
}

/* Close S, saying why if it is a client of the hybrid socket. A macro so
 * that every refusal keeps a format string of its own: the cause by which
 * the log limits lines a peer can repeat at will. */
#define REFUSE(s, warn, ...) \
	do { \
		if ((s)->client) \
			vhu_log((s)->dev, (warn), __VA_ARGS__); \
		stream_close(s); \
	} while (0)

/* The command line is in: open the vsock connection it names. */
static void command_done(struct vhu_stream *s)
{
	struct vhu_device *d = s->dev;
	unsigned long port;
	char *end;

	s->cmd[s->cmd_len] = '\0';
	if (strncmp(s->cmd, "CONNECT ", 8) != 0 || s->cmd[8] < '0' || s->cmd[8] > '9' ||
	    (port = strtoul(s->cmd + 8, &end, 10)) > 0xffffffffUL || *end != '\0') {
		REFUSE(s, 1, "hybrid client refused: malformed command");
		return;
	}
	if (!vhu_ready(d)) {
		REFUSE(s, 0, "hybrid client refused: no VMM attached");
		return;
	}
	s->c = vvs_connect(&d->vvs, (uint32_t)port, s);
	if (s->c == NULL) {
		REFUSE(s, 1, "hybrid client refused: no vsock connection available");
		return;
	}
	uv_timer_stop(&s->timer);
	s->state = HS_CONNECTING;
}

static void on_deadline(uv_timer_t *t)
{
	struct vhu_stream *s = t->data;

	if (s->state == HS_COMMAND)
		REFUSE(s, 1, "hybrid client refused: no CONNECT line within %d ms",
		       VHU_HYBRID_COMMAND_MS);
	else
		stream_close(s);     /* gone, and the guest took nothing since */
}

/* Has the other end closed the socket altogether (not only its sending
 * side)? */
static int peer_gone(int fd)
{
	struct pollfd p = { fd, 0, 0 };

	return poll(&p, 1, 0) == 1 && (p.revents & (POLLHUP | POLLERR)) != 0;
}

/* The stream is not read now, and its client hung up. */
static void hung_up(struct vhu_stream *s)
{
	s->hup = 1;                /* seen: a half-closed client is still served */
	if (!peer_gone(s->fd))
		return;
	if (s->state == HS_CONNECTING)
		stream_close(s);   /* nobody waits for the answer: RST to the guest */
	else
		uv_timer_start(&s->timer, on_deadline, VVS_CLOSE_TIMEOUT_MS, 0);
}

static void update(struct vhu_stream *s);

static void on_fd(uv_poll_t *p, int status, int events)
{
	struct vhu_stream *s = p->data;

	if (status < 0) {
		stream_close(s);
		return;
	}
	if (events & UV_DISCONNECT) {
		hung_up(s);
		if (s->closing)
			return;
	}
	/* a half-closed client that now hangs up altogether: its answer has
	 * nowhere to go, and its slot is free again */
	if ((events & UV_PRIORITIZED) && s->half_closed && peer_gone(s->fd)) {
		stream_close(s);
		return;
	}
	if (events & UV_READABLE) {
		if (s->state == HS_COMMAND) {
			char ch;
			ssize_t n = read(s->fd, &ch, 1);   /* no read-ahead past '\n' */

			if (n <= 0) {
				if (n == 0 || errno != EAGAIN)
					stream_close(s);
				return;
			}
			if (ch != '\n') {
				if (s->cmd_len == CMD_MAX - 1)
					REFUSE(s, 1, "hybrid client refused: command too long");
				else
					s->cmd[s->cmd_len++] = ch;
				return;
			}
			command_done(s);
			if (s->closing)
				return;
		} else if (s->state == HS_OPEN && !s->half_closed) {
			size_t room = vvs_write_room(s->c);
			ssize_t n;

			if (room > sizeof(scratch))
				room = sizeof(scratch);
			n = room ? read(s->fd, scratch, room) : 0;
			if (room > 0 && n == 0 && peer_gone(s->fd)) {
				stream_close(s);   /* SHUTDOWN goes to the guest once tx drains */
				return;
			}
			if (room > 0 && n == 0) {
				/* half-closed: the guest's answer still goes to the client */
				s->half_closed = 1;
				s->hup = 1;        /* its hang-up is seen: watch it no more */
				vvs_shutdown_send(s->c);
			}
			if (n < 0 && errno != EAGAIN) {
				stream_close(s);
				return;
			}
			if (n > 0 && uv_is_active((uv_handle_t *)&s->timer))   /* a gone client's */
				uv_timer_start(&s->timer, on_deadline, VVS_CLOSE_TIMEOUT_MS, 0);
			if (n > 0)
				vvs_write(s->c, scratch, (size_t)n);
		}
	}
	if ((events & UV_WRITABLE) && flush_to_fd(s) < 0) {
		stream_close(s);
		return;
	}
	update(s);
}

/* Poll for what the stream can use now; when it is not read, for a
 * hang-up (once). */
static void update(struct vhu_stream *s)
{
	int ev = 0;

	if (s->closing)
		return;
	if (s->state == HS_COMMAND ||
	    (s->state == HS_OPEN && !s->half_closed && vvs_write_room(s->c) > 0))
		ev |= UV_READABLE;
	else if (!s->hup)
		ev |= UV_DISCONNECT;
	else if (s->half_closed)
		ev |= UV_PRIORITIZED;   /* wakes on the full hang-up (POLLHUP), not on the half-close */
	if (s->ok_sent < s->ok_len || (s->c != NULL && vvs_readable(s->c) > 0))
		ev |= UV_WRITABLE;
	if (ev != s->events) {
		s->events = ev;
		if (ev)
			uv_poll_start(&s->poll, ev, on_fd);
		else
			uv_poll_stop(&s->poll);
	}
	if (s->state == HS_OPEN && s->c != NULL && vvs_eof(s->c) && s->ok_sent == s->ok_len)
		stream_close(s);   /* the guest is done and all it sent is out */
}

/* ---- the vsock side ---- */

static void on_connected(struct vvs_conn *c, int status)
{
	struct vhu_stream *s = c->data;

	if (s == NULL)
		return;
	if (status == -ETIMEDOUT) {
		REFUSE(s, 1, "hybrid client refused: guest port %u did not answer", c->guest_port);
		return;
	}
	if (status != 0) {
		REFUSE(s, 0, "hybrid client refused: guest port %u refused", c->guest_port);
		return;
	}
	s->state = HS_OPEN;
	s->ok_len = (size_t)snprintf(s->ok, sizeof(s->ok), "OK %u\n", c->host_port);
	if (flush_to_fd(s) < 0)
		stream_close(s);
	else
		update(s);
}

static void on_readable(struct vvs_conn *c)
{
	struct vhu_stream *s = c->data;

	if (s == NULL)
		return;
	if (flush_to_fd(s) < 0)
		stream_close(s);
	else
		update(s);
}

static void on_writable(struct vvs_conn *c)
{
	if (c->data != NULL)
		update(c->data);
}

static void on_closed(struct vvs_conn *c, const char *why)
{
	struct vhu_stream *s = c->data;

	(void)why;
	if (s != NULL) {
		flush_to_fd(s);          /* what already arrived still goes out */
		stream_close(s);
	} else {
		vvs_release(c);
	}
}

const struct vvs_ops vhu_hybrid_ops = {
	.connected = on_connected, .readable = on_readable, .writable = on_writable,
	.closed = on_closed,
};

static int serve(struct vhu_device *d, int fd, int client)
{
	struct vhu_stream *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		close(fd);
		return UV_ENOMEM;
	}
	if (uv_poll_init(d->loop, &s->poll, fd) != 0) {
		free(s);
		close(fd);
		return UV_EINVAL;
	}
	uv_timer_init(d->loop, &s->timer);
	uv_timer_start(&s->timer, on_deadline, VHU_HYBRID_COMMAND_MS, 0);
	s->poll.data = s;
	s->timer.data = s;
	s->handles = 2;
	s->dev = d;
	s->fd = fd;
	s->client = client;
	s->next = d->streams;
	d->streams = s;
	d->ext_stop = vhu_hybrid_close_all;
	d->handles_open++;
	update(s);
	return 0;
}

int vhu_hybrid_serve(struct vhu_device *d, int fd)
{
	return serve(d, fd, 0);
}

int vhu_hybrid_serve_client(struct vhu_device *d, int fd)
{
	return serve(d, fd, 1);
}

unsigned vhu_hybrid_clients(const struct vhu_device *d)
{
	unsigned n = 0;

	for (const struct vhu_stream *s = d->streams; s; s = s->next)
		n += s->client != 0;
	return n;
}

void vhu_hybrid_close_clients(struct vhu_device *d)
{
	struct vhu_stream **pp = &d->streams;

	while (*pp != NULL) {
		if ((*pp)->client)
			stream_close(*pp);        /* takes it off the list */
		else
			pp = &(*pp)->next;
	}
}

/* The listener and every stream: the device is stopping. */
void vhu_hybrid_close_all(struct vhu_device *d)
{
	vhu_hybrid_unlisten(d);
	while (d->streams != NULL)
		stream_close(d->streams);
}
