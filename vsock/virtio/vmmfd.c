/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vmmfd.c - reading and writing the eventfds a VMM handed over (kicks and
 * calls) without ever waiting for the VMM.
 *
 * A descriptor received over SCM_RIGHTS shares its open file description
 * with the VMM: the VMM can clear O_NONBLOCK on it at any moment, and fill
 * or drain its counter. An eventfd write then blocks while the counter is
 * at its maximum, a read while it is zero, for as long as the VMM likes,
 * and with them the relay's one loop and every route. Setting O_NONBLOCK
 * again before each call does not help (the VMM clears it in between),
 * eventfds take no RWF_NOWAIT for writes, and an eventfd cannot be opened
 * anew through /proc (ENXIO). So the calls that can wait are guarded: a
 * per-thread timer interrupts them after VMMFD_GUARD_MS (a signal without
 * SA_RESTART: EINTR; it repeats every VMMFD_GUARD_MS until disarmed, so an
 * expiry spent before the call began is not the last), and the caller
 * treats that as the VMM's doing:
 * -ETIMEDOUT, the device fails and stops using that descriptor. The loop
 * loses at most VMMFD_GUARD_MS once per such descriptor. Reads first try
 * RWF_NOWAIT (Linux 5.11 and later), which never waits, then the guarded
 * read.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "vsock/virtio/vhu_internal.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define VMMFD_GUARD_MS 2
#define VMMFD_SIGNAL (SIGRTMIN + 1)  /* libuv and the tests use no real-time signal */

static __thread timer_t guard;
static __thread int guard_state;        /* 0 not made, 1 made, -1 cannot */

static void on_guard(int sig)
{
	(void)sig;      /* only interrupts the call in progress */
}

static int guard_make(void)
{
	struct sigaction sa;
	struct sigevent sev;

	if (guard_state != 0)
		return guard_state;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_guard;       /* no SA_RESTART: the call ends with EINTR */
	sigemptyset(&sa.sa_mask);
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD_ID;
	sev.sigev_signo = VMMFD_SIGNAL;
	sev._sigev_un._tid = gettid();
	if (sigaction(VMMFD_SIGNAL, &sa, NULL) != 0 ||
	    timer_create(CLOCK_MONOTONIC, &sev, &guard) != 0)
		guard_state = -1;
	else
		guard_state = 1;
	return guard_state;
}

/* Armed, the timer fires every MS: an expiry that came before the call
 * began (the thread was off the CPU in between) is followed by another
 * within the call. */
static void guard_arm(long ms)
{
	struct itimerspec t = { .it_interval = { 0, ms * 1000000L }, .it_value = { 0, ms * 1000000L } };

	timer_settime(guard, 0, &t, NULL);
}

/* write(2) or read(2) of the 8-byte counter, interrupted if it waits */
static int guarded(int fd, uint64_t *v, int writing)
{
	ssize_t n;
	int e;

	if (guard_make() < 0)
		return -ENOSYS;
	guard_arm(VMMFD_GUARD_MS);
	n = writing ? write(fd, v, sizeof(*v)) : read(fd, v, sizeof(*v));
	e = errno;
	guard_arm(0);
	if (n == (ssize_t)sizeof(*v))
		return 0;
	if (n < 0 && e == EINTR)
		return -ETIMEDOUT;
	if (n < 0 && e == EAGAIN)
		return writing ? -EAGAIN : 0;
	return n < 0 ? -e : -EIO;
}

int vmmfd_signal(int fd)
{
	uint64_t one = 1;

	return guarded(fd, &one, 1);
}

int vmmfd_take(int fd)
{
	uint64_t v;
	struct iovec iov = { &v, sizeof(v) };
	ssize_t n = preadv2(fd, &iov, 1, -1, RWF_NOWAIT);

	if (n == (ssize_t)sizeof(v) || (n < 0 && errno == EAGAIN))
		return 0;
	if (n < 0 && errno == EOPNOTSUPP)
		return guarded(fd, &v, 0);
	return n < 0 ? -errno : -EIO;
}
