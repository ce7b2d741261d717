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
 */
#include "hybrid_listen.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CMD_MAX 32
#define IO_CHUNK (64 * 1024)

enum hs_state { HS_COMMAND, HS_CONNECTING, HS_OPEN };

struct vhu_stream {
	uv_poll_t poll;
	struct vhu_device *dev;
	struct vhu_stream *next;
	int fd;
	int events;
	int closing;
	int client;                 /* came through the hybrid socket */
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
}

/* Guest -> socket: the OK line, then whatever the guest sent. */
static int flush_to_fd(struct vhu_stream *s)
{
	while (s->ok_sent < s->ok_len) {
		ssize_t n = write(s->fd, s->ok + s->ok_sent, s->ok_len - s->ok_sent);
		if (n < 0)
			return errno == EAGAIN ? 1 : -1;
		s->ok_sent += (size_t)n;
	}
	while (s->c != NULL && vvs_readable(s->c) > 0) {
		size_t len = vvs_peek(s->c, scratch, sizeof(scratch));
		ssize_t n = write(s->fd, scratch, len);

		if (n < 0)
			return errno == EAGAIN ? 1 : -1;
		vvs_consume(s->c, (size_t)n);
	}
	return 0;
}

/* Close S, saying why if it is a client of the hybrid socket. */
static void refuse(struct vhu_stream *s, int warn, const char *why)
{
	if (s->client)
		vhu_log(s->dev, warn, "hybrid client refused: %s", why);
	stream_close(s);
}

/* The command line is in: open the vsock connection it names. */
static void command_done(struct vhu_stream *s)
{
	struct vhu_device *d = s->dev;
	unsigned long port;
	char *end;

	s->cmd[s->cmd_len] = '\0';
	if (strncmp(s->cmd, "CONNECT ", 8) != 0 || s->cmd[8] < '0' || s->cmd[8] > '9' ||
	    (port = strtoul(s->cmd + 8, &end, 10)) > 0xffffffffUL || *end != '\0') {
		refuse(s, 1, "malformed command");
		return;
	}
	if (!vhu_ready(d)) {
		refuse(s, 0, "no VMM attached");
		return;
	}
	s->c = vvs_connect(&d->vvs, (uint32_t)port, s);
	if (s->c == NULL) {
		refuse(s, 1, "no vsock connection available");
		return;
	}
	s->state = HS_CONNECTING;
}

static void update(struct vhu_stream *s);

static void on_fd(uv_poll_t *p, int status, int events)
{
	struct vhu_stream *s = p->data;

	if (status < 0) {
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
					refuse(s, 1, "command too long");
				else
					s->cmd[s->cmd_len++] = ch;
				return;
			}
			command_done(s);
			if (s->closing)
				return;
		} else if (s->state == HS_OPEN) {
			size_t room = vvs_write_room(s->c);
			ssize_t n;

			if (room > sizeof(scratch))
				room = sizeof(scratch);
			n = room ? read(s->fd, scratch, room) : 0;
			if (room > 0 && n == 0) {
				stream_close(s);   /* SHUTDOWN goes to the guest once tx drains */
				return;
			}
			if (n < 0 && errno != EAGAIN) {
				stream_close(s);
				return;
			}
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

/* Poll for what the stream can use now. */
static void update(struct vhu_stream *s)
{
	int ev = 0;

	if (s->closing)
		return;
	if (s->state == HS_COMMAND || (s->state == HS_OPEN && vvs_write_room(s->c) > 0))
		ev |= UV_READABLE;
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
	if (status != 0) {
		char why[48];

		snprintf(why, sizeof(why), "guest port %u refused", c->guest_port);
		refuse(s, 0, why);
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
	s->poll.data = s;
	s->dev = d;
	s->fd = fd;
	s->client = client;
	s->next = d->streams;
	d->streams = s;
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
