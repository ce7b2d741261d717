/*
 * procstat.h - the relay process's own open descriptors and resident memory.
 */
#ifndef RELAY_PROCSTAT_H
#define RELAY_PROCSTAT_H

/* Number of open file descriptors, or -1. */
int procstat_open_fds(void);
/* Resident set size in KiB, or -1. */
long procstat_rss_kib(void);

#endif
