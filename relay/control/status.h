/* SPDX-License-Identifier: Apache-2.0 */
/*
 * status.h - the control socket's replies to "status", "status json" and
 * "health" (status.c), private to relay/control/.
 */
#ifndef RELAY_CONTROL_STATUS_H
#define RELAY_CONTROL_STATUS_H

#include "relay/control/strbuf.h"
#include "relay/relay.h"

void status_text(const struct relay *rl, struct strbuf *out);
void status_json(const struct relay *rl, struct strbuf *out);
/* Returns 1 if healthy; writes "healthy ..." or "unhealthy: reason" lines. */
int health_check(const struct relay *rl, const char *route, struct strbuf *out);

#endif
