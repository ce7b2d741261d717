/* SPDX-License-Identifier: Apache-2.0 */
/*
 * probe.h - one health probe of a guest, in one of two modes:
 *
 *   connect  open a transport connection to the target, then close it;
 *   adb      speak adb to the guest's adbd over that connection: the host's
 *            CNXN, the device's CNXN, OPEN "shell:echo adbd-relay-probe",
 *            the OKAY, the echoed line (each WRTE answered with OKAY) and
 *            the CLSE. An adbd that answers the CNXN with AUTH or STLS (it
 *            wants a key the relay does not have) counts as reachable.
 *
 * A probe runs on the loop and never blocks; in adb mode a deadline bounds
 * the whole exchange. It ends in one callback with its result, unless it is
 * cancelled first. It owns its socket, timer and buffers, validates every
 * frame it reads, and frees everything itself on every path.
 */
#ifndef RELAY_PROBE_H
#define RELAY_PROBE_H

#include <uv.h>

#include "vsock/vsock.h"

enum probe_mode { PROBE_CONNECT = 0, PROBE_ADB };

/* "connect" or "adb". */
const char *probe_mode_name(enum probe_mode m);
/* 0, or -1 for anything but "connect" and "adb". */
int probe_mode_parse(const char *s, enum probe_mode *m);

/* What the adb probe opens on the guest, and the line it expects back. */
#define PROBE_SERVICE "shell:echo adbd-relay-probe"
#define PROBE_ECHO    "adbd-relay-probe"

#define PROBE_DETAIL_MAX 160

struct probe_result {
	int ok;                          /* the guest answered as expected */
	double rtt_ms;                   /* ok: from the start to its last answer */
	char detail[PROBE_DETAIL_MAX];   /* what it found, or why it failed */
};

struct probe_params {
	enum probe_mode mode;
	unsigned connect_timeout_ms;     /* the transport connection */
	unsigned timeout_ms;             /* adb: the whole probe (0 = none) */
};

struct probe;
typedef void (*probe_cb)(void *data, const struct probe_result *res);

/* Start a probe of T. cb runs once, from the loop, unless probe_cancel()
 * comes first. Returns 0 (*out set) or a negative errno. */
int probe_start(uv_loop_t *loop, const struct vsock_target *t, const struct probe_params *pp,
		probe_cb cb, void *data, struct probe **out);
/* Abandon a probe whose callback has not run: cb will not be called, and
 * the probe releases its socket, timer and memory. */
void probe_cancel(struct probe *p);

#endif
