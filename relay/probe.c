/* SPDX-License-Identifier: Apache-2.0 */
/*
 * probe.c - one health probe of a guest (see probe.h): the transport
 * connection, and in adb mode the exchange with the guest's adbd as a
 * small state machine, one stage per awaited answer:
 *
 *   CONNECTING -> CNXN -> OPEN -> OUTPUT -> done
 *                   \-> AUTH or STLS: done (adbd answered, no key)
 *
 * Frames are read with adbproto's incremental reader; we announce a max
 * payload of 4096, so no payload may be larger, and only the first bytes
 * of the device's banner and of the shell's output are kept. Every frame
 * is checked: magic, command, length, checksum, the stage it arrives in and
 * the stream ids it names. All memory is the probe itself: read buffer,
 * frames we send, write requests.
 */
#include "relay/probe.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adbproto/adbproto.h"
#include "relay/sys/sys.h"

#define PROBE_BANNER      "host::adbd-relay-probe"
#define PROBE_MAX_PAYLOAD ADB_MAX_PAYLOAD_V1  /* what we announce in CNXN */
#define PROBE_LOCAL_ID    1u
#define STATE_MAX         23                  /* longest banner state taken */
#define KEEP_MAX          64                  /* banner and output bytes kept */
#define OKAYS_IN_FLIGHT   4

enum stage { ST_CONNECTING, ST_CNXN, ST_OPEN, ST_OUTPUT, ST_DONE };

struct probe {
	struct probe_params pp;
	probe_cb cb;
	void *data;
	int handles_open;            /* deadline, and pipe once connected */
	uint64_t t0;                 /* uv_hrtime() at start */
	enum stage stage;
	struct vsock_connect *conn;  /* while connecting */
	uv_timer_t deadline;
	uv_pipe_t pipe;
	int pipe_open;

	struct adb_reader rd;
	struct adb_header cur;       /* the frame being read */
	uint32_t sum;                /* its payload's byte sum so far */
	uint32_t version;            /* negotiated once the device's CNXN is in */
	uint32_t remote_id;          /* the device's id of our stream */
	char kept[KEEP_MAX];         /* start of the CNXN banner or shell output */
	size_t kept_len;
	int kept_cut;                /* more arrived than kept */
	char state[4 * STATE_MAX + 1]; /* the device's connection state, escaped */

	uv_write_t w_cnxn, w_open, w_okay[OKAYS_IN_FLIGHT];
	int okay_busy[OKAYS_IN_FLIGHT];
	uint8_t cnxn[ADB_HEADER_SIZE + sizeof(PROBE_BANNER) - 1];
	uint8_t open[ADB_HEADER_SIZE + sizeof(PROBE_SERVICE)];
	uint8_t okay[ADB_HEADER_SIZE];
	uint8_t rbuf[4096];
};

const char *probe_mode_name(enum probe_mode m)
{
	return m == PROBE_ADB ? "adb" : "connect";
}

int probe_mode_parse(const char *s, enum probe_mode *m)
{
	if (strcmp(s, "connect") == 0)
		*m = PROBE_CONNECT;
	else if (strcmp(s, "adb") == 0)
		*m = PROBE_ADB;
	else
		return -1;
	return 0;
}

static const char *stage_text(enum stage st)
{
	switch (st) {
	case ST_CONNECTING: return "while connecting";
	case ST_CNXN:       return "waiting for the guest's CNXN";
	case ST_OPEN:       return "waiting for the answer to OPEN";
	case ST_OUTPUT:     return "waiting for the shell's output";
	case ST_DONE:       return "after the end";
	}
	return "?";
}

/* ---- the end: one result, then every handle closed ---- */

static void on_handle_closed(uv_handle_t *h)
{
	struct probe *p = h->data;

	if (--p->handles_open == 0)
		free(p);
}

static void release(struct probe *p)
{
	p->stage = ST_DONE;
	if (p->conn != NULL) {
		vsock_connect_cancel(p->conn);
		p->conn = NULL;
	}
	uv_close((uv_handle_t *)&p->deadline, on_handle_closed);
	if (p->pipe_open) {
		p->pipe_open = 0;
		uv_close((uv_handle_t *)&p->pipe, on_handle_closed); /* cancels writes */
	}
}

