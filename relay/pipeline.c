/* SPDX-License-Identifier: Apache-2.0 */
/*
 * pipeline.c - stop-and-wait streams pipelined across the relay's two
 * hops (the rules are in pipeline.h): per stream and direction, whether
 * the receiver is busy with a frame, whether the sender waits for the
 * relay's OKAY, the one frame held between them, and the slots that bound
 * what a session holds.
 */
#include "relay/pipeline.h"

#include <stdlib.h>
#include <string.h>

#include "relay/session.h"
#include "relay/sys/sys.h"

static struct stream_pair *pair(struct session *s, size_t i)
{
	return &s->streams.v[i];
}

/* The largest frame either side is told it may send. */
static size_t frame_max(const struct session *s)
{
	return s->guest_max_payload;
}

static unsigned slots_max(const struct session *s)
{
	size_t budget = s->owner->buffer, f = frame_max(s);
	size_t n = budget / 2 / f;

	if (n == 0 && budget >= f)
		n = 1;
	return (unsigned)n;
}

static int take_slot(struct session *s, struct stream_pipe *p, enum dir d)
{
	if (p->slot)
		return 1;
	if (s->pipe_slots[d] >= slots_max(s))
		return 0;
	s->pipe_slots[d]++;
	p->slot = 1;
	return 1;
}

static void give_slot(struct session *s, struct stream_pipe *p, enum dir d)
{
	if (!p->slot)
		return;
	p->slot = 0;
	s->pipe_slots[d]--;
}

static void free_held(struct stream_pipe *p)
{
	free(p->held);
	p->held = NULL;
	p->held_len = p->held_want = 0;
}

/* The sender is told it may send its next frame. */
static void okay_sender(struct session *s, size_t i, enum dir d)
{
	struct stream_pair *sp = pair(s, i);

	sp->dir[d].owed = 0;
	if (d == DIR_TO_GUEST)
		session_synth_to_host(s, ADB_CMD_OKAY, sp->guest_id, sp->host_id);
	else
		session_synth_to_guest(s, ADB_CMD_OKAY, sp->host_id, sp->guest_id);
}

/* The sender's frame went on whole: it is told to send the next one now,
 * when the stream has (or gets) a slot to hold that one in; else it is
 * told when the receiver is ready. */
static void ack_early(struct session *s, size_t i, enum dir d)
{
	struct stream_pipe *p = &pair(s, i)->dir[d];

	if (!p->owed || (d == DIR_TO_HOST && !session_synth_to_guest_room(s)) ||
	    !take_slot(s, p, d))
		return;
	p->early = p->rbusy;
	s->owner->st->acked_early++;
	okay_sender(s, i, d);
}

/* The held frame goes to the receiver, whole. */
static void send_held(struct session *s, size_t i, enum dir d)
{
	struct stream_pipe *p = &pair(s, i)->dir[d];
	uint8_t *f = p->held;
	size_t len = p->held_len;

	p->held = NULL;
	p->held_len = p->held_want = 0;
	if (d == DIR_TO_HOST)
		session_frame_to_host(s, f, len);
	else
		session_frame_to_guest(s, f, len);
}

/* The sender did not wait for the relay's OKAY: what is held goes on, and
 * this direction of the stream is passed through from now on, OKAYs
 * included. */
static void pass_through(struct session *s, size_t i, enum dir d, const char *why)
{
	struct stream_pipe *p = &pair(s, i)->dir[d];

	if (p->held != NULL)
		send_held(s, i, d);
	p->off = 1;
	give_slot(s, p, d);
	log_limited(LOG_LVL_DEBUG, s->owner->name, "pipeline off",
		    "route %s: peer %s: stream %u: the %s %s: passed through from now on",
		    s->owner->name, s->peer, pair(s, i)->host_id,
		    d == DIR_TO_GUEST ? "PC" : "guest", why);
}

static int pipelined(const struct stream_pair *sp, enum dir d)
{
	return sp->pipelined && sp->live && !sp->dir[d].off;
}

/* A sender's WRTE on stream i: 1 to hold it, 0 to send it on (and then
 * sent() follows), after passing through a sender that did not wait; -1
 * to drop it (the sender closed the stream already). */
static int arrives(struct session *s, size_t i, enum dir d, const struct adb_header *h)
{
	struct stream_pipe *p = &pair(s, i)->dir[d];

	if (!pipelined(pair(s, i), d))
		return 0;
	if (p->clse)
		return -1;              /* after its own CLSE: stale */
	if (p->held != NULL || p->owed)
		pass_through(s, i, d, "sent before the relay's OKAY");
	else if (p->rbusy && h->data_length > frame_max(s))
		pass_through(s, i, d, "sent a frame larger than the relay holds");
	if (p->off || !p->rbusy)
		return 0;
	p->owed = 1;
	return 1;
}

/* The sender's frame is on its way to the receiver. */
static void sent(struct session *s, size_t i, enum dir d)
{
	struct stream_pipe *p = &pair(s, i)->dir[d];

	if (!pipelined(pair(s, i), d))
		return;
	p->rbusy = 1;
	p->owed = 1;
}

