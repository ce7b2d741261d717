/*
 * notify.h - the systemd readiness protocol, spoken directly: one datagram
 * per state to the socket named by $NOTIFY_SOCKET (path, or '@' for the
 * abstract namespace). Without $NOTIFY_SOCKET every call does nothing.
 */
#ifndef RELAY_NOTIFY_H
#define RELAY_NOTIFY_H

#include <stdint.h>
#include <uv.h>

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

#endif