static void finish(struct probe *p, int ok, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void finish(struct probe *p, int ok, const char *fmt, ...)
{
	struct probe_result res;
	va_list ap;

	if (p->stage == ST_DONE)
		return;
	memset(&res, 0, sizeof(res));
	res.ok = ok;
	res.rtt_ms = ok ? (double)(uv_hrtime() - p->t0) / 1e6 : 0.0;
	va_start(ap, fmt);
	vsnprintf(res.detail, sizeof(res.detail), fmt, ap);
	va_end(ap);
	release(p);   /* the memory stays until the handles have closed */
	p->cb(p->data, &res);
}

void probe_cancel(struct probe *p)
{
	if (p->stage == ST_DONE)
		return;
	release(p);   /* no callback */
}

static void on_deadline(uv_timer_t *t)
{
	struct probe *p = t->data;

	finish(p, 0, "timeout after %u ms %s", p->pp.timeout_ms, stage_text(p->stage));
}

/* ---- what we send ---- */

static void on_written(uv_write_t *req, int status)
{
	struct probe *p = req->data;

	for (int i = 0; i < OKAYS_IN_FLIGHT; i++)
		if (req == &p->w_okay[i])
			p->okay_busy[i] = 0;
	if (status < 0 && status != UV_ECANCELED)
		finish(p, 0, "write failed %s: %s", stage_text(p->stage), uv_strerror(status));
}

/* Encode a frame into BUF, room for the header and LEN bytes. Returns its size. */
static size_t encode_frame(const struct probe *p, uint8_t *buf, uint32_t cmd, uint32_t arg0,
			   uint32_t arg1, const void *payload, size_t len)
{
	struct adb_header h;
	uint32_t check = 0;

	if (cmd == ADB_CMD_CNXN || p->version < ADB_VERSION_SKIP_CHECKSUM)
		check = adb_checksum(0, payload, len);
	adb_header_init(&h, cmd, arg0, arg1, (uint32_t)len, check);
	adb_header_encode(&h, buf);
	if (len > 0)
		memcpy(buf + ADB_HEADER_SIZE, payload, len);
	return ADB_HEADER_SIZE + len;
}

/* BUF stays untouched until on_written. */
static int send_bytes(struct probe *p, uv_write_t *req, uint8_t *buf, size_t len)
{
	uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);

	req->data = p;
	return uv_write(req, (uv_stream_t *)&p->pipe, &b, 1, on_written);
}

/* OKAY for the WRTE just read: the bytes encoded when the stream opened. */
static int send_okay(struct probe *p)
{
	for (int i = 0; i < OKAYS_IN_FLIGHT; i++) {
		if (p->okay_busy[i])
			continue;
		p->okay_busy[i] = 1;
		return send_bytes(p, &p->w_okay[i], p->okay, sizeof(p->okay));
	}
	return UV_ENOBUFS;
}

/* ---- what we read ---- */

/* Printable text of the kept bytes, for a result line. */
static void kept_text(const struct probe *p, char *out, size_t outlen)
{
	size_t o = log_escape(out, outlen, p->kept, p->kept_len);

	if (p->kept_cut && o + 4 < outlen)
		snprintf(out + o, outlen - o, "...");
}

/* Is a frame with this header expected now, naming our stream? */
static int frame_expected(const struct probe *p, const struct adb_header *h)
{
	switch (p->stage) {
	case ST_CNXN:
		return h->command == ADB_CMD_CNXN || h->command == ADB_CMD_AUTH ||
		       h->command == ADB_CMD_STLS;
	case ST_OPEN:
		return (h->command == ADB_CMD_OKAY && h->arg0 != 0 && h->arg1 == PROBE_LOCAL_ID) ||
		       (h->command == ADB_CMD_CLSE && h->arg1 == PROBE_LOCAL_ID);
	case ST_OUTPUT:
		return (h->command == ADB_CMD_WRTE || h->command == ADB_CMD_CLSE) &&
		       h->arg0 == p->remote_id && h->arg1 == PROBE_LOCAL_ID;
	default:
		return 0;
	}
}

static void on_header(struct probe *p, const struct adb_header *h)
{
	p->cur = *h;
	p->sum = 0;
	if (!frame_expected(p, h)) {
		finish(p, 0, "unexpected %s(%u, %u) from the guest %s",
		       adb_command_name(h->command), h->arg0, h->arg1, stage_text(p->stage));
		return;
	}
	if ((h->command == ADB_CMD_OKAY || h->command == ADB_CMD_CLSE) && h->data_length != 0)
		finish(p, 0, "%s with a %u-byte payload from the guest %s",
		       adb_command_name(h->command), h->data_length, stage_text(p->stage));
}

