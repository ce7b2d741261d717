/* SPDX-License-Identifier: Apache-2.0 */
/*
 * conn.c - one adb connection of adbd-testguest and its streams: the hybrid
 * vsock CONNECT handshake (byte by byte), the frame reader, the CNXN
 * exchange, OPEN/OKAY/WRTE/CLSE, per-stream flow control (one WRTE in
 * flight per stream, OKAY to the host only once its data is consumed), and
 * framing of everything we send. Services (shell.c, sync.c, forward.c,
 * restart.c) see only the stream_* functions declared in guest.h.
 *
 * delayed_ack, when --features names it and the host's banner does too (as
 * adbd 34 with adb started with ADB_DELAYED_ACK=1 / ADB_BURST_MODE=1): the
 * host's OPEN carries the bytes we may send before its OKAYs (arg1, which
 * must then be non-zero, and zero without the feature), our OKAYs carry a
 * little-endian int32: the first the bytes the host may send us
 * (DACK_WINDOW), later ones the bytes consumed; the host's OKAYs the bytes
 * it consumed. A stream then sends while its window lasts, and host WRTEs
 * that come while the service still consumes one wait in a queue bounded by
 * the window (a host that overruns it loses the stream).
 *
 * Memory is bounded: the read buffer is fixed, a stream holds at most one
 * host WRTE payload (the host may not send another before our OKAY; if it
 * does, the stream is closed), outgoing stream data is sent from the
 * service's own buffer, and when small control frames (OKAY, CLSE) pile up
 * because the host does not read, we stop reading from it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "tests/guest/guest.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_STREAMS     64           /* per connection; more OPENs get CLSE */
#define READ_BUF_SIZE   (128 * 1024)
#define CTL_QUEUE_LIMIT (256 * 1024) /* memory in queued replies before we stop reading */
#define DACK_WINDOW     (32u << 20)  /* what a delayed_ack host may send a stream unacked (adbd: 32 MiB) */

/* a host WRTE payload waiting for the service (delayed_ack) */
struct inq {
	struct inq *next;
	uint32_t len;
	uint8_t data[];
};

struct conn {
	union {
		uv_handle_t handle;
		uv_stream_t stream;
		uv_tcp_t tcp;
		uv_pipe_t pipe;
	} h;
	enum conn_kind kind;
	unsigned long id;
	char peer[200];
	int refs;                /* handle + one per stream */
	int closing;
	int hybrid;              /* hybrid CONNECT command not yet complete */
	struct hybrid_hs hs;
	char hs_byte;
	int online;              /* CNXN exchanged */
	uint32_t version;        /* negotiated */
	uint32_t max_payload;    /* negotiated: what we announced */
	int dack;                /* delayed_ack: offered by both */
	struct adb_reader reader;
	uint8_t *rbuf;
	int read_paused;
	size_t ctl_queued;
	uint32_t next_id;
	struct stream *streams[MAX_STREAMS];
	int nstreams;
	/* the frame being read */
	struct adb_header cur;
	struct stream *cur_stream;   /* WRTE target, NULL to discard */
	uint8_t *fbuf;               /* CNXN/OPEN payload */
	uint32_t flen;
	struct conn *prev, *next;
};

struct outreq {
	uv_write_t req;
	struct conn *conn;
	struct stream *stream;   /* WRTE sent from the stream's buffer */
	size_t ctl;              /* bytes counted in conn->ctl_queued */
	uint8_t hdr[ADB_HEADER_SIZE];
	uint8_t data[];
};

static struct conn *conns;
static unsigned long conn_counter;
static uint32_t hybrid_port_counter = 1073741824u;

