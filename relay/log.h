/*
 * log.h - one line per event, to stderr (with syslog-style "<N>" prefixes
 * when stderr is the journal) or to syslog.
 */
#ifndef RELAY_LOG_H
#define RELAY_LOG_H

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

#define log_error(...)  log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warn(...)   log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_LVL_NOTICE, __VA_ARGS__)
#define log_info(...)   log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...)  log_msg(LOG_LVL_DEBUG, __VA_ARGS__)

#endif
