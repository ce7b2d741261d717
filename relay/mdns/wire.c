/* SPDX-License-Identifier: Apache-2.0 */
/*
 * wire.c - the DNS message codec of the mDNS responder: names (with
 * compression, read with strict bounds: no loop, no pointer out of the
 * packet, no label or name over its limit), questions and records read
 * from a packet a network peer sent, and messages written. Pure: no I/O.
 */
#include <ctype.h>
#include <string.h>

#include "relay/mdns/mdns_internal.h"

#define HEADER_LEN 12
#define QUESTION_MIN 5           /* root name, type, class */
#define RR_MIN 11                /* root name, type, class, ttl, rdlength */

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int mdns_read_name(const uint8_t *pkt, size_t len, size_t *off, uint8_t name[MDNS_NAME_MAX])
{
	size_t pos = *off, out = 0, end = 0;
	unsigned jumps = 0;
	int jumped = 0;

	for (;;) {
		if (pos >= len)
			return -1;
		uint8_t c = pkt[pos];
		if ((c & 0xc0) == 0xc0) {
			if (pos + 1 >= len || ++jumps > MDNS_JUMPS_MAX)
				return -1;
			size_t to = (size_t)(c & 0x3f) << 8 | pkt[pos + 1];
			if (to >= pos)   /* only backwards: no loop can form */
				return -1;
			if (!jumped)
				end = pos + 2;
			jumped = 1;
			pos = to;
			continue;
		}
		if (c & 0xc0)            /* 0x40, 0x80: reserved label kinds */
			return -1;
		if (out + 1 + c > MDNS_NAME_MAX || pos + 1 + c > len)
			return -1;
		memcpy(name + out, pkt + pos, 1 + (size_t)c);
		out += 1 + (size_t)c;
		pos += 1 + (size_t)c;
		if (c == 0)
			break;
	}
	*off = jumped ? end : pos;
	return 0;
}

size_t mdns_name_len(const uint8_t *name)
{
	size_t n = 0;

	while (name[n] != 0)
		n += 1 + (size_t)name[n];
	return n + 1;
}

int mdns_name_eq(const uint8_t *a, const uint8_t *b)
{
	size_t la = mdns_name_len(a);

	if (la != mdns_name_len(b))
		return 0;
	for (size_t i = 0; i < la; i++)
		if (tolower(a[i]) != tolower(b[i]))
			return 0;
	return 1;
}

int mdns_name_prepend(uint8_t name[MDNS_NAME_MAX], const char *label, const uint8_t *suffix)
{
	size_t l = strlen(label), s = mdns_name_len(suffix);

	if (l == 0 || l > MDNS_LABEL_MAX || 1 + l + s > MDNS_NAME_MAX)
		return -1;
	memmove(name + 1 + l, suffix, s);
	name[0] = (uint8_t)l;
	memcpy(name + 1, label, l);
	return 0;
}

int mdns_name_from_text(uint8_t name[MDNS_NAME_MAX], const char *text)
{
	const char *dot = strchr(text, '.');
	char label[MDNS_LABEL_MAX + 1];
	size_t l = dot ? (size_t)(dot - text) : strlen(text);

	if (l > MDNS_LABEL_MAX)
		return -1;
	if (dot == NULL && l == 0) {
		name[0] = 0;
		return 0;
	}
	memcpy(label, text, l);
	label[l] = '\0';
	if (dot == NULL) {
		static const uint8_t root[1] = { 0 };
		return mdns_name_prepend(name, label, root);
	}
	if (mdns_name_from_text(name, dot + 1) != 0)
		return -1;
	return mdns_name_prepend(name, label, name);
}

