/* SPDX-License-Identifier: Apache-2.0 */
/*
 * restart.h - which services the PC opens restart the guest's adbd or the
 * guest itself, as AOSP's adbd implements them, and which of its replies
 * say that the restart is under way. Pure: no I/O, no state.
 *
 * - root:, unroot:, tcpip:PORT, usb: restart adbd only when the reply
 *   says "restarting" ("restarting adbd as root", "restarting in TCP mode
 *   port: 5555", ...); "adbd is already running as root", "adbd cannot run
 *   as root in production builds" and "invalid port" restart nothing.
 * - reboot:[TARGET] reboots the guest, remount:[ARGS] may reboot it (when
 *   it has to disable verity first), reconnect drops the connection
 *   (adbd's kick): the OPEN itself is the request.
 */
#ifndef RELAY_RESTART_H
#define RELAY_RESTART_H

#include <stddef.h>
#include <stdint.h>

enum restart_ask {
	RESTART_ASK_NONE,      /* an ordinary service */
	RESTART_ASK_IF_REPLY,  /* a restart if the reply says so (restart_reply_says) */
	RESTART_ASK_AT_OPEN,   /* a restart (or a reboot) may follow at any time */
};

#define RESTART_NAME_MAX 16    /* a request's name as logged: "root:", "reboot:" */
/* A guest link lost this long after the PC asked for a restart is that
 * restart (adbd goes within a second of its reply; a guest's reboot takes
 * longer to get as far as stopping adbd). */
#define RESTART_ASK_MS 30000

/* What the PC sees when the guest link is lost (a route's guest-restart):
 * REQUESTED: the restart it asked for (RESTART_ASK_MS) as a direct
 * connection shows it, any other hidden; SHOW: every one; HIDE: none. */
enum guest_restart { GUEST_RESTART_REQUESTED, GUEST_RESTART_SHOW, GUEST_RESTART_HIDE };

/* "requested", "show", "hide": 0, or -1. */
int guest_restart_parse(const char *s, enum guest_restart *out);
const char *guest_restart_name(enum guest_restart m);

/* What the OPEN of SERVICE (LEN bytes, NUL-terminated or not) asks;
 * NAME (RESTART_NAME_MAX) gets the service's prefix for log lines. */
enum restart_ask restart_service_ask(const uint8_t *service, size_t len, char *name);
/* Does a reply (the first LEN bytes of a WRTE on such a stream) say that
 * adbd restarts? */
int restart_reply_says(const uint8_t *reply, size_t len);

#endif