static void on_payload(struct probe *p, const uint8_t *data, size_t len)
{
	size_t room = sizeof(p->kept) - p->kept_len;
	size_t n = len < room ? len : room;

	p->sum = adb_checksum(p->sum, data, len);
	if (p->cur.command != ADB_CMD_CNXN && p->cur.command != ADB_CMD_WRTE)
		return;
	memcpy(p->kept + p->kept_len, data, n);
	p->kept_len += n;
	p->kept_cut |= n < len;
}

/* data_check holds the byte sum below ADB_VERSION_SKIP_CHECKSUM; above it
 * a sender may put 0 instead. */
static int checksum_ok(const struct probe *p, uint32_t version)
{
	return p->cur.data_check == p->sum ||
	       (p->cur.data_check == 0 && version >= ADB_VERSION_SKIP_CHECKSUM);
}

static void got_cnxn(struct probe *p)
{
	const struct adb_header *h = &p->cur;
	struct adb_banner b;
	char text[4 * KEEP_MAX + 8];

	if (h->arg0 < ADB_VERSION_MIN) {
		finish(p, 0, "guest CNXN with version %#x, below %#x", h->arg0, ADB_VERSION_MIN);
		return;
	}
	if (h->arg1 == 0) {
		finish(p, 0, "guest CNXN announces max payload 0");
		return;
	}
	if (adb_banner_parse(p->kept, p->kept_len, &b) != 0 || b.state_len == 0 ||
	    b.state_len > STATE_MAX) {
		kept_text(p, text, sizeof(text));
		finish(p, 0, "guest CNXN banner \"%.60s\" names no state", text);
		return;
	}
	log_escape(p->state, sizeof(p->state), b.state, b.state_len);
	p->version = h->arg0 < ADB_VERSION ? h->arg0 : ADB_VERSION;
	p->kept_len = 0;
	p->kept_cut = 0;
	encode_frame(p, p->open, ADB_CMD_OPEN, PROBE_LOCAL_ID, 0, PROBE_SERVICE,
		     sizeof(PROBE_SERVICE));
	if (send_bytes(p, &p->w_open, p->open, sizeof(p->open)) != 0) {
		finish(p, 0, "cannot send OPEN");
		return;
	}
	p->stage = ST_OPEN;
}

/* The echo, maybe with a terminal's \r\n, and nothing else. */
static int echo_ok(const struct probe *p)
{
	size_t n = sizeof(PROBE_ECHO) - 1;

	if (p->kept_cut || p->kept_len < n || memcmp(p->kept, PROBE_ECHO, n) != 0)
		return 0;
	return (p->kept_len == n + 1 && p->kept[n] == '\n') ||
	       (p->kept_len == n + 2 && p->kept[n] == '\r' && p->kept[n + 1] == '\n');
}

static void got_output_end(struct probe *p)
{
	char text[4 * KEEP_MAX + 8];

	if (!echo_ok(p)) {
		kept_text(p, text, sizeof(text));
		finish(p, 0, "unexpected shell output \"%.80s\" (want \"%s\\n\")", text,
		       PROBE_ECHO);
		return;
	}
	finish(p, 1, "adbd answered (%s), shell echo ok", p->state);
}