/* rdata of a record read: names of PTR and SRV expanded, the rest copied */
static int read_rdata(const uint8_t *pkt, size_t off, struct mdns_rr *rr, uint16_t rdlength)
{
	size_t end = off + rdlength, p = off;
	uint8_t name[MDNS_NAME_MAX];
	size_t fixed = rr->type == MDNS_TYPE_SRV ? 6 : 0;

	if (rr->type == MDNS_TYPE_PTR || rr->type == MDNS_TYPE_SRV) {
		if (rdlength < fixed + 1)
			return -1;
		p += fixed;
		if (mdns_read_name(pkt, end, &p, name) != 0 || p != end)
			return -1;
		size_t nl = mdns_name_len(name);
		if (fixed + nl > MDNS_RDATA_MAX) {
			rr->rd_long = 1;
			return 0;
		}
		memcpy(rr->rdata, pkt + off, fixed);
		memcpy(rr->rdata + fixed, name, nl);
		rr->rdlen = (uint16_t)(fixed + nl);
		return 0;
	}
	if (rdlength > MDNS_RDATA_MAX) {
		rr->rd_long = 1;
		return 0;
	}
	memcpy(rr->rdata, pkt + off, rdlength);
	rr->rdlen = rdlength;
	return 0;
}

static int read_question(const uint8_t *pkt, size_t len, size_t *off, struct mdns_question *q)
{
	if (mdns_read_name(pkt, len, off, q->name) != 0 || *off + 4 > len)
		return -1;
	q->type = get16(pkt + *off);
	q->unicast = (pkt[*off + 2] & 0x80) != 0;
	q->qclass = get16(pkt + *off + 2) & 0x7fff;
	*off += 4;
	return 0;
}

static int read_rr(const uint8_t *pkt, size_t len, size_t *off, struct mdns_rr *rr)
{
	uint16_t rdlength;

	if (mdns_read_name(pkt, len, off, rr->name) != 0 || *off + 10 > len)
		return -1;
	rr->type = get16(pkt + *off);
	rr->flush = (pkt[*off + 2] & 0x80) != 0;
	rr->rclass = get16(pkt + *off + 2) & 0x7fff;
	rr->ttl = get32(pkt + *off + 4);
	rdlength = get16(pkt + *off + 8);
	*off += 10;
	if (*off + rdlength > len)
		return -1;
	rr->rd_long = 0;
	rr->rdlen = 0;
	/* names in rdata may point anywhere before, but not past the rdata */
	if (read_rdata(pkt, *off, rr, rdlength) != 0)
		return -1;
	*off += rdlength;
	return 0;
}

int mdns_parse(const uint8_t *pkt, size_t len, struct mdns_msg *m, const char **why)
{
	size_t off = HEADER_LEN;
	unsigned total;

	m->nq = m->nrr = 0;
	if (len < HEADER_LEN) {
		*why = "shorter than a header";
		return -1;
	}
	m->id = get16(pkt);
	m->flags = get16(pkt + 2);
	m->qdcount = get16(pkt + 4);
	m->ancount = get16(pkt + 6);
	m->nscount = get16(pkt + 8);
	m->arcount = get16(pkt + 10);
	total = (unsigned)m->ancount + m->nscount + m->arcount;
	if ((size_t)m->qdcount * QUESTION_MIN + (size_t)total * RR_MIN > len - HEADER_LEN) {
		*why = "counts larger than the packet";
		return -1;
	}
	for (unsigned i = 0; i < m->qdcount; i++) {
		struct mdns_question scratch, *q = m->nq < MDNS_QS_MAX ? &m->q[m->nq++] : &scratch;
		if (read_question(pkt, len, &off, q) != 0) {
			*why = "bad question";
			return -1;
		}
	}
	for (unsigned i = 0; i < total; i++) {
		struct mdns_rr scratch, *rr = m->nrr < MDNS_RRS_MAX ? &m->rr[m->nrr++] : &scratch;
		if (read_rr(pkt, len, &off, rr) != 0) {
			*why = "bad record";
			return -1;
		}
		rr->section = i < m->ancount ? MDNS_AN
			      : i < (unsigned)m->ancount + m->nscount ? MDNS_NS : MDNS_AR;
	}
	if (off != len) {
		*why = "bytes after the last record";
		return -1;
	}
	return 0;
}

