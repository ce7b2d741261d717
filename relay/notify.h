/*
 * notify.h - the systemd readiness protocol, spoken directly: one datagram
 * per state to the socket named by $NOTIFY_SOCKET (path, or '@' for the
 * abstract namespace). Without $NOTIFY_SOCKET every call does nothing.
 */
#ifndef RELAY_NOTIFY_H
#define RELAY_NOTIFY_H

/* Send "READY=1", "RELOADING=1", "STOPPING=1", "STATUS=..." and the like.
 * Returns 0, or a negative errno (logged by the caller if it cares). */
int notify_send(const char *state);

#endif
