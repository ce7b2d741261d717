/* SPDX-License-Identifier: Apache-2.0 */
/*
 * log.c - the relay's logger. Lines go to stderr, prefixed "<N>" when
 * stderr is connected to journald (JOURNAL_STREAM names it) so the journal
 * keeps the priority, or with a timestamp and level name otherwise; or to
 * syslog(3) when asked. Owns the escaping of every line and the rate
 * limits of log_limited().
 */
#include "relay/sys/sys.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static enum log_level cur_level = LOG_LVL_INFO;
static int to_syslog;
static int to_journal;
static int trace_on;
static const char *log_ident = "adbd-relay";

static const char *const level_names[] = {
	[LOG_LVL_ERROR] = "error", [LOG_LVL_WARN] = "warn",
	[LOG_LVL_NOTICE] = "notice", [LOG_LVL_INFO] = "info",
	[LOG_LVL_DEBUG] = "debug",
};

/* JOURNAL_STREAM is "dev:ino" of the journal's stream socket. */
static int stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long dev, ino;
	struct stat st;

	if (js == NULL || sscanf(js, "%lu:%lu", &dev, &ino) != 2)
		return 0;
	if (fstat(STDERR_FILENO, &st) != 0)
		return 0;
	return st.st_dev == (dev_t)dev && st.st_ino == (ino_t)ino;
}

void log_init(const char *ident, int use_syslog)
{
	log_ident = ident;
	to_syslog = use_syslog;
	to_journal = !use_syslog && stderr_is_journal();
	if (to_syslog)
		openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
}

void log_set_level(enum log_level level) { cur_level = level; }
enum log_level log_get_level(void) { return cur_level; }
void log_set_trace(int on) { trace_on = on; }
int log_trace_enabled(void) { return trace_on; }

int log_level_parse(const char *name, enum log_level *out)
{
	for (int l = LOG_LVL_ERROR; l <= LOG_LVL_DEBUG; l++) {
		if (strcmp(name, level_names[l]) == 0) {
			*out = (enum log_level)l;
			return 0;
		}
	}
	return -1;
}

/* Copy src as printable ASCII: newline, return and tab become \n, \r and
 * \t, other control bytes, DEL and non-ASCII \xNN, and with `quoted` also
 * '"' and '\\', so the text can stand between quotes. Always terminated;
 * returns the length written. */
static size_t escape(char *dst, size_t dstlen, const char *src, size_t srclen, int quoted)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (dstlen == 0)
		return 0;
	for (size_t i = 0; i < srclen; i++) {
		unsigned char c = (unsigned char)src[i];
		char short_form;

		if (c >= 0x20 && c < 0x7f && !(quoted && (c == '"' || c == '\\'))) {
			if (o + 1 >= dstlen)
				break;
			dst[o++] = (char)c;
			continue;
		}
		short_form = c == '\n' ? 'n' : c == '\r' ? 'r' : c == '\t' ? 't' : 0;
		if (o + (short_form ? 2 : 4) >= dstlen)
			break;
		dst[o++] = '\\';
		if (short_form) {
			dst[o++] = short_form;
			continue;
		}
		dst[o++] = 'x';
		dst[o++] = hex[c >> 4];
		dst[o++] = hex[c & 15];
	}
	dst[o] = '\0';
	return o;
}

size_t log_escape(char *dst, size_t dstlen, const char *src, size_t srclen)
{
	return escape(dst, dstlen, src, srclen, 1);
}

static void emit(int level, const char *tag, const char *fmt, va_list ap)
{
	char raw[1024], line[1024];
	int n;

	n = vsnprintf(raw, sizeof(raw), fmt, ap);
	if (n < 0)
		return;
	escape(line, sizeof(line), raw, (size_t)n < sizeof(raw) ? (size_t)n : sizeof(raw) - 1, 0);
	if (to_syslog) {
		syslog(level, "%s", line);
	} else if (to_journal) {
		fprintf(stderr, "<%d>%s\n", level, line);
	} else {
		struct timespec ts;
		struct tm tm;
		char when[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ld %s %s: %s\n", when, ts.tv_nsec / 1000000,
			log_ident, tag, line);
	}
}

void log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	if (level > cur_level)
		return;
	va_start(ap, fmt);
	emit((int)level, level_names[level], fmt, ap);
	va_end(ap);
}

/* ---- rate limits ---- */

#define SCOPE_MAX 64

struct limit_slot {
	const void *cause;            /* NULL: free */
	char scope[SCOPE_MAX];
	uint64_t window_start;        /* ms, monotonic */
	unsigned lines;               /* let through in this window */
	unsigned long long suppressed;
	uint64_t last_used;
};

static struct limit_slot slots[LOG_LIMIT_PAIRS];
static struct limit_slot overflow;   /* every pair that found no slot */
static unsigned long long suppressed_total;

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The slot of (scope, cause); else a free one, or the least recently
 * used of those whose window is over (it would start afresh anyway);
 * else the overflow slot, which every pair without one shares. A slot
 * still counting its window is never taken from its pair: with more pairs
 * than slots (many routes, each with its causes), evicting it would let
 * its pair start a fresh burst, and the limit would hold for no one. So
 * at most LOG_LIMIT_PAIRS + 1 bursts a window, whatever peers do. */
static struct limit_slot *limit_slot(const char *scope, const void *cause, uint64_t now)
{
	struct limit_slot *lru = NULL;

	for (size_t i = 0; i < LOG_LIMIT_PAIRS; i++) {
		struct limit_slot *sl = &slots[i];

		if (sl->cause == cause && strncmp(sl->scope, scope, SCOPE_MAX - 1) == 0)
			return sl;
		if ((sl->cause == NULL || now - sl->window_start >= LOG_LIMIT_WINDOW_MS) &&
		    (lru == NULL || sl->last_used < lru->last_used))
			lru = sl;
	}
	if (lru == NULL)
		return &overflow;
	/* an evicted slot's count is lost from its line but kept in the total */
	memset(lru, 0, sizeof(*lru));
	lru->cause = cause;
	snprintf(lru->scope, sizeof(lru->scope), "%s", scope);
	lru->window_start = now;
	return lru;
}

void log_limited(enum log_level level, const char *scope, const void *cause,
		 const char *fmt, ...)
{
	uint64_t now = mono_ms();
	struct limit_slot *sl;
	char line[1024];
	va_list ap;

	if (level > cur_level)
		return;
	sl = limit_slot(scope, cause, now);
	sl->last_used = now;
	if (now - sl->window_start >= LOG_LIMIT_WINDOW_MS) {
		sl->window_start = now;
		sl->lines = 0;
	}
	if (sl->lines >= LOG_LIMIT_BURST) {
		sl->suppressed++;
		suppressed_total++;
		return;
	}
	sl->lines++;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (sl->suppressed > 0) {
		log_msg(level, "%s (%llu similar suppressed)", line, sl->suppressed);
		sl->suppressed = 0;
	} else {
		log_msg(level, "%s", line);
	}
}

unsigned long long log_suppressed_total(void)
{
	return suppressed_total;
}

void log_trace(const char *fmt, ...)
{
	va_list ap;

	if (!trace_on)
		return;
	va_start(ap, fmt);
	emit(LOG_DEBUG, "trace", fmt, ap);
	va_end(ap);
}
