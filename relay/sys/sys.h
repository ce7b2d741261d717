/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sys.h - what the daemon asks of the system it runs on, the public header
 * of relay/sys/: one line per event to the log (log.c), running
 * unprivileged (privdrop.c), the systemd readiness protocol (notify.c),
 * the process's own descriptors and memory (procstat.c), the clocks
 * (clock.c). Nothing here
 * knows of routes or adb.
 */
#ifndef RELAY_SYS_H
#define RELAY_SYS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

/* ---- log.c: one line per event, to stderr (with syslog-style "<N>"
 * prefixes when stderr is the journal) or to syslog. Every line is escaped on its
 * way out (newline, return and tab as \n \r \t, other control bytes, DEL
 * and non-ASCII as \xNN), so text a peer sent can never forge a line or a
 * priority prefix. Warnings a peer can repeat at will go through
 * log_limited().
 */

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
 * address (pass the format string). The pairs counting at once are
 * bounded (LOG_LIMIT_PAIRS); pairs past that share one more budget of
 * LOG_LIMIT_BURST, so no more than LOG_LIMIT_PAIRS + 1 bursts are let
 * through a window.
 */
#define LOG_LIMIT_PAIRS 128
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

/* ---- privdrop.c: running unprivileged once started: names resolved to
 * ids when the configuration is read, the control socket given its owner and
 * group, then the process switched to the configured user and group (with
 * the user's supplementary groups), checked to be unable to get root back.
 */

/* A user or group name, or a number; 0, or -1 with ERR set. */
int priv_user_id(const char *name, uid_t *uid, gid_t *primary_gid, char *err, size_t errlen);
int priv_group_id(const char *name, gid_t *gid, char *err, size_t errlen);

/* Become USER (by name; its primary group unless GROUP is given, and its
 * supplementary groups). 0, or -1 with ERR set: the caller must not go on
 * running with privileges it was told to drop. */
int priv_drop(const char *user, const char *group, char *err, size_t errlen);

/* ---- notify.c: the systemd readiness protocol, spoken directly: one
 * datagram per state to the socket named by $NOTIFY_SOCKET (path, or '@'
 * for the abstract namespace). Without $NOTIFY_SOCKET every call does
 * nothing.
 */

/* Send "READY=1", "RELOADING=1", "STOPPING=1", "STATUS=..." and the like.
 * Returns 0, or a negative errno (logged by the caller if it cares). */
int notify_send(const char *state);

/* The service watchdog ($WATCHDOG_USEC, for this process if $WATCHDOG_PID
 * says so): "WATCHDOG=1" from a timer on the loop at half the interval,
 * so a loop that stops turning stops the pings and systemd restarts the
 * service. Returns the interval in ms (0: no watchdog asked for, the timer
 * is then not started); the timer is the caller's, initialised by this
 * call, closed by the caller. */
uint64_t notify_watchdog_start(uv_loop_t *loop, uv_timer_t *timer);

/* ---- procstat.c: the relay process's own open descriptors and resident
 * memory.
 */

/* Number of open file descriptors, or -1. */
int procstat_open_fds(void);
/* Resident set size in KiB, or -1. */
long procstat_rss_kib(void);

/* ---- clock.c: every duration, deadline and "since" the daemon keeps is
 * in monotonic milliseconds, which a wall-clock step (an SoC without an
 * RTC boots in 1970 and jumps to today when NTP answers) never moves.
 */

/* Milliseconds on CLOCK_MONOTONIC; never 0 once the system has run 1 ms. */
uint64_t clock_mono_ms(void);
/* When the monotonic instant MONO_MS was, in milliseconds since the epoch
 * as the wall clock reads now, for status output; 0 stays 0 (never). */
uint64_t clock_wall_ms(uint64_t mono_ms);

#endif
