/* SPDX-License-Identifier: Apache-2.0 */
/*
 * unit.h - what every unit test program shares: run one check suite and
 * turn its result into the exit status automake's test driver reads, and
 * measure the memory a lifecycle test must find flat.
 */
#ifndef TESTS_UNIT_H
#define TESTS_UNIT_H

#include <check.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

#include "relay/sys/sys.h"

static inline int unit_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* The memory the program holds, in KiB: its resident set; under qemu-user
 * (UNIT_EMULATED set, as tests/suite.sh runs a cross build's), where the
 * emulator's translation cache grows the resident set with each new code
 * path, the heap in use plus the size of every mapping of the program's
 * address space, which leaked buffers and mappings grow alike. */
static inline long unit_held_kib(void)
{
	unsigned long lo, hi, mapped = 0;
	char line[512];
	FILE *f;

	if (getenv("UNIT_EMULATED") == NULL)
		return procstat_rss_kib();
	f = fopen("/proc/self/maps", "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2)
			mapped += hi - lo;
	fclose(f);
	return (long)((mallinfo2().uordblks + mapped) / 1024);
}

#endif
