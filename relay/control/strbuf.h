/* SPDX-License-Identifier: Apache-2.0 */
/*
 * strbuf.h - a growable text buffer with a hard size cap, and JSON string
 * escaping, for control-socket replies; private to relay/control/.
 */
#ifndef RELAY_STRBUF_H
#define RELAY_STRBUF_H

#include <stddef.h>

struct strbuf {
	char *s;
	size_t len, cap, max;
	int truncated;
};

void strbuf_init(struct strbuf *b, size_t max);
void strbuf_free(struct strbuf *b);
void strbuf_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Finish B: when output was dropped, MARK ends it, within the cap (lines
 * at the end give way to it, whole). */
void strbuf_end(struct strbuf *b, const char *mark);
/* Append s as a quoted JSON string. */
void strbuf_json_str(struct strbuf *b, const char *s);

#endif
