/*
 * privdrop.h - running unprivileged once started: names resolved to ids
 * when the configuration is read, the control socket given its owner and
 * group, then the process switched to the configured user and group (with
 * the user's supplementary groups), checked to be unable to get root back.
 */
#ifndef RELAY_PRIVDROP_H
#define RELAY_PRIVDROP_H

#include <stddef.h>
#include <sys/types.h>

/* A user or group name, or a number; 0, or -1 with ERR set. */
int priv_user_id(const char *name, uid_t *uid, gid_t *primary_gid, char *err, size_t errlen);
int priv_group_id(const char *name, gid_t *gid, char *err, size_t errlen);

/* Become USER (by name; its primary group unless GROUP is given, and its
 * supplementary groups). 0, or -1 with ERR set: the caller must not go on
 * running with privileges it was told to drop. */
int priv_drop(const char *user, const char *group, char *err, size_t errlen);

#endif