/* The receiver's OKAY on stream i: 1 when the relay takes it (it tells
 * the sender itself), 0 to pass it on. */
static int receiver_ready(struct session *s, size_t i, enum dir d, const struct adb_header *h)
{
	struct stream_pipe *p = &pair(s, i)->dir[d];

	if (!pipelined(pair(s, i), d))
		return 0;
	(void)h;                /* a payload (a window) means nothing here */
	p->rbusy = 0;
	p->early = 0;
	return 1;
}

/* The receiver is ready and nothing is held: a sender the relay has not
 * told yet is told now; an idle stream gives its slot back. */
static void idle(struct session *s, size_t i, enum dir d)
{
	struct stream_pipe *p = &pair(s, i)->dir[d];

	if (p->owed && !(d == DIR_TO_GUEST && s->h2g_forward_id == pair(s, i)->host_id))
		okay_sender(s, i, d);
	if (!p->owed)
		give_slot(s, p, d);
}

void pipeline_opened(struct session *s, size_t i, uint32_t open_arg1)
{
	pair(s, i)->pipelined = s->owner->pipeline && open_arg1 == 0;
}

void pipeline_established(struct session *s, size_t i)
{
	pair(s, i)->live = 1;
}

/* ---- PC -> guest ---- */

int pipeline_host_wrte(struct session *s, size_t i, const uint8_t raw[ADB_HEADER_SIZE],
		       const struct adb_header *h)
{
	struct stream_pipe *p = &pair(s, i)->dir[DIR_TO_GUEST];
	int v = arrives(s, i, DIR_TO_GUEST, h);

	if (v < 0)
		return -1;
	if (v == 0) {
		sent(s, i, DIR_TO_GUEST);
		if (pipelined(pair(s, i), DIR_TO_GUEST))
			s->h2g_forward_id = pair(s, i)->host_id;
		return 0;
	}
	p->held = malloc(ADB_HEADER_SIZE + (size_t)h->data_length);
	if (p->held == NULL) {
		p->owed = 0;
		pass_through(s, i, DIR_TO_GUEST, "frame could not be held (out of memory)");
		return 0;
	}
	memcpy(p->held, raw, ADB_HEADER_SIZE);
	p->held_len = ADB_HEADER_SIZE;
	p->held_want = ADB_HEADER_SIZE + (size_t)h->data_length;
	s->h2g_pipe = pair(s, i)->host_id;
	return 1;
}

void pipeline_host_payload(struct session *s, const uint8_t *data, size_t len)
{
	long i = s->h2g_pipe ? streams_find_host(&s->streams, s->h2g_pipe) : -1;
	struct stream_pipe *p;

	if (i < 0)
		return;
	p = &pair(s, (size_t)i)->dir[DIR_TO_GUEST];
	if (p->held == NULL || len > p->held_want - p->held_len)
		return;
	memcpy(p->held + p->held_len, data, len);
	p->held_len += len;
}

void pipeline_host_wrte_end(struct session *s, const struct adb_header *h)
{
	long i;

	s->h2g_pipe = 0;        /* a frame held whole goes at the guest's OKAY */
	if (s->h2g_forward_id == 0)
		return;
	i = streams_find_host(&s->streams, s->h2g_forward_id);
	s->h2g_forward_id = 0;
	if (i < 0 || !s->h2g_forward || s->h2g_gen != s->link_gen)
		return;
	if (pair(s, (size_t)i)->dir[DIR_TO_GUEST].rbusy)
		ack_early(s, (size_t)i, DIR_TO_GUEST);
	else
		idle(s, (size_t)i, DIR_TO_GUEST);   /* the guest was ready before it ended */
}

/* The guest is ready: the held frame goes (whole; or, when it is the host
 * frame still arriving, what is in, and the rest follows cut-through). */
static void host_next(struct session *s, size_t i)
{
	struct stream_pair *sp = pair(s, i);
	struct stream_pipe *p = &sp->dir[DIR_TO_GUEST];

	if (p->held == NULL) {
		idle(s, i, DIR_TO_GUEST);
		return;
	}
	if (session_host_frame_open(s)) {
		s->pipe_pending = 1;
		return;
	}
	if (p->held_len < p->held_want && s->h2g_pipe != sp->host_id) {
		free_held(p);           /* its rest was dropped: nothing to send */
		idle(s, i, DIR_TO_GUEST);
		return;
	}
	p->rbusy = 1;
	if (p->held_len < p->held_want) {
		send_held(s, i, DIR_TO_GUEST);
		s->h2g_pipe = 0;
		s->h2g_forward = 1;
		s->h2g_gen = s->link_gen;
		s->h2g_forward_id = sp->host_id;
		return;                 /* answered at its end */
	}
	send_held(s, i, DIR_TO_GUEST);
	if (!p->clse) {
		ack_early(s, i, DIR_TO_GUEST);
		return;
	}
	session_synth_to_guest(s, ADB_CMD_CLSE, sp->host_id, sp->guest_id);
	pipeline_forget(s, i);
	streams_remove_at(&s->streams, i);
}