static void conn_close(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void stream_remove(struct stream *s);
static void stream_acked(struct stream *s);

/* ---- connection lifetime ---- */

static void conn_ref(struct conn *c)
{
	c->refs++;
}

static void conn_unref(struct conn *c)
{
	if (--c->refs > 0)
		return;
	free(c->rbuf);
	free(c->fbuf);
	free(c);
}

uv_stream_t *conn_handle_alloc(enum conn_kind kind)
{
	struct conn *c = xcalloc(1, sizeof(*c));

	c->kind = kind;
	c->refs = 1;
	if (kind == CONN_TCP)
		uv_tcp_init(g_loop, &c->h.tcp);
	else
		uv_pipe_init(g_loop, &c->h.pipe, 0);
	c->h.handle.data = c;
	return &c->h.stream;
}

static void conn_handle_closed(uv_handle_t *h)
{
	conn_unref(h->data);
}

void conn_handle_free(uv_stream_t *handle)
{
	uv_close((uv_handle_t *)handle, conn_handle_closed);
}

static void conn_close(struct conn *c, const char *fmt, ...)
{
	char why[300];
	va_list ap;

	if (c->closing)
		return;
	c->closing = 1;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	log_info("conn %lu (%s): closing: %s", c->id, c->peer, why);
	if (c->prev)
		c->prev->next = c->next;
	else if (conns == c)
		conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	conn_ref(c);
	while (c->nstreams > 0)
		stream_remove(c->streams[c->nstreams - 1]);
	free(c->fbuf);
	c->fbuf = NULL;
	uv_close(&c->h.handle, conn_handle_closed);
	conn_unref(c);
}

void conns_close_all(const char *why)
{
	while (conns != NULL)
		conn_close(conns, "%s", why);
}

/* ---- output ---- */

static void resume_reading(struct conn *c);

static void write_cb(uv_write_t *req, int status)
{
	struct outreq *r = (struct outreq *)req;
	struct conn *c = r->conn;
	struct stream *s = r->stream;

	c->ctl_queued -= r->ctl;
	if (status < 0 && status != UV_ECANCELED)
		conn_close(c, "write failed: %s", uv_strerror(status));
	if (s != NULL) {
		s->write_inflight = 0;
		if (status == 0 && !s->closed && !s->wrte_pending) {
			stream_acked(s); /* the OKAY came first */
		}
		stream_unref(s);
	}
	if (c->read_paused && !c->closing && c->ctl_queued < CTL_QUEUE_LIMIT / 2)
		resume_reading(c);
	free(r);
}

/*
 * Queue one write. With `s`, data is a WRTE payload living in the stream's
 * buffer (not copied); otherwise data is copied. `raw` sends data without
 * an adb header (the hybrid "OK" line).
 */
static void conn_write(struct conn *c, uint32_t cmd, uint32_t arg0, uint32_t arg1,
		       const void *data, size_t len, struct stream *s, int raw)
{
	struct outreq *r;
	uv_buf_t bufs[2];
	unsigned nbufs = 0;
	int err;

	if (c->closing)
		return;
	r = xmalloc(sizeof(*r) + (s ? 0 : len));
	r->conn = c;
	r->stream = s;
	if (!raw) {
		struct adb_header h;
		uint32_t check = 0;

		if (cmd == ADB_CMD_CNXN || c->version < ADB_VERSION_SKIP_CHECKSUM)
			check = adb_checksum(0, data, len);
		adb_header_init(&h, cmd, arg0, arg1, (uint32_t)len, check);
		adb_header_encode(&h, r->hdr);
		bufs[nbufs++] = uv_buf_init((char *)r->hdr, ADB_HEADER_SIZE);
		if (g_opt.verbose)
			log_debug("conn %lu: -> %s arg0=%u arg1=%u len=%zu", c->id,
				  adb_command_name(cmd), arg0, arg1, len);
	}
	if (len > 0) {
		if (s == NULL) {
			memcpy(r->data, data, len);
			bufs[nbufs++] = uv_buf_init((char *)r->data, (unsigned)len);
		} else {
			bufs[nbufs++] = uv_buf_init((char *)data, (unsigned)len);
		}
	}
	r->ctl = s ? 0 : sizeof(*r) + len; /* what the queued reply costs us */
	c->ctl_queued += r->ctl;
	if (s != NULL) {
		stream_ref(s);
		s->write_inflight = 1;
	}
	err = uv_write(&r->req, &c->h.stream, bufs, nbufs, write_cb);
	if (err < 0) {
		c->ctl_queued -= r->ctl;
		if (s != NULL) {
			s->write_inflight = 0;
			stream_unref(s);
		}
		free(r);
		conn_close(c, "write failed: %s", uv_strerror(err));
		return;
	}
	if (c->ctl_queued > CTL_QUEUE_LIMIT && !c->read_paused) {
		log_debug("conn %lu: %zu bytes of replies queued, host not reading: pausing input",
			  c->id, c->ctl_queued);
		c->read_paused = 1;
		uv_read_stop(&c->h.stream);
	}
}

static void send_ctl(struct conn *c, uint32_t cmd, uint32_t arg0, uint32_t arg1)
{
	conn_write(c, cmd, arg0, arg1, NULL, 0, NULL, 0);
}

/* An OKAY; with delayed_ack it carries `bytes` (the window, or what was
 * consumed). */
static void send_okay(struct conn *c, uint32_t id, uint32_t host_id, uint32_t bytes)
{
	uint8_t le[4] = { (uint8_t)bytes, (uint8_t)(bytes >> 8), (uint8_t)(bytes >> 16),
			  (uint8_t)(bytes >> 24) };

	conn_write(c, ADB_CMD_OKAY, id, host_id, le, c->dack ? sizeof(le) : 0, NULL, 0);
}

/* ---- streams ---- */

uint32_t stream_max_payload(const struct stream *s)
{
	return s->conn->max_payload;
}

const char *stream_peer(const struct stream *s)
{
	return s->conn->peer;
}

void stream_ref(struct stream *s)
{
	s->refs++;
}

void stream_unref(struct stream *s)
{
	if (--s->refs > 0)
		return;
	if (s->ops->release)
		s->ops->release(s);
	free(s->inbuf);
	free(s->inq_filling);
	while (s->inq != NULL) {
		struct inq *q = s->inq;

		s->inq = q->next;
		free(q);
	}
	conn_unref(s->conn);
	free(s);
}

static struct stream *find_stream(struct conn *c, uint32_t id)
{
	for (int i = 0; i < c->nstreams; i++)
		if (c->streams[i]->id == id)
			return c->streams[i];
	return NULL;
}

static uint32_t new_stream_id(struct conn *c)
{
	for (;;) {
		uint32_t id = ++c->next_id;

		if (id != 0 && find_stream(c, id) == NULL)
			return id;
	}
}

/* Take the stream out of the table and tell the service it is gone. No
 * CLSE is sent here. */
static void stream_remove(struct stream *s)
{
	struct conn *c = s->conn;

	if (s->closed)
		return;
	s->closed = 1;
	for (int i = 0; i < c->nstreams; i++) {
		if (c->streams[i] == s) {
			c->streams[i] = c->streams[--c->nstreams];
			break;
		}
	}
	if (c->cur_stream == s)
		c->cur_stream = NULL;
	s->in_collecting = 0;
	stream_ref(s);
	s->ops->abort(s);
	stream_unref(s);
	stream_unref(s); /* the table's reference */
}

static void stream_send_close(struct stream *s)
{
	log_debug("conn %lu: stream %u (host %u, %s) closed by us", s->conn->id, s->id,
		  s->host_id, s->ops->name);
	send_ctl(s->conn, ADB_CMD_CLSE, s->id, s->host_id);
	stream_remove(s);
}

/* The last WRTE has been acknowledged by the host and written out. */
static void stream_acked(struct stream *s)
{
	if (s->closed || s->wrte_pending || s->write_inflight)
		return;
	if (s->finishing) {
		stream_send_close(s);
		return;
	}
	stream_ref(s);
	s->ops->ready(s);
	stream_unref(s);
}

int stream_can_send(const struct stream *s)
{
	return !s->closed && !s->opening && !s->finishing && !s->wrte_pending &&
	       !s->write_inflight && !s->conn->closing;
}

void stream_opened(struct stream *s)
{
	if (s->closed || !s->opening)
		return;
	s->opening = 0;
	send_okay(s->conn, s->id, s->host_id, DACK_WINDOW);
	stream_ref(s);
	if (!s->closed)
		s->ops->started(s);
	stream_unref(s);
}

void stream_refused(struct stream *s)
{
	if (s->closed || !s->opening)
		return;
	log_debug("conn %lu: stream %u (host %u, %s) refused by its service", s->conn->id,
		  s->id, s->host_id, s->ops->name);
	send_ctl(s->conn, ADB_CMD_CLSE, 0, s->host_id);
	stream_remove(s);
}

void stream_send(struct stream *s, const uint8_t *data, size_t len)
{
	if (!stream_can_send(s) || len == 0 || len > s->conn->max_payload) {
		log_err("conn %lu: stream %u: internal error: bad stream_send (len %zu)",
			s->conn->id, s->id, len);
		abort();
	}
	if (s->conn->dack) {
		s->send_window -= (int64_t)len;
		s->wrte_pending = s->send_window <= 0;
	} else {
		s->wrte_pending = 1;
	}
	conn_write(s->conn, ADB_CMD_WRTE, s->id, s->host_id, data, len, s, 0);
}

/* The next queued host payload (delayed_ack) to the service. */
static void deliver_queued(struct stream *s)
{
	struct inq *q = s->inq;

	s->inq = q->next;
	if (s->inq == NULL)
		s->inq_tail = NULL;
	s->inq_bytes -= q->len;
	if (s->incap < q->len) {
		free(s->inbuf);
		s->incap = q->len;
		s->inbuf = xmalloc(s->incap);
	}
	memcpy(s->inbuf, q->data, q->len);
	s->inlen = q->len;
	free(q);
	s->in_busy = 1;
	stream_ref(s);
	s->ops->data(s, s->inbuf, s->inlen);
	stream_unref(s);
}

void stream_consumed(struct stream *s)
{
	if (!s->in_busy)
		return;
	s->in_busy = 0;
	if (s->closed || s->finishing)
		return;
	send_okay(s->conn, s->id, s->host_id, s->inlen);
	if (s->inq != NULL)
		deliver_queued(s);
}

void stream_kick(struct stream *s, const char *why)
{
	conn_close(s->conn, "%s", why);
}

void stream_finish(struct stream *s)
{
	if (s->opening) {
		stream_refused(s);
		return;
	}
	if (s->closed || s->finishing)
		return;
	s->finishing = 1;
	s->in_busy = 0;
	if (s->conn->cur_stream == s)
		s->conn->cur_stream = NULL;
	s->in_collecting = 0;
	if (!s->wrte_pending && !s->write_inflight)
		stream_send_close(s);
}

/* ---- incoming frames ---- */

/* Is `name` in the comma-separated list? */
static int has_feature(const char *list, size_t len, const char *name)
{
	size_t n = strlen(name), i = 0;

	while (i < len) {
		size_t j = i;

		while (j < len && list[j] != ',')
			j++;
		if (j - i == n && memcmp(list + i, name, n) == 0)
			return 1;
		i = j + 1;
	}
	return 0;
}

static void handle_cnxn(struct conn *c)
{
	struct adb_banner b;
	char banner[1024];   /* --name and --features are at most 200 characters each */
	uint32_t host_version = c->cur.arg0, host_max = c->cur.arg1;
	int n;

	if (host_version < ADB_VERSION_MIN) {
		conn_close(c, "host CNXN with version %#x, below %#x", host_version, ADB_VERSION_MIN);
		return;
	}
	if (host_max == 0) {
		conn_close(c, "host CNXN announces max payload 0");
		return;
	}
	c->dack = 0;
	if (adb_banner_parse((const char *)c->fbuf, c->flen, &b) == 0) {
		const char *f;
		size_t flen;

		c->dack = has_feature(g_opt.features, strlen(g_opt.features), "delayed_ack") &&
			  adb_banner_prop(&b, "features", &f, &flen) == 0 &&
			  has_feature(f, flen, "delayed_ack");
		log_info("conn %lu: CNXN from host: version %#x, max payload %u, banner \"%.*s:...:%.*s\"",
			 c->id, host_version, host_max, (int)b.state_len, b.state,
			 (int)(b.props_len > 300 ? 300 : b.props_len), b.props);
	} else {
		log_info("conn %lu: CNXN from host: version %#x, max payload %u, unparsable banner",
			 c->id, host_version, host_max);
	}
	if (c->online && c->nstreams > 0) {
		log_info("conn %lu: CNXN again: dropping %d streams", c->id, c->nstreams);
		while (c->nstreams > 0)
			stream_remove(c->streams[c->nstreams - 1]);
	}
	c->online = 1;
	c->version = host_version < ADB_VERSION ? host_version : ADB_VERSION;
	c->max_payload = host_max < g_opt.max_payload ? host_max : g_opt.max_payload;
	adb_reader_set_max_payload(&c->reader, c->max_payload > ADB_MAX_PAYLOAD_V1
					       ? c->max_payload : ADB_MAX_PAYLOAD_V1);
	n = snprintf(banner, sizeof(banner),
		     "device::ro.product.name=%s;ro.product.model=adbd-testguest;"
		     "ro.product.device=%s;features=%s", g_opt.name, g_opt.name, g_opt.features);
	if (n < 0 || (size_t)n >= sizeof(banner))
		n = (int)strlen(banner);
	conn_write(c, ADB_CMD_CNXN, ADB_VERSION, c->max_payload, banner, (size_t)n, NULL, 0);
}

static void handle_open(struct conn *c)
{
	uint32_t host_id = c->cur.arg0;
	const struct service_ops *ops = NULL;
	const char *name, *arg = NULL;
	struct stream *s;
	int rc;

	if (host_id == 0) {
		log_info("conn %lu: OPEN with local id 0 ignored", c->id);
		return;
	}
	c->fbuf[c->flen] = '\0'; /* fbuf has one spare byte */
	name = (const char *)c->fbuf;
	if ((c->cur.arg1 != 0) != c->dack) {   /* as adbd: a window exactly with delayed_ack */
		log_info("conn %lu: OPEN \"%.200s\" (host %u): window %u %s delayed_ack, refused",
			 c->id, name, host_id, c->cur.arg1, c->dack ? "with" : "without");
		send_ctl(c, ADB_CMD_CLSE, 0, host_id);
		return;
	}
	if (strncmp(name, "shell:", 6) == 0) {
		ops = &shell_service;
		arg = name + 6;
	} else if (strncmp(name, "exec:", 5) == 0) {
		ops = &exec_service;
		arg = name + 5;
	} else if (strncmp(name, "sync:", 5) == 0) {
		ops = &sync_service;
		arg = name + 5;
	} else if (strncmp(name, "tcp:", 4) == 0) {
		ops = &forward_service;
		arg = name + 4;
	} else if (strncmp(name, "root:", 5) == 0) {
		ops = &root_service;      /* as adbd: anything after the colon is ignored */
		arg = name + 5;
	} else if (strncmp(name, "unroot:", 7) == 0) {
		ops = &unroot_service;
		arg = name + 7;
	} else if (strncmp(name, "tcpip:", 6) == 0) {
		ops = &tcpip_service;
		arg = name + 6;
	} else if (strncmp(name, "usb:", 4) == 0) {
		ops = &usb_service;
		arg = name + 4;
	} else if (strncmp(name, "reboot:", 7) == 0) {
		ops = &reboot_service;
		arg = name + 7;
	} else if (strcmp(name, "reconnect") == 0) {
		ops = &reconnect_service;
		arg = "";
	}
	if (ops == NULL) {
		log_info("conn %lu: OPEN \"%.200s\" (host %u): unknown service, refused", c->id,
			 name, host_id);
		send_ctl(c, ADB_CMD_CLSE, 0, host_id);
		return;
	}
	if (c->nstreams >= MAX_STREAMS) {
		log_err("conn %lu: OPEN \"%.200s\" (host %u): %d streams open already, refused",
			c->id, name, host_id, c->nstreams);
		send_ctl(c, ADB_CMD_CLSE, 0, host_id);
		return;
	}
	s = xcalloc(1, sizeof(*s));
	s->conn = c;
	conn_ref(c);
	s->refs = 1;
	s->ops = ops;
	s->host_id = host_id;
	s->send_window = c->cur.arg1;
	s->id = new_stream_id(c);
	log_debug("conn %lu: OPEN \"%.200s\": stream %u (host %u)", c->id, name, s->id, host_id);
	rc = ops->start(s, arg);
	if (rc == STREAM_START_LATER) {
		s->opening = 1;
		c->streams[c->nstreams++] = s;
		return;
	}
	if (rc != 0) {
		log_info("conn %lu: OPEN \"%.200s\" (host %u): service failed to start, refused",
			 c->id, name, host_id);
		send_ctl(c, ADB_CMD_CLSE, 0, host_id);
		s->closed = 1;
		stream_unref(s);
		return;
	}
	c->streams[c->nstreams++] = s;
	send_okay(c, s->id, host_id, DACK_WINDOW);
	stream_ref(s);
	if (!s->closed)
		ops->started(s);
	stream_unref(s);
}

static void handle_okay(struct conn *c)
{
	struct stream *s = find_stream(c, c->cur.arg1);

	if (s == NULL || s->host_id != c->cur.arg0) {
		log_debug("conn %lu: OKAY for unknown stream %u (host %u) ignored", c->id,
			  c->cur.arg1, c->cur.arg0);
		return;
	}
	if (c->dack) {
		uint32_t acked;

		if (c->fbuf == NULL || c->flen != 4) {
			log_err("conn %lu: stream %u: delayed_ack OKAY with %u bytes, not 4; closing the stream",
				c->id, s->id, c->cur.data_length);
			stream_finish(s);
			return;
		}
		acked = (uint32_t)c->fbuf[0] | (uint32_t)c->fbuf[1] << 8 |
			(uint32_t)c->fbuf[2] << 16 | (uint32_t)c->fbuf[3] << 24;
		s->send_window += acked;
		if (!s->wrte_pending || s->send_window <= 0)
			return;
	} else if (!s->wrte_pending) {
		log_debug("conn %lu: stream %u: OKAY without a WRTE in flight ignored", c->id, s->id);
		return;
	}
	s->wrte_pending = 0;
	stream_acked(s);
}

static void handle_clse(struct conn *c)
{
	struct stream *s;

	if (c->cur.arg1 == 0)
		return;
	s = find_stream(c, c->cur.arg1);
	if (s == NULL || (c->cur.arg0 != 0 && s->host_id != c->cur.arg0)) {
		log_debug("conn %lu: CLSE for unknown stream %u (host %u) ignored", c->id,
			  c->cur.arg1, c->cur.arg0);
		return;
	}
	log_debug("conn %lu: stream %u (host %u, %s) closed by the host", c->id, s->id,
		  s->host_id, s->ops->name);
	stream_remove(s);
}

static void wrte_header(struct conn *c)
{
	struct stream *s = find_stream(c, c->cur.arg1);
	uint32_t len = c->cur.data_length;

	c->cur_stream = NULL;
	if (s == NULL || s->host_id != c->cur.arg0) {
		log_debug("conn %lu: WRTE for unknown stream %u (host %u) dropped", c->id,
			  c->cur.arg1, c->cur.arg0);
		return;
	}
	if (s->finishing || s->opening)
		return;
	if (c->dack && s->in_busy && len == 0) {
		send_okay(c, s->id, s->host_id, 0);     /* nothing to consume */
		return;
	}
	if (c->dack && s->in_busy) {
		if (s->inq_bytes + len > DACK_WINDOW + c->max_payload) {
			log_err("conn %lu: stream %u (host %u): host sent past its delayed_ack window; "
				"closing the stream", c->id, s->id, s->host_id);
			stream_finish(s);
			return;
		}
		s->inq_filling = xmalloc(sizeof(*s->inq_filling) + len);
		s->inq_filling->next = NULL;
		s->inq_filling->len = len;
		c->cur_stream = s;
		return;
	}
	if (s->in_busy || s->in_collecting) {
		log_err("conn %lu: stream %u (host %u): host sent WRTE before our OKAY; closing the stream",
			c->id, s->id, s->host_id);
		stream_finish(s);
		return;
	}
	if (s->incap < len) {
		free(s->inbuf);
		s->incap = len > c->max_payload ? len : c->max_payload;
		s->inbuf = xmalloc(s->incap);
	}
	s->inlen = len;
	s->in_collecting = 1;
	c->cur_stream = s;
}

static void wrte_end(struct conn *c)
{
	struct stream *s = c->cur_stream;

	c->cur_stream = NULL;
	if (s != NULL && s->inq_filling != NULL) {
		if (s->inq_tail != NULL)
			s->inq_tail->next = s->inq_filling;
		else
			s->inq = s->inq_filling;
		s->inq_tail = s->inq_filling;
		s->inq_bytes += s->inq_filling->len;
		s->inq_filling = NULL;
		return;
	}
	if (s == NULL || !s->in_collecting)
		return;
	s->in_collecting = 0;
	s->in_busy = 1;
	if (s->inlen == 0) {
		stream_consumed(s);
		return;
	}
	stream_ref(s);
	s->ops->data(s, s->inbuf, s->inlen);
	stream_unref(s);
}

static void on_header(struct conn *c, const struct adb_frame_event *fe)
{
	c->cur = fe->header;
	c->cur_stream = NULL;
	free(c->fbuf);
	c->fbuf = NULL;
	c->flen = 0;
	if (g_opt.verbose)
		log_debug("conn %lu: <- %s arg0=%u arg1=%u len=%u", c->id,
			  adb_command_name(c->cur.command), c->cur.arg0, c->cur.arg1,
			  c->cur.data_length);
	switch (c->cur.command) {
	case ADB_CMD_CNXN:
		c->fbuf = xmalloc(c->cur.data_length + 1);
		c->flen = c->cur.data_length;
		break;
	case ADB_CMD_OPEN:
		if (c->online) {
			c->fbuf = xmalloc(c->cur.data_length + 1);
			c->flen = c->cur.data_length;
		}
		break;
	case ADB_CMD_OKAY:
		if (c->online && c->dack && c->cur.data_length <= 4) {
			c->fbuf = xmalloc(c->cur.data_length + 1);
			c->flen = c->cur.data_length;
		}
		break;
	case ADB_CMD_WRTE:
		if (c->online)
			wrte_header(c);
		break;
	default:
		break;
	}
}

static void on_payload(struct conn *c, const struct adb_frame_event *fe)
{
	if (c->fbuf != NULL) {
		memcpy(c->fbuf + fe->payload_offset, fe->data, fe->len);
	} else if (c->cur_stream != NULL) {
		struct stream *s = c->cur_stream;

		memcpy((s->inq_filling != NULL ? s->inq_filling->data : s->inbuf) +
		       fe->payload_offset, fe->data, fe->len);
	}
}

static void on_end(struct conn *c)
{
	switch (c->cur.command) {
	case ADB_CMD_CNXN:
		handle_cnxn(c);
		break;
	case ADB_CMD_AUTH:
	case ADB_CMD_STLS:
		log_info("conn %lu: %s from host ignored", c->id, adb_command_name(c->cur.command));
		break;
	default:
		if (!c->online) {
			log_info("conn %lu: %s before CNXN ignored", c->id,
				 adb_command_name(c->cur.command));
			break;
		}
		switch (c->cur.command) {
		case ADB_CMD_OPEN:
			handle_open(c);
			break;
		case ADB_CMD_OKAY:
			handle_okay(c);
			break;
		case ADB_CMD_WRTE:
			wrte_end(c);
			break;
		case ADB_CMD_CLSE:
			handle_clse(c);
			break;
		default:
			break;
		}
	}
	free(c->fbuf);
	c->fbuf = NULL;
	c->flen = 0;
}

/* ---- reading ---- */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)suggested;
	struct conn *c = h->data;

	if (c->hybrid) {
		/* one byte at a time: nothing after the newline may be consumed */
		*buf = uv_buf_init(&c->hs_byte, 1);
		return;
	}
	if (c->rbuf == NULL)
		c->rbuf = xmalloc(READ_BUF_SIZE);
	*buf = uv_buf_init((char *)c->rbuf, READ_BUF_SIZE);
}