/* A whole frame has been read and its header was expected. */
static void on_frame(struct probe *p)
{
	const struct adb_header *h = &p->cur;
	uint32_t version = h->command == ADB_CMD_CNXN && h->arg0 < ADB_VERSION ? h->arg0
									   : p->version;

	if (!checksum_ok(p, version)) {
		finish(p, 0, "bad checksum in %s from the guest (%#x, payload sums to %#x)",
		       adb_command_name(h->command), h->data_check, p->sum);
		return;
	}
	switch (h->command) {
	case ADB_CMD_CNXN:
		got_cnxn(p);
		break;
	case ADB_CMD_AUTH:
		if (h->arg0 != ADB_AUTH_TOKEN)
			finish(p, 0, "guest AUTH of type %u instead of a token", h->arg0);
		else
			finish(p, 1, "adbd answered, auth required "
				  "(AUTH token; the relay has no key)");
		break;
	case ADB_CMD_STLS:
		finish(p, 1, "adbd answered, TLS required (STLS; the relay has no key)");
		break;
	case ADB_CMD_OKAY:
		p->remote_id = h->arg0;
		encode_frame(p, p->okay, ADB_CMD_OKAY, PROBE_LOCAL_ID, p->remote_id, NULL, 0);
		p->stage = ST_OUTPUT;
		break;
	case ADB_CMD_WRTE:
		if (send_okay(p) != 0)
			finish(p, 0, "guest sends WRTE without waiting for OKAY");
		break;
	case ADB_CMD_CLSE:
		if (p->stage == ST_OPEN)
			finish(p, 0, "guest refused OPEN \"%s\"", PROBE_SERVICE);
		else
			got_output_end(p);
		break;
	default:
		break;
	}
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct probe *p = h->data;

	(void)suggested;
	*buf = uv_buf_init((char *)p->rbuf, sizeof(p->rbuf));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct probe *p = st->data;
	const uint8_t *data = (const uint8_t *)buf->base;
	size_t len = nread > 0 ? (size_t)nread : 0;
	struct adb_frame_event fe;

	if (nread < 0) {
		if (nread == UV_EOF)
			finish(p, 0, "guest closed the connection %s", stage_text(p->stage));
		else
			finish(p, 0, "read failed %s: %s", stage_text(p->stage),
			       uv_strerror((int)nread));
		return;
	}
	while (p->stage != ST_DONE) {
		switch (adb_reader_next(&p->rd, &data, &len, &fe)) {
		case ADB_EV_NEED_MORE:
			return;
		case ADB_EV_HEADER:
			on_header(p, &fe.header);
			break;
		case ADB_EV_PAYLOAD:
			on_payload(p, fe.data, fe.len);
			break;
		case ADB_EV_END:
			on_frame(p);
			break;
		case ADB_EV_ERROR:
			finish(p, 0, "bad frame from the guest %s: %s", stage_text(p->stage),
			       adb_strerror(fe.error));
			break;
		}
	}
}

/* ---- the start ---- */

static void adb_begin(struct probe *p, int fd)
{
	int rc = uv_pipe_init(p->deadline.loop, &p->pipe, 0);

	if (rc != 0) {
		close(fd);
		finish(p, 0, "cannot use the connection: %s", uv_strerror(rc));
		return;
	}
	p->pipe.data = p;
	p->pipe_open = 1;
	p->handles_open++;
	rc = uv_pipe_open(&p->pipe, fd);
	if (rc != 0) {
		close(fd);   /* not the pipe's yet */
		finish(p, 0, "cannot use the connection: %s", uv_strerror(rc));
		return;
	}
	p->stage = ST_CNXN;
	rc = uv_read_start((uv_stream_t *)&p->pipe, on_alloc, on_read);
	encode_frame(p, p->cnxn, ADB_CMD_CNXN, ADB_VERSION, PROBE_MAX_PAYLOAD, PROBE_BANNER,
		     sizeof(PROBE_BANNER) - 1);
	if (rc == 0)
		rc = send_bytes(p, &p->w_cnxn, p->cnxn, sizeof(p->cnxn));
	if (rc != 0)
		finish(p, 0, "cannot start the adb exchange: %s", uv_strerror(rc));
}

static void on_connected(void *data, int fd, int status)
{
	struct probe *p = data;

	p->conn = NULL;
	if (status != 0) {
		/* connect mode keeps the words it always had */
		if (p->pp.mode == PROBE_CONNECT)
			finish(p, 0, "%s", strerror(-status));
		else
			finish(p, 0, "connect: %s", strerror(-status));
		return;
	}
	if (p->pp.mode == PROBE_CONNECT) {
		close(fd);
		finish(p, 1, "connected");
		return;
	}
	adb_begin(p, fd);
}

int probe_start(uv_loop_t *loop, const struct vsock_target *t, const struct probe_params *pp,
		probe_cb cb, void *data, struct probe **out)
{
	struct probe *p = calloc(1, sizeof(*p));
	int rc;

	if (p == NULL)
		return -ENOMEM;
	p->pp = *pp;
	p->cb = cb;
	p->data = data;
	p->stage = ST_CONNECTING;
	p->version = ADB_VERSION;
	adb_reader_init(&p->rd, PROBE_MAX_PAYLOAD);
	uv_timer_init(loop, &p->deadline);
	p->deadline.data = p;
	p->handles_open = 1;
	p->t0 = uv_hrtime();
	rc = vsock_connect_start(loop, t, pp->connect_timeout_ms, on_connected, p, &p->conn);
	if (rc != 0) {
		p->conn = NULL;
		release(p);   /* no callback */
		return rc;
	}
	if (pp->mode == PROBE_ADB && pp->timeout_ms > 0)
		uv_timer_start(&p->deadline, on_deadline, pp->timeout_ms, 0);
	*out = p;
	return 0;
}
