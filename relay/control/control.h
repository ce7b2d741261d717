/* SPDX-License-Identifier: Apache-2.0 */
/*
 * control.h - the control socket, the public header of relay/control/: a
 * Unix stream socket that answers one request line per connection
 * ("status", "status json", "health [ROUTE]": status.c) and closes, or
 * streams what "trace [ROUTE]" and "capture ROUTE" ask for until the
 * client hangs up (control.c). Protocol documented in adbd-relayctl(8).
 */
#ifndef RELAY_CONTROL_H
#define RELAY_CONTROL_H

#include <sys/types.h>
#include <uv.h>

struct relay;
struct control;

/* Listen on path (replacing a stale socket) with the given mode, owner and
 * group ((uid_t)-1, (gid_t)-1: unchanged): vhu_listen_unix, so path
 * appears only once it accepts. A failure is logged, with its reason. */
int control_start(struct relay *rl, const char *path, mode_t mode, uid_t uid, gid_t gid,
		  struct control **out);
void control_stop(struct control *c);

#endif