void pipeline_host_release(struct session *s)
{
	if (!s->pipe_pending)
		return;
	s->pipe_pending = 0;
	for (size_t i = s->streams.n; i-- > 0;) {
		struct stream_pipe *p = &pair(s, i)->dir[DIR_TO_GUEST];

		if (p->held != NULL && !p->rbusy)
			host_next(s, i);
	}
}

int pipeline_guest_okay(struct session *s, const struct adb_header *h)
{
	long i = streams_find_host(&s->streams, h->arg1);

	if (i < 0)
		return 0;
	if (!pair(s, (size_t)i)->live) {
		pair(s, (size_t)i)->live = 1;   /* the answer to the PC's OPEN */
		return 0;
	}
	if (!receiver_ready(s, (size_t)i, DIR_TO_GUEST, h))
		return 0;
	host_next(s, (size_t)i);
	return 1;
}

int pipeline_host_clse(struct session *s, size_t i)
{
	struct stream_pipe *p = &pair(s, i)->dir[DIR_TO_GUEST];

	if (p->held == NULL)
		return 0;
	p->clse = 1;
	return 1;
}

/* ---- guest -> PC ---- */

int pipeline_guest_hold(struct session *s, const struct adb_header *h)
{
	long i = streams_find_host(&s->streams, h->arg1);
	struct stream_pipe *p;
	size_t len;

	if (i < 0)
		return 0;
	switch (arrives(s, (size_t)i, DIR_TO_HOST, h)) {
	case -1:
		framehold_drop(&s->g2h);
		s->owner->st->stale_dropped++;
		return 1;
	case 0:
		return 0;
	}
	p = &pair(s, (size_t)i)->dir[DIR_TO_HOST];
	len = ADB_HEADER_SIZE + s->g2h.len;
	p->held = malloc(len);
	if (p->held == NULL) {
		p->owed = 0;
		pass_through(s, (size_t)i, DIR_TO_HOST, "frame could not be held (out of memory)");
		return 0;
	}
	memcpy(p->held, s->g2h.header, ADB_HEADER_SIZE);
	framehold_copy(&s->g2h, p->held + ADB_HEADER_SIZE, s->g2h.len);
	p->held_len = p->held_want = len;
	framehold_drop(&s->g2h);
	return 1;
}

void pipeline_guest_sent(struct session *s, const struct adb_header *h)
{
	long i = streams_find_host(&s->streams, h->arg1);

	if (i < 0 || !pipelined(pair(s, (size_t)i), DIR_TO_HOST))
		return;
	sent(s, (size_t)i, DIR_TO_HOST);
	ack_early(s, (size_t)i, DIR_TO_HOST);
}

int pipeline_host_okay(struct session *s, size_t i, const struct adb_header *h)
{
	struct stream_pair *sp = pair(s, i);
	struct stream_pipe *p = &sp->dir[DIR_TO_HOST];

	if (!receiver_ready(s, i, DIR_TO_HOST, h))
		return 0;
	if (p->held == NULL) {
		idle(s, i, DIR_TO_HOST);
		return 1;
	}
	send_held(s, i, DIR_TO_HOST);
	p->rbusy = 1;
	if (!p->clse) {
		ack_early(s, i, DIR_TO_HOST);
		return 1;
	}
	session_synth_to_host(s, ADB_CMD_CLSE, sp->guest_id, sp->host_id);
	pipeline_forget(s, i);
	streams_remove_at(&s->streams, i);
	return 1;
}

int pipeline_guest_clse(struct session *s, size_t i)
{
	struct stream_pipe *p = &pair(s, i)->dir[DIR_TO_HOST];

	if (p->held == NULL)
		return 0;
	p->clse = 1;
	return 1;
}

/* ---- streams that end ---- */

void pipeline_forget(struct session *s, size_t i)
{
	struct stream_pair *sp = pair(s, i);

	for (int d = 0; d < 2; d++) {
		free_held(&sp->dir[d]);
		give_slot(s, &sp->dir[d], (enum dir)d);
	}
	if (s->h2g_pipe != 0 && s->h2g_pipe == sp->host_id)
		s->h2g_pipe = 0;        /* the rest of that frame is dropped */
	if (s->h2g_forward_id != 0 && s->h2g_forward_id == sp->host_id)
		s->h2g_forward_id = 0;
}

unsigned pipeline_guest_lost(struct session *s)
{
	unsigned lost = 0;

	for (size_t i = 0; i < s->streams.n; i++) {
		struct stream_pair *sp = pair(s, i);

		if (sp->dir[DIR_TO_HOST].held != NULL && sp->host_id != 0)
			send_held(s, i, DIR_TO_HOST);
		lost += sp->dir[DIR_TO_GUEST].early;
		pipeline_forget(s, i);
	}
	return lost;
}