static void hybrid_byte(struct conn *c)
{
	const char *why = NULL;
	uint32_t port = 0;
	int rc = hybrid_hs_feed(&c->hs, c->hs_byte, &port, &why);
	char reply[32];
	int n;

	if (rc == 0)
		return;
	if (rc < 0) {
		char shown[4 * HYBRID_CMD_MAX + 1];
		size_t o = 0;

		for (size_t i = 0; i < c->hs.len; i++) {
			unsigned char ch = (unsigned char)c->hs.buf[i];

			if (ch >= 0x20 && ch < 0x7f && ch != '\\')
				shown[o++] = (char)ch;
			else
				o += (size_t)snprintf(shown + o, sizeof(shown) - o, "\\x%02x", ch);
		}
		shown[o] = '\0';
		conn_close(c, "bad hybrid vsock command \"%s\": %s", shown, why);
		return;
	}
	c->hybrid = 0;
	n = snprintf(reply, sizeof(reply), "OK %u\n", hybrid_port_counter++);
	log_info("conn %lu: hybrid CONNECT %u -> %.*s", c->id, port, n - 1, reply);
	conn_write(c, 0, 0, 0, reply, (size_t)n, NULL, 1);
}

static void read_cb(uv_stream_t *h, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = h->data;
	struct adb_frame_event fe;
	const uint8_t *p;
	size_t len;

	if (nread == 0 || c->closing)
		return;
	if (nread < 0) {
		if (nread == UV_EOF)
			conn_close(c, "host closed the connection%s",
				   c->hybrid ? " during the hybrid handshake" : "");
		else
			conn_close(c, "read failed: %s", uv_strerror((int)nread));
		return;
	}
	if (c->hybrid) {
		hybrid_byte(c);
		return;
	}
	conn_ref(c);
	p = (const uint8_t *)buf->base;
	len = (size_t)nread;
	while (!c->closing) {
		enum adb_reader_event ev = adb_reader_next(&c->reader, &p, &len, &fe);

		if (ev == ADB_EV_NEED_MORE)
			break;
		switch (ev) {
		case ADB_EV_HEADER:
			on_header(c, &fe);
			break;
		case ADB_EV_PAYLOAD:
			on_payload(c, &fe);
			break;
		case ADB_EV_END:
			on_end(c);
			break;
		case ADB_EV_ERROR:
		default:
			conn_close(c, "bad frame from host: %s", adb_strerror(fe.error));
			break;
		}
	}
	conn_unref(c);
}

static void resume_reading(struct conn *c)
{
	int err;

	c->read_paused = 0;
	err = uv_read_start(&c->h.stream, alloc_cb, read_cb);
	if (err < 0)
		conn_close(c, "read start failed: %s", uv_strerror(err));
	else
		log_debug("conn %lu: replies drained: reading again", c->id);
}

void conn_start(uv_stream_t *handle, int hybrid, const char *peer)
{
	struct conn *c = handle->data;
	int err;

	c->id = ++conn_counter;
	c->hybrid = hybrid;
	c->version = ADB_VERSION;
	c->max_payload = g_opt.max_payload;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	adb_reader_init(&c->reader, g_opt.max_payload);
	c->next = conns;
	if (conns)
		conns->prev = c;
	conns = c;
	log_info("conn %lu (%s): connected", c->id, c->peer);
	err = uv_read_start(&c->h.stream, alloc_cb, read_cb);
	if (err < 0)
		conn_close(c, "read start failed: %s", uv_strerror(err));
}
