/* SPDX-License-Identifier: Apache-2.0 */
/*
 * tap.c - trace lines to the log and to control-socket subscribers; see
 * obs.h. Each line to a subscriber is one uv_write of its own copy, counted
 * (with its request) against the subscriber's TAP_QUEUE_MAX until written;
 * a subscriber lives until its last line is written or cancelled.
 */
#include "relay/obs/obs.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relay/sys/sys.h"

#define LINE_MAX_LEN 512

struct tap_sub {
	struct tap_sub *next;
	uv_stream_t *stream;             /* NULL once unsubscribed */
	char route[OBS_ROUTE_NAME_MAX];  /* empty: every route */
	unsigned long dropped;           /* lines lost since the last one sent */
	struct tap_counts counts;
	unsigned writes;                 /* lines queued, not yet completed */
};

struct line_write {
	uv_write_t req;
	struct tap_sub *sub;
	size_t size;                     /* what it counts in the queue */
	char text[];
};

static struct tap_sub *subs;

struct tap_sub *tap_subscribe(uv_stream_t *stream, const char *route)
{
	struct tap_sub *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->stream = stream;
	if (route != NULL)
		snprintf(s->route, sizeof(s->route), "%s", route);
	s->next = subs;
	subs = s;
	return s;
}

void tap_unsubscribe(struct tap_sub *sub)
{
	for (struct tap_sub **pp = &subs; *pp; pp = &(*pp)->next)
		if (*pp == sub) {
			*pp = sub->next;
			break;
		}
	sub->stream = NULL;
	if (sub->writes == 0)
		free(sub);       /* else the last line's completion frees it */
}

void tap_get_counts(const struct tap_sub *sub, struct tap_counts *out)
{
	*out = sub->counts;
}

static int matches(const struct tap_sub *s, const char *route)
{
	return s->route[0] == '\0' || strcmp(s->route, route) == 0;
}

int tap_wanted(const char *route)
{
	if (log_trace_enabled())
		return 1;
	for (const struct tap_sub *s = subs; s; s = s->next)
		if (matches(s, route))
			return 1;
	return 0;
}

static void on_line_written(uv_write_t *req, int status)
{
	struct line_write *w = (struct line_write *)req;
	struct tap_sub *s = w->sub;

	s->counts.queued -= w->size;
	s->writes--;
	if (status == 0)
		s->counts.written++;
	free(w);
	if (s->stream == NULL && s->writes == 0)
		free(s);
}

/* Queue "text\n" to s unless its reader is too far behind. */
static void send_line(struct tap_sub *s, const char *text, size_t len)
{
	char note[64];
	struct line_write *w;
	size_t nlen = 0, size;
	uv_buf_t buf;

	if (s->dropped > 0)
		nlen = (size_t)snprintf(note, sizeof(note), "(%lu lines dropped: reader too slow)\n",
					s->dropped);
	size = sizeof(*w) + nlen + len + 1;
	if (s->counts.queued + size > TAP_QUEUE_MAX || (w = malloc(size)) == NULL) {
		s->dropped++;
		s->counts.lost++;
		return;
	}
	memcpy(w->text, note, nlen);
	memcpy(w->text + nlen, text, len);
	w->text[nlen + len] = '\n';
	w->sub = s;
	w->size = size;
	buf = uv_buf_init(w->text, (unsigned)(nlen + len + 1));
	if (uv_write(&w->req, s->stream, &buf, 1, on_line_written) != 0) {
		free(w);
		s->dropped++;
		s->counts.lost++;
		return;
	}
	s->counts.queued += size;
	s->writes++;
	s->dropped = 0;
}

void tap_line(const char *route, const char *fmt, ...)
{
	char text[LINE_MAX_LEN];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(text))
		n = sizeof(text) - 1;
	if (log_trace_enabled())
		log_trace("%s", text);
	for (struct tap_sub *s = subs; s; s = s->next)
		if (matches(s, route))
			send_line(s, text, (size_t)n);
}
