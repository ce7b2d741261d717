/* SPDX-License-Identifier: Apache-2.0 */
/*
 * procstat.c - counts /proc/self/fd entries and reads VmRSS; see sys.h.
 */
#include "relay/sys/sys.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>

int procstat_open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the directory stream's own descriptor */
}

long procstat_rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "VmRSS:", 6) == 0 && sscanf(line + 6, "%ld", &kib) == 1)
			break;
	fclose(f);
	return kib;
}
