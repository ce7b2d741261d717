/* SPDX-License-Identifier: Apache-2.0 */
/*
 * privdrop.c - user and group switching; see sys.h.
 */
#include "relay/sys/sys.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int number(const char *s, unsigned long *out)
{
	char *end;

	if (s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	*out = strtoul(s, &end, 10);
	return *end == '\0' && errno == 0 && *out < 0xffffffffUL ? 0 : -1;
}

int priv_user_id(const char *name, uid_t *uid, gid_t *primary_gid, char *err, size_t errlen)
{
	struct passwd *pw;
	unsigned long n;

	errno = 0;
	pw = number(name, &n) == 0 ? getpwuid((uid_t)n) : getpwnam(name);
	if (pw == NULL) {
		snprintf(err, errlen, "unknown user %s%s%s", name, errno ? ": " : "",
			 errno ? strerror(errno) : "");
		return -1;
	}
	*uid = pw->pw_uid;
	if (primary_gid != NULL)
		*primary_gid = pw->pw_gid;
	return 0;
}

int priv_group_id(const char *name, gid_t *gid, char *err, size_t errlen)
{
	struct group *gr;
	unsigned long n;

	errno = 0;
	gr = number(name, &n) == 0 ? getgrgid((gid_t)n) : getgrnam(name);
	if (gr == NULL) {
		snprintf(err, errlen, "unknown group %s%s%s", name, errno ? ": " : "",
			 errno ? strerror(errno) : "");
		return -1;
	}
	*gid = gr->gr_gid;
	return 0;
}

int priv_drop(const char *user, const char *group, char *err, size_t errlen)
{
	struct passwd *pw;
	uid_t uid;
	gid_t gid;

	if (priv_user_id(user, &uid, &gid, err, errlen) != 0)
		return -1;
	if (group != NULL && priv_group_id(group, &gid, err, errlen) != 0)
		return -1;
	pw = getpwuid(uid);
	if (pw == NULL || initgroups(pw->pw_name, gid) != 0) {
		/* no entry to take groups from (a bare number): none at all */
		if (setgroups(0, NULL) != 0) {
			snprintf(err, errlen, "setgroups: %s", strerror(errno));
			return -1;
		}
	}
	if (setresgid(gid, gid, gid) != 0 || setresuid(uid, uid, uid) != 0) {
		snprintf(err, errlen, "switching to %s: %s", user, strerror(errno));
		return -1;
	}
	if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
		snprintf(err, errlen, "could get root back after switching to %s", user);
		return -1;
	}
	return 0;
}
