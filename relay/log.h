/*
 * log.h - one line per event, to stderr (with syslog-style "<N>" prefixes
 * when stderr is the journal) or to syslog. Every line is escaped on its
 * way out (newline, return and tab as \n \r \t, other control bytes, DEL
 * and non-ASCII as \xNN), so text a peer sent can never forge a line or a
 * priority prefix. Warnings a peer can repeat at will go through
 * log_limited().
 */
#ifndef RELAY_LOG_H
#define RELAY_LOG_H

#include <stddef.h>

enum log_level {
	LOG_LVL_ERROR = 3,
	LOG_LVL_WARN = 4,
	LOG_LVL_NOTICE = 5,
	LOG_LVL_INFO = 6,
	LOG_LVL_DEBUG = 7,
};

void log_init(const char *ident, int use_syslog);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* "error", "warn", "notice", "info", "debug": 0 or -1 if unknown. */
int log_level_parse(const char *name, enum log_level *out);
/* Per-frame trace lines (independent of the level). */
void log_set_trace(int on);
int log_trace_enabled(void);

void log_msg(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void log_trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * A line rate-limited per (scope, cause): at most LOG_LIMIT_BURST lines per
 * LOG_LIMIT_WINDOW_MS for each pair; the rest are counted, and the count is
 * appended to the next line let through ("(N similar suppressed)"). scope is
 * usually the route or device name; cause identifies the call site by
 * address (pass the format string).
 */
#define LOG_LIMIT_BURST 5
#define LOG_LIMIT_WINDOW_MS 10000
void log_limited(enum log_level level, const char *scope, const void *cause,
		 const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Lines suppressed by log_limited() since the start, for status. */
unsigned long long log_suppressed_total(void);

/* Copy srclen bytes of a peer's text into dst as printable ASCII that can
 * stand between double quotes (escaped as lines are, and '"' and '\\' as
 * \xNN too); always terminated. Returns the length written. Use it for
 * peer text in log lines and in the text status. */
size_t log_escape(char *dst, size_t dstlen, const char *src, size_t srclen);

#define log_error(...)  log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...)   log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_LVL_NOTICE, __VA_ARGS__)
#define log_info(...)   log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...)  log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
