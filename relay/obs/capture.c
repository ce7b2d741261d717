/* SPDX-License-Identifier: Apache-2.0 */
/*
 * capture.c - pcap streams of a route's sessions to control-socket
 * subscribers; see obs.h. Packets are made by pcap.c into one scratch
 * buffer and each batch goes out as one uv_write of its own copy, counted
 * (with its request) against the subscriber's CAPTURE_QUEUE_MAX until
 * written; a subscriber lives until its last write completes.
 */
#include "relay/obs/obs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "relay/obs/pcap.h"
#include "relay/sys/sys.h"

struct capture_flow {
	struct capture_flow *next;
	uint32_t session;
	uint8_t started[2];              /* a header of this direction was recorded */
	struct pcap_flow pcap;
};

struct capture_sub {
	struct capture_sub *next;
	uv_stream_t *stream;             /* NULL once unsubscribed */
	char route[OBS_ROUTE_NAME_MAX];
	struct capture_flow *flows;
	unsigned nflows;
	struct capture_counts counts;
	uint64_t sent;                   /* bytes queued, in all */
	unsigned writes;                 /* queued, not yet completed */
};

struct bytes_write {
	uv_write_t req;
	struct capture_sub *sub;
	size_t size;                     /* what it counts in the queue */
	uint8_t data[];
};

static struct capture_sub *subs;
static uint8_t scratch[PCAP_RECORD_MAX > PCAP_CLOSE_MAX ? PCAP_RECORD_MAX : PCAP_CLOSE_MAX];

static void on_bytes_written(uv_write_t *req, int status)
{
	struct bytes_write *w = (struct bytes_write *)req;
	struct capture_sub *s = w->sub;

	s->counts.queued -= w->size;
	s->writes--;
	if (status == 0)
		s->counts.written += w->size - sizeof(*w);
	free(w);
	if (s->stream == NULL && s->writes == 0)
		free(s);
}

/* Queue n bytes (whole packets) to s, or count them lost. */
static void emit(struct capture_sub *s, const uint8_t *p, size_t n)
{
	size_t size = sizeof(struct bytes_write) + n;
	struct bytes_write *w;
	uv_buf_t buf;

	if (n == 0)
		return;
	if (s->counts.queued + size > CAPTURE_QUEUE_MAX || (w = malloc(size)) == NULL) {
		s->counts.lost += n;
		return;
	}
	memcpy(w->data, p, n);
	w->sub = s;
	w->size = size;
	buf = uv_buf_init((char *)w->data, (unsigned)n);
	if (uv_write(&w->req, s->stream, &buf, 1, on_bytes_written) != 0) {
		free(w);
		s->counts.lost += n;
		return;
	}
	s->counts.queued += size;
	s->writes++;
	s->sent += n;
}

struct capture_sub *capture_subscribe(uv_stream_t *stream, const char *route)
{
	struct capture_sub *s = calloc(1, sizeof(*s));
	uint8_t hdr[PCAP_FILE_HEADER_LEN];

	if (s == NULL)
		return NULL;
	s->stream = stream;
	snprintf(s->route, sizeof(s->route), "%s", route);
	emit(s, hdr, pcap_file_header(hdr));
	s->next = subs;
	subs = s;
	return s;
}

void capture_unsubscribe(struct capture_sub *sub)
{
	for (struct capture_sub **pp = &subs; *pp; pp = &(*pp)->next)
		if (*pp == sub) {
			*pp = sub->next;
			break;
		}
	/* a local user can subscribe and hang up at will */
	log_limited(LOG_LVL_INFO, "control", "capture ended",
		    "control: capture of route %s ended: %llu bytes sent, %llu lost to a slow reader",
		    sub->route, (unsigned long long)sub->sent, (unsigned long long)sub->counts.lost);
	while (sub->flows != NULL) {
		struct capture_flow *f = sub->flows;

		sub->flows = f->next;
		free(f);
	}
	sub->stream = NULL;
	if (sub->writes == 0)
		free(sub);       /* else the last write's completion frees it */
}

void capture_get_counts(const struct capture_sub *sub, struct capture_counts *out)
{
	*out = sub->counts;
}

int capture_wanted(const char *route)
{
	for (const struct capture_sub *s = subs; s; s = s->next)
		if (strcmp(s->route, route) == 0)
			return 1;
	return 0;
}

static struct capture_flow **flow_slot(struct capture_sub *s, uint32_t session)
{
	struct capture_flow **pp = &s->flows;

	while (*pp != NULL && (*pp)->session != session)
		pp = &(*pp)->next;
	return pp;
}

/* The session's flow, opened (SYN, SYN-ACK, ACK) if this is its first
 * header since s subscribed; NULL when s follows too many already. */
static struct capture_flow *flow_at_header(struct capture_sub *s, uint32_t session,
					   const struct timeval *ts)
{
	struct capture_flow **pp = flow_slot(s, session), *f = *pp;

	if (f != NULL)
		return f;
	if (s->nflows == CAPTURE_FLOWS_MAX || (f = calloc(1, sizeof(*f))) == NULL)
		return NULL;
	f->session = session;
	pcap_flow_init(&f->pcap, session);
	emit(s, scratch, pcap_flow_open(&f->pcap, ts, scratch));
	*pp = f;
	s->nflows++;
	return f;
}

/* Record len bytes of one direction (p NULL: zeros). */
static void record(struct capture_sub *s, struct capture_flow *f, int from_guest,
		   const struct timeval *ts, const uint8_t *p, size_t len)
{
	static const uint8_t zeros[4096];

	while (len > 0) {
		size_t take = p != NULL || len < sizeof(zeros) ? len : sizeof(zeros);
		size_t used, n;

		n = pcap_flow_data(&f->pcap, from_guest, ts, p != NULL ? p : zeros, take, &used,
				   scratch, sizeof(scratch));
		emit(s, scratch, n);
		len -= used;
		if (p != NULL)
			p += used;
	}
}

void capture_header(const char *route, uint32_t session, int from_guest,
		    const uint8_t raw[ADB_HEADER_SIZE])
{
	struct timeval ts;

	gettimeofday(&ts, NULL);
	for (struct capture_sub *s = subs; s; s = s->next) {
		struct capture_flow *f;

		if (strcmp(s->route, route) != 0)
			continue;
		f = flow_at_header(s, session, &ts);
		if (f == NULL) {
			s->counts.lost += ADB_HEADER_SIZE;
			continue;
		}
		f->started[from_guest != 0] = 1;
		record(s, f, from_guest, &ts, raw, ADB_HEADER_SIZE);
	}
}

void capture_payload(const char *route, uint32_t session, int from_guest,
		     const void *p, size_t len)
{
	struct timeval ts;

	gettimeofday(&ts, NULL);
	for (struct capture_sub *s = subs; s; s = s->next) {
		struct capture_flow *f;

		if (strcmp(s->route, route) != 0 || (f = *flow_slot(s, session)) == NULL ||
		    !f->started[from_guest != 0])
			continue;      /* mid-frame when the capture began */
		record(s, f, from_guest, &ts, p, len);
	}
}

void capture_session_end(const char *route, uint32_t session)
{
	struct timeval ts;

	gettimeofday(&ts, NULL);
	for (struct capture_sub *s = subs; s; s = s->next) {
		struct capture_flow **pp, *f;

		if (strcmp(s->route, route) != 0 || (f = *(pp = flow_slot(s, session))) == NULL)
			continue;
		emit(s, scratch, pcap_flow_close(&f->pcap, &ts, scratch));
		*pp = f->next;
		s->nflows--;
		free(f);
	}
}