/* ---- writing ---- */

static void put(struct mdns_writer *w, const void *p, size_t n)
{
	if (w->err || w->len + n > w->cap) {
		w->err = 1;
		return;
	}
	memcpy(w->buf + w->len, p, n);
	w->len += n;
}

static void put16(struct mdns_writer *w, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };
	put(w, b, 2);
}

static void put32(struct mdns_writer *w, uint32_t v)
{
	put16(w, (uint16_t)(v >> 16));
	put16(w, (uint16_t)v);
}

void mdns_writer_init(struct mdns_writer *w, uint8_t *buf, size_t cap, uint16_t id,
		      uint16_t flags)
{
	memset(w, 0, sizeof(*w));
	w->buf = buf;
	w->cap = cap;
	put16(w, id);
	put16(w, flags);
	put(w, "\0\0\0\0\0\0\0\0", 8);
}

/* A name written before at OFF whose expansion equals SUFFIX. */
static int written_at(const struct mdns_writer *w, uint16_t off, const uint8_t *suffix)
{
	uint8_t there[MDNS_NAME_MAX];
	size_t p = off;

	return mdns_read_name(w->buf, w->len, &p, there) == 0 && mdns_name_eq(there, suffix);
}

static void write_name(struct mdns_writer *w, const uint8_t *name)
{
	size_t i = 0;

	while (name[i] != 0) {
		for (unsigned k = 0; k < w->nnames; k++) {
			if (written_at(w, w->names[k], name + i)) {
				put16(w, (uint16_t)(0xc000 | w->names[k]));
				return;
			}
		}
		if (w->len < 0x3fff && w->nnames < MDNS_COMPRESS_MAX)
			w->names[w->nnames++] = (uint16_t)w->len;
		put(w, name + i, 1 + (size_t)name[i]);
		i += 1 + (size_t)name[i];
	}
	put(w, "", 1);
}

void mdns_write_question(struct mdns_writer *w, const uint8_t *name, uint16_t type, int unicast)
{
	write_name(w, name);
	put16(w, type);
	put16(w, (uint16_t)(MDNS_CLASS_IN | (unicast ? MDNS_CLASS_TOP : 0)));
	w->counts[0]++;
}

void mdns_write_record(struct mdns_writer *w, enum mdns_section s, const struct mdns_record *r,
		       uint32_t ttl, int no_flush)
{
	size_t rdlen_at, start;

	write_name(w, r->name);
	put16(w, r->type);
	put16(w, (uint16_t)(MDNS_CLASS_IN | (r->unique && !no_flush ? MDNS_CLASS_TOP : 0)));
	put32(w, ttl);
	rdlen_at = w->len;
	put16(w, 0);
	start = w->len;
	if (r->type == MDNS_TYPE_SRV) {
		put(w, r->rdata, 6);
		write_name(w, r->rdata + 6);
	} else if (r->type == MDNS_TYPE_PTR) {
		write_name(w, r->rdata);
	} else {
		put(w, r->rdata, r->rdlen);
	}
	if (!w->err) {
		w->buf[rdlen_at] = (uint8_t)((w->len - start) >> 8);
		w->buf[rdlen_at + 1] = (uint8_t)(w->len - start);
	}
	w->counts[1 + s]++;
}

int mdns_write_record_fit(struct mdns_writer *w, enum mdns_section s, const struct mdns_record *r,
			  uint32_t ttl, int no_flush)
{
	struct mdns_writer saved = *w;

	mdns_write_record(w, s, r, ttl, no_flush);
	if (!w->err)
		return 0;
	*w = saved;
	return -1;
}

size_t mdns_writer_finish(struct mdns_writer *w)
{
	if (w->err)
		return 0;
	for (int i = 0; i < 4; i++) {
		w->buf[4 + 2 * i] = (uint8_t)(w->counts[i] >> 8);
		w->buf[5 + 2 * i] = (uint8_t)w->counts[i];
	}
	return w->len;
}
