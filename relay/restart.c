/* SPDX-License-Identifier: Apache-2.0 */
/*
 * restart.c - the services that restart the guest's adbd or the guest:
 * see restart.h.
 */
#include "relay/restart.h"

#include <stdio.h>
#include <string.h>

struct asking_service {
	const char *prefix;
	int whole;              /* the name is the whole service, not a prefix */
	enum restart_ask ask;
};

static const struct asking_service services[] = {
	{ "root:", 0, RESTART_ASK_IF_REPLY },
	{ "unroot:", 0, RESTART_ASK_IF_REPLY },
	{ "tcpip:", 0, RESTART_ASK_IF_REPLY },
	{ "usb:", 0, RESTART_ASK_IF_REPLY },
	{ "reboot:", 0, RESTART_ASK_AT_OPEN },
	{ "remount:", 0, RESTART_ASK_AT_OPEN },
	{ "reconnect", 1, RESTART_ASK_AT_OPEN },
};

enum restart_ask restart_service_ask(const uint8_t *service, size_t len, char *name)
{
	const uint8_t *nul = memchr(service, '\0', len);

	if (nul != NULL)
		len = (size_t)(nul - service);
	name[0] = '\0';
	for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++) {
		const struct asking_service *a = &services[i];
		size_t n = strlen(a->prefix);

		if (len < n || memcmp(service, a->prefix, n) != 0 || (a->whole && len != n))
			continue;
		snprintf(name, RESTART_NAME_MAX, "%s", a->prefix);
		return a->ask;
	}
	return RESTART_ASK_NONE;
}

int restart_reply_says(const uint8_t *reply, size_t len)
{
	static const char word[] = "restarting";
	const size_t n = sizeof(word) - 1;

	for (size_t i = 0; i + n <= len; i++)
		if (memcmp(reply + i, word, n) == 0)
			return 1;
	return 0;
}

static const char *const mode_names[] = {
	[GUEST_RESTART_REQUESTED] = "requested",
	[GUEST_RESTART_SHOW] = "show",
	[GUEST_RESTART_HIDE] = "hide",
};

int guest_restart_parse(const char *s, enum guest_restart *out)
{
	for (size_t i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++)
		if (strcmp(s, mode_names[i]) == 0) {
			*out = (enum guest_restart)i;
			return 0;
		}
	return -1;
}

const char *guest_restart_name(enum guest_restart m)
{
	return (unsigned)m < sizeof(mode_names) / sizeof(mode_names[0]) ? mode_names[m] : "?";
}
