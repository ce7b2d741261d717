/* SPDX-License-Identifier: Apache-2.0 */
/*
 * clock.c - the daemon's two clocks; see sys.h. Durations and deadlines
 * come from CLOCK_MONOTONIC, which no settimeofday or NTP step moves; the
 * wall clock is read only to report when something happened.
 */
#include "relay/sys/sys.h"

#include <time.h>

static uint64_t read_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t clock_mono_ms(void)
{
	return read_ms(CLOCK_MONOTONIC);
}

uint64_t clock_wall_ms(uint64_t mono_ms)
{
	uint64_t now = clock_mono_ms();
	uint64_t wall = read_ms(CLOCK_REALTIME);
	uint64_t ago = now > mono_ms ? now - mono_ms : 0;

	if (mono_ms == 0)
		return 0;
	return wall > ago ? wall - ago : 0;
}
