/* SPDX-License-Identifier: Apache-2.0 */
/*
 * strbuf.c - bounded growable text buffer. Output past the cap is dropped
 * and remembered in `truncated`, never written out of bounds.
 */
#include "relay/control/strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void strbuf_init(struct strbuf *b, size_t max)
{
	memset(b, 0, sizeof(*b));
	b->max = max;
}

void strbuf_free(struct strbuf *b)
{
	free(b->s);
	memset(b, 0, sizeof(*b));
}

static int reserve(struct strbuf *b, size_t need)
{
	size_t cap = b->cap ? b->cap : 1024;
	char *n;

	if (b->len + need + 1 <= b->cap)
		return 0;
	while (cap < b->len + need + 1)
		cap *= 2;
	if (cap > b->max)
		cap = b->max;
	if (b->len + need + 1 > cap) {
		b->truncated = 1;
		return -1;
	}
	n = realloc(b->s, cap);
	if (n == NULL) {
		b->truncated = 1;
		return -1;
	}
	b->s = n;
	b->cap = cap;
	return 0;
}

void strbuf_printf(struct strbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || reserve(b, (size_t)n) != 0)
		return;
	va_start(ap, fmt);
	vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void strbuf_end(struct strbuf *b, const char *mark)
{
	size_t n = strlen(mark);

	if (!b->truncated || n + 1 > b->max)
		return;
	if (b->len + n + 1 > b->max) {
		/* back to the end of the last line that leaves room */
		b->len = b->max - n - 1;
		while (b->len > 0 && b->s[b->len - 1] != '\n')
			b->len--;
	}
	if (reserve(b, n) != 0)
		return;
	memcpy(b->s + b->len, mark, n + 1);
	b->len += n;
}

void strbuf_json_str(struct strbuf *b, const char *s)
{
	strbuf_printf(b, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			strbuf_printf(b, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			strbuf_printf(b, "\\u%04x", c);
		else
			strbuf_printf(b, "%c", c);
	}
	strbuf_printf(b, "\"");
}
