/* SPDX-License-Identifier: Apache-2.0 */
/*
 * capture.h - the client side of `adbd-relayctl capture` (capture.c).
 * adbd-relayctl is a program of its own: it speaks the control socket's
 * protocol and links nothing of the daemon.
 */
#ifndef RELAY_CTL_CAPTURE_H
#define RELAY_CTL_CAPTURE_H

/* Copy the pcap stream the relay sends on fd (after a "capture ROUTE"
 * request) into FILE ("-": stdout), whole packets only, until `count`
 * packets (0: no limit), `seconds` (0: no limit), SIGINT or SIGTERM, or
 * the relay hangs up. Closes fd. Returns the exit status: 0, or 2 after an
 * error, which it reports on stderr. */
int capture_to_file(int fd, const char *file, unsigned long count, unsigned long seconds);

#endif
